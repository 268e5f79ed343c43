//! The top-down convolutions of the BLT networks — `ConvTranspose2d(k = 3, stride = 2,
//! padding = 1, output_padding = 1)` from an `h × w` map to `2h × 2w` — by Winograd
//! F(4 × 4, 2 × 2) on their four output phases: forward, input gradient and weight gradient.
//!
//! Output pixel `(2j + py, 2i + px)` sees only the input pixels `j, j + 1` (rows) and `i, i + 1`
//! (columns), through one tap per side where its phase is even (`w[1]`) and two where it is
//! odd (`w[2]` on `j`, `w[0]` on `j + 1`): each phase is a 2 × 2 stride-1 correlation of the
//! input padded by one zero after each side, with a kernel whose even sides are zero. All four
//! share one input transform (`Bᵀ d B` of 5 × 5 tiles); phase `p`'s transformed kernel is zero
//! on the rows/columns of ∞ where its side is even, so the products skip them ([`Live`]): 81
//! multiply-adds per 16 input pixels and channel pair instead of the direct path's 144.
//!
//! The input gradient is the adjoint: `dx[j] = w[1]·dz[2j] + w[2]·dz[2j + 1] + w[0]·dz[2j − 1]`,
//! the sum over phases of 2 × 2 correlations of `dz`'s phase planes padded by one zero before
//! each side (zero where point 0 meets an even side). The weight gradient is the forward's,
//! phase by phase, mapped back onto the 3 × 3 taps.
//!
//! The geometry is given as in [`crate::blt`], as the stride-2 [`Conv`] `g` the transposed
//! convolution is the adjoint of (`g.ci` = the transposed convolution's output channels,
//! `g.co` its input channels, `g.ho × g.wo` its input size).

use rayon::prelude::*;

use crate::conv::{Conv, Scratch, ensure};
use crate::profile::{Op, scope};
use crate::winograd::{F4K2, Geo, Live, backward_weight_geo, forward_geo};

/// The output phases `(py, px)`, in the order their channel blocks are stored: for every ξ the
/// phases whose transformed kernels can be nonzero are a contiguous range ([`live`]).
const PHASES: [(usize, usize); 4] = [(0, 0), (0, 1), (1, 1), (1, 0)];

/// Tap `k` of the 3-tap kernel that meets window position `a` (0, 1) on a side of parity
/// `py`: forward windows `(j, j + 1)`, input-gradient windows `(j − 1, j)`.
const TAP_FORWARD: [[Option<usize>; 2]; 2] = [[Some(1), None], [Some(2), Some(0)]];
const TAP_BACKWARD: [[Option<usize>; 2]; 2] = [[None, Some(1)], [Some(0), Some(2)]];

/// Whether the phase decomposition computes the transposed convolution adjoint to `g`:
/// 3 × 3, stride 2, padding 1, input (`g.ho × g.wo`) sides multiples of 4, output twice as
/// large.
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
/// kernels can be nonzero: a phase whose row (column) parity is even has a zero tap, so its
/// transform vanishes at α (β) = `dead` (the point ∞ for forward windows, 0 for input-gradient
/// windows).
fn live(c: usize, dead: usize) -> [(usize, usize); 25] {
    std::array::from_fn(|xi| {
        let (lo, hi) = match (xi / 5 == dead, xi % 5 == dead) {
            (false, false) => (0, 4),
            (true, false) => (2, 4),
            (false, true) => (1, 3),
            (true, true) => (2, 3),
        };
        (lo * c, hi * c)
    })
}

/// The 2 × 2 kernels of the phases, `k2[row][col][a·2 + b]`, with `(row, col)` =
/// `(p·C + c, o)` (`forward`: `[4C][C_in]`) or `(o, p·C + c)` (input gradient: `[C_in][4C]`).
fn phase_kernels(w: &[f32], g: &Conv, taps: &[[Option<usize>; 2]; 2], forward: bool) -> Vec<f32> {
    let (c, o) = (g.ci, g.co);
    let mut k2 = vec![0.0f32; 4 * c * o * 4];
    for (p, &(py, px)) in PHASES.iter().enumerate() {
        for ch in 0..c {
            for oi in 0..o {
                let base = if forward {
                    ((p * c + ch) * o + oi) * 4
                } else {
                    (oi * 4 * c + p * c + ch) * 4
                };
                for a in 0..2 {
                    for b in 0..2 {
                        if let (Some(ky), Some(kx)) = (taps[py][a], taps[px][b]) {
                            k2[base + a * 2 + b] = w[((oi * c + ch) * 3 + ky) * 3 + kx];
                        }
                    }
                }
            }
        }
    }
    k2
}

