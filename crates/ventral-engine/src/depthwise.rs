//! Depthwise 2-D convolutions (`groups = channels in = channels out`, one `k × k` filter per
//! channel), stride 1, zero padding `pad` on every side: forward, input gradient and weight
//! gradient on burn's `[B][C][H][W]` layout in place — the median reciprocal gated cell's 7 × 7
//! separable convolutions (convrnns' `rgc_intermediate`), which burn-flex ran at 5–25 GFLOP/s.
//!
//! Each plane (an image's channel) is copied once into a zero-padded buffer whose rows carry
//! a vector's width of slack, so every tap reads a whole vector with no bounds checks. With
//! AVX-512F a register tile holds 16 output columns of 8 output rows; per tap one broadcast
//! weight feeds eight fused multiply-adds, each on its own input vector (no branches). For
//! filters of up to 8 columns each row's window of a filter row is loaded once as two vectors
//! and every tap's shifted copy made in registers (`valignd`), not loaded again unaligned. A
//! tile skips the taps that read only zero padding for all its outputs (on 2 × 2 maps, 40 of a
//! 7 × 7 filter's 49). Every output is a chain of fused multiply-adds from zero over
//! its taps in the order `(kh, kw)`, row-major — the same order on the portable path (scalar
//! `mul_add`, every tap: a skipped one adds `w·0 = 0`), so both give the same bits for finite
//! weights, whatever the thread count.
//!
//! The input gradient of a stride-1 convolution is the same convolution of the output gradient
//! padded by `k − 1 − pad` with each filter flipped; the weight gradient correlates each
//! channel's input with its output gradient (summed over the batch in order, per channel).

#![allow(unsafe_code)]

use rayon::prelude::*;

/// Whether filters of at most 8 columns run on [`tile_shift`] (else [`tile`]): on a Zen 4 the
/// median cell's 7 × 7 forward per plane (one thread) went from 52 to 72 GFLOP/s on 56 × 56
/// maps, 28 → 35 on 7 × 7 (`speed::print_forward_rates`); off only to time the two.
#[cfg(target_arch = "x86_64")]
static SHIFT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);
/// A tile's live taps: `[lo, hi)` of the filter's rows and of its columns.
#[cfg(target_arch = "x86_64")]
type Taps = ((usize, usize), (usize, usize));
/// Output rows per register tile.
#[cfg(target_arch = "x86_64")]
const ROWS: usize = 8;
/// Vector lanes (AVX-512F, float32).
const LANES: usize = 16;

/// A depthwise convolution's geometry: `c` channels, `k × k` filters, stride 1, `pad` zeros on
/// every side of `h × w` maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Depthwise {
    pub c: usize,
    pub k: usize,
    pub pad: usize,
    pub h: usize,
    pub w: usize,
}

impl Depthwise {
    /// `None` where the output would be empty (`h + 2·pad < k` or `w + 2·pad < k`), `k = 0`, or
    /// the input gradient's padding `k − 1 − pad` would be negative (`pad ≥ k`).
    pub fn new(c: usize, k: usize, pad: usize, h: usize, w: usize) -> Option<Self> {
        (k > 0 && pad < k && h + 2 * pad >= k && w + 2 * pad >= k).then_some(Self {
            c,
            k,
            pad,
            h,
            w,
        })
    }

    /// Output height.
    pub fn ho(&self) -> usize {
        self.h + 2 * self.pad + 1 - self.k
    }

    /// Output width.
    pub fn wo(&self) -> usize {
        self.w + 2 * self.pad + 1 - self.k
    }

    /// `y = conv(x, w) + bias` (each output's sum of taps, then its channel's bias added).
    ///
    /// # Shapes
    /// - `w`: `[C, 1, k, k]`, `bias`: `[C]` or empty, `x`: `[B, C, H, W]` planes, `y`:
    ///   `[B, C, Ho, Wo]` (overwritten).
    pub fn forward(&self, w: &[f32], bias: &[f32], x: Planes<'_>, batch: usize, y: &mut [f32]) {
        let (ho, wo) = (self.ho(), self.wo());
        let kk = self.k * self.k;
        debug_assert_eq!(w.len(), self.c * kk);
        debug_assert_eq!(y.len(), batch * self.c * ho * wo);
        let pad = Padded::new(self.h, self.w, self.pad);
        let plane_in = self.h * self.w;
        let min = crate::min_items(plane_in * kk / 4);
        y.par_chunks_mut(ho * wo)
            .enumerate()
            .with_min_len(min)
            .for_each_init(
                || vec![0.0f32; pad.len()],
                |buf, (i, out)| {
                    let ch = i % self.c;
                    pad.fill(x.plane(i / self.c, ch, plane_in), buf);
                    let b = bias.get(ch).copied().unwrap_or(0.0);
                    let wk = &w[ch * kk..(ch + 1) * kk];
                    plane(wk, b, buf, &pad, self.k, ho, wo, out);
                },
            );
    }

