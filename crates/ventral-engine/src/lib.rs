//! ventral's CPU training engine: convolution kernels on blocked GEMM (the `gemm` crate's
//! run-time-dispatched AVX-512 / AVX2+FMA micro-kernels) in a channel-major `[C][B][H][W]`
//! layout, fused LayerNorm + ReLU, max-pool with indices, and the BLT network's forward and
//! backward pass over its explicit time loop.
//!
//! Framework-free (no deep-learning backend): `ventral-models` binds it to a `Blt` module's
//! parameters by their PyTorch names, and training uses it as the CPU fast path for BLT
//! networks. Exactness is checked against burn's autodiff and PyTorch's reference (see the
//! tests in `ventral-models`).

pub mod act;
mod amx_conv;
pub mod bf16;
pub mod blt;
pub mod conv;
pub mod depthwise;
pub mod kernel;
pub mod lanes;
pub mod mat;
pub mod memory;
pub mod ops;
pub mod profile;
pub mod simd;
pub mod upsample;
pub mod winograd;

pub use blt::{BltNet, BltSpec, CHUNK, Outputs, Tensors};

/// Run `f` on a worker thread of rayon's global pool, the caller waiting (directly when it is
/// one already). Every parallel pass inside then starts from a worker: a pass too small to
/// split (`with_min_len`, one chunk) runs inline instead of being handed from the caller to a
/// worker and back — a wake-up and a sleep per operation, a cost that shows in ConvRNN steps
/// of many small tensors. `f` must not wait on other threads that need the pool (with one
/// rayon thread nothing would be left to run them): give it computation, not I/O.
pub fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        return f();
    }
    rayon::join(f, || ()).0
}

/// Errors of the engine (bad parameters or inputs for a network).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("engine: {0}")]
    Spec(String),
    #[error("engine: {0}")]
    Param(String),
    #[error("engine: {0}")]
    Input(String),
}

pub type Result<T> = std::result::Result<T, EngineError>;

/// Floats a parallel task of a memory-bound pass (copies, padding, unfolding, elementwise)
/// handles at least: below this, handing work to another thread costs more than it saves
/// (a ConvRNN's 4 × 4 and 2 × 2 maps gave rayon tasks of a few hundred floats).
const PAR_MIN_FLOATS: usize = 1 << 15;

/// Items of `item` floats each that one parallel task takes at least (rayon's `with_min_len`):
/// small passes run on the calling thread, large ones split as before. Results do not depend
/// on it (every item is computed on its own).
pub(crate) fn min_items(item: usize) -> usize {
    (PAR_MIN_FLOATS / item.max(1)).max(1)
}

/// Tasks of equal work over `n` blocks kept in groups of at most `most` (a group's operands
/// stay in cache while its blocks run), each group cut into `splits` slices of another axis of
/// `m` items: `(group, groups, splits)`. The groups all hold `group` blocks — the fewest
/// groups that divide `n` — and `groups × splits` is at least `want` and, where `m` allows, a
/// multiple of `threads`. Tasks are atomic: with 6 of 16 blocks (3, 3, 3, 3, 3, 1) on two
/// threads one ran 9 blocks while the other waited after 7, 12 % of the call lost (bf16
/// convolutions of BLT_net_64's IT, 512 channels; see `docs/performance.md`, session 63).
// Used by the x86-64 bf16 kernels only (`amx_conv`), tested everywhere.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) fn balanced_tasks(
    n: usize,
    most: usize,
    m: usize,
    (want, threads): (usize, usize),
) -> (usize, usize, usize) {
    let n = n.max(1);
    let mut groups = n.div_ceil(most.clamp(1, n));
    while !n.is_multiple_of(groups) {
        groups += 1;
    }
    let m = m.max(1);
    let mut splits = want.div_ceil(groups).clamp(1, m);
    while splits < m && !(groups * splits).is_multiple_of(threads.max(1)) {
        splits += 1;
    }
    (n / groups, groups, splits)
}

#[cfg(test)]
mod tests {
    use super::balanced_tasks;

    #[test]
    fn tasks_are_equal_and_fill_the_threads() {
        // BLT_net_64's IT lateral in bf16: 16 blocks of output channels, 3 per group by cache.
        assert_eq!(balanced_tasks(16, 3, 32, (4, 2)), (2, 8, 1));
        // Its bottom-up: 7 per group → 4 groups of 4.
        assert_eq!(balanced_tasks(16, 7, 32, (4, 2)), (4, 4, 1));
        // All blocks in one group: split the pixels.
        assert_eq!(balanced_tasks(8, 8, 512, (4, 2)), (8, 1, 4));
        // Odd counts: 5 blocks → 5 groups of 1, split twice for two threads.
        assert_eq!(balanced_tasks(5, 3, 10, (4, 2)), (1, 5, 2));
        // Three threads: 2 groups → 3 splits each.
        assert_eq!(balanced_tasks(4, 2, 100, (6, 3)), (2, 2, 3));
        // Nothing to split: one task.
        assert_eq!(balanced_tasks(1, 1, 1, (4, 2)), (1, 1, 1));
        for n in 1..40 {
            for most in 1..20 {
                for threads in 1..5 {
                    let (g, gs, s) = balanced_tasks(n, most, 64, (2 * threads, threads));
                    assert_eq!(g * gs, n, "{n} {most}");
                    assert!(g <= most.max(1) || g == 1, "{n} {most}");
                    assert!(gs * s >= 2 * threads && (gs * s) % threads == 0);
                }
            }
        }
    }
}
