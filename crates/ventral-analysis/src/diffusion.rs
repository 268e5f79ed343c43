//! Limiting dynamics of SGD (Kunin et al. 2021): anomalous diffusion of the parameters after
//! convergence, from a trajectory table (`sgd_dynamics.csv` of a ventral run, or any CSV with
//! `step,dist_sq` and optional `local_sq`, `vel_norm`, `lr` columns).
//!
//! - **Exponent**: ordinary least squares of `ln Δ_k` on `ln k` with Δ_k = ‖θ_k − θ₀‖² and k the
//!   steps since θ₀ (column `k`, else `step`). Rows with k ≤ 0 or Δ ≤ 0 carry no logarithm and
//!   are left out; the anchor's choices are options: skip the first `skip_first` rows (its
//!   sweeps: 1, "all points after the first"; its Fig. 1: the first epoch's checkpoints), then
//!   fit the last `fit_last` fraction (Fig. 1: 2/3). The slope c has a 95 % interval
//!   c ± t₀.₉₇₅(n − 2)·SE, SE = √(Σr²/(n − 2) / Σ(x − x̄)²) (`scipy.stats.linregress`'s
//!   `stderr`). Like the anchor's fit it treats residuals as independent; successive points of a
//!   trajectory are autocorrelated, so the interval is optimistic (too narrow) — compare runs
//!   and seeds rather than reading it as exact.
//! - **Rolling exponent**: the same fit on sliding windows of equal width in log k.
//! - **Local displacement** ‖δ_k‖² = ‖θ_{k+1} − θ_k‖² (column `local_sq`), smoothed by a moving
//!   average of width w (the anchor's w = 15, `np.convolve(x, ones(w)/w, 'valid')`); its final
//!   level is the mean over the last tenth of the run (at least w points). The
//!   theory's stationary level is proportional to η²/(S(1 − β²)) (learning rate η, batch size S,
//!   momentum β); across runs one constant C is fitted in log space (C = exp(mean(ln(obs/theory))),
//!   the least-squares constant of a log–log plot).

use std::path::Path;

use crate::error::{AnalysisError, Result, file_err};
use crate::output::{csv_field, num};

/// One trajectory.
#[derive(Debug, Clone, Default)]
pub struct Trajectory {
    pub name: String,
    /// Steps since θ₀.
    pub k: Vec<f64>,
    pub dist_sq: Vec<f64>,
    pub local_sq: Option<Vec<f64>>,
    pub vel_norm: Option<Vec<f64>>,
    /// Learning rate per row.
    pub lr: Option<Vec<f64>>,
    /// Projections onto Hessian eigenvectors (`proj_pos_<i>`, `proj_vel_<i>` columns): per
    /// direction, per row.
    pub proj_pos: Vec<Vec<f64>>,
    pub proj_vel: Vec<Vec<f64>>,
}

