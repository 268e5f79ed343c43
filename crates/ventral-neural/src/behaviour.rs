//! Behavioural consistency (Rajalingham et al. 2018) as Brain-Score computes it
//! (`metrics/i1i2/metric.py`, benchmark `Rajalingham2018-i2n`): per-image (i1) and
//! per-image-by-distractor (i2) d′ of a model's class probabilities, optionally normalised by
//! subtracting the object-level mean (i1n, i2n), correlated with the same quantity computed
//! from primate two-alternative trials, and divided by the square root of the trials' split-half
//! reliability.
//!
//! **Target** (trials: `stimulus_id`, `sample_obj`, `dist_obj`, `choice`): for image s of object
//! o and distractor c, `R[s, c]` = fraction of the trials of s in which c was a choice option
//! and was chosen (NaN when c = o or c was never offered).
//! **Model** (probabilities P [images, objects]): `R[s, c] = P[s, c] / (P[s, c] + P[s, o])`.
//! **d′**: `d′[s, c] = Φ⁻¹(1 − R[s, c]) − Φ⁻¹(FAR)` with FAR the mean of `R[j, o]` over the
//! images j of object c, clipped to ±5. **i2n**: subtract, per (object, distractor), the mean
//! over that object's images; **i1**: the mean over distractors (after normalising, for i1n).
//! **Consistency** per halving k: trials shuffled by NumPy's `RandomState(0)` (Brain-Score's
//! fixed seed, the same draws for score and ceiling), split in half; raw = Pearson r between
//! the model's matrix and half 0's over cells where the target has a value; ceiling = r between
//! the two halves; ceiled = raw / √ceiling. Reported: the mean and standard deviation (ddof 0)
//! over halvings (Brain-Score: 2), and Brain-Score's bounded score (the mean clipped to [0, 1]).
//!
//! Where Brain-Score's code fails rather than answers, ventral masks and says so in the docs:
//! its ceiling asserts that half 0 has no NaN where half 1 has a value (a pair never shown in
//! one half) — ventral correlates the cells where both halves have a value, which is Brain-Score's
//! own `skipna=True` path and equal to the default wherever the default runs.
//!
//! # Shapes
//! - probabilities [images, objects], row-major, images in [`Target::images`] order
//! - response and d′ matrices `[images, objects]`; i1 vectors `[images]`

use std::collections::BTreeMap;
use std::path::Path;

use ventral_core::rng::stream;

use crate::error::{NeuralError, Result, file_err};
use crate::logistic::{LogisticConfig, fit_predict_proba};
use crate::numpy_rng::RandomState;
use crate::ost::norm_ppf;
use crate::stats::pearson;

/// The four image-level behavioural metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    I1,
    I1n,
    I2,
    I2n,
}

impl Metric {
    pub const ALL: [Metric; 4] = [Metric::I1, Metric::I1n, Metric::I2, Metric::I2n];

    pub fn name(self) -> &'static str {
        match self {
            Metric::I1 => "i1",
            Metric::I1n => "i1n",
            Metric::I2 => "i2",
            Metric::I2n => "i2n",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| NeuralError::Invalid(format!("unknown metric `{s}` (i1, i1n, i2, i2n)")))
    }

    /// Averaged over distractors (i1, i1n).
    pub fn collapse(self) -> bool {
        matches!(self, Metric::I1 | Metric::I1n)
    }

    /// Object-level mean subtracted (i1n, i2n).
    pub fn normalize(self) -> bool {
        matches!(self, Metric::I1n | Metric::I2n)
    }
}

/// Two-alternative forced-choice trials.
#[derive(Debug, Clone, PartialEq)]
pub struct Trials {
    pub stimulus_id: Vec<String>,
    pub sample_obj: Vec<String>,
    pub dist_obj: Vec<String>,
    pub choice: Vec<String>,
}

/// The CSV header of [`Trials`].
pub const TRIALS_HEADER: [&str; 4] = ["stimulus_id", "sample_obj", "dist_obj", "choice"];

