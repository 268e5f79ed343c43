//! Linear maps from model features to neural sites: PLS regression with scikit-learn's
//! `PLSRegression(scale=False)` semantics and ridge regression with leave-one-out alpha
//! selection (scikit-learn's `RidgeCV`) from one SVD per fit.
//!
//! Matrices are faer `Mat<f64>` with samples in rows.
//!
//! # Shapes
//! - `x`: [n, p] features (n samples/stimuli, p features)
//! - `y`: [n, q] targets (q neural sites)
//! - [`LinearMap::coef`]: [p, q]; prediction `(x - x_mean) · coef + y_mean`.

use faer::{Mat, MatRef};

use crate::error::{NeuralError, Result};

/// A fitted affine map `ŷ = (x − x_mean) · coef + y_mean`.
#[derive(Debug, Clone)]
pub struct LinearMap {
    /// [p, q]
    pub coef: Mat<f64>,
    /// `[p]`
    pub x_mean: Vec<f64>,
    /// `[q]`
    pub y_mean: Vec<f64>,
}

impl LinearMap {
    /// Predicts [m, q] targets from [m, p] features.
    pub fn predict(&self, x: MatRef<'_, f64>) -> Mat<f64> {
        let xc = center_with(x, &self.x_mean);
        let mut out = &xc * &self.coef;
        for j in 0..out.ncols() {
            let m = self.y_mean[j];
            for v in out.col_as_slice_mut(j) {
                *v += m;
            }
        }
        out
    }
}

/// Column means of `x`.
pub fn column_means(x: MatRef<'_, f64>) -> Vec<f64> {
    let n = x.nrows().max(1) as f64;
    (0..x.ncols())
        .map(|j| x.col(j).iter().sum::<f64>() / n)
        .collect()
}

/// `x` with `mean` subtracted from every row.
pub fn center_with(x: MatRef<'_, f64>, mean: &[f64]) -> Mat<f64> {
    Mat::from_fn(x.nrows(), x.ncols(), |i, j| x[(i, j)] - mean[j])
}

pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn check_shapes(x: MatRef<'_, f64>, y: MatRef<'_, f64>) -> Result<()> {
    if x.nrows() != y.nrows() {
        return Err(NeuralError::Invalid(format!(
            "features have {} rows but targets have {}",
            x.nrows(),
            y.nrows()
        )));
    }
    if x.nrows() < 2 {
        return Err(NeuralError::Invalid(format!(
            "a linear map needs at least 2 samples, got {}",
            x.nrows()
        )));
    }
    Ok(())
}

/// PLS regression (NIPALS, regression-mode deflation), as scikit-learn's
/// `PLSRegression(n_components, scale=False, max_iter=500, tol=1e-6)`.
#[derive(Debug, Clone, Copy)]
pub struct Pls {
    pub n_components: usize,
    pub max_iter: usize,
    pub tol: f64,
}

impl Default for Pls {
    /// Brain-Score's default: 25 components.
    fn default() -> Self {
        Self {
            n_components: 25,
            max_iter: 500,
            tol: 1e-6,
        }
    }
}

impl Pls {
    pub fn new(n_components: usize) -> Self {
        Self {
            n_components,
            ..Self::default()
        }
    }

