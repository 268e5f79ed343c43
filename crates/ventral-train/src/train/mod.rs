//! The training loop.
//!
//! Run directory:
//!
//! | path | content |
//! |---|---|
//! | `config.toml` | the resolved configuration (after `--set`) |
//! | `run.json` | code version, seed, device, data paths and hashes, parameter count |
//! | `checkpoints/init/model.safetensors` | the untrained network (the analyses' control) |
//! | `checkpoints/epoch_NNNN/model.safetensors` | every `checkpoint_every` epochs |
//! | `checkpoints/step_NNNNNNNN/` | the resume point: model, optimiser and loop state |
//! | `checkpoints/LATEST` | name of the newest complete resume point (replaced atomically) |
//! | `metrics.csv` | `epoch, timestep, split, loss, accuracy` (tidy; timesteps 0-based) |
//! | `plots/` | accuracy and loss per epoch and accuracy per time step (PNG + SVG) |
//! | `weights.safetensors` | final weights, PyTorch names, deterministic bytes |
//! | `sgd_dynamics.csv`, `sgd_dynamics/` | with `[train.sgd_dynamics]`: the tracker's table and θ₀ (see [`crate::sgd_dynamics`]) |
//! | `DONE` | written last |
//!
//! Every file is written atomically; a resume point is a new directory made visible by
//! rewriting `LATEST`, so a kill at any moment leaves the previous one intact. Batches, their
//! order and augmentations are pure functions of (seed, epoch, index), the initialisation comes
//! from the `init` stream, and the optimiser state is saved exactly, so a resumed CPU run ends
//! with the same bytes as an uninterrupted one.
//!
//! Structure: `run` (the run directory and resume points), `step` (one step's forward,
//! weighted loss and backward; evaluation), [`observer`] (the seam: metrics, progress and the
//! SGD-dynamics tracker are observers with saved state) and [`train`] (the epoch loop).

pub mod metrics;
pub mod observer;
mod run;
mod step;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use burn::module::Module;
use serde::{Deserialize, Serialize};
use ventral_core::write_bytes_atomic;
use ventral_data::{Loader, LoaderConfig, PackedDataset};
use ventral_models::device::parse_device;
use ventral_models::{Model, params};

pub use metrics::{DecoderMetrics, Metrics, Progress};
pub use observer::{EpochInfo, Observer, RunInfo, StepInfo};
pub use run::{load_weights, load_weights_for_inference, save_model};

use crate::config::TrainFile;
use crate::error::{Result, TrainError, file_err};
use crate::optim::Optimizer;
use crate::sgd_dynamics::Tracker;
use run::Run;

/// How to run.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Run directory.
    pub out: PathBuf,
    /// Continue an interrupted run (no-op when it finished).
    pub resume: bool,
    /// Code version recorded in `run.json`.
    pub code_version: String,
    /// Set by a signal handler: finish the step, checkpoint, stop.
    pub stop: Arc<AtomicBool>,
    /// Start a fresh run from these weights (another run's `weights.safetensors` or epoch
    /// checkpoint) instead of the seeded initialisation; recorded in `run.json`.
    pub init_from: Option<PathBuf>,
}

/// Progress events.
#[derive(Debug, Clone)]
pub enum Event {
    Start {
        epochs: usize,
        batches_per_epoch: usize,
        resumed_at: Option<(usize, usize)>,
    },
    Batch {
        epoch: usize,
        batch: usize,
        batches: usize,
        /// The differentiated loss, Σₜ wₜ·NLLₜ (`train.loss_weights`).
        loss: f64,
        /// Mean NLL at the last time step (comparable with the epoch's validation loss).
        loss_last: f64,
        images_per_s: f64,
    },
    Epoch {
        epoch: usize,
        /// Mean NLL and accuracy at the last time step.
        train_loss_last: f64,
        train_acc_last: f64,
        val_loss_last: f64,
        val_acc_last: f64,
    },
    /// Something the run does as configured but that is almost always a mistake (e.g. a
    /// warm-up longer than the whole run); the caller shows it.
    Note(String),
    Done,
}

/// One row of `metrics.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricRow {
    pub epoch: usize,
    pub timestep: usize,
    pub split: String,
    #[serde(with = "crate::exact")]
    pub loss: f64,
    #[serde(with = "crate::exact")]
    pub accuracy: f64,
}

