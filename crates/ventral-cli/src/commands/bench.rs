//! `ventral bench`: images/s of training steps and inference for the reference BLT_net_64 and a
//! small CPU configuration, plus a per-operation profile at the network's layer shapes
//! (convolution forward, input gradient, weight gradient, LayerNorm, max-pool). Compare with
//! PyTorch side by side with `scripts/bench_blt.sh`.

use std::time::Instant;

use anyhow::Result;
use burn::tensor::module::{conv2d, max_pool2d};
use burn::tensor::ops::{ConvOptions, MaxPoolOptions};
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use serde_json::json;
use ventral_models::config::BltConfig;
use ventral_models::layers::LayerNormChw;
use ventral_models::{Blt, params};
use ventral_train::config::OptimizerConfig;
use ventral_train::optim::Optimizer;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Which models: ref64 (BLT_net_64, lateral + top-down), tiny (configs/tiny.toml's net), or both.
    #[arg(long, default_value = "both")]
    models: String,
    /// Time steps.
    #[arg(long, default_value_t = 4)]
    timesteps: usize,
    /// Batch size.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Timed iterations (after warm-up).
    #[arg(long, default_value_t = 3)]
    iters: usize,
    /// Warm-up iterations.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Also profile single operations at the layer shapes.
    #[arg(long)]
    profile: bool,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn time<F: FnMut()>(warmup: usize, iters: usize, mut f: F) -> f64 {
    for _ in 0..warmup {
        f();
    }
    median(
        (0..iters.max(1))
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

fn bench_model(cfg: &BltConfig, a: &Args) -> Result<serde_json::Value> {
    let base = Device::flex();
    let s = cfg.image_size;
    let b = a.batch;
    // Inference.
    let model = params::init_reference(Blt::init(cfg, &base)?, 0);
    let x = Tensor::<4>::random([b, 3, s, s], Distribution::Normal(0.0, 1.0), &base);
    let infer = time(a.warmup, a.iters, || {
        let o = model.forward(x.clone());
        let _: Vec<f32> = o.log_probs[cfg.timesteps - 1]
            .clone()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap_or_default();
    });
    // Training step: forward, summed per-step NLL, backward, Adam.
    let ad = base.clone().autodiff();
    let mut model = Some(params::init_reference(Blt::init(cfg, &ad)?, 0));
    let mut opt = Optimizer::new(OptimizerConfig::default());
    let x = Tensor::<4>::from_data(x.into_data(), &ad);
    let labels: Vec<i64> = (0..b).map(|i| (i % cfg.num_classes) as i64).collect();
    let y = Tensor::<1, Int>::from_data(TensorData::new(labels, [b]), &ad);
    let mut step = || {
        let Some(m) = model.take() else { return };
        let o = m.forward(x.clone());
        let mut loss = o.log_probs[0]
            .clone()
            .gather(1, y.clone().reshape([b, 1]))
            .mean()
            .neg();
        for lp in &o.log_probs[1..] {
            loss = loss + lp.clone().gather(1, y.clone().reshape([b, 1])).mean().neg();
        }
        let g = loss.backward();
        let m = opt.step(m, &g, 1e-3, 1.0);
        let _: Vec<f32> = m
            .readout
            .weight
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap_or_default();
        model = Some(m);
    };
    let train = time(a.warmup, a.iters, &mut step);
    let n_params: usize = model
        .as_ref()
        .map(params::list)
        .unwrap_or_default()
        .iter()
        .map(|p| p.shape.iter().product::<usize>())
        .sum();
    Ok(json!({
        "parameters": n_params,
        "timesteps": cfg.timesteps,
        "batch": b,
        "train_s_per_batch": train,
        "train_images_per_s": b as f64 / train,
        "infer_s_per_batch": infer,
        "infer_images_per_s": b as f64 / infer,
    }))
}

/// Seconds per call of single operations at each layer's shape.
fn profile(cfg: &BltConfig, a: &Args) -> Vec<serde_json::Value> {
    let base = Device::flex();
    let ad = base.clone().autodiff();
    let b = a.batch;
    let k = cfg.kernel();
    let p = (k - 1) / 2;
    let ch = &cfg.channels;
    let s = cfg.image_size;
    let mut rows = Vec::new();
    for (i, name) in ["v1", "v2", "v4", "it"].iter().enumerate() {
        let side = s >> i;
        let (cin, c) = (if i == 0 { ch[0] } else { ch[i] }, ch[i + 1]);
        let opts = ConvOptions::new([1, 1], [p, p], [1, 1], 1);
        let xr = Tensor::<4>::random([b, cin, side, side], Distribution::Normal(0.0, 1.0), &base);
        let wr = Tensor::<4>::random([c, cin, k, k], Distribution::Normal(0.0, 0.1), &base);
        let fwd = time(1, a.iters, || {
            let _: Vec<f32> = conv2d(xr.clone(), wr.clone(), None, opts.clone())
                .into_data()
                .try_to_vec::<f32>()
                .unwrap_or_default();
        });
        let grad_of = |x_grad: bool| {
            time(1, a.iters, || {
                let x = Tensor::<4>::from_data(xr.clone().into_data(), &ad);
                let w = Tensor::<4>::from_data(wr.clone().into_data(), &ad);
                let (x, w) = if x_grad {
                    (x.require_grad(), w)
                } else {
                    (x, w.require_grad())
                };
                let g = conv2d(x.clone(), w.clone(), None, opts.clone())
                    .sum()
                    .backward();
                let t = if x_grad { x.grad(&g) } else { w.grad(&g) };
                let _: Vec<f32> = t
                    .map(|t| t.into_data().try_to_vec::<f32>().unwrap_or_default())
                    .unwrap_or_default();
            })
        };
        let (in_grad, w_grad) = (grad_of(true) - fwd, grad_of(false) - fwd);
        let ln = LayerNormChw::new([c, side, side], &ad);
        let zr = Tensor::<4>::random([b, c, side, side], Distribution::Normal(0.0, 1.0), &base);
        let norm = time(1, a.iters, || {
            let z = Tensor::<4>::from_data(zr.clone().into_data(), &ad).require_grad();
            let g = ln.forward(z.clone()).sum().backward();
            let _: Vec<f32> = z
                .grad(&g)
                .map(|t| t.into_data().try_to_vec::<f32>().unwrap_or_default())
                .unwrap_or_default();
        });
        let pool = time(1, a.iters, || {
            let z = Tensor::<4>::from_data(zr.clone().into_data(), &ad).require_grad();
            let g = max_pool2d(z.clone(), MaxPoolOptions::new([2, 2]))
                .sum()
                .backward();
            let _: Vec<f32> = z
                .grad(&g)
                .map(|t| t.into_data().try_to_vec::<f32>().unwrap_or_default())
                .unwrap_or_default();
        });
        rows.push(json!({
            "layer": name, "shape": [b, cin, side, side], "out_channels": c,
            "conv_forward_s": fwd, "conv_input_grad_s": in_grad.max(0.0), "conv_weight_grad_s": w_grad.max(0.0),
            "layernorm_fwd_bwd_s": norm, "maxpool_fwd_bwd_s": pool,
        }));
    }
    rows
}

pub fn run(a: Args) -> Result<()> {
    let mut reference = BltConfig::reference64(a.timesteps);
    reference.num_classes = 100;
    let mut tiny = BltConfig::reference64(a.timesteps);
    tiny.num_classes = 8;
    tiny.channels = vec![8, 8, 16, 16, 32];
    let mut out = serde_json::Map::new();
    out.insert(
        "threads".into(),
        json!(
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        ),
    );
    for (name, cfg) in [("ref64", &reference), ("tiny", &tiny)] {
        if a.models != "both" && a.models != name {
            continue;
        }
        let mut r = bench_model(cfg, &a)?;
        if a.profile {
            r["profile"] = json!(profile(cfg, &a));
        }
        if !a.json {
            println!(
                "{name}: T={} batch {}: train {:.2} images/s ({:.3} s/batch), inference {:.2} images/s ({:.3} s/batch), {} parameters",
                cfg.timesteps,
                a.batch,
                r["train_images_per_s"].as_f64().unwrap_or(0.0),
                r["train_s_per_batch"].as_f64().unwrap_or(0.0),
                r["infer_images_per_s"].as_f64().unwrap_or(0.0),
                r["infer_s_per_batch"].as_f64().unwrap_or(0.0),
                r["parameters"]
            );
            if let Some(rows) = r["profile"].as_array() {
                println!(
                    "  {:<4} {:>10} {:>10} {:>10} {:>10} {:>10}  (seconds per call)",
                    "", "conv fwd", "in-grad", "w-grad", "LN f+b", "pool f+b"
                );
                for p in rows {
                    let f = |k: &str| p[k].as_f64().unwrap_or(0.0);
                    println!(
                        "  {:<4} {:>10.4} {:>10.4} {:>10.4} {:>10.4} {:>10.4}",
                        p["layer"].as_str().unwrap_or(""),
                        f("conv_forward_s"),
                        f("conv_input_grad_s"),
                        f("conv_weight_grad_s"),
                        f("layernorm_fwd_bwd_s"),
                        f("maxpool_fwd_bwd_s")
                    );
                }
            }
        }
        out.insert(name.into(), r);
    }
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::Value::Object(out))?
        );
    }
    Ok(())
}