    /// Fits the map. `n_components` is capped at `min(n, p)` like the rank bound scikit-learn
    /// enforces (which raises instead); a constant target residual ends the components early,
    /// as in scikit-learn.
    pub fn fit(&self, x: MatRef<'_, f64>, y: MatRef<'_, f64>) -> Result<LinearMap> {
        check_shapes(x, y)?;
        let (n, p, q) = (x.nrows(), x.ncols(), y.ncols());
        let x_mean = column_means(x);
        let y_mean = column_means(y);
        let mut xk = center_with(x, &x_mean);
        let mut yk = center_with(y, &y_mean);
        let ncomp = self.n_components.min(n).min(p);
        let eps = f64::EPSILON;

        // Total variance of the centred features: a component whose x scores have vanished
        // relative to it (constant features — e.g. a recurrent network's areas before the
        // image reaches them) carries nothing and ends the components, instead of dividing by
        // zero.
        let x_total: f64 = (0..p)
            .map(|j| xk.col_as_slice(j).iter().map(|v| v * v).sum::<f64>())
            .sum();
        let mut weights: Vec<Vec<f64>> = Vec::with_capacity(ncomp); // x_weights, each [p]
        let mut x_loadings: Vec<Vec<f64>> = Vec::with_capacity(ncomp); // each [p]
        let mut y_loadings: Vec<Vec<f64>> = Vec::with_capacity(ncomp); // each [q]

        for _ in 0..ncomp {
            // Columns of yk that are numerically zero are set to zero.
            for j in 0..q {
                let col = yk.col_as_slice_mut(j);
                if col.iter().all(|v| v.abs() < 10.0 * eps) {
                    col.fill(0.0);
                }
            }
            let Some(first) = (0..q).find(|&j| yk.col_as_slice(j).iter().any(|v| v.abs() > eps))
            else {
                break; // y residual is constant
            };
            let mut y_score: Vec<f64> = yk.col_as_slice(first).to_vec();
            let mut w_old: Option<Vec<f64>> = None;
            let mut w = vec![0.0; p];
            let mut y_weights = vec![0.0; q];
            // With fewer features than samples, an iteration that has not converged after
            // `p / 16` steps continues in feature space: with C = Xkᵀ Yk and G = Xkᵀ Xk, the
            // next x_weights ∝ Xkᵀ y_score = C · y_weights, x_score · x_score = wᵀ G w and
            // y_weights = Cᵀ w / (wᵀ G w) — the same iterates (the scalars dropped cancel in the
            // normalisation), O(p·q + p²) each instead of O(n·(p + q)). Forming C and G costs
            // the flops of about p / 2 data-space steps, but as one matrix product, several
            // times faster per flop than those matrix–vector steps (measured: switching after
            // p / 2 steps took 154 s where p / 16 took 90 s, docs/performance.md).
            let switch_at = if p < n {
                p.div_ceil(16).max(1)
            } else {
                usize::MAX
            };
            let mut cov: Option<(Mat<f64>, Mat<f64>)> = None;
            for it in 0..self.max_iter {
                if it == switch_at {
                    cov = Some((xk.transpose() * &yk, xk.transpose() * &xk));
                }
                if let Some((c, g)) = &cov {
                    let v = c * faer::ColRef::from_slice(&y_weights);
                    w.iter_mut().zip(v.iter()).for_each(|(a, b)| *a = *b);
                    let norm = dot(&w, &w).sqrt() + eps;
                    w.iter_mut().for_each(|v| *v /= norm);
                    let gw = g * faer::ColRef::from_slice(&w);
                    let xx: f64 = w.iter().zip(gw.iter()).map(|(a, b)| a * b).sum();
                    let yw = c.transpose() * faer::ColRef::from_slice(&w);
                    for (j, v) in y_weights.iter_mut().enumerate() {
                        *v = yw[j] / xx;
                    }
                    if moved_less(&w, w_old.as_deref(), self.tol) {
                        break;
                    }
                    w_old = Some(w.clone());
                    continue;
                }
                // x_weights = Xk^T y_score / (y_score · y_score)
                let ys = faer::ColRef::from_slice(&y_score);
                let xw = xk.transpose() * ys;
                let yy = dot(&y_score, &y_score);
                for (i, v) in w.iter_mut().enumerate() {
                    *v = xw[i] / yy;
                }
                let norm = dot(&w, &w).sqrt() + eps;
                w.iter_mut().for_each(|v| *v /= norm);
                // x_score = Xk w
                let x_score = &xk * faer::ColRef::from_slice(&w);
                let xs: Vec<f64> = x_score.iter().copied().collect();
                let xx = dot(&xs, &xs);
                // y_weights = Yk^T x_score / (x_score · x_score)
                let yw = yk.transpose() * faer::ColRef::from_slice(&xs);
                for (j, v) in y_weights.iter_mut().enumerate() {
                    *v = yw[j] / xx;
                }
                // y_score = Yk y_weights / (y_weights · y_weights + eps)
                let yw2 = dot(&y_weights, &y_weights) + eps;
                let ysc = &yk * faer::ColRef::from_slice(&y_weights);
                for (i, v) in y_score.iter_mut().enumerate() {
                    *v = ysc[i] / yw2;
                }
                if moved_less(&w, w_old.as_deref(), self.tol) || q == 1 {
                    break;
                }
                w_old = Some(w.clone());
            }
            // Sign flip: the largest |x_weight| is positive.
            let (imax, _) = w.iter().enumerate().fold((0, -1.0), |acc, (i, v)| {
                if v.abs() > acc.1 { (i, v.abs()) } else { acc }
            });
            if w[imax] < 0.0 {
                w.iter_mut().for_each(|v| *v = -*v);
                y_weights.iter_mut().for_each(|v| *v = -*v);
            }
            let x_score: Vec<f64> = (&xk * faer::ColRef::from_slice(&w))
                .iter()
                .copied()
                .collect();
            let xx = dot(&x_score, &x_score);
            if !(xx.is_finite() && xx > x_total * 1e-24 && x_total > 0.0) {
                break;
            }
            let xs = faer::ColRef::from_slice(&x_score);
            let pl: Vec<f64> = (xk.transpose() * xs).iter().map(|v| v / xx).collect();
            let ql: Vec<f64> = (yk.transpose() * xs).iter().map(|v| v / xx).collect();
            // Deflation.
            for j in 0..p {
                let pj = pl[j];
                for (v, t) in xk.col_as_slice_mut(j).iter_mut().zip(&x_score) {
                    *v -= t * pj;
                }
            }
            for j in 0..q {
                let qj = ql[j];
                for (v, t) in yk.col_as_slice_mut(j).iter_mut().zip(&x_score) {
                    *v -= t * qj;
                }
            }
            weights.push(w);
            x_loadings.push(pl);
            y_loadings.push(ql);
        }

        let k = weights.len();
        let coef = if k == 0 {
            Mat::zeros(p, q)
        } else {
            let wm = Mat::from_fn(p, k, |i, c| weights[c][i]);
            let pm = Mat::from_fn(p, k, |i, c| x_loadings[c][i]);
            let qm = Mat::from_fn(q, k, |i, c| y_loadings[c][i]);
            let ptw = pm.transpose() * &wm; // [k, k]
            let inv = pinv(ptw.as_ref())?;
            let rotations = &wm * &inv; // [p, k]
            &rotations * qm.transpose() // [p, q]
        };
        Ok(LinearMap {
            coef,
            x_mean,
            y_mean,
        })
    }
}

