//! bf16 matrix products with float32 accumulation: the engine's opt-in mixed precision, on
//! Intel AMX (Advanced Matrix Extensions) tiles where the CPU has them.
//!
//! [`gemm_bf16`] computes `dst (+)= round(a) · round(b)`, where `round` is float32 → bf16 with
//! round-to-nearest-even (PyTorch's `.to(torch.bfloat16)`), every product of two bf16 values is
//! exact in float32 (8 + 8 significant bits) and the sums are float32: the arithmetic of
//! PyTorch's CPU `torch.autocast(dtype=torch.bfloat16)` convolutions and linear layers inside
//! oneDNN, up to the order of the float32 sums and the rounding of the result (PyTorch's
//! autocast rounds each convolution's output to bf16; here it stays float32, as in
//! `ventral_models::precision`).
//!
//! **On AMX** (Sapphire Rapids and later Xeons: `amx-tile` and `amx-bf16`, and Linux's
//! permission to use the tile state, asked once per process with `arch_prctl`), the operands
//! are packed into 1 KiB tiles — `a` as 16 rows × 32 bf16, `b` as 16 pairs of rows × 16
//! columns × 2 (the "VNNI" pairs `TDPBF16PS` reads) — and every 32 × 32 block of `dst` is four
//! tile accumulators fed by `TDPBF16PS` (16 × 16 × 32 multiply-adds each), the blocks spread
//! over rayon's threads. `TDPBF16PS` treats bf16 subnormals as zero and flushes subnormal
//! float32 results (Intel SDM); it sums each pair of products before adding them to the
//! accumulator. **Without AMX but with AVX512-BF16** (or with `VENTRAL_NO_AMX=1`), the same
//! tiles are multiplied by `VDPBF16PS` dot products in vector registers ([`bf16_unit`]; the
//! direct convolutions of `amx_conv` alike). **Elsewhere** (neither, or also
//! `VENTRAL_NO_DPBF16=1`), the same rounded operands go through [`crate::mat::gemm`] (float32
//! FMA): the same products, the sums in another order — a portable definition of the
//! arithmetic, not a fast path.
//!
//! The instructions are written as inline assembly: Rust's AMX intrinsics are unstable.

#![allow(unsafe_code)]

use std::cell::Cell;
use std::sync::OnceLock;

use rayon::prelude::*;

use crate::mat::{MatMut, MatRef, gemm};

/// The bits of `x` rounded to bf16, to nearest even (NaN stays a quiet NaN, ±∞ stays).
#[inline]
pub fn bf16_bits(x: f32) -> u16 {
    let b = x.to_bits();
    // Both results computed and one selected (no branch: loops over it vectorise); the
    // rounding sum wraps only for NaNs, whose result is the other one.
    let rounded = b.wrapping_add(0x7fff + ((b >> 16) & 1)) >> 16;
    let quiet = (b >> 16) | 0x40;
    (if x.is_nan() { quiet } else { rounded }) as u16
}

/// `x` rounded to the nearest bf16 value (ties to even), as a float32.
#[inline]
pub fn round_bf16(x: f32) -> f32 {
    f32::from_bits(u32::from(bf16_bits(x)) << 16)
}

/// `src` rounded to bf16 into `dst` (resized to `src`'s length), in parallel and vectorised
/// ([`crate::simd::run_wide`]: the same bits as [`round_bf16`] element by element).
pub fn round_into(src: &[f32], dst: &mut Vec<f32>) {
    dst.resize(src.len(), 0.0);
    dst.par_chunks_mut(1 << 14)
        .zip(src.par_chunks(1 << 14))
        .for_each(|(d, s)| {
            crate::simd::run_wide(
                #[inline(always)]
                || d.iter_mut().zip(s).for_each(|(d, &s)| *d = round_bf16(s)),
            )
        });
}

/// `v` rounded to bf16 in place, as [`round_into`].
pub fn round_in_place(v: &mut [f32]) {
    v.par_chunks_mut(1 << 14).for_each(|d| {
        crate::simd::run_wide(
            #[inline(always)]
            || d.iter_mut().for_each(|d| *d = round_bf16(*d)),
        )
    });
}

pub use crate::amx_conv::Unit as Bf16Unit;

/// What runs the engine's direct bf16 convolutions on this CPU and process: AMX tiles
/// ([`amx_available`]), AVX512-BF16 dot products (`VDPBF16PS`, two bf16 products per float32
/// lane: twice the float32 FMA's multiply-adds per instruction; CPUs without AMX such as
/// AMD Zen 4 and 5; `VENTRAL_NO_DPBF16=1` says no), or nothing (bf16 then runs the float32
/// kernels on rounded operands everywhere).
pub fn bf16_unit() -> Option<Bf16Unit> {
    crate::amx_conv::unit()
}

/// The tiled bf16 product ([`gemm_bf16`]'s packed path, [`Unfolded`]) can run here: on AMX
/// tiles or on AVX512-BF16 dot products ([`bf16_unit`]).
pub fn tiles_available() -> bool {
    bf16_unit().is_some()
}

/// The environment switches `name` off: set, non-empty and not `0` (`VENTRAL_NO_AMX`,
/// `VENTRAL_NO_DPBF16`).
pub(crate) fn switched_off(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty() && v != "0")
}

static AMX: OnceLock<bool> = OnceLock::new();

