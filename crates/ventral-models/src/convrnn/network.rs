//! The ConvRNN: every node (harbor → pre-memory → cell → post-memory) unrolled with one step
//! of delay on every edge (biological unrolling, PyTorchTNN's `TemporalGraph.forward`).

use burn::module::{
    Content, Module, ModuleDisplay, ModuleDisplayDefault, ModuleMapper, ModuleVisitor, Param,
};
use burn::tensor::activation::{log_softmax, sigmoid, softmax};
use burn::tensor::{Device, Tensor};

use super::cells::{Cell, CellCtx, InputMemo};
use super::config::{ConvRnnConfig, DecoderKind, NodePlan};
use super::init::Init;
use super::ops::{OpCtx, PrePost, resize};
use super::spec::{CellSpec, HarborSpec};
use crate::cell::{CellInput, RecurrentCell};
use crate::error::{ModelError, Result};
use crate::output::ModelOutput;

/// One node under PyTorchTNN's names (`conv3._pre_memory.conv.weight`,
/// `conv3._recurrent_cell.conv.weight`, `conv4._post_memory.feedforward.conv.weight`).
#[derive(Module, Debug)]
pub struct Node {
    pub _pre_memory: PrePost,
    pub _recurrent_cell: Cell,
    pub _post_memory: PrePost,
}

impl Node {
    /// Without state and without step-dependent operations: the same input gives the same
    /// output at every step (an identity cell between BatchNorm-free pre/post memories), in
    /// training too — nothing in a node draws random numbers (dropout, which would draw a mask
    /// per step, is refused by the configuration check).
    pub fn step_invariant(&self) -> bool {
        matches!(self._recurrent_cell, Cell::Identity(_))
            && self._pre_memory.step_invariant()
            && self._post_memory.step_invariant()
    }
}

/// The decoder's parameters: `decoder.beta` (softmax inverse temperature; trained with
/// `decoder.trainable`), `decoder.alpha` (`w_avg_t`: `[steps, classes]`).
#[derive(Module, Debug)]
pub struct DecoderParams {
    pub beta: Option<Param<Tensor<1>>>,
    pub alpha: Option<Param<Tensor<2>>>,
}

/// The network. Parameters are named `{node}.{module path}` exactly as PyTorchTNN's state
/// dicts, so its weights load without a renaming table.
#[derive(Debug, Clone)]
pub struct ConvRnn {
    pub nodes: Vec<Node>,
    pub decoder: DecoderParams,
    pub config: ConvRnnConfig,
    pub plans: Vec<NodePlan>,
    /// Exact savings (default; see [`Self::forward_frames_ids`]; in training too): reuse the
    /// output of a [`Node::step_invariant`] node whose inputs repeat, keep a stateful node's
    /// results of its feedforward input alone while that input repeats, and run the steps
    /// before the image reaches a node on one image. `false` recomputes every node at every
    /// step on the whole batch — the same outputs, for checking that.
    pub reuse_step_invariant: bool,
}

