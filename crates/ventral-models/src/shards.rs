//! Data-parallel shards of a CPU training batch on burn's autodiff.
//!
//! A ConvRNN step on the CPU is hundreds of small operations (8 × 8 to 2 × 2 maps, a few
//! dozen channels, each gate its own tensor): too small for one operation to keep two cores
//! busy, so a step on two threads ran no faster than on one (measured on `rgc_shallow_cpu`
//! and `gru_shallow_cpu`, batch 32). Cutting the batch into shards of [`SHARD_IMAGES`]
//! images, each run forward and backward on its own copy of the model (its own autodiff
//! graph) in parallel, and adding their gradients gives the same gradient — the loss is a
//! mean over images, each shard's share weighted by its size — with every core busy.
//!
//! The number of shards depends on the batch size only, never on the thread count, so a run
//! gives the same bits on any machine (shards run one after another on one thread). Models
//! whose images interact in a batch (BatchNorm's batch statistics) are never sharded, nor
//! are batches on a GPU (one large batch is what it wants).

use std::collections::BTreeMap;
use std::ops::Range;

use burn::module::{Module, ModuleVisitor};
use burn::tensor::{Device, Tensor};
use rayon::prelude::*;

use crate::Model;
use crate::error::Result;

/// Images per shard: a batch of `n` is cut into `⌊n / SHARD_IMAGES⌋` shards of equal size (the
/// first `n mod shards` one image larger). Measured on the ConvRNN presets at batch 32 (two
/// shards of 16 on two threads): training 1.2–1.6× the unsharded step.
pub const SHARD_IMAGES: usize = 16;

/// Whether images of a batch interact in `model`'s forward pass (a BatchNorm anywhere: its
/// batch statistics), so that the batch cannot be cut into shards.
pub fn batch_coupled(model: &Model) -> bool {
    struct Find(bool);
    impl ModuleVisitor for Find {
        fn enter_module(&mut self, _name: &str, container_type: &str) {
            self.0 |= container_type.contains("BatchNorm");
        }
    }
    let mut f = Find(false);
    model.visit(&mut f);
    f.0
}

/// The shards of a batch of `n` images: contiguous ranges, in order. One range (the whole
/// batch) unless the device is the CPU, the engine's operations are on
/// ([`crate::engine_ops::enabled`]; `--engine burn` runs burn alone), the model's images do not
/// interact ([`batch_coupled`]) and the batch holds at least two shards' worth.
pub fn ranges(n: usize, model: &Model, device: &Device) -> Vec<Range<usize>> {
    let k = n / SHARD_IMAGES;
    if k < 2
        || !crate::engine_ops::enabled()
        || !crate::engine_ops::on_flex(device)
        || batch_coupled(model)
    {
        return std::iter::once(0..n).collect();
    }
    split(n, k)
}

/// `n` cut into `k` contiguous ranges, the first `n mod k` one longer.
fn split(n: usize, k: usize) -> Vec<Range<usize>> {
    let (q, r) = (n / k, n % k);
    let mut start = 0;
    (0..k)
        .map(|i| {
            let len = q + usize::from(i < r);
            let s = start..start + len;
            start += len;
            s
        })
        .collect()
}

/// Run `f` on every shard in parallel, each with its own fork of `model` (fresh autodiff leaves,
/// so burn keeps one graph per shard instead of merging them through the shared parameters),
/// the shard's images (`x`'s rows) and its range. Results in shard order. A single shard (the
/// whole batch) runs on `model` and `x` themselves: nothing to fork or cut.
///
/// # Shapes
/// - `x`: `[B, …]`, cut along its first axis.
pub fn map<R: Send, E: Send>(
    model: &Model,
    device: &Device,
    x: &Tensor<4>,
    shards: &[Range<usize>],
    f: impl Fn(&Model, Tensor<4>, Range<usize>) -> std::result::Result<R, E> + Sync,
) -> std::result::Result<Vec<R>, E> {
    if let [r] = shards {
        return Ok(vec![f(model, x.clone(), r.clone())?]);
    }
    shards
        .par_iter()
        .map(|r| {
            let m = model.clone().fork(device);
            f(&m, x.clone().slice([r.clone()]), r.clone())
        })
        .collect()
}

/// Every parameter's gradient in `grads`, by its name (as [`crate::params`] names it), in the
/// layout burn stores the parameter in: what an optimiser step takes as named gradients.
/// Parameters without a gradient are left out.
pub fn named_grads(
    model: &Model,
    grads: &burn::tensor::Gradients,
) -> Result<BTreeMap<String, Vec<f32>>> {
    crate::params::gradients_burn_layout(model, grads)
}

/// Add the shards' named gradients, in shard order, into the first.
pub fn sum(parts: Vec<BTreeMap<String, Vec<f32>>>) -> BTreeMap<String, Vec<f32>> {
    let mut it = parts.into_iter();
    let mut acc = it.next().unwrap_or_default();
    for g in it {
        for (name, v) in g {
            match acc.get_mut(&name) {
                Some(a) if a.len() == v.len() => a.iter_mut().zip(&v).for_each(|(a, b)| *a += b),
                _ => {
                    acc.insert(name, v);
                }
            }
        }
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_covers_the_batch_in_order() {
        assert_eq!(split(32, 2), vec![0..16, 16..32]);
        assert_eq!(split(35, 2), vec![0..18, 18..35]);
        assert_eq!(split(50, 3), vec![0..17, 17..34, 34..50]);
    }

    #[test]
    fn sums_in_shard_order() {
        let g = |v: f32| BTreeMap::from([("a".to_string(), vec![v, 2.0 * v])]);
        let s = sum(vec![g(1.0), g(2.0), g(4.0)]);
        assert_eq!(s["a"], vec![7.0, 14.0]);
    }
}
