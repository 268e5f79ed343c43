//! Matrix products for thin convolutions, on AVX2 + FMA (AVX-512F where present), without
//! packing.
//!
//! The convolutions of narrow networks (8–32 channels, as the CPU-sized BLT) multiply a small
//! matrix by a very wide one: `Y[Co, N] = W[Co, K] · col[K, N]` with `N = B·H·W` in the tens
//! of thousands. A general GEMM packs the wide operand into panels first (one more pass over
//! memory than the product itself) and its 16 × 6 register tile runs half empty when the
//! small side is 8. [`small_m`] streams the wide operand's rows as they lie in memory, 16
//! columns at a time, and keeps a 6 × 16 tile of the result in registers while it runs down
//! `K`: every element of the wide operand is read once from memory and `⌈M / 6⌉` times from
//! L1.
//!
//! Each result element is one sequential float32 sum over `K` (then added to the destination
//! when accumulating), the same order whatever the thread count — and whatever the vector
//! width: where the CPU has AVX-512F, full 32- and 16-column tiles run on 16-lane registers
//! (up to 12 × 32 results per tile, `rows_of_tiles512`) with the same chain of fused
//! multiply-adds per element, so the bits do not change.

#![allow(unsafe_code)]

use rayon::prelude::*;

/// Result rows per register tile.
const MR: usize = 6;
/// Result columns per register tile (two 8-lane vectors).
const NR: usize = 16;
/// Columns per parallel task.
const NC: usize = 512;

/// The small operand: element `(i, p)` at `data[off + i·rs + p·cs]`.
#[derive(Debug, Clone, Copy)]
pub struct Small<'a> {
    pub data: &'a [f32],
    pub off: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<'a> Small<'a> {
    /// Rows of `rs` contiguous floats from the start of `data` (a weight matrix `Co × Ci·k²`).
    pub fn row_major(data: &'a [f32], rs: usize) -> Self {
        Self {
            data,
            off: 0,
            rs,
            cs: 1,
        }
    }
}

/// Whether [`small_m`] runs on this CPU (AVX2 + FMA).
pub fn available() -> bool {
    crate::simd::avx2()
}

/// Whether the 16-lane register tiles ([`rows_of_tiles512`]) run on this CPU (AVX-512F).
/// They compute every output element with the same chain of fused multiply-adds as the
/// 8-lane tiles, so results are bit-identical either way.
fn avx512() -> bool {
    crate::simd::avx512() && WIDE.load(std::sync::atomic::Ordering::Relaxed)
}

/// Set by [`set_wide_tiles`].
static WIDE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Use the 16-lane tiles where the CPU has AVX-512F (default), or the 8-lane ones everywhere,
/// process-wide: for benchmarks and the test that both give the same bits.
pub fn set_wide_tiles(on: bool) {
    WIDE.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// Result rows per 16-lane register tile (AVX-512 has 32 vector registers: 12 × 2
/// accumulators, two operand rows and a broadcast).
const MR512: usize = 12;

/// `c[i·crs + coff + j] (+)= Σ_p a(i, p) · b[boff + p·brs + j]` for `i < m`, `j < n`, `p < k`.
///
/// # Panics
/// When [`available`] is false, or a view lies outside its slice (engine bugs: shapes are
/// fixed by the network's geometry).
#[allow(clippy::too_many_arguments)]
pub fn small_m(
    m: usize,
    n: usize,
    k: usize,
    a: Small<'_>,
    b: &[f32],
    boff: usize,
    brs: usize,
    c: &mut [f32],
    coff: usize,
    crs: usize,
    accumulate: bool,
) {
    assert!(available(), "small_m needs AVX2 + FMA");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                c[coff + i * crs..coff + i * crs + n].fill(0.0);
            }
        }
        return;
    }
    assert!(
        a.off + (m - 1) * a.rs + (k - 1) * a.cs < a.data.len(),
        "small_m: a out of bounds"
    );
    assert!(
        boff + (k - 1) * brs + n <= b.len(),
        "small_m: b out of bounds"
    );
    assert!(
        coff + (m - 1) * crs + n <= c.len(),
        "small_m: c out of bounds"
    );
    let cp = SendPtr(c.as_mut_ptr());
    (0..n.div_ceil(NC)).into_par_iter().for_each(|t| {
        let j0 = t * NC;
        let j1 = (j0 + NC).min(n);
        // SAFETY: bounds were checked above for every (i, p, j) addressed; tasks write
        // disjoint column ranges [j0, j1) of `c`, so no two tasks touch the same element.
        unsafe {
            block(
                m,
                k,
                a,
                b.as_ptr().add(boff),
                brs,
                cp.get().add(coff),
                crs,
                j0,
                j1,
                accumulate,
            )
        };
    });
}

/// A buffer's start handed to parallel tasks that write disjoint parts of it (here and in
/// [`crate::lanes`]).
#[derive(Clone, Copy)]
pub(crate) struct SendPtr(pub(crate) *mut f32);
// SAFETY: used only to hand disjoint parts of one buffer to parallel tasks.
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}
impl SendPtr {
    pub(crate) fn get(self) -> *mut f32 {
        self.0
    }
}

/// Columns `[j0, j1)` of the product.
///
/// # Safety
/// Every addressed element must lie inside its buffer; AVX2 + FMA must be available.
#[allow(clippy::too_many_arguments)]
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx,avx2,fma"))]
unsafe fn block(
    m: usize,
    k: usize,
    a: Small<'_>,
    b: *const f32,
    brs: usize,
    c: *mut f32,
    crs: usize,
    j0: usize,
    j1: usize,
    accumulate: bool,
) {
    let (ap, ars) = (unsafe { a.data.as_ptr().add(a.off) }, (a.rs, a.cs));
    let rows: Vec<usize> = (0..k).map(|p| p * brs).collect();
    let padded: Vec<usize> = (0..k).map(|p| p * NR).collect();
    // Columns that do not fill a tile go through a zero-padded copy.
    let mut bt: Vec<f32> = Vec::new();
    let mut ct = [0.0f32; MR * NR];
    let wide = avx512();
    let mut j = j0;
    while j < j1 {
        if wide && j1 - j >= 2 * NR {
            let ci = unsafe { c.add(j) };
            unsafe {
                rows_of_tiles512::<2>(
                    m,
                    k,
                    ap,
                    ars,
                    (b.add(j), 16),
                    &rows,
                    (ci, crs, 16),
                    accumulate,
                )
            };
            j += 2 * NR;
            continue;
        }
        let w = (j1 - j).min(NR);
        if w == NR {
            let ci = unsafe { c.add(j) };
            unsafe {
                rows_of_tiles::<2>(
                    m,
                    k,
                    ap,
                    ars,
                    (b.add(j), 8),
                    &rows,
                    (ci, crs, 8),
                    accumulate,
                )
            };
        } else {
            bt.resize(k * NR, 0.0);
            for p in 0..k {
                for q in 0..NR {
                    bt[p * NR + q] = if q < w {
                        unsafe { *b.add(p * brs + j + q) }
                    } else {
                        0.0
                    };
                }
            }
            let mut i = 0;
            while i < m {
                let h = (m - i).min(MR);
                for r in 0..h {
                    for q in 0..NR {
                        ct[r * NR + q] = if accumulate && q < w {
                            unsafe { *c.add((i + r) * crs + j + q) }
                        } else {
                            0.0
                        };
                    }
                }
                let ai = unsafe { ap.add(i * a.rs) };
                unsafe {
                    rows_of_tiles::<2>(
                        h,
                        k,
                        ai,
                        ars,
                        (bt.as_ptr(), 8),
                        &padded,
                        (ct.as_mut_ptr(), NR, 8),
                        true,
                    )
                };
                for r in 0..h {
                    for q in 0..w {
                        unsafe { *c.add((i + r) * crs + j + q) = ct[r * NR + q] };
                    }
                }
                i += h;
            }
        }
        j += w;
    }
}

/// The register-tile kernels of one vector width and register budget: `$rows::<V>` runs all
/// `m` result rows of one column tile (`V` vectors) in tiles of even height (at most `$mr` rows
/// — 8 rows as 4 + 4, not 6 + 2, so every tile keeps enough independent accumulators in flight
/// to hide the multiply-add latency); `$tile::<R, V>` is one `R × V`-vector tile:
/// `c[r·crs + v·cvs + q] (+)= Σ_p a[r·ars + p·acs] · b[offs[p] + v·bvs + q]`, each element one
/// chain of fused multiply-adds over `p` in order (so the widths and budgets give the same
/// bits). Row `p` of the wide operand starts at `b + offs[p]`. With `bvs = cvs = $lanes` the
/// vectors are consecutive columns (a tile `LANES·V` columns wide); with the input's and
/// output's row strides, vector `v` is output row `v` (the row groups of 8-wide outputs: per
/// tap, `V` loads and `R` broadcasts feed `R·V` multiply-adds, where one 8-wide row alone gives
/// 1 load and 6 broadcasts for 6). Instantiated for 8 lanes (AVX2 + FMA), 16 (AVX-512F), and
/// 8 lanes on AVX-512VL's 32 registers.
macro_rules! register_tiles {
    (
        $rows:ident, $tile:ident, $feature:literal, $mr:expr,
        [$($h:literal),*],
        $vec:ident, $zero:ident, $load:ident, $splat:ident, $fmadd:ident, $add:ident, $store:ident
    ) => {
        /// See [`register_tiles`].
        ///
        /// # Safety
        /// Every addressed element must lie inside its buffer; the CPU must have the
        /// function's target features.
        #[allow(clippy::too_many_arguments)]
        #[inline]
        #[cfg_attr(target_arch = "x86_64", target_feature(enable = $feature))]
        unsafe fn $rows<const V: usize>(
            m: usize,
            k: usize,
            a: *const f32,
            (ars, acs): (usize, usize),
            (b, bvs): (*const f32, usize),
            offs: &[usize],
            (c, crs, cvs): (*mut f32, usize, usize),
            acc: bool,
        ) {
            let tiles = m.div_ceil($mr);
            let mut i = 0;
            for t in 0..tiles {
                let h = (m - i).div_ceil(tiles - t);
                let (ai, ci) = unsafe { (a.add(i * ars), c.add(i * crs)) };
                let o = offs.as_ptr();
                let args = (k, ai, ars, acs, b, bvs, o, ci, crs, cvs, acc);
                unsafe {
                    match h {
                        $($h => $tile::<$h, V>(args),)*
                        _ => $tile::<1, V>(args),
                    }
                }
                i += h;
            }
        }

        /// See [`register_tiles`].
        ///
        /// # Safety
        /// Every addressed element must lie inside its buffer; the CPU must have the
        /// function's target features.
        #[inline]
        #[cfg_attr(target_arch = "x86_64", target_feature(enable = $feature))]
        #[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
        unsafe fn $tile<const R: usize, const V: usize>(
            (k, a, ars, acs, b, bvs, offs, c, crs, cvs, accumulate): TileArgs,
        ) {
            #[cfg(target_arch = "x86_64")]
            unsafe {
                use std::arch::x86_64::*;
                let mut acc: [[$vec; V]; R] = [[$zero(); V]; R];
                for p in 0..k {
                    let bp = b.add(*offs.add(p));
                    let mut bv: [$vec; V] = [$zero(); V];
                    for (v, x) in bv.iter_mut().enumerate() {
                        *x = $load(bp.add(bvs * v));
                    }
                    let ap = a.add(p * acs);
                    for (r, acc) in acc.iter_mut().enumerate() {
                        let av = $splat(*ap.add(r * ars));
                        for v in 0..V {
                            acc[v] = $fmadd(av, bv[v], acc[v]);
                        }
                    }
                }
                for (r, acc) in acc.iter().enumerate() {
                    let cp = c.add(r * crs);
                    for (v, &x) in acc.iter().enumerate() {
                        let x = if accumulate {
                            $add($load(cp.add(cvs * v)), x)
                        } else {
                            x
                        };
                        $store(cp.add(cvs * v), x);
                    }
                }
            }
            #[cfg(not(target_arch = "x86_64"))]
            crate::simd::x86_only();
        }
    };
}

