//! Behavioural consistency against Brain-Score's own code (brainscore-vision 2.4.2, run at
//! development time by `scripts/make_behaviour_fixtures.py`):
//!
//! ```python
//! # probabilities: Brain-Score's ProbabilitiesClassifier (behavior.py), tol tightened
//! scaler = sklearn.preprocessing.StandardScaler().fit(x_fit)
//! clf = LogisticRegression(multi_class="multinomial", solver="newton-cg", C=1e-3, tol=1e-12)
//! probs = clf.fit(scaler.transform(x_fit), labels).predict_proba(scaler.transform(x_test))
//! # metrics: brainscore_vision.metrics.i1i2.metric
//! for ctor in (I1, I1n, I2, I2n):
//!     metric = ctor()
//!     score = metric(source_probabilities, target_trials)        # raw per split
//!     ceiling = metric.ceiling(target_trials, skipna=True)       # per split
//!     ceiled = score.raw / sqrt(ceiling.raw)                     # benchmark's ceil_score
//! norm_ppf: scipy.stats.norm.ppf
//! ```

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use serde_json::Value;
use ventral_neural::behaviour::{
    Metric, Target, TargetHalves, Trials, consistency, cross_predict, metric_matrix,
    model_response_matrix, stratified_folds,
};
use ventral_neural::logistic::{LogisticConfig, fit_predict_proba};
use ventral_neural::ost::norm_ppf;

fn fixture() -> Value {
    let p = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/brainscore_behaviour.json"
    );
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap_or(f64::NAN))
        .collect()
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

fn trials(c: &Value) -> Trials {
    let t = &c["trials"];
    Trials {
        stimulus_id: strs(&t["stimulus_id"]),
        sample_obj: strs(&t["sample_obj"]),
        dist_obj: strs(&t["dist_obj"]),
        choice: strs(&t["choice"]),
    }
}

/// The fixture's probabilities [test images in fixture order, classes in label order] as
/// [target.images, target.objects].
fn aligned_probs(c: &Value, target: &Target, probs: &[f64]) -> Vec<f64> {
    let order = strs(&c["objects_in_label_order"]);
    let k = order.len();
    let ids = strs(&c["test"]["stimulus_id"]);
    let row: HashMap<&str, usize> = ids
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i))
        .collect();
    let mut out = Vec::new();
    for img in &target.images {
        for obj in &target.objects {
            let col = order.iter().position(|o| o == obj).unwrap();
            out.push(probs[row[img.as_str()] * k + col]);
        }
    }
    out
}

#[test]
fn norm_ppf_equals_scipy() {
    for pair in fixture()["norm_ppf"].as_array().unwrap() {
        let (p, want) = (pair[0].as_f64().unwrap(), pair[1].as_f64().unwrap());
        let got = norm_ppf(p);
        assert!(
            (got - want).abs() <= 1e-13 * want.abs().max(1.0),
            "ppf({p}) = {got}, SciPy {want}"
        );
    }
}

#[test]
fn decoder_probabilities_equal_sklearn() {
    for c in fixture()["cases"].as_array().unwrap() {
        let d = c["fit"]["d"].as_u64().unwrap() as usize;
        let order = strs(&c["objects_in_label_order"]);
        let to_f32 = |v: &Value| f64s(v).into_iter().map(|x| x as f32).collect::<Vec<f32>>();
        let (xf, xt) = (to_f32(&c["fit"]["x"]), to_f32(&c["test"]["x"]));
        let y: Vec<usize> = strs(&c["fit"]["label"])
            .iter()
            .map(|l| order.iter().position(|o| o == l).unwrap())
            .collect();
        let (n, m, k) = (xf.len() / d, xt.len() / d, order.len());
        let got = fit_predict_proba(
            n,
            |i| &xf[i * d..(i + 1) * d],
            &y,
            k,
            m,
            |i| &xt[i * d..(i + 1) * d],
            d,
            &LogisticConfig::default(),
        )
        .unwrap();
        let want = f64s(&c["probabilities"]);
        let err = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        // Features pass through f32 here (the fixture's are f64); the optimum moves < 1e-8.
        assert!(
            err < 1e-8,
            "{}: max |Δp| = {err:e} (n {n}, p {d})",
            c["name"]
        );
    }
}

#[test]
fn metrics_equal_brainscore() {
    for c in fixture()["cases"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let target = Target::new(&trials(c), name).unwrap();
        let probs = aligned_probs(c, &target, &f64s(&c["probabilities"]));
        let halves = TargetHalves::new(&target, &Metric::ALL, 2, 0);
        let k = target.objects.len();
        let r = model_response_matrix(&probs, &target.truth, k);
        for (cons, m) in consistency(&probs, &target, &halves)
            .iter()
            .zip(Metric::ALL)
        {
            let want = &c["metrics"][m.name()];
            let close = |a: f64, b: f64| (a - b).abs() <= 1e-10 * b.abs().max(1.0);
            // The model's matrix, cell for cell (NaN where Brain-Score has NaN).
            let src = metric_matrix(&r, &target.truth, k, m);
            let wsrc = f64s(&want["source_matrix"]);
            assert_eq!(src.len(), wsrc.len(), "{name} {}", m.name());
            for (i, (a, b)) in src.iter().zip(&wsrc).enumerate() {
                assert!(
                    (a.is_nan() && b.is_nan()) || close(*a, *b),
                    "{name} {} cell {i}: {a} vs {b}",
                    m.name()
                );
            }
            for (what, got, exp) in [
                ("raw", &cons.raw, f64s(&want["raw"])),
                ("ceiling", &cons.ceiling, f64s(&want["ceiling"])),
            ] {
                for (a, b) in got.iter().zip(&exp) {
                    assert!(close(*a, *b), "{name} {} {what}: {a} vs {b}", m.name());
                }
            }
            let (center, error) = cons.center_error();
            assert!(close(center, want["ceiled_center"].as_f64().unwrap()));
            assert!(close(error, want["ceiled_error"].as_f64().unwrap()));
        }
    }
}

