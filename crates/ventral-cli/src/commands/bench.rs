//! `ventral bench`: images/s of training steps (forward, summed per-step NLL, backward, Adam)
//! and inference for the reference BLT_net_64 (additive and multiplicative) and the tiny CPU
//! configuration, on the engine training uses (`native` by default, or `burn`), plus a
//! per-operation profile at the network's layer shapes with achieved GFLOP/s against this
//! machine's peak. Compare with PyTorch side by side with `scripts/bench_blt.sh`.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use serde_json::json;
use ventral_models::config::{BltConfig, Interaction};
use ventral_models::device::read_f32;
use ventral_models::precision::{Precision, autocast};
use ventral_models::{Blt, Model, fast, params};
use ventral_train::config::OptimizerConfig;
use ventral_train::optim::{Grads, Optimizer};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Models, comma-separated: ref64 (BLT_net_64, additive), ref64_mult (multiplicative),
    /// tiny (configs/tiny.toml's network), all, or any registered model name (`ventral
    /// models`; e.g. rgc_shallow_cpu — timed on burn's autodiff, the image shown at every step,
    /// the loss at the model's decoder or last step; `--timesteps` does not apply).
    #[arg(long, default_value = "ref64,tiny")]
    models: String,
    /// Time steps.
    #[arg(long, default_value_t = 4, value_parser = super::positive)]
    timesteps: usize,
    /// Batch size.
    #[arg(long, default_value_t = 16, value_parser = super::positive)]
    batch: usize,
    /// Timed iterations (after warm-up; at most 100 000).
    #[arg(long, default_value_t = 3, value_parser = super::positive)]
    iters: usize,
    /// Warm-up iterations (at most 100 000).
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// `auto` (`native` on cpu, `burn` on a GPU), `native` (ventral's CPU engine, what training
    /// uses on cpu: BLT networks whole, other families on burn's autodiff with the engine's
    /// convolutions and fused ELU) or `burn` (burn's autodiff and burn's own operations).
    #[arg(long, default_value = "auto")]
    engine: String,
    /// cpu, cuda:N, wgpu or wgpu:N (GPU devices need a binary built with the `cuda` / `wgpu`
    /// feature; there the burn engine runs: `ventral train`'s path on that device).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Also profile the convolutions at the layer shapes (GFLOP/s per layer and pass, and
    /// their share of the peak that bounds them, `peak_gflops` — measured at the start, and
    /// again after each model, the highest kept (`peak.rounds`): the
    /// float32 multiply-add peak `peak.fma_gflops`, or for bf16 on AVX512-BF16 dot products
    /// `peak.bf16_dot_gflops`; none on AMX) and, on
    /// the native engine, where a training step's and an inference pass's time goes (with
    /// `--winograd`, for the Winograd paths too: `winograd_step_profile`).
    #[arg(long)]
    profile: bool,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    /// Also time the native engine with its 3 × 3 stride-1 convolutions by Winograd
    /// F(4 × 4, 3 × 3) (`winograd` in the JSON): inference (what `record --winograd` runs)
    /// and training steps (forwards, input and weight gradients; `train.winograd = true`), beside
    /// the default exact path, and report the largest difference of the two inference
    /// passes' log-probabilities.
    #[arg(long)]
    winograd: bool,
    /// Arithmetic of the timed passes: `f32`, or `bf16` (`train.precision`: convolutions and
    /// linear layers on bf16 operands with float32 sums, the rest and the parameters in
    /// float32 — on GPUs burn's tensor cores; on the native CPU engine AMX tiles where the CPU
    /// has them, else AVX512-BF16 dot products for the direct kernels' layers (`bf16_unit` in
    /// the JSON: `amx`, `avx512bf16` or null), else the rounded operands through the float32
    /// kernels; on `--engine burn` on cpu it is emulated). The correctness checks against the
    /// native engine and the CPU (`vs_native`, `vs_cpu`) stay float32.
    #[arg(long, default_value = "f32")]
    precision: String,
}

/// `--precision`, checked in [`run`].
fn precision(a: &Args) -> Precision {
    Precision::parse(&a.precision).unwrap_or_default()
}

/// The timed passes run in bf16.
fn bf16(a: &Args) -> bool {
    precision(a) == Precision::Bf16
}

/// The unit on which the native engine runs the timed passes' bf16 convolutions (AMX tiles
/// or AVX512-BF16 dot products), if any.
fn bf16_unit(a: &Args) -> Option<ventral_engine::bf16::Bf16Unit> {
    (bf16(a) && a.engine == "native")
        .then(ventral_engine::bf16::bf16_unit)
        .flatten()
}

