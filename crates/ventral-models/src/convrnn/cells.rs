//! The local recurrent cells of Nayebi et al. (domain notes §3.4), as PyTorchTNN writes them
//! (`pt_tnn/recurrent_cells`), under its parameter names. Every cell implements
//! [`crate::cell::RecurrentCell`] through [`Cell`]; states are `[batch, C, H, W]` tensors
//! (LSTM: `[c, h]` stacked on channels; reciprocal gated cell: `[cell, out]`), zero at t = 0.

use crate::engine_ops::{sigmoid, tanh};
use burn::module::{Module, Param};

use crate::engine_ops::gated_sum;

/// `u·a + (1 − u)·b` as a [`gated_sum`]: `(u·1 + 0)·a + (u·(−1) + 1)·b`.
const COMPLEMENT: [f64; 4] = [1.0, 0.0, -1.0, 1.0];
use burn::tensor::{Device, Tensor};

use super::init::Init;
use super::ops::{Act, Conv2d, ConvGeom, LAYER_NORM_EPS, LayerNormC};
use super::spec::{CellSpec, GatedSpec, Padding, RgcSpec};
use crate::cell::{CellInput, RecurrentCell, TimeDecay};
use crate::error::{ModelError, Result};

/// Any cell.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Cell {
    Identity(IdentityCell),
    /// `TimeDecayRecurrentCell`: [`crate::cell::TimeDecay`] (τ trainable or not).
    TimeDecay(TimeDecay),
    Basic(BasicCell),
    Vanilla(VanillaCell),
    Gru(GruCell),
    Lstm(LstmCell),
    Ugrnn(UgrnnCell),
    Intersection(IntersectionCell),
    Rgc(super::ops::Boxed<RgcCell>),
}

/// `IdentityCell`: output = input, no state.
#[derive(Module, Debug)]
pub struct IdentityCell {
    #[module(skip)]
    pub channels: usize,
}

/// `ConvRNNBasicCell`: `h = act(conv_input(x) + conv_state(h))`.
#[derive(Module, Debug)]
pub struct BasicCell {
    pub conv_input: Conv2d,
    pub conv_state: Conv2d,
    #[module(skip)]
    pub act: Act,
    #[module(skip)]
    pub channels: usize,
}

/// `VanillaRNNCell` (SimpleRNN of the papers): `h = act(LN(conv_input(x) + conv_state(h)))`.
#[derive(Module, Debug)]
pub struct VanillaCell {
    pub conv_input: Conv2d,
    pub conv_state: Conv2d,
    pub ln: Option<LayerNormC>,
    #[module(skip)]
    pub act: Act,
    #[module(skip)]
    pub channels: usize,
}

/// `GRUCell`.
#[derive(Module, Debug)]
pub struct GruCell {
    pub conv_ru: Conv2d,
    pub conv_c: Conv2d,
    pub ln_r_pre: Option<LayerNormC>,
    pub ln_u_pre: Option<LayerNormC>,
    pub ln_c_pre: Option<LayerNormC>,
    #[module(skip)]
    pub act: Act,
    #[module(skip)]
    pub forget_bias: f64,
    #[module(skip)]
    pub channels: usize,
}

/// convrnns' LSTM peepholes: per-position weights `[C, H, W]` (zero at initialisation: the
/// cell starts as the LSTM without them).
#[derive(Module, Debug)]
pub struct Peepholes {
    pub w_f_diag: Param<Tensor<3>>,
    pub w_i_diag: Param<Tensor<3>>,
    pub w_o_diag: Param<Tensor<3>>,
}

/// `LSTMCell` (PyTorchTNN's; with convrnns' optional peepholes).
#[derive(Module, Debug)]
pub struct LstmCell {
    pub conv: Conv2d,
    pub peepholes: Option<Peepholes>,
    pub ln_input: Option<LayerNormC>,
    pub ln_transform: Option<LayerNormC>,
    pub ln_forget: Option<LayerNormC>,
    pub ln_output: Option<LayerNormC>,
    pub ln_state: Option<LayerNormC>,
    #[module(skip)]
    pub act: Act,
    #[module(skip)]
    pub forget_bias: f64,
    #[module(skip)]
    pub channels: usize,
}

/// `UGRNNCell`.
#[derive(Module, Debug)]
pub struct UgrnnCell {
    pub conv: Conv2d,
    pub ln_g_act: Option<LayerNormC>,
    pub ln_c_act: Option<LayerNormC>,
    #[module(skip)]
    pub forget_bias: f64,
    #[module(skip)]
    pub channels: usize,
}