impl ConvRnn {
    /// Build the network, parameters drawn from the `init` stream of `seed` (PyTorch's
    /// default initialisation, then each module's `init_dict` and constant biases).
    pub fn init(config: &ConvRnnConfig, device: &Device, seed: u64) -> Result<Self> {
        let plans = config.plan()?;
        let mut init = Init::new(seed);
        let mut nodes = Vec::with_capacity(plans.len());
        for (spec, plan) in config.nodes.iter().zip(&plans) {
            let ctxerr = |e: ModelError| match e {
                ModelError::Config(m) => ModelError::Config(format!("node '{}': {m}", spec.name)),
                e => e,
            };
            let harbor: usize = plan.input_channels.iter().sum();
            let (pre_in, res_c, fb_c) = if plan.split_feedback {
                (
                    plan.ff_channels,
                    plan.ff_channels,
                    Some(harbor - plan.ff_channels),
                )
            } else {
                (harbor, harbor, None)
            };
            let mut octx = OpCtx {
                init: &mut init,
                device,
                timesteps: config.num_timesteps,
            };
            let (pre, pre_c, pre_hw) =
                PrePost::build(&spec.pre_memory, pre_in, plan.in_hw, res_c, &mut octx)
                    .map_err(ctxerr)?;
            let mut cctx = CellCtx {
                init: &mut init,
                device,
                cin: pre_c,
                res_c,
                fb_c,
                hw: pre_hw,
            };
            let cell = Cell::build(&spec.recurrent_cell, &mut cctx).map_err(ctxerr)?;
            let cell_c = super::config::cell_channels(&spec.recurrent_cell, pre_c)
                .map_err(|m| ctxerr(ModelError::Config(m)))?;
            let mut octx = OpCtx {
                init: &mut init,
                device,
                timesteps: config.num_timesteps,
            };
            let (post, _, _) = PrePost::build(&spec.post_memory, cell_c, pre_hw, res_c, &mut octx)
                .map_err(ctxerr)?;
            if fb_c.is_none()
                && matches!(spec.recurrent_cell, CellSpec::ReciprocalGatedCell(_))
                && plan.inputs.len() > 1
            {
                return Err(ModelError::Config(format!(
                    "node '{}': internal error, feedback not split",
                    spec.name
                )));
            }
            nodes.push(Node {
                _pre_memory: pre,
                _recurrent_cell: cell,
                _post_memory: post,
            });
        }
        let d = &config.decoder;
        let beta = d.kind.has_beta().then(|| {
            let p: Param<Tensor<1>> = init.constant(&[1], 1.0, device);
            if d.trainable {
                p
            } else {
                p.set_require_grad(false)
            }
        });
        let alpha = (d.kind == DecoderKind::WAvgT).then(|| {
            init.constant(
                &[config.num_timesteps - d.start, config.num_classes()],
                0.0,
                device,
            )
        });
        Ok(Self {
            nodes,
            decoder: DecoderParams { beta, alpha },
            config: config.clone(),
            plans,
            reuse_step_invariant: true,
        })
    }

    /// Run all steps.
    ///
    /// # Shapes
    /// - `x`: `[batch, C, H, W]` (one image, shown as the configured movie) or, through
    ///   [`Self::forward_frames`], one frame per step.
    /// - output: per step log-probabilities `[batch, classes]` (the output node, flattened),
    ///   representations `[batch, D]` (the output node's input, averaged over space), and the
    ///   decoder's log-probabilities.
    pub fn forward(&self, x: Tensor<4>) -> ModelOutput {
        self.forward_areas(x, false)
    }

    /// [`Self::forward`], optionally keeping every node's output at every step.
    pub fn forward_areas(&self, x: Tensor<4>, keep_areas: bool) -> ModelOutput {
        let t_steps = self.config.num_timesteps;
        let blank = match self.config.movie.image_off {
            Some(off) if off < t_steps => {
                Some(x.clone().zeros_like() + self.config.movie.blank_value)
            }
            _ => None,
        };
        let blank_at =
            |t: usize| blank.is_some() && self.config.movie.image_off.is_some_and(|o| t >= o);
        let frames: Vec<Tensor<4>> = (0..t_steps)
            .map(|t| match &blank {
                Some(b) if blank_at(t) => b.clone(),
                _ => x.clone(),
            })
            .collect();
        // The image's frames are one tensor, the blank frames another.
        let ids: Vec<u64> = (0..t_steps).map(|t| u64::from(blank_at(t))).collect();
        self.forward_frames_ids(&frames, &ids, keep_areas)
    }

    /// Run one frame per step (movies).
    pub fn forward_frames(&self, frames: &[Tensor<4>], keep_areas: bool) -> ModelOutput {
        let ids: Vec<u64> = (0..frames.len() as u64).collect();
        self.forward_frames_ids(frames, &ids, keep_areas)
    }