/// The same trials read from a BrainIO behavioural assembly written by Brain-Score's
/// `write_netcdf` (string data = choices) and from the JSON fixture.
#[test]
fn brainio_behavioural_assembly_reads_as_trials() {
    let p = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/brainscore_trials.nc"
    );
    let got = Trials::read(std::path::Path::new(p)).unwrap();
    assert_eq!(got, trials(&fixture()["cases"][0]));
}

#[test]
fn bad_trials_are_named() {
    let mut t = Trials {
        stimulus_id: vec!["a".into(), "b".into()],
        sample_obj: vec!["dog".into(), "cat".into()],
        dist_obj: vec!["cat".into(), "cat".into()],
        choice: vec!["dog".into(), "cat".into()],
    };
    assert!(t.check().unwrap_err().contains("both `cat`"));
    t.dist_obj[1] = "dog".into();
    t.choice[0] = "cow".into();
    assert!(t.check().unwrap_err().contains("choice `cow`"));
    t.choice[0] = "dog".into();
    t.check().unwrap();
    // Image `a` shown once as a dog and once as a cat.
    t.stimulus_id[1] = "a".into();
    let e = Target::new(&t, "trials.csv").unwrap_err().to_string();
    assert!(
        e.contains("trials.csv") && e.contains("sample of both"),
        "{e}"
    );
}

/// Features that carry the subject's per-image difficulty give a consistency near the
/// ceiling; features unrelated to it give about 0 — out-of-fold decoding, as the CLI runs it.
#[test]
fn generating_features_are_consistent_and_random_ones_are_not() {
    use rand::Rng;
    let (k, per, p) = (4usize, 30usize, 20usize);
    let n = k * per;
    let mut rng = ventral_core::rng::stream(7, "test", &[]);
    let normal = |rng: &mut ventral_core::rng::ChaCha8Rng| ventral_neural::synth::normal(rng);
    let unif = |rng: &mut ventral_core::rng::ChaCha8Rng| {
        (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    };
    let truth: Vec<usize> = (0..n).map(|i| i % k).collect();
    let means: Vec<Vec<f64>> = (0..k)
        .map(|_| (0..p).map(|_| normal(&mut rng)).collect())
        .collect();
    let gain: Vec<f64> = (0..n).map(|_| 0.1 + 1.5 * unif(&mut rng)).collect();
    let feats: Vec<f32> = (0..n)
        .flat_map(|i| {
            let m = &means[truth[i]];
            let g = gain[i];
            (0..p)
                .map(|j| (g * m[j] + 0.5 * normal(&mut rng)) as f32)
                .collect::<Vec<_>>()
        })
        .collect();
    let random: Vec<f32> = (0..n * p).map(|_| normal(&mut rng) as f32).collect();
    // Subject: choose the sample with a probability rising with the image's gain.
    let mut t = Trials {
        stimulus_id: vec![],
        sample_obj: vec![],
        dist_obj: vec![],
        choice: vec![],
    };
    for i in 0..n {
        for c in (0..k).filter(|&c| c != truth[i]) {
            let pc = 1.0 / (1.0 + (-(3.0 * gain[i] - 1.0)).exp());
            for _ in 0..20 {
                t.stimulus_id.push(format!("img{i:03}"));
                t.sample_obj.push(format!("o{}", truth[i]));
                t.dist_obj.push(format!("o{c}"));
                let hit = unif(&mut rng) < pc;
                t.choice.push(if hit {
                    format!("o{}", truth[i])
                } else {
                    format!("o{c}")
                });
            }
        }
    }
    let target = Target::new(&t, "synthetic").unwrap();
    let halves = TargetHalves::new(&target, &[Metric::I1n], 2, 0);
    assert!(
        halves.ceiling.iter().all(|c| c[0] > 0.5),
        "{:?}",
        halves.ceiling
    );
    // target.images are img000.. in order, i.e. row i.
    let folds = stratified_folds(&target.truth, k, 5, 1);
    let score = |x: &[f32]| {
        let probs = cross_predict(
            n,
            p,
            |i| &x[i * p..(i + 1) * p],
            &target.truth,
            k,
            &folds,
            5,
            &LogisticConfig::default(),
        )
        .unwrap();
        consistency(&probs, &target, &halves)[0].center_error().0
    };
    let (good, bad) = (score(&feats), score(&random));
    assert!(good > 0.6, "generating features: {good}");
    assert!(bad.abs() < 0.3, "random features: {bad}");
}
