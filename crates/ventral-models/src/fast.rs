//! The CPU fast path for BLT networks: the same model, run by `ventral-engine`'s fused
//! forward/backward (blocked-GEMM convolutions, constant drives computed once, time-stacked
//! weight gradients) instead of burn's autodiff graph.
//!
//! The burn [`Blt`] module stays the model of record (parameters, initialisation, I/O, every
//! other backend); this module hands its parameters to the engine by their PyTorch names and
//! takes back gradients under the same names. Parity with burn's autodiff and with the PyTorch
//! reference is tested in `tests/fast.rs` and `tests/parity.rs`.

use std::collections::BTreeMap;

use burn::module::Module;
pub use ventral_engine::{BltNet, BltSpec, CHUNK, Outputs, Tensors};

use crate::blt::Blt;
use crate::config::{BltConfig, Interaction, NormKind};
use crate::error::{ModelError, Result};
use crate::params::{self, ParamKind};

/// The engine's view of a BLT configuration.
pub fn spec(c: &BltConfig) -> BltSpec {
    let ch = &c.channels;
    BltSpec {
        image_size: c.image_size,
        num_classes: c.num_classes,
        timesteps: c.timesteps,
        channels: [ch[0], ch[1], ch[2], ch[3], ch[4]],
        kernel: c.kernel(),
        lateral: c.lateral_conv(),
        topdown: c.topdown_conv(),
        lateral_gap: c.lateral_gap(),
        multiplicative: c.interaction == Interaction::Multiplicative,
        layer_norm: c.norm == NormKind::Layer,
        classifier_bias: c.classifier_bias,
        faithful_v1: c.faithful_v1,
    }
}

/// A BLT module's parameters in PyTorch layout, by name, for the engine.
pub fn parameters(m: &Blt) -> Result<Tensors> {
    Ok(params::export(m)?
        .into_iter()
        .map(|(k, (_, v))| (k, v))
        .collect())
}

/// Forward pass of `m` on the engine.
///
/// # Shapes
/// - `x`: `[batch, 3, S, S]` (NCHW, normalised), flattened.
pub fn forward(m: &Blt, x: &[f32], batch: usize, areas: bool) -> Result<Outputs> {
    let p = parameters(m)?;
    let net = BltNet::new(&spec(&m.config), &p).map_err(engine_err)?;
    net.forward(x, batch, areas).map_err(engine_err)
}

/// Engine errors as model errors.
pub fn engine_err(e: ventral_engine::EngineError) -> ModelError {
    ModelError::Config(e.to_string())
}

/// Named gradients (PyTorch layout) rearranged to the layout burn stores each parameter in
/// (`Linear` weights transposed), for an optimiser working on the burn module.
pub fn burn_layout<M: Module>(m: &M, mut grads: Tensors) -> BTreeMap<String, Vec<f32>> {
    for info in params::list(m) {
        if info.kind == ParamKind::LinearWeight
            && let Some(g) = grads.get_mut(&info.name)
        {
            let (o, i) = (info.shape[0], info.shape[1]);
            let mut t = vec![0.0f32; g.len()];
            for r in 0..o {
                for c in 0..i {
                    t[c * o + r] = g[r * i + c];
                }
            }
            *g = t;
        }
    }
    grads
}