    /// [`Self::forward_frames`] where `ids[t]` names frame `t`'s content: steps whose frames
    /// share an id show the same frame. Exact saving the reference does not take: a
    /// [`Node::step_invariant`] node whose inputs are the very tensors it saw at the previous
    /// step (same frame, or predecessors that were themselves reused) returns its previous
    /// output instead of recomputing it — with a still image the first area runs once, the
    /// second twice, …. Outputs are identical to recomputing. Under autodiff (training) the
    /// shared output's gradient is summed over its uses before one backward through the node
    /// (equal to recomputing's gradients to float32 rounding, in a fixed order: kill + resume
    /// stays byte-identical).
    /// `ids` has one entry per frame (a missing entry counts as a frame of its own).
    pub fn forward_frames_ids(
        &self,
        frames: &[Tensor<4>],
        ids: &[u64],
        keep_areas: bool,
    ) -> ModelOutput {
        let cfg = &self.config;
        let order = cfg.run_order();
        let n = self.nodes.len();
        let Some(first) = frames.first() else {
            return ModelOutput::new();
        };
        let batch = first.dims()[0];
        let device = first.device();
        let out_idx = cfg
            .nodes
            .iter()
            .position(|m| m.name == cfg.output_node)
            .unwrap_or(n - 1);
        let mut prev: Vec<Option<Tensor<4>>> = vec![None; n];
        let mut states: Vec<Option<Tensor<4>>> = vec![None; n];
        let mut out = ModelOutput::new();
        let mut logits_all: Vec<Tensor<2>> = Vec::new();
        // Content versions: frames are `FRAME + id`, the zeros before a node first runs are 0,
        // each computed output gets a fresh number.
        const FRAME: u64 = 1 << 63;
        // A frame without an id: a version no id or computed output can take.
        let fresh_frame = |t: usize| FRAME | (1 << 62) | t as u64;
        // In training too: a reused output feeds the graph at several steps and burn's
        // autodiff sums its gradient contributions in the tape's order, the same in every
        // process. (e6b9b5e turned this off for training after the ConvRNN kill + resume test
        // failed; the cause was a one-ulp float parse of the resume state, fixed in 2fa7d58,
        // which the faster steps had exposed. With reuse the test passed 13 of 13 runs, at
        // batch 32 (two shards) and 16 (one graph).)
        let reusable: Vec<bool> = (0..n)
            .map(|i| self.reuse_step_invariant && i != out_idx && self.nodes[i].step_invariant())
            .collect();
        let mut prev_ver = vec![0u64; n];
        let mut last_key: Vec<Option<Vec<u64>>> = vec![None; n];
        // Stateful nodes: what depends on the feedforward input alone (the harbor's feedforward
        // part, the pre-memory output, the cell's convolutions of them) is kept while that
        // input repeats — versions of the feedforward inputs as the key.
        let ff_inputs: Vec<Option<usize>> = (0..n)
            .map(|i| {
                let node = &self.nodes[i];
                let ok =
                    self.reuse_step_invariant && !reusable[i] && node._pre_memory.step_invariant();
                ok.then(|| self.plans[i].feedforward_inputs()).flatten()
            })
            .collect();
        let mut ff_key: Vec<Option<Vec<u64>>> = vec![None; n];
        let mut ff_kept: Vec<Option<(Tensor<4>, Tensor<4>)>> = vec![None; n];
        let mut memos: Vec<InputMemo> = vec![InputMemo::default(); n];
        // Steps before the image reaches a node: its inputs are the zeros of nodes not yet run
        // (or their outputs from such steps) and its state has grown from zeros through
        // biases alone — the same for every image of the batch. Those steps run on one image
        // (`indep`), broadcast where an image-dependent step reads them: the saving the
        // original TensorFlow graphs get from constant folding (which computes them once,
        // before any image). Nodes with BatchNorm always run the whole batch, and so do
        // nodes with a fully connected layer (burn's product of one row sums in another order
        // than of several: the fuzz target `convrnn_graph` found a one-ulp difference).
        let may_run_once: Vec<bool> = (0..n)
            .map(|i| {
                let node = &self.nodes[i];
                self.reuse_step_invariant
                    && node._pre_memory.step_invariant()
                    && node._post_memory.step_invariant()
                    && node._pre_memory.batch_invariant()
                    && node._post_memory.batch_invariant()
            })
            .collect();
        let mut prev_indep = vec![true; n];
        let mut state_indep = vec![true; n];
        let widen = |v: Tensor<4>, once: bool| if once { v.repeat_dim(0, batch) } else { v };
        let mut fresh = 1u64;
        // Steps no output reads: a node `d` edges from the output node reaches it `d` steps
        // later, so at a step after T − 1 − d its output can change no returned value (with
        // areas, every node's every step is returned). The reference's TensorFlow graph
        // prunes the same computations (only the fetched outputs are run); outputs are
        // identical to computing them.
        let horizon = frames.len();
        let reach = (!keep_areas).then(|| self.steps_to_output(out_idx));
        for (t, frame) in frames.iter().enumerate() {
            let mut cur: Vec<Option<Tensor<4>>> = vec![None; n];
            let mut cur_indep = vec![true; n];
            let mut cur_ver = vec![0u64; n];
            let mut rep: Option<Tensor<2>> = None;
            for &i in &order {
                if let Some(r) = &reach
                    && r[i].is_none_or(|d| t + d >= horizon)
                {
                    continue;
                }
                let plan = &self.plans[i];
                let spec = &cfg.nodes[i];
                // The version of each input's content at this step.
                let version = |inp: &Option<usize>| match inp {
                    None => ids.get(t).map_or(fresh_frame(t), |&id| FRAME | id),
                    Some(j) => prev_ver[*j],
                };
                if reusable[i] {
                    let key: Vec<u64> = plan.inputs.iter().map(version).collect();
                    if last_key[i].as_ref() == Some(&key) && prev[i].is_some() {
                        cur[i] = prev[i].clone();
                        cur_indep[i] = prev_indep[i];
                        cur_ver[i] = prev_ver[i];
                        continue;
                    }
                    last_key[i] = Some(key);
                }
                cur_ver[i] = fresh;
                fresh += 1;
                let _node = crate::profile::node(&spec.name);
                let indep = may_run_once[i]
                    && state_indep[i]
                    && plan
                        .inputs
                        .iter()
                        .all(|inp| inp.is_some_and(|j| prev_indep[j]));
                let nb = if indep { 1 } else { batch };
                let key: Option<Vec<u64>> = ff_inputs[i].map(|m| {
                    plan.inputs[..m]
                        .iter()
                        .map(version)
                        // One image or the batch: kept results of the other kind do not fit.
                        .chain(std::iter::once(u64::from(indep)))
                        .collect()
                });
                let repeats = key.is_some() && key == ff_key[i];
                // The feedforward part kept from the last step (its harbor part and the
                // pre-memory output): only the other inputs (feedback) are gathered again.
                let kept = ff_kept[i].clone().filter(|_| repeats);
                let first = match (&kept, ff_inputs[i]) {
                    (Some(_), Some(m)) => m,
                    _ => 0,
                };
                let (resize_on, align_corners) = match spec.harbor_policy {
                    HarborSpec::ResizeConcat { align_corners } => (true, align_corners),
                    HarborSpec::Identity {} => (false, false),
                };
                let parts: Vec<Tensor<4>> = plan.inputs[first..]
                    .iter()
                    .map(|inp| {
                        let v = match inp {
                            None => frame.clone(),
                            Some(j) => match &prev[*j] {
                                Some(v) => widen(v.clone(), prev_indep[*j] && !indep),
                                None => {
                                    let o = self.plans[*j].out;
                                    Tensor::zeros([nb, o[0], o[1].max(1), o[2].max(1)], &device)
                                }
                            },
                        };
                        if resize_on {
                            resize(v, plan.in_hw[0], plan.in_hw[1], align_corners)
                        } else {
                            v
                        }
                    })
                    .collect();
                let harbor = match parts.len() {
                    0 => None,
                    1 => parts.into_iter().next(),
                    _ => Some(Tensor::cat(parts, 1)),
                };
                let node = &self.nodes[i];
                let (pre_in, fb, pre) = match (kept, harbor) {
                    // Kept: what was gathered is the feedback alone (with the split), or nothing.
                    (Some((pre_in, pre)), fb) => (pre_in, fb.filter(|_| plan.split_feedback), pre),
                    (None, Some(harbor)) => {
                        let (pre_in, fb) = if plan.split_feedback {
                            let total = harbor.dims()[1];
                            let ff = harbor.clone().narrow(1, 0, plan.ff_channels);
                            let fb = harbor.narrow(1, plan.ff_channels, total - plan.ff_channels);
                            (ff, Some(fb))
                        } else {
                            (harbor, None)
                        };
                        let pre = node._pre_memory.forward(pre_in.clone(), None, t);
                        if key.is_some() {
                            ff_kept[i] = Some((pre_in.clone(), pre.clone()));
                        }
                        (pre_in, fb, pre)
                    }
                    (None, None) => unreachable!("a node has at least one input (planned)"),
                };
                if i == out_idx {
                    // The feedforward part of the harbor (`pre_in`, the whole harbor without
                    // the split).
                    let ff = pre_in
                        .clone()
                        .narrow(1, 0, plan.ff_channels.min(pre_in.dims()[1]));
                    let [b, c, _, _] = ff.dims();
                    let r = ff.mean_dim(3).mean_dim(2).reshape([b, c]);
                    rep = Some(if indep { r.repeat_dim(0, batch) } else { r });
                }
                ff_key[i] = key;
                memos[i].begin(repeats);
                let cell = &node._recurrent_cell;
                let state = match states[i].take() {
                    Some(s) => widen(s, state_indep[i] && !indep),
                    None => {
                        let [_, _, h, w] = pre.dims();
                        cell.zero_state(nb, h, w, &device)
                    }
                };
                state_indep[i] = indep;
                cur_indep[i] = indep;
                let residual = matches!(cell, Cell::Rgc(_)).then(|| pre_in.clone());
                let input = CellInput {
                    input: pre,
                    feedback: fb,
                    residual,
                };
                // Without a key (savings off, or a pre-memory that depends on the step) the
                // cell computes everything.
                let (y, s) = if ff_inputs[i].is_some() {
                    cell.step_memo(input, state, &mut memos[i])
                } else {
                    cell.step(input, state)
                };
                states[i] = Some(s);
                let res = (spec.residual == Some(true)).then_some(&pre_in);
                let o = node._post_memory.forward(y, res, t);
                cur[i] = Some(o);
            }
            let o = widen(
                cur[out_idx].clone().expect("output node ran"),
                cur_indep[out_idx],
            );
            let [b, c, h, w] = o.dims();
            let logits: Tensor<2> = o.reshape([b, c * h * w]);
            out.log_probs.push(log_softmax(logits.clone(), 1));
            out.representations
                .push(rep.unwrap_or_else(|| Tensor::zeros([batch, 1], &device)));
            logits_all.push(logits);
            if keep_areas {
                out.areas.push(
                    order
                        .iter()
                        .map(|&i| {
                            let o = widen(cur[i].clone().expect("ran"), cur_indep[i]);
                            (cfg.nodes[i].name.clone(), o)
                        })
                        .collect(),
                );
            }
            prev = cur;
            prev_indep = cur_indep;
            prev_ver = cur_ver;
        }
        if cfg.decoder.loss == "decoder" || cfg.decoder.kind != DecoderKind::Last {
            out.decoded = Some(log_softmax(self.decode(&logits_all), 1));
        }
        out
    }

