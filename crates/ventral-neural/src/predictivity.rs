//! Neural predictivity per time bin: model features (per layer, per step) → each neural site,
//! cross-validated by stimulus, with split-half ceilings and Nayebi's noise-corrected
//! consistency. See `docs/architecture.md` ("Brain comparison") for the definitions.

use faer::{Mat, Par};
use rayon::prelude::*;

use crate::ceiling::{BinCeiling, repetition_halves, split_half_ceiling_from};
use crate::cv::{Split, codes, shuffle_splits};
use crate::dual::{DualRidge, DualSplit, Gram};
use crate::error::{NeuralError, Result, file_err};
use crate::features::{Features, Layer};
use crate::recordings::Recordings;
use crate::regression::{LinearMap, LooGrid, Pls, RidgeCv};
use crate::stats::{mean_ci, nan_median, pearson, percentile, spearman_brown};

/// The linear map family.
#[derive(Debug, Clone)]
pub enum Regressor {
    Pls(Pls),
    Ridge(RidgeCv),
}

impl Regressor {
    pub fn fit(&self, x: faer::MatRef<'_, f64>, y: faer::MatRef<'_, f64>) -> Result<LinearMap> {
        match self {
            Regressor::Pls(p) => p.fit(x, y),
            Regressor::Ridge(r) => Ok(r.fit_grid(x, y, LooGrid::Pruned)?.map),
        }
    }
    pub fn name(&self) -> String {
        match self {
            Regressor::Pls(p) => format!("pls{}", p.n_components),
            Regressor::Ridge(_) => "ridge".into(),
        }
    }
}

/// How model time steps meet neural time bins.
#[derive(Debug, Clone, PartialEq)]
pub enum StepMapping {
    /// One step per `step_ms` bin: step = round((bin_start − offset) / step_ms), clamped to
    /// the model's steps. The offset of a region defaults to its first bin's start.
    Recurrent {
        step_ms: f64,
        offsets: Vec<(String, f64)>,
        default_offset: Option<f64>,
    },
    /// Every step against every bin (the model-time × neural-time matrix).
    AllSteps,
}

/// How single-step (feedforward) layers meet time bins.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FeedforwardMapping {
    /// Every layer against every bin.
    Uniform,
    /// Layers in file order share the bins out: layer i of L gets bins b with ⌊b·L/B⌋ = i.
    Graded,
}

/// How a fit sees the features: the n × p matrix itself (primal) or the n × n Gram matrix of
/// the stimuli (dual, [`crate::dual`]), computed once per (layer, step) and shared by every
/// split, region, bin and trial-half resample. Both give the same predictions to rounding.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Form {
    /// Dual where a layer has at least as many features as a split has training stimuli
    /// (scikit-learn's own rule for `RidgeCV`'s `gram` mode), primal otherwise.
    #[default]
    Auto,
    Primal,
    Dual,
}

impl Form {
    /// Whether features of width `p` with `n_train` training stimuli are fitted in dual form.
    pub fn is_dual(self, p: usize, n_train: usize) -> bool {
        match self {
            Form::Auto => p >= n_train,
            Form::Primal => false,
            Form::Dual => true,
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "auto" => Some(Form::Auto),
            "primal" => Some(Form::Primal),
            "dual" => Some(Form::Dual),
            _ => None,
        }
    }
}

/// How the cross-validation splits over stimuli are drawn.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum SplitProcedure {
    /// ventral's stratified draws from the named ChaCha stream `neural-fit-cv` (largest
    /// remainder per class).
    #[default]
    Ventral,
    /// Brain-Score's: scikit-learn's `StratifiedShuffleSplit` by `object_name`
    /// (`ShuffleSplit` without object names) driven by NumPy's `RandomState(seed)`, over the
    /// stimuli in the assembly's order — the same index sets as Brain-Score's `Split`.
    BrainScore,
    /// Splits given by the user (a `splits.json`), as stimulus indices.
    Given(Vec<Split>),
}

impl SplitProcedure {
    /// A description for `splits.json` and `run.json`.
    pub fn describe(&self, opts: &FitOptions, stratified: bool) -> String {
        match self {
            Self::Ventral => format!(
                "ventral: {}{} splits, train fraction {}, ChaCha stream 'neural-fit-cv' of seed {}",
                if stratified {
                    "stratified by object_name, "
                } else {
                    ""
                },
                opts.n_splits,
                opts.train_frac,
                opts.seed
            ),
            Self::BrainScore => format!(
                "brainscore: scikit-learn {}(n_splits={}, train_size={}, random_state={}){}",
                if stratified {
                    "StratifiedShuffleSplit"
                } else {
                    "ShuffleSplit"
                },
                opts.n_splits,
                opts.train_frac,
                opts.seed,
                if stratified { " on object_name" } else { "" }
            ),
            Self::Given(s) => format!("given: {} splits from a splits file", s.len()),
        }
    }
}

/// Options of [`fit_predictivity`].
#[derive(Debug, Clone)]
pub struct FitOptions {
    pub regressor: Regressor,
    /// Primal (features) or dual (Gram matrix) fits; the same numbers either way.
    pub form: Form,
    pub procedure: SplitProcedure,
    /// The ceiling's repetition halvings when given (from a splits.json); drawn otherwise.
    pub given_halves: Option<Vec<crate::ceiling::Halving>>,
    pub n_splits: usize,
    pub train_frac: f64,
    pub seed: u64,
    pub steps: StepMapping,
    pub feedforward: FeedforwardMapping,
    /// Also fit one map shared over the bins of a region (span-time).
    pub shared: bool,
    /// Random halvings for the ceilings.
    pub ceiling_splits: usize,
    /// Trial-half bootstraps for Nayebi's consistency (0 = skip).
    pub consistency_bootstraps: usize,
    /// Region → the only layers fitted to it (regions not listed take every layer).
    pub areas: Vec<(String, Vec<String>)>,
}

impl Default for FitOptions {
    fn default() -> Self {
        Self {
            regressor: Regressor::Pls(Pls::default()),
            form: Form::Auto,
            procedure: SplitProcedure::Ventral,
            given_halves: None,
            n_splits: 10,
            train_frac: 0.9,
            seed: 1,
            steps: StepMapping::Recurrent {
                step_ms: 10.0,
                offsets: Vec::new(),
                default_offset: None,
            },
            feedforward: FeedforwardMapping::Uniform,
            shared: false,
            ceiling_splits: 10,
            consistency_bootstraps: 10,
            areas: Vec::new(),
        }
    }
}

