//! ventral's engine kernels inside burn's autodiff: a backend extension (`#[backend_extension]`,
//! burn 0.22) implemented for the Flex CPU backend and for `Autodiff<Flex>` with hand-written
//! backward steps — the 2-D convolution (input, weight and bias gradients on the engine's
//! direct / blocked-GEMM kernels, [`ventral_engine::conv`]) and a fused ELU (one pass forward,
//! one backward, where burn composes six operations and their six backward steps).
//!
//! burn-flex runs a convolution as im2col + GEMM and its backward as a transposed convolution
//! and a convolution over the batch; the engine's kernels for thin layers (≤ 32 channels) and
//! for 8-aligned maps avoid the unfolded input altogether (docs/performance.md). Every model
//! built on burn tensors (the ConvRNN family, rcnn-sat) gets them through [`conv2d`], which takes the
//! engine path where it applies — a Flex device (with or without autodiff), float32, one group,
//! no dilation, a square kernel and equal strides; TensorFlow's `same` for even kernels and for
//! stride 2 (one more zero after the last row and column than before the first) the engine
//! pads itself (`Conv::with_pad_end`), other padding beyond the least of the four sides is
//! added to the input as zeros; 1 × 1 layers (stride 1, unpadded) run each pass as per-image
//! products on the tensors as they lie (`Conv::pointwise`) — and burn's own
//! `conv2d` everywhere else (GPUs, grouped and depthwise convolutions). Same mathematics; float32 sums in a different order (the tests
//! compare both paths and the gradients on random shapes).
//!
//! The engine's layout is channel-major `[C][B][H][W]`; burn's is `[B][C][H][W]`: inputs and
//! outputs are transposed on the way in and out (a copy each, small next to the products).
//! Results do not depend on the number of threads (the engine's reductions run in a fixed
//! order), so training with it stays byte-reproducible.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
/// The engine's pool runner, for training and inference loops ([`ventral_engine::on_pool`]).
pub use ventral_engine::on_pool;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension};
use burn::tensor::ops::{ConvOptions, MaxPoolOptions};
use burn::tensor::{DType, Device, Tensor, TensorData};
use ventral_engine::act::Act;
use ventral_engine::conv::{Conv, Scratch, add_bias, add_bias_nchw, bias_grad_nchw};

