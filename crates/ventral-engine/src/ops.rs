//! Fused elementwise and reduction kernels on the `[C][B][H·W]` layout: LayerNorm over
//! (C, H, W) + ReLU forward and backward, 2×2 max-pool with indices, global average pooling,
//! LayerNorm over D + ReLU on `[B, D]`, and the clamped log-softmax of the BLT readout.
//!
//! Per-sample statistics are summed in f64 (in a fixed order), so results do not depend on the
//! thread count and long sums keep float32 accuracy.

use rayon::prelude::*;

/// LayerNorm affine and statistics for the forward pass: (γ, β, per-sample mean, per-sample 1/σ).
pub type LnForward<'a> = (&'a [f32], &'a [f32], &'a [f32], &'a [f32]);
/// For the backward pass: (γ, β, mean, 1/σ, dγ accumulator, dβ accumulator).
pub type LnBackward<'a> = (
    &'a [f32],
    &'a [f32],
    &'a [f32],
    &'a [f32],
    &'a mut [f32],
    &'a mut [f32],
);

/// Elements per parallel task of the elementwise passes.
pub(crate) const EW_CHUNK: usize = 1 << 14;

/// `out[i] = f(out[i], a[i], b[i])` in parallel chunks, vectorised (AVX-512 or AVX2 where
/// available: [`crate::simd::run_wide`], the same bits).
pub fn map3(out: &mut [f32], a: &[f32], b: &[f32], f: impl Fn(f32, f32, f32) -> f32 + Sync) {
    out.par_chunks_mut(EW_CHUNK)
        .zip(a.par_chunks(EW_CHUNK).zip(b.par_chunks(EW_CHUNK)))
        .for_each(|(o, (a, b))| {
            crate::simd::run_wide(
                #[inline(always)]
                || {
                    for ((o, &a), &b) in o.iter_mut().zip(a).zip(b) {
                        *o = f(*o, a, b);
                    }
                },
            )
        });
}

/// `out[i] = f(out[i])` in parallel chunks, vectorised (as [`map3`]).
pub fn map1(out: &mut [f32], f: impl Fn(f32) -> f32 + Sync) {
    out.par_chunks_mut(EW_CHUNK).for_each(|o| {
        crate::simd::run_wide(
            #[inline(always)]
            || o.iter_mut().for_each(|o| *o = f(*o)),
        )
    });
}

/// `out[i] = f(out[i], a[i])` in parallel chunks, vectorised (as [`map3`]).
pub fn map2(out: &mut [f32], a: &[f32], f: impl Fn(f32, f32) -> f32 + Sync) {
    out.par_chunks_mut(EW_CHUNK)
        .zip(a.par_chunks(EW_CHUNK))
        .for_each(|(o, a)| {
            crate::simd::run_wide(
                #[inline(always)]
                || {
                    for (o, &a) in o.iter_mut().zip(a) {
                        *o = f(*o, a);
                    }
                },
            )
        });
}

/// ReLU that propagates NaN (as PyTorch's and burn's), so a diverged network is seen as one.
#[inline]
pub fn relu(v: f32) -> f32 {
    if v < 0.0 { 0.0 } else { v }
}

/// LayerNorm's affine output before its ReLU, `γ·x̂ + β` (a product and a sum, not fused):
/// the forward's and the backward's mask (`> 0`) both compute it here, so that the backward
/// takes the forward's ReLU decision bit for bit without reading the output.
#[inline(always)]
pub(crate) fn ln_affine(g: f32, xh: f32, be: f32) -> f32 {
    g * xh + be
}

/// Per-sample mean and 1/σ of `z` (`[C][B][HW]`) over (C, H, W), biased variance: the two
/// passes by themselves, the definition [`combine_ln_stats`] (which the engine runs) is held
/// to in the tests.
#[cfg(test)]
pub fn ln_stats(
    z: &[f32],
    c: usize,
    batch: usize,
    hw: usize,
    eps: f64,
    mean: &mut [f32],
    rstd: &mut [f32],
) {
    let _p = crate::profile::scope(crate::profile::Op::Norm);
    let sums: Vec<f64> = (0..batch)
        .into_par_iter()
        .map(|b| {
            crate::simd::run_wide(
                #[inline(always)]
                || {
                    (0..c)
                        .map(|ch| sum_f64(&z[(ch * batch + b) * hw..][..hw], |v| v as f64))
                        .sum::<f64>()
                },
            )
        })
        .collect();
    ln_variance(z, (c, batch, hw), eps, &sums, mean, rstd);
}

