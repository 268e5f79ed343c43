//! Any registered model behind one type, so training, recording and the analyses are
//! model-agnostic. Parameter names do not include the variant (see [`crate::params`]).

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::blt::Blt;
use crate::config::ModelConfig;
use crate::convrnn::ConvRnn;
use crate::error::Result;
use crate::output::ModelOutput;
use crate::rcnn_sat::RcnnSat;

/// A model of any kind. (One model lives per process, so the size difference of the variants
/// does not matter.)
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Model {
    Blt(Blt),
    RcnnSat(RcnnSat),
    ConvRnn(ConvRnn),
}

impl Model {
    /// Build a model (burn's initialisation; see [`crate::params::init_reference`]).
    pub fn init(config: &ModelConfig, device: &Device) -> Result<Self> {
        Ok(match config {
            ModelConfig::Blt(c) => Model::Blt(Blt::init(c, device)?),
            ModelConfig::RcnnSat(c) => Model::RcnnSat(RcnnSat::init(c, device)?),
            ModelConfig::ConvRnn(c) => Model::ConvRnn(ConvRnn::init(c, device, 0)?),
        })
    }

    /// Build a model with its family's reference initialisation drawn from the `init` stream
    /// of `seed` (BLT and rcnn-sat: [`crate::params::init_reference`]; ConvRNNs: PyTorch's
    /// defaults plus each module's `init_dict`).
    pub fn init_seeded(config: &ModelConfig, device: &Device, seed: u64) -> Result<Self> {
        Ok(match config {
            ModelConfig::ConvRnn(c) => Model::ConvRnn(ConvRnn::init(c, device, seed)?),
            c => crate::params::init_reference(Self::init(c, device)?, seed),
        })
    }

    /// Settle burn's running statistics (BatchNorm's `running_mean` / `running_var`) after a
    /// training step. burn keeps one pending update per thread (`RunningState`): a step on
    /// another thread than the step before reads the last settled value, not the newest, and
    /// the pending values are averaged when they settle — so with steps on whichever pool
    /// worker is free, the statistics were neither the momentum updates nor the same from run
    /// to run (two runs of the rcnn-sat BL with one seed: running means up to 0.08 apart, and
    /// their validation metrics). Settled after every step, each update comes from one thread
    /// and is exactly the momentum update. Nothing to do for models without BatchNorm.
    pub fn settle_running_state(&self) {
        if crate::shards::batch_coupled(self) {
            // `valid` settles every running state in place (the training model shares them).
            let _ = self.valid();
        }
    }

    /// The configuration.
    pub fn config(&self) -> ModelConfig {
        match self {
            Model::Blt(m) => ModelConfig::Blt(m.config.clone()),
            Model::RcnnSat(m) => ModelConfig::RcnnSat(m.config.clone()),
            Model::ConvRnn(m) => ModelConfig::ConvRnn(m.config.clone()),
        }
    }

    /// Run all time steps.
    ///
    /// # Shapes
    /// - `x`: `[batch, 3, S, S]`; output per step `[batch, classes]` and `[batch, D]`.
    pub fn forward(&self, x: Tensor<4>) -> ModelOutput {
        match self {
            Model::Blt(m) => m.forward(x),
            Model::RcnnSat(m) => m.forward(x),
            Model::ConvRnn(m) => m.forward(x),
        }
    }

    /// [`Self::forward`] keeping every area's output at every step (named as
    /// [`Self::areas`], each `[batch, C, H, W]`).
    pub fn forward_areas(&self, x: Tensor<4>) -> ModelOutput {
        match self {
            Model::Blt(m) => m.forward_areas(x, true),
            Model::RcnnSat(m) => m.forward_areas(x, true),
            Model::ConvRnn(m) => m.forward_areas(x, true),
        }
    }

    /// Names of the linear readout's weight and bias (PyTorch layout `[classes, D]` on the
    /// representation), when the model has one: BLT and rcnn-sat `readout.weight|bias`; a
    /// ConvRNN whose output node is average pool + fully connected, that layer's. A ConvRNN
    /// reading out with a convolution (the original shallow `imnetds`) has none.
    pub fn readout_names(&self) -> Option<(String, String)> {
        match self {
            Model::ConvRnn(m) => {
                let prefix = format!("{}.", m.config.output_node);
                crate::params::list(m)
                    .into_iter()
                    .find(|p| p.name.starts_with(&prefix) && p.name.ends_with(".lin.weight"))
                    .map(|p| {
                        let w = p.name;
                        let b = format!("{}.bias", w.trim_end_matches(".weight"));
                        (w, b)
                    })
            }
            _ => Some(("readout.weight".into(), "readout.bias".into())),
        }
    }

    /// The model's areas in order (what [`Self::forward_areas`] records).
    pub fn areas(&self) -> Vec<String> {
        self.config().areas()
    }
}