    /// For every node, the fewest steps its output takes to reach the output node (each edge
    /// costs one step); `None` where it never does.
    fn steps_to_output(&self, out_idx: usize) -> Vec<Option<usize>> {
        super::config::hops(self.plans.len(), [out_idx], |i| {
            self.plans[i].inputs.iter().flatten().copied()
        })
    }

    /// The temporal decoder on logits per step (domain notes §3.6); returns logits `[batch, K]`.
    pub fn decode(&self, logits: &[Tensor<2>]) -> Tensor<2> {
        let d = &self.config.decoder;
        let l = &logits[d.start.min(logits.len() - 1)..];
        let last = l[l.len() - 1].clone();
        if d.kind == DecoderKind::Last {
            return last;
        }
        let [b, k] = last.dims();
        let steps = l.len();
        let device = last.device();
        // [B, T, K]
        let stack = Tensor::stack::<3>(l.to_vec(), 1);
        let beta = self
            .decoder
            .beta
            .as_ref()
            .map(|p| p.val().reshape([1, 1, 1]))
            .unwrap_or_else(|| Tensor::ones([1, 1, 1], &device));
        let probs = || softmax(stack.clone() * beta.clone(), 2);
        // Hard selections are masks built on the device from detached probabilities (no
        // read back to the host, so no sync and no error path in the forward pass); the
        // gradient flows through the selected logits, as in the TensorFlow original's gather.
        // Ties go to the earliest step, as `tf.argmax`'s.
        let select = |mask: Tensor<3>| (stack.clone() * mask).sum_dim(1).reshape([b, k]);
        match d.kind {
            DecoderKind::Last => last,
            DecoderKind::MaxConf | DecoderKind::Thresh => {
                let conf = probs().detach().max_dim(2); // [B, T, 1]
                let mut pick = first_max_over_steps(conf.clone());
                if d.kind == DecoderKind::Thresh {
                    let th = least_f32_at_least(d.threshold);
                    let first = first_true_over_steps(conf.greater_equal_elem(th));
                    let none = first.clone().equal_elem(steps as f32);
                    pick = first.mask_where(none, pick);
                }
                select(step_mask(pick, steps, 1))
            }
            DecoderKind::TimeMax => {
                let pick = first_max_over_steps(probs().detach()); // [B, 1, K]
                select(step_mask(pick, steps, k))
            }
            DecoderKind::WAvg => {
                let w = softmax(stack.clone() * beta, 1);
                (w * stack).sum_dim(1).reshape([b, k])
            }
            DecoderKind::WTimeAvg => {
                let conf = probs().max_dim(2); // [B, T, 1]
                let w = softmax(conf, 1);
                (w * stack).sum_dim(1).reshape([b, k])
            }
            DecoderKind::WAvgT => {
                let a = self
                    .decoder
                    .alpha
                    .as_ref()
                    .map(|p| sigmoid(p.val()))
                    .unwrap_or_else(|| Tensor::ones([steps, k], &device));
                let a = a.clone() / a.sum_dim(0);
                (stack * a.unsqueeze::<3>()).sum_dim(1).reshape([b, k])
            }
        }
    }
}