    /// The input gradient `dx` of [`Self::forward`] given `dy`.
    ///
    /// # Shapes
    /// - `w`: `[C, 1, k, k]`, `dy`: `[B, C, Ho, Wo]`, `dx`: `[B, C, H, W]` (overwritten).
    pub fn backward_data(&self, w: &[f32], dy: Planes<'_>, batch: usize, dx: &mut [f32]) {
        let kk = self.k * self.k;
        // Each filter flipped in both axes.
        let mut flipped = vec![0.0f32; w.len()];
        for (f, g) in flipped.chunks_exact_mut(kk).zip(w.chunks_exact(kk)) {
            for (a, b) in f.iter_mut().zip(g.iter().rev()) {
                *a = *b;
            }
        }
        let adjoint = Depthwise {
            c: self.c,
            k: self.k,
            pad: self.k - 1 - self.pad,
            h: self.ho(),
            w: self.wo(),
        };
        debug_assert_eq!((adjoint.ho(), adjoint.wo()), (self.h, self.w));
        adjoint.forward(&flipped, &[], dy, batch, dx);
    }

    /// The weight gradient `dw` of [`Self::forward`] given `x` and `dy` (summed over the batch).
    ///
    /// # Shapes
    /// - `x`: `[B, C, H, W]`, `dy`: `[B, C, Ho, Wo]`, `dw`: `[C, 1, k, k]` (overwritten).
    pub fn backward_weight(&self, x: Planes<'_>, dy: Planes<'_>, batch: usize, dw: &mut [f32]) {
        let (ho, wo) = (self.ho(), self.wo());
        let kk = self.k * self.k;
        let pad = Padded::new(self.h, self.w, self.pad);
        let (plane_in, plane_out) = (self.h * self.w, ho * wo);
        dw.par_chunks_mut(kk).enumerate().for_each_init(
            || vec![0.0f32; pad.len()],
            |buf, (ch, g)| {
                g.fill(0.0);
                for b in 0..batch {
                    pad.fill(x.plane(b, ch, plane_in), buf);
                    let d = dy.plane(b, ch, plane_out);
                    wgrad_plane(buf, pad.stride, d, self.k, ho, wo, g);
                }
            },
        );
    }
}

/// `[B, C, H, W]` planes in a buffer: each `H × W` plane dense, plane `(b, c)` starting at
/// `offset + b·batch_stride + c·channel_stride` (a contiguous tensor, or a view of some of its
/// channels: the gates a cell slices from one convolution's output).
#[derive(Debug, Clone, Copy)]
pub struct Planes<'a> {
    pub data: &'a [f32],
    pub offset: usize,
    pub batch_stride: usize,
    pub channel_stride: usize,
}

impl<'a> Planes<'a> {
    /// A contiguous `[B, C, H, W]` buffer of `c` channels of `hw` elements.
    pub fn dense(data: &'a [f32], c: usize, hw: usize) -> Self {
        Self {
            data,
            offset: 0,
            batch_stride: c * hw,
            channel_stride: hw,
        }
    }

    /// Plane `(b, c)` of `hw` elements.
    fn plane(&self, b: usize, c: usize, hw: usize) -> &'a [f32] {
        let at = self.offset + b * self.batch_stride + c * self.channel_stride;
        &self.data[at..at + hw]
    }
}

/// A zero-padded copy of one plane: `pad` zeros around it and a vector's width of zeros after
/// each row and after the last.
#[derive(Debug, Clone, Copy)]
struct Padded {
    h: usize,
    w: usize,
    pad: usize,
    stride: usize,
}

