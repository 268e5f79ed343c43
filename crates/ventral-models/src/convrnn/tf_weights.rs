//! The original convrnns checkpoints (neuroailab/convrnns, TensorFlow 1.13: `ckpts/<model>/
//! model.ckpt`, a `tf.train.Saver` tensor bundle read by [`ventral_core::tf_checkpoint`])
//! mapped name by name onto a [`ConvRnn`] translated from the same model's JSON
//! ([`super::tf_json`]), so that `record --weights` and `train --init-from` run the
//! pretrained zoo.
//!
//! The mapping is derived from the model, not from a table per preset:
//!
//! - **Feedforward operations** (`{node}/pre_{i}/…`, `{node}/post_{i}/…`: a `conv`'s `weights`
//!   and `bias`, a `component_conv`'s `weights_basenet` and `bias`, a `residual_add`'s
//!   projection `residual_add_weights`, an `fc`'s `weights` and `bias`) are paired, in the
//!   order the node applies them, with the node's parameter-holding operations outside the
//!   cell in the order ventral applies them (pre-memory, then post-memory; a residual
//!   block's operation before its projection). Counts, kinds, biases and shapes must agree.
//! - **Cells** by their TensorFlow scope: `ConvNormBasicCell/{i,s,layer_norm}`,
//!   `ConvGRUCell/{gates,candidates}`, `ConvLSTMCell/{weights,bias,input,transform,forget,
//!   output,state,peepholes}`, `ConvUGRNNCell`, `ConvIntersectionRNNCell` (one convolution
//!   over `[input, state]` with the gates in the same order as ventral's), the reciprocal
//!   gated cell's `cell/{input_to_cell,tau,gate|out_to_cell,res_to_cell}` and
//!   `out/{tau,gate,residual_to_out_gate,input_to_out,feedback_to_out,residual_add}`, a
//!   time-decay node's `memory_decay` (τ).
//! - **Harbors of several inputs** (feedback into a node that is not a reciprocal gated cell):
//!   TensorFlow concatenates the frame, then the predecessors sorted by name, and
//!   `component_conv` holds one kernel per input (`weights_basenet` for the feedforward one,
//!   `weights_0`, `weights_1`, … for the others in that order); ventral's TensorFlow form puts
//!   the feedforward input first. The parts are assembled and each input's channels moved to
//!   ventral's place (`Harbor`, `harbor_kernel`), for the operation that reads the harbor
//!   and for residual projections over it.
//! - **Layouts**: kernels HWIO → OIHW, depthwise kernels `[kh, kw, C, 1]` → `[C, 1, kh, kw]`,
//!   fully connected `[in, out]` → `[out, in]` (only on a globally pooled input, where
//!   TensorFlow's H·W·C flattening and ventral's C·H·W agree), peepholes `[H, W, C]` →
//!   `[C, H, W]`.
//! - **Temporal decoders** (the `_tmaxconf` / `_dthresh` models): `normalize/softmax_beta` →
//!   `decoder.beta`, `decoder_alpha` → `decoder.alpha`; `decoder_threshold` must equal the
//!   model's `decoder.threshold`; `compute_alpha`'s diagnostic `probs/` and `alpha/`
//!   temperatures, which no decoder ventral runs reads, are passed over.
//!
//! Every tensor of the checkpoint must be used except `global_step`, optimiser slots
//! (`…/Momentum`, `…/Adam`, `…/Adam_1`) and the untrainable `memory_decay` of nodes without
//! memory, which must be 0 (convrnns' `state · 0 + input`); anything else — a decoder the model
//! lacks, another model's checkpoint — is refused, naming the file and tensors.

use std::collections::{BTreeMap, BTreeSet};

use ventral_core::safetensors::SafeTensors;

use super::ConvRnn;
use super::DecoderKind;
use super::spec::{CellSpec, OpSpec};
use crate::error::{ModelError, Result};
use crate::params::{self, NamedTensors};

/// The scope every convrnns variable lives under.
const ROOT: &str = "tnn_model/";

/// How a TensorFlow tensor is laid out relative to ventral's (PyTorch) layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// HWIO kernel → OIHW.
    Hwio,
    /// Depthwise kernel `[kh, kw, C, M]` → `[C·M, 1, kh, kw]`.
    Depthwise,
    /// `[in, out]` → `[out, in]`.
    Linear,
    /// `[H, W, C]` → `[C, H, W]`.
    Hwc,
    /// As it is (vectors, scalars).
    Same,
}