/// The CPU has AMX tiles with bf16 products and this process may use them (asked of Linux
/// once; `VENTRAL_NO_AMX=1` in the environment says no, and so does a `VENTRAL_SIMD` below
/// `avx512`: [`crate::simd::avx512`]). Without AMX the same tiles run on AVX512-BF16 dot
/// products where the CPU has them ([`bf16_unit`]; `VENTRAL_NO_DPBF16=1` says no to those).
pub fn amx_available() -> bool {
    *AMX.get_or_init(|| !switched_off("VENTRAL_NO_AMX") && crate::simd::avx512() && detect())
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn detect() -> bool {
    use std::arch::x86_64::{__cpuid, __cpuid_count};
    if __cpuid(0).eax < 7 {
        return false;
    }
    let edx = __cpuid_count(7, 0).edx;
    let (bf16, tile) = (edx & (1 << 22) != 0, edx & (1 << 24) != 0);
    if !(bf16 && tile && std::arch::is_x86_feature_detected!("avx512f")) {
        return false;
    }
    const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
    const XFEATURE_XTILEDATA: libc::c_long = 18;
    // SAFETY: this request only asks the kernel to let the process use the AMX tile data
    // state (Linux ≥ 5.16); it touches no memory of ours. A refusal returns -1.
    unsafe {
        libc::syscall(
            libc::SYS_arch_prctl,
            ARCH_REQ_XCOMP_PERM,
            XFEATURE_XTILEDATA,
        ) == 0
    }
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
fn detect() -> bool {
    false
}

/// bf16 values per tile row (64 bytes).
const TK: usize = 32;
/// Rows of a tile, and float32 columns of an accumulator tile.
const TM: usize = 16;
/// bf16 values in a tile (1 KiB).
const TILE: usize = TM * TK;

/// `dst = round(a) · round(b)` (`accumulate = false`) or `dst += …`, float32 sums (see the
/// module docs): on tiles where [`tiles_available`] (AMX, or the same tiles multiplied by
/// AVX512-BF16 dot products), else through [`crate::mat::gemm`].
///
/// # Panics
/// On mismatched shapes or a view outside its slice (engine bugs, as [`crate::mat::gemm`]).
pub fn gemm_bf16(dst: MatMut<'_>, accumulate: bool, a: MatRef<'_>, b: MatRef<'_>) {
    gemm_bf16_on(dst, accumulate, a, b, tiles_available());
}

/// [`gemm_bf16`] with the tiled path chosen by the caller (`tiled` must only be true where
/// [`tiles_available`]): for the tests and benchmarks that compare the two.
pub fn gemm_bf16_on(dst: MatMut<'_>, accumulate: bool, a: MatRef<'_>, b: MatRef<'_>, tiled: bool) {
    let mut pa = PACKED.take();
    pa.pack(a, tiled);
    gemm_bf16_packed(dst, accumulate, &pa, b);
    PACKED.set(pa);
}

/// The left operand of a bf16 product, rounded and packed once for several products (a
/// convolution's weights over the chunks of a batch): AMX tiles, or the rounded row-major
/// matrix where the product runs on [`crate::mat::gemm`].
#[derive(Debug, Default)]
pub struct PackedA {
    tiles: Vec<u16>,
    rounded: Vec<f32>,
    rows: usize,
    cols: usize,
    tiled: bool,
}

impl PackedA {
    /// Round and pack `a` (reusing this value's buffers); `tiled` as in [`gemm_bf16_on`].
    ///
    /// # Panics
    /// On a view outside its slice, or `tiled` where [`tiles_available`] is false (engine
    /// bugs).
    pub fn pack(&mut self, a: MatRef<'_>, tiled: bool) {
        assert!(a.fits(), "gemm_bf16 view outside its slice");
        assert!(
            !tiled || tiles_available(),
            "bf16 tiles asked for where no unit multiplies them"
        );
        (self.rows, self.cols) = (a.rows, a.cols);
        self.tiled = tiled && a.rows > 0 && a.cols > 0;
        if self.tiled {
            let (mp, kt) = (a.rows.div_ceil(32) * 2, a.cols.div_ceil(TK));
            self.tiles.resize(mp * kt * TILE, 0);
            pack_a(&a, kt, &mut self.tiles[..mp * kt * TILE]);
        } else {
            rounded(&a, &mut self.rounded);
        }
    }
}

/// [`gemm_bf16`] with its left operand packed already.
///
/// # Panics
/// As [`gemm_bf16`].
pub fn gemm_bf16_packed(dst: MatMut<'_>, accumulate: bool, a: &PackedA, b: MatRef<'_>) {
    assert!(b.fits(), "gemm_bf16 view outside its slice");
    product(dst, accumulate, a, Right::Mat(b));
}

/// The unfolded input of a stride-1 convolution with output rows a multiple of 16 wide, never
/// materialised: `im2col` of images `b0..` of `x` (`[Ci][batch][Hi][Wi]`, zero padding `pad`),
/// the `Ci·k² × n` matrix whose row (c, kh, kw) and column (image, oh, ow) hold
/// `x[c][b0 + image][oh + kh − pad][ow + kw − pad]` (0 outside the map).
#[derive(Debug, Clone, Copy)]
pub struct Unfolded<'a> {
    pub x: &'a [f32],
    pub ci: usize,
    pub k: usize,
    pub pad: usize,
    pub hw_in: (usize, usize),
    pub hw_out: (usize, usize),
    pub batch: usize,
    pub b0: usize,
    /// Columns: whole images' `Ho·Wo` pixels.
    pub n: usize,
}

impl Unfolded<'_> {
    /// Rows (`Ci·k²`).
    pub fn rows(&self) -> usize {
        self.ci * self.k * self.k
    }

    /// The packing reads it directly: output rows a multiple of 16 wide (every 16 columns
    /// of a tile are one output row's run), whole images inside `x`, and AVX-512 present.
    pub fn supported(&self) -> bool {
        let (hi, wi) = self.hw_in;
        let (ho, wo) = self.hw_out;
        wo > 0
            && wo.is_multiple_of(TM)
            && self.n.is_multiple_of(ho * wo)
            && self.pad < self.k
            && ho + self.k - 1 <= hi + 2 * self.pad
            && wo + self.k - 1 <= wi + 2 * self.pad
            && (self.b0 + self.n / (ho * wo)) <= self.batch
            && self.x.len() >= self.ci * self.batch * hi * wi
            && tiles_available()
    }
}

/// `dst (+)= a · u` (`transposed = false`: `u` is `Ci·k² × n`, a convolution's forward) or
/// `dst (+)= a · uᵀ` (a weight gradient `dy · im2col(x)ᵀ`), the unfolded input read straight
/// into the tiles — no float32 unfolded copy. `a` must be packed for AMX and `u`
/// [`Unfolded::supported`].
///
/// # Panics
/// On mismatched shapes, an unsupported `u`, or `a` not packed for AMX (engine bugs).
pub fn gemm_bf16_unfolded(
    dst: MatMut<'_>,
    accumulate: bool,
    a: &PackedA,
    u: Unfolded<'_>,
    transposed: bool,
) {
    assert!(
        a.tiled && u.supported(),
        "gemm_bf16_unfolded: not an AMX product"
    );
    product(
        dst,
        accumulate,
        a,
        if transposed {
            Right::UnfoldedT(u)
        } else {
            Right::Unfolded(u)
        },
    );
}

