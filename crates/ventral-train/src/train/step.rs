//! One training step's arithmetic — forward, weighted loss over time steps, backward — and
//! the evaluation of a split, on the native CPU engine or burn's autodiff.

use std::collections::BTreeMap;

use burn::tensor::{Device, Int, Tensor, TensorData};
use ventral_data::{Batch, Loader};
use ventral_models::device::{read_i64, read_scalar};
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

/// [`mean_nll`], its value and how many images' argmax is their label (both read back from
/// the device; `what` names the loss in a read error).
fn nll_and_correct(
    lp: &Tensor<2>,
    y: &Tensor<1, Int>,
    labels: &[i64],
    what: &str,
) -> Result<(Tensor<1>, f32, u64)> {
    let loss = mean_nll(lp, y);
    let value = read_scalar(&loss, what)?;
    let pred = read_i64(&lp.clone().argmax(1), "the predicted classes")?;
    let correct = pred.iter().zip(labels).filter(|(a, b)| a == b).count() as u64;
    Ok((loss, value, correct))
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
    let y = Tensor::<1, Int>::from_data(TensorData::new(b.labels.clone(), [n]), device);
    let out = autocast(precision, || model.forward(x));
    // A temporal decoder (ConvRNNs, `decoder.loss = "decoder"`) replaces the per-step sum: the
    // loss is its output's NLL, as in the original; the per-step NLLs are still recorded.
    let at_decoder = model.config().decoder().is_some_and(|(_, at)| at);
    let mut loss: Option<Tensor<1>> = out
        .decoded
        .as_ref()
        .filter(|_| at_decoder)
        .map(|d| mean_nll(d, &y));
    let sum_steps = loss.is_none();
    for t in 0..t_steps {
        let (l, lv, c) = nll_and_correct(&out.log_probs[t], &y, &b.labels, "a step's loss")?;
        nll[t] = lv as f64;
        correct[t] = c;
        if sum_steps {
            let l = l * weights[t];
            loss = Some(match loss {
                None => l,
                Some(a) => a + l,
            });
        }
    }
    let loss = loss.ok_or_else(|| {
        crate::error::TrainError::Config("the model has no time steps to train".into())
    })?;
    let lv = read_scalar(&loss, "the loss")?;
    let grads = loss.backward();
    Ok(StepOutput {
        nll,
        correct,
        loss: lv as f64,
        grad_norm: grad_norm(model, &grads)?,
        grads: StepGrads::Autodiff(grads),
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
        // On a pool worker (`on_pool`): small parallel passes run inline.
        let out = ventral_models::engine_ops::on_pool(|| autocast(precision, || model.forward(x)));
        for t in 0..t_steps {
            let (_, lv, c) = nll_and_correct(&out.log_probs[t], &y, &b.labels, "a step's loss")?;
            loss[t] += lv as f64 * n as f64;
            correct[t] += c;
        }
        if let Some(d) = &out.decoded {
            let (_, lv, c) = nll_and_correct(d, &y, &b.labels, "the decoder's loss")?;
            let acc = decoder.get_or_insert((0.0, 0));
            acc.0 += lv as f64 * n as f64;
            acc.1 += c;
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
