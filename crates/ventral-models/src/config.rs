//! Model configuration: the `[model]` table of a model or training TOML.

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};

/// How lateral and top-down drives combine with the bottom-up drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Interaction {
    /// `b + l + t`
    Additive,
    /// `b ⊙ (1 + l + t)`
    Multiplicative,
}

/// Where lateral/top-down connections exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LtPosition {
    /// Every layer (V1..IT and GAP).
    All,
    /// Only the GAP layer keeps its lateral connection.
    Last,
}

/// Normalisation after each layer's combination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NormKind {
    /// LayerNorm over (C, H, W) with elementwise affine, as the reference.
    Layer,
    /// None (the convolutions then carry biases).
    None,
}

/// A model of any registered kind (`kind = "..."`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModelConfig {
    /// The BLT family (Thorat et al. 2023).
    Blt(BltConfig),
    /// The rcnn-sat BL network and feedforward controls (Spoerer et al. 2020).
    RcnnSat(crate::rcnn_sat::RcnnSatConfig),
}

impl ModelConfig {
    /// Check the configuration.
    pub fn validate(&self) -> Result<()> {
        match self {
            ModelConfig::Blt(c) => c.validate()?,
            ModelConfig::RcnnSat(c) => c.validate()?,
        }
        self.check_size()
    }

    /// Parameters, units per step (Σ C·H·W over layers) and units computed once (BLT's
    /// retina), estimated from the configuration alone in saturating arithmetic — before
    /// anything is allocated.
    pub fn estimated_size(&self) -> (u128, u128, u128) {
        let m = |a: usize, b: usize| (a as u128).saturating_mul(b as u128);
        match self {
            ModelConfig::Blt(c) => {
                let ch = &c.channels;
                let (k2, s) = (m(c.kernel(), c.kernel()), c.image_size);
                let mut params = m(3, ch[0]).saturating_mul(k2);
                let mut units = 0u128;
                for l in 1..5 {
                    let side = s >> (l - 1);
                    let u = m(ch[l], side).saturating_mul(side as u128);
                    units = units.saturating_add(u);
                    let mut conv = m(ch[l - 1], ch[l]);
                    if c.lateral_conv() {
                        conv = conv.saturating_add(m(ch[l], ch[l]));
                    }
                    if c.topdown_conv() && l < 4 {
                        conv = conv.saturating_add(m(ch[l + 1], ch[l]));
                    }
                    params = params.saturating_add(conv.saturating_mul(k2));
                    if c.norm == NormKind::Layer {
                        params = params.saturating_add(u.saturating_mul(2));
                    }
                }
                params = params.saturating_add(m(c.num_classes, ch[4]));
                if c.lateral_gap() {
                    params = params.saturating_add(m(ch[4], ch[4]));
                }
                let retina = m(ch[0], s).saturating_mul(s as u128);
                (params, units.saturating_add(ch[4] as u128), retina)
            }
            ModelConfig::RcnnSat(c) => {
                let (mut params, mut units, mut side, mut cin) = (0u128, 0u128, c.image_size, 3);
                for (ch, k, pool) in c.layers() {
                    if pool {
                        side /= 2;
                    }
                    let kk = m(k, k);
                    params = params.saturating_add(m(cin, ch).saturating_mul(kk));
                    if c.recurrent() {
                        params = params.saturating_add(m(ch, ch).saturating_mul(kk));
                    }
                    units = units.saturating_add(m(ch, side).saturating_mul(side as u128));
                    cin = ch;
                }
                (params.saturating_add(m(c.num_classes, cin)), units, 0)
            }
        }
    }

    fn check_size(&self) -> Result<()> {
        let (params, units, once) = self.estimated_size();
        if params > MAX_PARAMS {
            return Err(ModelError::Config(format!(
                "these widths (channels, num_classes) give about {params} parameters ({:.1} GB of float32); the limit is {MAX_PARAMS}",
                params as f64 * 4e-9
            )));
        }
        let per_image = units
            .saturating_mul(self.timesteps() as u128)
            .saturating_add(once);
        if per_image > MAX_UNITS_PER_IMAGE {
            return Err(ModelError::Config(format!(
                "these widths and image_size give about {units} units per step × {} steps + {once} computed once = {per_image} activations per image ({:.1} GB of float32); the limit is {MAX_UNITS_PER_IMAGE}",
                self.timesteps(),
                per_image as f64 * 4e-9
            )));
        }
        Ok(())
    }
    /// Time steps.
    pub fn timesteps(&self) -> usize {
        match self {
            ModelConfig::Blt(c) => c.timesteps,
            ModelConfig::RcnnSat(c) => c.timesteps,
        }
    }
    /// Classes of the readout.
    pub fn num_classes(&self) -> usize {
        match self {
            ModelConfig::Blt(c) => c.num_classes,
            ModelConfig::RcnnSat(c) => c.num_classes,
        }
    }
    /// Input side length.
    pub fn image_size(&self) -> usize {
        match self {
            ModelConfig::Blt(c) => c.image_size,
            ModelConfig::RcnnSat(c) => c.image_size,
        }
    }
    /// Names of the areas a forward pass can record, in order (BLT: `v1`, `v2`, `v4`, `it`;
    /// rcnn-sat: `layer_0` …).
    pub fn areas(&self) -> Vec<String> {
        match self {
            ModelConfig::Blt(_) => crate::blt::AREAS.iter().map(|s| s.to_string()).collect(),
            ModelConfig::RcnnSat(c) => c.areas(),
        }
    }
    /// Width of the representation (GAP) layer.
    pub fn feature_dim(&self) -> usize {
        match self {
            ModelConfig::Blt(c) => c.channels[4],
            ModelConfig::RcnnSat(c) => c.layers().last().map_or(0, |l| l.0),
        }
    }
}