/// ", bf16" in the text output when the timed passes ran in bf16 (", bf16 on AMX" or ", bf16
/// on AVX512-BF16" where the native engine ran its convolutions on those).
fn bf16_tag(a: &Args) -> &'static str {
    use ventral_engine::bf16::Bf16Unit;
    match bf16_unit(a) {
        Some(Bf16Unit::Amx) => ", bf16 on AMX",
        Some(Bf16Unit::Dot) => ", bf16 on AVX512-BF16",
        None if bf16(a) => ", bf16",
        None => "",
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn time<F: FnMut() -> Result<()>>(warmup: usize, iters: usize, mut f: F) -> Result<f64> {
    for _ in 0..warmup {
        f()?;
    }
    let mut ts = Vec::new();
    for _ in 0..iters {
        let t = Instant::now();
        f()?;
        ts.push(t.elapsed().as_secs_f64());
    }
    Ok(median(ts))
}

/// Progress of one model's benchmark on stderr, with the seconds since it started: on a GPU a
/// process first compiles its kernels (minutes, docs/performance.md), so a run stopped at a
/// time limit still says which model and which stage it reached and what the finished ones
/// measured (the JSON on stdout comes only at the end).
struct Stages {
    name: String,
    start: Instant,
}

impl Stages {
    fn new(name: &str) -> Self {
        eprintln!("bench {name}: started");
        Self {
            name: name.to_string(),
            start: Instant::now(),
        }
    }

    fn mark(&self, what: &str) {
        eprintln!(
            "bench {}: {what} ({:.1} s)",
            self.name,
            self.start.elapsed().as_secs_f64()
        );
    }

    fn done(&self, r: &serde_json::Value) {
        let f = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
        self.mark(&format!(
            "done: training {:.1} images/s, inference {:.1} images/s",
            f("train_images_per_s"),
            f("infer_images_per_s")
        ));
    }
}

fn bench_model(cfg: &BltConfig, a: &Args, base: &Device) -> Result<serde_json::Value> {
    let base = base.clone();
    let s = cfg.image_size;
    let b = a.batch;
    let native = a.engine == "native";
    let x = Tensor::<4>::random([b, 3, s, s], Distribution::Normal(0.0, 1.0), &base);
    let xv = read_f32(&x, "the benchmark images")?;
    let labels: Vec<usize> = (0..b).map(|i| i % cfg.num_classes).collect();
    // Inference.
    let model = params::init_reference(Blt::init(cfg, &base)?, 0);
    let mut winograd = serde_json::Value::Null;
    let infer = if native {
        let p = fast::parameters(&model)?;
        let mut net = fast::BltNet::new(&fast::spec(cfg), &p)?;
        net.set_bf16(bf16(a));
        // Timed passes; the last one's outputs are kept (for the Winograd comparison).
        let time_infer = |net: &fast::BltNet<'_>| -> Result<(f64, fast::Outputs)> {
            let mut last = None;
            let t = time(a.warmup, a.iters, || {
                last = Some(net.forward(&xv, b, false)?);
                Ok(())
            })?;
            Ok((t, last.unwrap_or_default()))
        };
        let (t, exact) = time_infer(&net)?;
        if a.winograd {
            net.set_winograd(true);
            let (tw, fast_out) = time_infer(&net)?;
            let mut diff = 0.0f32;
            for (t, (e, w)) in exact.log_probs.iter().zip(&fast_out.log_probs).enumerate() {
                diff = diff.max(max_abs_diff(w, e, t)?);
            }
            winograd = json!({
                "infer_s_per_batch": tw,
                "infer_images_per_s": b as f64 / tw,
                "log_probs_max_abs_diff": diff,
            });
        }
        t
    } else {
        time(a.warmup, a.iters, || {
            let o = autocast(precision(a), || model.forward(x.clone()));
            read_f32(&o.log_probs[cfg.timesteps - 1], "the log-probabilities")?;
            Ok(())
        })?
    };
    // Training step: forward, summed per-step NLL, backward, Adam — as `ventral train` does.
    let ad = base.clone().autodiff();
    let mut model = Some(Model::Blt(params::init_reference(Blt::init(cfg, &ad)?, 0)));
    let mut opt = Optimizer::new(OptimizerConfig::default());
    let weights = vec![1.0; cfg.timesteps];
    let xa = Tensor::<4>::from_data(TensorData::new(xv.clone(), [b, 3, s, s]), &ad);
    let y = Tensor::<1, Int>::from_data(
        TensorData::new(labels.iter().map(|&v| v as i64).collect::<Vec<_>>(), [b]),
        &ad,
    );
    let mut step = |wg: bool| -> Result<()> {
        let Some(m) = model.take() else {
            bail!("no model")
        };
        let m = match &m {
            Model::Blt(blt) if native => {
                let p = fast::parameters(blt)?;
                let mut net = fast::BltNet::new(&fast::spec(cfg), &p)?;
                net.set_bf16(bf16(a));
                net.set_winograd_training(wg);
                let (_, _, g) = net.loss_and_grad(&xv, &labels, &weights)?;
                let g = fast::burn_layout(&m, g);
                opt.step_from(m, Grads::Named(&g), 1e-3, 1.0)
            }
            _ => {
                let o = autocast(precision(a), || m.forward(xa.clone()));
                let g = summed_nll(&o.log_probs, &y)?.backward();
                opt.step(m, &g, 1e-3, 1.0)
            }
        };
        let Model::Blt(blt) = &m else {
            bail!("not a BLT")
        };
        read_f32(&blt.readout.weight.val(), "the updated readout weight")?;
        model = Some(m);
        Ok(())
    };
    let train = time(a.warmup, a.iters, || step(false))?;
    if a.winograd && native {
        let tw = time(a.warmup, a.iters, || step(true))?;
        winograd["train_s_per_batch"] = json!(tw);
        winograd["train_images_per_s"] = json!(b as f64 / tw);
    }
    let n_params: usize = model
        .as_ref()
        .map(params::list)
        .unwrap_or_default()
        .iter()
        .map(|p| p.shape.iter().product::<usize>())
        .sum();
    let spec = fast::spec(cfg);
    let macs: usize = spec.forward_macs().iter().map(|(_, m)| m).sum();
    let vs_native_result = if native {
        serde_json::Value::Null
    } else {
        vs_native(cfg, &base, b.min(8))?
    };
    Ok(json!({
        "engine": a.engine,
        "precision": precision(a).name(),
        "bf16_amx": bf16_unit(a) == Some(ventral_engine::bf16::Bf16Unit::Amx),
        "bf16_unit": bf16_unit(a).map(|u| u.name()),
        "parameters": n_params,
        "timesteps": cfg.timesteps,
        "batch": b,
        "interaction": format!("{:?}", cfg.interaction).to_lowercase(),
        "forward_gflop_per_image": 2.0 * macs as f64 / 1e9,
        "train_s_per_batch": train,
        "train_images_per_s": b as f64 / train,
        "infer_s_per_batch": infer,
        "infer_images_per_s": b as f64 / infer,
        "infer_gflops": 2.0 * macs as f64 * b as f64 / infer / 1e9,
        "train_gflops": 6.0 * macs as f64 * b as f64 / train / 1e9,
        "winograd": winograd,
        "vs_native": vs_native_result,
    }))
}

/// The training loss: Σₜ NLLₜ, each the batch mean of −log p(label) (`[batch, classes]`
/// log-probabilities per step, `labels` `[batch]`).
fn summed_nll(log_probs: &[Tensor<2>], labels: &Tensor<1, Int>) -> Result<Tensor<1>> {
    let n = labels.dims()[0];
    log_probs
        .iter()
        .map(|lp| {
            lp.clone()
                .gather(1, labels.clone().reshape([n, 1]))
                .mean()
                .neg()
        })
        .reduce(|acc, l| acc + l)
        .ok_or_else(|| anyhow::anyhow!("the network has no time steps"))
}

/// The largest elementwise difference of step `t`'s log-probabilities on two paths.
fn max_abs_diff(got: &[f32], want: &[f32], t: usize) -> Result<f32> {
    if got.len() != want.len() {
        bail!(
            "step {t}: {} log-probabilities against {} on the reference path",
            got.len(),
            want.len()
        );
    }
    Ok(got
        .iter()
        .zip(want)
        .fold(0.0f32, |m, (a, b)| m.max((a - b).abs())))
}