/// Peak memory of [`fit_predictivity`] on one features file, by part (bytes).
///
/// - `features`: the selected layers, held as f32: Σ steps × rows × units × 4;
/// - `gram`: per wide (dual) layer-step in flight, the N × N f64 Gram matrix: N² × 8;
/// - `per_thread`: per worker, a dual split's kernels, (n² + m·n) × 8 (three n² for ridge's
///   eigendecomposition), or a primal fit's copies of the features, ≈ 3·n·d × 8 (n train,
///   m test stimuli, d units of the widest layer);
/// - `threads`: rayon's workers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MemoryPlan {
    pub features: u64,
    pub gram: u64,
    pub per_thread: u64,
    pub threads: u64,
}

impl MemoryPlan {
    pub fn new(
        shapes: &[crate::features::LayerShape],
        n_stimuli: usize,
        n_train: usize,
        n_sites: usize,
        opts: &FitOptions,
        threads: usize,
    ) -> Self {
        let (n, m, big_n) = (
            n_train as u64,
            n_stimuli.saturating_sub(n_train) as u64,
            n_stimuli as u64,
        );
        // Features stream one (layer, step) at a time: the raw bytes (≤ 8 per value), the
        // decoded f32 and the step handed to the fits; span-time maps (`shared`) hold a layer.
        let block = |s: &crate::features::LayerShape| (s.n as u64) * (s.d as u64) * 16;
        let mut plan = MemoryPlan {
            features: shapes
                .iter()
                .map(|s| {
                    if opts.shared {
                        s.bytes() + block(s)
                    } else {
                        block(s)
                    }
                })
                .max()
                .unwrap_or(0),
            gram: 0,
            per_thread: 0,
            threads: threads.max(1) as u64,
        };
        for s in shapes {
            let (gram, work) = if opts.form.is_dual(s.d, n_train) {
                let kernels = (n * n + m * n) * 8;
                // Ridge: the eigenvectors and their squares (n² each), the leverages of every
                // alpha (n·A) and, at worst, the residuals [n, q] of every alpha the pruned
                // search evaluates.
                let ridge = match &opts.regressor {
                    Regressor::Ridge(r) => {
                        let a = r.alphas.len() as u64;
                        (3 * n * n + n * a + (a + 2) * n * n_sites as u64) * 8
                    }
                    Regressor::Pls(_) => 0,
                };
                (big_n * big_n * 8 + big_n * 256 * 8, kernels + ridge)
            } else {
                (0, 3 * (n + m) * s.d as u64 * 8)
            };
            plan.gram = plan.gram.max(gram);
            plan.per_thread = plan.per_thread.max(work);
        }
        plan
    }

    pub fn total(&self) -> u64 {
        self.features + self.gram + self.threads * self.per_thread
    }

    /// "1.2 GiB (features 800 MiB + Gram 72 MiB + 2 threads × 150 MiB)".
    pub fn describe(&self) -> String {
        use ventral_core::mem::human;
        format!(
            "{} (features {} + Gram {} + {} threads × {})",
            human(self.total()),
            human(self.features),
            human(self.gram),
            self.threads,
            human(self.per_thread)
        )
    }
}

/// One row of `predictivity.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub model: String,
    pub layer: String,
    pub timestep: Option<usize>,
    pub region: String,
    pub time_bin_start: f64,
    pub time_bin_end: f64,
    pub metric: String,
    pub value: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

pub use crate::tables::{csv_number, csv_table};
use crate::tables::{fit_key_header, fit_key_row};

impl Row {
    /// The row's `predictivity.csv` fields (empty for a missing step or undefined value).
    pub fn fields(&self) -> Vec<String> {
        let f = csv_number;
        fit_key_row(
            &self.model,
            &self.layer,
            self.timestep.map(|t| t.to_string()).unwrap_or_default(),
            &self.region,
            (self.time_bin_start, self.time_bin_end),
            [
                self.metric.clone(),
                f(self.value),
                f(self.ci_low),
                f(self.ci_high),
            ],
        )
    }
}

/// `predictivity.csv`: one line per [`Row`] (names quoted where they need it).
pub fn predictivity_csv(rows: &[Row]) -> Result<String> {
    csv_table(
        "predictivity.csv",
        &fit_key_header(&["metric", "value", "ci_low", "ci_high"]),
        rows.iter().map(Row::fields),
    )
}

/// One per-site row of a fit: (layer, timestep, region, bin index, neuroid_id, r — the mean
/// over splits of the held-out Pearson r — and the site's split-half ceiling).
pub type SiteRow = (String, usize, String, usize, String, f64, f64);

/// `sites.csv`: per model (label, its fit's [`SiteRow`]s) and site, with the bins' times.
pub fn sites_csv(models: &[(String, Vec<SiteRow>)], bins: &[(f64, f64)]) -> Result<String> {
    csv_table(
        "sites.csv",
        &fit_key_header(&["neuroid_id", "r", "ceiling"]),
        models.iter().flat_map(|(model, sites)| {
            sites.iter().map(move |(layer, t, region, b, nid, r, c)| {
                fit_key_row(
                    model,
                    layer,
                    t.to_string(),
                    region,
                    bins[*b],
                    [nid.clone(), csv_number(*r), csv_number(*c)],
                )
            })
        }),
    )
}

/// Per region (in the recordings' order) its response latency from the ceilings: (region,
/// latency ms, peak ceiling), regions without a positive ceiling left out
/// ([`crate::ceiling::latency_from_ceiling`]).
pub fn latencies(rec: &Recordings, ceil: &[Vec<BinCeiling>]) -> Vec<(String, f64, f64)> {
    let starts: Vec<f64> = rec.bins.iter().map(|b| b.0).collect();
    rec.region_sites()
        .into_iter()
        .zip(ceil)
        .filter_map(|((region, _), rc)| {
            crate::ceiling::latency_from_ceiling(rc, &starts).map(|(l, p)| (region, l, p))
        })
        .collect()
}