/// Read a trajectory CSV. Required: `dist_sq` and `k` or `step` (when only `step` is given,
/// k = step − first step, so a log that starts at a later global step still measures from θ₀).
pub fn read_csv(path: &Path, name: &str) -> Result<Trajectory> {
    let mut rd = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(path)
        .map_err(|e| file_err(path.display(), e))?;
    let headers = rd
        .headers()
        .map_err(|e| file_err(path.display(), e))?
        .clone();
    let col = |n: &str| headers.iter().position(|h| h.trim() == n);
    let dist = col("dist_sq").ok_or_else(|| {
        file_err(
            path.display(),
            format!(
                "no dist_sq column (found: {}); a trajectory needs step (or k) and dist_sq = ‖θ_k − θ₀‖²",
                headers.iter().collect::<Vec<_>>().join(", ")
            ),
        )
    })?;
    let (kcol, from_step) = match (col("k"), col("step")) {
        (Some(c), _) => (c, false),
        (None, Some(c)) => (c, true),
        (None, None) => {
            return Err(file_err(
                path.display(),
                "no k or step column (steps since θ₀, or global optimiser steps)",
            ));
        }
    };
    let optional = [col("local_sq"), col("vel_norm"), col("lr")];
    let mut proj_cols = Vec::new();
    while let (Some(p), Some(v)) = (
        col(&format!("proj_pos_{}", proj_cols.len())),
        col(&format!("proj_vel_{}", proj_cols.len())),
    ) {
        proj_cols.push((p, v));
    }
    let mut proj_pos: Vec<Vec<f64>> = vec![Vec::new(); proj_cols.len()];
    let mut proj_vel: Vec<Vec<f64>> = vec![Vec::new(); proj_cols.len()];
    let mut t = Trajectory {
        name: name.to_string(),
        ..Default::default()
    };
    let mut opt: [Vec<f64>; 3] = Default::default();
    for (i, rec) in rd.records().enumerate() {
        let rec = rec.map_err(|e| file_err(path.display(), e))?;
        let row = i + 2; // 1-based, after the header
        let get = |c: usize, what: &str| -> Result<f64> {
            let s = rec.get(c).unwrap_or("").trim();
            if s.is_empty() {
                return Ok(f64::NAN);
            }
            s.parse::<f64>().map_err(|_| {
                file_err(
                    path.display(),
                    format!("line {row}: {what} '{s}' is not a number"),
                )
            })
        };
        let k = get(kcol, if from_step { "step" } else { "k" })?;
        let d = get(dist, "dist_sq")?;
        if !k.is_finite() || !d.is_finite() || d < 0.0 {
            return Err(file_err(
                path.display(),
                format!("line {row}: step {k}, dist_sq {d}: both must be finite, dist_sq >= 0"),
            ));
        }
        if let Some(&prev) = t.k.last()
            && k <= prev
        {
            return Err(file_err(
                path.display(),
                format!("line {row}: steps must increase ({prev} then {k})"),
            ));
        }
        t.k.push(k);
        t.dist_sq.push(d);
        for (j, c) in optional.iter().enumerate() {
            if let Some(c) = c {
                opt[j].push(get(*c, ["local_sq", "vel_norm", "lr"][j])?);
            }
        }
        for (i, (pc, vc)) in proj_cols.iter().enumerate() {
            proj_pos[i].push(get(*pc, "proj_pos")?);
            proj_vel[i].push(get(*vc, "proj_vel")?);
        }
    }
    if t.k.is_empty() {
        return Err(file_err(path.display(), "no rows"));
    }
    if from_step {
        let k0 = t.k[0];
        for k in &mut t.k {
            *k -= k0;
        }
    }
    let [l, v, r] = opt;
    t.local_sq = optional[0].map(|_| l);
    t.vel_norm = optional[1].map(|_| v);
    t.lr = optional[2].map(|_| r);
    t.proj_pos = proj_pos;
    t.proj_vel = proj_vel;
    Ok(t)
}

/// Which points the exponent is fitted on.
#[derive(Debug, Clone, Copy)]
pub struct FitOptions {
    /// Rows skipped at the start (before anything else).
    pub skip_first: usize,
    /// Fraction of the remaining points, taken from the end, that the fit uses (0, 1].
    pub fit_last: f64,
}

impl Default for FitOptions {
    fn default() -> Self {
        Self {
            skip_first: 1,
            fit_last: 1.0,
        }
    }
}

/// A power-law fit Δ ≈ e^intercept · k^exponent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PowerFit {
    pub exponent: f64,
    /// 95 % t-interval of the exponent.
    pub ci_low: f64,
    pub ci_high: f64,
    /// Standard error of the exponent.
    pub stderr: f64,
    /// Intercept of ln Δ on ln k.
    pub intercept: f64,
    pub r_squared: f64,
    pub n_points: usize,
    /// First and last k of the fitted points.
    pub k_first: f64,
    pub k_last: f64,
}

/// OLS of y on x with slope interval (`scipy.stats.linregress` + `t.ppf(0.975, n − 2)`).
fn ols(x: &[f64], y: &[f64]) -> Option<(f64, f64, f64, f64)> {
    let n = x.len();
    if n < 3 {
        return None;
    }
    let nf = n as f64;
    let mx = x.iter().sum::<f64>() / nf;
    let my = y.iter().sum::<f64>() / nf;
    let (mut sxx, mut sxy, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxx += (a - mx) * (a - mx);
        sxy += (a - mx) * (b - my);
        syy += (b - my) * (b - my);
    }
    if sxx <= 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    let intercept = my - slope * mx;
    let r2 = if syy > 0.0 {
        (sxy * sxy / (sxx * syy)).min(1.0)
    } else {
        1.0
    };
    // scipy: stderr = sqrt((1 - r²) * syy / sxx / (n - 2))
    let stderr = ((1.0 - r2) * syy / sxx / (nf - 2.0)).max(0.0).sqrt();
    Some((slope, intercept, stderr, r2))
}