/// The right operand of a product: a strided matrix, or an unfolded input (or its transpose).
#[derive(Clone, Copy)]
enum Right<'a> {
    Mat(MatRef<'a>),
    Unfolded(Unfolded<'a>),
    UnfoldedT(Unfolded<'a>),
}

impl Right<'_> {
    fn dims(&self) -> (usize, usize) {
        match self {
            Right::Mat(b) => (b.rows, b.cols),
            Right::Unfolded(u) => (u.rows(), u.n),
            Right::UnfoldedT(u) => (u.n, u.rows()),
        }
    }
}

fn product(dst: MatMut<'_>, accumulate: bool, a: &PackedA, b: Right<'_>) {
    let (br, bc) = b.dims();
    assert!(
        dst.rows == a.rows && dst.cols == bc && a.cols == br,
        "gemm_bf16 shapes: dst {}x{}, a {}x{}, b {br}x{bc}",
        dst.rows,
        dst.cols,
        a.rows,
        a.cols,
    );
    assert!(dst.fits(), "gemm_bf16 view outside its slice");
    let (m, k, n) = (a.rows, a.cols, bc);
    let Right::Mat(bm) = b else {
        if m == 0 || n == 0 {
            return;
        }
        return packed_product(dst, accumulate, a, b, (m, k, n));
    };
    if !a.tiled || n == 0 {
        let mut br = Vec::new();
        rounded(&bm, &mut br);
        gemm(
            dst,
            accumulate,
            MatRef::rm(&a.rounded, 0, m, k),
            MatRef::rm(&br, 0, k, n),
        );
        return;
    }
    packed_product(dst, accumulate, a, b, (m, k, n));
}

/// The AMX product: `b` packed into tiles, then every block of `dst`.
fn packed_product(
    dst: MatMut<'_>,
    accumulate: bool,
    a: &PackedA,
    b: Right<'_>,
    (m, k, n): (usize, usize, usize),
) {
    // Panels of 16 rows (of `a`) and 16 columns (of `b`), in pairs: a 32 × 32 block of `dst`
    // per step of the kernel (the missing rows and columns packed as zeros).
    let (mp, np, kt) = (m.div_ceil(32) * 2, n.div_ceil(32) * 2, k.div_ceil(TK));
    let mut pb = take_buf(&PACK_B, np * kt * TILE);
    pack_b(&b, kt, &mut pb);
    run(
        &a.tiles[..mp * kt * TILE],
        &pb,
        (mp / 2, np / 2, kt),
        dst,
        accumulate,
    );
    PACK_B.set(pb);
}

thread_local! {
    /// The left operand of [`gemm_bf16_on`] and the packed right operand of the last product
    /// on this thread, reused (taken while in use, so a product started on this thread while
    /// another waits — rayon work stealing — gets its own).
    static PACKED: Cell<PackedA> = Cell::new(PackedA::default());
    static PACK_B: Cell<Vec<u16>> = const { Cell::new(Vec::new()) };
}

fn take_buf(key: &'static std::thread::LocalKey<Cell<Vec<u16>>>, n: usize) -> Vec<u16> {
    let mut v = key.take();
    if v.len() < n {
        v.resize(n, 0);
    }
    v.truncate(n);
    v
}

/// `v` rounded to bf16, row-major, into `out`.
fn rounded(v: &MatRef<'_>, out: &mut Vec<f32>) {
    out.clear();
    for i in 0..v.rows {
        out.extend((0..v.cols).map(|j| round_bf16(v.data[v.off + i * v.rs + j * v.cs])));
    }
}

/// `a` (`m × k`) into tiles of 16 rows × 32 bf16: panel `p` (rows 16p..), tile `t` (columns
/// 32t..) at `(p·kt + t)·512`, element (r, c) at `+ r·32 + c`; zeros outside `a`.
fn pack_a(a: &MatRef<'_>, kt: usize, out: &mut [u16]) {
    out.par_chunks_mut(kt * TILE)
        .with_min_len(crate::min_items(kt * TILE))
        .enumerate()
        .for_each(|(p, panel)| {
            let m0 = p * TM;
            for (t, tile) in panel.chunks_exact_mut(TILE).enumerate() {
                let place = |r: usize, c: usize| r * TK + c;
                #[cfg(target_arch = "x86_64")]
                let fast = Some([simd::rows_to_tile as TileFn, simd::a_cols_to_tile]);
                #[cfg(not(target_arch = "x86_64"))]
                let fast = None;
                tile_of(a, (m0, t * TK), (TM, TK), place, fast, tile);
            }
        });
}

/// `b` (`k × n`) into tiles of 16 row pairs × 16 columns × 2: panel `p` (columns 16p..),
/// tile `t` (rows 32t..) at `(p·kt + t)·512`, element (row 32t + 2i + e, column 16p + j) at
/// `+ i·32 + j·2 + e`; zeros outside `b`.
fn pack_b(b: &Right<'_>, kt: usize, out: &mut [u16]) {
    // Groups of panels per task, tiles outer: each row of `b` is read along 8 panels' 128
    // columns at a time (512 contiguous bytes), not 64 bytes per row and panel.
    const GROUP: usize = 8;
    out.par_chunks_mut(kt * TILE * GROUP)
        .enumerate()
        .for_each(|(g, panels)| {
            for t in 0..kt {
                for (q, panel) in panels.chunks_exact_mut(kt * TILE).enumerate() {
                    let tile = &mut panel[t * TILE..(t + 1) * TILE];
                    let (n0, k0) = ((g * GROUP + q) * TM, t * TK);
                    match b {
                        Right::Mat(b) => b_tile(b, n0, k0, tile),
                        // SAFETY: `supported` (checked by `gemm_bf16_unfolded`): AVX-512F,
                        // whole images inside `x`, 16-wide runs within output rows.
                        #[cfg(target_arch = "x86_64")]
                        Right::Unfolded(u) => unsafe { simd::unfolded_tile(u, n0, k0, tile) },
                        #[cfg(target_arch = "x86_64")]
                        Right::UnfoldedT(u) => unsafe { simd::unfolded_t_tile(u, n0, k0, tile) },
                        #[cfg(not(target_arch = "x86_64"))]
                        _ => unreachable!("unfolded operands need AMX"),
                    }
                }
            }
        });
}

/// The tile of `b` at rows `k0..k0 + 32`, columns `n0..n0 + 16` (see [`pack_b`]).
fn b_tile(b: &MatRef<'_>, n0: usize, k0: usize, tile: &mut [u16]) {
    let place = |r: usize, j: usize| (r >> 1) * TK + 2 * j + (r & 1);
    #[cfg(target_arch = "x86_64")]
    let fast = Some([simd::row_pairs_to_tile as TileFn, simd::b_cols_to_tile]);
    #[cfg(not(target_arch = "x86_64"))]
    let fast = None;
    tile_of(b, (k0, n0), (TK, TM), place, fast, tile);
}

/// A whole-tile packer: the block at a pointer, its other stride, the tile.
type TileFn = unsafe fn(*const f32, usize, &mut [u16]);

/// The `rows × cols` block of `v` at `(r0, c0)` rounded into `tile`, element (r, c) at
/// `place(r, c)` (zeros outside `v`): a whole block with a unit stride by `fast` (`[0]` with
/// unit column stride, `[1]` with unit row stride), else element by element.
fn tile_of(
    v: &MatRef<'_>,
    (r0, c0): (usize, usize),
    (rows, cols): (usize, usize),
    place: impl Fn(usize, usize) -> usize,
    fast: Option<[TileFn; 2]>,
    tile: &mut [u16],
) {
    let at = |r: usize, c: usize| v.off + (r0 + r) * v.rs + (c0 + c) * v.cs;
    let (nr, nc) = (
        v.rows.saturating_sub(r0).min(rows),
        v.cols.saturating_sub(c0).min(cols),
    );
    if let Some([by_rows, by_cols]) = fast
        && nr == rows
        && nc == cols
        && (v.cs == 1 || v.rs == 1)
    {
        // SAFETY: `fast` is given only where AVX-512F is present (every AMX CPU; the packers
        // run for AMX products only); the whole block at (r0, c0) lies inside `v` (checked by
        // `MatRef::fits`) and is read along its unit stride.
        unsafe {
            let base = v.data.as_ptr().add(at(0, 0));
            if v.cs == 1 {
                by_rows(base, v.rs, tile);
            } else {
                by_cols(base, v.cs, tile);
            }
        }
        return;
    }
    tile.fill(0);
    for r in 0..nr {
        for c in 0..nc {
            tile[place(r, c)] = bf16_bits(v.data[at(r, c)]);
        }
    }
}

/// AVX-512 packing of whole tiles (every CPU with AMX has AVX-512F).
#[cfg(target_arch = "x86_64")]
pub(crate) mod simd {
    use std::arch::x86_64::*;

    /// The float32 bits of 16 lanes rounded to bf16 (to nearest even) in their high halves
    /// (the low halves are garbage); NaN stays a quiet NaN — as [`super::bf16_bits`].
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(crate) fn round(x: __m512) -> __m512i {
        let b = _mm512_castps_si512(x);
        let lsb = _mm512_and_si512(_mm512_srli_epi32::<16>(b), _mm512_set1_epi32(1));
        let r = _mm512_add_epi32(b, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff)));
        let nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(x, x);
        _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(b, _mm512_set1_epi32(0x0040_0000)))
    }

    /// 16 pairs (lane i: `lo` of `even` in the low half, of `odd` in the high half).
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(crate) fn pairs(even: __m512, odd: __m512) -> __m512i {
        let hi = _mm512_and_si512(round(odd), _mm512_set1_epi32(0xffff_0000u32 as i32));
        _mm512_or_si512(hi, _mm512_srli_epi32::<16>(round(even)))
    }

    /// The 32 floats of `lo` then `hi` as 32 bf16 in order (= 16 pairs of neighbours).
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(crate) fn bf16x32(lo: __m512, hi: __m512) -> __m512i {
        let half = |v: __m512| _mm512_cvtepi32_epi16(_mm512_srli_epi32::<16>(round(v)));
        _mm512_inserti64x4::<1>(_mm512_castsi256_si512(half(lo)), half(hi))
    }

    /// 32 consecutive floats as 32 bf16 in order.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn run32(p: *const f32) -> __m512i {
        // SAFETY: the caller's: 32 floats at `p`.
        unsafe { bf16x32(_mm512_loadu_ps(p), _mm512_loadu_ps(p.add(16))) }
    }

    /// Tile rows r = 0..16 from 32 consecutive floats each, `rs` floats apart.
    ///
    /// # Safety
    /// AVX-512F; 16 rows of 32 floats at `p`, `rs` apart; `tile` 512 long.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn rows_to_tile(p: *const f32, rs: usize, tile: &mut [u16]) {
        debug_assert!(tile.len() >= 512);
        for r in 0..16 {
            // SAFETY: the contract.
            unsafe {
                _mm512_storeu_si512(tile.as_mut_ptr().add(r * 32).cast(), run32(p.add(r * rs)))
            };
        }
    }

    /// Tile rows i = 0..16 from the row pairs (2i, 2i + 1) of 16 consecutive floats each,
    /// rows `rs` floats apart (the pairs format of `b`).
    ///
    /// # Safety
    /// AVX-512F; 32 rows of 16 floats at `p`, `rs` apart; `tile` 512 long.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn row_pairs_to_tile(p: *const f32, rs: usize, tile: &mut [u16]) {
        debug_assert!(tile.len() >= 512);
        for i in 0..16 {
            // SAFETY: the contract.
            unsafe {
                let even = _mm512_loadu_ps(p.add(2 * i * rs));
                let odd = _mm512_loadu_ps(p.add((2 * i + 1) * rs));
                _mm512_storeu_si512(tile.as_mut_ptr().add(i * 32).cast(), pairs(even, odd));
            }
        }
    }

    /// The tile from 16 vectors of 16 u32 lanes: `cols[j]` lane i is u32 (i, j) of the tile
    /// (a 16 × 16 transpose of 32-bit lanes in registers: pairs of lanes, of 64-bit lanes,
    /// then of 128-bit quarters twice).
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn transposed_into(cols: &[__m512i; 16], tile: &mut [u16]) {
        debug_assert!(tile.len() >= 512);
        let rows = transpose16(cols);
        let p = tile.as_mut_ptr().cast::<__m512i>();
        for (i, r) in rows.iter().enumerate() {
            // SAFETY: row `i` of the 512-value tile (64 bytes).
            unsafe { _mm512_storeu_si512(p.add(i), *r) };
        }
    }

    /// The 16 × 16 transpose of 32-bit lanes: lane j of row i is lane i of `cols[j]` (pairs of
    /// lanes, of 64-bit lanes, then of 128-bit quarters twice).
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(crate) fn transpose16(cols: &[__m512i; 16]) -> [__m512i; 16] {
        let r = cols;
        let mut t = [_mm512_setzero_si512(); 16];
        for q in 0..8 {
            t[2 * q] = _mm512_unpacklo_epi32(r[2 * q], r[2 * q + 1]);
            t[2 * q + 1] = _mm512_unpackhi_epi32(r[2 * q], r[2 * q + 1]);
        }
        let mut u = [_mm512_setzero_si512(); 16];
        for q in 0..4 {
            let (a, b, c, d) = (t[4 * q], t[4 * q + 1], t[4 * q + 2], t[4 * q + 3]);
            u[4 * q] = _mm512_unpacklo_epi64(a, c);
            u[4 * q + 1] = _mm512_unpackhi_epi64(a, c);
            u[4 * q + 2] = _mm512_unpacklo_epi64(b, d);
            u[4 * q + 3] = _mm512_unpackhi_epi64(b, d);
        }
        // Writing O for the result (row i = lane i of every input): quarter s of u[4q + l]
        // is O[4s + l][4q..4q + 4]; now gather quarters.
        for h in 0..2 {
            for l in 0..4 {
                let (a, b) = (u[8 * h + l], u[8 * h + 4 + l]);
                t[8 * h + l] = _mm512_shuffle_i32x4::<0x88>(a, b);
                t[8 * h + 4 + l] = _mm512_shuffle_i32x4::<0xdd>(a, b);
            }
        }
        let mut out = [_mm512_setzero_si512(); 16];
        for l in 0..8 {
            // Row l, and row l + 8.
            out[l] = _mm512_shuffle_i32x4::<0x88>(t[l], t[8 + l]);
            out[l + 8] = _mm512_shuffle_i32x4::<0xdd>(t[l], t[8 + l]);
        }
        out
    }

    /// The pixel of column `n0` of the unfolded input: (image, output row, output column).
    #[inline]
    fn pixel(u: &super::Unfolded<'_>, n0: usize) -> (usize, usize, usize) {
        let (ho, wo) = u.hw_out;
        let (img, rem) = (u.b0 + n0 / (ho * wo), n0 % (ho * wo));
        (img, rem / wo, rem % wo)
    }

    /// The unfolded rows `r, r + 1, …` as (channel, kernel row, kernel column), stepped
    /// without divisions.
    #[derive(Clone, Copy)]
    struct Tap {
        c: usize,
        kh: usize,
        kw: usize,
    }

    impl Tap {
        fn of(u: &super::Unfolded<'_>, r: usize) -> Self {
            let kk = u.k * u.k;
            Self {
                c: r / kk,
                kh: (r % kk) / u.k,
                kw: r % u.k,
            }
        }

        fn next(&mut self, k: usize) {
            self.kw += 1;
            if self.kw == k {
                self.kw = 0;
                self.kh += 1;
                if self.kh == k {
                    self.kh = 0;
                    self.c += 1;
                }
            }
        }
    }

    /// Unfolded row `tap` at the 16 columns from `pixel` (one run of an output row; zeros
    /// outside the map and for channels beyond `Ci`).
    ///
    /// # Safety
    /// AVX-512F; `u` [`super::Unfolded::supported`]; `pixel` the start of a 16-column run of
    /// an image inside `u`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn run16(
        u: &super::Unfolded<'_>,
        tap: Tap,
        (img, oh, ow0): (usize, usize, usize),
    ) -> __m512 {
        if tap.c >= u.ci {
            return _mm512_setzero_ps();
        }
        let (hi, wi) = u.hw_in;
        let ih = (oh + tap.kh) as isize - u.pad as isize;
        if ih < 0 || ih >= hi as isize {
            return _mm512_setzero_ps();
        }
        let iw0 = (ow0 + tap.kw) as isize - u.pad as isize;
        // Lanes j with 0 ≤ iw0 + j < wi.
        let lo = (-iw0).clamp(0, 16) as u32;
        let hi_lane = (wi as isize - iw0).clamp(0, 16) as u32;
        if lo >= hi_lane {
            return _mm512_setzero_ps();
        }
        let mask = ((1u32 << hi_lane) - 1) as u16 & !(((1u32 << lo) - 1) as u16);
        let row = ((tap.c * u.batch + img) * hi + ih as usize) * wi;
        // SAFETY: lanes lo..hi_lane address x[row + iw0 + j], inside the map's row `ih` of
        // image `img`, channel `c` (inside `x` by `supported`); masked-off lanes are not
        // accessed (AVX-512 masked loads suppress their faults), so the address of lane 0
        // may lie before the row.
        unsafe {
            let p = u.x.as_ptr().wrapping_offset(row as isize + iw0);
            _mm512_maskz_loadu_ps(mask, p)
        }
    }

    /// The tile of the unfolded input at rows `k0..k0 + 32`, columns `n0..n0 + 16` (pairs of
    /// rows, as [`super::pack_b`]).
    ///
    /// # Safety
    /// AVX-512F; `u` supported; `n0` a multiple of 16; `tile` 512 long.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn unfolded_tile(
        u: &super::Unfolded<'_>,
        n0: usize,
        k0: usize,
        tile: &mut [u16],
    ) {
        debug_assert!(tile.len() >= 512);
        if n0 >= u.n {
            tile.fill(0);
            return;
        }
        let px = pixel(u, n0);
        let mut tap = Tap::of(u, k0);
        for i in 0..16 {
            // SAFETY: the contract; the store is row i of the tile.
            unsafe {
                let even = run16(u, tap, px);
                tap.next(u.k);
                let odd = run16(u, tap, px);
                tap.next(u.k);
                _mm512_storeu_si512(tile.as_mut_ptr().add(i * 32).cast(), pairs(even, odd));
            }
        }
    }

    /// The tile of the transposed unfolded input (`n × Ci·k²`) at rows (pixels) `k0..k0 + 32`,
    /// columns (unfolded rows) `n0..n0 + 16`.
    ///
    /// # Safety
    /// AVX-512F; `u` supported; `k0` a multiple of 32; `tile` 512 long.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn unfolded_t_tile(
        u: &super::Unfolded<'_>,
        n0: usize,
        k0: usize,
        tile: &mut [u16],
    ) {
        debug_assert!(tile.len() >= 512);
        let (px_lo, px_hi) = (
            (k0 < u.n).then(|| pixel(u, k0)),
            (k0 + 16 < u.n).then(|| pixel(u, k0 + 16)),
        );
        let mut cols = [_mm512_setzero_si512(); 16];
        let mut tap = Tap::of(u, n0);
        for v in cols.iter_mut() {
            let half = |px: Option<(usize, usize, usize)>| match px {
                // SAFETY: the contract; a run of 16 pixels inside `u`.
                Some(px) => unsafe { run16(u, tap, px) },
                None => _mm512_setzero_ps(),
            };
            *v = bf16x32(half(px_lo), half(px_hi));
            tap.next(u.k);
        }
        transposed_into(&cols, tile);
    }

    /// `a` viewed with unit row stride (element (r, c) at `p + r + c·cs`, 16 × 32): u32
    /// (r, j) of the tile pairs columns 2j and 2j + 1 of row r.
    ///
    /// # Safety
    /// AVX-512F; the 16 × 32 block at `p` as described; `tile` 512 long.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn a_cols_to_tile(p: *const f32, cs: usize, tile: &mut [u16]) {
        debug_assert!(tile.len() >= 512);
        let mut cols = [_mm512_setzero_si512(); 16];
        for (j, v) in cols.iter_mut().enumerate() {
            // SAFETY: the contract: columns 2j and 2j + 1 hold 16 consecutive floats each.
            unsafe {
                let even = _mm512_loadu_ps(p.add(2 * j * cs));
                let odd = _mm512_loadu_ps(p.add((2 * j + 1) * cs));
                *v = pairs(even, odd);
            }
        }
        transposed_into(&cols, tile);
    }

    /// `b` viewed with unit row stride (element (k, j) at `p + k + j·cs`, 32 × 16): u32
    /// (i, j) of the tile pairs rows 2i and 2i + 1 of column j, 32 consecutive floats.
    ///
    /// # Safety
    /// AVX-512F; the 32 × 16 block at `p` as described; `tile` 512 long.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn b_cols_to_tile(p: *const f32, cs: usize, tile: &mut [u16]) {
        debug_assert!(tile.len() >= 512);
        let mut cols = [_mm512_setzero_si512(); 16];
        for (j, v) in cols.iter_mut().enumerate() {
            // SAFETY: the contract: column j holds 32 consecutive floats.
            *v = unsafe { run32(p.add(j * cs)) };
        }
        transposed_into(&cols, tile);
    }
}
/// The tile configuration (palette 1): eight tiles of 16 rows × 64 bytes — 0..3 the
/// accumulators of a 32 × 32 block, 4 and 5 two tiles of `a`, 6 and 7 two of `b`.
#[cfg(target_arch = "x86_64")]
#[repr(C, align(64))]
pub(crate) struct TileConfig {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    colsb: [u16; 16],
    rows: [u8; 16],
}

