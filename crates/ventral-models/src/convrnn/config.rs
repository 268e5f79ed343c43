//! The ConvRNN family's configuration (`kind = "convrnn"`): the graph (PyTorchTNN's schema,
//! [`super::spec`]) plus what ventral adds — how a still image becomes a movie, which
//! temporal decoder turns logits over time into one prediction, the number of classes.
//! Validation resolves every node's input and output shape before anything is allocated.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::spec::{CellSpec, EdgeSpec, HarborSpec, NodeSpec, OpSpec, Padding};
use crate::error::{ModelError, Result};

/// How the image is presented over time (Nayebi et al.'s `image_pres`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Movie {
    /// The image is shown for steps `[0, image_off)`, then the blank frame; `None`: shown at
    /// every step (`constant`).
    #[serde(default)]
    pub image_off: Option<usize>,
    /// The blank frame's value, in the network's input space (after normalisation). The
    /// original (`convrnns`) uses the constant 0.5 *after* ImageNet normalisation, not mean
    /// grey (which would be 0 after normalisation).
    #[serde(default = "half")]
    pub blank_value: f64,
}

fn half() -> f64 {
    0.5
}

impl Default for Movie {
    fn default() -> Self {
        Self {
            image_off: None,
            blank_value: 0.5,
        }
    }
}

/// Temporal decoders (`convrnns/utils/decoders.py`): logits over steps → one prediction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecoderKind {
    /// The last step's logits.
    Last,
    /// The step whose softmax is most confident.
    MaxConf,
    /// The first step whose max softmax reaches the threshold (else `max_conf`).
    Thresh,
    /// Per class, the logit at the step where that class's probability peaks.
    TimeMax,
    /// Per class, a softmax over time of the logits weights the logits.
    WAvg,
    /// Steps weighted by a softmax over time of their max probability.
    WTimeAvg,
    /// Learned weights per (step, class): σ(a)/Σₜσ(a).
    WAvgT,
}

impl DecoderKind {
    /// Whether the decoder has a softmax inverse temperature β (`decoder.beta`).
    pub fn has_beta(self) -> bool {
        matches!(
            self,
            DecoderKind::MaxConf
                | DecoderKind::Thresh
                | DecoderKind::TimeMax
                | DecoderKind::WAvg
                | DecoderKind::WTimeAvg
        )
    }
}

/// The decoder and where the loss is taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decoder {
    #[serde(default = "last")]
    pub kind: DecoderKind,
    /// First step the decoder reads (`convrnns` reads steps ≥ the number of layers; ventral's
    /// default 0 reads all).
    #[serde(default)]
    pub start: usize,
    /// `thresh`: θ.
    #[serde(default = "theta")]
    pub threshold: f64,
    /// Train the softmax inverse temperature β (`decoder.beta`) of `max_conf`, `thresh`,
    /// `time_max`, `w_avg`, `w_time_avg` — the zoo's `_tmaxconf` models. `thresh`'s θ stays
    /// `threshold` (convrnns' trainable `decoder_threshold` only enters a comparison, so it
    /// gets no gradient either; a checkpoint's must equal `threshold`).
    #[serde(default)]
    pub trainable: bool,
    /// `decoder`: the loss is the NLL of the decoder's output (the original); `steps`: Σₜ wₜ
    /// NLLₜ over every step with `train.loss_weights`.
    #[serde(default = "decoder_loss")]
    pub loss: String,
}

fn last() -> DecoderKind {
    DecoderKind::Last
}
fn theta() -> f64 {
    0.9
}
fn decoder_loss() -> String {
    "decoder".into()
}

impl Default for Decoder {
    fn default() -> Self {
        Self {
            kind: DecoderKind::Last,
            start: 0,
            threshold: 0.9,
            trainable: false,
            loss: "decoder".into(),
        }
    }
}

/// In which order a node's inputs are concatenated by its harbor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HarborOrder {
    /// PyTorchTNN's: the frame (input nodes), then predecessors sorted by name as Python
    /// sorts strings (`conv10` < `conv7`).
    Sorted,
    /// The frame, the `shape_from` predecessor, then the others sorted by name: the
    /// feedforward input is always first, which the reciprocal gated cell's split into
    /// feedforward and feedback parts requires.
    FeedforwardFirst,
}

fn sorted() -> HarborOrder {
    HarborOrder::Sorted
}
fn default_areas() -> BTreeMap<String, Vec<String>> {
    BTreeMap::new()
}

/// A ConvRNN (`kind = "convrnn"`): PyTorchTNN's graph JSON keys plus ventral's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConvRnnConfig {
    pub nodes: Vec<NodeSpec>,
    pub edges: Vec<EdgeSpec>,
    pub input_nodes: Vec<String>,
    pub output_node: String,
    /// `[C, H, W]`.
    pub input_shape: [usize; 3],
    /// Steps to unroll (and the number of time-varying BatchNorms).
    pub num_timesteps: usize,
    #[serde(default)]
    pub movie: Movie,
    #[serde(default)]
    pub decoder: Decoder,
    #[serde(default = "sorted")]
    pub harbor_order: HarborOrder,
    /// Brain areas → nodes (the authors' mapping for the presets), for `neural-fit`.
    #[serde(default = "default_areas")]
    pub brain_areas: BTreeMap<String, Vec<String>>,
    /// A node order to run in (PyTorchTNN's `ff_order`); defaults to `nodes` order.
    #[serde(default)]
    pub ff_order: Option<Vec<String>>,
}

/// Everything the graph's shapes resolve to, per node (in `nodes` order).
#[derive(Debug, Clone, PartialEq)]
pub struct NodePlan {
    pub name: String,
    /// Inputs in harbor order: `None` is the frame, `Some(i)` node i's output.
    pub inputs: Vec<Option<usize>>,
    /// Channels of each input (same order).
    pub input_channels: Vec<usize>,
    /// Spatial size every input is resized to.
    pub in_hw: [usize; 2],
    /// Channels of the feedforward input (the frame or the `shape_from` node).
    pub ff_channels: usize,
    /// Channels after the pre-memory.
    pub pre_channels: usize,
    /// Spatial size after the pre-memory (the cell's).
    pub cell_hw: [usize; 2],
    /// Output `[C, H, W]` (`H = W = 0` for a flat output).
    pub out: [usize; 3],
    /// Whether the output is flat (`[batch, C]`, after a fully connected layer).
    pub flat: bool,
    /// Whether this node's cell gets the feedback split off (reciprocal gated cell with more
    /// than one input).
    pub split_feedback: bool,
}

