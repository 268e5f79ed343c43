//! Object solution times (Kar et al. 2019, Brain-Score's `metrics/ost`): per-image i1 d′ from
//! a decoder's class probabilities, and the first time an image's i1 reaches its threshold,
//! linearly interpolated; the per-bin softmax decoder with Brain-Score's training settings; and
//! the OST score (Spearman with target OSTs over images solved by both, fraction solved).

use std::path::Path;

use crate::behaviour::{Metric, metric_matrix, model_response_matrix};
use crate::error::{NeuralError, Result, file_err};

/// Inverse of the standard normal CDF (`scipy.stats.norm.ppf`): Acklam's rational
/// approximation (relative error < 1.2e-9) refined by one Halley step on `erfc`, which brings
/// it to rounding level (tested against SciPy in `tests/behaviour.rs`).
pub fn norm_ppf(p: f64) -> f64 {
    // The upper half by symmetry (as SciPy's ndtri does), so the refinement works in the
    // tail where Φ is small and exact.
    if p > 0.5 {
        return -norm_ppf(1.0 - p);
    }
    let x = norm_ppf_acklam(p);
    if !x.is_finite() {
        return x;
    }
    let e = 0.5 * libm::erfc(-x / std::f64::consts::SQRT_2) - p;
    let u = e * (2.0 * std::f64::consts::PI).sqrt() * (0.5 * x * x).exp();
    x - u / (1.0 + 0.5 * x * u)
}

fn norm_ppf_acklam(p: f64) -> f64 {
    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.38357751867269e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    let pl = 0.02425;
    if p < pl {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - pl {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        let q = (-2.0 * (1.0 - p).ln()).sqrt();
        -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    }
}

/// Per-image i1 d′ as Brain-Score's `I1` (no mean subtraction): `probs` [n, c] class
/// probabilities, `labels` `[n]` true classes. For image i of class y and each distractor k ≠ y:
/// HR = `P[i,y]/(P[i,y]+P[i,k])`; FAR = mean over images j of class k of `P[j,y]/(P[j,y]+P[j,k])`;
/// d′ = Φ⁻¹(HR) − Φ⁻¹(FAR) clipped to [−5, 5]; i1 = mean over distractors (classes present) —
/// the arithmetic of [`crate::behaviour`]'s model side with [`Metric::I1`].
pub fn i1_dprime(probs: &[f64], labels: &[usize], c: usize) -> Vec<f64> {
    let r = model_response_matrix(probs, labels, c);
    metric_matrix(&r, labels, c, Metric::I1)
}

/// The solution time of one image: the first time `i1[b] ≥ threshold`, interpolated linearly
/// between the previous bin's time and that bin's (the interpolant's root); the first bin's
/// time when it is already reached; NaN when never reached.
pub fn solution_time(times: &[f64], i1: &[f64], threshold: f64) -> f64 {
    for b in 0..times.len().min(i1.len()) {
        if i1[b] >= threshold {
            if b == 0 {
                return times[0];
            }
            let (t0, t1, v0, v1) = (times[b - 1], times[b], i1[b - 1], i1[b]);
            if v1.is_nan() || v0.is_nan() || v1 <= v0 {
                return t1;
            }
            return t0 + (threshold - v0) * (t1 - t0) / (v1 - v0);
        }
    }
    f64::NAN
}

/// Which decoder [`decode_probs`] trains: how its weights start, what its L2 covers, which Adam,
/// how batches are ordered and when it stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecoderKind {
    /// Brain-Score's `TFProbabilitiesClassifier` (Kar2019 OST): weights drawn by Keras'
    /// `VarianceScaling(seed=0)` (TensorFlow's stateless truncated normal, fan_in,
    /// [`crate::tf_random`]), biases 1; loss = mean cross-entropy + l2·(ΣW² + Σb²) with
    /// l2 = 0.5 · 0.463 (`tf.keras.regularizers.l2(0.5 · weight_decay)` on both); TF1 Adam
    /// (ε added to √v, not to the bias-corrected √v̂); each epoch's batches from NumPy's
    /// `RandomState(0).shuffle(arange(n))` (one generator per fit); training stops after an
    /// epoch whose last batch's cross-entropy (without the L2 term) is below `stop_loss`; the
    /// softmax columns are the training labels in first-appearance order.
    BrainScore,
    /// ventral's earlier decoder (kept as an option): zero initial weights and biases,
    /// loss = mean cross-entropy + l2·ΣW² (l2 = 0.463, weights only), Adam with bias-corrected
    /// moments, batches from the named stream `ost-decoder`, stop as soon as a batch's total
    /// loss is below `stop_loss`. With zero weights the decoder is deterministic in the data
    /// alone; Brain-Score's random initial weights dominate its fit at lr 1e-4 (40 epochs move
    /// the weights by ≈ 0.01 against an initial spread of ≈ 1/√d).
    ZeroInit,
}

/// Softmax-regression decoder settings (Brain-Score Kar2019: Adam lr 1e-4, ≤ 40 epochs,
/// batch 64, stop when the training loss falls below 1e-4).
#[derive(Debug, Clone, Copy)]
pub struct DecoderConfig {
    pub kind: DecoderKind,
    pub lr: f64,
    pub epochs: usize,
    pub batch: usize,
    /// Loss = mean cross-entropy + l2 · Σθ² (θ: weights, and biases for `BrainScore`).
    pub l2: f64,
    pub stop_loss: f64,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        Self::brainscore()
    }
}

impl DecoderConfig {
    /// Brain-Score's decoder ([`DecoderKind::BrainScore`], l2 = 0.5 · 0.463).
    pub fn brainscore() -> Self {
        Self {
            kind: DecoderKind::BrainScore,
            lr: 1e-4,
            epochs: 40,
            batch: 64,
            l2: 0.5 * 0.463,
            stop_loss: 1e-4,
        }
    }

    /// ventral's earlier zero-initialised decoder ([`DecoderKind::ZeroInit`], l2 = 0.463).
    pub fn zero_init() -> Self {
        Self {
            kind: DecoderKind::ZeroInit,
            l2: 0.463,
            ..Self::brainscore()
        }
    }
}