/// Process-wide switch (default on): off routes every [`conv2d`] to burn's implementation.
static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turn the engine path of [`conv2d`] on or off for the whole process (benchmarks and tests
/// that compare the two paths).
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// Whether [`conv2d`] may take the engine path.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

thread_local! {
    /// The engine's scratch buffers, kept between calls on this thread (they grow, never
    /// shrink: no allocation churn in the time loop).
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Geometry of an engine convolution: square kernel `k`, stride, padding `pad` before the
/// first row and column and `pad + pad_end` after the last ([`Conv::with_pad_end`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Geom {
    stride: usize,
    pad: usize,
    pad_end: usize,
}

/// ventral's engine operations as burn backend operations (float32 only).
#[backend_extension(Flex, Autodiff)]
pub trait EngineOps: Backend {
    /// `ELU(x) = x` for `x > 0`, `α(eˣ − 1)` otherwise (PyTorch's `nn.ELU`).
    fn engine_elu(x: FloatTensor<Self>, alpha: f64) -> FloatTensor<Self>;

    /// The logistic sigmoid `1 / (1 + e⁻ˣ)`.
    fn engine_sigmoid(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// `tanh x`.
    fn engine_tanh(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// 2 × 2 max-pool with stride 2 and no padding on even-sized maps (PyTorch's
    /// `max_pool2d(x, 2)`: the first maximum of a window wins, NaN propagates).
    ///
    /// # Shapes
    /// - `x`: `[B, C, H, W]` with `H`, `W` even → `[B, C, H/2, W/2]`.
    fn engine_max_pool2x2(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// `y = (a·m₁ + o₁)·p + (b·m₂ + o₂)·q` elementwise: the gated sums of the recurrent cells
    /// (GRU/UGRNN `u·h + (1 − u)·c̃`, the reciprocal gated cell's `(τ·k + a)·h + (γ·k + a)·x`)
    /// as one pass forward and one backward.
    ///
    /// # Shapes
    /// - `a`, `p`, `b`, `q`: the same shape → that shape.
    fn engine_gated_sum(
        a: FloatTensor<Self>,
        p: FloatTensor<Self>,
        b: FloatTensor<Self>,
        q: FloatTensor<Self>,
        k: [f64; 4],
    ) -> FloatTensor<Self>;

    /// `y = conv(x, w) + b` with a square kernel, stride `stride` and zero padding `pad`
    /// before the first row and column and `pad + pad_end` after the last (TensorFlow's `same`
    /// for even kernels: `pad_end = 1`).
    ///
    /// # Shapes
    /// - `x`: `[B, Ci, H, W]`, `w`: `[Co, Ci, k, k]`, `b`: `[Co]` → `[B, Co, Ho, Wo]`.
    fn engine_conv2d(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
        stride: usize,
        pad: usize,
        pad_end: usize,
    ) -> FloatTensor<Self>;

    /// `y = conv(x, w) + b` depthwise (one `k × k` filter per channel), stride 1, zero padding
    /// `pad < k` on every side.
    ///
    /// # Shapes
    /// - `x`: `[B, C, H, W]`, `w`: `[C, 1, k, k]`, `b`: `[C]` → `[B, C, Ho, Wo]`.
    fn engine_depthwise2d(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
        pad: usize,
    ) -> FloatTensor<Self>;
}

/// `conv2d` as burn's, on the engine's kernels where they apply (see the module docs).
///
/// # Shapes
/// - `x`: `[B, Ci, H, W]`, `weight`: `[Co, Ci / groups, kh, kw]`, `bias`: `[Co]` →
///   `[B, Co, Ho, Wo]`.
pub fn conv2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
) -> Tensor<4> {
    let geometry = engine_geometry(&x, &weight, &options);
    let depthwise = depthwise_geometry(&x, &weight, &options);
    let _p = conv_scope(
        &x,
        &weight,
        &options,
        geometry.is_some(),
        depthwise.is_some(),
    );
    if let Some(dt) = crate::precision::active() {
        return crate::precision::conv2d_in(dt, x, weight, bias, options);
    }
    if let Some((pad, extra)) = depthwise {
        let x = pad_extra(x, extra);
        let c = weight.dims()[0];
        let b = bias.unwrap_or_else(|| Tensor::<1>::zeros([c], &weight.device()));
        let out = <Dispatch as EngineOps>::engine_depthwise2d(
            x.into_dispatch(),
            weight.into_dispatch(),
            b.into_dispatch(),
            pad,
        );
        return Tensor::<4>::from_dispatch(out);
    }
    match geometry {
        Some((g, extra)) => {
            let x = pad_extra(x, extra);
            let co = weight.dims()[0];
            let b = bias.unwrap_or_else(|| Tensor::<1>::zeros([co], &weight.device()));
            let out = <Dispatch as EngineOps>::engine_conv2d(
                x.into_dispatch(),
                weight.into_dispatch(),
                b.into_dispatch(),
                g.stride,
                g.pad,
                g.pad_end,
            );
            Tensor::<4>::from_dispatch(out)
        }
        None => burn::tensor::module::conv2d(x, weight, bias, options),
    }
}

/// Asymmetric padding the engine does not take itself (see [`engine_geometry`]): the part
/// beyond it as explicit zeros (autodiff slices it off the input gradient).
fn pad_extra(x: Tensor<4>, extra: [(usize, usize); 2]) -> Tensor<4> {
    if extra == [(0, 0); 2] {
        x
    } else {
        x.pad(extra, burn::tensor::ops::PadMode::Constant(0.0))
    }
}

/// The profile's scope of a convolution ([`crate::profile`]): its kind, shape and operations.
fn conv_scope(
    x: &Tensor<4>,
    w: &Tensor<4>,
    o: &ConvOptions<2>,
    engine: bool,
    depthwise: bool,
) -> crate::profile::Scope {
    use crate::profile as p;
    let kind = match (engine, depthwise) {
        (true, _) => p::CONV_ENGINE,
        (_, true) => p::CONV_DEPTHWISE,
        _ => p::CONV_BURN,
    };
    p::scope(kind, || {
        let [b, ci, h, wd] = x.dims();
        let [co, cig, kh, kw] = w.dims();
        let out = |n: usize, k: usize, a: usize| {
            let (pb, pe) = o.padding[a];
            let span = o.dilation[a] * (k.max(1) - 1) + 1;
            (n + pb + pe).saturating_sub(span) / o.stride[a].max(1) + 1
        };
        let (ho, wo) = (out(h, kh, 0), out(wd, kw, 1));
        let groups = if o.groups > 1 {
            format!(" groups {}", o.groups)
        } else {
            String::new()
        };
        let d = format!(
            "{ci}→{co} {kh}×{kw}/{} on {h}×{wd}{groups}, batch {b}",
            o.stride[0]
        );
        (d, p::conv_flops([b, co, ho, wo], cig, [kh, kw]))
    })
}

/// ELU (`x` for `x > 0`, `α(eˣ − 1)` otherwise) as one fused operation on the Flex CPU
/// device in float32 (backward: `dy` where `y > 0`, `dy·(y + α)` elsewhere — PyTorch's
/// `elu_backward` on the output, slope α at exactly 0); burn's `activation::elu` (a
/// composition of elementwise operations, the same values and slopes) elsewhere.
pub fn elu<const D: usize>(x: Tensor<D>, alpha: f64) -> Tensor<D> {
    let _p = crate::profile::scope(crate::profile::ACTIVATION, Default::default);
    if enabled() && x.dtype() == DType::F32 && on_flex(&x.device()) {
        let y = <Dispatch as EngineOps>::engine_elu(x.into_dispatch(), alpha);
        Tensor::<D>::from_dispatch(y)
    } else {
        // Not `max(x, 0) + α(e^min(x, 0) − 1)`: its derivative at exactly 0 is 1 + α, where
        // PyTorch's is α — and a ConvRNN node whose input is still zero (before the image
        // arrives) sits exactly there.
        burn::tensor::activation::elu(x, alpha)
    }
}

/// The logistic sigmoid as one operation on the engine's vectorised `exp` (within 1.2e-7
/// relative of float64; backward `dy·y(1 − y)` from the output) on the Flex CPU device in
/// float32; burn's `activation::sigmoid` elsewhere.
pub fn sigmoid<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let _p = crate::profile::scope(crate::profile::ACTIVATION, Default::default);
    if enabled() && x.dtype() == DType::F32 && on_flex(&x.device()) {
        Tensor::<D>::from_dispatch(<Dispatch as EngineOps>::engine_sigmoid(x.into_dispatch()))
    } else {
        burn::tensor::activation::sigmoid(x)
    }
}

/// `tanh` as one operation on the engine's vectorised kernel (within 1.3e-7 relative of
/// float64; backward `dy·(1 − y²)` from the output) on the Flex CPU device in float32; burn's
/// `tanh` elsewhere.
pub fn tanh<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let _p = crate::profile::scope(crate::profile::ACTIVATION, Default::default);
    if enabled() && x.dtype() == DType::F32 && on_flex(&x.device()) {
        Tensor::<D>::from_dispatch(<Dispatch as EngineOps>::engine_tanh(x.into_dispatch()))
    } else {
        x.tanh()
    }
}

/// `max_pool2d` as burn's, on the engine's 2 × 2 / stride 2 kernel where it applies (float32
/// on the Flex CPU device, kernel and stride 2, no padding or dilation, even map sizes — then
/// ceil mode changes nothing); burn's `max_pool2d` elsewhere. The engine's backward routes
/// each output gradient to its window's argmax from one byte per output, where burn-flex's
/// general pooling keeps 64-bit indices and scatters through them.
///
/// # Shapes
/// - `x`: `[B, C, H, W]` → `[B, C, Ho, Wo]`.
pub fn max_pool2d(x: Tensor<4>, options: MaxPoolOptions<2>) -> Tensor<4> {
    let _p = crate::profile::scope(crate::profile::POOL, Default::default);
    let [_, _, h, w] = x.dims();
    let fits = enabled()
        && options.kernel_size == [2, 2]
        && options.stride == [2, 2]
        && options.padding == [(0, 0); 2]
        && options.dilation == [1, 1]
        && h > 0
        && w > 0
        && h.is_multiple_of(2)
        && w.is_multiple_of(2)
        && x.dtype() == DType::F32
        && on_flex(&x.device());
    if fits {
        let y = <Dispatch as EngineOps>::engine_max_pool2x2(x.into_dispatch());
        Tensor::<4>::from_dispatch(y)
    } else {
        burn::tensor::module::max_pool2d(x, options)
    }
}

/// `(a·m₁ + o₁)·p + (b·m₂ + o₂)·q` elementwise over tensors of one shape (`k = [m₁, o₁, m₂,
/// o₂]`), as one fused operation on the Flex CPU device in float32 (backward: one pass giving
/// all four gradients); burn's elementwise operations elsewhere. Where `a` and `b` are the
/// same tensor (`u·h + (1 − u)·c̃`), autodiff adds its two gradients.
pub fn gated_sum<const D: usize>(
    (a, p): (Tensor<D>, Tensor<D>),
    (b, q): (Tensor<D>, Tensor<D>),
    k: [f64; 4],
) -> Tensor<D> {
    let _p = crate::profile::scope(crate::profile::GATED_SUM, Default::default);
    let same_shape = a.dims() == p.dims() && a.dims() == b.dims() && a.dims() == q.dims();
    let f32_flex = [&a, &p, &b, &q]
        .iter()
        .all(|t| t.dtype() == DType::F32 && on_flex(&t.device()));
    if enabled() && same_shape && f32_flex {
        let y = <Dispatch as EngineOps>::engine_gated_sum(
            a.into_dispatch(),
            p.into_dispatch(),
            b.into_dispatch(),
            q.into_dispatch(),
            k,
        );
        Tensor::<D>::from_dispatch(y)
    } else {
        (a * k[0] + k[1]) * p + (b * k[2] + k[3]) * q
    }
}

/// Elements per parallel task of the fused elementwise passes.
const EW_CHUNK: usize = 1 << 14;

/// Forward of [`gated_sum`] on Flex tensors.
fn gated_sum_flex(ts: [&FlexTensor; 4], k: [f64; 4]) -> FlexTensor {
    use rayon::prelude::*;
    let dims = ts[0].layout().shape().to_vec();
    let [a, p, b, q] = ts.map(|t| f32_parts(t).1);
    let [m1, o1, m2, o2] = k.map(|v| v as f32);
    let mut y = vec![0.0f32; a.len()];
    y.par_chunks_mut(EW_CHUNK).enumerate().for_each(|(c, y)| {
        let r = c * EW_CHUNK..c * EW_CHUNK + y.len();
        let (a, p, b, q) = (&a[r.clone()], &p[r.clone()], &b[r.clone()], &q[r]);
        for i in 0..y.len() {
            y[i] = (a[i] * m1 + o1) * p[i] + (b[i] * m2 + o2) * q[i];
        }
    });
    FlexTensor::from_data(TensorData::new(y, dims))
}

/// Gradients `[da, dp, db, dq]` of [`gated_sum`] given `dy`; each only when asked for.
fn gated_sum_backward_flex(
    ts: [&FlexTensor; 4],
    dy: &FlexTensor,
    k: [f64; 4],
    want: [bool; 4],
) -> [Option<FlexTensor>; 4] {
    use rayon::prelude::*;
    let dims = ts[0].layout().shape().to_vec();
    let [a, p, b, q] = ts.map(|t| f32_parts(t).1);
    let (_, g) = f32_parts(dy);
    let [m1, o1, m2, o2] = k.map(|v| v as f32);
    let n = g.len();
    let mut out: [Vec<f32>; 4] = std::array::from_fn(|i| vec![0.0f32; if want[i] { n } else { 0 }]);
    let [da, dp, db, dq] = &mut out;
    let chunks = n.div_ceil(EW_CHUNK);
    let (sa, sp, sb, sq) = (
        split_chunks(da, chunks),
        split_chunks(dp, chunks),
        split_chunks(db, chunks),
        split_chunks(dq, chunks),
    );
    sa.into_par_iter()
        .zip(sp)
        .zip(sb)
        .zip(sq)
        .enumerate()
        .for_each(|(c, (((da, dp), db), dq))| {
            let r = c * EW_CHUNK..(c * EW_CHUNK + EW_CHUNK).min(n);
            let (a, p, b, q, g) = (
                &a[r.clone()],
                &p[r.clone()],
                &b[r.clone()],
                &q[r.clone()],
                &g[r],
            );
            gated_term_grads((da, dp), g, (a, p), (m1, o1));
            gated_term_grads((db, dq), g, (b, q), (m2, o2));
        });
    let mut it = out.into_iter();
    std::array::from_fn(|i| {
        let v = it.next().unwrap_or_default();
        want[i].then(|| FlexTensor::from_data(TensorData::new(v, dims.clone())))
    })
}

/// Gradients of one term `(x·m + o)·v` of [`gated_sum`] from `g`: `dx = g·m·v`,
/// `dv = g·(x·m + o)`, each where wanted.
fn gated_term_grads(
    (dx, dv): (Option<&mut [f32]>, Option<&mut [f32]>),
    g: &[f32],
    (x, v): (&[f32], &[f32]),
    (m, o): (f32, f32),
) {
    if let Some(d) = dx {
        d.iter_mut()
            .zip(g.iter().zip(v))
            .for_each(|(d, (&g, &v))| *d = g * m * v);
    }
    if let Some(d) = dv {
        d.iter_mut()
            .zip(g.iter().zip(x))
            .for_each(|(d, (&g, &x))| *d = g * (x * m + o));
    }
}

/// `v` in chunks of [`EW_CHUNK`], or `chunks` times `None` for an empty (not wanted) `v`.
fn split_chunks(v: &mut [f32], chunks: usize) -> Vec<Option<&mut [f32]>> {
    if v.is_empty() {
        (0..chunks).map(|_| None).collect()
    } else {
        v.chunks_mut(EW_CHUNK).map(Some).collect()
    }
}

/// Forward of the 2 × 2 max-pool: the output and each output's argmax (0..4).
fn max_pool_flex(x: &FlexTensor) -> (FlexTensor, Vec<u8>) {
    let (dims, xs) = f32_parts(x);
    let (b, c, h, w) = (dims[0], dims[1], dims[2], dims[3]);
    let n = b * c * (h / 2) * (w / 2);
    let (mut y, mut idx) = (vec![0.0f32; n], vec![0u8; n]);
    ventral_engine::ops::maxpool_forward(&xs, h, w, &mut y, &mut idx);
    (flex(y, [b, c, h / 2, w / 2]), idx)
}

/// `y = act(x)` on a Flex tensor (same shape), on the engine's vectorised activations
/// (`ventral_engine::act`).
fn act_flex(mut x: FlexTensor, act: Act) -> FlexTensor {
    // An input no one else holds (inference, mostly) is overwritten: no new buffer.
    let l = x.layout();
    let own = x.is_unique()
        && x.dtype() == DType::F32
        && l.is_contiguous()
        && l.start_offset() == 0
        && x.storage::<f32>().len() == l.num_elements();
    if own {
        ventral_engine::act::forward_in_place(act, x.storage_mut::<f32>());
        return x;
    }
    let (dims, xs) = f32_parts(&x);
    let mut y = vec![0.0f32; xs.len()];
    ventral_engine::act::forward(act, &xs, &mut y);
    FlexTensor::from_data(TensorData::new(y, dims))
}

/// `dx` of `act` from its output `y` and `dy`.
fn act_backward_flex(y: &FlexTensor, dy: &FlexTensor, act: Act) -> FlexTensor {
    let (dims, ys) = f32_parts(y);
    let (_, dys) = f32_parts(dy);
    let mut dx = vec![0.0f32; ys.len()];
    ventral_engine::act::backward(act, &ys, &dys, &mut dx);
    FlexTensor::from_data(TensorData::new(dx, dims))
}

/// Whether [`conv2d`] runs this convolution on the engine (else on burn's `conv2d`).
pub fn uses_engine(x: &Tensor<4>, weight: &Tensor<4>, options: &ConvOptions<2>) -> bool {
    engine_geometry(x, weight, options).is_some()
}

/// Whether [`conv2d`] runs this convolution on the engine's depthwise kernels
/// ([`ventral_engine::depthwise`]).
pub fn uses_depthwise(x: &Tensor<4>, weight: &Tensor<4>, options: &ConvOptions<2>) -> bool {
    depthwise_geometry(x, weight, options).is_some()
}

/// The engine geometry of a convolution (its padding before the first row and column the
/// least of the four sides; after the last, more by the same on both axes where that is all
/// the rest: TensorFlow's `same` for even kernels or stride 2, which the engine pads itself)
/// and the padding beyond it, `(begin, end)` per axis, that the input takes explicitly;
/// `None` where the engine does not apply.
fn engine_geometry(
    x: &Tensor<4>,
    w: &Tensor<4>,
    o: &ConvOptions<2>,
) -> Option<(Geom, [(usize, usize); 2])> {
    // Every CPU: where the engine's own AVX2 / AVX-512 kernels do not run (other
    // architectures, `VENTRAL_SIMD=baseline`) its convolutions take the blocked GEMM path
    // (the `gemm` crate's micro-kernels, NEON on aarch64), still in a fixed summation order.
    if !enabled() {
        return None;
    }
    let [co, ci, kh, kw] = w.dims();
    let [_, xc, h, wd] = x.dims();
    let s = o.stride[0];
    let [(t, b), (l, r)] = o.padding;
    let (p, extra) = split_padding(o);
    let fits = o.groups == 1
        && o.dilation == [1, 1]
        && kh == kw
        && ci == xc
        && co > 0
        && o.stride[1] == s
        && s > 0
        && h + t + b >= kh
        && wd + l + r >= kw
        && f32_on_flex(x, w);
    let (pad_end, extra) = match extra {
        [(0, e), (0, f)] if e == f => (e, [(0, 0); 2]),
        _ => (0, extra),
    };
    let g = Geom {
        stride: s,
        pad: p,
        pad_end,
    };
    fits.then_some((g, extra))
}

/// The least padding of the four sides (what the engine pads symmetrically) and the rest,
/// `(begin, end)` per axis.
fn split_padding(o: &ConvOptions<2>) -> (usize, [(usize, usize); 2]) {
    let [(t, b), (l, r)] = o.padding;
    let p = t.min(b).min(l).min(r);
    (p, [(t - p, b - p), (l - p, r - p)])
}

/// The engine's depthwise geometry of a convolution (its symmetric padding and the explicit
/// rest, as [`engine_geometry`]): one filter per channel (`groups = Ci = Co`), square, stride
/// 1, no dilation, padding less than the kernel, float32 on Flex; `None` otherwise.
fn depthwise_geometry(
    x: &Tensor<4>,
    w: &Tensor<4>,
    o: &ConvOptions<2>,
) -> Option<(usize, [(usize, usize); 2])> {
    if !enabled() {
        return None;
    }
    let [co, cig, kh, kw] = w.dims();
    let [_, ci, h, wd] = x.dims();
    let (p, extra) = split_padding(o);
    let [(t, b), (l, r)] = o.padding;
    let fits = o.groups == ci
        && ci == co
        && ci > 1
        && cig == 1
        && kh == kw
        && o.stride == [1, 1]
        && o.dilation == [1, 1]
        && ventral_engine::depthwise::Depthwise::new(
            ci,
            kh,
            p,
            h + t + b - 2 * p,
            wd + l + r - 2 * p,
        )
        .is_some()
        && f32_on_flex(x, w);
    fits.then_some((p, extra))
}

/// A convolution's input and weights both float32 on Flex (what the engine's kernels take).
fn f32_on_flex(x: &Tensor<4>, w: &Tensor<4>) -> bool {
    x.dtype() == DType::F32
        && w.dtype() == DType::F32
        && on_flex(&x.device())
        && on_flex(&w.device())
}

/// Flex (burn's CPU backend), directly or under autodiff.
pub(crate) fn on_flex(d: &Device) -> bool {
    matches!(
        d.clone().inner().as_dispatch(),
        burn::backend::DispatchDevice::Flex(_)
    )
}

/// A contiguous float32 copy (or view) of a Flex tensor's elements with its dims. A strided
/// view (a channel slice: a cell's gates cut from one convolution's output) is copied once:
/// the contiguous tensor's own buffer is taken, not copied again.
fn f32_parts(t: &FlexTensor) -> (Vec<usize>, std::borrow::Cow<'_, [f32]>) {
    let dims = t.layout().shape().to_vec();
    match t.as_slice::<f32>() {
        Some(s) => (dims, std::borrow::Cow::Borrowed(s)),
        None => {
            let data = t.to_contiguous().into_data();
            let v = data.try_into_vec::<f32>().unwrap_or_default();
            (dims, std::borrow::Cow::Owned(v))
        }
    }
}

fn flex(data: Vec<f32>, dims: [usize; 4]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(data, dims))
}