impl NodePlan {
    /// How many of the first inputs make the feedforward part of the harbor (what the
    /// pre-memory reads): all of them, or with the feedback split off those whose channels add
    /// up to `ff_channels`; `None` where no prefix does.
    pub fn feedforward_inputs(&self) -> Option<usize> {
        if !self.split_feedback {
            return Some(self.inputs.len());
        }
        let mut sum = 0;
        for (i, c) in self.input_channels.iter().enumerate() {
            if sum == self.ff_channels {
                return Some(i);
            }
            sum += c;
        }
        (sum == self.ff_channels).then_some(self.inputs.len())
    }
}

impl ConvRnnConfig {
    /// Read PyTorchTNN's JSON (or ventral's own keys in JSON).
    /// A convrnns (TensorFlow) model JSON is recognised and translated
    /// ([`super::tf_json`]); `origin` is the file's path, whose name gives its cell type.
    pub fn from_json(text: &str, origin: &str) -> Result<Self> {
        let v: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| ModelError::Config(format!("{origin}: not JSON: {e}")))?;
        if super::tf_json::is_convrnns_json(&v) {
            return super::tf_json::translate(&v, origin);
        }
        let c: Self = serde_json::from_value(v).map_err(|e| {
            ModelError::Config(format!("{origin}: not a ConvRNN graph description: {e}"))
        })?;
        c.validate().map_err(|e| match e {
            // Prefix the file, not a second "invalid model configuration".
            ModelError::Config(m) => ModelError::Config(format!("{origin}: {m}")),
            e => e,
        })?;
        Ok(c)
    }

    /// Check the graph and resolve every shape.
    pub fn validate(&self) -> Result<()> {
        self.plan().map(|_| ())
    }

    /// Classes: the output node's channels.
    pub fn num_classes(&self) -> usize {
        self.node(&self.output_node)
            .map(|n| n.out_channels)
            .unwrap_or(0)
    }

    /// Give the readout `n` classes: the output node's last convolution or fully connected
    /// layer (searched from the end of its post-memory, then its pre-memory) gets `n` outputs
    /// — how a zoo architecture (1000 ImageNet classes) is trained on another data set
    /// (`[model] num_classes = 8` beside `preset` or `graph`).
    pub fn set_num_classes(&mut self, n: usize) -> Result<()> {
        fn last(op: &mut OpSpec) -> Option<&mut usize> {
            match op {
                OpSpec::Conv2dCell(c) => Some(&mut c.out_channels),
                OpSpec::FullyConnected { out_channels, .. } => Some(out_channels),
                OpSpec::Sequential {
                    list_of_func_kwargs,
                } => list_of_func_kwargs.iter_mut().rev().find_map(last),
                _ => None,
            }
        }
        if n == 0 {
            return Err(ModelError::Config("num_classes must be ≥ 1".into()));
        }
        let out = self.output_node.clone();
        let node = self
            .nodes
            .iter_mut()
            .find(|x| x.name == out)
            .ok_or_else(|| ModelError::Config(format!("output node '{out}' is not a node")))?;
        if !matches!(node.recurrent_cell, CellSpec::IdentityCell {}) {
            return Err(ModelError::Config(format!(
                "num_classes: the output node '{out}' has a recurrent cell; set its width in the graph"
            )));
        }
        let slot = last(&mut node.post_memory)
            .or_else(|| last(&mut node.pre_memory))
            .ok_or_else(|| {
                ModelError::Config(format!(
                    "num_classes: the output node '{out}' has no convolution or fully connected layer to resize"
                ))
            })?;
        *slot = n;
        node.out_channels = n;
        self.validate()
    }

    /// Input side (`input_shape[1]`; the graph is square).
    pub fn image_size(&self) -> usize {
        self.input_shape[1]
    }

    /// The node called `name`.
    pub fn node(&self, name: &str) -> Option<&NodeSpec> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// Node names in the order they are run (and recorded).
    pub fn areas(&self) -> Vec<String> {
        self.run_order()
            .into_iter()
            .map(|i| self.nodes[i].name.clone())
            .collect()
    }

    /// The step at which the image first reaches each node (every edge delays one step, so
    /// a node `d` edges from the nearest input node sees it at step `d`); `None` where no path
    /// of edges leads from an input node. Unknown names are skipped ([`Self::plan`] refuses
    /// them).
    pub fn image_arrival(&self) -> Vec<Option<usize>> {
        let index: BTreeMap<&str, usize> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name.as_str(), i))
            .collect();
        let mut out: Vec<Vec<usize>> = vec![Vec::new(); self.nodes.len()];
        for e in &self.edges {
            if let (Some(&a), Some(&b)) = (index.get(e.from.as_str()), index.get(e.to.as_str())) {
                out[a].push(b);
            }
        }
        let sources = self
            .input_nodes
            .iter()
            .filter_map(|n| index.get(n.as_str()).copied());
        hops(self.nodes.len(), sources, |a| out[a].iter().copied())
    }

    /// The step at which the image first reaches the output node, or why no step's output
    /// depends on the image: no path of edges from an input node, or one longer than the run
    /// (a too-short presentation for a deep graph — its logits are the same for every image,
    /// though its areas may not be, so only training refuses it).
    pub fn output_sees_image(&self) -> std::result::Result<usize, String> {
        let o = self.nodes.iter().position(|n| n.name == self.output_node);
        match o.and_then(|o| self.image_arrival()[o]) {
            None => Err(format!(
                "output_node '{}' is not reached from the input nodes {:?} by any path of edges: \
                 its output never depends on the image",
                self.output_node, self.input_nodes
            )),
            Some(d) if d >= self.num_timesteps => Err(format!(
                "the image reaches output_node '{}' at step {d} (every edge delays one step; its \
                 shortest path from an input node has {d} edges) but the graph runs {} steps, \
                 so no step's output depends on the image: use num_timesteps ≥ {}",
                self.output_node,
                self.num_timesteps,
                d + 1
            )),
            Some(d) => Ok(d),
        }
    }

    /// A note where a decoder that chooses among steps (`max_conf`, `thresh`, `time_max`)
    /// may choose steps before the image reaches the output node: their logits are the same
    /// for every image. convrnns starts its decoders at the number of layers for this reason.
    pub fn decoder_note(&self) -> Option<String> {
        let d = &self.decoder;
        let kind = match d.kind {
            DecoderKind::MaxConf => "max_conf",
            DecoderKind::Thresh => "thresh",
            DecoderKind::TimeMax => "time_max",
            _ => return None,
        };
        let first = self.output_sees_image().ok()?;
        (d.start < first).then(|| {
            format!(
                "decoder.start = {} lets the {kind} decoder choose steps {}–{}, before the image \
                 reaches output node '{}' at step {first}: their logits are the same for every \
                 image (convrnns starts its decoders at the number of layers; here \
                 decoder.start ≥ {first})",
                d.start,
                d.start,
                first - 1,
                self.output_node
            )
        })
    }

    /// Node indices in run order (`ff_order`, else `nodes` order). Every edge delays one step,
    /// so the order does not change the result; it fixes the order of areas in recordings.
    pub fn run_order(&self) -> Vec<usize> {
        match &self.ff_order {
            Some(o) => o
                .iter()
                .filter_map(|n| self.nodes.iter().position(|m| &m.name == n))
                .collect(),
            None => (0..self.nodes.len()).collect(),
        }
    }

    /// Resolve the graph: every node's inputs in harbor order and its shapes.
    pub fn plan(&self) -> Result<Vec<NodePlan>> {
        let err = |m: String| Err(ModelError::Config(m));
        if self.nodes.is_empty() {
            return err("the graph has no nodes".into());
        }
        if self.num_timesteps == 0 || self.num_timesteps > 10_000 {
            return err(format!(
                "num_timesteps must be in 1..=10000, got {}",
                self.num_timesteps
            ));
        }
        let [c0, h0, w0] = self.input_shape;
        if c0 == 0 || h0 == 0 || w0 == 0 || h0 > 4096 || w0 > 4096 || c0 > 64 {
            return err(format!(
                "input_shape must be [C ≤ 64, H ≤ 4096, W ≤ 4096], all > 0, got {:?}",
                self.input_shape
            ));
        }
        let mut names = BTreeSet::new();
        for n in &self.nodes {
            if !names.insert(n.name.as_str()) {
                return err(format!("node '{}' is defined twice", n.name));
            }
            if n.name.is_empty() || n.name.contains('.') {
                return err(format!(
                    "node name '{}' must be non-empty and contain no '.' (it prefixes parameter names)",
                    n.name
                ));
            }
        }
        let idx = |name: &str| self.nodes.iter().position(|n| n.name == name);
        for e in &self.edges {
            for end in [&e.from, &e.to] {
                if idx(end).is_none() {
                    return err(format!(
                        "edge {} → {} names an unknown node '{end}'",
                        e.from, e.to
                    ));
                }
            }
        }
        for i in &self.input_nodes {
            if idx(i).is_none() {
                return err(format!("input node '{i}' is not a node"));
            }
        }
        if self.input_nodes.is_empty() {
            return err("input_nodes is empty: no node receives the image".into());
        }
        if idx(&self.output_node).is_none() {
            return err(format!("output_node '{}' is not a node", self.output_node));
        }
        if let Some(o) = &self.ff_order {
            let set: BTreeSet<&str> = o.iter().map(|s| s.as_str()).collect();
            if set.len() != self.nodes.len() || o.iter().any(|n| idx(n).is_none()) {
                return err("ff_order must list every node exactly once".into());
            }
        }
        if let Some(off) = self.movie.image_off
            && off == 0
        {
            return err("movie.image_off must be ≥ 1 (the image is never shown otherwise)".into());
        }
        if !self.movie.blank_value.is_finite() {
            return err("movie.blank_value must be finite".into());
        }
        if self.decoder.start >= self.num_timesteps {
            return err(format!(
                "decoder.start = {} but the graph runs {} steps",
                self.decoder.start, self.num_timesteps
            ));
        }
        if !(self.decoder.threshold > 0.0 && self.decoder.threshold < 1.0) {
            return err(format!(
                "decoder.threshold must be in (0, 1), got {}",
                self.decoder.threshold
            ));
        }
        if self.decoder.loss != "decoder" && self.decoder.loss != "steps" {
            return err(format!(
                "decoder.loss must be \"decoder\" or \"steps\", got \"{}\"",
                self.decoder.loss
            ));
        }
        for (area, nodes) in &self.brain_areas {
            for n in nodes {
                if idx(n).is_none() {
                    return err(format!("brain_areas.{area} names an unknown node '{n}'"));
                }
            }
        }
        // Predecessors per node, in harbor order.
        let n_nodes = self.nodes.len();
        let mut plans: Vec<Option<NodePlan>> = vec![None; n_nodes];
        // Resolve shapes in dependency order of shape_from.
        let mut remaining: Vec<usize> = (0..n_nodes).collect();
        while !remaining.is_empty() {
            let before = remaining.len();
            let mut next = Vec::new();
            for &i in &remaining {
                let n = &self.nodes[i];
                let is_input = self.input_nodes.contains(&n.name);
                let in_hw = match &n.shape_from {
                    None => {
                        if !is_input {
                            return err(format!(
                                "node '{}' has no shape_from and is not an input node",
                                n.name
                            ));
                        }
                        [h0, w0]
                    }
                    Some(s) => {
                        let Some(j) = idx(s) else {
                            return err(format!(
                                "node '{}': shape_from '{s}' is not a node",
                                n.name
                            ));
                        };
                        match &plans[j] {
                            Some(p) => {
                                if p.flat {
                                    return err(format!(
                                        "node '{}': shape_from '{s}' has a flat output",
                                        n.name
                                    ));
                                }
                                [p.out[1], p.out[2]]
                            }
                            None => {
                                next.push(i);
                                continue;
                            }
                        }
                    }
                };
                plans[i] = Some(self.plan_node(i, in_hw, is_input)?);
            }
            remaining = next;
            if remaining.len() == before {
                return err(format!(
                    "shape_from forms a cycle through node '{}'",
                    self.nodes[remaining[0]].name
                ));
            }
        }
        let mut plans: Vec<NodePlan> = plans.into_iter().flatten().collect();
        // Inputs and channels now that every output is known.
        for i in 0..n_nodes {
            let n = &self.nodes[i];
            let mut preds: Vec<usize> = self
                .edges
                .iter()
                .filter(|e| e.to == n.name)
                .filter_map(|e| idx(&e.from))
                .collect();
            preds.sort_by(|&a, &b| self.nodes[a].name.cmp(&self.nodes[b].name));
            preds.dedup();
            if self.harbor_order == HarborOrder::FeedforwardFirst
                && let Some(s) = &n.shape_from
                && let Some(pos) = preds.iter().position(|&p| &self.nodes[p].name == s)
            {
                let p = preds.remove(pos);
                preds.insert(0, p);
            }
            let is_input = self.input_nodes.contains(&n.name);
            let mut inputs: Vec<Option<usize>> = Vec::new();
            if is_input {
                inputs.push(None);
            }
            inputs.extend(preds.iter().map(|&p| Some(p)));
            if inputs.is_empty() {
                return err(format!("node '{}' has no inputs", n.name));
            }
            let mut chans = Vec::new();
            for inp in &inputs {
                match inp {
                    None => chans.push(c0),
                    Some(p) => {
                        if plans[*p].flat {
                            return err(format!(
                                "edge {} → {}: a flat (fully connected) output cannot feed a node",
                                self.nodes[*p].name, n.name
                            ));
                        }
                        chans.push(plans[*p].out[0]);
                    }
                }
            }
            if n.shape_from.is_some()
                && let Some(s) = &n.shape_from
                && !preds.iter().any(|&p| &self.nodes[p].name == s)
            {
                return err(format!(
                    "node '{}': shape_from '{s}' is not one of its predecessors",
                    n.name
                ));
            }
            let ff_channels = if is_input {
                c0
            } else {
                let s = n.shape_from.as_deref().unwrap_or_default();
                idx(s).map(|j| plans[j].out[0]).unwrap_or(0)
            };
            if matches!(n.harbor_policy, HarborSpec::Identity {}) {
                for inp in inputs.iter().flatten() {
                    let o = plans[*inp].out;
                    if [o[1], o[2]] != plans[i].in_hw {
                        return err(format!(
                            "node '{}' has the Identity harbor but its input '{}' is {}×{}, not {}×{}",
                            n.name,
                            self.nodes[*inp].name,
                            o[1],
                            o[2],
                            plans[i].in_hw[0],
                            plans[i].in_hw[1]
                        ));
                    }
                }
            }
            plans[i].inputs = inputs;
            plans[i].input_channels = chans;
            plans[i].ff_channels = ff_channels;
        }
        // Channel bookkeeping needs the inputs: recompute each node with them.
        for i in 0..n_nodes {
            let p = plans[i].clone();
            plans[i] = self.plan_channels(i, p)?;
        }
        Ok(plans)
    }

    /// First pass of one node: spatial sizes only (channels are checked in `plan_channels`).
    fn plan_node(&self, i: usize, in_hw: [usize; 2], _is_input: bool) -> Result<NodePlan> {
        let n = &self.nodes[i];
        let ctx = |m: String| ModelError::Config(format!("node '{}': {m}", n.name));
        let (pre_hw, pre_flat) = op_hw(&n.pre_memory, in_hw, false).map_err(ctx)?;
        if pre_flat {
            return Err(ctx(
                "a flat pre-memory output cannot go through a recurrent cell".into(),
            ));
        }
        let (out_hw, flat) = op_hw(&n.post_memory, pre_hw, false).map_err(ctx)?;
        if out_hw[0] == 0 || out_hw[1] == 0 {
            return Err(ctx(format!(
                "the output size is {}×{} (input {}×{}): the image is too small for this graph",
                out_hw[0], out_hw[1], in_hw[0], in_hw[1]
            )));
        }
        Ok(NodePlan {
            name: n.name.clone(),
            inputs: Vec::new(),
            input_channels: Vec::new(),
            in_hw,
            ff_channels: 0,
            pre_channels: 0,
            cell_hw: pre_hw,
            out: [
                n.out_channels,
                if flat { 0 } else { out_hw[0] },
                if flat { 0 } else { out_hw[1] },
            ],
            flat,
            split_feedback: false,
        })
    }

    /// Second pass: channels through the harbor, pre-memory, cell and post-memory.
    fn plan_channels(&self, i: usize, mut p: NodePlan) -> Result<NodePlan> {
        let n = &self.nodes[i];
        let ctx = |m: String| ModelError::Config(format!("node '{}': {m}", n.name));
        let harbor: usize = p
            .input_channels
            .iter()
            .try_fold(0usize, |a, &c| a.checked_add(c))
            .ok_or_else(|| {
                ctx(format!(
                    "its inputs' channels {:?} overflow",
                    p.input_channels
                ))
            })?;
        let rgc = matches!(n.recurrent_cell, CellSpec::ReciprocalGatedCell(_));
        p.split_feedback = rgc && p.inputs.len() > 1;
        if p.split_feedback && p.inputs[0] != self.ff_input(i) {
            return Err(ctx(format!(
                "its reciprocal gated cell splits the harbor into the feedforward part (first) and feedback, but with harbor_order = \"sorted\" the first input is '{}'; set harbor_order = \"feedforward_first\"",
                match p.inputs[0] {
                    None => "the image".to_string(),
                    Some(j) => self.nodes[j].name.clone(),
                }
            )));
        }
        let pre_in = if p.split_feedback {
            p.ff_channels
        } else {
            harbor
        };
        let pre_out = op_channels(&n.pre_memory, pre_in).map_err(ctx)?;
        p.pre_channels = pre_out;
        let cell_out = cell_channels(&n.recurrent_cell, pre_out).map_err(ctx)?;
        let res_in = if p.split_feedback {
            p.ff_channels
        } else {
            harbor
        };
        let post_out = post_channels(&n.post_memory, cell_out, res_in).map_err(ctx)?;
        if post_out != n.out_channels {
            return Err(ctx(format!(
                "out_channels = {} but its modules produce {post_out} channels",
                n.out_channels
            )));
        }
        Ok(p)
    }

    /// The feedforward input of node `i` (the frame for input nodes, else `shape_from`).
    pub fn ff_input(&self, i: usize) -> Option<usize> {
        let n = &self.nodes[i];
        if self.input_nodes.contains(&n.name) {
            return None;
        }
        n.shape_from
            .as_deref()
            .and_then(|s| self.nodes.iter().position(|m| m.name == s))
    }

    /// Parameters, units per step (Σ C·H·W over nodes) and units computed once, estimated from
    /// the configuration alone (saturating), for the allocation guard.
    pub fn estimated_size(&self) -> (u128, u128, u128) {
        let Ok(plans) = self.plan() else {
            return (0, 0, 0);
        };
        let mut params: u128 = 0;
        let mut units: u128 = 0;
        for (n, p) in self.nodes.iter().zip(&plans) {
            // Units as Nayebi et al. count them: every node's output, Σ C·H·W.
            units = units.saturating_add(
                (p.out[0] as u128).saturating_mul((p.out[1].max(1) * p.out[2].max(1)) as u128),
            );
            params = params.saturating_add(spec_params(n, p) as u128);
        }
        // The temporal decoder's β and learned step weights (`decoder.alpha`).
        let d = &self.decoder;
        if d.kind.has_beta() {
            params = params.saturating_add(1);
        }
        if d.kind == DecoderKind::WAvgT {
            params = params.saturating_add(
                (self.num_timesteps.saturating_sub(d.start) as u128)
                    .saturating_mul(self.num_classes() as u128),
            );
        }
        (params, units, 0)
    }
}

