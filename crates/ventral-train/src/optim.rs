//! Optimisers with PyTorch's update rules, keyed by parameter name so that their state saves
//! to and restores from safetensors exactly (bit for bit), which exact resume needs.
//!
//! Adam (`torch.optim.Adam`, or AdamW when decoupled):
//! `m ← β1 m + (1 − β1) g`, `v ← β2 v + (1 − β2) g²`,
//! `p ← p − (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + ε)`.
//! SGD (`torch.optim.SGD`): `b ← μ b + (1 − dampening) g` (first step `b = g`),
//! `g ← g + μ b` (Nesterov) or `g ← b`, `p ← p − lr g`.

use std::collections::BTreeMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{DType, Device, Gradients, Tensor, TensorData};
use rayon::prelude::*;
use ventral_core::safetensors::{SafeTensors, TensorOut};
use ventral_models::device::read_f32;

use crate::config::OptimizerConfig;
use crate::error::{Result, TrainError};

/// Optimiser state: step count and per-parameter moment buffers (flattened).
#[derive(Debug)]
pub struct Optimizer {
    pub config: OptimizerConfig,
    pub step: u64,
    state: BTreeMap<String, Vec<Buf>>,
    /// Whether gradients from the native CPU engine ([`Grads::Named`]) update CPU parameters
    /// in one fused host pass ([`fused_update`]) instead of burn's tensor operations (on by
    /// default; the same float32 operations in the same order: the same bits).
    fused: bool,
}

/// One optimiser buffer (a moment or momentum): a tensor on the parameters' device, or host
/// memory that [`fused_update`] updates in place (the native engine's CPU training). Either
/// form saves and restores to the same bytes; each converts to the other when a step of the
/// other kind meets it.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // two per parameter: size does not matter
enum Buf {
    Tensor(Tensor<1>),
    Host(Vec<f32>),
}

impl Buf {
    /// As a tensor on `device` (host buffers uploaded).
    fn tensor(&self, device: &Device) -> Tensor<1> {
        match self {
            Buf::Tensor(t) => t.clone(),
            Buf::Host(v) => Tensor::from_data(TensorData::new(v.clone(), [v.len()]), device),
        }
    }

    /// The values on the host.
    fn read(&self, what: &str) -> Result<Vec<f32>> {
        match self {
            Buf::Tensor(t) => Ok(read_f32(t, what)?),
            Buf::Host(v) => Ok(v.clone()),
        }
    }

    /// Moves a tensor buffer to host memory for fused steps (read back once); false where
    /// the read fails.
    fn make_host(&mut self) -> bool {
        if let Buf::Tensor(t) = self {
            match read_f32(t, "an optimiser buffer") {
                Ok(v) => *self = Buf::Host(v),
                Err(_) => return false,
            }
        }
        true
    }
}

#[derive(Default)]
struct Path(Vec<String>);

impl Path {
    fn name(&self) -> String {
        let parts: Vec<&str> = self
            .0
            .iter()
            .map(String::as_str)
            .filter(|p| !p.is_empty())
            .collect();
        parts.join(".")
    }
}

/// Each parameter's squared gradient norm, still on the device, in visiting order.
struct NormVisitor<'a> {
    grads: &'a Gradients,
    sumsq: Vec<Tensor<1>>,
}

impl ModuleVisitor for NormVisitor<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = param.val().grad(self.grads) {
            self.sumsq.push(g.powi_scalar(2).sum());
        }
    }
}

/// Global L2 norm of all gradients: each parameter's squared norm summed on the device in
/// float32, the parameters' sums added in float64 in visiting order. The squared norms are
/// read back at once — one synchronisation with a GPU per step, not one per parameter.
pub fn grad_norm<M: Module>(model: &M, grads: &Gradients) -> Result<f64> {
    let mut v = NormVisitor {
        grads,
        sumsq: Vec::new(),
    };
    model.visit(&mut v);
    if v.sumsq.is_empty() {
        return Ok(0.0);
    }
    let s = read_f32(&Tensor::cat(v.sumsq, 0), "the gradients' squared norms")?;
    Ok(s.iter().map(|&x| x as f64).sum::<f64>().sqrt())
}