/// What [`forward`] takes: the transformed phase kernels `[4C][25][C_in]` of the transposed
/// convolution's weights `w` (`[C_in, C, 3, 3]`, PyTorch's `ConvTranspose2d` layout), computed
/// once per set of weights.
pub fn weights(w: &[f32], g: &Conv, u: &mut Vec<f32>) {
    assert_eq!(w.len(), g.co * g.ci * 9, "upsample weights of {g:?}");
    let k2 = phase_kernels(w, g, &TAP_FORWARD, true);
    F4K2.weights(&k2, 4 * g.ci, g.co, u);
}

/// What [`backward_data`] takes: the transformed input-gradient phase kernels `[C_in][25][4C]`.
pub fn input_gradient_weights(w: &[f32], g: &Conv, ut: &mut Vec<f32>) {
    assert_eq!(w.len(), g.co * g.ci * 9, "upsample weights of {g:?}");
    let k2 = phase_kernels(w, g, &TAP_BACKWARD, false);
    F4K2.weights(&k2, g.co, 4 * g.ci, ut);
}

/// The geometry of the phases' correlations: `ci → co` on the input's `h × w`.
fn geo(g: &Conv, ci: usize, co: usize, lead: usize) -> Geo {
    Geo {
        ci,
        co,
        h: g.ho,
        w: g.wo,
        lead,
    }
}

/// `z += ConvTranspose2d(x)` (the transposed convolution adjoint to `g`, which must satisfy
/// [`applies`]) with the weights transformed by [`weights`].
///
/// # Shapes
/// - `u`: `[4·g.ci][25][g.co]`; `x`: `[g.co][B][g.ho][g.wo]`; `z`: `[g.ci][B][g.hi][g.wi]`.
pub fn forward(g: &Conv, u: &[f32], x: &[f32], batch: usize, z: &mut [f32], scratch: &mut Scratch) {
    assert!(applies(g), "upsample::forward on {g:?}");
    let c = g.ci;
    scratch.grow(3);
    let mut ph = std::mem::take(&mut scratch.parts[1]);
    let hw = g.ho * g.wo;
    ensure(&mut ph, 4 * c * batch * hw);
    let lv = live(c, 4);
    let gp = geo(g, g.co, 4 * c, 0);
    forward_geo(
        &F4K2,
        gp,
        u,
        x,
        batch,
        &mut ph,
        false,
        Live::Rows(&lv),
        scratch,
    );
    interleave_phases(g, &ph, batch, z);
    scratch.parts[1] = ph;
}

/// `dx += ∂L/∂x` of [`forward`]: the phases of `dz` correlated with the input-gradient kernels
/// ([`input_gradient_weights`]) and summed.
///
/// # Shapes
/// - `ut`: `[g.co][25][4·g.ci]`; `dz`: `[g.ci][B][g.hi][g.wi]`; `dx`: `[g.co][B][g.ho][g.wo]`.
pub fn backward_data(
    g: &Conv,
    ut: &[f32],
    dz: &[f32],
    batch: usize,
    dx: &mut [f32],
    scratch: &mut Scratch,
) {
    assert!(applies(g), "upsample::backward_data on {g:?}");
    let c = g.ci;
    scratch.grow(3);
    let mut ph = std::mem::take(&mut scratch.parts[1]);
    split_phases(g, dz, batch, &mut ph);
    let lv = live(c, 0);
    let gp = geo(g, 4 * c, g.co, 1);
    forward_geo(
        &F4K2,
        gp,
        ut,
        &ph,
        batch,
        dx,
        true,
        Live::Inner(&lv),
        scratch,
    );
    scratch.parts[1] = ph;
}