impl Trials {
    /// Reads trials from a CSV (columns [`TRIALS_HEADER`]; an optional `truth` column must equal
    /// `sample_obj`) or a BrainIO behavioural assembly (.nc: the data variable holds the
    /// choices, coordinates `stimulus_id`, `sample_obj`, `dist_obj` along `presentation`), and
    /// checks them (see [`Trials::check`]).
    pub fn read(path: &Path) -> Result<Self> {
        let src = path.display().to_string();
        let t = if path.extension().is_some_and(|e| e == "nc") {
            Self::read_nc(path)?
        } else {
            Self::read_csv(path)?
        };
        t.check().map_err(|m| file_err(&src, m))?;
        Ok(t)
    }

    fn read_csv(path: &Path) -> Result<Self> {
        let src = path.display().to_string();
        let mut r = csv::Reader::from_path(path).map_err(|e| file_err(&src, e))?;
        let headers = r.headers().map_err(|e| file_err(&src, e))?.clone();
        let col = |name: &str| headers.iter().position(|h| h == name);
        let mut idx = Vec::new();
        for name in TRIALS_HEADER {
            idx.push(col(name).ok_or_else(|| {
                file_err(
                    &src,
                    format!(
                        "no `{name}` column (a trials CSV needs {})",
                        TRIALS_HEADER.join(", ")
                    ),
                )
            })?);
        }
        let truth = col("truth");
        let mut t = Trials {
            stimulus_id: Vec::new(),
            sample_obj: Vec::new(),
            dist_obj: Vec::new(),
            choice: Vec::new(),
        };
        for (row, rec) in r.records().enumerate() {
            let rec = rec.map_err(|e| file_err(&src, e))?;
            let get = |i: usize| rec.get(i).unwrap_or("").trim().to_string();
            if let Some(ti) = truth
                && get(ti) != get(idx[1])
            {
                return Err(file_err(
                    &src,
                    format!(
                        "row {}: truth `{}` differs from sample_obj `{}`",
                        row + 2,
                        get(ti),
                        get(idx[1])
                    ),
                ));
            }
            t.stimulus_id.push(get(idx[0]));
            t.sample_obj.push(get(idx[1]));
            t.dist_obj.push(get(idx[2]));
            t.choice.push(get(idx[3]));
        }
        Ok(t)
    }

    fn read_nc(path: &Path) -> Result<Self> {
        let src = path.display().to_string();
        let (choice, coords) = crate::assembly::read_string_assembly(path)?;
        let get = |name: &str| -> Result<Vec<String>> {
            let c = coords.get(name).ok_or_else(|| {
                file_err(
                    &src,
                    format!("no `{name}` coordinate (a behavioural assembly needs stimulus_id, sample_obj, dist_obj)"),
                )
            })?;
            if c.len() != choice.len() {
                return Err(file_err(
                    &src,
                    format!("coordinate `{name}` is not along the trials' dimension"),
                ));
            }
            Ok(c.clone())
        };
        Ok(Trials {
            stimulus_id: get("stimulus_id")?,
            sample_obj: get("sample_obj")?,
            dist_obj: get("dist_obj")?,
            choice,
        })
    }

    /// Every trial names an image and two different objects, and the choice is one of them;
    /// at least two objects and two trials.
    pub fn check(&self) -> std::result::Result<(), String> {
        let n = self.choice.len();
        if n < 2 {
            return Err(format!("{n} trials; need at least 2"));
        }
        for i in 0..n {
            let (s, d, c) = (&self.sample_obj[i], &self.dist_obj[i], &self.choice[i]);
            if self.stimulus_id[i].is_empty() || s.is_empty() || d.is_empty() {
                return Err(format!(
                    "trial {i}: empty stimulus_id, sample_obj or dist_obj"
                ));
            }
            if s == d {
                return Err(format!(
                    "trial {i} ({}): sample_obj and dist_obj are both `{s}`",
                    self.stimulus_id[i]
                ));
            }
            if c != s && c != d {
                return Err(format!(
                    "trial {i} ({}): choice `{c}` is neither sample_obj `{s}` nor dist_obj `{d}`",
                    self.stimulus_id[i]
                ));
            }
        }
        Ok(())
    }