/// The points of `t` the fit uses under `opt` (indices into the trajectory).
pub fn fit_points(t: &Trajectory, opt: &FitOptions) -> Vec<usize> {
    let idx: Vec<usize> = (opt.skip_first.min(t.k.len())..t.k.len())
        .filter(|&i| t.k[i] > 0.0 && t.dist_sq[i] > 0.0)
        .collect();
    let drop = ((idx.len() as f64) * (1.0 - opt.fit_last)).floor() as usize;
    idx[drop.min(idx.len())..].to_vec()
}

/// Fit the diffusion exponent.
pub fn fit_exponent(t: &Trajectory, opt: &FitOptions) -> Result<PowerFit> {
    if !(opt.fit_last > 0.0 && opt.fit_last <= 1.0) {
        return Err(AnalysisError::Invalid(format!(
            "the fitted fraction must be in (0, 1], got {}",
            opt.fit_last
        )));
    }
    let idx = fit_points(t, opt);
    let x: Vec<f64> = idx.iter().map(|&i| t.k[i].ln()).collect();
    let y: Vec<f64> = idx.iter().map(|&i| t.dist_sq[i].ln()).collect();
    let (slope, intercept, stderr, r2) = ols(&x, &y).ok_or_else(|| {
        AnalysisError::Invalid(format!(
            "{}: {} points with k > 0 and dist_sq > 0 after skipping {} and keeping the last {} — at least 3 distinct steps are needed",
            t.name,
            idx.len(),
            opt.skip_first,
            opt.fit_last
        ))
    })?;
    let tq = ventral_core::stats::t_ppf(0.975, (idx.len() - 2) as f64);
    Ok(PowerFit {
        exponent: slope,
        ci_low: slope - tq * stderr,
        ci_high: slope + tq * stderr,
        stderr,
        intercept,
        r_squared: r2,
        n_points: idx.len(),
        k_first: t.k[idx[0]],
        k_last: t.k[idx[idx.len() - 1]],
    })
}

/// The exponent over sliding windows of equal width in log k: windows
/// [k_s, k_s·10^`decades`] starting at k_s = k_min·10^(j/`per_decade`), j = 0, 1, … while the
/// window fits in the data, each fitted (OLS of ln Δ on ln k) on every usable point (k > 0,
/// Δ > 0) inside it, skipped when it holds fewer than 3. Equal log widths keep late windows as
/// informative as early ones on linearly spaced steps. `(k_first, k_last, exponent)` of the
/// points in each window.
pub fn rolling_exponent(t: &Trajectory, decades: f64, per_decade: usize) -> Vec<(f64, f64, f64)> {
    let idx: Vec<usize> = (0..t.k.len())
        .filter(|&i| t.k[i] > 0.0 && t.dist_sq[i] > 0.0)
        .collect();
    if idx.len() < 3 || decades.is_nan() || decades <= 0.0 || per_decade == 0 {
        return Vec::new();
    }
    let (kmin, kmax) = (t.k[idx[0]], t.k[idx[idx.len() - 1]]);
    let mut out = Vec::new();
    let mut j = 0usize;
    loop {
        let lo = kmin * 10f64.powf(j as f64 / per_decade as f64);
        let hi = lo * 10f64.powf(decades);
        if hi > kmax * (1.0 + 1e-12) {
            break;
        }
        let w: Vec<usize> = idx
            .iter()
            .copied()
            .filter(|&i| t.k[i] >= lo * (1.0 - 1e-12) && t.k[i] <= hi * (1.0 + 1e-12))
            .collect();
        if w.len() >= 3 {
            let x: Vec<f64> = w.iter().map(|&i| t.k[i].ln()).collect();
            let y: Vec<f64> = w.iter().map(|&i| t.dist_sq[i].ln()).collect();
            if let Some((s, ..)) = ols(&x, &y) {
                out.push((t.k[w[0]], t.k[w[w.len() - 1]], s));
            }
        }
        j += 1;
    }
    out
}

/// `np.convolve(x, np.ones(w) / w, 'valid')`: means of every `w` consecutive values
/// (length n − w + 1; empty when n < w).
pub fn moving_average(x: &[f64], w: usize) -> Vec<f64> {
    if w == 0 || x.len() < w {
        return Vec::new();
    }
    x.windows(w)
        .map(|v| v.iter().sum::<f64>() / w as f64)
        .collect()
}

