//! `ventral dynamics`: the representation-dynamics analyses of Thorat et al. (2023) on
//! activation files (reference `.npz` dumps or `ventral record` output).

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use ventral_analysis::output::{Net, change_cell, pair_text, sanitize, write_report, write_tables};
use ventral_analysis::{Activations, Dynamics, Metadata, analyse};
use ventral_core::atomic::AtomicDir;

use crate::commands::neural_inputs::{named_path, write_run_json};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Activations `.npz` (`[NAME=]PATH`; repeat to compare networks side by side — those
    /// recorded on the same images also pairwise, step by step: networks_compared.csv).
    #[arg(long, required = true)]
    pub activations: Vec<String>,
    /// The same images through the untrained network (`[NAME=]PATH`, NAME matching an
    /// `--activations` name; without names, in the same order).
    #[arg(long)]
    pub untrained: Vec<String>,
    /// Image metadata CSV (one row per image in order, or matched by `stimulus_id`); default:
    /// the `meta.*` arrays of the activation file.
    #[arg(long)]
    pub metadata: Option<PathBuf>,
    /// Metadata columns to split the zone analyses by (default: variation and
    /// occluded_fraction when present).
    #[arg(long, value_delimiter = ',')]
    pub split_by: Vec<String>,
    /// Output directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace an existing output directory.
    #[arg(long)]
    pub overwrite: bool,
}

fn stem_name(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "network".into())
}

/// Class names from metadata with `label` and `class_name` columns.
fn class_names(m: &Metadata, labels: &[usize], c: usize) -> Option<Vec<String>> {
    let names = m.column("class_name")?;
    let mut out = vec![String::new(); c];
    for (i, &y) in labels.iter().enumerate() {
        if out[y].is_empty() {
            out[y] = names.get(i)?.to_string();
        }
    }
    for (k, v) in out.iter_mut().enumerate() {
        if v.is_empty() {
            *v = format!("class {k}");
        }
    }
    Some(out)
}

pub fn run(a: Args) -> Result<()> {
    let specs: Vec<(String, PathBuf)> = a
        .activations
        .iter()
        .map(|s| {
            let (n, p) = named_path(s);
            (n.unwrap_or_else(|| stem_name(&p)), p)
        })
        .collect();
    let mut names: Vec<&String> = specs.iter().map(|s| &s.0).collect();
    names.sort();
    names.dedup();
    if names.len() != specs.len() {
        bail!("two --activations have the same name; label them NAME=PATH");
    }
    let untrained: Vec<(Option<String>, PathBuf)> =
        a.untrained.iter().map(|s| named_path(s)).collect();
    if untrained.len() > specs.len() {
        bail!("more --untrained files than --activations");
    }
    let out = AtomicDir::create(&a.out, a.overwrite)?;
    let multi = specs.len() > 1;
    let mut acts: Vec<(String, Activations, Option<Activations>)> = Vec::new();
    for (k, (name, path)) in specs.iter().enumerate() {
        eprintln!("reading {}", path.display());
        let act = Activations::read(path)?;
        let u = untrained
            .iter()
            .enumerate()
            .find(|(j, (n, _))| n.as_ref().map_or(*j == k, |n| n == name))
            .map(|(_, (_, p))| Activations::read(p))
            .transpose()?;
        acts.push((name.clone(), act, u));
    }
    let mut results: Vec<(String, Dynamics, Option<Metadata>)> = Vec::new();
    let mut inputs = Vec::new();
    for (name, act, u) in &acts {
        let meta = match &a.metadata {
            Some(p) => Some(Metadata::read_csv(p, act.n, act.stimulus_ids.as_deref())?),
            None => act.metadata.clone(),
        };
        let split_by: Vec<String> = if a.split_by.is_empty() {
            meta.as_ref()
                .map(Metadata::default_split_by)
                .unwrap_or_default()
        } else {
            a.split_by.clone()
        };
        if !a.split_by.is_empty() && meta.is_none() {
            bail!("--split-by needs image metadata: give --metadata, or record with metadata");
        }
        let t0 = std::time::Instant::now();
        let d = analyse(act, u.as_ref(), meta.as_ref(), &split_by)?;
        eprintln!(
            "  {name}: {} images × {} steps × {} units analysed in {:.2} s; accuracy {} (best at t={}), horizon {}",
            act.n,
            act.t,
            act.d,
            t0.elapsed().as_secs_f64(),
            d.accuracy
                .iter()
                .map(|v| format!("{v:.3}"))
                .collect::<Vec<_>>()
                .join(" → "),
            d.best_step,
            d.horizon
        );
        if !d.step_changes.is_empty() {
            eprintln!(
                "  {name}: change from the previous step, same images (exact McNemar): {}",
                d.step_changes
                    .iter()
                    .map(|c| format!(
                        "t={}→{} {}",
                        c.timestep - 1,
                        c.timestep,
                        change_cell(c, d.n)
                    ))
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
        let dir = if multi {
            let p = out.path().join(sanitize(name));
            std::fs::create_dir_all(&p)?;
            p
        } else {
            out.path().to_path_buf()
        };
        write_tables(&dir, act, &d)?;
        inputs.push(serde_json::json!({
            "name": name,
            "activations": {"path": act.source, "blake3": ventral_core::hash::file_blake3(Path::new(&act.source))?},
            "untrained": match u { Some(u) => serde_json::json!({"path": u.source, "blake3": ventral_core::hash::file_blake3(Path::new(&u.source))?}), None => serde_json::Value::Null },
            "split_by": split_by,
        }));
        results.push((name.clone(), d, meta));
    }
    let nets: Vec<Net<'_>> = results
        .iter()
        .zip(&acts)
        .map(|((name, d, meta), (_, act, _))| Net {
            name: name.clone(),
            acts: act,
            dynamics: d,
            class_names: meta
                .as_ref()
                .and_then(|m| class_names(m, &act.labels, act.c)),
        })
        .collect();
    let report = write_report(out.path(), &nets)?;
    // Networks recorded on the same images: each pair's last comparison (its last steps) on the
    // terminal; every step in networks_compared.csv and the report.
    for pair in report.pairs.chunk_by(|x, y| (&x.a, &x.b) == (&y.a, &y.b)) {
        if let Some(r) = pair.last() {
            eprintln!(
                "  compared on the same images (exact McNemar): {}",
                pair_text(r)
            );
        }
    }
    let meta = serde_json::json!({
        "inputs": inputs,
        "metadata": a.metadata.as_ref().map(|p| p.display().to_string()),
        "timesteps": "0-based",
    });
    write_run_json(out.path(), meta)?;
    let dir = out.commit()?;
    println!("report: {}", dir.join("report.html").display());
    Ok(())
}
