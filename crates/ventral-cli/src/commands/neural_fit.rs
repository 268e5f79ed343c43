//! `ventral neural-fit`: model features → neural sites per time bin, cross-validated, with
//! split-half ceilings and noise-corrected consistency.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use ventral_core::atomic::{AtomicDir, write_bytes_atomic};
use ventral_neural::predictivity::{
    FeedforwardMapping, FitOptions, Form, MemoryPlan, Regressor, Row, SplitProcedure, StepMapping,
    best_layers, ceiling_halves, ceiling_rows, ceiling_splits_csv, ceilings,
    fit_predictivity_with_progress, latencies, latency_csv, layer_ranking_csv, predictivity_csv,
    read_halves_json, read_splits_json, sites_csv, split_scores_csv, splits_json, stimulus_splits,
};
use ventral_neural::regression::{Pls, RidgeCv, default_alphas};

use crate::commands::neural_inputs::{
    input_record, open_features, read_recordings, write_run_json,
};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Feature file(s): `.npz` with one float array per layer, [T, N, D] or [N, D]
    /// (`ventral record` output works as is). `NAME=PATH` labels a model; several files are
    /// compared side by side.
    #[arg(long, required = true)]
    features: Vec<String>,
    /// BrainIO assembly (netCDF-4): presentation × neuroid × time_bin; or a .toml naming the
    /// axes of plain .npz arrays (see docs/architecture.md).
    #[arg(long)]
    neural: PathBuf,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Replace an existing output directory.
    #[arg(long)]
    overwrite: bool,
    /// Only these layers (comma-separated array names); `all` (the default) fits every layer.
    /// Every fitted layer is ranked per region and bin in layer_ranking.csv.
    #[arg(long, value_delimiter = ',')]
    layers: Vec<String>,
    /// Fit region REGION only from these layers: `REGION=layer,layer` (repeatable). Default:
    /// the features file's `brain_areas` (ConvRNN recordings carry the authors' mapping:
    /// shallow conv3 → V4, conv4–5 → IT; intermediate conv5–6 → V4, conv7–10 → IT); regions
    /// not named take every layer.
    #[arg(long)]
    areas: Vec<String>,
    /// Fit every layer to every region, ignoring the features' `brain_areas`.
    #[arg(long)]
    all_layers: bool,
    /// pls (scikit-learn PLSRegression, scale=False) or ridge (RidgeCV, LOO alpha).
    #[arg(long, default_value = "pls")]
    regression: String,
    /// PLS components.
    #[arg(long, default_value_t = 25, value_parser = super::positive)]
    components: usize,
    /// Ridge alpha grid (comma-separated; default 1e-2 … 1e7, 4 per decade).
    #[arg(long, value_delimiter = ',')]
    alphas: Vec<f64>,
    /// Cross-validation splits over stimuli (stratified by object_name when present): a count
    /// (ventral's draws), `brainscore` or `brainscore:N` (Brain-Score's own draws: scikit-learn's
    /// StratifiedShuffleSplit with NumPy's RandomState(--seed), 10 splits by default), or a
    /// splits.json from an earlier run (its train/test stimulus ids). Every run writes the
    /// splits it used to OUT/splits.json.
    #[arg(long, default_value = "10")]
    splits: String,
    /// Training fraction per split.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.9)]
    train_frac: f64,
    /// Root seed (splits, halves).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Multi-step layers: `recurrent` (one step per bin from an offset) or `all-steps`
    /// (every step against every bin).
    #[arg(long, default_value = "recurrent")]
    mapping: String,
    /// Milliseconds per model step (recurrent mapping).
    #[arg(long, allow_negative_numbers = true, default_value_t = 10.0)]
    step_ms: f64,
    /// Time of step 0: `MS` for all regions or `REGION=MS` (repeatable); default: the first
    /// bin's start.
    #[arg(long, allow_negative_numbers = true)]
    offset_ms: Vec<String>,
    /// Single-step (feedforward) layers: `uniform` (every bin) or `graded` (layers share the
    /// bins out in order).
    #[arg(long, default_value = "uniform")]
    ff_mapping: String,
    /// Also fit one map per layer and region shared over time bins (span-time).
    #[arg(long)]
    shared: bool,
    /// Repetition halvings for the split-half ceilings.
    #[arg(long, default_value_t = 10, value_parser = super::positive)]
    ceiling_splits: usize,
    /// Trial-half bootstraps for the noise-corrected consistency (0 skips it).
    #[arg(long, default_value_t = 10)]
    bootstraps: usize,
    /// How fits see the features: `dual` (one stimulus × stimulus Gram matrix per layer and
    /// step, shared by every split, bin and resample), `primal` (the features themselves, per
    /// fit) or `auto` (dual where a layer has at least as many features as a split has
    /// training stimuli). The same scores either way, to rounding.
    #[arg(long, default_value = "auto")]
    solver: String,
    /// Refuse to start when the estimated peak memory (features + Gram matrix + per-thread
    /// working set; formula in docs/architecture.md) exceeds this many bytes (K/M/G/T
    /// suffixes). Default: VENTRAL_MAX_MEMORY, else the machine's MemAvailable.
    #[arg(long)]
    max_memory: Option<String>,
}