/// In-place iterative radix-2 FFT of (re, im); the length must be a power of two.
fn fft(re: &mut [f64], im: &mut [f64]) {
    let n = re.len();
    let mut j = 0;
    for i in 1..n {
        let mut bit = n >> 1;
        while j & bit != 0 {
            j ^= bit;
            bit >>= 1;
        }
        j |= bit;
        if i < j {
            re.swap(i, j);
            im.swap(i, j);
        }
    }
    let mut len = 2;
    while len <= n {
        let ang = -2.0 * std::f64::consts::PI / len as f64;
        for start in (0..n).step_by(len) {
            for k in 0..len / 2 {
                let (s, c) = (ang * k as f64).sin_cos();
                let (a, b) = (start + k, start + k + len / 2);
                let (xr, xi) = (re[b] * c - im[b] * s, re[b] * s + im[b] * c);
                re[b] = re[a] - xr;
                im[b] = im[a] - xi;
                re[a] += xr;
                im[a] += xi;
            }
        }
        len <<= 1;
    }
}

/// Periodogram of a series: the mean is removed, the series zero-padded to the next power of
/// two n_fft, and |X_f|²/n returned for f = 0..=n_fft/2 with frequencies f/n_fft in cycles per
/// sample (`np.abs(np.fft.rfft(x - x.mean(), n_fft))**2 / len(x)`). Non-finite values make the
/// result empty.
pub fn periodogram(x: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let n = x.len();
    if n < 2 || x.iter().any(|v| !v.is_finite()) {
        return (Vec::new(), Vec::new());
    }
    let nfft = n.next_power_of_two();
    let mean = x.iter().sum::<f64>() / n as f64;
    let mut re = vec![0.0; nfft];
    for (r, v) in re.iter_mut().zip(x) {
        *r = v - mean;
    }
    let mut im = vec![0.0; nfft];
    fft(&mut re, &mut im);
    let freq = (0..=nfft / 2).map(|f| f as f64 / nfft as f64).collect();
    let power = (0..=nfft / 2)
        .map(|f| (re[f] * re[f] + im[f] * im[f]) / n as f64)
        .collect();
    (freq, power)
}

/// The theory's stationary local displacement up to a constant: η²/(S(1 − β²)).
pub fn theory_level(lr: f64, batch_size: f64, momentum: f64) -> f64 {
    lr * lr / (batch_size * (1.0 - momentum * momentum))
}

/// The one constant C with observed ≈ C·theory across runs, least squares in log space.
/// `None` without a pair where both are positive and finite.
pub fn fit_theory_constant(pairs: &[(f64, f64)]) -> Option<f64> {
    let logs: Vec<f64> = pairs
        .iter()
        .filter(|(o, t)| o.is_finite() && t.is_finite() && *o > 0.0 && *t > 0.0)
        .map(|(o, t)| (o / t).ln())
        .collect();
    if logs.is_empty() {
        return None;
    }
    Some((logs.iter().sum::<f64>() / logs.len() as f64).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_power_law_is_recovered() {
        let k: Vec<f64> = (0..50).map(|i| (i * 10) as f64).collect();
        let t = Trajectory {
            name: "x".into(),
            dist_sq: k.iter().map(|k| 0.5 * k.powf(0.7)).collect(),
            k,
            ..Default::default()
        };
        let f = fit_exponent(&t, &FitOptions::default()).unwrap();
        assert!((f.exponent - 0.7).abs() < 1e-12);
        assert!((f.intercept - 0.5f64.ln()).abs() < 1e-10);
        assert_eq!(f.n_points, 49);
        assert!(f.stderr < 1e-6, "{}", f.stderr);
        let r = rolling_exponent(&t, 0.5, 10);
        // k = 10, 20, …, 490: starts 10·10^(j/10), j = 0..=11, fit below 490; j = 1's window
        // [12.6, 39.8] holds only 20 and 30 and is skipped.
        assert_eq!(r.len(), 11);
        assert!(r.iter().all(|(_, _, c)| (c - 0.7).abs() < 1e-9));
    }

    #[test]
    fn moving_average_is_numpy_valid_convolution() {
        assert_eq!(
            moving_average(&[1.0, 2.0, 3.0, 4.0], 2),
            vec![1.5, 2.5, 3.5]
        );
        assert!(moving_average(&[1.0], 2).is_empty());
    }
}

/// Kunin et al.'s underdamped Langevin theory of SGD with momentum along one Hessian
/// eigendirection (the anchor notebook's curves): eigenvalue λ, weight decay wd, learning rate
/// η, momentum β, batch size S. Gradient noise along the direction is taken as σ²·λ/S (linear
/// regression's covariance ∝ H/S).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Langevin {
    pub lambda: f64,
    pub weight_decay: f64,
    pub lr: f64,
    pub momentum: f64,
    pub batch_size: f64,
}

