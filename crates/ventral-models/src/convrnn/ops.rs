//! Building blocks of ConvRNN nodes under PyTorch's parameter names: convolutions with
//! PyTorch's padding (asymmetric `same` for even kernels), BatchNorm named `weight`/`bias`,
//! channel LayerNorm, activations by PyTorch name, torchvision's bilinear resize as two
//! interpolation matrices, and the pre/post-memory operations of PyTorchTNN.

use burn::module::{
    Content, Module, ModuleDisplay, ModuleDisplayDefault, ModuleMapper, ModuleVisitor, Param,
};
use burn::nn::{BatchNorm, BatchNormConfig};
use burn::tensor::activation::relu;
use burn::tensor::module::adaptive_avg_pool2d;
use burn::tensor::ops::{ConvOptions, MaxPoolOptions};
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::config::{conv_padding, tf_same_padding};
use super::init::Init;
use super::spec::{ConvSpec, Kwargs, OpSpec, Padding};
use crate::error::{ModelError, Result};

/// An activation by its `torch.nn` name.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Act {
    Identity,
    Relu,
    Elu(f64),
    Tanh,
    Sigmoid,
    LeakyRelu(f64),
}

impl Act {
    /// `None` (JSON `null`) is the identity.
    pub fn parse(name: Option<&str>, kwargs: &Kwargs) -> Result<Self> {
        let get = |k: &str, d: f64| kwargs.get(k).copied().unwrap_or(d);
        Ok(match name {
            None | Some("Identity") => Act::Identity,
            Some("ReLU") => Act::Relu,
            Some("ELU") => Act::Elu(get("alpha", 1.0)),
            Some("Tanh") => Act::Tanh,
            Some("Sigmoid") => Act::Sigmoid,
            Some("LeakyReLU") => Act::LeakyRelu(get("negative_slope", 0.01)),
            Some(other) => {
                return Err(ModelError::Config(format!(
                    "unknown activation '{other}' (expected Identity, ReLU, ELU, Tanh, Sigmoid, LeakyReLU or null)"
                )));
            }
        })
    }

    pub fn apply<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Act::Identity => x,
            Act::Relu => relu(x),
            Act::Elu(a) => elu(x, a),
            Act::Tanh => crate::engine_ops::tanh(x),
            Act::Sigmoid => crate::engine_ops::sigmoid(x),
            Act::LeakyRelu(s) => {
                let neg = x.clone().clamp_max(0.0) * s;
                x.clamp_min(0.0) + neg
            }
        }
    }
}

/// ELU: x for x > 0, α(eˣ − 1) otherwise.
pub fn elu<const D: usize>(x: Tensor<D>, alpha: f64) -> Tensor<D> {
    crate::engine_ops::elu(x, alpha)
}

/// A 2-D convolution with PyTorch's names (`weight [O, I/groups, kh, kw]`, `bias [O]`) and
/// per-side padding.
#[derive(Module, Debug)]
pub struct Conv2d {
    pub weight: Param<Tensor<4>>,
    pub bias: Option<Param<Tensor<1>>>,
    #[module(skip)]
    pub stride: [usize; 2],
    #[module(skip)]
    pub padding: [(usize, usize); 2],
    /// TensorFlow's `SAME`: the padding is computed from each input's size.
    #[module(skip)]
    pub tf_same: bool,
    #[module(skip)]
    pub dilation: [usize; 2],
    #[module(skip)]
    pub groups: usize,
}

/// Geometry of a convolution.
#[derive(Debug, Clone, Copy)]
pub struct ConvGeom {
    pub cin: usize,
    pub cout: usize,
    pub k: [usize; 2],
    pub stride: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
    pub bias: bool,
}

impl ConvGeom {
    pub fn simple(cin: usize, cout: usize, k: [usize; 2], bias: bool) -> Self {
        Self {
            cin,
            cout,
            k,
            stride: [1, 1],
            dilation: [1, 1],
            groups: 1,
            bias,
        }
    }
}