/// Where an optimiser step takes its gradients from.
#[derive(Clone, Copy)]
pub enum Grads<'a> {
    /// burn's autodiff gradients of the module's parameters.
    Autodiff(&'a Gradients),
    /// Gradients by parameter name, flattened in the layout burn stores each parameter in
    /// (from the CPU engine: `ventral_models::fast::burn_layout`).
    Named(&'a BTreeMap<String, Vec<f32>>),
}

impl std::fmt::Debug for Grads<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Grads::Autodiff(_) => f.write_str("Grads::Autodiff"),
            Grads::Named(g) => write!(f, "Grads::Named({} tensors)", g.len()),
        }
    }
}

/// Global L2 norm of named gradients (summed in f64, in name order).
pub fn named_grad_norm(grads: &BTreeMap<String, Vec<f32>>) -> f64 {
    grads
        .values()
        .map(|g| g.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>())
        .sum::<f64>()
        .sqrt()
}

struct Stepper<'a> {
    path: Path,
    opt: &'a mut Optimizer,
    grads: Grads<'a>,
    lr: f64,
    /// Gradient scale from clipping.
    scale: f64,
}

impl ModuleMapper for Stepper<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        // Enum variants (`Model::Blt`) are not part of parameter names (as `params`), so the
        // state is keyed — and named gradients are found — by the PyTorch name.
        self.path.0.push(if container_type.starts_with("Enum:") {
            String::new()
        } else {
            name.to_string()
        });
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.0.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let name = self.path.name();
        let shape = param.val().dims();
        let n: usize = shape.iter().product();
        let param = match self.fused_step(&name, param, n) {
            Ok(updated) => return updated,
            Err(param) => param,
        };
        let mut g: Tensor<1> = match self.grads {
            Grads::Autodiff(grads) => match param.val().grad(grads) {
                Some(g) => g.reshape([n]),
                None => return param, // unused parameter: no gradient, no update (as PyTorch)
            },
            Grads::Named(grads) => match grads.get(&name) {
                Some(g) if g.len() == n => {
                    let device = param.val().inner().device();
                    Tensor::<1>::from_data(TensorData::new(g.clone(), [n]), &device)
                }
                _ => return param,
            },
        };
        if self.scale != 1.0 {
            g = g * self.scale;
        }
        let p: Tensor<1> = param.val().inner().reshape([n]);
        let t = self.opt.step as i32;
        let lr = self.lr;
        let new_p = match self.opt.config.clone() {
            OptimizerConfig::Adam {
                betas: [b1, b2],
                eps,
                weight_decay,
                decoupled,
                ..
            } => {
                let mut p = p;
                if weight_decay != 0.0 {
                    if decoupled {
                        p = p * (1.0 - lr * weight_decay);
                    } else {
                        g = g + p.clone() * weight_decay;
                    }
                }
                let device = g.device();
                let st = self.opt.state.entry(name).or_insert_with(|| {
                    vec![Buf::Tensor(g.zeros_like()), Buf::Tensor(g.zeros_like())]
                });
                let m = st[0].tensor(&device) * b1 + g.clone() * (1.0 - b1);
                let v = st[1].tensor(&device) * b2 + g.clone() * g * (1.0 - b2);
                let bc1 = 1.0 - b1.powi(t);
                let bc2 = 1.0 - b2.powi(t);
                let denom = v.clone().sqrt() / bc2.sqrt() + eps;
                let p = p - m.clone() / denom * (lr / bc1);
                *st = vec![Buf::Tensor(m), Buf::Tensor(v)];
                p
            }
            OptimizerConfig::Sgd {
                momentum,
                dampening,
                nesterov,
                weight_decay,
                ..
            } => {
                if weight_decay != 0.0 {
                    g = g + p.clone() * weight_decay;
                }
                if momentum != 0.0 {
                    let buf = match self.opt.state.get(&name) {
                        Some(st) => {
                            st[0].tensor(&g.device()) * momentum + g.clone() * (1.0 - dampening)
                        }
                        None => g.clone(),
                    };
                    self.opt.state.insert(name, vec![Buf::Tensor(buf.clone())]);
                    g = if nesterov { g + buf * momentum } else { buf };
                }
                p - g * lr
            }
        };
        let new_p: Tensor<D> = new_p.reshape(shape);
        param.map(|_| Tensor::from_inner(new_p).require_grad())
    }
}

