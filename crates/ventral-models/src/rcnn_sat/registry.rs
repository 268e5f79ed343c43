//! Registered rcnn-sat networks (`ventral models`).

use super::config::{RcnnSatConfig, RcnnVariant};
use crate::config::ModelConfig;
use crate::registry::Entry;

/// The rcnn-sat entries.
pub fn entries() -> Vec<Entry> {
    let r = |name, description, variant, timesteps| Entry {
        name,
        description,
        config: ModelConfig::RcnnSat(RcnnSatConfig {
            variant,
            image_size: 128,
            num_classes: 565,
            timesteps,
            cumulative_readout: false,
            channels: None,
        }),
    };
    vec![
        r(
            "bl",
            "rcnn-sat BL (Spoerer et al. 2020): 7 recurrent layers, BN per layer and step, T = 8, ecoset",
            RcnnVariant::Bl,
            8,
        ),
        r(
            "b",
            "rcnn-sat B: the BL stack without recurrence",
            RcnnVariant::B,
            1,
        ),
        r(
            "b_k",
            "rcnn-sat B-K: larger kernels (11, 7, 5, 5, 5, 5, 3)",
            RcnnVariant::BK,
            1,
        ),
        r("b_f", "rcnn-sat B-F: double width", RcnnVariant::BF, 1),
        r(
            "b_d",
            "rcnn-sat B-D: double depth (14 layers)",
            RcnnVariant::BD,
            1,
        ),
    ]
}