/// `[A][B][N]` → `[B][A][N]` (batch-major ↔ channel-major).
fn swap_outer(src: &[f32], a: usize, b: usize, n: usize) -> Vec<f32> {
    // Built in output order: no zero-filling pass before the copy.
    let mut out = Vec::with_capacity(src.len());
    for j in 0..b {
        for i in 0..a {
            out.extend_from_slice(&src[(i * b + j) * n..(i * b + j + 1) * n]);
        }
    }
    out
}

/// The layer's engine geometry from the tensors' dims.
fn conv_of(xd: &[usize], wd: &[usize], g: Geom) -> (Conv, usize) {
    let (batch, ci, h, w) = (xd[0], xd[1], xd[2], xd[3]);
    let conv = Conv::new(ci, wd[0], wd[2], g.stride, g.pad, h, w).with_pad_end(g.pad_end);
    (conv, batch)
}

/// Forward on Flex tensors: in place where the convolution runs direct, else through
/// channel-major copies (the general path's backward then transposes the input again from the
/// `[B][C][H][W]` tensor autodiff keeps, rather than holding a second copy per convolution).
fn forward_flex(x: &FlexTensor, w: &FlexTensor, b: &FlexTensor, g: Geom) -> FlexTensor {
    let (xd, xs) = f32_parts(x);
    let (wd, ws) = f32_parts(w);
    let (_, bs) = f32_parts(b);
    let (conv, batch) = conv_of(&xd, &wd, g);
    let howo = conv.ho * conv.wo;
    let mut y = vec![0.0f32; conv.co * batch * howo];
    if conv.forward_in_place() {
        // The products, the direct and the lanes kernels read and write burn's [B][C][H][W]
        // in place.
        SCRATCH.with(|s| conv.forward_nchw(&ws, &xs, batch, &mut y, false, &mut s.borrow_mut()));
        add_bias_nchw(&mut y, &bs, batch);
        return flex(y, [batch, conv.co, conv.ho, conv.wo]);
    }
    let xc = swap_outer(&xs, batch, conv.ci, conv.hi * conv.wi);
    SCRATCH.with(|s| conv.forward(&ws, &xc, batch, &mut y, false, &mut s.borrow_mut()));
    add_bias(&mut y, &bs);
    flex(
        swap_outer(&y, conv.co, batch, howo),
        [batch, conv.co, conv.ho, conv.wo],
    )
}