/// `latency.csv` from [`latencies`].
pub fn latency_csv(lat: &[(String, f64, f64)]) -> Result<String> {
    csv_table(
        "latency.csv",
        &["region", "latency_ms", "peak_ceiling"],
        lat.iter()
            .map(|(r, l, p)| vec![r.clone(), l.to_string(), p.to_string()]),
    )
}

/// (layer, step, region, bin) combinations to fit, from the mappings.
pub fn assignments(
    layers: &[Layer],
    rec: &Recordings,
    opts: &FitOptions,
) -> Vec<(usize, usize, usize, usize)> {
    let regions = rec.region_sites();
    let nb = rec.n_bins();
    let ff: Vec<usize> = (0..layers.len())
        .filter(|&l| layers[l].steps == 1)
        .collect();
    let mut out = Vec::new();
    for (l, layer) in layers.iter().enumerate() {
        for (ri, (region, _)) in regions.iter().enumerate() {
            if let Some((_, only)) = opts.areas.iter().find(|(r, _)| r == region)
                && !only.contains(&layer.name)
            {
                continue;
            }
            for b in 0..nb {
                if layer.steps == 1 {
                    let keep = match opts.feedforward {
                        FeedforwardMapping::Uniform => true,
                        FeedforwardMapping::Graded => {
                            let i = ff.iter().position(|&x| x == l).unwrap_or(0);
                            b * ff.len() / nb == i
                        }
                    };
                    if keep {
                        out.push((l, 0, ri, b));
                    }
                    continue;
                }
                match &opts.steps {
                    StepMapping::AllSteps => (0..layer.steps).for_each(|t| out.push((l, t, ri, b))),
                    StepMapping::Recurrent {
                        step_ms,
                        offsets,
                        default_offset,
                    } => {
                        let offset = offsets
                            .iter()
                            .find(|(r, _)| r == region)
                            .map(|(_, o)| *o)
                            .or(*default_offset)
                            .unwrap_or(rec.bins[0].0);
                        let t = ((rec.bins[b].0 - offset) / step_ms).round();
                        let t = t.clamp(0.0, (layer.steps - 1) as f64) as usize;
                        out.push((l, t, ri, b));
                    }
                }
            }
        }
    }
    out
}

fn x_matrix(layer: &Layer, step: usize, rows: &[usize], stim: &[usize]) -> Mat<f64> {
    Mat::from_fn(stim.len(), layer.d, |i, j| {
        layer.at(step, rows[stim[i]], j) as f64
    })
}

fn y_matrix(
    arr: &[f64],
    nk: usize,
    nb: usize,
    bin: usize,
    sites: &[usize],
    stim: &[usize],
) -> Mat<f64> {
    Mat::from_fn(stim.len(), sites.len(), |i, j| {
        arr[(stim[i] * nk + sites[j]) * nb + bin]
    })
}

fn col_r(a: &Mat<f64>, b: &Mat<f64>) -> Vec<f64> {
    (0..a.ncols())
        .map(|j| pearson(a.col_as_slice(j), b.col_as_slice(j)))
        .collect()
}

/// Per-site held-out r of one (job, split), and the per-resample consistency medians.
type Scores = (Vec<f64>, Vec<f64>);