#[cfg(target_arch = "x86_64")]
pub(crate) const CONFIG: TileConfig = TileConfig {
    palette: 1,
    start_row: 0,
    reserved: [0; 14],
    colsb: [64, 64, 64, 64, 64, 64, 64, 64, 0, 0, 0, 0, 0, 0, 0, 0],
    rows: [16, 16, 16, 16, 16, 16, 16, 16, 0, 0, 0, 0, 0, 0, 0, 0],
};

/// A destination shared by the tasks of [`run`], which write disjoint blocks of it.
#[derive(Clone, Copy)]
struct Dst {
    ptr: *mut f32,
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}
// SAFETY: the tasks of `run` write disjoint 32 × 32 blocks through it while `dst` is borrowed
// mutably by `gemm_bf16_on` for the whole call.
unsafe impl Send for Dst {}
unsafe impl Sync for Dst {}

impl Dst {
    /// Element (r, c).
    ///
    /// # Safety
    /// `r < rows`, `c < cols`.
    unsafe fn at(&self, r: usize, c: usize) -> *mut f32 {
        // SAFETY: inside `dst` by the contract and `MatMut::fits`.
        unsafe { self.ptr.add(r * self.rs + c * self.cs) }
    }
}

/// Every 32 × 32 block of `dst` (`mb × nb` of them, column blocks outer so that a pair of `b`
/// panels stays in cache while the row blocks pass), in contiguous runs of blocks per task.
fn run(pa: &[u16], pb: &[u16], (mb, nb, kt): (usize, usize, usize), dst: MatMut<'_>, acc: bool) {
    let d = Dst {
        // SAFETY: `off` lies inside `data` (checked by `MatMut::fits`, rows and cols > 0).
        ptr: unsafe { dst.data.as_mut_ptr().add(dst.off) },
        rows: dst.rows,
        cols: dst.cols,
        rs: dst.rs,
        cs: dst.cs,
    };
    // Column blocks in groups whose panels of `b` (2 KiB per tile pair) fit in L2 with room
    // to spare: a row block's panels of `a` then come from L3 once per group, not once per
    // column block (1024³ on one core: 4.3 → see docs/performance.md).
    let most = (GROUP_BYTES / (2 * kt * TILE * 2)).clamp(1, nb);
    // Groups of equal size (32 column blocks in at most 10: 4 groups of 8, not 10, 10, 10, 2).
    let groups = nb.div_ceil(most);
    let group = nb.div_ceil(groups);
    let groups = nb.div_ceil(group);
    // Enough tasks for the threads to balance (row blocks split where the groups are few);
    // each loads the tile configuration once.
    let want = rayon::current_num_threads() * 2;
    let msplit = want.div_ceil(groups).clamp(1, mb);
    let panel = kt * TILE;
    let unit = bf16_unit().expect("bf16 tiles without a unit (PackedA::pack checks)");
    (0..groups * msplit).into_par_iter().for_each(|task| {
        let (g, s) = (task / msplit, task % msplit);
        let (j0, j1) = (g * group, ((g + 1) * group).min(nb));
        let (i0, i1) = (mb * s / msplit, mb * (s + 1) / msplit);
        // SAFETY: the unit is available (checked by the caller; AMX: this thread may use it,
        // the permission is per process, and the configuration is a valid palette-1 layout).
        unsafe { crate::amx_conv::begin(unit) };
        let mut tmp = [0.0f32; 32 * 32];
        for i in i0..i1 {
            let ai = &pa[2 * i * panel..(2 * i + 2) * panel];
            let r0 = 32 * i;
            for j in j0..j1 {
                let bj = &pb[2 * j * panel..(2 * j + 2) * panel];
                let c0 = 32 * j;
                // SAFETY: `kt` tiles of both panels lie inside `ai`/`bj` (panels `panel`
                // apart); a whole block lies inside `dst` (rows `rs` apart); otherwise the
                // kernel writes `tmp` (32 × 32, 128-byte rows) and the part of it inside
                // `dst` ((r0 + r, c0 + c) for r < rows, c < cols) is copied.
                unsafe {
                    let (ap, bp) = (ai.as_ptr(), bj.as_ptr());
                    if r0 + 32 <= d.rows && c0 + 32 <= d.cols && d.cs == 1 {
                        block(unit, ap, bp, (kt, panel * 2), d.at(r0, c0), d.rs * 4, acc);
                        continue;
                    }
                    let (rows, cols) = ((d.rows - r0).min(32), (d.cols - c0).min(32));
                    for r in 0..rows {
                        for c in 0..cols {
                            tmp[r * 32 + c] = if acc { *d.at(r0 + r, c0 + c) } else { 0.0 };
                        }
                    }
                    block(unit, ap, bp, (kt, panel * 2), tmp.as_mut_ptr(), 128, true);
                    for r in 0..rows {
                        for c in 0..cols {
                            *d.at(r0 + r, c0 + c) = tmp[r * 32 + c];
                        }
                    }
                }
            }
        }
        // SAFETY: ends what `begin` started above on this thread.
        unsafe { crate::amx_conv::end(unit) };
    });
}