impl Conv2d {
    /// A convolution initialised as PyTorch's `nn.Conv2d` (U(±1/√fan_in) for weight and bias),
    /// then `init_dict` on the weight and the constant `bias_val` on the bias when given.
    pub fn new(
        g: ConvGeom,
        padding: &Padding,
        init_dict: Option<&serde_json::Value>,
        bias_val: Option<f64>,
        init: &mut Init,
        device: &Device,
    ) -> Result<Self> {
        let tf_same = matches!(padding, Padding::Named(s) if s == "tf_same");
        // tf_same: computed per input in `forward` (the size is not known here).
        let pad =
            conv_padding(padding, g.k, g.dilation, g.stride, [0, 0]).map_err(ModelError::Config)?;
        let shape = [g.cout, g.cin / g.groups.max(1), g.k[0], g.k[1]];
        let weight = init.weight(&shape, init_dict, device)?;
        let fan_in = shape[1] * shape[2] * shape[3];
        let bias = if g.bias {
            Some(match bias_val {
                Some(v) => init.constant(&[g.cout], v, device),
                None => init.uniform(&[g.cout], 1.0 / (fan_in.max(1) as f64).sqrt(), device),
            })
        } else {
            None
        };
        Ok(Self {
            weight,
            bias,
            stride: g.stride,
            padding: pad,
            tf_same,
            dilation: g.dilation,
            groups: g.groups,
        })
    }

    /// The padding (begin, end) per axis for an input of `hw`.
    pub fn padding_for(&self, hw: [usize; 2]) -> [(usize, usize); 2] {
        if self.tf_same {
            let k = self.weight.dims();
            tf_same_padding(hw, [k[2], k[3]], self.dilation, self.stride)
        } else {
            self.padding
        }
    }

    /// # Shapes
    /// - `x`: `[batch, cin, H, W]` → `[batch, cout, H', W']`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [_, _, h, w] = x.dims();
        let padding = self.padding_for([h, w]);
        let opts = ConvOptions {
            stride: self.stride,
            padding,
            dilation: self.dilation,
            groups: self.groups,
        };
        crate::engine_ops::conv2d(
            x,
            self.weight.val(),
            self.bias.as_ref().map(|b| b.val()),
            opts,
        )
    }
}

/// PyTorch `nn.Linear` under its names (`weight [out, in]` — stored `[in, out]` by burn's
/// convention of [`crate::params`], which transposes `Linear` weights).
#[derive(Module, Debug)]
pub struct Linear {
    pub weight: Param<Tensor<2>>,
    pub bias: Option<Param<Tensor<1>>>,
}

impl Linear {
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let y = crate::precision::matmul(x, self.weight.val());
        match &self.bias {
            Some(b) => y + b.val().unsqueeze::<2>(),
            None => y,
        }
    }
}

/// `nn.BatchNorm2d` under PyTorch's names (`weight`, `bias`, `running_mean`, `running_var`):
/// burn's BatchNorm (γ, β) seen through a visitor that renames its fields.
#[derive(Debug, Clone)]
pub struct Bn(pub BatchNorm);

impl Bn {
    pub fn new(c: usize, device: &Device) -> Self {
        Bn(BatchNormConfig::new(c)
            .with_epsilon(1e-5)
            .with_momentum(0.1)
            .init(device))
    }
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.0.forward(x)
    }
}

fn torch_bn_name(name: &str) -> &str {
    match name {
        "gamma" => "weight",
        "beta" => "bias",
        n => n,
    }
}

