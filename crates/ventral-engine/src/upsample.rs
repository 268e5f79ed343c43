//! The top-down convolutions of the BLT networks — `ConvTranspose2d(k = 3, stride = 2,
//! padding = 1, output_padding = 1)` from an `h × w` map to `2h × 2w` — by Winograd
//! F(4 × 4, 2 × 2) on their four output phases, for inference passes.
//!
//! Output pixel `(2j + py, 2i + px)` sees only the input pixels `j, j + 1` (rows) and `i, i + 1`
//! (columns), through one tap per side where its phase is even (`w[1]`) and two where it is
//! odd (`w[2]` on `j`, `w[0]` on `j + 1`): each phase is a 2 × 2 stride-1 correlation of the
//! input padded by one zero after each side, with a kernel whose even sides are zero. All four
//! share one input transform (`Bᵀ d B` of 5 × 5 tiles); phase `p`'s transformed kernel is zero
//! on the row/column of ∞ where its side is even, so the products skip those blocks
//! (`Live`): 81 multiply-adds per 16 input pixels and channel pair instead of the direct
//! path's 144. The output transform writes the phases straight into the `2h × 2w` map
//! (`Place::Phases`).
//!
//! Training passes keep their top-downs exact: the input and weight gradients by the same
//! phases were built and measured (commit 8dbdfef) — the input gradient 1.0–1.5× and the
//! weight gradient 0.7–1.0× the exact path's speed per layer, and on the parity fixture the
//! opt-in Winograd training then flipped one more forward near-tie (`docs/performance.md`,
//! Exactness) — so they were not kept.
//!
//! The geometry is given as in [`crate::blt`], as the stride-2 [`Conv`] `g` the transposed
//! convolution is the adjoint of (`g.ci` = the transposed convolution's output channels,
//! `g.co` its input channels, `g.ho × g.wo` its input size).

use crate::conv::{Conv, Scratch};
use crate::winograd::{F4K2, Geo, Live, Place, forward_geo};

/// The output phases `(py, px)`, in the order their channel blocks are stored: for every ξ the
/// phases whose transformed kernels can be nonzero are a contiguous range ([`live`]).
const PHASES: [(usize, usize); 4] = [(0, 0), (0, 1), (1, 1), (1, 0)];

/// The index in [`PHASES`] of phase `(py, px)`: `PHASE_OF[py][px]`.
const PHASE_OF: [[usize; 2]; 2] = [[0, 1], [3, 2]];

/// Tap `k` of the 3-tap kernel that meets window position `a` (input `j + a`) on a side of
/// parity `py`.
const TAP: [[Option<usize>; 2]; 2] = [[Some(1), None], [Some(2), Some(0)]];

/// Whether [`forward`] computes the transposed convolution adjoint to `g`: 3 × 3, stride 2,
/// padding 1, input (`g.ho × g.wo`) sides multiples of 4, output twice as large.
pub fn applies(g: &Conv) -> bool {
    g.k == 3
        && g.stride == 2
        && g.pad == 1
        && g.hi == 2 * g.ho
        && g.wi == 2 * g.wo
        && g.ho.is_multiple_of(4)
        && g.wo.is_multiple_of(4)
        && g.ho >= 4
        && g.wo >= 4
}

/// Per ξ = 5α + β, the channels `c·lo..c·hi` of the phase-major blocks whose transformed 2 × 2
/// kernels can be nonzero: a phase whose row (column) parity is even has a zero second tap on
/// that side, so its transform vanishes at α (β) = 4, the point ∞.
fn live(c: usize) -> [(usize, usize); 25] {
    std::array::from_fn(|xi| {
        let (lo, hi) = match (xi / 5 == 4, xi % 5 == 4) {
            (false, false) => (0, 4),
            (true, false) => (2, 4),
            (false, true) => (1, 3),
            (true, true) => (2, 3),
        };
        (lo * c, hi * c)
    })
}

/// What [`forward`] takes: the transformed phase kernels `[4C][25][C_in]` of the transposed
/// convolution's weights `w` (`[C_in, C, 3, 3]`, PyTorch's `ConvTranspose2d` layout): the
/// 2 × 2 kernel of phase `p`, channel `c`, input channel `o` is
/// `k2[p·C + c][o][a·2 + b] = w[o][c][TAP[py][a]][TAP[px][b]]` (0 where a tap is none),
/// transformed by [`F4K2`]. Computed once per set of weights.
pub fn weights(w: &[f32], g: &Conv, u: &mut Vec<f32>) {
    let (c, o) = (g.ci, g.co);
    assert_eq!(w.len(), o * c * 9, "upsample weights of {g:?}");
    let mut k2 = vec![0.0f32; 4 * c * o * 4];
    for (p, &(py, px)) in PHASES.iter().enumerate() {
        for ch in 0..c {
            for oi in 0..o {
                let base = ((p * c + ch) * o + oi) * 4;
                for a in 0..2 {
                    for b in 0..2 {
                        if let (Some(ky), Some(kx)) = (TAP[py][a], TAP[px][b]) {
                            k2[base + a * 2 + b] = w[((oi * c + ch) * 3 + ky) * 3 + kx];
                        }
                    }
                }
            }
        }
    }
    F4K2.weights(&k2, 4 * c, o, u);
}

