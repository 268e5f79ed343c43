#![allow(clippy::unwrap_used, clippy::excessive_precision)]
//! Golden tests: PLS and ridge against scikit-learn 1.9.1.
//!
//! Expected values generated with (pyenv, scikit-learn 1.9.1):
//! ```python
//! import numpy as np
//! from sklearn.cross_decomposition import PLSRegression
//! from sklearn.linear_model import RidgeCV
//! def data(n, p, q):
//!     i = np.arange(n)[:, None]; j = np.arange(p)[None, :]
//!     X = np.sin(0.7 * i + 1.3 * j) + np.cos(0.11 * i * j) + 0.05 * j
//!     k = np.arange(q)[None, :]
//!     W = np.cos(0.5 * np.arange(p)[:, None] * (k + 1))
//!     Y = X @ W / p + 0.3 * np.sin(1.7 * i + 0.9 * k) + k
//!     return X, Y
//! for (n, p, q, c) in [(30, 12, 4, 5), (20, 40, 3, 10)]:
//!     X, Y = data(n + 5, p, q)
//!     pls = PLSRegression(n_components=c, scale=False).fit(X[:n], Y[:n])
//!     print("pls", n, p, q, c, repr(pls.predict(X[n:]).ravel()))
//!     r = RidgeCV(alphas=[0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0],
//!                 store_cv_results=True).fit(X[:n], Y[:n])
//!     print("ridge", r.alpha_, repr(r.predict(X[n:]).ravel()),
//!           repr(r.cv_results_.mean(axis=(0, 1))))
//! ```

use faer::Mat;
use ventral_neural::regression::{LooGrid, Pls, RidgeCv};

fn data(n: usize, p: usize, q: usize) -> (Mat<f64>, Mat<f64>) {
    let x = Mat::from_fn(n, p, |i, j| {
        let (i, j) = (i as f64, j as f64);
        (0.7 * i + 1.3 * j).sin() + (0.11 * i * j).cos() + 0.05 * j
    });
    let w = Mat::from_fn(p, q, |a, k| (0.5 * a as f64 * (k as f64 + 1.0)).cos());
    let xw = &x * &w;
    let y = Mat::from_fn(n, q, |i, k| {
        xw[(i, k)] / p as f64 + 0.3 * (1.7 * i as f64 + 0.9 * k as f64).sin() + k as f64
    });
    (x, y)
}

fn check(pred: &Mat<f64>, expected: &[f64], tol: f64) {
    let q = pred.ncols();
    assert_eq!(pred.nrows() * q, expected.len());
    for (idx, e) in expected.iter().enumerate() {
        let got = pred[(idx / q, idx % q)];
        assert!(
            (got - e).abs() <= tol * (1.0 + e.abs()),
            "element {idx}: got {got}, sklearn {e}"
        );
    }
}

