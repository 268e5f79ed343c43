//! The rcnn-sat family's configuration (variants BL, B, B-K, B-F, B-D).

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};

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

    /// Parameters, units per step and units computed once (none), estimated from the
    /// configuration alone (saturating arithmetic; see `ModelConfig::estimated_size`).
    pub fn estimated_size(&self) -> (u128, u128, u128) {
        let m = |a: usize, b: usize| (a as u128).saturating_mul(b as u128);

        let (mut params, mut units, mut side, mut cin) = (0u128, 0u128, self.image_size, 3);
        for (ch, k, pool) in self.layers() {
            if pool {
                side /= 2;
            }
            let kk = m(k, k);
            params = params.saturating_add(m(cin, ch).saturating_mul(kk));
            if self.recurrent() {
                params = params.saturating_add(m(ch, ch).saturating_mul(kk));
            }
            units = units.saturating_add(m(ch, side).saturating_mul(side as u128));
            cin = ch;
        }
        (params.saturating_add(m(self.num_classes, cin)), units, 0)
    }
}
