//! `ventral hessian`: leading eigenpairs of the training loss's Hessian at a checkpoint of a
//! run, on a fixed subset of its data (Hessian-vector products by central differences of the
//! native engine's gradients; Lanczos or power iteration with QR).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use ventral_analysis::spectral::{Eigen, lanczos, power_iteration};
use ventral_core::atomic::AtomicDir;
use ventral_core::safetensors::TensorOut;
use ventral_data::{Loader, LoaderConfig, PackedDataset};
use ventral_models::hessian::{DEFAULT_EPS, HvpProblem};
use ventral_models::{Model, fast};
use ventral_report::{LinePlot, Series, Style, line_plot};

use crate::commands::neural_inputs::{input_record, write_run_json};
use crate::commands::record::checkpoint_weights;

/// File of the eigenvectors in the output directory.
pub const EIGENVECTORS: &str = "eigenvectors.safetensors";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Training run directory (BLT networks: the native engine computes the gradients).
    pub run: PathBuf,
    /// Weights: init, last or an epoch number.
    #[arg(long, default_value = "last")]
    pub checkpoint: String,
    /// Packed dataset root (default: the run's data.path).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Split whose first --images images form the fixed subset (normalised as in training).
    #[arg(long, default_value = "train")]
    pub split: String,
    #[arg(long, default_value_t = 256)]
    pub images: usize,
    /// Images per gradient batch.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Eigenpairs to report.
    #[arg(long, default_value_t = 8)]
    pub top_k: usize,
    /// Lanczos steps (or power iterations).
    #[arg(long, default_value_t = 30)]
    pub iterations: usize,
    /// lanczos (k largest eigenvalues) or power (k largest in magnitude; subspace iteration
    /// with QR).
    #[arg(long, value_enum, default_value_t = Method::Lanczos)]
    pub method: Method,
    /// Central-difference step along a unit direction.
    #[arg(long, allow_negative_numbers = true, default_value_t = DEFAULT_EPS)]
    pub eps: f64,
    /// Seed of the start vector(s).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long)]
    pub overwrite: bool,
}

/// `--method`: how the leading eigenpairs are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Method {
    /// The k largest eigenvalues (Lanczos).
    Lanczos,
    /// The k largest in magnitude (subspace iteration with QR).
    Power,
}

impl Method {
    /// The name `--method` takes, as written to run.json and the plots.
    pub fn name(self) -> &'static str {
        match self {
            Method::Lanczos => "lanczos",
            Method::Power => "power",
        }
    }
}