/// LayerNorm's per-sample mean and 1/σ given each sample's sum of `z` (its rows'
/// [`sum_f64`] added in channel order): the mean, then the variance about it in a second
/// pass.
fn ln_variance(
    z: &[f32],
    (c, batch, hw): (usize, usize, usize),
    eps: f64,
    sums: &[f64],
    mean: &mut [f32],
    rstd: &mut [f32],
) {
    let _p = crate::profile::scope(crate::profile::Op::Norm);
    let n = (c * hw) as f64;
    let st: Vec<(f32, f32)> = (0..batch)
        .into_par_iter()
        .map(|b| {
            crate::simd::run_wide(
                #[inline(always)]
                || {
                    let m = sums[b] / n;
                    let q = (0..c)
                        .map(|ch| {
                            let r = &z[(ch * batch + b) * hw..][..hw];
                            sum_f64(r, |v| (v as f64 - m) * (v as f64 - m))
                        })
                        .sum::<f64>();
                    (m as f32, (1.0 / (q / n + eps).sqrt()) as f32)
                },
            )
        })
        .collect();
    for (b, (m, r)) in st.into_iter().enumerate() {
        mean[b] = m;
        rstd[b] = r;
    }
}

/// BLT's combine `z = b` (no `e`), `b + e` or `b ⊙ (1 + e)` (`multiplicative`) on
/// `[C][B][HW]` maps and, with `stats` = (ε, mean, 1/σ), LayerNorm's per-sample mean and 1/σ
/// of the result over (C, H, W) (biased variance, two passes) — each
/// row's sum taken as it is written, so z is read once for the variance instead of twice
/// (the same sums in the same order: the same bits as the combine followed by `ln_stats`).
pub fn combine_ln_stats(
    z: &mut [f32],
    b: &[f32],
    e: Option<&[f32]>,
    multiplicative: bool,
    (c, batch, hw): (usize, usize, usize),
    stats: Option<(f64, &mut [f32], &mut [f32])>,
) {
    let row = batch * hw;
    let want = stats.is_some();
    let sums: Vec<Vec<f64>> = {
        let _p = crate::profile::scope(crate::profile::Op::Elementwise);
        z.par_chunks_mut(row)
            .zip(b.par_chunks(row))
            .enumerate()
            .map(|(ch, (zc, bc))| {
                let ec = e.map(|e| &e[ch * row..][..row]);
                crate::simd::run_wide(
                    #[inline(always)]
                    || {
                        (0..batch)
                            .map(|i| {
                                let (zr, br) = (&mut zc[i * hw..][..hw], &bc[i * hw..][..hw]);
                                match ec.map(|ec| &ec[i * hw..][..hw]) {
                                    None => zr.copy_from_slice(br),
                                    Some(er) if multiplicative => {
                                        for ((z, &b), &e) in zr.iter_mut().zip(br).zip(er) {
                                            *z = b * (e + 1.0);
                                        }
                                    }
                                    Some(er) => {
                                        for ((z, &b), &e) in zr.iter_mut().zip(br).zip(er) {
                                            *z = b + e;
                                        }
                                    }
                                }
                                if want { sum_f64(zr, |v| v as f64) } else { 0.0 }
                            })
                            .collect()
                    },
                )
            })
            .collect()
    };
    if let Some((eps, mean, rstd)) = stats {
        let per_sample: Vec<f64> = (0..batch)
            .map(|i| sums.iter().map(|s| s[i]).sum::<f64>())
            .collect();
        ln_variance(z, (c, batch, hw), eps, &per_sample, mean, rstd);
    }
}

/// The eight lanes of a partial sum added in one fixed order (pairs four apart first).
#[inline(always)]
fn fold8(a: [f64; 8]) -> f64 {
    ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]))
}