impl Stepper<'_> {
    /// The fused host update of `param` (named `name`, `n` values) where it applies — a
    /// named gradient (the native CPU engine's), fusion on, a float32 parameter on the CPU —
    /// in place on the parameter's own storage (taken out of the tensor without a copy where
    /// nothing else holds it); `Err(param)` leaves the step to burn's tensor operations.
    #[allow(clippy::result_large_err)]
    fn fused_step<const D: usize>(
        &mut self,
        name: &str,
        param: Param<Tensor<D>>,
        n: usize,
    ) -> std::result::Result<Param<Tensor<D>>, Param<Tensor<D>>> {
        let Grads::Named(grads) = self.grads else {
            return Err(param);
        };
        let Some(g) = grads.get(name).filter(|g| g.len() == n) else {
            return Err(param);
        };
        {
            let val = param.val();
            if !self.opt.fused || val.dtype() != DType::F32 || val.device() != Device::flex() {
                return Err(param);
            }
        }
        let first = !self.opt.state.contains_key(name);
        let bufs = match self.opt.config {
            OptimizerConfig::Adam { .. } => 2,
            OptimizerConfig::Sgd { momentum, .. } => usize::from(momentum != 0.0),
        };
        let hyper = Hyper::of(&self.opt.config, self.opt.step, self.lr, self.scale, first);
        let mut host: Vec<&mut Vec<f32>> = Vec::with_capacity(bufs);
        if bufs > 0 {
            // Plain SGD keeps no state (as the tensor path).
            let st = self
                .opt
                .state
                .entry(name.to_string())
                .or_insert_with(|| (0..bufs).map(|_| Buf::Host(vec![0.0; n])).collect());
            // Buffers restored from a checkpoint are read back once (a failed read leaves
            // this step to the tensor path).
            for b in st.iter_mut() {
                if !b.make_host() {
                    return Err(param);
                }
                match b {
                    Buf::Host(v) if v.len() == n => host.push(v),
                    _ => return Err(param),
                }
            }
        }
        Ok(param.map(|t| {
            let (device, shape) = (t.device(), t.dims());
            // A float32 tensor on burn's CPU backend: reading it cannot fail, and its bytes
            // become the vector without a copy when the tensor was the only holder.
            let mut p = t
                .inner()
                .try_into_data()
                .ok()
                .and_then(|d| d.try_into_vec::<f32>().ok())
                .expect("a float32 CPU tensor reads back");
            fused_update(&hyper, &mut p, g, &mut host);
            let p = Tensor::<1>::from_data(TensorData::new(p, [n]), &device).reshape(shape);
            Tensor::from_inner(p).require_grad()
        }))
    }
}

/// An update's constants, converted to float32 as burn converts a tensor's scalar operand.
struct Hyper {
    /// `scale` where it is not 1 (clipping).
    scale: Option<f32>,
    kind: HyperKind,
}

