//! Direct stride-1 convolutions with the output channels in the vector lanes (AVX-512F), for
//! wide layers on small maps: BLT_net_64's IT (256 and 512 channels on 8 × 8).
//!
//! The row kernels of [`crate::kernel`] put output pixels in the lanes, which an 8-pixel row
//! fills half of a 16-lane register; im2col + GEMM (what these layers ran on before) writes
//! and reads an unfolded input nine times the size of the map. Here a register tile holds
//! `4 × 16` output channels of `6` output pixels (24 accumulators): per input tap, four
//! vector loads of packed weights and one broadcast per pixel feed 24 fused multiply-adds,
//! with the input read in place from its zero-padded copy ([`crate::kernel::phases`]). The
//! taps are walked in blocks of `KB` whose weights stay in L1 across all pixel tiles of a
//! task; each block's sum is a chain of fused multiply-adds from zero over its taps
//! `q = (c·k + kh)·k + kw` in order, and the blocks' sums are added in order — the same
//! bits whatever the thread count, then added to the destination when accumulating. Chains
//! of 72 rather than one of `Ci·k²` (4 608 on IT's lateral) keep the rounding error of the
//! long sums down: on the BLT parity fixture one chain flipped a second sub-float32 ReLU
//! decision at IT (an input of 1.0e-7 in float64) that the blocked sums take as float64
//! does, and the engine's gradients stay within 1.0e-6 relative L2 of the float64
//! reference with the fixture's one known flip (1.1e-6 on the GEMM before).
//!
//! The input gradient of a stride-1 convolution is the same convolution of the output
//! gradient padded by `k − 1 − p` with the kernel flipped and its channels exchanged; the
//! weights are packed in that orientation directly ([`Weights::Exchanged`]).

#![allow(unsafe_code)]

use rayon::prelude::*;

use crate::kernel::{Planes, SendPtr};

/// Output channels per vector.
const LANES: usize = 16;
/// Vectors of output channels per register tile (and per block of packed weights; `run_tile`
/// spells it out).
const VB: usize = 4;
/// Output pixels per register tile. Measured on BLT_net_64's IT lateral (512 channels, 8 × 8,
/// batch 16; Intel Xeon with two 512-bit FMA units; tiles alone, fastest of 20, two runs),
/// vectors × pixels: 4 × 6 11.6 ms, 4 × 4 12.0, 3 × 7 12.0, 3 × 8 12.1–12.4, 1 × 16 12.2–12.3,
/// 2 × 10 12.5, 2 × 8 12.8, 2 × 12 22.8 (spills).
const RT: usize = 6;
/// Taps per block: `KB × VB × 64` bytes of weights (18 KiB) stay in L1 while the block runs
/// over every pixel tile of a task. The same layer, taps per block: 18 12.7 ms, 36 12.2, 72
/// 11.6, 144 11.8, 288 12.1, all 4 608 12.3.
const KB: usize = 72;
/// Output pixels per task (11 tiles) of the batch's pixels in order, image after image (runs
/// cross images, so only the batch's last tile is partial: BLT_net_64's IT bottom-up 6.3–6.7
/// → 6.2–6.3 ms against runs inside one image): a task's sums (`PIXELS × 64` floats, 17 KiB)
/// stay in L1 beside its block of weights.
const PIXELS: usize = 11 * RT;

/// Whether the kernels run on this CPU (AVX-512F, not capped by `VENTRAL_SIMD`).
pub fn available() -> bool {
    crate::simd::avx512()
}

/// The weights as `[co][kd]` rows, or the weights of a convolution whose input gradient this
/// is: `w` laid out `[co][ci][k][k]` and read as the adjoint's `[ci][co·k²]` with each kernel
/// flipped (`crate::conv::flip_transposed`'s layout, without the copy).
#[derive(Debug, Clone, Copy)]
pub enum Weights<'a> {
    /// `w[o·kd + q]`, `co` rows.
    Rows { w: &'a [f32], co: usize },
    /// The adjoint of the convolution `w: [co][ci][k][k]`: output channel `c < ci`, tap
    /// `q = o·k² + t` reads `w[(o·ci + c)·k² + k² − 1 − t]`.
    Exchanged {
        w: &'a [f32],
        co: usize,
        ci: usize,
        k: usize,
    },
}

