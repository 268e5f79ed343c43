//! `ventral ost`: object solution times (Kar et al. 2019; Brain-Score's `metrics/ost`).

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use ventral_core::atomic::{AtomicDir, write_bytes_atomic};
use ventral_core::npy::{NpyArray, NpyData, write_npz};
use ventral_neural::ost::{
    DecodedLayer, DecoderConfig, OstOptions, OstSummary, OstTargets, brainscore_i1_bin,
    brainscore_osts_from_i1, check_brainscore_splits, i1_csv, ost_csv, pooled_i1_bin, pooled_osts,
    pooled_splits, split_scores_csv, summary_csv,
};

use crate::commands::neural_inputs::{
    input_record, open_features, read_recordings, write_run_json,
};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Feature file(s) as in `neural-fit` (`NAME=PATH` labels a model); layers with several
    /// steps are decoded per step.
    #[arg(long, required = true)]
    features: Vec<String>,
    /// Target OSTs: CSV with stimulus_id, object_name, ost_ms, i1_threshold.
    #[arg(long, conflicts_with = "neural", required_unless_present = "neural")]
    targets: Option<PathBuf>,
    /// Or derive the targets from recordings (BrainIO .nc or .toml): the same decoder on the
    /// trial-averaged sites of `--region`, per time bin, with threshold `--dprime`.
    #[arg(long)]
    neural: Option<PathBuf>,
    /// Region whose sites give the targets (with `--neural`).
    #[arg(long, default_value = "IT")]
    region: String,
    /// i1 d′ every image must reach (with `--neural`); default: half the median over images
    /// of each image's peak i1 in the region.
    #[arg(long, allow_negative_numbers = true)]
    dprime: Option<f64>,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Replace an existing output directory.
    #[arg(long)]
    overwrite: bool,
    /// Only these layers (comma-separated).
    #[arg(long, value_delimiter = ',')]
    layers: Vec<String>,
    /// Milliseconds per model step.
    #[arg(long, allow_negative_numbers = true, default_value_t = 10.0)]
    step_ms: f64,
    /// Time of model step 0 in ms after stimulus onset (Kar2019's first bin starts at 70):
    /// `MS`, or `REGION=MS` as `neural-fit` takes it (repeatable; the entry for --region is
    /// used).
    #[arg(long, allow_negative_numbers = true, default_value = "70")]
    offset_ms: Vec<String>,
    /// How model OSTs are scored. `brainscore` (default): Brain-Score's `OSTCorrelation` —
    /// `ShuffleSplit(--splits, test_size=--test-frac, random_state=--seed)` over the target
    /// images; per split and bin a decoder on the training images, i1 among the test images,
    /// OSTs from the highest sub-threshold i1 so far, Spearman per split, the mean over
    /// splits. `pooled` (ventral's earlier procedure): per bin a decoder per split, every
    /// image's i1 averaged over the splits that test it, one OST per image, one Spearman over
    /// all images with an image-bootstrap interval.
    #[arg(long, value_enum, default_value_t = Procedure::Brainscore)]
    procedure: Procedure,
    /// The decoder. `brainscore` (default): Brain-Score's TFProbabilitiesClassifier (Keras
    /// VarianceScaling(seed=0) initial weights, bias 1, L2 0.5·0.463 on weights and bias, TF1
    /// Adam, RandomState(0) batches). `zero-init`: ventral's earlier decoder (zero initial
    /// weights, L2 0.463 on the weights, batches from the run's seed).
    #[arg(long, value_enum, default_value_t = DecoderChoice::Brainscore)]
    decoder: DecoderChoice,
    /// Train/test splits: a count, or (with `--procedure brainscore`) a splits.json of an
    /// earlier run (its train/test stimulus ids). Brain-Score's procedure writes the splits
    /// it used to OUT/splits.json.
    #[arg(long, default_value = "10")]
    splits: String,
    /// Test fraction of each split.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.1)]
    test_frac: f64,
    /// Decoder learning rate (Adam; Brain-Score 1e-4).
    #[arg(long, allow_negative_numbers = true, default_value_t = 1e-4)]
    lr: f64,
    /// Decoder epochs (Brain-Score 40; at most 100 000).
    #[arg(long, default_value_t = 40)]
    epochs: usize,
    /// Image bootstrap resamples for the Spearman interval (0 = none).
    #[arg(long, default_value_t = 1000)]
    bootstraps: usize,
    /// Root seed (Brain-Score's procedure: ShuffleSplit's `random_state`, Brain-Score's 1).
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Procedure {
    Brainscore,
    Pooled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum DecoderChoice {
    Brainscore,
    ZeroInit,
}

type Decoded = DecodedLayer;

pub fn run(a: Args) -> Result<()> {
    let offset_ms = ost_offset(&a.offset_ms, &a.region)?;
    if a.step_ms.is_nan() || a.step_ms <= 0.0 || !offset_ms.is_finite() {
        bail!("--step-ms must be > 0 and --offset-ms finite");
    }
    if !(a.test_frac > 0.0 && a.test_frac < 1.0) {
        bail!("--test-frac must be in (0, 1)");
    }
    let n_splits = a.splits.parse::<usize>().ok();
    if n_splits == Some(0) {
        bail!("--splits must be ≥ 1");
    }
    super::check_count("--splits", n_splits.unwrap_or(0), super::MAX_SPLITS)?;
    super::check_count("--bootstraps", a.bootstraps, super::MAX_BOOTSTRAPS)?;
    if n_splits.is_none() && a.procedure == Procedure::Pooled {
        bail!(
            "--splits {}: the pooled procedure takes a count (a splits.json is for --procedure brainscore)",
            a.splits
        );
    }
    if a.procedure == Procedure::Brainscore && u32::try_from(a.seed).is_err() {
        bail!(
            "--seed {}: Brain-Score's procedure seeds NumPy's RandomState, which takes 0 … 2³²−1",
            a.seed
        );
    }
    if !(a.lr.is_finite() && a.lr > 0.0) {
        bail!("--lr must be finite and > 0, got {}", a.lr);
    }
    // 2⁶⁴ − 1 epochs ran until stopped (Brain-Score trains 40).
    super::check_count("--epochs", a.epochs, super::MAX_ITERS)?;
    if a.epochs == 0 {
        bail!("--epochs must be ≥ 1");
    }
    let base = match a.decoder {
        DecoderChoice::Brainscore => DecoderConfig::brainscore(),
        DecoderChoice::ZeroInit => DecoderConfig::zero_init(),
    };
    let opts = OstOptions {
        splits: n_splits.unwrap_or(10),
        test_frac: a.test_frac,
        decoder: DecoderConfig {
            lr: a.lr,
            epochs: a.epochs,
            ..base
        },
        seed: a.seed,
    };
    if a.dprime.is_some_and(|d| !d.is_finite()) {
        bail!("--dprime must be finite");
    }
    let (targets, target_decoded, target_input) = match (&a.targets, &a.neural) {
        (Some(p), _) => (OstTargets::read(p)?, None, input_record("targets", p)?),
        (None, Some(p)) => {
            // Targets reflect the recordings: the pooled procedure with the zero-initialised
            // decoder (Brain-Score ships Kar2019's target OSTs precomputed).
            let target_opts = OstOptions {
                decoder: DecoderConfig {
                    lr: a.lr,
                    epochs: a.epochs,
                    ..DecoderConfig::zero_init()
                },
                ..opts
            };
            let (t, d) = targets_from_recordings(p, &a.region, a.dprime, &target_opts)?;
            (t, Some(d), input_record("neural", p)?)
        }
        (None, None) => bail!("give --targets or --neural"),
    };
    let ids = &targets.stimulus_ids;
    let ids_from = match (&a.targets, &a.neural) {
        (Some(p), _) => format!("the targets {}", p.display()),
        (None, p) => format!(
            "the recordings {}",
            p.as_deref().unwrap_or(Path::new("")).display()
        ),
    };
    let codes = ventral_neural::cv::codes(&targets.object_names);
    let n_classes = codes.iter().max().map_or(0, |m| m + 1);
    let mut class_names = vec![String::new(); n_classes];
    for (&k, name) in codes.iter().zip(&targets.object_names) {
        class_names[k].clone_from(name);
    }
    if n_classes < 2 {
        bail!("the targets name fewer than two objects (object_name); i1 needs ≥ 2 classes");
    }
    let bs_splits = match (a.procedure, n_splits) {
        (Procedure::Pooled, _) => None,
        (Procedure::Brainscore, Some(k)) => Some((
            ventral_neural::numpy_rng::shuffle_split_test(ids.len(), k, a.test_frac, a.seed as u32)
                .map_err(|e| {
                    anyhow::anyhow!(
                        "--test-frac {} over {} target images: {e}",
                        a.test_frac,
                        ids.len()
                    )
                })?,
            format!(
                "brainscore: scikit-learn ShuffleSplit(n_splits={k}, test_size={}, random_state={}) over the target images in file order",
                a.test_frac, a.seed
            ),
        )),
        (Procedure::Brainscore, None) => {
            let p = Path::new(&a.splits);
            if !p.is_file() {
                bail!(
                    "--splits {}: not a count or an existing splits.json",
                    a.splits
                );
            }
            Some((
                ventral_neural::predictivity::read_splits_json(p, ids)?,
                format!("given: {}", p.display()),
            ))
        }
    };
    let out = AtomicDir::create(&a.out, a.overwrite)?;
    std::fs::create_dir_all(out.path().join("plots"))?;
    let pooled = pooled_splits(ids.len(), opts.splits, opts.test_frac, opts.seed);
    let mut decoded: Vec<Decoded> = target_decoded.into_iter().collect();
    let mut inputs = vec![target_input];
    for spec in &a.features {
        // Features streamed one step at a time: each step's decoders run, the step is dropped
        // (only the previous step is kept, to detect features constant over time).
        let (feats, path) = open_features(spec, ids, &ids_from, &a.layers)?;
        // After the first features file is known to match the targets' stimuli.
        if let Some((splits, _)) = &bs_splits {
            check_brainscore_splits(&codes, &class_names, splits)?;
        }
        for (l, layer) in feats.layers.iter().enumerate() {
            if layer.steps < 2 {
                eprintln!(
                    "  {} {}: one step only, no time course to decode; skipped",
                    feats.model, layer.name
                );
                continue;
            }
            let t0 = std::time::Instant::now();
            let times: Vec<f64> = (0..layer.steps)
                .map(|t| offset_ms + t as f64 * a.step_ms)
                .collect();
            let bar = crate::progress::Progress::new(
                &format!("ost {} {}", feats.model, layer.name),
                0,
                "steps",
            );
            let (mut bs_i1, mut pooled_i1) = (Vec::new(), Vec::new());
            let mut prev: Option<Vec<f64>> = None;
            let mut constant = true;
            feats.for_each_step(l, |step| {
                let t = step.first_step;
                let x: Vec<f64> = feats
                    .rows
                    .iter()
                    .flat_map(|&r| step.row(t, r).iter().map(|&v| f64::from(v)))
                    .collect();
                match &bs_splits {
                    Some((splits, _)) => bs_i1.push(brainscore_i1_bin(
                        &x,
                        layer.d,
                        &codes,
                        n_classes,
                        splits,
                        &opts.decoder,
                        t,
                    )),
                    None => pooled_i1.push(pooled_i1_bin(
                        &x,
                        layer.d,
                        &codes,
                        n_classes,
                        &pooled,
                        &opts.decoder,
                        opts.seed,
                        t,
                    )),
                }
                bar.update(t + 1, layer.steps);
                if prev.as_ref().is_some_and(|p| *p != x) {
                    constant = false;
                }
                prev = Some(x);
                Ok(())
            })?;
            bar.finish();
            let dec = match &bs_splits {
                Some((splits, _)) => Decoded::from_brainscore(
                    feats.model.clone(),
                    layer.name.clone(),
                    times.clone(),
                    ids.len(),
                    brainscore_osts_from_i1(
                        bs_i1,
                        &times,
                        &targets.thresholds,
                        &targets.ost_ms,
                        splits,
                        constant,
                    ),
                ),
                None => {
                    let i1: Vec<Vec<f64>> = (0..ids.len())
                        .map(|i| pooled_i1.iter().map(|v: &Vec<f64>| v[i]).collect())
                        .collect();
                    let st = pooled_osts(i1, &times, &targets.thresholds, constant);
                    Decoded::new(feats.model.clone(), layer.name.clone(), times, st)
                }
            };
            eprintln!(
                "  {} {}: {} steps × {} images × {} features decoded in {:.1} s",
                feats.model,
                layer.name,
                layer.steps,
                ids.len(),
                layer.d,
                t0.elapsed().as_secs_f64()
            );
            decoded.push(dec);
        }
        inputs.push(input_record(&feats.model, &path)?);
    }
    let models: Vec<&Decoded> = decoded.iter().filter(|d| d.model != "target").collect();
    if models.is_empty() {
        bail!("no layer with more than one step in the feature files: nothing to decode");
    }

    // Tables.
    let summaries: Vec<OstSummary> = models
        .iter()
        .map(|d| OstSummary::new(d, &targets, a.bootstraps, a.seed))
        .collect();
    for s in &summaries {
        println!(
            "{} {}: OST Spearman {:.3} [{:.3}, {:.3}] over {} images solved by both; fraction of target-solved images solved {:.2}",
            s.model, s.layer, s.spearman, s.ci_low, s.ci_high, s.n_solved_both, s.fraction_solved
        );
    }
    let mut arrays: Vec<(String, NpyArray)> =
        vec![("stimulus_id".into(), NpyArray::from_strings(ids))];
    for d in &decoded {
        let nb = d.times.len();
        let data: Vec<f32> = d.st.i1.iter().flatten().map(|&v| v as f32).collect();
        arrays.push((
            format!("i1.{}.{}", d.model, d.layer),
            NpyArray::new(vec![ids.len(), nb], NpyData::F32(data)).map_err(anyhow::Error::msg)?,
        ));
        arrays.push((
            format!("time_ms.{}.{}", d.model, d.layer),
            NpyArray::new(vec![nb], NpyData::F64(d.times.clone())).map_err(anyhow::Error::msg)?,
        ));
    }
    write_bytes_atomic(
        &out.path().join("ost.csv"),
        ost_csv(&targets, &models)?.as_bytes(),
    )?;
    write_bytes_atomic(
        &out.path().join("summary.csv"),
        summary_csv(&summaries)?.as_bytes(),
    )?;
    write_bytes_atomic(&out.path().join("i1.csv"), i1_csv(&decoded)?.as_bytes())?;
    if let Some((splits, procedure)) = &bs_splits {
        write_bytes_atomic(
            &out.path().join("ost_splits.csv"),
            split_scores_csv(&models)?.as_bytes(),
        )?;
        let sj = ventral_neural::predictivity::splits_json(splits, ids, procedure, a.seed);
        write_bytes_atomic(
            &out.path().join("splits.json"),
            serde_json::to_string_pretty(&sj)?.as_bytes(),
        )?;
    }
    write_bytes_atomic(&out.path().join("targets.csv"), targets.to_csv().as_bytes())?;
    let refs: Vec<(&str, &NpyArray)> = arrays.iter().map(|(n, a)| (n.as_str(), a)).collect();
    write_npz(&out.path().join("i1.npz"), &refs, true)?;
    ventral_neural::plots::ost_plots(&decoded, &models, &targets, out.path())?;
    let meta = serde_json::json!({
        "inputs": inputs,
        "targets_from": if a.neural.is_some() { format!("recordings, region {}, d′ threshold {}", a.region, targets.thresholds.first().copied().unwrap_or(f64::NAN)) } else { "file".to_string() },
        "step_ms": a.step_ms, "offset_ms": offset_ms, "splits": a.splits, "test_frac": a.test_frac,
        "procedure": bs_splits.as_ref().map_or_else(|| "pooled".to_string(), |(_, p)| p.clone()),
        "decoder": { "kind": format!("{:?}", opts.decoder.kind), "lr": a.lr, "epochs": a.epochs, "batch": opts.decoder.batch, "l2": opts.decoder.l2, "stop_loss": opts.decoder.stop_loss },
        "bootstraps": a.bootstraps, "seed": a.seed,
        "time_convention": "an image's OST is in ms after onset at bin starts (model step t at offset_ms + t·step_ms)",
    });
    write_run_json(out.path(), meta)?;
    let dir = out.commit()?;
    println!("wrote {}", dir.join("summary.csv").display());
    Ok(())
}

/// Targets from recordings (`ventral_neural::ost::targets_from_recordings`), with progress.
fn targets_from_recordings(
    path: &std::path::Path,
    region: &str,
    dprime: Option<f64>,
    opts: &OstOptions,
) -> Result<(OstTargets, Decoded)> {
    let rec = read_recordings(path)?;
    let t0 = std::time::Instant::now();
    let bar = crate::progress::Progress::new(&format!("targets {region}"), 0, "fits");
    let (targets, decoded, threshold) = ventral_neural::ost::targets_from_recordings(
        &rec,
        &path.display().to_string(),
        region,
        dprime,
        opts,
        &|d, n| bar.update(d, n),
    )?;
    bar.finish();
    if dprime.is_none() {
        eprintln!("  targets: d′ threshold {threshold:.4} (half the median peak i1 in {region})");
    }
    eprintln!(
        "  targets: {region} × {} bins decoded in {:.1} s",
        decoded.times.len(),
        t0.elapsed().as_secs_f64()
    );
    Ok((targets, decoded))
}

/// The offset for `region` from `--offset-ms` values: `MS` for every region, or `REGION=MS`
/// (which wins for its region).
fn ost_offset(specs: &[String], region: &str) -> Result<f64> {
    let mut all = None;
    let mut named = Vec::new();
    for o in specs {
        let num = |v: &str| {
            v.trim()
                .parse::<f64>()
                .map_err(|_| anyhow::anyhow!("--offset-ms `{o}`: not a number"))
        };
        match o.split_once('=') {
            Some((r, v)) => named.push((r.trim().to_string(), num(v)?)),
            None => all = Some(num(o)?),
        }
    }
    if let Some((_, v)) = named.iter().find(|(r, _)| r == region) {
        return Ok(*v);
    }
    match all {
        Some(v) => Ok(v),
        None => bail!(
            "--offset-ms gives {} but not --region {region}",
            named
                .iter()
                .map(|(r, v)| format!("{r}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::ost_offset;

    #[test]
    fn offsets_as_neural_fit_takes_them() {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(ost_offset(&v(&["110"]), "IT").unwrap(), 110.0);
        assert_eq!(ost_offset(&v(&["IT=110"]), "IT").unwrap(), 110.0);
        assert_eq!(ost_offset(&v(&["90", "IT=110"]), "IT").unwrap(), 110.0);
        assert_eq!(ost_offset(&v(&["V4=90", "100"]), "IT").unwrap(), 100.0);
        let e = ost_offset(&v(&["V4=90"]), "IT").unwrap_err().to_string();
        assert!(e.contains("V4=90") && e.contains("--region IT"), "{e}");
        assert!(ost_offset(&v(&["IT=x"]), "IT").is_err());
    }
}
