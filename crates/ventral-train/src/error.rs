//! Training errors.

use thiserror::Error;

/// An error in training or recording. Messages name the file or key at fault.
#[derive(Debug, Error)]
pub enum TrainError {
    #[error("{0}")]
    Config(String),
    #[error("{path}: {msg}")]
    File { path: String, msg: String },
    #[error(transparent)]
    Model(#[from] ventral_models::ModelError),
    #[error(transparent)]
    Data(#[from] ventral_data::DataError),
    #[error(transparent)]
    Npy(#[from] ventral_core::NpyError),
    #[error(transparent)]
    Safetensors(#[from] ventral_core::safetensors::SafetensorsError),
    #[error("training diverged: {0}")]
    Diverged(String),
    #[error("interrupted by a signal; checkpoint written to {0}")]
    Interrupted(String),
}

/// Result with [`TrainError`].
pub type Result<T> = std::result::Result<T, TrainError>;

/// A [`TrainError::File`] from any displayable error.
pub fn file_err(path: impl std::fmt::Display, e: impl std::fmt::Display) -> TrainError {
    TrainError::File {
        path: path.to_string(),
        msg: e.to_string(),
    }
}