/// `Σ f(v)` over `r` in f64, eight partial sums (vectorisable), added in a fixed order.
#[inline(always)]
fn sum_f64(r: &[f32], f: impl Fn(f32) -> f64) -> f64 {
    let mut acc = [0.0f64; 8];
    let chunks = r.chunks_exact(8);
    let tail = chunks.remainder();
    for ch in chunks {
        for (a, &v) in acc.iter_mut().zip(ch) {
            *a += f(v);
        }
    }
    let mut s = fold8(acc);
    for &v in tail {
        s += f(v);
    }
    s
}

/// `a = ReLU(γ ⊙ (z − μ_b)·r_b + β)` with γ, β of shape `[C, HW]`; `gamma = None`: `a = ReLU(z)`.
pub fn ln_relu_forward(
    z: &[f32],
    a: &mut [f32],
    batch: usize,
    hw: usize,
    norm: Option<LnForward<'_>>,
) {
    let _p = crate::profile::scope(crate::profile::Op::Norm);
    let row = batch * hw;
    a.par_chunks_mut(row)
        .zip(z.par_chunks(row))
        .enumerate()
        .for_each(|(ch, (ar, zr))| {
            crate::simd::run_wide(
                #[inline(always)]
                || match norm {
                    None => ar.iter_mut().zip(zr).for_each(|(o, &v)| *o = relu(v)),
                    Some((g, be, mean, rstd)) => {
                        let (g, be) = (&g[ch * hw..(ch + 1) * hw], &be[ch * hw..(ch + 1) * hw]);
                        for b in 0..batch {
                            let (m, r) = (mean[b], rstd[b]);
                            let o = &mut ar[b * hw..(b + 1) * hw];
                            let zi = &zr[b * hw..(b + 1) * hw];
                            for (((o, &z), &g), &be) in o.iter_mut().zip(zi).zip(g).zip(be) {
                                *o = relu(ln_affine(g, (z - m) * r, be));
                            }
                        }
                    }
                },
            )
        });
}

/// Backward of [`ln_relu_forward`]: from `da` (gradient of `a`) write `dz`, and add into
/// `dgamma`, `dbeta` (`[C, HW]`).
pub fn ln_relu_backward(
    z: &[f32],
    a: &[f32],
    da: &[f32],
    dz: &mut [f32],
    c: usize,
    batch: usize,
    hw: usize,
    norm: Option<LnBackward<'_>>,
) {
    let _p = crate::profile::scope(crate::profile::Op::Norm);
    let row = batch * hw;
    let Some((g, be, mean, rstd, dgamma, dbeta)) = norm else {
        dz.par_chunks_mut(row)
            .zip(da.par_chunks(row).zip(a.par_chunks(row)))
            .for_each(|(d, (g, a))| {
                for i in 0..d.len() {
                    d[i] = if a[i] > 0.0 { g[i] } else { 0.0 };
                }
            });
        return;
    };
    // Per sample: mean of dx̂ and of dx̂·x̂ over (C, H, W), dx̂ = γ·dy, dy = da·[a > 0]. The
    // ReLU's mask comes from z: `a > 0` exactly where the forward's `γ·x̂ + β > 0` (the same
    // float32 operations; NaN and −0 give no gradient either way), so `a` is not read.
    let n = (c * hw) as f64;
    let m12: Vec<(f32, f32)> = (0..batch)
        .into_par_iter()
        .map(|b| {
            crate::simd::run_wide(
                #[inline(always)]
                || {
                    let (m, r) = (mean[b], rstd[b]);
                    let (mut s1, mut s2) = (0.0f64, 0.0f64);
                    let (mut a1, mut a2) = ([0.0f64; 8], [0.0f64; 8]);
                    for ch in 0..c {
                        let o = (ch * batch + b) * hw;
                        let (gg, bb) = (&g[ch * hw..(ch + 1) * hw], &be[ch * hw..(ch + 1) * hw]);
                        let (dr, zr) = (&da[o..o + hw], &z[o..o + hw]);
                        let full = hw - hw % 8;
                        // Whole 8-float groups into eight partial sums (explicit vectors
                        // where the CPU has them), the rest one by one.
                        crate::kernel::ln_back_sums(
                            (dr, zr, gg, bb),
                            full,
                            (m, r),
                            (&mut a1, &mut a2),
                        );
                        for i in full..hw {
                            let xh = (zr[i] - m) * r;
                            if ln_affine(gg[i], xh, bb[i]) > 0.0 {
                                let dxh = (dr[i] * gg[i]) as f64;
                                s1 += dxh;
                                s2 += dxh * xh as f64;
                            }
                        }
                    }

                    s1 += fold8(a1);
                    s2 += fold8(a2);
                    ((s1 / n) as f32, (s2 / n) as f32)
                },
            )
        })
        .collect();
    dz.par_chunks_mut(row)
        .zip(dgamma.par_chunks_mut(hw).zip(dbeta.par_chunks_mut(hw)))
        .enumerate()
        .for_each(|(ch, (d, (dg, db)))| {
            crate::simd::run_wide(
                #[inline(always)]
                || {
                    let (gg, bb) = (&g[ch * hw..(ch + 1) * hw], &be[ch * hw..(ch + 1) * hw]);
                    for b in 0..batch {
                        let (m, r) = (mean[b], rstd[b]);
                        let (m1, m2) = m12[b];
                        let o = (ch * batch + b) * hw;
                        let (dr, zr) = (&da[o..o + hw], &z[o..o + hw]);
                        let dd = &mut d[b * hw..(b + 1) * hw];
                        // Zipped slices: no bounds checks, no branch (the loop vectorises).
                        let outs = dg.iter_mut().zip(db.iter_mut()).zip(dd.iter_mut());
                        let ins = dr.iter().zip(zr).zip(gg).zip(bb);
                        for (((dg, db), dd), (((&da, &z), &g), &be)) in outs.zip(ins) {
                            let xh = (z - m) * r;
                            let dy = if ln_affine(g, xh, be) > 0.0 { da } else { 0.0 };
                            *dg += dy * xh;
                            *db += dy;
                            *dd = r * (dy * g - m1 - xh * m2);
                        }
                    }
                },
            )
        });
}