const PLS_30_12: [f64; 20] = [
    -0.03647136226548823,
    0.7992381142398328,
    2.3069726710329412,
    3.1132336152898237,
    -0.03103488957534672,
    0.7514196971668181,
    2.3668952335328846,
    3.0146663399907485,
    -0.08945563348832175,
    0.7646179810393168,
    2.250577921016924,
    2.998079475792873,
    -0.16375276032259953,
    0.8490850604283002,
    2.014458536583543,
    3.0309101030942722,
    -0.1498956176492161,
    1.0168398636721732,
    1.7828125469685583,
    3.0094049802706566,
];
const PLS_20_40: [f64; 15] = [
    0.166712013596834,
    1.1352163633882462,
    2.1057524645998837,
    0.30921477872998165,
    1.187470126475413,
    2.0961219968486042,
    0.21934015840168955,
    1.043338051487178,
    2.0222920886941487,
    0.1581417164826369,
    1.0452781876731776,
    2.0629889631199223,
    0.10557408248375202,
    1.069467577829785,
    2.050437926853285,
];
const RIDGE_30_12: [f64; 20] = [
    2.4067702841439251e-02,
    9.3907903948443072e-01,
    2.2188853054525208e+00,
    3.1078302387059820e+00,
    -5.4494459006709101e-04,
    8.8783915972235339e-01,
    2.2287751709893708e+00,
    3.0692152613710411e+00,
    -2.2342541290637702e-02,
    8.8560943059918362e-01,
    2.1664611228256017e+00,
    3.0356977388295330e+00,
    -2.7983587854084835e-02,
    9.4104726437921649e-01,
    2.0530050125276045e+00,
    3.0158710942184528e+00,
    -6.0783282257165297e-03,
    1.0470919262418812e+00,
    1.9234254833365467e+00,
    3.0027877600340593e+00,
];
const RIDGE_30_12_LOO: [f64; 8] = [
    0.14844203739067127,
    0.14144839794806638,
    0.1262298202130646,
    0.11375213504102029,
    0.08538007162037929,
    0.077475777685968,
    0.10368238895389174,
    0.11255138213999602,
];
const RIDGE_20_40: [f64; 15] = [
    0.11810351460317094,
    1.0994546628966302,
    2.0577338643913583,
    0.11843547447962958,
    1.0984355451497014,
    2.058382461826469,
    0.11802111999772875,
    1.0974989717616646,
    2.0580108222214206,
    0.1174020827978871,
    1.0973359209399587,
    2.057100629957859,
    0.1168525784587269,
    1.0980716508936654,
    2.0557787865478274,
];
const RIDGE_20_40_LOO: [f64; 8] = [
    0.10347146880295995,
    0.1034480673236076,
    0.10321769313467692,
    0.10120806933357622,
    0.09067400432174626,
    0.07126297307041347,
    0.06198103400733228,
    0.06037021956307741,
];

fn split(x: &Mat<f64>, n: usize) -> (Mat<f64>, Mat<f64>) {
    let tr = x.as_ref().subrows(0, n).to_owned();
    let te = x.as_ref().subrows(n, x.nrows() - n).to_owned();
    (tr, te)
}

#[test]
fn pls_matches_sklearn_more_samples_than_features() {
    let (x, y) = data(35, 12, 4);
    let ((xtr, xte), (ytr, _)) = (split(&x, 30), split(&y, 30));
    let map = Pls::new(5).fit(xtr.as_ref(), ytr.as_ref()).unwrap();
    check(&map.predict(xte.as_ref()), &PLS_30_12, 1e-8);
}

/// 200 samples × 48 features × 8 targets, 12 components: scikit-learn's NIPALS took
/// `n_iter_ = [7, 8, 11, 25, 98, 53, 48, 39, 30, 5, 14, 16]` iterations, so `Pls::fit` runs
/// each component's first 3 (p / 16) in data space and the rest in feature space (C = Xᵀ Y,
/// G = Xᵀ X). Generated with the module's `data` and, after it:
/// ```python
/// n, p, q, c = 200, 48, 8, 12
/// X, Y = data(n + 4, p, q)
/// pls = PLSRegression(n_components=c, scale=False).fit(X[:n], Y[:n])
/// print(list(pls.n_iter_), repr(pls.predict(X[n:]).ravel().tolist()))
/// ```
const PLS_200_48: [f64; 32] = [
    -0.14645171058954837,
    0.9799292072040193,
    2.0433607312075472,
    3.0772476771620165,
    4.066556349741864,
    5.115885781600129,
    5.992945791682068,
    6.998056951941723,
    -0.13308552525275297,
    1.0163621855994396,
    2.2033858393021575,
    3.104255827982622,
    3.988890940894556,
    5.287898134326567,
    5.908271153012576,
    7.026311193619873,
    -0.06453094266284828,
    0.9393407724408918,
    2.1059687552916677,
    3.013363595404986,
    3.9792191417898843,
    4.913740211893936,
    6.0804420589492025,
    7.096887401910296,
    -0.05050438063059004,
    0.8795376623415396,
    2.015645851010057,
    2.9705016017021895,
    4.020444806435314,
    5.024864328741014,
    6.503633491319752,
    7.0835395103872365,
];

#[test]
fn pls_matches_sklearn_with_feature_space_iterations() {
    let (x, y) = data(204, 48, 8);
    let ((xtr, xte), (ytr, _)) = (split(&x, 200), split(&y, 200));
    let map = Pls::new(12).fit(xtr.as_ref(), ytr.as_ref()).unwrap();
    check(&map.predict(xte.as_ref()), &PLS_200_48, 1e-10);
}

