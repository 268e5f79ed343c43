//! The BLT family (Thorat, Doerig & Kietzmann 2023; Spoerer et al.): bottom-up, lateral and
//! top-down convolutions, additive or multiplicative, unrolled over time steps. Its
//! configuration, network, size accounting and registry entries live here; the rest of the
//! crate reaches it through `ModelConfig`, `Model`, `size::model_size` and `registry::entries`.

pub mod config;
mod network;
pub mod registry;
pub mod size;

pub use config::{BltConfig, Interaction, LtPosition, NormKind};
pub use network::*;