    /// The trials as CSV ([`TRIALS_HEADER`]).
    pub fn to_csv(&self) -> Result<String> {
        crate::tables::csv_table(
            "behaviour trials",
            &TRIALS_HEADER,
            (0..self.choice.len()).map(|i| {
                vec![
                    self.stimulus_id[i].clone(),
                    self.sample_obj[i].clone(),
                    self.dist_obj[i].clone(),
                    self.choice[i].clone(),
                ]
            }),
        )
    }
}

/// Trials indexed by image and object.
#[derive(Debug, Clone)]
pub struct Target {
    /// Images, sorted (Brain-Score sorts by `stimulus_id` before correlating).
    pub images: Vec<String>,
    /// Objects, sorted.
    pub objects: Vec<String>,
    /// Object of each image.
    pub truth: Vec<usize>,
    trial_image: Vec<usize>,
    trial_dist: Vec<usize>,
    trial_chose_dist: Vec<bool>,
}

impl Target {
    /// Indexes checked trials; `src` names them in errors (an image shown as two objects).
    pub fn new(t: &Trials, src: &str) -> Result<Self> {
        let mut objects: Vec<String> = t.sample_obj.iter().chain(&t.dist_obj).cloned().collect();
        objects.sort();
        objects.dedup();
        let obj: BTreeMap<&str, usize> = objects
            .iter()
            .enumerate()
            .map(|(i, o)| (o.as_str(), i))
            .collect();
        let mut truth_of: BTreeMap<&str, usize> = BTreeMap::new();
        for (id, s) in t.stimulus_id.iter().zip(&t.sample_obj) {
            let o = obj[s.as_str()];
            if let Some(&prev) = truth_of.get(id.as_str()) {
                if prev != o {
                    return Err(file_err(
                        src,
                        format!(
                            "stimulus `{id}` is the sample of both `{}` and `{s}`",
                            objects[prev]
                        ),
                    ));
                }
            } else {
                truth_of.insert(id, o);
            }
        }
        let images: Vec<String> = truth_of.keys().map(|s| s.to_string()).collect();
        let truth = truth_of.values().copied().collect();
        let img: BTreeMap<&str, usize> =
            truth_of.keys().enumerate().map(|(i, s)| (*s, i)).collect();
        Ok(Self {
            truth,
            trial_image: t.stimulus_id.iter().map(|s| img[s.as_str()]).collect(),
            trial_dist: t.dist_obj.iter().map(|s| obj[s.as_str()]).collect(),
            trial_chose_dist: t
                .choice
                .iter()
                .zip(&t.dist_obj)
                .map(|(c, d)| c == d)
                .collect(),
            images,
            objects,
        })
    }

    /// Number of trials.
    pub fn trials(&self) -> usize {
        self.trial_image.len()
    }

    /// `R[s, c]` from the trials `idx` ([images, objects]; NaN where c is the image's object or
    /// was never offered in these trials).
    pub fn response_matrix(&self, idx: &[usize]) -> Vec<f64> {
        let (n, k) = (self.images.len(), self.objects.len());
        let mut chosen = vec![0u32; n * k];
        let mut offered = vec![0u32; n * k];
        for &t in idx {
            let cell = self.trial_image[t] * k + self.trial_dist[t];
            offered[cell] += 1;
            chosen[cell] += u32::from(self.trial_chose_dist[t]);
        }
        (0..n * k)
            .map(|cell| {
                if cell % k == self.truth[cell / k] || offered[cell] == 0 {
                    f64::NAN
                } else {
                    f64::from(chosen[cell]) / f64::from(offered[cell])
                }
            })
            .collect()
    }
}

