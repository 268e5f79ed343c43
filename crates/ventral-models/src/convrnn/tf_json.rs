//! The original convrnns model JSON files (neuroailab/convrnns, TensorFlow 1.13:
//! `convrnns/models/{cell}_{shallow,intermediate}[_t22|_t30].json`), translated into ventral's
//! graph description with TensorFlow's semantics kept where they differ from PyTorchTNN's:
//!
//! - `SAME` padding is TensorFlow's (`"tf_same"`: for a stride-2 convolution the odd padding
//!   pixel goes after, and how much depends on the input size);
//! - the harbor resizes with `resize_images(align_corners=True)` (`ResizeConcat {
//!   align_corners = true }`);
//! - the reciprocal gated cells' parameters as convrnns creates them (`RgcSpec::tensorflow`):
//!   no bias on the generic cell's plain convolutions, one bias per separable convolution
//!   (after its pointwise part), the output residual by `residual_add` (as it is at equal
//!   widths, else a bias-free 1 × 1 projection) — each preset's trainable parameters are then
//!   the original graph's (`scripts/convrnns_tf_variables.py`);
//! - `max_pool` with `SAME` is PyTorch's ceil mode (the same windows for the configs' 2 × 2 / 2
//!   pools; other `SAME` pools are refused);
//! - the operations' defaults are convrnns' (`conv`: ReLU, bias 0; `fc`: ReLU, bias 1;
//!   `residual_add`: a bias-free 1 × 1 projection where the widths differ), and the cell of
//!   the cell layers comes from the file name as `model_func.py` takes it (`rgc_shallow.json` →
//!   reciprocal gated cells in conv3–5), with `model_func.py`'s overrides: the median cell of
//!   `configs/median_rgcell_cfg.py` and its long-range feedback edges (`edges_5`) for
//!   `rgc_intermediate`, the searched LSTM constants of `configs/lstm_shallow.npz` for
//!   `lstm_shallow`, the presentations (16 / 17 steps with the image off at 12; `_t22` / `_t30`:
//!   a constant image for 22 / 30 steps).
//!
//! What convrnns does and ventral does not (refused with the node and the reason, never run
//! silently otherwise): dropout with `keep_prob < 1`, batch/group norm in the convolutions,
//! the harbor's `preproc` and non-resize spatial ops.
//! Layer norms take ε = 1e-5 for TensorFlow's 1e-12 (`ops::LayerNormC`: 1e-12 overflows the
//! gradients of the steps before the image arrives). Initialisation is ventral's (PyTorch's defaults and the JSON's constant biases), not
//! TensorFlow's Xavier / variance scaling; `weight_decay` is the training config's.

use std::collections::BTreeMap;

use serde_json::Value;

use super::config::{ConvRnnConfig, Decoder, HarborOrder, Movie};
use super::registry::{CellKind, rgc_base, rgc_median};
use super::spec::{
    CellSpec, ConvSpec, EdgeSpec, GatedSpec, HarborSpec, Kwargs, NodeSpec, OpSpec, Padding, Pair,
    RgcSpec,
};
use crate::error::{ModelError, Result};

/// Whether a parsed JSON graph is in convrnns' form (nodes with `harbor` / `memory` and
/// pre-memory *lists*) rather than PyTorchTNN's (`harbor_policy`, `recurrent_cell`).
pub fn is_convrnns_json(v: &Value) -> bool {
    v.get("nodes")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .is_some_and(|n| {
            n.get("memory").is_some() || n.get("pre_memory").is_some_and(Value::is_array)
        })
}

/// The long-range feedback edges `model_func.py` adds to `rgc_intermediate`
/// (`configs/median_rgcell_cfg.py::edges_5`).
pub const EDGES_5: [(&str, &str); 5] = [
    ("conv8", "conv5"),
    ("conv9", "conv6"),
    ("conv10", "conv7"),
    ("conv7", "conv6"),
    ("conv10", "conv9"),
];

/// `configs/lstm_shallow.npz` (`model_params.layer_params`), read once with NumPy:
/// (node, filter size, forget bias, constant bias initialiser, peepholes, out depth); every
/// layer has `layer_norm = True`.
const LSTM_SHALLOW: [(&str, usize, f64, f64, bool, usize); 3] = [
    (
        "conv3",
        2,
        1.3561755203084322,
        1.6427688907776656,
        false,
        128,
    ),
    ("conv4", 3, 0.977962918535079, -1.166018906771675, true, 256),
    (
        "conv5",
        4,
        0.9249280259963113,
        -1.3495015766804237,
        false,
        256,
    ),
];