/// The parity test's float32 bounds for burn's paths: log-probabilities (max abs), gradients
/// (max relative L2 over parameters).
const PARITY_BOUNDS: (f32, f64) = (1e-4, 1.5e-3);
/// The size TF32 products give on [`vs_native`]'s check (burn's float32 on CUDA): about 2.5×
/// what `scripts/tf32_emulation.py` measures on the CPU (2.2e-3 and 6.1e-2) and what an H200
/// gave (2.5e-3 and 5.3e-2; docs/performance.md).
const TF32_BOUNDS: (f32, f64) = (1e-2, 0.15);

fn within((lp_bound, grad_bound): (f32, f64), lp: f32, grad: f64) -> bool {
    lp <= lp_bound && grad <= grad_bound
}

/// The burn path being timed against ventral's native CPU engine on the same weights and
/// images: the largest difference of the log-probabilities at any step, and per parameter the
/// relative L2 difference of the gradient of the summed per-step NLL. The native engine is
/// held to PyTorch's BLT_net_64 by the parity test, so on a GPU this is the device's
/// correctness check; `within_parity_bounds` applies that test's float32 bounds for burn's
/// paths ([`PARITY_BOUNDS`]), `within_tf32_bounds` the size TF32 products give
/// ([`TF32_BOUNDS`]: what burn's float32 computes on CUDA). `n` images (a few suffice).
fn vs_native(cfg: &BltConfig, base: &Device, n: usize) -> Result<serde_json::Value> {
    use rand::Rng;
    let s = cfg.image_size;
    // Reproducible images: uniform with unit variance from a named stream of seed 0.
    let mut rng = ventral_core::rng::stream(0, "bench-vs-native", &[]);
    let xv: Vec<f32> = (0..n * 3 * s * s)
        .map(|_| (rng.next_u32() as f32 / u32::MAX as f32 * 2.0 - 1.0) * 3f32.sqrt())
        .collect();
    let labels: Vec<usize> = (0..n).map(|i| (3 * i + 1) % cfg.num_classes).collect();
    let weights = vec![1.0; cfg.timesteps];
    let ad = base.clone().autodiff();
    let blt = params::init_reference(Blt::init(cfg, &ad)?, 0);
    let p = fast::parameters(&blt)?;
    let net = fast::BltNet::new(&fast::spec(cfg), &p)?;
    let (out, _, native_grads) = net.loss_and_grad(&xv, &labels, &weights)?;
    let o = blt.forward(Tensor::<4>::from_data(
        TensorData::new(xv, [n, 3, s, s]),
        &ad,
    ));
    let y = Tensor::<1, Int>::from_data(
        TensorData::new(labels.iter().map(|&v| v as i64).collect::<Vec<_>>(), [n]),
        &ad,
    );
    let mut lp_diff = 0.0f32;
    for (t, lp) in o.log_probs.iter().enumerate() {
        let want = out.log_probs.get(t).map(Vec::as_slice).unwrap_or_default();
        lp_diff = lp_diff.max(max_abs_diff(
            &read_f32(&lp.clone().detach(), "log-probabilities")?,
            want,
            t,
        )?);
    }
    let grads = params::gradients(&blt, &summed_nll(&o.log_probs, &y)?.backward())?;
    let mut per = serde_json::Map::new();
    let (mut worst, mut worst_name) = (0.0f64, String::new());
    if let Some(name) = grads.keys().find(|k| !native_grads.contains_key(*k)) {
        bail!("the native engine has no gradient for {name}");
    }
    // A parameter the graph did not reach (lateral weights at T = 1) has a zero gradient.
    let zeros = Vec::new();
    for (name, r) in &native_grads {
        let g = grads.get(name).map(|(_, g)| g).unwrap_or(&zeros);
        if !g.is_empty() && g.len() != r.len() {
            bail!(
                "gradient of {name}: {} elements on the device, {} on the engine",
                g.len(),
                r.len()
            );
        }
        let g = g.iter().copied().chain(std::iter::repeat(0.0));
        let (mut num, mut den) = (0.0f64, 0.0f64);
        for (a, b) in g.zip(r) {
            num += (f64::from(a) - f64::from(*b)).powi(2);
            den += f64::from(*b).powi(2);
        }
        let rel = (num / den.max(1e-300)).sqrt();
        if rel > worst {
            (worst, worst_name) = (rel, name.clone());
        }
        per.insert(name.clone(), json!(rel));
    }
    Ok(json!({
        "images": n,
        "log_probs_max_abs_diff": lp_diff,
        "grad_max_rel_l2": worst,
        "grad_worst": worst_name,
        "grad_rel_l2": per,
        "within_parity_bounds": within(PARITY_BOUNDS, lp_diff, worst),
        "within_tf32_bounds": within(TF32_BOUNDS, lp_diff, worst),
    }))
}