/// Regime of the mean's damped oscillation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Damping {
    Under,
    Critical,
    Over,
}

impl Langevin {
    /// Friction γ = (1 − β)/(η(1 + β)).
    pub fn gamma(&self) -> f64 {
        (1.0 - self.momentum) / (self.lr * (1.0 + self.momentum))
    }
    /// ω² = 2(λ + wd)/(η(1 + β)).
    pub fn omega_sq(&self) -> f64 {
        2.0 * (self.lambda + self.weight_decay) / (self.lr * (1.0 + self.momentum))
    }
    pub fn damping(&self) -> Damping {
        let (g, w) = (self.gamma(), self.omega_sq().sqrt());
        if (g - w).abs() <= 1e-12 * w.max(g) {
            Damping::Critical
        } else if g < w {
            Damping::Under
        } else {
            Damping::Over
        }
    }
    /// Stationary variance of the position, η/(2S(1 − β)) · λ/(λ + wd) · σ².
    pub fn position_variance(&self, sigma_sq: f64) -> f64 {
        self.lr / (2.0 * self.batch_size * (1.0 - self.momentum)) * self.lambda
            / (self.lambda + self.weight_decay)
            * sigma_sq
    }
    /// Stationary variance of the velocity (momentum buffer), λ/(S(1 − β²)) · σ².
    pub fn velocity_variance(&self, sigma_sq: f64) -> f64 {
        self.lambda / (self.batch_size * (1.0 - self.momentum * self.momentum)) * sigma_sq
    }
}

/// Hyperparameters of a run, for the theory level (NaN where unknown).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hyper {
    pub lr: f64,
    pub batch_size: f64,
    pub momentum: f64,
}

impl Hyper {
    pub const UNKNOWN: Hyper = Hyper {
        lr: f64::NAN,
        batch_size: f64::NAN,
        momentum: f64::NAN,
    };
}

/// Options of [`analyse`].
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub fit: FitOptions,
    /// Rolling-exponent windows: width in decades of k, starts per decade.
    pub window_decades: f64,
    pub windows_per_decade: usize,
    /// Moving-average width of the local displacement (the anchor's 15).
    pub ma_width: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            fit: FitOptions::default(),
            window_decades: 0.5,
            windows_per_decade: 10,
            ma_width: 15,
        }
    }
}

/// One run's analysis.
#[derive(Debug, Clone)]
pub struct RunAnalysis {
    pub traj: Trajectory,
    pub hyper: Hyper,
    pub fit: PowerFit,
    pub rolling: Vec<(f64, f64, f64)>,
    /// Moving average of `local_sq` (aligned with `traj.k[w − 1..]`).
    pub local_ma: Vec<f64>,
    /// Mean of the local displacements over the last tenth of the run (at least `ma_width`
    /// points; NaN without `local_sq`).
    pub local_final: f64,
    /// η²/(S(1 − β²)) (NaN when a hyperparameter is unknown).
    pub theory_level: f64,
}

/// Every run's analysis and the fitted theory constant.
#[derive(Debug, Clone)]
pub struct Analysis {
    pub runs: Vec<RunAnalysis>,
    pub options: Options,
    /// C in local_final ≈ C·η²/(S(1 − β²)), fitted over the runs that have both.
    pub theory_constant: Option<f64>,
}

/// Analyse trajectories (see the module docs).
pub fn analyse(trajs: Vec<(Trajectory, Hyper)>, options: Options) -> Result<Analysis> {
    let mut runs = Vec::with_capacity(trajs.len());
    for (traj, hyper) in trajs {
        let fit = fit_exponent(&traj, &options.fit)?;
        let rolling = rolling_exponent(&traj, options.window_decades, options.windows_per_decade);
        let (local_ma, local_final) = match &traj.local_sq {
            Some(l) => {
                let fin: Vec<f64> = l.iter().copied().filter(|v| v.is_finite()).collect();
                // The last tenth of the run, at least one moving-average window: a single
                // window at the very end is as noisy as any other.
                let keep = options.ma_width.max(fin.len() / 10);
                let tail = &fin[fin.len().saturating_sub(keep)..];
                let m = if tail.is_empty() {
                    f64::NAN
                } else {
                    tail.iter().sum::<f64>() / tail.len() as f64
                };
                (moving_average(l, options.ma_width), m)
            }
            None => (Vec::new(), f64::NAN),
        };
        let theory = theory_level(hyper.lr, hyper.batch_size, hyper.momentum);
        runs.push(RunAnalysis {
            traj,
            hyper,
            fit,
            rolling,
            local_ma,
            local_final,
            theory_level: theory,
        });
    }
    let pairs: Vec<(f64, f64)> = runs
        .iter()
        .map(|r| (r.local_final, r.theory_level))
        .collect();
    Ok(Analysis {
        theory_constant: fit_theory_constant(&pairs),
        runs,
        options,
    })
}

