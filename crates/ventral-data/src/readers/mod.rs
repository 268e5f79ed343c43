//! Readers for the image formats users have; each presents its input as a
//! [`crate::pack::SourceSet`].

pub mod cifar;
pub mod hdf5;
pub mod imagefolder;
pub mod npz;
