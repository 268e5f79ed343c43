//! Winograd F(m × m, 3 × 3) convolution (Lavin & Gray 2016) — forward, input gradient and
//! weight gradient — m = 2 or 4, for 3 × 3,
//! stride-1, padding-1 convolutions on maps whose sides are multiples of m — the lateral and
//! bottom-up convolutions of the BLT networks — in the engine's `[C][B][H][W]` layout. The
//! same machinery with F(4 × 4, 2 × 2) ([`F4K2`]; one-sided padding, `Geo`; skipped zero
//! blocks, `Live`; outputs written as phases of a twice larger map, `Place`) computes the
//! top-down transposed convolutions ([`crate::upsample`]).
//!
//! Every m × m block of outputs is `Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A` of its n × n input tile `d`
//! (n = m + 2): n² multiplies per input channel instead of 9·m², so the products — n² GEMMs
//! `M[ξ] = U[ξ] · V[ξ]` over (output channel × input channel × tile) — are 2.25× (m = 2) or 4×
//! (m = 4) fewer multiply-adds than the direct convolution's. The same mathematics; the
//! float32 rounding is another (the transforms combine tile values before the products, with
//! coefficients up to 8 for m = 4): the tests measure it against a float64 convolution beside
//! the direct path's. Opt-in (`BltNet::set_winograd`, `--winograd`): ventral's default
//! forward stays the direct/GEMM path, whose sums the kill/resume and parity tests pin.
//!
//! Per input channel, the tiles of a whole chunk of images are gathered tile-major
//! (`gather`: `xg[i·n + j][tile]` = element `(i, j)` of the tile), so both sides of the input
//! transform combine contiguous rows as long as the chunk's tiles (`Tiles::input_rows`).
//! Transformed inputs are laid out `[channel][ξ][tile]` (each channel's transform one
//! contiguous task), products `[ξ][Co][tile]` (each of the n² GEMMs one contiguous task, the
//! GEMMs run in parallel); the output transform (`Tiles::output_rows`) interleaves its m
//! columns into the output rows. The input gradient ([`backward_data`]) is the forward of `dy`
//! with the flipped, transposed kernel; the weight gradient ([`backward_weight`]) transforms
//! `dy`'s m × m tiles by `A dy Aᵀ` and adds `Gᵀ dU G` of `dU[ξ] = Σ_tiles dM[ξ] · V[ξ]ᵀ`.

use rayon::prelude::*;

use crate::conv::{Conv, Scratch, ensure};
use crate::mat::{MatMut, MatRef, gemm_serial};
use crate::profile::{Op, scope};

/// Bytes the transformed inputs and products of one chunk of images may use.
const CHUNK_BUDGET: usize = 8 << 20;

/// The transform matrices of F(m × m, r × r), row-major: `bt` n × n, `g` n × r, `at` m × n
/// (n = m + r − 1).
#[derive(Debug, Clone, Copy)]
pub struct Tiles {
    /// Outputs per tile side.
    pub m: usize,
    /// Kernel side.
    r: usize,
    bt: &'static [f32],
    g: &'static [f32],
    at: &'static [f32],
}

/// F(2 × 2, 3 × 3): points 0, ±1, ∞.
pub const F2: Tiles = Tiles {
    m: 2,
    r: 3,
    #[rustfmt::skip]
    bt: &[
        1.0, 0.0, -1.0, 0.0,
        0.0, 1.0, 1.0, 0.0,
        0.0, -1.0, 1.0, 0.0,
        0.0, 1.0, 0.0, -1.0,
    ],
    #[rustfmt::skip]
    g: &[
        1.0, 0.0, 0.0,
        0.5, 0.5, 0.5,
        0.5, -0.5, 0.5,
        0.0, 0.0, 1.0,
    ],
    #[rustfmt::skip]
    at: &[
        1.0, 1.0, 1.0, 0.0,
        0.0, 1.0, -1.0, -1.0,
    ],
};

/// F(4 × 4, 3 × 3): points 0, ±1, ±2, ∞ (Lavin & Gray's matrices).
pub const F4: Tiles = Tiles {
    m: 4,
    r: 3,
    #[rustfmt::skip]
    bt: &[
        4.0, 0.0, -5.0, 0.0, 1.0, 0.0,
        0.0, -4.0, -4.0, 1.0, 1.0, 0.0,
        0.0, 4.0, -4.0, -1.0, 1.0, 0.0,
        0.0, -2.0, -1.0, 2.0, 1.0, 0.0,
        0.0, 2.0, -1.0, -2.0, 1.0, 0.0,
        0.0, 4.0, 0.0, -5.0, 0.0, 1.0,
    ],
    #[rustfmt::skip]
    g: &[
        0.25, 0.0, 0.0,
        -1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0,
        -1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0,
        1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0,
        1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0,
        0.0, 0.0, 1.0,
    ],
    #[rustfmt::skip]
    at: &[
        1.0, 1.0, 1.0, 1.0, 1.0, 0.0,
        0.0, 1.0, -1.0, 2.0, -2.0, 0.0,
        0.0, 1.0, 1.0, 4.0, 4.0, 0.0,
        0.0, 1.0, -1.0, 8.0, -8.0, 1.0,
    ],
};

/// F(4 × 4, 2 × 2): points 0, ±1, 2, ∞ (the top-down convolutions' phases,
/// [`crate::upsample`]). Derived, and its float32 error compared with the points 0, ±1, −2 and
/// 0, ±1, ±½ (all 1.1–1.2e-7 relative on random 1-D tiles), by `scripts/winograd_points.py`.
pub const F4K2: Tiles = Tiles {
    m: 4,
    r: 2,
    #[rustfmt::skip]
    bt: &[
        2.0, -1.0, -2.0, 1.0, 0.0,
        0.0, -2.0, -1.0, 1.0, 0.0,
        0.0, 2.0, -3.0, 1.0, 0.0,
        0.0, -1.0, 0.0, 1.0, 0.0,
        0.0, 2.0, -1.0, -2.0, 1.0,
    ],
    #[rustfmt::skip]
    g: &[
        0.5, 0.0,
        -0.5, -0.5,
        -1.0 / 6.0, 1.0 / 6.0,
        1.0 / 6.0, 1.0 / 3.0,
        0.0, 1.0,
    ],
    #[rustfmt::skip]
    at: &[
        1.0, 1.0, 1.0, 1.0, 0.0,
        0.0, 1.0, -1.0, 2.0, 0.0,
        0.0, 1.0, 1.0, 4.0, 0.0,
        0.0, 1.0, -1.0, 8.0, 1.0,
    ],
};

impl Tiles {
    /// Input tile side.
    pub fn n(&self) -> usize {
        self.m + self.r - 1
    }

