//! Brain-Score-identical splits: NumPy's legacy `RandomState` and scikit-learn's
//! `ShuffleSplit` / `StratifiedShuffleSplit` reproduced draw for draw.
//!
//! Expected values from `scripts/make_split_fixtures.py` (NumPy 2.x, scikit-learn 1.9.1), in
//! short:
//! ```python
//! np.random.RandomState(seed).get_state()[1][:5]
//! np.random.RandomState(seed).permutation(n)
//! _approximate_mode(np.array(counts), draws, seed)
//! ShuffleSplit(n_splits, train_size=train, random_state=seed).split(np.zeros(n))
//! StratifiedShuffleSplit(n_splits, train_size=train, random_state=seed).split(np.zeros(n), labels)
//! # Brain-Score's ceiling: ShuffleSplit(10, train_size=0.5, random_state=1) over repetitions
//! ```

#![allow(clippy::unwrap_used)]

use serde_json::Value;
use ventral_neural::numpy_rng::{
    RandomState, approximate_mode, shuffle_split, stratified_shuffle_split,
};

fn fixture() -> Value {
    let p = ventral_core::fixtures::crate_dir(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sklearn_splits.json");
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

fn check_draws(draws: &Value, got: &[ventral_neural::cv::Split], what: &str) {
    let want = draws.as_array().unwrap();
    assert_eq!(want.len(), got.len(), "{what}");
    for (k, (w, g)) in want.iter().zip(got).enumerate() {
        assert_eq!(usizes(&w["train"]), g.train, "{what}: split {k} train");
        assert_eq!(usizes(&w["test"]), g.test, "{what}: split {k} test");
    }
}

#[test]
fn seeding_and_permutations_equal_numpy() {
    let f = fixture();
    for c in f["raw"].as_array().unwrap() {
        let rs = RandomState::new(c["seed"].as_u64().unwrap() as u32);
        let head: Vec<u32> = usizes(&c["key_head"]).iter().map(|&v| v as u32).collect();
        let tail: Vec<u32> = usizes(&c["key_tail"]).iter().map(|&v| v as u32).collect();
        assert_eq!(&rs.key()[..5], &head[..]);
        assert_eq!(&rs.key()[621..], &tail[..]);
    }
    for c in f["permutation"].as_array().unwrap() {
        let mut rs = RandomState::new(c["seed"].as_u64().unwrap() as u32);
        let n = c["n"].as_u64().unwrap() as usize;
        assert_eq!(
            rs.permutation(n),
            usizes(&c["perm"]),
            "seed {} n {n}",
            c["seed"]
        );
    }
}

#[test]
fn approximate_mode_equals_scikit_learn() {
    for c in fixture()["approximate_mode"].as_array().unwrap() {
        let mut rs = RandomState::new(c["seed"].as_u64().unwrap() as u32);
        let got = approximate_mode(
            &usizes(&c["counts"]),
            c["draws"].as_u64().unwrap() as usize,
            &mut rs,
        );
        assert_eq!(got, usizes(&c["mode"]), "{c}");
    }
}

#[test]
fn shuffle_splits_equal_scikit_learn() {
    let f = fixture();
    for c in f["shuffle_split"].as_array().unwrap() {
        let got = shuffle_split(
            c["n"].as_u64().unwrap() as usize,
            c["splits"].as_u64().unwrap() as usize,
            c["train"].as_f64().unwrap(),
            c["seed"].as_u64().unwrap() as u32,
        )
        .unwrap();
        check_draws(&c["draws"], &got, &format!("ShuffleSplit n={}", c["n"]));
        // Brain-Score's ceiling halves over repetitions are ShuffleSplit(train_size=0.5).
        if c["train"].as_f64() == Some(0.5) {
            let halves = ventral_neural::ceiling::brainscore_halves(
                c["n"].as_u64().unwrap() as usize,
                c["splits"].as_u64().unwrap() as usize,
                c["seed"].as_u64().unwrap(),
            )
            .unwrap();
            for ((a, b), s) in halves.iter().zip(&got) {
                let idx = |m: &[bool]| (0..m.len()).filter(|&i| m[i]).collect::<Vec<_>>();
                assert_eq!((idx(a), idx(b)), (s.train.clone(), s.test.clone()));
            }
        }
    }
    for c in f["stratified"].as_array().unwrap() {
        let labels: Vec<String> = c["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        let got = stratified_shuffle_split(
            &labels,
            c["splits"].as_u64().unwrap() as usize,
            c["train"].as_f64().unwrap(),
            c["seed"].as_u64().unwrap() as u32,
        )
        .unwrap();
        check_draws(
            &c["draws"],
            &got,
            &format!("StratifiedShuffleSplit n={}", labels.len()),
        );
    }
}

#[test]
fn stratified_split_errors_as_scikit_learn_does() {
    let labels: Vec<String> = ["a", "a", "b", "c", "c"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let e = stratified_shuffle_split(&labels, 2, 0.6, 1).unwrap_err();
    assert!(e.contains("'b'") && e.contains("1 member"), "{e}");
    let labels: Vec<String> = (0..10).map(|i| format!("k{}", i % 5)).collect();
    let e = stratified_shuffle_split(&labels, 2, 0.9, 1).unwrap_err();
    assert!(e.contains("cannot hold all 5 classes"), "{e}");
}