/// Scores one (job, split) with `fit` (training targets → held-out predictions): Pearson r per
/// site on the held-out stimuli, and Nayebi's consistency per trial-half resample (each half's
/// map fitted on that half's responses).
fn score(
    fit: &dyn Fn(faer::MatRef<'_, f64>) -> Result<Mat<f64>>,
    rec: &Recordings,
    halves: &[(Vec<f64>, Vec<f64>)],
    bin: usize,
    sites: &[usize],
    sp: &Split,
) -> Result<Scores> {
    let (nk, nb) = (rec.n_neuroids(), rec.n_bins());
    let ytr = y_matrix(&rec.mean, nk, nb, bin, sites, &sp.train);
    let yte = y_matrix(&rec.mean, nk, nb, bin, sites, &sp.test);
    let r = col_r(&fit(ytr.as_ref())?, &yte);
    let mut cons = Vec::with_capacity(halves.len());
    for (h1, h2) in halves {
        let p1 = fit(y_matrix(h1, nk, nb, bin, sites, &sp.train).as_ref())?;
        let p2 = fit(y_matrix(h2, nk, nb, bin, sites, &sp.train).as_ref())?;
        let y1te = y_matrix(h1, nk, nb, bin, sites, &sp.test);
        let y2te = y_matrix(h2, nk, nb, bin, sites, &sp.test);
        let (rxx, ryy) = (col_r(&p1, &p2), col_r(&y1te, &y2te));
        let per: Vec<f64> = (0..sites.len())
            .map(|k| r[k] / (spearman_brown(rxx[k], 2.0) * spearman_brown(ryy[k], 2.0)).sqrt())
            .collect();
        cons.push(nan_median(&per));
    }
    Ok((r, cons))
}

/// Everything `neural-fit` computes for one feature file.
#[derive(Debug, Clone)]
pub struct FitResult {
    pub rows: Vec<Row>,
    /// Per-site rows: (layer, timestep, region, bin, neuroid_id, r, ceiling).
    pub sites: Vec<SiteRow>,
    /// Per (layer, step, region, bin) and split: the median over the region's sites of the
    /// held-out Pearson r — Brain-Score's `score.raw` reduced over neuroids; the `r` row of
    /// `rows` is their mean.
    pub per_split: Vec<SplitScore>,
    /// Per layer, the fitted steps at which every unit is constant across the stimuli (an
    /// area the input has not reached, or a dead layer): their fits predict the training mean
    /// and their r is undefined.
    pub constant_steps: Vec<(String, Vec<usize>)>,
}

/// One split's score of one fit (a row of `predictivity_splits.csv`).
#[derive(Debug, Clone, PartialEq)]
pub struct SplitScore {
    pub model: String,
    pub layer: String,
    pub timestep: usize,
    pub region: String,
    pub time_bin_start: f64,
    pub time_bin_end: f64,
    /// `r` (a map per bin) or `r_shared` (one span-time map over the region's bins).
    pub metric: String,
    /// Index into the run's `splits.json`.
    pub split: usize,
    /// Median over sites of the held-out Pearson r (NaN when undefined).
    pub r: f64,
}

/// `predictivity_splits.csv`: one row per fit and split (quoted where a name needs it).
pub fn split_scores_csv(scores: &[SplitScore]) -> Result<String> {
    csv_table(
        "predictivity_splits.csv",
        &fit_key_header(&["metric", "split", "r"]),
        scores.iter().map(|s| {
            fit_key_row(
                &s.model,
                &s.layer,
                s.timestep.to_string(),
                &s.region,
                (s.time_bin_start, s.time_bin_end),
                [s.metric.clone(), s.split.to_string(), csv_number(s.r)],
            )
        }),
    )
}

/// `ceiling_splits.csv`: the split-half ceiling of every region and bin per halving.
pub fn ceiling_splits_csv(rec: &Recordings, ceil: &[Vec<BinCeiling>]) -> Result<String> {
    let rows = rec
        .region_sites()
        .into_iter()
        .zip(ceil)
        .flat_map(|((region, _), per_bin)| {
            per_bin.iter().flat_map(move |c| {
                let (bs, be) = rec.bins[c.bin];
                let region = region.clone();
                c.per_halving.iter().enumerate().map(move |(h, v)| {
                    vec![
                        region.clone(),
                        bs.to_string(),
                        be.to_string(),
                        h.to_string(),
                        csv_number(*v),
                    ]
                })
            })
        });
    csv_table(
        "ceiling_splits.csv",
        &[
            "region",
            "time_bin_start",
            "time_bin_end",
            "halving",
            "ceiling",
        ],
        rows,
    )
}

/// The stimulus splits for `rec` (stratified by `object_name` when present) by
/// `opts.procedure`.
pub fn stimulus_splits(rec: &Recordings, opts: &FitOptions) -> Result<Vec<Split>> {
    let n = rec.n_stimuli();
    match &opts.procedure {
        SplitProcedure::Ventral => {
            let groups = rec.object_names.as_ref().map(|o| codes(o));
            Ok(shuffle_splits(
                n,
                groups.as_deref(),
                opts.n_splits,
                opts.train_frac,
                opts.seed,
                "neural-fit-cv",
            ))
        }
        SplitProcedure::BrainScore => {
            let seed = u32::try_from(opts.seed).map_err(|_| {
                NeuralError::Invalid(format!(
                    "Brain-Score's splits use NumPy's RandomState, whose seed is 32-bit; got {}",
                    opts.seed
                ))
            })?;
            match &rec.object_names {
                Some(o) => crate::numpy_rng::stratified_shuffle_split(
                    o,
                    opts.n_splits,
                    opts.train_frac,
                    seed,
                ),
                None => crate::numpy_rng::shuffle_split(n, opts.n_splits, opts.train_frac, seed),
            }
            .map_err(|e| file_err(&rec.source, e))
        }
        SplitProcedure::Given(s) => {
            if let Some(i) = s
                .iter()
                .flat_map(|x| x.train.iter().chain(&x.test))
                .find(|&&i| i >= n)
            {
                return Err(NeuralError::Invalid(format!(
                    "a given split names stimulus {i}, but the recordings have {n}"
                )));
            }
            Ok(s.clone())
        }
    }
}

/// The splits as JSON (`splits.json`): the procedure, the seed and, per split, the train and
/// test `stimulus_id`s — what `read_splits_json` reads back.
pub fn splits_json(
    splits: &[Split],
    ids: &[String],
    procedure: &str,
    seed: u64,
) -> serde_json::Value {
    let names = |v: &[usize]| v.iter().map(|&i| ids[i].clone()).collect::<Vec<_>>();
    serde_json::json!({
        "procedure": procedure,
        "seed": seed,
        "splits": splits
            .iter()
            .map(|s| serde_json::json!({ "train": names(&s.train), "test": names(&s.test) }))
            .collect::<Vec<_>>(),
    })
}

/// The ceiling halvings recorded in a `splits.json` (`ceiling_halves.halves`, repetition
/// indices), as masks over `n_reps`; `None` when the file has none.
pub fn read_halves_json(
    path: &std::path::Path,
    n_reps: usize,
) -> Result<Option<Vec<crate::ceiling::Halving>>> {
    let label = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| file_err(&label, e))?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| file_err(&label, e))?;
    let Some(list) = v["ceiling_halves"]["halves"].as_array() else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(list.len());
    for (k, h) in list.iter().enumerate() {
        let mut masks = [vec![false; n_reps], vec![false; n_reps]];
        for (m, key) in masks.iter_mut().zip(["first", "second"]) {
            let arr = h[key].as_array().ok_or_else(|| {
                file_err(&label, format!("ceiling halving {k} has no `{key}` list"))
            })?;
            for r in arr {
                let r = r.as_u64().map(|r| r as usize).filter(|&r| r < n_reps).ok_or_else(|| {
                    file_err(
                        &label,
                        format!("ceiling halving {k} `{key}`: {r} is not a repetition index below {n_reps}"),
                    )
                })?;
                m[r] = true;
            }
        }
        let [a, b] = masks;
        out.push((a, b));
    }
    Ok(Some(out))
}

/// Read a `splits.json` (as [`splits_json`] writes it) against the recordings' stimulus ids;
/// every error names the file and the split.
pub fn read_splits_json(path: &std::path::Path, ids: &[String]) -> Result<Vec<Split>> {
    let label = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| file_err(&label, e))?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| file_err(&label, e))?;
    let list = v["splits"]
        .as_array()
        .ok_or_else(|| file_err(&label, "no `splits` array"))?;
    if list.is_empty() {
        return Err(file_err(&label, "`splits` is empty"));
    }
    let index: std::collections::HashMap<&str, usize> = ids
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i))
        .collect();
    let mut out = Vec::with_capacity(list.len());
    for (k, s) in list.iter().enumerate() {
        let mut sets = [Vec::new(), Vec::new()];
        for (set, key) in sets.iter_mut().zip(["train", "test"]) {
            let arr = s[key]
                .as_array()
                .ok_or_else(|| file_err(&label, format!("split {k} has no `{key}` list")))?;
            for id in arr {
                let id = id.as_str().ok_or_else(|| {
                    file_err(&label, format!("split {k} `{key}`: ids must be strings"))
                })?;
                let i = *index.get(id).ok_or_else(|| {
                    file_err(
                        &label,
                        format!("split {k} `{key}`: stimulus_id '{id}' is not in the recordings"),
                    )
                })?;
                set.push(i);
            }
            set.sort_unstable();
            if set.windows(2).any(|w| w[0] == w[1]) {
                return Err(file_err(
                    &label,
                    format!("split {k} `{key}` repeats a stimulus"),
                ));
            }
            if set.is_empty() {
                return Err(file_err(&label, format!("split {k} `{key}` is empty")));
            }
        }
        let [train, test] = sets;
        if train.iter().any(|i| test.binary_search(i).is_ok()) {
            return Err(file_err(
                &label,
                format!("split {k}: a stimulus is in both train and test"),
            ));
        }
        out.push(Split { train, test });
    }
    Ok(out)
}