/// Bytes of `b`'s panels one task of [`run`] sweeps per row block (see there).
const GROUP_BYTES: usize = 768 << 10;

/// One 32 × 32 block: `c (+)= a · b` over `kt` consecutive tiles of two panels of `a` (rows
/// 0..16, 16..32) and of `b` (columns 0..16, 16..32), the second panel of each `panel` bytes
/// after the first; `c` float32 rows `ldc` bytes apart.
///
/// # Safety
/// `amx_conv::begin(unit)` ran on this thread; `kt` tiles at `a`, `b`, `a + panel` and
/// `b + panel`; `c` addresses 32 rows of 32 floats `ldc` bytes apart; `kt ≥ 1`.
#[inline(never)]
unsafe fn block(
    unit: Bf16Unit,
    a: *const u16,
    b: *const u16,
    (kt, panel): (usize, usize),
    c: *mut f32,
    ldc: usize,
    acc: bool,
) {
    // SAFETY: see the function's contract; pointer arithmetic stays inside the operands.
    unsafe {
        let (a, b) = (a.cast::<u8>(), b.cast::<u8>());
        // Each step: the next tile (1 KiB) of each panel.
        let ops = [[a, a.add(panel), b, b.add(panel)]];
        crate::amx_conv::block(unit, (c, ldc, !acc), &ops, (64, 1024, 64, 1024), kt);
    }
}

