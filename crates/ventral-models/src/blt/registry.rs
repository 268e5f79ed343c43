//! Registered BLT networks (`ventral models`).

use super::config::{BltConfig, Interaction, LtPosition, NormKind};
use crate::config::ModelConfig;
use crate::registry::Entry;

fn blt(
    image_size: usize,
    t: usize,
    lateral: bool,
    topdown: bool,
    interaction: Interaction,
) -> BltConfig {
    BltConfig {
        image_size,
        num_classes: 100,
        timesteps: t,
        lateral,
        topdown,
        interaction,
        lt_position: LtPosition::All,
        classifier_bias: false,
        norm: NormKind::Layer,
        faithful_v1: true,
        channels: super::config::default_channels(),
    }
}

/// The BLT entries.
pub fn entries() -> Vec<Entry> {
    use Interaction::*;
    let e = |name, description, c: BltConfig| Entry {
        name,
        description,
        config: ModelConfig::Blt(c),
    };
    let mut tiny = blt(64, 4, true, true, Additive);
    tiny.num_classes = 8;
    tiny.channels = vec![8, 8, 16, 16, 32];
    vec![
        e(
            "blt64_b",
            "BLT_net_64 feedforward control (T = 1)",
            blt(64, 1, false, false, Additive),
        ),
        e(
            "blt64_l",
            "BLT_net_64 lateral only, T = 10 (the paper's main net)",
            blt(64, 10, true, false, Additive),
        ),
        e(
            "blt64_t",
            "BLT_net_64 top-down only, T = 10",
            blt(64, 10, false, true, Additive),
        ),
        e(
            "blt64_lt",
            "BLT_net_64 lateral + top-down, additive, T = 10",
            blt(64, 10, true, true, Additive),
        ),
        e(
            "blt64_lt_mult",
            "BLT_net_64 lateral + top-down, multiplicative, T = 10",
            blt(64, 10, true, true, Multiplicative),
        ),
        e(
            "blt64_lt_last",
            "BLT_net_64 with recurrence only at the GAP layer (LT_position = last)",
            {
                let mut c = blt(64, 10, true, true, Additive);
                c.lt_position = LtPosition::Last;
                c
            },
        ),
        e(
            "blt128_lt",
            "BLT_net_128 lateral + top-down, 5×5 kernels, T = 10",
            blt(128, 10, true, true, Additive),
        ),
        e(
            "blt_tiny",
            "CPU-sized BLT (8 classes, narrow layers, T = 4) for the embedded stimuli",
            tiny,
        ),
    ]
}