/// The exact parameter count of a node, from its description alone (mirrors the build).
fn spec_params(n: &NodeSpec, p: &NodePlan) -> usize {
    let harbor: usize = p
        .input_channels
        .iter()
        .fold(0usize, |a, &c| a.saturating_add(c));
    let (pre_in, res_c, fb_c) = if p.split_feedback {
        (p.ff_channels, p.ff_channels, Some(harbor - p.ff_channels))
    } else {
        (harbor, harbor, None)
    };
    let (pre, c, hw) = op_params(&n.pre_memory, pre_in, p.in_hw, res_c);
    let cell = cell_params(&n.recurrent_cell, c, res_c, fb_c, p.cell_hw);
    let cc = cell_channels(&n.recurrent_cell, c).unwrap_or(c);
    let (post, _, _) = op_params(&n.post_memory, cc, hw, res_c);
    pre.saturating_add(cell).saturating_add(post)
}

fn conv_params(ci: usize, co: usize, k: [usize; 2], groups: usize, bias: bool) -> usize {
    (ci / groups.max(1))
        .saturating_mul(co)
        .saturating_mul(k[0].saturating_mul(k[1]))
        .saturating_add(if bias { co } else { 0 })
}

/// (parameters, output channels, output size) of an op.
fn op_params(op: &OpSpec, cin: usize, hw: [usize; 2], res: usize) -> (usize, usize, [usize; 2]) {
    let (hw2, _) = op_hw(op, hw, false).unwrap_or((hw, false));
    match op {
        OpSpec::Conv2dCell(c) => {
            let bn = c.batchnorm.map_or(0, |b| 2 * b);
            (
                conv_params(cin, c.out_channels, c.ksize.get(), c.groups, c.use_bias)
                    .saturating_add(bn),
                c.out_channels,
                hw2,
            )
        }
        OpSpec::ResidualAdd {
            feedforward_func_kwargs,
            residual_func_kwargs,
            ..
        } => {
            let (f, c, h) = op_params(feedforward_func_kwargs, cin, hw, res);
            let r = residual_func_kwargs
                .as_ref()
                .map_or(0, |r| op_params(r, res, hw, res).0);
            (f.saturating_add(r), c, h)
        }
        OpSpec::Sequential {
            list_of_func_kwargs,
        } => {
            let (mut total, mut c, mut h) = (0usize, cin, hw);
            for o in list_of_func_kwargs {
                let (pp, c2, h2) = op_params(o, c, h, res);
                total = total.saturating_add(pp);
                c = c2;
                h = h2;
            }
            (total, c, h)
        }
        OpSpec::FullyConnected {
            out_channels,
            use_bias,
            ..
        } => {
            let fan_in = cin.saturating_mul(hw[0].saturating_mul(hw[1]));
            (
                fan_in
                    .saturating_mul(*out_channels)
                    .saturating_add(if *use_bias { *out_channels } else { 0 }),
                *out_channels,
                [1, 1],
            )
        }
        _ => (0, cin, hw2),
    }
}