/// Arguments of a register tile: `k`, `a`, `ars`, `acs`, `b`, `bvs`, `offs`, `c`, `crs`,
/// `cvs`, accumulate.
type TileArgs = (
    usize,
    *const f32,
    usize,
    usize,
    *const f32,
    usize,
    *const usize,
    *mut f32,
    usize,
    usize,
    bool,
);

register_tiles!(
    rows_of_tiles,
    tile,
    "avx,avx2,fma",
    MR,
    [6, 5, 4, 3, 2],
    __m256,
    _mm256_setzero_ps,
    _mm256_loadu_ps,
    _mm256_set1_ps,
    _mm256_fmadd_ps,
    _mm256_add_ps,
    _mm256_storeu_ps
);

register_tiles!(
    rows_of_tiles512,
    tile512,
    "avx512f",
    MR512,
    [12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2],
    __m512,
    _mm512_setzero_ps,
    _mm512_loadu_ps,
    _mm512_set1_ps,
    _mm512_fmadd_ps,
    _mm512_add_ps,
    _mm512_storeu_ps
);

// Row groups (vectors = output rows) on 16 vector registers: 3 × 4 accumulators, four operand
// rows and a broadcast (one operand row may be re-read from L1).
register_tiles!(
    groups_avx2,
    group_tile,
    "avx,avx2,fma",
    3,
    [3, 2],
    __m256,
    _mm256_setzero_ps,
    _mm256_loadu_ps,
    _mm256_set1_ps,
    _mm256_fmadd_ps,
    _mm256_add_ps,
    _mm256_storeu_ps
);

// Row groups on AVX-512VL's 32 vector registers: 6 × 4 accumulators, four operand rows and a
// broadcast.
register_tiles!(
    groups_avx512,
    group_tile512,
    "avx,avx2,fma,avx512f,avx512vl",
    6,
    [6, 5, 4, 3, 2],
    __m256,
    _mm256_setzero_ps,
    _mm256_loadu_ps,
    _mm256_set1_ps,
    _mm256_fmadd_ps,
    _mm256_add_ps,
    _mm256_storeu_ps
);

/// Output rows per register block of [`blocks512`] for outputs `wo` wide, where a block
/// takes several rows: 4 rows of 16 columns, 2 of 32 (`64 / wo`). Wider rows run one row at a
/// time, 64 columns per block ([`direct_row`]); other widths keep their tiles.
fn block_rows(wo: usize) -> Option<usize> {
    matches!(wo, 16 | 32).then(|| 64 / wo)
}

/// Output channels per register block of [`blocks512`]: 6 × 4 accumulators.
const MRB: usize = 6;

/// All `m` output channels of `64 / width` output rows, `width` (16, 32 or 64) columns each,
/// of a direct convolution on 16-lane registers: tiles of at most [`MRB`] channels × 4
/// vectors, vector `(r, v)` = row `r`, columns `16v..16v + 16`, read at
/// `x + r·xrs + offs[p] + 16v` and written at `y + i·ycs + r·yrs + 16v` for channel `i`. Each
/// output is the same chain of fused multiply-adds over the taps as in [`rows_of_tiles512`]
/// (so the same bits): only more outputs share each broadcast weight — on 16-px maps, one
/// weight load fed 16 outputs and the weights streamed from L2.
///
/// # Safety
/// Every addressed element must lie inside its buffer; the CPU must have AVX-512F.
#[allow(clippy::too_many_arguments)]
#[cfg_attr(
    target_arch = "x86_64",
    target_feature(enable = "avx,avx2,fma,avx512f")
)]
unsafe fn blocks512(
    width: usize,
    m: usize,
    k: usize,
    (a, ars, acs): (*const f32, usize, usize),
    (x, xrs): (*const f32, usize),
    offs: &[usize],
    (y, ycs, yrs): (*mut f32, usize, usize),
    acc: bool,
) {
    // Block `h` channels × `U` rows × `V` vectors.
    macro_rules! by_height {
        ($h:expr, $u:literal, $v:literal, $args:expr) => {
            match $h {
                6 => block512::<6, $u, $v>($args),
                5 => block512::<5, $u, $v>($args),
                4 => block512::<4, $u, $v>($args),
                3 => block512::<3, $u, $v>($args),
                2 => block512::<2, $u, $v>($args),
                _ => block512::<1, $u, $v>($args),
            }
        };
    }
    let tiles = m.div_ceil(MRB);
    let mut i = 0;
    for t in 0..tiles {
        let h = (m - i).div_ceil(tiles - t);
        let (ai, yi) = unsafe { (a.add(i * ars), y.add(i * ycs)) };
        let args = (k, ai, ars, acs, x, xrs, offs.as_ptr(), yi, ycs, yrs, acc);
        unsafe {
            match width {
                16 => by_height!(h, 4, 1, args),
                32 => by_height!(h, 2, 2, args),
                _ => by_height!(h, 1, 4, args),
            }
        }
        i += h;
    }
}