struct RenameVisitor<'a, V>(&'a mut V);
impl<V: ModuleVisitor> ModuleVisitor for RenameVisitor<'_, V> {
    fn enter_module(&mut self, name: &str, c: &str) {
        self.0.enter_module(torch_bn_name(name), c)
    }
    fn exit_module(&mut self, name: &str, c: &str) {
        self.0.exit_module(torch_bn_name(name), c)
    }
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        self.0.visit_float(p)
    }
    fn visit_int<const D: usize>(&mut self, p: &Param<Tensor<D, Int>>) {
        self.0.visit_int(p)
    }
    fn visit_bool<const D: usize>(&mut self, p: &Param<Tensor<D, burn::tensor::Bool>>) {
        self.0.visit_bool(p)
    }
    fn visit_flag(&mut self, f: &Param<burn::module::Flag>) {
        self.0.visit_flag(f)
    }
}
struct RenameMapper<'a, M>(&'a mut M);
impl<M: ModuleMapper> ModuleMapper for RenameMapper<'_, M> {
    fn enter_module(&mut self, name: &str, c: &str) {
        self.0.enter_module(torch_bn_name(name), c)
    }
    fn exit_module(&mut self, name: &str, c: &str) {
        self.0.exit_module(torch_bn_name(name), c)
    }
    fn map_float<const D: usize>(&mut self, p: Param<Tensor<D>>) -> Param<Tensor<D>> {
        self.0.map_float(p)
    }
    fn map_int<const D: usize>(&mut self, p: Param<Tensor<D, Int>>) -> Param<Tensor<D, Int>> {
        self.0.map_int(p)
    }
    fn map_bool<const D: usize>(
        &mut self,
        p: Param<Tensor<D, burn::tensor::Bool>>,
    ) -> Param<Tensor<D, burn::tensor::Bool>> {
        self.0.map_bool(p)
    }
    fn map_flag(&mut self, f: Param<burn::module::Flag>) -> Param<burn::module::Flag> {
        self.0.map_flag(f)
    }
}

impl Module for Bn {
    fn collect_devices(&self, devices: Vec<Device>) -> Vec<Device> {
        self.0.collect_devices(devices)
    }
    fn fork(self, device: &Device) -> Self {
        Bn(self.0.fork(device))
    }
    fn to_device(self, device: &Device) -> Self {
        Bn(self.0.to_device(device))
    }
    fn train(self) -> Self {
        Bn(self.0.train())
    }
    fn valid(&self) -> Self {
        Bn(self.0.valid())
    }
    fn materialize(self) -> Self {
        Bn(self.0.materialize())
    }
    fn visit<V: ModuleVisitor>(&self, visitor: &mut V) {
        self.0.visit(&mut RenameVisitor(visitor))
    }
    fn map<M: ModuleMapper>(self, mapper: &mut M) -> Self {
        Bn(self.0.map(&mut RenameMapper(mapper)))
    }
}
impl ModuleDisplayDefault for Bn {
    fn content(&self, content: Content) -> Option<Content> {
        Some(content)
    }
}
impl ModuleDisplay for Bn {}

/// A boxed module that is transparent to parameter paths (recursive op trees).
#[derive(Debug, Clone)]
pub struct Boxed<T>(pub Box<T>);

impl<T: Module> Module for Boxed<T> {
    fn collect_devices(&self, devices: Vec<Device>) -> Vec<Device> {
        self.0.collect_devices(devices)
    }
    fn fork(self, device: &Device) -> Self {
        Boxed(Box::new(self.0.fork(device)))
    }
    fn to_device(self, device: &Device) -> Self {
        Boxed(Box::new(self.0.to_device(device)))
    }
    fn train(self) -> Self {
        Boxed(Box::new(self.0.train()))
    }
    fn valid(&self) -> Self {
        Boxed(Box::new(self.0.valid()))
    }
    fn materialize(self) -> Self {
        Boxed(Box::new(self.0.materialize()))
    }
    fn visit<V: ModuleVisitor>(&self, visitor: &mut V) {
        self.0.visit(visitor)
    }
    fn map<M: ModuleMapper>(self, mapper: &mut M) -> Self {
        Boxed(Box::new(self.0.map(mapper)))
    }
}
impl<T> ModuleDisplayDefault for Boxed<T> {
    fn content(&self, content: Content) -> Option<Content> {
        Some(content)
    }
}
impl<T> ModuleDisplay for Boxed<T> {}

/// `nn.LayerNorm(C)` applied over channels at every pixel (PyTorchTNN permutes to NHWC), or
/// with `per_image` TensorFlow's `tf.contrib.layers.layer_norm` as convrnns' cells call it
/// (statistics over C, H and W of each image; scale and shift per channel) — with ε = 1e-5
/// ([`LAYER_NORM_EPS`]) unless the cell's `layernorm_eps` says otherwise, not TensorFlow's
/// 1e-12: before the image reaches a cell its gates are constant maps (their
/// biases), where a layer norm's input gradient is 1/√ε times the output's, and through the
/// chain of such steps 10⁶ per norm overflows float32 (NaN gradients in `lstm_shallow`).
/// Running a pretrained convrnns checkpoint takes TensorFlow's ε
/// ([`crate::convrnn::ConvRnn::use_tensorflow_layer_norm_eps`]).
#[derive(Module, Debug)]
pub struct LayerNormC {
    pub weight: Param<Tensor<1>>,
    pub bias: Param<Tensor<1>>,
    #[module(skip)]
    pub per_image: bool,
    #[module(skip)]
    pub eps: f64,
}

