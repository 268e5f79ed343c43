//! The rcnn-sat networks of Spoerer, Kietzmann, Mehrer, Charest & Kriegeskorte (2020):
//! the recurrent BL network and its feedforward controls B, B-K (larger kernels), B-F (wider)
//! and B-D (deeper), as `cjspoerer/rcnn-sat` (`bl_net.py`, `b_net.py`) defines them.
//!
//! BL: seven recurrent convolutional layers (channels 96, 128, 192, 256, 512, 1024, 2048;
//! kernels 7, 5, 3, 3, 3, 3, 1; `same` padding, no bias), 2×2 max-pool on the bottom-up input of
//! layers 1..6, the image's bottom-up convolution computed once,
//! `h_t^n = ReLU(BN_{n,t}(W_b * pool(h_t^{n−1}) + W_l * h_{t−1}^n))` with **separate BatchNorm
//! parameters per layer and time step**, then global average pooling and a Dense readout (with
//! bias) shared over time; optionally a cumulative readout (logits summed over t' ≤ t).
//! The B controls are the same stacks without lateral connections (one time step; B-D has 14
//! layers, pooling every second one). BatchNorm uses Keras' defaults (ε = 1e-3, momentum 0.99,
//! i.e. 0.01 in PyTorch's convention).

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::{log_softmax, relu};
use burn::tensor::module::max_pool2d;
use burn::tensor::ops::MaxPoolOptions;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};
use crate::output::ModelOutput;

/// Which rcnn-sat network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RcnnVariant {
    /// Recurrent: bottom-up + lateral.
    Bl,
    /// Feedforward control.
    B,
    /// Feedforward, larger kernels (11, 7, 5, 5, 5, 5, 3).
    BK,
    /// Feedforward, double width.
    BF,
    /// Feedforward, double depth (14 layers).
    BD,
}

/// Configuration (`kind = "rcnn_sat"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RcnnSatConfig {
    pub variant: RcnnVariant,
    /// Input side (the published models use 128).
    pub image_size: usize,
    pub num_classes: usize,
    /// Time steps (BL; the feedforward controls use 1).
    pub timesteps: usize,
    /// Sum the logits over t' ≤ t before the softmax.
    #[serde(default)]
    pub cumulative_readout: bool,
    /// Channels per layer (defaults to the published widths of the variant).
    #[serde(default)]
    pub channels: Option<Vec<usize>>,
}

impl RcnnSatConfig {
    /// (channels, kernel, pool-before) per layer.
    pub fn layers(&self) -> Vec<(usize, usize, bool)> {
        let (ch, k, pool): (Vec<usize>, Vec<usize>, Vec<bool>) = match self.variant {
            RcnnVariant::Bl | RcnnVariant::B => (
                vec![96, 128, 192, 256, 512, 1024, 2048],
                vec![7, 5, 3, 3, 3, 3, 1],
                (0..7).map(|i| i > 0).collect(),
            ),
            RcnnVariant::BK => (
                vec![96, 128, 192, 256, 512, 1024, 2048],
                vec![11, 7, 5, 5, 5, 5, 3],
                (0..7).map(|i| i > 0).collect(),
            ),
            RcnnVariant::BF => (
                vec![192, 256, 384, 512, 1024, 2048, 4096],
                vec![7, 5, 3, 3, 3, 3, 1],
                (0..7).map(|i| i > 0).collect(),
            ),
            RcnnVariant::BD => (
                vec![
                    96, 96, 128, 128, 192, 192, 256, 256, 512, 512, 1024, 1024, 2048, 2048,
                ],
                vec![7, 7, 5, 5, 3, 3, 3, 3, 3, 3, 3, 3, 1, 1],
                (0..14).map(|i| i > 0 && i % 2 == 0).collect(),
            ),
        };
        let ch = self.channels.clone().unwrap_or(ch);
        ch.into_iter()
            .zip(k)
            .zip(pool)
            .map(|((c, k), p)| (c, k, p))
            .collect()
    }

    /// Area names: `layer_0` … `layer_{n−1}`.
    pub fn areas(&self) -> Vec<String> {
        (0..self.layers().len())
            .map(|n| format!("layer_{n}"))
            .collect()
    }

    /// Recurrent (lateral connections).
    pub fn recurrent(&self) -> bool {
        self.variant == RcnnVariant::Bl && self.timesteps > 1
    }

    /// Check the configuration.
    pub fn validate(&self) -> Result<()> {
        let n = self.layers().len();
        let expected = if self.variant == RcnnVariant::BD {
            14
        } else {
            7
        };
        if let Some(c) = &self.channels
            && (c.len() != expected || c.contains(&0))
        {
            return Err(ModelError::Config(format!(
                "channels must list {expected} positive widths for {:?}, got {c:?}",
                self.variant
            )));
        }
        let pools = self.layers().iter().filter(|l| l.2).count();
        if self.image_size == 0 || !self.image_size.is_multiple_of(1 << pools) {
            return Err(ModelError::Config(format!(
                "image_size {} must be a positive multiple of {} ({pools} 2×2 max-pools)",
                self.image_size,
                1 << pools
            )));
        }
        if self.num_classes == 0 || self.timesteps == 0 || n == 0 {
            return Err(ModelError::Config(
                "num_classes and timesteps must be positive".into(),
            ));
        }
        if self.variant != RcnnVariant::Bl && self.timesteps != 1 {
            return Err(ModelError::Config(format!(
                "{:?} is feedforward: timesteps must be 1",
                self.variant
            )));
        }
        Ok(())
    }
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
                        .get_or_insert_with(|| layer.bottom_up.forward(x.clone()))
                        .clone()
                } else {
                    let input = cur[n - 1].clone();
                    let input = if spec[n].2 {
                        max_pool2d(input, MaxPoolOptions::new([2, 2]))
                    } else {
                        input
                    };
                    layer.bottom_up.forward(input)
                };
                let z = match (&layer.lateral, prev.get(n)) {
                    (Some(l), Some(p)) => b + l.forward(p.clone()),
                    _ => b,
                };
                cur.push(relu(self.bn[n][t].forward(z)));
            }
            let last = cur[cur.len() - 1].clone();
            let [bsz, d, _, _] = last.dims();
            let g: Tensor<2> = last.mean_dim(3).mean_dim(2).reshape([bsz, d]);
            let logits = self.readout.forward(g.clone());
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