/// Ceilings per region (None when the recordings have a single repetition).
pub fn ceilings(rec: &Recordings, opts: &FitOptions) -> Result<Option<Vec<Vec<BinCeiling>>>> {
    if rec.n_reps < 2 {
        return Ok(None);
    }
    let halves = ceiling_halves(rec, opts)?;
    rec.region_sites()
        .iter()
        .map(|(_, sites)| split_half_ceiling_from(rec, sites, &halves, opts.seed))
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

/// The repetition halvings of the ceilings: Brain-Score's draws with
/// [`SplitProcedure::BrainScore`], ventral's stream `ceiling-halves` otherwise.
pub fn ceiling_halves(rec: &Recordings, opts: &FitOptions) -> Result<Vec<crate::ceiling::Halving>> {
    if rec.n_reps < 2 {
        return Ok(Vec::new());
    }
    if let Some(h) = &opts.given_halves {
        if let Some((a, _)) = h
            .iter()
            .find(|(a, b)| a.len() != rec.n_reps || b.len() != rec.n_reps)
        {
            return Err(NeuralError::Invalid(format!(
                "the given ceiling halves cover {} repetitions; the recordings have {}",
                a.len(),
                rec.n_reps
            )));
        }
        return Ok(h.clone());
    }
    match opts.procedure {
        SplitProcedure::BrainScore => {
            crate::ceiling::brainscore_halves(rec.n_reps, opts.ceiling_splits, opts.seed)
                .map_err(|e| file_err(&rec.source, e))
        }
        _ => Ok(repetition_halves(
            rec.n_reps,
            opts.ceiling_splits,
            opts.seed,
            "ceiling-halves",
        )),
    }
}

/// Fits every assignment of `feats` to `rec` and returns the tidy rows (ceiling rows are
/// produced by [`ceiling_rows`], once per recording).
/// A score and its interval divided by the ceiling (Brain-Score's convention); no value (NaN,
/// written empty) where the ceiling is not positive — dividing by it would invert or explode the
/// interval (e.g. value −0.022 with interval 1.193 … −1.238 at a ceiling of −0.02).
pub fn ceiled((v, lo, hi): (f64, f64, f64), ceiling: f64) -> (f64, f64, f64) {
    if ceiling.is_finite() && ceiling > 0.0 {
        (v / ceiling, lo / ceiling, hi / ceiling)
    } else {
        (f64::NAN, f64::NAN, f64::NAN)
    }
}

pub fn fit_predictivity(
    feats: &Features,
    rec: &Recordings,
    ceil: Option<&[Vec<BinCeiling>]>,
    opts: &FitOptions,
) -> Result<FitResult> {
    fit_predictivity_with_progress(feats, rec, ceil, opts, &|_, _| {})
}

/// [`fit_predictivity`] reporting `(fits done, fits in all)` after every (layer, step, region,
/// bin, split) fit, from the worker threads.
pub fn fit_predictivity_with_progress(
    feats: &Features,
    rec: &Recordings,
    ceil: Option<&[Vec<BinCeiling>]>,
    opts: &FitOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<FitResult> {
    if opts.n_splits == 0 || !(opts.train_frac > 0.0 && opts.train_frac < 1.0) {
        return Err(NeuralError::Invalid(
            "need n_splits ≥ 1 and 0 < train_frac < 1".into(),
        ));
    }
    let regions = rec.region_sites();
    if let StepMapping::Recurrent { offsets, .. } = &opts.steps {
        let have: Vec<&str> = regions.iter().map(|(r, _)| r.as_str()).collect();
        if let Some((r, _)) = offsets.iter().find(|(r, _)| !have.contains(&r.as_str())) {
            return Err(NeuralError::Invalid(format!(
                "--offset-ms {r}=…: the recordings have no region {r} (regions: {})",
                have.join(", ")
            )));
        }
    }
    let splits = stimulus_splits(rec, opts)?;
    let jobs = assignments(&feats.layers, rec, opts);
    // Trial halves for the consistency (same halves for every job).
    let halves: Vec<(Vec<f64>, Vec<f64>)> = if opts.consistency_bootstraps > 0 && rec.n_reps >= 2 {
        repetition_halves(
            rec.n_reps,
            opts.consistency_bootstraps,
            opts.seed,
            "consistency-halves",
        )
        .iter()
        .map(|(a, b)| Ok((rec.average(a)?, rec.average(b)?)))
        .collect::<Result<_>>()?
    } else {
        Vec::new()
    };
    // Results per (job, split), filled group by group: the jobs that share a (layer, step)
    // share its features, and in dual form its Gram matrix.
    let ns = splits.len();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let total = jobs.len() * ns;
    let report = || {
        let k = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        progress(k, total);
    };
    let mut groups: Vec<((usize, usize), Vec<usize>)> = Vec::new();
    for (j, &(l, t, _, _)) in jobs.iter().enumerate() {
        match groups.iter_mut().find(|(k, _)| *k == (l, t)) {
            Some((_, v)) => v.push(j),
            None => groups.push(((l, t), vec![j])),
        }
    }
    let max_train = splits.iter().map(|s| s.train.len()).max().unwrap_or(0);
    let mut slots: Vec<Option<Result<Scores>>> = (0..total).map(|_| None).collect();
    // Layer by layer, step by step: a layer not in memory is streamed from its file one
    // (layer, step) at a time, and each step's data is dropped once its group is fitted.
    let mut constant: Vec<(String, Vec<usize>)> = Vec::new();
    let mut group_layers: Vec<usize> = groups.iter().map(|((l, _), _)| *l).collect();
    group_layers.dedup();
    for &l in &group_layers {
        feats.for_each_step(l, |layer: &Layer| -> Result<()> {
            let t = &layer.first_step;
            let Some((_, members)) = groups.iter().find(|(k, _)| *k == (l, *t)) else {
                return Ok(());
            };
            if layer.constant_at(*t, &feats.rows) {
                match constant.iter_mut().find(|(n, _)| *n == layer.name) {
                    Some((_, v)) => v.push(*t),
                    None => constant.push((layer.name.clone(), vec![*t])),
                }
            }
            let score_job =
                |j: usize, s: usize, fit: &dyn Fn(faer::MatRef<'_, f64>) -> Result<Mat<f64>>| {
                    let (_, _, ri, b) = jobs[j];
                    let r = score(fit, rec, &halves, b, &regions[ri].1, &splits[s]);
                    report();
                    r
                };
            if opts.form.is_dual(layer.d, max_train) {
                let gram = Gram::new(
                    rec.n_stimuli(),
                    layer.d,
                    |i| layer.row(*t, feats.rows[i]),
                    Par::rayon(0),
                );
                // Splits in chunks of one per thread: their kernels are n × n each.
                for chunk in (0..ns)
                    .collect::<Vec<_>>()
                    .chunks(rayon::current_num_threads().max(1))
                {
                    let prepared: Vec<(DualSplit, Option<DualRidge>)> = chunk
                        .par_iter()
                        .map(|&s| {
                            let ds = DualSplit::new(&gram, &splits[s].train, &splits[s].test);
                            let dr = match &opts.regressor {
                                Regressor::Ridge(_) => Some(DualRidge::new(&ds)?),
                                Regressor::Pls(_) => None,
                            };
                            Ok((ds, dr))
                        })
                        .collect::<Result<_>>()?;
                    let items: Vec<(usize, usize)> = (0..chunk.len())
                        .flat_map(|c| members.iter().map(move |&j| (c, j)))
                        .collect();
                    let out: Vec<Result<Scores>> = items
                        .par_iter()
                        .map(|&(c, j)| {
                            let (ds, dr) = &prepared[c];
                            let fit = |y: faer::MatRef<'_, f64>| match (&opts.regressor, dr) {
                                (Regressor::Pls(p), _) => p.fit_predict_dual(ds, y),
                                (Regressor::Ridge(r), Some(dr)) => {
                                    Ok(r.fit_predict_dual(dr, y, LooGrid::Pruned)?.0)
                                }
                                (Regressor::Ridge(_), None) => {
                                    Err(NeuralError::Invalid("internal: no ridge kernel".into()))
                                }
                            };
                            score_job(j, chunk[c], &fit)
                        })
                        .collect();
                    for (&(c, j), r) in items.iter().zip(out) {
                        slots[j * ns + chunk[c]] = Some(r);
                    }
                }
            } else {
                let items: Vec<(usize, usize)> = members
                    .iter()
                    .flat_map(|&j| (0..ns).map(move |s| (j, s)))
                    .collect();
                let out: Vec<Result<Scores>> = items
                    .par_iter()
                    .map(|&(j, s)| {
                        let sp = &splits[s];
                        let xtr = x_matrix(layer, *t, &feats.rows, &sp.train);
                        let xte = x_matrix(layer, *t, &feats.rows, &sp.test);
                        let fit = |y: faer::MatRef<'_, f64>| {
                            Ok(opts.regressor.fit(xtr.as_ref(), y)?.predict(xte.as_ref()))
                        };
                        score_job(j, s, &fit)
                    })
                    .collect();
                for (&(j, s), r) in items.iter().zip(out) {
                    slots[j * ns + s] = Some(r);
                }
            }
            Ok(())
        })?;
    }
    let results: Vec<Result<Scores>> = slots
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(NeuralError::Invalid("internal: missing result".into()))))
        .collect();
    let mut results = results.into_iter();
    let mut rows = Vec::new();
    let mut site_rows = Vec::new();
    let mut per_split = Vec::new();
    for &(l, t, ri, b) in &jobs {
        let (region, sites) = &regions[ri];
        let mut medians = Vec::with_capacity(splits.len());
        let mut per_site = vec![0.0; sites.len()];
        let mut boot = vec![0.0; halves.len()];
        for _ in 0..splits.len() {
            let (r, cons) = results
                .next()
                .ok_or_else(|| NeuralError::Invalid("internal: missing result".into()))??;
            medians.push(nan_median(&r));
            for (acc, v) in per_site.iter_mut().zip(&r) {
                *acc += v / splits.len() as f64;
            }
            for (acc, v) in boot.iter_mut().zip(&cons) {
                *acc += v / splits.len() as f64;
            }
        }
        let (bs, be) = rec.bins[b];
        let layer = &feats.layers[l];
        per_split.extend(medians.iter().enumerate().map(|(split, &r)| SplitScore {
            model: feats.model.clone(),
            layer: layer.name.clone(),
            timestep: t,
            region: region.clone(),
            time_bin_start: bs,
            time_bin_end: be,
            metric: "r".into(),
            split,
            r,
        }));
        let row = |metric: &str, (value, ci_low, ci_high): (f64, f64, f64)| Row {
            model: feats.model.clone(),
            layer: layer.name.clone(),
            timestep: Some(t),
            region: region.clone(),
            time_bin_start: bs,
            time_bin_end: be,
            metric: metric.into(),
            value,
            ci_low,
            ci_high,
        };
        let raw = mean_ci(&medians);
        rows.push(row("r", raw));
        let c = ceil.map(|c| &c[ri][b]);
        if let Some(c) = c {
            rows.push(row("ceiled", ceiled(raw, c.value)));
        }
        if !boot.is_empty() {
            let m = boot.iter().sum::<f64>() / boot.len() as f64;
            rows.push(row(
                "consistency",
                (m, percentile(&boot, 2.5), percentile(&boot, 97.5)),
            ));
        }
        for (i, &k) in sites.iter().enumerate() {
            site_rows.push((
                layer.name.clone(),
                t,
                region.clone(),
                b,
                rec.neuroid_ids[k].clone(),
                per_site[i],
                c.map_or(f64::NAN, |c| c.per_site[i]),
            ));
        }
    }
    if opts.shared {
        // Span-time maps stack a layer's steps: one layer in memory at a time.
        for &l in &group_layers {
            let mut one = Features {
                model: feats.model.clone(),
                source: feats.source.clone(),
                layers: feats.layers.iter().map(Layer::shape_only).collect(),
                rows: feats.rows.clone(),
            };
            one.layers[l] = feats.load_layer(l)?;
            let mine: Vec<_> = jobs.iter().copied().filter(|j| j.0 == l).collect();
            let (shared_rows, shared_splits) = shared_maps(&one, rec, &splits, &mine, ceil, opts)?;
            rows.extend(shared_rows);
            per_split.extend(shared_splits);
        }
    }
    Ok(FitResult {
        rows,
        sites: site_rows,
        per_split,
        constant_steps: constant,
    })
}