/// A count that saturates instead of overflowing (a description may claim any size: its
/// estimate must stay an upper bound, never wrap).
#[derive(Clone, Copy)]
struct Sat(usize);

impl std::ops::Add for Sat {
    type Output = Sat;
    fn add(self, o: Sat) -> Sat {
        Sat(self.0.saturating_add(o.0))
    }
}

impl std::ops::Mul for Sat {
    type Output = Sat;
    fn mul(self, o: Sat) -> Sat {
        Sat(self.0.saturating_mul(o.0))
    }
}

impl std::ops::AddAssign for Sat {
    fn add_assign(&mut self, o: Sat) {
        *self = *self + o;
    }
}

fn cell_params(cell: &CellSpec, c: usize, res: usize, fb: Option<usize>, hw: [usize; 2]) -> usize {
    let k2 = |g: &super::spec::GatedSpec| g.ksize.get();
    let ln = |on: bool, o: usize, n: usize| if on { Sat(2) * Sat(o) * Sat(n) } else { Sat(0) };
    let cp = |ci: Sat, co: Sat, k: [usize; 2], groups: usize, bias: bool| {
        Sat(conv_params(ci.0, co.0, k, groups, bias))
    };
    let (c, res) = (Sat(c), Sat(res));
    let n = match cell {
        CellSpec::IdentityCell {} => Sat(0),
        CellSpec::TimeDecayRecurrentCell { .. } => Sat(1),
        CellSpec::ConvRNNBasicCell {
            out_channels,
            ksize,
            ..
        } => {
            let o = Sat(*out_channels);
            cp(c, o, ksize.get(), 1, true) + cp(o, o, ksize.get(), 1, true)
        }
        CellSpec::VanillaRNNCell(g) => {
            let o = Sat(g.out_channels);
            cp(c, o, k2(g), 1, g.use_bias)
                + cp(o, o, k2(g), 1, g.use_bias)
                + ln(g.layernorm.unwrap_or(true), o.0, 1)
        }
        CellSpec::GRUCell(g) => {
            let o = Sat(g.out_channels);
            cp(c + o, Sat(2) * o, k2(g), 1, g.use_bias)
                + cp(c + o, o, k2(g), 1, g.use_bias)
                + ln(g.layernorm.unwrap_or(false), o.0, 3)
        }
        CellSpec::LSTMCell(g) => {
            let o = Sat(g.out_channels);
            cp(c + o, Sat(4) * o, k2(g), 1, g.use_bias)
                + ln(g.layernorm.unwrap_or(false), o.0, 5)
                + if g.use_peepholes {
                    Sat(3) * o * Sat(hw[0]) * Sat(hw[1])
                } else {
                    Sat(0)
                }
        }
        CellSpec::UGRNNCell(g) => {
            let o = Sat(g.out_channels);
            cp(c + o, Sat(2) * o, k2(g), 1, g.use_bias) + ln(g.layernorm.unwrap_or(false), o.0, 2)
        }
        CellSpec::IntersectionRNNCell(g) => {
            let o = Sat(g.out_channels);
            cp(Sat(2) * c, Sat(4) * o, k2(g), 1, g.use_bias)
                + ln(g.layernorm.unwrap_or(false), o.0, 4)
        }
        CellSpec::ReciprocalGatedCell(r) => {
            let conv = |ci: Sat, co: Sat, k: [usize; 2], sep: bool| {
                if sep {
                    let k = r.separable_kernel(k, hw);
                    let rep = if r.ds_repeat {
                        cp(ci, ci, k, ci.0, r.use_bias)
                    } else {
                        Sat(0)
                    };
                    cp(ci, ci, k, ci.0, r.use_bias && !r.tensorflow)
                        + cp(ci, co, [1, 1], 1, true)
                        + rep
                } else {
                    cp(ci, co, k, 1, r.use_bias)
                }
            };
            let (o, cd) = (Sat(r.out_channels), Sat(r.cell_depth));
            let mut n = fb.map_or(Sat(0), |f| {
                conv(
                    Sat(f),
                    c,
                    r.feedback_filter_size,
                    r.feedback_depth_separable,
                )
            });
            if r.input_to_out {
                n += conv(c, o, r.in_out_filter_size, r.in_out_depth_separable);
            }
            n += conv(o, o, r.tau_filter_size, r.tau_depth_separable);
            if r.residual_to_out_gate {
                n += conv(res, o, r.gate_filter_size, r.gate_depth_separable);
            }
            if r.gate_filter_size != [0, 0] {
                if r.cell_residual {
                    n += conv(res, cd, r.ff_filter_size, r.ff_depth_separable);
                }
                if r.input_to_cell {
                    n += conv(c, cd, r.ff_filter_size, r.ff_depth_separable);
                }
                let ctk = r.cell_tau_filter_size.unwrap_or(r.tau_filter_size);
                n += conv(cd, cd, ctk, r.tau_depth_separable);
                n += conv(o, cd, r.gate_filter_size, r.gate_depth_separable);
                n += conv(cd, o, r.gate_filter_size, r.gate_depth_separable);
            }
            if r.out_residual && r.tensorflow {
                // `residual_add`: the identity at equal widths, else a bias-free 1 × 1.
                n += if res.0 == o.0 {
                    Sat(0)
                } else {
                    cp(res, o, [1, 1], 1, false)
                };
            } else if r.out_residual {
                n += conv(res, o, [1, 1], false);
            }
            n + ln(r.layernorm, (cd + o).0, 1)
        }
    };
    n.0
}

