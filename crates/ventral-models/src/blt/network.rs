//! The BLT network of Thorat, Doerig & Kietzmann (2023), as the reference `BLT_net_64` /
//! `BLT_net_128` (KietzmannLab/BLT-pytorch-CCN23, `BLT_analyse/models/BLT_net.py`).
//!
//! retina → V1 → V2 → V4 → IT → GAP → readout. Each of V1..IT has a bottom-up convolution (its
//! input max-pooled 2×2 for V2, V4, IT), a lateral convolution of its own output at t − 1 and a
//! top-down transposed convolution (stride 2) of the next layer's output at t − 1 (IT has none).
//! The drives combine additively `b + l + t` or multiplicatively `b ⊙ (1 + l + t)`, then
//! LayerNorm over (C, H, W) and ReLU. The GAP layer averages IT spatially and has its own lateral
//! Linear. The output per step is `log(clamp(softmax(readout(gap_t)), 1e-10, 1))`.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::{relu, softmax};
use burn::tensor::module::max_pool2d;
use burn::tensor::ops::MaxPoolOptions;
use burn::tensor::{Device, Tensor};

use super::config::{BltConfig, Interaction, NormKind};
use crate::error::Result;
use crate::layers::{LayerNorm1d, LayerNormChw};
use crate::output::ModelOutput;
use crate::precision::{conv_transpose2d, conv2d, linear};

/// One recurrent convolutional layer (PyTorch `BLT_Conv`).
#[derive(Module, Debug)]
pub struct BltConv {
    /// Bottom-up `Conv2d(C_in, C, k, same)`.
    pub bottom_up: Conv2d,
    /// Lateral `Conv2d(C, C, k, same)` on the layer's own output at t − 1.
    pub lateral: Option<Conv2d>,
    /// Top-down `ConvTranspose2d(C_above, C, k, stride 2)` on the next layer's output at t − 1.
    pub top_down: Option<ConvTranspose2d>,
}

/// The GAP layer's recurrent part (PyTorch `BLT_GAP`).
#[derive(Module, Debug)]
pub struct BltGap {
    /// Lateral `Linear(D, D)` on the GAP output at t − 1.
    pub lateral: Option<Linear>,
}

/// The network. Field names are the reference's state-dict names.
#[derive(Module, Debug)]
pub struct Blt {
    pub retina: Conv2d,
    pub v1: BltConv,
    pub v2: BltConv,
    pub v4: BltConv,
    pub it: BltConv,
    pub v1_ln: Option<LayerNormChw>,
    pub v2_ln: Option<LayerNormChw>,
    pub v4_ln: Option<LayerNormChw>,
    pub it_ln: Option<LayerNormChw>,
    pub gap: BltGap,
    pub gap_ln: Option<LayerNorm1d>,
    pub readout: Linear,
    #[module(skip)]
    pub config: BltConfig,
}

/// BLT's areas, in order (the names of [`crate::ModelOutput::areas`]).
pub const AREAS: [&str; 4] = ["v1", "v2", "v4", "it"];

fn conv(cin: usize, cout: usize, k: usize, bias: bool, device: &Device) -> Conv2d {
    let p = (k - 1) / 2;
    Conv2dConfig::new([cin, cout], [k, k])
        .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
        .with_bias(bias)
        .init(device)
}

fn conv_t(cin: usize, cout: usize, k: usize, bias: bool, device: &Device) -> ConvTranspose2d {
    let p = (k - 1) / 2;
    ConvTranspose2dConfig::new([cin, cout], [k, k])
        .with_stride([2, 2])
        .with_padding([p, p])
        .with_padding_out([1, 1])
        .with_bias(bias)
        .init(device)
}

