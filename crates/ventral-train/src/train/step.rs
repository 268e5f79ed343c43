//! One training step's arithmetic — forward, weighted loss over time steps, backward — and
//! the evaluation of a split, on the native CPU engine or burn's autodiff.

use std::collections::BTreeMap;

use burn::tensor::{Device, Int, Tensor, TensorData};
use ventral_data::{Batch, Loader};
use ventral_models::device::{read_f32, read_i64, read_scalar};
use ventral_models::precision::{Precision, autocast};
use ventral_models::{Model, fast};

use crate::error::Result;
use crate::optim::{Grads, grad_norm, named_grad_norm};

/// Gradients of one step, from burn's autodiff or the native engine.
pub(super) enum StepGrads {
    Autodiff(burn::tensor::Gradients),
    Named(BTreeMap<String, Vec<f32>>),
}

impl StepGrads {
    pub fn as_grads(&self) -> Grads<'_> {
        match self {
            StepGrads::Autodiff(g) => Grads::Autodiff(g),
            StepGrads::Named(g) => Grads::Named(g),
        }
    }
}

/// What the backward pass of one batch gives.
pub(super) struct StepOutput {
    /// Mean NLL per time step.
    pub nll: Vec<f64>,
    /// Correct images per time step.
    pub correct: Vec<u64>,
    /// Σₜ wₜ·NLLₜ, the loss that was differentiated (float32, as computed).
    pub loss: f64,
    /// Global L2 norm of the gradient.
    pub grad_norm: f64,
    pub grads: StepGrads,
}

/// Mean NLL of the labels `y` (`[n]`) under the log-probabilities `lp` (`[n, classes]`).
fn mean_nll(lp: &Tensor<2>, y: &Tensor<1, Int>) -> Tensor<1> {
    let n = y.dims()[0];
    lp.clone().gather(1, y.clone().reshape([n, 1])).mean().neg()
}

/// `labels` as a `[n]` tensor on `device`.
fn label_tensor(labels: &[i64], device: &Device) -> Tensor<1, Int> {
    Tensor::from_data(TensorData::new(labels.to_vec(), [labels.len()]), device)
}