fn parse_options(a: &Args, stimulus_ids: &[String], n_reps: usize) -> Result<FitOptions> {
    let regressor = match a.regression.as_str() {
        "pls" => Regressor::Pls(Pls::new(a.components)),
        "ridge" => Regressor::Ridge(RidgeCv {
            alphas: if a.alphas.is_empty() {
                default_alphas()
            } else {
                a.alphas.clone()
            },
        }),
        other => bail!("--regression must be pls or ridge, got `{other}`"),
    };
    let mut offsets = Vec::new();
    let mut default_offset = None;
    for o in &a.offset_ms {
        match o.split_once('=') {
            Some((r, v)) => offsets.push((
                r.to_string(),
                v.parse::<f64>()
                    .with_context(|| format!("--offset-ms `{o}`: not a number"))?,
            )),
            None => {
                default_offset = Some(
                    o.parse::<f64>()
                        .with_context(|| format!("--offset-ms `{o}`: not a number"))?,
                )
            }
        }
    }
    let steps = match a.mapping.as_str() {
        "recurrent" => {
            if a.step_ms.is_nan() || a.step_ms <= 0.0 {
                bail!("--step-ms must be positive");
            }
            StepMapping::Recurrent {
                step_ms: a.step_ms,
                offsets,
                default_offset,
            }
        }
        "all-steps" => StepMapping::AllSteps,
        other => bail!("--mapping must be recurrent or all-steps, got `{other}`"),
    };
    let feedforward = match a.ff_mapping.as_str() {
        "uniform" => FeedforwardMapping::Uniform,
        "graded" => FeedforwardMapping::Graded,
        other => bail!("--ff-mapping must be uniform or graded, got `{other}`"),
    };
    if !(a.train_frac > 0.0 && a.train_frac < 1.0) {
        bail!("need 0 < --train-frac < 1");
    }
    let (procedure, n_splits) = parse_splits(&a.splits, stimulus_ids)?;
    let given_halves = match procedure {
        SplitProcedure::Given(_) => read_halves_json(std::path::Path::new(&a.splits), n_reps)?,
        _ => None,
    };
    let form = Form::parse(&a.solver)
        .with_context(|| format!("--solver must be auto, dual or primal, got `{}`", a.solver))?;
    Ok(FitOptions {
        regressor,
        form,
        procedure,
        given_halves,
        n_splits,
        train_frac: a.train_frac,
        seed: a.seed,
        steps,
        feedforward,
        shared: a.shared,
        ceiling_splits: a.ceiling_splits,
        consistency_bootstraps: a.bootstraps,
        areas: parse_areas(&a.areas)?,
    })
}

/// The count `t` of `--splits spec`: 1 to [`super::MAX_SPLITS`].
fn split_count(spec: &str, t: &str) -> Result<usize> {
    match t.parse::<usize>() {
        Ok(n) if (1..=super::MAX_SPLITS).contains(&n) => Ok(n),
        _ => bail!(
            "--splits {spec}: expected a count from 1 to {}, `brainscore[:N]` or a splits.json",
            super::MAX_SPLITS
        ),
    }
}