/// One `R` channels × `U` rows × `V` vectors block of [`blocks512`]: `(k, a, ars, acs, x, xrs,
/// offs, y, ycs, yrs, accumulate)`.
///
/// # Safety
/// As [`blocks512`].
#[inline]
#[cfg_attr(
    target_arch = "x86_64",
    target_feature(enable = "avx,avx2,fma,avx512f")
)]
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
unsafe fn block512<const R: usize, const U: usize, const V: usize>(
    (k, a, ars, acs, x, xrs, offs, y, ycs, yrs, accumulate): TileArgs,
) {
    #[cfg(target_arch = "x86_64")]
    unsafe {
        use std::arch::x86_64::*;
        let mut acc = [[[_mm512_setzero_ps(); V]; U]; R];
        for p in 0..k {
            let xp = x.add(*offs.add(p));
            let mut xv = [[_mm512_setzero_ps(); V]; U];
            for (r, row) in xv.iter_mut().enumerate() {
                for (v, e) in row.iter_mut().enumerate() {
                    *e = _mm512_loadu_ps(xp.add(r * xrs + 16 * v));
                }
            }
            let ap = a.add(p * acs);
            for (i, acc) in acc.iter_mut().enumerate() {
                let w = _mm512_set1_ps(*ap.add(i * ars));
                for r in 0..U {
                    for v in 0..V {
                        acc[r][v] = _mm512_fmadd_ps(w, xv[r][v], acc[r][v]);
                    }
                }
            }
        }
        for (i, acc) in acc.iter().enumerate() {
            for (r, row) in acc.iter().enumerate() {
                for (v, &e) in row.iter().enumerate() {
                    let yp = y.add(i * ycs + r * yrs + 16 * v);
                    let e = if accumulate {
                        _mm512_add_ps(_mm512_loadu_ps(yp), e)
                    } else {
                        e
                    };
                    _mm512_storeu_ps(yp, e);
                }
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    crate::simd::x86_only();
}

/// Output rows per row group of an 8-wide convolution ([`conv_direct`] on 8 × 8 maps and
/// other 8-column outputs): each of the tile's vectors holds one output row.
const GROUP: usize = 4;

/// Whether the CPU has AVX-512F and VL and the 16-lane tiles are on ([`set_wide_tiles`]):
/// 8-lane operations on all 32 vector registers, and the weight gradient by channels on
/// 16-lane vectors.
pub fn avx512vl() -> bool {
    use std::sync::OnceLock;
    static HAS: OnceLock<bool> = OnceLock::new();
    #[cfg(target_arch = "x86_64")]
    let has = *HAS.get_or_init(|| std::arch::is_x86_feature_detected!("avx512vl"));
    #[cfg(not(target_arch = "x86_64"))]
    let has = *HAS.get_or_init(|| false);
    has && avx512()
}

/// Set by [`set_row_groups`].
static ROW_GROUPS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Run 8-column-wide direct convolutions `GROUP` (four) output rows at a time (default), or
/// one row at a time, process-wide: for benchmarks and the test that both give the same bits.
pub fn set_row_groups(on: bool) {
    ROW_GROUPS.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// How the `channels × batch` planes of an activation lie in memory: the engine's own
/// channel-major `[C][B][H][W]`, or burn's and PyTorch's batch-major `[B][C][H][W]` (NCHW).
/// The direct kernels read and write either, so a caller holding NCHW tensors needs no
/// transposed copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Planes {
    ChannelMajor,
    BatchMajor,
}

impl Planes {
    /// Index of plane `(c, b)` among `channels × batch` planes.
    pub fn plane(self, c: usize, b: usize, channels: usize, batch: usize) -> usize {
        match self {
            Planes::ChannelMajor => c * batch + b,
            Planes::BatchMajor => b * channels + c,
        }
    }

    /// `(channel stride, image stride)` in floats of `channels × batch` planes of `len`
    /// floats: how far plane `(c + 1, b)` and plane `(c, b + 1)` lie from plane `(c, b)`.
    pub fn strides(self, channels: usize, batch: usize, len: usize) -> (usize, usize) {
        (
            self.plane(1, 0, channels, batch) * len,
            self.plane(0, 1, channels, batch) * len,
        )
    }

    /// `(c, b)` of plane `i` among `channels × batch` planes: the inverse of [`Self::plane`].
    pub fn unplane(self, i: usize, channels: usize, batch: usize) -> (usize, usize) {
        match self {
            Planes::ChannelMajor => (i / batch, i % batch),
            Planes::BatchMajor => (i % channels, i / channels),
        }
    }
}

/// Whether [`conv_direct`] handles outputs `wo` wide (whole 8- or 16-column tiles per row).
pub fn direct_fits(wo: usize) -> bool {
    available() && wo > 0 && wo.is_multiple_of(8)
}

/// Direct convolution with stride `s` (implicit GEMM: the unfolded input is never built):
/// `y[o][b][oh][ow] (+)= Σ_{c, kh, kw} w(o, (c·k + kh)·k + kw) · x̂[c][b][s·oh + kh][s·ow + kw]`
/// of the zero-padded input `x̂`, given as its `s × s` phases (space-to-depth, [`phases`]):
/// `xp[b][c][ph][pw][i][j] = x̂[c][b][s·i + ph][s·j + pw]`, each phase `hp × wp` with
/// `hp ≥ ho + (k − 1)/s`, `wp ≥ wo + (k − 1)/s`. Tap `(kh, kw)` of output `(oh, ow)` is
/// element `(oh + kh/s, ow + kw/s)` of phase `(kh mod s, kw mod s)`, so every tap of a row of
/// outputs is a contiguous run of one phase and stride 2 runs on the same kernels as stride 1
/// (for `s = 1` the phases are the padded input itself).
///
/// # Shapes
/// - `y`: `[co][batch][ho][wo]` (`Planes::ChannelMajor`) or `[batch][co][ho][wo]`
///   (`Planes::BatchMajor`).
///
/// # Panics
/// When [`direct_fits`] is false, or a buffer is too small (engine bugs).
#[allow(clippy::too_many_arguments)]
pub fn conv_direct(
    w: Small<'_>,
    co: usize,
    ci: usize,
    (k, stride): (usize, usize),
    batch: usize,
    xp: &[f32],
    (hp, wp): (usize, usize),
    (ho, wo): (usize, usize),
    (y, layout): (&mut [f32], Planes),
    accumulate: bool,
) {
    let ks = (k, stride, 1);
    conv_direct_step(
        w,
        co,
        ci,
        ks,
        batch,
        xp,
        (hp, wp),
        (ho, wo),
        (y, layout),
        accumulate,
    );
}

/// [`conv_direct`] with a tap's columns `step` floats apart (tap `(kh, kw)` at
/// `kh/s · wp + kw/s · step`): with `step` = the images, stride 1 and batch 1, a convolution
/// of batch-interleaved maps ([`interleave_batch`]: image `b` of column `j` at `j·step + b`), which
/// makes rows of whole 8-float tiles out of maps narrower than 8 (4 × 4, 2 × 2). Each output
/// is the same chain of multiply-adds over the taps as on the plain layout.
///
/// # Panics
/// As [`conv_direct`].
#[allow(clippy::too_many_arguments)]
pub fn conv_direct_step(
    w: Small<'_>,
    co: usize,
    ci: usize,
    (k, stride, step): (usize, usize, usize),
    batch: usize,
    xp: &[f32],
    (hp, wp): (usize, usize),
    (ho, wo): (usize, usize),
    (y, layout): (&mut [f32], Planes),
    accumulate: bool,
) {
    check_direct(
        "conv_direct",
        ci,
        (k, stride, step),
        batch,
        xp,
        (hp, wp),
        (ho, wo),
        true,
    );
    let (plane, ximage) = padded_strides(ci, stride, (hp, wp));
    let offs = tap_offsets(ci, (k, stride, step), plane, wp);
    let x = (xp, ximage, wp);
    run_direct(
        "conv_direct",
        w,
        co,
        &offs,
        batch,
        x,
        (ho, wo),
        (y, layout),
        accumulate,
    );
}

/// A stride-1 direct convolution over a tap set of any shape: `y[o][b][oh][ow] (+)=
/// Σ_{c, u} w(o, c·taps.len() + u) · xp[b][c][·][·]` at `taps[u]` floats past the output
/// pixel's own position `oh·wp + ow` in the padded input (laid out as [`phases`] with `s = 1`:
/// image-major planes of `hp × wp`). The phases of a stride-2 input gradient are such
/// convolutions (1, 2 or 4 taps of the kernel each, `Conv::backward_data`); a `k × k` tap set
/// is [`conv_direct`] itself, same bits.
///
/// # Panics
/// When [`direct_fits`] is false, a tap reaches outside the padded plane, or a buffer is too
/// small (engine bugs).
#[allow(clippy::too_many_arguments)]
pub fn conv_direct_taps(
    w: Small<'_>,
    co: usize,
    ci: usize,
    taps: &[usize],
    batch: usize,
    xp: &[f32],
    (hp, wp): (usize, usize),
    (ho, wo): (usize, usize),
    (y, layout): (&mut [f32], Planes),
    accumulate: bool,
) {
    assert!(direct_fits(wo), "conv_direct_taps: output width {wo}");
    assert!(
        taps.iter().all(|&t| t / wp + ho <= hp && t % wp + wo <= wp),
        "conv_direct_taps: a tap outside the padded plane"
    );
    assert!(
        xp.len() >= ci * batch * hp * wp,
        "conv_direct_taps: input size"
    );
    let (plane, ximage) = padded_strides(ci, 1, (hp, wp));
    let offs: Vec<usize> = (0..ci)
        .flat_map(|c| taps.iter().map(move |&t| c * plane + t))
        .collect();
    let x = (xp, ximage, wp);
    run_direct(
        "conv_direct_taps",
        w,
        co,
        &offs,
        batch,
        x,
        (ho, wo),
        (y, layout),
        accumulate,
    );
}

/// The loop of [`conv_direct_step`] and [`conv_direct_taps`] over rows of outputs, given every
/// tap's offset from an output pixel's position in its image of the padded input
/// (`ximage` floats per image, rows `wp` apart); `offs.len()` taps, `w` `co × offs.len()`.
/// The callers check the input's bounds; the output's and the weights' are checked here
/// (panics name `name`).
#[allow(clippy::too_many_arguments)]
fn run_direct(
    name: &str,
    w: Small<'_>,
    co: usize,
    offs: &[usize],
    batch: usize,
    (xp, ximage, wp): (&[f32], usize, usize),
    (ho, wo): (usize, usize),
    (y, layout): (&mut [f32], Planes),
    accumulate: bool,
) {
    assert!(y.len() >= co * batch * ho * wo, "{name}: output size");
    let kd = offs.len();
    if co == 0 || batch == 0 || ho == 0 || kd == 0 {
        return;
    }
    assert!(
        w.off + (co - 1) * w.rs + (kd - 1) * w.cs < w.data.len(),
        "{name}: weights"
    );
    let rows = batch * ho;
    // Rows per task: about NC outputs, and enough tasks for every thread when the rows are
    // few and wide (batch-interleaved small maps: 4 rows of 128). Rows are independent, so
    // the split does not change the bits.
    let per_task = (NC / wo)
        .min(rows.div_ceil(4 * rayon::current_num_threads()))
        .max(1);
    // Channel stride of the output, and where image b's plane of channel 0 starts.
    let (cs, image) = layout.strides(co, batch, ho * wo);
    let yp = SendPtr(y.as_mut_ptr());
    // 8-column outputs run GROUP rows at a time (row-group tiles).
    let groups = wo == 8 && ROW_GROUPS.load(std::sync::atomic::Ordering::Relaxed);
    let wide = avx512vl();
    // On AVX-512, rows of 16 and 32 columns run several rows per register block
    // ([`blocks512`]): each weight broadcast feeds 64 outputs.
    let block_rows = block_rows(wo)
        .filter(|_| avx512() && ROW_GROUPS.load(std::sync::atomic::Ordering::Relaxed));
    (0..rows.div_ceil(per_task)).into_par_iter().for_each(|t| {
        let end = ((t + 1) * per_task).min(rows);
        let mut row = t * per_task;
        while row < end {
            let (b, oh) = (row / ho, row % ho);
            let xb = b * ximage + oh * wp;
            let yb = b * image + oh * wo;
            if let Some(u) = block_rows.filter(|&u| oh + u <= ho && row + u <= end) {
                // SAFETY: as below, for the `u` rows oh.. of image b, all inside the task.
                unsafe {
                    let (a, x) = (w.data.as_ptr().add(w.off), xp.as_ptr().add(xb));
                    let (a, y) = ((a, w.rs, w.cs), (yp.get().add(yb), cs, wo));
                    blocks512(wo, co, kd, a, (x, wp), offs, y, accumulate);
                }
                row += u;
                continue;
            }
            if groups && oh + GROUP <= ho && row + GROUP <= end {
                // SAFETY: as below, for the GROUP rows oh.. of image b, all inside the task.
                unsafe {
                    let (a, x) = (w.data.as_ptr().add(w.off), xp.as_ptr().add(xb));
                    let y = (yp.get().add(yb), cs, wo);
                    if wide {
                        groups_avx512::<GROUP>(
                            co,
                            kd,
                            a,
                            (w.rs, w.cs),
                            (x, wp),
                            offs,
                            y,
                            accumulate,
                        );
                    } else {
                        groups_avx2::<GROUP>(co, kd, a, (w.rs, w.cs), (x, wp), offs, y, accumulate);
                    }
                }
                row += GROUP;
                continue;
            }
            // SAFETY: the largest input index is (batch−1)·ximage + (ci·s²−1)·plane +
            // (ho−1+(k−1)/s)·wp + wo−1+(k−1)/s·step < batch·ximage (checked sizes); outputs stay
            // inside the co·batch planes of ho·wo (either layout); tasks write disjoint rows.
            unsafe {
                direct_row(
                    co,
                    kd,
                    w.data.as_ptr().add(w.off),
                    w.rs,
                    w.cs,
                    xp.as_ptr().add(xb),
                    offs,
                    yp.get().add(yb),
                    cs,
                    wo,
                    accumulate,
                )
            };
            row += 1;
        }
    });
}

/// The bounds [`conv_direct`] and [`wgrad_direct`] share: whole output tiles (where the
/// kernel puts pixels in the lanes: `tiles`), enough padding, a large enough padded input.
#[allow(clippy::too_many_arguments)]
fn check_direct(
    name: &str,
    ci: usize,
    (k, s, step): (usize, usize, usize),
    batch: usize,
    xp: &[f32],
    (hp, wp): (usize, usize),
    (ho, wo): (usize, usize),
    tiles: bool,
) {
    assert!(!tiles || direct_fits(wo), "{name}: output width {wo}");
    assert!(
        s > 0 && k > 0 && step > 0,
        "{name}: stride {s}, kernel {k}, step {step}"
    );
    assert!(s == 1 || step == 1, "{name}: a column step needs stride 1");
    let reach = (k - 1) / s;
    assert!(
        hp >= ho + reach && wp >= wo + reach * step,
        "{name}: padding"
    );
    assert!(
        xp.len() >= ci * s * s * batch * hp * wp,
        "{name}: input size"
    );
}

/// `(plane, image)` strides of the direct kernels' padded input ([`phases`]: image-major):
/// how far phase `(c, ph, pw)` lies from the one before it, and image `b + 1` from image `b`.
fn padded_strides(ci: usize, s: usize, (hp, wp): (usize, usize)) -> (usize, usize) {
    (hp * wp, ci * s * s * hp * wp)
}

/// Where tap `p = (c·k + kh)·k + kw` of an output pixel lies in the phases of the padded input
/// (see [`conv_direct`]), relative to the pixel's own position:
/// `((c·s + kh mod s)·s + kw mod s)·plane + (kh/s)·wp + (kw/s)·step`.
pub(crate) fn tap_offsets(
    ci: usize,
    (k, s, step): (usize, usize, usize),
    plane: usize,
    wp: usize,
) -> Vec<usize> {
    (0..ci * k * k)
        .map(|p| {
            let (c, kh, kw) = (p / (k * k), (p / k) % k, p % k);
            ((c * s + kh % s) * s + kw % s) * plane + (kh / s) * wp + (kw / s) * step
        })
        .collect()
}

/// Maps narrower than 8 as batch-interleaved planes for [`conv_direct_step`] and
/// [`wgrad_direct_step`]: `out[c][i][j·lanes + b] = x̂[c][b][i][j]` for `b < batch`, zero for
/// `batch ≤ b < lanes`, with `x̂` the input zero-padded by `p` before the first row and column
/// and `e` after the last (`x` laid out as `layout` says). Returns the padded `(h + p + e,
/// (w + p + e)·lanes)`.
///
/// # Panics
/// When `lanes < batch` or `x` is too small (engine bugs).
pub fn interleave_batch(
    (x, layout): (&[f32], Planes),
    (c, batch): (usize, usize),
    (h, w): (usize, usize),
    (p, e): (usize, usize),
    lanes: usize,
    out: &mut Vec<f32>,
) -> (usize, usize) {
    assert!(
        lanes >= batch,
        "interleave: {lanes} lanes for {batch} images"
    );
    assert!(x.len() >= c * batch * h * w, "interleave: input size");
    let (hp, wp) = (h + p + e, (w + p + e) * lanes);
    let n = c * hp * wp;
    crate::conv::ensure(out, n);
    out[..n]
        .par_chunks_mut(hp * wp)
        .with_min_len(crate::min_items(hp * wp))
        .enumerate()
        .for_each(|(ch, o)| {
            o.fill(0.0);
            for b in 0..batch {
                let i = layout.plane(ch, b, c, batch);
                let src = &x[i * h * w..(i + 1) * h * w];
                for (r, row) in src.chunks_exact(w).enumerate() {
                    let at = (r + p) * wp + p * lanes + b;
                    for (j, &v) in row.iter().enumerate() {
                        o[at + j * lanes] = v;
                    }
                }
            }
        });
    (hp, wp)
}

/// The inverse of [`interleave_batch`] without padding: `y[c][b][i][j]` (laid out as `layout`
/// says) `=` (or `+=` when `accumulate`) `src[c][i][j·lanes + b]` for `b < batch`.
///
/// # Panics
/// When a buffer is too small (engine bugs).
pub fn deinterleave_batch(
    src: &[f32],
    (c, batch): (usize, usize),
    (h, w): (usize, usize),
    lanes: usize,
    (y, layout): (&mut [f32], Planes),
    accumulate: bool,
) {
    let hw = h * w;
    assert!(src.len() >= c * hw * lanes, "deinterleave: source size");
    assert!(y.len() >= c * batch * hw, "deinterleave: output size");
    y[..c * batch * hw]
        .par_chunks_mut(hw)
        .with_min_len(crate::min_items(hw))
        .enumerate()
        .for_each(|(i, plane)| {
            let (ch, b) = layout.unplane(i, c, batch);
            let s = &src[ch * hw * lanes..(ch + 1) * hw * lanes];
            for (q, v) in plane.iter_mut().enumerate() {
                let x = s[q * lanes + b];
                *v = if accumulate { *v + x } else { x };
            }
        });
}

/// The `s × s` phases of `planes` planes of `h × w` zero-padded by `p` on every side (the
/// input layout of [`conv_direct`] and [`wgrad_direct`]): `out[b][c][ph][pw][i][j] =
/// x̂[c][b][s·i + ph][s·j + pw]` for `x` laid out `[c][b][h][w]` (`planes = c·batch`), with
/// `x̂` the padded input (zero outside `x`). Each phase is `⌈(h + 2p)/s⌉ × ⌈(w + 2p)/s⌉`,
/// returned. For `s = 1`: the padded planes. ([`phases_of`] pads the two ends apart.)
///
/// Image-major, so that one image's channels lie together: a block of output rows reads
/// every input channel of one image, and with the images inside each channel
/// (`[c][ph][pw][b][i][j]`, before 2026-12-06) consecutive channels lay `batch` phases apart —
/// on 16-px maps at batch 16, 20 KiB, a new page per channel. Image-major: 1.3 KiB.
/// Measured (old and new `conv_time` alternated twice, Intel Xeon AVX-512, batch 16):
/// BLT_net_64's V4 lateral forward 15.1–15.3 → 14.3–14.6 ms, input gradient 16.1–16.2 →
/// 15.2–15.8, the top-downs' stride-2 convolutions 5–8 % faster, the stride-2 weight gradient
/// by channels into V2 7 % slower; a whole training step 2–3 % faster (same bits).
pub fn phases(
    x: &[f32],
    (ci, batch): (usize, usize),
    (h, w): (usize, usize),
    p: usize,
    s: usize,
    out: &mut Vec<f32>,
) -> (usize, usize) {
    phases_of(
        (x, Planes::ChannelMajor),
        (ci, batch),
        (h, w),
        (p, p),
        s,
        out,
    )
}

/// [`phases`] of `x` laid out as `layout` says (the phases are image-major either way), padded
/// by `p` zeros before the first row and column and `e ≥ p` after the last (TensorFlow's
/// `same` for even kernels: one more after): each phase `⌈(h + p + e)/s⌉ × ⌈(w + p + e)/s⌉`.
pub fn phases_of(
    (x, layout): (&[f32], Planes),
    (ci, batch): (usize, usize),
    (h, w): (usize, usize),
    (p, e): (usize, usize),
    s: usize,
    out: &mut Vec<f32>,
) -> (usize, usize) {
    let (hq, wq) = ((h + p + e).div_ceil(s), (w + p + e).div_ceil(s));
    let n = ci * s * s * batch * hq * wq;
    crate::conv::ensure(out, n);
    let src = |c: usize, b: usize| {
        let i = layout.plane(c, b, ci, batch);
        &x[i * h * w..(i + 1) * h * w]
    };
    out[..n]
        .par_chunks_mut(hq * wq)
        .with_min_len(crate::min_items(hq * wq))
        .enumerate()
        .for_each(|(plane, o)| {
            let b = plane / (ci * s * s);
            let c = (plane / (s * s)) % ci;
            let ph_pw = plane % (s * s);
            let (ph, pw) = (ph_pw / s, ph_pw % s);
            let xs = src(c, b);
            // Columns j whose source column s·j + pw − p lies inside the input.
            let j_lo = (p.saturating_sub(pw)).div_ceil(s);
            let j_hi = ((w + p).saturating_sub(pw)).div_ceil(s).min(wq);
            for (i, row) in o.chunks_exact_mut(wq).enumerate() {
                let r = (s * i + ph) as isize - p as isize;
                if r < 0 || r >= h as isize || j_lo >= j_hi {
                    row.fill(0.0);
                    continue;
                }
                let xr = &xs[r as usize * w..(r as usize + 1) * w];
                row[..j_lo].fill(0.0);
                if s == 1 {
                    row[j_lo..j_hi].copy_from_slice(&xr[j_lo + pw - p..j_hi + pw - p]);
                } else {
                    for (j, v) in row[j_lo..j_hi].iter_mut().enumerate() {
                        *v = xr[s * (j + j_lo) + pw - p];
                    }
                }
                row[j_hi..].fill(0.0);
            }
        });
    (hq, wq)
}

/// [`phases_of`]'s padded input as a slice, or `x` itself where that would be an exact copy
/// of it — stride 1, no padding, planes image-major (batch-major, or one image, or one
/// channel): the direct and lanes kernels then read the caller's array in place. They read
/// only inside the `ci·s²·batch·hp·wp` floats they are given (their bounds assertion; a test
/// runs the in-place passes on arrays that end at an unmapped page), so an array of exactly
/// that length is enough. Saves a copy of the input per call on unpadded (valid) stride-1
/// layers, and of `dy` in the input gradient of 1 × 1 layers on these kernels (bf16 passes;
/// float32 ones run as products, `Conv::pointwise`).
pub fn phases_or_input<'a>(
    x: (&'a [f32], Planes),
    (ci, batch): (usize, usize),
    (h, w): (usize, usize),
    (p, e): (usize, usize),
    s: usize,
    out: &'a mut Vec<f32>,
) -> (&'a [f32], (usize, usize)) {
    let n = ci * batch * h * w;
    let image_major = x.1 == Planes::BatchMajor || batch == 1 || ci == 1;
    if s == 1 && p == 0 && e == 0 && image_major && x.0.len() >= n {
        return (&x.0[..n], (h, w));
    }
    let (hp, wp) = phases_of(x, (ci, batch), (h, w), (p, e), s, out);
    (&out[..ci * s * s * batch * hp * wp], (hp, wp))
}

/// One output row of every channel.
///
/// # Safety
/// As [`conv_direct`]'s bounds; AVX2 + FMA must be available.
#[allow(clippy::too_many_arguments)]
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx,avx2,fma"))]
unsafe fn direct_row(
    co: usize,
    kd: usize,
    a: *const f32,
    ars: usize,
    acs: usize,
    x: *const f32,
    offs: &[usize],
    y: *mut f32,
    cs: usize,
    wo: usize,
    accumulate: bool,
) {
    let wide = avx512();
    let a_s = (ars, acs);
    let mut ow = 0;
    while ow < wo {
        let (xo, yo) = unsafe { (x.add(ow), y.add(ow)) };
        unsafe {
            if wide && wo - ow >= 64 && ROW_GROUPS.load(std::sync::atomic::Ordering::Relaxed) {
                blocks512(
                    64,
                    co,
                    kd,
                    (a, ars, acs),
                    (xo, 0),
                    offs,
                    (yo, cs, 0),
                    accumulate,
                );
                ow += 64;
            } else if wide && wo - ow >= 32 {
                rows_of_tiles512::<2>(co, kd, a, a_s, (xo, 16), offs, (yo, cs, 16), accumulate);
                ow += 32;
            } else if wide && wo - ow >= 16 {
                rows_of_tiles512::<1>(co, kd, a, a_s, (xo, 16), offs, (yo, cs, 16), accumulate);
                ow += 16;
            } else if wo - ow >= 16 {
                rows_of_tiles::<2>(co, kd, a, a_s, (xo, 8), offs, (yo, cs, 8), accumulate);
                ow += 16;
            } else {
                rows_of_tiles::<1>(co, kd, a, a_s, (xo, 8), offs, (yo, cs, 8), accumulate);
                ow += 8;
            }
        }
    }
}

/// Weight gradient of a direct convolution with stride `s`:
/// `dw[o][(c·k + kh)·k + kw] += Σ_{b, oh, ow} dy[o][b][oh][ow] · x̂[c][b][s·oh + kh][s·ow + kw]`,
/// the padded input `x̂` given as its phases, as for [`conv_direct`], and `dy` laid out as its
/// [`Planes`] say. Layers of at least 32 output channels put the channels in the vector lanes
/// (`wgrad_channels`), the others the pixels (`wgrad_pixels`); which one, and the order of
/// every sum, depend on the shapes only, so the result depends neither on the thread count nor
/// on the vector width. `parts` is scratch.
///
/// # Panics
/// When [`direct_fits`] is false, or a buffer is too small (engine bugs).
#[allow(clippy::too_many_arguments)]
pub fn wgrad_direct(
    co: usize,
    ci: usize,
    (k, stride): (usize, usize),
    batch: usize,
    xp: &[f32],
    (hp, wp): (usize, usize),
    (dy, layout): (&[f32], Planes),
    (ho, wo): (usize, usize),
    dw: &mut [f32],
    parts: &mut Vec<f32>,
) {
    let (ks, sh, so) = ((k, stride, 1), (hp, wp), (ho, wo));
    wgrad_direct_step(co, ci, ks, batch, xp, sh, (dy, layout), so, dw, parts);
}

/// [`wgrad_direct`] with a tap's columns `step` floats apart, as [`conv_direct_step`]: on
/// batch-interleaved maps ([`interleave_batch`], `dy` interleaved too), batch 1.
///
/// # Panics
/// As [`wgrad_direct`].
#[allow(clippy::too_many_arguments)]
pub fn wgrad_direct_step(
    co: usize,
    ci: usize,
    (k, stride, step): (usize, usize, usize),
    batch: usize,
    xp: &[f32],
    (hp, wp): (usize, usize),
    (dy, layout): (&[f32], Planes),
    (ho, wo): (usize, usize),
    dw: &mut [f32],
    parts: &mut Vec<f32>,
) {
    // With the channels in the lanes any output width runs; with pixels, whole tiles.
    let by_channels = wgrad_by_channels(co, step);
    check_direct(
        "wgrad_direct",
        ci,
        (k, stride, step),
        batch,
        xp,
        (hp, wp),
        (ho, wo),
        !by_channels,
    );
    assert!(
        dy.len() >= co * batch * ho * wo,
        "wgrad_direct: gradient size"
    );
    let kd = ci * k * k;
    assert!(dw.len() >= co * kd, "wgrad_direct: weight size");
    if co == 0 || kd == 0 || batch == 0 {
        return;
    }
    let (plane, ximage) = padded_strides(ci, stride, (hp, wp));
    let offs = tap_offsets(ci, (k, stride, step), plane, wp);
    let args = (co, kd, batch, xp, (ximage, wp), (dy, layout), (ho, wo));
    if by_channels {
        wgrad_channels(args, dw, parts, &offs);
    } else {
        wgrad_pixels(args, dw, parts, &offs);
    }
}

/// Whether [`wgrad_direct_step`] takes `wgrad_channels` (output channels in the vector lanes:
/// layers of at least 32 output channels on plain maps) or `wgrad_pixels` (pixels in the
/// lanes: fewer channels, whose vectors would run half empty, and batch-interleaved maps). A
/// function of the shapes alone, so the bits do not depend on the machine.
pub fn wgrad_by_channels(co: usize, step: usize) -> bool {
    co >= WGRAD_CHANNELS_MIN && step == 1
}

/// Output channels from which the weight gradient puts channels in the vector lanes
/// ([`wgrad_by_channels`]). Intel Xeon (AVX-512), `conv_time`, batch 16, ms per weight
/// gradient, pixels in the lanes → channels: BLT_net_64 V4 lateral (256 channels, 16 px) 26.6 →
/// 17.0, V2 lateral (128, 32 px) 23.0 → 18.8, ConvRNN cell 64 → 128 at 8 px 0.90 → 0.63;
/// `tiny`'s V1 (8 channels, 64 px) 0.50 → 1.21.
const WGRAD_CHANNELS_MIN: usize = 32;

/// The operands both weight-gradient kernels take: `co`, `kd`, `batch`, the padded input's
/// phases, their image stride and row width, the output gradient and its layout, the
/// output's `(ho, wo)`.
type WgradOperands<'a> = (
    usize,
    usize,
    usize,
    &'a [f32],
    (usize, usize),
    (&'a [f32], Planes),
    (usize, usize),
);

/// [`wgrad_direct_step`] with pixels in the vector lanes: the images in groups of
/// [`wgrad_group`] consecutive ones (one on maps of 16 × 16 and more, four on 8 × 8); each
/// group's partial gradient is one set of 8-lane float32 sums over its images' pixels in
/// order (register tiles of up to 6 output channels × 4 taps, `wgrad_tiles`), and the
/// partials are added to `dw` in group order. The work is shared out over groups and blocks
/// of output channels (each element's sums are the same whatever block it is in). `parts`
/// holds the partials.
fn wgrad_pixels(
    (co, kd, batch, xp, (xis, wp), (dy, layout), (ho, wo)): WgradOperands<'_>,
    dw: &mut [f32],
    parts: &mut Vec<f32>,
    offs: &[usize],
) {
    let wl = co * kd;
    let group = wgrad_group(batch, ho, wo);
    let groups = batch.div_ceil(group);
    crate::conv::ensure(parts, groups * wl);
    let wide = avx512vl();
    // Channel stride of `dy`, and where image b's plane of channel 0 starts.
    let (dys, image) = layout.strides(co, batch, ho * wo);
    // Blocks of output channels (whole register tiles) per group: enough tasks for every
    // thread when the groups are few.
    let mr = if wide { WGRAD_MR512 } else { WGRAD_MR };
    let tiles = co.div_ceil(mr);
    let per = (4 * rayon::current_num_threads())
        .div_ceil(groups)
        .clamp(1, tiles);
    let block = tiles.div_ceil(per) * mr;
    let tasks: Vec<(usize, usize, &mut [f32])> = parts[..groups * wl]
        .chunks_mut(wl)
        .enumerate()
        .flat_map(|(g, part)| {
            part.chunks_mut(block * kd)
                .enumerate()
                .map(move |(j, rows)| (g, j * block, rows))
        })
        .collect();
    tasks.into_par_iter().for_each(|(g, o, rows)| {
        let (b0, n) = (g * group, group.min(batch - g * group));
        let h = rows.len() / kd;
        // SAFETY: for images b0..b0 + n, the largest input index read is offs[kd−1] +
        // (b0 + n − 1)·xis + (ho−1)·wp + wo − 1 < batch·xis and the largest gradient index,
        // (o + h − 1)·dys + (b0 + n − 1)·image + ho·wo − 1, lies inside the co·batch planes
        // of ho·wo (either layout; checked).
        let kernel = if wide { wgrad_image512 } else { wgrad_image };
        unsafe {
            kernel(
                h,
                kd,
                (xp.as_ptr().add(b0 * xis), xis),
                wp,
                offs,
                (dy.as_ptr().add(o * dys + b0 * image), image),
                dys,
                (n, ho, wo),
                rows,
            )
        }
    });
    // Each element summed over the groups in order (the same bits with any thread count),
    // in parallel over stretches of `dw`.
    let parts = &parts[..groups * wl];
    dw[..wl]
        .par_chunks_mut(crate::ops::EW_CHUNK)
        .enumerate()
        .for_each(|(i, d)| {
            let at = i * crate::ops::EW_CHUNK;
            crate::simd::run(
                #[inline(always)]
                || {
                    for part in parts.chunks(wl) {
                        d.iter_mut().zip(&part[at..]).for_each(|(d, p)| *d += p);
                    }
                },
            )
        });
}

/// [`wgrad_direct_step`] with output channels in the vector lanes: the gradient transposed
/// to `[image][pixel][channel]` (channels padded to whole vectors); tasks of at most two
/// vectors of output channels × a run of taps, each summing every image in order into its
/// own block of `dw`, in register tiles of up to 12 taps × 2 vectors (`wgrad_oc`): per
/// pixel, two loads and one broadcast per tap, and no lane sums. Each weight's gradient is
/// one chain of fused multiply-adds per [`WGRAD_CHUNK_PIXELS`]-pixel chunk of rows, the chunks
/// added in order, image by image, to a zero sum that is then added to `dw`. `parts` holds
/// the transposed gradient and the tasks' sums.
fn wgrad_channels(
    (co, kd, batch, xp, (xis, wp), (dy, layout), (ho, wo)): WgradOperands<'_>,
    dw: &mut [f32],
    parts: &mut Vec<f32>,
    offs: &[usize],
) {
    let wide = avx512vl();
    let (lanes, tmax) = if wide { (16, 12) } else { (8, 6) };
    // `dy` as `[image][pixel][channel]`, channels padded with zeros to whole vectors.
    let pixels = ho * wo;
    let cp = co.next_multiple_of(lanes);
    let (dys, image) = layout.strides(co, batch, pixels);
    // Tasks: blocks of at most two vectors of output channels × runs of taps, at least one
    // per thread; each sums every image into its own block of `dw`. The taps are split only
    // as far as the threads need: every run reads all of its channels' gradient again (on
    // BLT_net_64's V1, 64 channels at 64 px, four runs per block took 25 ms where one took
    // 22).
    let vectors = cp / lanes;
    let oblocks = vectors.div_ceil(2);
    let runs = rayon::current_num_threads()
        .div_ceil(oblocks)
        .clamp(1, kd.div_ceil(tmax));
    let run = kd.div_ceil(runs);
    let blocks: Vec<(usize, usize, usize, usize)> = (0..oblocks)
        .flat_map(|j| {
            let v = (vectors - 2 * j).min(2);
            (0..kd)
                .step_by(run)
                .map(move |p| (2 * j * lanes, v, p, run.min(kd - p)))
        })
        .collect();
    let (tl, bl) = (batch * pixels * cp, run * 2 * lanes);
    // The transposed gradient from a 64-byte boundary, so that every vector of it lies in one
    // cache line (V1, V2 and V4's weight gradients 2–7 % faster than from malloc's 16 bytes).
    crate::conv::ensure(parts, tl + blocks.len() * bl + 15);
    let skew = parts.as_ptr().align_offset(64).min(15);
    let (dyt, bufs) = parts[skew..].split_at_mut(tl);
    dyt.par_chunks_mut(pixels * cp)
        .enumerate()
        .for_each(|(b, t)| transpose_gradient(&dy[b * image..], dys, co, t, cp));
    let args = WgradArgs {
        x: xp.as_ptr(),
        xis,
        wp,
        dy: dyt.as_ptr(),
        cp,
        images: batch,
        ho,
        wo,
        chunk_rows: (WGRAD_CHUNK_PIXELS / wo.max(1)).max(1),
    };
    let out = SendPtr(dw.as_mut_ptr());
    let task = if wide { wgrad_task512 } else { wgrad_task };
    blocks
        .par_iter()
        .zip(bufs.par_chunks_mut(bl))
        .for_each(|(&(o, v, p, q), buf)| {
            let buf = &mut buf[..q * v * lanes];
            buf.fill(0.0);
            // SAFETY: channel o < cp of every pixel of `dyt`.
            let args = unsafe { args.at_channel(o) };
            // SAFETY: for every image, the largest input index read is offs[kd−1] +
            // (batch − 1)·xis + (ho − 1)·wp + wo − 1 < batch·xis (checked), and channels
            // o..o + v·lanes ≤ cp of every pixel of `dyt`; `buf` holds q × v·lanes.
            unsafe { task(v, args, &offs[p..p + q], buf.as_mut_ptr()) };
            // Rows o..o + v·lanes (those below co), columns p..p + q of `dw` (co × kd,
            // checked) belong to this task alone.
            let vl = v * lanes;
            for i in 0..vl.min(co - o) {
                for j in 0..q {
                    // SAFETY: (o + i)·kd + p + j < co·kd.
                    unsafe { *out.get().add((o + i) * kd + p + j) += buf[j * vl + i] };
                }
            }
        });
}

/// Output pixels per chain of [`wgrad_direct`]'s sums: whole rows of one image, at least
/// this many (or one row).
const WGRAD_CHUNK_PIXELS: usize = 256;

/// `t[pixel·cp + o] = g[o·dys + pixel]` for `o < co` (one image's gradient, channel `o`'s
/// plane `dys` floats apart), zero for `co ≤ o < cp`; `t` holds the image's pixels × `cp`.
/// Blocks of 8 channels × 8 pixels are transposed in registers where the CPU has AVX.
fn transpose_gradient(g: &[f32], dys: usize, co: usize, t: &mut [f32], cp: usize) {
    let pixels = t.len() / cp;
    assert!(
        co <= cp && (co == 0 || g.len() >= (co - 1) * dys + pixels),
        "transpose_gradient: sizes"
    );
    let fast = available();
    for p0 in (0..pixels).step_by(8) {
        let n = (pixels - p0).min(8);
        let block = &mut t[p0 * cp..(p0 + n) * cp];
        let mut o0 = 0;
        if fast && n == 8 {
            while o0 + 8 <= co {
                // SAFETY: rows o0..o0 + 8 of `g` hold pixels p0..p0 + 8 (checked above);
                // `block` holds 8 pixels × cp ≥ o0 + 8 channels.
                unsafe {
                    transpose8(
                        g.as_ptr().add(o0 * dys + p0),
                        dys,
                        block.as_mut_ptr().add(o0),
                        cp,
                    )
                };
                o0 += 8;
            }
        }
        for o in o0..co {
            for (i, &s) in g[o * dys + p0..o * dys + p0 + n].iter().enumerate() {
                block[i * cp + o] = s;
            }
        }
        for i in 0..n {
            block[i * cp + co..(i + 1) * cp].fill(0.0);
        }
    }
}

/// `dst[i·ds + r] = src[r·ss + i]` for `r, i < 8`: an 8 × 8 block transposed in registers.
///
/// # Safety
/// Both blocks must lie inside their buffers; the CPU must have AVX.
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx"))]
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
unsafe fn transpose8(src: *const f32, ss: usize, dst: *mut f32, ds: usize) {
    #[cfg(target_arch = "x86_64")]
    unsafe {
        use std::arch::x86_64::*;
        let r: [__m256; 8] = std::array::from_fn(|i| _mm256_loadu_ps(src.add(i * ss)));
        // Pairs of rows interleaved, then pairs of pairs: columns c and c + 4 of four rows.
        let t: [__m256; 8] = std::array::from_fn(|i| {
            let (a, b) = (r[2 * (i / 2)], r[2 * (i / 2) + 1]);
            if i % 2 == 0 {
                _mm256_unpacklo_ps(a, b)
            } else {
                _mm256_unpackhi_ps(a, b)
            }
        });
        let u: [__m256; 8] = std::array::from_fn(|i| {
            let (h, j) = (4 * (i / 4), (i % 4) / 2);
            let (a, b) = (t[h + j], t[h + j + 2]);
            if i % 2 == 0 {
                _mm256_shuffle_ps::<0x44>(a, b)
            } else {
                _mm256_shuffle_ps::<0xEE>(a, b)
            }
        });
        for c in 0..4 {
            _mm256_storeu_ps(
                dst.add(c * ds),
                _mm256_permute2f128_ps::<0x20>(u[c], u[c + 4]),
            );
            _mm256_storeu_ps(
                dst.add((c + 4) * ds),
                _mm256_permute2f128_ps::<0x31>(u[c], u[c + 4]),
            );
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    crate::simd::x86_only();
}

/// The operands of one weight-gradient task: the padded input's phases (`x`, images `xis`
/// apart, rows `wp` apart), the transposed gradient (`dy` at the task's first channel,
/// pixels `cp` apart), `images`, the output's `ho × wo`, rows per chain.
#[derive(Clone, Copy)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
struct WgradArgs {
    x: *const f32,
    xis: usize,
    wp: usize,
    dy: *const f32,
    cp: usize,
    images: usize,
    ho: usize,
    wo: usize,
    chunk_rows: usize,
}
impl WgradArgs {
    /// The same operands with `dy` from channel `o` on.
    ///
    /// # Safety
    /// `o < cp`.
    unsafe fn at_channel(self, o: usize) -> Self {
        Self {
            dy: unsafe { self.dy.add(o) },
            ..self
        }
    }
}

// SAFETY: read-only views handed to parallel tasks.
unsafe impl Send for WgradArgs {}
unsafe impl Sync for WgradArgs {}

/// The weight-gradient kernels of one vector width: `$task` sums every image into `buf`
/// (`offs.len()` taps × `v·$lanes` channels, tap-major, accumulated) in tiles of as many taps
/// as the largest of the listed counts that fits (12 on AVX-512, 6 on AVX2: `wgrad_channels`'
/// `tmax`) × `v` (1 or 2) vectors of output channels; `$tile::<V, T>` is one tile over one
/// chunk of rows of one image: per pixel, `V` loads of the gradient's channels and `T`
/// broadcasts of the input feed `V·T` multiply-adds. Each weight's gradient is one chain of
/// fused multiply-adds over the chunk's pixels in order, added to `buf` chunk by chunk, image
/// by image: the lanes are output channels, so the vector width, the tile and the task do not
/// change the bits.
macro_rules! wgrad_oc {
    ($task:ident, $tile:ident, $feature:literal, $lanes:literal, $vt:ty,
     ($zero:ident, $load:ident, $set1:ident, $fma:ident, $add:ident, $store:ident),
     [$($t:literal),*]) => {
        /// See [`wgrad_oc`].
        ///
        /// # Safety
        /// As [`wgrad_direct`]'s bounds; `buf` holds `offs.len()·v·$lanes` floats; the CPU
        /// must have the function's target features.
        #[cfg_attr(target_arch = "x86_64", target_feature(enable = $feature))]
        unsafe fn $task(v: usize, a: WgradArgs, offs: &[usize], buf: *mut f32) {
            for b in 0..a.images {
                for r0 in (0..a.ho).step_by(a.chunk_rows) {
                    let rows = (r0, (r0 + a.chunk_rows).min(a.ho));
                    let mut p = 0;
                    while p < offs.len() {
                        let (rest, o) = (offs.len() - p, &offs[p..]);
                        // SAFETY: taps p.. of the caller's `buf`.
                        let out = unsafe { buf.add(p * v * $lanes) };
                        let n = unsafe {
                            match (v, rest) {
                                $((2, r) if r >= $t => {
                                    $tile::<2, $t>(a, b, rows, o, out);
                                    $t
                                })*
                                $((_, r) if r >= $t => {
                                    $tile::<1, $t>(a, b, rows, o, out);
                                    $t
                                })*
                                _ => unreachable!("wgrad: no taps left"),
                            }
                        };
                        p += n;
                    }
                }
            }
        }

        /// See [`wgrad_oc`]: `out[(j·V + v)·$lanes + i]` += the sum for tap `j`, channel
        /// `v·$lanes + i`.
        ///
        /// # Safety
        /// As [`wgrad_direct`]'s bounds, `out` inside the task's `buf`; the CPU must have the
        /// function's target features.
        #[inline]
        #[cfg_attr(target_arch = "x86_64", target_feature(enable = $feature))]
        #[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
        unsafe fn $tile<const V: usize, const T: usize>(
            a: WgradArgs,
            b: usize,
            (r0, r1): (usize, usize),
            offs: &[usize],
            out: *mut f32,
        ) {
            #[cfg(target_arch = "x86_64")]
            unsafe {
                use std::arch::x86_64::*;
                let off: [usize; T] = std::array::from_fn(|j| offs[j]);
                let mut acc = [[$zero(); V]; T];
                for oh in r0..r1 {
                    let xr = a.x.add(b * a.xis + oh * a.wp);
                    let dr = a.dy.add((b * a.ho + oh) * a.wo * a.cp);
                    for ow in 0..a.wo {
                        let d: [$vt; V] =
                            std::array::from_fn(|v| $load(dr.add(ow * a.cp + v * $lanes)));
                        for j in 0..T {
                            let xb = $set1(*xr.add(off[j] + ow));
                            for v in 0..V {
                                acc[j][v] = $fma(d[v], xb, acc[j][v]);
                            }
                        }
                    }
                }
                for (j, acc) in acc.iter().enumerate() {
                    for (v, &acc) in acc.iter().enumerate() {
                        let o = out.add((j * V + v) * $lanes);
                        $store(o, $add($load(o), acc));
                    }
                }
            }
            #[cfg(not(target_arch = "x86_64"))]
            crate::simd::x86_only();
        }
    };
}

wgrad_oc!(
    wgrad_task,
    ctile,
    "avx,avx2,fma",
    8,
    __m256,
    (
        _mm256_setzero_ps,
        _mm256_loadu_ps,
        _mm256_set1_ps,
        _mm256_fmadd_ps,
        _mm256_add_ps,
        _mm256_storeu_ps
    ),
    [6, 4, 3, 2, 1]
);
wgrad_oc!(
    wgrad_task512,
    ctile512,
    "avx,avx2,fma,avx512f,avx512vl",
    16,
    __m512,
    (
        _mm512_setzero_ps,
        _mm512_loadu_ps,
        _mm512_set1_ps,
        _mm512_fmadd_ps,
        _mm512_add_ps,
        _mm512_storeu_ps
    ),
    [12, 9, 6, 4, 3, 2, 1]
);

/// The weight-gradient kernels of one register budget: `$image` is the weight gradient of a
/// group of consecutive images ([`wgrad_group`]) into `part` (`co × kd`, overwritten), in tiles
/// of at most `$mr` output channels × 4 taps; `$tile::<R, Q>` is one `R × Q` tile summed over
/// every pixel of the group's images. Each element is one chain of fused multiply-adds over
/// those pixels 8 lanes at a time, image by image and in order, then the same sum of the 8
/// lanes, whatever the tile height: so both budgets give the same bits. Per 8 pixels, `R + Q` loads feed `R·Q` multiply-adds (3 × 4 in 16 registers,
/// 6 × 4 in AVX-512VL's 32).
macro_rules! wgrad_tiles {
    ($image:ident, $tile:ident, $feature:literal, $mr:expr, [$($h:literal),*]) => {
        /// See [`wgrad_tiles`].
        ///
        /// # Safety
        /// As [`wgrad_direct`]'s bounds; the CPU must have the function's target features.
        #[allow(clippy::too_many_arguments)]
        #[cfg_attr(target_arch = "x86_64", target_feature(enable = $feature))]
        unsafe fn $image(
            co: usize,
            kd: usize,
            (x, xis): (*const f32, usize),
            wp: usize,
            offs: &[usize],
            (dy, dis): (*const f32, usize),
            dys: usize,
            (images, ho, wo): (usize, usize, usize),
            part: &mut [f32],
        ) {
            assert!(part.len() >= co * kd, "wgrad: part size");
            let tiles = co.div_ceil($mr);
            let mut o = 0;
            for t in 0..tiles {
                let h = (co - o).div_ceil(tiles - t);
                let mut p = 0;
                while p < kd {
                    let q = (kd - p).min(4);
                    let args = (
                        (x, xis),
                        wp,
                        &offs[p..p + q],
                        (unsafe { dy.add(o * dys) }, dis),
                        dys,
                        (images, ho, wo),
                    );
                    // SAFETY: rows o..o + h and columns p..p + q of `part` (co × kd).
                    let out = (unsafe { part.as_mut_ptr().add(o * kd + p) }, kd);
                    unsafe {
                        match (h, q) {
                            $(($h, 4) => $tile::<$h, 4>(args, out),
                            ($h, 3) => $tile::<$h, 3>(args, out),
                            ($h, 2) => $tile::<$h, 2>(args, out),
                            ($h, _) => $tile::<$h, 1>(args, out),)*
                            (_, 4) => $tile::<1, 4>(args, out),
                            (_, 3) => $tile::<1, 3>(args, out),
                            (_, 2) => $tile::<1, 2>(args, out),
                            _ => $tile::<1, 1>(args, out),
                        }
                    }
                    p += q;
                }
                o += h;
            }
        }

        /// See [`wgrad_tiles`]: `out.0[r·out.1 + j]` = the sum for channel `r`, tap `j`.
        ///
        /// # Safety
        /// As [`wgrad_direct`]'s bounds, `out` inside `part`; the CPU must have the
        /// function's target features.
        #[inline]
        #[cfg_attr(target_arch = "x86_64", target_feature(enable = $feature))]
        #[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
        unsafe fn $tile<const R: usize, const Q: usize>(
            ((x, xis), wp, offs, (dy, dis), dys, (images, ho, wo)): WArgs<'_>,
            (out, ors): (*mut f32, usize),
        ) {
            #[cfg(target_arch = "x86_64")]
            unsafe {
                use std::arch::x86_64::*;
                let mut acc = [[_mm256_setzero_ps(); Q]; R];
                for b in 0..images {
                    for oh in 0..ho {
                        let xr = x.add(b * xis + oh * wp);
                        let dr = dy.add(b * dis + oh * wo);
                        for s in (0..wo).step_by(8) {
                            let mut dv = [_mm256_setzero_ps(); R];
                            for (r, d) in dv.iter_mut().enumerate() {
                                *d = _mm256_loadu_ps(dr.add(r * dys + s));
                            }
                            for j in 0..Q {
                                let xv = _mm256_loadu_ps(xr.add(offs[j] + s));
                                for r in 0..R {
                                    acc[r][j] = _mm256_fmadd_ps(dv[r], xv, acc[r][j]);
                                }
                            }
                        }
                    }
                }
                // The R·Q lane sums, eight at a time ([`lane_sums`]), in row-major order.
                let mut g = 0;
                while g < R * Q {
                    let mut v = [_mm256_setzero_ps(); 8];
                    for (i, v) in v.iter_mut().enumerate().take(R * Q - g) {
                        *v = acc[(g + i) / Q][(g + i) % Q];
                    }
                    let mut sums = [0.0f32; 8];
                    _mm256_storeu_ps(sums.as_mut_ptr(), lane_sums(v));
                    for (i, &s) in sums.iter().enumerate().take(R * Q - g) {
                        *out.add((g + i) / Q * ors + (g + i) % Q) = s;
                    }
                    g += 8;
                }
            }
            #[cfg(not(target_arch = "x86_64"))]
            crate::simd::x86_only();
        }
    };
}

/// The lane sums of eight 8-lane vectors, `((l0 + l4) + (l1 + l5)) + ((l2 + l6) + (l3 + l7))`
/// for each (in that order, so the same bits as the scalar sum), as one vector: lane i is
/// `v[i]`'s sum. Fifteen shuffles and additions instead of 8 stores and 56 scalar loads and
/// additions; on a small map (8 × 8: one vector per row) the scalar sums cost as much as the
/// tile's multiply-adds.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx")]
fn lane_sums(v: [std::arch::x86_64::__m256; 8]) -> std::arch::x86_64::__m256 {
    use std::arch::x86_64::*;
    // hadd works within 128-bit halves: pairing v[i] with v[i + 4] puts the sums in order.
    let h1 = _mm256_hadd_ps(halves(v[0], v[4]), halves(v[1], v[5]));
    let h2 = _mm256_hadd_ps(halves(v[2], v[6]), halves(v[3], v[7]));
    _mm256_hadd_ps(h1, h2)
}

/// `[x_i + x_{i+4} (i < 4), y_i + y_{i+4}]`: the first level of [`lane_sums`]' sums.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx")]
fn halves(x: std::arch::x86_64::__m256, y: std::arch::x86_64::__m256) -> std::arch::x86_64::__m256 {
    use std::arch::x86_64::*;
    _mm256_add_ps(
        _mm256_permute2f128_ps::<0x20>(x, y),
        _mm256_permute2f128_ps::<0x31>(x, y),
    )
}

/// The tiles' arguments: `(x, image stride)`, `wp`, the taps' offsets, `(dy, image stride)`,
/// `dy`'s channel stride, `(images, ho, wo)`.
type WArgs<'a> = (
    (*const f32, usize),
    usize,
    &'a [usize],
    (*const f32, usize),
    usize,
    (usize, usize, usize),
);

/// Pixels a weight-gradient group sums before its lanes are added: [`wgrad_group`].
const WGRAD_GROUP_PIXELS: usize = 256;

/// Images per group of [`wgrad_direct`]: as many as make up `WGRAD_GROUP_PIXELS` output
/// pixels (1 on maps of 16 × 16 and more, 4 on 8 × 8, 16 on 4 × 4), at most `batch`. On small
/// maps one image per partial sum spent as much on the tiles' lane sums and on writing and
/// adding the partials as on the multiply-adds. A function of the shapes alone, so the bits
/// do not depend on the machine or the thread count.
pub fn wgrad_group(batch: usize, ho: usize, wo: usize) -> usize {
    (WGRAD_GROUP_PIXELS / (ho * wo).max(1)).clamp(1, batch.max(1))
}

/// Output channels per weight-gradient tile: AVX2's 16 registers, AVX-512VL's 32.
const WGRAD_MR: usize = 3;
const WGRAD_MR512: usize = 6;

wgrad_tiles!(wgrad_image, wtile, "avx,avx2,fma", WGRAD_MR, [3, 2]);
wgrad_tiles!(
    wgrad_image512,
    wtile512,
    "avx,avx2,fma,avx512f,avx512vl",
    WGRAD_MR512,
    [6, 5, 4, 3, 2]
);

/// `d[j] = plane[t[j]]` for every plane: planes `stride` floats apart in `src`, their
/// gathered copies `t.len()` apart in `dst` (as many as both hold). The loads are unchecked
/// (the table is checked once per call, not once per load).
///
/// # Panics
/// When an offset in `t` is not below `stride`.
pub(crate) fn gather_planes(dst: &mut [f32], src: &[f32], stride: usize, t: &[u32]) {
    assert!(
        t.iter().all(|&i| (i as usize) < stride),
        "gather_planes: offset outside a plane"
    );
    if t.is_empty() {
        return;
    }
    crate::simd::run(
        #[inline(always)]
        || {
            for (d, plane) in dst.chunks_exact_mut(t.len()).zip(src.chunks_exact(stride)) {
                for (d, &i) in d.iter_mut().zip(t) {
                    // SAFETY: `i < stride == plane.len()`, checked above for every offset.
                    *d = unsafe { *plane.get_unchecked(i as usize) };
                }
            }
        },
    )
}

/// `dst.copy_from_slice(src)` for short rows, with inlined 8-float moves: the library's
/// `memcpy` pays a call and, on some CPUs, a slow `rep movsb` start for every few-float row.
#[inline(always)]
pub(crate) fn copy_small(dst: &mut [f32], src: &[f32]) {
    let src = &src[..dst.len()];
    let mut d8 = dst.chunks_exact_mut(8);
    let mut s8 = src.chunks_exact(8);
    for (d, s) in (&mut d8).zip(&mut s8) {
        let s: &[f32; 8] = s.try_into().unwrap_or(&[0.0; 8]);
        d.copy_from_slice(s);
    }
    for (d, s) in d8.into_remainder().iter_mut().zip(s8.remainder()) {
        *d = std::hint::black_box(*s);
    }
}

/// `row[M·k + q] (+)= src[q][k]` for `k < tw`, `q < M`: M column phases interleaved into a
/// row (the columns of Winograd's output tiles).
#[inline(always)]
pub(crate) fn interleave<const M: usize>(
    row: &mut [f32],
    src: [&[f32]; M],
    tw: usize,
    accumulate: bool,
) {
    let row = &mut row[..M * tw];
    let src: [&[f32]; M] = std::array::from_fn(|q| &src[q][..tw]);
    if accumulate {
        for (k, c) in row.chunks_exact_mut(M).enumerate() {
            for q in 0..M {
                c[q] += src[q][k];
            }
        }
    } else {
        for (k, c) in row.chunks_exact_mut(M).enumerate() {
            for q in 0..M {
                c[q] = src[q][k];
            }
        }
    }
}

/// `a1[l] += dx̂`, `a2[l] += dx̂ · x̂` over the first `full` (a multiple of 8) elements of a
/// row, element `i` into lane `i mod 8`, with `x̂ = (z − μ)·r`, `dx̂ = (da·γ if γ·x̂ + β > 0
/// else 0)` (the forward's ReLU mask) both widened to f64: [`crate::ops::ln_relu_backward`]'s per-image sums. On x86-64 with
/// AVX-512F or AVX2 by explicit vectors (the portable loop compiles to scalar code with
/// masked moves there: per lane the same operations, so the same bits).
#[inline(always)]
pub(crate) fn ln_back_sums(
    (dr, zr, gg, bb): (&[f32], &[f32], &[f32], &[f32]),
    full: usize,
    (m, r): (f32, f32),
    (a1, a2): (&mut [f64; 8], &mut [f64; 8]),
) {
    let rows = [dr, zr, gg, bb];
    assert!(full.is_multiple_of(8) && rows.iter().all(|v| v.len() >= full));
    #[cfg(target_arch = "x86_64")]
    {
        if crate::simd::avx512() {
            // SAFETY: AVX-512F present; every load is inside the first `full` elements.
            unsafe { ln_back_sums512(rows, full, (m, r), (a1, a2)) };
            return;
        }
        if crate::simd::avx2() {
            // SAFETY: AVX2 present; as above.
            unsafe { ln_back_sums256(rows, full, (m, r), (a1, a2)) };
            return;
        }
    }
    let (dr, zr, gg, bb) = (&dr[..full], &zr[..full], &gg[..full], &bb[..full]);
    let e = <[f32]>::chunks_exact;
    for (((d8, z8), g8), b8) in e(dr, 8).zip(e(zr, 8)).zip(e(gg, 8)).zip(e(bb, 8)) {
        for l in 0..8 {
            let xh = (z8[l] - m) * r;
            let p = (d8[l] * g8[l]) as f64;
            let dxh = if crate::ops::ln_affine(g8[l], xh, b8[l]) > 0.0 {
                p
            } else {
                0.0
            };
            a1[l] += dxh;
            a2[l] += dxh * xh as f64;
        }
    }
}

/// One group of 8 of [`ln_back_sums`] in float32, from element `i` of the four rows:
/// `(p, x̂)` with `x̂ = (z − μ)·r` and `p = da·γ` where `γ·x̂ + β > 0` (false for NaN; a product
/// and a sum, not fused, as [`crate::ops::ln_affine`]), else +0.
///
/// # Safety
/// AVX present; the rows hold at least `i + 8` elements.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
#[inline]
unsafe fn ln_back_group(
    [dr, zr, gg, bb]: [&[f32]; 4],
    i: usize,
    (mv, rv): (std::arch::x86_64::__m256, std::arch::x86_64::__m256),
) -> (std::arch::x86_64::__m256, std::arch::x86_64::__m256) {
    use std::arch::x86_64::*;
    // SAFETY: the caller's.
    unsafe {
        let g = _mm256_loadu_ps(gg.as_ptr().add(i));
        let p = _mm256_mul_ps(_mm256_loadu_ps(dr.as_ptr().add(i)), g);
        let x = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(zr.as_ptr().add(i)), mv), rv);
        let v = _mm256_add_ps(_mm256_mul_ps(g, x), _mm256_loadu_ps(bb.as_ptr().add(i)));
        let on = _mm256_cmp_ps::<_CMP_GT_OQ>(v, _mm256_setzero_ps());
        (_mm256_and_ps(on, p), x)
    }
}

/// [`ln_back_sums`] on AVX-512F: the eight lanes as one vector of doubles.
///
/// # Safety
/// AVX-512F present; the four rows hold at least `full` elements.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,avx2,fma,avx512f")]
unsafe fn ln_back_sums512(
    rows: [&[f32]; 4],
    full: usize,
    (m, r): (f32, f32),
    (a1, a2): (&mut [f64; 8], &mut [f64; 8]),
) {
    use std::arch::x86_64::*;
    // SAFETY: the caller's.
    unsafe {
        let (mut s1, mut s2) = (_mm512_loadu_pd(a1.as_ptr()), _mm512_loadu_pd(a2.as_ptr()));
        let mr = (_mm256_set1_ps(m), _mm256_set1_ps(r));
        for i in (0..full).step_by(8) {
            let (p, x) = ln_back_group(rows, i, mr);
            let (p, x) = (_mm512_cvtps_pd(p), _mm512_cvtps_pd(x));
            s1 = _mm512_add_pd(s1, p);
            s2 = _mm512_add_pd(s2, _mm512_mul_pd(p, x));
        }
        _mm512_storeu_pd(a1.as_mut_ptr(), s1);
        _mm512_storeu_pd(a2.as_mut_ptr(), s2);
    }
}

/// [`ln_back_sums`] on AVX2: lanes 0–3 and 4–7 as two vectors of doubles.
///
/// # Safety
/// AVX2 present; the four rows hold at least `full` elements.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,avx2,fma")]
unsafe fn ln_back_sums256(
    rows: [&[f32]; 4],
    full: usize,
    (m, r): (f32, f32),
    (a1, a2): (&mut [f64; 8], &mut [f64; 8]),
) {
    use std::arch::x86_64::*;
    // SAFETY: the caller's.
    unsafe {
        let (a1p, a2p) = (a1.as_mut_ptr(), a2.as_mut_ptr());
        let mut s = [a1p, a1p.add(4), a2p, a2p.add(4)].map(|q| _mm256_loadu_pd(q));
        let mr = (_mm256_set1_ps(m), _mm256_set1_ps(r));
        for i in (0..full).step_by(8) {
            let (p, x) = ln_back_group(rows, i, mr);
            let halves = |v| {
                (
                    _mm256_cvtps_pd(_mm256_castps256_ps128(v)),
                    _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(v)),
                )
            };
            let ((plo, phi), (xlo, xhi)) = (halves(p), halves(x));
            s[0] = _mm256_add_pd(s[0], plo);
            s[1] = _mm256_add_pd(s[1], phi);
            s[2] = _mm256_add_pd(s[2], _mm256_mul_pd(plo, xlo));
            s[3] = _mm256_add_pd(s[3], _mm256_mul_pd(phi, xhi));
        }
        for (q, v) in [a1p, a1p.add(4), a2p, a2p.add(4)].into_iter().zip(s) {
            _mm256_storeu_pd(q, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Held by the tests that switch the process-wide tile flags, so they never interleave.
    static FLAGS: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// Test weights, `[co][ci·k²]` flattened.
    fn weights(n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 7 % 19) as f32 - 9.0) * 0.037)
            .collect()
    }

    /// Test activations.
    fn activations(n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 5 % 23) as f32 - 11.0) * 0.013)
            .collect()
    }

    /// [`conv_direct`] of `(co, ci, k, s)` channel-major, accumulating onto 0.25 everywhere.
    fn direct(
        w: &[f32],
        (co, ci, k, s): (usize, usize, usize, usize),
        (batch, xp, sh): (usize, &[f32], (usize, usize)),
        (ho, wo): (usize, usize),
    ) -> Vec<f32> {
        let mut y = vec![0.25f32; co * batch * ho * wo];
        let a = Small {
            data: w,
            off: 0,
            rs: ci * k * k,
            cs: 1,
        };
        let out = (&mut y[..], Planes::ChannelMajor);
        conv_direct(a, co, ci, (k, s), batch, xp, sh, (ho, wo), out, true);
        y
    }

    /// The 16-lane tiles give the same bits as the 8-lane ones (same multiply-add chain per
    /// element): a direct convolution 48 columns wide (32 + 16) with 13 output channels
    /// (tiles of 7 + 6 rows) and a thin product 100 columns wide, accumulating.
    #[test]
    fn wide_tiles_give_the_same_bits() {
        let _flags = FLAGS.lock().unwrap_or_else(|e| e.into_inner());
        if !available() {
            eprintln!("skipped: no AVX2 + FMA");
            return;
        }
        if !avx512() {
            eprintln!("no AVX-512F here: both runs take the 8-lane tiles");
        }
        let (co, ci, k, batch, ho, wo) = (13usize, 5usize, 3usize, 2usize, 6usize, 48usize);
        let (hp, wp) = (ho + k - 1, wo + k - 1);
        let w = weights(co * ci * k * k);
        let xp = activations(ci * batch * hp * wp);
        let run = |wide: bool| {
            set_wide_tiles(wide);
            let y = direct(&w, (co, ci, k, 1), (batch, &xp, (hp, wp)), (ho, wo));
            let a = Small {
                data: &w,
                off: 0,
                rs: ci * k * k,
                cs: 1,
            };
            let mut c = vec![0.5f32; co * 100];
            small_m(co, 100, 40, a, &xp, 3, 90, &mut c, 0, 100, true);
            // Weight gradient (tiles of 6 channels on AVX-512VL, 3 on AVX2): the output
            // `y` as the incoming gradient, accumulated onto a nonzero `dw`.
            let mut dw = vec![0.125f32; co * ci * k * k];
            let mut parts = Vec::new();
            let (x, sh) = (&xp, (hp, wp));
            wgrad_direct(
                co,
                ci,
                (k, 1),
                batch,
                x,
                sh,
                (&y[..], Planes::ChannelMajor),
                (ho, wo),
                &mut dw,
                &mut parts,
            );
            set_wide_tiles(true);
            (y, c, dw)
        };
        let (y8, c8, dw8) = run(false);
        let (y16, c16, dw16) = run(true);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&y8), bits(&y16), "direct convolution");
        assert_eq!(bits(&c8), bits(&c16), "thin product");
        assert_eq!(bits(&dw8), bits(&dw16), "weight gradient");
    }

    /// [`wgrad_direct`] (stride 1, accumulating onto 0.125) gives exactly `want` on 1 and 3
    /// threads and with 8- and 16-lane vectors.
    fn assert_wgrad_bits(
        ((co, ci, k, batch), (hp, wp), (ho, wo)): Shapes,
        xp: &[f32],
        dy: &[f32],
        want: &[f32],
    ) {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for threads in [1usize, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("a thread pool");
            for wide in [false, true] {
                set_wide_tiles(wide);
                let mut dw = vec![0.125f32; want.len()];
                let g = (dy, Planes::ChannelMajor);
                let (ks, sh, so) = ((k, 1), (hp, wp), (ho, wo));
                pool.install(|| {
                    wgrad_direct(co, ci, ks, batch, xp, sh, g, so, &mut dw, &mut Vec::new())
                });
                set_wide_tiles(true);
                assert_eq!(
                    bits(&dw),
                    bits(want),
                    "{ho} x {wo}, wide tiles {wide}, {threads} threads"
                );
            }
        }
    }

    /// `((co, ci, k, batch), (hp, wp), (ho, wo))` of a weight-gradient bit test.
    type Shapes = ((usize, usize, usize, usize), (usize, usize), (usize, usize));

    /// The weight gradient's bits are those of a scalar model of its order: per group of
    /// images ([`wgrad_group`]), per lane, one chain of fused multiply-adds over the group's
    /// pixels, image by image; the lanes summed as
    /// `((l0 + l4) + (l1 + l5)) + ((l2 + l6) + (l3 + l7))`; the groups added to `dw` in order.
    /// 7 channels (tiles of 4 + 3 or 3 + 2 + 2: lane sums of 16, 12, 9 … accumulators, groups
    /// of 8 and remainders), 27 taps (groups of 4, then 3), both register budgets,
    /// accumulating; 5 × 16 maps (one group of 3 images) and 8 × 8 maps (7 images: groups of 4
    /// and 3), on 1 and 3 threads (blocks of channels).
    #[test]
    fn weight_gradient_sums_lanes_in_order() {
        let _flags = FLAGS.lock().unwrap_or_else(|e| e.into_inner());
        if !available() {
            eprintln!("skipped: no AVX2 + FMA");
            return;
        }
        for (batch, ho, wo, group) in [(3usize, 5usize, 16usize, 3usize), (7, 8, 8, 4)] {
            assert!(!wgrad_by_channels(7, 1));
            assert_eq!(wgrad_group(batch, ho, wo), group);
            let (co, ci, k) = (7usize, 3usize, 3usize);
            let (hp, wp) = (ho + k - 1, wo + k - 1);
            let kd = ci * k * k;
            let xp = activations(ci * batch * hp * wp);
            let dy = weights(co * batch * ho * wo);
            let mut want = vec![0.125f32; co * kd];
            for (o, row) in want.chunks_mut(kd).enumerate() {
                for (p, d) in row.iter_mut().enumerate() {
                    let (c, kh, kw) = (p / (k * k), (p / k) % k, p % k);
                    for b0 in (0..batch).step_by(group) {
                        let mut l = [0.0f32; 8];
                        for b in b0..(b0 + group).min(batch) {
                            for oh in 0..ho {
                                for s in (0..wo).step_by(8) {
                                    for (j, l) in l.iter_mut().enumerate() {
                                        let g = dy[((o * batch + b) * ho + oh) * wo + s + j];
                                        let x = xp[((b * ci + c) * hp + oh + kh) * wp + s + j + kw];
                                        *l = g.mul_add(x, *l);
                                    }
                                }
                            }
                        }
                        *d += ((l[0] + l[4]) + (l[1] + l[5])) + ((l[2] + l[6]) + (l[3] + l[7]));
                    }
                }
            }
            let shapes = ((co, ci, k, batch), (hp, wp), (ho, wo));
            assert_wgrad_bits(shapes, &xp, &dy, &want);
        }
    }

    /// With channels in the lanes ([`wgrad_channels`], 32 channels and more), the weight
    /// gradient's bits are those of a scalar model of its order: per image, per chunk of whole
    /// rows (at least [`WGRAD_CHUNK_PIXELS`] pixels, or one row), one chain of fused
    /// multiply-adds over the chunk's pixels in order; the chunks added to a zero sum in order,
    /// image by image; that sum added to `dw`. 37 channels (padded: blocks of 2 + 2 + 1 or
    /// 2 + 1 vectors) and 64, 27 taps (tiles of 12 + 12 + 3 or 6 + … + 3), both vector widths,
    /// accumulating; 5 × 16 maps (one chunk per image), 8 × 8 (one chunk), 20 × 24 (chunks of
    /// 10 rows), 7 × 7, 4 × 4, 2 × 2 and 14 × 14 (rows of any width); 1 to 7 images; on 1 and
    /// 3 threads (runs of taps).
    #[test]
    fn weight_gradient_by_channels_sums_in_order() {
        let _flags = FLAGS.lock().unwrap_or_else(|e| e.into_inner());
        if !available() {
            eprintln!("skipped: no AVX2 + FMA");
            return;
        }
        for (batch, ho, wo, co) in [
            (3usize, 5usize, 16usize, 37usize),
            (7, 8, 8, 64),
            (2, 20, 24, 37),
            // Rows that are not whole 8-column tiles (the convrnns zoo's 28, 14 and 7 px;
            // 4 × 4, 2 × 2): the kernel walks pixels one by one.
            (2, 7, 7, 40),
            (3, 4, 4, 33),
            (1, 2, 2, 64),
            (2, 14, 14, 37),
        ] {
            assert!(wgrad_by_channels(co, 1));
            let chunk = (WGRAD_CHUNK_PIXELS / wo).max(1);
            let (ci, k) = (3usize, 3usize);
            let (hp, wp) = (ho + k - 1, wo + k - 1);
            let kd = ci * k * k;
            let xp = activations(ci * batch * hp * wp);
            let dy = weights(co * batch * ho * wo);
            let mut want = vec![0.125f32; co * kd];
            for (o, row) in want.chunks_mut(kd).enumerate() {
                for (p, d) in row.iter_mut().enumerate() {
                    let (c, kh, kw) = (p / (k * k), (p / k) % k, p % k);
                    let mut sum = 0.0f32;
                    for b in 0..batch {
                        for r0 in (0..ho).step_by(chunk) {
                            let mut l = 0.0f32;
                            for oh in r0..(r0 + chunk).min(ho) {
                                for ow in 0..wo {
                                    let g = dy[((o * batch + b) * ho + oh) * wo + ow];
                                    let x = xp[((b * ci + c) * hp + oh + kh) * wp + ow + kw];
                                    l = g.mul_add(x, l);
                                }
                            }
                            sum += l;
                        }
                    }
                    *d += sum;
                }
            }
            let shapes = ((co, ci, k, batch), (hp, wp), (ho, wo));
            assert_wgrad_bits(shapes, &xp, &dy, &want);
        }
    }

    /// The gradient's transposition for the weight gradient, in 8 × 8 register blocks and
    /// scalar tails: 19 channels (two blocks and 3) padded to 32, 21 pixels (two blocks and
    /// 5), planes 30 floats apart; the padding lanes are zero.
    #[test]
    fn gradient_transposes() {
        let (co, cp, pixels, dys) = (19usize, 32usize, 21usize, 30usize);
        let g = weights(co * dys);
        let mut t = vec![f32::NAN; pixels * cp];
        transpose_gradient(&g, dys, co, &mut t, cp);
        for p in 0..pixels {
            for o in 0..cp {
                let want = if o < co { g[o * dys + p] } else { 0.0 };
                assert_eq!(
                    t[p * cp + o].to_bits(),
                    want.to_bits(),
                    "pixel {p}, channel {o}"
                );
            }
        }
    }

    /// Row groups (four 8-wide output rows per tile) and the AVX-512 register blocks of 16-,
    /// 32- and 64-wide rows ([`blocks512`]) give the same bits as one row at a time, on both
    /// register budgets: 7 rows of outputs (a group or block, then single rows), stride 1 and
    /// stride 2 (phases), 13 output channels (blocks of 5 + 4 + 4), accumulating, on 1 and 3
    /// threads.
    #[test]
    fn row_groups_give_the_same_bits() {
        let _flags = FLAGS.lock().unwrap_or_else(|e| e.into_inner());
        if !available() {
            eprintln!("skipped: no AVX2 + FMA");
            return;
        }
        if !avx512vl() {
            eprintln!("no AVX-512VL here: the wide runs take the AVX2 row groups");
        }
        let (co, ci, k, batch, ho) = (13usize, 5usize, 3usize, 3usize, 7usize);
        for (s, wo) in [1usize, 2]
            .into_iter()
            .flat_map(|s| [8, 16, 32, 64].map(|w| (s, w)))
        {
            let (h, w) = (ho * s, wo * s);
            let x = activations(ci * batch * h * w);
            let mut xp = Vec::new();
            let (hp, wp) = phases(&x, (ci, batch), (h, w), 1, s, &mut xp);
            let wt = weights(co * ci * k * k);
            // Tasks take ⌈21 rows / (4 · threads)⌉ rows: on one thread, 6 (a group or block of
            // 4 rows fits in a task; on more threads only blocks of 2 do).
            for threads in [1usize, 3] {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .expect("a thread pool");
                let run = |groups: bool, wide: bool| {
                    set_row_groups(groups);
                    set_wide_tiles(wide);
                    let shapes = ((co, ci, k, s), (batch, &xp[..], (hp, wp)), (ho, wo));
                    let y = pool.install(|| direct(&wt, shapes.0, shapes.1, shapes.2));
                    set_row_groups(true);
                    set_wide_tiles(true);
                    y.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
                };
                let single = run(false, true);
                let at = format!("stride {s}, {wo} wide, {threads} threads");
                assert_eq!(single, run(true, true), "{at}: wide row groups");
                assert_eq!(single, run(true, false), "{at}: AVX2 row groups");
                assert_eq!(single, run(false, false), "{at}: 8-lane single rows");
            }
        }
    }

    #[test]
    fn small_m_matches_naive_on_odd_shapes() {
        if !available() {
            eprintln!("skipped: no AVX2 + FMA");
            return;
        }
        for &(m, n, k, acc) in &[
            (1, 1, 1, false),
            (6, 16, 3, false),
            (7, 37, 5, true),
            (8, 1100, 72, false),
            (13, 531, 19, true),
            (16, 600, 144, true),
        ] {
            let a: Vec<f32> = (0..m * k + 3)
                .map(|i| ((i * 7 % 13) as f32 - 6.0) * 0.1)
                .collect();
            let b: Vec<f32> = (0..k * (n + 2))
                .map(|i| ((i * 5 % 11) as f32 - 5.0) * 0.1)
                .collect();
            let c0: Vec<f32> = (0..m * (n + 1)).map(|i| (i % 3) as f32).collect();
            // a transposed in memory (rs = 1, cs = m) to check strides.
            let mut at = vec![0.0f32; m * k];
            for i in 0..m {
                for p in 0..k {
                    at[p * m + i] = a[i * k + p];
                }
            }
            let mut c = c0.clone();
            small_m(
                m,
                n,
                k,
                Small {
                    data: &at,
                    off: 0,
                    rs: 1,
                    cs: m,
                },
                &b,
                1,
                n + 2,
                &mut c,
                1,
                n + 1,
                acc,
            );
            for i in 0..m {
                for j in 0..n {
                    let mut s = 0.0f64;
                    for p in 0..k {
                        s += a[i * k + p] as f64 * b[1 + p * (n + 2) + j] as f64;
                    }
                    let base = if acc {
                        c0[1 + i * (n + 1) + j] as f64
                    } else {
                        0.0
                    };
                    let got = c[1 + i * (n + 1) + j] as f64;
                    assert!(
                        (got - base - s).abs() < 1e-4,
                        "m{m} n{n} k{k}: {got} vs {}",
                        base + s
                    );
                }
            }
            // Untouched: the element before the view.
            assert_eq!(c[0], c0[0]);
        }
    }
}
