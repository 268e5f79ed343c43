//! Direct bf16 convolutions on AMX tiles ("implicit GEMM") for stride-1 and stride-2
//! layers: the engine's bf16 forward, input gradient and weight gradient wherever
//! [`Geo::of`] accepts the layer (BLT_net_64's laterals, bottom-ups and top-downs).
//!
//! The im2col route ([`crate::bf16::gemm_bf16_unfolded`]) packs every 1 KiB tile of the
//! unfolded input with AVX-512 before `TDPBF16PS` reads it — at BLT_net_64's shapes as much
//! work as the tile products. Here each operand is copied once per call, rounded to bf16, into
//! a layout from which every tile of every tap of the kernel is one strided `TILELOADD`:
//!
//! - **Forward** `y[o][p] = Σ_{c, tap} W[o][c][tap] · x[c][s·p + tap]`: the weights as
//!   `[tap][o][c]` (tile rows = 16 output channels × 32 input channels), the input as pairs
//!   of channels `[variant][image][c/2][row][col]` (the "VNNI" pairs `TDPBF16PS` reads: tile
//!   rows = 16 pairs of channels × 16 output pixels of one tap). A variant is a copy of the
//!   input whose element (r, j) is input pixel (s·r + py − pad, s·j + px − pad) (zero
//!   outside the map): `s²` variants (one per phase (py, px) of the stride, the padding
//!   inside the rows) where 16 output pixels never leave a row (rows a multiple of 16 wide),
//!   else `s·k` (px = every column of the kernel, rows exactly the output's width — then 16
//!   consecutive output pixels of an image are 16 consecutive pairs even on maps 8 pixels
//!   wide). The accumulators are 16 output channels × 16 pixels, stored straight into the
//!   channel-major output.
//! - **Input gradient** `dx[c][Y] = Σ W[o][c][tap] · dy[o][y]` over `Y = s·y + tap − pad`:
//!   for each phase `Y mod s` of the output, a stride-1 forward of `dy` with the taps of
//!   that phase, flipped, and the channels exchanged (for stride 1 the one phase is the
//!   whole map: the forward of `dy` with the kernel flipped); for stride 2 the phases' maps
//!   are then interleaved into `dx`.
//! - **Weight gradient** `dW[o][c][tap] = Σ_p dy[o][p] · x[c][s·p + tap]` (one sum over
//!   images and pixels): the input as `s·k` plain variants `[variant][image][c][row][col]`
//!   (tile rows = 16 channels × 32 pixels of one tap), `dy` as pairs of pixels `[p/2][o]`
//!   (tile rows = 16 pairs of pixels × 16 output channels), accumulators 16 input × 16
//!   output channels per tap, carried in memory between chunks of images.
//!
//! Arithmetic: the operands rounded to bf16 (nearest even, AVX512-BF16's conversions: as
//! [`crate::bf16::bf16_bits`] except that float32 subnormals become zero, which
//! `TDPBF16PS` would take as zero anyway), every product exact in float32, float32 sums —
//! [`crate::bf16`]'s definition, in another order. Each output element is summed by one task
//! in an order fixed by the shapes (not by the number of threads).

// The geometry below is used by the x86-64 kernels only (`Geo::of` is `None` elsewhere).
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
#![allow(unsafe_code)]

#[cfg(target_arch = "x86_64")]
pub(crate) use imp::{Kernel, backward_data, begin, block, end, forward, weight_grad};
#[cfg(not(target_arch = "x86_64"))]
pub(crate) use portable::{begin, block, end};

/// The block routines' signatures elsewhere, for `bf16`'s product that calls them only behind
/// [`unit`] (always `None` there).
#[cfg(not(target_arch = "x86_64"))]
mod portable {
    use super::Unit;

    /// # Safety
    /// Never called ([`super::unit`] is `None` on this architecture).
    pub(crate) unsafe fn begin(_: Unit) {
        crate::simd::x86_only()
    }

    /// # Safety
    /// Never called ([`super::unit`] is `None` on this architecture).
    pub(crate) unsafe fn end(_: Unit) {
        crate::simd::x86_only()
    }

    /// # Safety
    /// Never called ([`super::unit`] is `None` on this architecture).
    pub(crate) unsafe fn block(
        _: Unit,
        _: (*mut f32, usize, bool),
        _: &[[*const u8; 4]],
        _: (usize, usize, usize, usize),
        _: usize,
    ) {
        crate::simd::x86_only()
    }
}

/// Weights packed for the kernels by (address, length, kind) of the float32 slice (kind 0:
/// the forward's; 1 + q: the input gradient's phase q): the bf16 values and the offset of
/// their 64-byte aligned start.
pub(crate) type PackedWeights =
    std::collections::BTreeMap<(usize, usize, usize), (Vec<u16>, usize)>;

use crate::conv::Conv;

/// The taps `0..k2` in order (a kernel as stored).
pub(crate) fn all_taps(k2: usize) -> Vec<usize> {
    (0..k2).collect()
}

/// Channels per block of accumulators (two tiles).
const BLOCK: usize = 32;

/// A convolution as these kernels run it: input `[ci][batch][hi][wi]`, output
/// `[co][batch][ho][wo]`, a `ky × kx` kernel at stride `stride`, output pixel (y, x) reading
/// input pixel (s·y + ty − pad_y, s·x + tx − pad_x) at tap (ty, tx) (zero outside the map).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Geo {
    pub ci: usize,
    pub co: usize,
    pub ky: usize,
    pub kx: usize,
    pub stride: usize,
    pub pad_y: isize,
    pub pad_x: isize,
    pub batch: usize,
    pub hi: usize,
    pub wi: usize,
    pub ho: usize,
    pub wo: usize,
}

/// AVX-512F/BW/VL and AVX512-BF16, which the layouts use (every CPU with AMX-BF16 has them).
fn simd_present() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vl")
            && is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// What computes the tile products of these kernels: AMX's `TDPBF16PS` on tile registers,
/// or AVX512-BF16's `VDPBF16PS` on vector registers (CPUs with AVX512-BF16 but no AMX: AMD
/// Zen 4 and 5, Intel Cooper Lake), on the same operand layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// AMX tiles (`TDPBF16PS`).
    Amx,
    /// AVX512-BF16 dot products (`VDPBF16PS`) on vector registers.
    Dot,
}

impl Unit {
    /// How `ventral bench` names it: `amx`, `avx512bf16`.
    pub fn name(self) -> &'static str {
        match self {
            Unit::Amx => "amx",
            Unit::Dot => "avx512bf16",
        }
    }
}

static UNIT: std::sync::OnceLock<Option<Unit>> = std::sync::OnceLock::new();

/// The unit of this CPU and process: AMX where [`crate::bf16::amx_available`], else
/// AVX512-BF16 dot products where the CPU has them, AVX-512 is allowed
/// ([`crate::simd::avx512`]) and `VENTRAL_NO_DPBF16` is unset or `0`; `None` elsewhere
/// (bf16 then runs the float32 kernels on rounded operands).
pub(crate) fn unit() -> Option<Unit> {
    #[cfg(test)]
    if let Some(u) = UNIT_OVERRIDE.get() {
        return u;
    }
    *UNIT.get_or_init(|| {
        if crate::bf16::amx_available() {
            return Some(Unit::Amx);
        }
        (!crate::bf16::switched_off("VENTRAL_NO_DPBF16") && dot_present()).then_some(Unit::Dot)
    })
}

