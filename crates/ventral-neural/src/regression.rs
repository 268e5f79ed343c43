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
    /// [p]
    pub x_mean: Vec<f64>,
    /// [q]
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
            for _ in 0..self.max_iter {
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
                let converged = match &w_old {
                    Some(old) => {
                        let d: f64 = w.iter().zip(old).map(|(a, b)| (a - b) * (a - b)).sum();
                        d < self.tol
                    }
                    None => false,
                };
                if converged || q == 1 {
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

    /// The alpha with the smallest mean squared leave-one-out error, and that error per alpha,
    /// from the left singular vectors `u` [n, k] of the centred features, their squared
    /// singular values `lam` and the centred targets `yc` [n, q]. The hat matrix of alpha is
    /// `11ᵀ/n + U diag(λ/(λ+α)) Uᵀ`; the LOO residual is the residual over `1 − hᵢᵢ`.
    pub(crate) fn loo_select(
        &self,
        u: MatRef<'_, f64>,
        lam: &[f64],
        yc: MatRef<'_, f64>,
    ) -> (f64, Vec<f64>) {
        let (n, q, k) = (u.nrows(), yc.ncols(), lam.len());
        let uty = u.transpose() * yc; // [k, q]
        let u_sq: Vec<Vec<f64>> = (0..k)
            .map(|c| u.col(c).iter().map(|v| v * v).collect())
            .collect();
        let mut loo_mse = Vec::with_capacity(self.alphas.len());
        for &alpha in &self.alphas {
            let f: Vec<f64> = lam.iter().map(|&l| l / (l + alpha)).collect();
            let mut h = vec![1.0 / n as f64; n];
            for c in 0..k {
                for (hi, us) in h.iter_mut().zip(&u_sq[c]) {
                    *hi += us * f[c];
                }
            }
            let scaled = Mat::from_fn(k, q, |c, j| uty[(c, j)] * f[c]);
            let fitted = u * &scaled; // [n, q]
            let mut sse = 0.0;
            for j in 0..q {
                for i in 0..n {
                    let e = (yc[(i, j)] - fitted[(i, j)]) / (1.0 - h[i]);
                    sse += e * e;
                }
            }
            loo_mse.push(sse / (n * q) as f64);
        }
        let mut best = 0;
        for (i, m) in loo_mse.iter().enumerate() {
            if *m < loo_mse[best] {
                best = i;
            }
        }
        (self.alphas[best], loo_mse)
    }

    pub fn fit(&self, x: MatRef<'_, f64>, y: MatRef<'_, f64>) -> Result<RidgeFit> {
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
        let (alpha, loo_mse) = self.loo_select(u, &lam, yc.as_ref());
        let uty = u.transpose() * &yc; // [k, q]
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
