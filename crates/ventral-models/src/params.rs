//! Parameters by name: export, import (safetensors, PyTorch layout), deterministic reference
//! initialisation from a named random stream, and listing.
//!
//! Names are the module paths (`v2.bottom_up.weight`), which equal the reference's PyTorch
//! state-dict names. Shapes are given in PyTorch's layout: burn stores `Linear` weights as
//! `[in, out]`, PyTorch as `[out, in]`, so they are transposed on the way in and out.

use std::collections::BTreeMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Tensor, TensorData};
use rand::RngExt;
use ventral_core::rng::stream;
use ventral_core::safetensors::SafeTensors;

use crate::device::{FirstError, read_f32};
use crate::error::{ModelError, Result};

/// Named tensors in PyTorch layout: name → (shape, values).
pub type NamedTensors = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

/// What a parameter is, from the module that owns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    ConvWeight,
    ConvTransposeWeight,
    LinearWeight,
    Bias,
    NormWeight,
    NormBias,
    /// Not trained (BatchNorm running statistics).
    Buffer,
    Other,
}

/// A parameter's name, kind and PyTorch-layout shape.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamInfo {
    pub name: String,
    pub kind: ParamKind,
    pub shape: Vec<usize>,
}

#[derive(Debug, Default)]
struct Path {
    stack: Vec<(String, String)>,
}

impl Path {
    fn enter(&mut self, name: &str, container: &str) {
        self.stack.push((name.to_string(), container.to_string()));
    }
    fn exit(&mut self) {
        self.stack.pop();
    }
    fn name(&self) -> String {
        // Enum variants (`Model::Blt`) are not part of the PyTorch-style name.
        self.stack
            .iter()
            .filter(|(_, c)| !c.starts_with("Enum:"))
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(".")
    }
    fn kind(&self) -> ParamKind {
        let Some((field, owner)) = self.stack.last() else {
            return ParamKind::Other;
        };
        let owner = owner.trim_start_matches("Struct:");
        match (owner, field.as_str()) {
            ("Conv2d", "weight") => ParamKind::ConvWeight,
            ("ConvTranspose2d", "weight") => ParamKind::ConvTransposeWeight,
            ("Linear", "weight") => ParamKind::LinearWeight,
            ("Conv2d" | "ConvTranspose2d" | "Linear", "bias") => ParamKind::Bias,
            (_, "running_mean" | "running_var") => ParamKind::Buffer,
            (o, "weight" | "gamma") if o.contains("Norm") => ParamKind::NormWeight,
            (o, "bias" | "beta") if o.contains("Norm") => ParamKind::NormBias,
            _ => ParamKind::Other,
        }
    }
}

fn torch_shape(kind: ParamKind, burn_shape: &[usize]) -> Vec<usize> {
    if kind == ParamKind::LinearWeight && burn_shape.len() == 2 {
        vec![burn_shape[1], burn_shape[0]]
    } else {
        burn_shape.to_vec()
    }
}

/// `data` in the other layout: a linear weight's values transposed between burn's
/// `[in, out]` and PyTorch's `[out, in]` (`shape`: the layout `data` is in), any other kind as
/// it is.
fn other_layout(kind: ParamKind, data: Vec<f32>, shape: &[usize]) -> Vec<f32> {
    if kind == ParamKind::LinearWeight {
        transpose(&data, shape[0], shape[1])
    } else {
        data
    }
}

fn transpose(v: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; v.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = v[r * cols + c];
        }
    }
    out
}

struct Lister {
    path: Path,
    out: Vec<ParamInfo>,
    values: Option<NamedTensors>,
    error: FirstError,
}

impl ModuleVisitor for Lister {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.exit();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let kind = self.path.kind();
        let burn_shape = param.val().dims().to_vec();
        let shape = torch_shape(kind, &burn_shape);
        let name = self.path.name();
        if let Some(values) = self.values.as_mut() {
            let read = || read_f32(&param.val(), &format!("parameter {name}"));
            let Some(data) = self.error.read(read) else {
                return;
            };
            let data = other_layout(kind, data, &burn_shape);
            values.insert(name.clone(), (shape.clone(), data));
        }
        self.out.push(ParamInfo { name, kind, shape });
    }
}

/// Every float parameter with its PyTorch name, kind and shape, in module order.
pub fn list<M: Module>(m: &M) -> Vec<ParamInfo> {
    let mut v = Lister {
        path: Path::default(),
        out: Vec::new(),
        values: None,
        error: FirstError::default(),
    };
    m.visit(&mut v);
    v.out
}