impl Module for ConvRnn {
    fn collect_devices(&self, mut devices: Vec<Device>) -> Vec<Device> {
        for n in &self.nodes {
            devices = n.collect_devices(devices);
        }
        self.decoder.collect_devices(devices)
    }
    fn fork(self, device: &Device) -> Self {
        self.each(|n| n.fork(device), |d| d.fork(device))
    }
    fn to_device(self, device: &Device) -> Self {
        self.each(|n| n.to_device(device), |d| d.to_device(device))
    }
    fn train(self) -> Self {
        self.each(Module::train, Module::train)
    }
    fn valid(&self) -> Self {
        Self {
            nodes: self.nodes.iter().map(Module::valid).collect(),
            decoder: self.decoder.valid(),
            config: self.config.clone(),
            plans: self.plans.clone(),
            reuse_step_invariant: self.reuse_step_invariant,
        }
    }
    fn materialize(self) -> Self {
        self.each(Module::materialize, Module::materialize)
    }
    fn visit<V: ModuleVisitor>(&self, visitor: &mut V) {
        for (n, spec) in self.nodes.iter().zip(&self.config.nodes) {
            visitor.enter_module(&spec.name, "Struct:Node");
            n.visit(visitor);
            visitor.exit_module(&spec.name, "Struct:Node");
        }
        visitor.enter_module("decoder", "Struct:DecoderParams");
        self.decoder.visit(visitor);
        visitor.exit_module("decoder", "Struct:DecoderParams");
    }
    fn map<M: ModuleMapper>(self, mapper: &mut M) -> Self {
        let names: Vec<String> = self.config.nodes.iter().map(|n| n.name.clone()).collect();
        let nodes = self
            .nodes
            .into_iter()
            .zip(&names)
            .map(|(n, name)| {
                mapper.enter_module(name, "Struct:Node");
                let n = n.map(mapper);
                mapper.exit_module(name, "Struct:Node");
                n
            })
            .collect();
        mapper.enter_module("decoder", "Struct:DecoderParams");
        let decoder = self.decoder.map(mapper);
        mapper.exit_module("decoder", "Struct:DecoderParams");
        Self {
            nodes,
            decoder,
            config: self.config,
            plans: self.plans,
            reuse_step_invariant: self.reuse_step_invariant,
        }
    }
}