/// Gradients `(dx, dw, db)` of `y = conv(x, w) + b` given `dy`; each only when asked for.
fn backward_flex(
    x: &FlexTensor,
    w: &FlexTensor,
    dy: &FlexTensor,
    g: Geom,
    want: [bool; 3],
) -> [Option<FlexTensor>; 3] {
    let (xd, xs) = f32_parts(x);
    let (wd, ws) = f32_parts(w);
    let (_, dys) = f32_parts(dy);
    let (conv, batch) = conv_of(&xd, &wd, g);
    let howo = conv.ho * conv.wo;
    // Where a gradient runs in place (products or direct kernels) it reads burn's
    // [B][C][H][W] as it lies; the others take
    // channel-major copies (one of `dy`, made only if a gradient on the general path needs it).
    let copy = (want[0] && !conv.data_in_place()) || (want[1] && !conv.weight_in_place());
    let dyc = copy.then(|| swap_outer(&dys, batch, conv.co, howo));
    let channel_major_dy = || dyc.as_deref().unwrap_or_default();
    let hiwi = conv.hi * conv.wi;
    let dx = want[0].then(|| {
        let mut dx = vec![0.0f32; conv.ci * batch * hiwi];
        let dims = [batch, conv.ci, conv.hi, conv.wi];
        if conv.data_in_place() {
            SCRATCH
                .with(|s| conv.backward_data_nchw(&ws, &dys, batch, &mut dx, &mut s.borrow_mut()));
            return flex(dx, dims);
        }
        let dyc = channel_major_dy();
        SCRATCH.with(|s| conv.backward_data(&ws, dyc, batch, &mut dx, &mut s.borrow_mut()));
        flex(swap_outer(&dx, conv.ci, batch, hiwi), dims)
    });
    let dw = want[1].then(|| {
        let mut dw = vec![0.0f32; ws.len()];
        if conv.weight_in_place() {
            SCRATCH.with(|s| {
                conv.backward_weight_nchw(&xs, &dys, batch, &mut dw, &mut s.borrow_mut())
            });
        } else {
            let (xc, dyc) = (swap_outer(&xs, batch, conv.ci, hiwi), channel_major_dy());
            SCRATCH.with(|s| conv.backward_weight(&xc, dyc, batch, &mut dw, &mut s.borrow_mut()));
        }
        flex(dw, [wd[0], wd[1], wd[2], wd[3]])
    });
    let db = want[2].then(|| {
        let mut db = vec![0.0f32; conv.co];
        bias_grad_nchw(&dys, &mut db, batch);
        FlexTensor::from_data(TensorData::new(db, [conv.co]))
    });
    [dx, dw, db]
}