/// `data` of TensorFlow shape `shape` in ventral's layout: the new shape and values.
fn convert(layout: Layout, shape: &[usize], data: &[f32]) -> Option<(Vec<usize>, Vec<f32>)> {
    let n = shape.iter().try_fold(1usize, |a, d| a.checked_mul(*d))?;
    if n != data.len() {
        return None;
    }
    match (layout, shape) {
        (Layout::Hwio, &[h, w, i, o]) => {
            let mut out = vec![0.0; data.len()];
            for (idx, v) in data.iter().enumerate() {
                let (oo, r) = (idx % o, idx / o);
                let (ii, r) = (r % i, r / i);
                let (ww, hh) = (r % w, r / w);
                out[((oo * i + ii) * h + hh) * w + ww] = *v;
            }
            Some((vec![o, i, h, w], out))
        }
        (Layout::Depthwise, &[h, w, c, m]) => {
            // TensorFlow's output channel c·M + m; ventral's grouped weight [C·M, 1, kh, kw].
            let mut out = vec![0.0; data.len()];
            for (idx, v) in data.iter().enumerate() {
                let (mm, r) = (idx % m, idx / m);
                let (cc, r) = (r % c, r / c);
                let (ww, hh) = (r % w, r / w);
                out[((cc * m + mm) * h + hh) * w + ww] = *v;
            }
            Some((vec![c * m, 1, h, w], out))
        }
        (Layout::Linear, &[i, o]) => {
            let mut out = vec![0.0; data.len()];
            for (idx, v) in data.iter().enumerate() {
                out[(idx % o) * i + idx / o] = *v;
            }
            Some((vec![o, i], out))
        }
        (Layout::Hwc, &[h, w, c]) => {
            let mut out = vec![0.0; data.len()];
            for (idx, v) in data.iter().enumerate() {
                let (cc, r) = (idx % c, idx / c);
                let (ww, hh) = (r % w, r / w);
                out[(cc * h + hh) * w + ww] = *v;
            }
            Some((vec![c, h, w], out))
        }
        (Layout::Same, s) => Some((s.to_vec(), data.to_vec())),
        _ => None,
    }
}

/// A node's harbor as TensorFlow concatenates it against ventral's order: convrnns' `unroll`
/// hands a node the frame (input nodes), then its predecessors sorted by name, and its harbor
/// concatenates them in that order; ventral's TensorFlow form puts the feedforward
/// (`shape_from`) input first (`HarborOrder::FeedforwardFirst`, which its reciprocal gated
/// cells need). Kernels that read the harbor's channels are rearranged from one to the other.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Harbor {
    /// Channels of each input in TensorFlow's order.
    channels: Vec<usize>,
    /// For each of ventral's inputs (in its order), its place in TensorFlow's.
    order: Vec<usize>,
    /// TensorFlow's place of the feedforward input: what `component_conv` names
    /// `weights_basenet` (the others are `weights_0`, `weights_1`, … in TensorFlow's order).
    ff: usize,
}

impl Harbor {
    fn of(model: &ConvRnn, i: usize) -> Option<Harbor> {
        let plan = model.plans.get(i)?;
        let node = model.config.nodes.get(i)?;
        let name = |inp: &Option<usize>| -> Option<&str> {
            inp.map(|j| model.config.nodes.get(j).map_or("", |n| n.name.as_str()))
        };
        // TensorFlow's order: the frame (`None` sorts first), then by name.
        let mut tf: Vec<usize> = (0..plan.inputs.len()).collect();
        tf.sort_by(|&a, &b| name(&plan.inputs[a]).cmp(&name(&plan.inputs[b])));
        let mut order = vec![0; tf.len()];
        for (pos, &v) in tf.iter().enumerate() {
            order[v] = pos;
        }
        let ff_slot = plan.inputs.iter().position(|inp| match inp {
            None => true,
            Some(_) => name(inp) == node.shape_from.as_deref(),
        })?;
        Some(Harbor {
            channels: tf.iter().map(|&v| plan.input_channels[v]).collect(),
            order,
            ff: tf.iter().position(|&v| v == ff_slot)?,
        })
    }

    fn total(&self) -> usize {
        self.channels.iter().sum()
    }

    /// Whether ventral's order is TensorFlow's.
    fn same_order(&self) -> bool {
        self.order.iter().enumerate().all(|(v, &k)| v == k)
    }

    /// `component_conv`'s kernel names, one per input in TensorFlow's order.
    fn component_leaves(&self) -> Vec<String> {
        (0..self.channels.len())
            .map(|k| match k.cmp(&self.ff) {
                std::cmp::Ordering::Equal => "weights_basenet".to_string(),
                std::cmp::Ordering::Less => format!("weights_{k}"),
                std::cmp::Ordering::Greater => format!("weights_{}", k - 1),
            })
            .collect()
    }
}

