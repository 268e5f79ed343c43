//! `diffusion` against SciPy/NumPy: exponent fits under the anchor's two protocols, their
//! intervals, rolling exponents and moving averages.
//!
//! Fixtures from `scripts/make_diffusion_fixtures.py` (SciPy 1.17.1, NumPy 2):
//! ```python
//! r = stats.linregress(np.log(k), np.log(dist))          # after skip_first / fit_last
//! t = stats.t.ppf(0.975, len(k) - 2)
//! ci = (r.slope - t * r.stderr, r.slope + t * r.stderr)
//! # rolling: windows [lo, lo·10^0.5], lo = k_min·10^(j/10), fitted on the points inside
//! rolling = [stats.linregress(np.log(k[w]), np.log(d[w])).slope for w in windows]
//! ma = np.convolve(local, np.ones(15) / 15, "valid")
//! power = np.abs(np.fft.rfft(pos - pos.mean(), nfft)) ** 2 / n     # nfft: next power of 2
//! ```

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use ventral_analysis::diffusion::{
    FitOptions, Hyper, Options, analyse, fit_exponent, moving_average, read_csv, rolling_exponent,
};

fn dir() -> PathBuf {
    ventral_core::fixtures::crate_dir(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/diffusion")
}

fn close(got: f64, want: f64, tol: f64, what: &str) {
    assert!(
        (got - want).abs() <= tol * want.abs().max(1e-300),
        "{what}: {got} vs SciPy {want}"
    );
}

#[test]
fn fits_match_scipy() {
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir().join("expected.json")).unwrap()).unwrap();
    for name in ["a", "b"] {
        let t = read_csv(&dir().join(format!("{name}.csv")), name).unwrap();
        let e = &expected[name];
        for (proto, opt) in [
            (
                "sweep",
                FitOptions {
                    skip_first: 1,
                    fit_last: 1.0,
                },
            ),
            (
                "fig1",
                FitOptions {
                    skip_first: 21,
                    fit_last: 2.0 / 3.0,
                },
            ),
        ] {
            let f = fit_exponent(&t, &opt).unwrap();
            let w = &e["fits"][proto];
            let g = |k: &str| w[k].as_f64().unwrap();
            let what = |k: &str| format!("{name}/{proto}/{k}");
            assert_eq!(
                f.n_points as u64,
                w["n_points"].as_u64().unwrap(),
                "{name}/{proto}"
            );
            close(f.exponent, g("exponent"), 1e-12, &what("exponent"));
            close(f.intercept, g("intercept"), 1e-12, &what("intercept"));
            close(f.stderr, g("stderr"), 1e-8, &what("stderr"));
            close(f.ci_low, g("ci_low"), 1e-9, &what("ci_low"));
            close(f.ci_high, g("ci_high"), 1e-9, &what("ci_high"));
            close(f.r_squared, g("r_squared"), 1e-12, &what("r_squared"));
            assert_eq!(f.k_first, g("k_first"));
            assert_eq!(f.k_last, g("k_last"));
        }
        let roll = rolling_exponent(&t, 0.5, 10);
        let want = e["rolling"].as_array().unwrap();
        assert_eq!(roll.len(), want.len());
        for (r, w) in roll.iter().zip(want) {
            close(r.2, w.as_f64().unwrap(), 1e-10, "rolling exponent");
        }
        let ma = moving_average(t.local_sq.as_ref().unwrap(), 15);
        let want = e["ma15"].as_array().unwrap();
        assert_eq!(ma.len(), want.len());
        for (m, w) in ma.iter().zip(want) {
            close(*m, w.as_f64().unwrap(), 1e-13, "moving average");
        }
        let (freq, power) = ventral_analysis::diffusion::periodogram(&t.proj_pos[0]);
        let want = e["periodogram"].as_array().unwrap();
        let nfft = e["nfft"].as_u64().unwrap() as f64;
        assert_eq!(power.len(), want.len());
        let peak = want.iter().map(|w| w.as_f64().unwrap()).fold(0.0, f64::max);
        for (f, (p, w)) in power.iter().zip(want).enumerate() {
            // Absolute tolerance relative to the peak: near-zero bins carry round-off.
            assert!(
                (p - w.as_f64().unwrap()).abs() <= 1e-10 * peak,
                "bin {f}: {p} vs {w}"
            );
            assert_eq!(freq[f], f as f64 / nfft);
        }
        assert_eq!(t.proj_vel.len(), 1);
        let a = analyse(vec![(t, Hyper::UNKNOWN)], Options::default()).unwrap();
        close(
            a.runs[0].local_final,
            e["local_final"].as_f64().unwrap(),
            1e-13,
            "final local displacement",
        );
        assert!(a.theory_constant.is_none());
    }
}