/// The fewest edges from any of `sources` to each of `n` nodes, `next(a)` giving the nodes one
/// edge on from `a` (breadth first); `None` where none leads.
pub(crate) fn hops<I: Iterator<Item = usize>>(
    n: usize,
    sources: impl IntoIterator<Item = usize>,
    next: impl Fn(usize) -> I,
) -> Vec<Option<usize>> {
    let mut d: Vec<Option<usize>> = vec![None; n];
    let mut queue = std::collections::VecDeque::new();
    for i in sources {
        if d[i].is_none() {
            d[i] = Some(0);
            queue.push_back(i);
        }
    }
    while let Some(a) = queue.pop_front() {
        let step = d[a].map(|v| v + 1);
        for b in next(a) {
            if d[b].is_none() {
                d[b] = step;
                queue.push_back(b);
            }
        }
    }
    d
}

/// Output spatial size of a convolution.
pub fn conv_out(
    hw: [usize; 2],
    k: [usize; 2],
    s: [usize; 2],
    d: [usize; 2],
    pad: [(usize, usize); 2],
) -> std::result::Result<[usize; 2], String> {
    let mut out = [0; 2];
    for a in 0..2 {
        // Checked: a graph file may give any dilation or padding (up to 2⁶⁴ − 1).
        let span = k[a]
            .checked_sub(1)
            .and_then(|k1| d[a].checked_mul(k1))
            .and_then(|v| v.checked_add(1));
        let padded = hw[a]
            .checked_add(pad[a].0)
            .and_then(|v| v.checked_add(pad[a].1));
        let (Some(span), Some(padded)) = (span, padded) else {
            return Err(format!(
                "kernel {k:?}, dilation {d:?} and padding {pad:?} are too large (the sizes overflow)"
            ));
        };
        if s[a] == 0 {
            return Err(format!("stride {s:?} must be ≥ 1"));
        }
        if padded < span {
            return Err(format!(
                "a {}×{} kernel does not fit the {}×{} input",
                k[0], k[1], hw[0], hw[1]
            ));
        }
        out[a] = (padded - span) / s[a] + 1;
    }
    Ok(out)
}