/// The depthwise geometry of `x` and `w` (checked by [`depthwise_geometry`]).
fn depthwise_of(xd: &[usize], wd: &[usize], pad: usize) -> ventral_engine::depthwise::Depthwise {
    ventral_engine::depthwise::Depthwise::new(xd[1], wd[2], pad, xd[2], xd[3])
        .expect("depthwise geometry checked by depthwise_geometry")
}

/// A `[B, C, H, W]` tensor's elements as planes ([`ventral_engine::depthwise::Planes`]): read in
/// place where each `H × W` plane is dense in the storage (a contiguous tensor, or a slice of
/// its channels: a cell's gates sliced from one convolution's output), else from a contiguous
/// copy. Returns the dims, the elements and `(offset, batch stride, channel stride)`.
fn plane_parts(t: &FlexTensor) -> ([usize; 4], std::borrow::Cow<'_, [f32]>, [usize; 3]) {
    let l = t.layout();
    let d = l.shape().to_vec();
    let dims = [d[0], d[1], d[2], d[3]];
    let st = l.strides();
    let dense_planes = st.len() == 4
        && st[3] == 1
        && st[2] == dims[3] as isize
        && st[0] >= 0
        && st[1] >= 0
        && t.dtype() == DType::F32;
    if dense_planes {
        let at = [l.start_offset(), st[0] as usize, st[1] as usize];
        return (dims, std::borrow::Cow::Borrowed(t.storage::<f32>()), at);
    }
    let (_, v) = f32_parts(t);
    let hw = dims[2] * dims[3];
    (dims, v, [0, dims[1] * hw, hw])
}