/// Any registered model on burn (what `ventral train` runs for non-BLT families): inference
/// (forward on the plain device, no autodiff) and a training step (forward, NLL at the decoder or the
/// last step, backward, Adam), with the image shown at every step; both in data-parallel shards
/// on the CPU where `ventral train` takes them (`ventral_models::shards`). The model's configuration
/// goes into the JSON (`config`) so a reference implementation can build the same network.
fn bench_registered(
    cfg: &ventral_models::ModelConfig,
    a: &Args,
    base: &Device,
    stages: &Stages,
) -> Result<serde_json::Value> {
    let mut cfg = cfg.clone();
    if let ventral_models::ModelConfig::ConvRnn(c) = &mut cfg {
        c.movie.image_off = None;
    }
    let base = base.clone();
    let s = cfg.image_size();
    let b = a.batch;
    let k = cfg.num_classes();
    let x = Tensor::<4>::random([b, 3, s, s], Distribution::Normal(0.0, 1.0), &base);
    let on_cpu = Model::init_seeded(&cfg, &Device::flex(), 0)?;
    let model = on_cpu.clone().to_device(&base);
    let t_last = cfg.timesteps() - 1;
    // Off the CPU: the device's log-probabilities against the same network's on the CPU
    // (burn-flex and the engine's kernels, which CI holds to the reference implementations).
    let vs_cpu = if ventral_models::device::is_cpu(&a.device) {
        serde_json::Value::Null
    } else {
        let n = b.min(8);
        let xs = x.clone().narrow(0, 0, n);
        let ours = model.forward(xs.clone());
        let cpu =
            ventral_models::engine_ops::on_pool(|| on_cpu.forward(xs.to_device(&Device::flex())));
        let mut diff = 0.0f32;
        for (t, (a, c)) in ours.log_probs.into_iter().zip(cpu.log_probs).enumerate() {
            diff = diff.max(max_abs_diff(
                &read_f32(&a, "log-probabilities")?,
                &read_f32(&c, "log-probabilities")?,
                t,
            )?);
        }
        stages.mark(&format!("log-probabilities within {diff:.2e} of the CPU's"));
        json!({"images": n, "log_probs_max_abs_diff": diff, "within_1e-4": diff <= 1e-4})
    };
    // As `ventral train` runs them: on a pool worker (`on_pool`).
    use ventral_models::engine_ops::on_pool;
    // As evaluations run: data-parallel shards on the CPU (`ventral_models::shards`).
    let shards = ventral_models::shards::ranges(b, &model, &base);
    let infer = time(a.warmup, a.iters, || {
        on_pool(|| {
            ventral_models::shards::map(&model, &base, &x, &shards, |m, xs, _| {
                let o = autocast(precision(a), || m.forward(xs));
                read_f32(&o.log_probs[t_last], "the log-probabilities").map(|_| ())
            })
        })?;
        Ok(())
    })?;
    stages.mark("inference timed");
    let forward_profile = if a.profile {
        let p = forward_profile(&model, &x, t_last)?;
        stages.mark("forward profiled");
        p
    } else {
        serde_json::Value::Null
    };
    let ad = base.clone().autodiff();
    let mut model = Some(Model::init_seeded(&cfg, &ad, 0)?);
    let mut opt = Optimizer::new(OptimizerConfig::default());
    let xa = Tensor::<4>::from_data(
        TensorData::new(read_f32(&x, "the benchmark images")?, x.dims()),
        &ad,
    );
    let y = Tensor::<1, Int>::from_data(
        TensorData::new((0..b).map(|i| (i % k) as i64).collect::<Vec<_>>(), [b]),
        &ad,
    );
    let mut step = || -> Result<()> {
        let Some(m) = model.take() else {
            bail!("no model")
        };
        // As `ventral train` steps: data-parallel shards on the CPU (`ventral_models::shards`).
        let one = |m: &Model, xs: Tensor<4>, ys: Tensor<1, Int>, share: f64| {
            let nb = ys.dims()[0];
            let o = autocast(precision(a), || m.forward(xs));
            let lp = o
                .decoded
                .clone()
                .unwrap_or_else(|| o.log_probs[t_last].clone());
            let loss = lp.gather(1, ys.reshape([nb, 1])).mean().neg();
            let loss = if share == 1.0 { loss } else { loss * share };
            // Read after the backward pass is queued, as `ventral train` reads its losses.
            let g = loss.backward();
            read_f32(&loss, "the loss").map(|_| g)
        };
        let shards = ventral_models::shards::ranges(b, &m, &ad);
        let m = if shards.len() == 1 {
            let g = on_pool(|| one(&m, xa.clone(), y.clone(), 1.0))?;
            opt.step(m, &g, 1e-3, 1.0)
        } else {
            let parts = on_pool(|| {
                ventral_models::shards::map(&m, &ad, &xa, &shards, |ms, xs, r| {
                    let share = r.len() as f64 / b as f64;
                    let g = one(ms, xs, y.clone().slice([r]), share)?;
                    Ok::<_, anyhow::Error>(ventral_models::shards::named_grads(ms, &g)?)
                })
            })?;
            let g = ventral_models::shards::sum(parts);
            opt.step_from(m, Grads::Named(&g), 1e-3, 1.0)
        };
        // On a GPU the Adam step is queued: the step ends when the device has run it.
        base.sync()
            .map_err(|e| anyhow::anyhow!("device {}: {e:?}", a.device))?;
        model = Some(m);
        Ok(())
    };
    let train = time(a.warmup, a.iters, &mut step)?;
    let n_params: usize = model
        .as_ref()
        .map(params::list)
        .unwrap_or_default()
        .iter()
        .map(|p| p.shape.iter().product::<usize>())
        .sum();
    let engine = if ventral_models::engine_ops::enabled() {
        "burn autodiff + engine convolutions and ELU"
    } else {
        "burn"
    };
    Ok(json!({
        "engine": engine,
        "precision": precision(a).name(),
        "parameters": n_params,
        "timesteps": cfg.timesteps(),
        "batch": b,
        "train_s_per_batch": train,
        "train_images_per_s": b as f64 / train,
        "infer_s_per_batch": infer,
        "infer_images_per_s": b as f64 / infer,
        "config": cfg,
        "vs_cpu": vs_cpu,
        "forward_profile": forward_profile,
    }))
}

/// One inference pass over the whole batch in one piece (not data-parallel shards, so each
/// operation's wall time is its own) with [`ventral_models::profile`] on: the pass's seconds and
/// its time per node, kind of operation and convolution shape.
fn forward_profile(model: &Model, x: &Tensor<4>, t_last: usize) -> Result<serde_json::Value> {
    use ventral_models::engine_ops::on_pool;
    use ventral_models::profile;
    let pass = || -> Result<()> {
        let o = model.forward(x.clone());
        read_f32(&o.log_probs[t_last], "the log-probabilities")?;
        Ok(())
    };
    on_pool(pass)?;
    profile::enable(true);
    let t = Instant::now();
    let ran = on_pool(pass);
    let seconds = t.elapsed().as_secs_f64();
    let rows = profile::rows();
    profile::enable(false);
    ran?;
    Ok(json!({"pass_s": seconds, "rows": rows}))
}

/// [`forward_profile`]'s summary: time per kind of operation, per node, and the costliest
/// convolution shapes with their GFLOP/s (and share of `peak`, the machine's FMA peak).
fn print_forward_profile(p: &serde_json::Value, peak: Option<f64>) {
    use ventral_models::profile::{NODE, Row};
    let Ok(rows) = serde_json::from_value::<Vec<Row>>(p["rows"].clone()) else {
        return;
    };
    let pass = p["pass_s"].as_f64().unwrap_or(0.0);
    let share = |s: f64| if pass > 0.0 { 100.0 * s / pass } else { 0.0 };
    // Seconds summed under `key`, largest first, as "key share%".
    let by = |key: &dyn Fn(&Row) -> Option<String>| {
        let mut m: std::collections::BTreeMap<String, f64> = Default::default();
        for r in &rows {
            if let Some(k) = key(r) {
                *m.entry(k).or_default() += r.seconds;
            }
        }
        let mut v: Vec<(String, f64)> = m.into_iter().collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1));
        let v: Vec<String> = v
            .iter()
            .map(|(k, s)| format!("{k} {:.0}%", share(*s)))
            .collect();
        v.join(", ")
    };
    println!("  forward profile: one pass of the whole batch, {pass:.3} s");
    println!(
        "    by kind: {}",
        by(&|r| (r.kind != NODE).then(|| r.kind.clone()))
    );
    println!(
        "    by node: {}",
        by(&|r| (r.kind == NODE).then(|| r.node.clone()))
    );
    println!(
        "    {:<10} {:<24} {:<44} {:>6} {:>9} {:>8}",
        "node", "conv", "shape", "calls", "ms", "GFLOP/s"
    );
    for r in rows.iter().filter(|r| r.kind.starts_with("conv")).take(12) {
        let g = r.gflops();
        let pk = peak
            .map(|p| format!(" ({:.0}%)", 100.0 * g / p))
            .unwrap_or_default();
        println!(
            "    {:<10} {:<24} {:<44} {:>6} {:>9.1} {:>8.1}{pk}",
            r.node,
            r.kind,
            r.detail,
            r.calls,
            1e3 * r.seconds,
            g
        );
    }
}