/// NIPALS's convergence test: the squared change of the x weights since the last step is
/// below `tol` (never on the first step).
fn moved_less(w: &[f64], old: Option<&[f64]>, tol: f64) -> bool {
    old.is_some_and(|old| {
        w.iter()
            .zip(old)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f64>()
            < tol
    })
}

/// Moore–Penrose pseudo-inverse of a small square matrix via SVD, with SciPy's default cutoff
/// (`max(M, N) · eps · σ_max`).
pub(crate) fn pinv(a: MatRef<'_, f64>) -> Result<Mat<f64>> {
    let svd = a
        .thin_svd()
        .map_err(|e| NeuralError::Invalid(format!("SVD did not converge: {e:?}")))?;
    let s = svd.S().column_vector();
    let smax = s.iter().fold(0.0f64, |m, v| m.max(*v));
    let cutoff = a.nrows().max(a.ncols()) as f64 * f64::EPSILON * smax;
    let (u, v) = (svd.U(), svd.V());
    let r = s.nrows();
    let inv_s: Vec<f64> = s
        .iter()
        .map(|&x| if x > cutoff { 1.0 / x } else { 0.0 })
        .collect();
    Ok(Mat::from_fn(a.ncols(), a.nrows(), |i, j| {
        (0..r).map(|c| v[(i, c)] * inv_s[c] * u[(j, c)]).sum()
    }))
}

/// Log-spaced default alpha grid spanning Brain-Score's ridge range, 1e-2 … 1e7 (4 per decade).
pub fn default_alphas() -> Vec<f64> {
    (0..=36)
        .map(|i| 10f64.powf(-2.0 + i as f64 / 4.0))
        .collect()
}

/// Which alphas of the grid [`RidgeCv`] evaluates the leave-one-out error of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LooGrid {
    /// Every alpha (scikit-learn's `cv_results_`).
    All,
    /// Only those a lower bound cannot rule out; the same alpha is chosen (see
    /// `RidgeCv::loo_select`), the others' errors are NaN.
    Pruned,
}