/// [`plane_parts`]' elements and strides as [`ventral_engine::depthwise::Planes`].
fn planes<'a>(v: &'a [f32], at: [usize; 3]) -> ventral_engine::depthwise::Planes<'a> {
    ventral_engine::depthwise::Planes {
        data: v,
        offset: at[0],
        batch_stride: at[1],
        channel_stride: at[2],
    }
}

/// Forward of [`EngineOps::engine_depthwise2d`] on Flex tensors (the bias added as each output
/// is stored).
fn depthwise_forward_flex(
    x: &FlexTensor,
    w: &FlexTensor,
    b: &FlexTensor,
    pad: usize,
) -> FlexTensor {
    let (xd, xs, xat) = plane_parts(x);
    let (wd, ws) = f32_parts(w);
    let (_, bs) = f32_parts(b);
    let d = depthwise_of(&xd, &wd, pad);
    let batch = xd[0];
    let mut y = vec![0.0f32; batch * d.c * d.ho() * d.wo()];
    d.forward(&ws, &bs, planes(&xs, xat), batch, &mut y);
    flex(y, [batch, d.c, d.ho(), d.wo()])
}

/// Gradients `(dx, dw, db)` of [`depthwise_forward_flex`] given `dy`; each only when asked for.
fn depthwise_backward_flex(
    x: &FlexTensor,
    w: &FlexTensor,
    dy: &FlexTensor,
    pad: usize,
    want: [bool; 3],
) -> [Option<FlexTensor>; 3] {
    let (xd, xs, xat) = plane_parts(x);
    let (wd, ws) = f32_parts(w);
    let (_, dys, dyat) = plane_parts(dy);
    let d = depthwise_of(&xd, &wd, pad);
    let batch = xd[0];
    let dx = want[0].then(|| {
        let mut dx = vec![0.0f32; batch * d.c * d.h * d.w];
        d.backward_data(&ws, planes(&dys, dyat), batch, &mut dx);
        flex(dx, xd)
    });
    let dw = want[1].then(|| {
        let mut dw = vec![0.0f32; ws.len()];
        d.backward_weight(planes(&xs, xat), planes(&dys, dyat), batch, &mut dw);
        flex(dw, [wd[0], wd[1], wd[2], wd[3]])
    });
    let db = want[2].then(|| {
        let (_, dyc) = f32_parts(dy);
        let mut db = vec![0.0f32; d.c];
        bias_grad_nchw(&dyc, &mut db, batch);
        FlexTensor::from_data(TensorData::new(db, [d.c]))
    });
    [dx, dw, db]
}