impl ConvRnn {
    /// Gives every layer norm of the cells whose configuration leaves ε unset TensorFlow's
    /// ε (1e-12, `tf.contrib.layers.layer_norm` as convrnns' cells run it) and records it in
    /// the configuration (`layernorm_eps`): what running a pretrained convrnns checkpoint
    /// needs to give the original's numbers (ventral trains with 1e-5, see
    /// [`super::ops::LayerNormC`]). Returns how many norms changed.
    pub fn use_tensorflow_layer_norm_eps(&mut self) -> usize {
        use super::ops::{LayerNormC, TENSORFLOW_LAYER_NORM_EPS};
        let mut changed = 0;
        for (node, spec) in self.nodes.iter_mut().zip(&mut self.config.nodes) {
            let gated = match &mut spec.recurrent_cell {
                CellSpec::VanillaRNNCell(g)
                | CellSpec::GRUCell(g)
                | CellSpec::LSTMCell(g)
                | CellSpec::UGRNNCell(g)
                | CellSpec::IntersectionRNNCell(g) => g,
                _ => continue,
            };
            if gated.layernorm_eps.is_some() {
                continue;
            }
            let norms: Vec<&mut Option<LayerNormC>> = match &mut node._recurrent_cell {
                Cell::Vanilla(c) => vec![&mut c.ln],
                Cell::Gru(c) => vec![&mut c.ln_r_pre, &mut c.ln_u_pre, &mut c.ln_c_pre],
                Cell::Lstm(c) => vec![
                    &mut c.ln_input,
                    &mut c.ln_transform,
                    &mut c.ln_forget,
                    &mut c.ln_output,
                    &mut c.ln_state,
                ],
                Cell::Ugrnn(c) => vec![&mut c.ln_g_act, &mut c.ln_c_act],
                Cell::Intersection(c) => vec![
                    &mut c.ln_gh_act,
                    &mut c.ln_h_act,
                    &mut c.ln_gy_act,
                    &mut c.ln_y_act,
                ],
                _ => Vec::new(),
            };
            let before = changed;
            for l in norms.into_iter().flatten() {
                l.eps = TENSORFLOW_LAYER_NORM_EPS;
                changed += 1;
            }
            if changed > before {
                gated.layernorm_eps = Some(TENSORFLOW_LAYER_NORM_EPS);
            }
        }
        changed
    }

