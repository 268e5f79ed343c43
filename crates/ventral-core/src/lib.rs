//! Shared foundations of ventral, used by every other crate and free of any deep-learning backend.
//!
//! - [`atomic`]: atomic file and directory writes (temp in the same directory, fsync, rename,
//!   fsync of the parent), so that an interrupted command never leaves output that looks complete.
//! - [`rng`]: named random streams derived from one root seed with ChaCha8, so results never
//!   depend on thread scheduling.
//! - [`npy`]: reading and writing NumPy `.npy` and `.npz` files, the interchange format of the
//!   PyTorch/NumPy stack.
//! - [`pth`]: PyTorch checkpoints (`torch.save` of a state dict) read without Python, as
//!   [`safetensors::SafeTensors`].
//! - [`tf_checkpoint`]: TensorFlow checkpoints (the V2 tensor bundle of `tf.train.Saver` /
//!   `tf.train.Checkpoint`) read without TensorFlow, as [`safetensors::SafeTensors`].
//! - [`mem`]: the memory a declared size is checked against before allocating
//!   (`VENTRAL_MAX_MEMORY` or `MemAvailable`).
//! - [`hash`]: BLAKE3 helpers for data hashes saved beside every artefact.
//! - [`stats`]: correlations (Pearson, Spearman, Kendall), medians, percentiles and Student-t
//!   intervals shared by the analysis crates.

pub mod atomic;
pub mod fixtures;
pub mod hash;
pub mod mem;
pub mod npy;
pub mod pth;
pub mod rng;
pub mod safetensors;
pub mod stats;
pub mod tf_checkpoint;

pub use atomic::{AtomicDir, write_atomic, write_bytes_atomic};
pub use npy::{NpyArray, NpyData, NpyError};