/// 2×2 max-pool, stride 2, on `[C][B][H][W]` planes; `idx` gets the argmax (0..4, row-major,
/// first maximum wins as PyTorch; NaN propagates).
pub fn maxpool_forward(x: &[f32], h: usize, w: usize, y: &mut [f32], idx: &mut [u8]) {
    let _p = crate::profile::scope(crate::profile::Op::Pool);
    let (oh, ow) = (h / 2, w / 2);
    // `v` beats the current best: larger, or NaN over a number.
    #[inline(always)]
    fn beats(v: f32, best: f32) -> bool {
        v > best || (v.is_nan() && !best.is_nan())
    }
    y.par_chunks_mut(oh * ow)
        .zip(idx.par_chunks_mut(oh * ow))
        .zip(x.par_chunks(h * w))
        .with_min_len(crate::min_items(h * w))
        .for_each(|((yp, ip), xp)| {
            crate::simd::run_wide(
                #[inline(always)]
                || {
                    for i in 0..oh {
                        let (r0, r1) = (
                            &xp[2 * i * w..2 * i * w + w],
                            &xp[(2 * i + 1) * w..(2 * i + 2) * w],
                        );
                        let (yr, ir) =
                            (&mut yp[i * ow..(i + 1) * ow], &mut ip[i * ow..(i + 1) * ow]);
                        // Column pairs as arrays and selects, not branches: the loop
                        // vectorises (the same comparisons in the same order).
                        let (p0, _) = r0.as_chunks::<2>();
                        let (p1, _) = r1.as_chunks::<2>();
                        for (((yo, io), a), b) in yr.iter_mut().zip(ir.iter_mut()).zip(p0).zip(p1) {
                            let (mut best, mut q) = (a[0], 0u8);
                            for (v, k) in [(a[1], 1u8), (b[0], 2), (b[1], 3)] {
                                let t = beats(v, best);
                                best = if t { v } else { best };
                                q = if t { k } else { q };
                            }
                            *yo = best;
                            *io = q;
                        }
                    }
                },
            )
        });
}

