//! Dual (kernel) forms of the fits in [`crate::regression`]: the same PLS and ridge maps, and
//! the same held-out predictions, computed from the stimuli's Gram matrix instead of the
//! features themselves.
//!
//! Brain-Score-sized problems have far more features than stimuli (p = 10 000 units of one
//! layer and step, n = 2 700 training stimuli). Every quantity the primal algorithms need is a
//! product of the centred features with an n-vector, so one n × n Gram matrix per
//! (layer, step) — computed once over all stimuli and shared by every split, bin, region and
//! trial-half resample that uses those features — replaces the n × p matrix in every fit:
//!
//! - **PLS (NIPALS)**: the x-weights `w = Xₖᵀu / ‖Xₖᵀu‖` never need to exist. The x-scores are
//!   `t = Kₖu · s` with `Kₖ = XₖXₖᵀ`, the convergence test `‖w − w_old‖²` is a combination of
//!   `uᵀKₖu` and `u · t_old`, and `KₖYₖ` (n × q) is carried from one component to the next by the
//!   deflation `Kₖ₊₁ = (I − ttᵀ/tᵀt) Kₖ (I − ttᵀ/tᵀt)`, so an inner iteration costs O(n·q)
//!   instead of O(n·p). The weights and loadings live as dual vectors `W = X₀ᵀA`, `P = X₀ᵀB`
//!   and the prediction is `K_test · A (BᵀK₀A)⁺ Qᵀ + ȳ` — the same
//!   `coef = W (PᵀW)⁺ Qᵀ` scikit-learn forms. The sign flip scikit-learn applies to each
//!   component leaves `coef` unchanged and is skipped.
//! - **Ridge (leave-one-out over an alpha grid)**: one eigendecomposition of the centred
//!   training kernel per split serves every bin, region and alpha — scikit-learn's own `gram`
//!   mode of `RidgeCV`, which it chooses by itself when p > n.
//!
//! The iterates are those of the primal algorithms (same starting column, same stopping rule),
//! so the predictions agree to rounding (tests: `tests/regression.rs`).
//!
//! # Shapes
//! - [`Gram::g`]: [N, N] over all stimuli of one feature block
//! - [`DualSplit::train`]: [n, n] centred on the training rows; [`DualSplit::test`]: [m, n]
//! - `y`: [n, q] training targets; predictions [m, q]

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par, Side};

use crate::error::{NeuralError, Result};
use crate::regression::{LooGrid, Pls, RidgeCv, center_with, column_means, dot, pinv};

/// Columns of features converted and multiplied per block while forming a Gram matrix.
const GRAM_BLOCK: usize = 256;

/// `G = (X − m)(X − m)ᵀ` over all N stimuli of one feature block (m = the column means over
/// all N rows: a global shift that keeps the sums small; each split re-centres on its own
/// training rows), with `p`, the number of features, that bounds the rank.
#[derive(Debug, Clone)]
pub struct Gram {
    pub g: Mat<f64>,
    pub p: usize,
}

impl Gram {
    /// Forms the Gram matrix of `n` rows of `p` features, `row(i)` giving row i; f32 input,
    /// f64 accumulation, columns streamed in blocks so only [n, 256] f64 is in flight beyond
    /// the result.
    pub fn new<'a>(n: usize, p: usize, row: impl Fn(usize) -> &'a [f32] + Sync, par: Par) -> Self {
        let mut mean = vec![0.0f64; p];
        for i in 0..n {
            for (m, &v) in mean.iter_mut().zip(row(i)) {
                *m += f64::from(v);
            }
        }
        mean.iter_mut().for_each(|m| *m /= n.max(1) as f64);
        let mut g = Mat::<f64>::zeros(n, n);
        let mut c0 = 0;
        while c0 < p {
            let bs = GRAM_BLOCK.min(p - c0);
            let xb = Mat::from_fn(n, bs, |i, j| f64::from(row(i)[c0 + j]) - mean[c0 + j]);
            matmul(
                g.as_mut(),
                Accum::Add,
                xb.as_ref(),
                xb.transpose(),
                1.0,
                par,
            );
            c0 += bs;
        }
        Gram { g, p }
    }
}

