//! Object solution times equal to Brain-Score's own `OSTCorrelation`, split by split, and its
//! decoder's initial weights bit for bit.
//!
//! Fixture: `scripts/make_ost_fixtures.py`, run with brainscore-vision 2.4.2 and
//! tensorflow-cpu 2.21 (Keras 3.15) in one venv (recipe in the script). In short:
//! ```python
//! w = tf.compat.v1.keras.initializers.VarianceScaling(seed=0)(shape, dtype=tf.float32)
//! clf = TFProbabilitiesClassifier(init_lr=lr); clf.fit(x[:120], labels[:120])
//! probs = clf.predict_proba(x[120:])            # lr 1e-4 (Brain-Score's) and 1e-2
//! score = OSTCorrelation()(source, target_osts)   # compute_osts / i1 / correlate wrapped to
//!                                                 # keep each split's test images, i1, OSTs, r
//! ```
//! on 150 images of 5 objects × 12 float32 features × 4 bins (70–110 ms).

#![allow(clippy::unwrap_used)]

use serde_json::Value;
use ventral_neural::numpy_rng::shuffle_split_test;
use ventral_neural::ost::{DecoderConfig, brainscore_osts, decode_probs};
use ventral_neural::tf_random::variance_scaling_fan_in;

fn fixture() -> Value {
    let p = ventral_core::fixtures::crate_dir(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/brainscore_ost.json");
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap_or(f64::NAN))
        .collect()
}

struct Recording {
    xs: Vec<Vec<f64>>,
    d: usize,
    codes: Vec<usize>,
    classes: Vec<String>,
    times: Vec<f64>,
    target: Vec<f64>,
    thresholds: Vec<f64>,
}

fn recording(f: &Value) -> Recording {
    let r = &f["recording"];
    let shape: Vec<usize> = r["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let (nb, n, d) = (shape[0], shape[1], shape[2]);
    let bits: Vec<f64> = r["features_bits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| f64::from(f32::from_bits(v.as_u64().unwrap() as u32)))
        .collect();
    let xs = (0..nb)
        .map(|b| bits[b * n * d..(b + 1) * n * d].to_vec())
        .collect();
    let names: Vec<String> = r["object_name"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let mut classes = names.clone();
    classes.sort();
    classes.dedup();
    let codes = names
        .iter()
        .map(|l| classes.iter().position(|c| c == l).unwrap())
        .collect();
    Recording {
        xs,
        d,
        codes,
        classes,
        times: f64s(&r["time_bin_start"]),
        target: f64s(&r["target_ost"]),
        thresholds: f64s(&r["i1_threshold"]),
    }
}

#[test]
fn keras_variance_scaling_draws_equal_tensorflow_bit_for_bit() {
    let f = fixture();
    for case in f["variance_scaling"].as_array().unwrap() {
        let shape: Vec<usize> = case["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        let want: Vec<u32> = case["bits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        let got: Vec<u32> = variance_scaling_fan_in(shape[0], shape[1], 0)
            .iter()
            .map(|v| v.to_bits())
            .collect();
        assert_eq!(got.len(), want.len(), "{shape:?}");
        let differ: Vec<usize> = (0..want.len()).filter(|&i| got[i] != want[i]).collect();
        assert!(
            differ.is_empty(),
            "{shape:?}: {} of {} values differ, first at {}: {} vs {}",
            differ.len(),
            want.len(),
            differ[0],
            f32::from_bits(got[differ[0]]),
            f32::from_bits(want[differ[0]])
        );
    }
}

#[test]
fn decoder_probabilities_equal_tfprobabilitiesclassifier() {
    let f = fixture();
    let r = recording(&f);
    let dec = &f["decoder"];
    let b = r
        .times
        .iter()
        .position(|&t| t == dec["bin_start"].as_f64().unwrap())
        .unwrap();
    let train: Vec<usize> = (0..120).collect();
    let test: Vec<usize> = (120..150).collect();
    let c = r.classes.len();
    for fit in dec["fits"].as_array().unwrap() {
        let lr = fit["lr"].as_f64().unwrap();
        let cfg = DecoderConfig {
            lr,
            ..DecoderConfig::brainscore()
        };
        let got = decode_probs(&r.xs[b], r.d, &r.codes, c, &train, &test, &cfg, 0, &[]);
        let choice: Vec<usize> = fit["choice"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                r.classes
                    .iter()
                    .position(|c| c == v.as_str().unwrap())
                    .unwrap()
            })
            .collect();
        let want = f64s(&fit["probs"]);
        let mut worst = 0.0f64;
        for t in 0..test.len() {
            for (k, &code) in choice.iter().enumerate() {
                worst = worst.max((got[t * c + code] - want[t * choice.len() + k]).abs());
            }
        }
        // TensorFlow trains in float32, ventral in float64.
        eprintln!("lr {lr}: max |Δp| {worst:e}");
        assert!(worst < 1e-6, "lr {lr}: max |Δp| {worst:e}");
    }
}

#[test]
fn ost_equals_brainscore_ostcorrelation_split_by_split() {
    let f = fixture();
    let r = recording(&f);
    let n = r.codes.len();
    let splits = shuffle_split_test(n, 10, 0.1, 1).unwrap();
    let got = brainscore_osts(
        &r.xs,
        r.d,
        &r.codes,
        &r.classes,
        &r.times,
        &r.thresholds,
        &r.target,
        &splits,
        &DecoderConfig::brainscore(),
        &|_, _| {},
    )
    .unwrap();
    let want = &f["ost"];
    for (s, (g, w)) in got
        .splits
        .iter()
        .zip(want["splits"].as_array().unwrap())
        .enumerate()
    {
        let test: Vec<usize> = w["test"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(g.test, test, "split {s}: test images");
        for (b, wb) in w["i1"].as_array().unwrap().iter().enumerate() {
            for (t, wv) in f64s(wb).iter().enumerate() {
                let gv = g.i1[t][b];
                assert!(
                    (gv - wv).abs() < 1e-4 || (gv.is_nan() && wv.is_nan()),
                    "split {s} bin {b} image {t}: i1 {gv} vs {wv}"
                );
            }
        }
        for (t, wv) in f64s(&w["ost"]).iter().enumerate() {
            let gv = g.ost[t];
            assert!(
                (gv - wv).abs() < 1e-3 || (gv.is_nan() && wv.is_nan()),
                "split {s} image {t}: OST {gv} vs {wv}"
            );
        }
        let wr = w["spearman"].as_f64().unwrap_or(f64::NAN);
        assert!(
            (g.spearman - wr).abs() < 1e-9 || (g.spearman.is_nan() && wr.is_nan()),
            "split {s}: r {} vs {wr}",
            g.spearman
        );
    }
    let (ws, we) = (
        want["score"].as_f64().unwrap(),
        want["error"].as_f64().unwrap(),
    );
    assert!((got.score - ws).abs() < 1e-9, "score {} vs {ws}", got.score);
    assert!((got.error - we).abs() < 1e-9, "error {} vs {we}", got.error);
}