impl Padded {
    fn new(h: usize, w: usize, pad: usize) -> Self {
        Self {
            h,
            w,
            pad,
            stride: w + 2 * pad + LANES,
        }
    }

    fn len(&self) -> usize {
        (self.h + 2 * self.pad) * self.stride + LANES
    }

    /// Copy `src` (`h × w`) into `buf` (zeros everywhere else).
    fn fill(&self, src: &[f32], buf: &mut [f32]) {
        let top = self.pad * self.stride;
        buf[..top + self.pad].fill(0.0);
        for r in 0..self.h {
            let at = top + r * self.stride + self.pad;
            buf[at..at + self.w].copy_from_slice(&src[r * self.w..(r + 1) * self.w]);
            let next = (at + self.stride).min(buf.len());
            buf[at + self.w..next].fill(0.0);
        }
        let end = top + self.h * self.stride + self.pad;
        if end < buf.len() {
            buf[end..].fill(0.0);
        }
    }
}

/// One plane's forward: `out[oh][ow] = Σ_{kh, kw} w[kh][kw]·xp[oh + kh][ow + kw]`, the taps in
/// row-major order, on the widest kernel the CPU has (`xp` laid out as `pad` says).
#[allow(clippy::too_many_arguments)]
fn plane(
    w: &[f32],
    bias: f32,
    xp: &[f32],
    pad: &Padded,
    k: usize,
    ho: usize,
    wo: usize,
    out: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if crate::simd::avx512() {
        // SAFETY: AVX-512F was checked; `xp` holds `(ho + k − 1)` rows of `stride ≥ wo + k −
        // 1 + 16` floats plus 16 (`Padded::len`), so every unmasked load stays inside it.
        unsafe { plane_avx512(w, bias, xp, pad, k, ho, wo, out) };
        return;
    }
    plane_portable(w, bias, xp, pad.stride, k, ho, wo, out);
}

/// The taps `[lo, hi)` along one axis that reach the input (not only its zero padding) from
/// some output of `at .. at + n` (`n ≥ 1`): tap `t` reads padded position `o + t`, the input
/// lies at `pad .. pad + len`.
#[cfg(target_arch = "x86_64")]
fn live_taps(k: usize, pad: usize, len: usize, at: usize, n: usize) -> (usize, usize) {
    let lo = pad.saturating_sub(at + n - 1).min(k);
    let hi = (pad + len).saturating_sub(at).min(k);
    (lo, hi.max(lo))
}

/// [`plane`] on scalar fused multiply-adds (the same order and the same bits).
#[allow(clippy::too_many_arguments)]
pub(crate) fn plane_portable(
    w: &[f32],
    bias: f32,
    xp: &[f32],
    stride: usize,
    k: usize,
    ho: usize,
    wo: usize,
    out: &mut [f32],
) {
    for oh in 0..ho {
        for ow in 0..wo {
            let mut acc = 0.0f32;
            for kh in 0..k {
                let row = &xp[(oh + kh) * stride + ow..];
                for kw in 0..k {
                    acc = w[kh * k + kw].mul_add(row[kw], acc);
                }
            }
            out[oh * wo + ow] = acc + bias;
        }
    }
}

