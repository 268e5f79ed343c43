//! `ventral rsa`: model-time × neural-time representational similarity.

use std::path::PathBuf;

use anyhow::Result;
use ventral_core::atomic::{AtomicDir, write_bytes_atomic};
use ventral_core::npy::{NpyArray, NpyData, write_npz};
use ventral_neural::rsa::{
    Compare, RdmChoice, RsaLabels, bootstrap_pairs, compare_rdms, model_rdms, neural_rdms, rsa_csv,
    rsa_rows,
};

use crate::commands::neural_inputs::{
    input_record, open_features, read_recordings, write_run_json,
};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Feature file(s) as in `neural-fit` (`NAME=PATH` labels a model).
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
    /// Only these layers (comma-separated).
    #[arg(long, value_delimiter = ',')]
    layers: Vec<String>,
    /// correlation (1 − Pearson), cosine, euclidean (SciPy's), sq-euclidean (squared Euclidean
    /// over channels: rsatoolbox's `euclidean` RDM values) or crossval-euclidean (neural side
    /// from even/odd repetition halves).
    #[arg(long, default_value = "correlation")]
    rdm: String,
    /// spearman or kendall-a.
    #[arg(long, default_value = "spearman")]
    compare: String,
    /// Stimulus bootstrap resamples for the 95 % intervals (0 = none); 1000 is rsatoolbox's
    /// `eval_bootstrap_pattern` default. The count is written in every row (`resamples`).
    #[arg(long, default_value_t = 1000)]
    bootstraps: usize,
    /// Root seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

pub fn run(a: Args) -> Result<()> {
    super::check_count("--bootstraps", a.bootstraps, super::MAX_BOOTSTRAPS)?;
    let choice = RdmChoice::parse(&a.rdm)?;
    let compare = Compare::parse(&a.compare)?;
    let rec = read_recordings(&a.neural)?;
    let ids_from = format!("the recordings {}", a.neural.display());
    let out = AtomicDir::create(&a.out, a.overwrite)?;
    std::fs::create_dir_all(out.path().join("plots"))?;
    let regions = rec.region_sites();
    let nb = rec.n_bins();
    // Neural RDMs and the bootstrap resamples are the same for every model: computed once.
    let t0 = std::time::Instant::now();
    eprintln!(
        "neural RDMs: {} regions × {nb} bins of {} stimuli …",
        regions.len(),
        rec.n_stimuli()
    );
    let neural = neural_rdms(&rec, choice)?;
    eprintln!("  done in {:.1} s", t0.elapsed().as_secs_f64());
    let samples = bootstrap_pairs(rec.n_stimuli(), a.bootstraps, a.seed);
    let mut rdm_arrays: Vec<(String, NpyArray)> = regions
        .iter()
        .zip(&neural)
        .map(|((region, _), r)| Ok((format!("neural.{region}"), rdm_array(r)?)))
        .collect::<Result<_>>()?;
    let mut table: Vec<Vec<String>> = Vec::new();
    let region_names: Vec<String> = regions.iter().map(|(r, _)| r.clone()).collect();
    let mut inputs = Vec::new();
    for spec in &a.features {
        let (feats, path) = open_features(spec, &rec.stimulus_ids, &ids_from, &a.layers)?;
        let t0 = std::time::Instant::now();
        let steps: usize = feats.layers.iter().map(|l| l.steps).sum();
        eprintln!(
            "  {}: model RDMs ({} layers, {steps} layer-steps) …",
            feats.model,
            feats.layers.len()
        );
        let model = model_rdms(&feats, choice)?;
        eprintln!(
            "  {}: comparing {} model RDMs × {} neural RDMs ({} bootstrap resamples) …",
            feats.model,
            steps,
            regions.len() * nb,
            a.bootstraps
        );
        let unit = if compare == Compare::Spearman {
            "resamples"
        } else {
            "cells"
        };
        let bar = crate::progress::Progress::new(&format!("rsa {}", feats.model), 0, unit);
        let t1 = std::time::Instant::now();
        let cells = compare_rdms(&model, &neural, compare, &samples, &|d, n| bar.update(d, n));
        bar.finish();
        eprintln!(
            "  {}: {} comparisons compared in {:.4} s ({:.1} s with the model RDMs)",
            feats.model,
            cells.len(),
            t1.elapsed().as_secs_f64(),
            t0.elapsed().as_secs_f64()
        );
        let layer_names: Vec<String> = feats.layers.iter().map(|l| l.name.clone()).collect();
        table.extend(rsa_rows(
            &RsaLabels {
                model: &feats.model,
                layers: &layer_names,
                regions: &region_names,
                bins: &rec.bins,
                rdm: &a.rdm,
                comparison: &a.compare,
                resamples: a.bootstraps,
            },
            &cells,
        ));
        let layer_steps: Vec<(String, usize)> = feats
            .layers
            .iter()
            .map(|l| (l.name.clone(), l.steps))
            .collect();
        let region_names: Vec<String> = regions.iter().map(|(r, _)| r.clone()).collect();
        let bin_starts: Vec<f64> = rec.bins.iter().map(|b| b.0).collect();
        ventral_neural::plots::rsa_heat_maps(
            &feats.model,
            &layer_steps,
            &region_names,
            &bin_starts,
            &cells,
            &a.rdm,
            &a.compare,
            &out.path().join("plots"),
        )?;
        for (l, layer) in feats.layers.iter().enumerate() {
            rdm_arrays.push((
                format!("model.{}.{}", feats.model, layer.name),
                rdm_array(&model[l])?,
            ));
        }
        inputs.push(input_record(&feats.model, &path)?);
    }
    write_bytes_atomic(&out.path().join("rsa.csv"), rsa_csv(table)?.as_bytes())?;
    let refs: Vec<(&str, &NpyArray)> = rdm_arrays.iter().map(|(n, a)| (n.as_str(), a)).collect();
    write_npz(&out.path().join("rdms.npz"), &refs, true)?;
    let meta = serde_json::json!({
        "neural": {
            "path": a.neural.display().to_string(),
            "blake3": ventral_core::hash::file_blake3(&a.neural)?,
        },
        "features": inputs, "rdm": a.rdm, "compare": a.compare, "bootstraps": a.bootstraps, "seed": a.seed,
        "rdm_layout": "condensed upper triangles in scipy pdist order, stimuli in the assembly's order",
    });
    write_run_json(out.path(), meta)?;
    let dir = out.commit()?;
    println!("wrote {}", dir.join("rsa.csv").display());
    Ok(())
}

/// Condensed RDMs [steps or bins][pairs] as one float32 array.
fn rdm_array(rdms: &[Vec<f64>]) -> Result<NpyArray> {
    let len = rdms.first().map_or(0, Vec::len);
    let data: Vec<f32> = rdms.iter().flatten().map(|&v| v as f32).collect();
    NpyArray::new(vec![rdms.len(), len], NpyData::F32(data)).map_err(anyhow::Error::msg)
}