/// `IntersectionRNNCell`.
#[derive(Module, Debug)]
pub struct IntersectionCell {
    pub conv: Conv2d,
    pub ln_gh_act: Option<LayerNormC>,
    pub ln_h_act: Option<LayerNormC>,
    pub ln_gy_act: Option<LayerNormC>,
    pub ln_y_act: Option<LayerNormC>,
    #[module(skip)]
    pub forget_bias: f64,
    #[module(skip)]
    pub channels: usize,
}

/// One of the reciprocal gated cell's convolutions: plain (`conv`) or depthwise-separable
/// (`depth_wise`, `point_wise`, optional `repeat_depth`), then `act(· + pre_bias)`.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum RgcConv {
    Plain(PlainConv),
    Separable(SeparableConv),
}

#[derive(Module, Debug)]
pub struct PlainConv {
    pub conv: Conv2d,
    #[module(skip)]
    pub act: Act,
    #[module(skip)]
    pub pre_bias: f64,
}

#[derive(Module, Debug)]
pub struct SeparableConv {
    pub depth_wise: Conv2d,
    pub point_wise: Conv2d,
    pub repeat_depth: Option<Conv2d>,
    #[module(skip)]
    pub act: Act,
    #[module(skip)]
    pub pre_bias: f64,
}

impl RgcConv {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let (y, act, b) = match self {
            RgcConv::Plain(p) => (p.conv.forward(x), p.act, p.pre_bias),
            RgcConv::Separable(s) => {
                let x = match &s.repeat_depth {
                    Some(r) => super::ops::elu(r.forward(x), 1.0),
                    None => x,
                };
                (
                    s.point_wise.forward(s.depth_wise.forward(x)),
                    s.act,
                    s.pre_bias,
                )
            }
        };
        act.apply(if b != 0.0 { y + b } else { y })
    }
}

/// `ReciprocalGatedCell` (the general form; fields as PyTorchTNN's).
#[derive(Module, Debug)]
pub struct RgcCell {
    pub feedback_conv: Option<RgcConv>,
    pub inp2out_conv: Option<RgcConv>,
    pub out_tau_conv: RgcConv,
    pub out_gate_conv: Option<RgcConv>,
    pub res2cell_conv: Option<RgcConv>,
    pub inp2cell_conv: Option<RgcConv>,
    pub cell_tau_conv: Option<RgcConv>,
    pub cell_gate_conv: Option<RgcConv>,
    pub cell2out_conv: Option<RgcConv>,
    pub res2out_conv: Option<RgcConv>,
    pub ln_cell: Option<LayerNormC>,
    pub ln_out: Option<LayerNormC>,
    #[module(skip)]
    pub p: RgcParams,
}

/// The reciprocal gated cell's constants.
#[derive(Debug, Clone)]
pub struct RgcParams {
    pub cell_depth: usize,
    pub out_depth: usize,
    pub use_cell: bool,
    pub feedback_entry: String,
    pub tau: (f64, f64, f64),
    pub gate: (f64, f64, f64),
    pub tau_act: Act,
    pub gate_act: Act,
    pub input_act: Act,
    pub cell_act: Act,
    pub out_act: Act,
    pub cell_residual: bool,
    pub out_residual: bool,
    /// The output residual is added as it is (TensorFlow's `residual_add` at equal widths).
    pub res_identity: bool,
    pub residual_to_out_gate: bool,
    pub input_to_cell: bool,
    pub input_to_out: bool,
    pub cell_to_out: bool,
}

/// What a cell is built from.
#[allow(missing_debug_implementations)]
pub struct CellCtx<'a> {
    pub init: &'a mut Init,
    pub device: &'a Device,
    /// The cell's input channels (pre-memory output).
    pub cin: usize,
    /// The residual input's channels (the node's feedforward harbor input).
    pub res_c: usize,
    /// The feedback part's channels, when the harbor splits it off.
    pub fb_c: Option<usize>,
    /// The cell's spatial size (for the basic cell's size check).
    pub hw: [usize; 2],
}

fn conv(
    ctx: &mut CellCtx<'_>,
    cin: usize,
    cout: usize,
    k: [usize; 2],
    padding: &Padding,
    g: &GatedLike<'_>,
) -> Result<Conv2d> {
    Conv2d::new(
        ConvGeom::simple(cin, cout, k, g.use_bias),
        padding,
        g.init_dict,
        g.bias,
        ctx.init,
        ctx.device,
    )
}

struct GatedLike<'a> {
    use_bias: bool,
    bias: Option<f64>,
    init_dict: Option<&'a serde_json::Value>,
}

