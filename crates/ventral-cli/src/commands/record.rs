//! `ventral record` (first form: a model, weights and an image array).

use std::path::PathBuf;

use anyhow::{Context, Result};
use ventral_models::Model;
use ventral_models::device::parse_device;

use crate::commands::models::load_model_config;
use crate::progress::Progress;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Model TOML (`[model]` table) or registered model name.
    #[arg(long)]
    model: String,
    /// Weights (safetensors with PyTorch parameter names: ventral's or the reference's).
    #[arg(long)]
    weights: PathBuf,
    /// Images: float32 .npy of shape [N, 3, H, W], already normalised.
    #[arg(long)]
    images: PathBuf,
    /// Labels: integer .npy of shape [N].
    #[arg(long)]
    labels: Option<PathBuf>,
    /// Output .npz.
    #[arg(long)]
    out: PathBuf,
    /// Images per forward pass.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// cpu, cuda:N or wgpu.
    #[arg(long, default_value = "cpu")]
    device: String,
}

pub fn run(a: Args) -> Result<()> {
    let cfg = load_model_config(&a.model)?;
    let device = parse_device(&a.device)?;
    let model = ventral_train::train::load_weights(Model::init(&cfg, &device)?, &a.weights)?;
    let bar = Progress::new("record", 0, "img");
    ventral_train::record::record_arrays(
        &model,
        &device,
        &a.images,
        a.labels.as_deref(),
        &a.out,
        a.batch_size,
        &|d, t| bar.update(d, t),
    )
    .with_context(|| format!("recording {}", a.images.display()))?;
    bar.finish();
    println!("wrote {}", a.out.display());
    Ok(())
}