/// The model's `R[s, c] = P[s, c] / (P[s, c] + P[s, o])` (Brain-Score's
/// `target_distractor_scores`), NaN at c = o.
pub fn model_response_matrix(probs: &[f64], truth: &[usize], k: usize) -> Vec<f64> {
    let mut r = vec![f64::NAN; truth.len() * k];
    for (s, &o) in truth.iter().enumerate() {
        for c in (0..k).filter(|&c| c != o) {
            let pc = probs[s * k + c];
            r[s * k + c] = pc / (pc + probs[s * k + o]);
        }
    }
    r
}

/// Mean of the non-NaN values (NaN when there are none), as `numpy.nanmean`.
fn nanmean(v: impl Iterator<Item = f64>) -> f64 {
    let (mut s, mut n) = (0.0, 0usize);
    for x in v.filter(|x| !x.is_nan()) {
        s += x;
        n += 1;
    }
    if n == 0 { f64::NAN } else { s / n as f64 }
}

/// The metric's matrix from a response matrix `r` [images, objects]: d′ clipped to ±5,
/// normalised and collapsed as the metric asks. Returns [images, objects] (i2, i2n) or
/// `[images]` (i1, i1n).
pub fn metric_matrix(r: &[f64], truth: &[usize], k: usize, metric: Metric) -> Vec<f64> {
    let n = truth.len();
    // far[o][c]: mean over images j of object c of R[j, o].
    let mut far = vec![f64::NAN; k * k];
    for o in 0..k {
        for c in 0..k {
            far[o * k + c] = nanmean((0..n).filter(|&j| truth[j] == c).map(|j| r[j * k + o]));
        }
    }
    let mut d: Vec<f64> = (0..n * k)
        .map(|cell| {
            let (s, c) = (cell / k, cell % k);
            let hit = 1.0 - r[cell];
            (norm_ppf(hit) - norm_ppf(far[truth[s] * k + c])).clamp(-5.0, 5.0)
        })
        .collect();
    if metric.normalize() {
        for o in 0..k {
            for c in 0..k {
                let m = nanmean((0..n).filter(|&j| truth[j] == o).map(|j| d[j * k + c]));
                for j in (0..n).filter(|&j| truth[j] == o) {
                    d[j * k + c] -= m;
                }
            }
        }
    }
    if metric.collapse() {
        (0..n)
            .map(|s| nanmean(d[s * k..(s + 1) * k].iter().copied()))
            .collect()
    } else {
        d
    }
}

/// Pearson r over the cells where both have a value.
pub fn correlate(a: &[f64], b: &[f64]) -> f64 {
    let (x, y): (Vec<f64>, Vec<f64>) = a
        .iter()
        .zip(b)
        .filter(|(x, y)| !x.is_nan() && !y.is_nan())
        .map(|(x, y)| (*x, *y))
        .unzip();
    pearson(&x, &y)
}

/// The target side of every halving: half 0's metric matrices and the split-half ceilings.
#[derive(Debug, Clone)]
pub struct TargetHalves {
    pub metrics: Vec<Metric>,
    /// Per halving, per metric: half 0's matrix.
    pub half0: Vec<Vec<Vec<f64>>>,
    /// Per halving, per metric: r(half 0, half 1).
    pub ceiling: Vec<Vec<f64>>,
    /// Per halving: the trial indices of each half (for `splits.json`).
    pub halves: Vec<[Vec<usize>; 2]>,
}

impl TargetHalves {
    /// `halvings` draws of Brain-Score's `generate_halves` from one `RandomState(seed)`
    /// (Brain-Score: seed 0, 2 halvings).
    pub fn new(target: &Target, metrics: &[Metric], halvings: usize, seed: u32) -> Self {
        let mut rng = RandomState::new(seed);
        let n = target.trials();
        let k = target.objects.len();
        let mut out = TargetHalves {
            metrics: metrics.to_vec(),
            half0: Vec::new(),
            ceiling: Vec::new(),
            halves: Vec::new(),
        };
        for _ in 0..halvings {
            let mut idx: Vec<usize> = (0..n).collect();
            rng.shuffle(&mut idx);
            let h1 = idx.split_off(n / 2);
            let r0 = target.response_matrix(&idx);
            let r1 = target.response_matrix(&h1);
            let mut m0s = Vec::new();
            let mut ceil = Vec::new();
            for &m in metrics {
                let m0 = metric_matrix(&r0, &target.truth, k, m);
                let m1 = metric_matrix(&r1, &target.truth, k, m);
                ceil.push(correlate(&m0, &m1));
                m0s.push(m0);
            }
            out.half0.push(m0s);
            out.ceiling.push(ceil);
            out.halves.push([idx, h1]);
        }
        out
    }
}