fn plot_err(e: ventral_report::PlotError) -> AnalysisError {
    AnalysisError::Invalid(e.to_string())
}

/// Write `exponent.csv`, `rolling.csv`, `local.csv` and the plots (`plots/`) into `dir`.
pub fn write(dir: &Path, a: &Analysis) -> Result<()> {
    use std::fmt::Write as _;
    use ventral_core::atomic::write_bytes_atomic;
    use ventral_report::{LinePlot, Series, Style, line_plot};
    let put = |name: &str, text: &str| -> Result<()> {
        let p = dir.join(name);
        write_bytes_atomic(&p, text.as_bytes()).map_err(|e| file_err(p.display(), e))
    };
    let c = a.theory_constant.unwrap_or(f64::NAN);
    let mut s = String::from(
        "run,exponent,ci_low,ci_high,stderr,intercept,r_squared,n_points,k_first,k_last,lr,batch_size,momentum,local_sq_final,local_sq_theory\n",
    );
    for r in &a.runs {
        let f = &r.fit;
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            csv_field(&r.traj.name),
            num(f.exponent),
            num(f.ci_low),
            num(f.ci_high),
            num(f.stderr),
            num(f.intercept),
            num(f.r_squared),
            f.n_points,
            num(f.k_first),
            num(f.k_last),
            num(r.hyper.lr),
            num(r.hyper.batch_size),
            num(r.hyper.momentum),
            num(r.local_final),
            num(c * r.theory_level),
        );
    }
    put("exponent.csv", &s)?;
    let mut s = String::from("run,k_first,k_last,exponent\n");
    for r in &a.runs {
        for (k0, k1, e) in &r.rolling {
            let _ = writeln!(
                s,
                "{},{},{},{}",
                csv_field(&r.traj.name),
                num(*k0),
                num(*k1),
                num(*e)
            );
        }
    }
    put("rolling.csv", &s)?;
    let w = a.options.ma_width;
    let mut s = String::from("run,k,local_sq,moving_average\n");
    for r in &a.runs {
        let Some(l) = &r.traj.local_sq else { continue };
        for (i, v) in l.iter().enumerate() {
            let ma = if i + 1 >= w {
                r.local_ma.get(i + 1 - w).copied().unwrap_or(f64::NAN)
            } else {
                f64::NAN
            };
            let _ = writeln!(
                s,
                "{},{},{},{}",
                csv_field(&r.traj.name),
                num(r.traj.k[i]),
                num(*v),
                num(ma)
            );
        }
    }
    put("local.csv", &s)?;

    let pd = dir.join("plots");
    std::fs::create_dir_all(&pd).map_err(|e| file_err(pd.display(), e))?;
    // Log–log displacement with the fitted line over the fitted range.
    let mut series = Vec::new();
    for r in &a.runs {
        let t = &r.traj;
        series.push(Series {
            name: format!("{} (c = {:.3})", t.name, r.fit.exponent),
            points: (0..t.k.len())
                .filter(|&i| t.k[i] > 0.0 && t.dist_sq[i] > 0.0)
                .map(|i| (t.k[i].log10(), t.dist_sq[i].log10()))
                .collect(),
            band: None,
            style: Style::Line,
        });
        let f = &r.fit;
        let line = |k: f64| {
            (
                k.log10(),
                (f.intercept + f.exponent * k.ln()) / std::f64::consts::LN_10,
            )
        };
        series.push(Series {
            name: String::new(),
            points: vec![line(f.k_first), line(f.k_last)],
            band: None,
            style: Style::Dashed,
        });
    }
    line_plot(
        &pd.join("displacement_loglog"),
        &LinePlot {
            title: "Global displacement ‖θ_k − θ₀‖² (dashed: power-law fit)".into(),
            x_label: "log10 steps since θ₀".into(),
            y_label: "log10 ‖θ_k − θ₀‖²".into(),
            series,
            y_range: None,
        },
    )
    .map_err(plot_err)?;
    let series: Vec<Series> = a
        .runs
        .iter()
        .filter(|r| !r.rolling.is_empty())
        .map(|r| Series {
            name: r.traj.name.clone(),
            points: r
                .rolling
                .iter()
                .map(|(k0, k1, e)| ((k0 * k1).sqrt().log10(), *e))
                .collect(),
            band: None,
            style: Style::Line,
        })
        .collect();
    if !series.is_empty() {
        line_plot(
            &pd.join("rolling_exponent"),
            &LinePlot {
                title: format!(
                    "Rolling exponent (windows of {} decades of k)",
                    a.options.window_decades
                ),
                x_label: "log10 steps since θ₀ (window centre)".into(),
                y_label: "exponent c".into(),
                series,
                y_range: None,
            },
        )
        .map_err(plot_err)?;
    }
    let mut series = Vec::new();
    for r in a.runs.iter().filter(|r| !r.local_ma.is_empty()) {
        let t = &r.traj;
        series.push(Series {
            name: r.traj.name.clone(),
            points: r
                .local_ma
                .iter()
                .enumerate()
                .filter(|(_, v)| **v > 0.0)
                .map(|(i, v)| (t.k[i + w - 1], v.log10()))
                .collect(),
            band: None,
            style: Style::Line,
        });
        let level = c * r.theory_level;
        if level > 0.0 && level.is_finite() {
            let (k0, k1) = (t.k[w - 1], t.k[t.k.len() - 1]);
            series.push(Series {
                name: String::new(),
                points: vec![(k0, level.log10()), (k1, level.log10())],
                band: None,
                style: Style::Dashed,
            });
        }
    }
    if !series.is_empty() {
        line_plot(
            &pd.join("local_displacement"),
            &LinePlot {
                title: format!(
                    "Local displacement ‖θ_(k+1) − θ_k‖², moving average of {w} (dashed: C·η²/(S(1 − β²)))"
                ),
                x_label: "steps since θ₀".into(),
                y_label: "log10 ‖δ_k‖²".into(),
                series,
                y_range: None,
            },
        )
        .map_err(plot_err)?;
    }
    projection_outputs(dir, &pd, a)?;
    sweep_plots(&pd, a, c)
}

