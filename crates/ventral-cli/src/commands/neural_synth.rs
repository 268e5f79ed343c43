//! `ventral neural-synth`: synthetic recordings with known ground truth (see
//! `ventral_neural::synth`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use ventral_core::npy::{NpyArray, NpyData, write_npz};
use ventral_neural::synth::{SynthConfig, generate, open_stimulus_set, pooled_pixels};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Stimulus directory: `ventral stimuli` output (its stimulus_set/) or a BrainIO
    /// stimulus set (.csv + .zip).
    #[arg(long)]
    stimuli: PathBuf,
    /// Output assembly (.nc). The ground truth goes beside it: `<stem>.truth.json` and the
    /// generating features `<stem>.features.npz`.
    #[arg(long)]
    out: PathBuf,
    /// Replace existing outputs.
    #[arg(long)]
    overwrite: bool,
    /// Only stimuli whose `split` column has this value (e.g. test).
    #[arg(long)]
    split: Option<String>,
    /// At most this many stimuli (the first in the CSV).
    #[arg(long)]
    num_stimuli: Option<usize>,
    /// Hidden model: recurrent or feedforward (a random linear–nonlinear map).
    #[arg(long, default_value = "recurrent")]
    kind: String,
    /// Hidden units.
    #[arg(long, default_value_t = 64)]
    hidden: usize,
    /// Regions as NAME=LATENCY_MS (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "V4=90,IT=110")]
    latency: Vec<String>,
    /// Sites per region.
    #[arg(long, default_value_t = 40)]
    sites: usize,
    /// Time bins START:END:WIDTH in ms.
    #[arg(long, allow_hyphen_values = true, default_value = "70:260:10")]
    bins: String,
    /// Repetitions per stimulus.
    #[arg(long, default_value_t = 10)]
    repetitions: usize,
    /// Median single-trial signal-to-noise ratio (per site it varies by up to 2× either way).
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.5)]
    snr: f64,
    /// Exponential smoothing time constant over bins, ms.
    #[arg(long, allow_negative_numbers = true, default_value_t = 15.0)]
    smoothing_ms: f64,
    /// Strength of the object (category) signal in the hidden network (0 = none); per image
    /// it is scaled by a gain in [0.25, 1.75), saved in the truth file.
    #[arg(long, allow_negative_numbers = true, default_value_t = 1.0)]
    object_signal: f64,
    /// Also write two-alternative behavioural trials of a synthetic subject reading the
    /// generating features (`<stem>.behaviour.csv`, for `ventral behaviour --trials`).
    #[arg(long)]
    behaviour: bool,
    /// Trials per (image, distractor) pair (with --behaviour).
    #[arg(long, default_value_t = 10)]
    behaviour_trials: usize,
    /// The subject's evidence gain β (with --behaviour; larger = more accurate).
    #[arg(long, allow_negative_numbers = true, default_value_t = 4.0)]
    behaviour_gain: f64,
    /// Generating-feature step the subject reads (with --behaviour; default: the last).
    #[arg(long)]
    behaviour_step: Option<usize>,
    /// Root seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn sibling(out: &Path, suffix: &str) -> PathBuf {
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "synth".into());
    out.with_file_name(format!("{stem}{suffix}"))
}