struct Reader<'a> {
    origin: &'a str,
}

impl Reader<'_> {
    fn err(&self, node: &str, msg: impl std::fmt::Display) -> ModelError {
        if node.is_empty() {
            ModelError::Config(format!("{}: {msg}", self.origin))
        } else {
            ModelError::Config(format!("{}: node {node}: {msg}", self.origin))
        }
    }
}

fn get_usize(v: &Value) -> Option<usize> {
    v.as_u64().map(|u| u as usize).or_else(|| {
        v.as_f64()
            .filter(|f| *f >= 0.0 && f.fract() == 0.0)
            .map(|f| f as usize)
    })
}

/// `3`, `3.0`, `[3, 3]` or a TF 4-vector `[1, 3, 3, 1]` → `[h, w]`.
fn pair_of(v: &Value) -> Option<[usize; 2]> {
    if let Some(u) = get_usize(v) {
        return Some([u, u]);
    }
    let a = v.as_array()?;
    let u: Option<Vec<usize>> = a.iter().map(get_usize).collect();
    match u?.as_slice() {
        [h, w] => Some([*h, *w]),
        [1, h, w, 1] => Some([*h, *w]),
        _ => None,
    }
}

/// A TensorFlow activation name (`tf.nn.<name>`) → ventral's (`None`: identity).
fn activation(
    v: Option<&Value>,
    default: Option<&str>,
) -> std::result::Result<Option<String>, String> {
    let name = match v {
        None => default.map(str::to_string),
        Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(o) => return Err(format!("activation {o} is not a name")),
    };
    Ok(match name.as_deref() {
        None | Some("identity") => None,
        Some("elu") => Some("ELU".into()),
        Some("relu") => Some("ReLU".into()),
        Some("sigmoid") => Some("Sigmoid".into()),
        Some("tanh") => Some("Tanh".into()),
        Some(o) => {
            return Err(format!(
                "activation '{o}' is not one of elu, relu, sigmoid, tanh"
            ));
        }
    })
}

fn act_op(name: &str) -> OpSpec {
    OpSpec::ActivationLayer {
        activation: Some(name.into()),
        activation_func_kwargs: Kwargs::new(),
    }
}

fn conv_spec(
    c: usize,
    k: [usize; 2],
    s: [usize; 2],
    padding: Padding,
    bias: Option<f64>,
    act: Option<String>,
) -> ConvSpec {
    ConvSpec {
        in_channels: None,
        out_channels: c,
        ksize: Pair::Two(k),
        stride: Pair::Two(s),
        padding,
        dilation: Pair::One(1),
        groups: 1,
        use_bias: bias.is_some(),
        bias,
        init_dict: None,
        dropout: 0.0,
        batchnorm: None,
        batchnorm_timevary: false,
        activation: act,
        activation_func_kwargs: Kwargs::new(),
    }
}

/// One translated pre/post-memory item.
#[allow(clippy::large_enum_variant)]
enum Item {
    Op(OpSpec),
    /// `residual_add`: the previous operation plus the node's harbor output.
    Residual,
}