fn ln(on: bool, c: usize, per_image: bool, eps: f64, ctx: &mut CellCtx<'_>) -> Option<LayerNormC> {
    on.then(|| {
        let mut l = LayerNormC::new(c, ctx.init, ctx.device);
        l.per_image = per_image;
        l.eps = eps;
        l
    })
}

impl Cell {
    /// Build a cell.
    pub fn build(spec: &CellSpec, ctx: &mut CellCtx<'_>) -> Result<Self> {
        let c = ctx.cin;
        Ok(match spec {
            CellSpec::IdentityCell {} => Cell::Identity(IdentityCell { channels: c }),
            CellSpec::TimeDecayRecurrentCell {
                tau,
                trainable,
                init_dict,
            } => {
                let p: Param<Tensor<1>> = match init_dict {
                    None => ctx.init.constant(&[1], *tau, ctx.device),
                    Some(d) => ctx.init.weight(&[1], Some(d), ctx.device)?,
                };
                let p = if *trainable {
                    p
                } else {
                    p.set_require_grad(false)
                };
                Cell::TimeDecay(TimeDecay {
                    tau: p,
                    channels: c,
                })
            }
            CellSpec::ConvRNNBasicCell {
                out_channels,
                activation,
                ksize,
                stride,
                padding,
                activation_func_kwargs,
            } => {
                let g = GatedLike {
                    use_bias: true,
                    bias: None,
                    init_dict: None,
                };
                let k = ksize.get();
                let mk = |ctx: &mut CellCtx<'_>, cin: usize| {
                    Conv2d::new(
                        ConvGeom {
                            stride: stride.get(),
                            ..ConvGeom::simple(cin, *out_channels, k, g.use_bias)
                        },
                        padding,
                        None,
                        None,
                        ctx.init,
                        ctx.device,
                    )
                };
                let conv_input = mk(ctx, c)?;
                let conv_state = mk(ctx, *out_channels)?;
                let out = super::config::conv_out(
                    ctx.hw,
                    k,
                    stride.get(),
                    [1, 1],
                    conv_input.padding_for(ctx.hw),
                )
                .map_err(ModelError::Config)?;
                if out != ctx.hw {
                    return Err(ModelError::Config(format!(
                        "ConvRNNBasicCell's convolutions turn {}×{} into {}×{}: its state could not be fed back (use padding that keeps the size)",
                        ctx.hw[0], ctx.hw[1], out[0], out[1]
                    )));
                }
                Cell::Basic(BasicCell {
                    conv_input,
                    conv_state,
                    act: Act::parse(activation.as_deref(), activation_func_kwargs)?,
                    channels: *out_channels,
                })
            }
            CellSpec::VanillaRNNCell(s) => {
                let g = gl(s);
                let k = s.ksize.get();
                Cell::Vanilla(VanillaCell {
                    conv_input: conv(ctx, c, s.out_channels, k, &s.padding, &g)?,
                    conv_state: conv(ctx, s.out_channels, s.out_channels, k, &s.padding, &g)?,
                    ln: ln(
                        s.layernorm.unwrap_or(true),
                        s.out_channels,
                        s.layernorm_per_image,
                        s.layernorm_eps(),
                        ctx,
                    ),
                    act: Act::parse(
                        Some(s.activation.as_deref().unwrap_or("ELU")),
                        &s.activation_func_kwargs,
                    )?,
                    channels: s.out_channels,
                })
            }
            CellSpec::GRUCell(s) => {
                let g = gl(s);
                let k = s.ksize.get();
                let o = s.out_channels;
                let lnon = s.layernorm.unwrap_or(false);
                Cell::Gru(GruCell {
                    conv_ru: conv(ctx, c + o, 2 * o, k, &s.padding, &g)?,
                    conv_c: conv(ctx, c + o, o, k, &s.padding, &g)?,
                    ln_r_pre: ln(lnon, o, s.layernorm_per_image, s.layernorm_eps(), ctx),
                    ln_u_pre: ln(lnon, o, s.layernorm_per_image, s.layernorm_eps(), ctx),
                    ln_c_pre: ln(lnon, o, s.layernorm_per_image, s.layernorm_eps(), ctx),
                    act: Act::parse(
                        Some(s.activation.as_deref().unwrap_or("Tanh")),
                        &s.activation_func_kwargs,
                    )?,
                    forget_bias: s.forget_bias,
                    channels: o,
                })
            }
            CellSpec::LSTMCell(s) => {
                let g = gl(s);
                let o = s.out_channels;
                let lnon = s.layernorm.unwrap_or(false);
                let peepholes = s.use_peepholes.then(|| {
                    let shape = [o, ctx.hw[0], ctx.hw[1]];
                    Peepholes {
                        w_f_diag: ctx.init.constant(&shape, 0.0, ctx.device),
                        w_i_diag: ctx.init.constant(&shape, 0.0, ctx.device),
                        w_o_diag: ctx.init.constant(&shape, 0.0, ctx.device),
                    }
                });
                Cell::Lstm(LstmCell {
                    conv: conv(ctx, c + o, 4 * o, s.ksize.get(), &s.padding, &g)?,
                    peepholes,
                    ln_input: ln(lnon, o, s.layernorm_per_image, s.layernorm_eps(), ctx),
                    ln_transform: ln(lnon, o, s.layernorm_per_image, s.layernorm_eps(), ctx),
                    ln_forget: ln(lnon, o, s.layernorm_per_image, s.layernorm_eps(), ctx),
                    ln_output: ln(lnon, o, s.layernorm_per_image, s.layernorm_eps(), ctx),
                    ln_state: ln(lnon, o, s.layernorm_per_image, s.layernorm_eps(), ctx),
                    act: Act::parse(
                        Some(s.activation.as_deref().unwrap_or("Tanh")),
                        &s.activation_func_kwargs,
                    )?,
                    forget_bias: s.forget_bias,
                    channels: o,
                })
            }
            CellSpec::UGRNNCell(s) => {
                let g = gl(s);
                let o = s.out_channels;
                let lnon = s.layernorm.unwrap_or(false);
                Cell::Ugrnn(UgrnnCell {
                    conv: conv(ctx, c + o, 2 * o, s.ksize.get(), &s.padding, &g)?,
                    ln_g_act: ln(lnon, o, s.layernorm_per_image, s.layernorm_eps(), ctx),
                    ln_c_act: ln(lnon, o, s.layernorm_per_image, s.layernorm_eps(), ctx),
                    forget_bias: s.forget_bias,
                    channels: o,
                })
            }
            CellSpec::IntersectionRNNCell(s) => {
                let g = gl(s);
                let o = s.out_channels;
                let lnon = s.layernorm.unwrap_or(false);
                Cell::Intersection(IntersectionCell {
                    conv: conv(ctx, 2 * c, 4 * o, s.ksize.get(), &s.padding, &g)?,
                    ln_gh_act: ln(lnon, o, s.layernorm_per_image, s.layernorm_eps(), ctx),
                    ln_h_act: ln(lnon, o, s.layernorm_per_image, s.layernorm_eps(), ctx),
                    ln_gy_act: ln(lnon, o, s.layernorm_per_image, s.layernorm_eps(), ctx),
                    ln_y_act: ln(lnon, o, s.layernorm_per_image, s.layernorm_eps(), ctx),
                    forget_bias: s.forget_bias,
                    channels: o,
                })
            }
            CellSpec::ReciprocalGatedCell(r) => {
                Cell::Rgc(super::ops::Boxed(Box::new(RgcCell::build(r, ctx)?)))
            }
        })
    }

    /// Channels of the state.
    fn state_channels(&self) -> usize {
        match self {
            Cell::Identity(_) => 0,
            Cell::TimeDecay(c) => c.channels,
            Cell::Basic(c) => c.channels,
            Cell::Vanilla(c) => c.channels,
            Cell::Gru(c) => c.channels,
            Cell::Lstm(c) => 2 * c.channels,
            Cell::Ugrnn(c) => c.channels,
            Cell::Intersection(c) => c.channels,
            Cell::Rgc(c) => {
                if c.0.p.use_cell {
                    c.0.p.cell_depth + c.0.p.out_depth
                } else {
                    c.0.p.out_depth
                }
            }
        }
    }
}

