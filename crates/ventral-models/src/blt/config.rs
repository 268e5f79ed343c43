//! The BLT family's configuration.

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

    /// Parameters, units per step and units computed once (the retina), estimated from the
    /// configuration alone (saturating arithmetic; see `ModelConfig::estimated_size`).
    pub fn estimated_size(&self) -> (u128, u128, u128) {
        let m = |a: usize, b: usize| (a as u128).saturating_mul(b as u128);

        let ch = &self.channels;
        let (k2, s) = (m(self.kernel(), self.kernel()), self.image_size);
        let mut params = m(3, ch[0]).saturating_mul(k2);
        let mut units = 0u128;
        for l in 1..5 {
            let side = s >> (l - 1);
            let u = m(ch[l], side).saturating_mul(side as u128);
            units = units.saturating_add(u);
            let mut conv = m(ch[l - 1], ch[l]);
            if self.lateral_conv() {
                conv = conv.saturating_add(m(ch[l], ch[l]));
            }
            if self.topdown_conv() && l < 4 {
                conv = conv.saturating_add(m(ch[l + 1], ch[l]));
            }
            params = params.saturating_add(conv.saturating_mul(k2));
            if self.norm == NormKind::Layer {
                params = params.saturating_add(u.saturating_mul(2));
            }
        }
        params = params.saturating_add(m(self.num_classes, ch[4]));
        if self.lateral_gap() {
            params = params.saturating_add(m(ch[4], ch[4]));
        }
        let retina = m(ch[0], s).saturating_mul(s as u128);
        (params, units.saturating_add(ch[4] as u128), retina)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ModelConfig;

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
