//! The graph description: PyTorchTNN's JSON schema (`nodes`, `edges`, `input_nodes`,
//! `output_node`, `input_shape`, `num_timesteps`), read as it is, plus ventral's additions
//! (movie presentation, temporal decoder, harbor order). The same structure is ventral's TOML
//! form (`kind = "convrnn"`).
//!
//! Every module description is tagged by `name` exactly as PyTorchTNN's (`Conv2dCell`,
//! `MaxPool`, `ResidualAdd`, `ReciprocalGatedCell`, …) and takes the same keyword arguments;
//! unknown keys are ignored as PyTorchTNN's `**kwargs` ignores them.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

/// One or two integers (`3` or `[3, 3]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Pair {
    One(usize),
    Two([usize; 2]),
}

impl Pair {
    pub fn get(self) -> [usize; 2] {
        match self {
            Pair::One(v) => [v, v],
            Pair::Two(v) => v,
        }
    }
}

/// PyTorch's `padding`: an integer, a pair, `"same"` or `"valid"` — or `"tf_same"`,
/// TensorFlow's `SAME` (output ⌈H/s⌉, total padding `max((out − 1)·s + d(k − 1) + 1 − H, 0)`,
/// the smaller half first: for a stride-2 convolution it depends on the input size and differs
/// from any PyTorch padding), which the convrnns JSON reader writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Padding {
    Pair(Pair),
    Named(String),
}

impl Default for Padding {
    fn default() -> Self {
        Padding::Pair(Pair::One(0))
    }
}

fn same() -> Padding {
    Padding::Named("same".into())
}
fn one() -> Pair {
    Pair::One(1)
}
fn three() -> Pair {
    Pair::Two([3, 3])
}
fn yes() -> bool {
    true
}
fn forget_bias() -> f64 {
    1.0
}
fn relu() -> Option<String> {
    Some("ReLU".into())
}
fn elu() -> Option<String> {
    Some("ELU".into())
}
fn sigmoid() -> Option<String> {
    Some("Sigmoid".into())
}
fn identity() -> Option<String> {
    Some("Identity".into())
}
fn minus_one() -> f64 {
    -1.0
}
fn one_f() -> f64 {
    1.0
}
fn pair3() -> [usize; 2] {
    [3, 3]
}
fn out_entry() -> String {
    "out".into()
}

/// `Option<String>` whose absence means the field's default and whose `null` means none
/// (PyTorchTNN's `activation=None` vs an omitted argument).
fn nullable<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Option::<String>::deserialize(d)
}

/// `None` is written as `"Identity"` (what it means), so configurations survive formats
/// without `null` (TOML) unchanged.
fn ser_act<S: serde::Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v.as_deref().unwrap_or("Identity"))
}

/// Keyword arguments of an activation (`{"alpha": 1.0}` for ELU, `negative_slope`).
pub type Kwargs = BTreeMap<String, f64>;

/// A pre- or post-memory operation (`pt_tnn.pre_post_memory`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name")]
pub enum OpSpec {
    Identity {},
    Conv2dCell(ConvSpec),
    MaxPool {
        ksize: Pair,
        #[serde(default)]
        stride: Option<Pair>,
        #[serde(default)]
        padding: Option<Pair>,
        #[serde(default)]
        ceil_mode: bool,
    },
    AdaptiveAvgPool {
        output_size: Pair,
        #[serde(default)]
        flatten: bool,
    },
    ActivationLayer {
        #[serde(
            default = "relu",
            deserialize_with = "nullable",
            serialize_with = "ser_act"
        )]
        activation: Option<String>,
        #[serde(default)]
        activation_func_kwargs: Kwargs,
    },
    ResidualAdd {
        feedforward_func_kwargs: Box<OpSpec>,
        #[serde(default)]
        residual_func_kwargs: Option<Box<OpSpec>>,
        #[serde(default, deserialize_with = "nullable", serialize_with = "ser_act")]
        activation: Option<String>,
        #[serde(default)]
        activation_func_kwargs: Kwargs,
    },
    Sequential {
        list_of_func_kwargs: Vec<OpSpec>,
    },
    FullyConnected {
        out_channels: usize,
        #[serde(default)]
        init_dict: Option<serde_json::Value>,
        #[serde(default = "yes")]
        use_bias: bool,
        #[serde(default)]
        bias: Option<f64>,
        #[serde(default)]
        dropout: f64,
        #[serde(default)]
        batchnorm: Option<usize>,
        #[serde(
            default = "relu",
            deserialize_with = "nullable",
            serialize_with = "ser_act"
        )]
        activation: Option<String>,
        #[serde(default)]
        activation_func_kwargs: Kwargs,
    },
}

