//! `ventral rsa`: model-time × neural-time representational similarity.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result};
use ventral_core::atomic::{AtomicDir, write_bytes_atomic};
use ventral_core::npy::{NpyArray, NpyData, write_npz};
use ventral_neural::recordings::Recordings;
use ventral_neural::rsa::{Compare, RdmChoice, model_neural_rsa};
use ventral_neural::{Assembly, features::Features};
use ventral_report::{HeatMap, heat_map};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Feature file(s) as in `neural-fit` (`NAME=PATH` labels a model).
    #[arg(long, required = true)]
    features: Vec<String>,
    /// BrainIO assembly (netCDF-4).
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
    /// correlation (1 − Pearson), cosine, euclidean or crossval-euclidean (neural side from
    /// even/odd repetition halves).
    #[arg(long, default_value = "correlation")]
    rdm: String,
    /// spearman or kendall-a.
    #[arg(long, default_value = "spearman")]
    compare: String,
    /// Stimulus bootstrap resamples for the intervals (0 = none).
    #[arg(long, default_value_t = 20)]
    bootstraps: usize,
    /// Root seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

pub fn run(a: Args) -> Result<()> {
    let choice = RdmChoice::parse(&a.rdm)?;
    let compare = Compare::parse(&a.compare)?;
    let label = a.neural.display().to_string();
    let rec = Recordings::from_assembly(&Assembly::read_any(&a.neural)?, &label)?;
    let out = AtomicDir::create(&a.out, a.overwrite)?;
    std::fs::create_dir_all(out.path().join("plots"))?;
    let regions = rec.region_sites();
    let mut csv = String::from(
        "model,layer,timestep,region,time_bin_start,time_bin_end,rdm,comparison,value,ci_low,ci_high\n",
    );
    let f = |v: f64| {
        if v.is_finite() {
            v.to_string()
        } else {
            String::new()
        }
    };
    let mut rdm_arrays: Vec<(String, NpyArray)> = Vec::new();
    let mut inputs = Vec::new();
    for (mi, spec) in a.features.iter().enumerate() {
        let (name, path) = match spec.split_once('=') {
            Some((n, p)) if !n.is_empty() && !n.contains('/') => {
                (Some(n.to_string()), PathBuf::from(p))
            }
            _ => (None, PathBuf::from(spec)),
        };
        let mut feats = Features::read(&path, &rec.stimulus_ids, &a.layers)?;
        if let Some(n) = name {
            feats.model = n;
        }
        let t0 = std::time::Instant::now();
        let (cells, model, neural) =
            model_neural_rsa(&feats, &rec, choice, compare, a.bootstraps, a.seed)
                .with_context(|| format!("RSA of {}", path.display()))?;
        eprintln!(
            "  {}: {} comparisons in {:.1} s",
            feats.model,
            cells.len(),
            t0.elapsed().as_secs_f64()
        );
        for c in &cells {
            let (bs, be) = rec.bins[c.bin];
            let _ = writeln!(
                csv,
                "{},{},{},{},{bs},{be},{},{},{},{},{}",
                feats.model,
                feats.layers[c.layer].name,
                c.timestep,
                regions[c.region].0,
                a.rdm,
                a.compare,
                f(c.value),
                f(c.ci_low),
                f(c.ci_high)
            );
        }
        // Heat maps: per layer and region, steps × bins.
        for (l, layer) in feats.layers.iter().enumerate() {
            for (r, (region, _)) in regions.iter().enumerate() {
                let values: Vec<Vec<f64>> = (0..layer.steps)
                    .map(|t| {
                        (0..rec.n_bins())
                            .map(|b| {
                                cells
                                    .iter()
                                    .find(|c| {
                                        c.layer == l
                                            && c.timestep == t
                                            && c.region == r
                                            && c.bin == b
                                    })
                                    .map_or(f64::NAN, |c| c.value)
                            })
                            .collect()
                    })
                    .collect();
                let hm = HeatMap {
                    title: format!("{} {} vs {region} ({} RDM)", feats.model, layer.name, a.rdm),
                    x_label: "neural time bin start (ms after onset)".into(),
                    y_label: "model time step".into(),
                    x_ticks: rec.bins.iter().map(|b| format!("{}", b.0)).collect(),
                    y_ticks: (0..layer.steps).map(|t| t.to_string()).collect(),
                    values,
                    scale_label: format!("RDM similarity ({})", a.compare),
                };
                let stem = out.path().join("plots").join(format!(
                    "{}_{}_{}",
                    sanitize(&feats.model),
                    sanitize(&layer.name),
                    sanitize(region)
                ));
                heat_map(&stem, &hm)?;
            }
            let m = layer.steps;
            let len = model[l].first().map_or(0, Vec::len);
            let data: Vec<f32> = model[l].iter().flatten().map(|&v| v as f32).collect();
            rdm_arrays.push((
                format!("model.{}.{}", feats.model, layer.name),
                NpyArray::new(vec![m, len], NpyData::F32(data)).map_err(anyhow::Error::msg)?,
            ));
        }
        if mi == 0 {
            for (r, (region, _)) in regions.iter().enumerate() {
                let len = neural[r].first().map_or(0, Vec::len);
                let data: Vec<f32> = neural[r].iter().flatten().map(|&v| v as f32).collect();
                rdm_arrays.push((
                    format!("neural.{region}"),
                    NpyArray::new(vec![rec.n_bins(), len], NpyData::F32(data))
                        .map_err(anyhow::Error::msg)?,
                ));
            }
        }
        inputs.push(serde_json::json!({
            "model": feats.model, "path": path.display().to_string(),
            "blake3": ventral_core::hash::file_blake3(&path)?,
        }));
    }
    write_bytes_atomic(&out.path().join("rsa.csv"), csv.as_bytes())?;
    let refs: Vec<(&str, &NpyArray)> = rdm_arrays.iter().map(|(n, a)| (n.as_str(), a)).collect();
    write_npz(&out.path().join("rdms.npz"), &refs, true)?;
    let meta = serde_json::json!({
        "code_version": crate::code_version(),
        "command": std::env::args().collect::<Vec<_>>(),
        "neural": { "path": label, "blake3": ventral_core::hash::file_blake3(&a.neural)? },
        "features": inputs, "rdm": a.rdm, "compare": a.compare, "bootstraps": a.bootstraps, "seed": a.seed,
        "rdm_layout": "condensed upper triangles in scipy pdist order, stimuli in the assembly's order",
    });
    write_bytes_atomic(
        &out.path().join("run.json"),
        serde_json::to_string_pretty(&meta)?.as_bytes(),
    )?;
    let dir = out.commit()?;
    println!("wrote {}", dir.join("rsa.csv").display());
    Ok(())
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