/// A model's consistency with the target for one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Consistency {
    pub metric: Metric,
    /// Per halving: r(model, half 0).
    pub raw: Vec<f64>,
    /// Per halving: the split-half ceiling.
    pub ceiling: Vec<f64>,
    /// Per halving: raw / √ceiling (NaN where the ceiling is not positive).
    pub ceiled: Vec<f64>,
}

/// Mean and standard deviation (ddof 0).
pub fn mean_std(v: &[f64]) -> (f64, f64) {
    let m = v.iter().sum::<f64>() / v.len().max(1) as f64;
    let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len().max(1) as f64;
    (m, var.sqrt())
}

impl Consistency {
    /// Mean and standard deviation of the ceiled values over halvings.
    pub fn center_error(&self) -> (f64, f64) {
        mean_std(&self.ceiled)
    }

    /// Brain-Score's reported score: the ceiled mean bounded to [0, 1] (NaN stays NaN).
    pub fn bounded(&self) -> f64 {
        let c = self.center_error().0;
        if c.is_nan() { c } else { c.clamp(0.0, 1.0) }
    }
}

/// Consistency of model probabilities `probs` [images, objects] (rows in `target.images`
/// order, columns in `target.objects` order) with every metric of `halves`.
pub fn consistency(probs: &[f64], target: &Target, halves: &TargetHalves) -> Vec<Consistency> {
    let k = target.objects.len();
    let r = model_response_matrix(probs, &target.truth, k);
    halves
        .metrics
        .iter()
        .enumerate()
        .map(|(mi, &m)| {
            let model = metric_matrix(&r, &target.truth, k, m);
            let raw: Vec<f64> = halves
                .half0
                .iter()
                .map(|h| correlate(&model, &h[mi]))
                .collect();
            let ceiling: Vec<f64> = halves.ceiling.iter().map(|c| c[mi]).collect();
            let ceiled = raw
                .iter()
                .zip(&ceiling)
                .map(|(&r, &c)| if c > 0.0 { r / c.sqrt() } else { f64::NAN })
                .collect();
            Consistency {
                metric: m,
                raw,
                ceiling,
                ceiled,
            }
        })
        .collect()
}

/// Accuracy of the probabilities' argmax against the images' objects.
pub fn accuracy(probs: &[f64], truth: &[usize], k: usize) -> f64 {
    let hits = truth
        .iter()
        .enumerate()
        .filter(|&(s, &o)| {
            let row = &probs[s * k..(s + 1) * k];
            let best = (0..k).fold(0, |b, c| if row[c] > row[b] { c } else { b });
            best == o
        })
        .count();
    hits as f64 / truth.len().max(1) as f64
}

/// Stratified folds: each object's images (in order) shuffled by the named stream
/// `behaviour-folds` at the object's index and dealt to folds in turn. Returns the fold of
/// each image.
pub fn stratified_folds(truth: &[usize], k: usize, folds: usize, seed: u64) -> Vec<usize> {
    let mut fold = vec![0; truth.len()];
    for o in 0..k {
        let mut imgs: Vec<usize> = (0..truth.len()).filter(|&s| truth[s] == o).collect();
        crate::cv::shuffle(&mut imgs, &mut stream(seed, "behaviour-folds", &[o as u64]));
        for (pos, s) in imgs.into_iter().enumerate() {
            fold[s] = pos % folds;
        }
    }
    fold
}

