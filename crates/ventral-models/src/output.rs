//! The per-step output contract every model family gives: log-probabilities and the
//! representation (the readout's input) at every time step, and — when asked — every named
//! area's activity at every step, in the order of [`crate::Model::areas`].

use burn::tensor::Tensor;

/// A forward pass over all time steps.
#[derive(Debug, Clone)]
pub struct ModelOutput {
    /// Log-probabilities per step, each `[batch, classes]`.
    pub log_probs: Vec<Tensor<2>>,
    /// The readout's input per step, each `[batch, D]` (BLT: post-ReLU GAP activations).
    pub representations: Vec<Tensor<2>>,
    /// Named areas per step (`[batch, C, H, W]` each, in the model's area order), when
    /// requested; empty otherwise.
    pub areas: Vec<Vec<(String, Tensor<4>)>>,
    /// Activity computed once before the time loop (BLT's retina), when areas are requested.
    pub retina: Option<Tensor<4>>,
    /// Log-probabilities of a temporal decoder over the steps (`[batch, classes]`; ConvRNNs
    /// whose decoder is not `last` or whose loss is taken at the decoder — training then
    /// minimises its NLL instead of the per-step sum).
    pub decoded: Option<Tensor<2>>,
}

impl ModelOutput {
    pub fn new() -> Self {
        Self {
            log_probs: Vec::new(),
            representations: Vec::new(),
            areas: Vec::new(),
            retina: None,
            decoded: None,
        }
    }

    /// Area `name` at step `t`, if recorded.
    pub fn area(&self, t: usize, name: &str) -> Option<&Tensor<4>> {
        self.areas
            .get(t)?
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| a)
    }
}

impl Default for ModelOutput {
    fn default() -> Self {
        Self::new()
    }
}