/// The padding as (begin, end) per axis for an input of `hw` (which only `"tf_same"` reads).
pub fn conv_padding(
    p: &Padding,
    k: [usize; 2],
    d: [usize; 2],
    stride: [usize; 2],
    hw: [usize; 2],
) -> std::result::Result<[(usize, usize); 2], String> {
    match p {
        Padding::Pair(v) => {
            let v = v.get();
            Ok([(v[0], v[0]), (v[1], v[1])])
        }
        Padding::Named(s) if s == "valid" => Ok([(0, 0), (0, 0)]),
        Padding::Named(s) if s == "same" => {
            if stride != [1, 1] {
                return Err("padding 'same' needs stride 1 (as in PyTorch; TensorFlow's SAME with a stride is 'tf_same')".into());
            }
            // PyTorch: total d·(k−1), the smaller half first.
            let f = |a: usize| {
                let total = d[a].checked_mul(k[a].saturating_sub(1)).ok_or_else(|| {
                    format!("dilation {d:?} × kernel {k:?} is too large (it overflows)")
                })?;
                Ok::<_, String>((total / 2, total - total / 2))
            };
            Ok([f(0)?, f(1)?])
        }
        Padding::Named(s) if s == "tf_same" => Ok(tf_same_padding(hw, k, d, stride)),
        Padding::Named(s) => Err(format!(
            "padding must be an integer, a pair, 'same', 'valid' or 'tf_same', got '{s}'"
        )),
    }
}