/// Every float parameter's values in PyTorch layout, by name. Fails only when the backend
/// cannot read a parameter back ([`ModelError::Read`]).
pub fn export<M: Module>(m: &M) -> Result<NamedTensors> {
    let mut v = Lister {
        path: Path::default(),
        out: Vec::new(),
        values: Some(BTreeMap::new()),
        error: FirstError::default(),
    };
    m.visit(&mut v);
    v.error.into_result(v.values.unwrap_or_default())
}

/// Replace a parameter's value, keeping its id and its gradient requirement.
fn replace<const D: usize>(
    param: Param<Tensor<D>>,
    shape: Vec<usize>,
    data: Vec<f32>,
) -> Param<Tensor<D>> {
    param.map(|old| {
        let device = old.device();
        let req = old.is_require_grad();
        let t = Tensor::<D>::from_data(TensorData::new(data, shape), &device);
        if req { t.require_grad() } else { t }
    })
}

/// Where [`Loader`] reads tensors from.
enum Source<'a> {
    File(&'a SafeTensors),
    Named(&'a NamedTensors),
}

impl Source<'_> {
    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        match self {
            Source::File(st) => st.info(name).map(|i| i.shape.clone()),
            Source::Named(n) => n.get(name).map(|(s, _)| s.clone()),
        }
    }
    fn data(&self, name: &str) -> std::result::Result<Vec<f32>, String> {
        match self {
            Source::File(st) => st.f32(name).map(|(_, d)| d).map_err(|e| e.to_string()),
            Source::Named(n) => n
                .get(name)
                .map(|(_, d)| d.clone())
                .ok_or_else(|| format!("missing tensor '{name}'")),
        }
    }
}

struct Loader<'a> {
    path: Path,
    st: Source<'a>,
    problems: Vec<String>,
    loaded: usize,
}

impl ModuleMapper for Loader<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.exit();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let name = self.path.name();
        let kind = self.path.kind();
        let burn_shape = param.val().dims().to_vec();
        let want = torch_shape(kind, &burn_shape);
        let Some(shape) = self.st.shape(&name) else {
            self.problems
                .push(format!("missing tensor '{name}' (expected shape {want:?})"));
            return param;
        };
        // A PyTorch scalar parameter (shape []) fills a one-element parameter.
        let scalar = shape.is_empty() && want.iter().product::<usize>() == 1;
        if shape != want && !scalar {
            self.problems.push(format!(
                "tensor '{name}' has shape {shape:?}, the model needs {want:?}"
            ));
            return param;
        }
        match self.st.data(&name) {
            Ok(data) => {
                if let Some((i, v)) = data.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                    self.problems.push(format!(
                        "tensor '{name}' holds {v} at flat index {i} (parameters must be finite)"
                    ));
                    return param;
                }
                let data = other_layout(kind, data, &want);
                self.loaded += 1;
                replace(param, burn_shape, data)
            }
            Err(e) => {
                self.problems.push(e);
                param
            }
        }
    }
}

/// Load every parameter of `m` from `st` by name. Extra tensors in the file are ignored;
/// missing or mis-shaped ones are all listed in one error naming the file.
pub fn load<M: Module>(m: M, st: &SafeTensors) -> Result<M> {
    load_from(m, Source::File(st), &st.path().display().to_string())
}

/// Load every parameter of `m` from named tensors in PyTorch layout (as [`export`] gives
/// them).
pub fn load_named<M: Module>(m: M, named: &NamedTensors) -> Result<M> {
    load_from(m, Source::Named(named), "named tensors")
}

fn load_from<M: Module>(m: M, st: Source<'_>, origin: &str) -> Result<M> {
    let mut l = Loader {
        path: Path::default(),
        st,
        problems: Vec::new(),
        loaded: 0,
    };
    let m = m.map(&mut l);
    if !l.problems.is_empty() {
        return Err(ModelError::Weights {
            path: origin.to_string(),
            msg: format!(
                "{} of the model's parameters could not be loaded: {}",
                l.problems.len(),
                l.problems.join("; ")
            ),
        });
    }
    Ok(m)
}

struct Init {
    path: Path,
    seed: u64,
    index: u64,
    /// fan-in of the last weight seen, for the bias that follows it.
    last_fan_in: usize,
}