/// TensorFlow kernels (`[…, I, O]` row-major: HWIO, or `[in, out]`) concatenated along I in
/// TensorFlow's harbor order — as `component_conv`'s `tf.concat(kernel_list, axis=-2)` does
/// with its parts, or one kernel over the whole harbor — with I's blocks rearranged into
/// ventral's order (`harbor.order`). Returns the whole kernel's TensorFlow-layout shape and
/// values, or what does not fit.
fn harbor_kernel(
    parts: &[(Vec<usize>, Vec<f32>)],
    harbor: &Harbor,
) -> std::result::Result<(Vec<usize>, Vec<f32>), String> {
    let Some((first, _)) = parts.first() else {
        return Err("no kernel".into());
    };
    let r = first.len();
    if r < 2 {
        return Err(format!("shape {first:?} is not a kernel's"));
    }
    let (lead, o) = (&first[..r - 2], first[r - 1]);
    let mut ins = Vec::new();
    for (shape, data) in parts {
        if shape.len() != r || &shape[..r - 2] != lead || shape[r - 1] != o {
            return Err(format!(
                "the parts' shapes {:?} do not line up",
                parts.iter().map(|p| &p.0).collect::<Vec<_>>()
            ));
        }
        if shape.iter().product::<usize>() != data.len() {
            return Err(format!(
                "shape {shape:?} does not hold {} values",
                data.len()
            ));
        }
        ins.push(shape[r - 2]);
    }
    let total: usize = ins.iter().sum();
    if total != harbor.total() || (parts.len() > 1 && ins != harbor.channels) {
        return Err(format!(
            "input channels {ins:?}, the harbor's inputs {:?} (TensorFlow's order)",
            harbor.channels
        ));
    }
    // Where TensorFlow's input k lies: its part and its first channel there (one part per
    // input, or one kernel holding them all one after another).
    let mut src = Vec::with_capacity(harbor.channels.len());
    let mut first_channel = 0;
    for (k, c) in harbor.channels.iter().enumerate() {
        src.push(if parts.len() > 1 {
            (k, 0)
        } else {
            (0, first_channel)
        });
        first_channel += c;
    }
    let p: usize = lead.iter().product();
    let mut out = Vec::with_capacity(p * total * o);
    for pp in 0..p {
        for &k in &harbor.order {
            let (part, at) = src[k];
            let start = (pp * ins[part] + at) * o;
            out.extend_from_slice(&parts[part].1[start..start + harbor.channels[k] * o]);
        }
    }
    let mut shape = lead.to_vec();
    shape.extend([total, o]);
    Ok((shape, out))
}

/// Tensors a checkpoint may hold besides the model's variables.
fn ignorable(name: &str) -> bool {
    name == "global_step"
        || ["/Momentum", "/Adam", "/Adam_1", "/ExponentialMovingAverage"]
            .iter()
            .any(|s| name.ends_with(s))
}

/// The TensorFlow scope of a cell's class (`ReciprocalGateCell`, …); `None` for cells without
/// a scope of their own (identity, time decay).
fn cell_scope(c: &CellSpec) -> Option<&'static str> {
    match c {
        CellSpec::VanillaRNNCell(_) => Some("ConvNormBasicCell"),
        CellSpec::GRUCell(_) => Some("ConvGRUCell"),
        CellSpec::LSTMCell(_) => Some("ConvLSTMCell"),
        CellSpec::UGRNNCell(_) => Some("ConvUGRNNCell"),
        CellSpec::IntersectionRNNCell(_) => Some("ConvIntersectionRNNCell"),
        CellSpec::ReciprocalGatedCell(_) => Some("ReciprocalGateCell"),
        CellSpec::IdentityCell {} | CellSpec::TimeDecayRecurrentCell { .. } => None,
        CellSpec::ConvRNNBasicCell { .. } => None,
    }
}

