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