impl ModuleMapper for Init {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.exit();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let kind = self.path.kind();
        let burn_shape = param.val().dims().to_vec();
        let s = torch_shape(kind, &burn_shape);
        let n: usize = s.iter().product();
        let rf: usize = s.iter().skip(2).product();
        let mut rng = stream(self.seed, "init", &[self.index]);
        self.index += 1;
        let mut uniform = |bound: f64| -> Vec<f32> {
            (0..n)
                .map(|_| ((rng.random::<f64>() * 2.0 - 1.0) * bound) as f32)
                .collect()
        };
        let data: Vec<f32> = match kind {
            // nn.init.xavier_uniform_: U(±sqrt(6 / (fan_in + fan_out)))
            ParamKind::ConvWeight => {
                let (fan_out, fan_in) = (s[0] * rf, s[1] * rf);
                self.last_fan_in = fan_in;
                uniform((6.0 / (fan_in + fan_out) as f64).sqrt())
            }
            ParamKind::LinearWeight => {
                let (fan_out, fan_in) = (s[0], s[1]);
                self.last_fan_in = fan_in;
                uniform((6.0 / (fan_in + fan_out) as f64).sqrt())
            }
            // PyTorch's default ConvTranspose2d init: kaiming_uniform_(a = √5) = U(±1/sqrt(fan_in)),
            // with fan_in computed from weight.size(1) · k · k.
            ParamKind::ConvTransposeWeight => {
                let fan_in = s[1] * rf;
                self.last_fan_in = fan_in;
                uniform(1.0 / (fan_in as f64).sqrt())
            }
            // PyTorch's default bias init: U(±1/sqrt(fan_in)).
            ParamKind::Bias => uniform(1.0 / (self.last_fan_in.max(1) as f64).sqrt()),
            ParamKind::NormWeight => vec![1.0; n],
            ParamKind::NormBias => vec![0.0; n],
            ParamKind::Buffer | ParamKind::Other => return param,
        };
        let data = other_layout(kind, data, &s);
        replace(param, burn_shape, data)
    }
}

/// The reference initialisation (`weights_init` of BLT-pytorch-CCN23: `xavier_uniform_` on
/// Conv2d and Linear weights, PyTorch defaults for transposed convolutions and biases,
/// LayerNorm γ = 1, β = 0), drawn from the stream `("init", [parameter index])` of `seed`, so
/// it is identical on every device.
pub fn init_reference<M: Module>(m: M, seed: u64) -> M {
    let mut i = Init {
        path: Path::default(),
        seed,
        index: 0,
        last_fan_in: 1,
    };
    m.map(&mut i)
}

struct GradCollector<'a> {
    path: Path,
    grads: &'a burn::tensor::Gradients,
    out: NamedTensors,
    error: FirstError,
    /// PyTorch's layout (else burn's, as the parameter is stored).
    torch: bool,
}

impl ModuleVisitor for GradCollector<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.exit();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let Some(g) = param.val().grad(self.grads) else {
            return;
        };
        let kind = self.path.kind();
        let burn_shape = g.dims().to_vec();
        let read = || read_f32(&g, &format!("the gradient of {}", self.path.name()));
        let Some(data) = self.error.read(read) else {
            return;
        };
        let (shape, data) = if self.torch {
            (
                torch_shape(kind, &burn_shape),
                other_layout(kind, data, &burn_shape),
            )
        } else {
            (burn_shape, data)
        };
        self.out.insert(self.path.name(), (shape, data));
    }
}

/// Gradients of every parameter that received one, by name, in PyTorch layout. Fails only
/// when the backend cannot read a gradient back ([`ModelError::Read`]).
pub fn gradients<M: Module>(m: &M, grads: &burn::tensor::Gradients) -> Result<NamedTensors> {
    collect_gradients(m, grads, true)
}

/// Gradients of every parameter that received one, by name, flattened in the layout burn
/// stores each parameter in (what an optimiser step takes as named gradients).
pub fn gradients_burn_layout<M: Module>(
    m: &M,
    grads: &burn::tensor::Gradients,
) -> Result<BTreeMap<String, Vec<f32>>> {
    Ok(collect_gradients(m, grads, false)?
        .into_iter()
        .map(|(k, (_, v))| (k, v))
        .collect())
}

fn collect_gradients<M: Module>(
    m: &M,
    grads: &burn::tensor::Gradients,
    torch: bool,
) -> Result<NamedTensors> {
    let mut c = GradCollector {
        path: Path::default(),
        grads,
        out: BTreeMap::new(),
        error: FirstError::default(),
        torch,
    };
    m.visit(&mut c);
    c.error.into_result(c.out)
}