/// The TensorFlow names a cell parameter may have (relative to `{node}/{class}/`), with its
/// layout, from ventral's name relative to `{node}._recurrent_cell.`.
fn cell_candidates(rest: &str) -> Option<(Vec<String>, Layout)> {
    let (module, leaf) = rest.rsplit_once('.')?;
    // Gated cells: `conv.weight` is the class scope's own `weights`.
    let gated_scope = |m: &str| -> Option<&'static str> {
        Some(match m {
            "conv" => "",
            "conv_input" => "i",
            "conv_state" => "s",
            "ln" => "layer_norm",
            "conv_ru" => "gates",
            "conv_c" => "candidates",
            "ln_r_pre" => "gates/r_pre",
            "ln_u_pre" => "gates/u_pre",
            "ln_c_pre" => "candidates/c_pre",
            "ln_input" => "input",
            "ln_transform" => "transform",
            "ln_forget" => "forget",
            "ln_output" => "output",
            "ln_state" => "state",
            "ln_g_act" => "g_act",
            "ln_c_act" => "c_act",
            "ln_gh_act" => "gh_act",
            "ln_h_act" => "h_act",
            "ln_gy_act" => "gy_act",
            "ln_y_act" => "y_act",
            _ => return None,
        })
    };
    let join = |scope: &str, leaf: &str| {
        if scope.is_empty() {
            leaf.to_string()
        } else {
            format!("{scope}/{leaf}")
        }
    };
    if let Some(scope) = gated_scope(module) {
        let is_norm = module == "ln" || module.starts_with("ln_");
        let (tf_leaf, layout) = match (leaf, is_norm) {
            ("weight", false) => ("weights", Layout::Hwio),
            ("bias", false) => ("bias", Layout::Same),
            ("weight", true) => ("gamma", Layout::Same),
            ("bias", true) => ("beta", Layout::Same),
            _ => return None,
        };
        return Some((vec![join(scope, tf_leaf)], layout));
    }
    if module == "peepholes" {
        return Some((vec![format!("peepholes/{leaf}")], Layout::Hwc));
    }
    // The reciprocal gated cell: `{rgc module}.{conv|depth_wise|point_wise}.{weight|bias}`.
    let (rgc, part) = module.split_once('.')?;
    let scopes: &[&str] = match rgc {
        "inp2cell_conv" => &["cell/input_to_cell"],
        "res2cell_conv" => &["cell/res_to_cell"],
        "cell_tau_conv" => &["cell/tau"],
        "cell_gate_conv" => &["cell/gate", "cell/out_to_cell"],
        "out_tau_conv" => &["out/tau"],
        "cell2out_conv" => &["out/gate"],
        "out_gate_conv" => &["out/residual_to_out_gate"],
        "inp2out_conv" => &["out/input_to_out"],
        "feedback_conv" => &["out/feedback_to_out", "input/feedback", "cell/feedback"],
        "res2out_conv" => &["out/residual_add", "out/res_add/residual_add"],
        _ => return None,
    };
    let mut names = Vec::new();
    let layout = match (part, leaf) {
        ("conv", "weight") => {
            for s in scopes {
                names.push(format!("{s}/weights"));
                names.push(format!("{s}_weights"));
            }
            Layout::Hwio
        }
        ("conv", "bias") | ("point_wise", "bias") => {
            for s in scopes {
                names.push(format!("{s}/bias"));
                names.push(format!("{s}_bias"));
            }
            Layout::Same
        }
        ("depth_wise", "weight") => {
            for s in scopes {
                names.push(format!("{s}/depthwise_weights"));
            }
            Layout::Depthwise
        }
        ("point_wise", "weight") => {
            for s in scopes {
                names.push(format!("{s}/pointwise_weights"));
            }
            Layout::Hwio
        }
        _ => return None,
    };
    Some((names, layout))
}

/// One feedforward operation with parameters, on ventral's side: its name prefix (before
/// `conv.` / `lin.`), whether it is a residual projection, whether it is fully connected, and
/// its weight's and bias's shapes.
#[derive(Debug)]
struct OurOp {
    prefix: String,
    projection: bool,
    linear: bool,
    weight: Vec<usize>,
    bias: Option<Vec<usize>>,
}

/// One feedforward operation on TensorFlow's side: its scope (`conv2/post_0`) and the leaves
/// it holds.
#[derive(Debug, Default)]
struct TfOp {
    scope: String,
    leaves: BTreeSet<String>,
}

/// Whether every fully connected layer in `op` (in forward order) reads a globally pooled
/// (1 × 1) input; `pooled` carries the state through a sequence.
fn fc_on_pooled(op: &OpSpec, pooled: &mut bool) -> bool {
    match op {
        OpSpec::AdaptiveAvgPool { output_size, .. } => {
            *pooled = output_size.get() == [1, 1];
            true
        }
        OpSpec::FullyConnected { .. } => *pooled,
        OpSpec::Conv2dCell(_) | OpSpec::MaxPool { .. } => {
            *pooled = false;
            true
        }
        OpSpec::Sequential {
            list_of_func_kwargs,
        } => list_of_func_kwargs.iter().all(|o| fc_on_pooled(o, pooled)),
        OpSpec::ResidualAdd {
            feedforward_func_kwargs,
            ..
        } => fc_on_pooled(feedforward_func_kwargs, pooled),
        OpSpec::Identity {} | OpSpec::ActivationLayer { .. } => true,
    }
}

/// What [`from_tensorflow`] has mapped so far: ventral's tensors, the checkpoint's tensors
/// used, and every problem found (all reported at once).
struct Mapping<'a> {
    /// TensorFlow names under [`ROOT`] → full names.
    tf: &'a BTreeMap<String, String>,
    st: &'a SafeTensors,
    out: NamedTensors,
    used: BTreeSet<String>,
    problems: Vec<String>,
}