impl EngineOps for Flex {
    fn engine_depthwise2d(x: FlexTensor, w: FlexTensor, b: FlexTensor, pad: usize) -> FlexTensor {
        depthwise_forward_flex(&x, &w, &b, pad)
    }

    fn engine_elu(x: FlexTensor, alpha: f64) -> FlexTensor {
        act_flex(x, Act::Elu(alpha as f32))
    }

    fn engine_sigmoid(x: FlexTensor) -> FlexTensor {
        act_flex(x, Act::Sigmoid)
    }

    fn engine_tanh(x: FlexTensor) -> FlexTensor {
        act_flex(x, Act::Tanh)
    }

    fn engine_max_pool2x2(x: FlexTensor) -> FlexTensor {
        max_pool_flex(&x).0
    }

    fn engine_gated_sum(
        a: FlexTensor,
        p: FlexTensor,
        b: FlexTensor,
        q: FlexTensor,
        k: [f64; 4],
    ) -> FlexTensor {
        gated_sum_flex([&a, &p, &b, &q], k)
    }

    fn engine_conv2d(
        x: FlexTensor,
        w: FlexTensor,
        b: FlexTensor,
        stride: usize,
        pad: usize,
        pad_end: usize,
    ) -> FlexTensor {
        let g = Geom {
            stride,
            pad,
            pad_end,
        };
        forward_flex(&x, &w, &b, g)
    }
}

/// A forward result kept for inputs that are not tracked (the frames of a movie).
#[derive(Debug)]
struct FrameEntry {
    x: FlexTensor,
    w: FlexTensor,
    b: FlexTensor,
    g: Geom,
    y: FlexTensor,
}

/// Frames kept: the image and the blank frame of a movie.
const FRAME_ENTRIES: usize = 2;

thread_local! {
    static FRAMES: RefCell<Vec<FrameEntry>> = const { RefCell::new(Vec::new()) };
    static FRAME_HITS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// How many convolutions of untracked inputs this thread answered from the frame cache (for
/// tests and benchmarks).
pub fn frame_cache_hits() -> usize {
    FRAME_HITS.with(|h| h.get())
}

/// The same storage seen the same way (the cache holds a reference to it, so the storage can
/// be neither freed and reused nor written in place: Flex copies shared storage on write).
fn same(a: &FlexTensor, b: &FlexTensor) -> bool {
    std::sync::Arc::ptr_eq(&a.data_arc(), &b.data_arc()) && a.layout() == b.layout()
}

/// Equal elements (the bias: a fresh zero tensor stands for none at every call).
fn equal(a: &FlexTensor, b: &FlexTensor) -> bool {
    let (da, va) = f32_parts(a);
    let (db, vb) = f32_parts(b);
    da == db
        && va
            .iter()
            .zip(vb.iter())
            .all(|(p, q)| p.to_bits() == q.to_bits())
}

/// [`forward_flex`] for an input that autodiff does not track, answered from the last
/// results when the very same input, weights and bias come again — a still image shown at
/// every step meets the same weights at every step of a training pass, and its first
/// convolution is computed once instead of once per step. An exact saving: the result is the
/// one computing again would give, bit for bit; each step keeps its own backward step.
fn frame_forward(x: &FlexTensor, w: &FlexTensor, b: &FlexTensor, g: Geom) -> FlexTensor {
    let hit = FRAMES.with(|f| {
        f.borrow()
            .iter()
            .find(|e| e.g == g && same(&e.x, x) && same(&e.w, w) && equal(&e.b, b))
            .map(|e| e.y.clone())
    });
    if let Some(y) = hit {
        FRAME_HITS.with(|h| h.set(h.get() + 1));
        return y;
    }
    let y = forward_flex(x, w, b, g);
    FRAMES.with(|f| {
        let mut f = f.borrow_mut();
        if f.len() == FRAME_ENTRIES {
            f.remove(0);
        }
        f.push(FrameEntry {
            x: x.clone(),
            w: w.clone(),
            b: b.clone(),
            g,
            y: y.clone(),
        });
    });
    y
}

/// Which convolution a [`ConvBackward`] differentiates.
#[derive(Debug, Clone, Copy)]
enum ConvKind {
    /// [`EngineOps::engine_conv2d`] of this geometry.
    Dense(Geom),
    /// [`EngineOps::engine_depthwise2d`] with this padding.
    Depthwise(usize),
}

/// The backward step of [`EngineOps::engine_conv2d`] and [`EngineOps::engine_depthwise2d`]
/// under autodiff.
#[derive(Debug)]
struct ConvBackward;

impl Backward<Flex, 3> for ConvBackward {
    /// The input and the weights (shared storage, not copies) and the convolution.
    type State = (FlexTensor, FlexTensor, ConvKind);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [px, pw, pb] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let (x, w, kind) = ops.state;
        let want = [px.is_some(), pw.is_some(), pb.is_some()];
        let [dx, dw, db] = match kind {
            ConvKind::Dense(g) => backward_flex(&x, &w, &dy, g, want),
            ConvKind::Depthwise(pad) => depthwise_backward_flex(&x, &w, &dy, pad, want),
        };
        for (parent, grad) in [(px, dx), (pw, dw), (pb, db)] {
            if let (Some(node), Some(grad)) = (parent, grad) {
                grads.register::<Flex>(node.id, grad);
            }
        }
    }
}