/// One split's kernels: the training Gram matrix and the test × train cross-Gram matrix, both
/// centred on the training rows' feature means.
#[derive(Debug, Clone)]
pub struct DualSplit {
    pub train: Mat<f64>,
    pub test: Mat<f64>,
    /// Features behind the kernels (bounds the number of PLS components).
    pub p: usize,
}

impl DualSplit {
    /// `(xᵢ − m)·(xⱼ − m) = Gᵢⱼ − rᵢ − rⱼ + μ` with `rᵢ` the mean of `Gᵢ,train` and `μ` the mean of
    /// `G_train,train`.
    pub fn new(gram: &Gram, train: &[usize], test: &[usize]) -> Self {
        let g = &gram.g;
        let n = train.len();
        let r = |i: usize| train.iter().map(|&j| g[(i, j)]).sum::<f64>() / n.max(1) as f64;
        let rtr: Vec<f64> = train.iter().map(|&i| r(i)).collect();
        let rte: Vec<f64> = test.iter().map(|&i| r(i)).collect();
        let mu = rtr.iter().sum::<f64>() / n.max(1) as f64;
        DualSplit {
            train: Mat::from_fn(n, n, |a, b| g[(train[a], train[b])] - rtr[a] - rtr[b] + mu),
            test: Mat::from_fn(test.len(), n, |a, b| {
                g[(test[a], train[b])] - rte[a] - rtr[b] + mu
            }),
            p: gram.p,
        }
    }
}

fn matvec(a: MatRef<'_, f64>, x: &[f64]) -> Vec<f64> {
    let mut out = Mat::<f64>::zeros(a.nrows(), 1);
    matmul(
        out.as_mut(),
        Accum::Replace,
        a,
        faer::ColRef::from_slice(x).as_mat(),
        1.0,
        Par::Seq,
    );
    out.col_as_slice(0).to_vec()
}