/// The tile instructions shared by the products here and the direct convolutions
/// ([`crate::amx_conv`]-internal): loading the configuration [`CONFIG`], the four
/// accumulators of a 32 × 32 block, and the steps of two tiles of each operand.
pub(crate) mod tiles {
    // Used by `amx_conv`'s x86-64 kernels only.
    #![cfg_attr(not(target_arch = "x86_64"), allow(unused_variables, dead_code))]

    /// Loads the tile configuration on this thread.
    ///
    /// # Safety
    /// AMX is available and this process may use it ([`crate::bf16::amx_available`]).
    pub(crate) unsafe fn config() {
        // SAFETY: the caller's; the configuration is a valid palette-1 layout.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            std::arch::asm!("ldtilecfg [{0}]", in(reg) &super::CONFIG as *const super::TileConfig)
        };
        #[cfg(not(target_arch = "x86_64"))]
        crate::simd::x86_only();
    }

    /// Releases this thread's tile state.
    ///
    /// # Safety
    /// [`config`] ran on this thread.
    pub(crate) unsafe fn release() {
        // SAFETY: the caller's.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            std::arch::asm!("tilerelease")
        };
        #[cfg(not(target_arch = "x86_64"))]
        crate::simd::x86_only();
    }

    /// Accumulators tmm0..tmm3 (a 32 × 32 block, tiles 16 × 16 floats: 0 = (0, 0), 1 =
    /// (0, 16), 2 = (16, 0), 3 = (16, 16)) loaded from `c` (rows `ldc` bytes apart) or zeroed.
    ///
    /// # Safety
    /// [`config`] ran; `c` addresses 32 rows of 32 floats, `ldc` bytes apart.
    #[inline(always)]
    pub(crate) unsafe fn c_load(c: *const f32, ldc: usize, zero: bool) {
        #[cfg(target_arch = "x86_64")]
        use std::arch::asm;
        // SAFETY: the caller's.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            if zero {
                asm!(
                    "tilezero tmm0",
                    "tilezero tmm1",
                    "tilezero tmm2",
                    "tilezero tmm3",
                    options(nostack, nomem)
                );
                return;
            }
            let (c01, c10) = (c.byte_add(64), c.byte_add(16 * ldc));
            asm!(
                "tileloadd tmm0, [{c00} + {s}*1]",
                "tileloadd tmm1, [{c01} + {s}*1]",
                "tileloadd tmm2, [{c10} + {s}*1]",
                "tileloadd tmm3, [{c11} + {s}*1]",
                c00 = in(reg) c, c01 = in(reg) c01, c10 = in(reg) c10, c11 = in(reg) c10.byte_add(64),
                s = in(reg) ldc, options(nostack, readonly),
            );
        }
        #[cfg(not(target_arch = "x86_64"))]
        crate::simd::x86_only();
    }

    /// Stores tmm0..tmm3 to `c` (see [`c_load`]).
    ///
    /// # Safety
    /// As [`c_load`], `c` writable.
    #[inline(always)]
    pub(crate) unsafe fn c_store(c: *mut f32, ldc: usize) {
        // SAFETY: the caller's.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            let (c01, c10) = (c.byte_add(64), c.byte_add(16 * ldc));
            std::arch::asm!(
                "tilestored [{c00} + {s}*1], tmm0",
                "tilestored [{c01} + {s}*1], tmm1",
                "tilestored [{c10} + {s}*1], tmm2",
                "tilestored [{c11} + {s}*1], tmm3",
                c00 = in(reg) c, c01 = in(reg) c01, c10 = in(reg) c10, c11 = in(reg) c10.byte_add(64),
                s = in(reg) ldc, options(nostack),
            );
        }
        #[cfg(not(target_arch = "x86_64"))]
        crate::simd::x86_only();
    }

    /// `n` steps of `tmm0..3 += a · b` over two tiles of `a` (at `a0`, `a1`, rows `sa` bytes
    /// apart, advancing `da` bytes per step) and two of `b` (`b0`, `b1`, rows `sb` apart,
    /// advancing `db`).
    ///
    /// # Safety
    /// [`config`] ran; every tile read lies inside its operand; `n ≥ 1`.
    #[inline(always)]
    pub(crate) unsafe fn steps(
        (a0, a1, sa, da): (*const u8, *const u8, usize, usize),
        (b0, b1, sb, db): (*const u8, *const u8, usize, usize),
        n: usize,
    ) {
        // SAFETY: the caller's.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            std::arch::asm!(
                "2:",
                "tileloadd tmm4, [{a0} + {sa}*1]",
                "tileloadd tmm6, [{b0} + {sb}*1]",
                "tdpbf16ps tmm0, tmm4, tmm6",
                "tileloadd tmm7, [{b1} + {sb}*1]",
                "tdpbf16ps tmm1, tmm4, tmm7",
                "tileloadd tmm5, [{a1} + {sa}*1]",
                "tdpbf16ps tmm2, tmm5, tmm6",
                "tdpbf16ps tmm3, tmm5, tmm7",
                "add {a0}, {da}",
                "add {a1}, {da}",
                "add {b0}, {db}",
                "add {b1}, {db}",
                "dec {n}",
                "jnz 2b",
                a0 = inout(reg) a0 => _,
                a1 = inout(reg) a1 => _,
                b0 = inout(reg) b0 => _,
                b1 = inout(reg) b1 => _,
                n = inout(reg) n => _,
                sa = in(reg) sa,
                sb = in(reg) sb,
                da = in(reg) da,
                db = in(reg) db,
                options(nostack, readonly),
            );
        }
        #[cfg(not(target_arch = "x86_64"))]
        crate::simd::x86_only();
    }
}

