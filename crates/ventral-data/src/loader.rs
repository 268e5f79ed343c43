//! The training loader: shuffled batches of `f32` NCHW images normalised with the manifest's
//! statistics, augmented deterministically per (seed, epoch, image index), assembled in
//! parallel and prefetched on a background thread.
//!
//! Batch `b` of epoch `e` is a pure function of (dataset, config, e, b): a resumed run that asks
//! for epoch `e` from batch `b` gets exactly the batches an uninterrupted run would have seen.

use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, bounded};
use rand::RngExt;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use ventral_core::rng::stream;

use crate::augment::{AugmentConfig, augment};
use crate::packed::PackedDataset;

/// Loader settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoaderConfig {
    pub batch_size: usize,
    /// Shuffle the order every epoch (stream `"shuffle"`, `[epoch]`).
    pub shuffle: bool,
    /// Drop the last incomplete batch.
    pub drop_last: bool,
    /// Root seed.
    pub seed: u64,
    /// Augmentations (stream `"augment"`, `[epoch, image index]`); `None` for evaluation.
    pub augment: Option<AugmentConfig>,
    /// Batches prepared ahead on the background thread.
    pub prefetch: usize,
}

impl Default for LoaderConfig {
    fn default() -> Self {
        Self {
            batch_size: 32,
            shuffle: true,
            drop_last: false,
            seed: 0,
            augment: None,
            prefetch: 2,
        }
    }
}

/// One batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub epoch: usize,
    /// Batch number within the epoch.
    pub index: usize,
    /// `[n, c, h, w]`.
    pub shape: [usize; 4],
    /// Normalised pixels, NCHW.
    pub images: Vec<f32>,
    pub labels: Vec<i64>,
    /// Dataset indices of the images.
    pub indices: Vec<usize>,
}

/// Batches over a packed split.
#[derive(Debug, Clone)]
pub struct Loader {
    ds: Arc<PackedDataset>,
    cfg: LoaderConfig,
    mean: Vec<f32>,
    std: Vec<f32>,
}

impl Loader {
    /// A loader normalising with the manifest's `normalization` statistics.
    pub fn new(ds: Arc<PackedDataset>, cfg: LoaderConfig) -> Self {
        let (mean, std) = ds.manifest().normalization.f32();
        Self::with_normalization(ds, cfg, mean, std)
    }

    /// A loader with explicit per-channel mean/std (0–1 scale).
    pub fn with_normalization(
        ds: Arc<PackedDataset>,
        mut cfg: LoaderConfig,
        mean: Vec<f32>,
        std: Vec<f32>,
    ) -> Self {
        cfg.batch_size = cfg.batch_size.max(1);
        Self { ds, cfg, mean, std }
    }

    /// The dataset.
    pub fn dataset(&self) -> &Arc<PackedDataset> {
        &self.ds
    }

    /// The configuration.
    pub fn config(&self) -> &LoaderConfig {
        &self.cfg
    }

    /// Batches per epoch.
    pub fn num_batches(&self) -> usize {
        let (n, b) = (self.ds.len(), self.cfg.batch_size);
        if self.cfg.drop_last {
            n / b
        } else {
            n.div_ceil(b)
        }
    }

    /// The image order of `epoch`.
    pub fn order(&self, epoch: usize) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..self.ds.len()).collect();
        if self.cfg.shuffle {
            let mut rng = stream(self.cfg.seed, "shuffle", &[epoch as u64]);
            for i in (1..idx.len()).rev() {
                let j = rng.random_range(0..=i);
                idx.swap(i, j);
            }
        }
        idx
    }

    /// Build batch `b` of `epoch` (synchronously; `order` is `self.order(epoch)`).
    pub fn batch_from_order(&self, order: &[usize], epoch: usize, b: usize) -> Batch {
        let bs = self.cfg.batch_size;
        let indices: Vec<usize> =
            order[(b * bs).min(order.len())..((b + 1) * bs).min(order.len())].to_vec();
        let [h, w, c] = self.ds.image_shape();
        let plane = h * w;
        let mut images = vec![0f32; indices.len() * c * plane];
        images
            .par_chunks_mut(c * plane)
            .zip(indices.par_iter())
            .for_each(|(dst, &i)| {
                let src = self.ds.image(i);
                let aug;
                let px = match &self.cfg.augment {
                    Some(a) => {
                        let mut rng = stream(self.cfg.seed, "augment", &[epoch as u64, i as u64]);
                        aug = augment(src, h, w, c, a, &mut rng);
                        &aug[..]
                    }
                    None => src,
                };
                for k in 0..c {
                    let (m, s) = (self.mean[k], self.std[k]);
                    let out = &mut dst[k * plane..(k + 1) * plane];
                    for p in 0..plane {
                        out[p] = (px[p * c + k] as f32 / 255.0 - m) / s;
                    }
                }
            });
        let labels = indices.iter().map(|&i| self.ds.labels()[i]).collect();
        Batch {
            epoch,
            index: b,
            shape: [indices.len(), c, h, w],
            images,
            labels,
            indices,
        }
    }

    /// Batch `b` of `epoch`.
    pub fn batch(&self, epoch: usize, b: usize) -> Batch {
        self.batch_from_order(&self.order(epoch), epoch, b)
    }

    /// Iterate over `epoch` from batch `start`, prefetching on a background thread.
    pub fn epoch(&self, epoch: usize, start: usize) -> BatchIter {
        let (tx, rx) = bounded(self.cfg.prefetch.max(1));
        let me = self.clone();
        let handle = std::thread::spawn(move || {
            let order = me.order(epoch);
            for b in start..me.num_batches() {
                if tx.send(me.batch_from_order(&order, epoch, b)).is_err() {
                    break; // the consumer went away
                }
            }
        });
        BatchIter {
            rx: Some(rx),
            handle: Some(handle),
        }
    }
}

/// Prefetching iterator over batches; dropping it stops the background thread.
#[derive(Debug)]
pub struct BatchIter {
    rx: Option<Receiver<Batch>>,
    handle: Option<JoinHandle<()>>,
}

impl Iterator for BatchIter {
    type Item = Batch;
    fn next(&mut self) -> Option<Batch> {
        self.rx.as_ref()?.recv().ok()
    }
}

impl Drop for BatchIter {
    fn drop(&mut self) {
        self.rx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