fn gl(s: &GatedSpec) -> GatedLike<'_> {
    GatedLike {
        use_bias: s.use_bias,
        bias: s.bias,
        init_dict: s.init_dict.as_ref(),
    }
}

fn maybe_ln(ln: &Option<LayerNormC>, x: Tensor<4>) -> Tensor<4> {
    match ln {
        Some(l) => l.forward(x),
        None => x,
    }
}

fn split<const N: usize>(x: Tensor<4>) -> [Tensor<4>; N] {
    let parts = x.chunk(N, 1);
    let mut it = parts.into_iter();
    std::array::from_fn(|_| it.next().expect("chunk count"))
}

/// A node's results that depend only on its feedforward input (the pre-memory output and
/// the harbor before it), kept from one step to the next: where that input repeats (a still
/// image through stateless layers) a cell's convolutions of it give what they gave before,
/// bit for bit — the same saving the original TensorFlow graphs get from common-subexpression
/// elimination. Results are taken in the order a cell computes them.
#[derive(Debug, Default, Clone)]
pub struct InputMemo {
    values: Vec<Tensor<4>>,
    next: usize,
}

impl InputMemo {
    /// Start a step: keep the results when the input repeats, else drop them.
    pub fn begin(&mut self, input_repeats: bool) {
        if !input_repeats {
            self.values.clear();
        }
        self.next = 0;
    }

