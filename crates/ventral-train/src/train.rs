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
//! | `DONE` | written last |
//!
//! Every file is written atomically; a resume point is a new directory made visible by
//! rewriting `LATEST`, so a kill at any moment leaves the previous one intact. Batches, their
//! order and augmentations are pure functions of (seed, epoch, index), the initialisation comes
//! from the `init` stream, and the optimiser state is saved exactly, so a resumed CPU run ends
//! with the same bytes as an uninterrupted one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use ventral_core::safetensors::{SafeTensors, TensorOut};
use ventral_core::{AtomicDir, write_bytes_atomic};
use ventral_data::{Loader, LoaderConfig, PackedDataset};
use ventral_models::device::parse_device;
use ventral_models::{Model, fast, params};

use crate::config::TrainFile;
use crate::error::{Result, TrainError, file_err};
use crate::optim::{Grads, Optimizer, grad_norm, named_grad_norm};

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
        loss: f64,
        images_per_s: f64,
    },
    Epoch {
        epoch: usize,
        train_acc_last: f64,
        val_acc_last: f64,
        val_loss: f64,
    },
    Done,
}

/// One row of `metrics.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricRow {
    pub epoch: usize,
    pub timestep: usize,
    pub split: String,
    pub loss: f64,
    pub accuracy: f64,
}

/// Loop state saved with every resume point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct LoopState {
    /// Epoch in progress (== epochs when finished).
    epoch: usize,
    /// Next batch of that epoch.
    batch: usize,
    global_step: usize,
    /// Running sums of the epoch in progress: loss and correct per step, images seen.
    loss_sum: Vec<f64>,
    correct: Vec<u64>,
    seen: u64,
    metrics: Vec<MetricRow>,
}

/// Summary of a finished run.
#[derive(Debug)]
pub struct Summary {
    pub out: PathBuf,
    pub metrics: Vec<MetricRow>,
    pub already_done: bool,
}

fn save_model(model: &Model, path: &Path) -> Result<()> {
    let ex = params::export(model);
    let tensors: BTreeMap<String, TensorOut<'_>> = ex
        .iter()
        .map(|(k, (s, d))| (k.clone(), TensorOut::F32(s, d)))
        .collect();
    let mut meta = BTreeMap::new();
    meta.insert(
        "model".to_string(),
        serde_json::to_string(&model.config()).unwrap_or_default(),
    );
    meta.insert(
        "format".to_string(),
        "ventral weights, PyTorch parameter names".to_string(),
    );
    ventral_core::safetensors::write(path, &tensors, &meta)?;
    Ok(())
}

/// Load weights saved by ventral or by PyTorch (same names) into `model`.
pub fn load_weights(model: Model, path: &Path) -> Result<Model> {
    let st = SafeTensors::read(path)?;
    Ok(params::load(model, &st)?)
}

fn write_metrics(path: &Path, rows: &[MetricRow]) -> Result<()> {
    ventral_core::write_atomic(path, |w| {
        let mut cw = csv::Writer::from_writer(w);
        cw.write_record(["epoch", "timestep", "split", "loss", "accuracy"])?;
        for r in rows {
            cw.write_record([
                r.epoch.to_string(),
                r.timestep.to_string(),
                r.split.clone(),
                format!("{}", r.loss),
                format!("{}", r.accuracy),
            ])?;
        }
        cw.flush()
    })
    .map_err(|e| file_err(path.display(), e))
}

struct Run {
    dir: PathBuf,
}

impl Run {
    fn ckpt(&self) -> PathBuf {
        self.dir.join("checkpoints")
    }