impl Reader<'_> {
    fn padding(&self, node: &str, v: Option<&Value>) -> Result<Padding> {
        match v.and_then(Value::as_str).unwrap_or("SAME") {
            "SAME" | "same" => Ok(Padding::Named("tf_same".into())),
            "VALID" | "valid" => Ok(Padding::Named("valid".into())),
            o => Err(self.err(node, format!("padding '{o}' is not SAME or VALID"))),
        }
    }

    fn flag(&self, node: &str, op: &Map, key: &str) -> Result<()> {
        if op.get(key).is_some_and(|v| v.as_bool() == Some(true)) {
            return Err(self.err(
                node,
                format!("{key} = true is not supported by ventral's reader of convrnns JSON"),
            ));
        }
        Ok(())
    }

    /// A convrnns operation (`{"function": …, kwargs}`).
    fn op(&self, node: &str, op: &Value) -> Result<Option<Item>> {
        let o = op
            .as_object()
            .ok_or_else(|| self.err(node, "an operation is not an object"))?;
        let f = o.get("function").and_then(Value::as_str).unwrap_or("");
        let conv = |default_act: Option<&str>| -> Result<Option<Item>> {
            self.flag(node, o, "batch_norm")?;
            self.flag(node, o, "group_norm")?;
            let c = o
                .get("out_depth")
                .and_then(get_usize)
                .ok_or_else(|| self.err(node, format!("{f} has no out_depth")))?;
            let k = match o.get("ksize") {
                None => [3, 3],
                Some(v) => pair_of(v)
                    .ok_or_else(|| self.err(node, format!("{f}: ksize {v} is not a size")))?,
            };
            let s = match o.get("strides") {
                None => [1, 1],
                Some(v) => pair_of(v).ok_or_else(|| self.err(node, format!("{f}: strides {v}")))?,
            };
            let use_bias = o.get("use_bias").and_then(Value::as_bool).unwrap_or(true);
            let bias = use_bias.then(|| o.get("bias").and_then(Value::as_f64).unwrap_or(0.0));
            let act =
                activation(o.get("activation"), default_act).map_err(|e| self.err(node, e))?;
            let pad = self.padding(node, o.get("padding"))?;
            Ok(Some(Item::Op(OpSpec::Conv2dCell(conv_spec(
                c, k, s, pad, bias, act,
            )))))
        };
        match f {
            // Both convolve the whole harbor output; `return_input` hands it on as the
            // residual, which ventral always does.
            "component_conv" => conv(None),
            "conv" => conv(Some("relu")),
            "dropout" => {
                let keep = o.get("keep_prob").and_then(Value::as_f64).unwrap_or(1.0);
                if keep != 1.0 {
                    return Err(self.err(node, format!("dropout with keep_prob {keep} < 1 is not supported (ventral refuses dropout)")));
                }
                Ok(None)
            }
            "max_pool" => {
                let k = o.get("ksize").and_then(pair_of).unwrap_or([2, 2]);
                let s = o.get("strides").and_then(pair_of).unwrap_or(k);
                let same = matches!(o.get("padding").and_then(Value::as_str), Some("SAME") | None);
                // TF SAME pads (out − 1)·s + k − H, the smaller half first: with k ≤ s + 1
                // nothing goes before, and ceil mode takes the same windows.
                if same && (k[0] > s[0].saturating_add(1) || k[1] > s[1].saturating_add(1)) {
                    return Err(self.err(node, format!("max_pool {k:?}/{s:?} with SAME pads before the input, which ventral's pools cannot")));
                }
                Ok(Some(Item::Op(OpSpec::MaxPool {
                    ksize: Pair::Two(k),
                    stride: Some(Pair::Two(s)),
                    padding: Some(Pair::One(0)),
                    ceil_mode: same,
                })))
            }
            "elu" | "relu" | "sigmoid" | "tanh" => {
                let a = activation(Some(&Value::String(f.into())), None)
                    .map_err(|e| self.err(node, e))?
                    .unwrap_or_default();
                Ok(Some(Item::Op(act_op(&a))))
            }
            "residual_add" => {
                self.flag(node, o, "batch_norm")?;
                self.flag(node, o, "group_norm")?;
                Ok(Some(Item::Residual))
            }
            "global_pool" => match o.get("kind").and_then(Value::as_str).unwrap_or("avg") {
                "avg" => Ok(Some(Item::Op(OpSpec::AdaptiveAvgPool {
                    output_size: Pair::Two([1, 1]),
                    flatten: true,
                }))),
                k => Err(self.err(node, format!("global_pool kind '{k}' is not supported (avg is)"))),
            },
            "flatten" | "identity" => Ok(None),
            "fc" => {
                let c = o
                    .get("out_depth")
                    .and_then(get_usize)
                    .ok_or_else(|| self.err(node, "fc has no out_depth"))?;
                self.flag(node, o, "batch_norm")?;
                let use_bias = o.get("use_bias").and_then(Value::as_bool).unwrap_or(true);
                let act = activation(o.get("activation"), Some("relu")).map_err(|e| self.err(node, e))?;
                Ok(Some(Item::Op(OpSpec::FullyConnected {
                    out_channels: c,
                    init_dict: None,
                    use_bias,
                    bias: use_bias.then(|| o.get("bias").and_then(Value::as_f64).unwrap_or(1.0)),
                    dropout: 0.0,
                    batchnorm: None,
                    activation: act,
                    activation_func_kwargs: Kwargs::new(),
                })))
            }
            "" => Err(self.err(node, "an operation has no \"function\"")),
            o => Err(self.err(node, format!("operation '{o}' is not one ventral reads (component_conv, conv, dropout, max_pool, elu, relu, residual_add, global_pool, flatten, fc, identity)"))),
        }
    }

    fn ops(&self, node: &str, v: Option<&Value>) -> Result<Vec<Item>> {
        let mut out = Vec::new();
        match v {
            None | Some(Value::Null) => {}
            Some(Value::Array(a)) => {
                for op in a {
                    if let Some(i) = self.op(node, op)? {
                        out.push(i);
                    }
                }
            }
            Some(o) => return Err(self.err(node, format!("pre/post memory {o} is not a list"))),
        }
        Ok(out)
    }
}