/// `--splits`: a count, `brainscore[:N]`, or a splits.json read against `ids`.
fn parse_splits(spec: &str, ids: &[String]) -> Result<(SplitProcedure, usize)> {
    let count = |t: &str| split_count(spec, t);
    if spec.chars().all(|c| c.is_ascii_digit()) {
        return Ok((SplitProcedure::Ventral, count(spec)?));
    }
    if spec == "brainscore" {
        return Ok((SplitProcedure::BrainScore, 10));
    }
    if let Some(n) = spec.strip_prefix("brainscore:") {
        return Ok((SplitProcedure::BrainScore, count(n)?));
    }
    let path = std::path::Path::new(spec);
    if !path.is_file() {
        bail!("--splits {spec}: not a count, `brainscore[:N]`, or an existing splits.json");
    }
    let given = read_splits_json(path, ids)?;
    let n = given.len();
    Ok((SplitProcedure::Given(given), n))
}

/// `REGION=layer,layer` arguments.
fn parse_areas(specs: &[String]) -> Result<Vec<(String, Vec<String>)>> {
    specs
        .iter()
        .map(|s| {
            let (r, l) = s
                .split_once('=')
                .with_context(|| format!("--areas {s}: expected REGION=layer,layer"))?;
            let layers: Vec<String> = l
                .split(',')
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect();
            if r.is_empty() || layers.is_empty() {
                anyhow::bail!("--areas {s}: expected REGION=layer,layer");
            }
            Ok((r.to_string(), layers))
        })
        .collect()
}

/// The `brain_areas` array of a features file (`REGION=layer,…` strings), if it has one.
fn file_areas(path: &std::path::Path) -> Result<Vec<(String, Vec<String>)>> {
    let mut z = ventral_core::npy::NpzReader::open(path)?;
    if !z.names().iter().any(|n| n == "brain_areas") {
        return Ok(Vec::new());
    }
    let a = z.read("brain_areas")?;
    let v = a
        .to_strings()
        .with_context(|| format!("{}: brain_areas must be strings", path.display()))?;
    parse_areas(&v).with_context(|| format!("{}: brain_areas", path.display()))
}

/// Estimates each features file's peak memory from its npy headers (nothing is loaded yet) and
/// refuses to start past `--max-memory` (default: VENTRAL_MAX_MEMORY or MemAvailable), rather
/// than be killed hours in.
fn preflight_memory(
    a: &Args,
    rec: &ventral_neural::recordings::Recordings,
    splits: &[ventral_neural::cv::Split],
    opts: &FitOptions,
) -> Result<()> {
    let limit = match &a.max_memory {
        Some(v) => Some(
            ventral_core::mem::parse_size(v)
                .map_err(|e| anyhow::anyhow!("--max-memory {v}: {e}"))?,
        ),
        None => ventral_core::mem::available().map_err(anyhow::Error::msg)?,
    };
    let n_train = splits.iter().map(|s| s.train.len()).max().unwrap_or(0);
    for spec in &a.features {
        let (_, path) = crate::commands::neural_inputs::named_path(spec);
        let shapes = ventral_neural::features::layer_shapes(&path, &a.layers)?;
        let plan = MemoryPlan::new(
            &shapes,
            rec.n_stimuli(),
            n_train,
            rec.region_sites()
                .iter()
                .map(|(_, s)| s.len())
                .max()
                .unwrap_or(0),
            opts,
            rayon::current_num_threads(),
        );
        eprintln!("memory plan for {}: {}", path.display(), plan.describe());
        if let Some(limit) = limit
            && plan.total() > limit
        {
            bail!(
                "{}: fitting needs about {}, more than the {} allowed ({}). Fit fewer layers at \
                 once (--layers), use fewer threads (RAYON_NUM_THREADS), or raise --max-memory",
                path.display(),
                plan.describe(),
                ventral_core::mem::human(limit),
                if a.max_memory.is_some() {
                    "--max-memory"
                } else {
                    "VENTRAL_MAX_MEMORY or MemAvailable"
                }
            );
        }
    }
    Ok(())
}