enum HyperKind {
    Adam {
        b1: f32,
        one_minus_b1: f32,
        b2: f32,
        one_minus_b2: f32,
        /// √(1 − β2ᵗ).
        bc2_sqrt: f32,
        eps: f32,
        /// lr / (1 − β1ᵗ).
        step: f32,
        /// L2 (`g + wd·p`) or decoupled (`p · (1 − lr·wd)`) weight decay.
        decay: Decay,
    },
    Sgd {
        lr: f32,
        /// μ and 1 − dampening (momentum on), and whether this is the buffer's first step.
        momentum: Option<(f32, f32, bool)>,
        nesterov: bool,
        decay: Decay,
    },
}

#[derive(Clone, Copy)]
enum Decay {
    None,
    L2(f32),
    Decoupled(f32),
}

impl Hyper {
    fn of(c: &OptimizerConfig, step: u64, lr: f64, scale: f64, first: bool) -> Self {
        let t = step as i32;
        let kind = match *c {
            OptimizerConfig::Adam {
                betas: [b1, b2],
                eps,
                weight_decay,
                decoupled,
                ..
            } => HyperKind::Adam {
                b1: b1 as f32,
                one_minus_b1: (1.0 - b1) as f32,
                b2: b2 as f32,
                one_minus_b2: (1.0 - b2) as f32,
                bc2_sqrt: (1.0 - b2.powi(t)).sqrt() as f32,
                eps: eps as f32,
                step: (lr / (1.0 - b1.powi(t))) as f32,
                decay: match (weight_decay != 0.0, decoupled) {
                    (false, _) => Decay::None,
                    (true, true) => Decay::Decoupled((1.0 - lr * weight_decay) as f32),
                    (true, false) => Decay::L2(weight_decay as f32),
                },
            },
            OptimizerConfig::Sgd {
                momentum,
                dampening,
                nesterov,
                weight_decay,
                ..
            } => HyperKind::Sgd {
                lr: lr as f32,
                momentum: (momentum != 0.0).then_some((
                    momentum as f32,
                    (1.0 - dampening) as f32,
                    first,
                )),
                nesterov,
                decay: if weight_decay != 0.0 {
                    Decay::L2(weight_decay as f32)
                } else {
                    Decay::None
                },
            },
        };
        Hyper {
            scale: (scale != 1.0).then_some(scale as f32),
            kind,
        }
    }
}

/// Values per parallel task of [`fused_update`].
const FUSED_CHUNK: usize = 1 << 14;

/// One optimiser step of parameters `p` with gradient `g` and buffers `st` (Adam: m, v; SGD
/// with momentum: the momentum), in place, element by element: exactly the float32
/// operations of the tensor path in [`Stepper::map_float`], in the same order (each scalar
/// rounded to float32 as burn does), so the parameters and buffers come out bit for bit the
/// same — in one pass over memory instead of a dozen, on every thread.
fn fused_update(h: &Hyper, p: &mut [f32], g: &[f32], st: &mut [&mut Vec<f32>]) {
    let scale = h.scale;
    match (&h.kind, st) {
        (
            &HyperKind::Adam {
                b1,
                one_minus_b1,
                b2,
                one_minus_b2,
                bc2_sqrt,
                eps,
                step,
                decay,
            },
            [m, v],
        ) => p
            .par_chunks_mut(FUSED_CHUNK)
            .zip(g.par_chunks(FUSED_CHUNK))
            .zip(m.par_chunks_mut(FUSED_CHUNK))
            .zip(v.par_chunks_mut(FUSED_CHUNK))
            .for_each(|(((p, g), m), v)| {
                for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m).zip(v) {
                    let mut g = scale.map_or(g, |s| g * s);
                    match decay {
                        Decay::None => {}
                        Decay::Decoupled(d) => *p *= d,
                        Decay::L2(wd) => g += *p * wd,
                    }
                    *m = *m * b1 + g * one_minus_b1;
                    *v = *v * b2 + g * g * one_minus_b2;
                    let denom = v.sqrt() / bc2_sqrt + eps;
                    *p -= *m / denom * step;
                }
            }),
        (
            &HyperKind::Sgd {
                lr,
                momentum,
                nesterov,
                decay,
            },
            bufs,
        ) => {
            let sgd = |p: &mut f32, g: f32, b: Option<&mut f32>| {
                let mut g = scale.map_or(g, |s| g * s);
                if let Decay::L2(wd) = decay {
                    g += *p * wd;
                }
                if let (Some(b), Some((mu, keep, first))) = (b, momentum) {
                    *b = if first { g } else { *b * mu + g * keep };
                    g = if nesterov { g + *b * mu } else { *b };
                }
                *p -= g * lr;
            };
            match bufs {
                [b] => p
                    .par_chunks_mut(FUSED_CHUNK)
                    .zip(g.par_chunks(FUSED_CHUNK))
                    .zip(b.par_chunks_mut(FUSED_CHUNK))
                    .for_each(|((p, g), b)| {
                        for ((p, &g), b) in p.iter_mut().zip(g).zip(b) {
                            sgd(p, g, Some(b));
                        }
                    }),
                _ => p
                    .par_chunks_mut(FUSED_CHUNK)
                    .zip(g.par_chunks(FUSED_CHUNK))
                    .for_each(|(p, g)| {
                        for (p, &g) in p.iter_mut().zip(g) {
                            sgd(p, g, None);
                        }
                    }),
            }
        }
        _ => unreachable!("fused_update: buffers of another optimiser"),
    }
}

