//! Where the engine's time goes: wall-clock time per kind of operation, off unless switched
//! on (`ventral bench --profile`). When off, a scope costs one relaxed atomic load.
//!
//! Scopes are opened only around top-level, sequential parts of a pass (each of which may run
//! in parallel inside), never inside a parallel region, so the times add up to the pass.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

/// Kinds of operation the engine times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Unfolding inputs for a convolution's forward (or a transposed one's input gradient).
    Im2col,
    /// The matrix products of forwards and input gradients.
    Gemm,
    /// Folding columns back (input gradients; transposed convolutions' forwards).
    Col2im,
    /// Weight gradients (unfold + product + chunk sum).
    WeightGrad,
    /// LayerNorm + ReLU forward and backward.
    Norm,
    /// Max-pool forward and backward.
    Pool,
    /// Bias, combine (`b + l + t`, `b ⊙ (1 + l + t)`) and other elementwise passes.
    Elementwise,
    /// GAP, its lateral, readout, log-softmax.
    Readout,
    /// Layout changes and buffer set-up.
    Setup,
    /// Winograd input transforms `Bᵀ d B` (of inputs, and of output gradients for input
    /// gradients); its products count as `Gemm`, a weight gradient's as `WeightGrad`.
    WinogradIn,
    /// Winograd output transforms `Aᵀ M A`, weight transforms and the weight gradient's
    /// `A dy Aᵀ` and `Gᵀ dU G`.
    Winograd,
}

const OPS: [Op; 11] = [
    Op::Im2col,
    Op::Gemm,
    Op::Col2im,
    Op::WeightGrad,
    Op::Norm,
    Op::Pool,
    Op::Elementwise,
    Op::Readout,
    Op::Setup,
    Op::WinogradIn,
    Op::Winograd,
];

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Im2col => "im2col",
            Op::Gemm => "gemm (forward, input grad)",
            Op::Col2im => "col2im",
            Op::WeightGrad => "weight grad",
            Op::Norm => "layernorm+relu",
            Op::Pool => "max-pool",
            Op::Elementwise => "bias/combine/elementwise",
            Op::Readout => "gap/readout",
            Op::Setup => "layout/buffers",
            Op::WinogradIn => "winograd input transforms",
            Op::Winograd => "winograd other transforms",
        }
    }
}

static ON: AtomicBool = AtomicBool::new(false);
static NS: [AtomicU64; 11] = [const { AtomicU64::new(0) }; 11];

/// Switch timing on or off (and reset the totals).
pub fn enable(on: bool) {
    for n in &NS {
        n.store(0, Ordering::Relaxed);
    }
    ON.store(on, Ordering::Relaxed);
}

/// Seconds spent per kind since [`enable`].
pub fn totals() -> Vec<(&'static str, f64)> {
    OPS.iter()
        .map(|&o| {
            (
                o.name(),
                NS[o as usize].load(Ordering::Relaxed) as f64 * 1e-9,
            )
        })
        .collect()
}

/// Times its own lifetime under `Op` when profiling is on.
#[must_use]
#[derive(Debug)]
pub struct Scope(Option<(Op, Instant)>);

/// Start timing `op` (until the returned scope is dropped).
#[inline]
pub fn scope(op: Op) -> Scope {
    Scope(ON.load(Ordering::Relaxed).then(|| (op, Instant::now())))
}

impl Drop for Scope {
    fn drop(&mut self) {
        if let Some((op, t)) = self.0 {
            NS[op as usize].fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
        }
    }
}