impl Weights<'_> {
    /// `(output channels, taps per output)`.
    pub fn shape(&self) -> (usize, usize) {
        match *self {
            Weights::Rows { w, co } => (co, w.len().checked_div(co).unwrap_or(0)),
            Weights::Exchanged { co, ci, k, .. } => (ci, co * k * k),
        }
    }

    /// Floats of the packed weights ([`pack`]).
    pub fn packed_len(&self) -> usize {
        let (co, kd) = self.shape();
        co.next_multiple_of(LANES) * kd
    }
}

/// The weights as [`conv_channels`] reads them: blocks of `VB` vectors of output channels (the
/// last block as many as are left), each `[q][v·16]`, channels beyond the output channels
/// zero; `packed` holds [`Weights::packed_len`]. A transposition, walked so that reads and
/// writes both run along memory: rows of `w` in runs of 64 taps (`Rows`), or per input
/// channel of the adjoint, whose kernels lie side by side (`Exchanged`).
///
/// # Panics
/// When `packed` or the weights are too short (engine bugs).
pub fn pack(w: Weights<'_>, packed: &mut [f32]) {
    let (co, kd) = w.shape();
    assert!(packed.len() >= w.packed_len(), "lanes::pack: destination");
    match w {
        Weights::Rows { w, .. } => assert!(w.len() >= co * kd, "lanes::pack: weights"),
        Weights::Exchanged { w, co, ci, k } => {
            assert!(w.len() >= co * ci * k * k, "lanes::pack: weights")
        }
    }
    if kd == 0 {
        return;
    }
    let block = VB * LANES;
    packed[..w.packed_len()]
        .par_chunks_mut(block * kd)
        .enumerate()
        .for_each(|(j, dst)| {
            let width = dst.len() / kd;
            let o0 = j * block;
            match w {
                Weights::Rows { w, .. } => {
                    for q0 in (0..kd).step_by(64) {
                        let q1 = (q0 + 64).min(kd);
                        for l in 0..width {
                            let o = o0 + l;
                            for q in q0..q1 {
                                dst[q * width + l] = if o < co { w[o * kd + q] } else { 0.0 };
                            }
                        }
                    }
                }
                Weights::Exchanged { w, co: cw, ci, k } => {
                    let kk = k * k;
                    for oo in 0..cw {
                        for l in 0..width {
                            let c = o0 + l;
                            for tap in 0..kk {
                                dst[(oo * kk + tap) * width + l] = if c < co {
                                    w[(oo * ci + c) * kk + kk - 1 - tap]
                                } else {
                                    0.0
                                };
                            }
                        }
                    }
                }
            }
        });
}