type Map = serde_json::Map<String, Value>;

/// Channels an operation sets (`None`: it keeps its input's).
fn sets_channels(op: &OpSpec) -> Option<usize> {
    match op {
        OpSpec::Conv2dCell(s) => Some(s.out_channels),
        OpSpec::FullyConnected { out_channels, .. } => Some(*out_channels),
        _ => None,
    }
}

/// Channels out of a list of operations (`None`: unchanged).
fn items_channels(items: &[Item], c: Option<usize>) -> Option<usize> {
    items.iter().fold(c, |c, i| match i {
        Item::Op(o) => sets_channels(o).or(c),
        Item::Residual => c,
    })
}

/// Folds `[…, op, residual_add, …]` into ventral's `ResidualAdd { op, projection }`; `res` is
/// the harbor output's channels, `cin` the channels entering `items`.
fn fold(items: Vec<Item>, res: usize, cin: usize) -> std::result::Result<OpSpec, String> {
    let mut ops: Vec<OpSpec> = Vec::new();
    let mut c = cin;
    for i in items {
        match i {
            Item::Op(o) => {
                c = sets_channels(&o).unwrap_or(c);
                ops.push(o);
            }
            Item::Residual => {
                let ff = ops.pop().ok_or("residual_add has no operation before it")?;
                let projection = (c != res).then(|| {
                    Box::new(OpSpec::Conv2dCell(conv_spec(
                        c,
                        [1, 1],
                        [1, 1],
                        Padding::Named("valid".into()),
                        None,
                        None,
                    )))
                });
                ops.push(OpSpec::ResidualAdd {
                    feedforward_func_kwargs: Box::new(ff),
                    residual_func_kwargs: projection,
                    activation: None,
                    activation_func_kwargs: Kwargs::new(),
                });
            }
        }
    }
    Ok(match ops.len() {
        0 => OpSpec::Identity {},
        1 => ops.pop().expect("one"),
        _ => OpSpec::Sequential {
            list_of_func_kwargs: ops,
        },
    })
}

