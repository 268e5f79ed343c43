//! Brain-Score's probabilities decoder (`ProbabilitiesMapping.ProbabilitiesClassifier` of
//! `model_helpers/brain_transformation/behavior.py`): features z-scored with the fitting
//! stimuli's mean and standard deviation (scikit-learn's `StandardScaler`, ddof 0, constant
//! features left unscaled), then multinomial logistic regression with an L2 penalty on the
//! weights (not the intercepts), `C = 1e-3`:
//!
//! `min_{W,b} ½‖W‖² + C Σᵢ [logsumexp(zᵢ) − zᵢ,yᵢ]`,  `z = XW + b`.
//!
//! The objective is strictly convex in W, so its minimiser does not depend on the solver:
//! scikit-learn's `newton-cg` stops at `max|∇| ≤ 1e-4` (its loss averaged over samples), ventral
//! iterates a preconditioned truncated Newton method until `max|∇| ≤ 1e-9` on the same scale
//! (or until the objective stops decreasing in f64),
//! so the probabilities are the optimum's (tests: `tests/behaviour.rs`, against scikit-learn
//! run to `tol = 1e-12`; with Brain-Score's default tolerance scikit-learn's own stopping point
//! differs from the optimum by up to ~5e-5 in a probability).
//!
//! When there are more features than fitting stimuli (p > n) the optimal W lies in the span of
//! the fitting rows, so the problem is solved exactly in n dimensions: with the Gram matrix
//! `K = XXᵀ = USUᵀ`, the rows `Z = US^½` and `Z_test = X_test Xᵀ U S^-½` give the same logits and
//! the same penalty (`W = XᵀUS^-½V`, `‖W‖ = ‖V‖`).
//!
//! # Shapes
//! - fitting rows [n, p], test rows [m, p] (f32, read through row accessors)
//! - labels `[n]` in `0..k`; result `[m, k]` probabilities, row-major

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par, Side};

use crate::error::{NeuralError, Result};

/// Decoder settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogisticConfig {
    /// Inverse regularisation strength (Brain-Score: 1e-3).
    pub c: f64,
    /// Stop when `max|∇|` of the sample-averaged objective falls below this.
    pub tol: f64,
    /// Newton iterations before giving up.
    pub max_iter: usize,
    /// Parallel matrix products inside one fit (for callers with fewer fits than threads).
    pub parallel: bool,
}

impl Default for LogisticConfig {
    fn default() -> Self {
        Self {
            c: 1e-3,
            tol: 1e-9,
            max_iter: 200,
            parallel: false,
        }
    }
}