    /// The next result: kept from the last step, else computed by `f` (and kept).
    fn get(&mut self, f: impl FnOnce() -> Tensor<4>) -> Tensor<4> {
        let i = self.next;
        self.next += 1;
        if let Some(v) = self.values.get(i) {
            return v.clone();
        }
        let v = f();
        if self.values.len() == i {
            self.values.push(v.clone());
        }
        v
    }
}

impl Cell {
    /// The cell's step, with the results of the input alone taken from `memo` where it holds
    /// them ([`InputMemo`]; the basic and simple RNN cells' input convolution, the reciprocal
    /// gated cell's input and residual convolutions; the other cells convolve input and
    /// state together, so none of theirs repeats). [`RecurrentCell::step`] is this with an
    /// empty memo.
    pub fn step_memo(
        &self,
        inp: CellInput,
        state: Tensor<4>,
        memo: &mut InputMemo,
    ) -> (Tensor<4>, Tensor<4>) {
        let x = inp.input;
        match self {
            Cell::Basic(c) => {
                let xi = memo.get(|| c.conv_input.forward(x));
                let h = c.act.apply(xi + c.conv_state.forward(state));
                (h.clone(), h)
            }
            Cell::Rgc(c) => c.0.step(x, inp.feedback, inp.residual, state, memo),
            Cell::Identity(_) => (x, state),
            Cell::TimeDecay(c) => c.step(CellInput::plain(x), state),
            Cell::Vanilla(c) => {
                let h = memo.get(|| c.conv_input.forward(x)) + c.conv_state.forward(state);
                let h = c.act.apply(maybe_ln(&c.ln, h));
                (h.clone(), h)
            }
            Cell::Gru(c) => {
                let [r, u] = split::<2>(
                    c.conv_ru
                        .forward(Tensor::cat(vec![x.clone(), state.clone()], 1)),
                );
                let r = sigmoid(maybe_ln(&c.ln_r_pre, r) + c.forget_bias);
                let u = sigmoid(maybe_ln(&c.ln_u_pre, u));
                let cand = c.conv_c.forward(Tensor::cat(vec![x, r * state.clone()], 1));
                let cand = c.act.apply(maybe_ln(&c.ln_c_pre, cand));
                let h = gated_sum((u.clone(), state), (u, cand), COMPLEMENT);
                (h.clone(), h)
            }
            Cell::Lstm(c) => {
                let [cs, h] = split::<2>(state);
                let [i, j, f, o] = split::<4>(c.conv.forward(Tensor::cat(vec![x, h], 1)));
                let (i, j, f, o) = (
                    maybe_ln(&c.ln_input, i),
                    maybe_ln(&c.ln_transform, j),
                    maybe_ln(&c.ln_forget, f),
                    maybe_ln(&c.ln_output, o),
                );
                // convrnns: c' = c·σ(f + b_f + w_f⊙c) + σ(i + w_i⊙c)·act(j),
                // h' = act(c')·σ(o + w_o⊙c), all with the old c.
                let (f, i, o) = match &c.peepholes {
                    Some(p) => {
                        let w = |t: &Param<Tensor<3>>| t.val().unsqueeze::<4>() * cs.clone();
                        (f + w(&p.w_f_diag), i + w(&p.w_i_diag), o + w(&p.w_o_diag))
                    }
                    None => (f, i, o),
                };
                let nc = cs * sigmoid(f + c.forget_bias) + sigmoid(i) * c.act.apply(j);
                let nc = maybe_ln(&c.ln_state, nc);
                let nh = c.act.apply(nc.clone()) * sigmoid(o);
                (nh.clone(), Tensor::cat(vec![nc, nh], 1))
            }
            Cell::Ugrnn(c) => {
                let [g, cc] = split::<2>(c.conv.forward(Tensor::cat(vec![x, state.clone()], 1)));
                let g = sigmoid(maybe_ln(&c.ln_g_act, g) + c.forget_bias);
                let cc = tanh(maybe_ln(&c.ln_c_act, cc));
                let h = gated_sum((g.clone(), state), (g, cc), COMPLEMENT);
                (h.clone(), h)
            }
            Cell::Intersection(c) => {
                let [gh, hh, gy, yy] = split::<4>(
                    c.conv
                        .forward(Tensor::cat(vec![x.clone(), state.clone()], 1)),
                );
                let gh = sigmoid(maybe_ln(&c.ln_gh_act, gh) + c.forget_bias);
                let hh = tanh(maybe_ln(&c.ln_h_act, hh));
                let gy = sigmoid(maybe_ln(&c.ln_gy_act, gy) + c.forget_bias);
                let yy = burn::tensor::activation::relu(maybe_ln(&c.ln_y_act, yy));
                let y = gated_sum((gy.clone(), x), (gy, yy), COMPLEMENT);
                let s = gated_sum((gh.clone(), state), (gh, hh), COMPLEMENT);
                (y, s)
            }
        }
    }
}

