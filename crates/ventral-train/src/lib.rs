//! Training and recording for ventral: the training loop with a loss at every time step, the
//! optimisers (PyTorch semantics, state saved by parameter name), schedules, checkpoints with
//! exact resume, the NaN guard, metrics, and activation recording to npz.

pub mod config;
pub mod error;
mod exact;
pub mod optim;
pub mod plots;
pub mod record;
pub mod sgd_dynamics;
pub mod sweep;
pub mod train;

pub use error::{Result, TrainError};