/// Out-of-fold probabilities [n, k]: for each fold a decoder fitted on the other folds'
/// images predicts this fold's (`row(i)` the p features of image i). Every object needs at
/// least two images, so that every training set holds every object.
#[allow(clippy::too_many_arguments)]
pub fn cross_predict<'a>(
    n: usize,
    p: usize,
    row: impl Fn(usize) -> &'a [f32] + Copy,
    truth: &[usize],
    k: usize,
    fold: &[usize],
    folds: usize,
    cfg: &LogisticConfig,
) -> Result<Vec<f64>> {
    for o in 0..k {
        if truth.iter().filter(|&&t| t == o).count() < 2 {
            return Err(NeuralError::Invalid(format!(
                "object {o} has fewer than 2 images; cross-validated decoding needs 2"
            )));
        }
    }
    let mut probs = vec![f64::NAN; n * k];
    for f in 0..folds {
        let train: Vec<usize> = (0..n).filter(|&s| fold[s] != f).collect();
        let test: Vec<usize> = (0..n).filter(|&s| fold[s] == f).collect();
        if test.is_empty() {
            continue;
        }
        let y: Vec<usize> = train.iter().map(|&s| truth[s]).collect();
        let pr = fit_predict_proba(
            train.len(),
            |i| row(train[i]),
            &y,
            k,
            test.len(),
            |i| row(test[i]),
            p,
            cfg,
        )?;
        for (j, &s) in test.iter().enumerate() {
            probs[s * k..(s + 1) * k].copy_from_slice(&pr[j * k..(j + 1) * k]);
        }
    }
    Ok(probs)
}

/// One model step's decoding and consistency.
#[derive(Debug, Clone)]
pub struct StepScore {
    pub step: usize,
    /// Out-of-fold accuracy of the decoder on the target's images.
    pub accuracy: f64,
    pub consistency: Vec<Consistency>,
    /// [images, objects] probabilities.
    pub probs: Vec<f64>,
}

/// Where the decoder's fitting images come from.
#[derive(Debug, Clone, Copy)]
pub enum Decoding<'a> {
    /// Out of fold over the target's own images: `fold[i]` is image i's fold of `folds`.
    Folds { fold: &'a [usize], folds: usize },
    /// Brain-Score's protocol: one decoder per step fitted on separate images (`layer`'s
    /// file rows `rows`, objects `labels` indexing [`Target::objects`]) predicts every target
    /// image.
    FitSet {
        layer: &'a crate::features::Layer,
        rows: &'a [usize],
        labels: &'a [usize],
    },
}

/// Decodes every step of `layer` (`rows[i]`: the layer's file row of target image i) as
/// `decoding` says and scores each step against `halves`; steps run in parallel.
pub fn score_layer(
    layer: &crate::features::Layer,
    rows: &[usize],
    target: &Target,
    halves: &TargetHalves,
    decoding: Decoding<'_>,
    cfg: &LogisticConfig,
) -> Result<Vec<StepScore>> {
    use rayon::prelude::*;
    let k = target.objects.len();
    // Fewer steps than threads: let each fit's matrix products use the idle threads.
    let cfg = &LogisticConfig {
        parallel: layer.steps < rayon::current_num_threads(),
        ..*cfg
    };
    if let Decoding::FitSet { layer: fit, .. } = decoding
        && (fit.steps != layer.steps || fit.d != layer.d)
    {
        return Err(NeuralError::Invalid(format!(
            "layer `{}`: the fitting features are [{} steps, {} features], the target's [{}, {}]",
            layer.name, fit.steps, fit.d, layer.steps, layer.d
        )));
    }
    (0..layer.steps)
        .into_par_iter()
        .map(|t| {
            let probs = match decoding {
                Decoding::Folds { fold, folds } => cross_predict(
                    rows.len(),
                    layer.d,
                    |i| layer.row(t, rows[i]),
                    &target.truth,
                    k,
                    fold,
                    folds,
                    cfg,
                )?,
                Decoding::FitSet {
                    layer: fit,
                    rows: fit_rows,
                    labels,
                } => fit_predict_proba(
                    fit_rows.len(),
                    |i| fit.row(t, fit_rows[i]),
                    labels,
                    k,
                    rows.len(),
                    |i| layer.row(t, rows[i]),
                    layer.d,
                    cfg,
                )?,
            };
            Ok(StepScore {
                step: t,
                accuracy: accuracy(&probs, &target.truth, k),
                consistency: consistency(&probs, target, halves),
                probs,
            })
        })
        .collect()
}