/// ventral's layer-norm ε (PyTorch's default).
pub const LAYER_NORM_EPS: f64 = 1e-5;

/// `tf.contrib.layers.layer_norm`'s ε, as convrnns' cells run it.
pub const TENSORFLOW_LAYER_NORM_EPS: f64 = 1e-12;

impl LayerNormC {
    pub fn new(c: usize, init: &mut Init, device: &Device) -> Self {
        Self {
            weight: init.constant(&[c], 1.0, device),
            bias: init.constant(&[c], 0.0, device),
            per_image: false,
            eps: LAYER_NORM_EPS,
        }
    }
    /// `[batch, C, H, W]` → same.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let _p = crate::profile::scope(crate::profile::LAYER_NORM, Default::default);
        let n = if self.per_image {
            // Means over C, H, W as nested means of equal-sized groups (no reshape: the
            // gates arrive as channel slices of one convolution's output).
            let mean = |t: Tensor<4>| t.mean_dim(1).mean_dim(2).mean_dim(3);
            let c = x.clone() - mean(x);
            let var = mean(c.clone().powi_scalar(2));
            c / (var + self.eps).sqrt()
        } else {
            let c = x.clone() - x.mean_dim(1);
            let var = c.clone().powi_scalar(2).mean_dim(1);
            c / (var + self.eps).sqrt()
        };
        let w = self.weight.val().reshape([1, -1, 1, 1]);
        let b = self.bias.val().reshape([1, -1, 1, 1]);
        n * w + b
    }
}

/// torchvision `Resize` (bilinear, antialias = True; the identity when the size already
/// matches) as an interpolation matrix `[out, in]` for one axis, with ATen's
/// `_upsample_bilinear2d_aa` weights.
pub fn resize_matrix(input: usize, output: usize) -> Vec<f32> {
    let mut m = vec![0.0f32; output * input];
    let scale = input as f64 / output as f64;
    let support = if scale >= 1.0 { scale } else { 1.0 };
    let ss = if scale >= 1.0 { scale } else { 1.0 };
    for i in 0..output {
        let center = scale * (i as f64 + 0.5);
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(input as i64) as usize;
        let mut w: Vec<f64> = (xmin..xmax)
            .map(|j| {
                let x = (j as f64 - center + 0.5) / ss;
                (1.0 - x.abs()).max(0.0)
            })
            .collect();
        let total: f64 = w.iter().sum();
        if total > 0.0 {
            for v in &mut w {
                *v /= total;
            }
        }
        for (o, j) in (xmin..xmax).enumerate() {
            m[i * input + j] = w[o] as f32;
        }
    }
    m
}

/// TensorFlow's `resize_images(align_corners=True)` bilinear matrix `[out, in]` (the
/// original convrnns harbor).
pub fn resize_matrix_align_corners(input: usize, output: usize) -> Vec<f32> {
    let mut m = vec![0.0f32; output * input];
    for i in 0..output {
        let src = if output > 1 {
            i as f64 * (input - 1) as f64 / (output - 1) as f64
        } else {
            0.0
        };
        let lo = src.floor() as usize;
        let hi = (lo + 1).min(input - 1);
        let f = src - lo as f64;
        m[i * input + lo] += (1.0 - f) as f32;
        m[i * input + hi] += f as f32;
    }
    m
}