impl Mapping<'_> {
    /// The tensor `rel` (under [`ROOT`]) that `ours` needs: its full name, shape and values,
    /// marked used; or a problem.
    fn read(&mut self, rel: &str, ours: &str) -> Option<(String, Vec<usize>, Vec<f32>)> {
        let Some(full) = self.tf.get(rel) else {
            self.problems
                .push(format!("'{ours}' has no tensor '{ROOT}{rel}'"));
            return None;
        };
        self.used.insert(rel.to_string());
        match self.st.f32(full) {
            Ok((shape, data)) => Some((full.clone(), shape, data)),
            Err(e) => {
                self.problems.push(e.to_string());
                None
            }
        }
    }

    /// `ours` (shape `want`) from the tensor `rel` in `layout`.
    fn take(&mut self, rel: &str, layout: Layout, want: &[usize], ours: &str) {
        let Some((full, shape, data)) = self.read(rel, ours) else {
            return;
        };
        match convert(layout, &shape, &data) {
            Some((s, d)) if s == want => {
                self.out.insert(ours.to_string(), (s, d));
            }
            Some((s, _)) => self.problems.push(format!(
                "'{full}' {shape:?} becomes {s:?}, but '{ours}' is {want:?}"
            )),
            None => self.problems.push(format!(
                "'{full}' has shape {shape:?} ({} values), not the layout '{ours}' {want:?} \
                 needs",
                data.len()
            )),
        }
    }

    /// A weight from TensorFlow kernels over a harbor of several inputs (`rels` in
    /// TensorFlow's harbor order: `component_conv`'s parts, or one kernel over the whole
    /// harbor), its inputs' channels in ventral's order.
    fn take_harbor(
        &mut self,
        rels: &[String],
        harbor: &Harbor,
        layout: Layout,
        want: &[usize],
        ours: &str,
    ) {
        let mut parts = Vec::new();
        for rel in rels {
            let Some((_, shape, data)) = self.read(rel, ours) else {
                return;
            };
            parts.push((shape, data));
        }
        let names = rels
            .iter()
            .map(|r| format!("'{ROOT}{r}'"))
            .collect::<Vec<_>>()
            .join(" + ");
        match harbor_kernel(&parts, harbor).map(|(shape, data)| convert(layout, &shape, &data)) {
            Ok(Some((s, d))) if s == want => {
                self.out.insert(ours.to_string(), (s, d));
            }
            Ok(Some((s, _))) => self
                .problems
                .push(format!("{names} become {s:?}, but '{ours}' is {want:?}")),
            Ok(None) => self.problems.push(format!(
                "{names} do not make the layout '{ours}' {want:?} needs"
            )),
            Err(e) => self
                .problems
                .push(format!("{names} over the harbor of '{ours}': {e}")),
        }
    }
}