/// The machine's float32 peak: measured — independent multiply-add chains on every thread
/// (`fma_gflops`, the ceiling no kernel can pass) and a large GEMM on the engine's kernels
/// (`sgemm_1536_gflops`) — and nominal (cores × FMA lanes × 2 × clock, from CPU features and
/// /proc/cpuinfo where available; often the base clock, below what turbo delivers).
fn peak() -> serde_json::Value {
    let [(_, fma), (_, bf16_dot)] = multiply_add_peaks();
    let measured = ventral_engine::mat::gemm_gflops(1536, 1536, 1536, 3);
    let threads = rayon::current_num_threads();
    // What the engine's kernels use (the CPU's widest, capped by `VENTRAL_SIMD`).
    use ventral_engine::simd::Level;
    let (isa, lanes) = match ventral_engine::simd::level() {
        Level::Avx512 => ("avx512f", 16.0),
        Level::Avx2 => ("avx2+fma", 8.0),
        Level::Baseline if cfg!(target_arch = "x86_64") => ("sse2", 4.0),
        Level::Baseline if cfg!(target_arch = "aarch64") => ("neon", 4.0),
        Level::Baseline => ("baseline", 4.0),
    };
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        cpuinfo
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split(':').nth(1))
            .map(|v| v.trim().to_string())
    };
    let mhz = field("cpu MHz").and_then(|v| v.parse::<f64>().ok());
    // AMD family 25 (Zen 3 / Zen 4) runs AVX-512 on 256-bit FMA pipes (a 512-bit FMA takes
    // both halves): 8 lanes per pipe, as AVX2. Zen 5 (family 26) and Intel's AVX-512 server
    // cores have 512-bit pipes.
    let half_width = field("vendor_id").as_deref() == Some("AuthenticAMD")
        && field("cpu family").as_deref() == Some("25");
    let lanes: f64 = if half_width {
        f64::min(lanes, 8.0)
    } else {
        lanes
    };
    // Two FMA pipes per core (Zen, Skylake-SP and later), 2 flops per FMA lane, at the
    // clock /proc/cpuinfo reports (often the base clock: turbo can exceed the nominal peak).
    let nominal = mhz.map(|m| threads as f64 * 2.0 * lanes * 2.0 * m / 1e3);
    json!({"threads": threads, "isa": isa, "fma_lanes": lanes, "mhz": mhz, "nominal_gflops": nominal, "fma_gflops": fma, "bf16_dot_gflops": bf16_dot, "sgemm_1536_gflops": measured, "rounds": 1})
}