/// `a · b` on the rayon pool (nested inside the per-fit parallelism, it work-steals).
pub(crate) fn matmul_par(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> Mat<f64> {
    let mut out = Mat::<f64>::zeros(a.nrows(), b.ncols());
    faer::linalg::matmul::matmul(
        out.as_mut(),
        faer::Accum::Replace,
        a,
        b,
        1.0,
        faer::Par::rayon(0),
    );
    out
}

/// Ridge regression with an intercept and one alpha for all targets chosen by efficient
/// leave-one-out error over a grid, as scikit-learn's `RidgeCV(alphas, fit_intercept=True)`
/// (GCV mode, `alpha_per_target=False`): one thin SVD of the centred training features serves
/// every alpha.
#[derive(Debug, Clone)]
pub struct RidgeCv {
    pub alphas: Vec<f64>,
}

impl Default for RidgeCv {
    fn default() -> Self {
        Self {
            alphas: default_alphas(),
        }
    }
}

/// A ridge fit and the alpha the leave-one-out error chose.
#[derive(Debug, Clone)]
pub struct RidgeFit {
    pub map: LinearMap,
    pub alpha: f64,
    /// Mean squared leave-one-out error per alpha (same order as the grid).
    pub loo_mse: Vec<f64>,
}

impl RidgeCv {
    pub(crate) fn check_alphas(&self) -> Result<()> {
        if self.alphas.is_empty()
            || self
                .alphas
                .iter()
                .any(|a| a.is_nan() || *a <= 0.0 || !a.is_finite())
        {
            return Err(NeuralError::Invalid(
                "ridge alphas must be a non-empty list of positive numbers".into(),
            ));
        }
        Ok(())
    }

    /// The alpha with the smallest mean squared leave-one-out error, that error per alpha, and
    /// `Uᵀyc` [k, q] (for the final fit), from the left singular vectors `u` [n, k] of the
    /// centred features, their squared singular values `lam` and the centred targets `yc`
    /// [n, q]. The hat matrix of alpha is
    /// `11ᵀ/n + U diag(λ/(λ+α)) Uᵀ`; the LOO residual is the residual over `1 − hᵢᵢ`.
    ///
    /// [`LooGrid::All`] evaluates every alpha (scikit-learn's `cv_results_`);
    /// [`LooGrid::Pruned`] only those its bounds cannot rule out (`pruned_search`), NaN for the
    /// others — the chosen alpha is the same: the smallest error, the first on ties.
    pub(crate) fn loo_select(
        &self,
        u: MatRef<'_, f64>,
        lam: &[f64],
        yc: MatRef<'_, f64>,
        grid: LooGrid,
    ) -> (f64, Vec<f64>, Mat<f64>) {
        let (n, q, k, na) = (u.nrows(), yc.ncols(), lam.len(), self.alphas.len());
        let uty = matmul_par(u.transpose(), yc); // [k, q]
        // Leverages for every alpha at once: h[:, a] = 1/n + (U ∘ U) f_a.
        let u_sq = Mat::from_fn(n, k, |i, c| u[(i, c)] * u[(i, c)]);
        let shrink = Mat::from_fn(k, na, |c, a| lam[c] / (lam[c] + self.alphas[a]));
        let mut h = matmul_par(u_sq.as_ref(), shrink.as_ref()); // [n, A]
        for a in 0..na {
            h.col_as_slice_mut(a)
                .iter_mut()
                .for_each(|v| *v += 1.0 / n as f64);
        }
        let nq = (n * q) as f64;
        // The exact mean squared LOO error of alpha a, and each row's squared residual ‖rᵢ‖²
        // (before the 1/(1 − hᵢ) scaling), which the pruned search's bounds reuse.
        let exact = |a: usize| -> (f64, Mat<f64>) {
            let scaled = Mat::from_fn(k, q, |c, j| uty[(c, j)] * shrink[(c, a)]);
            let mut resid = matmul_par(u, scaled.as_ref()); // [n, q], fitted
            let ha = h.col_as_slice(a);
            let mut sse = 0.0;
            for j in 0..q {
                let (col, ycj) = (resid.col_as_slice_mut(j), yc.col(j));
                for i in 0..n {
                    let r = ycj[i] - col[i];
                    let e = r / (1.0 - ha[i]);
                    sse += e * e;
                    col[i] = r;
                }
            }
            (sse / nq, resid)
        };
        let mut loo_mse = vec![f64::NAN; na];
        match grid {
            LooGrid::All => (0..na).for_each(|a| loo_mse[a] = exact(a).0),
            LooGrid::Pruned => {
                self.pruned_search(&h, lam, uty.as_ref(), yc, u, &exact, &mut loo_mse)
            }
        }
        let mut best: Option<usize> = None;
        for (a, m) in loo_mse.iter().enumerate() {
            if !m.is_nan() && best.is_none_or(|b| *m < loo_mse[b]) {
                best = Some(a);
            }
        }
        (self.alphas[best.unwrap_or(0)], loo_mse, uty)
    }

    /// Branch and bound over the alpha grid for [`LooGrid::Pruned`]: fills `loo_mse` for the
    /// alphas it evaluates with `exact` and leaves NaN where a lower bound exceeds the best error
    /// evaluated. With `Z = Uᵀyc`, `gᵢ(α) = α/(λᵢ+α)` and `R⊥` the part of `yc` outside U, the
    /// residual `r(α) = U diag(g(α)) Z + R⊥` has per-row LOO weights `wᵢ = 1/(1 − hᵢ)²` and
    /// `n·q·MSE(α) = Σᵢ wᵢ‖rᵢ(α)‖²`. Two rigorous lower bounds, both O(k + n) per alpha:
    /// - `min w · ‖r(α)‖²`, where `‖r(α)‖² = Σ gᵢ²‖Zᵢ‖² + ‖R⊥‖²` (U orthonormal);
    /// - from any evaluated alpha β with its residual: for every ρ,
    ///   `r(α) = ρ r(β) + Δ` with `‖Δ‖² = Σ (gᵢ(α) − ρ gᵢ(β))²‖Zᵢ‖² + (1 − ρ)²‖R⊥‖²`, so
    ///   `√(n·q·MSE(α)) ≥ √(Σ wᵢ ρ²‖rᵢ(β)‖²) − √(max w)·‖Δ‖` (ρ by least squares). Tight where
    ///   g(α) ∝ g(β): neighbouring alphas far below or far above the eigenvalues, exactly where
    ///   the first bound is loose (leverages near 1 and spread). The same with two evaluated
    ///   alphas β₁ < α < β₂ (the nearest on either side), `r(α) = ρ₁r(β₁) + ρ₂r(β₂) + Δ`, whose
    ///   weighted norm needs the rows' cross products `rᵢ(β₁)·rᵢ(β₂)` — tighter in between,
    ///   where g(α) is not proportional to either neighbour's.
    ///
    /// Both are loosened by a relative 1e-9 (and ‖R⊥‖² widened by rounding), far above the
    /// rounding of the exact errors, so the alpha chosen is the exhaustive search's.
    fn pruned_search(
        &self,
        h: &Mat<f64>,
        lam: &[f64],
        uty: MatRef<'_, f64>,
        yc: MatRef<'_, f64>,
        u: MatRef<'_, f64>,
        exact: &dyn Fn(usize) -> (f64, Mat<f64>),
        loo_mse: &mut [f64],
    ) {
        let (n, q, k, na) = (yc.nrows(), yc.ncols(), lam.len(), self.alphas.len());
        let nq = (n * q) as f64;
        let zz: Vec<f64> = (0..k)
            .map(|c| (0..q).map(|j| uty[(c, j)] * uty[(c, j)]).sum())
            .collect();
        let yy: f64 = (0..q)
            .map(|j| yc.col(j).iter().map(|v| v * v).sum::<f64>())
            .sum();
        // ‖R⊥‖², the part of yc outside U's span, from R⊥ = yc − U Z itself (‖yc‖² − ‖Z‖²
        // cancels), with an interval for the product's rounding (≤ k^1.5·ε·‖Z‖ in norm).
        let fitted_all = matmul_par(u, uty);
        let mut outside = 0.0;
        for j in 0..q {
            for (y, f) in yc.col(j).iter().zip(fitted_all.col_as_slice(j)) {
                outside += (y - f) * (y - f);
            }
        }
        let kf = k.max(1) as f64;
        let err = 2.0 * kf * kf.sqrt() * f64::EPSILON * yy.sqrt();
        let (out_lo, out_hi) = (
            (outside.sqrt() - err).max(0.0).powi(2),
            (outside.sqrt() + err).powi(2),
        );
        // Z's own rounding (≤ k·ε·‖yc‖ per entry), summed over the k·q entries, in ‖Δ‖².
        let slack = 4.0 * kf * kf * kf * f64::EPSILON * f64::EPSILON * yy;
        let g: Vec<Vec<f64>> = self
            .alphas
            .iter()
            .map(|&al| lam.iter().map(|&l| al / (l + al)).collect())
            .collect();
        let w: Vec<Vec<f64>> = (0..na)
            .map(|a| {
                h.col_as_slice(a)
                    .iter()
                    .map(|&v| 1.0 / ((1.0 - v) * (1.0 - v)))
                    .collect()
            })
            .collect();
        let wmin: Vec<f64> = w
            .iter()
            .map(|v| v.iter().fold(f64::INFINITY, |m, x| m.min(*x)))
            .collect();
        let wmax: Vec<f64> = w
            .iter()
            .map(|v| v.iter().fold(0.0f64, |m, x| m.max(*x)))
            .collect();
        let loosen = 1.0 - 1e-9;
        let norm2 =
            |a: usize| -> f64 { g[a].iter().zip(&zz).map(|(gi, z)| gi * gi * z).sum::<f64>() };
        let mut low: Vec<f64> = (0..na)
            .map(|a| wmin[a] * (norm2(a) + out_lo - slack).max(0.0) / nq * loosen)
            .collect();
        let upper: Vec<f64> = (0..na)
            .map(|a| wmax[a] * (norm2(a) + out_hi + slack) / nq)
            .collect();
        // Evaluated alphas: residual matrix and per-row squared norms; cross products of rows
        // between two of them, computed when a bound first needs the pair.
        let mut resid: Vec<Option<(Mat<f64>, Vec<f64>)>> = (0..na).map(|_| None).collect();
        let mut cross: std::collections::HashMap<(usize, usize), Vec<f64>> = Default::default();
        // The bound on alpha a from the evaluated alphas `refs` (one or two): r(a) =
        // Σ ρⱼ r(refⱼ) + Δ with ρ by least squares on ‖Δ‖².
        let bound = |a: usize,
                     refs: &[usize],
                     resid: &[Option<(Mat<f64>, Vec<f64>)>],
                     cross: &mut std::collections::HashMap<(usize, usize), Vec<f64>>|
         -> f64 {
            let m = refs.len();
            // Normal equations of min Σ_c zz (g_a − Σ ρⱼ g_j)² + ‖R⊥‖² (1 − Σ ρⱼ)².
            let mut ata = [[outside; 2]; 2];
            let mut atb = [outside; 2];
            for c in 0..k {
                for (i, &ri) in refs.iter().enumerate() {
                    atb[i] += zz[c] * g[a][c] * g[ri][c];
                    for (j, &rj) in refs.iter().enumerate() {
                        ata[i][j] += zz[c] * g[ri][c] * g[rj][c];
                    }
                }
            }
            let rho = if m == 1 {
                [atb[0] / ata[0][0], 0.0]
            } else {
                let det = ata[0][0] * ata[1][1] - ata[0][1] * ata[1][0];
                [
                    (atb[0] * ata[1][1] - ata[0][1] * atb[1]) / det,
                    (ata[0][0] * atb[1] - ata[1][0] * atb[0]) / det,
                ]
            };
            if !rho.iter().all(|r| r.is_finite()) {
                return 0.0;
            }
            let mut d2 = (1.0 - rho[0] - rho[1]).powi(2) * out_hi;
            for c in 0..k {
                let mut t = g[a][c];
                for (j, &rj) in refs.iter().enumerate() {
                    t -= rho[j] * g[rj][c];
                }
                d2 += t * t * zz[c];
            }
            let d2 = d2 * (1.0 + 1e-9) + slack;
            // ‖√W Σ ρⱼ r(refⱼ)‖² from the rows' norms and cross products.
            let rows = |j: usize| &resid[refs[j]].as_ref().expect("evaluated").1;
            let (mut lead, mut scale) = (0.0, 0.0);
            for (i, wi) in w[a].iter().enumerate() {
                let sq = rho[0] * rho[0] * rows(0)[i]
                    + if m == 2 {
                        rho[1] * rho[1] * rows(1)[i]
                    } else {
                        0.0
                    };
                lead += wi * sq;
                scale += wi * sq;
            }
            if m == 2 {
                let key = (refs[0].min(refs[1]), refs[0].max(refs[1]));
                let x = cross.entry(key).or_insert_with(|| {
                    let (r0, r1) = (
                        &resid[key.0].as_ref().expect("evaluated").0,
                        &resid[key.1].as_ref().expect("evaluated").0,
                    );
                    let mut x = vec![0.0; n];
                    for j in 0..q {
                        for ((xi, a0), a1) in
                            x.iter_mut().zip(r0.col_as_slice(j)).zip(r1.col_as_slice(j))
                        {
                            *xi += a0 * a1;
                        }
                    }
                    x
                });
                lead += 2.0
                    * rho[0]
                    * rho[1]
                    * w[a]
                        .iter()
                        .zip(x.iter())
                        .map(|(wi, xi)| wi * xi)
                        .sum::<f64>();
            }
            // The expansion cancels when the two references oppose: widen by its scale.
            let lead = (lead - 1e-10 * scale).max(0.0);
            let b = (lead.sqrt() - (wmax[a] * d2).sqrt()).max(0.0);
            b * b / nq * loosen
        };
        // Alpha indices by value, for the nearest evaluated neighbours on either side.
        let mut by_value: Vec<usize> = (0..na).collect();
        by_value.sort_by(|&a, &b| self.alphas[a].total_cmp(&self.alphas[b]));
        let mut best = f64::INFINITY;
        // Start from the smallest upper bound, then always the smallest lower bound left.
        let mut next = (0..na).min_by(|&a, &b| upper[a].total_cmp(&upper[b]));
        while let Some(b) = next {
            let (mse, r) = exact(b);
            let rows: Vec<f64> = (0..n)
                .map(|i| (0..q).map(|j| r[(i, j)] * r[(i, j)]).sum())
                .collect();
            resid[b] = Some((r, rows));
            loo_mse[b] = mse;
            best = best.min(mse);
            for pos in 0..na {
                let a = by_value[pos];
                if resid[a].is_some() || low[a] > best {
                    continue;
                }
                let below = by_value[..pos]
                    .iter()
                    .rev()
                    .find(|&&x| resid[x].is_some())
                    .copied();
                let above = by_value[pos + 1..]
                    .iter()
                    .find(|&&x| resid[x].is_some())
                    .copied();
                let mut lb = bound(a, &[b], &resid, &mut cross);
                if let (Some(lo), Some(hi)) = (below, above) {
                    lb = lb.max(bound(a, &[lo, hi], &resid, &mut cross));
                }
                if lb > low[a] {
                    low[a] = lb;
                }
            }
            // NaN bounds (degenerate leverages) compare as not above `best`: never pruned.
            next = (0..na)
                .filter(|&a| {
                    resid[a].is_none()
                        && low[a].partial_cmp(&best) != Some(std::cmp::Ordering::Greater)
                })
                .min_by(|&a, &b| low[a].total_cmp(&low[b]));
        }
    }

    /// Fits with every alpha's LOO error evaluated ([`LooGrid::All`]).
    pub fn fit(&self, x: MatRef<'_, f64>, y: MatRef<'_, f64>) -> Result<RidgeFit> {
        self.fit_grid(x, y, LooGrid::All)
    }

    /// Fits, evaluating the LOO errors `grid` asks for; the same alpha and map either way.
    pub fn fit_grid(
        &self,
        x: MatRef<'_, f64>,
        y: MatRef<'_, f64>,
        grid: LooGrid,
    ) -> Result<RidgeFit> {
        check_shapes(x, y)?;
        self.check_alphas()?;
        let x_mean = column_means(x);
        let y_mean = column_means(y);
        let xc = center_with(x, &x_mean);
        let yc = center_with(y, &y_mean);
        let svd = xc
            .thin_svd()
            .map_err(|e| NeuralError::Invalid(format!("SVD did not converge: {e:?}")))?;
        let (u, v) = (svd.U(), svd.V());
        let s: Vec<f64> = svd.S().column_vector().iter().copied().collect();
        let smax = s.iter().fold(0.0f64, |m, x| m.max(*x));
        // Directions with numerically zero singular values carry no signal.
        let k = s.iter().filter(|&&v| v > 1e-12 * smax.max(1e-300)).count();
        let u = u.subcols(0, k);
        let v = v.subcols(0, k);
        let s = &s[..k];
        let lam: Vec<f64> = s.iter().map(|v| v * v).collect();
        let (alpha, loo_mse, uty) = self.loo_select(u, &lam, yc.as_ref(), grid); // uty [k, q]
        let scaled = Mat::from_fn(k, y.ncols(), |c, j| {
            uty[(c, j)] * s[c] / (s[c] * s[c] + alpha)
        });
        let coef = v * &scaled;
        Ok(RidgeFit {
            map: LinearMap {
                coef,
                x_mean,
                y_mean,
            },
            alpha,
            loo_mse,
        })
    }
}