impl Optimizer {
    /// A fresh optimiser.
    pub fn new(config: OptimizerConfig) -> Self {
        Self {
            config,
            step: 0,
            state: BTreeMap::new(),
            fused: true,
        }
    }

    /// Turn the fused host update of named CPU gradients on (the default) or off (burn's
    /// tensor operations; the same bits — for tests and benchmarks).
    pub fn set_fused(&mut self, on: bool) {
        self.fused = on;
    }

    /// One update of every parameter that has a gradient, at learning rate `lr`, with the
    /// gradients multiplied by `scale` (from clipping; 1 otherwise).
    pub fn step<M: Module>(&mut self, model: M, grads: &Gradients, lr: f64, scale: f64) -> M {
        self.step_from(model, Grads::Autodiff(grads), lr, scale)
    }

    /// [`Self::step`] with gradients from any source.
    pub fn step_from<M: Module>(&mut self, model: M, grads: Grads<'_>, lr: f64, scale: f64) -> M {
        self.step += 1;
        let mut s = Stepper {
            path: Path::default(),
            opt: self,
            grads,
            lr,
            scale,
        };
        model.map(&mut s)
    }

    /// Squared L2 norm of each parameter's SGD momentum buffer, by name (summed in f64);
    /// `None` unless the optimiser is SGD with momentum.
    pub fn momentum_sq(&self) -> Result<Option<BTreeMap<String, f64>>> {
        match self.config {
            OptimizerConfig::Sgd { momentum, .. } if momentum != 0.0 => {}
            _ => return Ok(None),
        }
        let mut out = BTreeMap::new();
        for (name, st) in &self.state {
            let Some(buf) = st.first() else { continue };
            let v = buf.read(&format!("the momentum of {name}"))?;
            out.insert(
                name.clone(),
                v.iter().map(|&x| (x as f64) * (x as f64)).sum::<f64>(),
            );
        }
        Ok(Some(out))
    }

    /// State as named tensors (`<param>.m`, `<param>.v`, `<param>.momentum`) plus `step`.
    pub fn to_tensors(&self) -> Result<ventral_models::params::NamedTensors> {
        let mut out = BTreeMap::new();
        let suffixes: &[&str] = match self.config {
            OptimizerConfig::Adam { .. } => &["m", "v"],
            OptimizerConfig::Sgd { .. } => &["momentum"],
        };
        for (name, tensors) in &self.state {
            for (t, sfx) in tensors.iter().zip(suffixes) {
                let data = t.read(&format!("the optimiser state {name}.{sfx}"))?;
                out.insert(format!("{name}.{sfx}"), (vec![data.len()], data));
            }
        }
        Ok(out)
    }