#[test]
fn pls_matches_sklearn_more_features_than_samples() {
    let (x, y) = data(25, 40, 3);
    let ((xtr, xte), (ytr, _)) = (split(&x, 20), split(&y, 20));
    let map = Pls::new(10).fit(xtr.as_ref(), ytr.as_ref()).unwrap();
    check(&map.predict(xte.as_ref()), &PLS_20_40, 1e-7);
}

const ALPHAS: [f64; 8] = [0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0];

#[test]
fn ridge_cv_matches_sklearn_alpha_loo_and_predictions() {
    for (n, p, q, pred, loo, alpha) in [
        (30, 12, 4, &RIDGE_30_12[..], &RIDGE_30_12_LOO[..], 100.0),
        (20, 40, 3, &RIDGE_20_40[..], &RIDGE_20_40_LOO[..], 10000.0),
    ] {
        let (x, y) = data(n + 5, p, q);
        let ((xtr, xte), (ytr, _)) = (split(&x, n), split(&y, n));
        let fit = RidgeCv {
            alphas: ALPHAS.to_vec(),
        }
        .fit(xtr.as_ref(), ytr.as_ref())
        .unwrap();
        assert_eq!(fit.alpha, alpha);
        for (a, b) in fit.loo_mse.iter().zip(loo) {
            assert!((a - b).abs() <= 1e-9 * (1.0 + b.abs()), "LOO {a} vs {b}");
        }
        check(&fit.map.predict(xte.as_ref()), pred, 1e-9);
    }
}

#[test]
fn mismatched_rows_and_bad_alphas_are_errors() {
    let (x, y) = data(10, 4, 2);
    let y2 = y.as_ref().subrows(0, 9).to_owned();
    assert!(Pls::new(2).fit(x.as_ref(), y2.as_ref()).is_err());
    assert!(
        RidgeCv { alphas: vec![] }
            .fit(x.as_ref(), y.as_ref())
            .is_err()
    );
    assert!(
        RidgeCv { alphas: vec![-1.0] }
            .fit(x.as_ref(), y.as_ref())
            .is_err()
    );
}

#[test]
fn pls_on_constant_features_predicts_the_mean_instead_of_failing() {
    // A recurrent network's areas before the image reaches them are constant over images
    // (biological unrolling): the map has no component and predicts the training mean.
    let x = faer::Mat::<f64>::from_fn(12, 5, |_, j| j as f64 * 0.3 + 1.0);
    let y = faer::Mat::<f64>::from_fn(12, 2, |i, j| (i * (j + 1)) as f64);
    let m = ventral_neural::regression::Pls::new(3)
        .fit(x.as_ref(), y.as_ref())
        .unwrap();
    let p = m.predict(x.as_ref());
    for j in 0..2 {
        let mean = (0..12).map(|i| y[(i, j)]).sum::<f64>() / 12.0;
        for i in 0..12 {
            assert!((p[(i, j)] - mean).abs() < 1e-9, "{} vs {mean}", p[(i, j)]);
        }
    }
}

// ---- Dual (kernel) forms: same numbers from the stimuli's Gram matrix. ----

use ventral_neural::dual::{DualRidge, DualSplit, Gram};

/// The Gram matrix of `x` (rows in f32, as features are stored) and the split whose train rows
/// are the first `n` and whose test rows are the rest.
fn dual_split(x: &Mat<f64>, n: usize) -> DualSplit {
    let rows: Vec<Vec<f32>> = (0..x.nrows())
        .map(|i| (0..x.ncols()).map(|j| x[(i, j)] as f32).collect())
        .collect();
    let g = Gram::new(rows.len(), x.ncols(), |i| &rows[i], faer::Par::Seq);
    let train: Vec<usize> = (0..n).collect();
    let test: Vec<usize> = (n..x.nrows()).collect();
    DualSplit::new(&g, &train, &test)
}

/// `x` rounded to f32, as the primal fits see stored features.
fn as_f32(x: &Mat<f64>) -> Mat<f64> {
    Mat::from_fn(x.nrows(), x.ncols(), |i, j| x[(i, j)] as f32 as f64)
}