/// A scored layer of a model, for the tables.
#[derive(Debug, Clone)]
pub struct LayerScores {
    pub model: String,
    pub layer: String,
    pub steps: Vec<StepScore>,
}

/// Header of [`summary_csv`].
pub const SUMMARY_HEADER: [&str; 12] = [
    "model",
    "layer",
    "step",
    "time_ms",
    "metric",
    "accuracy",
    "raw",
    "raw_error",
    "ceiling",
    "ceiled",
    "ceiled_error",
    "score",
];

/// `behaviour.csv`: one row per (model, layer, step, metric): accuracy, the raw consistency
/// (mean, sd over halvings), the mean ceiling, the ceiled consistency (mean, sd) and
/// Brain-Score's bounded score. `time_ms(step)` gives the step's time.
pub fn summary_csv(layers: &[LayerScores], time_ms: impl Fn(usize) -> f64) -> Result<String> {
    use crate::tables::csv_number as num;
    let mut rows = Vec::new();
    for l in layers {
        for s in &l.steps {
            for c in &s.consistency {
                let (raw, raw_sd) = mean_std(&c.raw);
                let (ceiled, ceiled_sd) = c.center_error();
                rows.push(vec![
                    l.model.clone(),
                    l.layer.clone(),
                    s.step.to_string(),
                    num(time_ms(s.step)),
                    c.metric.name().to_string(),
                    num(s.accuracy),
                    num(raw),
                    num(raw_sd),
                    num(mean_std(&c.ceiling).0),
                    num(ceiled),
                    num(ceiled_sd),
                    num(c.bounded()),
                ]);
            }
        }
    }
    crate::tables::csv_table("behaviour.csv", &SUMMARY_HEADER, rows.into_iter())
}

/// `behaviour_halvings.csv`: every halving's raw, ceiling and ceiled value.
pub fn halvings_csv(layers: &[LayerScores]) -> Result<String> {
    use crate::tables::csv_number as num;
    let mut rows = Vec::new();
    for l in layers {
        for s in &l.steps {
            for c in &s.consistency {
                for h in 0..c.raw.len() {
                    rows.push(vec![
                        l.model.clone(),
                        l.layer.clone(),
                        s.step.to_string(),
                        c.metric.name().to_string(),
                        h.to_string(),
                        num(c.raw[h]),
                        num(c.ceiling[h]),
                        num(c.ceiled[h]),
                    ]);
                }
            }
        }
    }
    crate::tables::csv_table(
        "behaviour_halvings.csv",
        &[
            "model", "layer", "step", "metric", "halving", "raw", "ceiling", "ceiled",
        ],
        rows.into_iter(),
    )
}

/// `target.csv`: the target's per-image i1 and i1n from all trials.
pub fn target_csv(target: &Target) -> Result<String> {
    use crate::tables::csv_number as num;
    let all: Vec<usize> = (0..target.trials()).collect();
    let k = target.objects.len();
    let r = target.response_matrix(&all);
    let i1 = metric_matrix(&r, &target.truth, k, Metric::I1);
    let i1n = metric_matrix(&r, &target.truth, k, Metric::I1n);
    crate::tables::csv_table(
        "target.csv",
        &["stimulus_id", "object_name", "i1", "i1n"],
        target.images.iter().enumerate().map(|(s, id)| {
            vec![
                id.clone(),
                target.objects[target.truth[s]].clone(),
                num(i1[s]),
                num(i1n[s]),
            ]
        }),
    )
}
