//! The rcnn-sat network (see the family's module docs).

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::{log_softmax, relu};
use burn::tensor::ops::{ConvOptions, MaxPoolOptions};
use burn::tensor::{Device, Tensor};

use super::config::RcnnSatConfig;
use crate::error::Result;
use crate::output::ModelOutput;

/// A layer's stride-1 'same' convolution, on the engine's kernels where they apply
/// ([`crate::engine_ops`]; burn's `Conv2d::forward` otherwise — same mathematics).
///
/// # Shapes
/// - `x`: `[batch, cin, H, W]` → `[batch, cout, H, W]`.
fn conv_forward(c: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let p = (c.kernel_size[0] - 1) / 2;
    let options = ConvOptions::new(c.stride, [p, p], c.dilation, c.groups);
    crate::engine_ops::conv2d(x, c.weight.val(), c.bias.as_ref().map(|b| b.val()), options)
}

/// One layer: bottom-up and (BL) lateral convolutions.
#[derive(Module, Debug)]
pub struct Rcl {
    pub bottom_up: Conv2d,
    pub lateral: Option<Conv2d>,
}

/// The network. Parameter names: `layers.{n}.bottom_up.weight`, `layers.{n}.lateral.weight`,
/// `bn.{n}.{t}.gamma|beta|running_mean|running_var`, `readout.weight|bias`.
#[derive(Module, Debug)]
pub struct RcnnSat {
    pub layers: Vec<Rcl>,
    /// BatchNorm per layer and time step.
    pub bn: Vec<Vec<BatchNorm>>,
    pub readout: Linear,
    #[module(skip)]
    pub config: RcnnSatConfig,
}

impl RcnnSat {
    /// Build the network.
    pub fn init(config: &RcnnSatConfig, device: &Device) -> Result<Self> {
        config.validate()?;
        let spec = config.layers();
        let conv = |cin: usize, c: usize, k: usize| {
            // 'same' padding for odd kernels.
            let p = (k - 1) / 2;
            Conv2dConfig::new([cin, c], [k, k])
                .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
                .with_bias(false)
                .init(device)
        };
        let mut layers = Vec::new();
        let mut cin = 3;
        for &(c, k, _) in &spec {
            layers.push(Rcl {
                bottom_up: conv(cin, c, k),
                lateral: config.recurrent().then(|| conv(c, c, k)),
            });
            cin = c;
        }
        let bn = spec
            .iter()
            .map(|&(c, _, _)| {
                (0..config.timesteps)
                    .map(|_| {
                        BatchNormConfig::new(c)
                            .with_epsilon(1e-3)
                            .with_momentum(0.01)
                            .init(device)
                    })
                    .collect()
            })
            .collect();
        Ok(Self {
            layers,
            bn,
            readout: LinearConfig::new(cin, config.num_classes).init(device),
            config: config.clone(),
        })
    }

    /// Run all time steps.
    ///
    /// # Shapes
    /// - `x`: `[batch, 3, image_size, image_size]`.
    /// - output: per step log-probabilities `[batch, classes]` and GAP features `[batch, D]`.
    pub fn forward(&self, x: Tensor<4>) -> ModelOutput {
        self.forward_areas(x, false)
    }

    /// [`Self::forward`], optionally keeping every layer's output at every step (areas
    /// `layer_0` … `layer_{n−1}`, the Keras reference's layer numbering).
    pub fn forward_areas(&self, x: Tensor<4>, keep_areas: bool) -> ModelOutput {
        let spec = self.config.layers();
        let mut prev: Vec<Tensor<4>> = Vec::new();
        let mut first_bu: Option<Tensor<4>> = None;
        let mut logits_sum: Option<Tensor<2>> = None;
        let mut out = ModelOutput::new();
        for t in 0..self.config.timesteps {
            let mut cur: Vec<Tensor<4>> = Vec::with_capacity(spec.len());
            for (n, layer) in self.layers.iter().enumerate() {
                let b = if n == 0 {
                    // The image's bottom-up convolution is computed once.
                    first_bu
                        .get_or_insert_with(|| conv_forward(&layer.bottom_up, x.clone()))
                        .clone()
                } else {
                    let input = cur[n - 1].clone();
                    let input = if spec[n].2 {
                        crate::engine_ops::max_pool2d(input, MaxPoolOptions::new([2, 2]))
                    } else {
                        input
                    };
                    conv_forward(&layer.bottom_up, input)
                };
                let z = match (&layer.lateral, prev.get(n)) {
                    (Some(l), Some(p)) => b + conv_forward(l, p.clone()),
                    _ => b,
                };
                cur.push(relu(self.bn[n][t].forward(z)));
            }
            let last = cur[cur.len() - 1].clone();
            let [bsz, d, _, _] = last.dims();
            let g: Tensor<2> = last.mean_dim(3).mean_dim(2).reshape([bsz, d]);
            let logits = crate::precision::linear(&self.readout, g.clone());
            let logits = if self.config.cumulative_readout {
                let s = match logits_sum.take() {
                    Some(acc) => acc + logits,
                    None => logits,
                };
                logits_sum = Some(s.clone());
                s
            } else {
                logits
            };
            out.log_probs.push(log_softmax(logits, 1));
            out.representations.push(g);
            if keep_areas {
                out.areas.push(
                    cur.iter()
                        .enumerate()
                        .map(|(n, a)| (format!("layer_{n}"), a.clone()))
                        .collect(),
                );
            }
            prev = cur;
        }
        out
    }
}