/// z-scoring of `n` rows of `p` features (scikit-learn's `StandardScaler`).
fn scaler<'a>(n: usize, p: usize, row: &impl Fn(usize) -> &'a [f32]) -> (Vec<f64>, Vec<f64>) {
    let mut mean = vec![0.0f64; p];
    for i in 0..n {
        for (m, &v) in mean.iter_mut().zip(row(i)) {
            *m += f64::from(v);
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let mut var = vec![0.0f64; p];
    for i in 0..n {
        for ((s, &v), m) in var.iter_mut().zip(row(i)).zip(&mean) {
            let d = f64::from(v) - m;
            *s += d * d;
        }
    }
    let scale = var
        .iter()
        .zip(&mean)
        .map(|(&s, m)| {
            let sd = (s / n as f64).sqrt();
            // scikit-learn leaves (near-)constant features unscaled.
            if sd <= 10.0 * f64::EPSILON * m.abs().max(1.0) {
                1.0
            } else {
                sd
            }
        })
        .collect();
    (mean, scale)
}

/// Columns converted per block when forming Gram matrices.
const BLOCK: usize = 256;

/// The design in which the problem is solved: z-scored features (p ≤ n) or their exact
/// n-dimensional reduction (p > n). Returns ([n, r], [m, r]).
fn design<'a, 'b>(
    n: usize,
    m: usize,
    p: usize,
    fit: &impl Fn(usize) -> &'a [f32],
    test: &impl Fn(usize) -> &'b [f32],
    par: Par,
) -> Result<(Mat<f64>, Mat<f64>)> {
    let (mean, scale) = scaler(n, p, fit);
    let z = |v: f32, j: usize| (f64::from(v) - mean[j]) / scale[j];
    if p <= n {
        let x = Mat::from_fn(n, p, |i, j| z(fit(i)[j], j));
        let xt = Mat::from_fn(m, p, |i, j| z(test(i)[j], j));
        return Ok((x, xt));
    }
    let mut g = Mat::<f64>::zeros(n, n);
    let mut gt = Mat::<f64>::zeros(m, n);
    let mut c0 = 0;
    while c0 < p {
        let bs = BLOCK.min(p - c0);
        let xb = Mat::from_fn(n, bs, |i, j| z(fit(i)[c0 + j], c0 + j));
        let tb = Mat::from_fn(m, bs, |i, j| z(test(i)[c0 + j], c0 + j));
        matmul(
            g.as_mut(),
            Accum::Add,
            xb.as_ref(),
            xb.transpose(),
            1.0,
            par,
        );
        matmul(
            gt.as_mut(),
            Accum::Add,
            tb.as_ref(),
            xb.transpose(),
            1.0,
            par,
        );
        c0 += bs;
    }
    let eig = g
        .self_adjoint_eigen(Side::Lower)
        .map_err(|e| NeuralError::Invalid(format!("eigendecomposition failed: {e:?}")))?;
    let s = eig.S().column_vector();
    let u = eig.U();
    let smax = (0..n).map(|i| s[i]).fold(0.0f64, f64::max);
    let keep: Vec<usize> = (0..n)
        .filter(|&i| s[i] > n as f64 * f64::EPSILON * smax)
        .collect();
    let r = keep.len();
    let zf = Mat::from_fn(n, r, |i, j| u[(i, keep[j])] * s[keep[j]].sqrt());
    let uk = Mat::from_fn(n, r, |i, j| u[(i, keep[j])] / s[keep[j]].sqrt());
    let mut zt = Mat::<f64>::zeros(m, r);
    matmul(
        zt.as_mut(),
        Accum::Replace,
        gt.as_ref(),
        uk.as_ref(),
        1.0,
        par,
    );
    Ok((zf, zt))
}

/// Row-wise softmax of `z` [n, k] in place.
fn softmax_rows(z: &mut Mat<f64>) {
    for i in 0..z.nrows() {
        let mx = (0..z.ncols())
            .map(|c| z[(i, c)])
            .fold(f64::NEG_INFINITY, f64::max);
        let mut s = 0.0;
        for c in 0..z.ncols() {
            let e = (z[(i, c)] - mx).exp();
            z[(i, c)] = e;
            s += e;
        }
        for c in 0..z.ncols() {
            z[(i, c)] /= s;
        }
    }
}

/// Logits `XW + b`.
fn logits(x: MatRef<'_, f64>, w: MatRef<'_, f64>, b: &[f64], par: Par) -> Mat<f64> {
    let mut z = Mat::<f64>::zeros(x.nrows(), w.ncols());
    matmul(z.as_mut(), Accum::Replace, x, w, 1.0, par);
    for i in 0..z.nrows() {
        for c in 0..z.ncols() {
            z[(i, c)] += b[c];
        }
    }
    z
}

/// The objective at (W, b).
fn objective(
    x: MatRef<'_, f64>,
    y: &[usize],
    w: MatRef<'_, f64>,
    b: &[f64],
    c: f64,
    par: Par,
) -> f64 {
    let z = logits(x, w, b, par);
    let mut loss = 0.0;
    for i in 0..z.nrows() {
        let mx = (0..z.ncols())
            .map(|k| z[(i, k)])
            .fold(f64::NEG_INFINITY, f64::max);
        let lse = mx
            + (0..z.ncols())
                .map(|k| (z[(i, k)] - mx).exp())
                .sum::<f64>()
                .ln();
        loss += lse - z[(i, y[i])];
    }
    0.5 * w.norm_l2().powi(2) + c * loss
}

/// (W, b) flattened: W row-major then b.
#[derive(Clone)]
struct Params {
    w: Mat<f64>,
    b: Vec<f64>,
}

impl Params {
    fn zeros(r: usize, k: usize) -> Self {
        Self {
            w: Mat::zeros(r, k),
            b: vec![0.0; k],
        }
    }
    fn dot(&self, o: &Params) -> f64 {
        let mut s: f64 = self.b.iter().zip(&o.b).map(|(a, b)| a * b).sum();
        for j in 0..self.w.ncols() {
            for i in 0..self.w.nrows() {
                s += self.w[(i, j)] * o.w[(i, j)];
            }
        }
        s
    }
    fn axpy(&mut self, a: f64, o: &Params) {
        for j in 0..self.w.ncols() {
            for i in 0..self.w.nrows() {
                self.w[(i, j)] += a * o.w[(i, j)];
            }
        }
        self.b.iter_mut().zip(&o.b).for_each(|(s, v)| *s += a * v);
    }
    fn max_abs(&self) -> f64 {
        let mut m = self.b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for j in 0..self.w.ncols() {
            for i in 0..self.w.nrows() {
                m = m.max(self.w[(i, j)].abs());
            }
        }
        m
    }
    fn map2(&self, o: &Params, f: impl Fn(f64, f64) -> f64) -> Params {
        Params {
            w: Mat::from_fn(self.w.nrows(), self.w.ncols(), |i, j| {
                f(self.w[(i, j)], o.w[(i, j)])
            }),
            b: self.b.iter().zip(&o.b).map(|(a, b)| f(*a, *b)).collect(),
        }
    }
}

/// `v + C·Xᵀq` for the W part and `C·Σᵢ qᵢ` for the bias part (the gradient with q = P − Y and
/// v = W; the Hessian-vector product with q = the softmax Jacobian times XV + b_v and v = V).
fn back(x: MatRef<'_, f64>, q: &Mat<f64>, c: f64, v: &Mat<f64>, par: Par) -> Params {
    let k = q.ncols();
    let mut w = v.clone();
    matmul(w.as_mut(), Accum::Add, x.transpose(), q.as_ref(), c, par);
    let b = (0..k)
        .map(|j| c * (0..q.nrows()).map(|i| q[(i, j)]).sum::<f64>())
        .collect();
    Params { w, b }
}

/// Fits the decoder on `n` fitting rows with labels `y` (classes `0..k`) and returns the class
/// probabilities of `m` test rows, [m, k] row-major. Every class must occur in `y`.
pub fn fit_predict_proba<'a, 'b>(
    n: usize,
    fit: impl Fn(usize) -> &'a [f32],
    y: &[usize],
    k: usize,
    m: usize,
    test: impl Fn(usize) -> &'b [f32],
    p: usize,
    cfg: &LogisticConfig,
) -> Result<Vec<f64>> {
    if n == 0 || y.len() != n || k < 2 || y.iter().any(|&c| c >= k) {
        return Err(NeuralError::Invalid(format!(
            "decoder: {n} fitting rows, {} labels, {k} classes",
            y.len()
        )));
    }
    if !(cfg.c > 0.0 && cfg.c.is_finite()) {
        return Err(NeuralError::Invalid(format!(
            "decoder: C must be finite and > 0, got {}",
            cfg.c
        )));
    }
    let par = if cfg.parallel {
        Par::rayon(0)
    } else {
        Par::Seq
    };
    let (x, xt) = design(n, m, p, &fit, &test, par)?;
    let (w, b) = newton_cg(x.as_ref(), y, k, cfg, par)?;
    let mut z = logits(xt.as_ref(), w.as_ref(), &b, par);
    softmax_rows(&mut z);
    let mut out = vec![0.0; m * k];
    for i in 0..m {
        for c in 0..k {
            out[i * k + c] = z[(i, c)];
        }
    }
    Ok(out)
}

/// Preconditioned truncated Newton (conjugate gradients on Hessian-vector products, Armijo
/// backtracking).
fn newton_cg(
    x: MatRef<'_, f64>,
    y: &[usize],
    k: usize,
    cfg: &LogisticConfig,
    par: Par,
) -> Result<(Mat<f64>, Vec<f64>)> {
    let (n, r) = (x.nrows(), x.ncols());
    let c = cfg.c;
    // Gradient tolerance on ventral's scale (loss summed and multiplied by C).
    let gtol = cfg.tol * c * n as f64;
    let mut th = Params::zeros(r, k);
    let mut f = objective(x, y, th.w.as_ref(), &th.b, c, par);
    let mut x2 = vec![0.0; r * n];
    for j in 0..r {
        for i in 0..n {
            x2[j * n + i] = x[(i, j)] * x[(i, j)];
        }
    }
    let (mut best_gmax, mut stalled) = (f64::INFINITY, 0);
    for _ in 0..cfg.max_iter {
        let mut pr = logits(x, th.w.as_ref(), &th.b, par);
        softmax_rows(&mut pr);
        let mut resid = pr.clone();
        for (i, &yi) in y.iter().enumerate() {
            resid[(i, yi)] -= 1.0;
        }
        let g = back(x, &resid, c, &th.w, par);
        let gmax = g.max_abs();
        if gmax <= gtol {
            return Ok((th.w, th.b));
        }
        // Diagonal of the Hessian as preconditioner.
        let pq: Mat<f64> = Mat::from_fn(n, k, |i, j| pr[(i, j)] * (1.0 - pr[(i, j)]));
        let diag = Params {
            w: Mat::from_fn(r, k, |j, cc| {
                1.0 + c * (0..n).map(|i| x2[j * n + i] * pq[(i, cc)]).sum::<f64>()
            }),
            b: (0..k)
                .map(|cc| c * (0..n).map(|i| pq[(i, cc)]).sum::<f64>() + 1e-12)
                .collect(),
        };
        let hv = |v: &Params| -> Params {
            let u = logits(x, v.w.as_ref(), &v.b, par);
            let mut q = Mat::<f64>::zeros(n, k);
            for i in 0..n {
                let s: f64 = (0..k).map(|j| pr[(i, j)] * u[(i, j)]).sum();
                for j in 0..k {
                    q[(i, j)] = pr[(i, j)] * (u[(i, j)] - s);
                }
            }
            back(x, &q, c, &v.w, par)
        };
        // Solve H d = −g.
        let gnorm = g.dot(&g).sqrt();
        let eta = gnorm.sqrt().min(0.5);
        let mut d = Params::zeros(r, k);
        let mut res = g.map2(&g, |a, _| -a);
        let mut zv = res.map2(&diag, |a, m| a / m);
        let mut dir = zv.clone();
        let mut rz = res.dot(&zv);
        for _ in 0..(10 * (r + 1) * k).min(500) {
            let hd = hv(&dir);
            let curv = dir.dot(&hd);
            if curv <= 0.0 {
                break;
            }
            let alpha = rz / curv;
            d.axpy(alpha, &dir);
            res.axpy(-alpha, &hd);
            if res.dot(&res).sqrt() <= eta * gnorm {
                break;
            }
            zv = res.map2(&diag, |a, m| a / m);
            let rz_new = res.dot(&zv);
            let beta = rz_new / rz;
            rz = rz_new;
            dir = zv.map2(&dir, |z, p| z + beta * p);
        }
        if d.max_abs() == 0.0 {
            d = g.map2(&diag, |a, m| -a / m);
        }
        // Armijo backtracking. Near the optimum the decrease a Newton step promises falls
        // below the objective's f64 rounding, so there a full step that does not increase f
        // beyond rounding is taken (Newton converges quadratically in the gradient, which stays
        // measurable long after f stops resolving).
        let slope = g.dot(&d);
        let tiny = 64.0 * f64::EPSILON * f.abs().max(1.0);
        let mut step = 1.0;
        let mut accepted = false;
        for _ in 0..60 {
            let mut trial = Params {
                w: th.w.clone(),
                b: th.b.clone(),
            };
            trial.axpy(step, &d);
            let ft = objective(x, y, trial.w.as_ref(), &trial.b, c, par);
            if ft <= f + 1e-4 * step * slope || (step == 1.0 && ft <= f + tiny) {
                th = trial;
                f = ft;
                accepted = true;
                break;
            }
            step *= 0.5;
        }
        // Stop where neither f nor the gradient can improve any more (rounding level).
        if gmax < best_gmax * 0.5 {
            best_gmax = gmax;
            stalled = 0;
        } else {
            stalled += 1;
        }
        if !accepted || stalled >= 4 {
            return Ok((th.w, th.b));
        }
    }
    Err(NeuralError::Invalid(format!(
        "decoder: logistic regression did not converge in {} Newton iterations",
        cfg.max_iter
    )))
}