/// The measured multiply-add peaks under their keys in [`peak`]'s object: independent FMA
/// chains on every thread, and `VDPBF16PS` chains where the CPU has them (the ceiling of bf16
/// on dot products).
fn multiply_add_peaks() -> [(&'static str, Option<f64>); 2] {
    [
        ("fma_gflops", ventral_engine::simd::fma_peak_gflops(100.0)),
        (
            "bf16_dot_gflops",
            ventral_engine::simd::bf16_dot_peak_gflops(100.0),
        ),
    ]
}

/// The highest rate of a model's timed passes: training, inference and (with `--profile`)
/// each convolution's.
fn fastest_gflops(r: &serde_json::Value) -> f64 {
    let keys = ["forward_gflops", "input_grad_gflops", "weight_grad_gflops"];
    let layers = r["profile"].as_array().into_iter().flatten();
    let per_layer = layers.flat_map(|l| keys.iter().filter_map(|k| l[*k].as_f64()));
    [r["train_gflops"].as_f64(), r["infer_gflops"].as_f64()]
        .into_iter()
        .flatten()
        .chain(per_layer)
        .fold(0.0, f64::max)
}

/// Measures the multiply-add peaks ([`multiply_add_peaks`]) again and keeps the highest of each (`rounds`
/// counts the measurements); again, up to three rounds in all, while a pass ran at `fastest`
/// GFLOP/s, faster than the peak `key` kept.
fn remeasure_peak(peak: &mut serde_json::Value, key: &str, fastest: f64) {
    for round in 0..3 {
        if round > 0 && peak[key].as_f64().is_none_or(|p| fastest <= p) {
            break;
        }
        for (k, now) in multiply_add_peaks() {
            if let Some(now) = now
                && peak[k].as_f64().is_none_or(|b| now > b)
            {
                peak[k] = json!(now);
            }
        }
        peak["rounds"] = json!(peak["rounds"].as_u64().unwrap_or(0) + 1);
    }
}

/// The measured peak that bounds the native engine's timed passes, and its name: the float32
/// multiply-add peak in float32, the bf16 dot-product peak for bf16 on AVX512-BF16 dot
/// products; none for bf16 on AMX (its tiles' peak is not measured) or on the rounded float32
/// kernels, for burn's engine, or without a measured peak (a device, no FMA).
fn bound(peak: Option<&serde_json::Value>, a: &Args) -> Option<(f64, &'static str)> {
    let peak = peak?;
    let (key, name) = bound_key(a)?;
    peak[key].as_f64().filter(|p| *p > 0.0).map(|p| (p, name))
}

/// [`bound`]'s key in [`peak`]'s object and its name.
fn bound_key(a: &Args) -> Option<(&'static str, &'static str)> {
    use ventral_engine::bf16::Bf16Unit;
    if a.engine != "native" {
        return None;
    }
    match (bf16(a), bf16_unit(a)) {
        (false, _) => Some(("fma_gflops", "FMA peak")),
        (true, Some(Bf16Unit::Dot)) => Some(("bf16_dot_gflops", "bf16 dot-product peak")),
        (true, _) => None,
    }
}

/// Seconds and GFLOP/s of the convolutions the network runs, each at its layer's shape
/// (bottom-up, lateral and top-down; forward, input gradient and weight gradient), with how
/// many times one forward pass runs it ([`ventral_engine::blt::BltSpec::convs`]: constant
/// drives once) and so its forward time per inference pass and its time per training step
/// (each call's forward, input gradient and weight gradient, as the engine's backward runs
/// them). Convolutions the network has but never runs (V1's lateral and top-down with
/// `faithful_v1`) are left out.
fn profile(cfg: &BltConfig, a: &Args) -> Result<Vec<serde_json::Value>> {
    let spec = fast::spec(cfg);
    let b = a.batch;
    let mut rows = Vec::new();
    for u in spec.convs().into_iter().filter(|u| u.calls > 0) {
        let g = u.conv;
        let nx = g.ci * b * g.hi * g.wi;
        let ny = g.co * b * g.ho * g.wo;
        let x: Vec<f32> = (0..nx).map(|j| ((j % 13) as f32 - 6.0) * 0.1).collect();
        let y: Vec<f32> = (0..ny).map(|j| ((j % 11) as f32 - 5.0) * 0.1).collect();
        let w: Vec<f32> = (0..g.co * g.kdim())
            .map(|j| ((j % 5) as f32 - 2.0) * 0.01)
            .collect();
        // Packed weights kept, as the network's passes keep them (the bf16 AMX and the lanes
        // kernels pack each weight slice once per pass; here once, in the warm-up).
        let mut col = ventral_engine::conv::Scratch::with_bf16(bf16(a)).keep_packed_weights();
        let (mut xo, mut yo, mut wo) = (vec![0.0f32; nx], vec![0.0f32; ny], vec![0.0f32; w.len()]);
        let mut t_conv = time(1, a.iters, || {
            g.forward(&w, &x, b, &mut yo, false, &mut col);
            Ok(())
        })?;
        let mut t_adj = time(1, a.iters, || {
            g.backward_data(&w, &y, b, &mut xo, &mut col);
            Ok(())
        })?;
        let t_w = time(1, a.iters, || {
            g.backward_weight(&x, &y, b, &mut wo, &mut col);
            Ok(())
        })?;
        if u.transposed {
            // A transposed convolution's forward is the adjoint conv's input gradient.
            std::mem::swap(&mut t_conv, &mut t_adj);
        }
        let flop = 2.0 * g.macs_per_image() as f64 * b as f64;
        rows.push(json!({
            "layer": u.area, "conv": u.kind, "batch": b, "calls_per_pass": u.calls,
            "forward_s": t_conv, "input_grad_s": t_adj, "weight_grad_s": t_w,
            "forward_s_per_pass": t_conv * u.calls as f64,
            "train_s_per_step": (t_conv + t_adj + t_w) * u.calls as f64,
            "forward_gflops": flop / t_conv / 1e9,
            "input_grad_gflops": flop / t_adj / 1e9,
            "weight_grad_gflops": flop / t_w / 1e9,
        }));
    }
    Ok(rows)
}

/// Where a native training step's time goes: the engine's operations (its own timers), the
/// parameter copy into the engine, and gradient layout + Adam on burn's tensors. Seconds per
/// step, averaged over `iters` steps after the warm-up. `winograd`: the opt-in Winograd paths
/// (`BltNet::set_winograd`, `set_winograd_training`).
fn step_profile(cfg: &BltConfig, a: &Args, winograd: bool) -> Result<serde_json::Value> {
    let base = Device::flex();
    let (s, b) = (cfg.image_size, a.batch);
    let x = Tensor::<4>::random([b, 3, s, s], Distribution::Normal(0.0, 1.0), &base);
    let xv = read_f32(&x, "the benchmark images")?;
    let labels: Vec<usize> = (0..b).map(|i| i % cfg.num_classes).collect();
    let weights = vec![1.0; cfg.timesteps];
    let ad = base.autodiff();
    let mut model = Some(Model::Blt(params::init_reference(Blt::init(cfg, &ad)?, 0)));
    let mut opt = Optimizer::new(OptimizerConfig::default());
    let (mut t_params, mut t_engine, mut t_rest, mut t_infer) = (0.0, 0.0, 0.0, 0.0);
    let mut engine_ops = Vec::new();
    let mut infer_ops = Vec::new();
    let n = a.iters;
    for it in 0..a.warmup + n {
        let timed = it >= a.warmup;
        let Some(m) = model.take() else {
            bail!("no model")
        };
        let Model::Blt(blt) = &m else {
            bail!("not a BLT")
        };
        let t0 = Instant::now();
        let p = fast::parameters(blt)?;
        let mut net = fast::BltNet::new(&fast::spec(cfg), &p)?;
        net.set_winograd(winograd);
        net.set_winograd_training(winograd);
        net.set_bf16(bf16(a));
        let t1 = Instant::now();
        ventral_engine::profile::enable(timed);
        let (_, _, g) = net.loss_and_grad(&xv, &labels, &weights)?;
        let t2 = Instant::now();
        if timed {
            add_ops(&mut engine_ops, ventral_engine::profile::totals());
        }
        ventral_engine::profile::enable(timed);
        let ti = Instant::now();
        std::hint::black_box(net.forward(&xv, b, false)?);
        if timed {
            t_infer += ti.elapsed().as_secs_f64();
            add_ops(&mut infer_ops, ventral_engine::profile::totals());
        }
        ventral_engine::profile::enable(false);
        let t3 = Instant::now();
        let g = fast::burn_layout(&m, g);
        let m = opt.step_from(m, Grads::Named(&g), 1e-3, 1.0);
        let t4 = Instant::now();
        if timed {
            t_params += (t1 - t0).as_secs_f64();
            t_engine += (t2 - t1).as_secs_f64();
            t_rest += (t4 - t3).as_secs_f64();
        }
        model = Some(m);
    }
    let per = |v: f64| v / n as f64;
    let ops = |v: &[(&'static str, f64)], total: f64| {
        let mut rows: Vec<serde_json::Value> = v
            .iter()
            .map(|(k, t)| json!({"op": k, "s": per(*t)}))
            .collect();
        let timed: f64 = v.iter().map(|(_, t)| t).sum();
        rows.push(json!({"op": "other (engine, untimed)", "s": per(total - timed)}));
        rows
    };
    Ok(json!({
        "train": {
            "step_s": per(t_params + t_engine + t_rest),
            "parameters_to_engine_s": per(t_params),
            "engine_s": per(t_engine),
            "layout_and_adam_s": per(t_rest),
            "engine_ops": ops(&engine_ops, t_engine),
        },
        "infer": { "s": per(t_infer), "engine_ops": ops(&infer_ops, t_infer) },
    }))
}

fn add_ops(acc: &mut Vec<(&'static str, f64)>, new: Vec<(&'static str, f64)>) {
    if acc.is_empty() {
        *acc = new;
    } else {
        acc.iter_mut().zip(new).for_each(|(a, (_, t))| a.1 += t);
    }
}

fn print_step_profile(r: &serde_json::Value) {
    let f = |v: &serde_json::Value| v.as_f64().unwrap_or(0.0);
    let tr = &r["train"];
    let step = f(&tr["step_s"]).max(1e-12);
    println!("  training step {:.4} s:", step);
    for (k, label) in [
        ("parameters_to_engine_s", "parameters → engine"),
        ("layout_and_adam_s", "gradient layout + Adam (burn)"),
        ("engine_s", "engine forward + backward"),
    ] {
        let v = f(&tr[k]);
        println!("    {label:<34} {v:>9.4} s {:>5.1} %", 100.0 * v / step);
    }
    for o in tr["engine_ops"].as_array().into_iter().flatten() {
        let v = f(&o["s"]);
        println!(
            "      {:<32} {v:>9.4} s {:>5.1} %",
            o["op"].as_str().unwrap_or(""),
            100.0 * v / step
        );
    }
    let inf = f(&r["infer"]["s"]).max(1e-12);
    println!("  inference {:.4} s:", inf);
    for o in r["infer"]["engine_ops"].as_array().into_iter().flatten() {
        let v = f(&o["s"]);
        println!(
            "      {:<32} {v:>9.4} s {:>5.1} %",
            o["op"].as_str().unwrap_or(""),
            100.0 * v / inf
        );
    }
}

pub fn run(mut a: Args) -> Result<()> {
    let cpu = ventral_models::device::is_cpu(&a.device);
    a.engine = match a.engine.as_str() {
        "auto" if cpu => "native".into(),
        "auto" | "burn" => "burn".into(),
        "native" if cpu => "native".into(),
        "native" => bail!(
            "--engine native runs on cpu only (got --device {}; use --engine burn or auto)",
            a.device
        ),
        e => bail!("--engine must be auto, native or burn, not '{e}'"),
    };
    if a.profile && !cpu {
        bail!("--profile times the CPU engine's operations: it runs with --device cpu only");
    }
    if a.winograd && a.engine != "native" {
        bail!(
            "--winograd times the native engine's Winograd paths: --device cpu, --engine auto or native"
        );
    }
    match Precision::parse(&a.precision).map_err(|e| anyhow::anyhow!("--precision: {e}"))? {
        Precision::Bf16 if a.winograd => bail!(
            "--precision bf16 and --winograd exclude each other (Winograd's transformed tiles would be rounded to bf16)"
        ),
        p => a.precision = p.name().into(),
    }
    let device = ventral_models::device::parse_device(&a.device)?;
    precision(&a)
        .check(&device, &a.device)
        .map_err(|e| anyhow::anyhow!("--precision: {e}"))?;
    ventral_models::engine_ops::set_enabled(a.engine == "native");
    let mut reference = BltConfig::reference64(a.timesteps);
    reference.num_classes = 100;
    let mut mult = reference.clone();
    mult.interaction = Interaction::Multiplicative;
    let mut tiny = BltConfig::reference64(a.timesteps);
    tiny.num_classes = 8;
    tiny.channels = vec![8, 8, 16, 16, 32];
    tiny.interaction = Interaction::Multiplicative;
    let wanted: Vec<&str> = a.models.split(',').map(str::trim).collect();
    let all = wanted.contains(&"all");
    let mut registered = Vec::new();
    for w in &wanted {
        if !matches!(*w, "all" | "ref64" | "ref64_mult" | "tiny") {
            match ventral_models::registry::get(w) {
                Some(e) => registered.push(e),
                None => bail!(
                    "--models: unknown model '{w}' (ref64, ref64_mult, tiny, all, or a name from `ventral models`)"
                ),
            }
        }
    }
    // Every selected model is checked before the first is timed: its size (2⁶⁴ − 1 time
    // steps ran until stopped; a batch of 2⁶⁴ − 1 panicked in burn) and a training batch's
    // activations against the memory available.
    super::check_count("--iters", a.iters, super::MAX_ITERS)?;
    super::check_count("--warmup", a.warmup, super::MAX_ITERS)?;
    let builtin = [
        ("ref64", &reference),
        ("ref64_mult", &mult),
        ("tiny", &tiny),
    ];
    let selected = registered.iter().map(|e| (e.name, e.config.clone())).chain(
        builtin
            .iter()
            .filter(|(n, _)| all || wanted.contains(n))
            .map(|(n, c)| (*n, ventral_models::ModelConfig::Blt((*c).clone()))),
    );
    for (name, cfg) in selected {
        cfg.validate().with_context(|| format!("bench {name}"))?;
        let (pass, bytes) = cfg.training_step_bytes(a.batch, a.engine == "native");
        if let Some(more) = ventral_core::mem::exceeds_u128(bytes).map_err(anyhow::Error::msg)? {
            bail!(
                "bench {name}: a training step at --batch {} (its activations in passes of {pass} images, its images and outputs) needs about {more}; lower --batch",
                a.batch
            );
        }
    }
    let mut out = serde_json::Map::new();
    out.insert("threads".into(), json!(rayon::current_num_threads()));
    out.insert("device".into(), json!(a.device));
    out.insert("engine".into(), json!(a.engine));
    if cpu {
        out.insert("peak".into(), peak());
    }
    for e in registered {
        let stages = Stages::new(e.name);
        let r = bench_registered(&e.config, &a, &device, &stages)?;
        stages.done(&r);
        if !a.json {
            let f = |k: &str| r[k].as_f64().unwrap_or(0.0);
            let print_profile = || {
                let peak = bound(out.get("peak"), &a).map(|(p, _)| p);
                print_forward_profile(&r["forward_profile"], peak);
            };
            println!(
                "{} ({}{}): T={} batch {}: train {:.2} images/s ({:.3} s/batch), inference {:.2} images/s ({:.3} s/batch), {} parameters",
                e.name,
                r["engine"].as_str().unwrap_or("burn"),
                bf16_tag(&a),
                r["timesteps"],
                a.batch,
                f("train_images_per_s"),
                f("train_s_per_batch"),
                f("infer_images_per_s"),
                f("infer_s_per_batch"),
                r["parameters"]
            );
            if r["vs_cpu"].is_object() {
                println!(
                    "  against the same network on the CPU ({} images): log-probabilities within {:.2e}",
                    r["vs_cpu"]["images"],
                    r["vs_cpu"]["log_probs_max_abs_diff"]
                        .as_f64()
                        .unwrap_or(f64::NAN)
                );
            }
            print_profile();
        }
        out.insert(e.name.into(), r);
    }
    for (name, cfg) in builtin {
        if !all && !wanted.contains(&name) {
            continue;
        }
        let stages = Stages::new(name);
        let mut r = bench_model(cfg, &a, &device)?;
        stages.done(&r);
        if a.profile {
            r["profile"] = json!(profile(cfg, &a)?);
            if a.engine == "native" {
                r["step_profile"] = step_profile(cfg, &a, false)?;
                if a.winograd {
                    r["winograd_step_profile"] = step_profile(cfg, &a, true)?;
                }
            }
        }
        // The peak that bounds these passes (`bench_blt.sh`: the ratio to PyTorch at it),
        // measured again after each model, the highest kept: on a shared VM a busy moment at
        // the start measured half the peak (and shares of 130 %).
        if let Some((key, _)) = bound_key(&a)
            && let Some(peak) = out.get_mut("peak")
        {
            remeasure_peak(peak, key, fastest_gflops(&r));
        }
        let limit = bound(out.get("peak"), &a);
        if let Some((p, kind)) = limit {
            r["peak_gflops"] = json!(p);
            r["peak_kind"] = json!(kind);
        }
        if !a.json {
            let f = |k: &str| r[k].as_f64().unwrap_or(0.0);
            let share = |g: f64| match limit {
                Some((p, kind)) => format!(", {:.0}% of the {kind}", 100.0 * g / p),
                None => String::new(),
            };
            println!(
                "{name} ({} engine{}): T={} batch {}: train {:.2} images/s ({:.3} s/batch, {:.1} GFLOP/s{}), inference {:.2} images/s ({:.3} s/batch, {:.1} GFLOP/s{}), {} parameters",
                a.engine,
                bf16_tag(&a),
                cfg.timesteps,
                a.batch,
                f("train_images_per_s"),
                f("train_s_per_batch"),
                f("train_gflops"),
                share(f("train_gflops")),
                f("infer_images_per_s"),
                f("infer_s_per_batch"),
                f("infer_gflops"),
                share(f("infer_gflops")),
                r["parameters"]
            );
            if r["vs_native"].is_object() {
                let v = &r["vs_native"];
                println!(
                    "  against the native CPU engine ({} images): log-probabilities within {:.2e}, gradients within {:.2e} relative L2 (worst {}){}",
                    v["images"],
                    v["log_probs_max_abs_diff"].as_f64().unwrap_or(f64::NAN),
                    v["grad_max_rel_l2"].as_f64().unwrap_or(f64::NAN),
                    v["grad_worst"].as_str().unwrap_or(""),
                    if v["within_parity_bounds"] == true {
                        String::new()
                    } else if v["within_tf32_bounds"] == true {
                        format!(
                            " — outside the float32 parity bounds {PARITY_BOUNDS:?}, within what TF32 products give {TF32_BOUNDS:?}{}",
                            Precision::F32
                                .device_note(&a.device)
                                .map(|n| format!(" ({n})"))
                                .unwrap_or_default()
                        )
                    } else {
                        format!(
                            " — OUTSIDE the float32 parity bounds {PARITY_BOUNDS:?} and the TF32 bounds {TF32_BOUNDS:?}"
                        )
                    }
                );
            }
            if r["winograd"].is_object() {
                let w = &r["winograd"];
                println!(
                    "  with Winograd F(4x4, 3x3): inference {:.2} images/s ({:.3} s/batch, {:.2}x the exact path), training {:.2} images/s ({:.2}x); log-probabilities differ by at most {:.2e}",
                    w["infer_images_per_s"].as_f64().unwrap_or(0.0),
                    w["infer_s_per_batch"].as_f64().unwrap_or(0.0),
                    w["infer_images_per_s"].as_f64().unwrap_or(0.0) / f("infer_images_per_s"),
                    w["train_images_per_s"].as_f64().unwrap_or(0.0),
                    w["train_images_per_s"].as_f64().unwrap_or(0.0) / f("train_images_per_s"),
                    w["log_probs_max_abs_diff"].as_f64().unwrap_or(f64::NAN)
                );
            }
            if let Some(rows) = r["profile"].as_array() {
                // GFLOP/s, and the share of the measured peak that bounds them where there is
                // one (float32: the FMA peak; bf16 on dot products: theirs; AMX: none).
                let bf16 = r["precision"] == "bf16";
                let bound_gflops = limit.map(|(p, _)| p);
                let unit = match limit {
                    Some((p, kind)) => format!("GFLOP/s, % of the {p:.0} GFLOP/s {kind}"),
                    None if bf16 => "GFLOP/s, bf16 operands".to_string(),
                    None => "GFLOP/s".to_string(),
                };
                println!(
                    "  {:<4} {:<10} {:>5} {:>9} {:>9} {:>14} {:>14} {:>14}  ({unit}; calls: per forward pass of all steps; ms per inference pass / per training step)",
                    "",
                    "conv",
                    "calls",
                    "infer ms",
                    "train ms",
                    "forward",
                    "input grad",
                    "weight grad"
                );
                let cell = |g: f64| match bound_gflops {
                    Some(p) => format!("{g:.1} {:>3.0}%", 100.0 * g / p),
                    None => format!("{g:.1}"),
                };
                for p in rows {
                    let f = |k: &str| cell(p[k].as_f64().unwrap_or(0.0));
                    println!(
                        "  {:<4} {:<10} {:>5} {:>9.1} {:>9.1} {:>14} {:>14} {:>14}",
                        p["layer"].as_str().unwrap_or(""),
                        p["conv"].as_str().unwrap_or(""),
                        p["calls_per_pass"].as_u64().unwrap_or(0),
                        1e3 * p["forward_s_per_pass"].as_f64().unwrap_or(0.0),
                        1e3 * p["train_s_per_step"].as_f64().unwrap_or(0.0),
                        f("forward_gflops"),
                        f("input_grad_gflops"),
                        f("weight_grad_gflops")
                    );
                }
            }
            if r["step_profile"].is_object() {
                print_step_profile(&r["step_profile"]);
            }
            if r["winograd_step_profile"].is_object() {
                println!("  with Winograd (--winograd):");
                print_step_profile(&r["winograd_step_profile"]);
            }
        }
        out.insert(name.into(), r);
    }
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::Value::Object(out))?
        );
    } else if let Some(peak) = out.get("peak") {
        println!("peak: {peak}");
    }
    Ok(())
}