    fn save_point(&self, model: &Model, opt: &Optimizer, state: &LoopState) -> Result<()> {
        let name = format!("step_{:08}", state.global_step);
        let target = self.ckpt().join(&name);
        if target.exists() {
            // Already saved at this step (e.g. epoch end right after a step checkpoint).
            return Ok(());
        }
        let d = AtomicDir::create(&target, false).map_err(|e| file_err(target.display(), e))?;
        save_model(model, &d.path().join("model.safetensors"))?;
        opt.save(&d.path().join("optim.safetensors"))?;
        let js = serde_json::to_vec_pretty(state).unwrap_or_default();
        write_bytes_atomic(&d.path().join("state.json"), &js)
            .map_err(|e| file_err(target.display(), e))?;
        d.commit().map_err(|e| file_err(target.display(), e))?;
        let latest = self.ckpt().join("LATEST");
        write_bytes_atomic(&latest, name.as_bytes()).map_err(|e| file_err(latest.display(), e))?;
        // Older resume points are no longer needed.
        if let Ok(rd) = std::fs::read_dir(self.ckpt()) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if n.starts_with("step_") && n != name {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        Ok(())
    }

    fn latest(&self) -> Option<PathBuf> {
        let name = std::fs::read_to_string(self.ckpt().join("LATEST")).ok()?;
        let p = self.ckpt().join(name.trim());
        p.join("state.json").is_file().then_some(p)
    }
}

fn nll_and_correct(lp: &Tensor<2>, y: &Tensor<1, Int>, labels: &[i64]) -> (Tensor<1>, u64) {
    let n = labels.len();
    let loss = lp.clone().gather(1, y.clone().reshape([n, 1])).mean().neg();
    let pred: Vec<i64> = lp
        .clone()
        .argmax(1)
        .into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .unwrap_or_default();
    let correct = pred.iter().zip(labels).filter(|(a, b)| a == b).count() as u64;
    (loss, correct)
}

/// Gradients of one step, from burn's autodiff or the native engine.
enum StepGrads {
    Autodiff(burn::tensor::Gradients),
    Named(BTreeMap<String, Vec<f32>>),
}

/// Images whose argmax of `lp` (`[n, classes]`, row-major) is their label.
fn correct_of(lp: &[f32], labels: &[i64]) -> u64 {
    let k = lp.len() / labels.len().max(1);
    lp.chunks(k)
        .zip(labels)
        .filter(|(row, y)| {
            // First maximum wins, as burn's and PyTorch's argmax.
            let mut best = 0;
            for (i, v) in row.iter().enumerate() {
                if *v > row[best] {
                    best = i;
                }
            }
            best as i64 == **y
        })
        .count() as u64
}

/// Evaluate on a split: per-step mean loss and accuracy.
fn evaluate(
    model: &Model,
    device: &Device,
    loader: &Loader,
    native: bool,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let t_steps = model.config().timesteps();
    let mut loss = vec![0.0; t_steps];
    let mut correct = vec![0u64; t_steps];
    let mut seen = 0u64;
    // The native engine reads the parameters once per evaluation.
    let engine = match model {
        Model::Blt(m) if native => Some((fast::spec(&m.config), fast::parameters(m))),
        _ => None,
    };
    for b in loader.epoch(0, 0) {
        let n = b.labels.len();
        if let Some((spec, p)) = &engine {
            let net = fast::BltNet::new(spec, p).map_err(fast::engine_err)?;
            let out = net.forward(&b.images, n, false).map_err(fast::engine_err)?;
            let k = spec.num_classes;
            for t in 0..t_steps {
                let lp = &out.log_probs[t];
                let nll: f64 = -b
                    .labels
                    .iter()
                    .enumerate()
                    .map(|(i, &y)| lp[i * k + y as usize] as f64)
                    .sum::<f64>()
                    / n as f64;
                loss[t] += nll as f32 as f64 * n as f64;
                correct[t] += correct_of(lp, &b.labels);
            }
            seen += n as u64;
            continue;
        }
        let x = Tensor::<4>::from_data(TensorData::new(b.images, b.shape), device);
        let y = Tensor::<1, Int>::from_data(TensorData::new(b.labels.clone(), [n]), device);
        let out = model.forward(x);
        for t in 0..t_steps {
            let (l, c) = nll_and_correct(&out.log_probs[t], &y, &b.labels);
            let lv: f32 = l.into_scalar();
            loss[t] += lv as f64 * n as f64;
            correct[t] += c;
        }
        seen += n as u64;
    }
    let s = seen.max(1) as f64;
    Ok((
        loss.iter().map(|l| l / s).collect(),
        correct.iter().map(|&c| c as f64 / s).collect(),
    ))
}

/// Train (or resume) a run.
pub fn train(cfg: &TrainFile, opts: &TrainOptions, on: &dyn Fn(Event)) -> Result<Summary> {
    let mcfg = &cfg.model;
    let run = Run {
        dir: opts.out.clone(),
    };
    let config_text = cfg.to_toml();
    if opts.out.join("DONE").is_file() {
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
    let resume_point = if opts.out.exists() {
        let saved = std::fs::read_to_string(opts.out.join("config.toml")).ok();
        match (&saved, opts.resume) {
            (Some(s), true) if *s != config_text => {
                return Err(TrainError::Config(format!(
                    "{}: the run's config.toml differs from this configuration; resume with the same config and --set values",
                    opts.out.display()
                )));
            }
            (_, true) => run.latest(),
            (None, false)
                if std::fs::read_dir(&opts.out)
                    .map(|mut r| r.next().is_none())
                    .unwrap_or(true) =>
            {
                None
            }
            (_, false) => {
                return Err(TrainError::Config(format!(
                    "{} already holds a run; pass --resume to continue it or choose another --out",
                    opts.out.display()
                )));
            }
        }
    } else {
        None
    };

    // Data.
    let train_dir = cfg.data.path.join(&cfg.data.train_split);
    let val_dir = cfg.data.path.join(&cfg.data.val_split);
    let train_ds = Arc::new(PackedDataset::open(&train_dir)?);
    let val_ds = Arc::new(PackedDataset::open(&val_dir)?);
    for ds in [&train_ds, &val_ds] {
        let m = ds.manifest();
        let size = mcfg.image_size();
        if m.height != size || m.width != size || m.channels != 3 {
            return Err(file_err(
                ds.dir().display(),
                format!(
                    "images are {}×{}×{}, the model needs {}×{}×3 (pack with --image-size {})",
                    m.height,
                    m.width,
                    m.channels,
                    mcfg.image_size(),
                    mcfg.image_size(),
                    mcfg.image_size()
                ),
            ));
        }
        if m.num_classes != mcfg.num_classes() {
            return Err(file_err(
                ds.dir().display(),
                format!(
                    "{} classes, the model has num_classes = {}",
                    m.num_classes,
                    mcfg.num_classes()
                ),
            ));
        }
    }
    let norm = &train_ds.manifest().normalization;
    let (mean, std): (Vec<f32>, Vec<f32>) = (
        norm.mean.iter().map(|&v| v as f32).collect(),
        norm.std.iter().map(|&v| v as f32).collect(),
    );
    let tc = &cfg.train;
    let loader = Loader::with_normalization(
        train_ds.clone(),
        LoaderConfig {
            batch_size: tc.batch_size,
            shuffle: true,
            drop_last: false,
            seed: tc.seed,
            augment: cfg.data.augment.clone(),
            prefetch: 2,
        },
        mean.clone(),
        std.clone(),
    );
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
    let weights: Vec<f64> = tc
        .loss_weights
        .clone()
        .unwrap_or_else(|| vec![1.0; t_steps]);
    let (mut model, mut opt, mut state) = match &resume_point {
        Some(p) => {
            let m = load_weights(Model::init(mcfg, &device)?, &p.join("model.safetensors"))?;
            let o = Optimizer::load(tc.optimizer.clone(), &p.join("optim.safetensors"), &base)?;
            let js = std::fs::read(p.join("state.json")).map_err(|e| file_err(p.display(), e))?;
            let s: LoopState = serde_json::from_slice(&js)
                .map_err(|e| file_err(p.join("state.json").display(), e))?;
            (m, o, s)
        }
        None => {
            std::fs::create_dir_all(run.ckpt()).map_err(|e| file_err(run.ckpt().display(), e))?;
            let m = params::init_reference(Model::init(mcfg, &device)?, tc.seed);
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
                "parameters": n_params,
            });
            write_bytes_atomic(
                &opts.out.join("run.json"),
                serde_json::to_string_pretty(&run_json)
                    .unwrap_or_default()
                    .as_bytes(),
            )
            .map_err(|e| file_err(opts.out.display(), e))?;
            let init_dir = run.ckpt().join("init");
            if !init_dir.exists() {
                let d = AtomicDir::create(&init_dir, false)
                    .map_err(|e| file_err(init_dir.display(), e))?;
                save_model(&m, &d.path().join("model.safetensors"))?;
                d.commit().map_err(|e| file_err(init_dir.display(), e))?;
            }
            let s = LoopState {
                epoch: 0,
                batch: 0,
                global_step: 0,
                loss_sum: vec![0.0; t_steps],
                correct: vec![0; t_steps],
                seen: 0,
                metrics: Vec::new(),
            };
            let o = Optimizer::new(tc.optimizer.clone());
            run.save_point(&m, &o, &s)?;
            (m, o, s)
        }
    };