/// AVX512-BF16 dot products can run: the CPU has them and AVX-512 is allowed.
fn dot_present() -> bool {
    crate::simd::avx512() && simd_present()
}

/// What the tests compare: the tiles on each unit this CPU and process can run (both where
/// AMX is available: its CPUs have AVX512-BF16 too), then `None`, the float32 kernels on
/// rounded operands.
#[cfg(test)]
pub(crate) fn unit_paths() -> Vec<Option<Unit>> {
    let amx = crate::bf16::amx_available().then_some(Unit::Amx);
    let dot = dot_present().then_some(Unit::Dot);
    [amx, dot]
        .into_iter()
        .flatten()
        .map(Some)
        .chain([None])
        .collect()
}

#[cfg(test)]
thread_local! {
    /// [`unit`] on this thread, set by [`with_unit`] (the kernels read it on the calling
    /// thread and hand it to their tasks).
    static UNIT_OVERRIDE: std::cell::Cell<Option<Option<Unit>>> =
        const { std::cell::Cell::new(None) };
}

/// Runs `f` with [`unit`] answering `u` on this thread (a test of each unit, and of the
/// float32 kernels on rounded operands with `None`, on the same CPU).
#[cfg(test)]
pub(crate) fn with_unit<R>(u: Option<Unit>, f: impl FnOnce() -> R) -> R {
    let before = UNIT_OVERRIDE.replace(Some(u));
    let r = f();
    UNIT_OVERRIDE.set(before);
    r
}

/// One phase of an input gradient: the stride-1 convolution of `dy` that computes the
/// pixels `(s·m + ry, s·n + rx)` of `dx` (phase `s·ry + rx` of [`Geo::phases`]), and its
/// taps (flat indices into the original kernel, flipped; none where no tap reaches it).
#[derive(Debug, Clone)]
pub(crate) struct Phase {
    pub geo: Geo,
    pub taps: Vec<usize>,
}

impl Geo {
    /// `c` on `batch` images, where these kernels apply: AMX present, stride 1 or 2, and
    /// output maps of a multiple of 32 pixels (every block of 32 pixels inside one image);
    /// padding equal on both ends (no [`Conv::pad_end`]).
    pub(crate) fn of(c: &Conv, batch: usize) -> Option<Self> {
        if c.pad_end != 0 {
            return None;
        }
        Geo {
            ci: c.ci,
            co: c.co,
            ky: c.k,
            kx: c.k,
            stride: c.stride,
            pad_y: c.pad as isize,
            pad_x: c.pad as isize,
            batch,
            hi: c.hi,
            wi: c.wi,
            ho: c.ho,
            wo: c.wo,
        }
        .valid()
    }

    fn valid(self) -> Option<Self> {
        let fits = simd_present()
            && self.ky > 0
            && self.kx > 0
            && (self.stride == 1 || self.stride == 2)
            && self.ci > 0
            && self.co > 0
            && self.batch > 0
            && self.hi > 0
            && self.wi > 0
            && self.wo > 0
            && (self.ho * self.wo).is_multiple_of(2 * 16);
        (fits && unit().is_some()).then_some(self)
    }

    /// The input gradient's phases, where these kernels apply to all of them (stride 2:
    /// maps of even sides, so that the phases' maps are equal).
    pub(crate) fn phases(&self) -> Option<Vec<Phase>> {
        let (s, k) = (self.stride, self.ky);
        if self.ky != self.kx
            || self.pad_y != self.pad_x
            || self.pad_y < 0
            || (s == 2 && !(self.hi.is_multiple_of(2) && self.wi.is_multiple_of(2)))
        {
            return None;
        }
        let pad = self.pad_y as usize;
        let axis = |r: usize| crate::conv::phase_axis(r, k, s, pad);
        let mut out = Vec::new();
        for ry in 0..s {
            for rx in 0..s {
                let ((ty0, ny, py), (tx0, nx, px)) = (axis(ry), axis(rx));
                let geo = Geo {
                    ci: self.co,
                    co: self.ci,
                    ky: ny.max(1),
                    kx: nx.max(1),
                    stride: 1,
                    pad_y: py,
                    pad_x: px,
                    batch: self.batch,
                    hi: self.ho,
                    wi: self.wo,
                    ho: self.hi / s,
                    wo: self.wi / s,
                };
                let mut taps = Vec::new();
                for ay in 0..ny {
                    for ax in 0..nx {
                        let (ty, tx) = (ty0 + s * (ny - 1 - ay), tx0 + s * (nx - 1 - ax));
                        taps.push(ty * k + tx);
                    }
                }
                out.push(Phase {
                    geo: geo.valid()?,
                    taps,
                });
            }
        }
        Some(out)
    }

    fn hw(&self) -> usize {
        self.ho * self.wo
    }

    fn taps(&self) -> usize {
        self.ky * self.kx
    }

    /// Rows of each image in the variants of the input: the output's rows plus the
    /// kernel's rows beyond the first (in strides).
    fn rows(&self) -> usize {
        self.ho + (self.ky - 1) / self.stride
    }
}

#[cfg(target_arch = "x86_64")]
mod imp {
    use std::arch::x86_64::*;
    use std::cell::Cell;

    use rayon::prelude::*;

    use super::{BLOCK, Geo, Unit};
    use crate::bf16::simd::transpose16;
    use crate::bf16::tiles::{c_load, c_store, config, release, steps};

    /// Prepares this thread for [`block`]s on `unit` (AMX: loads the tile configuration).
    ///
    /// # Safety
    /// AMX available where `unit` is [`Unit::Amx`].
    pub(crate) unsafe fn begin(unit: Unit) {
        if unit == Unit::Amx {
            // SAFETY: the caller's.
            unsafe { config() };
        }
    }

    /// Ends [`begin`] (AMX: releases the tiles).
    ///
    /// # Safety
    /// [`begin`] ran on this thread.
    pub(crate) unsafe fn end(unit: Unit) {
        if unit == Unit::Amx {
            // SAFETY: the caller's.
            unsafe { release() };
        }
    }