fn mm(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> Mat<f64> {
    let mut out = Mat::<f64>::zeros(a.nrows(), b.ncols());
    matmul(out.as_mut(), Accum::Replace, a, b, 1.0, Par::Seq);
    out
}

/// Removes from `v` its component along `t` (`tt` = t·t).
fn project_out(v: &mut [f64], t: &[f64], tt: f64) {
    let c = dot(t, v) / tt;
    v.iter_mut().zip(t).for_each(|(x, ti)| *x -= c * ti);
}

fn check(split: &DualSplit, y: MatRef<'_, f64>) -> Result<()> {
    let n = split.train.nrows();
    if y.nrows() != n {
        return Err(NeuralError::Invalid(format!(
            "the training kernel has {n} rows but targets have {}",
            y.nrows()
        )));
    }
    if n < 2 {
        return Err(NeuralError::Invalid(format!(
            "a linear map needs at least 2 samples, got {n}"
        )));
    }
    Ok(())
}

/// `base` [m, k] · `right` [k, q] + the target means in every row.
fn with_means(base: Mat<f64>, y_mean: &[f64]) -> Mat<f64> {
    let mut out = base;
    for (j, m) in y_mean.iter().enumerate() {
        out.col_as_slice_mut(j).iter_mut().for_each(|v| *v += m);
    }
    out
}

impl Pls {
    /// Fits PLS on the split's training rows and predicts its test rows, in the dual form
    /// (module docs); the same predictions as [`Pls::fit`] + `predict` on the features.
    pub fn fit_predict_dual(&self, split: &DualSplit, y: MatRef<'_, f64>) -> Result<Mat<f64>> {
        check(split, y)?;
        let k0 = split.train.as_ref();
        let (n, q) = (y.nrows(), y.ncols());
        let y_mean = column_means(y);
        let mut yk = center_with(y, &y_mean);
        let ncomp = self.n_components.min(n).min(split.p);
        let eps = f64::EPSILON;
        let x_total: f64 = (0..n).map(|i| k0[(i, i)]).sum();
        let mut ky = mm(k0, yk.as_ref()); // Kₖ Yₖ, [n, q]
        // Per component: x-scores t and t·t, dual x-weights a (W = X₀ᵀA), dual loadings b
        // (P = X₀ᵀB), y-loadings.
        let mut ts: Vec<(Vec<f64>, f64)> = Vec::with_capacity(ncomp);
        let mut a_cols: Vec<Vec<f64>> = Vec::with_capacity(ncomp);
        let mut b_cols: Vec<Vec<f64>> = Vec::with_capacity(ncomp);
        let mut q_cols: Vec<Vec<f64>> = Vec::with_capacity(ncomp);
        for _ in 0..ncomp {
            for j in 0..q {
                if yk.col_as_slice(j).iter().all(|v| v.abs() < 10.0 * eps) {
                    yk.col_as_slice_mut(j).fill(0.0);
                    ky.col_as_slice_mut(j).fill(0.0);
                }
            }
            let Some(first) = (0..q).find(|&j| yk.col_as_slice(j).iter().any(|v| v.abs() > eps))
            else {
                break;
            };
            // u = Yₖc; Kₖu = (KₖYₖ)c.
            let mut c = vec![0.0; q];
            c[first] = 1.0;
            let mut u = yk.col_as_slice(first).to_vec();
            let mut old: Option<(Vec<f64>, f64)> = None; // (t_old, ‖w_old‖²)
            let mut t = Vec::new();
            let mut tt = 0.0;
            let mut u_w = u.clone(); // the u that made the current w
            let mut w_scale = 0.0;
            for _ in 0..self.max_iter {
                let uu = dot(&u, &u);
                let ku = matvec(ky.as_ref(), &c);
                let g = dot(&u, &ku).max(0.0); // uᵀKₖu = ‖Xₖᵀu‖²
                // w = Xₖᵀu/(u·u) normalised by (‖·‖ + eps): w = Xₖᵀu · s.
                let s = 1.0 / (uu * (g.sqrt() / uu + eps));
                let ww = g * s * s;
                t = ku.iter().map(|v| v * s).collect();
                tt = dot(&t, &t);
                // y_weights = Yₖᵀt / t·t; next u = Yₖ y_weights / (‖y_weights‖² + eps).
                let yw = matvec(yk.transpose(), &t);
                let yw2 = yw.iter().map(|v| (v / tt) * (v / tt)).sum::<f64>() + eps;
                c = yw.iter().map(|v| v / tt / yw2).collect();
                let converged = match &old {
                    // w·w_old = uᵀKₖu_old · s · s_old = u · t_old · s
                    Some((t_old, ww_old)) => ww + ww_old - 2.0 * dot(&u, t_old) * s < self.tol,
                    None => false,
                };
                u_w = std::mem::replace(&mut u, matvec(yk.as_ref(), &c));
                w_scale = s;
                if converged || q == 1 {
                    break;
                }
                old = Some((t.clone(), ww));
            }
            if !(tt.is_finite() && tt > x_total * 1e-24 && x_total > 0.0) {
                break;
            }
            let ql: Vec<f64> = matvec(yk.transpose(), &t).iter().map(|v| v / tt).collect();
            // Xₖ = M X₀ with M = (I − P_{c−1})…(I − P₀): Xₖᵀv = X₀ᵀ(Mᵀv), Mᵀ applies P_{c−1} first.
            let mut a: Vec<f64> = u_w.iter().map(|v| v * w_scale).collect();
            let mut b: Vec<f64> = t.iter().map(|v| v / tt).collect();
            for (tj, ttj) in ts.iter().rev() {
                project_out(&mut a, tj, *ttj);
                project_out(&mut b, tj, *ttj);
            }
            // Kₖt = M K₀ Mᵀt, Mᵀt = b·tt; M applies P₀ first.
            let mut v = matvec(k0, &b);
            v.iter_mut().for_each(|x| *x *= tt);
            for (tj, ttj) in &ts {
                project_out(&mut v, tj, *ttj);
            }
            // Kₖ₊₁Yₖ₊₁ = (I − ttᵀ/tt)(KₖYₖ − (Kₖt) qlᵀ); Yₖ₊₁ = Yₖ − t qlᵀ.
            for (j, &qj) in ql.iter().enumerate() {
                let col = ky.col_as_slice_mut(j);
                col.iter_mut().zip(&v).for_each(|(x, vi)| *x -= vi * qj);
                project_out(col, &t, tt);
                yk.col_as_slice_mut(j)
                    .iter_mut()
                    .zip(&t)
                    .for_each(|(x, ti)| *x -= ti * qj);
            }
            ts.push((t, tt));
            a_cols.push(a);
            b_cols.push(b);
            q_cols.push(ql);
        }
        let m = split.test.nrows();
        let k = a_cols.len();
        if k == 0 {
            return Ok(with_means(Mat::zeros(m, q), &y_mean));
        }
        let am = Mat::from_fn(n, k, |i, c| a_cols[c][i]);
        let bm = Mat::from_fn(n, k, |i, c| b_cols[c][i]);
        let qm = Mat::from_fn(q, k, |j, c| q_cols[c][j]);
        let ptw = mm(bm.transpose(), mm(k0, am.as_ref()).as_ref()); // PᵀW = BᵀK₀A
        let inv = pinv(ptw.as_ref())?;
        let right = mm(inv.as_ref(), qm.transpose()); // [k, q]
        let left = mm(split.test.as_ref(), am.as_ref()); // [m, k]
        Ok(with_means(mm(left.as_ref(), right.as_ref()), &y_mean))
    }
}

/// A split's training kernel, eigendecomposed once for every ridge fit on it.
#[derive(Debug, Clone)]
pub struct DualRidge {
    /// Eigenvectors with non-negligible eigenvalues, [n, r].
    u: Mat<f64>,
    /// Their eigenvalues (= squared singular values of the centred features).
    lam: Vec<f64>,
    /// Test kernel times the eigenvectors, [m, r].
    test_u: Mat<f64>,
}

impl DualRidge {
    pub fn new(split: &DualSplit) -> Result<Self> {
        let n = split.train.nrows();
        let evd = split
            .train
            .self_adjoint_eigen(Side::Lower)
            .map_err(|e| NeuralError::Invalid(format!("eigendecomposition failed: {e:?}")))?;
        let s = evd.S().column_vector();
        let lmax = s.iter().fold(0.0f64, |m, v| m.max(*v));
        // Eigenvalues of a Gram matrix are accurate to ~eps·λmax: below n·eps·λmax they are
        // rounding noise (the primal form's tiny singular values, which carry no signal).
        let cut = n as f64 * f64::EPSILON * lmax;
        let keep: Vec<usize> = (0..s.nrows()).filter(|&i| s[i] > cut).collect();
        let u = Mat::from_fn(n, keep.len(), |i, c| evd.U()[(i, keep[c])]);
        let lam = keep.iter().map(|&i| s[i]).collect();
        let test_u = mm(split.test.as_ref(), u.as_ref());
        Ok(DualRidge { u, lam, test_u })
    }
}

impl RidgeCv {
    /// Leave-one-out alpha selection and held-out predictions from the split's decomposed
    /// kernel; the same alpha, LOO errors and predictions as [`RidgeCv::fit`] on the features.
    /// Returns (predictions [m, q], alpha, LOO mean squared error per alpha — NaN for the
    /// alphas [`LooGrid::Pruned`] ruled out without evaluating).
    pub fn fit_predict_dual(
        &self,
        dr: &DualRidge,
        y: MatRef<'_, f64>,
        grid: LooGrid,
    ) -> Result<(Mat<f64>, f64, Vec<f64>)> {
        self.check_alphas()?;
        let n = dr.u.nrows();
        if y.nrows() != n || n < 2 {
            return Err(NeuralError::Invalid(format!(
                "ridge: {n} training rows in the kernel, {} in the targets (need ≥ 2)",
                y.nrows()
            )));
        }
        let y_mean = column_means(y);
        let yc = center_with(y, &y_mean);
        let (alpha, loo, uty) = self.loo_select(dr.u.as_ref(), &dr.lam, yc.as_ref(), grid);
        let scaled = Mat::from_fn(dr.lam.len(), y.ncols(), |c, j| {
            uty[(c, j)] / (dr.lam[c] + alpha)
        });
        Ok((
            with_means(mm(dr.test_u.as_ref(), scaled.as_ref()), &y_mean),
            alpha,
            loo,
        ))
    }
}