    let nb = loader.num_batches();
    let total_steps = nb * tc.epochs;
    on(Event::Start {
        epochs: tc.epochs,
        batches_per_epoch: nb,
        resumed_at: resume_point.as_ref().map(|_| (state.epoch, state.batch)),
    });
    while state.epoch < tc.epochs {
        let epoch = state.epoch;
        let started = Instant::now();
        let mut images = 0usize;
        for b in loader.epoch(epoch, state.batch) {
            let n = b.labels.len();
            let (lv, gnorm, grads) = match &model {
                Model::Blt(m) if native => {
                    // The native engine: forward, weighted loss and every gradient at once.
                    let p = fast::parameters(m);
                    let net =
                        fast::BltNet::new(&fast::spec(&m.config), &p).map_err(fast::engine_err)?;
                    let labels: Vec<usize> = b.labels.iter().map(|&v| v as usize).collect();
                    let (out, nll, g) = net
                        .loss_and_grad(&b.images, &labels, &weights)
                        .map_err(fast::engine_err)?;
                    let mut lv = 0.0f64;
                    for t in 0..t_steps {
                        state.loss_sum[t] += nll[t] as f32 as f64 * n as f64;
                        state.correct[t] += correct_of(&out.log_probs[t], &b.labels);
                        lv += weights[t] * nll[t];
                    }
                    let g = fast::burn_layout(&model, g);
                    (lv as f32, named_grad_norm(&g), StepGrads::Named(g))
                }
                _ => {
                    let x = Tensor::<4>::from_data(TensorData::new(b.images, b.shape), &device);
                    let y = Tensor::<1, Int>::from_data(
                        TensorData::new(b.labels.clone(), [n]),
                        &device,
                    );
                    let out = model.forward(x);
                    let mut loss: Option<Tensor<1>> = None;
                    for t in 0..t_steps {
                        let (l, c) = nll_and_correct(&out.log_probs[t], &y, &b.labels);
                        let lv: f32 = l.clone().into_scalar();
                        state.loss_sum[t] += lv as f64 * n as f64;
                        state.correct[t] += c;
                        let l = l * weights[t];
                        loss = Some(match loss {
                            None => l,
                            Some(a) => a + l,
                        });
                    }
                    let Some(loss) = loss else { break };
                    let lv: f32 = loss.clone().into_scalar();
                    let grads = loss.backward();
                    (lv, grad_norm(&model, &grads), StepGrads::Autodiff(grads))
                }
            };
            if !lv.is_finite() || !gnorm.is_finite() {
                return Err(TrainError::Diverged(format!(
                    "epoch {epoch}, batch {}: loss {lv}, gradient norm {gnorm}; the last good checkpoint is kept in {}",
                    b.index,
                    run.ckpt().display()
                )));
            }
            let scale = match tc.grad_clip {
                Some(c) if gnorm > c => c / gnorm,
                _ => 1.0,
            };
            let lr = tc
                .schedule
                .lr(tc.optimizer.lr(), state.global_step, total_steps, epoch);
            let src = match &grads {
                StepGrads::Autodiff(g) => Grads::Autodiff(g),
                StepGrads::Named(g) => Grads::Named(g),
            };
            model = opt.step_from(model, src, lr, scale);
            state.global_step += 1;
            state.batch = b.index + 1;
            state.seen += n as u64;
            images += n;
            on(Event::Batch {
                epoch,
                batch: b.index,
                batches: nb,
                loss: lv as f64,
                images_per_s: images as f64 / started.elapsed().as_secs_f64().max(1e-9),
            });
            let stop = opts.stop.load(Ordering::SeqCst);
            if stop || (tc.checkpoint_steps > 0 && state.global_step % tc.checkpoint_steps == 0) {
                run.save_point(&model, &opt, &state)?;
            }
            if stop {
                return Err(TrainError::Interrupted(run.ckpt().display().to_string()));
            }
        }
        // End of epoch: train metrics from the running sums, validation.
        let seen = state.seen.max(1) as f64;
        for t in 0..t_steps {
            state.metrics.push(MetricRow {
                epoch,
                timestep: t,
                split: "train".into(),
                loss: state.loss_sum[t] / seen,
                accuracy: state.correct[t] as f64 / seen,
            });
        }
        let (vl, va) = evaluate(&model.valid(), &base, &val_loader, native)?;
        for t in 0..t_steps {
            state.metrics.push(MetricRow {
                epoch,
                timestep: t,
                split: "val".into(),
                loss: vl[t],
                accuracy: va[t],
            });
        }
        on(Event::Epoch {
            epoch,
            train_acc_last: state.correct[t_steps - 1] as f64 / seen,
            val_acc_last: va[t_steps - 1],
            val_loss: vl[t_steps - 1],
        });
        state.epoch += 1;
        state.batch = 0;
        state.loss_sum = vec![0.0; t_steps];
        state.correct = vec![0; t_steps];
        state.seen = 0;
        write_metrics(&opts.out.join("metrics.csv"), &state.metrics)?;
        crate::plots::write_training_plots(&opts.out.join("plots"), &state.metrics)?;
        if tc.checkpoint_every > 0 && state.epoch % tc.checkpoint_every == 0 {
            let d = run.ckpt().join(format!("epoch_{:04}", state.epoch));
            if !d.exists() {
                let a = AtomicDir::create(&d, false).map_err(|e| file_err(d.display(), e))?;
                save_model(&model, &a.path().join("model.safetensors"))?;
                a.commit().map_err(|e| file_err(d.display(), e))?;
            }
        }
        run.save_point(&model, &opt, &state)?;
    }
    // metrics.csv and the plots were written at the end of the last epoch, before its resume
    // point, so a run resumed after that point finds them already complete.
    save_model(&model, &opts.out.join("weights.safetensors"))?;
    write_bytes_atomic(&opts.out.join("DONE"), b"done\n")
        .map_err(|e| file_err(opts.out.display(), e))?;
    on(Event::Done);
    Ok(Summary {
        out: opts.out.clone(),
        metrics: state.metrics,
        already_done: false,
    })
}