/// Trains a softmax regression on z-scored `x` ([n, d], rows `train`; mean and population
/// standard deviation of the training rows, as scikit-learn's `StandardScaler`) and returns
/// class probabilities for rows `test` ([test.len(), c], columns by class code; a class absent
/// from the training rows gets probability 0 with [`DecoderKind::BrainScore`]). Everything
/// random is seeded: Brain-Score's fixed seeds for `BrainScore`; for `ZeroInit` the batches
/// come from the named stream `ost-decoder` at `stream_idx` under `seed`.
#[allow(clippy::too_many_arguments)]
pub fn decode_probs(
    x: &[f64],
    d: usize,
    labels: &[usize],
    c: usize,
    train: &[usize],
    test: &[usize],
    cfg: &DecoderConfig,
    seed: u64,
    stream_idx: &[u64],
) -> Vec<f64> {
    let bs = cfg.kind == DecoderKind::BrainScore;
    // z-score with training statistics.
    let nt = train.len().max(1) as f64;
    let mean: Vec<f64> = (0..d)
        .map(|j| train.iter().map(|&i| x[i * d + j]).sum::<f64>() / nt)
        .collect();
    let sd: Vec<f64> = (0..d)
        .map(|j| {
            let v = train
                .iter()
                .map(|&i| (x[i * d + j] - mean[j]).powi(2))
                .sum::<f64>()
                / nt;
            if v > 1e-24 { v.sqrt() } else { 1.0 }
        })
        .collect();
    let zrow =
        |i: usize| -> Vec<f64> { (0..d).map(|j| (x[i * d + j] - mean[j]) / sd[j]).collect() };
    // Output columns: Brain-Score's label mapping (training labels in first-appearance
    // order); every class code for the zero-initialised decoder.
    let cols: Vec<usize> = if bs {
        let mut seen = Vec::new();
        for &i in train {
            if !seen.contains(&labels[i]) {
                seen.push(labels[i]);
            }
        }
        seen
    } else {
        (0..c).collect()
    };
    let m = cols.len();
    let col_of: Vec<Option<usize>> = (0..c).map(|k| cols.iter().position(|&v| v == k)).collect();
    let ztrain: Vec<Vec<f64>> = train.iter().map(|&i| zrow(i)).collect();
    let ytrain: Vec<usize> = train
        .iter()
        .map(|&i| col_of[labels[i]].unwrap_or(0))
        .collect();
    let np = d * m + m;
    // θ = W [d, m] then b [m].
    let mut w = vec![0.0; np];
    if bs {
        for (t, v) in crate::tf_random::variance_scaling_fan_in(d, m, 0)
            .into_iter()
            .enumerate()
        {
            w[t] = f64::from(v);
        }
        w[d * m..].iter_mut().for_each(|b| *b = 1.0);
    }
    let (mut m1, mut m2) = (vec![0.0; np], vec![0.0; np]);
    let (b1, b2, eps): (f64, f64, f64) = (0.9, 0.999, 1e-8);
    let mut step = 0i32;
    let logits = |w: &[f64], z: &[f64]| -> Vec<f64> {
        let mut l: Vec<f64> = w[d * m..].to_vec();
        for (j, &zj) in z.iter().enumerate() {
            for (lk, wk) in l.iter_mut().zip(&w[j * m..(j + 1) * m]) {
                *lk += zj * wk;
            }
        }
        l
    };
    let softmax = |l: &[f64]| -> Vec<f64> {
        let mx = l.iter().fold(f64::NEG_INFINITY, |a, &v| a.max(v));
        let sum: f64 = l.iter().map(|v| (v - mx).exp()).sum();
        l.iter().map(|v| (v - mx).exp() / sum).collect()
    };
    let ntr = train.len();
    let mut np_rng = crate::numpy_rng::RandomState::new(0);
    let mut stream = ventral_core::rng::stream(seed, "ost-decoder", stream_idx);
    let mut order: Vec<usize> = (0..ntr).collect();
    let reg_len = if bs { np } else { d * m };
    let mut g = vec![0.0; np];
    'epochs: for _ in 0..cfg.epochs {
        if bs {
            order = (0..ntr).collect();
            np_rng.shuffle(&mut order);
        } else {
            crate::cv::shuffle(&mut order, &mut stream);
        }
        let mut last_ce = f64::INFINITY;
        for batch in order.chunks(cfg.batch.max(1)) {
            g.iter_mut().for_each(|v| *v = 0.0);
            let mut ce = 0.0;
            for &r in batch {
                let l = logits(&w, &ztrain[r]);
                let p = softmax(&l);
                let y = ytrain[r];
                ce -= if bs {
                    // log-softmax, as sparse_softmax_cross_entropy_with_logits.
                    let mx = l.iter().fold(f64::NEG_INFINITY, |a, &v| a.max(v));
                    l[y] - mx - l.iter().map(|v| (v - mx).exp()).sum::<f64>().ln()
                } else {
                    p[y].max(1e-300).ln()
                };
                // Each gradient entry sums over the batch rows in order (the loop order within
                // a row does not change any sum); the class loop innermost is contiguous.
                let e: Vec<f64> = (0..m).map(|k| p[k] - f64::from(u8::from(k == y))).collect();
                for (gk, ek) in g[d * m..].iter_mut().zip(&e) {
                    *gk += ek;
                }
                for (gj, &zj) in g[..d * m].chunks_exact_mut(m).zip(&ztrain[r]) {
                    for (gk, ek) in gj.iter_mut().zip(&e) {
                        *gk += ek * zj;
                    }
                }
            }
            let bn = batch.len() as f64;
            ce /= bn;
            g.iter_mut().for_each(|v| *v /= bn);
            let mut loss = ce;
            for q in 0..reg_len {
                loss += cfg.l2 * w[q] * w[q];
                g[q] += 2.0 * cfg.l2 * w[q];
            }
            if !bs && loss < cfg.stop_loss {
                break 'epochs;
            }
            last_ce = ce;
            step += 1;
            let (c1, c2) = (1.0 - b1.powi(step), 1.0 - b2.powi(step));
            let lr_t = cfg.lr * c2.sqrt() / c1;
            for q in 0..np {
                m1[q] = b1 * m1[q] + (1.0 - b1) * g[q];
                m2[q] = b2 * m2[q] + (1.0 - b2) * g[q] * g[q];
                if bs {
                    w[q] -= lr_t * m1[q] / (m2[q].sqrt() + eps);
                } else {
                    w[q] -= cfg.lr * (m1[q] / c1) / ((m2[q] / c2).sqrt() + eps);
                }
            }
        }
        if bs && last_ce < cfg.stop_loss {
            break;
        }
    }
    let mut out = vec![0.0; test.len() * c];
    for (t, &i) in test.iter().enumerate() {
        let p = softmax(&logits(&w, &zrow(i)));
        for (k, &code) in cols.iter().enumerate() {
            out[t * c + code] = p[k];
        }
    }
    out
}

