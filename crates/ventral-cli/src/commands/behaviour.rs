//! `ventral behaviour`: behavioural consistency (Rajalingham et al. 2018; Brain-Score's
//! i1/i1n/i2/i2n) of model features per layer and step against primate two-alternative trials.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use ventral_core::atomic::{AtomicDir, write_bytes_atomic};
use ventral_core::npy::{NpyArray, NpyData, write_npz};
use ventral_neural::behaviour::{
    Decoding, LayerScores, Metric, Target, TargetHalves, Trials, halvings_csv, score_layer,
    stratified_folds, summary_csv, target_csv,
};
use ventral_neural::logistic::LogisticConfig;

use crate::commands::neural_inputs::{input_record, load_features, write_run_json};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Feature file(s) as in `neural-fit` (`NAME=PATH` labels a model; `ventral record`
    /// output or any npz of [T, N, D] / [N, D] arrays with a `stimulus_id` array); every layer
    /// and step is decoded.
    #[arg(long, required = true)]
    features: Vec<String>,
    /// Target trials: CSV with stimulus_id, sample_obj, dist_obj, choice (one row per trial),
    /// or a BrainIO behavioural assembly (.nc, e.g. Rajalingham2018) with those coordinates.
    #[arg(long)]
    trials: PathBuf,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Replace an existing output directory.
    #[arg(long)]
    overwrite: bool,
    /// Only these layers (comma-separated).
    #[arg(long, value_delimiter = ',')]
    layers: Vec<String>,
    /// Metrics (comma-separated): i1, i1n, i2, i2n.
    #[arg(long, value_delimiter = ',', default_value = "i1n,i2n")]
    metrics: Vec<String>,
    /// Stratified folds of the out-of-fold decoder (every image is predicted by a decoder
    /// that did not see it); not used with --fit-features.
    #[arg(long, default_value_t = 10)]
    folds: usize,
    /// Brain-Score's protocol: fit the decoder on these features of separate images (one file
    /// per --features, in the same order; same layers) ...
    #[arg(long, requires = "fit_stimuli")]
    fit_features: Vec<String>,
    /// ... whose objects come from this CSV (`stimulus_id` and `object_name` columns, e.g. a
    /// BrainIO stimulus set such as objectome's fitting images).
    #[arg(long)]
    fit_stimuli: Option<PathBuf>,
    /// Inverse L2 strength of the decoder (Brain-Score: 1e-3).
    #[arg(long, allow_negative_numbers = true, default_value_t = 1e-3)]
    c: f64,
    /// Split-half draws of the trials (Brain-Score: 2).
    #[arg(long, default_value_t = 2)]
    halvings: usize,
    /// Seed of NumPy's RandomState for the halvings (Brain-Score: 0).
    #[arg(long, default_value_t = 0)]
    halving_seed: u32,
    /// Milliseconds per model step (for the time column).
    #[arg(long, allow_negative_numbers = true, default_value_t = 10.0)]
    step_ms: f64,
    /// Time of model step 0 in ms after stimulus onset.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.0)]
    offset_ms: f64,
    /// Root seed (decoder folds).
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

pub fn run(a: Args) -> Result<()> {
    let metrics = a
        .metrics
        .iter()
        .map(|m| Metric::parse(m.trim()))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    if metrics.is_empty() {
        bail!("--metrics: name at least one of i1, i1n, i2, i2n");
    }
    if a.folds < 2 || a.halvings == 0 {
        bail!("--folds must be ≥ 2 and --halvings ≥ 1");
    }
    super::check_count("--folds", a.folds, super::MAX_SPLITS)?;
    super::check_count("--halvings", a.halvings, super::MAX_SPLITS)?;
    if !(a.c.is_finite() && a.c > 0.0) {
        bail!("--c must be finite and > 0, got {}", a.c);
    }
    if !(a.step_ms.is_finite() && a.step_ms > 0.0 && a.offset_ms.is_finite()) {
        bail!("--step-ms must be > 0 and --offset-ms finite");
    }
    let src = a.trials.display().to_string();
    let trials = Trials::read(&a.trials)?;
    let target = Target::new(&trials, &src)?;
    let k = target.objects.len();
    if k < 2 {
        bail!("{src}: the trials name fewer than two objects");
    }
    for o in 0..k {
        let n = target.truth.iter().filter(|&&t| t == o).count();
        if n < 2 {
            bail!(
                "{src}: object `{}` is the sample of {n} image(s); the out-of-fold decoder needs ≥ 2 per object",
                target.objects[o]
            );
        }
    }
    eprintln!(
        "behaviour: {} trials, {} images, {} objects from {src}",
        target.trials(),
        target.images.len(),
        k
    );
    let halves = TargetHalves::new(&target, &metrics, a.halvings, a.halving_seed);
    for (m, mi) in metrics.iter().zip(0..) {
        let c: Vec<String> = halves
            .ceiling
            .iter()
            .map(|c| format!("{:.3}", c[mi]))
            .collect();
        eprintln!(
            "  {} split-half ceiling per halving: {}",
            m.name(),
            c.join(", ")
        );
    }
    let fold = stratified_folds(&target.truth, k, a.folds, a.seed);
    if !a.fit_features.is_empty() && a.fit_features.len() != a.features.len() {
        bail!(
            "--fit-features: give one per --features ({} vs {})",
            a.fit_features.len(),
            a.features.len()
        );
    }
    let fit_set = match &a.fit_stimuli {
        Some(p) => Some(read_fit_stimuli(p, &target)?),
        None => None,
    };
    let cfg = LogisticConfig {
        c: a.c,
        ..LogisticConfig::default()
    };
    let ids_from = format!("the trials {src}");
    let out = AtomicDir::create(&a.out, a.overwrite)?;
    std::fs::create_dir_all(out.path().join("plots"))?;
    let mut scored: Vec<LayerScores> = Vec::new();
    let mut inputs = vec![input_record("trials", &a.trials)?];
    let mut arrays: Vec<(String, NpyArray)> = vec![
        ("stimulus_id".into(), NpyArray::from_strings(&target.images)),
        ("objects".into(), NpyArray::from_strings(&target.objects)),
    ];
    for (fi, spec) in a.features.iter().enumerate() {
        let (feats, path) = load_features(spec, &target.images, &ids_from, &a.layers)?;
        let fit_feats = match (&fit_set, a.fit_features.get(fi)) {
            (Some((ids, _)), Some(fspec)) => {
                let from = format!(
                    "the fitting stimuli {}",
                    a.fit_stimuli.as_deref().unwrap_or(Path::new("")).display()
                );
                let (ff, fpath) = load_features(fspec, ids, &from, &a.layers)?;
                inputs.push(input_record(&format!("{}-fit", feats.model), &fpath)?);
                Some(ff)
            }
            _ => None,
        };
        for layer in &feats.layers {
            let t0 = std::time::Instant::now();
            let decoding = match (&fit_feats, &fit_set) {
                (Some(ff), Some((_, labels))) => {
                    let fl = ff
                        .layers
                        .iter()
                        .find(|l| l.name == layer.name)
                        .ok_or_else(|| {
                            anyhow::anyhow!(
                                "{}: no layer `{}` in the fitting features",
                                a.fit_features[fi],
                                layer.name
                            )
                        })?;
                    Decoding::FitSet {
                        layer: fl,
                        rows: &ff.rows,
                        labels,
                    }
                }
                _ => Decoding::Folds {
                    fold: &fold,
                    folds: a.folds,
                },
            };
            let steps = score_layer(layer, &feats.rows, &target, &halves, decoding, &cfg)?;
            eprintln!(
                "  {} {}: {} step(s) × {} images × {} features decoded in {:.1} s",
                feats.model,
                layer.name,
                layer.steps,
                target.images.len(),
                layer.d,
                t0.elapsed().as_secs_f64()
            );
            let probs: Vec<f32> = steps
                .iter()
                .flat_map(|s| s.probs.iter().map(|&p| p as f32))
                .collect();
            arrays.push((
                format!("probabilities.{}.{}", feats.model, layer.name),
                NpyArray::new(
                    vec![layer.steps, target.images.len(), k],
                    NpyData::F32(probs),
                )
                .map_err(anyhow::Error::msg)?,
            ));
            scored.push(LayerScores {
                model: feats.model.clone(),
                layer: layer.name.clone(),
                steps,
            });
        }
        inputs.push(input_record(&feats.model, &path)?);
    }
    if scored.is_empty() {
        bail!("no feature layers to decode (check --layers)");
    }
    let time_ms = |t: usize| a.offset_ms + t as f64 * a.step_ms;
    write_bytes_atomic(
        &out.path().join("behaviour.csv"),
        summary_csv(&scored, time_ms)?.as_bytes(),
    )?;
    write_bytes_atomic(
        &out.path().join("behaviour_halvings.csv"),
        halvings_csv(&scored)?.as_bytes(),
    )?;
    write_bytes_atomic(
        &out.path().join("target.csv"),
        target_csv(&target)?.as_bytes(),
    )?;
    let refs: Vec<(&str, &NpyArray)> = arrays.iter().map(|(n, a)| (n.as_str(), a)).collect();
    write_npz(&out.path().join("probabilities.npz"), &refs, true)?;
    ventral_neural::plots::behaviour_plots(&scored, &metrics, &time_ms, out.path())?;
    // Best (layer, step) per model and metric.
    let mut models: Vec<&str> = scored.iter().map(|l| l.model.as_str()).collect();
    models.dedup();
    for model in models {
        for (mi, m) in metrics.iter().enumerate() {
            let best = scored
                .iter()
                .filter(|l| l.model == model)
                .flat_map(|l| l.steps.iter().map(move |s| (l, s)))
                .filter_map(|(l, s)| {
                    let (c, sd) = s.consistency[mi].center_error();
                    c.is_finite().then_some((c, sd, l, s))
                })
                .max_by(|x, y| x.0.total_cmp(&y.0));
            match best {
                Some((c, sd, l, s)) => println!(
                    "{model} {}: best {} step {} ({} ms): ceiled consistency {c:.3} ± {sd:.3}, accuracy {:.3}",
                    m.name(),
                    l.layer,
                    s.step,
                    time_ms(s.step),
                    s.accuracy
                ),
                None => println!("{model} {}: no finite consistency", m.name()),
            }
        }
    }
    let meta = serde_json::json!({
        "inputs": inputs,
        "metrics": metrics.iter().map(|m| m.name()).collect::<Vec<_>>(),
        "decoder": { "kind": "multinomial logistic regression on z-scored features (Brain-Score ProbabilitiesClassifier)",
                     "c": cfg.c, "tol": cfg.tol,
                     "fitting": if fit_set.is_some() { serde_json::json!({"fit_stimuli": a.fit_stimuli, "fit_features": a.fit_features}) }
                                else { serde_json::json!({"folds": a.folds, "fold_of_image": fold}) } },
        "halvings": { "count": a.halvings, "numpy_random_state_seed": a.halving_seed,
                      "trial_indices": halves.halves.iter().map(|h| [&h[0], &h[1]]).collect::<Vec<_>>() },
        "images": target.images, "objects": target.objects,
        "step_ms": a.step_ms, "offset_ms": a.offset_ms, "seed": a.seed,
    });
    write_run_json(out.path(), meta)?;
    let dir = out.commit()?;
    println!("wrote {}", dir.join("behaviour.csv").display());
    Ok(())
}

/// The fitting stimuli's ids and their objects as indices of the target's objects.
fn read_fit_stimuli(path: &Path, target: &Target) -> Result<(Vec<String>, Vec<usize>)> {
    let src = path.display().to_string();
    let mut r = csv::Reader::from_path(path).map_err(|e| anyhow::anyhow!("{src}: {e}"))?;
    let h = r
        .headers()
        .map_err(|e| anyhow::anyhow!("{src}: {e}"))?
        .clone();
    let col = |n: &str| {
        h.iter().position(|c| c == n).ok_or_else(|| {
            anyhow::anyhow!("{src}: no `{n}` column (needs stimulus_id, object_name)")
        })
    };
    let (ci, co) = (col("stimulus_id")?, col("object_name")?);
    let (mut ids, mut labels) = (Vec::new(), Vec::new());
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (row, rec) in r.records().enumerate() {
        let rec = rec.map_err(|e| anyhow::anyhow!("{src}: {e}"))?;
        let id = rec.get(ci).unwrap_or("").trim();
        if id.is_empty() {
            bail!("{src}: row {}: empty stimulus_id", row + 2);
        }
        // A repeated image would be fitted twice (and its features looked up once).
        if let Some(first) = seen.insert(id.to_string(), row + 2) {
            bail!(
                "{src}: row {}: stimulus_id `{id}` appears twice (first at row {first})",
                row + 2
            );
        }
        let obj = rec.get(co).unwrap_or("").trim();
        let Some(o) = target.objects.iter().position(|x| x == obj) else {
            bail!(
                "{src}: row {}: object `{obj}` is not among the trials' objects ({})",
                row + 2,
                target.objects.join(", ")
            );
        };
        ids.push(id.to_string());
        labels.push(o);
    }
    for (o, name) in target.objects.iter().enumerate() {
        if !labels.contains(&o) {
            bail!("{src}: no fitting image of object `{name}`; the decoder needs every object");
        }
    }
    Ok((ids, labels))
}