    /// One 32 × 32 block of float32 accumulators at `c` (rows `ldc` bytes apart; zeroed
    /// instead of loaded where `zero`) plus, for each `[a0, a1, b0, b1]` of `ops` in order,
    /// `n` steps of tile products (as [`steps`]: rows 0..16 from `a0`, 16..32 from `a1`,
    /// `sa` bytes apart, 32 bf16 per row and step, `da` bytes per step; columns 0..16 from
    /// `b0`, 16..32 from `b1`, 16 rows of pairs `sb` bytes apart, `db` bytes per step),
    /// stored back to `c`.
    ///
    /// # Safety
    /// [`begin`] ran on this thread for `unit`; every tile of every op lies inside its
    /// operand; `c` addresses 32 rows of 32 floats `ldc` bytes apart; `n ≥ 1`.
    pub(crate) unsafe fn block(
        unit: Unit,
        (c, ldc, zero): (*mut f32, usize, bool),
        ops: &[[*const u8; 4]],
        st: (usize, usize, usize, usize),
        n: usize,
    ) {
        let (sa, da, sb, db) = st;
        // SAFETY: the caller's.
        unsafe {
            match unit {
                Unit::Amx => {
                    c_load(c, ldc, zero);
                    for &[a0, a1, b0, b1] in ops {
                        steps((a0, a1, sa, da), (b0, b1, sb, db), n);
                    }
                    c_store(c, ldc);
                }
                Unit::Dot => {
                    // Groups of 8 rows (12 + 12 + 8 measured the same, conv_time BF16=1).
                    for r0 in (0..BLOCK).step_by(8) {
                        dot::rows::<8>((c, ldc, zero), r0, ops, st, n);
                    }
                }
            }
        }
    }

    /// [`block`] on AVX512-BF16 dot products: `VDPBF16PS` multiplies the pairs of bf16 in
    /// each 32-bit lane exactly and adds both products to the lane's float32 sum (the pair
    /// layouts of the tiles are the instruction's), rows of the block in groups held in
    /// vector registers through all the ops.
    mod dot {
        use std::arch::x86_64::*;

        /// Rows `r0..r0 + R` of [`super::block`]: `2R` accumulators, two vectors of `b` and
        /// one broadcast pair of `a` per pair of the sum (`2R + 3 ≤ 32` registers).
        ///
        /// # Safety
        /// As [`super::block`]; the CPU has AVX-512F and AVX512-BF16; `r0 + R ≤ 32`.
        #[target_feature(enable = "avx512f,avx512bf16")]
        pub(super) unsafe fn rows<const R: usize>(
            (c, ldc, zero): (*mut f32, usize, bool),
            r0: usize,
            ops: &[[*const u8; 4]],
            (sa, da, sb, db): (usize, usize, usize, usize),
            n: usize,
        ) {
            // SAFETY: the caller's: rows r0..r0 + R of `c` and every tile read are inside
            // their buffers.
            unsafe {
                let mut acc = [[_mm512_setzero_ps(); 2]; R];
                if !zero {
                    for (r, a) in acc.iter_mut().enumerate() {
                        let p = c.byte_add((r0 + r) * ldc);
                        *a = [_mm512_loadu_ps(p), _mm512_loadu_ps(p.add(16))];
                    }
                }
                for &[a0, a1, b0, b1] in ops {
                    let ap: [*const u8; R] = std::array::from_fn(|r| {
                        let i = r0 + r;
                        if i < 16 {
                            a0.add(i * sa)
                        } else {
                            a1.add((i - 16) * sa)
                        }
                    });
                    for s in 0..n {
                        let (mut p0, mut p1) = (b0.add(s * db), b1.add(s * db));
                        let ao = s * da;
                        for kp in 0..16 {
                            let v0: __m512bh = std::mem::transmute(_mm512_loadu_si512(p0.cast()));
                            let v1: __m512bh = std::mem::transmute(_mm512_loadu_si512(p1.cast()));
                            for (r, a) in acc.iter_mut().enumerate() {
                                let pair = ap[r].add(ao + 4 * kp).cast::<i32>().read_unaligned();
                                let w: __m512bh = std::mem::transmute(_mm512_set1_epi32(pair));
                                a[0] = _mm512_dpbf16_ps(a[0], w, v0);
                                a[1] = _mm512_dpbf16_ps(a[1], w, v1);
                            }
                            p0 = p0.add(sb);
                            p1 = p1.add(sb);
                        }
                    }
                }
                for (r, a) in acc.iter().enumerate() {
                    let p = c.byte_add((r0 + r) * ldc);
                    _mm512_storeu_ps(p, a[0]);
                    _mm512_storeu_ps(p.add(16), a[1]);
                }
            }
        }
    }

    thread_local! {
        static WEIGHTS: Cell<Vec<u16>> = const { Cell::new(Vec::new()) };
        static INPUT: Cell<Vec<u32>> = const { Cell::new(Vec::new()) };
        static DY: Cell<Vec<u32>> = const { Cell::new(Vec::new()) };
        static ACC: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
    }

    /// `key`'s buffer with at least `n` elements and a 64-byte aligned start at the returned
    /// offset (tile rows of whole cache lines).
    fn take<T: Copy + Default>(
        key: &'static std::thread::LocalKey<Cell<Vec<T>>>,
        n: usize,
    ) -> (Vec<T>, usize) {
        let mut v = key.take();
        let extra = 64 / size_of::<T>();
        if v.len() < n + extra {
            v.resize(n + extra, T::default());
        }
        let off = v.as_ptr().align_offset(64).min(extra);
        (v, off)
    }

    /// A raw pointer shared by the tasks of one call (each writes disjoint parts, or reads).
    #[derive(Clone, Copy)]
    struct Ptr<T>(*mut T);
    // SAFETY: see each use — the tasks of a call touch disjoint elements while the call holds
    // the buffer mutably, or only read.
    unsafe impl<T> Send for Ptr<T> {}
    unsafe impl<T> Sync for Ptr<T> {}

    impl<T> Ptr<T> {
        /// The pointer (a closure calling this captures the whole `Ptr`, which is `Send`).
        fn get(self) -> *mut T {
            self.0
        }
    }

    /// The weights as `[tap][row][col]` bf16 (`rows` = `g.co`, `cols` = `g.ci`, both padded
    /// to [`BLOCK`] with zeros): packed tap t is the original kernel's flat tap `taps[t]` of
    /// `w` (`k2` taps per channel pair), stored `[g.co][g.ci][k2]` or, `exchanged`,
    /// `[g.ci][g.co][k2]` (an input gradient's kernel: its channels exchanged).
    fn pack_weights(
        w: &[f32],
        g: &Geo,
        (taps, k2, exchanged): (&[usize], usize, bool),
        out: &mut [u16],
    ) {
        let (rp, cp) = (pad32(g.co), pad32(g.ci));
        let (rs, cs) = if exchanged {
            (k2, g.co * k2)
        } else {
            (g.ci * k2, k2)
        };
        assert!(
            w.len() >= g.co * g.ci * k2
                && out.len() >= taps.len() * rp * cp
                && taps.iter().all(|&t| t < k2)
        );
        let out = Ptr(out.as_mut_ptr());
        (0..rp).into_par_iter().for_each(|r| {
            let out = out.get();
            for (t, &tap) in taps.iter().enumerate() {
                // SAFETY: AVX-512F/BF16 (`Geo::valid`); the gathered indices lie inside `w`
                // (r < co, c < ci, tap < k2, checked length) for the unmasked lanes; the
                // `cp` values written at row (t, r) lie inside `out` (checked length) and
                // belong to row `r`, which this task alone writes.
                unsafe {
                    let dst = out.add((t * rp + r) * cp);
                    pack_row(w, (r < g.co, g.ci, cp), (r * rs + tap, cs), dst);
                }
            }
        });
    }