/// The pooled procedure's splits over `n` images: `splits` unstratified random test sets of
/// `test_frac` from the named stream `ost-splits` under `seed`.
pub fn pooled_splits(n: usize, splits: usize, test_frac: f64, seed: u64) -> Vec<crate::cv::Split> {
    crate::cv::shuffle_splits(n, None, splits, 1.0 - test_frac, seed, "ost-splits")
}

/// The pooled procedure at one bin `b` ([n, d] features `x`): a decoder per split, i1 on each
/// split's test images, averaged (in split order) over the splits in which an image was
/// tested; NaN for an image never tested. Splits run in parallel; the result does not depend on
/// the thread count.
#[allow(clippy::too_many_arguments)]
pub fn pooled_i1_bin(
    x: &[f64],
    d: usize,
    labels: &[usize],
    c: usize,
    splits: &[crate::cv::Split],
    cfg: &DecoderConfig,
    seed: u64,
    b: usize,
) -> Vec<f64> {
    let n = labels.len();
    let per_split = split_i1(x, d, labels, c, splits, cfg, seed, b);
    let mut sum = vec![0.0; n];
    let mut cnt = vec![0usize; n];
    for (split, i1) in splits.iter().zip(&per_split) {
        for (v, &i) in i1.iter().zip(&split.test) {
            if v.is_finite() {
                sum[i] += v;
                cnt[i] += 1;
            }
        }
    }
    (0..n)
        .map(|i| {
            if cnt[i] > 0 {
                sum[i] / cnt[i] as f64
            } else {
                f64::NAN
            }
        })
        .collect()
}