    /// Whether [`forward`] computes this convolution with these tiles: 3 × 3, stride 1,
    /// padding 1, output = input size, both sides multiples of m.
    pub fn applies(&self, g: &Conv) -> bool {
        self.r == 3
            && g.k == 3
            && g.stride == 1
            && g.pad == 1
            && g.hi == g.ho
            && g.wi == g.wo
            && g.hi.is_multiple_of(self.m)
            && g.wi.is_multiple_of(self.m)
            && g.hi >= self.m
            && g.wi >= self.m
    }

    /// What [`backward_data`] takes: the transform ([`Self::weights`]) of the flipped,
    /// transposed kernels `w[co][ci]` (`[Ci, Co, r, r]`), computed once per set of weights.
    ///
    /// # Shapes
    /// - `w`: `[Co, Ci, r, r]`; `ut`: `[Ci][n²][Co]`, resized here.
    pub fn input_gradient_weights(&self, w: &[f32], co: usize, ci: usize, ut: &mut Vec<f32>) {
        let mut wt = Vec::new();
        crate::conv::flip_transposed(w, co, ci, self.r, &mut wt);
        self.weights(&wt, ci, co, ut);
    }

    /// The transformed weights `U[co][ξ][ci] = (G g Gᵀ)[ξ]` of every r × r kernel
    /// `g = w[co][ci]` (`ξ = n·a + b`), what [`forward`] takes: compute them once per set of
    /// weights (a network's weights do not change over its time steps).
    ///
    /// # Shapes
    /// - `w`: `[Co, Ci, r, r]`; `u`: `[Co][n²][Ci]`, resized here.
    pub fn weights(&self, w: &[f32], co: usize, ci: usize, u: &mut Vec<f32>) {
        let (n, r) = (self.n(), self.r);
        let (nn, rr) = (n * n, r * r);
        assert_eq!(
            w.len(),
            co * ci * rr,
            "winograd weights: {co} × {ci} × {r} × {r}"
        );
        let _p = scope(Op::Winograd);
        ensure(u, co * nn * ci);
        // One task per output channel: its kernels transposed to 9 rows over the input
        // channels, then G · g · Gᵀ as combines of whole rows.
        u[..co * nn * ci]
            .par_chunks_mut(nn * ci)
            .with_min_len(crate::min_items(nn * ci))
            .enumerate()
            .for_each_init(
                || (Vec::new(), Vec::new()),
                |(kt, gg), (o, uo)| {
                    kt.resize(rr * ci, 0.0);
                    gg.resize(r * n * ci, 0.0);
                    crate::simd::run(
                        #[inline(always)]
                        || {
                            let wo = &w[o * ci * rr..(o + 1) * ci * rr];
                            for (c, k) in wo.chunks_exact(rr).enumerate() {
                                for (t, v) in k.iter().enumerate() {
                                    kt[t * ci + c] = *v;
                                }
                            }
                            // (G g)[a][j] = Σ_i G[a][i] g[i][j]: rows `gg[a·r + j]`.
                            for j in 0..r {
                                let src = rows(kt, ci, r, |i| i * r + j);
                                for a in 0..n {
                                    let dst = &mut gg[(a * r + j) * ci..(a * r + j + 1) * ci];
                                    combine(dst, &self.g[a * r..a * r + r], &src[..r]);
                                }
                            }
                            // ((G g) Gᵀ)[a][b] = Σ_j (G g)[a][j] G[b][j].
                            for a in 0..n {
                                let src = rows(gg, ci, r, |j| a * r + j);
                                for b in 0..n {
                                    let dst = &mut uo[(a * n + b) * ci..(a * n + b + 1) * ci];
                                    combine(dst, &self.g[b * r..b * r + r], &src[..r]);
                                }
                            }
                        },
                    )
                },
            );
    }
}

/// `dst = Σ_i coef[i] · src[i]` over the nonzero coefficients, elementwise (fixed order).
#[inline(always)]
fn combine(dst: &mut [f32], coef: &[f32], src: &[&[f32]]) {
    let mut first = true;
    for (&c, s) in coef.iter().zip(src) {
        if c == 0.0 {
            continue;
        }
        if first {
            dst.iter_mut().zip(*s).for_each(|(d, v)| *d = c * v);
            first = false;
        } else {
            dst.iter_mut().zip(*s).for_each(|(d, v)| *d += c * v);
        }
    }
    if first {
        dst.fill(0.0);
    }
}

impl Tiles {
    /// `dst[a] = Σ_i Bᵀ[a][i] · src[i]` elementwise for `a, i < n` (rows of one length): one
    /// side of the input transform. F(4 × 4) runs one fused loop with the shared sums of
    /// Lavin & Gray's `Bᵀ`; other tiles combine row by row.
    #[inline(always)]
    fn input_rows(&self, src: &[&[f32]], dst: &mut [&mut [f32]]) {
        if let ([d0, d1, d2, d3, d4, d5], [o0, o1, o2, o3, o4, o5], 4) = (src, &mut *dst, self.m) {
            let l = o0.len();
            let (d0, d1, d2, d3, d4, d5) =
                (&d0[..l], &d1[..l], &d2[..l], &d3[..l], &d4[..l], &d5[..l]);
            let (o1, o2, o3, o4, o5) = (
                &mut o1[..l],
                &mut o2[..l],
                &mut o3[..l],
                &mut o4[..l],
                &mut o5[..l],
            );
            for e in 0..l {
                let (x0, x1, x2, x3, x4, x5) = (d0[e], d1[e], d2[e], d3[e], d4[e], d5[e]);
                let (s12, d12) = (x1 + x2, x1 - x2);
                let (s34, d43) = (x3 + x4, x4 - x3);
                let (d31, d42) = (x3 - x1, x4 - x2);
                o0[e] = 4.0 * x0 - 5.0 * x2 + x4;
                o1[e] = s34 - 4.0 * s12;
                o2[e] = d43 + 4.0 * d12;
                o3[e] = d42 + 2.0 * d31;
                o4[e] = d42 - 2.0 * d31;
                o5[e] = 4.0 * x1 - 5.0 * x3 + x5;
            }
            return;
        }
        if let ([d0, d1, d2, d3, d4], [o0, o1, o2, o3, o4], 2) = (src, &mut *dst, self.r) {
            let l = o0.len();
            let (d0, d1, d2, d3, d4) = (&d0[..l], &d1[..l], &d2[..l], &d3[..l], &d4[..l]);
            let (o1, o2, o3, o4) = (&mut o1[..l], &mut o2[..l], &mut o3[..l], &mut o4[..l]);
            for e in 0..l {
                let (x0, x1, x2, x3, x4) = (d0[e], d1[e], d2[e], d3[e], d4[e]);
                let d31 = x3 - x1;
                o0[e] = 2.0 * (x0 - x2) + d31;
                o1[e] = d31 - (x1 + x2);
                o2[e] = 2.0 * x1 - 3.0 * x2 + x3;
                o3[e] = d31;
                o4[e] = 2.0 * (x1 - x3) - x2 + x4;
            }
            return;
        }
        let n = self.n();
        for (a, o) in dst.iter_mut().enumerate() {
            combine(o, &self.bt[a * n..(a + 1) * n], src);
        }
    }

