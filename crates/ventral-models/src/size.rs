//! Network size: parameters by connection type, units and FLOPs (Nayebi et al. count units as
//! Σ C·H·W over layers; parameters by connection type show what recurrence costs).

use std::collections::BTreeMap;

use serde::Serialize;

pub use crate::blt::size::blt_size;
use crate::config::ModelConfig;
use crate::params::ParamInfo;
pub use crate::rcnn_sat::size::rcnn_size;

/// Connection type of a parameter, from its name.
pub fn connection_type(name: &str) -> &'static str {
    if name.starts_with("readout.") {
        "readout"
    } else if name.contains("_ln.") || name.starts_with("bn.") || name.contains("norm") {
        "norm"
    } else if name.contains(".lateral.") {
        "lateral"
    } else if name.contains(".top_down.") {
        "top_down"
    } else {
        "bottom_up"
    }
}

/// Size of a model.
#[derive(Debug, Clone, Serialize)]
pub struct SizeReport {
    /// Parameters per connection type (bottom_up includes the retina).
    pub params_by_type: BTreeMap<String, usize>,
    /// All parameters (including unused ones, as PyTorch counts them).
    pub params_total: usize,
    /// Parameters that never receive a gradient, with the reason.
    pub unused: Vec<(String, usize, String)>,
    /// Units per step: Σ C·H·W over V1, V2, V4, IT plus the GAP width.
    pub units_per_step: usize,
    /// Units computed once (the retina).
    pub units_once: usize,
    /// FLOPs (2 × multiply-adds of convolutions and linear maps) at t = 0 (bottom-up only),
    /// at each later step, and for a whole image over all steps (retina included once).
    pub flops_step0: u64,
    pub flops_per_step: u64,
    pub flops_per_image: u64,
}

/// Size of any model (parameters exclude BatchNorm running statistics, as PyTorch's trainable
/// count does).
pub fn model_size(cfg: &ModelConfig, params: &[ParamInfo]) -> SizeReport {
    match cfg {
        ModelConfig::Blt(c) => blt_size(c, params),
        ModelConfig::RcnnSat(c) => rcnn_size(c, params),
        ModelConfig::ConvRnn(c) => crate::convrnn::size::convrnn_size(c, params),
    }
}