impl RecurrentCell for Cell {
    type State = Tensor<4>;

    fn zero_state(&self, batch: usize, height: usize, width: usize, device: &Device) -> Tensor<4> {
        Tensor::zeros([batch, self.state_channels().max(1), height, width], device)
    }

    fn accepts_feedback(&self) -> bool {
        matches!(self, Cell::Rgc(_))
    }

    fn step(&self, inp: CellInput, state: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        // One definition: `step_memo` with nothing kept.
        self.step_memo(inp, state, &mut InputMemo::default())
    }
}

impl RgcCell {
    fn build(r: &RgcSpec, ctx: &mut CellCtx<'_>) -> Result<Self> {
        if r.dropout != 0.0 || r.batchnorm.is_some() {
            return Err(ModelError::Config(
                "ReciprocalGatedCell with dropout or batchnorm is not supported yet".into(),
            ));
        }
        let cin = ctx.cin;
        let res_c = ctx.res_c;
        let use_cell = r.gate_filter_size != [0, 0];
        let no = Kw::default();
        let act = |n: &Option<String>| Act::parse(n.as_deref(), &no);
        let tau_act = act(&r.tau_nonlinearity)?;
        let gate_act = act(&r.gate_nonlinearity)?;
        let mk = |ctx: &mut CellCtx<'_>,
                  cin: usize,
                  cout: usize,
                  k: [usize; 2],
                  sep: bool,
                  a: Act,
                  pre_bias: f64|
         -> Result<RgcConv> {
            if sep {
                let k = r.separable_kernel(k, ctx.hw);
                let depth_wise = Conv2d::new(
                    ConvGeom {
                        groups: cin,
                        ..ConvGeom::simple(cin, cin, k, r.use_bias && !r.tensorflow)
                    },
                    &r.padding,
                    r.init_dict.as_ref(),
                    r.bias,
                    ctx.init,
                    ctx.device,
                )?;
                let point_wise = Conv2d::new(
                    ConvGeom::simple(cin, cout, [1, 1], true),
                    &Padding::Named("valid".into()),
                    r.init_dict.as_ref(),
                    if r.use_bias { r.bias } else { None },
                    ctx.init,
                    ctx.device,
                )?;
                let repeat_depth = if r.ds_repeat {
                    Some(Conv2d::new(
                        ConvGeom {
                            groups: cin,
                            ..ConvGeom::simple(cin, cin, k, r.use_bias)
                        },
                        &Padding::Named("same".into()),
                        r.init_dict.as_ref(),
                        r.bias,
                        ctx.init,
                        ctx.device,
                    )?)
                } else {
                    None
                };
                Ok(RgcConv::Separable(SeparableConv {
                    depth_wise,
                    point_wise,
                    repeat_depth,
                    act: a,
                    pre_bias,
                }))
            } else {
                Ok(RgcConv::Plain(PlainConv {
                    conv: Conv2d::new(
                        ConvGeom::simple(cin, cout, k, r.use_bias),
                        &r.padding,
                        r.init_dict.as_ref(),
                        r.bias,
                        ctx.init,
                        ctx.device,
                    )?,
                    act: a,
                    pre_bias,
                }))
            }
        };
        let out = r.out_channels;
        let cd = r.cell_depth;
        let cell_tau_k = r.cell_tau_filter_size.unwrap_or(r.tau_filter_size);
        // Construction order = PyTorchTNN's attribute order.
        let feedback_conv = match ctx.fb_c {
            Some(fb) => Some(mk(
                ctx,
                fb,
                cin,
                r.feedback_filter_size,
                r.feedback_depth_separable,
                act(&r.feedback_activation)?,
                0.0,
            )?),
            None => None,
        };
        let inp2out_conv = if r.input_to_out {
            Some(mk(
                ctx,
                cin,
                out,
                r.in_out_filter_size,
                r.in_out_depth_separable,
                Act::Identity,
                0.0,
            )?)
        } else {
            None
        };
        let out_tau_conv = mk(
            ctx,
            out,
            out,
            r.tau_filter_size,
            r.tau_depth_separable,
            Act::Identity,
            0.0,
        )?;
        let out_gate_conv = if r.residual_to_out_gate {
            Some(mk(
                ctx,
                res_c,
                out,
                r.gate_filter_size,
                r.gate_depth_separable,
                Act::Identity,
                0.0,
            )?)
        } else {
            None
        };
        let (mut res2cell, mut inp2cell, mut ctau, mut cgate, mut c2o) =
            (None, None, None, None, None);
        if use_cell {
            if r.cell_residual {
                res2cell = Some(mk(
                    ctx,
                    res_c,
                    cd,
                    r.ff_filter_size,
                    r.ff_depth_separable,
                    Act::Identity,
                    0.0,
                )?);
            }
            if r.input_to_cell {
                inp2cell = Some(mk(
                    ctx,
                    cin,
                    cd,
                    r.ff_filter_size,
                    r.ff_depth_separable,
                    Act::Identity,
                    0.0,
                )?);
            }
            ctau = Some(mk(
                ctx,
                cd,
                cd,
                cell_tau_k,
                r.tau_depth_separable,
                tau_act,
                r.tau_bias,
            )?);
            cgate = Some(mk(
                ctx,
                out,
                cd,
                r.gate_filter_size,
                r.gate_depth_separable,
                gate_act,
                r.gate_bias,
            )?);
            c2o = Some(mk(
                ctx,
                cd,
                out,
                r.gate_filter_size,
                r.gate_depth_separable,
                Act::Identity,
                0.0,
            )?);
        }
        // TensorFlow's `residual_add`: the identity where the widths agree, else a bias-free
        // 1 × 1 projection.
        let res_identity = r.out_residual && r.tensorflow && res_c == out;
        let res2out_conv = if r.out_residual && !res_identity {
            Some(if r.tensorflow {
                RgcConv::Plain(PlainConv {
                    conv: Conv2d::new(
                        ConvGeom::simple(res_c, out, [1, 1], false),
                        &r.padding,
                        r.init_dict.as_ref(),
                        None,
                        ctx.init,
                        ctx.device,
                    )?,
                    act: Act::Identity,
                    pre_bias: 0.0,
                })
            } else {
                mk(ctx, res_c, out, [1, 1], false, Act::Identity, 0.0)?
            })
        } else {
            None
        };
        let ln_cell = ln(r.layernorm, cd, false, LAYER_NORM_EPS, ctx);
        let ln_out = ln(r.layernorm, out, false, LAYER_NORM_EPS, ctx);
        Ok(RgcCell {
            feedback_conv,
            inp2out_conv,
            out_tau_conv,
            out_gate_conv,
            res2cell_conv: res2cell,
            inp2cell_conv: inp2cell,
            cell_tau_conv: ctau,
            cell_gate_conv: cgate,
            cell2out_conv: c2o,
            res2out_conv,
            ln_cell,
            ln_out,
            p: RgcParams {
                cell_depth: cd,
                out_depth: out,
                use_cell,
                feedback_entry: r.feedback_entry.clone(),
                tau: (r.tau_offset, r.tau_multiplier, r.tau_bias),
                gate: (r.gate_offset, r.gate_multiplier, r.gate_bias),
                tau_act,
                gate_act,
                input_act: act(&r.input_activation)?,
                cell_act: act(&r.cell_activation)?,
                out_act: act(&r.out_activation)?,
                cell_residual: r.cell_residual,
                out_residual: r.out_residual,
                res_identity,
                residual_to_out_gate: r.residual_to_out_gate,
                input_to_cell: r.input_to_cell,
                input_to_out: r.input_to_out,
                cell_to_out: r.cell_to_out,
            },
        })
    }

