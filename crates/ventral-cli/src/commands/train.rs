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
}

/// Exit code when SIGTERM/SIGINT stopped training after a checkpoint.
pub const EXIT_INTERRUPTED: u8 = 3;
/// Exit code when the loss or gradient became NaN/Inf.
pub const EXIT_DIVERGED: u8 = 4;

pub fn run(a: Args) -> Result<()> {
    let cfg = TrainFile::load(&a.config, &a.set)?;
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
    };
    let bar = std::sync::Mutex::new(None::<Progress>);
    let on = |e: Event| match e {
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
            images_per_s,
        } => {
            let mut g = bar.lock().unwrap_or_else(|p| p.into_inner());
            let p = g.get_or_insert_with(|| {
                Progress::new(&format!("epoch {epoch}"), batches, "batches")
            });
            p.update_with(
                batch + 1,
                batches,
                &format!("{images_per_s:.1} images/s, loss {loss:.4}"),
            );
            if batch + 1 == batches {
                p.finish();
                *g = None;
            }
        }
        Event::Epoch {
            epoch,
            train_acc_last,
            val_acc_last,
            val_loss,
        } => {
            eprintln!(
                "epoch {epoch}: train accuracy (last step) {train_acc_last:.3}, val accuracy {val_acc_last:.3}, val loss {val_loss:.4}"
            );
        }
        Event::Done => {}
    };
    let s = train(&cfg, &opts, &on)?;
    if s.already_done {
        println!("{} already finished; nothing to do", s.out.display());
    } else {
        println!("finished: {}", s.out.join("weights.safetensors").display());
    }
    Ok(())
}