/// Backward of [`maxpool_forward`]: `dx[argmax] += dy`.
pub fn maxpool_backward(dy: &[f32], idx: &[u8], h: usize, w: usize, dx: &mut [f32]) {
    let _p = crate::profile::scope(crate::profile::Op::Pool);
    let (oh, ow) = (h / 2, w / 2);
    dx.par_chunks_mut(h * w)
        .zip(dy.par_chunks(oh * ow).zip(idx.par_chunks(oh * ow)))
        .with_min_len(crate::min_items(h * w))
        .for_each(|(dp, (gp, ip))| {
            crate::simd::run_wide(
                #[inline(always)]
                || {
                    for i in 0..oh {
                        let (r0, r1) = dp[2 * i * w..(2 * i + 2) * w].split_at_mut(w);
                        let (gr, ir) = (&gp[i * ow..(i + 1) * ow], &ip[i * ow..(i + 1) * ow]);
                        for (((a, b), &g), &q) in r0
                            .chunks_exact_mut(2)
                            .zip(r1.chunks_exact_mut(2))
                            .zip(gr)
                            .zip(ir)
                        {
                            a[0] += if q == 0 { g } else { 0.0 };
                            a[1] += if q == 1 { g } else { 0.0 };
                            b[0] += if q == 2 { g } else { 0.0 };
                            b[1] += if q == 3 { g } else { 0.0 };
                        }
                    }
                },
            )
        });
}

/// Global average pool: `[D][B][HW]` → `[B, D]`.
pub fn gap_forward(x: &[f32], d: usize, batch: usize, hw: usize, out: &mut [f32]) {
    let _p = crate::profile::scope(crate::profile::Op::Readout);
    for ch in 0..d {
        for b in 0..batch {
            let r = &x[(ch * batch + b) * hw..(ch * batch + b + 1) * hw];
            out[b * d + ch] = (r.iter().map(|&v| v as f64).sum::<f64>() / hw as f64) as f32;
        }
    }
}

/// Backward of [`gap_forward`]: `dx[ch, b, ·] += dout[b, ch] / HW`.
pub fn gap_backward(dout: &[f32], d: usize, batch: usize, hw: usize, dx: &mut [f32]) {
    let _p = crate::profile::scope(crate::profile::Op::Readout);
    dx.par_chunks_mut(batch * hw)
        .enumerate()
        .take(d)
        .for_each(|(ch, r)| {
            for b in 0..batch {
                let v = dout[b * d + ch] / hw as f32;
                r[b * hw..(b + 1) * hw].iter_mut().for_each(|x| *x += v);
            }
        });
}

/// LayerNorm over D + ReLU on `[B, D]` rows; returns per-row (mean, rstd).
pub fn ln1d_relu_forward(
    z: &[f32],
    d: usize,
    g: &[f32],
    be: &[f32],
    eps: f64,
    a: &mut [f32],
) -> Vec<(f32, f32)> {
    let _p = crate::profile::scope(crate::profile::Op::Readout);
    z.chunks(d)
        .zip(a.chunks_mut(d))
        .map(|(zr, ar)| {
            let m = zr.iter().map(|&v| v as f64).sum::<f64>() / d as f64;
            let q = zr.iter().map(|&v| (v as f64 - m).powi(2)).sum::<f64>() / d as f64;
            let (m, r) = (m as f32, (1.0 / (q + eps).sqrt()) as f32);
            for i in 0..d {
                ar[i] = relu(g[i] * ((zr[i] - m) * r) + be[i]);
            }
            (m, r)
        })
        .collect()
}

/// Backward of [`ln1d_relu_forward`].
pub fn ln1d_relu_backward(
    z: &[f32],
    a: &[f32],
    da: &[f32],
    d: usize,
    g: &[f32],
    stats: &[(f32, f32)],
    dz: &mut [f32],
    dg: &mut [f32],
    db: &mut [f32],
) {
    let _p = crate::profile::scope(crate::profile::Op::Readout);
    for (row, &(m, r)) in stats.iter().enumerate() {
        let o = row * d;
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        for i in 0..d {
            if a[o + i] > 0.0 {
                let dxh = (da[o + i] * g[i]) as f64;
                s1 += dxh;
                s2 += dxh * ((z[o + i] - m) * r) as f64;
            }
        }
        let (m1, m2) = ((s1 / d as f64) as f32, (s2 / d as f64) as f32);
        for i in 0..d {
            let xh = (z[o + i] - m) * r;
            let dy = if a[o + i] > 0.0 { da[o + i] } else { 0.0 };
            dg[i] += dy * xh;
            db[i] += dy;
            dz[o + i] = r * (dy * g[i] - m1 - xh * m2);
        }
    }
}

