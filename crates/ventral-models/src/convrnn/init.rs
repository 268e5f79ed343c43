//! Initialisation of ConvRNN parameters as PyTorch does it — `kaiming_uniform_(a = √5)` on
//! convolution and linear weights (U(±1/√fan_in)), U(±1/√fan_in) biases — then the node's
//! `init_dict` (`torch.nn.init` methods by name) and constant biases, every tensor drawn from
//! the named stream `("init", [tensor index])` of one seed, so a model is the same on every
//! device and thread count.

use burn::module::Param;
use burn::tensor::{Device, Tensor, TensorData};
use rand::RngExt;
use ventral_core::rng::stream;

use crate::error::{ModelError, Result};

/// The initialiser: a seed and the index of the next tensor.
#[derive(Debug)]
pub struct Init {
    seed: u64,
    index: u64,
}

fn param<const D: usize>(data: Vec<f32>, shape: &[usize], device: &Device) -> Param<Tensor<D>> {
    Param::from_tensor(Tensor::<D>::from_data(
        TensorData::new(data, shape.to_vec()),
        device,
    ))
}

impl Init {
    pub fn new(seed: u64) -> Self {
        Self { seed, index: 0 }
    }

    fn rng(&mut self) -> ventral_core::rng::ChaCha8Rng {
        let r = stream(self.seed, "init", &[self.index]);
        self.index += 1;
        r
    }

    /// U(±bound).
    pub fn uniform<const D: usize>(
        &mut self,
        shape: &[usize],
        bound: f64,
        device: &Device,
    ) -> Param<Tensor<D>> {
        let n: usize = shape.iter().product();
        let mut r = self.rng();
        let data = (0..n)
            .map(|_| ((r.random::<f64>() * 2.0 - 1.0) * bound) as f32)
            .collect();
        param(data, shape, device)
    }

    /// A constant (draws no numbers but still takes an index, so later tensors do not shift
    /// when a bias changes from random to constant).
    pub fn constant<const D: usize>(
        &mut self,
        shape: &[usize],
        v: f64,
        device: &Device,
    ) -> Param<Tensor<D>> {
        self.index += 1;
        let n: usize = shape.iter().product();
        param(vec![v as f32; n], shape, device)
    }

    /// A weight `[out, in, k…]` (PyTorch layout): the default, or `init_dict`'s method.
    pub fn weight<const D: usize>(
        &mut self,
        shape: &[usize],
        init_dict: Option<&serde_json::Value>,
        device: &Device,
    ) -> Result<Param<Tensor<D>>> {
        let rf: usize = shape.iter().skip(2).product();
        let fan_in = shape.get(1).copied().unwrap_or(1) * rf.max(1);
        let fan_out = shape[0] * rf.max(1);
        let Some(spec) = init_dict else {
            return Ok(self.uniform(shape, 1.0 / (fan_in.max(1) as f64).sqrt(), device));
        };
        let obj = spec.as_object().ok_or_else(|| {
            ModelError::Config(format!("init_dict must be an object, got {spec}"))
        })?;
        let method = obj.get("method").and_then(|m| m.as_str()).ok_or_else(|| {
            ModelError::Config(format!("init_dict needs a \"method\" string, got {spec}"))
        })?;
        let num = |k: &str, d: f64| obj.get(k).and_then(|v| v.as_f64()).unwrap_or(d);
        let gain_of = |nl: &str, a: f64| -> Result<f64> {
            Ok(match nl {
                "linear" | "conv2d" | "sigmoid" => 1.0,
                "tanh" => 5.0 / 3.0,
                "relu" => 2f64.sqrt(),
                "leaky_relu" => (2.0 / (1.0 + a * a)).sqrt(),
                "selu" => 0.75,
                o => {
                    return Err(ModelError::Config(format!(
                        "init_dict nonlinearity '{o}' is not supported"
                    )));
                }
            })
        };
        let n: usize = shape.iter().product();
        // torch.nn.init.kaiming_*: std = gain(nonlinearity, a) / √fan(mode); the uniform
        // bound is √3 · std.
        let kaiming_std = || -> Result<f64> {
            let nl = obj
                .get("nonlinearity")
                .and_then(|v| v.as_str())
                .unwrap_or("leaky_relu");
            let mode = obj.get("mode").and_then(|v| v.as_str()).unwrap_or("fan_in");
            let fan = if mode == "fan_out" { fan_out } else { fan_in };
            Ok(gain_of(nl, num("a", 0.0))? / (fan as f64).sqrt())
        };
        let data: Vec<f32> = match method {
            "xavier_uniform_" => {
                let b = num("gain", 1.0) * (6.0 / (fan_in + fan_out) as f64).sqrt();
                return Ok(self.uniform(shape, b, device));
            }
            "kaiming_uniform_" => {
                let b = kaiming_std()? * 3f64.sqrt();
                return Ok(self.uniform(shape, b, device));
            }
            "uniform_" => {
                let (lo, hi) = (num("a", 0.0), num("b", 1.0));
                let mut r = self.rng();
                (0..n)
                    .map(|_| (lo + (hi - lo) * r.random::<f64>()) as f32)
                    .collect()
            }
            "constant_" => vec![num("val", 0.0) as f32; n],
            "zeros_" => vec![0.0; n],
            "ones_" => vec![1.0; n],
            "xavier_normal_" | "kaiming_normal_" | "normal_" | "trunc_normal_" => {
                let std = match method {
                    "xavier_normal_" => num("gain", 1.0) * (2.0 / (fan_in + fan_out) as f64).sqrt(),
                    "kaiming_normal_" => kaiming_std()?,
                    _ => num("std", 1.0),
                };
                let mean = if method == "normal_" || method == "trunc_normal_" {
                    num("mean", 0.0)
                } else {
                    0.0
                };
                let (lo, hi) = (num("a", -2.0), num("b", 2.0));
                let mut r = self.rng();
                let mut out = Vec::with_capacity(n);
                while out.len() < n {
                    // Box–Muller.
                    let u1: f64 = r.random::<f64>().max(1e-300);
                    let u2: f64 = r.random();
                    let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
                    let v = mean + std * z;
                    if method == "trunc_normal_" && (v < lo || v > hi) {
                        continue;
                    }
                    out.push(v as f32);
                }
                out
            }
            o => {
                return Err(ModelError::Config(format!(
                    "init_dict method '{o}' is not supported (xavier_uniform_, xavier_normal_, kaiming_uniform_, kaiming_normal_, normal_, trunc_normal_, uniform_, constant_, zeros_, ones_)"
                )));
            }
        };
        Ok(param(data, shape, device))
    }
}