/// Span-time maps: per (layer, region) one map fit on all the region's bins stacked as
/// samples (each bin with the step the mapping gives it), scored per bin on held-out stimuli.
fn shared_maps(
    feats: &Features,
    rec: &Recordings,
    splits: &[Split],
    jobs: &[(usize, usize, usize, usize)],
    ceil: Option<&[Vec<BinCeiling>]>,
    opts: &FitOptions,
) -> Result<(Vec<Row>, Vec<SplitScore>)> {
    let (nk, nb) = (rec.n_neuroids(), rec.n_bins());
    let regions = rec.region_sites();
    // Groups (layer, region) → [(step, bin)], one step per bin (the first assignment).
    type Group = ((usize, usize), Vec<(usize, usize)>);
    let mut groups: Vec<Group> = Vec::new();
    for &(l, t, ri, b) in jobs {
        match groups.iter_mut().find(|(k, _)| *k == (l, ri)) {
            Some((_, v)) => {
                if !v.iter().any(|(_, bb)| *bb == b) {
                    v.push((t, b));
                }
            }
            None => groups.push(((l, ri), vec![(t, b)])),
        }
    }
    let work: Vec<(usize, usize)> = (0..groups.len())
        .flat_map(|g| (0..splits.len()).map(move |s| (g, s)))
        .collect();
    let res: Vec<Result<Vec<f64>>> = work
        .par_iter()
        .map(|&(g, s)| {
            let ((l, ri), tb) = &groups[g];
            let layer = &feats.layers[*l];
            let sites = &regions[*ri].1;
            let sp = &splits[s];
            let ntr = sp.train.len();
            let xtr = Mat::from_fn(ntr * tb.len(), layer.d, |i, j| {
                let (t, _) = tb[i / ntr];
                layer.at(t, feats.rows[sp.train[i % ntr]], j) as f64
            });
            let ytr = Mat::from_fn(ntr * tb.len(), sites.len(), |i, j| {
                let (_, b) = tb[i / ntr];
                rec.mean[(sp.train[i % ntr] * nk + sites[j]) * nb + b]
            });
            let map = opts.regressor.fit(xtr.as_ref(), ytr.as_ref())?;
            Ok(tb
                .iter()
                .map(|&(t, b)| {
                    let xte = x_matrix(layer, t, &feats.rows, &sp.test);
                    let yte = y_matrix(&rec.mean, nk, nb, b, sites, &sp.test);
                    nan_median(&col_r(&map.predict(xte.as_ref()), &yte))
                })
                .collect())
        })
        .collect();
    let mut res = res.into_iter();
    let (mut rows, mut per_split) = (Vec::new(), Vec::new());
    for ((l, ri), tb) in &groups {
        let mut per_bin = vec![Vec::new(); tb.len()];
        for _ in 0..splits.len() {
            let v = res
                .next()
                .ok_or_else(|| NeuralError::Invalid("internal: missing result".into()))??;
            for (acc, x) in per_bin.iter_mut().zip(v) {
                acc.push(x);
            }
        }
        for (i, &(t, b)) in tb.iter().enumerate() {
            let (value, lo, hi) = mean_ci(&per_bin[i]);
            let base = Row {
                model: feats.model.clone(),
                layer: feats.layers[*l].name.clone(),
                timestep: Some(t),
                region: regions[*ri].0.clone(),
                time_bin_start: rec.bins[b].0,
                time_bin_end: rec.bins[b].1,
                metric: "r_shared".into(),
                value,
                ci_low: lo,
                ci_high: hi,
            };
            per_split.extend(per_bin[i].iter().enumerate().map(|(split, &r)| SplitScore {
                model: base.model.clone(),
                layer: base.layer.clone(),
                timestep: t,
                region: base.region.clone(),
                time_bin_start: base.time_bin_start,
                time_bin_end: base.time_bin_end,
                metric: "r_shared".into(),
                split,
                r,
            }));
            if let Some(c) = ceil.map(|c| c[*ri][b].value) {
                let (value, ci_low, ci_high) = ceiled((value, lo, hi), c);
                rows.push(Row {
                    metric: "ceiled_shared".into(),
                    value,
                    ci_low,
                    ci_high,
                    ..base.clone()
                });
            }
            rows.push(base);
        }
    }
    Ok((rows, per_split))
}