/// `log(clamp(softmax(logits), 1e-10, 1))` per row of `[B, K]`; returns (log-probs, probs).
pub fn clamped_log_softmax(logits: &[f32], k: usize) -> (Vec<f32>, Vec<f32>) {
    let _p = crate::profile::scope(crate::profile::Op::Readout);
    let mut lp = vec![0.0f32; logits.len()];
    let mut p = vec![0.0f32; logits.len()];
    for ((l, o), q) in logits.chunks(k).zip(lp.chunks_mut(k)).zip(p.chunks_mut(k)) {
        let mx = l.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let s: f32 = l.iter().map(|&v| (v - mx).exp()).sum();
        for i in 0..k {
            q[i] = (l[i] - mx).exp() / s;
            o[i] = q[i].clamp(1e-10, 1.0).ln();
        }
    }
    (lp, p)
}

/// Backward of [`clamped_log_softmax`]: `dlogits` from `dlp` and the probabilities.
pub fn clamped_log_softmax_backward(dlp: &[f32], p: &[f32], k: usize, dlogits: &mut [f32]) {
    let _p = crate::profile::scope(crate::profile::Op::Readout);
    for ((g, q), o) in dlp.chunks(k).zip(p.chunks(k)).zip(dlogits.chunks_mut(k)) {
        // d/dp of log(clamp(p)): 1/p where 1e-10 ≤ p ≤ 1, else 0.
        let dp: Vec<f32> = (0..k)
            .map(|i| {
                if q[i] >= 1e-10 && q[i] <= 1.0 {
                    g[i] / q[i]
                } else {
                    0.0
                }
            })
            .collect();
        let dot: f32 = (0..k).map(|i| dp[i] * q[i]).sum();
        for i in 0..k {
            o[i] = q[i] * (dp[i] - dot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maxpool_picks_first_max_and_routes_gradient() {
        let x = [1.0, 3.0, 3.0, 0.0, /* row 2 */ 2.0, 3.0, 1.0, 5.0];
        let (mut y, mut idx) = ([0.0; 2], [0u8; 2]);
        maxpool_forward(&x, 2, 4, &mut y, &mut idx);
        assert_eq!(y, [3.0, 5.0]);
        assert_eq!(idx, [1, 3]);
        let mut dx = [0.0; 8];
        maxpool_backward(&[1.0, 2.0], &idx, 2, 4, &mut dx);
        assert_eq!(dx, [0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0]);
    }

    /// The vectorised LayerNorm + ReLU backward gives the bits of a scalar model of its
    /// order (per sample: eight f64 partial sums of dx̂ and dx̂·x̂ over the whole 8-float runs of
    /// each channel's row, added as `fold8`, then the tail in order; per channel: dγ, dβ and dz
    /// image by image), with the ReLU's mask of the forward's output (`a > 0`), which the
    /// backward takes from z. 19 pixels per row (two runs of 8 and a tail of 3), 5 channels,
    /// 3 samples, about half the units off, accumulating onto nonzero dγ, dβ.
    #[test]
    fn ln_relu_backward_keeps_its_order() {
        let (c, b, hw) = (5usize, 3usize, 19usize);
        let n = c * b * hw;
        let z: Vec<f32> = (0..n).map(|i| ((i as f32) * 0.77).sin()).collect();
        let g: Vec<f32> = (0..c * hw)
            .map(|i| 1.0 + 0.3 * (i as f32 * 1.3).cos())
            .collect();
        let be: Vec<f32> = (0..c * hw).map(|i| 0.4 * (i as f32 * 0.9).sin()).collect();
        let da: Vec<f32> = (0..n).map(|i| ((i as f32) * 0.31).cos()).collect();
        let (m, r) = (vec![0.1f32, -0.2, 0.05], vec![1.3f32, 0.9, 1.1]);
        let mut a = vec![0.0f32; n];
        ln_relu_forward(&z, &mut a, b, hw, Some((&g, &be, &m, &r)));
        let on = a.iter().filter(|&&v| v > 0.0).count();
        assert!(on > n / 4 && on < 3 * n / 4, "{on} of {n} units on");
        let (mut dg, mut db) = (vec![0.5f32; c * hw], vec![-0.25f32; c * hw]);
        let mut dz = vec![0.0f32; n];
        let norm = Some((&g[..], &be[..], &m[..], &r[..], &mut dg[..], &mut db[..]));
        ln_relu_backward(&z, &a, &da, &mut dz, c, b, hw, norm);
        // The scalar model.
        let (mut wg, mut wb, mut wz) = (vec![0.5f32; c * hw], vec![-0.25f32; c * hw], vec![0.0; n]);
        let full = hw - hw % 8;
        let m12: Vec<(f32, f32)> = (0..b)
            .map(|s| {
                let (mut a1, mut a2) = ([0.0f64; 8], [0.0f64; 8]);
                let (mut s1, mut s2) = (0.0f64, 0.0f64);
                for ch in 0..c {
                    let o = (ch * b + s) * hw;
                    for i in 0..hw {
                        let dxh = if a[o + i] > 0.0 {
                            (da[o + i] * g[ch * hw + i]) as f64
                        } else {
                            0.0
                        };
                        let xh = ((z[o + i] - m[s]) * r[s]) as f64;
                        if i < full {
                            a1[i % 8] += dxh;
                            a2[i % 8] += dxh * xh;
                        } else if a[o + i] > 0.0 {
                            s1 += dxh;
                            s2 += dxh * xh;
                        }
                    }
                }
                s1 += fold8(a1);
                s2 += fold8(a2);
                let nn = (c * hw) as f64;
                ((s1 / nn) as f32, (s2 / nn) as f32)
            })
            .collect();
        for ch in 0..c {
            for s in 0..b {
                let (m1, m2) = m12[s];
                for i in 0..hw {
                    let o = (ch * b + s) * hw + i;
                    let xh = (z[o] - m[s]) * r[s];
                    let dy = if a[o] > 0.0 { da[o] } else { 0.0 };
                    wg[ch * hw + i] += dy * xh;
                    wb[ch * hw + i] += dy;
                    wz[o] = r[s] * (dy * g[ch * hw + i] - m1 - xh * m2);
                }
            }
        }
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&dz), bits(&wz), "dz");
        assert_eq!(bits(&dg), bits(&wg), "dgamma");
        assert_eq!(bits(&db), bits(&wb), "dbeta");
    }

    /// The vectorised max-pool keeps the scalar rule: the first of equal maxima, NaN over a
    /// number, the first NaN among NaNs; values and indices, on maps of
    /// 6 × 18 (odd pair counts) with many ties and some NaNs.
    #[test]
    fn maxpool_keeps_the_scalar_rule() {
        let (planes, h, w) = (4usize, 6usize, 18usize);
        // Three values in a scrambled order (every kind of tie), and some NaNs.
        let x: Vec<f32> = (0..planes * h * w)
            .map(|i| match i % 23 {
                5 | 11 => f32::NAN,
                _ => (((i as u64 * 2_654_435_761) >> 7) % 3) as f32 - 1.0,
            })
            .collect();
        let (oh, ow) = (h / 2, w / 2);
        let mut y = vec![0.0f32; planes * oh * ow];
        let mut idx = vec![0u8; y.len()];
        maxpool_forward(&x, h, w, &mut y, &mut idx);
        for p in 0..planes {
            for i in 0..oh {
                for j in 0..ow {
                    let at = |r: usize, c: usize| x[(p * h + 2 * i + r) * w + 2 * j + c];
                    let cand = [at(0, 0), at(0, 1), at(1, 0), at(1, 1)];
                    let (mut best, mut q) = (cand[0], 0u8);
                    for (k, &v) in cand.iter().enumerate().skip(1) {
                        if v > best || (v.is_nan() && !best.is_nan()) {
                            (best, q) = (v, k as u8);
                        }
                    }
                    let o = (p * oh + i) * ow + j;
                    assert_eq!((y[o].to_bits(), idx[o]), (best.to_bits(), q), "{p} {i} {j}");
                }
            }
        }
    }

    /// The combine with LayerNorm's statistics in the same pass gives the bits of the
    /// combine (as [`map3`]) followed by [`ln_stats`]: no `e`, additive and multiplicative,
    /// rows of 19 pixels (runs of 8 and a tail), with and without statistics.
    #[test]
    fn combine_ln_stats_is_combine_then_stats() {
        let (c, b, hw) = (6usize, 3usize, 19usize);
        let n = c * b * hw;
        // Magnitudes from 1e-6 to 1e6.
        let bv: Vec<f32> = (0..n)
            .map(|i| ((i as f32) * 0.37).sin() * 10f32.powi((i * 7 % 13) as i32 - 6))
            .collect();
        let ev: Vec<f32> = (0..n).map(|i| ((i as f32) * 0.61).cos()).collect();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for (e, mult) in [(None, false), (Some(&ev[..]), false), (Some(&ev[..]), true)] {
            let mut want = vec![0.0f32; n];
            match e {
                None => want.copy_from_slice(&bv),
                Some(e) if mult => map3(&mut want, &bv, e, |_, b, e| b * (e + 1.0)),
                Some(e) => map3(&mut want, &bv, e, |_, b, e| b + e),
            }
            let (mut wm, mut wr) = (vec![0.0f32; b], vec![0.0f32; b]);
            ln_stats(&want, c, b, hw, 1e-5, &mut wm, &mut wr);
            let mut z = vec![7.0f32; n];
            let (mut m, mut r) = (vec![0.0f32; b], vec![0.0f32; b]);
            combine_ln_stats(
                &mut z,
                &bv,
                e,
                mult,
                (c, b, hw),
                Some((1e-5, &mut m, &mut r)),
            );
            assert_eq!(bits(&z), bits(&want), "z ({e:?}, {mult})");
            assert_eq!(
                (bits(&m), bits(&r)),
                (bits(&wm), bits(&wr)),
                "stats ({mult})"
            );
            let mut z2 = vec![7.0f32; n];
            combine_ln_stats(&mut z2, &bv, e, mult, (c, b, hw), None);
            assert_eq!(bits(&z2), bits(&want), "z without statistics");
        }
    }

    #[test]
    fn ln_relu_backward_matches_finite_differences() {
        let (c, b, hw) = (3, 2, 4);
        let n = c * b * hw;
        let z: Vec<f32> = (0..n).map(|i| ((i as f32) * 0.77).sin()).collect();
        let g: Vec<f32> = (0..c * hw)
            .map(|i| 1.0 + 0.3 * ((i as f32) * 1.3).cos())
            .collect();
        let be: Vec<f32> = (0..c * hw)
            .map(|i| 0.2 * ((i as f32) * 0.4).sin())
            .collect();
        let w: Vec<f32> = (0..n).map(|i| ((i as f32) * 0.31).cos()).collect();
        let loss = |z: &[f32]| -> f64 {
            let (mut m, mut r) = (vec![0.0; b], vec![0.0; b]);
            ln_stats(z, c, b, hw, 1e-5, &mut m, &mut r);
            let mut a = vec![0.0; n];
            ln_relu_forward(z, &mut a, b, hw, Some((&g, &be, &m, &r)));
            a.iter().zip(&w).map(|(x, y)| (x * y) as f64).sum()
        };
        let (mut m, mut r) = (vec![0.0; b], vec![0.0; b]);
        ln_stats(&z, c, b, hw, 1e-5, &mut m, &mut r);
        let mut a = vec![0.0; n];
        ln_relu_forward(&z, &mut a, b, hw, Some((&g, &be, &m, &r)));
        let mut dz = vec![0.0; n];
        let (mut dg, mut db) = (vec![0.0; c * hw], vec![0.0; c * hw]);
        ln_relu_backward(
            &z,
            &a,
            &w,
            &mut dz,
            c,
            b,
            hw,
            Some((&g, &be, &m, &r, &mut dg, &mut db)),
        );
        for i in 0..n {
            let mut zp = z.clone();
            zp[i] += 1e-3;
            let mut zm = z.clone();
            zm[i] -= 1e-3;
            let fd = (loss(&zp) - loss(&zm)) / 2e-3;
            assert!(
                (fd - dz[i] as f64).abs() < 2e-2,
                "{i}: fd {fd} vs {}",
                dz[i]
            );
        }
    }
}