/// `y[o][b][oh][ow] (+)= Σ_q w(o, q) · xp[b·ximage + offs[q] + oh·wp + ow]` for the `co`
/// output channels of weights packed by [`pack`] (`kd = offs.len()` taps per output) — a
/// stride-1 direct convolution over a zero-padded input whose tap offsets are `offs`
/// (`crate::kernel`'s layout), `y` laid out as `layout` says.
///
/// # Panics
/// When [`available`] is false or a buffer is too small (engine bugs: shapes are fixed by the
/// network's geometry).
#[allow(clippy::too_many_arguments)]
pub fn conv_channels(
    packed: &[f32],
    co: usize,
    offs: &[usize],
    batch: usize,
    (xp, ximage, wp): (&[f32], usize, usize),
    (ho, wo): (usize, usize),
    (y, layout): (&mut [f32], Planes),
    accumulate: bool,
) {
    assert!(available(), "conv_channels needs AVX-512F");
    let kd = offs.len();
    let npix = ho * wo;
    assert!(y.len() >= co * batch * npix, "conv_channels: output size");
    if co == 0 || batch == 0 || npix == 0 {
        return;
    }
    if kd == 0 {
        if !accumulate {
            y[..co * batch * npix].fill(0.0);
        }
        return;
    }
    let cp = co.next_multiple_of(LANES);
    assert!(packed.len() >= cp * kd, "conv_channels: packed weights");
    let reach = offs.iter().max().copied().unwrap_or(0) + (ho - 1) * wp + wo - 1;
    assert!(
        wo <= wp && (batch - 1) * ximage + reach < xp.len(),
        "conv_channels: input size"
    );
    // Every output pixel of the batch in order, image by image: where it reads the input
    // (from `xp`'s start) and where it lands in an output channel's planes. Runs of pixels
    // cross images, so that only the batch's last tile is partial.
    let (cs, image) = layout.strides(co, batch, npix);
    let total = batch * npix;
    let (src, dst): (Vec<usize>, Vec<usize>) = (0..total)
        .map(|i| {
            let (b, p) = (i / npix, i % npix);
            (b * ximage + (p / wo) * wp + p % wo, b * image + p)
        })
        .unzip();
    let yp = SendPtr(y.as_mut_ptr());
    // Tasks: blocks of VB vectors of output channels × runs of PIXELS pixels, the pixels
    // inner so that a thread's consecutive tasks share their block of weights (in L2).
    let blocks = cp.div_ceil(VB * LANES);
    let runs = total.div_ceil(PIXELS);
    (0..blocks * runs).into_par_iter().for_each_init(
        || vec![0.0f32; PIXELS * VB * LANES + 15],
        |buf, task| {
            let (j, run) = (task / runs, task % runs);
            let v = (cp / LANES - j * VB).min(VB);
            let (p0, p1) = (run * PIXELS, (run * PIXELS + PIXELS).min(total));
            let vl = v * LANES;
            // The sums from a 64-byte boundary (each vector in one line).
            let skew = buf.as_ptr().align_offset(64).min(15);
            let sums = &mut buf[skew..skew + (p1 - p0) * vl];
            let wblk = &packed[j * VB * LANES * kd..][..vl * kd];
            for q0 in (0..kd).step_by(KB) {
                let nq = KB.min(kd - q0);
                for t0 in (p0..p1).step_by(RT) {
                    let r = RT.min(p1 - t0);
                    let args = Tile {
                        w: wblk[q0 * vl..].as_ptr(),
                        x: xp.as_ptr(),
                        offs: offs[q0..].as_ptr(),
                        nq,
                        pix: src[t0..].as_ptr(),
                        out: sums[(t0 - p0) * vl..].as_mut_ptr(),
                        ops: vl,
                        first: q0 == 0,
                    };
                    // SAFETY: the tile reads taps q0..q0 + nq of `wblk` (vl·kd floats) and
                    // pixels t0..t0 + r of `src`, the input at offs[q] + src[p] ≤
                    // (batch − 1)·ximage + reach < xp.len() (checked), and writes pixels
                    // t0 − p0.. t0 − p0 + r of `sums` ((p1 − p0) × vl); AVX-512F checked.
                    unsafe { run_tile(v, r, &args) };
                }
            }
            // Channels j·64.. (those below co), pixels p0..p1: this task's alone.
            let o0 = j * VB * LANES;
            for (l, o) in (o0..(o0 + vl).min(co)).enumerate() {
                for (i, &d) in dst[p0..p1].iter().enumerate() {
                    let s = sums[i * vl + l];
                    // SAFETY: o < co and d = b·image + p with b < batch, p < npix: inside
                    // the co·batch planes of npix (either layout; checked above).
                    unsafe {
                        let d = yp.get().add(o * cs + d);
                        *d = if accumulate { *d + s } else { s };
                    }
                }
            }
        },
    );
}

/// One register tile's operands: weights `w` (`[q][v·16]` from the block's first tap), the
/// image's padded input `x`, the block's tap offsets `offs` (`nq` of them), the tile's pixel
/// offsets `pix`, its outputs `out` (pixel `r` at `out + r·ops`), and whether this block is
/// the first (the accumulators start from zero) or continues the stored sums.
// Read only by the x86-64 kernel (elsewhere `available` is false and no tile runs).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
struct Tile {
    w: *const f32,
    x: *const f32,
    offs: *const usize,
    nq: usize,
    pix: *const usize,
    out: *mut f32,
    ops: usize,
    first: bool,
}