#[test]
fn dual_pls_matches_sklearn_and_the_primal_form() {
    for (n, p, q, c, expected) in [
        (30, 12, 4, 5, &PLS_30_12[..]),
        (20, 40, 3, 10, &PLS_20_40[..]),
    ] {
        let (x, y) = data(n + 5, p, q);
        let ((_, xte), (ytr, _)) = (split(&x, n), split(&y, n));
        let ds = dual_split(&x, n);
        let dual = Pls::new(c).fit_predict_dual(&ds, ytr.as_ref()).unwrap();
        // Against the primal form on the same f32-rounded features: rounding only.
        let x32 = as_f32(&x);
        let (xtr32, xte32) = split(&x32, n);
        let primal = Pls::new(c)
            .fit(xtr32.as_ref(), ytr.as_ref())
            .unwrap()
            .predict(xte32.as_ref());
        for i in 0..dual.nrows() {
            for j in 0..q {
                let (a, b) = (dual[(i, j)], primal[(i, j)]);
                assert!((a - b).abs() <= 1e-8 * (1.0 + b.abs()), "{a} vs primal {b}");
            }
        }
        // Against scikit-learn on the f64 features: within what rounding x to f32 moves.
        let _ = xte;
        check(&dual, expected, 1e-4);
    }
}

/// Wide, many-target, noisy data where NIPALS needs many inner iterations per component: the
/// regime the dual form is for.
#[test]
fn dual_pls_equals_primal_on_wide_noisy_data_with_many_targets() {
    let (n, m, p, q) = (60, 15, 300, 40);
    // Full-rank pseudo-random features (splitmix64), so every component carries signal.
    let x = Mat::from_fn(n + m, p, |i, j| {
        let mut z = ((i * p + j) as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) as f64 / u64::MAX as f64 - 0.5
    });
    let x = as_f32(&x);
    let y = Mat::from_fn(n + m, q, |i, k| {
        let s: f64 = (0..p)
            .step_by(7)
            .map(|j| x[(i, j)] * ((j + k) as f64).cos())
            .sum();
        s / 10.0 + (((i * 31 + k * 17) % 23) as f64 / 23.0 - 0.5)
    });
    let ((xtr, xte), (ytr, _)) = (split(&x, n), split(&y, n));
    let ds = dual_split(&x, n);
    for c in [1, 5, 25] {
        let dual = Pls::new(c).fit_predict_dual(&ds, ytr.as_ref()).unwrap();
        let primal = Pls::new(c)
            .fit(xtr.as_ref(), ytr.as_ref())
            .unwrap()
            .predict(xte.as_ref());
        let scale = (0..q)
            .map(|j| (0..m).map(|i| primal[(i, j)].abs()).fold(0.0, f64::max))
            .fold(0.0, f64::max);
        for i in 0..m {
            for j in 0..q {
                let (a, b) = (dual[(i, j)], primal[(i, j)]);
                assert!(
                    (a - b).abs() <= 1e-7 * scale,
                    "{c} components, ({i}, {j}): dual {a} vs primal {b}"
                );
            }
        }
    }
}

#[test]
fn dual_ridge_matches_sklearn_and_the_primal_form() {
    for (n, p, q, pred, loo, alpha) in [
        (30, 12, 4, &RIDGE_30_12[..], &RIDGE_30_12_LOO[..], 100.0),
        (20, 40, 3, &RIDGE_20_40[..], &RIDGE_20_40_LOO[..], 10000.0),
    ] {
        let (x, y) = data(n + 5, p, q);
        let (_, (ytr, _)) = (split(&x, n), split(&y, n));
        let ridge = RidgeCv {
            alphas: ALPHAS.to_vec(),
        };
        let dr = DualRidge::new(&dual_split(&x, n)).unwrap();
        let (dual, a, l) = ridge
            .fit_predict_dual(&dr, ytr.as_ref(), LooGrid::All)
            .unwrap();
        assert_eq!(a, alpha);
        for (a, b) in l.iter().zip(loo) {
            assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "LOO {a} vs {b}");
        }
        check(&dual, pred, 1e-5);
        let x32 = as_f32(&x);
        let (xtr32, xte32) = split(&x32, n);
        let fit = ridge.fit(xtr32.as_ref(), ytr.as_ref()).unwrap();
        let primal = fit.map.predict(xte32.as_ref());
        assert_eq!(fit.alpha, a);
        for (u, v) in fit.loo_mse.iter().zip(&l) {
            assert!(
                (u - v).abs() <= 1e-9 * (1.0 + v.abs()),
                "LOO primal {u} vs dual {v}"
            );
        }
        for i in 0..dual.nrows() {
            for j in 0..q {
                let (u, v) = (dual[(i, j)], primal[(i, j)]);
                assert!((u - v).abs() <= 1e-9 * (1.0 + v.abs()), "{u} vs primal {v}");
            }
        }
    }
}