impl Blt {
    /// Build the network (burn's default initialisation; use
    /// [`crate::params::init_reference`] for the reference's, from a named random stream).
    pub fn init(config: &BltConfig, device: &Device) -> Result<Self> {
        config.validate()?;
        let k = config.kernel();
        let ch = &config.channels;
        let (lat, td, bias) = (
            config.lateral_conv(),
            config.topdown_conv(),
            config.layer_bias(),
        );
        // V1 owns lateral/top-down modules whenever the flags are on, also in the faithful
        // mode where they are never used (the reference counts them as parameters).
        let layer = |cin: usize, c: usize, above: Option<usize>| BltConv {
            bottom_up: conv(cin, c, k, bias, device),
            lateral: lat.then(|| conv(c, c, k, bias, device)),
            top_down: above
                .filter(|_| td)
                .map(|ca| conv_t(ca, c, k, bias, device)),
        };
        let s = config.image_size;
        let ln = |c: usize, hw: usize| {
            (config.norm == NormKind::Layer).then(|| LayerNormChw::new([c, hw, hw], device))
        };
        let d = ch[4];
        Ok(Self {
            retina: conv(3, ch[0], k, true, device),
            v1: layer(ch[0], ch[1], Some(ch[2])),
            v2: layer(ch[1], ch[2], Some(ch[3])),
            v4: layer(ch[2], ch[3], Some(ch[4])),
            it: layer(ch[3], ch[4], None),
            v1_ln: ln(ch[1], s),
            v2_ln: ln(ch[2], s / 2),
            v4_ln: ln(ch[3], s / 4),
            it_ln: ln(ch[4], s / 8),
            gap: BltGap {
                lateral: config
                    .lateral_gap()
                    .then(|| LinearConfig::new(d, d).with_bias(bias).init(device)),
            },
            gap_ln: (config.norm == NormKind::Layer).then(|| LayerNorm1d::new(d, device)),
            readout: LinearConfig::new(d, config.num_classes)
                .with_bias(config.classifier_bias)
                .init(device),
            config: config.clone(),
        })
    }

    fn combine(&self, b: Tensor<4>, extra: Option<Tensor<4>>) -> Tensor<4> {
        match (extra, self.config.interaction) {
            (None, _) => b,
            (Some(e), Interaction::Additive) => b + e,
            (Some(e), Interaction::Multiplicative) => b * (e + 1.0),
        }
    }

    /// One layer's step: `ReLU(LN(comb(bu(input), lat(own_prev), td(above_prev))))`.
    fn layer_step(
        &self,
        layer: &BltConv,
        ln: &Option<LayerNormChw>,
        input: Tensor<4>,
        own_prev: Option<&Tensor<4>>,
        above_prev: Option<&Tensor<4>>,
    ) -> Tensor<4> {
        let b = conv2d(&layer.bottom_up, input);
        self.layer_step_from(layer, ln, b, own_prev, above_prev)
    }

    /// [`Self::layer_step`] from the bottom-up drive `b` already computed.
    fn layer_step_from(
        &self,
        layer: &BltConv,
        ln: &Option<LayerNormChw>,
        b: Tensor<4>,
        own_prev: Option<&Tensor<4>>,
        above_prev: Option<&Tensor<4>>,
    ) -> Tensor<4> {
        let l = match (&layer.lateral, own_prev) {
            (Some(m), Some(p)) => Some(conv2d(m, p.clone())),
            _ => None,
        };
        let t = match (&layer.top_down, above_prev) {
            (Some(m), Some(p)) => Some(conv_transpose2d(m, p.clone())),
            _ => None,
        };
        let extra = match (l, t) {
            (Some(l), Some(t)) => Some(l + t),
            (l, t) => l.or(t),
        };
        let z = self.combine(b, extra);
        relu(match ln {
            Some(ln) => ln.forward(z),
            None => z,
        })
    }

    /// Run all time steps.
    ///
    /// # Shapes
    /// - `x`: `[batch, 3, image_size, image_size]`, already normalised.
    /// - output: `timesteps` log-probability tensors `[batch, classes]` and representations
    ///   `[batch, D]`.
    pub fn forward(&self, x: Tensor<4>) -> ModelOutput {
        self.forward_areas(x, false)
    }