pub fn run(mut a: Args) -> Result<()> {
    // Counts are checked before anything is read (a splits.json only once the ids are known).
    let n = a.splits.strip_prefix("brainscore:").unwrap_or(&a.splits);
    if !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) {
        split_count(&a.splits, n)?;
    }
    super::check_count("--ceiling-splits", a.ceiling_splits, super::MAX_SPLITS)?;
    super::check_count("--bootstraps", a.bootstraps, super::MAX_BOOTSTRAPS)?;
    if a.layers.iter().any(|l| l == "all") {
        if a.layers.len() > 1 {
            bail!("--layers all cannot be combined with layer names");
        }
        a.layers.clear();
    }
    let label = a.neural.display().to_string();
    let rec = read_recordings(&a.neural)?;
    let opts = parse_options(&a, &rec.stimulus_ids, rec.n_reps)?;
    // The splits every fit uses, drawn once here to be saved beside the results.
    let splits = stimulus_splits(&rec, &opts)?;
    let procedure = opts.procedure.describe(&opts, rec.object_names.is_some());
    let ids_from = format!("the recordings {}", a.neural.display());
    preflight_memory(&a, &rec, &splits, &opts)?;
    let out = AtomicDir::create(&a.out, a.overwrite)?;
    eprintln!(
        "neural-fit: {} stimuli × {} sites × {} bins ({} repetitions), regions {:?}",
        rec.n_stimuli(),
        rec.n_neuroids(),
        rec.n_bins(),
        rec.n_reps,
        rec.region_sites()
            .iter()
            .map(|(r, s)| format!("{r} ({})", s.len()))
            .collect::<Vec<_>>()
    );
    let ceil = ceilings(&rec, &opts)?;
    if ceil.is_none() {
        eprintln!("note: one repetition per stimulus: no ceilings, ceiled scores or consistency");
    }
    let mut rows: Vec<Row> = Vec::new();
    let lat = ceil
        .as_ref()
        .map(|c| latencies(&rec, c))
        .unwrap_or_default();
    if let Some(c) = &ceil {
        rows.extend(ceiling_rows(&rec, c));
        for (region, lat, peak) in &lat {
            eprintln!(
                "  {region}: latency {lat} ms (first bin with ≥ half the peak ceiling {peak:.3})"
            );
        }
    }
    let mut site_tables = Vec::new();
    let mut inputs = Vec::new();
    let mut per_split = Vec::new();
    for spec in &a.features {
        let (feats, path) = open_features(spec, &rec.stimulus_ids, &ids_from, &a.layers)?;
        // The model's own area mapping applies to its file unless --areas or --all-layers.
        let mut opts = opts.clone();
        if opts.areas.is_empty() && !a.all_layers && path.extension().is_some_and(|e| e == "npz") {
            let have: Vec<&str> = feats.layers.iter().map(|l| l.name.as_str()).collect();
            opts.areas = file_areas(&path)?
                .into_iter()
                .map(|(r, ls)| {
                    (
                        r,
                        ls.into_iter()
                            .filter(|l| have.contains(&l.as_str()))
                            .collect::<Vec<_>>(),
                    )
                })
                .filter(|(_, ls)| !ls.is_empty())
                .collect();
            for (r, ls) in &opts.areas {
                eprintln!(
                    "  {r}: fitted from {} (the file's brain_areas; --all-layers fits every layer)",
                    ls.join(", ")
                );
            }
        }
        eprintln!(
            "  {}: layers {:?}",
            feats.model,
            feats
                .layers
                .iter()
                .map(|l| format!("{} [{}×{}×{}]", l.name, l.steps, l.n, l.d))
                .collect::<Vec<_>>()
        );
        let t0 = std::time::Instant::now();
        let bar = crate::progress::Progress::new(&format!("fit {}", feats.model), 0, "fits");
        let res = fit_predictivity_with_progress(&feats, &rec, ceil.as_deref(), &opts, &|d, n| {
            bar.update(d, n)
        })
        .with_context(|| format!("fitting {}", path.display()))?;
        bar.finish();
        eprintln!("  fitted in {:.2} s", t0.elapsed().as_secs_f64());
        for (layer, steps) in &res.constant_steps {
            eprintln!(
                "  note: {} `{layer}` is constant across the stimuli at step(s) {steps:?} (an area \
                 the input has not reached, or a dead layer): nothing to regress on, so those fits \
                 predict the training mean and their r is undefined (written empty)",
                feats.model
            );
        }
        site_tables.push((feats.model.clone(), res.sites));
        rows.extend(res.rows);
        per_split.extend(res.per_split);
        inputs.push(input_record(&feats.model, &path)?);
    }
    write_bytes_atomic(
        &out.path().join("predictivity.csv"),
        predictivity_csv(&rows)?.as_bytes(),
    )?;
    write_bytes_atomic(
        &out.path().join("sites.csv"),
        sites_csv(&site_tables, &rec.bins)?.as_bytes(),
    )?;
    write_bytes_atomic(
        &out.path().join("predictivity_splits.csv"),
        split_scores_csv(&per_split)?.as_bytes(),
    )?;
    if let Some(c) = &ceil {
        write_bytes_atomic(
            &out.path().join("ceiling_splits.csv"),
            ceiling_splits_csv(&rec, c)?.as_bytes(),
        )?;
    }
    write_bytes_atomic(
        &out.path().join("latency.csv"),
        latency_csv(&lat)?.as_bytes(),
    )?;
    write_bytes_atomic(
        &out.path().join("layer_ranking.csv"),
        layer_ranking_csv(&rows)?.as_bytes(),
    )?;
    let mut sj = splits_json(&splits, &rec.stimulus_ids, &procedure, opts.seed);
    // The ceiling's repetition halvings (repetition indices in sorted order of the
    // `repetition` coordinate, or of recurrence), for the record.
    let mask_idx = |m: &[bool]| -> Vec<usize> { (0..m.len()).filter(|&i| m[i]).collect() };
    sj["ceiling_halves"] = serde_json::json!({
        "procedure": if opts.given_halves.is_some() {
            format!("given: {}", a.splits)
        } else if opts.procedure == SplitProcedure::BrainScore {
            format!("brainscore: ShuffleSplit(n_splits={}, train_size=0.5, random_state={}) over repetitions", opts.ceiling_splits, opts.seed)
        } else {
            format!("ventral: {} random halvings, ChaCha stream 'ceiling-halves' of seed {}", opts.ceiling_splits, opts.seed)
        },
        "halves": ceiling_halves(&rec, &opts)?
            .iter()
            .map(|(a, b)| serde_json::json!({ "first": mask_idx(a), "second": mask_idx(b) }))
            .collect::<Vec<_>>(),
    });
    write_bytes_atomic(
        &out.path().join("splits.json"),
        serde_json::to_string_pretty(&sj)?.as_bytes(),
    )?;
    let meta = serde_json::json!({
        "neural": { "path": label, "blake3": ventral_core::hash::file_blake3(&a.neural)? },
        "features": inputs,
        "regression": opts.regressor.name(),
        "splits": opts.n_splits, "split_procedure": procedure, "train_frac": opts.train_frac, "seed": opts.seed,
        "mapping": a.mapping, "step_ms": a.step_ms, "offset_ms": a.offset_ms, "ff_mapping": a.ff_mapping,
        "shared": opts.shared, "ceiling_splits": opts.ceiling_splits, "bootstraps": opts.consistency_bootstraps,
        "solver": a.solver,
    });
    write_run_json(out.path(), meta)?;
    ventral_neural::plots::predictivity_plots(&rows, &out.path().join("plots"))?;
    let dir = out.commit()?;
    print_summary(&rows);
    for (region, model, layer, r, n) in best_layers(&rows) {
        println!(
            "best layer for {region}: {model} {layer} (mean r {r:.3} over {n} fitted bins; every layer ranked per bin in layer_ranking.csv)"
        );
    }
    println!("wrote {}", dir.join("predictivity.csv").display());
    Ok(())
}

fn print_summary(rows: &[Row]) {
    let mut best: Vec<(String, String, String, f64, f64)> = Vec::new();
    for r in rows.iter().filter(|r| r.metric == "r") {
        let key = (r.model.clone(), r.layer.clone(), r.region.clone());
        match best
            .iter_mut()
            .find(|b| (b.0.clone(), b.1.clone(), b.2.clone()) == key)
        {
            Some(b) if r.value > b.3 => {
                b.3 = r.value;
                b.4 = r.time_bin_start;
            }
            Some(_) => {}
            None => best.push((key.0, key.1, key.2, r.value, r.time_bin_start)),
        }
    }
    for (m, l, reg, v, t) in best {
        println!("{m} {l} → {reg}: best median r {v:.3} at {t} ms");
    }
}
