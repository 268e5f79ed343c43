//! Size of BLT networks (parameters by connection type, units, FLOPs).

use std::collections::BTreeMap;

use super::config::BltConfig;
use crate::params::ParamInfo;
use crate::size::{SizeReport, connection_type};

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