/// With projections onto Hessian eigenvectors: `spectrum.csv` (periodogram of each projected
/// position series; frequency in cycles per optimiser step) and per run a phase-space plot
/// (position vs velocity per direction, moving averages of `ma_width`) and a spectrum plot.
fn projection_outputs(dir: &Path, pd: &Path, a: &Analysis) -> Result<()> {
    use std::fmt::Write as _;
    use ventral_report::{LinePlot, Series, Style, line_plot};
    if a.runs.iter().all(|r| r.traj.proj_pos.is_empty()) {
        return Ok(());
    }
    let w = a.options.ma_width.max(1);
    let mut s = String::from("run,direction,frequency_per_step,power\n");
    for r in &a.runs {
        let t = &r.traj;
        if t.proj_pos.is_empty() {
            continue;
        }
        let n = t.k.len();
        let dk = if n > 1 {
            (t.k[n - 1] - t.k[0]) / (n - 1) as f64
        } else {
            1.0
        };
        let mut phase = Vec::new();
        let mut spec = Vec::new();
        for (i, (pos, vel)) in t.proj_pos.iter().zip(&t.proj_vel).enumerate() {
            let (pm, vm) = (moving_average(pos, w), moving_average(vel, w));
            phase.push(Series {
                name: format!("e{i}"),
                points: pm.iter().zip(&vm).map(|(x, y)| (*x, *y)).collect(),
                band: None,
                style: Style::Line,
            });
            let (f, pw) = periodogram(pos);
            for (fv, p) in f.iter().zip(&pw) {
                let _ = writeln!(s, "{},{i},{},{}", csv_field(&t.name), num(fv / dk), num(*p));
            }
            spec.push(Series {
                name: format!("e{i}"),
                points: f
                    .iter()
                    .zip(&pw)
                    .skip(1)
                    .filter(|(_, p)| **p > 0.0)
                    .map(|(fv, p)| (fv / dk, p.log10()))
                    .collect(),
                band: None,
                style: Style::Line,
            });
        }
        let stem = crate::output::sanitize(&t.name);
        line_plot(
            &pd.join(format!("phase_{stem}")),
            &LinePlot {
                title: format!(
                    "{}: phase space per Hessian eigendirection (moving average of {w})",
                    t.name
                ),
                x_label: "position eᵢ·(θ_k − θ₀)".into(),
                y_label: "velocity eᵢ·δ_k".into(),
                series: phase,
                y_range: None,
            },
        )
        .map_err(plot_err)?;
        line_plot(
            &pd.join(format!("spectrum_{stem}")),
            &LinePlot {
                title: format!("{}: power spectrum of the projected positions", t.name),
                x_label: "frequency (cycles per step)".into(),
                y_label: "log10 power".into(),
                series: spec,
                y_range: None,
            },
        )
        .map_err(plot_err)?;
    }
    let p = dir.join("spectrum.csv");
    ventral_core::atomic::write_bytes_atomic(&p, s.as_bytes()).map_err(|e| file_err(p.display(), e))
}

