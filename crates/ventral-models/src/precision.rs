//! Mixed precision on burn's engine: PyTorch's `torch.autocast(dtype=torch.bfloat16)`
//! semantics for every model family.
//!
//! Inside [`autocast`], every convolution (2-D and transposed) and every linear layer of the
//! models computes in bfloat16 — its input, weight and bias cast to bf16, its output cast back
//! to float32 — and everything else stays float32: normalisations, activations, the recurrent
//! cells' gates and sums, pooling, softmax and the loss. The parameters themselves stay float32
//! ("master weights"): the casts are autodiff operations, so the gradients arrive in float32
//! at the float32 parameters and the optimiser updates those. Checkpoints are unchanged.
//!
//! This is what makes a GPU's bf16 tensor cores do the convolutions (burn's CUDA backend); on
//! the CPU (burn-flex converts bf16 through float32) it only costs, and exists there for the
//! tests. The native CPU engine has its own bf16 path with the same semantics
//! (`ventral_engine::bf16`, `BltNet::set_bf16`: AMX tiles where the CPU has them), which the
//! training loop and `ventral bench` use for a BLT on `cpu` with precision bf16.

use std::cell::Cell;

use burn::module::{Module, ModuleMapper, Param};
use burn::nn::Linear;
use burn::nn::conv::{Conv2d, ConvTranspose2d};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{FloatDType, Tensor};

/// The arithmetic of training and evaluation on burn's engine (`[train] precision`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// Float32 throughout (the default; what `record` computes).
    #[default]
    F32,
    /// Convolutions and linear layers in bfloat16, the rest float32 ([`autocast`]).
    Bf16,
}

impl Precision {
    /// `f32` or `bf16` (an error message naming the value otherwise).
    pub fn parse(name: &str) -> std::result::Result<Self, String> {
        match name {
            "f32" | "fp32" | "float32" => Ok(Self::F32),
            "bf16" | "bfloat16" => Ok(Self::Bf16),
            other => Err(format!(
                "unknown precision '{other}': expected 'f32' or 'bf16'"
            )),
        }
    }

    /// The name [`Self::parse`] reads.
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::Bf16 => "bf16",
        }
    }

    /// What this precision means on the device named `name`, where that differs from its
    /// name: on CUDA, float32 convolutions and matrix products run on TF32 tensor cores
    /// (cubek-matmul stages float32 operands as tf32 in every tensor-core routine, with no
    /// switch), as PyTorch's `allow_tf32`. Measured on an H200: gradients of BLT_net_64 within
    /// 5.3e-2 relative L2 of exact float32, the size `scripts/tf32_emulation.py` gives
    /// (docs/performance.md). And bf16 on a CPU with neither AMX tiles nor AVX512-BF16 (or
    /// with them switched off: `VENTRAL_NO_AMX`, `VENTRAL_NO_DPBF16`, `VENTRAL_SIMD` below
    /// `avx512`): the float32 kernels on rounded operands — autocast's numerics, at float32's
    /// speed less the rounding.
    pub fn device_note(self, name: &str) -> Option<&'static str> {
        let cuda = name == "cuda" || name.starts_with("cuda:");
        if cuda && self == Self::F32 {
            return Some(
                "on CUDA, burn's float32 convolutions and matrix products run on TF32 tensor cores \
                 (10-bit mantissa, float32 accumulation; no switch turns it off): results match \
                 PyTorch's tf32 mode, with gradients within about 5 % relative L2 of exact float32 \
                 (docs/performance.md)",
            );
        }
        (name == "cpu" && self == Self::Bf16 && ventral_engine::bf16::bf16_unit().is_none())
            .then_some(
                "bf16 on this CPU: it has neither AMX tiles nor AVX512-BF16 dot products (or \
                 VENTRAL_NO_AMX / VENTRAL_NO_DPBF16 / VENTRAL_SIMD turned them off), so \
                 convolutions and linear layers run the float32 kernels on bf16-rounded operands \
                 — PyTorch autocast's numerics, but slower than precision f32, not faster",
            )
    }

    /// Whether `device` (named `name` in the message) can compute in this precision: burn
    /// reports bf16 as storable but not computable on some devices (many Vulkan drivers), where
    /// computing in it would give garbage — refused here instead.
    pub fn check(
        self,
        device: &burn::tensor::Device,
        name: &str,
    ) -> std::result::Result<(), String> {
        match self.dtype() {
            Some(dt) if !device.supports_dtype(dt) => Err(format!(
                "device '{name}' has no {} arithmetic (burn reports the type as not generally supported there); use precision f32 on it",
                self.name()
            )),
            _ => Ok(()),
        }
    }

    /// The compute type of convolutions and linear layers.
    fn dtype(self) -> Option<FloatDType> {
        match self {
            Self::F32 => None,
            Self::Bf16 => Some(FloatDType::BF16),
        }
    }
}