    /// `dst[a] = Σ_i Aᵀ[a][i] · src[i]` elementwise for `a < m`, `i < n`: one side of the
    /// output transform (fused for F(4 × 4), as [`Self::input_rows`]).
    #[inline(always)]
    fn output_rows(&self, src: &[&[f32]], dst: &mut [&mut [f32]]) {
        if let ([d0, d1, d2, d3, d4, d5], [o0, o1, o2, o3], 4) = (src, &mut *dst, self.m) {
            let l = o0.len();
            let (d0, d1, d2, d3, d4, d5) =
                (&d0[..l], &d1[..l], &d2[..l], &d3[..l], &d4[..l], &d5[..l]);
            let (o1, o2, o3) = (&mut o1[..l], &mut o2[..l], &mut o3[..l]);
            for e in 0..l {
                let (x0, x1, x2, x3, x4, x5) = (d0[e], d1[e], d2[e], d3[e], d4[e], d5[e]);
                let (s12, d12, s34, d34) = (x1 + x2, x1 - x2, x3 + x4, x3 - x4);
                o0[e] = x0 + s12 + s34;
                o1[e] = d12 + 2.0 * d34;
                o2[e] = s12 + 4.0 * s34;
                o3[e] = d12 + 8.0 * d34 + x5;
            }
            return;
        }
        if let ([d0, d1, d2, d3, d4], [o0, o1, o2, o3], 2) = (src, &mut *dst, self.r) {
            let l = o0.len();
            let (d0, d1, d2, d3, d4) = (&d0[..l], &d1[..l], &d2[..l], &d3[..l], &d4[..l]);
            let (o1, o2, o3) = (&mut o1[..l], &mut o2[..l], &mut o3[..l]);
            for e in 0..l {
                let (x0, x1, x2, x3, x4) = (d0[e], d1[e], d2[e], d3[e], d4[e]);
                let (s12, d12) = (x1 + x2, x1 - x2);
                o0[e] = x0 + s12 + x3;
                o1[e] = d12 + 2.0 * x3;
                o2[e] = s12 + 4.0 * x3;
                o3[e] = d12 + 8.0 * x3 + x4;
            }
            return;
        }
        let n = self.n();
        for (a, o) in dst.iter_mut().enumerate() {
            combine(o, &self.at[a * n..(a + 1) * n], src);
        }
    }

    /// First side of the output transform of output channel `o`:
    /// `s[a][j] = Σ_i Aᵀ[a][i] M[i·n + j][o]` for every column `j` (`M`: `[ξ][Co][p]`,
    /// `s`: `[m][n][p]`).
    #[inline(always)]
    fn output_columns(&self, mm: &[f32], (co, o, p): (usize, usize, usize), s: &mut [f32]) {
        let (m, n) = (self.m, self.n());
        for j in 0..n {
            let src = rows(mm, p, n, |i| (i * n + j) * co + o);
            let mut dst: [&mut [f32]; 4] = rows_mut(s, (p, j, n), (0, p), m);
            self.output_rows(&src[..n], &mut dst[..m]);
        }
    }

    /// Second side for output row `a` of every tile: `yb[β] = Σ_j s[a][j] Aᵀ[β][j]` (`yb`:
    /// `[m][p]`, the tiles' m columns).
    #[inline(always)]
    fn output_tile_row(&self, s: &[f32], (a, p): (usize, usize), yb: &mut [f32]) {
        let (m, n) = (self.m, self.n());
        let src = rows(s, p, n, |j| a * n + j);
        let mut dst: [&mut [f32]; 4] = rows_mut(yb, (p, 0, 1), (0, p), m);
        self.output_rows(&src[..n], &mut dst[..m]);
    }

    /// `dst[k] = Σ_a Gᵀ[k][a] · src[a]` elementwise for `k < r`, `a < n`: one side of the
    /// weight gradient's `Gᵀ dU G`, the adjoint of the weight transform (fused for
    /// F(4 × 4, 3 × 3)).
    #[inline(always)]
    fn kernel_gradient_rows(&self, src: &[&[f32]], dst: &mut [&mut [f32]]) {
        if let ([x0, x1, x2, x3, x4, x5], [o0, o1, o2], 4) = (src, &mut *dst, self.m) {
            let l = o0.len();
            let (x0, x1, x2, x3, x4, x5) =
                (&x0[..l], &x1[..l], &x2[..l], &x3[..l], &x4[..l], &x5[..l]);
            let (o1, o2) = (&mut o1[..l], &mut o2[..l]);
            const SIXTH: f32 = 1.0 / 6.0;
            for e in 0..l {
                let (s12, d21) = (x1[e] + x2[e], x2[e] - x1[e]);
                let (s34, d34) = (x3[e] + x4[e], x3[e] - x4[e]);
                o0[e] = 0.25 * x0[e] - SIXTH * s12 + (1.0 / 24.0) * s34;
                o1[e] = SIXTH * d21 + (1.0 / 12.0) * d34;
                o2[e] = SIXTH * (s34 - s12) + x5[e];
            }
            return;
        }
        let (n, r) = (self.n(), self.r);
        for (k, o) in dst.iter_mut().enumerate() {
            let coef: [f32; 6] =
                std::array::from_fn(|a| if a < n { self.g[a * r + k] } else { 0.0 });
            combine(o, &coef[..n], src);
        }
    }

    /// `dst[i] = Σ_a A[i][a] · src[a] = Σ_a Aᵀ[a][i] · src[a]` elementwise for `i < n`,
    /// `a < m`: one side of the weight gradient's output-gradient transform `A dy Aᵀ`, the
    /// adjoint of [`Self::output_rows`] (fused for F(4 × 4)).
    #[inline(always)]
    fn gradient_rows(&self, src: &[&[f32]], dst: &mut [&mut [f32]]) {
        if let ([y0, y1, y2, y3], [o0, o1, o2, o3, o4, o5], 4) = (src, &mut *dst, self.m) {
            let l = o0.len();
            let (y0, y1, y2, y3) = (&y0[..l], &y1[..l], &y2[..l], &y3[..l]);
            let (o1, o2, o3, o4, o5) = (
                &mut o1[..l],
                &mut o2[..l],
                &mut o3[..l],
                &mut o4[..l],
                &mut o5[..l],
            );
            for e in 0..l {
                let (x0, x1, x2, x3) = (y0[e], y1[e], y2[e], y3[e]);
                let (even, odd) = (x0 + x2, x1 + x3);
                let (even4, odd8) = (x0 + 4.0 * x2, 2.0 * x1 + 8.0 * x3);
                o0[e] = x0;
                o1[e] = even + odd;
                o2[e] = even - odd;
                o3[e] = even4 + odd8;
                o4[e] = even4 - odd8;
                o5[e] = x3;
            }
            return;
        }
        let (m, n) = (self.m, self.n());
        for (i, o) in dst.iter_mut().enumerate() {
            let coef: [f32; 4] =
                std::array::from_fn(|a| if a < m { self.at[a * n + i] } else { 0.0 });
            combine(o, &coef[..m], src);
        }
    }
}