/// [`tile`] for `v` vectors × `r` pixels.
///
/// # Safety
/// As [`tile`].
unsafe fn run_tile(v: usize, r: usize, a: &Tile) {
    macro_rules! pixels {
        ($v:literal) => {
            match r {
                1 => tile::<$v, 1>(a),
                2 => tile::<$v, 2>(a),
                3 => tile::<$v, 3>(a),
                4 => tile::<$v, 4>(a),
                5 => tile::<$v, 5>(a),
                _ => tile::<$v, 6>(a),
            }
        };
    }
    // SAFETY: the caller's.
    unsafe {
        match v {
            1 => pixels!(1),
            2 => pixels!(2),
            3 => pixels!(3),
            _ => pixels!(4),
        }
    }
}

/// `V` vectors of output channels × `R` pixels: `out[r·ops + v·16 + l] = (stored or 0) +
/// Σ_q w[q·V·16 + v·16 + l] · x[offs[q] + pix[r]]`, one chain per output in `q` order.
///
/// # Safety
/// Every addressed element lies inside its buffer; AVX-512F is available.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn tile<const V: usize, const R: usize>(a: &Tile) {
    use std::arch::x86_64::{
        __m512, _mm512_add_ps, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_set1_ps, _mm512_setzero_ps,
        _mm512_storeu_ps,
    };
    // SAFETY: the caller's.
    unsafe {
        let mut px = [0usize; R];
        for (r, p) in px.iter_mut().enumerate() {
            *p = *a.pix.add(r);
        }
        let mut acc: [[__m512; R]; V] = [[_mm512_setzero_ps(); R]; V];
        for q in 0..a.nq {
            let xq = a.x.add(*a.offs.add(q));
            let wq = a.w.add(q * V * LANES);
            let mut wv: [__m512; V] = [_mm512_setzero_ps(); V];
            for (v, w) in wv.iter_mut().enumerate() {
                *w = _mm512_loadu_ps(wq.add(v * LANES));
            }
            for r in 0..R {
                let xb = _mm512_set1_ps(*xq.add(px[r]));
                for v in 0..V {
                    acc[v][r] = _mm512_fmadd_ps(wv[v], xb, acc[v][r]);
                }
            }
        }
        for (v, row) in acc.iter().enumerate() {
            for (r, c) in row.iter().enumerate() {
                let at = a.out.add(r * a.ops + v * LANES);
                let s = if a.first {
                    *c
                } else {
                    _mm512_add_ps(_mm512_loadu_ps(at), *c)
                };
                _mm512_storeu_ps(at, s);
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn tile<const V: usize, const R: usize>(_: &Tile) {
    unreachable!("conv_channels checks AVX-512F first")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::{phases_of, tap_offsets};

    fn data(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            })
            .collect()
    }

    /// The scalar model of an output: a chain of fused multiply-adds from zero over each block
    /// of `KB` taps in order, the blocks' sums added in order.
    fn chains(kd: usize, w: impl Fn(usize) -> f32, x: impl Fn(usize) -> f32) -> f32 {
        (0..kd)
            .step_by(KB)
            .map(|q0| (q0..(q0 + KB).min(kd)).fold(0.0f32, |s, q| w(q).mul_add(x(q), s)))
            .reduce(|a, b| a + b)
            .unwrap_or(0.0)
    }

    /// Every output is a sum of chains of fused multiply-adds over blocks of taps, then added
    /// to the destination: the kernels give the scalar model's bits, for both
    /// orientations of the weights, both layouts of the output, with and without
    /// accumulating — on shapes with a partial last block of channels (1–3 vectors), channel
    /// counts that are not whole vectors, several blocks of taps, pixel runs over several
    /// rows and several runs per image, and non-square maps.
    #[test]
    fn kernels_give_the_scalar_chains_bits() {
        if !available() {
            eprintln!("skipped: no AVX-512F on this CPU (the kernels do not run here)");
            return;
        }
        // (input channels, output channels, k, pad, h, w, batch)
        for &(ci, co, k, p, h, w, batch) in &[
            (64, 64, 3, 1, 8, 8, 2),
            (20, 17, 5, 2, 9, 13, 1),
            (9, 100, 3, 0, 12, 12, 3),
            (33, 48, 1, 0, 8, 10, 2),
            (70, 130, 3, 1, 11, 8, 1),
            (3, 5, 7, 3, 8, 8, 1),
        ] {
            let (ho, wo) = (h + 2 * p + 1 - k, w + 2 * p + 1 - k);
            let wt = data(co * ci * k * k, 1);
            let x = data(ci * batch * h * w, 2);
            let dy = data(co * batch * ho * wo, 3);
            for layout in [Planes::ChannelMajor, Planes::BatchMajor] {
                for accumulate in [false, true] {
                    // Forward: `co` outputs of `ci·k²` taps over x padded by p.
                    let mut pad = Vec::new();
                    let (hp, wp) =
                        phases_of((&x, layout), (ci, batch), (h, w), (p, p), 1, &mut pad);
                    let offs = tap_offsets(ci, (k, 1, 1), hp * wp, wp);
                    let wr = Weights::Rows { w: &wt, co };
                    let mut packed = vec![0.0; wr.packed_len()];
                    pack(wr, &mut packed);
                    let init = data(co * batch * ho * wo, 4);
                    let mut y = init.clone();
                    let input = (&pad[..], ci * hp * wp, wp);
                    let out = (&mut y[..], layout);
                    conv_channels(&packed, co, &offs, batch, input, (ho, wo), out, accumulate);
                    let kd = ci * k * k;
                    for o in 0..co {
                        for b in 0..batch {
                            for oh in 0..ho {
                                for ow in 0..wo {
                                    let at = oh * wp + ow + b * ci * hp * wp;
                                    let s = chains(kd, |q| wt[o * kd + q], |q| pad[at + offs[q]]);
                                    let i = layout.plane(o, b, co, batch) * ho * wo + oh * wo + ow;
                                    let e = if accumulate { init[i] + s } else { s };
                                    assert_eq!(
                                        y[i].to_bits(),
                                        e.to_bits(),
                                        "forward {ci} {co} {k} {h}×{w} {layout:?} o {o} b {b} ({oh}, {ow})"
                                    );
                                }
                            }
                        }
                    }
                    // Input gradient: `ci` outputs of `co·k²` taps over dy padded by k − 1 − p,
                    // the kernel flipped and its channels exchanged.
                    let q = k - 1 - p;
                    let (hp, wp) =
                        phases_of((&dy, layout), (co, batch), (ho, wo), (q, q), 1, &mut pad);
                    let offs = tap_offsets(co, (k, 1, 1), hp * wp, wp);
                    let we = Weights::Exchanged { w: &wt, co, ci, k };
                    let mut packed = vec![0.0; we.packed_len()];
                    pack(we, &mut packed);
                    let init = data(ci * batch * h * w, 5);
                    let mut dx = init.clone();
                    let input = (&pad[..], co * hp * wp, wp);
                    let out = (&mut dx[..], layout);
                    conv_channels(&packed, ci, &offs, batch, input, (h, w), out, accumulate);
                    let mut flipped = Vec::new();
                    crate::conv::flip_transposed(&wt, co, ci, k, &mut flipped);
                    let kd = co * k * k;
                    for c in 0..ci {
                        for b in 0..batch {
                            for ih in 0..h {
                                for iw in 0..w {
                                    let at = ih * wp + iw + b * co * hp * wp;
                                    let s =
                                        chains(kd, |t| flipped[c * kd + t], |t| pad[at + offs[t]]);
                                    let i = layout.plane(c, b, ci, batch) * h * w + ih * w + iw;
                                    let e = if accumulate { init[i] + s } else { s };
                                    assert_eq!(
                                        dx[i].to_bits(),
                                        e.to_bits(),
                                        "input gradient {ci} {co} {k} {h}×{w} {layout:?} c {c} b {b} ({ih}, {iw})"
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
