//! `ventral record`: a model's outputs and representations at every step, in the reference's
//! npz format. Two forms: a training run over a packed dataset (`--run RUN --data DIR`), or a
//! model, weights and an image array (`--model M --weights W --images X.npy`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use ventral_data::packed::{PackedDataset, find_splits};
use ventral_models::Model;
use ventral_models::device::parse_device;
use ventral_train::record::{Pool, RecordOptions, record_arrays, record_dataset};

use crate::commands::models::load_model_config;
use crate::progress::Progress;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Training run directory (`ventral train` output): its config and checkpoints.
    #[arg(long, conflicts_with_all = ["model", "weights", "images"])]
    pub run: Option<PathBuf>,
    /// Packed dataset (a split, or a root of splits; see --split) to record on (with --run).
    #[arg(long, requires = "run")]
    pub data: Option<PathBuf>,
    /// Split of a dataset root (default: test, else val).
    #[arg(long)]
    pub split: Option<String>,
    /// Weights of the run: init (untrained), last (final weights) or an epoch number — kept
    /// only when the run's config sets `train.checkpoint_every` (checkpoints/epoch_NNNN).
    #[arg(long, default_value = "last")]
    pub checkpoint: String,
    /// Model TOML (`[model]` table) or registered model name.
    #[arg(long, requires_all = ["weights", "images"])]
    pub model: Option<String>,
    /// Weights with PyTorch parameter names (ventral's or the reference's): safetensors, or a
    /// PyTorch checkpoint of a state dict (`torch.save(net.state_dict(), 'net.pth')`, as the
    /// reference code saves them; also under `state_dict` / `model_state_dict`, and with
    /// `nn.DataParallel`'s `module.` prefix), or for rcnn-sat networks the reference's Keras
    /// weights (HDF5, as `cjspoerer/rcnn-sat` publishes them), or for the convrnns zoo's
    /// ConvRNNs the original TensorFlow checkpoints (`ckpts/MODEL/model.ckpt`: TensorFlow's
    /// names mapped onto ventral's, TensorFlow's layer-norm ε).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Images: float32 .npy of shape [N, 3, H, W], already normalised.
    #[arg(long)]
    pub images: Option<PathBuf>,
    /// Labels: integer .npy of shape [N] (with --images).
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Areas to record too, comma-separated: BLT v1, v2, v4, it; rcnn-sat layer_0 … layer_6
    /// (an unknown name lists the model's).
    #[arg(long, value_delimiter = ',')]
    pub layers: Vec<String>,
    /// Spatial reduction of the areas: gap (global average, [T, N, C]), grid:K (average over a
    /// K×K grid, [T, N, C·K·K], channel-major like PyTorch's flatten) or none ([T, N, C·H·W]).
    #[arg(long, default_value = "gap")]
    pub pool: String,
    /// Output .npz.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace an existing --out.
    #[arg(long)]
    pub overwrite: bool,
    /// Images per forward pass. The native CPU engine runs at most 64 per pass (as fast per
    /// image as more, and a fraction of the memory): larger values record what 64 does.
    #[arg(long, default_value_t = 64, value_parser = super::positive)]
    pub batch_size: usize,
    /// cpu, cuda:N or wgpu.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// `auto` (BLT models on cpu run on ventral's native engine), `native` or `burn`.
    #[arg(long, default_value = "auto")]
    pub engine: String,
    /// On the native engine: 3 × 3 stride-1 convolutions by Winograd F(4 × 4, 3 × 3) —
    /// about 1.3–1.4× faster BLT_net_64 inference, log-probabilities within a few 1e-6 of the
    /// default exact path (docs/performance.md).
    #[arg(long)]
    pub winograd: bool,
}

