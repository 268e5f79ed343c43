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
use burn::tensor::{Gradients, Tensor, TensorData};
use ventral_core::safetensors::{SafeTensors, TensorOut};
use ventral_models::device::read_f32;

use crate::config::OptimizerConfig;
use crate::error::{Result, TrainError};

/// Optimiser state: step count and per-parameter moment buffers (flattened).
#[derive(Debug)]
pub struct Optimizer {
    pub config: OptimizerConfig,
    pub step: u64,
    state: BTreeMap<String, Vec<Tensor<1>>>,
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
                let st = self
                    .opt
                    .state
                    .entry(name)
                    .or_insert_with(|| vec![g.zeros_like(), g.zeros_like()]);
                let m = st[0].clone() * b1 + g.clone() * (1.0 - b1);
                let v = st[1].clone() * b2 + g.clone() * g * (1.0 - b2);
                let bc1 = 1.0 - b1.powi(t);
                let bc2 = 1.0 - b2.powi(t);
                let denom = v.clone().sqrt() / bc2.sqrt() + eps;
                let p = p - m.clone() / denom * (lr / bc1);
                *st = vec![m, v];
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
                        Some(st) => st[0].clone() * momentum + g.clone() * (1.0 - dampening),
                        None => g.clone(),
                    };
                    self.opt.state.insert(name, vec![buf.clone()]);
                    g = if nesterov { g + buf * momentum } else { buf };
                }
                p - g * lr
            }
        };
        let new_p: Tensor<D> = new_p.reshape(shape);
        param.map(|_| Tensor::from_inner(new_p).require_grad())
    }
}

impl Optimizer {
    /// A fresh optimiser.
    pub fn new(config: OptimizerConfig) -> Self {
        Self {
            config,
            step: 0,
            state: BTreeMap::new(),
        }
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
            let v = read_f32(buf, &format!("the momentum of {name}"))?;
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
                let data = read_f32(t, &format!("the optimiser state {name}.{sfx}"))?;
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

    /// Restore from a file written by [`Self::save`], onto `device`.
    pub fn load(
        config: OptimizerConfig,
        path: &std::path::Path,
        device: &burn::tensor::Device,
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
                v.push(Tensor::<1>::from_data(TensorData::new(data, shape), device));
            }
            // Files written before parameter names left out the model variant kept it.
            let key = ["Blt.", "RcnnSat."]
                .iter()
                .find_map(|p| name.strip_prefix(p))
                .map_or(name.clone(), str::to_string);
            opt.state.insert(key, v);
        }
        Ok(opt)
    }
}
