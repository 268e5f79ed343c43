//! Network size: parameters by connection type, units and FLOPs (Nayebi et al. count units as
//! Σ C·H·W over layers; parameters by connection type show what recurrence costs).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::{BltConfig, ModelConfig};
use crate::params::{ParamInfo, ParamKind};
use crate::rcnn_sat::RcnnSatConfig;

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

/// Size of a BLT network given its parameter list.
pub fn blt_size(cfg: &BltConfig, params: &[ParamInfo]) -> SizeReport {
    let mut by_type = BTreeMap::new();
    for t in ["bottom_up", "lateral", "top_down", "norm", "readout"] {
        by_type.insert(t.to_string(), 0usize);
    }
    let mut unused = Vec::new();
    let mut total = 0;
    for p in params {
        let n: usize = p.shape.iter().product();
        total += n;
        *by_type
            .entry(connection_type(&p.name).to_string())
            .or_default() += n;
        if cfg.faithful_v1
            && (p.name.starts_with("v1.lateral.") || p.name.starts_with("v1.top_down."))
        {
            unused.push((
                p.name.clone(),
                n,
                "faithful_v1: the reference never gives V1 its lateral/top-down input".into(),
            ));
        }
    }
    let ch = &cfg.channels;
    let s = cfg.image_size;
    let k2 = (cfg.kernel() * cfg.kernel()) as u64;
    let sides = [s, s / 2, s / 4, s / 8];
    let units_per_step: usize = (0..4)
        .map(|i| ch[i + 1] * sides[i] * sides[i])
        .sum::<usize>()
        + ch[4];
    let units_once = ch[0] * s * s;
    let conv = |cin: usize, cout: usize, side: usize| {
        2 * cin as u64 * cout as u64 * k2 * (side * side) as u64
    };
    let retina = conv(3, ch[0], s);
    let mut step0 = 0;
    let mut extra = 0;
    for i in 0..4 {
        let (cin, c, side) = (ch[i], ch[i + 1], sides[i]);
        step0 += conv(cin, c, side);
        let v1_unused = i == 0 && cfg.faithful_v1;
        if cfg.lateral_conv() && !v1_unused {
            extra += conv(c, c, side);
        }
        if cfg.topdown_conv() && i < 3 && !v1_unused {
            // transposed conv: every input pixel of the layer above scatters a k×k kernel
            extra += 2 * ch[i + 2] as u64 * c as u64 * k2 * (sides[i + 1] * sides[i + 1]) as u64;
        }
    }
    let d = ch[4] as u64;
    step0 += 2 * d * cfg.num_classes as u64;
    if cfg.lateral_gap() {
        extra += 2 * d * d;
    }
    let t = cfg.timesteps as u64;
    SizeReport {
        params_by_type: by_type,
        params_total: total,
        unused,
        units_per_step,
        units_once,
        flops_step0: step0,
        flops_per_step: step0 + extra,
        flops_per_image: retina + step0 + (t - 1) * (step0 + extra),
    }
}

/// Size of any model (parameters exclude BatchNorm running statistics, as PyTorch's trainable
/// count does).
pub fn model_size(cfg: &ModelConfig, params: &[ParamInfo]) -> SizeReport {
    match cfg {
        ModelConfig::Blt(c) => blt_size(c, params),
        ModelConfig::RcnnSat(c) => rcnn_size(c, params),
    }
}

/// Size of an rcnn-sat network.
pub fn rcnn_size(cfg: &RcnnSatConfig, params: &[ParamInfo]) -> SizeReport {
    let mut by_type = BTreeMap::new();
    for t in ["bottom_up", "lateral", "top_down", "norm", "readout"] {
        by_type.insert(t.to_string(), 0usize);
    }
    let mut total = 0;
    for p in params.iter().filter(|p| p.kind != ParamKind::Buffer) {
        let n: usize = p.shape.iter().product();
        total += n;
        *by_type
            .entry(connection_type(&p.name).to_string())
            .or_default() += n;
    }
    let mut side = cfg.image_size;
    let mut cin = 3usize;
    let (mut units, mut step0, mut extra, mut once) = (0usize, 0u64, 0u64, 0u64);
    for (i, &(c, k, pool)) in cfg.layers().iter().enumerate() {
        if pool {
            side /= 2;
        }
        units += c * side * side;
        let bu = 2 * (cin * c * k * k * side * side) as u64;
        if i == 0 {
            once += bu; // the image's bottom-up convolution runs once
        } else {
            step0 += bu;
        }
        if cfg.recurrent() {
            extra += 2 * (c * c * k * k * side * side) as u64;
        }
        cin = c;
    }
    step0 += 2 * (cin * cfg.num_classes) as u64;
    let t = cfg.timesteps as u64;
    SizeReport {
        params_by_type: by_type,
        params_total: total,
        unused: Vec::new(),
        units_per_step: units,
        units_once: 0,
        flops_step0: step0 + once,
        flops_per_step: step0 + extra,
        flops_per_image: once + step0 + (t - 1) * (step0 + extra),
    }
}