pub fn run(a: Args) -> Result<()> {
    let mut regions = Vec::new();
    for r in &a.latency {
        let (name, ms) = r
            .split_once('=')
            .with_context(|| format!("--latency `{r}`: expected NAME=MS"))?;
        let ms: f64 = ms
            .parse()
            .with_context(|| format!("--latency `{r}`: not a number"))?;
        regions.push((name.to_string(), ms, a.sites));
    }
    let parts: Vec<f64> = a
        .bins
        .split(':')
        .map(|s| s.parse::<f64>())
        .collect::<std::result::Result<_, _>>()
        .with_context(|| format!("--bins `{}`: expected START:END:WIDTH", a.bins))?;
    let [start, end, width] = parts[..] else {
        bail!("--bins `{}`: expected START:END:WIDTH", a.bins)
    };
    if !(width > 0.0 && end > start) {
        bail!("--bins `{}`: need END > START and WIDTH > 0", a.bins);
    }
    let recurrent = match a.kind.as_str() {
        "recurrent" => true,
        "feedforward" => false,
        o => bail!("--kind must be recurrent or feedforward, got `{o}`"),
    };
    let cfg = SynthConfig {
        seed: a.seed,
        recurrent,
        hidden: a.hidden,
        regions,
        bin_start: start,
        bin_ms: width,
        n_bins: ((end - start) / width).round() as usize,
        repetitions: a.repetitions,
        snr: a.snr,
        smoothing_ms: a.smoothing_ms,
        object_signal: a.object_signal,
    };
    let truth_path = sibling(&a.out, ".truth.json");
    let feat_path = sibling(&a.out, ".features.npz");
    let behaviour_path = sibling(&a.out, ".behaviour.csv");
    if a.behaviour
        && (a.behaviour_trials == 0 || !(a.behaviour_gain.is_finite() && a.behaviour_gain > 0.0))
    {
        bail!("--behaviour-trials must be ≥ 1 and --behaviour-gain finite and > 0");
    }
    // One writer at a time for the assembly and its siblings (exit 2 naming the holder).
    let _lock = ventral_core::atomic::OutputLock::acquire(&a.out)?;
    let mut outputs = vec![&a.out, &truth_path, &feat_path];
    if a.behaviour {
        outputs.push(&behaviour_path);
    }
    for p in outputs {
        if p.exists() && !a.overwrite {
            bail!(
                "{} already exists (pass --overwrite to replace it)",
                p.display()
            );
        }
    }
    let set = open_stimulus_set(&a.stimuli)?;
    let mut idx: Vec<usize> = (0..set.ids.len())
        .filter(|&i| {
            a.split
                .as_ref()
                .is_none_or(|s| set.rows[i].get("split") == Some(s))
        })
        .collect();
    if let Some(n) = a.num_stimuli {
        if idx.len() < n {
            eprintln!(
                "note: --num-stimuli {n}, but {} has only {} stimuli{}; using {}",
                set.csv.display(),
                idx.len(),
                a.split
                    .as_ref()
                    .map(|s| format!(" in split `{s}`"))
                    .unwrap_or_default(),
                idx.len()
            );
        }
        idx.truncate(n);
    }
    if idx.len() < 4 {
        bail!(
            "{}: only {} stimuli selected; need at least 4",
            set.csv.display(),
            idx.len()
        );
    }
    let ids: Vec<String> = idx.iter().map(|&i| set.ids[i].clone()).collect();
    let objects: Vec<String> = idx
        .iter()
        .map(|&i| {
            let r = &set.rows[i];
            r.get("object_name")
                .or_else(|| r.get("category_name"))
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    eprintln!(
        "neural-synth: {} stimuli from {}",
        ids.len(),
        set.csv.display()
    );
    let x = pooled_pixels(&set, &ids)?;
    let syn = generate(&cfg, &ids, &objects, &x)?;
    // Everything is computed before the first file is written: a refusal (a --behaviour-step
    // past the last step) used to leave the features file behind, which then blocked the rerun.
    let trials = if a.behaviour {
        let bcfg = ventral_neural::synth::BehaviourConfig {
            seed: a.seed,
            step: a.behaviour_step.unwrap_or(syn.steps - 1),
            trials_per_pair: a.behaviour_trials,
            gain: a.behaviour_gain,
        };
        let trials = ventral_neural::synth::behaviour_trials(
            &syn.features,
            syn.steps,
            syn.hidden,
            &ids,
            &objects,
            &bcfg,
        )?;
        Some((bcfg, trials.to_csv()?, trials.choice.len()))
    } else {
        None
    };
    if let Some(parent) = a.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    // Ground truth first, the assembly last: a present .nc means the set is complete.
    let feats = NpyArray::new(
        vec![syn.steps, ids.len(), syn.hidden],
        NpyData::F32(syn.features.clone()),
    )
    .map_err(anyhow::Error::msg)?;
    let sid = NpyArray::from_strings(&ids);
    write_npz(
        &feat_path,
        &[("hidden", &feats), ("stimulus_id", &sid)],
        false,
    )?;
    let truth = serde_json::json!({
        "code_version": crate::code_version(),
        "stimuli": set.csv.display().to_string(),
        "seed": cfg.seed,
        "kind": a.kind,
        "hidden": cfg.hidden,
        "steps": syn.steps,
        "step_ms": 10.0,
        "regions": cfg.regions.iter().map(|(r, l, n)| serde_json::json!({"region": r, "latency_ms": l, "sites": n})).collect::<Vec<_>>(),
        "time_bin_start": (0..cfg.n_bins).map(|b| cfg.bin_start + cfg.bin_ms * b as f64).collect::<Vec<_>>(),
        "repetitions": cfg.repetitions,
        "snr": cfg.snr,
        "smoothing_ms": cfg.smoothing_ms,
        "object_signal": cfg.object_signal,
        "behaviour": a.behaviour.then(|| serde_json::json!({
            "trials": behaviour_path.display().to_string(),
            "step": a.behaviour_step.unwrap_or(syn.steps - 1),
            "trials_per_pair": a.behaviour_trials,
            "gain": a.behaviour_gain,
            "subject": "z-scored generating features at `step`; evidence e_k = -gain*|z - mu_k|^2/units; P(sample over distractor c) = sigmoid(e_sample - e_c)",
        })),
        "object_gain": syn.stimulus_ids.iter().zip(&syn.object_gain).map(|(id, g)| serde_json::json!({"stimulus_id": id, "gain": g})).collect::<Vec<_>>(),
        "sites": syn.sites.iter().map(|(id, r, snr, rel)| serde_json::json!({"neuroid_id": id, "region": r, "snr": snr, "reliability": rel})).collect::<Vec<_>>(),
    });
    if let Some((bcfg, csv, n)) = &trials {
        ventral_core::atomic::write_bytes_atomic(&behaviour_path, csv.as_bytes())?;
        eprintln!(
            "neural-synth: {n} behavioural trials (subject reads step {} with gain {}) in {}",
            bcfg.step,
            bcfg.gain,
            behaviour_path.display()
        );
    }
    ventral_core::atomic::write_bytes_atomic(
        &truth_path,
        serde_json::to_string_pretty(&truth)?.as_bytes(),
    )?;
    syn.assembly.write(&a.out)?;
    println!(
        "wrote {} (+ {}, {})",
        a.out.display(),
        truth_path.display(),
        feat_path.display()
    );
    Ok(())
}