/// Across runs (the anchor's Fig. 3 form): final local displacement and exponent against each
/// hyperparameter that varies, one line per combination of the others, with the theory curve.
fn sweep_plots(pd: &Path, a: &Analysis, c: f64) -> Result<()> {
    use ventral_report::{LinePlot, Series, Style, line_plot};
    let get = |h: &Hyper, i: usize| [h.lr, h.batch_size, h.momentum][i];
    let names = ["lr", "batch_size", "momentum"];
    for (hi, hname) in names.iter().enumerate() {
        let mut vals: Vec<f64> = a
            .runs
            .iter()
            .map(|r| get(&r.hyper, hi))
            .filter(|v| v.is_finite())
            .collect();
        vals.sort_by(f64::total_cmp);
        vals.dedup();
        if vals.len() < 2 {
            continue;
        }
        // Group runs by the other hyperparameters.
        let mut groups: Vec<(String, Vec<&RunAnalysis>)> = Vec::new();
        for r in &a.runs {
            let key: Vec<String> = (0..3)
                .filter(|&j| j != hi)
                .map(|j| format!("{}={}", names[j], get(&r.hyper, j)))
                .collect();
            let key = key.join(", ");
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, v)) => v.push(r),
                None => groups.push((key, vec![r])),
            }
        }
        let mut local = Vec::new();
        let mut expo = Vec::new();
        for (key, mut rs) in groups {
            rs.sort_by(|x, y| get(&x.hyper, hi).total_cmp(&get(&y.hyper, hi)));
            local.push(Series {
                name: key.clone(),
                points: rs
                    .iter()
                    .filter(|r| r.local_final > 0.0)
                    .map(|r| (get(&r.hyper, hi), r.local_final.log10()))
                    .collect(),
                band: None,
                style: Style::Points,
            });
            if c.is_finite() && !rs.is_empty() {
                // The theory curve over the swept range, the other hyperparameters fixed.
                let (lo, hi_v) = (get(&rs[0].hyper, hi), get(&rs[rs.len() - 1].hyper, hi));
                let base = rs[0].hyper;
                local.push(Series {
                    name: String::new(),
                    points: (0..=50)
                        .map(|j| lo + (hi_v - lo) * j as f64 / 50.0)
                        .filter_map(|x| {
                            let mut h = base;
                            match hi {
                                0 => h.lr = x,
                                1 => h.batch_size = x,
                                _ => h.momentum = x,
                            }
                            let t = c * theory_level(h.lr, h.batch_size, h.momentum);
                            (t > 0.0 && t.is_finite()).then(|| (x, t.log10()))
                        })
                        .collect(),
                    band: None,
                    style: Style::Dashed,
                });
            }
            expo.push(Series {
                name: key,
                points: rs
                    .iter()
                    .map(|r| (get(&r.hyper, hi), r.fit.exponent))
                    .collect(),
                band: Some(
                    rs.iter()
                        .map(|r| (get(&r.hyper, hi), r.fit.ci_low, r.fit.ci_high))
                        .collect(),
                ),
                style: Style::Line,
            });
        }
        line_plot(
            &pd.join(format!("sweep_local_{hname}")),
            &LinePlot {
                title: format!(
                    "Final local displacement vs {hname} (dashed: C·η²/(S(1 − β²)), C = {c:.3e})"
                ),
                x_label: hname.to_string(),
                y_label: "log10 ‖δ‖² (mean of the last window)".into(),
                series: local,
                y_range: None,
            },
        )
        .map_err(plot_err)?;
        line_plot(
            &pd.join(format!("sweep_exponent_{hname}")),
            &LinePlot {
                title: format!("Diffusion exponent vs {hname} (band: 95 % interval)"),
                x_label: hname.to_string(),
                y_label: "exponent c".into(),
                series: expo,
                y_range: None,
            },
        )
        .map_err(plot_err)?;
    }
    Ok(())
}