impl Reader<'_> {
    /// The cell of a cell layer from its `memory` dictionary and the file's cell type.
    fn cell(
        &self,
        node: &str,
        kind: CellKind,
        mem: &Map,
        cin: usize,
        n_nodes: usize,
    ) -> Result<CellSpec> {
        let out = mem.get("out_depth").and_then(get_usize).unwrap_or(cin);
        let filter = mem.get("filter_size").and_then(pair_of).unwrap_or([3, 3]);
        let gated = |layernorm: bool,
                     act: Option<&str>,
                     forget_bias: f64,
                     bias: Option<f64>,
                     k: [usize; 2],
                     out: usize| GatedSpec {
            input_in_channels: Some(cin),
            out_channels: out,
            ksize: Pair::Two(k),
            padding: Padding::Named("same".into()),
            use_bias: true,
            bias,
            init_dict: None,
            layernorm: Some(layernorm),
            forget_bias,
            use_peepholes: false,
            layernorm_per_image: true,
            layernorm_eps: None,
            activation: act.map(str::to_string),
            activation_func_kwargs: Kwargs::new(),
        };
        let ln = mem.get("layer_norm").and_then(Value::as_bool);
        let fb = mem
            .get("forget_bias")
            .and_then(Value::as_f64)
            .unwrap_or(1.0);
        Ok(match kind {
            CellKind::SimpleRnn => CellSpec::VanillaRNNCell(gated(
                ln.unwrap_or(true),
                Some("ELU"),
                1.0,
                None,
                filter,
                out,
            )),
            CellKind::Gru => CellSpec::GRUCell(gated(
                ln.unwrap_or(false),
                Some("Tanh"),
                fb,
                None,
                filter,
                out,
            )),
            CellKind::Ugrnn => {
                CellSpec::UGRNNCell(gated(ln.unwrap_or(false), None, fb, None, filter, out))
            }
            CellKind::IntersectionRnn => CellSpec::IntersectionRNNCell(gated(
                ln.unwrap_or(false),
                None,
                fb,
                None,
                filter,
                out,
            )),
            CellKind::Lstm => {
                if n_nodes == 6 {
                    let Some(&(_, k, fb, b, peep, out)) = LSTM_SHALLOW.iter().find(|l| l.0 == node)
                    else {
                        return Err(self.err(node, "not a cell layer of lstm_shallow"));
                    };
                    let mut g = gated(true, Some("Tanh"), fb, Some(b), [k, k], out);
                    g.use_peepholes = peep;
                    CellSpec::LSTMCell(g)
                } else {
                    let mut g = gated(ln.unwrap_or(false), Some("Tanh"), fb, None, filter, out);
                    g.use_peepholes =
                        mem.get("use_peepholes").and_then(Value::as_bool) == Some(true);
                    CellSpec::LSTMCell(g)
                }
            }
            CellKind::Rgc if n_nodes == 11 => {
                let mut r = rgc_median(cin, 64);
                r.tensorflow = true;
                // convrnns' median cell (utils/median_rgcell.py) adds tau_bias / gate_bias
                // after its plain τ / γ convolutions only; its separable ones (the median
                // config's, `_ds_conv`) go to the nonlinearity without them.
                if r.tau_depth_separable {
                    r.tau_bias = 0.0;
                }
                if r.gate_depth_separable {
                    r.gate_bias = 0.0;
                }
                CellSpec::ReciprocalGatedCell(Box::new(r))
            }
            CellKind::Rgc => CellSpec::ReciprocalGatedCell(Box::new(self.rgc(node, mem, cin)?)),
            CellKind::TimeDecay | CellKind::Feedforward => unreachable!("not a cell layer kind"),
        })
    }

    /// `ReciprocalGateCell(**memory)` with TensorFlow's class defaults for absent keys.
    fn rgc(&self, node: &str, mem: &Map, cin: usize) -> Result<RgcSpec> {
        let out = mem.get("out_depth").and_then(get_usize).unwrap_or(cin);
        let cell_depth = mem.get("cell_depth").and_then(get_usize).unwrap_or(out);
        let mut r = rgc_base(cin, cell_depth);
        r.out_channels = out;
        // Every key below takes convrnns' class default (cells.py::ReciprocalGateCell.__init__:
        // tanh gates, no input → cell, no residual → output gate) where the file omits it.
        let size = |k: &str, d: [usize; 2]| mem.get(k).and_then(pair_of).unwrap_or(d);
        r.tau_filter_size = size("tau_filter_size", [3, 3]);
        r.gate_filter_size = size("gate_filter_size", [3, 3]);
        r.ff_filter_size = size("ff_filter_size", [3, 3]);
        r.in_out_filter_size = size("in_out_filter_size", [3, 3]);
        r.feedback_filter_size = size("feedback_filter_size", [3, 3]);
        r.cell_tau_filter_size = mem.get("cell_tau_filter_size").and_then(pair_of);
        let b = |k: &str, d: bool| mem.get(k).and_then(Value::as_bool).unwrap_or(d);
        let f = |k: &str, d: f64| mem.get(k).and_then(Value::as_f64).unwrap_or(d);
        let a = |k: &str, d: Option<&str>| {
            activation(mem.get(k), d).map_err(|e| self.err(node, format!("{k}: {e}")))
        };
        r.feedback_depth_separable = b("feedback_depth_separable", false);
        r.ff_depth_separable = b("ff_depth_separable", false);
        r.in_out_depth_separable = b("in_out_depth_separable", false);
        r.gate_depth_separable = b("gate_depth_separable", false);
        r.tau_depth_separable = b("tau_depth_separable", false);
        r.ds_repeat = b("ds_repeat", false);
        r.tau_nonlinearity = a("tau_nonlinearity", Some("tanh"))?;
        r.gate_nonlinearity = a("gate_nonlinearity", Some("tanh"))?;
        // convrnns' generic cell (utils/cells.py) stores tau_bias and gate_bias but never
        // adds them.
        r.tau_bias = 0.0;
        r.gate_bias = 0.0;
        r.tau_multiplier = f("tau_multiplier", -1.0);
        r.gate_multiplier = f("gate_multiplier", -1.0);
        r.tau_offset = f("tau_offset", 1.0);
        r.gate_offset = f("gate_offset", 1.0);
        r.input_activation = a("input_activation", None)?;
        r.feedback_activation = a("feedback_activation", None)?;
        r.cell_activation = a("cell_activation", Some("elu"))?;
        r.out_activation = a("out_activation", Some("elu"))?;
        r.cell_residual = b("cell_residual", false);
        r.out_residual = b("out_residual", false);
        r.residual_to_out_gate = b("residual_to_out_gate", false);
        r.input_to_cell = b("input_to_cell", false);
        r.input_to_out = b("input_to_out", false);
        r.cell_to_out = b("cell_to_out", false);
        // convrnns' cell: its plain convolutions (`ReciprocalGateCell._conv`) create no bias
        // (a missing bias initialiser becomes Xavier first, and the bias is made only when
        // it is missing), its separable ones one after the pointwise part, and its output
        // residual is `residual_add`; but a plain input → output convolution has one.
        r.tensorflow = true;
        r.use_bias = false;
        if r.input_to_out && !r.in_out_depth_separable {
            return Err(self.err(
                node,
                "input_to_out without in_out_depth_separable: convrnns gives that convolution a \
                 bias and the cell's other plain convolutions none, which ventral's cell does \
                 not express (no file of the zoo does this)",
            ));
        }
        if b("layer_norm", false) {
            return Err(self.err(node, "the reciprocal gated cell's layer_norm (TensorFlow's, over each image) is not supported"));
        }
        r.feedback_entry = mem
            .get("feedback_entry")
            .and_then(Value::as_str)
            .unwrap_or("out")
            .to_string();
        for k in [
            "residual_to_cell_tau",
            "residual_to_cell_gate",
            "residual_to_out_tau",
            "input_to_tau",
            "input_to_gate",
            "batch_norm",
            "batch_norm_cell_out",
        ] {
            if b(k, false) {
                return Err(self.err(
                    node,
                    format!("the reciprocal gated cell's {k} = true is not supported"),
                ));
            }
        }
        if f("recurrent_keep_prob", 1.0) != 1.0 {
            return Err(self.err(
                node,
                "recurrent dropout (recurrent_keep_prob < 1) is not supported",
            ));
        }
        Ok(r)
    }
}

