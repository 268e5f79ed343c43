//! Brain comparison for ventral, without a deep-learning backend: BrainIO data assemblies
//! (netCDF-4, read and written in pure Rust). Predictivity, ceilings, OST and RSA follow.

pub mod assembly;
pub mod behaviour;
pub mod ceiling;
pub mod cv;
pub mod dual;
pub mod error;
pub mod features;
pub mod logistic;
pub mod numpy_rng;
pub mod ost;
pub mod plots;
pub mod predictivity;
pub mod recordings;
pub mod regression;
pub mod rsa;
pub use ventral_core::stats;
pub mod stimulus_set;
pub mod synth;
pub mod tables;
pub mod tf_random;

pub use assembly::{Assembly, Coord, CoordValues};
pub use error::{NeuralError, Result};
pub use stimulus_set::StimulusSet;
