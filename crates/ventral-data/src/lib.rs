//! Image datasets for ventral: readers for the formats users have (ImageFolder, MiniEcoset
//! HDF5, CIFAR binary, npz), the packed memory-mapped format, the training loader with
//! deterministic augmentation, and the embedded synthetic "objects in clutter" stimulus set.
//!
//! No deep-learning backend: batches are plain `f32` NCHW buffers.

pub mod augment;
pub mod error;
pub mod image_ops;
pub mod loader;
pub mod pack;
pub mod packed;
pub mod readers;
pub mod stimuli;

pub use error::{DataError, Result};

pub use loader::{Batch, Loader, LoaderConfig};
pub use pack::{InputFormat, PackOptions, pack};
pub use packed::{Manifest, Normalization, PackedDataset, find_splits};