/// `Conv2dCell` (and the convolutions inside `ResidualAdd`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConvSpec {
    /// Filled from the graph when absent (the harbor's channels).
    #[serde(default)]
    pub in_channels: Option<usize>,
    pub out_channels: usize,
    pub ksize: Pair,
    #[serde(default = "one")]
    pub stride: Pair,
    #[serde(default)]
    pub padding: Padding,
    #[serde(default = "one")]
    pub dilation: Pair,
    #[serde(default = "one_usize")]
    pub groups: usize,
    #[serde(default = "yes")]
    pub use_bias: bool,
    #[serde(default)]
    pub bias: Option<f64>,
    #[serde(default)]
    pub init_dict: Option<serde_json::Value>,
    #[serde(default)]
    pub dropout: f64,
    #[serde(default)]
    pub batchnorm: Option<usize>,
    #[serde(default)]
    pub batchnorm_timevary: bool,
    #[serde(default, deserialize_with = "nullable", serialize_with = "ser_act")]
    pub activation: Option<String>,
    #[serde(default)]
    pub activation_func_kwargs: Kwargs,
}

fn is_false(v: &bool) -> bool {
    !*v
}

fn one_usize() -> usize {
    1
}

/// A local recurrent cell (`pt_tnn.recurrent_cells`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name")]
pub enum CellSpec {
    IdentityCell {},
    TimeDecayRecurrentCell {
        #[serde(default)]
        tau: f64,
        #[serde(default = "yes")]
        trainable: bool,
        #[serde(default)]
        init_dict: Option<serde_json::Value>,
    },
    /// `h = act(conv_input(x) + conv_state(h))` (PyTorchTNN's basic cell; padding 0 by default).
    ConvRNNBasicCell {
        out_channels: usize,
        #[serde(
            default = "relu",
            deserialize_with = "nullable",
            serialize_with = "ser_act"
        )]
        activation: Option<String>,
        #[serde(default = "three")]
        ksize: Pair,
        #[serde(default = "one")]
        stride: Pair,
        #[serde(default)]
        padding: Padding,
        #[serde(default)]
        activation_func_kwargs: Kwargs,
    },
    /// SimpleRNN (`ConvNormBasicCell`): `h = ELU(LN(W_x*x + W_h*h))`.
    VanillaRNNCell(GatedSpec),
    GRUCell(GatedSpec),
    LSTMCell(GatedSpec),
    UGRNNCell(GatedSpec),
    IntersectionRNNCell(GatedSpec),
    ReciprocalGatedCell(Box<RgcSpec>),
}