/// TensorFlow's `SAME` padding (`tf.nn.conv2d`, `tf.nn.max_pool`): the output is ⌈H/s⌉ and
/// the total padding `max((out − 1)·s + d(k − 1) + 1 − H, 0)`, the smaller half before.
pub fn tf_same_padding(
    hw: [usize; 2],
    k: [usize; 2],
    d: [usize; 2],
    s: [usize; 2],
) -> [(usize, usize); 2] {
    // Saturating: an absurd dilation gives an absurd padding, which `conv_out` refuses.
    let f = |a: usize| {
        let out = hw[a].div_ceil(s[a].max(1));
        let span = d[a].saturating_mul(k[a].max(1) - 1).saturating_add(1);
        let total = (out.max(1) - 1)
            .saturating_mul(s[a])
            .saturating_add(span)
            .saturating_sub(hw[a]);
        (total / 2, total - total / 2)
    };
    [f(0), f(1)]
}

fn check_kernel(k: [usize; 2], s: [usize; 2], d: [usize; 2]) -> std::result::Result<(), String> {
    if k.contains(&0) || s.contains(&0) || d.contains(&0) || k[0] > 64 || k[1] > 64 {
        return Err(format!(
            "kernel {k:?}, stride {s:?} and dilation {d:?} must be ≥ 1 (kernel ≤ 64)"
        ));
    }
    Ok(())
}

/// Spatial size after an op; `flat` once a fully connected layer has run.
fn op_hw(
    op: &OpSpec,
    hw: [usize; 2],
    flat: bool,
) -> std::result::Result<([usize; 2], bool), String> {
    match op {
        OpSpec::Identity {} | OpSpec::ActivationLayer { .. } => Ok((hw, flat)),
        OpSpec::Conv2dCell(c) => {
            if flat {
                return Err("a convolution cannot follow a fully connected layer".into());
            }
            let (k, s, d) = (c.ksize.get(), c.stride.get(), c.dilation.get());
            check_kernel(k, s, d)?;
            let pad = conv_padding(&c.padding, k, d, s, hw)?;
            Ok((conv_out(hw, k, s, d, pad)?, false))
        }
        OpSpec::MaxPool {
            ksize,
            stride,
            padding,
            ceil_mode,
        } => {
            if flat {
                return Err("pooling cannot follow a fully connected layer".into());
            }
            let (k, s, p) = pool_geometry(*ksize, *stride, *padding);
            check_kernel(k, s, [1, 1])?;
            let mut out = [0; 2];
            for a in 0..2 {
                if p[a] > k[a] / 2 {
                    return Err("max-pool padding must be at most half the kernel".into());
                }
                out[a] = pool_out(hw[a], k[a], s[a], p[a], *ceil_mode);
            }
            Ok((out, false))
        }
        OpSpec::AdaptiveAvgPool { output_size, .. } => {
            let o = output_size.get();
            if o.contains(&0) {
                return Err("AdaptiveAvgPool output_size must be ≥ 1".into());
            }
            Ok((o, false))
        }
        OpSpec::ResidualAdd {
            feedforward_func_kwargs,
            ..
        } => op_hw(feedforward_func_kwargs, hw, flat),
        OpSpec::Sequential {
            list_of_func_kwargs,
        } => {
            let mut cur = (hw, flat);
            for o in list_of_func_kwargs {
                cur = op_hw(o, cur.0, cur.1)?;
            }
            Ok(cur)
        }
        OpSpec::FullyConnected { .. } => Ok(([1, 1], true)),
    }
}

/// A max-pool's kernel, stride (PyTorch's default: the kernel) and padding (default 0).
pub fn pool_geometry(
    ksize: super::spec::Pair,
    stride: Option<super::spec::Pair>,
    padding: Option<super::spec::Pair>,
) -> ([usize; 2], [usize; 2], [usize; 2]) {
    let k = ksize.get();
    (
        k,
        stride.map(|s| s.get()).unwrap_or(k),
        padding.map(|p| p.get()).unwrap_or([0, 0]),
    )
}

/// PyTorch's max-pool output size (ceil mode drops a window that would start in the padding).
pub fn pool_out(h: usize, k: usize, s: usize, p: usize, ceil: bool) -> usize {
    // PyTorch's pooling_output_shape: floor or ceil of (H + 2p − k)/s, + 1; in ceil mode the
    // last window must start inside the input or its left padding.
    let num = (h + 2 * p) as i64 - k as i64 + if ceil { s as i64 - 1 } else { 0 };
    if num < 0 {
        return 0;
    }
    let mut o = num / s as i64 + 1;
    if ceil && (o - 1) * s as i64 >= (h + p) as i64 {
        o -= 1;
    }
    o.max(0) as usize
}

/// Channels after a pre-memory op (which must know its input channels).
fn op_channels(op: &OpSpec, cin: usize) -> std::result::Result<usize, String> {
    match op {
        OpSpec::Conv2dCell(c) => {
            if let Some(ic) = c.in_channels
                && ic != cin
            {
                return Err(format!(
                    "Conv2dCell in_channels = {ic} but it receives {cin} channels"
                ));
            }
            if c.groups == 0
                || !cin.is_multiple_of(c.groups)
                || !c.out_channels.is_multiple_of(c.groups)
            {
                return Err(format!(
                    "groups = {} must divide in ({cin}) and out ({}) channels",
                    c.groups, c.out_channels
                ));
            }
            if c.out_channels == 0 {
                return Err("out_channels must be ≥ 1".into());
            }
            if c.dropout != 0.0 {
                return Err(
                    "dropout > 0 is not supported yet (ventral's ConvRNNs train without dropout, as the published presets do)"
                        .into(),
                );
            }
            Ok(c.out_channels)
        }
        OpSpec::Identity {}
        | OpSpec::ActivationLayer { .. }
        | OpSpec::MaxPool { .. }
        | OpSpec::AdaptiveAvgPool { .. } => Ok(cin),
        OpSpec::ResidualAdd { .. } => {
            Err("ResidualAdd needs the block input: use it as post_memory".into())
        }
        OpSpec::Sequential {
            list_of_func_kwargs,
        } => {
            let mut c = cin;
            for o in list_of_func_kwargs {
                c = op_channels(o, c)?;
            }
            Ok(c)
        }
        OpSpec::FullyConnected {
            out_channels,
            dropout,
            ..
        } => {
            if *dropout != 0.0 {
                return Err("dropout > 0 is not supported yet".into());
            }
            Ok(*out_channels)
        }
    }
}

