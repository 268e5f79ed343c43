//! Size of rcnn-sat networks.

use std::collections::BTreeMap;

use super::config::RcnnSatConfig;
use crate::params::{ParamInfo, ParamKind};
use crate::size::{SizeReport, connection_type};

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