/// Resize `[batch, C, H, W]` to `[batch, C, oh, ow]` with per-axis matrices: torchvision's
/// ([`resize_matrix`]) or, with `align_corners`, TensorFlow's
/// ([`resize_matrix_align_corners`]).
pub fn resize(x: Tensor<4>, oh: usize, ow: usize, align_corners: bool) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    if h == oh && w == ow {
        return x;
    }
    let _p = crate::profile::scope(crate::profile::RESIZE, Default::default);
    let device = x.device();
    let m = if align_corners {
        resize_matrix_align_corners
    } else {
        resize_matrix
    };
    let rh = Tensor::<2>::from_data(TensorData::new(m(h, oh), [oh, h]), &device);
    let rw = Tensor::<2>::from_data(TensorData::new(m(w, ow), [ow, w]), &device);
    // Along W: [b·c·h, w] × [w, ow].
    let y = x.reshape([b * c * h, w]).matmul(rw.transpose());
    // Along H: [oh, h] × [h, ow] per image-channel.
    let y = y.reshape([b * c, h, ow]);
    let rh = rh.unsqueeze::<3>().expand([b * c, oh, h]);
    rh.matmul(y).reshape([b, c, oh, ow])
}

/// A pre- or post-memory operation with its parameters (PyTorchTNN's module and field
/// names: `conv`, `bn`/`bns`, `feedforward`, `residual`, `sequential_mem`, `lin`).
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum PrePost {
    Conv(ConvCell),
    Residual(ResidualAdd),
    Sequential(Sequential),
    Fc(FullyConnected),
    Stateless(Stateless),
}

/// An operation without parameters.
#[derive(Module, Debug)]
pub struct Stateless {
    #[module(skip)]
    pub op: StatelessOp,
}

#[derive(Debug, Clone)]
pub enum StatelessOp {
    Identity,
    Act(Act),
    MaxPool(MaxPoolOptions<2>),
    AdaptiveAvg([usize; 2], bool),
}

/// `Conv2dCell`: convolution → BatchNorm (one, or one per step) → activation.
#[derive(Module, Debug)]
pub struct ConvCell {
    pub conv: Conv2d,
    pub bn: Option<Bn>,
    pub bns: Vec<Bn>,
    #[module(skip)]
    pub act: Act,
}

/// `ResidualAdd`: `act(feedforward(x) + residual(block input))`.
#[derive(Module, Debug)]
pub struct ResidualAdd {
    pub feedforward: Boxed<PrePost>,
    pub residual: Boxed<PrePost>,
    #[module(skip)]
    pub act: Act,
}

/// `Sequential`.
#[derive(Module, Debug)]
pub struct Sequential {
    pub sequential_mem: Vec<PrePost>,
}

/// `FullyConnected` (flattens, linear, optional BatchNorm1d, activation).
#[derive(Module, Debug)]
pub struct FullyConnected {
    pub lin: Linear,
    #[module(skip)]
    pub act: Act,
}

/// What an op sees: its input size and channels, the residual's channels.
#[allow(missing_debug_implementations)]
pub struct OpCtx<'a> {
    pub init: &'a mut Init,
    pub device: &'a Device,
    pub timesteps: usize,
}