/// Loop state saved with every resume point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct LoopState {
    /// Epoch in progress (== epochs when finished).
    epoch: usize,
    /// Next batch of that epoch.
    batch: usize,
    global_step: usize,
    /// Running sums of the epoch in progress: loss and correct per step, images seen.
    #[serde(with = "crate::exact::vec")]
    loss_sum: Vec<f64>,
    correct: Vec<u64>,
    seen: u64,
    /// Metric rows as resume points before the observer seam saved them (read only: the
    /// metrics observer keeps them now).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    metrics: Vec<MetricRow>,
}

/// Summary of a finished run.
#[derive(Debug)]
pub struct Summary {
    pub out: PathBuf,
    pub metrics: Vec<MetricRow>,
    pub already_done: bool,
}

fn check_data(cfg: &TrainFile, ds: &PackedDataset) -> Result<()> {
    let mcfg = &cfg.model;
    let m = ds.manifest();
    let size = mcfg.image_size();
    if m.height != size || m.width != size || m.channels != 3 {
        return Err(file_err(
            ds.dir().display(),
            format!(
                "images are {}×{}×{}, the model needs {size}×{size}×3 (pack with --image-size {size})",
                m.height, m.width, m.channels,
            ),
        ));
    }
    let (n, k) = (m.num_classes, mcfg.num_classes());
    if n != k {
        // A split packed from labels alone (no class names) has its largest label + 1 classes:
        // a validation split without images of the last classes counts fewer.
        let hint = if n < k {
            format!(
                ": set model.num_classes = {n}, or, if the split lacks images of its last classes, pack it from data that names all {k} (npz `class_names`, HDF5 `/categories`; without names a split's classes are its largest label + 1)"
            )
        } else {
            format!(": set model.num_classes = {n}")
        };
        return Err(file_err(
            ds.dir().display(),
            format!("{n} classes, the model has num_classes = {k}{hint}"),
        ));
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn step_info<'a>(
    epoch: usize,
    batch: usize,
    batches_per_epoch: usize,
    step: usize,
    images: usize,
    lr: f64,
    out: &'a step::StepOutput,
    model: &'a Model,
    opt: &'a Optimizer,
) -> StepInfo<'a> {
    StepInfo {
        epoch,
        batch,
        batches_per_epoch,
        step,
        images,
        nll: &out.nll,
        correct: &out.correct,
        loss: out.loss,
        grad_norm: out.grad_norm,
        lr,
        model,
        opt,
    }
}

/// Memory of one training step at the larger of the batch sizes
/// ([`ModelConfig::training_step_bytes`]: one pass's activations — the native engine runs a
/// batch in passes of at most `fast::CHUNK` images — and the batch's own arrays), checked
/// against the memory available ([`ventral_core::mem::exceeds`]).
///
/// [`ModelConfig::training_step_bytes`]: ventral_models::config::ModelConfig::training_step_bytes
fn check_memory(cfg: &TrainFile) -> Result<()> {
    let (_, units, _) = cfg.model.estimated_size();
    let t = cfg.model.timesteps();
    let batch = cfg.train.batch_size.max(cfg.train.eval_batch_size);
    let (pass, bytes) = cfg.model.training_step_bytes(batch, cfg.native_engine());
    if let Some(more) = ventral_core::mem::exceeds_u128(bytes).map_err(TrainError::Config)? {
        return Err(TrainError::Config(format!(
            "train.batch_size = {} (eval_batch_size {}): the activations of a pass of {pass} images ({units} units per step × {t} steps × 6 floats per image) and the batch's images and outputs need about {more}. Lower the batch size",
            cfg.train.batch_size, cfg.train.eval_batch_size,
        )));
    }
    Ok(())
}

/// The SGD limiting-dynamics tracker measures SGD at one learning rate (the config check refuses
/// a decaying `train.schedule.kind`), but a linear warm-up on a constant schedule also changes
/// the rate while it lasts: it must end before the first tracked step, the first step of
/// `train.sgd_dynamics.start_epoch`. Known only once the batches per epoch (`nb`) of the
/// training split at `split` are; the error names that split, as the `drop_last` check beside
/// it does.
pub(crate) fn check_warmup_before_tracking(
    tc: &crate::config::TrainConfig,
    nb: usize,
    split: &std::path::Path,
) -> Result<()> {
    let Some(d) = tc.sgd_dynamics.as_ref().filter(|d| d.enabled) else {
        return Ok(());
    };
    let first = d.start_epoch.saturating_mul(nb);
    let warmup = tc.schedule.warmup_steps;
    if warmup > first {
        return Err(file_err(
            split.display(),
            format!(
                "train.schedule.warmup_steps = {warmup} overlaps the steps train.sgd_dynamics tracks, which start at step {first} (start_epoch {} × {nb} batches per epoch): the learning rate would still be rising while the limiting dynamics are measured at one rate. Set train.sgd_dynamics.start_epoch to at least {} or train.schedule.warmup_steps to at most {first}",
                d.start_epoch,
                warmup.div_ceil(nb.max(1)),
            ),
        ));
    }
    Ok(())
}