/// The backward step of the activations ([`EngineOps::engine_elu`], `engine_sigmoid`,
/// `engine_tanh`) under autodiff, from the output.
#[derive(Debug)]
struct ActBackward;

impl Backward<Flex, 1> for ActBackward {
    /// The output (shared storage) and the activation.
    type State = (FlexTensor, Act);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [parent] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        if let Some(node) = parent {
            let (y, act) = ops.state;
            grads.register::<Flex>(node.id, act_backward_flex(&y, &dy, act));
        }
    }
}

/// The backward step of [`EngineOps::engine_max_pool2x2`] under autodiff.
#[derive(Debug)]
struct MaxPoolBackward;

impl Backward<Flex, 1> for MaxPoolBackward {
    /// Each output's argmax and the input's dims.
    type State = (std::sync::Arc<Vec<u8>>, [usize; 4]);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [parent] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        if let Some(node) = parent {
            let (idx, dims) = ops.state;
            let (_, dys) = f32_parts(&dy);
            let mut dx = vec![0.0f32; dims.iter().product()];
            ventral_engine::ops::maxpool_backward(&dys, &idx, dims[2], dims[3], &mut dx);
            grads.register::<Flex>(node.id, flex(dx, dims));
        }
    }
}

/// The backward step of [`EngineOps::engine_gated_sum`] under autodiff.
#[derive(Debug)]
struct GatedSumBackward;

impl Backward<Flex, 4> for GatedSumBackward {
    /// The four inputs (shared storage) and the constants.
    type State = ([FlexTensor; 4], [f64; 4]);

    fn backward(self, ops: Ops<Self::State, 4>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = grads.consume::<Flex>(&ops.node);
        let (ts, k) = ops.state;
        let want = std::array::from_fn(|i| ops.parents[i].is_some());
        let [t0, t1, t2, t3] = &ts;
        let gs = gated_sum_backward_flex([t0, t1, t2, t3], &dy, k, want);
        for (parent, grad) in ops.parents.into_iter().zip(gs) {
            if let (Some(node), Some(grad)) = (parent, grad) {
                grads.register::<Flex>(node.id, grad);
            }
        }
    }
}

/// `act(x)` under autodiff: the output kept for the backward step ([`ActBackward`]).
fn act_autodiff<C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<Flex, C>>,
    act: Act,
) -> FloatTensor<Autodiff<Flex, C>> {
    let prep = ActBackward
        .prepare::<C>([x.node()])
        .compute_bound()
        .stateful();
    let y = act_flex(x.into_primitive(), act);
    match prep {
        OpsKind::Tracked(prep) => prep.finish((y.clone(), act), y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    }
}

impl<C: CheckpointStrategy> EngineOps for Autodiff<Flex, C> {
    fn engine_depthwise2d(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
        pad: usize,
    ) -> FloatTensor<Self> {
        let prep = ConvBackward
            .prepare::<C>([x.node(), w.node(), b.node()])
            .compute_bound()
            .stateful();
        let (xp, wp, bp) = (x.into_primitive(), w.into_primitive(), b.into_primitive());
        let y = depthwise_forward_flex(&xp, &wp, &bp, pad);
        match prep {
            OpsKind::Tracked(prep) => prep.finish((xp, wp, ConvKind::Depthwise(pad)), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }

    fn engine_gated_sum(
        a: FloatTensor<Self>,
        p: FloatTensor<Self>,
        b: FloatTensor<Self>,
        q: FloatTensor<Self>,
        k: [f64; 4],
    ) -> FloatTensor<Self> {
        let prep = GatedSumBackward
            .prepare::<C>([a.node(), p.node(), b.node(), q.node()])
            .compute_bound()
            .stateful();
        let ts = [a, p, b, q].map(|t| t.into_primitive());
        let y = gated_sum_flex([&ts[0], &ts[1], &ts[2], &ts[3]], k);
        match prep {
            OpsKind::Tracked(prep) => prep.finish((ts, k), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }

    fn engine_max_pool2x2(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let prep = MaxPoolBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful();
        let xp = x.into_primitive();
        let d = xp.layout().shape().to_vec();
        let (y, idx) = max_pool_flex(&xp);
        match prep {
            OpsKind::Tracked(prep) => {
                prep.finish((std::sync::Arc::new(idx), [d[0], d[1], d[2], d[3]]), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }

    fn engine_elu(x: FloatTensor<Self>, alpha: f64) -> FloatTensor<Self> {
        act_autodiff::<C>(x, Act::Elu(alpha as f32))
    }

    fn engine_sigmoid(x: FloatTensor<Self>) -> FloatTensor<Self> {
        act_autodiff::<C>(x, Act::Sigmoid)
    }

    fn engine_tanh(x: FloatTensor<Self>) -> FloatTensor<Self> {
        act_autodiff::<C>(x, Act::Tanh)
    }

    fn engine_conv2d(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
        stride: usize,
        pad: usize,
        pad_end: usize,
    ) -> FloatTensor<Self> {
        let g = Geom {
            stride,
            pad,
            pad_end,
        };
        let prep = ConvBackward
            .prepare::<C>([x.node(), w.node(), b.node()])
            .compute_bound()
            .stateful();
        let constant_input = !x.is_tracked();
        let (xp, wp, bp) = (x.into_primitive(), w.into_primitive(), b.into_primitive());
        let y = if constant_input {
            frame_forward(&xp, &wp, &bp, g)
        } else {
            forward_flex(&xp, &wp, &bp, g)
        };
        match prep {
            OpsKind::Tracked(prep) => prep.finish((xp, wp, ConvKind::Dense(g)), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }
}