/// The arguments the convolutional gated cells share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatedSpec {
    #[serde(default)]
    pub input_in_channels: Option<usize>,
    pub out_channels: usize,
    pub ksize: Pair,
    #[serde(default = "same")]
    pub padding: Padding,
    #[serde(default = "yes")]
    pub use_bias: bool,
    #[serde(default)]
    pub bias: Option<f64>,
    #[serde(default)]
    pub init_dict: Option<serde_json::Value>,
    /// `None`: the cell's own default (VanillaRNN: true; the others: false).
    #[serde(default)]
    pub layernorm: Option<bool>,
    /// LayerNorm statistics over C, H and W of each image (convrnns'
    /// `tf.contrib.layers.layer_norm`, with ε = 1e-5 for its 1e-12: see `ops::LayerNormC`)
    /// instead of over channels at each pixel (PyTorchTNN's `nn.LayerNorm(C)`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub layernorm_per_image: bool,
    /// The layer norms' ε (default 1e-5, [`super::ops::LAYER_NORM_EPS`]; TensorFlow's
    /// convrnns cells use 1e-12).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layernorm_eps: Option<f64>,
    #[serde(default = "forget_bias")]
    pub forget_bias: f64,
    /// LSTM only: convrnns' peepholes (`ConvLSTMCell(use_peepholes=True)`: per-position
    /// weights `[C, H, W]` from the old cell state into the input, forget and output gates;
    /// not in PyTorchTNN).
    #[serde(default, skip_serializing_if = "is_false")]
    pub use_peepholes: bool,
    /// `None` → the cell's default (VanillaRNN ELU, GRU/LSTM Tanh); `"null"` is not allowed
    /// to mean identity here — write `"Identity"`.
    #[serde(default)]
    pub activation: Option<String>,
    #[serde(default)]
    pub activation_func_kwargs: Kwargs,
}

impl GatedSpec {
    /// The layer norms' ε.
    pub fn layernorm_eps(&self) -> f64 {
        self.layernorm_eps.unwrap_or(super::ops::LAYER_NORM_EPS)
    }
}

/// `ReciprocalGatedCell`'s arguments (the general form of Nayebi et al. 2018).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RgcSpec {
    #[serde(default)]
    pub input_in_channels: Option<usize>,
    pub out_channels: usize,
    pub cell_depth: usize,
    #[serde(default = "same")]
    pub padding: Padding,
    #[serde(default = "yes")]
    pub use_bias: bool,
    #[serde(default)]
    pub bias: Option<f64>,
    #[serde(default)]
    pub init_dict: Option<serde_json::Value>,
    #[serde(default)]
    pub layernorm: bool,
    #[serde(default = "pair3")]
    pub tau_filter_size: [usize; 2],
    #[serde(default = "pair3")]
    pub gate_filter_size: [usize; 2],
    #[serde(default = "pair3")]
    pub ff_filter_size: [usize; 2],
    #[serde(default = "pair3")]
    pub in_out_filter_size: [usize; 2],
    #[serde(default)]
    pub cell_tau_filter_size: Option<[usize; 2]>,
    #[serde(default = "pair3")]
    pub feedback_filter_size: [usize; 2],
    #[serde(default = "out_entry")]
    pub feedback_entry: String,
    #[serde(default)]
    pub feedback_depth_separable: bool,
    #[serde(default)]
    pub ff_depth_separable: bool,
    #[serde(default)]
    pub in_out_depth_separable: bool,
    #[serde(default)]
    pub gate_depth_separable: bool,
    #[serde(default)]
    pub tau_depth_separable: bool,
    #[serde(
        default = "sigmoid",
        deserialize_with = "nullable",
        serialize_with = "ser_act"
    )]
    pub tau_nonlinearity: Option<String>,
    #[serde(
        default = "sigmoid",
        deserialize_with = "nullable",
        serialize_with = "ser_act"
    )]
    pub gate_nonlinearity: Option<String>,
    /// Added inside the τ nonlinearity (the median cell's 4.1473); PyTorchTNN stores it but
    /// never applies it — ventral applies it (see docs/convrnn.md).
    #[serde(default)]
    pub tau_bias: f64,
    #[serde(default)]
    pub gate_bias: f64,
    #[serde(default = "minus_one")]
    pub tau_multiplier: f64,
    #[serde(default = "minus_one")]
    pub gate_multiplier: f64,
    #[serde(default = "one_f")]
    pub tau_offset: f64,
    #[serde(default = "one_f")]
    pub gate_offset: f64,
    #[serde(
        default = "identity",
        deserialize_with = "nullable",
        serialize_with = "ser_act"
    )]
    pub input_activation: Option<String>,
    #[serde(
        default = "identity",
        deserialize_with = "nullable",
        serialize_with = "ser_act"
    )]
    pub feedback_activation: Option<String>,
    #[serde(
        default = "elu",
        deserialize_with = "nullable",
        serialize_with = "ser_act"
    )]
    pub cell_activation: Option<String>,
    #[serde(
        default = "elu",
        deserialize_with = "nullable",
        serialize_with = "ser_act"
    )]
    pub out_activation: Option<String>,
    #[serde(default)]
    pub cell_residual: bool,
    #[serde(default)]
    pub out_residual: bool,
    /// convrnns' TensorFlow cell (set by the convrnns JSON reader, `convrnn::tf_json`): a
    /// depthwise-separable convolution has one bias, after its pointwise part
    /// (`tf.nn.separable_conv2d` + bias), not one on each part as in PyTorchTNN; and the output
    /// residual is convrnns' `residual_add` — added as it is where its channels are the
    /// output's, else through a bias-free 1 × 1 projection — instead of PyTorchTNN's 1 × 1
    /// convolution with bias.
    /// (Written only when set, so the configurations of PyTorchTNN-form cells, and the run
    /// hashes made from them, are as before.)
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tensorflow: bool,
    #[serde(default = "yes")]
    pub residual_to_out_gate: bool,
    #[serde(default = "yes")]
    pub input_to_cell: bool,
    #[serde(default)]
    pub input_to_out: bool,
    #[serde(default)]
    pub cell_to_out: bool,
    #[serde(default)]
    pub ds_repeat: bool,
    /// Not supported (must be 0 / absent); read so that a config using them is refused
    /// rather than silently run without.
    #[serde(default)]
    pub dropout: f64,
    #[serde(default)]
    pub batchnorm: Option<usize>,
}