/// `z += ConvTranspose2d(x)` (the transposed convolution adjoint to `g`, which must satisfy
/// [`applies`]) with the weights transformed by [`weights`].
///
/// # Shapes
/// - `u`: `[4·g.ci][25][g.co]`; `x`: `[g.co][B][g.ho][g.wo]`; `z`: `[g.ci][B][g.hi][g.wi]`.
pub fn forward(g: &Conv, u: &[f32], x: &[f32], batch: usize, z: &mut [f32], scratch: &mut Scratch) {
    assert!(applies(g), "upsample::forward on {g:?}");
    let c = g.ci;
    let lv = live(c);
    let geo = Geo {
        ci: g.co,
        co: 4 * c,
        h: g.ho,
        w: g.wo,
        lead: 0,
    };
    let how = (Live::Rows(&lv), Place::Phases(PHASE_OF));
    forward_geo(&F4K2, geo, u, x, batch, z, true, how, scratch);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::winograd::tests::rel;

    /// Float64 `ConvTranspose2d(k 3, stride 2, padding 1, output_padding 1)`:
    /// `z[c][b][Y][X] = Σ w[o][c][ky][kx]·x[o][b][y][x]` over `Y = 2y − 1 + ky`, `X = 2x − 1 + kx`.
    fn reference(g: &Conv, w: &[f32], x: &[f32], batch: usize) -> Vec<f64> {
        let (c, o, h, wd) = (g.ci, g.co, g.ho, g.wo);
        let (bh, bw) = (2 * h, 2 * wd);
        let mut z = vec![0.0f64; c * batch * bh * bw];
        for oi in 0..o {
            for b in 0..batch {
                for y in 0..h {
                    for xx in 0..wd {
                        let v = x[((oi * batch + b) * h + y) * wd + xx] as f64;
                        for ch in 0..c {
                            for ky in 0..3 {
                                for kx in 0..3 {
                                    let (zy, zx) = (2 * y + ky, 2 * xx + kx);
                                    if zy < 1 || zx < 1 || zy > bh || zx > bw {
                                        continue;
                                    }
                                    z[((ch * batch + b) * bh + zy - 1) * bw + zx - 1] +=
                                        w[((oi * c + ch) * 3 + ky) * 3 + kx] as f64 * v;
                                }
                            }
                        }
                    }
                }
            }
        }
        z
    }

    fn data(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 7919 + seed * 104_729) % 1000) as f32 / 500.0 - 1.0)
            .collect()
    }

    /// Against a float64 transposed convolution and the exact path, accumulating onto a
    /// nonzero map, with odd channel counts, batch 1 and non-square maps.
    #[test]
    fn matches_a_float64_transposed_convolution() {
        for &(c, o, h, wd, batch) in &[
            (1, 1, 4, 4, 1),
            (3, 5, 4, 8, 2),
            (17, 9, 8, 8, 3),
            (64, 48, 8, 4, 2),
            (33, 70, 12, 8, 1),
        ] {
            // The adjoint convolution: c channels at 2h × 2w → o channels at h × w.
            let g = Conv::transposed(o, c, 3, 2, 1, 1, h, wd);
            assert!(applies(&g), "{g:?}");
            let x = data(o * batch * h * wd, 1);
            let w: Vec<f32> = data(o * c * 9, 2).iter().map(|v| v / (o as f32)).collect();
            let r = reference(&g, &w, &x, batch);
            let (mut u, mut s) = (Vec::new(), Scratch::default());
            weights(&w, &g, &mut u);
            let mut z = vec![0.0f32; r.len()];
            forward(&g, &u, &x, batch, &mut z, &mut s);
            let ez = rel(&z, &r);
            // The exact path on the same data, for scale.
            let mut ze = vec![0.0f32; r.len()];
            g.backward_data(&w, &x, batch, &mut ze, &mut Scratch::default());
            let ee = rel(&ze, &r);
            println!("{c}<-{o} {h}x{wd} b{batch}: winograd {ez:.2e}, exact path {ee:.2e}");
            assert!(ez < 2e-6, "{ez}");
            // Accumulating: z + 1.
            let mut z1 = vec![1.0f32; r.len()];
            forward(&g, &u, &x, batch, &mut z1, &mut s);
            assert!(z1.iter().zip(&z).all(|(a, b)| (a - 1.0 - b).abs() <= 1e-6));
        }
        assert!(!applies(&Conv::transposed(8, 8, 3, 2, 1, 1, 6, 8)));
        assert!(!applies(&Conv::transposed(8, 8, 3, 2, 1, 0, 4, 4)));
        assert!(!applies(&Conv::new(8, 8, 3, 1, 1, 8, 8)));
    }
}