/// Disjoint rows `buf[(first + k·step)·len + off..][..seg]` for `k < count` (`step ≥ 1`),
/// empty slices for `count ≤ k < K`.
#[inline(always)]
fn rows_mut<const K: usize>(
    buf: &mut [f32],
    (len, first, step): (usize, usize, usize),
    (off, seg): (usize, usize),
    count: usize,
) -> [&mut [f32]; K] {
    // Filled in a loop: `std::array::from_fn` was left as a call (3-9 % of a small-map
    // Winograd pass under `perf`).
    let mut out: [&mut [f32]; K] = [(); K].map(|_| <&mut [f32]>::default());
    let mut rest = buf;
    let mut pos = 0;
    for (k, o) in out.iter_mut().enumerate().take(count) {
        let start = (first + k * step) * len + off;
        let tail = std::mem::take(&mut rest).split_at_mut(start - pos).1;
        let (row, tail) = tail.split_at_mut(seg);
        rest = tail;
        pos = start + seg;
        *o = row;
    }
    out
}

/// `dx += ∂L/∂x` of `y = conv(x)` by Winograd F(m × m, 3 × 3) (`g` must satisfy
/// [`Tiles::applies`]): the 3 × 3 stride-1 convolution of `dy` with the flipped, transposed
/// kernel, whose transform `ut` is [`Tiles::input_gradient_weights`].
///
/// # Shapes
/// - `ut`: `[Ci][n²][Co]`; `dy`: `[Co][B][H][W]`; `dx`: `[Ci][B][H][W]`.
#[allow(clippy::too_many_arguments)]
pub fn backward_data(
    f: &Tiles,
    g: &Conv,
    ut: &[f32],
    dy: &[f32],
    batch: usize,
    dx: &mut [f32],
    scratch: &mut Scratch,
) {
    let gt = Conv::new(g.co, g.ci, 3, 1, 1, g.hi, g.wi);
    forward(f, &gt, ut, dy, batch, dx, true, scratch);
}

/// `y = conv(x)` (`accumulate`: `y +=`) by Winograd F(m × m, 3 × 3) with the weights
/// transformed by [`Tiles::weights`]; `g` must satisfy [`Tiles::applies`].
///
/// # Shapes
/// - `u`: `[Co][n²][Ci]`; `x`: `[Ci][B][H][W]`; `y`: `[Co][B][H][W]`.
#[allow(clippy::too_many_arguments)]
pub fn forward(
    f: &Tiles,
    g: &Conv,
    u: &[f32],
    x: &[f32],
    batch: usize,
    y: &mut [f32],
    accumulate: bool,
    scratch: &mut Scratch,
) {
    assert!(f.applies(g), "winograd::forward F({}) on {g:?}", f.m);
    let geo = Geo::of(g);
    let how = (Live::All, Place::Plain);
    forward_geo(f, geo, u, x, batch, y, accumulate, how, scratch);
}

/// Where [`forward_geo`] writes its outputs: `Plain`, `[Co][B][H][W]`; `Phases(q)`, output
/// channel `q[py][px]·C + c` is phase `(py, px)` of channel `c` of a `[C][B][2H][2W]` map
/// (`C = Co / 4`): its pixel `(i, j)` lands on `(2i + py, 2j + px)` ([`crate::upsample`]).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Place {
    Plain,
    Phases([[usize; 2]; 2]),
}

/// Geometry of a stride-1 convolution whose output has its input's size `h × w`: the input
/// padded by `lead` zeros before each side and `r − 1 − lead` after.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Geo {
    pub ci: usize,
    pub co: usize,
    pub h: usize,
    pub w: usize,
    pub lead: usize,
}

impl Geo {
    fn of(g: &Conv) -> Self {
        Self {
            ci: g.ci,
            co: g.co,
            h: g.hi,
            w: g.wi,
            lead: g.pad,
        }
    }
}

/// Which blocks of the n² products can be nonzero, per ξ (kernels with structural zeros, as
/// the phases of [`crate::upsample`]): `Rows`: only output channels `lo..hi` (the others'
/// transformed weights are zero; their products are zero-filled, not computed).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Live<'a> {
    All,
    Rows(&'a [(usize, usize)]),
}