/// The cell type `model_func.py` takes from the file name (`rgc_shallow.json` → `rgc`), or
/// the JSON's own `"convrnn_type"` (a ventral key, for renamed files).
fn cell_kind(v: &Value, origin: &str) -> Result<CellKind> {
    let stem = std::path::Path::new(origin)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("");
    let name = v
        .get("convrnn_type")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| stem.split('_').next().unwrap_or("").to_lowercase());
    CellKind::ALL
        .into_iter()
        .find(|k| *k != CellKind::Feedforward && k.prefix() == name)
        .ok_or_else(|| {
            ModelError::Config(format!(
                "{origin}: a convrnns model JSON names its cell type in the file name as \
                 convrnns' model_func does (rgc_shallow.json, ugrnn_intermediate.json: one of \
                 timedecay, simplernn, gru, lstm, ugrnn, intersectionrnn, rgc), or in a \
                 top-level \"convrnn_type\" key; got '{name}'"
            ))
        })
}

/// Translate a convrnns model JSON (parsed) into ventral's graph description; `origin` is
/// the file's path (its name gives the cell type).
pub fn translate(v: &Value, origin: &str) -> Result<ConvRnnConfig> {
    let r = Reader { origin };
    let kind = cell_kind(v, origin)?;
    let nodes = v
        .get("nodes")
        .and_then(Value::as_array)
        .ok_or_else(|| r.err("", "no \"nodes\" list"))?;
    let n = nodes.len();
    if n != 6 && n != 11 {
        return Err(r.err("", format!("convrnns' model_func builds 6-node (shallow) or 11-node (intermediate) graphs; this one has {n} nodes")));
    }
    let mut edges: Vec<(String, String)> = Vec::new();
    for e in v
        .get("edges")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (Some(f), Some(t)) = (
            e.get("from").and_then(Value::as_str),
            e.get("to").and_then(Value::as_str),
        ) else {
            return Err(r.err("", format!("edge {e} has no from/to names")));
        };
        edges.push((f.into(), t.into()));
    }
    let median = kind == CellKind::Rgc && n == 11;
    if median {
        for (f, t) in EDGES_5 {
            edges.push((f.into(), t.into()));
        }
    }
    let cell_layers: Vec<String> = if n == 11 {
        (4..=10).map(|i| format!("conv{i}")).collect()
    } else {
        (3..=5).map(|i| format!("conv{i}")).collect()
    };

    // First pass: names, the input node, each node's output channels.
    let mut names = Vec::new();
    let mut input: Option<(String, [usize; 3])> = None;
    for nd in nodes {
        let name = nd
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| r.err("", "a node has no name"))?
            .to_string();
        if let Some(s) = nd.get("shape") {
            let dims: Option<Vec<usize>> = s
                .as_array()
                .map(|a| a.iter().filter_map(get_usize).collect());
            match dims.as_deref() {
                Some([h, w, c]) => {
                    if input.is_some() {
                        return Err(r.err(&name, "a second input node (with \"shape\")"));
                    }
                    input = Some((name.clone(), [*c, *h, *w]));
                }
                _ => return Err(r.err(&name, format!("shape {s} is not [H, W, C]"))),
            }
        }
        names.push(name);
    }
    for (f, t) in &edges {
        for x in [f, t] {
            if !names.contains(x) {
                return Err(r.err("", format!("an edge names '{x}', which is not a node")));
            }
        }
    }
    let (input_name, input_shape) =
        input.ok_or_else(|| r.err("", "no input node (a node with \"shape\": [H, W, C])"))?;
    let mut parsed = Vec::new();
    for (nd, name) in nodes.iter().zip(&names) {
        let h = nd.get("harbor").and_then(Value::as_object);
        if let Some(h) = h {
            if h.get("function")
                .and_then(Value::as_str)
                .is_some_and(|f| f != "harbor")
            {
                return Err(r.err(name, "only convrnns' default harbor is read"));
            }
            if h.get("preproc").is_some_and(|p| !p.is_null()) {
                return Err(r.err(
                    name,
                    format!("harbor preproc {} is not supported", h["preproc"]),
                ));
            }
            for (k, want) in [("spatial_op", "resize"), ("channel_op", "concat")] {
                if let Some(o) = h.get(k).and_then(Value::as_str)
                    && o != want
                {
                    return Err(r.err(
                        name,
                        format!("harbor {k} '{o}' is not supported ({want} is)"),
                    ));
                }
            }
        }
        for k in ["input_init", "state_init"] {
            if let Some(f) = nd
                .get(k)
                .and_then(|i| i.get("function"))
                .and_then(Value::as_str)
                && f != "zeros"
            {
                return Err(r.err(name, format!("{k} '{f}' is not supported (zeros is)")));
            }
        }
        let pre = r.ops(name, nd.get("pre_memory"))?;
        let post = r.ops(name, nd.get("post_memory"))?;
        let mem = nd
            .get("memory")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        if mem
            .get("function")
            .and_then(Value::as_str)
            .is_some_and(|f| f != "memory")
        {
            return Err(r.err(name, "memory function is not convrnns' \"memory\""));
        }
        parsed.push((pre, mem, post));
    }
    let mut out_ch: BTreeMap<String, usize> = BTreeMap::new();
    for ((pre, mem, post), name) in parsed.iter().zip(&names) {
        let mut c = items_channels(pre, None);
        if cell_layers.contains(name) && kind != CellKind::TimeDecay {
            c = match (kind, n) {
                (CellKind::Lstm, 6) => LSTM_SHALLOW.iter().find(|l| l.0 == name).map(|l| l.5).or(c),
                (CellKind::Rgc, 11) => c,
                _ => mem.get("out_depth").and_then(get_usize).or(c),
            };
        }
        let c = items_channels(post, c).ok_or_else(|| {
            r.err(
                name,
                "its output channels cannot be told (no convolution or fc)",
            )
        })?;
        out_ch.insert(name.clone(), c);
    }

    // Second pass: ventral's nodes.
    let mut specs = Vec::new();
    // `parsed`, `names` and `nodes` are in the same order (the first pass).
    for (((pre, mem, post), name), nd) in parsed.into_iter().zip(&names).zip(nodes) {
        let preds: Vec<&String> = edges
            .iter()
            .filter(|(_, t)| t == name)
            .map(|(f, _)| f)
            .collect();
        // Saturating: a file may claim any widths (the size limits refuse them later).
        let harbor_c: usize = preds
            .iter()
            .fold(0usize, |a, p| a.saturating_add(out_ch[*p]))
            .saturating_add(if *name == input_name {
                input_shape[0]
            } else {
                0
            });
        let shape_from = nd
            .get("shape_from")
            .and_then(Value::as_str)
            .map(str::to_string);
        if *name != input_name && shape_from.is_none() {
            return Err(r.err(name, "has neither \"shape\" nor \"shape_from\""));
        }
        // component_conv calls the kernel of the input named `input_name` `weights_basenet`
        // and the others' `weights_0`, `weights_1`, … in the harbor's (sorted) order; a
        // checkpoint is mapped taking that input to be `shape_from`.
        if *name != input_name && preds.len() > 1 {
            for key in ["pre_memory", "post_memory"] {
                for op in nd.get(key).and_then(Value::as_array).into_iter().flatten() {
                    if op.get("function").and_then(Value::as_str) != Some("component_conv") {
                        continue;
                    }
                    if let Some(i) = op.get("input_name").and_then(Value::as_str)
                        && Some(i) != shape_from.as_deref()
                    {
                        return Err(r.err(
                            name,
                            format!(
                                "component_conv's input_name '{i}' is not the node's shape_from \
                                 '{}': with several inputs ventral takes the feedforward one \
                                 (the kernel named weights_basenet) to be shape_from",
                                shape_from.as_deref().unwrap_or_default()
                            ),
                        ));
                    }
                }
            }
        }
        let is_cell = cell_layers.contains(name) && kind != CellKind::TimeDecay;
        let decay = mem
            .get("memory_decay")
            .and_then(Value::as_f64)
            .unwrap_or(0.0);
        let trainable = mem
            .get("trainable")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let has_residual = pre.iter().chain(&post).any(|i| matches!(i, Item::Residual));
        // The residual (the harbor output) of a reciprocal gated node is its feedforward part.
        let (pre_op, cell, post_op) = if is_cell {
            let cin = items_channels(&pre, None).unwrap_or(harbor_c);
            let cell = r.cell(name, kind, &mem, cin, n)?;
            let cell_out = super::config::cell_channels(&cell, cin).map_err(|e| r.err(name, e))?;
            let pre_op = fold(pre, harbor_c, harbor_c).map_err(|e| r.err(name, e))?;
            let post_op = fold(post, harbor_c, cell_out).map_err(|e| r.err(name, e))?;
            (pre_op, cell, post_op)
        } else if decay != 0.0 || trainable {
            let cin = items_channels(&pre, None).unwrap_or(harbor_c);
            let pre_op = fold(pre, harbor_c, harbor_c).map_err(|e| r.err(name, e))?;
            let post_op = fold(post, harbor_c, cin).map_err(|e| r.err(name, e))?;
            (
                pre_op,
                CellSpec::TimeDecayRecurrentCell {
                    tau: decay,
                    trainable,
                    init_dict: None,
                },
                post_op,
            )
        } else {
            // An identity memory: everything after the harbor is one post-memory sequence
            // (where ventral's residual blocks live).
            let mut all = pre;
            all.extend(post);
            (
                OpSpec::Identity {},
                CellSpec::IdentityCell {},
                fold(all, harbor_c, harbor_c).map_err(|e| r.err(name, e))?,
            )
        };
        specs.push(NodeSpec {
            name: name.clone(),
            shape_from,
            harbor_policy: HarborSpec::ResizeConcat {
                align_corners: true,
            },
            pre_memory: pre_op,
            recurrent_cell: cell,
            post_memory: post_op,
            out_channels: out_ch[name],
            residual: Some(has_residual),
        });
    }

    let stem = std::path::Path::new(origin)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("");
    let (steps, image_off) = if stem.contains("t30") {
        (30, None)
    } else if stem.contains("t22") {
        (22, None)
    } else if n == 11 {
        (17, Some(12))
    } else {
        (16, Some(12))
    };
    let output = names
        .iter()
        .find(|x| !edges.iter().any(|(f, _)| f == *x))
        .cloned()
        .ok_or_else(|| r.err("", "no output node (every node has an outgoing edge)"))?;
    let mut areas = BTreeMap::new();
    let conv =
        |r: std::ops::RangeInclusive<usize>| r.map(|i| format!("conv{i}")).collect::<Vec<_>>();
    if n == 11 {
        areas.insert("V4".to_string(), conv(5..=6));
        areas.insert("IT".to_string(), conv(7..=10));
    } else {
        areas.insert("V4".to_string(), conv(3..=3));
        areas.insert("IT".to_string(), conv(4..=5));
    }
    let cfg = ConvRnnConfig {
        nodes: specs,
        edges: edges
            .into_iter()
            .map(|(from, to)| EdgeSpec { from, to })
            .collect(),
        input_nodes: vec![input_name],
        output_node: output,
        input_shape,
        num_timesteps: steps,
        movie: Movie {
            image_off,
            blank_value: 0.5,
        },
        decoder: Decoder::default(),
        // convrnns tells the feedforward input by name; ventral by its position (first).
        harbor_order: HarborOrder::FeedforwardFirst,
        brain_areas: areas,
        ff_order: None,
    };
    cfg.validate().map_err(|e| match e {
        ModelError::Config(m) => ModelError::Config(format!("{origin}: {m}")),
        e => e,
    })?;
    Ok(cfg)
}