/// Train (or resume) a run.
pub fn train(cfg: &TrainFile, opts: &TrainOptions, on: &dyn Fn(Event)) -> Result<Summary> {
    // One trainer per run directory: a second one fails at once naming the holder's pid.
    let _lock = ventral_core::atomic::OutputLock::acquire(&opts.out)
        .map_err(|e| file_err(opts.out.display(), e))?;
    let fresh = !opts.out.exists();
    let res = train_locked(cfg, opts, on);
    // A run that failed before its first resume point (a full disk while writing the initial
    // checkpoint, bad data found late) leaves nothing behind when this call created it: there
    // is nothing to resume, and a leftover directory would refuse the corrected rerun.
    if res.is_err() && fresh && opts.out.is_dir() {
        let run = Run {
            dir: opts.out.clone(),
        };
        if matches!(run.latest(), Ok(None)) {
            let _ = std::fs::remove_dir_all(&opts.out);
        }
    }
    res
}

fn train_locked(cfg: &TrainFile, opts: &TrainOptions, on: &dyn Fn(Event)) -> Result<Summary> {
    let mcfg = &cfg.model;
    let tc = &cfg.train;
    let run = Run {
        dir: opts.out.clone(),
    };
    let config_text = cfg.to_toml();
    if run.is_done() {
        if opts.resume {
            return Ok(Summary {
                out: opts.out.clone(),
                metrics: Vec::new(),
                already_done: true,
            });
        }
        return Err(TrainError::Config(format!(
            "{} holds a finished run; choose another --out (or --resume, which does nothing)",
            opts.out.display()
        )));
    }
    cfg.check_for_training().map_err(TrainError::Config)?;
    let resume_point = run.open(opts.resume, &config_text)?;
    check_memory(cfg)?;

    // Data.
    let train_ds = Arc::new(PackedDataset::open(
        &cfg.data.path.join(&cfg.data.train_split),
    )?);
    let val_ds = Arc::new(PackedDataset::open(
        &cfg.data.path.join(&cfg.data.val_split),
    )?);
    check_data(cfg, &train_ds)?;
    check_data(cfg, &val_ds)?;
    let (mean, std) = train_ds.manifest().normalization.f32();
    let loader = Loader::with_normalization(
        train_ds.clone(),
        LoaderConfig {
            batch_size: tc.batch_size,
            shuffle: true,
            drop_last: tc.drop_last,
            seed: tc.seed,
            augment: cfg.data.augment.clone(),
            prefetch: 2,
        },
        mean.clone(),
        std.clone(),
    );
    if loader.num_batches() == 0 {
        return Err(file_err(
            train_ds.dir().display(),
            format!(
                "{} images and train.drop_last = true with batch_size = {} leave no training batch",
                train_ds.len(),
                tc.batch_size
            ),
        ));
    }
    check_warmup_before_tracking(tc, loader.num_batches(), train_ds.dir())?;
    let total_steps = tc.epochs.saturating_mul(loader.num_batches());
    if tc.schedule.warmup_steps > total_steps {
        // Not refused (a run may be resumed with more epochs), but the rate never reaches
        // train.optimizer.lr: almost always a typo.
        on(Event::Note(format!(
            "train.schedule.warmup_steps = {} is longer than the whole run ({total_steps} steps: {} epochs × {} batches); the learning rate never reaches train.optimizer.lr",
            tc.schedule.warmup_steps,
            tc.epochs,
            loader.num_batches()
        )));
    }
    let val_loader = Loader::with_normalization(
        val_ds.clone(),
        LoaderConfig {
            batch_size: tc.eval_batch_size,
            shuffle: false,
            ..Default::default()
        },
        mean,
        std,
    );

    // Model and optimiser.
    let base = parse_device(&tc.device)?;
    let device = base.clone().autodiff();
    let t_steps = mcfg.timesteps();
    let native = cfg.native_engine();
    // Checked when the configuration loaded.
    let precision = ventral_models::Precision::parse(&cfg.train.precision).unwrap_or_default();
    precision
        .check(&base, &tc.device)
        .map_err(|e| TrainError::Config(format!("train.precision: {e}")))?;
    let weights: Vec<f64> = tc
        .loss_weights
        .clone()
        .unwrap_or_else(|| vec![1.0; t_steps]);
    let mut metrics = Metrics::default();
    let (mut model, mut opt, mut state) = match &resume_point {
        Some(p) => {
            let m = load_weights(
                Model::init(mcfg, &device)?,
                &p.dir.join("model.safetensors"),
            )?;
            let sizes: Vec<(String, usize)> = params::list(&m)
                .into_iter()
                .map(|i| (i.name, i.shape.iter().product()))
                .collect();
            let o = Optimizer::load(
                tc.optimizer.clone(),
                &p.dir.join("optim.safetensors"),
                &base,
                &sizes,
            )?;
            let mut s = p.state.clone();
            // Resume points written before the observer seam kept the rows in the state.
            metrics = Metrics::with_rows(std::mem::take(&mut s.metrics));
            (m, o, s)
        }
        None => {
            std::fs::create_dir_all(run.ckpt()).map_err(|e| file_err(run.ckpt().display(), e))?;
            let mut m = Model::init_seeded(mcfg, &device, tc.seed)?;
            let mut init_from = serde_json::Value::Null;
            if let Some(w) = &opts.init_from {
                m = load_weights(m, w)?;
                init_from = serde_json::json!({
                    "path": w.display().to_string(),
                    "blake3": ventral_core::hash::file_blake3(w).map_err(|e| file_err(w.display(), e))?,
                });
            }
            write_bytes_atomic(&opts.out.join("config.toml"), config_text.as_bytes())
                .map_err(|e| file_err(opts.out.display(), e))?;
            let n_params: usize = params::list(&m)
                .iter()
                .map(|p| p.shape.iter().product::<usize>())
                .sum();
            let run_json = serde_json::json!({
                "code_version": opts.code_version,
                "seed": tc.seed,
                "device": tc.device,
                "data": {
                    "path": cfg.data.path.display().to_string(),
                    "train_split": cfg.data.train_split,
                    "train_blake3": train_ds.manifest().blake3,
                    "val_split": cfg.data.val_split,
                    "val_blake3": val_ds.manifest().blake3,
                },
                "init_from": init_from,
                "parameters": n_params,
            });
            write_bytes_atomic(
                &opts.out.join("run.json"),
                serde_json::to_string_pretty(&run_json)
                    .unwrap_or_default()
                    .as_bytes(),
            )
            .map_err(|e| file_err(opts.out.display(), e))?;
            run.save_init(&m)?;
            let s = LoopState {
                epoch: 0,
                batch: 0,
                global_step: 0,
                loss_sum: vec![0.0; t_steps],
                correct: vec![0; t_steps],
                seen: 0,
                metrics: Vec::new(),
            };
            (m, Optimizer::new(tc.optimizer.clone()), s)
        }
    };

    // Observers, in call order.
    let mut progress = Progress::new(on);
    let mut tracker = tc
        .sgd_dynamics
        .as_ref()
        .filter(|c| c.enabled)
        .map(|c| Tracker::new(c.clone(), &tc.optimizer));
    let mut decoder_metrics = mcfg.decoder().map(|(kind, _)| DecoderMetrics::new(kind));
    let mut observers: Vec<&mut dyn Observer> = vec![&mut metrics, &mut progress];
    if let Some(d) = decoder_metrics.as_mut() {
        observers.push(d);
    }
    if let Some(t) = tracker.as_mut() {
        observers.push(t);
    }

    let nb = loader.num_batches();
    let info = RunInfo {
        dir: &opts.out,
        epochs: tc.epochs,
        batches_per_epoch: nb,
        timesteps: t_steps,
        resumed_at: resume_point.as_ref().map(|_| (state.epoch, state.batch)),
        global_step: state.global_step,
        model: &model,
    };
    for o in observers.iter_mut() {
        let saved = match &resume_point {
            Some(p) => p.observer_state(o.name())?,
            None => None,
        };
        o.start(&info, saved.as_deref())?;
    }
    if resume_point.is_none() {
        run.save_point(&model, &opt, &state, &mut observers)?;
    }

    let total_steps = nb * tc.epochs;
    while state.epoch < tc.epochs {
        let epoch = state.epoch;
        for b in loader.epoch(epoch, state.batch) {
            let n = b.labels.len();
            let index = b.index;
            // On a pool worker (`on_pool`): the step's small parallel passes run inline.
            let out = ventral_models::engine_ops::on_pool(|| {
                step::forward_backward(&model, b, &weights, native, tc.winograd, precision, &device)
            })?;
            if !out.loss.is_finite() || !out.grad_norm.is_finite() {
                return Err(TrainError::Diverged(format!(
                    "epoch {epoch}, batch {index}: loss {}, gradient norm {}; the last good checkpoint is kept in {}",
                    out.loss,
                    out.grad_norm,
                    run.ckpt().display()
                )));
            }
            let scale = match tc.grad_clip {
                Some(c) if out.grad_norm > c => c / out.grad_norm,
                _ => 1.0,
            };
            let lr = tc
                .schedule
                .lr(tc.optimizer.lr(), state.global_step, total_steps, epoch);
            let k = state.global_step;
            for o in observers.iter_mut() {
                o.before_update(&step_info(epoch, index, nb, k, n, lr, &out, &model, &opt))?;
            }
            model = opt.step_from(model, out.grads.as_grads(), lr, scale);
            // The step ran on a pool worker: its BatchNorm statistics settle now, whichever.
            model.settle_running_state();
            for t in 0..t_steps {
                state.loss_sum[t] += out.nll[t] * n as f64;
                state.correct[t] += out.correct[t];
            }
            state.global_step += 1;
            state.batch = index + 1;
            state.seen += n as u64;
            for o in observers.iter_mut() {
                o.after_update(&step_info(epoch, index, nb, k, n, lr, &out, &model, &opt))?;
            }
            let stop = opts.stop.load(Ordering::SeqCst);
            if stop || (tc.checkpoint_steps > 0 && state.global_step % tc.checkpoint_steps == 0) {
                run.save_point(&model, &opt, &state, &mut observers)?;
            }
            if stop {
                return Err(TrainError::Interrupted(run.ckpt().display().to_string()));
            }
        }
        // End of epoch: train metrics from the running sums, validation.
        let seen = state.seen.max(1) as f64;
        let train_loss: Vec<f64> = state.loss_sum.iter().map(|l| l / seen).collect();
        let train_acc: Vec<f64> = state.correct.iter().map(|&c| c as f64 / seen).collect();
        let ev = step::evaluate(&model.valid(), &base, &val_loader, native, precision)?;
        let (val_loss, val_acc) = (ev.loss, ev.accuracy);
        if let Some((l, _)) = ev.decoder.filter(|(l, _)| !l.is_finite()) {
            return Err(TrainError::Diverged(format!(
                "epoch {epoch}: validation loss {l} at the decoder; the last good checkpoint is kept in {}",
                run.ckpt().display()
            )));
        }
        if let Some((t, l)) = val_loss.iter().enumerate().find(|(_, l)| !l.is_finite()) {
            // The last batch's loss was finite but its update was not (or the weights are).
            return Err(TrainError::Diverged(format!(
                "epoch {epoch}: validation loss {l} at time step {t}; the last good checkpoint is kept in {}",
                run.ckpt().display()
            )));
        }
        let e = EpochInfo {
            epoch,
            train_loss: &train_loss,
            train_acc: &train_acc,
            val_loss: &val_loss,
            val_acc: &val_acc,
            val_decoder: ev.decoder,
            model: &model,
        };
        for o in observers.iter_mut() {
            o.epoch_end(&e)?;
        }
        state.epoch += 1;
        state.batch = 0;
        state.loss_sum = vec![0.0; t_steps];
        state.correct = vec![0; t_steps];
        state.seen = 0;
        if tc.checkpoint_every > 0 && state.epoch % tc.checkpoint_every == 0 {
            run.save_epoch(&model, state.epoch)?;
        }
        run.save_point(&model, &opt, &state, &mut observers)?;
    }
    // metrics.csv and the plots were written at the end of the last epoch, before its resume
    // point, so a run resumed after that point finds them already complete.
    save_model(&model, &opts.out.join("weights.safetensors"))?;
    for o in observers.iter_mut() {
        o.finish(&opts.out)?;
    }
    drop(observers);
    write_bytes_atomic(&opts.out.join("DONE"), b"done\n")
        .map_err(|e| file_err(opts.out.display(), e))?;
    Ok(Summary {
        out: opts.out.clone(),
        metrics: metrics.rows,
        already_done: false,
    })
}
