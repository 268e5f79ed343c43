//! Model errors: bad configurations and weight files, each naming the file or key.

use thiserror::Error;

/// An error configuring a model or loading its weights.
#[derive(Debug, Error)]
pub enum ModelError {
    #[error("invalid model configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Safetensors(#[from] ventral_core::safetensors::SafetensorsError),
    #[error("{path}: {msg}")]
    Weights { path: String, msg: String },
    #[error("unknown device '{0}' (expected cpu, cuda:N or wgpu, and a build with that feature)")]
    Device(String),
    #[error("device '{name}' is not usable: {msg}")]
    DeviceUnavailable { name: String, msg: String },
    /// Reading a tensor back to the host failed: the backend reported an execution or storage
    /// error (on a GPU: a failed kernel, memory exhausted, a lost device).
    #[error("reading {what} back from the device failed: {msg}")]
    Read { what: String, msg: String },
}

/// Result with [`ModelError`].
pub type Result<T> = std::result::Result<T, ModelError>;