#[test]
fn theory_constant_and_outputs() {
    // Runs whose final local displacement is exactly 2·η²/(S(1 − β²)) give C = 2.
    let mut trajs = Vec::new();
    for (lr, s, b) in [(0.1, 32.0, 0.9), (0.05, 64.0, 0.9), (0.1, 32.0, 0.5)] {
        let level = 2.0 * lr * lr / (s * (1.0 - b * b));
        let k: Vec<f64> = (0..40).map(|i| i as f64).collect();
        trajs.push((
            ventral_analysis::diffusion::Trajectory {
                name: format!("lr={lr},S={s},m={b}"),
                dist_sq: k.iter().map(|k| 1e-3 * k.powf(0.8)).collect(),
                local_sq: Some(vec![level; 40]),
                k,
                ..Default::default()
            },
            Hyper {
                lr,
                batch_size: s,
                momentum: b,
            },
        ));
    }
    let a = analyse(trajs, Options::default()).unwrap();
    close(a.theory_constant.unwrap(), 2.0, 1e-12, "C");
    let d = tempfile::tempdir().unwrap();
    ventral_analysis::diffusion::write(d.path(), &a).unwrap();
    let csv = std::fs::read_to_string(d.path().join("exponent.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4);
    assert!(csv.starts_with("run,exponent,ci_low,ci_high,"));
    // Names with commas are quoted.
    assert!(csv.contains("\"lr=0.1,S=32,m=0.9\",0.8"), "{csv}");
    for p in [
        "plots/displacement_loglog.png",
        "plots/rolling_exponent.svg",
        "plots/local_displacement.png",
        "plots/sweep_local_lr.png",
        "plots/sweep_exponent_momentum.svg",
        "rolling.csv",
        "local.csv",
    ] {
        assert!(d.path().join(p).is_file(), "{p}");
    }
}

#[test]
fn bad_trajectories_name_the_file_and_line() {
    let d = tempfile::tempdir().unwrap();
    for (text, want) in [
        ("step,loss\n1,2\n", "no dist_sq column"),
        ("dist_sq\n1\n", "no k or step column"),
        (
            "step,dist_sq\n1,0.1\n1,0.2\n",
            "line 3: steps must increase",
        ),
        (
            "step,dist_sq\n1,0.1\n2,x\n",
            "line 3: dist_sq 'x' is not a number",
        ),
        ("step,dist_sq\n1,nan\n", "line 2"),
        ("step,dist_sq\n", "no rows"),
    ] {
        let p = d.path().join("t.csv");
        std::fs::write(&p, text).unwrap();
        let e = read_csv(&p, "t").unwrap_err().to_string();
        assert!(e.contains("t.csv") && e.contains(want), "{text:?}: {e}");
    }
    let p = d.path().join("short.csv");
    std::fs::write(&p, "step,dist_sq\n0,0\n1,0.1\n2,0.2\n").unwrap();
    let t = read_csv(&p, "short").unwrap();
    let e = fit_exponent(&t, &FitOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("at least 3"), "{e}");
}

/// SplitMix64 → standard normals (Box–Muller), seeded.
struct Normal(u64, Option<f64>);

impl Normal {
    fn new(seed: u64) -> Self {
        Normal(seed, None)
    }
    fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        ((z >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn next(&mut self) -> f64 {
        if let Some(v) = self.1.take() {
            return v;
        }
        let (u, v) = (self.uniform(), self.uniform());
        let r = (-2.0 * u.ln()).sqrt();
        let t = 2.0 * std::f64::consts::PI * v;
        self.1 = Some(r * t.sin());
        r * t.cos()
    }
}

/// ‖θ_k − θ₀‖² of `dims` independent walks θ_{k+1} = a·θ_k + drift + noise, for k < n.
fn walk(n: usize, dims: usize, a: f64, drift: f64, noise: f64, seed: u64) -> Trajectory {
    let mut g = Normal::new(seed);
    let mut theta = vec![0.0; dims];
    let mut k = Vec::with_capacity(n);
    let mut dist = Vec::with_capacity(n);
    for i in 0..n {
        k.push(i as f64);
        dist.push(theta.iter().map(|x| x * x).sum());
        for x in theta.iter_mut() {
            *x = a * *x + drift + noise * g.next();
        }
    }
    Trajectory {
        name: "walk".into(),
        k,
        dist_sq: dist,
        ..Default::default()
    }
}

use ventral_analysis::diffusion::{Langevin, Trajectory};

#[test]
fn known_answers_random_walk_ballistic_and_ou() {
    let opt = FitOptions::default();
    // Brownian: E‖θ_k − θ₀‖² = k·d → c = 1.
    let f = fit_exponent(&walk(2000, 400, 1.0, 0.0, 1.0, 1), &opt).unwrap();
    assert!(
        (f.exponent - 1.0).abs() < 0.03,
        "random walk c = {}",
        f.exponent
    );
    assert!(f.ci_low < f.exponent && f.exponent < f.ci_high);
    // Ballistic: constant velocity (small noise) → c = 2.
    let f = fit_exponent(&walk(2000, 50, 1.0, 0.1, 0.001, 2), &opt).unwrap();
    assert!(
        (f.exponent - 2.0).abs() < 0.01,
        "ballistic c = {}",
        f.exponent
    );
    // Ornstein–Uhlenbeck: diffusive early, flat once the spread saturates (c → 0).
    let t = walk(8000, 800, 0.995, 0.0, 1.0, 3);
    let roll = rolling_exponent(&t, 0.5, 10);
    let early = roll[0].2;
    let late = roll[roll.len() - 1].2;
    assert!((early - 1.0).abs() < 0.2, "OU early c = {early}");
    assert!(late.abs() < 0.1, "OU late c = {late}");
    let late_fit = fit_exponent(
        &t,
        &FitOptions {
            skip_first: 1,
            fit_last: 0.5,
        },
    )
    .unwrap();
    // Successive points are autocorrelated (relaxation time 100 steps), so the OLS interval
    // (which assumes independent residuals) is too narrow to contain 0 here; the estimate is
    // near 0 all the same.
    assert!(late_fit.exponent.abs() < 0.15, "{late_fit:?}");
}

#[test]
fn linear_regression_sgd_momentum_stationary_spread_matches_kunin() {
    // SGD + momentum (PyTorch's rule v ← βv + g, θ ← θ − ηv) on a quadratic with eigenvalue λ,
    // weight decay wd and gradient noise of variance σ²λ/S (linear regression's H/S). Small η
    // (η(λ+wd)/(1−β) = 0.011) so that the continuous-time stationary law holds to about 1 %.
    let l = Langevin {
        lambda: 1.0,
        weight_decay: 0.1,
        lr: 1e-3,
        momentum: 0.9,
        batch_size: 8.0,
    };
    let sigma_sq = 1.0;
    let noise = (sigma_sq * l.lambda / l.batch_size).sqrt();
    let dims = 16;
    let (burn, steps) = (20_000, 400_000);
    let mut g = Normal::new(7);
    let (mut th, mut v) = (vec![0.0f64; dims], vec![0.0f64; dims]);
    let (mut s_th, mut s_v) = (0.0, 0.0);
    for i in 0..burn + steps {
        for d in 0..dims {
            let grad = (l.lambda + l.weight_decay) * th[d] + noise * g.next();
            v[d] = l.momentum * v[d] + grad;
            th[d] -= l.lr * v[d];
            if i >= burn {
                s_th += th[d] * th[d];
                s_v += v[d] * v[d];
            }
        }
    }
    let n = (steps * dims) as f64;
    let (var_th, var_v) = (s_th / n, s_v / n);
    let (want_th, want_v) = (l.position_variance(sigma_sq), l.velocity_variance(sigma_sq));
    assert!(
        (var_th / want_th - 1.0).abs() < 0.05,
        "position variance {var_th} vs theory {want_th}"
    );
    assert!(
        (var_v / want_v - 1.0).abs() < 0.05,
        "velocity variance {var_v} vs theory {want_v}"
    );
    // γ = 52.6 > ω = 34.0 here; large lr and momentum near 1 oscillate.
    use ventral_analysis::diffusion::Damping;
    assert_eq!(l.damping(), Damping::Over);
    let fast = Langevin {
        lr: 0.1,
        momentum: 0.99,
        ..l
    };
    assert_eq!(fast.damping(), Damping::Under);
}

#[test]
fn linear_regression_minibatch_sgd_momentum_spread_matches_kunin() {
    // Linear regression y = xᵀw* + ε (x ~ N(0, diag λ), ε ~ N(0, σ²)) trained with minibatch
    // SGD + momentum (PyTorch's rule), fresh samples every step. Near w* the minibatch gradient
    // noise has covariance σ²H/S, so along eigendirection i the stationary variance of w is
    // Kunin et al.'s η/(2S(1−β)) · σ² (λᵢ/(λᵢ + wd) with wd = 0).
    let lams: [f64; 4] = [1.0, 0.5, 0.25, 0.1];
    let (lr, beta, s_batch, sigma) = (0.005, 0.9, 8usize, 1.0f64);
    let mut g = Normal::new(21);
    let mut w = [0.0f64; 4]; // w − w*
    let mut v = [0.0f64; 4];
    let (burn, steps) = (20_000usize, 1_000_000usize);
    let mut sq = [0.0f64; 4];
    let mut x = [0.0f64; 4];
    for it in 0..burn + steps {
        let mut grad = [0.0f64; 4];
        for _ in 0..s_batch {
            for (xi, l) in x.iter_mut().zip(&lams) {
                *xi = l.sqrt() * g.next();
            }
            let resid: f64 = x.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>() - sigma * g.next();
            for (gi, xi) in grad.iter_mut().zip(&x) {
                *gi += xi * resid / s_batch as f64;
            }
        }
        for i in 0..4 {
            v[i] = beta * v[i] + grad[i];
            w[i] -= lr * v[i];
            if it >= burn {
                sq[i] += w[i] * w[i];
            }
        }
    }
    let mut ratios = Vec::new();
    for (i, &l) in lams.iter().enumerate() {
        let theory = Langevin {
            lambda: l,
            weight_decay: 0.0,
            lr,
            momentum: beta,
            batch_size: s_batch as f64,
        }
        .position_variance(sigma * sigma);
        let got = sq[i] / steps as f64;
        ratios.push(got / theory);
        assert!(
            (got / theory - 1.0).abs() < 0.12,
            "direction {i} (λ = {l}): variance {got} vs theory {theory}"
        );
    }
    let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
    println!("variance / theory per direction: {ratios:?}");
    assert!((mean - 1.0).abs() < 0.06, "mean ratio {mean}: {ratios:?}");
}