/// [`forward`] on a [`Geo`], computing only the [`Live`] blocks of the products.
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward_geo(
    f: &Tiles,
    geo: Geo,
    u: &[f32],
    x: &[f32],
    batch: usize,
    y: &mut [f32],
    accumulate: bool,
    (live, place): (Live<'_>, Place),
    scratch: &mut Scratch,
) {
    let (m, n) = (f.m, f.n());
    let nn = n * n;
    let Geo {
        ci,
        co,
        h,
        w: wd,
        lead,
    } = geo;
    let (th, tw) = (h / m, wd / m);
    let per_image = th * tw;
    assert!(
        u.len() >= co * nn * ci && h.is_multiple_of(m) && wd.is_multiple_of(m) && h >= m && wd >= m,
        "winograd::forward: transformed weights or map size"
    );
    over_chunks(
        f,
        x,
        (ci, co, batch, h, wd),
        lead,
        scratch,
        |_, (b0, b1, p), v, mm| {
            {
                let _p = scope(Op::Gemm);
                // M[ξ] = U[ξ] · V[·][ξ][·] (rows of V n²·p apart): n² products, in parallel.
                mm[..nn * co * p]
                    .par_chunks_mut(co * p)
                    .enumerate()
                    .for_each(|(xi, mx)| {
                        let (r0, r1) = match live {
                            Live::All => (0, co),
                            Live::Rows(l) => l[xi],
                        };
                        mx[..r0 * p].fill(0.0);
                        mx[r1 * p..].fill(0.0);
                        let vx = MatRef {
                            data: v,
                            off: xi * p,
                            rows: ci,
                            cols: p,
                            rs: nn * p,
                            cs: 1,
                        };
                        let ux = MatRef {
                            data: u,
                            off: (r0 * nn + xi) * ci,
                            rows: r1 - r0,
                            cols: ci,
                            rs: nn * ci,
                            cs: 1,
                        };
                        let out = &mut mx[r0 * p..r1 * p];
                        gemm_serial(MatMut::rm(out, 0, r1 - r0, p), false, ux, vx);
                    });
            }
            let _p = scope(Op::Winograd);
            let mm = &*mm;
            if let Place::Phases(q) = place {
                let geo = (batch, h, wd);
                output_phases(f, mm, (co, p, q), (b0, b1), geo, y, accumulate);
                return;
            }
            let hw = h * wd;
            y[..co * batch * hw]
                .par_chunks_mut(batch * hw)
                .with_min_len(crate::min_items(batch * hw))
                .enumerate()
                .for_each_init(Vec::new, |sb, (o, yo)| {
                    sb.resize((m * n + m) * p, 0.0);
                    crate::simd::run(
                        #[inline(always)]
                        || {
                            let (s, yb) = sb.split_at_mut(m * n * p);
                            f.output_columns(mm, (co, o, p), s);
                            for a in 0..m {
                                f.output_tile_row(s, (a, p), yb);
                                // Output (m·ty + a, m·tx + bb) of every tile.
                                for b in b0..b1 {
                                    let yimg = &mut yo[b * hw..(b + 1) * hw];
                                    for ty in 0..th {
                                        let t = (b - b0) * per_image + ty * tw;
                                        let yr =
                                            &mut yimg[(m * ty + a) * wd..(m * ty + a + 1) * wd];
                                        let src = |bb: usize| &yb[bb * p + t..bb * p + t + tw];
                                        match m {
                                            4 => crate::kernel::interleave::<4>(
                                                yr,
                                                std::array::from_fn(src),
                                                tw,
                                                accumulate,
                                            ),
                                            _ => crate::kernel::interleave::<2>(
                                                yr,
                                                std::array::from_fn(src),
                                                tw,
                                                accumulate,
                                            ),
                                        }
                                    }
                                }
                            }
                        },
                    )
                });
        },
    );
}

/// The output transform of [`forward_geo`] for [`Place::Phases`]: per channel `c` (one task),
/// per row parity `py`, the tiles of both column phases, written straight into the map's rows
/// `2(m·ty + a) + py` as 8 interleaved columns (`2(m·tx + β) + px`).
fn output_phases(
    f: &Tiles,
    mm: &[f32],
    (co, p, q): (usize, usize, [[usize; 2]; 2]),
    (b0, b1): (usize, usize),
    (batch, h, wd): (usize, usize, usize),
    z: &mut [f32],
    accumulate: bool,
) {
    let (m, n) = (f.m, f.n());
    assert!(
        m == 4 && co.is_multiple_of(4),
        "phased outputs need F(4 × 4) tiles"
    );
    let c4 = co / 4;
    let (th, tw) = (h / m, wd / m);
    let per_image = th * tw;
    let big = 4 * h * wd;
    z[..c4 * batch * big]
        .par_chunks_mut(batch * big)
        .with_min_len(crate::min_items(batch * big))
        .enumerate()
        .for_each_init(Vec::new, |sb, (c, zc)| {
            sb.resize(2 * (m * n + m) * p, 0.0);
            crate::simd::run(
                #[inline(always)]
                || {
                    let (sa, yb) = sb.split_at_mut(2 * m * n * p);
                    for (py, qy) in q.iter().enumerate() {
                        // Aᵀ M of both column phases: sa[px][a][j].
                        for (px, s) in sa.chunks_exact_mut(m * n * p).enumerate() {
                            f.output_columns(mm, (co, qy[px] * c4 + c, p), s);
                        }
                        for a in 0..m {
                            // (Aᵀ M) A of both column phases: yb[px·m + β].
                            for (px, ybp) in yb.chunks_exact_mut(m * p).enumerate() {
                                f.output_tile_row(&sa[px * m * n * p..], (a, p), ybp);
                            }
                            let yb = &*yb;
                            for b in b0..b1 {
                                let zimg = &mut zc[b * big..(b + 1) * big];
                                for ty in 0..th {
                                    let t = (b - b0) * per_image + ty * tw;
                                    let r = 2 * (m * ty + a) + py;
                                    let zr = &mut zimg[r * 2 * wd..(r + 1) * 2 * wd];
                                    // Column 8·tx + 2β + px ← yb[px·m + β][tile].
                                    let src = |i: usize| &yb[((i % 2) * m + i / 2) * p + t..][..tw];
                                    crate::kernel::interleave::<8>(
                                        zr,
                                        std::array::from_fn(src),
                                        tw,
                                        accumulate,
                                    );
                                }
                            }
                        }
                    }
                },
            )
        });
}

/// `dw += ∂L/∂w` of `y = conv(x)` by Winograd F(m × m, 3 × 3) (`g` must satisfy
/// [`Tiles::applies`]), the adjoint of [`forward`]'s weight path: the output gradient's tiles
/// transformed by `A dy Aᵀ` (n × n from m × m), `dU[ξ] = Σ_tiles dM[ξ] · V[ξ]ᵀ` as n² GEMMs
/// over the tiles of every image, then `dw += Gᵀ dU G` per kernel. 4× fewer multiply-adds than
/// the direct weight gradient; another float32 rounding (sums of transformed values).
///
/// # Shapes
/// - `x`: `[Ci][B][H][W]`; `dy`: `[Co][B][H][W]`; `dw`: `[Co, Ci, 3, 3]`.
#[allow(clippy::too_many_arguments)]
pub fn backward_weight(
    f: &Tiles,
    g: &Conv,
    x: &[f32],
    dy: &[f32],
    batch: usize,
    dw: &mut [f32],
    scratch: &mut Scratch,
) {
    assert!(
        f.applies(g),
        "winograd::backward_weight F({}) on {g:?}",
        f.m
    );
    let (m, n, r) = (f.m, f.n(), f.r);
    let (nn, rr) = (n * n, r * r);
    let Geo {
        ci,
        co,
        h,
        w: wd,
        lead,
    } = Geo::of(g);
    let (th, tw) = (h / m, wd / m);
    let (hw, per_image) = (h * wd, th * tw);
    assert!(dw.len() >= co * ci * rr && dy.len() >= co * batch * hw);
    scratch.grow(2);
    let mut du = std::mem::take(&mut scratch.parts[0]);
    ensure(&mut du, nn * co * ci);
    over_chunks(
        f,
        x,
        (ci, co, batch, h, wd),
        lead,
        scratch,
        |chunk, (b0, b1, p), v, dm| {
            {
                // dM[o][ξ][tile] = (A dy Aᵀ)[ξ] of every m × m tile of dy: one task per channel.
                let _p = scope(Op::Winograd);
                dm[..nn * co * p]
                    .par_chunks_mut(nn * p)
                    .with_min_len(crate::min_items(nn * p))
                    .enumerate()
                    .for_each_init(
                        || (Vec::new(), Vec::new()),
                        |(ph, tb), (o, dmo)| {
                            ph.resize(m * m * p, 0.0);
                            tb.resize(n * m * p, 0.0);
                            crate::simd::run(
                                #[inline(always)]
                                || {
                                    // ph[a·m + β][tile] = dy[m·ty + a][m·tx + β], every image.
                                    for b in b0..b1 {
                                        let img =
                                            &dy[(o * batch + b) * hw..(o * batch + b + 1) * hw];
                                        let t0 = (b - b0) * per_image;
                                        for (r, row) in img.chunks_exact(wd).enumerate() {
                                            let (ty, a) = (r / m, r % m);
                                            let dst = &mut ph[a * m * p + t0 + ty * tw..];
                                            deinterleave_m(m, row, dst, (p, tw));
                                        }
                                    }
                                    // tb[i·m + β] = Σ_a A[i][a] ph[a·m + β].
                                    for bb in 0..m {
                                        let src = rows(ph, p, m, |a| a * m + bb);
                                        let mut dst: [&mut [f32]; 6] =
                                            rows_mut(tb, (p, bb, m), (0, p), n);
                                        f.gradient_rows(&src[..m], &mut dst[..n]);
                                    }
                                    // dM[i·n + j] = Σ_β A[j][β] tb[i·m + β].
                                    for i in 0..n {
                                        let src = rows(tb, p, m, |bb| i * m + bb);
                                        let mut dst: [&mut [f32]; 6] =
                                            rows_mut(dmo, (p, i * n, 1), (0, p), n);
                                        f.gradient_rows(&src[..m], &mut dst[..n]);
                                    }
                                },
                            )
                        },
                    );
            }
            let _p = scope(Op::WeightGrad);
            // dU[ξ] (+)= dM[·][ξ][·] · V[·][ξ][·]ᵀ: n² products, in parallel.
            let dm = &*dm;
            du[..nn * co * ci]
                .par_chunks_mut(co * ci)
                .enumerate()
                .for_each_init(Vec::new, |buf, (xi, dux)| {
                    // The operands' rows copied together first: n²·p apart in dM and V, they
                    // fall on few cache sets (V1's 64-px products ran 1.3–1.7× slower).
                    buf.resize((co + ci) * p, 0.0);
                    let (ra, rb) = buf.split_at_mut(co * p);
                    for (o, r) in ra.chunks_exact_mut(p).enumerate() {
                        r.copy_from_slice(&dm[(o * nn + xi) * p..][..p]);
                    }
                    for (c, r) in rb.chunks_exact_mut(p).enumerate() {
                        r.copy_from_slice(&v[(c * nn + xi) * p..][..p]);
                    }
                    let (ra, rb) = (&*ra, &*rb);
                    let (a, b) = (MatRef::rm(ra, 0, co, p), MatRef::rm(rb, 0, ci, p));
                    gemm_serial(MatMut::rm(dux, 0, co, ci), chunk > 0, a, b.t());
                });
        },
    );
    {
        // dw[o][c] += Gᵀ dU[·][o][c] G: one task per output channel, rows over input channels.
        let _p = scope(Op::Winograd);
        let du = &du;
        dw[..co * ci * rr]
            .par_chunks_mut(ci * rr)
            .with_min_len(crate::min_items(ci * rr))
            .enumerate()
            .for_each_init(
                || (Vec::new(), Vec::new()),
                |(t1, t2), (o, dwo)| {
                    t1.resize(r * n * ci, 0.0);
                    t2.resize(rr * ci, 0.0);
                    crate::simd::run(
                        #[inline(always)]
                        || {
                            // t1[kh][β] = Σ_α Gᵀ[kh][α] dU[α·n + β][o].
                            for be in 0..n {
                                let src = rows(du, ci, n, |al| (al * n + be) * co + o);
                                let mut dst: [&mut [f32]; 3] =
                                    rows_mut(t1, (ci, be, n), (0, ci), r);
                                f.kernel_gradient_rows(&src[..n], &mut dst[..r]);
                            }
                            // t2[kh][kw] = Σ_β t1[kh][β] Gᵀ[kw][β].
                            for kh in 0..r {
                                let src = rows(t1, ci, n, |be| kh * n + be);
                                let mut dst: [&mut [f32]; 3] =
                                    rows_mut(t2, (ci, kh * r, 1), (0, ci), r);
                                f.kernel_gradient_rows(&src[..n], &mut dst[..r]);
                            }
                            for (c, k) in dwo.chunks_exact_mut(rr).enumerate() {
                                for (t, d) in k.iter_mut().enumerate() {
                                    *d += t2[t * ci + c];
                                }
                            }
                        },
                    )
                },
            );
    }
    scratch.parts[0] = du;
}

/// Images per chunk of a Winograd pass: chunks of equal size (a short last chunk makes short,
/// slow products) within [`CHUNK_BUDGET`] — or within the transformed weights' size when those
/// are larger: every chunk streams all of `U` (or `dU`) through the products (IT's lateral:
/// 38 MB), so wide layers on small maps take few, large chunks.
fn chunk_images(nn: usize, (ci, co): (usize, usize), per_image: usize, batch: usize) -> usize {
    let budget = CHUNK_BUDGET.max(nn * ci * co * 4);
    let nb = (budget / (nn * (ci + co) * per_image * 4).max(1)).clamp(1, batch.max(1));
    batch.div_ceil(batch.div_ceil(nb).max(1)).max(1)
}

/// The chunk loop of a Winograd pass: for every chunk of images ([`chunk_images`]), the
/// input transform `V` of its images (`nn·Ci·p` floats, p tiles) and a buffer of `nn·Co·p`
/// floats for the output side, handed to `body(chunk index, (b0, b1, p), V, buffer)`.
fn over_chunks(
    f: &Tiles,
    x: &[f32],
    (ci, co, batch, h, wd): (usize, usize, usize, usize, usize),
    lead: usize,
    scratch: &mut Scratch,
    mut body: impl FnMut(usize, (usize, usize, usize), &[f32], &mut [f32]),
) {
    let nn = f.n() * f.n();
    let per_image = (h / f.m) * (wd / f.m);
    let nb = chunk_images(nn, (ci, co), per_image, batch);
    scratch.grow(2);
    for (chunk, b0) in (0..batch).step_by(nb).enumerate() {
        let b1 = (b0 + nb).min(batch);
        let p = (b1 - b0) * per_image;
        let (vs, os) = scratch.cols.split_at_mut(1);
        let (v, out) = (&mut vs[0], &mut os[0]);
        ensure(v, nn * ci * p);
        ensure(out, nn * co * p);
        input_transform(f, x, (ci, batch, h, wd), lead, (b0, b1), v);
        body(
            chunk,
            (b0, b1, p),
            &v[..nn * ci * p],
            &mut out[..nn * co * p],
        );
    }
}

/// The input transform of images `b0..b1`: `V[c][ξ][tile] = (Bᵀ d B)[ξ]` of every tile `d`
/// of `x` (`[Ci][B][H][W]`), tiles of the chunk numbered image by image. Per channel, the
/// tiles' elements are gathered tile-major (`xg[i·n + j][tile] = d[i][j]`) for the whole chunk,
/// so both sides of the transform run over rows as long as the chunk's tiles — on small maps
/// (IT's 2 × 2 tiles per image) per-image rows would be a few lanes long.
fn input_transform(
    f: &Tiles,
    x: &[f32],
    (ci, batch, h, wd): (usize, usize, usize, usize),
    lead: usize,
    (b0, b1): (usize, usize),
    v: &mut [f32],
) {
    let _p = scope(Op::WinogradIn);
    let (m, n) = (f.m, f.n());
    let nn = n * n;
    let per_image = (h / m) * (wd / m);
    let p = (b1 - b0) * per_image;
    // V[c][ξ][tile]: one task per input channel.
    v[..nn * ci * p]
        .par_chunks_mut(nn * p)
        .with_min_len(crate::min_items(nn * p))
        .enumerate()
        .for_each_init(
            || (Vec::new(), Vec::new(), Vec::new()),
            |(xg, cb, prow), (c, vc)| {
                xg.resize(nn * p, 0.0);
                cb.resize(nn * p, 0.0);
                crate::simd::run(
                    #[inline(always)]
                    || {
                        for b in b0..b1 {
                            let img = &x[(c * batch + b) * h * wd..][..h * wd];
                            let t0 = (b - b0) * per_image;
                            gather(img, (h, wd, lead), m, n, (t0, p), prow, xg);
                        }
                        let xg: &[f32] = xg;
                        // Columns: cb[i·n + β] = Σ_j Bᵀ[β][j] xg[i·n + j].
                        for i in 0..n {
                            let src = rows(xg, p, n, |j| i * n + j);
                            let mut dst: [&mut [f32]; 6] = rows_mut(cb, (p, i * n, 1), (0, p), n);
                            f.input_rows(&src[..n], &mut dst[..n]);
                        }
                        // Rows: V[α·n + β] = Σ_i Bᵀ[α][i] cb[i·n + β].
                        for be in 0..n {
                            let src = rows(cb, p, n, |i| i * n + be);
                            let mut dst: [&mut [f32]; 6] = rows_mut(vc, (p, be, n), (0, p), n);
                            f.input_rows(&src[..n], &mut dst[..n]);
                        }
                    },
                )
            },
        );
}

/// `xg[i·n + j][t0 + ty·tw + tx]` = element `(m·ty + i − lead, m·tx + j − lead)` of the image
/// (0 outside it) for `i, j < n`: the tiles of one image, tile-major, rows `p` long. Each
/// padded image row is split once into its m column phases, then copied to the (one or two)
/// tile rows it belongs to. `prow` is a work row (resized here).
#[inline(always)]
fn gather(
    img: &[f32],
    hwl: (usize, usize, usize),
    m: usize,
    n: usize,
    (t0, p): (usize, usize),
    prow: &mut Vec<f32>,
    xg: &mut [f32],
) {
    match m {
        4 => gather_m::<4>(img, hwl, n, (t0, p), prow, xg),
        2 => gather_m::<2>(img, hwl, n, (t0, p), prow, xg),
        _ => unreachable!("Winograd tiles are F(2) or F(4)"),
    }
}

#[inline(always)]
fn gather_m<const M: usize>(
    img: &[f32],
    (h, wd, lead): (usize, usize, usize),
    n: usize,
    (t0, p): (usize, usize),
    prow: &mut Vec<f32>,
    xg: &mut [f32],
) {
    let (th, tw) = (h / M, wd / M);
    // A padded row (`lead` zeros on the left, zeros on the right up to M·(tw + 1)), then its M
    // column phases `ph[q][k]` = padded column M·k + q: column j of tile tx is
    // `ph[j mod M][tx + j / M]`, so each of the n pieces of a tile row is one copy.
    let w1 = tw + 1;
    debug_assert!(n <= 2 * M && n > M && wd == M * tw && lead < n - M + 1);
    prow.resize(2 * M * w1, 0.0);
    let (pr, ph) = prow.split_at_mut(M * w1);
    pr.fill(0.0);
    // Padded row R (image row R − lead) is row i = R mod M of tile row R / M, and row i + M
    // of tile row R / M − 1 when i + M < n.
    for r in 0..M * th + n - M {
        let ir = r.wrapping_sub(lead);
        let inside = ir < h;
        if inside {
            crate::kernel::copy_small(&mut pr[lead..lead + wd], &img[ir * wd..(ir + 1) * wd]);
            deinterleave::<M>(pr, ph, (w1, w1));
        }
        let uses = [(r / M, r % M), ((r / M).wrapping_sub(1), r % M + M)];
        for (ty, i) in uses {
            if ty >= th || i >= n {
                continue;
            }
            for j in 0..n {
                let dst = &mut xg[(i * n + j) * p + t0 + ty * tw..][..tw];
                if inside {
                    crate::kernel::copy_small(dst, &ph[(j % M) * w1 + j / M..][..tw]);
                } else {
                    dst.fill(0.0);
                }
            }
        }
    }
}

/// `ph[q·stride + k] = row[M·k + q]` for `k < len`, `q < M` (`row`: at least `M·len` long): the
/// M column phases of a row.
#[inline(always)]
fn deinterleave<const M: usize>(row: &[f32], ph: &mut [f32], (stride, len): (usize, usize)) {
    let dst: [&mut [f32]; M] = rows_mut(ph, (stride, 0, 1), (0, len), M);
    for (k, c) in row[..M * len].chunks_exact(M).enumerate() {
        for q in 0..M {
            dst[q][k] = c[q];
        }
    }
}

/// [`deinterleave`] for the tiles' m (2 or 4).
#[inline(always)]
fn deinterleave_m(m: usize, row: &[f32], ph: &mut [f32], (stride, len): (usize, usize)) {
    match m {
        4 => deinterleave::<4>(row, ph, (stride, len)),
        _ => deinterleave::<2>(row, ph, (stride, len)),
    }
}

/// Rows `idx(0..k)` of a buffer of rows `len` long (k ≤ 6), as an array of slices.
#[inline(always)]
fn rows(buf: &[f32], len: usize, k: usize, idx: impl Fn(usize) -> usize) -> [&[f32]; 6] {
    let mut out: [&[f32]; 6] = [&[]; 6];
    for (i, o) in out.iter_mut().enumerate().take(k) {
        let r = idx(i);
        *o = &buf[r * len..(r + 1) * len];
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Float64 convolution, `[C][B][H][W]` layout, padding 1.
    fn reference(g: &Conv, w: &[f32], x: &[f32], batch: usize) -> Vec<f64> {
        let (h, wd) = (g.hi, g.wi);
        let mut y = vec![0.0f64; g.co * batch * h * wd];
        for o in 0..g.co {
            for b in 0..batch {
                for i in 0..h {
                    for j in 0..wd {
                        let mut s = 0.0f64;
                        for c in 0..g.ci {
                            for kh in 0..3 {
                                for kw in 0..3 {
                                    let (r, q) = (i + kh, j + kw);
                                    if r < 1 || q < 1 || r > h || q > wd {
                                        continue;
                                    }
                                    let xv = x[((c * batch + b) * h + r - 1) * wd + q - 1];
                                    s += w[((o * g.ci + c) * 3 + kh) * 3 + kw] as f64 * xv as f64;
                                }
                            }
                        }
                        y[((o * batch + b) * h + i) * wd + j] = s;
                    }
                }
            }
        }
        y
    }

    /// Relative L2 error of `a` against the float64 `r`.
    pub(crate) fn rel(a: &[f32], r: &[f64]) -> f64 {
        let num: f64 = a.iter().zip(r).map(|(a, r)| (*a as f64 - r).powi(2)).sum();
        let den: f64 = r.iter().map(|r| r * r).sum();
        (num / den.max(1e-300)).sqrt()
    }

    #[test]
    fn matches_a_float64_convolution_and_the_direct_path() {
        // Odd channel counts, batch 1, non-square maps, accumulation.
        for &(ci, co, h, wd, batch) in &[
            (1, 1, 2, 2, 1),
            (3, 5, 4, 6, 2),
            (17, 9, 8, 8, 3),
            (8, 33, 10, 4, 1),
            (64, 48, 16, 16, 2),
            (5, 7, 12, 8, 2),
            (128, 64, 8, 8, 1),
        ] {
            let g = Conv::new(ci, co, 3, 1, 1, h, wd);
            let x: Vec<f32> = (0..ci * batch * h * wd)
                .map(|i| (i * 7919 % 1000) as f32 / 500.0 - 1.0)
                .collect();
            let w: Vec<f32> = (0..co * ci * 9)
                .map(|i| ((i * 104_729 % 997) as f32 / 498.5 - 1.0) / (ci as f32 * 3.0))
                .collect();
            let r = reference(&g, &w, &x, batch);
            let mut yd = vec![0.0f32; r.len()];
            g.forward(&w, &x, batch, &mut yd, false, &mut Scratch::default());
            let ed = rel(&yd, &r);
            for (f, bound) in [(F2, 1e-6), (F4, 1e-5)] {
                if !f.applies(&g) {
                    continue;
                }
                let mut s = Scratch::default();
                let mut y = vec![f32::NAN; r.len()];
                let mut u = Vec::new();
                f.weights(&w, co, ci, &mut u);
                forward(&f, &g, &u, &x, batch, &mut y, false, &mut s);
                let ew = rel(&y, &r);
                println!(
                    "F({}) {ci}->{co} {h}x{wd} b{batch}: winograd {ew:.2e}, direct {ed:.2e}",
                    f.m
                );
                assert!(ew < bound, "F({}): {ew}", f.m);
                let mut y2: Vec<f32> = vec![1.0; r.len()];
                forward(&f, &g, &u, &x, batch, &mut y2, true, &mut s);
                let shifted: Vec<f64> = r.iter().map(|v| v + 1.0).collect();
                assert!(rel(&y2, &shifted) < bound);
            }
        }
        // Weight gradients against a float64 sum and the exact path, accumulating onto 1.
        for &(ci, co, h, wd, batch) in &[
            (3, 5, 4, 8, 2),
            (17, 9, 8, 8, 3),
            (64, 48, 16, 16, 2),
            (128, 64, 8, 8, 1),
        ] {
            let g = Conv::new(ci, co, 3, 1, 1, h, wd);
            let x: Vec<f32> = (0..ci * batch * h * wd)
                .map(|i| (i * 7919 % 1000) as f32 / 500.0 - 1.0)
                .collect();
            let dy: Vec<f32> = (0..co * batch * h * wd)
                .map(|i| (i * 104_729 % 997) as f32 / 498.5 - 1.0)
                .collect();
            let mut r = vec![1.0f64; co * ci * 9];
            for o in 0..co {
                for c in 0..ci {
                    for k in 0..9 {
                        let (kh, kw) = (k / 3, k % 3);
                        let mut s = 0.0f64;
                        for b in 0..batch {
                            for i in 0..h {
                                for j in 0..wd {
                                    let (ih, iw) = (i + kh, j + kw);
                                    if ih < 1 || iw < 1 || ih > h || iw > wd {
                                        continue;
                                    }
                                    s += dy[((o * batch + b) * h + i) * wd + j] as f64
                                        * x[((c * batch + b) * h + ih - 1) * wd + iw - 1] as f64;
                                }
                            }
                        }
                        r[(o * ci + c) * 9 + k] += s;
                    }
                }
            }
            let mut de = vec![1.0f32; r.len()];
            g.backward_weight(&x, &dy, batch, &mut de, &mut Scratch::default());
            let ed = rel(&de, &r);
            for (f, bound) in [(F2, 1e-6), (F4, 1e-5)] {
                if !f.applies(&g) {
                    continue;
                }
                let mut dw = vec![1.0f32; r.len()];
                let mut s = Scratch::default();
                backward_weight(&f, &g, &x, &dy, batch, &mut dw, &mut s);
                let ew = rel(&dw, &r);
                println!(
                    "dw F({}) {ci}->{co} {h}x{wd} b{batch}: winograd {ew:.2e}, exact path {ed:.2e}",
                    f.m
                );
                assert!(ew < bound, "dw F({}): {ew}", f.m);
            }
        }
        assert!(!F2.applies(&Conv::new(3, 3, 3, 1, 1, 5, 4)));
        assert!(!F4.applies(&Conv::new(3, 3, 3, 1, 1, 8, 6)));
        assert!(F2.applies(&Conv::new(3, 3, 3, 1, 1, 8, 6)));
        assert!(!F2.applies(&Conv::new(3, 3, 3, 2, 1, 8, 8)));
        assert!(!F4.applies(&Conv::new(3, 3, 5, 1, 2, 8, 8)));
    }
}