/// Header of `layer_ranking.csv`.
pub const RANKING_COLUMNS: [&str; 9] = [
    "region",
    "time_bin_start",
    "time_bin_end",
    "rank",
    "model",
    "layer",
    "timestep",
    "r",
    "ceiled",
];

/// `layer_ranking.csv` from [`layer_ranking`].
pub fn layer_ranking_csv(rows: &[Row]) -> Result<String> {
    csv_table(
        "layer_ranking.csv",
        &RANKING_COLUMNS,
        layer_ranking(rows).into_iter(),
    )
}

/// Every fitted (model, layer, step) ranked per region and bin by its cross-validated `r`
/// (best first; undefined r last), with its ceiled value — per-layer scores for every region
/// and bin from one run, as the fields of `layer_ranking.csv` rows.
pub fn layer_ranking(rows: &[Row]) -> Vec<Vec<String>> {
    type Key<'a> = (&'a str, u64, u64);
    let mut groups: Vec<(Key<'_>, Vec<&Row>)> = Vec::new();
    for r in rows.iter().filter(|r| r.metric == "r") {
        let key = (
            r.region.as_str(),
            r.time_bin_start.to_bits(),
            r.time_bin_end.to_bits(),
        );
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(r),
            None => groups.push((key, vec![r])),
        }
    }
    // Ceiled values by (model, layer, step, region, bin start), looked up once per r row.
    let ceiled_of: std::collections::HashMap<_, f64> = rows
        .iter()
        .filter(|c| c.metric == "ceiled")
        .map(|c| {
            let key = (
                &c.model,
                &c.layer,
                c.timestep,
                &c.region,
                c.time_bin_start.to_bits(),
            );
            (key, c.value)
        })
        .collect();
    let ceiled = |r: &Row| {
        let key = (
            &r.model,
            &r.layer,
            r.timestep,
            &r.region,
            r.time_bin_start.to_bits(),
        );
        ceiled_of.get(&key).copied().unwrap_or(f64::NAN)
    };
    let mut out = Vec::new();
    for (_, mut members) in groups {
        members.sort_by(|a, b| match (a.value.is_nan(), b.value.is_nan()) {
            (false, false) => b.value.total_cmp(&a.value),
            (x, y) => x.cmp(&y),
        });
        for (rank, r) in members.iter().enumerate() {
            out.push(vec![
                r.region.clone(),
                r.time_bin_start.to_string(),
                r.time_bin_end.to_string(),
                (rank + 1).to_string(),
                r.model.clone(),
                r.layer.clone(),
                r.timestep.map(|t| t.to_string()).unwrap_or_default(),
                csv_number(r.value),
                csv_number(ceiled(r)),
            ]);
        }
    }
    out
}

