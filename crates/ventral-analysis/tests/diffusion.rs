//! `diffusion` against SciPy/NumPy: exponent fits under the anchor's two protocols, their
//! intervals, rolling exponents and moving averages.
//!
//! Fixtures from `scripts/make_diffusion_fixtures.py` (SciPy 1.17.1, NumPy 2):
//! ```python
//! r = stats.linregress(np.log(k), np.log(dist))          # after skip_first / fit_last
//! t = stats.t.ppf(0.975, len(k) - 2)
//! ci = (r.slope - t * r.stderr, r.slope + t * r.stderr)
//! rolling = [stats.linregress(lk[i:i+10], ld[i:i+10]).slope for i in range(len(lk) - 9)]
//! ma = np.convolve(local, np.ones(15) / 15, "valid")
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
        let roll = rolling_exponent(&t, 10);
        let want = e["rolling10"].as_array().unwrap();
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