/// Largest model accepted: 2·10⁹ parameters (8 GB of float32; the largest published networks
/// of the field are below 10⁸).
pub const MAX_PARAMS: u128 = 2_000_000_000;
/// Largest activation count of one image over all steps accepted: 5·10⁸ (2 GB of float32).
pub const MAX_UNITS_PER_IMAGE: u128 = 500_000_000;

/// The BLT network of Thorat, Doerig & Kietzmann (2023), `BLT_net_64` / `BLT_net_128`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BltConfig {
    /// Input side length: 64 (3×3 kernels) or 128 (5×5 kernels).
    pub image_size: usize,
    /// Number of classes of the readout.
    pub num_classes: usize,
    /// Time steps the network is unrolled for; 1 forces a pure bottom-up (B) network.
    pub timesteps: usize,
    /// Lateral connections (V1..IT convolutions and the GAP layer's Linear).
    pub lateral: bool,
    /// Top-down connections (transposed convolutions from the layer above).
    pub topdown: bool,
    /// `additive` (`b + l + t`) or `multiplicative` (`b ⊙ (1 + l + t)`).
    pub interaction: Interaction,
    /// `all` or `last` (only the GAP layer keeps its lateral connection).
    pub lt_position: LtPosition,
    /// Bias on the readout.
    pub classifier_bias: bool,
    /// `layer` (LayerNorm over C, H, W) or `none`.
    pub norm: NormKind,
    /// true reproduces the reference, where V1 never receives its lateral/top-down input.
    pub faithful_v1: bool,
    /// Channels of retina, V1, V2, V4, IT (the GAP layer has IT's width). Reference:
    /// `[32, 64, 128, 256, 512]`.
    #[serde(default = "default_channels")]
    pub channels: Vec<usize>,
}

/// The reference widths.
pub fn default_channels() -> Vec<usize> {
    vec![32, 64, 128, 256, 512]
}

impl BltConfig {
    /// The reference `BLT_net_64` with lateral and top-down, additive, T steps, 100 classes.
    pub fn reference64(timesteps: usize) -> Self {
        Self {
            image_size: 64,
            num_classes: 100,
            timesteps,
            lateral: true,
            topdown: true,
            interaction: Interaction::Additive,
            lt_position: LtPosition::All,
            classifier_bias: false,
            norm: NormKind::Layer,
            faithful_v1: true,
            channels: default_channels(),
        }
    }

    /// Check the configuration.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(ModelError::Config(m));
        if !matches!(self.image_size, 64 | 128) {
            return bad(format!(
                "image_size must be 64 or 128, not {}",
                self.image_size
            ));
        }
        if self.num_classes == 0 {
            return bad("num_classes must be positive".into());
        }
        if self.timesteps == 0 {
            return bad("timesteps must be at least 1".into());
        }
        if self.channels.len() != 5 || self.channels.contains(&0) {
            return bad(format!(
                "channels must list 5 positive widths (retina, V1, V2, V4, IT), got {:?}",
                self.channels
            ));
        }
        Ok(())
    }

    /// Kernel size: 3 for 64 px, 5 for 128 px.
    pub fn kernel(&self) -> usize {
        if self.image_size == 128 { 5 } else { 3 }
    }

    /// Effective lateral flag of the pre-GAP layers (after `timesteps = 1` and `lt_position`).
    pub fn lateral_conv(&self) -> bool {
        self.timesteps > 1 && self.lateral && self.lt_position == LtPosition::All
    }

    /// Effective top-down flag of the pre-GAP layers.
    pub fn topdown_conv(&self) -> bool {
        self.timesteps > 1 && self.topdown && self.lt_position == LtPosition::All
    }

    /// Effective lateral flag of the GAP layer.
    pub fn lateral_gap(&self) -> bool {
        self.timesteps > 1 && self.lateral
    }

    /// Biases on the layer convolutions (only without normalisation, as the reference).
    pub fn layer_bias(&self) -> bool {
        self.norm == NormKind::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_model_table() {
        let t = r#"
kind = "blt"
image_size = 64
num_classes = 8
timesteps = 4
lateral = true
topdown = false
interaction = "multiplicative"
lt_position = "all"
classifier_bias = false
norm = "layer"
faithful_v1 = true
channels = [8, 8, 16, 16, 32]
"#;
        let m: ModelConfig = toml::from_str(t).unwrap();
        let ModelConfig::Blt(c) = m else {
            panic!("not a BLT")
        };
        assert_eq!(c.interaction, Interaction::Multiplicative);
        assert!(c.validate().is_ok());
        let bad = t.replace("faithful_v1 = true", "faithful_v1 = true\nextra = 1");
        assert!(toml::from_str::<ModelConfig>(&bad).is_err());
    }
}
