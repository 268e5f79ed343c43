//! `ventral pareto`: accuracy against network size over finished runs (Nayebi et al. 2022,
//! Fig. 2): parameters, units (Σ C·H·W over areas, each once) and FLOPs from each run's model,
//! the final epoch's validation accuracy at its decoder, and the Pareto frontiers.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use ventral_analysis::pareto::{Point, frontier, write};
use ventral_core::atomic::AtomicDir;
use ventral_models::{Model, params, size};
use ventral_train::config::TrainFile;

use crate::commands::neural_inputs::{input_record, write_run_json};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Finished training runs (`ventral train` output directories).
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
    /// Output directory: pareto.csv, plots/, run.json.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace an existing output directory.
    #[arg(long)]
    pub overwrite: bool,
}

/// The final epoch's validation accuracy at the step the model is read out at (the last step;
/// a ConvRNN's `last` decoder), from `metrics.csv`.
fn final_accuracy(dir: &Path, step: usize) -> Result<f64> {
    let path = dir.join("metrics.csv");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("{}: no metrics.csv (not a finished run?)", dir.display()))?;
    let mut best: Option<(usize, f64)> = None;
    for (i, line) in text.lines().enumerate().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() < 5 {
            bail!(
                "{}: line {} has {} fields, expected 5",
                path.display(),
                i + 1,
                f.len()
            );
        }
        let (Ok(epoch), Ok(t)) = (f[0].parse::<usize>(), f[1].parse::<usize>()) else {
            bail!(
                "{}: line {}: epoch and timestep must be integers",
                path.display(),
                i + 1
            );
        };
        if f[2] != "val" || t != step {
            continue;
        }
        let acc: f64 = f[4]
            .parse()
            .with_context(|| format!("{}: line {}: accuracy", path.display(), i + 1))?;
        if best.is_none_or(|(e, _)| epoch >= e) {
            best = Some((epoch, acc));
        }
    }
    best.map(|b| b.1).with_context(|| {
        format!(
            "{}: no validation accuracy at time step {step} (was the run validated?)",
            path.display()
        )
    })
}

/// The final epoch's validation accuracy at the run's temporal decoder, from `decoder.csv`
/// (written for models read out by a decoder other than the last step).
fn final_decoder_accuracy(path: &Path) -> Result<f64> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    let mut best: Option<(usize, f64)> = None;
    for (i, line) in text.lines().enumerate().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let parsed = match f.as_slice() {
            [e, split, _, _, acc] => e
                .parse::<usize>()
                .ok()
                .zip(acc.parse::<f64>().ok())
                .map(|x| (x, *split)),
            _ => None,
        };
        let Some(((epoch, acc), split)) = parsed else {
            bail!(
                "{}: line {}: expected epoch,split,decoder,loss,accuracy",
                path.display(),
                i + 1
            );
        };
        if split == "val" && best.is_none_or(|(e, _)| epoch >= e) {
            best = Some((epoch, acc));
        }
    }
    best.map(|b| b.1)
        .with_context(|| format!("{}: no validation rows", path.display()))
}

/// The label of each run in the table and plots: its directory's name, or the path as given
/// where two runs share a directory name (two sweeps' `runs/x`). `Err` when the same run is
/// given twice (it would count twice on the frontiers).
fn run_labels(runs: &[PathBuf]) -> Result<Vec<String>> {
    let mut seen = std::collections::BTreeMap::new();
    for dir in runs {
        let key = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
        if let Some(first) = seen.insert(key, dir) {
            bail!(
                "{} is given twice (also as {}): each run counts once on the frontiers",
                dir.display(),
                first.display()
            );
        }
    }
    let base = |dir: &PathBuf| {
        dir.file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| dir.display().to_string())
    };
    let names: Vec<String> = runs.iter().map(base).collect();
    Ok(runs
        .iter()
        .zip(&names)
        .map(|(dir, n)| {
            if names.iter().filter(|m| *m == n).count() > 1 {
                dir.display().to_string()
            } else {
                n.clone()
            }
        })
        .collect())
}