    /// [`Self::forward`], optionally keeping every area's output at every step ([`AREAS`]).
    pub fn forward_areas(&self, x: Tensor<4>, keep_areas: bool) -> ModelOutput {
        let pool = |t: Tensor<4>| max_pool2d(t, MaxPoolOptions::new([2, 2]));
        // The retina is computed once and reused at every step.
        let r = relu(conv2d(&self.retina, x)); // [batch, C0, S, S]
        let faithful = self.config.faithful_v1;
        let mut prev: Option<[Tensor<4>; 4]> = None; // V1, V2, V4, IT at t − 1
        let mut prev_gap: Option<Tensor<2>> = None;
        let mut out = ModelOutput {
            retina: keep_areas.then(|| r.clone()),
            ..ModelOutput::new()
        };
        // Reference quirk: with `faithful_v1`, V1 is never given its lateral/top-down input, so
        // its output and V2's bottom-up drive of it are the same at every step: computed once,
        // as the native engine does. The graph reuses the one tensor, so autodiff sums its
        // gradient over the steps before one backward — the same gradient, one backward
        // instead of T.
        let v1_and_v2_drive = |own_prev: Option<&Tensor<4>>, above_prev: Option<&Tensor<4>>| {
            let a1 = self.layer_step(&self.v1, &self.v1_ln, r.clone(), own_prev, above_prev);
            let v2_drive = conv2d(&self.v2.bottom_up, pool(a1.clone()));
            (a1, v2_drive)
        };
        let v1_once = faithful.then(|| v1_and_v2_drive(None, None));
        for _t in 0..self.config.timesteps {
            // At t = 0 nothing exists at t − 1: every layer is purely bottom-up.
            let p = prev.as_ref();
            let (a1, v2_drive) = match &v1_once {
                Some((a1, drive)) => (a1.clone(), drive.clone()),
                None => v1_and_v2_drive(p.map(|p| &p[0]), p.map(|p| &p[1])),
            };
            let a2 = self.layer_step_from(
                &self.v2,
                &self.v2_ln,
                v2_drive,
                p.map(|p| &p[1]),
                p.map(|p| &p[2]),
            );
            let a4 = self.layer_step(
                &self.v4,
                &self.v4_ln,
                pool(a2.clone()),
                p.map(|p| &p[2]),
                p.map(|p| &p[3]),
            );
            let ait = self.layer_step(
                &self.it,
                &self.it_ln,
                pool(a4.clone()),
                p.map(|p| &p[3]),
                None,
            );
            // GAP: spatial mean of IT → [batch, D], with its lateral Linear.
            let [bsz, d, _, _] = ait.dims();
            let gb: Tensor<2> = ait.clone().mean_dim(3).mean_dim(2).reshape([bsz, d]);
            let gl = match (&self.gap.lateral, &prev_gap) {
                (Some(m), Some(g)) => Some(linear(m, g.clone())),
                _ => None,
            };
            let gz = match (gl, self.config.interaction) {
                (None, _) => gb,
                (Some(l), Interaction::Additive) => gb + l,
                (Some(l), Interaction::Multiplicative) => gb * (l + 1.0),
            };
            let g = relu(match &self.gap_ln {
                Some(ln) => ln.forward(gz),
                None => gz,
            }); // [batch, D]
            let logits = linear(&self.readout, g.clone()); // [batch, classes]
            let lp = softmax(logits, 1).clamp(1e-10, 1.0).log();
            out.log_probs.push(lp);
            out.representations.push(g.clone());
            if keep_areas {
                let acts = [a1.clone(), a2.clone(), a4.clone(), ait.clone()];
                out.areas
                    .push(AREAS.iter().map(|n| n.to_string()).zip(acts).collect());
            }
            prev = Some([a1, a2, a4, ait]);
            prev_gap = Some(g);
        }
        out
    }
}