pub fn run(a: Args) -> Result<()> {
    if a.images == 0 || a.batch_size == 0 || a.top_k == 0 || a.iterations == 0 {
        bail!("--images, --batch-size, --top-k and --iterations must be positive");
    }
    if !(a.eps.is_finite() && a.eps > 0.0) {
        bail!("--eps must be finite and > 0, got {}", a.eps);
    }
    let cfg_path = a.run.join("config.toml");
    let cfg = ventral_train::config::TrainFile::load(&cfg_path, &[])
        .with_context(|| format!("{}: not a ventral run (config.toml)", a.run.display()))?;
    let ventral_models::ModelConfig::Blt(bcfg) = &cfg.model else {
        bail!(
            "{}: the Hessian needs a BLT network (the native engine's gradients); this run's model is not",
            cfg_path.display()
        );
    };
    let weights_path = checkpoint_weights(&a.run, &a.checkpoint)?;
    let device = burn::tensor::Device::flex();
    let model =
        ventral_train::train::load_weights(Model::init(&cfg.model, &device)?, &weights_path)?;
    let Model::Blt(blt) = &model else {
        bail!("not a BLT network");
    };
    let params = fast::parameters(blt)?;
    let root = a.data.clone().unwrap_or_else(|| cfg.data.path.clone());
    let train_ds = PackedDataset::open(&root.join(&cfg.data.train_split))?;
    let (mean, std) = train_ds.manifest().normalization.f32();
    let ds = Arc::new(PackedDataset::open(&root.join(&a.split))?);
    // Each gradient batch is a training step's forward and backward pass (the engine runs it
    // in passes of at most `fast::CHUNK` images): refused up front when a pass's activations
    // and the batch's arrays cannot fit the memory (an allocation abort otherwise).
    let batch = a.batch_size.min(a.images).min(ds.len());
    let (_, bytes) = cfg.model.training_step_bytes(batch, true);
    if let Some(more) = ventral_core::mem::exceeds_u128(bytes).map_err(anyhow::Error::msg)? {
        bail!(
            "--batch-size {}: a gradient batch of {batch} images needs about {more}; lower --batch-size",
            a.batch_size
        );
    }
    let loader = Loader::with_normalization(
        ds.clone(),
        LoaderConfig {
            batch_size: a.batch_size,
            shuffle: false,
            ..Default::default()
        },
        mean,
        std,
    );
    let mut subset = Vec::new();
    let mut taken = 0;
    for b in loader.epoch(0, 0) {
        let n = b.labels.len().min(a.images - taken);
        let per = b.images.len() / b.labels.len().max(1);
        subset.push((
            b.images[..n * per].to_vec(),
            b.labels[..n]
                .iter()
                .map(|&y| y as usize)
                .collect::<Vec<usize>>(),
        ));
        taken += n;
        if taken >= a.images {
            break;
        }
    }
    let t = bcfg.timesteps;
    let lw = cfg
        .train
        .loss_weights
        .clone()
        .unwrap_or_else(|| vec![1.0; t]);
    let mut prob = HvpProblem::new(fast::spec(bcfg), &params, subset, lw)?;
    let n = prob.dim();
    // Vectors of `n` float64s the method keeps: Lanczos its basis (at least `top_k` steps, at
    // most `n`), the power method its `top_k` iterates and their images. Refused up front
    // when they exceed the memory available, instead of growing until the allocation fails.
    let vectors = match a.method {
        Method::Power => 2.0 * a.top_k.min(n) as f64,
        Method::Lanczos => a.iterations.max(a.top_k).min(n) as f64 + 1.0,
    };
    let basis_bytes = vectors * n as f64 * 8.0;
    if let Some(m) = ventral_core::mem::exceeds(basis_bytes.min(u64::MAX as f64) as u64)
        .map_err(anyhow::Error::msg)?
    {
        bail!(
            "the {} vectors of --top-k {} and --iterations {} on {n} parameters need {m}",
            a.method.name(),
            a.top_k,
            a.iterations
        );
    }
    eprintln!(
        "Hessian of {} ({} parameters) at {} on {taken} images of {}: {} × {} (vectors kept: {:.0} MB)",
        a.run.display(),
        n,
        weights_path.display(),
        a.split,
        a.method.name(),
        a.iterations,
        basis_bytes / 1e6
    );
    // Cost of one gradient, for the report.
    let t0 = Instant::now();
    let theta = prob.theta().to_vec();
    let (loss, g) = prob.loss_and_gradient(&theta)?;
    let grad_s = t0.elapsed().as_secs_f64();
    if !(loss.is_finite() && g.iter().all(|x| x.is_finite())) {
        bail!(
            "{}: the loss or its gradient is not finite at these weights (loss {loss}); a diverged checkpoint has no Hessian",
            weights_path.display()
        );
    }
    let gnorm = g.iter().map(|x| x * x).sum::<f64>().sqrt();
    let eps = a.eps;
    let started = Instant::now();
    let mut count = 0usize;
    let mut op = |v: &[f64]| -> Result<Vec<f64>> {
        count += 1;
        eprint!("\rHessian-vector product {count}");
        let hv = prob.hvp(v, eps)?;
        // A step too large moves the weights to where the loss overflows: NaN eigenvalues
        // were written with exit 0.
        if hv.iter().any(|x| !x.is_finite()) {
            bail!(
                "Hessian-vector product {count} is not finite: the central difference at --eps {eps} (a step of that length along a unit direction) reaches weights where the loss overflows; use a smaller --eps (default {DEFAULT_EPS})"
            );
        }
        Ok(hv)
    };
    let e: Eigen = match a.method {
        Method::Lanczos => lanczos(n, a.top_k, a.iterations, a.seed, &mut op)?,
        Method::Power => power_iteration(n, a.top_k, a.iterations, a.seed, &mut op)?,
    };
    eprintln!();
    let hvp_s = started.elapsed().as_secs_f64() / e.products.max(1) as f64;

    let out = AtomicDir::create(&a.out, a.overwrite)?;
    let mut s = String::from("rank,eigenvalue,residual\n");
    for (i, (v, r)) in e.values.iter().zip(&e.residuals).enumerate() {
        let _ = writeln!(s, "{i},{v},{r}");
    }
    ventral_core::atomic::write_bytes_atomic(&out.path().join("eigenvalues.csv"), s.as_bytes())?;
    // Eigenvectors by parameter name ([k, numel] each) so they map back onto the network.
    let mut by_name: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    let mut at = 0;
    for (name, len) in prob.names() {
        let mut data = Vec::with_capacity(e.vectors.len() * len);
        for v in &e.vectors {
            data.extend(v[at..at + len].iter().map(|&x| x as f32));
        }
        by_name.push((name.clone(), vec![e.vectors.len(), *len], data));
        at += len;
    }
    let tensors: BTreeMap<String, TensorOut<'_>> = by_name
        .iter()
        .map(|(k, s, d)| (k.clone(), TensorOut::F32(s, d)))
        .collect();
    let mut meta = BTreeMap::new();
    meta.insert(
        "format".to_string(),
        "ventral Hessian eigenvectors: per parameter [k, numel], PyTorch names; row i is eigenvector i (eigenvalues.csv)".to_string(),
    );
    meta.insert(
        "eigenvalues".to_string(),
        serde_json::to_string(&e.values).unwrap_or_default(),
    );
    ventral_core::safetensors::write(&out.path().join(EIGENVECTORS), &tensors, &meta)?;
    let pd = out.path().join("plots");
    std::fs::create_dir_all(&pd)?;
    line_plot(
        &pd.join("spectrum"),
        &LinePlot {
            title: format!(
                "Top Hessian eigenvalues ({}, {} products)",
                a.method.name(),
                e.products
            ),
            x_label: "rank".into(),
            y_label: "eigenvalue".into(),
            series: vec![Series {
                name: String::new(),
                points: e
                    .values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (i as f64, *v))
                    .collect(),
                band: None,
                style: Style::Line,
            }],
            y_range: None,
        },
    )?;
    write_run_json(
        out.path(),
        serde_json::json!({
            "weights": input_record(&a.checkpoint, &weights_path)?,
            "data": root.display().to_string(),
            "split": a.split,
            "split_blake3": ds.manifest().blake3,
            "images": taken,
            "method": a.method.name(),
            "iterations": a.iterations,
            "top_k": a.top_k,
            "eps": a.eps,
            "seed": a.seed,
            "parameters": n,
            "loss": loss,
            "gradient_norm": gnorm,
            "hessian_vector_products": e.products,
            "seconds_per_gradient": grad_s,
            "seconds_per_hvp": hvp_s,
        }),
    )?;
    let dir = out.commit()?;
    for (i, (v, r)) in e.values.iter().zip(&e.residuals).enumerate() {
        println!("λ{i} = {v:.6e} (residual {r:.2e})");
    }
    println!(
        "one gradient {grad_s:.2} s, one Hessian-vector product {hvp_s:.2} s ({:.2}× a gradient); wrote {}",
        hvp_s / grad_s.max(1e-12),
        dir.display()
    );
    Ok(())
}
