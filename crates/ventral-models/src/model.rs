//! Any registered model behind one type, so training, recording and the analyses are
//! model-agnostic. Parameter names do not include the variant (see [`crate::params`]).

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::blt::{Blt, BltOutput};
use crate::config::ModelConfig;
use crate::error::Result;
use crate::rcnn_sat::RcnnSat;

/// A model of any kind. (One model lives per process, so the size difference of the variants
/// does not matter.)
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Model {
    Blt(Blt),
    RcnnSat(RcnnSat),
}

impl Model {
    /// Build a model (burn's initialisation; see [`crate::params::init_reference`]).
    pub fn init(config: &ModelConfig, device: &Device) -> Result<Self> {
        Ok(match config {
            ModelConfig::Blt(c) => Model::Blt(Blt::init(c, device)?),
            ModelConfig::RcnnSat(c) => Model::RcnnSat(RcnnSat::init(c, device)?),
        })
    }

    /// The configuration.
    pub fn config(&self) -> ModelConfig {
        match self {
            Model::Blt(m) => ModelConfig::Blt(m.config.clone()),
            Model::RcnnSat(m) => ModelConfig::RcnnSat(m.config.clone()),
        }
    }

    /// Run all time steps.
    ///
    /// # Shapes
    /// - `x`: `[batch, 3, S, S]`; output per step `[batch, classes]` and `[batch, D]`.
    pub fn forward(&self, x: Tensor<4>) -> BltOutput {
        match self {
            Model::Blt(m) => m.forward(x),
            Model::RcnnSat(m) => m.forward(x),
        }
    }

    /// [`Self::forward`] keeping every area's output at every step (`taps`: `v1`, `v2`, `v4`,
    /// `it`, each `[batch, C, H, W]`) where the model provides them (BLT; rcnn-sat gives none).
    pub fn forward_taps(&self, x: Tensor<4>) -> BltOutput {
        match self {
            Model::Blt(m) => m.forward_taps(x, true),
            Model::RcnnSat(m) => m.forward(x),
        }
    }
}
