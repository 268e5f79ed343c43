//! Errors of the neural crate; every message names the file and the coordinate or variable.

use thiserror::Error;

/// An error reading, writing or checking neural data.
#[derive(Debug, Error)]
pub enum NeuralError {
    #[error("{path}: {msg}")]
    File { path: String, msg: String },
    /// Inconsistent arguments or data that do not come from one file.
    #[error("{0}")]
    Invalid(String),
}

/// Result with [`NeuralError`].
pub type Result<T> = std::result::Result<T, NeuralError>;

/// A [`NeuralError::File`].
pub fn file_err(path: impl std::fmt::Display, msg: impl std::fmt::Display) -> NeuralError {
    NeuralError::File {
        path: path.to_string(),
        msg: msg.to_string(),
    }
}

/// npy/npz errors already name the file (and the array).
impl From<ventral_core::npy::NpyError> for NeuralError {
    fn from(e: ventral_core::npy::NpyError) -> Self {
        NeuralError::Invalid(e.to_string())
    }
}

/// Plot errors name the output file.
impl From<ventral_report::PlotError> for NeuralError {
    fn from(e: ventral_report::PlotError) -> Self {
        NeuralError::File {
            path: e.path,
            msg: e.msg,
        }
    }
}
