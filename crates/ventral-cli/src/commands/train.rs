//! `ventral train`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Result;
use ventral_train::config::TrainFile;
use ventral_train::train::{Event, TrainOptions, train};

use crate::progress::Progress;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Training configuration ([model], [data], [train]).
    pub config: PathBuf,
    /// Override a value: --set train.epochs=5 --set data.path=runs/stimuli
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Run directory (default runs/<config name>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue an interrupted run; does nothing for a finished one.
    #[arg(long)]
    pub resume: bool,
    /// Start from another run's weights instead of the seeded initialisation: RUN (its
    /// final weights.safetensors), RUN:EPOCH (its checkpoints/epoch_EPOCH, kept with
    /// train.checkpoint_every), a .safetensors file, a PyTorch state dict saved with
    /// torch.save (e.g. the reference code's .pth) or, for rcnn-sat, the reference's Keras
    /// .h5 weights. The SGD-dynamics protocol: restart a
    /// trained network with constant-lr SGD and [train.sgd_dynamics] on.
    #[arg(long, value_name = "RUN[:EPOCH]")]
    pub init_from: Option<String>,
}

/// Resolve `--init-from` to a weights file.
pub fn resolve_init_from(spec: &str) -> Result<PathBuf> {
    let p = PathBuf::from(spec);
    if p.is_file() {
        return Ok(p);
    }
    let (run, epoch) = match spec.rsplit_once(':') {
        Some((r, e)) if e.chars().all(|c| c.is_ascii_digit()) && !e.is_empty() => {
            (PathBuf::from(r), Some(e.parse::<usize>()?))
        }
        _ => (p, None),
    };
    if !run.is_dir() {
        anyhow::bail!(
            "--init-from {spec}: {} is neither a run directory nor a weights file",
            run.display()
        );
    }
    let w = match epoch {
        None => run.join("weights.safetensors"),
        Some(e) => run
            .join("checkpoints")
            .join(format!("epoch_{e:04}"))
            .join("model.safetensors"),
    };
    if !w.is_file() {
        let kept: Vec<String> = std::fs::read_dir(run.join("checkpoints"))
            .map(|rd| {
                let mut v: Vec<String> = rd
                    .flatten()
                    .filter_map(|e| {
                        let n = e.file_name().to_string_lossy().into_owned();
                        n.strip_prefix("epoch_")
                            .and_then(|x| x.parse::<usize>().ok())
                            .map(|x| x.to_string())
                    })
                    .collect();
                v.sort();
                v
            })
            .unwrap_or_default();
        anyhow::bail!(
            "--init-from {spec}: {} does not exist ({}; epochs kept: {})",
            w.display(),
            if epoch.is_none() {
                "the run has not finished"
            } else {
                "that epoch was not kept"
            },
            if kept.is_empty() {
                "none".to_string()
            } else {
                kept.join(", ")
            }
        );
    }
    Ok(w)
}

/// Exit code when SIGTERM/SIGINT stopped training after a checkpoint.
pub const EXIT_INTERRUPTED: u8 = 3;
/// Exit code when the loss or gradient became NaN/Inf.
pub const EXIT_DIVERGED: u8 = 4;

pub fn run(a: Args) -> Result<()> {
    let cfg = TrainFile::load(&a.config, &a.set)?;
    cfg.check_for_training()
        .map_err(|e| ventral_train::TrainError::Config(format!("{}: {e}", a.config.display())))?;
    if let Some(note) = ventral_models::Precision::parse(&cfg.train.precision)
        .ok()
        .and_then(|p| p.device_note(&cfg.train.device))
    {
        eprintln!("note: {note}");
    }
    if let ventral_models::ModelConfig::ConvRnn(c) = &cfg.model
        && let Some(note) = c.decoder_note()
    {
        eprintln!("note: {note}");
    }
    let device = &cfg.train.device;
    if let Some(note) = ventral_models::device::compile_note(device) {
        eprintln!("note: {note}");
    }
    // The training split's size, for the ragged-batch note; a split that cannot be read is
    // reported by training itself, naming the file.
    let split = cfg.data.path.join(&cfg.data.train_split);
    if let Some(note) = ventral_data::PackedDataset::open(&split)
        .ok()
        .and_then(|d| {
            ventral_models::device::ragged_batch_note(
                device,
                d.len(),
                cfg.train.batch_size,
                cfg.train.drop_last,
            )
        })
    {
        eprintln!("note: {note}");
    }
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(a.config.file_stem().unwrap_or_default()));
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    let opts = TrainOptions {
        out: out.clone(),
        resume: a.resume,
        code_version: crate::code_version(),
        stop,
        init_from: a.init_from.as_deref().map(resolve_init_from).transpose()?,
    };
    let bar = std::sync::Mutex::new(None::<Progress>);
    let on = reporter(&out, &bar);
    let s = train(&cfg, &opts, &on)?;
    if s.already_done {
        println!("{} already finished; nothing to do", s.out.display());
    } else {
        println!("finished: {}", s.out.join("weights.safetensors").display());
    }
    Ok(())
}

/// Prints training events: progress bars per epoch, a line per epoch.
pub fn reporter<'a>(
    out: &'a std::path::Path,
    bar: &'a std::sync::Mutex<Option<Progress>>,
) -> impl Fn(Event) + 'a {
    move |e: Event| match e {
        Event::Start {
            epochs,
            batches_per_epoch,
            resumed_at,
        } => {
            if let Some((ep, b)) = resumed_at {
                eprintln!("resuming at epoch {ep}, batch {b}");
            }
            eprintln!(
                "training {epochs} epochs × {batches_per_epoch} batches into {}",
                out.display()
            );
        }
        Event::Batch {
            epoch,
            batch,
            batches,
            loss,
            loss_last,
            images_per_s,
        } => {
            let mut g = bar.lock().unwrap_or_else(|p| p.into_inner());
            let p = g.get_or_insert_with(|| {
                Progress::new(&format!("epoch {epoch}"), batches, "batches")
            });
            p.update_with(
                batch + 1,
                batches,
                &format!(
                    "{images_per_s:.1} images/s, loss {loss:.4} (weighted over steps), last step {loss_last:.4}"
                ),
            );
            if batch + 1 == batches {
                p.finish();
                *g = None;
            }
        }
        Event::Epoch {
            epoch,
            train_loss_last,
            train_acc_last,
            val_loss_last,
            val_acc_last,
        } => {
            eprintln!(
                "epoch {epoch}, last time step: train loss {train_loss_last:.4}, accuracy {train_acc_last:.3}; val loss {val_loss_last:.4}, accuracy {val_acc_last:.3}"
            );
        }
        Event::Note(text) => eprintln!("note: {text}"),
        Event::Done => {}
    }
}