impl RgcSpec {
    /// The depthwise kernel of a separable convolution of size `k` on a `hw` map: convrnns'
    /// TensorFlow cell (`cell_utils._ds_conv`) shrinks each side to the map's where the map
    /// is smaller (a 7 × 7 kernel on a 4 × 4 map is 4 × 4, `same`-padded 1 above and 2
    /// below); PyTorchTNN's form keeps `k`.
    pub fn separable_kernel(&self, k: [usize; 2], hw: [usize; 2]) -> [usize; 2] {
        if self.tensorflow {
            [k[0].min(hw[0]).max(1), k[1].min(hw[1]).max(1)]
        } else {
            k
        }
    }
}

/// The harbor (`pt_tnn.harbor_policy`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name")]
pub enum HarborSpec {
    /// Resize every input to the node's input size, concatenate on channels. The resize is
    /// torchvision's `Resize` (bilinear with antialiasing, PyTorchTNN's) or, with
    /// `align_corners`, TensorFlow's `resize_images(align_corners=True)` (the original
    /// convrnns harbor; set by the convrnns JSON reader, [`super::tf_json`]).
    ResizeConcat {
        #[serde(default, skip_serializing_if = "is_false")]
        align_corners: bool,
    },
    /// Concatenate; every input must already have the node's size.
    Identity {},
}

/// A node (area).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSpec {
    pub name: String,
    /// The predecessor whose output size is this node's input size (none for input nodes).
    #[serde(default)]
    pub shape_from: Option<String>,
    pub harbor_policy: HarborSpec,
    pub pre_memory: OpSpec,
    pub recurrent_cell: CellSpec,
    pub post_memory: OpSpec,
    pub out_channels: usize,
    /// Whether the post-memory is a residual block (gets the harbor output as `residual`).
    #[serde(default)]
    pub residual: Option<bool>,
}

/// An edge: one step of delay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgeSpec {
    pub from: String,
    pub to: String,
}