    /// One step; the results of `x` and `res` alone come from `memo` where it holds them (not
    /// those of `x` when feedback enters at the input: then `x` changes with it).
    fn step(
        &self,
        x: Tensor<4>,
        fb: Option<Tensor<4>>,
        res: Option<Tensor<4>>,
        state: Tensor<4>,
        memo: &mut InputMemo,
    ) -> (Tensor<4>, Tensor<4>) {
        let p = &self.p;
        let (prev_cell, prev_out) = if p.use_cell {
            let parts = state.split_with_sizes(vec![p.cell_depth, p.out_depth], 1);
            let mut it = parts.into_iter();
            (it.next(), it.next().expect("two parts"))
        } else {
            (None, state)
        };
        let fbc = |entry: &str| -> Option<Tensor<4>> {
            match (&fb, &self.feedback_conv) {
                (Some(f), Some(c)) if p.feedback_entry == entry => Some(c.forward(f.clone())),
                _ => None,
            }
        };
        // Every result of the residual alone, then of `x` alone, is looked up in this order.
        let res2cell = match (
            p.cell_residual && prev_cell.is_some(),
            &res,
            &self.res2cell_conv,
        ) {
            (true, Some(r), Some(c)) => Some(memo.get(|| c.forward(r.clone()))),
            _ => None,
        };
        let res2out = match (p.out_residual, &res, &self.res2out_conv) {
            (true, Some(r), Some(c)) => Some(memo.get(|| c.forward(r.clone()))),
            _ => None,
        };
        let res2gate = match (p.residual_to_out_gate, &res, &self.out_gate_conv) {
            (true, Some(r), Some(c)) => Some(memo.get(|| c.forward(r.clone()))),
            _ => None,
        };
        let fb_input = fbc("input");
        // With feedback at the input, `x` changes with the feedback: nothing of it is kept.
        let mut own = InputMemo::default();
        let xm = if fb_input.is_some() { &mut own } else { memo };
        let x = xm.get(|| match fb_input {
            Some(f) => p.input_act.apply(x + f),
            None => p.input_act.apply(x),
        });
        let mut next_cell = None;
        if let Some(pc) = &prev_cell {
            let mut ci: Option<Tensor<4>> = None;
            let add = |a: Option<Tensor<4>>, b: Tensor<4>| {
                Some(match a {
                    Some(a) => a + b,
                    None => b,
                })
            };
            if let Some(r) = res2cell {
                ci = add(ci, r);
            }
            if p.input_to_cell
                && let Some(c) = &self.inp2cell_conv
            {
                ci = add(ci, xm.get(|| c.forward(x.clone())));
            }
            if let Some(f) = fbc("cell") {
                ci = add(ci, f);
            }
            let tau = self.cell_tau_conv.as_ref().map(|c| c.forward(pc.clone()));
            let gate = self
                .cell_gate_conv
                .as_ref()
                .map(|c| c.forward(prev_out.clone()));
            let (Some(tau), Some(gate), Some(ci)) = (tau, gate, ci) else {
                unreachable!("validated: the cell has an input, a τ and a γ convolution")
            };
            let k = [p.tau.1, p.tau.0, p.gate.1, p.gate.0];
            let nc = gated_sum((tau, pc.clone()), (gate, ci), k);
            let nc = maybe_ln(&self.ln_cell, nc);
            next_cell = Some(p.cell_act.apply(nc));
        }
        let mut out_in = match (&self.inp2out_conv, p.input_to_out) {
            (Some(c), true) => xm.get(|| c.forward(x)),
            _ => x,
        };
        if p.cell_to_out
            && let (Some(pc), Some(c)) = (&prev_cell, &self.cell2out_conv)
        {
            out_in = out_in + c.forward(pc.clone());
        }
        if p.out_residual
            && let Some(r) = &res
        {
            if let Some(g) = res2out {
                out_in = out_in + g;
            } else if p.res_identity {
                out_in = out_in + r.clone();
            }
        }
        if let Some(f) = fbc("out") {
            out_in = out_in + f;
        }
        let out_tau = self.out_tau_conv.forward(prev_out.clone());
        let mut out_gate: Option<Tensor<4>> = None;
        if !p.cell_to_out
            && let (Some(pc), Some(c)) = (&prev_cell, &self.cell2out_conv)
        {
            out_gate = Some(c.forward(pc.clone()));
        }
        if let Some(g) = res2gate {
            out_gate = Some(match out_gate {
                Some(a) => a + g,
                None => g,
            });
        }
        let out_tau = p.tau_act.apply(out_tau + p.tau.2);
        let out_gate = match out_gate {
            Some(g) => p.gate_act.apply(g + p.gate.2),
            None => p.gate_act.apply(out_tau.clone().zeros_like() + p.gate.2),
        };
        let k = [p.tau.1, p.tau.0, p.gate.1, p.gate.0];
        let no = gated_sum((out_tau, prev_out), (out_gate, out_in), k);
        let no = p.out_act.apply(maybe_ln(&self.ln_out, no));
        let state = match next_cell {
            Some(c) => Tensor::cat(vec![c, no.clone()], 1),
            None => no.clone(),
        };
        (no, state)
    }
}

type Kw = super::spec::Kwargs;