/// [`plane`] on AVX-512F register tiles. A tile skips the taps that read only zero padding for
/// all its outputs (`live_taps`: 40 of 49 on the 2 × 2 maps of the CPU presets' last nodes, 7 ×
/// 7 filters with 3 zeros around; none on their 4 × 4 maps, where every filter row reaches some
/// row of the tile): each would add `w·0 = 0` to every sum (the same bits for finite weights;
/// the portable path computes them).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn plane_avx512(
    w: &[f32],
    bias: f32,
    xp: &[f32],
    pad: &Padded,
    k: usize,
    ho: usize,
    wo: usize,
    out: &mut [f32],
) {
    let stride = pad.stride;
    let xq = xp.as_ptr();
    let oq = out.as_mut_ptr();
    let shifted = k <= 8 && SHIFT.load(std::sync::atomic::Ordering::Relaxed);
    let mut c0 = 0;
    while c0 < wo {
        let n = (wo - c0).min(LANES);
        let mask: u16 = if n == LANES {
            u16::MAX
        } else {
            (1u16 << n) - 1
        };
        let cols = live_taps(k, pad.pad, pad.w, c0, n);
        let mut r0 = 0;
        while r0 < ho {
            let rr = (ho - r0).min(ROWS);
            let at = (
                xq.wrapping_add(r0 * stride + c0),
                oq.wrapping_add(r0 * wo + c0),
            );
            let taps = (live_taps(k, pad.pad, pad.h, r0, rr), cols);
            // SAFETY: as `plane`'s; the tile's rows and columns lie inside `xp` and `out`.
            macro_rules! by_rows {
                ($tile:ident) => {
                    unsafe {
                        match rr {
                            8 => $tile::<8>(w, bias, at, stride, (k, taps), wo, mask),
                            7 => $tile::<7>(w, bias, at, stride, (k, taps), wo, mask),
                            6 => $tile::<6>(w, bias, at, stride, (k, taps), wo, mask),
                            5 => $tile::<5>(w, bias, at, stride, (k, taps), wo, mask),
                            4 => $tile::<4>(w, bias, at, stride, (k, taps), wo, mask),
                            3 => $tile::<3>(w, bias, at, stride, (k, taps), wo, mask),
                            2 => $tile::<2>(w, bias, at, stride, (k, taps), wo, mask),
                            _ => $tile::<1>(w, bias, at, stride, (k, taps), wo, mask),
                        }
                    }
                };
            }
            if shifted {
                by_rows!(tile_shift);
            } else {
                by_rows!(tile);
            }
            r0 += rr;
        }
        c0 += n;
    }
}

/// [`tile`] for filters of at most 8 columns: per filter row each output row's 32 input
/// columns are loaded once (two vectors) and every tap's shifted window made from them in
/// registers (`valignd`), instead of one unaligned load per tap and row; the same fused
/// multiply-adds in the same order (the same bits).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn tile_shift<const R: usize>(
    w: &[f32],
    bias: f32,
    (xq, oq): (*const f32, *mut f32),
    stride: usize,
    (k, ((kh0, kh1), (kw0, kw1))): (usize, Taps),
    wo: usize,
    mask: u16,
) {
    use std::arch::x86_64::{
        __m512, __m512i, _mm512_add_ps, _mm512_alignr_epi32, _mm512_castps_si512,
        _mm512_castsi512_ps, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_mask_storeu_ps,
        _mm512_set1_ps, _mm512_setzero_ps,
    };
    debug_assert!(k <= 8 && kh1 <= k && kw1 <= k);
    let mut acc: [__m512; R] = [_mm512_setzero_ps(); R];
    let zero = _mm512_castps_si512(_mm512_setzero_ps());
    for kh in kh0..kh1 {
        let mut lo: [__m512i; R] = [zero; R];
        let mut hi: [__m512i; R] = [zero; R];
        for j in 0..R {
            let base = unsafe { xq.add((kh + j) * stride) };
            lo[j] = _mm512_castps_si512(unsafe { _mm512_loadu_ps(base) });
            hi[j] = _mm512_castps_si512(unsafe { _mm512_loadu_ps(base.add(16)) });
        }
        macro_rules! tap {
            ($s:literal) => {
                if $s >= kw0 && $s < kw1 {
                    let wv = _mm512_set1_ps(w[kh * k + $s]);
                    for j in 0..R {
                        let xv = _mm512_castsi512_ps(_mm512_alignr_epi32::<$s>(hi[j], lo[j]));
                        acc[j] = _mm512_fmadd_ps(wv, xv, acc[j]);
                    }
                }
            };
        }
        tap!(0);
        tap!(1);
        tap!(2);
        tap!(3);
        tap!(4);
        tap!(5);
        tap!(6);
        tap!(7);
    }
    let b = _mm512_set1_ps(bias);
    for (j, a) in acc.iter().enumerate() {
        unsafe { _mm512_mask_storeu_ps(oq.add(j * wo), mask, _mm512_add_ps(*a, b)) };
    }
}