/// Per region, the (model, layer) with the highest mean `r` over its fitted bins:
/// (region, model, layer, mean r, bins).
pub fn best_layers(rows: &[Row]) -> Vec<(String, String, String, f64, usize)> {
    let mut acc: Vec<((String, String, String), f64, usize)> = Vec::new();
    for r in rows
        .iter()
        .filter(|r| r.metric == "r" && r.value.is_finite())
    {
        let key = (r.region.clone(), r.model.clone(), r.layer.clone());
        match acc.iter_mut().find(|(k, _, _)| *k == key) {
            Some((_, s, n)) => {
                *s += r.value;
                *n += 1;
            }
            None => acc.push((key, r.value, 1)),
        }
    }
    let mut best: Vec<(String, String, String, f64, usize)> = Vec::new();
    for ((region, model, layer), s, n) in acc {
        let m = s / n as f64;
        match best.iter_mut().find(|b| b.0 == region) {
            Some(b) if m > b.3 => *b = (region, model, layer, m, n),
            Some(_) => {}
            None => best.push((region, model, layer, m, n)),
        }
    }
    best
}

/// `ceiling` rows (layer and timestep empty).
pub fn ceiling_rows(rec: &Recordings, ceil: &[Vec<BinCeiling>]) -> Vec<Row> {
    let regions = rec.region_sites();
    let mut rows = Vec::new();
    for (ri, (region, _)) in regions.iter().enumerate() {
        for c in &ceil[ri] {
            rows.push(Row {
                model: String::new(),
                layer: String::new(),
                timestep: None,
                region: region.clone(),
                time_bin_start: rec.bins[c.bin].0,
                time_bin_end: rec.bins[c.bin].1,
                metric: "ceiling".into(),
                value: c.value,
                ci_low: c.ci_low,
                ci_high: c.ci_high,
            });
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::{Row, best_layers, ceiled, layer_ranking};

    #[test]
    fn csv_tables_quote_names_that_need_it() {
        let row = Row {
            model: "net, v2".into(),
            layer: "it\"a\"".into(),
            timestep: None,
            region: "IT".into(),
            time_bin_start: 70.0,
            time_bin_end: 80.0,
            metric: "r".into(),
            value: 0.25,
            ci_low: f64::NAN,
            ci_high: 0.5,
        };
        let text = super::predictivity_csv(std::slice::from_ref(&row)).unwrap();
        assert_eq!(
            text,
            "model,layer,timestep,region,time_bin_start,time_bin_end,metric,value,ci_low,ci_high\n\
             \"net, v2\",\"it\"\"a\"\"\",,IT,70,80,r,0.25,,0.5\n"
        );
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let rec = r.records().next().unwrap().unwrap();
        assert_eq!((&rec[0], &rec[1]), ("net, v2", "it\"a\""));
        let sites = super::sites_csv(
            &[(
                "m,1".into(),
                vec![("l".into(), 2, "V4".into(), 1, "n,7".into(), 0.5, f64::NAN)],
            )],
            &[(0.0, 10.0), (10.0, 20.0)],
        )
        .unwrap();
        assert!(
            sites.ends_with("\"m,1\",l,2,V4,10,20,\"n,7\",0.5,\n"),
            "{sites}"
        );
    }

    #[test]
    fn layers_are_ranked_per_region_and_bin() {
        let row = |layer: &str, start: f64, metric: &str, value: f64| Row {
            model: "m".into(),
            layer: layer.into(),
            timestep: Some(0),
            region: "IT".into(),
            time_bin_start: start,
            time_bin_end: start + 10.0,
            metric: metric.into(),
            value,
            ci_low: f64::NAN,
            ci_high: f64::NAN,
        };
        let rows = vec![
            row("a", 70.0, "r", 0.2),
            row("b", 70.0, "r", 0.5),
            row("c", 70.0, "r", f64::NAN),
            row("b", 70.0, "ceiled", 0.9),
            row("a", 80.0, "r", 0.6),
            row("b", 80.0, "r", 0.1),
        ];
        assert_eq!(
            layer_ranking(&rows)
                .iter()
                .map(|f| f.join(","))
                .collect::<Vec<_>>(),
            vec![
                "IT,70,80,1,m,b,0,0.5,0.9",
                "IT,70,80,2,m,a,0,0.2,",
                "IT,70,80,3,m,c,0,,",
                "IT,80,90,1,m,a,0,0.6,",
                "IT,80,90,2,m,b,0,0.1,",
            ]
        );
        // Mean over bins: a 0.4, b 0.3.
        let best = best_layers(&rows);
        assert_eq!(best.len(), 1);
        assert_eq!((best[0].2.as_str(), best[0].4), ("a", 2));
        assert!((best[0].3 - 0.4).abs() < 1e-12);
    }

    #[test]
    fn ceiled_needs_a_positive_ceiling() {
        assert_eq!(ceiled((0.4, 0.2, 0.6), 0.5), (0.8, 0.4, 1.2));
        for c in [0.0, -0.02, f64::NAN] {
            let (v, lo, hi) = ceiled((-0.022, 0.1, -0.1), c);
            assert!(v.is_nan() && lo.is_nan() && hi.is_nan());
        }
    }
}