/// Channels after a post-memory op; `res` is the residual's channels (the harbor output).
fn post_channels(op: &OpSpec, cin: usize, res: usize) -> std::result::Result<usize, String> {
    match op {
        OpSpec::ResidualAdd {
            feedforward_func_kwargs,
            residual_func_kwargs,
            ..
        } => {
            let f = op_channels(feedforward_func_kwargs, cin)?;
            let r = match residual_func_kwargs {
                Some(r) => op_channels(r, res)?,
                None => res,
            };
            if f != r {
                return Err(format!(
                    "ResidualAdd adds {f} feedforward channels to {r} residual channels"
                ));
            }
            Ok(f)
        }
        OpSpec::Sequential {
            list_of_func_kwargs,
        } => {
            let mut c = cin;
            for o in list_of_func_kwargs {
                c = post_channels(o, c, res)?;
            }
            Ok(c)
        }
        o => op_channels(o, cin),
    }
}

/// Channels out of a cell given its input channels.
pub fn cell_channels(cell: &CellSpec, cin: usize) -> std::result::Result<usize, String> {
    let declared_in = |name: &str, declared: Option<usize>, out: usize| {
        if let Some(d) = declared
            && d != cin
        {
            return Err(format!(
                "{name} input_in_channels = {d} but its pre-memory gives {cin}"
            ));
        }
        Ok(out)
    };
    match cell {
        CellSpec::GRUCell(g)
        | CellSpec::VanillaRNNCell(g)
        | CellSpec::UGRNNCell(g)
        | CellSpec::IntersectionRNNCell(g)
            if g.use_peepholes =>
        {
            Err("use_peepholes is an LSTM option".into())
        }
        CellSpec::IdentityCell {} | CellSpec::TimeDecayRecurrentCell { .. } => Ok(cin),
        CellSpec::ConvRNNBasicCell { out_channels, .. } => Ok(*out_channels),
        // The state may be narrower or wider than the input (convrnns' simplernn_shallow and
        // lstm_shallow): the convolutions over [x, h] take input + state channels.
        CellSpec::VanillaRNNCell(g) => {
            declared_in("VanillaRNNCell", g.input_in_channels, g.out_channels)
        }
        CellSpec::GRUCell(g) => declared_in("GRUCell", g.input_in_channels, g.out_channels),
        CellSpec::LSTMCell(g) => declared_in("LSTMCell", g.input_in_channels, g.out_channels),
        CellSpec::UGRNNCell(g) => declared_in("UGRNNCell", g.input_in_channels, g.out_channels),
        CellSpec::IntersectionRNNCell(g) => {
            declared_in("IntersectionRNNCell", g.input_in_channels, g.out_channels)?;
            if g.out_channels != cin {
                return Err(format!(
                    "IntersectionRNNCell needs out_channels = its input channels (its output gates the input itself), got {} vs {cin}",
                    g.out_channels
                ));
            }
            Ok(cin)
        }
        CellSpec::ReciprocalGatedCell(r) => {
            if let Some(d) = r.input_in_channels
                && d != cin
            {
                return Err(format!(
                    "ReciprocalGatedCell input_in_channels = {d} but its pre-memory gives {cin}"
                ));
            }
            if !r.input_to_out && r.out_channels != cin {
                return Err(format!(
                    "ReciprocalGatedCell without input_to_out adds its input to the output: out_channels ({}) must equal the input channels ({cin})",
                    r.out_channels
                ));
            }
            if r.feedback_entry != "out"
                && r.feedback_entry != "cell"
                && r.feedback_entry != "input"
            {
                return Err(format!(
                    "feedback_entry must be 'input', 'cell' or 'out', got '{}'",
                    r.feedback_entry
                ));
            }
            if !r.input_to_cell && !r.cell_residual && r.gate_filter_size != [0, 0] {
                return Err(
                    "ReciprocalGatedCell needs input_to_cell or cell_residual (the cell has no input otherwise)"
                        .into(),
                );
            }
            Ok(r.out_channels)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `convrnn_graph` fuzz target in a dev build: a graph's padding of
    /// 18446744073709551615 overflowed `H + padding` (a silent wrap in a release build, and a
    /// wrong output size); a dilation that large overflowed `d·(k − 1)`, and a max-pool padding
    /// that large overflowed the `2p ≤ k` check. Each is now refused with a message.
    #[test]
    fn absurd_padding_and_dilation_are_refused_not_wrapped() {
        let big = usize::MAX;
        let e = conv_out([8, 8], [3, 3], [1, 1], [1, 1], [(big, big), (1, 1)]).unwrap_err();
        assert!(e.contains("too large"), "{e}");
        let e = conv_out([8, 8], [3, 3], [1, 1], [big, 1], [(1, 1), (1, 1)]).unwrap_err();
        assert!(e.contains("too large"), "{e}");
        let e = conv_out([8, 8], [3, 3], [0, 1], [1, 1], [(1, 1), (1, 1)]).unwrap_err();
        assert!(e.contains("stride"), "{e}");
        let same = Padding::Named("same".into());
        let e = conv_padding(&same, [3, 3], [big, 1], [1, 1], [8, 8]).unwrap_err();
        assert!(e.contains("too large"), "{e}");
        // tf_same saturates; conv_out then refuses the result.
        let pad = tf_same_padding([8, 8], [3, 3], [big, 1], [1, 1]);
        assert!(conv_out([8, 8], [3, 3], [1, 1], [big, 1], pad).is_err());
        // The ordinary cases are unchanged.
        assert_eq!(
            conv_out([8, 8], [3, 3], [1, 1], [1, 1], [(1, 1), (1, 1)]),
            Ok([8, 8])
        );
        assert_eq!(
            conv_out([64, 64], [7, 7], [2, 2], [1, 1], [(3, 3), (3, 3)]),
            Ok([32, 32])
        );
        assert_eq!(
            conv_padding(&same, [5, 3], [2, 1], [1, 1], [8, 8]),
            Ok([(4, 4), (1, 1)])
        );
    }

    #[test]
    fn max_pool_padding_beyond_half_the_kernel_is_refused_without_overflow() {
        let pool = |p: usize| OpSpec::MaxPool {
            ksize: super::super::spec::Pair::One(3),
            stride: None,
            padding: Some(super::super::spec::Pair::One(p)),
            ceil_mode: false,
        };
        assert!(op_hw(&pool(1), [8, 8], false).is_ok());
        for p in [2, usize::MAX / 2 + 1, usize::MAX] {
            let e = op_hw(&pool(p), [8, 8], false).unwrap_err();
            assert!(e.contains("half the kernel"), "{p}: {e}");
        }
    }
}