/// `R` output rows of 16 columns (`mask`: those written): per tap one broadcast weight and
/// `R` input vectors, `R` fused multiply-adds, no branches.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn tile<const R: usize>(
    w: &[f32],
    bias: f32,
    (xq, oq): (*const f32, *mut f32),
    stride: usize,
    (k, ((kh0, kh1), (kw0, kw1))): (usize, Taps),
    wo: usize,
    mask: u16,
) {
    use std::arch::x86_64::{
        __m512, _mm512_add_ps, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_mask_storeu_ps,
        _mm512_set1_ps, _mm512_setzero_ps,
    };
    let mut acc: [__m512; R] = [_mm512_setzero_ps(); R];
    for kh in kh0..kh1 {
        for kw in kw0..kw1 {
            let wv = _mm512_set1_ps(w[kh * k + kw]);
            let base = unsafe { xq.add(kh * stride + kw) };
            for (j, a) in acc.iter_mut().enumerate() {
                let xv = unsafe { _mm512_loadu_ps(base.add(j * stride)) };
                *a = _mm512_fmadd_ps(wv, xv, *a);
            }
        }
    }
    let b = _mm512_set1_ps(bias);
    for (j, a) in acc.iter().enumerate() {
        unsafe { _mm512_mask_storeu_ps(oq.add(j * wo), mask, _mm512_add_ps(*a, b)) };
    }
}

/// One plane's weight gradient, added to `g`: `g[kh][kw] += Σ_{oh, ow} dy[oh][ow]·xp[oh +
/// kh][ow + kw]`.
fn wgrad_plane(
    xp: &[f32],
    stride: usize,
    dy: &[f32],
    k: usize,
    ho: usize,
    wo: usize,
    g: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if crate::simd::avx512() {
        // SAFETY: as in `plane`; `dy` is read under a mask within its `ho × wo` floats.
        unsafe { wgrad_plane_avx512(xp, stride, dy, k, ho, wo, g) };
        return;
    }
    wgrad_plane_portable(xp, stride, dy, k, ho, wo, g);
}