    /// `cp` bf16 values `w[base + c·cs]` for `c < n` (zeros beyond, and everywhere if
    /// `!live`) at `dst`.
    ///
    /// # Safety
    /// AVX-512F/BF16; the indices for `c < n` lie inside `w` when `live`; `dst` holds `cp`
    /// values, a multiple of 16.
    #[target_feature(enable = "avx512f,avx512bf16")]
    unsafe fn pack_row(
        w: &[f32],
        (live, n, cp): (bool, usize, usize),
        (base, cs): (usize, usize),
        dst: *mut u16,
    ) {
        for c0 in (0..cp).step_by(16) {
            // SAFETY: the contract.
            unsafe {
                let v = gather(w, live, c0, n, base, cs);
                let h = std::mem::transmute::<__m256bh, __m256i>(_mm512_cvtneps_pbh(v));
                _mm256_storeu_si256(dst.add(c0).cast(), h);
            }
        }
    }

    /// `w[base + (c0 + l)·cs]` for lanes l with `c0 + l < n` (zero elsewhere, or if `!live`).
    #[target_feature(enable = "avx512f")]
    unsafe fn gather(w: &[f32], live: bool, c0: usize, n: usize, base: usize, cs: usize) -> __m512 {
        if !live || c0 >= n {
            return _mm512_setzero_ps();
        }
        let lanes = (n - c0).min(16);
        let mask: __mmask16 = if lanes == 16 {
            0xffff
        } else {
            (1u16 << lanes) - 1
        };
        let idx = _mm512_mullo_epi32(
            _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
            _mm512_set1_epi32(cs as i32),
        );
        // SAFETY: the caller's: lanes below `lanes` address `w` inside its length.
        unsafe {
            let p = w.as_ptr().add(base + c0 * cs);
            _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), mask, idx, p.cast())
        }
    }

    /// Items of `n` elements per parallel task of a layout pass (about 32 K elements).
    fn min_len(n: usize) -> usize {
        (32 << 10) / n.max(1) + 1
    }

    fn pad32(n: usize) -> usize {
        n.div_ceil(BLOCK) * BLOCK
    }

    /// How the variants of an input are laid out (see the module docs).
    #[derive(Clone, Copy)]
    struct Layout {
        /// `s²` variants (one per phase, the padding inside the rows), else `s·kx`.
        per_phase: bool,
        variants: usize,
        /// Elements per row of a variant.
        width: usize,
        /// Elements per channel (or pair) plane of one image: `rows × width`.
        plane: usize,
        /// Channel rows (or pairs) per image.
        chans: usize,
    }

    impl Layout {
        fn new(g: &Geo, chans: usize, per_phase: bool) -> Self {
            let s = g.stride;
            let (variants, width) = if per_phase {
                (s * s, g.wo + (g.kx - 1) / s)
            } else {
                (s * g.kx, g.wo)
            };
            Layout {
                per_phase,
                variants,
                width,
                plane: g.rows() * width,
                chans,
            }
        }

        fn len(&self, batch: usize) -> usize {
            self.variants * batch * self.chans * self.plane
        }

        /// Element of output pixel `p` of image `b`, channel (pair) 0, at tap (ty, tx).
        fn at(&self, g: &Geo, b: usize, p: usize, (ty, tx): (usize, usize)) -> usize {
            let s = g.stride;
            let (v, dx) = if self.per_phase {
                ((ty % s) * s + tx % s, tx / s)
            } else {
                ((ty % s) * g.kx + tx, 0)
            };
            ((v * g.batch + b) * self.chans) * self.plane
                + (p / g.wo + ty / s) * self.width
                + p % g.wo
                + dx
        }

        /// The input pixel (row, column) held by element (r, j) of variant `v` (may lie
        /// outside the map).
        fn source(&self, g: &Geo, v: usize, (r, j): (usize, usize)) -> (isize, isize) {
            let s = g.stride;
            let (py, px) = if self.per_phase {
                (v / s, v % s)
            } else {
                (v / g.kx, v % g.kx)
            };
            (
                (s * r + py) as isize - g.pad_y,
                (s * j + px) as isize - g.pad_x,
            )
        }

        /// The input row held by row `r` of variant `v`, where it lies inside the map.
        fn input_row(&self, g: &Geo, v: usize, r: usize) -> Option<usize> {
            let y = self.source(g, v, (r, 0)).0;
            (y >= 0 && y < g.hi as isize).then_some(y as usize)
        }
    }

    /// A run of up to 16 columns of a variant's row: columns `j0..`, the input columns from
    /// `s0` on (every `stride`-th), `load`/`load2` the floats of the one or two vectors read
    /// that lie inside the input row, `store` the lanes inside the variant's row.
    #[derive(Clone, Copy)]
    struct Seg {
        j0: usize,
        s0: isize,
        load: __mmask16,
        load2: __mmask16,
        store: __mmask16,
    }

    /// The runs of variant `v`'s rows.
    fn segments(g: &Geo, lay: &Layout, v: usize) -> Vec<Seg> {
        let s = g.stride;
        (0..lay.width)
            .step_by(16)
            .map(|j0| {
                let lanes = (lay.width - j0).min(16);
                let s0 = lay.source(g, v, (0, j0)).1;
                let mut load: u32 = 0;
                for l in 0..lanes {
                    let c = s0 + (s * l) as isize;
                    if c >= 0 && c < g.wi as isize {
                        load |= 1 << (s * l);
                    }
                }
                Seg {
                    j0,
                    s0,
                    load: (load & 0xffff) as __mmask16,
                    load2: (load >> 16) as __mmask16,
                    store: ((1u32 << lanes) - 1) as __mmask16,
                }
            })
            .collect()
    }

    /// The even floats of two vectors: lanes 0..8 from `a`, 8..16 from `b`.
    static EVEN_IDX: [i32; 16] = [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30];

    /// The lanes of `seg` from input row `src` (zero outside the row).
    ///
    /// # Safety
    /// AVX-512F; `src` addresses a row of `wi` floats (`seg` built for it at this stride).
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn load_seg(src: *const f32, seg: &Seg, stride: usize) -> __m512 {
        // SAFETY: only the floats of `seg.load` / `seg.load2` (inside the row) are read:
        // masked lanes are not accessed (AVX-512 fault suppression), so a vector's address
        // may lie outside the row — computed with `wrapping_offset`.
        unsafe {
            let a = _mm512_maskz_loadu_ps(seg.load, src.wrapping_offset(seg.s0));
            if stride == 1 {
                return a;
            }
            let b = _mm512_maskz_loadu_ps(seg.load2, src.wrapping_offset(seg.s0 + 16));
            _mm512_permutex2var_ps(a, _mm512_loadu_si512(EVEN_IDX.as_ptr().cast()), b)
        }
    }

    /// Interleaves the bf16 halves: lane 2i ← i, lane 2i + 1 ← 16 + i.
    static PAIR_IDX: [u16; 32] = [
        0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23, 8, 24, 9, 25, 10, 26, 11, 27, 12,
        28, 13, 29, 14, 30, 15, 31,
    ];

    /// One plane of [`layout_pairs`]: channels `even` and `odd` (rows of `wi` floats, `None`:
    /// zeros) of one image into the rows of variant `v` of `lay` at `out` (zeros where a row
    /// lies outside the map).
    ///
    /// # Safety
    /// AVX-512F/BW/BF16; `even`/`odd` address `hi` rows of `wi` floats; `out` addresses
    /// a plane of `lay` (its rows × width values); `segs` built for variant `v`.
    #[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
    unsafe fn pairs_plane(
        (even, odd): (Option<*const f32>, Option<*const f32>),
        (g, lay, v, segs): (&Geo, &Layout, usize, &[Seg]),
        out: *mut u32,
    ) {
        // SAFETY: the contract: every row read lies inside the channels, every value written
        // inside `out`.
        unsafe {
            let idx = _mm512_loadu_si512(PAIR_IDX.as_ptr().cast());
            for yp in 0..g.rows() {
                let row = out.add(yp * lay.width);
                let Some((e, y)) = even.zip(lay.input_row(g, v, yp)) else {
                    std::ptr::write_bytes(row, 0, lay.width);
                    continue;
                };
                let e = e.add(y * g.wi);
                let o = odd.map(|o| o.add(y * g.wi));
                for seg in segs {
                    let ev = load_seg(e, seg, g.stride);
                    let ov = match o {
                        Some(o) => load_seg(o, seg, g.stride),
                        None => _mm512_setzero_ps(),
                    };
                    // bf16 lanes 0..16 = `ev`, 16..32 = `ov` (round to nearest even), then
                    // interleaved into 16 pairs.
                    let h = std::mem::transmute::<__m512bh, __m512i>(_mm512_cvtne2ps_pbh(ov, ev));
                    let v = _mm512_permutexvar_epi16(idx, h);
                    _mm512_mask_storeu_epi32(row.add(seg.j0).cast(), seg.store, v);
                }
            }
        }
    }

    /// `x` (`[ci][batch][hi][wi]`) rounded to bf16 as pairs of channels in `lay` (zeros in the
    /// padding and the missing channels).
    fn layout_pairs(g: &Geo, x: &[f32], lay: Layout, out: &mut [u32]) {
        assert!(x.len() >= g.ci * g.batch * g.hi * g.wi);
        each_plane(g, lay, out, |plane, (c2, b), dims| {
            let chan = |c: usize| (c < g.ci).then(|| x[(c * g.batch + b) * g.hi * g.wi..].as_ptr());
            // SAFETY: AVX-512F/BW/BF16 (`Geo::valid`); the channels' `hi × wi` maps of image
            // b lie inside `x` (checked length); `plane` holds `rows × width` values.
            unsafe { pairs_plane((chan(2 * c2), chan(2 * c2 + 1)), dims, plane.as_mut_ptr()) };
        });
    }

    /// `f(plane, (channel or pair, image), (g, lay, variant, runs))` for every plane of `out`
    /// laid out as `lay`, in parallel: each task makes every variant of its (channel, image),
    /// so that the input plane they all read comes from memory once, not once per variant
    /// (`perf`: the weight gradient's plain layout waited on its loads, 12–15 % of the
    /// call on BLT_net_64's V2 lateral and top-down; see `docs/performance.md`, session 63).
    fn each_plane<T: Copy + Send>(
        g: &Geo,
        lay: Layout,
        out: &mut [T],
        f: impl Fn(&mut [T], (usize, usize), (&Geo, &Layout, usize, &[Seg])) + Sync,
    ) {
        let len = lay.len(g.batch);
        assert!(out.len() >= len);
        let segs: Vec<Vec<Seg>> = (0..lay.variants).map(|v| segments(g, &lay, v)).collect();
        let per_variant = lay.chans * g.batch;
        let op = Ptr(out.as_mut_ptr());
        let items = (0..per_variant).into_par_iter();
        let items = items.with_min_len(min_len(lay.plane * lay.variants));
        items.for_each(|i| {
            let (c, b) = (i % lay.chans, i / lay.chans);
            for (v, segs) in segs.iter().enumerate() {
                // SAFETY: plane `v·per_variant + i` of `out` (`len` elements checked above):
                // each (i, v) is one task's alone, and `out` is borrowed mutably meanwhile.
                let plane = unsafe {
                    let at = (v * per_variant + i) * lay.plane;
                    std::slice::from_raw_parts_mut(op.get().add(at), lay.plane)
                };
                f(plane, (c, b), (g, &lay, v, segs.as_slice()));
            }
        });
    }

    /// One plane of [`layout_plain`] (as [`pairs_plane`], one channel, bf16 values).
    ///
    /// # Safety
    /// As [`pairs_plane`].
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16")]
    unsafe fn plain_plane(
        src: Option<*const f32>,
        (g, lay, v, segs): (&Geo, &Layout, usize, &[Seg]),
        out: *mut u16,
    ) {
        // SAFETY: as `pairs_plane`.
        unsafe {
            for yp in 0..g.rows() {
                let row = out.add(yp * lay.width);
                let Some((s, y)) = src.zip(lay.input_row(g, v, yp)) else {
                    std::ptr::write_bytes(row, 0, lay.width);
                    continue;
                };
                let s = s.add(y * g.wi);
                for seg in segs {
                    let v = load_seg(s, seg, g.stride);
                    let h = std::mem::transmute::<__m256bh, __m256i>(_mm512_cvtneps_pbh(v));
                    _mm256_mask_storeu_epi16(row.add(seg.j0).cast(), seg.store, h);
                }
            }
        }
    }

    /// `x` rounded to bf16 as plain variants `[variant][image][c][row][col]` (`lay`,
    /// channels padded with zeros).
    fn layout_plain(g: &Geo, x: &[f32], lay: Layout, out: &mut [u16]) {
        assert!(x.len() >= g.ci * g.batch * g.hi * g.wi);
        each_plane(g, lay, out, |plane, (c, b), dims| {
            let src = (c < g.ci).then(|| x[(c * g.batch + b) * g.hi * g.wi..].as_ptr());
            // SAFETY: as in `layout_pairs`.
            unsafe { plain_plane(src, dims, plane.as_mut_ptr()) };
        });
    }

    /// 16 rows of `dy` pairs (32 pixels from `p0`) × the 32 channels from `o0`, into `rows`
    /// (32 pairs per row).
    ///
    /// # Safety
    /// AVX-512F/BF16; `dy` holds `co` rows of `npix` floats, `p0 + 32 ≤ npix`; `rows` holds
    /// `16 × 32` values.
    #[target_feature(enable = "avx512f,avx512bf16")]
    unsafe fn dy_block(
        dy: *const f32,
        (co, npix): (usize, usize),
        (p0, o0): (usize, usize),
        rows: *mut u32,
    ) {
        // SAFETY: the contract.
        unsafe {
            for half in [0, 16] {
                let mut cols = [_mm512_setzero_si512(); 16];
                let live = co.saturating_sub(o0 + half);
                for (j, v) in cols.iter_mut().enumerate().take(live) {
                    let p = dy.add((o0 + half + j) * npix + p0);
                    // 32 pixels in order = 16 pairs of neighbours.
                    *v = std::mem::transmute::<__m512bh, __m512i>(_mm512_cvtne2ps_pbh(
                        _mm512_loadu_ps(p.add(16)),
                        _mm512_loadu_ps(p),
                    ));
                }
                for (i, r) in transpose16(&cols).iter().enumerate() {
                    _mm512_storeu_si512(rows.add(i * BLOCK + half).cast(), *r);
                }
            }
        }
    }

    /// `dy` (`[co][npix]`) rounded to bf16 as pairs of pixels per block of 32 channels,
    /// `[op/32][npix/2][32]` (`op` = `co` padded to [`BLOCK`], zeros beyond `co`): a tile of
    /// 16 pairs × 16 channels is 16 rows 128 bytes apart, and the next 16 pairs follow it.
    fn layout_dy(dy: &[f32], co: usize, npix: usize, op: usize, out: &mut [u32]) {
        assert!(dy.len() >= co * npix && npix.is_multiple_of(32) && out.len() >= npix / 2 * op);
        let out = &mut out[..npix / 2 * op];
        let per = npix / 32;
        // 16 pairs of pixels (32 pixels) × 32 channels per item.
        let blocks = out.par_chunks_mut(16 * BLOCK).enumerate();
        blocks
            .with_min_len(min_len(16 * BLOCK))
            .for_each(|(i, rows)| {
                let (ob, blk) = (i / per, i % per);
                // SAFETY: AVX-512F/BF16 (`Geo::valid`); 32 pixels from blk·32 < npix of every
                // channel below `co` lie inside `dy` (checked length); `rows` holds 16 × 32.
                unsafe {
                    let at = (blk * 32, ob * BLOCK);
                    dy_block(dy.as_ptr(), (co, npix), at, rows.as_mut_ptr())
                };
            });
    }

    /// Weights per group of output-channel blocks that one task keeps in L2 (at most; the
    /// groups are then made equal and the tasks a multiple of the threads by
    /// [`crate::balanced_tasks`]).
    const GROUP_BYTES: usize = 1 << 20;

    /// The kernel of one call: packed tap t is `taps[t]` of `w`'s `k2` taps, the channels
    /// exchanged (an input gradient's kernel) or not; `kind` names it in a weight cache.
    pub(crate) struct Kernel<'a> {
        pub w: &'a [f32],
        pub taps: &'a [usize],
        pub k2: usize,
        pub exchanged: bool,
        pub kind: usize,
    }

    /// `y (+)= W ∗ x` on AMX tiles.
    ///
    /// # Shapes
    /// - `kern.w`: `[co][ci][k2]` (`exchanged`: `[ci][co][k2]`); `x`: `[ci][batch][hi][wi]`;
    ///   `y`: `[co][batch][ho][wo]`.
    ///
    /// # Panics
    /// On slices shorter than the shapes (engine bugs).
    pub(crate) fn forward(
        g: &Geo,
        kern: &Kernel<'_>,
        x: &[f32],
        y: &mut [f32],
        accumulate: bool,
        cache: Option<&mut super::PackedWeights>,
    ) {
        let cp = pad32(g.ci);
        // One variant per phase with the padding inside the rows where 16 output pixels
        // never leave a row.
        let lay = Layout::new(g, cp / 2, g.wo.is_multiple_of(16));
        let (mut xv, xo) = take(&INPUT, lay.len(g.batch));
        layout_pairs(g, x, lay, &mut xv[xo..]);
        forward_on(g, kern, (g, lay, &xv[xo..]), y, accumulate, cache);
        INPUT.set(xv);
    }

    /// [`forward`] from the input already laid out as `lay` for the geometry `lg` (`g`'s,
    /// or one with the same padding, stride and output whose kernel covers `g`'s).
    fn forward_on(
        g: &Geo,
        kern: &Kernel<'_>,
        (lg, lay, xv): (&Geo, Layout, &[u32]),
        y: &mut [f32],
        accumulate: bool,
        cache: Option<&mut super::PackedWeights>,
    ) {
        assert!(
            xv.len() >= lay.len(g.batch)
                && (lg.ho, lg.wo, lg.stride, lg.pad_y, lg.pad_x, lg.ci)
                    == (g.ho, g.wo, g.stride, g.pad_y, g.pad_x, g.ci)
                && lg.ky >= g.ky
                && lg.kx >= g.kx,
            "amx forward: input laid out for another geometry"
        );
        let (nt, rp, cp) = (g.taps(), pad32(g.co), pad32(g.ci));
        let npix = g.batch * g.hw();
        let unit = super::unit().expect("bf16 direct kernels without a unit (Geo::valid)");
        assert!(
            y.len() >= g.co * npix && kern.taps.len() == nt,
            "amx forward: output too short"
        );
        let n = nt * rp * cp;
        let pack = (kern.taps, kern.k2, kern.exchanged);
        let mut own = None;
        let wptr = match cache {
            Some(cache) => {
                let key = (kern.w.as_ptr() as usize, kern.w.len(), kern.kind);
                let (v, off) = cache.entry(key).or_insert_with(|| {
                    let mut v = vec![0u16; n + 32];
                    let off = v.as_ptr().align_offset(64).min(32);
                    pack_weights(kern.w, g, pack, &mut v[off..]);
                    (v, off)
                });
                assert!(
                    v.len() >= *off + n,
                    "amx forward: packed weights of another shape"
                );
                v[*off..].as_ptr()
            }
            None => {
                let (mut v, off) = take(&WEIGHTS, n);
                pack_weights(kern.w, g, pack, &mut v[off..]);
                let p = v[off..].as_ptr();
                own = Some(v);
                p
            }
        };
        let (mb, nb) = (rp / BLOCK, npix / BLOCK);
        let most = GROUP_BYTES / (nt * cp * BLOCK * 2);
        let threads = rayon::current_num_threads();
        let (group, groups, split) = crate::balanced_tasks(mb, most, nb, (2 * threads, threads));
        let (wp, xp, yp) = (
            Ptr(wptr.cast_mut()),
            Ptr(xv.as_ptr().cast_mut()),
            Ptr(y.as_mut_ptr()),
        );
        let (sa, sb) = (cp * 2, lay.plane * 4);
        let (da, db) = (64, 16 * lay.plane * 4);
        let ldc = npix * 4;
        (0..groups * split).into_par_iter().for_each(|task| {
            let (wp, xp, yp) = (wp, xp, yp);
            let (gi, s) = (task / split, task % split);
            let (o0, o1) = (gi * group, ((gi + 1) * group).min(mb));
            let (p0, p1) = (nb * s / split, nb * (s + 1) / split);
            let mut tmp = [0.0f32; 32 * 32];
            let mut ops = Vec::with_capacity(nt);
            // SAFETY: AMX available where it is the unit (`Geo::valid`).
            unsafe { begin(unit) };
            for pb in p0..p1 {
                let pix = pb * BLOCK;
                let (b, p) = (pix / g.hw(), pix % g.hw());
                for ob in o0..o1 {
                    let r0 = ob * BLOCK;
                    let whole = r0 + BLOCK <= g.co;
                    // SAFETY: the block's 32 output rows (channels r0..) × 32 columns (pixels
                    // pix..) lie inside `y` when `whole`; otherwise `tmp` stands in for it and
                    // the rows inside `y` are copied in and out. Every weight tile (rows r0..
                    // r0 + 32 of tap t, 32 columns per step, cp/32 steps) lies inside the
                    // packed weights; every input tile (16 pairs × 16 pixels, cp/32 steps of
                    // 16 pairs) inside the variants (`Layout::at` of pixels inside the image,
                    // tap rows inside the variant's rows). This task alone writes this block.
                    unsafe {
                        let c = yp.0.add(r0 * npix + pix);
                        let (cptr, cld) = if whole {
                            (c, ldc)
                        } else {
                            for r in 0..BLOCK {
                                for j in 0..BLOCK {
                                    let inside = accumulate && r0 + r < g.co;
                                    tmp[r * 32 + j] =
                                        if inside { *c.add(r * npix + j) } else { 0.0 };
                                }
                            }
                            (tmp.as_mut_ptr(), 128)
                        };
                        ops.clear();
                        for t in 0..nt {
                            let tap = (t / g.kx, t % g.kx);
                            let a0 = wp.0.add((t * rp + r0) * cp).cast::<u8>();
                            let a1 = a0.add(16 * cp * 2);
                            let b0 = xp.0.add(lay.at(lg, b, p, tap)).cast::<u8>();
                            let b1 = xp.0.add(lay.at(lg, b, p + 16, tap)).cast::<u8>();
                            ops.push([a0, a1, b0, b1].map(<*mut u8>::cast_const));
                        }
                        let zero = !accumulate && whole;
                        block(unit, (cptr, cld, zero), &ops, (sa, da, sb, db), cp / BLOCK);
                        if !whole {
                            for r in 0..(g.co - r0) {
                                for j in 0..BLOCK {
                                    *c.add(r * npix + j) = tmp[r * 32 + j];
                                }
                            }
                        }
                    }
                }
            }
            // SAFETY: configured above.
            unsafe { end(unit) };
        });
        if let Some(v) = own {
            WEIGHTS.set(v);
        }
    }

    /// `dx += ∂(W ∗ x)/∂x · dy`, the input gradient of the convolution `g` with weights `w`,
    /// by its phases ([`Geo::phases`]): each a stride-1 forward of `dy`, straight into `dx`
    /// for stride 1, else into a buffer whose maps are then interleaved into `dx`.
    ///
    /// # Shapes
    /// - `w`: `[co][ci][k][k]`; `dy`: `[co][batch][ho][wo]`; `dx`: `[ci][batch][hi][wi]`.
    ///
    /// # Panics
    /// On slices shorter than the shapes, or `phases` not `g`'s (engine bugs).
    pub(crate) fn backward_data(
        g: &Geo,
        phases: &[super::Phase],
        w: &[f32],
        dy: &[f32],
        dx: &mut [f32],
        mut cache: Option<&mut super::PackedWeights>,
    ) {
        let k2 = g.ky * g.kx;
        let n = g.ci * g.batch * g.hi * g.wi;
        assert!(dx.len() >= n, "amx input gradient: dx too short");
        if g.stride == 1 {
            let ph = &phases[0];
            let kern = Kernel {
                w,
                taps: &ph.taps,
                k2,
                exchanged: true,
                kind: 1,
            };
            return forward(&ph.geo, &kern, dy, dx, true, cache.as_deref_mut());
        }
        let s = g.stride;
        let (hm, wm) = (g.hi / s, g.wi / s);
        let per = g.ci * g.batch * hm * wm;
        let mut buf = PHASES.take();
        buf.resize(per * s * s, 0.0);
        // `dy` laid out once for all phases where they share their padding (BLT_net_64's
        // top-downs: k 3, padding 1 — every phase's padding 0), for the largest kernel.
        let first = phases[0].geo;
        let shared = phases
            .iter()
            .all(|p| (p.geo.pad_y, p.geo.pad_x) == (first.pad_y, first.pad_x));
        let lg = Geo {
            ky: phases.iter().map(|p| p.geo.ky).max().unwrap_or(1),
            kx: phases.iter().map(|p| p.geo.kx).max().unwrap_or(1),
            ..first
        };
        let lay = Layout::new(&lg, pad32(lg.ci) / 2, lg.wo.is_multiple_of(16));
        let (mut xv, xo) = take(&INPUT, if shared { lay.len(lg.batch) } else { 0 });
        if shared {
            layout_pairs(&lg, dy, lay, &mut xv[xo..]);
        }
        for (q, ph) in phases.iter().enumerate() {
            let kern = Kernel {
                w,
                taps: &ph.taps,
                k2,
                exchanged: true,
                kind: 1 + q,
            };
            let out = &mut buf[q * per..(q + 1) * per];
            if ph.taps.is_empty() {
                out.fill(0.0);
            } else if shared {
                let input = (&lg, lay, &xv[xo..]);
                forward_on(&ph.geo, &kern, input, out, false, cache.as_deref_mut());
            } else {
                forward(&ph.geo, &kern, dy, out, false, cache.as_deref_mut());
            }
        }
        INPUT.set(xv);
        interleave_add(&buf, (hm, wm), dx);
        PHASES.set(buf);
    }

    thread_local! {
        static PHASES: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
    }

    /// `dx[plane][2m + ry][2n + rx] += ph[2·ry + rx][plane][m][n]` for the four phase maps of
    /// `hm × wm` in `ph` (`dx`'s planes `2hm × 2wm`).
    fn interleave_add(ph: &[f32], (hm, wm): (usize, usize), dx: &mut [f32]) {
        let per = ph.len() / 4;
        let planes = per / (hm * wm);
        let dx = &mut dx[..planes * 4 * hm * wm];
        dx.par_chunks_mut(4 * hm * wm)
            .enumerate()
            .with_min_len(min_len(4 * hm * wm))
            .for_each(|(i, plane)| {
                for (r, row) in plane.chunks_mut(2 * wm).enumerate() {
                    let (m, ry) = (r / 2, r % 2);
                    let at = |q: usize| &ph[q * per + (i * hm + m) * wm..][..wm];
                    // SAFETY: AVX-512F (`Geo::valid`); both phase rows hold `wm` floats and
                    // `row` 2·wm.
                    unsafe { interleave_row(at(2 * ry), at(2 * ry + 1), row) };
                }
            });
    }

    /// Interleaves two phase indices: lanes 0..16 of the result = a0 b0 a1 b1 … a7 b7
    /// (bit 4 selects the second operand), and a8 b8 … a15 b15.
    static INTERLEAVE: [[i32; 16]; 2] = [
        [0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23],
        [8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31],
    ];

    /// `row[2n] += a[n]`, `row[2n + 1] += b[n]`.
    ///
    /// # Safety
    /// AVX-512F; `a` and `b` as long as half of `row`.
    #[target_feature(enable = "avx512f")]
    unsafe fn interleave_row(a: &[f32], b: &[f32], row: &mut [f32]) {
        let w = a.len();
        debug_assert!(b.len() == w && row.len() == 2 * w);
        // SAFETY: every access below is inside `a`, `b` (n < w) and `row` (2n + 1 < 2w).
        unsafe {
            let (lo_i, hi_i) = (
                _mm512_loadu_si512(INTERLEAVE[0].as_ptr().cast()),
                _mm512_loadu_si512(INTERLEAVE[1].as_ptr().cast()),
            );
            let mut n = 0;
            while n + 16 <= w {
                let (va, vb) = (
                    _mm512_loadu_ps(a.as_ptr().add(n)),
                    _mm512_loadu_ps(b.as_ptr().add(n)),
                );
                let r = row.as_mut_ptr().add(2 * n);
                let lo = _mm512_add_ps(_mm512_loadu_ps(r), _mm512_permutex2var_ps(va, lo_i, vb));
                let hi = _mm512_add_ps(
                    _mm512_loadu_ps(r.add(16)),
                    _mm512_permutex2var_ps(va, hi_i, vb),
                );
                _mm512_storeu_ps(r, lo);
                _mm512_storeu_ps(r.add(16), hi);
                n += 16;
            }
            for n in n..w {
                row[2 * n] += a[n];
                row[2 * n + 1] += b[n];
            }
        }
    }

    /// Pixels per chunk of images that the weight gradient's tasks sweep for all taps before
    /// moving on (the chunk's input variants and `dy` stay in L2).
    const CHUNK_PIXELS: usize = 1024;

    /// `dw += dy ⋆ x` (the weight gradient) on AMX tiles.
    ///
    /// # Shapes
    /// - `x`: `[ci][batch][hi][wi]`; `dy`: `[co][batch][ho][wo]`; `dw`: `[co][ci][ky][kx]`.
    ///
    /// # Panics
    /// On slices shorter than the shapes (engine bugs).
    pub(crate) fn weight_grad(g: &Geo, x: &[f32], dy: &[f32], dw: &mut [f32]) {
        let (nt, cp, op) = (g.taps(), pad32(g.ci), pad32(g.co));
        let (hw, npix) = (g.hw(), g.batch * g.hw());
        assert!(
            dw.len() >= g.co * g.ci * nt,
            "amx weight gradient: dw too short"
        );
        let unit = super::unit().expect("bf16 direct kernels without a unit (Geo::valid)");
        let lay = Layout::new(g, cp, false);
        let (mut xv, xo) = take(&INPUT16, lay.len(g.batch));
        layout_plain(g, x, lay, &mut xv[xo..]);
        let (mut dv, dvo) = take(&DY, npix / 2 * op);
        layout_dy(dy, g.co, npix, op, &mut dv[dvo..]);

        // Tasks: groups of 2 × 2 blocks (64 × 64 channels) where there are enough of them.
        let (cb, ob) = (cp / BLOCK, op / BLOCK);
        let want = rayon::current_num_threads() * 2;
        let gs = if cb.div_ceil(2) * ob.div_ceil(2) >= want {
            2
        } else {
            1
        };
        let (gc, go) = (cb.div_ceil(gs), ob.div_ceil(gs));
        let images = (CHUNK_PIXELS / hw).clamp(1, g.batch);
        let (xp, dp) = (Ptr(xv[xo..].as_mut_ptr()), Ptr(dv[dvo..].as_mut_ptr()));
        let (sa, sb) = (lay.plane * 2, BLOCK * 4);
        let (da, db) = (64, 16 * BLOCK * 4);
        let dwp = Ptr(dw.as_mut_ptr());
        (0..gc * go).into_par_iter().for_each(|task| {
            let (xp, dp, dwp) = (xp, dp, dwp);
            let (c0, c1) = ((task / go) * gs, ((task / go) * gs + gs).min(cb));
            let (o0, o1) = ((task % go) * gs, ((task % go) * gs + gs).min(ob));
            let blocks: Vec<(usize, usize)> = (c0..c1)
                .flat_map(|ci| (o0..o1).map(move |oi| (ci, oi)))
                .collect();
            // The task's accumulators: [tap][block][32 × 32] (input × output channels).
            let (mut acc, aoff) = take(&ACC, nt * blocks.len() * 1024);
            let acc_p = acc[aoff..].as_mut_ptr();
            let mut ops = Vec::with_capacity(images);
            // SAFETY: AMX available where it is the unit (`Geo::valid`).
            unsafe { begin(unit) };
            for b0 in (0..g.batch).step_by(images) {
                let b1 = (b0 + images).min(g.batch);
                for t in 0..nt {
                    let tap = (t / g.kx, t % g.kx);
                    for (i, &(ci, oi)) in blocks.iter().enumerate() {
                        // SAFETY: `c` is this task's 32 × 32 block (128-byte rows) inside
                        // `acc`; the input tiles (16 channels × 32 pixels of image b at the
                        // tap, hw/32 steps of 32 pixels: the variants' rows are the output's
                        // width) lie inside the variants, the `dy` tiles (16 pairs of pixels
                        // × 16 channels) inside its pairs.
                        unsafe {
                            let c = acc_p.add((t * blocks.len() + i) * 1024);
                            ops.clear();
                            for b in b0..b1 {
                                let xa = lay.at(g, b, 0, tap) + ci * BLOCK * lay.plane;
                                let a0 = xp.0.add(xa).cast::<u8>();
                                let a1 = a0.add(16 * lay.plane * 2);
                                let bb = dp.0.add((oi * npix + b * hw) / 2 * BLOCK).cast::<u8>();
                                ops.push([a0.cast_const(), a1, bb.cast_const(), bb.add(64)]);
                            }
                            let st = (sa, da, sb, db);
                            block(unit, (c, 128, b0 == 0), &ops, st, hw / BLOCK);
                        }
                    }
                }
            }
            // SAFETY: configured above.
            unsafe { end(unit) };
            // Into `dw` in its own order (each output channel's taps of 32 input channels
            // contiguous): walking it by taps jumps `ci · taps` floats per element (a new
            // page each, 3–4 ms per IT lateral at batch 16).
            let sums = &acc[aoff..];
            for (i, &(ci, oi)) in blocks.iter().enumerate() {
                for j in 0..BLOCK.min(g.co.saturating_sub(oi * BLOCK)) {
                    let o = oi * BLOCK + j;
                    for r in 0..BLOCK.min(g.ci.saturating_sub(ci * BLOCK)) {
                        let c = ci * BLOCK + r;
                        for t in 0..nt {
                            let v = sums[(t * blocks.len() + i) * 1024 + r * 32 + j];
                            // SAFETY: (o, c) < (co, ci): inside `dw` (checked length); the
                            // channels of this task's blocks are written by this task only.
                            unsafe { *dwp.0.add((o * g.ci + c) * nt + t) += v };
                        }
                    }
                }
            }
            ACC.set(acc);
        });
        INPUT16.set(xv);
        DY.set(dv);
    }

    thread_local! {
        static INPUT16: Cell<Vec<u16>> = const { Cell::new(Vec::new()) };
    }
}