/// Throughput of [`gemm_bf16`] on a row-major `m × k` by `k × n` product (packing included):
/// the best of `reps` runs, in GFLOP/s.
pub fn gemm_bf16_gflops(m: usize, k: usize, n: usize, reps: usize) -> f64 {
    crate::mat::product_gflops(gemm_bf16, (m, k, n), reps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_to_nearest_even() {
        // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: ties to the even (1.0).
        assert_eq!(round_bf16(1.0 + 1.0 / 256.0), 1.0);
        // 1 + 3·2^-8 lies halfway between 1 + 2^-7 and 1 + 2^-6: to 1 + 2^-6 (even).
        assert_eq!(round_bf16(1.0 + 3.0 / 256.0), 1.0 + 1.0 / 64.0);
        assert_eq!(round_bf16(1.0 + 1.0 / 256.0 + 1e-6), 1.0 + 1.0 / 128.0);
        assert_eq!(round_bf16(-2.5), -2.5);
        assert!(round_bf16(f32::NAN).is_nan());
        assert_eq!(round_bf16(f32::INFINITY), f32::INFINITY);
        assert_eq!(round_bf16(f32::MAX), f32::INFINITY);
        assert_eq!(bf16_bits(1.0), 0x3f80);
    }

    /// The vectorised [`round_into`] gives [`round_bf16`]'s bits on every kind of value:
    /// ties to even both ways, the largest finite values (rounding up to ∞), ±∞, subnormals,
    /// ±0 and NaNs of both signs and several payloads (quiet, with the payload's top bits).
    #[test]
    fn round_into_is_round_bf16_everywhere() {
        let mut src: Vec<f32> = (0..40_000).map(|i| val(i, 7)).collect();
        let special = [
            0.0,
            -0.0,
            f32::MIN_POSITIVE / 3.0,
            -f32::MIN_POSITIVE / 5.0,
            f32::MAX,
            f32::MIN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::from_bits(0x3f80_8000), // tie, even below: down
            f32::from_bits(0x3f81_8000), // tie, odd below: up
            f32::from_bits(0x7fc0_0000),
            f32::from_bits(0xffc0_0001),
            f32::from_bits(0x7f80_0001), // signalling NaN
            f32::from_bits(0xffff_ffff),
        ];
        for (k, v) in special.iter().enumerate() {
            src[k * 1000 + 3] = *v;
        }
        let mut dst = vec![1.0f32; 5];
        round_into(&src, &mut dst);
        assert_eq!(dst.len(), src.len());
        for (i, (&d, &s)) in dst.iter().zip(&src).enumerate() {
            let want = u32::from(bf16_bits(s)) << 16;
            assert_eq!(d.to_bits(), want, "{i}: {s:e} ({:#x})", s.to_bits());
        }
        // In place, the same bits; and rounding again changes nothing (NaNs stay NaNs).
        let mut v = src.clone();
        round_in_place(&mut v);
        assert!(v.iter().zip(&dst).all(|(a, b)| a.to_bits() == b.to_bits()));
        round_in_place(&mut v);
        for (&a, &b) in v.iter().zip(&dst) {
            assert!(a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()));
        }
        // The scalar rule on the special values, written out.
        assert_eq!(bf16_bits(f32::from_bits(0x3f80_8000)), 0x3f80);
        assert_eq!(bf16_bits(f32::from_bits(0x3f81_8000)), 0x3f82);
        assert_eq!(bf16_bits(f32::from_bits(0x7f80_0001)), 0x7fc0);
        assert_eq!(bf16_bits(f32::from_bits(0xffff_ffff)), 0xffff);
        assert_eq!(bf16_bits(f32::NEG_INFINITY), 0xff80);
    }

    /// A deterministic pseudo-random value in [-1, 1) with an exponent spread over ±6 binades.
    fn val(i: usize, salt: u64) -> f32 {
        let mut z = (i as u64 ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15)).wrapping_add(0x632B_E59B);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let u = (z >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0;
        u * 2f32.powi(((z >> 8) % 13) as i32 - 6)
    }

    /// Every path (each unit's tiles, the rounded float32 product) against a float64 product
    /// of the rounded operands, on shapes with every kind of edge (rows, columns and
    /// reductions not multiples of the tiles, 1-wide, a reduction shorter than one tile,
    /// several tiles), transposed views and accumulation.
    #[test]
    fn both_paths_match_a_float64_product_of_the_rounded_operands() {
        let shapes = [
            (1, 1, 1),
            (16, 32, 16),
            (32, 32, 32),
            (17, 33, 15),
            (5, 3, 70),
            (64, 576, 96),
            (40, 100, 33),
            (33, 1, 65),
            (96, 64, 17),
        ];
        let paths = crate::amx_conv::unit_paths();
        for (case, &(m, k, n)) in shapes.iter().enumerate() {
            for &at in &[false, true] {
                for &bt in &[false, true] {
                    for &acc in &[false, true] {
                        let salt = case as u64 * 8 + u64::from(at) * 4 + u64::from(bt) * 2;
                        let a: Vec<f32> = (0..m * k).map(|i| val(i, salt)).collect();
                        let b: Vec<f32> = (0..k * n).map(|i| val(i, salt + 1)).collect();
                        let c0: Vec<f32> = (0..m * n).map(|i| val(i, salt + 7)).collect();
                        // `a` stored as k × m when transposed (viewed back as m × k).
                        let a_st: Vec<f32> = if at {
                            (0..k * m).map(|i| a[(i % m) * k + i / m]).collect()
                        } else {
                            a.clone()
                        };
                        let b_st: Vec<f32> = if bt {
                            (0..n * k).map(|i| b[(i % k) * n + i / k]).collect()
                        } else {
                            b.clone()
                        };
                        let av = if at {
                            MatRef::rm(&a_st, 0, k, m).t()
                        } else {
                            MatRef::rm(&a_st, 0, m, k)
                        };
                        let bv = if bt {
                            MatRef::rm(&b_st, 0, n, k).t()
                        } else {
                            MatRef::rm(&b_st, 0, k, n)
                        };
                        for &unit in &paths {
                            let tiled = unit.is_some();
                            let mut c = c0.clone();
                            crate::amx_conv::with_unit(unit, || {
                                gemm_bf16_on(MatMut::rm(&mut c, 0, m, n), acc, av, bv, tiled)
                            });
                            for i in 0..m {
                                for j in 0..n {
                                    let (mut exact, mut mag) = (0.0f64, 0.0f64);
                                    for l in 0..k {
                                        let p = f64::from(round_bf16(a[i * k + l]))
                                            * f64::from(round_bf16(b[l * n + j]));
                                        exact += p;
                                        mag += p.abs();
                                    }
                                    if acc {
                                        exact += f64::from(c0[i * n + j]);
                                        mag += f64::from(c0[i * n + j]).abs();
                                    }
                                    let err = (f64::from(c[i * n + j]) - exact).abs();
                                    // float32 sums: at most (k + 1) roundings of the partial
                                    // sums, each ≤ 2^-24 of the magnitude so far.
                                    let bound = (k as f64 + 2.0) * mag * 6e-8 + 1e-30;
                                    assert!(
                                        err <= bound,
                                        "{m}x{k}x{n} at {at} bt {bt} acc {acc} on {unit:?} ({i},{j}): {} vs {exact}",
                                        c[i * n + j]
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Rows of the destination outside the product are not touched (the blocks at the edges
    /// go through a scratch block), and a strided destination works.
    #[test]
    fn the_destination_outside_the_view_is_untouched() {
        let (m, k, n) = (20, 40, 24);
        let a: Vec<f32> = (0..m * k).map(|i| val(i, 91)).collect();
        let b: Vec<f32> = (0..k * n).map(|i| val(i, 92)).collect();
        let paths = crate::amx_conv::unit_paths();
        for &unit in &paths {
            let tiled = unit.is_some();
            // dst rows 20 of a 30-wide row-major buffer, starting at column 3.
            let mut buf = vec![7.0f32; 30 * 25];
            let dst = MatMut {
                data: &mut buf,
                off: 3,
                rows: m,
                cols: n,
                rs: 30,
                cs: 1,
            };
            crate::amx_conv::with_unit(unit, || {
                gemm_bf16_on(
                    dst,
                    false,
                    MatRef::rm(&a, 0, m, k),
                    MatRef::rm(&b, 0, k, n),
                    tiled,
                )
            });
            for (idx, &v) in buf.iter().enumerate() {
                let (r, c) = (idx / 30, idx % 30);
                if r < m && (3..3 + n).contains(&c) {
                    assert_ne!(v, 7.0);
                } else {
                    assert_eq!(v, 7.0, "{unit:?}: ({r},{c}) written");
                }
            }
        }
    }
}