impl PrePost {
    /// Build an op for `cin` input channels and `[h, w]` input size; returns the op, its output
    /// channels and size.
    pub fn build(
        spec: &OpSpec,
        cin: usize,
        hw: [usize; 2],
        res_c: usize,
        ctx: &mut OpCtx<'_>,
    ) -> Result<(Self, usize, [usize; 2])> {
        Ok(match spec {
            OpSpec::Identity {} => (stateless(StatelessOp::Identity), cin, hw),
            OpSpec::ActivationLayer {
                activation,
                activation_func_kwargs,
            } => (
                stateless(StatelessOp::Act(Act::parse(
                    activation.as_deref(),
                    activation_func_kwargs,
                )?)),
                cin,
                hw,
            ),
            OpSpec::MaxPool {
                ksize,
                stride,
                padding,
                ceil_mode,
            } => {
                let (k, s, p) = super::config::pool_geometry(*ksize, *stride, *padding);
                let opts = MaxPoolOptions::new(k)
                    .with_stride(s)
                    .with_padding(p)
                    .with_ceil_mode(*ceil_mode);
                let out = [
                    super::config::pool_out(hw[0], k[0], s[0], p[0], *ceil_mode),
                    super::config::pool_out(hw[1], k[1], s[1], p[1], *ceil_mode),
                ];
                (stateless(StatelessOp::MaxPool(opts)), cin, out)
            }
            OpSpec::AdaptiveAvgPool {
                output_size,
                flatten,
            } => (
                stateless(StatelessOp::AdaptiveAvg(output_size.get(), *flatten)),
                cin,
                output_size.get(),
            ),
            OpSpec::Conv2dCell(c) => {
                let (cc, out_hw) = ConvCell::build(c, cin, hw, ctx)?;
                (PrePost::Conv(cc), c.out_channels, out_hw)
            }
            OpSpec::ResidualAdd {
                feedforward_func_kwargs,
                residual_func_kwargs,
                activation,
                activation_func_kwargs,
            } => {
                let (ff, c, out_hw) = PrePost::build(feedforward_func_kwargs, cin, hw, res_c, ctx)?;
                let res = match residual_func_kwargs {
                    Some(r) => PrePost::build(r, res_c, hw, res_c, ctx)?.0,
                    None => stateless(StatelessOp::Identity),
                };
                (
                    PrePost::Residual(ResidualAdd {
                        feedforward: Boxed(Box::new(ff)),
                        residual: Boxed(Box::new(res)),
                        act: Act::parse(activation.as_deref(), activation_func_kwargs)?,
                    }),
                    c,
                    out_hw,
                )
            }
            OpSpec::Sequential {
                list_of_func_kwargs,
            } => {
                let mut mem = Vec::new();
                let (mut c, mut h) = (cin, hw);
                for o in list_of_func_kwargs {
                    let (m, c2, h2) = PrePost::build(o, c, h, res_c, ctx)?;
                    mem.push(m);
                    c = c2;
                    h = h2;
                }
                (
                    PrePost::Sequential(Sequential {
                        sequential_mem: mem,
                    }),
                    c,
                    h,
                )
            }
            OpSpec::FullyConnected {
                out_channels,
                init_dict,
                use_bias,
                bias,
                batchnorm,
                activation,
                activation_func_kwargs,
                ..
            } => {
                if batchnorm.is_some() {
                    return Err(ModelError::Config(
                        "FullyConnected with batchnorm is not supported yet".into(),
                    ));
                }
                let fan_in = cin * hw[0] * hw[1];
                // PyTorch layout [out, in]; burn's Linear convention stores [in, out].
                let w: Param<Tensor<2>> =
                    ctx.init
                        .weight(&[*out_channels, fan_in], init_dict.as_ref(), ctx.device)?;
                // Transpose on the host so the parameter stays a leaf of the autodiff graph.
                let v = crate::device::read_f32(&w.val(), "a FullyConnected weight")?;
                let mut tv = vec![0.0f32; v.len()];
                for o in 0..*out_channels {
                    for i in 0..fan_in {
                        tv[i * out_channels + o] = v[o * fan_in + i];
                    }
                }
                let w = Param::from_tensor(Tensor::<2>::from_data(
                    TensorData::new(tv, [fan_in, *out_channels]),
                    ctx.device,
                ));
                let b = if *use_bias {
                    Some(match bias {
                        Some(v) => ctx.init.constant(&[*out_channels], *v, ctx.device),
                        None => ctx.init.uniform(
                            &[*out_channels],
                            1.0 / (fan_in.max(1) as f64).sqrt(),
                            ctx.device,
                        ),
                    })
                } else {
                    None
                };
                (
                    PrePost::Fc(FullyConnected {
                        lin: Linear { weight: w, bias: b },
                        act: Act::parse(activation.as_deref(), activation_func_kwargs)?,
                    }),
                    *out_channels,
                    [1, 1],
                )
            }
        })
    }

