//! Models of ventral on burn 0.22: the BLT family of Thorat, Doerig & Kietzmann (2023) with
//! PyTorch-compatible parameter names, parameter I/O by name (safetensors), deterministic
//! initialisation from named random streams, and size accounting.
//!
//! Tensors follow burn 0.22's backend-free `Tensor<D>` with a runtime [`burn::tensor::Device`];
//! the default is the pure-Rust `flex` CPU backend.

pub mod blt;
pub mod cell;
pub mod config;
pub mod convrnn;
pub mod device;
pub mod engine_ops;
pub mod error;
pub mod fast;
pub mod hessian;
pub mod layers;
pub mod model;
pub mod output;
pub mod params;
pub mod precision;
pub mod profile;
pub mod rcnn_sat;
pub mod registry;
pub mod shards;
pub mod size;

pub use blt::Blt;
pub use config::{BltConfig, Interaction, LtPosition, ModelConfig, NormKind};
pub use error::{ModelError, Result};
pub use model::Model;
pub use output::ModelOutput;
pub use precision::Precision;