/// `dw += ∂L/∂w` of [`forward`] from its input `x` and output gradient `dz`: the phases'
/// 2 × 2 weight gradients by Winograd, each added onto the 3 × 3 tap it stands for.
///
/// # Shapes
/// - `x`: `[g.co][B][g.ho][g.wo]`; `dz`: `[g.ci][B][g.hi][g.wi]`; `dw`: `[g.co, g.ci, 3, 3]`.
pub fn backward_weight(
    g: &Conv,
    x: &[f32],
    dz: &[f32],
    batch: usize,
    dw: &mut [f32],
    scratch: &mut Scratch,
) {
    assert!(applies(g), "upsample::backward_weight on {g:?}");
    let (c, o) = (g.ci, g.co);
    assert!(dw.len() >= o * c * 9);
    scratch.grow(3);
    let mut ph = std::mem::take(&mut scratch.parts[1]);
    let mut k2 = std::mem::take(&mut scratch.parts[2]);
    split_phases(g, dz, batch, &mut ph);
    ensure(&mut k2, 4 * c * o * 4);
    k2[..4 * c * o * 4].fill(0.0);
    let lv = live(c, 4);
    let gp = geo(g, o, 4 * c, 0);
    backward_weight_geo(&F4K2, gp, x, &ph, batch, &mut k2, &lv, scratch);
    let _p = scope(Op::Winograd);
    for (p, &(py, px)) in PHASES.iter().enumerate() {
        for ch in 0..c {
            for oi in 0..o {
                let src = &k2[((p * c + ch) * o + oi) * 4..][..4];
                for a in 0..2 {
                    for b in 0..2 {
                        if let (Some(ky), Some(kx)) = (TAP_FORWARD[py][a], TAP_FORWARD[px][b]) {
                            dw[((oi * c + ch) * 3 + ky) * 3 + kx] += src[a * 2 + b];
                        }
                    }
                }
            }
        }
    }
    scratch.parts[1] = ph;
    scratch.parts[2] = k2;
}

/// `z[c][b][2j + py][2i + px] += ph[p·C + c][b][j][i]` for the phases `p` = [`PHASES`].
fn interleave_phases(g: &Conv, ph: &[f32], batch: usize, z: &mut [f32]) {
    let _p = scope(Op::Winograd);
    let (c, h, w) = (g.ci, g.ho, g.wo);
    let (hw, big) = (h * w, 4 * h * w);
    let plane = batch * hw;
    z[..c * batch * big]
        .par_chunks_mut(batch * big)
        .with_min_len(crate::min_items(batch * big))
        .enumerate()
        .for_each(|(ch, zc)| {
            let src =
                |p: usize, b: usize, j: usize| &ph[(p * c + ch) * plane + b * hw + j * w..][..w];
            for b in 0..batch {
                for j in 0..h {
                    let even = &mut zc[b * big + 2 * j * 2 * w..][..2 * w];
                    crate::kernel::interleave::<2>(even, [src(0, b, j), src(1, b, j)], w, true);
                    let odd = &mut zc[b * big + (2 * j + 1) * 2 * w..][..2 * w];
                    crate::kernel::interleave::<2>(odd, [src(3, b, j), src(2, b, j)], w, true);
                }
            }
        });
}