/// [`wgrad_plane`] on scalar operations.
pub(crate) fn wgrad_plane_portable(
    xp: &[f32],
    stride: usize,
    dy: &[f32],
    k: usize,
    ho: usize,
    wo: usize,
    g: &mut [f32],
) {
    for kh in 0..k {
        for kw in 0..k {
            let mut acc = 0.0f32;
            for oh in 0..ho {
                let row = &xp[(oh + kh) * stride + kw..];
                for ow in 0..wo {
                    acc = dy[oh * wo + ow].mul_add(row[ow], acc);
                }
            }
            g[kh * k + kw] += acc;
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn wgrad_plane_avx512(
    xp: &[f32],
    stride: usize,
    dy: &[f32],
    k: usize,
    ho: usize,
    wo: usize,
    g: &mut [f32],
) {
    for kh in 0..k {
        let mut kw0 = 0;
        while kw0 < k {
            let m = (k - kw0).min(8);
            let gs = &mut g[kh * k + kw0..kh * k + kw0 + m];
            let xq = xp.as_ptr().wrapping_add(kh * stride + kw0);
            // SAFETY: as `wgrad_plane`'s.
            unsafe {
                match m {
                    8 => wgrad_taps::<8>(xq, stride, dy, ho, wo, gs),
                    7 => wgrad_taps::<7>(xq, stride, dy, ho, wo, gs),
                    6 => wgrad_taps::<6>(xq, stride, dy, ho, wo, gs),
                    5 => wgrad_taps::<5>(xq, stride, dy, ho, wo, gs),
                    4 => wgrad_taps::<4>(xq, stride, dy, ho, wo, gs),
                    3 => wgrad_taps::<3>(xq, stride, dy, ho, wo, gs),
                    2 => wgrad_taps::<2>(xq, stride, dy, ho, wo, gs),
                    _ => wgrad_taps::<1>(xq, stride, dy, ho, wo, gs),
                }
            }
            kw0 += m;
        }
    }
}

/// `M` horizontal taps of one filter row: each output-gradient vector is loaded once and
/// multiplied into `M` accumulators (one per tap), summed across lanes at the end.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn wgrad_taps<const M: usize>(
    xq: *const f32,
    stride: usize,
    dy: &[f32],
    ho: usize,
    wo: usize,
    g: &mut [f32],
) {
    use std::arch::x86_64::{
        __m512, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_maskz_loadu_ps, _mm512_reduce_add_ps,
        _mm512_setzero_ps,
    };
    let dq = dy.as_ptr();
    let mut acc: [__m512; M] = [_mm512_setzero_ps(); M];
    for oh in 0..ho {
        let row = unsafe { xq.add(oh * stride) };
        let mut c0 = 0;
        while c0 < wo {
            let n = (wo - c0).min(LANES);
            let mask: u16 = if n == LANES {
                u16::MAX
            } else {
                (1u16 << n) - 1
            };
            let d = unsafe { _mm512_maskz_loadu_ps(mask, dq.add(oh * wo + c0)) };
            for (j, a) in acc.iter_mut().enumerate() {
                let xv = unsafe { _mm512_loadu_ps(row.add(c0 + j)) };
                *a = _mm512_fmadd_ps(d, xv, *a);
            }
            c0 += n;
        }
    }
    for (gj, a) in g.iter_mut().zip(&acc) {
        *gj += _mm512_reduce_add_ps(*a);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// The definition, in float64.
    fn reference(d: &Depthwise, w: &[f32], x: &[f32], batch: usize) -> Vec<f64> {
        let (ho, wo, k, p) = (d.ho(), d.wo(), d.k, d.pad as isize);
        let mut y = vec![0.0f64; batch * d.c * ho * wo];
        for i in 0..batch * d.c {
            let ch = i % d.c;
            for oh in 0..ho {
                for ow in 0..wo {
                    let mut s = 0.0f64;
                    for kh in 0..k {
                        for kw in 0..k {
                            let (r, q) =
                                (oh as isize + kh as isize - p, ow as isize + kw as isize - p);
                            if r >= 0 && q >= 0 && (r as usize) < d.h && (q as usize) < d.w {
                                s += w[ch * k * k + kh * k + kw] as f64
                                    * x[(i * d.h + r as usize) * d.w + q as usize] as f64;
                            }
                        }
                    }
                    y[(i * ho + oh) * wo + ow] = s;
                }
            }
        }
        y
    }

    #[test]
    fn forward_and_gradients_match_the_definition() {
        // Maps narrower and wider than a vector, filters 1 … 7, padding 0 … k − 1, batch 1 … 3.
        for (c, k, pad, h, w, batch) in [
            (3, 7, 3, 7, 7, 2),
            (2, 7, 3, 28, 19, 1),
            (4, 3, 1, 5, 33, 3),
            (1, 1, 0, 4, 4, 2),
            (5, 5, 0, 9, 6, 2),
            (2, 2, 1, 6, 17, 1),
            (3, 7, 6, 3, 2, 2),
            // The CPU presets' last nodes: 7 × 7 on 2 × 2 and 4 × 4 maps, where most taps
            // read only padding (skipped by the vector tiles).
            (4, 7, 3, 2, 2, 3),
            (3, 7, 3, 4, 4, 2),
        ] {
            let d = Depthwise::new(c, k, pad, h, w).unwrap();
            let (ho, wo) = (d.ho(), d.wo());
            let wt = lcg(c * k * k, 1 + k as u64);
            let x = lcg(batch * c * h * w, 2 + h as u64);
            let gy = lcg(batch * c * ho * wo, 3 + w as u64);
            let bias = lcg(c, 4);
            let mut y = vec![f32::NAN; batch * c * ho * wo];
            d.forward(&wt, &bias, Planes::dense(&x, c, h * w), batch, &mut y);
            let r = reference(&d, &wt, &x, batch);
            for (i, (a, e)) in y.iter().zip(&r).enumerate() {
                let e = e + bias[(i / (ho * wo)) % c] as f64;
                assert!(
                    (*a as f64 - e).abs() <= 1e-5 * (1.0 + e.abs()),
                    "{d:?}: {a} vs {e}"
                );
            }
            // Gradients of Σ y·gy by the adjoint identity: ⟨conv(x), gy⟩ = ⟨x, dx⟩, and by
            // finite differences of the (linear) output in each weight.
            let mut dx = vec![f32::NAN; x.len()];
            d.backward_data(&wt, Planes::dense(&gy, c, ho * wo), batch, &mut dx);
            let lhs: f64 = r.iter().zip(&gy).map(|(a, b)| a * *b as f64).sum();
            let rhs: f64 = x.iter().zip(&dx).map(|(a, b)| *a as f64 * *b as f64).sum();
            assert!(
                (lhs - rhs).abs() <= 1e-4 * (1.0 + lhs.abs()),
                "{d:?}: {lhs} vs {rhs}"
            );
            let mut dw = vec![f32::NAN; wt.len()];
            let xs = Planes::dense(&x, c, h * w);
            d.backward_weight(xs, Planes::dense(&gy, c, ho * wo), batch, &mut dw);
            for q in 0..wt.len() {
                let mut e = vec![0.0f32; wt.len()];
                e[q] = 1.0;
                let want: f64 = reference(&d, &e, &x, batch)
                    .iter()
                    .zip(&gy)
                    .map(|(a, b)| a * *b as f64)
                    .sum();
                assert!(
                    (dw[q] as f64 - want).abs() <= 1e-4 * (1.0 + want.abs()),
                    "{d:?} dw[{q}]"
                );
            }
        }
    }

    #[test]
    fn vector_and_portable_paths_give_the_same_bits() {
        // Filters of up to 8 columns on the shifted windows (`tile_shift`), wider ones on a
        // load per tap (`tile`); partial row tiles and a masked last column tile; maps smaller
        // than the filters, where the vector tiles skip the taps that read only padding.
        let filters = [(1, 0), (3, 1), (5, 2), (8, 3), (9, 4), (7, 3)];
        let maps = [(20, 37), (2, 2), (4, 4), (3, 5)];
        for ((k, pad_k), (h, w)) in maps.iter().flat_map(|&m| filters.map(|f| (f, m))) {
            let pad = Padded::new(h, w, pad_k);
            let mut buf = vec![0.0f32; pad.len()];
            pad.fill(&lcg(h * w, 9), &mut buf);
            let wt = lcg(k * k, 10);
            let (ho, wo) = (h + 2 * pad_k + 1 - k, w + 2 * pad_k + 1 - k);
            let mut b = vec![1.0f32; ho * wo];
            plane_portable(&wt, 0.75, &buf, pad.stride, k, ho, wo, &mut b);
            for shift in [false, true] {
                #[cfg(target_arch = "x86_64")]
                SHIFT.store(shift, std::sync::atomic::Ordering::Relaxed);
                let mut a = vec![0.0f32; ho * wo];
                plane(&wt, 0.75, &buf, &pad, k, ho, wo, &mut a);
                assert!(
                    a.iter().zip(&b).all(|(p, q)| p.to_bits() == q.to_bits()),
                    "k {k}, {h} × {w}, shifted windows {shift}"
                );
            }
            #[cfg(target_arch = "x86_64")]
            SHIFT.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        let (k, h, w) = (7, 20, 37);
        let pad = Padded::new(h, w, 3);
        let mut buf = vec![0.0f32; pad.len()];
        pad.fill(&lcg(h * w, 9), &mut buf);
        let (ho, wo) = (h + 6 + 1 - k, w + 6 + 1 - k);
        // The weight gradients agree to rounding (the vector path sums its lanes as a tree).
        let dy = lcg(ho * wo, 11);
        let (mut g1, mut g2) = (vec![0.0f32; k * k], vec![0.0f32; k * k]);
        wgrad_plane(&buf, pad.stride, &dy, k, ho, wo, &mut g1);
        wgrad_plane_portable(&buf, pad.stride, &dy, k, ho, wo, &mut g2);
        for (p, q) in g1.iter().zip(&g2) {
            assert!((p - q).abs() <= 1e-4 * (1.0 + q.abs()), "{p} vs {q}");
        }
    }

    /// A view of some channels of a larger tensor (the gates a cell slices from one
    /// convolution's output) gives what a contiguous copy of them gives.
    #[test]
    fn channel_views_read_in_place() {
        let (batch, all, first, c, h, w) = (2, 7, 2, 3, 9, 11);
        let big = lcg(batch * all * h * w, 12);
        let mut copy = Vec::new();
        for b in 0..batch {
            copy.extend_from_slice(&big[(b * all + first) * h * w..(b * all + first + c) * h * w]);
        }
        let view = Planes {
            data: &big,
            offset: first * h * w,
            batch_stride: all * h * w,
            channel_stride: h * w,
        };
        let d = Depthwise::new(c, 5, 2, h, w).unwrap();
        let wt = lcg(c * 25, 13);
        let (mut a, mut b) = (vec![0.0f32; copy.len()], vec![1.0f32; copy.len()]);
        d.forward(&wt, &[], view, batch, &mut a);
        d.forward(&wt, &[], Planes::dense(&copy, c, h * w), batch, &mut b);
        assert_eq!(a, b);
        let (mut g1, mut g2) = (vec![0.0f32; c * 25], vec![0.0f32; c * 25]);
        d.backward_weight(view, Planes::dense(&a, c, h * w), batch, &mut g1);
        d.backward_weight(
            Planes::dense(&copy, c, h * w),
            Planes::dense(&a, c, h * w),
            batch,
            &mut g2,
        );
        assert_eq!(g1, g2);
    }

    #[test]
    fn empty_outputs_and_bad_padding_are_refused() {
        assert!(Depthwise::new(1, 7, 0, 6, 10).is_none());
        assert!(Depthwise::new(1, 3, 3, 6, 10).is_none());
        assert!(Depthwise::new(1, 0, 0, 6, 10).is_none());
        assert!(Depthwise::new(1, 7, 3, 1, 1).is_some());
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod speed {
    use super::*;

    /// Prints GFLOP/s of the forward on the median cell's shapes (no assertion: run by hand,
    /// `cargo test --release -p ventral-engine --lib depthwise::speed -- --ignored --nocapture`).
    #[test]
    #[ignore]
    fn print_forward_rates() {
        for (c, h) in [
            (128usize, 56usize),
            (256, 28),
            (256, 14),
            (512, 7),
            (32, 16),
            (32, 8),
            (32, 4),
            (64, 2),
        ] {
            let d = Depthwise::new(c, 7, 3, h, h).unwrap();
            let batch = 8;
            let x = vec![0.5f32; batch * c * h * h];
            let w = vec![0.25f32; c * 49];
            let mut y = vec![0.0f32; batch * c * h * h];
            let flops = 2.0 * (batch * c * h * h * 49) as f64;
            // The whole forward (both threads), shifted windows off and on, alternated.
            let mut whole = [f64::MAX; 2];
            for round in 0..20 {
                let shift = round % 2 == 1;
                SHIFT.store(shift, std::sync::atomic::Ordering::Relaxed);
                let t = std::time::Instant::now();
                d.forward(&w, &[], Planes::dense(&x, c, h * h), batch, &mut y);
                let e = t.elapsed().as_secs_f64();
                whole[usize::from(shift)] = whole[usize::from(shift)].min(e);
            }
            let best = whole[1];
            println!(
                "  whole forward: {:.1} vs {:.1} GFLOP/s (shifted windows vs a load per tap)",
                flops / whole[1] * 1e-9,
                flops / whole[0] * 1e-9
            );
            let pad = Padded::new(h, h, 3);
            let mut buf = vec![0.0f32; pad.len()];
            let mut out = vec![0.0f32; h * h];
            let mut one = [0.0; 2];
            for shift in [false, true, false, true] {
                SHIFT.store(shift, std::sync::atomic::Ordering::Relaxed);
                let t = std::time::Instant::now();
                for _ in 0..2000 {
                    plane(&w[..49], 0.0, &buf, &pad, 7, h, h, &mut out);
                    std::hint::black_box(&mut out);
                }
                one[usize::from(shift)] = t.elapsed().as_secs_f64() / 2000.0;
            }
            println!(
                "  shift: {:.1} vs {:.1} GFLOP/s",
                2.0 * (h * h * 49) as f64 / one[1] * 1e-9,
                2.0 * (h * h * 49) as f64 / one[0] * 1e-9
            );
            let one = one[1];
            let t = std::time::Instant::now();
            for _ in 0..200 {
                pad.fill(&x[..h * h], &mut buf);
                std::hint::black_box(&mut buf);
            }
            let fill = t.elapsed().as_secs_f64() / 200.0;
            println!(
                "{c} ch {h}x{h}: {:.1} GFLOP/s ({:.2} ms); one plane {:.1} GFLOP/s single thread, fill {:.1} us",
                flops / best * 1e-9,
                best * 1e3,
                2.0 * (h * h * 49) as f64 / one * 1e-9,
                fill * 1e6
            );
        }
    }
}
