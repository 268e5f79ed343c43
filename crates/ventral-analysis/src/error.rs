//! Errors of the analysis crate; every message names the file and what is wrong.

use thiserror::Error;

/// An error reading or analysing activations.
#[derive(Debug, Error)]
pub enum AnalysisError {
    #[error("{path}: {msg}")]
    File { path: String, msg: String },
    #[error("{0}")]
    Invalid(String),
    /// Reading an `.npy`/`.npz` failed; the message already names the file (and array).
    #[error(transparent)]
    Npy(#[from] ventral_core::NpyError),
}

/// Result with [`AnalysisError`].
pub type Result<T> = std::result::Result<T, AnalysisError>;

/// An [`AnalysisError::File`].
pub fn file_err(path: impl std::fmt::Display, msg: impl std::fmt::Display) -> AnalysisError {
    AnalysisError::File {
        path: path.to_string(),
        msg: msg.to_string(),
    }
}