pub fn run(a: Args) -> Result<()> {
    let device = Device::flex();
    let mut points = Vec::new();
    let mut inputs = Vec::new();
    let labels = run_labels(&a.runs)?;
    for (dir, run) in a.runs.iter().zip(labels) {
        let cfg_path = dir.join("config.toml");
        let text = std::fs::read_to_string(&cfg_path)
            .with_context(|| format!("{}: not a ventral run (no config.toml)", dir.display()))?;
        let cfg = TrainFile::parse(&text, &[], &cfg_path.display().to_string())?;
        let m = &cfg.model;
        let model = Model::init(m, &device)?;
        let r = size::model_size(m, &params::list(&model));
        // Scored where the model is read out: its temporal decoder when it has one (decoder.csv),
        // else the last step.
        let dec = dir.join("decoder.csv");
        let (accuracy, source) = match m.decoder() {
            Some((kind, _)) if dec.is_file() => {
                (final_decoder_accuracy(&dec)?, format!("decoder {kind}"))
            }
            Some((kind, _)) => {
                eprintln!(
                    "{}: decoder {kind}: the run has no decoder.csv (trained before decoders were \
                     scored), the last step's accuracy is used",
                    dir.display()
                );
                (
                    final_accuracy(dir, m.timesteps() - 1)?,
                    "last step".to_string(),
                )
            }
            None => (
                final_accuracy(dir, m.timesteps() - 1)?,
                "last step".to_string(),
            ),
        };
        let kind = serde_json::to_value(m)?["kind"]
            .as_str()
            .unwrap_or("model")
            .to_string();
        points.push(Point {
            run: run.clone(),
            model: kind,
            params: r.params_total as f64,
            units: r.units_per_step as f64,
            flops: r.flops_per_step as f64,
            accuracy,
            accuracy_at: source,
        });
        inputs.push(input_record(&run, &dir.join("metrics.csv"))?);
    }
    let out = AtomicDir::create(&a.out, a.overwrite)?;
    write(out.path(), &points)?;
    write_run_json(out.path(), serde_json::json!({ "inputs": inputs }))?;
    let dir = out.commit()?;
    let on_u = frontier(
        &points
            .iter()
            .map(|p| (p.units, p.accuracy))
            .collect::<Vec<_>>(),
    );
    let on_p = frontier(
        &points
            .iter()
            .map(|p| (p.params, p.accuracy))
            .collect::<Vec<_>>(),
    );
    for (i, p) in points.iter().enumerate() {
        println!(
            "{}: accuracy {:.4}, {} parameters, {} units, {:.3e} FLOPs/step{}{}",
            p.run,
            p.accuracy,
            p.params,
            p.units,
            p.flops,
            if on_u[i] {
                ", on the units frontier"
            } else {
                ""
            },
            if on_p[i] {
                ", on the parameters frontier"
            } else {
                ""
            }
        );
    }
    println!("wrote {}", dir.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_counts_once_and_labels_are_unambiguous() {
        let d = tempfile::tempdir().expect("tempdir");
        for sub in ["a/x", "b/x", "c"] {
            std::fs::create_dir_all(d.path().join(sub)).expect("mkdir");
        }
        let p = |s: &str| d.path().join(s);
        // Two runs named `x` in different places: labelled by their paths; `c` by its name.
        let l = run_labels(&[p("a/x"), p("b/x"), p("c")]).expect("labels");
        assert_eq!(
            l,
            vec![
                p("a/x").display().to_string(),
                p("b/x").display().to_string(),
                "c".to_string()
            ]
        );
        // The same run twice, even spelt differently, is refused.
        let e = run_labels(&[p("c"), p("a/../c")]).expect_err("twice");
        assert!(e.to_string().contains("is given twice"), "{e}");
    }
}