/// The weights file of a run's checkpoint: init, last or an epoch number.
pub fn checkpoint_weights(run: &Path, which: &str) -> Result<PathBuf> {
    let p = match which {
        "init" => run.join("checkpoints/init/model.safetensors"),
        "last" => run.join("weights.safetensors"),
        e => {
            let epoch: usize = e.parse().with_context(|| {
                format!("--checkpoint `{e}`: expected init, last or an epoch number")
            })?;
            run.join(format!("checkpoints/epoch_{epoch:04}/model.safetensors"))
        }
    };
    if !p.is_file() {
        let mut have: Vec<String> = std::fs::read_dir(run.join("checkpoints"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n == "init" || n.starts_with("epoch_"))
                    .collect()
            })
            .unwrap_or_default();
        have.sort();
        bail!(
            "{}: no checkpoint `{which}` ({} missing; checkpoints: {}{})",
            run.display(),
            p.display(),
            have.join(", "),
            if run.join("weights.safetensors").is_file() {
                ", last"
            } else {
                ""
            }
        );
    }
    Ok(p)
}

pub fn run(a: Args) -> Result<()> {
    if a.out.exists() && !a.overwrite {
        bail!(
            "{} already exists (pass --overwrite to replace it)",
            a.out.display()
        );
    }
    let device = parse_device(&a.device)?;
    let cpu = ventral_models::device::is_cpu(&a.device);
    let native = match a.engine.as_str() {
        "auto" => cpu,
        "native" if cpu => true,
        "native" => bail!(
            "--engine native runs on cpu only (got --device {})",
            a.device
        ),
        "burn" => false,
        e => bail!("--engine `{e}`: expected auto, native or burn"),
    };
    if a.winograd && !native {
        bail!("--winograd runs on the native engine only (cpu, --engine auto or native)");
    }
    let opts = RecordOptions {
        batch_size: a.batch_size,
        layers: a.layers.clone(),
        pool: Pool::parse(&a.pool)?,
        native,
        winograd: a.winograd,
    };
    let bar = Progress::new("record", 0, "img");
    match (&a.run, &a.model) {
        (Some(run), _) => {
            let cfg_path = run.join("config.toml");
            let cfg = ventral_train::config::TrainFile::load(&cfg_path, &[])
                .with_context(|| format!("{}: not a ventral run (config.toml)", run.display()))?;
            let weights = checkpoint_weights(run, &a.checkpoint)?;
            let model = ventral_train::train::load_weights_for_inference(
                Model::init(&cfg.model, &device)?,
                &weights,
            )?;
            let data = a
                .data
                .clone()
                .unwrap_or_else(|| PathBuf::from(&cfg.data.path));
            let splits = find_splits(&data)?;
            let split = match &a.split {
                Some(s) => splits.iter().find(|(n, _)| n == s).with_context(|| {
                    format!(
                        "{}: no split `{s}` (splits: {})",
                        data.display(),
                        splits
                            .iter()
                            .map(|s| s.0.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })?,
                None => splits
                    .iter()
                    .find(|(n, _)| n == "test")
                    .or_else(|| splits.iter().find(|(n, _)| n == "val"))
                    .or(splits.first())
                    .with_context(|| format!("{}: no split", data.display()))?,
            };
            let ds = Arc::new(PackedDataset::open(&split.1)?);
            eprintln!(
                "recording {} ({} images, split {}) with {}",
                run.display(),
                ds.len(),
                split.0,
                weights.display()
            );
            record_dataset(&model, &device, ds, &a.out, &opts, &|d, t| bar.update(d, t))
                .with_context(|| format!("recording {}", split.1.display()))?;
        }
        (None, Some(m)) => {
            let (Some(weights), Some(images)) = (&a.weights, &a.images) else {
                bail!("--model needs --weights and --images");
            };
            let cfg = load_model_config(m)?;
            if let ventral_models::ModelConfig::ConvRnn(c) = &cfg
                && let Err(why) = c.output_sees_image()
            {
                // Recorded all the same (its areas may see the image), but its logits and
                // accuracies are the same for every image.
                eprintln!("warning: {m}: {why}; its logits do not depend on the image");
            }
            let model = ventral_train::train::load_weights_for_inference(
                Model::init(&cfg, &device)?,
                weights,
            )?;
            record_arrays(
                &model,
                &device,
                images,
                a.labels.as_deref(),
                &a.out,
                &opts,
                &|d, t| bar.update(d, t),
            )
            .with_context(|| format!("recording {}", images.display()))?;
        }
        (None, None) => bail!("give --run RUN --data DIR, or --model M --weights W --images X.npy"),
    }
    bar.finish();
    println!("wrote {}", a.out.display());
    Ok(())
}