/// The values of `nlls` (one `[1]` loss per output) and how many images' argmax of each
/// output in `lps` (`[n, classes]`) is their label, read back from the device at once: two
/// reads, not two per output (each read synchronises with a GPU).
fn read_nll_correct(
    nlls: Vec<Tensor<1>>,
    lps: Vec<Tensor<2>>,
    labels: &[i64],
) -> Result<Vec<(f32, u64)>> {
    if nlls.is_empty() {
        return Ok(Vec::new());
    }
    let n = labels.len();
    let v = read_f32(&Tensor::cat(nlls, 0), "the losses")?;
    let preds = lps
        .into_iter()
        .map(|lp| lp.argmax(1).reshape([n]))
        .collect();
    let p = read_i64(&Tensor::cat(preds, 0), "the predicted classes")?;
    Ok(v.into_iter()
        .zip(p.chunks(n.max(1)))
        .map(|(v, p)| {
            (
                v,
                p.iter().zip(labels).filter(|(a, b)| a == b).count() as u64,
            )
        })
        .collect())
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

/// Forward, weighted loss and every gradient of one batch. `native`: on the CPU engine (BLT
/// networks only; others fall back to autodiff); `winograd`: its 3 × 3 stride-1 forwards and
/// input gradients by Winograd F(4 × 4, 3 × 3). `device` is the autodiff device.
pub(super) fn forward_backward(
    model: &Model,
    b: Batch,
    weights: &[f64],
    native: bool,
    winograd: bool,
    precision: Precision,
    device: &Device,
) -> Result<StepOutput> {
    let n = b.labels.len();
    let t_steps = weights.len();
    let mut nll = vec![0.0; t_steps];
    let mut correct = vec![0u64; t_steps];
    if let Model::Blt(m) = model
        && native
    {
        // The native engine: forward, weighted loss and every gradient at once.
        let p = fast::parameters(m)?;
        let mut net = fast::BltNet::new(&fast::spec(&m.config), &p).map_err(fast::engine_err)?;
        net.set_winograd_training(winograd);
        net.set_bf16(precision == Precision::Bf16);
        let labels: Vec<usize> = b.labels.iter().map(|&v| v as usize).collect();
        let (out, l, g) = net
            .loss_and_grad(&b.images, &labels, weights)
            .map_err(fast::engine_err)?;
        let mut lv = 0.0f64;
        for t in 0..t_steps {
            nll[t] = l[t] as f32 as f64;
            correct[t] = correct_of(&out.log_probs[t], &b.labels);
            lv += weights[t] * l[t];
        }
        let g = fast::burn_layout(model, g);
        return Ok(StepOutput {
            nll,
            correct,
            loss: lv as f32 as f64,
            grad_norm: named_grad_norm(&g),
            grads: StepGrads::Named(g),
        });
    }
    let x = Tensor::<4>::from_data(TensorData::new(b.images, b.shape), device);
    let shards = ventral_models::shards::ranges(n, model, device);
    if shards.len() == 1 {
        let s = shard_step(model, x, &b.labels, weights, 1.0, precision)?;
        return Ok(StepOutput {
            nll: s.nll,
            correct: s.correct,
            loss: s.loss,
            grad_norm: grad_norm(model, &s.grads)?,
            grads: StepGrads::Autodiff(s.grads),
        });
    }
    // Data-parallel shards (`ventral_models::shards`): each its share of the batch mean.
    let parts = ventral_models::shards::map(model, device, &x, &shards, |m, xs, r| {
        let share = r.len() as f64 / n as f64;
        let s = shard_step(m, xs, &b.labels[r], weights, share, precision)?;
        let g = ventral_models::shards::named_grads(m, &s.grads)?;
        Ok::<_, crate::error::TrainError>((share, s, g))
    })?;
    let mut loss = 0.0;
    let mut grads = Vec::with_capacity(parts.len());
    for (share, s, g) in parts {
        for t in 0..t_steps {
            nll[t] += share * s.nll[t];
            correct[t] += s.correct[t];
        }
        loss += s.loss;
        grads.push(g);
    }
    let g = ventral_models::shards::sum(grads);
    Ok(StepOutput {
        nll,
        correct,
        loss,
        grad_norm: named_grad_norm(&g),
        grads: StepGrads::Named(g),
    })
}

/// One shard's forward, loss and backward on burn's autodiff.
struct Shard {
    nll: Vec<f64>,
    correct: Vec<u64>,
    /// Its loss, `share`-weighted.
    loss: f64,
    grads: burn::tensor::Gradients,
}

/// Forward, loss (`share` · Σₜ wₜ·NLLₜ, or the temporal decoder's NLL) and backward of the
/// images `x` (their `labels`) on burn's autodiff.
fn shard_step(
    model: &Model,
    x: Tensor<4>,
    labels: &[i64],
    weights: &[f64],
    share: f64,
    precision: Precision,
) -> Result<Shard> {
    let t_steps = weights.len();
    let (mut nll, mut correct) = (vec![0.0; t_steps], vec![0u64; t_steps]);
    let y = &label_tensor(labels, &x.device());
    let out = autocast(precision, || model.forward(x));
    // A temporal decoder (ConvRNNs, `decoder.loss = "decoder"`) replaces the per-step sum: the
    // loss is its output's NLL, as in the original; the per-step NLLs are still recorded.
    let at_decoder = model.config().decoder().is_some_and(|(_, at)| at);
    let scaled = |l: Tensor<1>, w: f64| if w == 1.0 { l } else { l * w };
    let mut loss: Option<Tensor<1>> = out
        .decoded
        .as_ref()
        .filter(|_| at_decoder)
        .map(|d| scaled(mean_nll(d, y), share));
    let sum_steps = loss.is_none();
    let mut step_nll = Vec::with_capacity(t_steps);
    for (t, lp) in out.log_probs.iter().enumerate().take(t_steps) {
        let l = mean_nll(lp, y);
        step_nll.push(l.clone());
        if sum_steps {
            let l = l * (weights[t] * share);
            loss = Some(match loss {
                None => l,
                Some(a) => a + l,
            });
        }
    }
    let loss = loss.ok_or_else(|| {
        crate::error::TrainError::Config("the model has no time steps to train".into())
    })?;
    let grads = loss.backward();
    // Read back once, after the backward pass is queued: on a GPU the host then builds the
    // backward while the device still runs the forward, instead of waiting at 2T + 1 reads
    // (each a synchronisation) in between. The values are the same.
    let lv = read_scalar(&loss, "the loss")?;
    let lps = out.log_probs.into_iter().take(t_steps).collect();
    for (t, (v, c)) in read_nll_correct(step_nll, lps, labels)?
        .into_iter()
        .enumerate()
    {
        nll[t] = v as f64;
        correct[t] = c;
    }
    Ok(Shard {
        nll,
        correct,
        loss: lv as f64,
        grads,
    })
}

/// Evaluate on a split: per-step mean loss and accuracy.
pub(super) fn evaluate(
    model: &Model,
    device: &Device,
    loader: &Loader,
    native: bool,
    precision: Precision,
) -> Result<Evaluation> {
    let t_steps = model.config().timesteps();
    let mut loss = vec![0.0; t_steps];
    let mut correct = vec![0u64; t_steps];
    let mut seen = 0u64;
    let mut decoder: Option<(f64, u64)> = None;
    // The native engine reads the parameters once per evaluation.
    let engine = match model {
        Model::Blt(m) if native => Some((fast::spec(&m.config), fast::parameters(m)?)),
        _ => None,
    };
    for b in loader.epoch(0, 0) {
        let n = b.labels.len();
        if let Some((spec, p)) = &engine {
            let mut net = fast::BltNet::new(spec, p).map_err(fast::engine_err)?;
            net.set_bf16(precision == Precision::Bf16);
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
        // On a pool worker (`on_pool`): small parallel passes run inline; data-parallel
        // shards on the CPU (`ventral_models::shards`; each image's outputs are its own).
        let shards = ventral_models::shards::ranges(n, model, device);
        let parts = ventral_models::engine_ops::on_pool(|| {
            ventral_models::shards::map(model, device, &x, &shards, |m, xs, r| {
                let labels = &b.labels[r.clone()];
                let y = label_tensor(labels, device);
                let out = autocast(precision, || m.forward(xs));
                // The steps' outputs, then the decoder's, read back at once.
                let lps: Vec<Tensor<2>> = out
                    .log_probs
                    .into_iter()
                    .take(t_steps)
                    .chain(out.decoded)
                    .collect();
                let nlls = lps.iter().map(|lp| mean_nll(lp, &y)).collect();
                let mut steps: Vec<(f64, u64)> = read_nll_correct(nlls, lps, labels)?
                    .into_iter()
                    .map(|(v, c)| (v as f64 * r.len() as f64, c))
                    .collect();
                let dec = (steps.len() > t_steps).then(|| steps.remove(t_steps));
                Ok::<_, crate::error::TrainError>((steps, dec))
            })
        })?;
        for (steps, dec) in parts {
            for (t, (l, c)) in steps.into_iter().enumerate() {
                loss[t] += l;
                correct[t] += c;
            }
            if let Some((l, c)) = dec {
                let acc = decoder.get_or_insert((0.0, 0));
                acc.0 += l;
                acc.1 += c;
            }
        }
        seen += n as u64;
    }
    let s = seen.max(1) as f64;
    Ok(Evaluation {
        loss: loss.iter().map(|l| l / s).collect(),
        accuracy: correct.iter().map(|&c| c as f64 / s).collect(),
        decoder: decoder.map(|(l, c)| (l / s, c as f64 / s)),
    })
}

/// Loss and accuracy of an evaluation: per step, and at the temporal decoder when the model
/// has one.
#[derive(Debug, Clone)]
pub(super) struct Evaluation {
    pub loss: Vec<f64>,
    pub accuracy: Vec<f64>,
    pub decoder: Option<(f64, f64)>,
}