/// Per-image i1 per time bin ([`pooled_i1_bin`] for every bin of `xs`, [n, d] each) over
/// [`pooled_splits`]. Returns `[n][bins]`.
#[allow(clippy::too_many_arguments)]
pub fn i1_per_bin(
    xs: &[Vec<f64>],
    d: usize,
    labels: &[usize],
    c: usize,
    splits: usize,
    test_frac: f64,
    cfg: &DecoderConfig,
    seed: u64,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Vec<Vec<f64>> {
    let n = labels.len();
    let sp = pooled_splits(n, splits, test_frac, seed);
    let per_bin: Vec<Vec<f64>> = xs
        .iter()
        .enumerate()
        .map(|(b, x)| {
            let v = pooled_i1_bin(x, d, labels, c, &sp, cfg, seed, b);
            progress(b + 1, xs.len());
            v
        })
        .collect();
    (0..n)
        .map(|i| per_bin.iter().map(|v| v[i]).collect())
        .collect()
}

/// OST score: Spearman correlation of model and target OSTs over images solved by both, the
/// number of such images, and the fraction of target-solved images the model solves.
pub fn ost_score(model: &[f64], target: &[f64]) -> (f64, usize, f64) {
    let both: Vec<usize> = (0..model.len().min(target.len()))
        .filter(|&i| model[i].is_finite() && target[i].is_finite())
        .collect();
    let solved_t = target.iter().filter(|v| v.is_finite()).count();
    let a: Vec<f64> = both.iter().map(|&i| model[i]).collect();
    let b: Vec<f64> = both.iter().map(|&i| target[i]).collect();
    let frac = if solved_t == 0 {
        f64::NAN
    } else {
        both.len() as f64 / solved_t as f64
    };
    (crate::stats::spearman(&a, &b), both.len(), frac)
}

/// Options of [`object_solution_times`].
#[derive(Debug, Clone, Copy)]
pub struct OstOptions {
    /// Train/test splits per bin (Brain-Score: 10).
    pub splits: usize,
    /// Test fraction (Brain-Score: 0.1, unstratified).
    pub test_frac: f64,
    pub decoder: DecoderConfig,
    pub seed: u64,
}

impl Default for OstOptions {
    fn default() -> Self {
        Self {
            splits: 10,
            test_frac: 0.1,
            decoder: DecoderConfig::default(),
            seed: 1,
        }
    }
}

/// Per-image i1 over time and the solution times derived from it.
#[derive(Debug, Clone)]
pub struct SolutionTimes {
    /// `[n][bins]` i1 d′ (NaN where an image was never in a test set).
    pub i1: Vec<Vec<f64>>,
    /// `[n]` interpolated solution time (NaN when the threshold is never reached).
    pub ost: Vec<f64>,
}

/// Kar2019 object solution times: `xs[b]` is the [n, d] feature matrix at time `times[b]`;
/// a decoder per bin and split gives per-image i1; image i's OST is the first time its i1
/// reaches `thresholds[i]`, linearly interpolated. Features that do not vary over time give
/// all-NaN OSTs (Brain-Score's precheck).
pub fn object_solution_times(
    xs: &[Vec<f64>],
    d: usize,
    labels: &[usize],
    c: usize,
    times: &[f64],
    thresholds: &[f64],
    o: &OstOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> SolutionTimes {
    let i1 = i1_per_bin(
        xs,
        d,
        labels,
        c,
        o.splits,
        o.test_frac,
        &o.decoder,
        o.seed,
        progress,
    );
    let constant = xs.windows(2).all(|w| w[0] == w[1]);
    pooled_osts(i1, times, thresholds, constant)
}

/// The pooled procedure's solution times from per-image i1 (`[n][bins]`); features constant over
/// time (`constant`) give NaN OSTs (Brain-Score's precheck).
pub fn pooled_osts(
    i1: Vec<Vec<f64>>,
    times: &[f64],
    thresholds: &[f64],
    constant: bool,
) -> SolutionTimes {
    let ost = if constant {
        vec![f64::NAN; i1.len()]
    } else {
        solution_times(times, &i1, thresholds)
    };
    SolutionTimes { i1, ost }
}

/// One cross-validation split of [`brainscore_osts`]: the test images' i1 over time, their
/// predicted OSTs and the split's Spearman r with the targets.
#[derive(Debug, Clone)]
pub struct SplitOsts {
    /// Test images (indices into the targets, ascending).
    pub test: Vec<usize>,
    /// `[test.len()][bins]` i1 d′ of each test image from the decoder trained on this split's
    /// training images.
    pub i1: Vec<Vec<f64>>,
    /// [test.len()] predicted OST (NaN when never reached).
    pub ost: Vec<f64>,
    /// Spearman r over the test images solved by both (NaN with fewer than two).
    pub spearman: f64,
    pub n_solved_both: usize,
    pub n_target_solved: usize,
}

/// Brain-Score's `OSTCorrelation` result: per split, and the mean of the split r (NaN splits
/// skipped, as xarray's `mean`) with Brain-Score's error (standard deviation over the splits
/// with a value, ddof 0, divided by √(number of splits)).
#[derive(Debug, Clone)]
pub struct BrainScoreOsts {
    pub splits: Vec<SplitOsts>,
    pub score: f64,
    pub error: f64,
}

/// Brain-Score's OST solution time of one image from its i1 per bin: the first bin whose i1
/// reaches the threshold (the hit) and, before it, the highest sub-threshold i1 so far (the
/// anchor, replaced only by a strictly higher value); the line through anchor and hit solved for
/// the threshold; the hit's time when there is no anchor (the hit is the first bin, or every
/// earlier i1 is NaN); NaN without a hit. NaN i1 values neither hit nor anchor (their
/// comparisons are false in Brain-Score's code too).
pub fn brainscore_solution_time(times: &[f64], i1: &[f64], threshold: f64) -> f64 {
    let mut anchor: Option<(f64, f64)> = None;
    for (&t, &v) in times.iter().zip(i1) {
        if v < threshold && anchor.is_none_or(|(_, a)| a < v) {
            anchor = Some((t, v));
        }
        if v >= threshold {
            return match anchor {
                None => t,
                Some((t0, v0)) => t0 + (threshold - v0) * (t - t0) / (v - v0),
            };
        }
    }
    f64::NAN
}

/// Kar2019 OST exactly as Brain-Score's `OSTCorrelation` computes it: for each split (images in
/// the targets' order; Brain-Score: `ShuffleSplit(10, test_size=0.1, random_state=1)`, see
/// [`crate::numpy_rng::shuffle_split_test`]) and each bin, a decoder trained on the split's
/// training images predicts its test images; i1 d′ among the test images only; OSTs by
/// [`brainscore_solution_time`]; Spearman with the target OSTs over the test images both solve;
/// the split r averaged. `xs[b]` is the [n, d] feature matrix of bin b at `times[b]`.
///
/// Errors where Brain-Score's own code raises `KeyError` in its i1 d′: a split whose test
/// images miss an object that its training images hold (or the reverse); `class_names[k]`
/// names class code k in that message.
#[allow(clippy::too_many_arguments)]
pub fn brainscore_osts(
    xs: &[Vec<f64>],
    d: usize,
    labels: &[usize],
    class_names: &[String],
    times: &[f64],
    thresholds: &[f64],
    target_ost: &[f64],
    splits: &[crate::cv::Split],
    cfg: &DecoderConfig,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<BrainScoreOsts> {
    check_brainscore_splits(labels, class_names, splits)?;
    let i1: Vec<Vec<Vec<f64>>> = xs
        .iter()
        .enumerate()
        .map(|(b, x)| {
            let v = brainscore_i1_bin(x, d, labels, class_names.len(), splits, cfg, b);
            progress(b + 1, xs.len());
            v
        })
        .collect();
    let constant = xs.windows(2).all(|w| w[0] == w[1]);
    Ok(brainscore_osts_from_i1(
        i1, times, thresholds, target_ost, splits, constant,
    ))
}

/// Refuses splits on which Brain-Score's own i1 raises `KeyError`: a split whose test images
/// miss an object that its training images hold, or the reverse (`class_names[k]` names class
/// code k in the message).
pub fn check_brainscore_splits(
    labels: &[usize],
    class_names: &[String],
    splits: &[crate::cv::Split],
) -> Result<()> {
    let c = class_names.len();
    let name = |k: &usize| class_names.get(*k).map_or("?", String::as_str).to_string();
    for (s, sp) in splits.iter().enumerate() {
        let present = |set: &[usize]| {
            let mut v: Vec<usize> = set.iter().map(|&i| labels[i]).collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let (tr, te) = (present(&sp.train), present(&sp.test));
        if tr != te {
            let lacks = |a: &[usize], b: &[usize]| -> Vec<String> {
                a.iter().filter(|k| !b.contains(k)).map(name).collect()
            };
            let (no_test, no_train) = (lacks(&tr, &te), lacks(&te, &tr));
            let mut what = Vec::new();
            if !no_test.is_empty() {
                what.push(format!(
                    "its {} test images hold no image of {} of {} objects ({})",
                    sp.test.len(),
                    no_test.len(),
                    c,
                    no_test.join(", ")
                ));
            }
            if !no_train.is_empty() {
                what.push(format!(
                    "its training images hold no image of {}",
                    no_train.join(", ")
                ));
            }
            return Err(NeuralError::Invalid(format!(
                "OST split {s}: {} — Brain-Score's i1 needs every object among each split's test \
                 images (its own code raises KeyError there); use more images per object or a \
                 larger --test-frac, or --procedure pooled (every image's i1 averaged over the \
                 splits that test it)",
                what.join("; ")
            )));
        }
    }
    Ok(())
}

/// Brain-Score's procedure at one bin `b` ([n, d] features `x`): per split the decoder on the
/// split's training images and the i1 of its test images, [split][test image] (seed 0: the
/// Brain-Score decoder's own seeds are fixed). Splits run in parallel.
pub fn brainscore_i1_bin(
    x: &[f64],
    d: usize,
    labels: &[usize],
    c: usize,
    splits: &[crate::cv::Split],
    cfg: &DecoderConfig,
    b: usize,
) -> Vec<Vec<f64>> {
    split_i1(x, d, labels, c, splits, cfg, 0, b)
}

/// Both procedures' work at one bin `b`: per split a decoder trained on the split's training
/// rows of `x` predicts its test rows, whose i1 it returns ([split][test image]); `seed` and
/// (b, split) name the zero-initialised decoder's batch stream. Splits run in parallel.
#[allow(clippy::too_many_arguments)]
fn split_i1(
    x: &[f64],
    d: usize,
    labels: &[usize],
    c: usize,
    splits: &[crate::cv::Split],
    cfg: &DecoderConfig,
    seed: u64,
    b: usize,
) -> Vec<Vec<f64>> {
    use rayon::prelude::*;
    splits
        .par_iter()
        .enumerate()
        .map(|(s, sp)| {
            let probs = decode_probs(
                x,
                d,
                labels,
                c,
                &sp.train,
                &sp.test,
                cfg,
                seed,
                &[b as u64, s as u64],
            );
            let lt: Vec<usize> = sp.test.iter().map(|&i| labels[i]).collect();
            i1_dprime(&probs, &lt, c)
        })
        .collect()
}

/// OSTs, per-split Spearman r and the score from the i1 of every bin (`[bin][split][test image]`,
/// [`brainscore_i1_bin`]). Features constant over time (`constant`) give NaN OSTs, as
/// Brain-Score's benchmark scores a temporally constant model NaN.
pub fn brainscore_osts_from_i1(
    i1: Vec<Vec<Vec<f64>>>,
    times: &[f64],
    thresholds: &[f64],
    target_ost: &[f64],
    splits: &[crate::cv::Split],
    constant: bool,
) -> BrainScoreOsts {
    let per_split: Vec<SplitOsts> = splits
        .iter()
        .enumerate()
        .map(|(s, sp)| {
            let i1: Vec<Vec<f64>> = (0..sp.test.len())
                .map(|t| i1.iter().map(|bin| bin[s][t]).collect())
                .collect();
            let ost: Vec<f64> = sp
                .test
                .iter()
                .zip(&i1)
                .map(|(&i, v)| {
                    if constant {
                        f64::NAN
                    } else {
                        brainscore_solution_time(times, v, thresholds[i])
                    }
                })
                .collect();
            let target: Vec<f64> = sp.test.iter().map(|&i| target_ost[i]).collect();
            let (spearman, n_solved_both, _) = ost_score(&ost, &target);
            SplitOsts {
                test: sp.test.clone(),
                i1,
                ost,
                spearman,
                n_solved_both,
                n_target_solved: target.iter().filter(|v| v.is_finite()).count(),
            }
        })
        .collect();
    let vals: Vec<f64> = per_split
        .iter()
        .map(|s| s.spearman)
        .filter(|v| !v.is_nan())
        .collect();
    let (score, error) = if vals.is_empty() {
        (f64::NAN, f64::NAN)
    } else {
        let k = vals.len() as f64;
        let mean = vals.iter().sum::<f64>() / k;
        let sd = (vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / k).sqrt();
        (mean, sd / (per_split.len() as f64).sqrt())
    };
    BrainScoreOsts {
        splits: per_split,
        score,
        error,
    }
}

/// [`solution_time`] of every image: `i1` is `[n][bins]`, `thresholds` `[n]`.
pub fn solution_times(times: &[f64], i1: &[Vec<f64>], thresholds: &[f64]) -> Vec<f64> {
    i1.iter()
        .zip(thresholds)
        .map(|(v, &th)| solution_time(times, v, th))
        .collect()
}

/// Percentile interval (2.5, 97.5) of the OST Spearman over `n_boot` resamples of images
/// (named stream `ost-bootstrap`); NaN with no resamples.
pub fn ost_score_ci(model: &[f64], target: &[f64], n_boot: usize, seed: u64) -> (f64, f64) {
    use rand::Rng;
    let n = model.len().min(target.len());
    if n_boot == 0 || n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let vals: Vec<f64> = (0..n_boot)
        .map(|b| {
            let mut rng = ventral_core::rng::stream(seed, "ost-bootstrap", &[b as u64]);
            let idx: Vec<usize> = (0..n)
                .map(|_| (rng.next_u64() % n as u64) as usize)
                .collect();
            let m: Vec<f64> = idx.iter().map(|&i| model[i]).collect();
            let t: Vec<f64> = idx.iter().map(|&i| target[i]).collect();
            ost_score(&m, &t).0
        })
        .collect();
    (
        crate::stats::percentile(&vals, 2.5),
        crate::stats::percentile(&vals, 97.5),
    )
}

/// OST targets derived from recordings: the region's trial-averaged sites per bin as decoder
/// features, decoded by the pooled procedure ([`i1_per_bin`] with `opts`), one d′ threshold for
/// every image (`dprime`, or half the median over images of each image's peak i1). Returns the
/// targets, the region's decoded time course (model name `target`) and the threshold used.
/// Errors name `label` (the recordings' file): no `object_name`, no sites of `region`, fewer
/// than two objects, nothing decoded.
pub fn targets_from_recordings(
    rec: &crate::recordings::Recordings,
    label: &str,
    region: &str,
    dprime: Option<f64>,
    opts: &OstOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<(OstTargets, DecodedLayer, f64)> {
    let objects = rec.object_names.clone().ok_or_else(|| {
        file_err(
            label,
            "no 'object_name' coordinate; OST targets need object labels",
        )
    })?;
    let sites = rec
        .region_sites()
        .into_iter()
        .find(|(r, _)| r == region)
        .map(|(_, s)| s)
        .ok_or_else(|| {
            let have: Vec<String> = rec.region_sites().into_iter().map(|(r, _)| r).collect();
            file_err(
                label,
                format!(
                    "no sites of region '{region}' (coordinate 'region' has: {})",
                    have.join(", ")
                ),
            )
        })?;
    let (k, nb, ns) = (rec.n_neuroids(), rec.n_bins(), rec.n_stimuli());
    let xs: Vec<Vec<f64>> = (0..nb)
        .map(|b| {
            (0..ns)
                .flat_map(|s| sites.iter().map(move |&j| (s, j)))
                .map(|(s, j)| rec.mean[(s * k + j) * nb + b])
                .collect()
        })
        .collect();
    let codes = crate::cv::codes(&objects);
    let c = codes.iter().max().map_or(0, |m| m + 1);
    if c < 2 {
        return Err(file_err(
            label,
            "'object_name' has fewer than two objects; i1 needs ≥ 2 classes",
        ));
    }
    let times: Vec<f64> = rec.bins.iter().map(|b| b.0).collect();
    let i1 = i1_per_bin(
        &xs,
        sites.len(),
        &codes,
        c,
        opts.splits,
        opts.test_frac,
        &opts.decoder,
        opts.seed,
        progress,
    );
    let dprime = match dprime {
        Some(d) => d,
        None => {
            let peaks: Vec<f64> = i1
                .iter()
                .map(|v| {
                    v.iter()
                        .copied()
                        .filter(|x| x.is_finite())
                        .fold(f64::NAN, f64::max)
                })
                .collect();
            0.5 * crate::stats::percentile(&peaks, 50.0)
        }
    };
    if !dprime.is_finite() {
        return Err(file_err(
            label,
            format!("no image of region '{region}' was decoded; cannot set a d′ threshold"),
        ));
    }
    let thresholds = vec![dprime; ns];
    let st = SolutionTimes {
        ost: solution_times(&times, &i1, &thresholds),
        i1,
    };
    let targets = OstTargets {
        stimulus_ids: rec.stimulus_ids.clone(),
        object_names: objects,
        ost_ms: st.ost.clone(),
        thresholds,
    };
    Ok((
        targets,
        DecodedLayer::new("target".into(), region.into(), times, st),
        dprime,
    ))
}

/// Per-image OST targets: a CSV with columns `stimulus_id`, `object_name`, `ost_ms` (empty or
/// `nan` for an image the target never solves) and `i1_threshold` (the i1 d′ the model must
/// reach, e.g. the pooled primate behavioural i1 of the image).
#[derive(Debug, Clone, PartialEq)]
pub struct OstTargets {
    pub stimulus_ids: Vec<String>,
    pub object_names: Vec<String>,
    pub ost_ms: Vec<f64>,
    pub thresholds: Vec<f64>,
}

/// The CSV header of [`OstTargets`].
pub const TARGETS_HEADER: &str = "stimulus_id,object_name,ost_ms,i1_threshold";

impl OstTargets {
    /// Reads a targets CSV; every error names the file, and the row and column where one is
    /// at fault.
    pub fn read(path: &Path) -> Result<Self> {
        let label = path.display().to_string();
        let mut r = csv::Reader::from_path(path).map_err(|e| file_err(&label, e))?;
        let header: Vec<String> = r
            .headers()
            .map_err(|e| file_err(&label, e))?
            .iter()
            .map(String::from)
            .collect();
        let col = |name: &str| {
            header.iter().position(|h| h == name).ok_or_else(|| {
                file_err(
                    &label,
                    format!(
                        "no '{name}' column (need {TARGETS_HEADER}); columns: {}",
                        header.join(", ")
                    ),
                )
            })
        };
        let (ci, co, ct, cth) = (
            col("stimulus_id")?,
            col("object_name")?,
            col("ost_ms")?,
            col("i1_threshold")?,
        );
        let mut t = Self {
            stimulus_ids: Vec::new(),
            object_names: Vec::new(),
            ost_ms: Vec::new(),
            thresholds: Vec::new(),
        };
        let mut seen = std::collections::HashSet::new();
        for (i, rec) in r.records().enumerate() {
            let rec = rec.map_err(|e| file_err(&label, e))?;
            let row = i + 2;
            let get = |c: usize| rec.get(c).unwrap_or("").trim();
            let id = get(ci);
            if id.is_empty() {
                return Err(file_err(&label, format!("row {row}: empty stimulus_id")));
            }
            if !seen.insert(id.to_string()) {
                return Err(file_err(
                    &label,
                    format!("row {row}: stimulus_id '{id}' appears twice"),
                ));
            }
            let num = |c: usize, name: &str, allow_nan: bool| -> Result<f64> {
                let v = get(c);
                if allow_nan && (v.is_empty() || v.eq_ignore_ascii_case("nan")) {
                    return Ok(f64::NAN);
                }
                v.parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| {
                        file_err(
                            &label,
                            format!("row {row}, column {name}: '{v}' is not a finite number"),
                        )
                    })
            };
            t.ost_ms.push(num(ct, "ost_ms", true)?);
            t.thresholds.push(num(cth, "i1_threshold", false)?);
            if get(co).is_empty() {
                return Err(file_err(&label, format!("row {row}: empty object_name")));
            }
            t.object_names.push(get(co).to_string());
            t.stimulus_ids.push(id.to_string());
        }
        if t.stimulus_ids.len() < 2 {
            return Err(file_err(&label, "fewer than two images"));
        }
        Ok(t)
    }

    /// The CSV text (an unsolved image's `ost_ms` is empty); fields are quoted where needed.
    pub fn to_csv(&self) -> String {
        use crate::predictivity::csv_number;
        let mut w = csv::Writer::from_writer(Vec::new());
        let mut rows: Vec<Vec<String>> =
            vec![TARGETS_HEADER.split(',').map(String::from).collect()];
        for i in 0..self.stimulus_ids.len() {
            rows.push(vec![
                self.stimulus_ids[i].clone(),
                self.object_names[i].clone(),
                csv_number(self.ost_ms[i]),
                csv_number(self.thresholds[i]),
            ]);
        }
        for r in rows {
            // Writing to a Vec cannot fail.
            let _ = w.write_record(&r);
        }
        String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
    }
}

/// One decoded layer's time course (or the target recordings'): solution times, and per time
/// the mean i1 over images with its 95 % t-interval and the number of images.
#[derive(Debug, Clone)]
pub struct DecodedLayer {
    pub model: String,
    pub layer: String,
    /// ms after onset of each decoded step or bin.
    pub times: Vec<f64>,
    /// Per image: i1 over time and the OST (pooled procedure); with Brain-Score's procedure
    /// each image's i1 and OST averaged over the splits that tested it (finite values only).
    pub st: SolutionTimes,
    /// Per time: (mean i1, ci_low, ci_high, images with a defined i1).
    pub mean_i1: Vec<(f64, f64, f64, usize)>,
    /// Brain-Score's procedure: every split's test images, OSTs and r.
    pub per_split: Option<BrainScoreOsts>,
}

impl DecodedLayer {
    pub fn new(model: String, layer: String, times: Vec<f64>, st: SolutionTimes) -> Self {
        let mean_i1 = (0..times.len())
            .map(|b| {
                let col: Vec<f64> = st.i1.iter().map(|v| v[b]).collect();
                let (m, lo, hi) = crate::stats::mean_ci(&col);
                (m, lo, hi, col.iter().filter(|v| v.is_finite()).count())
            })
            .collect();
        Self {
            model,
            layer,
            times,
            st,
            mean_i1,
            per_split: None,
        }
    }

    /// A layer scored by [`brainscore_osts`] over `n` images.
    pub fn from_brainscore(
        model: String,
        layer: String,
        times: Vec<f64>,
        n: usize,
        bs: BrainScoreOsts,
    ) -> Self {
        let nb = times.len();
        let (mut i1, mut i1_n) = (vec![vec![0.0; nb]; n], vec![vec![0usize; nb]; n]);
        let (mut ost, mut ost_n) = (vec![0.0; n], vec![0usize; n]);
        for sp in &bs.splits {
            for (t, &i) in sp.test.iter().enumerate() {
                for b in 0..nb {
                    if sp.i1[t][b].is_finite() {
                        i1[i][b] += sp.i1[t][b];
                        i1_n[i][b] += 1;
                    }
                }
                if sp.ost[t].is_finite() {
                    ost[i] += sp.ost[t];
                    ost_n[i] += 1;
                }
            }
        }
        let mean = |s: f64, k: usize| if k > 0 { s / k as f64 } else { f64::NAN };
        let st = SolutionTimes {
            i1: (0..n)
                .map(|i| (0..nb).map(|b| mean(i1[i][b], i1_n[i][b])).collect())
                .collect(),
            ost: (0..n).map(|i| mean(ost[i], ost_n[i])).collect(),
        };
        let mut d = Self::new(model, layer, times, st);
        d.per_split = Some(bs);
        d
    }
}

/// A model layer's OST consistency with the targets.
#[derive(Debug, Clone, PartialEq)]
pub struct OstSummary {
    pub model: String,
    pub layer: String,
    /// `brainscore` or `pooled`.
    pub procedure: &'static str,
    /// Pooled: Spearman r between model and target OSTs over the images both solve.
    /// Brain-Score: the mean of the per-split r.
    pub spearman: f64,
    /// Pooled: image-bootstrap percentile interval. Brain-Score: spearman ± 1.96 · error.
    pub ci_low: f64,
    pub ci_high: f64,
    /// Brain-Score's error (SD of the split r / √splits); NaN for the pooled procedure.
    pub error: f64,
    /// Images solved by both (summed over splits for Brain-Score's procedure).
    pub n_solved_both: usize,
    pub n_target_solved: usize,
    /// Fraction of the target-solved images the model solves.
    pub fraction_solved: f64,
}

impl OstSummary {
    /// Pooled: [`ost_score`] and its bootstrap interval ([`ost_score_ci`], `n_boot`
    /// resamples). Brain-Score's procedure: its score and error, counts over the splits.
    pub fn new(d: &DecodedLayer, targets: &OstTargets, n_boot: usize, seed: u64) -> Self {
        if let Some(bs) = &d.per_split {
            let both: usize = bs.splits.iter().map(|s| s.n_solved_both).sum();
            let solved: usize = bs.splits.iter().map(|s| s.n_target_solved).sum();
            return OstSummary {
                model: d.model.clone(),
                layer: d.layer.clone(),
                procedure: "brainscore",
                spearman: bs.score,
                ci_low: bs.score - 1.96 * bs.error,
                ci_high: bs.score + 1.96 * bs.error,
                error: bs.error,
                n_solved_both: both,
                n_target_solved: solved,
                fraction_solved: if solved == 0 {
                    f64::NAN
                } else {
                    both as f64 / solved as f64
                },
            };
        }
        let (spearman, n_solved_both, fraction_solved) = ost_score(&d.st.ost, &targets.ost_ms);
        let (ci_low, ci_high) = ost_score_ci(&d.st.ost, &targets.ost_ms, n_boot, seed);
        OstSummary {
            model: d.model.clone(),
            layer: d.layer.clone(),
            procedure: "pooled",
            spearman,
            ci_low,
            ci_high,
            error: f64::NAN,
            n_solved_both,
            n_target_solved: targets.ost_ms.iter().filter(|v| v.is_finite()).count(),
            fraction_solved,
        }
    }
}

/// `ost.csv`: per model layer and image, the target's and the model's OST; with Brain-Score's
/// procedure one row per split and test image (`split` empty for the pooled procedure).
pub fn ost_csv(targets: &OstTargets, models: &[&DecodedLayer]) -> Result<String> {
    use crate::tables::csv_number;
    let row = |d: &DecodedLayer, split: String, i: usize, ost: f64| {
        vec![
            d.model.clone(),
            d.layer.clone(),
            split,
            targets.stimulus_ids[i].clone(),
            targets.object_names[i].clone(),
            csv_number(targets.ost_ms[i]),
            csv_number(targets.thresholds[i]),
            csv_number(ost),
        ]
    };
    let mut rows = Vec::new();
    for d in models {
        match &d.per_split {
            Some(bs) => {
                for (s, sp) in bs.splits.iter().enumerate() {
                    for (&i, &o) in sp.test.iter().zip(&sp.ost) {
                        rows.push(row(d, s.to_string(), i, o));
                    }
                }
            }
            None => {
                for i in 0..targets.stimulus_ids.len() {
                    rows.push(row(d, String::new(), i, d.st.ost[i]));
                }
            }
        }
    }
    crate::tables::csv_table(
        "ost.csv",
        &[
            "model",
            "layer",
            "split",
            "stimulus_id",
            "object_name",
            "target_ost_ms",
            "i1_threshold",
            "model_ost_ms",
        ],
        rows.into_iter(),
    )
}

/// `ost_splits.csv` (Brain-Score's procedure): per model layer and split, the split's r.
pub fn split_scores_csv(models: &[&DecodedLayer]) -> Result<String> {
    use crate::tables::csv_number;
    crate::tables::csv_table(
        "ost_splits.csv",
        &[
            "model",
            "layer",
            "split",
            "spearman",
            "n_solved_both",
            "n_target_solved",
        ],
        models.iter().flat_map(|d| {
            d.per_split.iter().flat_map(move |bs| {
                bs.splits.iter().enumerate().map(move |(s, sp)| {
                    vec![
                        d.model.clone(),
                        d.layer.clone(),
                        s.to_string(),
                        csv_number(sp.spearman),
                        sp.n_solved_both.to_string(),
                        sp.n_target_solved.to_string(),
                    ]
                })
            })
        }),
    )
}

/// `summary.csv`: one [`OstSummary`] per model layer.
pub fn summary_csv(summaries: &[OstSummary]) -> Result<String> {
    use crate::tables::csv_number;
    crate::tables::csv_table(
        "summary.csv",
        &[
            "model",
            "layer",
            "procedure",
            "spearman",
            "ci_low",
            "ci_high",
            "error",
            "n_solved_both",
            "n_target_solved",
            "fraction_solved",
        ],
        summaries.iter().map(|s| {
            vec![
                s.model.clone(),
                s.layer.clone(),
                s.procedure.to_string(),
                csv_number(s.spearman),
                csv_number(s.ci_low),
                csv_number(s.ci_high),
                csv_number(s.error),
                s.n_solved_both.to_string(),
                s.n_target_solved.to_string(),
                csv_number(s.fraction_solved),
            ]
        }),
    )
}

/// `i1.csv`: per decoded layer (the target's too) and time, the mean i1 and its interval.
pub fn i1_csv(decoded: &[DecodedLayer]) -> Result<String> {
    use crate::tables::csv_number;
    crate::tables::csv_table(
        "i1.csv",
        &[
            "model", "layer", "time_ms", "mean_i1", "ci_low", "ci_high", "n",
        ],
        decoded.iter().flat_map(|d| {
            d.times
                .iter()
                .zip(&d.mean_i1)
                .map(move |(t, &(m, lo, hi, n))| {
                    vec![
                        d.model.clone(),
                        d.layer.clone(),
                        t.to_string(),
                        csv_number(m),
                        csv_number(lo),
                        csv_number(hi),
                        n.to_string(),
                    ]
                })
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // SciPy 1.16: norm.ppf([1e-10, 0.001, 0.02, 0.3, 0.5, 0.77, 0.999]) ->
    const PPF: [(f64, f64); 7] = [
        (1e-10, -6.361340902404056),
        (0.001, -3.090232306167813),
        (0.02, -2.053748910631823),
        (0.3, -0.5244005127080409),
        (0.5, 0.0),
        (0.77, 0.7388468491852137),
        (0.999, 3.090232306167813),
    ];

    #[test]
    fn ppf_matches_scipy() {
        for (p, want) in PPF {
            assert!(
                (norm_ppf(p) - want).abs() < 1e-8 * (1.0 + want.abs()),
                "ppf({p}) = {} vs {want}",
                norm_ppf(p)
            );
        }
    }

    // NumPy reference of Brain-Score's I1 formula (generated with the snippet):
    // P = np.array([[.7,.2,.1],[.3,.5,.2],[.2,.2,.6],[.5,.4,.1],[.1,.3,.6],[.4,.4,.2]]); y = [0,1,2,0,2,1]
    // def i1(P, y):
    //     n, c = P.shape; out = []
    //     for i in range(n):
    //         d = []
    //         for k in range(c):
    //             if k == y[i]: continue
    //             hr = P[i,y[i]] / (P[i,y[i]] + P[i,k])
    //             js = [j for j in range(n) if y[j] == k]
    //             far = np.mean([P[j,y[i]] / (P[j,y[i]] + P[j,k]) for j in js])
    //             d.append(np.clip(norm.ppf(hr) - norm.ppf(far), -5, 5))
    //         out.append(np.mean(d))
    //     return out
    const I1: [f64; 6] = [
        1.4634085687342777,
        0.9319188839453968,
        1.4503262614218848,
        1.0594449741448617,
        1.5249854228126032,
        0.7049884406445064,
    ];

    #[test]
    fn i1_and_solution_time_match_numpy() {
        let p = [
            0.7, 0.2, 0.1, 0.3, 0.5, 0.2, 0.2, 0.2, 0.6, 0.5, 0.4, 0.1, 0.1, 0.3, 0.6, 0.4, 0.4,
            0.2,
        ];
        let y = [0, 1, 2, 0, 2, 1];
        for (g, w) in i1_dprime(&p, &y, 3).iter().zip(I1) {
            assert!((g - w).abs() < 1e-8, "{g} vs {w}");
        }
        let t = [70.0, 80.0, 90.0, 100.0];
        assert_eq!(solution_time(&t, &[0.1, 0.5, 1.5, 2.0], 1.0), 85.0);
        assert_eq!(solution_time(&t, &[1.2, 0.5, 1.5, 2.0], 1.0), 70.0);
        assert!(solution_time(&t, &[0.1, 0.2, 0.3, 0.4], 1.0).is_nan());
        let (r, n, f) = ost_score(
            &[80.0, f64::NAN, 95.0, 100.0],
            &[75.0, 90.0, 99.0, f64::NAN],
        );
        assert_eq!((n, f), (2, 2.0 / 3.0));
        assert!((r - 1.0).abs() < 1e-12);
    }

    #[test]
    fn decoder_separates_separable_classes_and_i1_grows_with_signal() {
        // Two bins: pure noise, then class-dependent means. i1 must rise from ~0 to clearly > 0.
        let (n, d, c) = (120, 6, 3);
        let labels: Vec<usize> = (0..n).map(|i| i % c).collect();
        let mut rng = ventral_core::rng::stream(0, "test", &[]);
        use rand::Rng;
        let mut noise = || ((rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64) - 0.5;
        let x0: Vec<f64> = (0..n * d).map(|_| noise()).collect();
        let x1: Vec<f64> = (0..n * d)
            .map(|q| noise() + if q % d == labels[q / d] { 2.0 } else { 0.0 })
            .collect();
        let cfg = DecoderConfig {
            lr: 0.05,
            ..DecoderConfig::default()
        };
        let (x0c, x1c) = (x0.clone(), x1.clone());
        let i1 = i1_per_bin(&[x0, x1], d, &labels, c, 5, 0.2, &cfg, 1, &|_, _| {});
        let mean = |b: usize| {
            i1.iter()
                .map(|v| v[b])
                .filter(|v| v.is_finite())
                .sum::<f64>()
                / n as f64
        };
        assert!(mean(0).abs() < 0.5, "noise bin i1 {}", mean(0));
        assert!(
            mean(1) > mean(0) + 0.5,
            "signal bin i1 {} vs noise {}",
            mean(1),
            mean(0)
        );
        // Reproducible: the same call gives the same numbers.
        let bits = |v: &Vec<Vec<f64>>| v.iter().flatten().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(
            bits(&i1),
            bits(&i1_per_bin(
                &[x0c, x1c],
                d,
                &labels,
                c,
                5,
                0.2,
                &cfg,
                1,
                &|_, _| {}
            ))
        );
    }

    #[test]
    fn targets_round_trip_through_csv_with_quoting_and_unsolved_images() {
        let t = OstTargets {
            stimulus_ids: vec!["a".into(), "b,2".into()],
            object_names: vec!["car, sedan".into(), "dog".into()],
            ost_ms: vec![101.5, f64::NAN],
            thresholds: vec![1.25, 0.5],
        };
        let dir = std::env::temp_dir().join(format!("ventral-ost-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("t.csv");
        std::fs::write(&p, t.to_csv()).unwrap();
        let back = OstTargets::read(&p).unwrap();
        assert_eq!(back.stimulus_ids, t.stimulus_ids);
        assert_eq!(back.object_names, t.object_names);
        assert_eq!(back.thresholds, t.thresholds);
        assert_eq!(back.ost_ms[0], 101.5);
        assert!(back.ost_ms[1].is_nan());
        std::fs::write(
            &p,
            "stimulus_id,object_name,ost_ms,i1_threshold\na,x,1,1\na,y,2,1\n",
        )
        .unwrap();
        let e = OstTargets::read(&p).unwrap_err().to_string();
        assert!(
            e.contains("t.csv") && e.contains("row 3") && e.contains("twice"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