thread_local! {
    /// The compute type of convolutions and linear layers on this thread (`None`: float32).
    static AUTOCAST: Cell<Option<FloatDType>> = const { Cell::new(None) };
}

/// Resets the thread's autocast type when dropped (also on a panic).
struct Restore(Option<FloatDType>);

impl Drop for Restore {
    fn drop(&mut self) {
        AUTOCAST.with(|a| a.set(self.0));
    }
}

/// Run `f` (a model's forward pass) with its convolutions and linear layers in `precision`
/// (see the module docs). Applies to the calling thread only; nests.
pub fn autocast<R>(precision: Precision, f: impl FnOnce() -> R) -> R {
    let _restore = Restore(AUTOCAST.with(|a| a.replace(precision.dtype())));
    f()
}

/// The compute type of convolutions and linear layers here, if not float32.
pub(crate) fn active() -> Option<FloatDType> {
    AUTOCAST.with(Cell::get)
}

/// Casts every float parameter of a module (an autodiff operation: gradients flow back to the
/// float32 original).
struct CastParams(FloatDType);

impl ModuleMapper for CastParams {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let dt = self.0;
        param.map(|t| t.cast(dt))
    }
}

/// Run a layer's forward in the autocast type: module and input cast, output back to float32.
fn layer<M: Module, const D: usize, const E: usize>(
    m: &M,
    x: Tensor<D>,
    f: impl FnOnce(&M, Tensor<D>) -> Tensor<E>,
) -> Tensor<E> {
    match active() {
        None => f(m, x),
        Some(dt) => {
            let low = m.clone().map(&mut CastParams(dt));
            f(&low, x.cast(dt)).cast(FloatDType::F32)
        }
    }
}

/// `Conv2d::forward` under [`autocast`].
///
/// # Shapes
/// - `x`: `[B, Ci, H, W]` → `[B, Co, Ho, Wo]`.
pub fn conv2d(m: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    layer(m, x, |m, x| m.forward(x))
}

/// `ConvTranspose2d::forward` under [`autocast`].
///
/// # Shapes
/// - `x`: `[B, Ci, H, W]` → `[B, Co, Ho, Wo]`.
pub fn conv_transpose2d(m: &ConvTranspose2d, x: Tensor<4>) -> Tensor<4> {
    layer(m, x, |m, x| m.forward(x))
}

/// `Linear::forward` under [`autocast`].
///
/// # Shapes
/// - `x`: `[B, In]` → `[B, Out]`.
pub fn linear(m: &Linear, x: Tensor<2>) -> Tensor<2> {
    layer(m, x, |m, x| m.forward(x))
}

/// burn's `conv2d` in `dt`: operands cast to it, the result back to float32 (the engine's
/// float32 kernels never see bf16).
pub(crate) fn conv2d_in(
    dt: FloatDType,
    x: Tensor<4>,
    w: Tensor<4>,
    b: Option<Tensor<1>>,
    options: ConvOptions<2>,
) -> Tensor<4> {
    burn::tensor::module::conv2d(x.cast(dt), w.cast(dt), b.map(|b| b.cast(dt)), options)
        .cast(FloatDType::F32)
}

/// `x · w` under [`autocast`].
///
/// # Shapes
/// - `x`: `[B, In]`, `w`: `[In, Out]` → `[B, Out]`.
pub(crate) fn matmul(x: Tensor<2>, w: Tensor<2>) -> Tensor<2> {
    match active() {
        Some(dt) => x.cast(dt).matmul(w.cast(dt)).cast(FloatDType::F32),
        None => x.matmul(w),
    }
}

#[cfg(test)]
mod tests {
    use super::Precision;

    #[test]
    fn float32_on_cuda_is_noted_as_tf32() {
        for name in ["cuda", "cuda:0", "cuda:3"] {
            let note = Precision::F32.device_note(name).unwrap();
            assert!(note.contains("TF32"), "{note}");
            assert!(Precision::Bf16.device_note(name).is_none());
        }
        for name in ["cpu", "flex", "wgpu", "wgpu:1", "cudax"] {
            assert!(Precision::F32.device_note(name).is_none(), "{name}");
        }
    }

    #[test]
    fn bf16_on_a_cpu_without_bf16_units_is_noted_as_slower() {
        let note = Precision::Bf16.device_note("cpu");
        assert_eq!(note.is_some(), ventral_engine::bf16::bf16_unit().is_none());
        if let Some(n) = note {
            assert!(n.contains("AMX") && n.contains("slower"), "{n}");
        }
        for name in ["cuda", "cuda:1", "wgpu"] {
            assert!(Precision::Bf16.device_note(name).is_none(), "{name}");
        }
    }
}
