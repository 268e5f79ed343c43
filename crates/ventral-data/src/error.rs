//! Errors of the data crate. Every error names the file and says what is wrong.

use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;
use ventral_core::NpyError;

/// An error reading, writing or validating a dataset.
#[derive(Debug, Error)]
pub enum DataError {
    /// The file exists but its contents are not what was expected.
    #[error("{}: {msg}", path.display())]
    Invalid { path: PathBuf, msg: String },
    /// The file could not be read or written.
    #[error("{}: {error}", path.display())]
    Io {
        path: PathBuf,
        /// The I/O error, in the message (not a separate `source`, so error chains print it once).
        error: io::Error,
    },
    #[error(transparent)]
    Npy(#[from] NpyError),
    /// A request that cannot be carried out (bad option combination, nothing to do...).
    #[error("{0}")]
    Usage(String),
}

/// Result with [`DataError`].
pub type Result<T> = std::result::Result<T, DataError>;

/// An [`DataError::Invalid`] for `path`.
pub fn invalid(path: impl AsRef<Path>, msg: impl Into<String>) -> DataError {
    DataError::Invalid {
        path: path.as_ref().to_path_buf(),
        msg: msg.into(),
    }
}

/// A closure turning an `io::Error` into a [`DataError::Io`] for `path`.
pub fn io_at(path: impl AsRef<Path>) -> impl FnOnce(io::Error) -> DataError {
    let path = path.as_ref().to_path_buf();
    move |error| DataError::Io { path, error }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_name_the_file_and_say_the_cause_once() {
        let e = io_at("/x/y.npy")(io::Error::new(io::ErrorKind::NotFound, "no such file"));
        assert_eq!(e.to_string(), "/x/y.npy: no such file");
        // Not repeated as a source: an error chain (anyhow's `{:#}`) prints it once.
        assert!(std::error::Error::source(&e).is_none());
    }
}