/// `ph[p·C + c][b][j][i] = dz[c][b][2j + py][2i + px]` for the phases `p` = [`PHASES`]
/// (`ph` resized here).
fn split_phases(g: &Conv, dz: &[f32], batch: usize, ph: &mut Vec<f32>) {
    let _p = scope(Op::Winograd);
    let (c, h, w) = (g.ci, g.ho, g.wo);
    let (hw, big) = (h * w, 4 * h * w);
    let plane = batch * hw;
    ensure(ph, 4 * c * plane);
    assert!(dz.len() >= c * batch * big);
    // One task per (phase, channel) plane.
    ph[..4 * c * plane]
        .par_chunks_mut(plane)
        .with_min_len(crate::min_items(plane))
        .enumerate()
        .for_each(|(pc, out)| {
            let (p, ch) = (pc / c, pc % c);
            let (py, px) = PHASES[p];
            for b in 0..batch {
                let img = &dz[(ch * batch + b) * big..][..big];
                for j in 0..h {
                    let row = &img[(2 * j + py) * 2 * w..][..2 * w];
                    let dst = &mut out[b * hw + j * w..][..w];
                    for (i, d) in dst.iter_mut().enumerate() {
                        *d = row[2 * i + px];
                    }
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn rel(a: &[f32], r: &[f64]) -> f64 {
        let num: f64 = a.iter().zip(r).map(|(a, r)| (*a as f64 - r).powi(2)).sum();
        let den: f64 = r.iter().map(|r| r * r).sum();
        (num / den.max(1e-300)).sqrt()
    }

    fn data(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 7919 + seed * 104_729) % 1000) as f32 / 500.0 - 1.0)
            .collect()
    }

    /// Forward, input gradient and weight gradient against a float64 transposed convolution
    /// and its adjoints (`Σ z·dz` is bilinear: `dx = ∂/∂x`, `dw = ∂/∂w` by finite structure),
    /// accumulating onto nonzero buffers, with odd channel counts, batch 1 and non-square maps.
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
            let dz = data(c * batch * 4 * h * wd, 3);
            let r = reference(&g, &w, &x, batch);
            let (mut u, mut ut, mut s) = (Vec::new(), Vec::new(), Scratch::default());
            weights(&w, &g, &mut u);
            input_gradient_weights(&w, &g, &mut ut);
            let mut z = vec![1.0f32; r.len()];
            forward(&g, &u, &x, batch, &mut z, &mut s);
            let shifted: Vec<f64> = r.iter().map(|v| v + 1.0).collect();
            let ez = rel(&z, &shifted);
            // dx[o][b][y][x] = Σ over the taps the forward used, of w·dz.
            let mut rx = vec![0.5f64; x.len()];
            let mut rw = vec![0.25f64; w.len()];
            let (bh, bw) = (2 * h, 2 * wd);
            for oi in 0..o {
                for b in 0..batch {
                    for y in 0..h {
                        for xx in 0..wd {
                            let xi = ((oi * batch + b) * h + y) * wd + xx;
                            for ch in 0..c {
                                for ky in 0..3 {
                                    for kx in 0..3 {
                                        let (zy, zx) = (2 * y + ky, 2 * xx + kx);
                                        if zy < 1 || zx < 1 || zy > bh || zx > bw {
                                            continue;
                                        }
                                        let d = dz[((ch * batch + b) * bh + zy - 1) * bw + zx - 1]
                                            as f64;
                                        let wi = ((oi * c + ch) * 3 + ky) * 3 + kx;
                                        rx[xi] += w[wi] as f64 * d;
                                        rw[wi] += x[xi] as f64 * d;
                                    }
                                }
                            }
                        }
                    }
                }
            }
            let mut dx = vec![0.5f32; x.len()];
            backward_data(&g, &ut, &dz, batch, &mut dx, &mut s);
            let ex = rel(&dx, &rx);
            let mut dw = vec![0.25f32; w.len()];
            backward_weight(&g, &x, &dz, batch, &mut dw, &mut s);
            let ew = rel(&dw, &rw);
            // The exact path on the same data, for scale.
            let mut ze = vec![1.0f32; r.len()];
            g.backward_data(&w, &x, batch, &mut ze, &mut Scratch::default());
            println!(
                "{c}<-{o} {h}x{wd} b{batch}: z {ez:.2e} (exact path {:.2e}), dx {ex:.2e}, dw {ew:.2e}",
                rel(&ze, &shifted)
            );
            assert!(ez < 1e-5 && ex < 1e-5 && ew < 1e-5, "{ez} {ex} {ew}");
        }
        assert!(!applies(&Conv::transposed(8, 8, 3, 2, 1, 1, 6, 8)));
        assert!(!applies(&Conv::transposed(8, 8, 3, 2, 1, 0, 4, 4)));
        assert!(!applies(&Conv::new(8, 8, 3, 1, 1, 8, 8)));
    }
}