#[test]
fn dual_pls_on_constant_features_predicts_the_mean() {
    let x = Mat::<f64>::from_fn(12, 5, |_, j| j as f64 * 0.3 + 1.0);
    let y = Mat::<f64>::from_fn(12, 2, |i, j| (i * (j + 1)) as f64);
    let p = Pls::new(3)
        .fit_predict_dual(&dual_split(&x, 9), y.as_ref().subrows(0, 9))
        .unwrap();
    for j in 0..2 {
        let mean = (0..9).map(|i| y[(i, j)]).sum::<f64>() / 9.0;
        for i in 0..3 {
            assert!((p[(i, j)] - mean).abs() < 1e-9, "{} vs {mean}", p[(i, j)]);
        }
    }
}

/// The pruned alpha search (bounds rule alphas out without evaluating them) chooses the alpha
/// the exhaustive one does, with bit-identical errors where it evaluates, on problems from
/// nearly noiseless (small alpha wins, leverages near 1 and spread) to pure noise (the largest
/// alpha wins), in both the primal and the dual form.
#[test]
fn pruned_alpha_search_chooses_the_exhaustive_alpha() {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        // xorshift64*: uniform in [-1, 1)
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    };
    let ridge = RidgeCv::default();
    let (mut evaluated, mut total) = (0, 0);
    for case in 0..48 {
        let n = 8 + (case * 7) % 53;
        let p = 3 + (case * 13) % 97;
        let q = 1 + case % 5;
        let noise = [0.0, 1e-3, 0.1, 1.0, 10.0, 1e3][case % 6];
        let scale = [1e-3, 1.0, 1e3][case % 3];
        let x = Mat::from_fn(n + 3, p, |_, _| scale * next());
        let w = Mat::from_fn(p, q, |_, _| next());
        let xw = &x * &w;
        let y = Mat::from_fn(n + 3, q, |i, k| xw[(i, k)] / scale + noise * next());
        let (xtr, ytr) = (x.as_ref().subrows(0, n), y.as_ref().subrows(0, n));
        let all = ridge.fit_grid(xtr, ytr, LooGrid::All).unwrap();
        let pruned = ridge.fit_grid(xtr, ytr, LooGrid::Pruned).unwrap();
        assert_eq!(
            all.alpha, pruned.alpha,
            "case {case}: n {n} p {p} noise {noise}"
        );
        for (a, b) in all.loo_mse.iter().zip(&pruned.loo_mse) {
            assert!(
                b.is_nan() || a.to_bits() == b.to_bits(),
                "case {case}: {a} vs {b}"
            );
        }
        let dr = DualRidge::new(&dual_split(&x, n)).unwrap();
        let (_, da, dl) = ridge.fit_predict_dual(&dr, ytr, LooGrid::All).unwrap();
        let (_, pa, pl) = ridge.fit_predict_dual(&dr, ytr, LooGrid::Pruned).unwrap();
        assert_eq!(da, pa, "dual, case {case}: n {n} p {p} noise {noise}");
        for (a, b) in dl.iter().zip(&pl) {
            assert!(
                b.is_nan() || a.to_bits() == b.to_bits(),
                "dual case {case}: {a} vs {b}"
            );
        }
        evaluated += pl.iter().filter(|v| !v.is_nan()).count();
        total += pl.len();
    }
    println!("pruned search evaluated {evaluated} of {total} alphas");
    assert!(evaluated < total, "the bounds never ruled an alpha out");
}