    /// Apply at step `t`; `residual` is the node's harbor output (for `ResidualAdd`).
    /// Outputs are `[batch, C, H, W]`, flat outputs `[batch, C, 1, 1]`.
    pub fn forward(&self, x: Tensor<4>, residual: Option<&Tensor<4>>, t: usize) -> Tensor<4> {
        match self {
            PrePost::Stateless(s) => match &s.op {
                StatelessOp::Identity => x,
                StatelessOp::Act(a) => a.apply(x),
                StatelessOp::MaxPool(o) => crate::engine_ops::max_pool2d(x, o.clone()),
                StatelessOp::AdaptiveAvg(size, _) => {
                    if *size == [1, 1] {
                        x.mean_dim(3).mean_dim(2)
                    } else {
                        adaptive_avg_pool2d(x, *size)
                    }
                }
            },
            PrePost::Conv(c) => c.forward(x, t),
            PrePost::Residual(r) => {
                let f = r.feedforward.0.forward(x, None, t);
                let res = residual.cloned().unwrap_or_else(|| f.clone().zeros_like());
                let res = r.residual.0.forward(res, None, t);
                r.act.apply(f + res)
            }
            PrePost::Sequential(s) => {
                let mut y = x;
                for m in &s.sequential_mem {
                    y = m.forward(y, residual, t);
                }
                y
            }
            PrePost::Fc(f) => {
                let [b, c, h, w] = x.dims();
                let y = f.lin.forward(x.reshape([b, c * h * w]));
                let n = y.dims()[1];
                f.act.apply(y).reshape([b, n, 1, 1])
            }
        }
    }

    /// True when the output depends on the input only — no BatchNorm (whose per-step layers
    /// and running statistics depend on the step and on how often it runs).
    pub fn step_invariant(&self) -> bool {
        match self {
            PrePost::Stateless(_) | PrePost::Fc(_) => true,
            PrePost::Conv(c) => c.bn.is_none() && c.bns.is_empty(),
            PrePost::Residual(r) => {
                r.feedforward.0.step_invariant() && r.residual.0.step_invariant()
            }
            PrePost::Sequential(s) => s.sequential_mem.iter().all(PrePost::step_invariant),
        }
    }

    /// True when every image's result is computed the same way whatever the batch: no fully
    /// connected layer (burn's matrix product sums in another order for one row than for
    /// several — a one-image step would differ from the batch's in the last bit).
    pub fn batch_invariant(&self) -> bool {
        match self {
            PrePost::Fc(_) => false,
            PrePost::Stateless(_) | PrePost::Conv(_) => true,
            PrePost::Residual(r) => {
                r.feedforward.0.batch_invariant() && r.residual.0.batch_invariant()
            }
            PrePost::Sequential(s) => s.sequential_mem.iter().all(PrePost::batch_invariant),
        }
    }
}

fn stateless(op: StatelessOp) -> PrePost {
    PrePost::Stateless(Stateless { op })
}

impl ConvCell {
    pub fn build(
        c: &ConvSpec,
        cin: usize,
        hw: [usize; 2],
        ctx: &mut OpCtx<'_>,
    ) -> Result<(Self, [usize; 2])> {
        let g = ConvGeom {
            cin,
            cout: c.out_channels,
            k: c.ksize.get(),
            stride: c.stride.get(),
            dilation: c.dilation.get(),
            groups: c.groups,
            bias: c.use_bias,
        };
        let conv = Conv2d::new(
            g,
            &c.padding,
            c.init_dict.as_ref(),
            c.bias,
            ctx.init,
            ctx.device,
        )?;
        let out = super::config::conv_out(hw, g.k, g.stride, g.dilation, conv.padding_for(hw))
            .map_err(ModelError::Config)?;
        let (bn, bns) = match c.batchnorm {
            None => (None, Vec::new()),
            Some(n) => {
                if n != c.out_channels {
                    return Err(ModelError::Config(format!(
                        "batchnorm = {n} but the convolution has {} output channels",
                        c.out_channels
                    )));
                }
                if c.batchnorm_timevary {
                    (
                        None,
                        (0..ctx.timesteps).map(|_| Bn::new(n, ctx.device)).collect(),
                    )
                } else {
                    (Some(Bn::new(n, ctx.device)), Vec::new())
                }
            }
        };
        Ok((
            ConvCell {
                conv,
                bn,
                bns,
                act: Act::parse(c.activation.as_deref(), &c.activation_func_kwargs)?,
            },
            out,
        ))
    }

    pub fn forward(&self, x: Tensor<4>, t: usize) -> Tensor<4> {
        let y = self.conv.forward(x);
        let y = match (&self.bn, self.bns.get(t)) {
            (Some(b), _) => b.forward(y),
            (None, Some(b)) => b.forward(y),
            _ => y,
        };
        self.act.apply(y)
    }
}