    /// Save to a safetensors file (atomic, deterministic bytes).
    pub fn save(&self, path: &std::path::Path) -> Result<()> {
        let tensors = self.to_tensors()?;
        let step = [self.step as i64];
        let mut out: BTreeMap<String, TensorOut<'_>> = tensors
            .iter()
            .map(|(k, (s, d))| (k.clone(), TensorOut::F32(s, d)))
            .collect();
        let shape = [1usize];
        out.insert("__step__".into(), TensorOut::I64(&shape, &step));
        ventral_core::safetensors::write(path, &out, &BTreeMap::new())?;
        Ok(())
    }

    /// Checks restored state against the parameters it will update: every buffer belongs to
    /// one of them and has its number of values.
    fn check_against(&self, params: &[(String, usize)]) -> std::result::Result<(), String> {
        let sizes: BTreeMap<&str, usize> = params.iter().map(|(n, k)| (n.as_str(), *k)).collect();
        for (name, bufs) in &self.state {
            let Some(&n) = sizes.get(name.as_str()) else {
                return Err(format!(
                    "optimizer state for '{name}', which the model does not have (was it written for another model?)"
                ));
            };
            for b in bufs {
                let len = match b {
                    Buf::Tensor(t) => t.dims()[0],
                    Buf::Host(v) => v.len(),
                };
                if len != n {
                    return Err(format!(
                        "optimizer state for '{name}' has {len} values, the parameter has {n} (was it written for another model?)"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Restore from a file written by [`Self::save`], onto `device`, for the parameters
    /// `params` (`(name, values)` of each, as `ventral_models::params::list` gives them): state
    /// that does not fit them (a resume point of another model, a damaged file) fails here,
    /// naming the file and the parameter, instead of in the middle of the first step.
    pub fn load(
        config: OptimizerConfig,
        path: &std::path::Path,
        device: &burn::tensor::Device,
        params: &[(String, usize)],
    ) -> Result<Self> {
        let st = SafeTensors::read(path)?;
        let (_, step) = st.i64("__step__")?;
        let mut opt = Self::new(config);
        opt.step = step.first().copied().unwrap_or(0) as u64;
        let suffixes: &[&str] = match opt.config {
            OptimizerConfig::Adam { .. } => &["m", "v"],
            OptimizerConfig::Sgd { .. } => &["momentum"],
        };
        let names: Vec<String> = st
            .names()
            .filter(|n| *n != "__step__")
            .filter_map(|n| n.rsplit_once('.').map(|(p, _)| p.to_string()))
            .collect();
        for name in names {
            if opt.state.contains_key(&name) {
                continue;
            }
            let mut v = Vec::new();
            for sfx in suffixes {
                let key = format!("{name}.{sfx}");
                let (shape, data) = st.f32(&key).map_err(|_| TrainError::File {
                    path: path.display().to_string(),
                    msg: format!(
                        "optimizer state '{key}' is missing (was it written by another optimizer?)"
                    ),
                })?;
                v.push(Buf::Tensor(Tensor::<1>::from_data(
                    TensorData::new(data, shape),
                    device,
                )));
            }
            // Files written before parameter names left out the model variant kept it.
            let key = ["Blt.", "RcnnSat."]
                .iter()
                .find_map(|p| name.strip_prefix(p))
                .map_or(name.clone(), str::to_string);
            opt.state.insert(key, v);
        }
        opt.check_against(params).map_err(|msg| TrainError::File {
            path: path.display().to_string(),
            msg,
        })?;
        Ok(opt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A module with a matrix and a vector parameter, identical for every call.
    fn linear() -> burn::nn::Linear {
        let device = Device::flex();
        let mut l = burn::nn::LinearConfig::new(37, 23).init(&device);
        let w: Vec<f32> = (0..37 * 23)
            .map(|i| ((i * 7919) % 201) as f32 / 100.0 - 1.0)
            .collect();
        let b: Vec<f32> = (0..23).map(|i| i as f32 * 0.01 - 0.1).collect();
        l.weight = Param::from_tensor(Tensor::from_data(TensorData::new(w, [37, 23]), &device));
        l.bias = Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(b, [23]),
            &device,
        )));
        l
    }

    fn bits<const D: usize>(t: &Tensor<D>) -> Vec<u32> {
        read_f32(t, "test")
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect()
    }

    /// The fused host update of named CPU gradients gives the tensor path's bits — parameters
    /// and saved state — for Adam (plain, L2, decoupled), SGD with (Nesterov) momentum and
    /// without, with and without a clipping scale, over steps whose gradients change sign
    /// and magnitude (zeros included).
    #[test]
    fn fused_update_is_the_tensor_path_bit_for_bit() {
        let adam = |weight_decay, decoupled| OptimizerConfig::Adam {
            lr: 1e-2,
            betas: [0.9, 0.999],
            eps: 1e-8,
            weight_decay,
            decoupled,
        };
        let sgd = |momentum, nesterov| OptimizerConfig::Sgd {
            lr: 1e-2,
            momentum,
            dampening: if nesterov { 0.0 } else { 0.1 },
            nesterov,
            weight_decay: 5e-4,
        };
        let configs = [
            adam(0.0, false),
            adam(1e-2, false),
            adam(5e-2, true),
            sgd(0.9, true),
            sgd(0.9, false),
            sgd(0.0, false),
        ];
        for config in configs {
            for scale in [1.0, 0.37] {
                let (mut a, mut b) = (linear(), linear());
                let mut fused = Optimizer::new(config.clone());
                let mut plain = Optimizer::new(config.clone());
                plain.set_fused(false);
                for step in 0..4usize {
                    let grad = |n: usize, k: usize| -> Vec<f32> {
                        (0..n)
                            .map(|i| match (i * 31 + k * 17 + step * 13) % 11 {
                                0 => 0.0,
                                r => (r as f32 - 5.5) * 10f32.powi((i % 5) as i32 - 3),
                            })
                            .collect()
                    };
                    let g: BTreeMap<String, Vec<f32>> = [
                        ("weight".to_string(), grad(37 * 23, 1)),
                        ("bias".to_string(), grad(23, 2)),
                    ]
                    .into();
                    let lr = 1e-2 * (1.0 + step as f64);
                    a = fused.step_from(a, Grads::Named(&g), lr, scale);
                    b = plain.step_from(b, Grads::Named(&g), lr, scale);
                    let what = format!("{config:?}, scale {scale}, step {step}");
                    assert_eq!(
                        bits(&a.weight.val()),
                        bits(&b.weight.val()),
                        "weight: {what}"
                    );
                    let (ab, bb) = (a.bias.as_ref().unwrap(), b.bias.as_ref().unwrap());
                    assert_eq!(bits(&ab.val()), bits(&bb.val()), "bias: {what}");
                    let (sa, sb) = (fused.to_tensors().unwrap(), plain.to_tensors().unwrap());
                    assert_eq!(sa.len(), sb.len(), "state entries: {what}");
                    for (k, (_, v)) in &sa {
                        let w = &sb[k].1;
                        let eq = v.iter().zip(w).all(|(x, y)| x.to_bits() == y.to_bits());
                        assert!(eq && v.len() == w.len(), "state {k}: {what}");
                    }
                    // The fused path ran: its buffers live on the host.
                    assert!(
                        fused
                            .state
                            .values()
                            .flatten()
                            .all(|b| matches!(b, Buf::Host(_)))
                            && plain
                                .state
                                .values()
                                .flatten()
                                .all(|b| matches!(b, Buf::Tensor(_))),
                        "{what}"
                    );
                }
                assert!(
                    a.weight.val().dims() == [37, 23],
                    "the parameter keeps its shape"
                );
            }
        }
    }
}