/// The checkpoint `st` (TensorFlow names, as [`SafeTensors::read`] gives a TensorFlow
/// checkpoint) as named tensors of `model` in ventral's layout, ready for
/// [`params::load_named`]. Errors name the file, and list every problem at once.
pub fn from_tensorflow(model: &ConvRnn, st: &SafeTensors) -> Result<NamedTensors> {
    let origin = st.path().display().to_string();
    let err = |msg: String| ModelError::Weights {
        path: origin.clone(),
        msg,
    };
    // TensorFlow names relative to `tnn_model/`.
    let mut tf: BTreeMap<String, String> = BTreeMap::new();
    let mut foreign = Vec::new();
    for n in st.names() {
        if ignorable(n) {
            continue;
        }
        match n.strip_prefix(ROOT) {
            Some(rel) => {
                tf.insert(rel.to_string(), n.to_string());
            }
            None => foreign.push(n.to_string()),
        }
    }
    if tf.is_empty() {
        return Err(err(format!(
            "no tensor under '{ROOT}': not a checkpoint of the convrnns zoo (its tensors: {})",
            preview(st.names().map(str::to_string))
        )));
    }
    let ours = params::list(model);
    let mut m = Mapping {
        tf: &tf,
        st,
        out: NamedTensors::new(),
        used: BTreeSet::new(),
        problems: Vec::new(),
    };
    for (node_idx, spec) in model.config.nodes.iter().enumerate() {
        let node = &spec.name;
        let dot = format!("{node}.");
        let cell_prefix = format!("{node}._recurrent_cell.");
        // ventral's feedforward operations with parameters, in forward order.
        let mut our_ops: Vec<OurOp> = Vec::new();
        for p in ours.iter().filter(|p| p.name.starts_with(&dot)) {
            if let Some(rest) = p.name.strip_prefix(&cell_prefix) {
                // The cell.
                let target = p.name.as_str();
                if rest == "tau" {
                    m.take(
                        &format!("{node}/memory_decay"),
                        Layout::Same,
                        &p.shape,
                        target,
                    );
                    continue;
                }
                let (Some(class), Some((cands, layout))) =
                    (cell_scope(&spec.recurrent_cell), cell_candidates(rest))
                else {
                    m.problems.push(format!(
                        "'{target}' has no TensorFlow counterpart ventral knows"
                    ));
                    continue;
                };
                let names: Vec<String> = cands
                    .iter()
                    .map(|c| format!("{node}/{class}/{c}"))
                    .collect();
                match names.iter().find(|n| tf.contains_key(n.as_str())) {
                    Some(n) => m.take(n, layout, &p.shape, target),
                    None => m.problems.push(format!(
                        "'{target}' has no tensor {}",
                        names
                            .iter()
                            .map(|n| format!("'{ROOT}{n}'"))
                            .collect::<Vec<_>>()
                            .join(" or ")
                    )),
                }
                continue;
            }
            let Some((prefix, leaf)) = p
                .name
                .strip_suffix(".weight")
                .map(|s| (s, "weight"))
                .or_else(|| p.name.strip_suffix(".bias").map(|s| (s, "bias")))
            else {
                m.problems.push(format!(
                    "'{}' has no TensorFlow counterpart ventral knows",
                    p.name
                ));
                continue;
            };
            let (prefix, linear) = if let Some(s) = prefix.strip_suffix(".conv") {
                (s, false)
            } else if let Some(s) = prefix.strip_suffix(".lin") {
                (s, true)
            } else {
                m.problems.push(format!(
                    "'{}' has no TensorFlow counterpart ventral knows (convrnns' zoo has no \
                     normalisation outside its cells)",
                    p.name
                ));
                continue;
            };
            if our_ops.last().is_none_or(|o| o.prefix != prefix) {
                our_ops.push(OurOp {
                    prefix: prefix.to_string(),
                    projection: prefix.ends_with(".residual"),
                    linear,
                    weight: Vec::new(),
                    bias: None,
                });
            }
            if let Some(o) = our_ops.last_mut() {
                match leaf {
                    "bias" => o.bias = Some(p.shape.clone()),
                    _ => o.weight = p.shape.clone(),
                }
            }
        }
        // The harbor's channel order matters where a node has several inputs: the first
        // operation reads the harbor (in the pre-memory, or anywhere where the cell keeps the
        // channels: no memory or a time decay), and so does a residual projection (ventral's
        // residual is the whole harbor; the reciprocal gated cell's split harbor keeps its own
        // mapping).
        let harbor = Harbor::of(model, node_idx)
            .filter(|h| h.channels.len() > 1)
            .filter(|_| !model.plans[node_idx].split_feedback);
        let cell_keeps_channels = cell_scope(&spec.recurrent_cell).is_none();
        if let Some(h) = &harbor
            && !h.same_order()
            && !cell_keeps_channels
            && !our_ops.iter().any(|o| o.prefix.contains("._pre_memory"))
        {
            m.problems.push(format!(
                "node {node}: its cell reads the harbor directly, whose inputs TensorFlow \
                 concatenates in another order than ventral; ventral maps a harbor of several \
                 inputs only through a convolution before the cell"
            ));
            continue;
        }
        // TensorFlow's: `{node}/{pre|post}_{i}/{leaf}`, by (pre before post, i).
        let mut tf_ops: BTreeMap<(u8, usize), TfOp> = BTreeMap::new();
        for rel in tf.keys() {
            let Some(r) = rel
                .strip_prefix(node.as_str())
                .and_then(|r| r.strip_prefix('/'))
            else {
                continue;
            };
            let Some((scope, leaf)) = r.split_once('/') else {
                continue;
            };
            let key = if let Some(i) = scope.strip_prefix("pre_") {
                i.parse().ok().map(|i| (0u8, i))
            } else if let Some(i) = scope.strip_prefix("post_") {
                i.parse().ok().map(|i| (1u8, i))
            } else {
                None
            };
            let Some(key) = key else { continue };
            let e = tf_ops.entry(key).or_default();
            e.scope = format!("{node}/{scope}");
            e.leaves.insert(leaf.to_string());
        }
        let tf_ops: Vec<TfOp> = tf_ops.into_values().collect();
        if our_ops.len() != tf_ops.len() {
            m.problems.push(format!(
                "node {node}: the checkpoint has {} operations with parameters outside the cell \
                 ({}), the model {} ({})",
                tf_ops.len(),
                tf_ops
                    .iter()
                    .map(|o| o.scope.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                our_ops.len(),
                our_ops
                    .iter()
                    .map(|o| o.prefix.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            continue;
        }
        let mut pooled = false;
        let fc_ok = fc_on_pooled(&spec.pre_memory, &mut pooled)
            && fc_on_pooled(&spec.post_memory, &mut pooled);
        for (n_op, (o, t)) in our_ops.iter().zip(&tf_ops).enumerate() {
            // The harbor this operation's weight reads, if it reads one of several inputs.
            let reads_harbor = harbor.as_ref().filter(|h| {
                let first = n_op == 0 && (cell_keeps_channels || o.prefix.contains("._pre_memory"));
                (o.projection || first) && o.weight.get(1) == Some(&h.total())
            });
            // TensorFlow's tensors that make the weight, in its harbor order.
            let leaves: Vec<String> = if o.projection {
                vec!["residual_add_weights".into()]
            } else if t.leaves.contains("weights_basenet") {
                match reads_harbor {
                    Some(h) if t.leaves.contains("weights_0") => h.component_leaves(),
                    _ => vec!["weights_basenet".into()],
                }
            } else {
                vec!["weights".into()]
            };
            let (sub, layout) = if o.linear {
                if !fc_ok {
                    m.problems.push(format!(
                        "'{}' is fully connected on a spatial map: TensorFlow flattens it as \
                         H·W·C, ventral as C·H·W; only a globally pooled input is mapped",
                        o.prefix
                    ));
                    continue;
                }
                ("lin", Layout::Linear)
            } else {
                ("conv", Layout::Hwio)
            };
            let extra: Vec<&String> = t
                .leaves
                .iter()
                .filter(|l| !(leaves.contains(l) || (o.bias.is_some() && *l == "bias")))
                .collect();
            if !extra.is_empty() || leaves.iter().any(|l| !t.leaves.contains(l)) {
                m.problems.push(format!(
                    "'{}' ({}) pairs with '{ROOT}{}', which holds {:?} (wanted {}{})",
                    o.prefix,
                    if o.projection {
                        "a residual projection"
                    } else {
                        "an operation"
                    },
                    t.scope,
                    t.leaves,
                    leaves.join(", "),
                    if o.bias.is_some() {
                        " and bias"
                    } else {
                        " without bias"
                    }
                ));
                continue;
            }
            let target = format!("{}.{sub}.weight", o.prefix);
            let rels: Vec<String> = leaves.iter().map(|l| format!("{}/{l}", t.scope)).collect();
            match reads_harbor {
                Some(h) if !(rels.len() == 1 && h.same_order()) => {
                    m.take_harbor(&rels, h, layout, &o.weight, &target)
                }
                _ => m.take(&rels[0], layout, &o.weight, &target),
            }
            if let Some(b) = &o.bias {
                m.take(
                    &format!("{}/bias", t.scope),
                    Layout::Same,
                    b,
                    &format!("{}.{sub}.bias", o.prefix),
                );
            }
        }
    }
    // The temporal decoder's variables (the `_tmaxconf` / `_dthresh` models; `decoders.py`).
    let has = |n: &str| ours.iter().find(|p| p.name == n).map(|p| p.shape.clone());
    let d = &model.config.decoder;
    if let (Some(beta), false, false) = (
        &model.decoder.beta,
        d.trainable,
        tf.contains_key("normalize/softmax_beta"),
    ) {
        // A fixed temperature the checkpoint does not hold (a decoder put on a model trained
        // without one): the model's own.
        let v = crate::device::read_f32(&beta.val(), "the decoder's temperature")?;
        m.out.insert("decoder.beta".into(), (vec![v.len()], v));
    } else if let Some(shape) = has("decoder.beta") {
        m.take(
            "normalize/softmax_beta",
            Layout::Same,
            &shape,
            "decoder.beta",
        );
    }
    if let Some(shape) = has("decoder.alpha") {
        m.take("decoder_alpha", Layout::Same, &shape, "decoder.alpha");
    }
    if let Some(full) = tf.get("decoder_threshold") {
        m.used.insert("decoder_threshold".into());
        match st.f32(full) {
            Ok((_, v)) if d.kind == DecoderKind::Thresh && v == [d.threshold as f32] => {}
            Ok((_, v)) if d.kind == DecoderKind::Thresh => m.problems.push(format!(
                "'{full}' is {v:?}, the model's decoder.threshold {} (set it to the \
                 checkpoint's)",
                d.threshold
            )),
            Ok(_) => m.problems.push(format!(
                "'{full}' is a threshold decoder's, and the model's decoder is {:?} (the \
                 `_dthresh` models: decoder = {{ kind = \"thresh\", start = 11 }})",
                d.kind
            )),
            Err(e) => m.problems.push(e.to_string()),
        }
    }
    // `compute_alpha`'s temperatures: every decoder creates them for its diagnostics; only
    // `w_time_avg`'s output depends on them, which ventral computes without.
    for diag in ["probs/softmax_beta", "alpha/softmax_beta"] {
        if tf.contains_key(diag) && d.kind != DecoderKind::WTimeAvg {
            m.used.insert(diag.to_string());
        }
    }
    // What is left: zero memory decays of nodes without memory, or a problem.
    let mut unused = Vec::new();
    for (rel, full) in &tf {
        if m.used.contains(rel) {
            continue;
        }
        if rel.ends_with("/memory_decay") {
            match st.f32(full) {
                Ok((_, v)) if v.iter().all(|x| *x == 0.0) => continue,
                Ok((_, v)) => {
                    m.problems.push(format!(
                        "'{full}' is {v:?}: that node's memory decays its state, which the \
                         model's node (no memory) does not"
                    ));
                    continue;
                }
                Err(e) => {
                    m.problems.push(e.to_string());
                    continue;
                }
            }
        }
        unused.push(full.clone());
    }
    unused.extend(foreign);
    if !unused.is_empty() {
        m.problems.push(format!(
            "{} tensor{} of the checkpoint {} not the model's (another zoo model's \
             checkpoint, or a decoder the model lacks: the `_tmaxconf` / `_dthresh` presets \
             have theirs): {}",
            unused.len(),
            if unused.len() == 1 { "" } else { "s" },
            if unused.len() == 1 { "is" } else { "are" },
            preview(unused.into_iter())
        ));
    }
    if !m.problems.is_empty() {
        return Err(err(format!(
            "a convrnns checkpoint that does not fit this model ({} problem{}): {}",
            m.problems.len(),
            if m.problems.len() == 1 { "" } else { "s" },
            preview(m.problems.into_iter())
        )));
    }
    Ok(m.out)
}

/// The first few items of a list, and how many more.
fn preview(items: impl Iterator<Item = String>) -> String {
    let v: Vec<String> = items.collect();
    let mut s = v.iter().take(8).cloned().collect::<Vec<_>>().join("; ");
    if v.len() > 8 {
        s.push_str(&format!("; and {} more", v.len() - 8));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_move_each_value_where_pytorch_keeps_it() {
        // HWIO [2, 1, 3, 2]: value = 1000 h + 100 w + 10 i + o.
        let (h, w, i, o) = (2, 1, 3, 2);
        let mut d = Vec::new();
        for hh in 0..h {
            for ww in 0..w {
                for ii in 0..i {
                    for oo in 0..o {
                        d.push((1000 * hh + 100 * ww + 10 * ii + oo) as f32);
                    }
                }
            }
        }
        let (s, v) = convert(Layout::Hwio, &[h, w, i, o], &d).unwrap();
        assert_eq!(s, vec![o, i, h, w]);
        // OIHW index of (o=1, i=2, h=1, w=0).
        assert_eq!(v[((i + 2) * h + 1) * w], 1021.0);
        let (s, v) = convert(Layout::Linear, &[3, 2], &[0., 1., 10., 11., 20., 21.]).unwrap();
        assert_eq!((s, v), (vec![2, 3], vec![0., 10., 20., 1., 11., 21.]));
        let (s, v) = convert(Layout::Depthwise, &[1, 2, 2, 1], &[0., 1., 10., 11.]).unwrap();
        assert_eq!((s, v), (vec![2, 1, 1, 2], vec![0., 10., 1., 11.]));
        let (s, v) = convert(Layout::Hwc, &[1, 2, 2], &[0., 1., 10., 11.]).unwrap();
        assert_eq!((s, v), (vec![2, 1, 2], vec![0., 10., 1., 11.]));
        // A shape that does not describe the values, or the wrong rank, is refused.
        assert!(convert(Layout::Hwio, &[2, 2, 2, 2], &[0.0; 15]).is_none());
        assert!(convert(Layout::Hwio, &[4, 4], &[0.0; 16]).is_none());
        assert!(convert(Layout::Hwio, &[usize::MAX, 2, 1, 1], &[]).is_none());
    }

    #[test]
    fn harbor_kernels_move_each_inputs_channels_to_ventrals_place() {
        // TensorFlow's harbor [fb (2 channels), ff (1)]; ventral's [ff, fb].
        let h = Harbor {
            channels: vec![2, 1],
            order: vec![1, 0],
            ff: 1,
        };
        assert!(!h.same_order());
        assert_eq!(h.component_leaves(), ["weights_0", "weights_basenet"]);
        // HWIO [2, 1, 3, 2]: value = 100 h + 10 i + o.
        let whole: Vec<f32> = (0..2)
            .flat_map(|hh| {
                (0..3).flat_map(move |i| (0..2).map(move |o| (100 * hh + 10 * i + o) as f32))
            })
            .collect();
        let (s, v) = harbor_kernel(&[(vec![2, 1, 3, 2], whole.clone())], &h).unwrap();
        assert_eq!(s, vec![2, 1, 3, 2]);
        // Input channel 2 (ff) first, then 0 and 1.
        let want: Vec<f32> = (0..2)
            .flat_map(|hh| {
                [2, 0, 1]
                    .into_iter()
                    .flat_map(move |i| (0..2).map(move |o| (100 * hh + 10 * i + o) as f32))
            })
            .collect();
        assert_eq!(v, want);
        // The same kernel as component_conv's two parts.
        let part = |is: std::ops::Range<usize>| -> (Vec<usize>, Vec<f32>) {
            let n = is.len();
            let d = (0..2)
                .flat_map(|hh| {
                    is.clone()
                        .flat_map(move |i| (0..2).map(move |o| (100 * hh + 10 * i + o) as f32))
                })
                .collect();
            (vec![2, 1, n, 2], d)
        };
        assert_eq!(
            harbor_kernel(&[part(0..2), part(2..3)], &h).unwrap(),
            (s, want)
        );
        // Parts that are not the inputs' channels, or that do not line up.
        assert!(
            harbor_kernel(&[part(0..1), part(1..3)], &h)
                .unwrap_err()
                .contains("input channels")
        );
        assert!(harbor_kernel(&[part(0..2)], &h).is_err());
        assert!(harbor_kernel(&[part(0..2), (vec![1, 1, 1, 2], vec![0.0; 2])], &h).is_err());
        // A fully connected `[in, out]` kernel over the same harbor.
        let (s, v) = harbor_kernel(&[(vec![3, 1], vec![0.0, 1.0, 2.0])], &h).unwrap();
        assert_eq!((s, v), (vec![3, 1], vec![2.0, 0.0, 1.0]));
    }
}