    fn each(
        self,
        mut f: impl FnMut(Node) -> Node,
        g: impl FnOnce(DecoderParams) -> DecoderParams,
    ) -> Self {
        Self {
            nodes: self.nodes.into_iter().map(&mut f).collect(),
            decoder: g(self.decoder),
            config: self.config,
            plans: self.plans,
            reuse_step_invariant: self.reuse_step_invariant,
        }
    }
}

impl ModuleDisplayDefault for ConvRnn {
    fn content(&self, content: Content) -> Option<Content> {
        Some(content)
    }
}
impl ModuleDisplay for ConvRnn {}

/// The least float32 `θ′ ≥ θ`: for a float32 `c`, `c ≥ θ` (compared in float64, as the
/// configuration's threshold is) exactly when `c ≥ θ′` in float32.
fn least_f32_at_least(t: f64) -> f32 {
    let r = t as f32;
    if f64::from(r) < t { r.next_up() } else { r }
}

/// The step indices `0, 1, …, steps − 1` as floats, `[1, steps, 1]`.
fn step_index(steps: usize, device: &Device) -> Tensor<3> {
    Tensor::<1, burn::tensor::Int>::arange(0..steps as i64, device)
        .float()
        .reshape([1, steps, 1])
}

/// The first step where `hit` `[B, T, C]` is true, as a float `[B, 1, C]`; `T` where none is.
fn first_true_over_steps(hit: Tensor<3, burn::tensor::Bool>) -> Tensor<3> {
    let dims = hit.dims();
    step_index(dims[1], &hit.device())
        .expand(dims)
        .mask_fill(hit.bool_not(), dims[1] as f32)
        .min_dim(1)
}

/// The first step at which `v` `[B, T, C]` takes its maximum over steps, `[B, 1, C]` (step 0
/// where no value compares, as for NaN).
fn first_max_over_steps(v: Tensor<3>) -> Tensor<3> {
    let dims = v.dims();
    let first = first_true_over_steps(v.clone().equal(v.max_dim(1).expand(dims)));
    first
        .clone()
        .mask_fill(first.equal_elem(dims[1] as f32), 0.0)
}

/// One-hot over steps of the chosen step per image (and class), `[B, T, C]`.
fn step_mask(pick: Tensor<3>, steps: usize, c: usize) -> Tensor<3> {
    let b = pick.dims()[0];
    let idx = step_index(steps, &pick.device()).expand([b, steps, c]);
    idx.equal(pick.expand([b, steps, c])).float()
}

#[cfg(test)]
mod tests {
    use super::least_f32_at_least;

    #[test]
    fn the_threshold_rounds_up_to_the_least_float32_not_below_it() {
        for t in [0.7f64, 0.5, 0.1, 0.3, 0.9, 1e-9, 0.999_999_999] {
            let r = least_f32_at_least(t);
            assert!(f64::from(r) >= t, "{t}: {r}");
            assert!(f64::from(r.next_down()) < t, "{t}: {r}");
        }
        // 0.7 is not a float32: its nearest float32 lies below, so the next one up is taken.
        assert!(f64::from(0.7f32) < 0.7);
        assert_eq!(least_f32_at_least(0.7), 0.7f32.next_up());
        assert_eq!(least_f32_at_least(0.5), 0.5);
    }
}
