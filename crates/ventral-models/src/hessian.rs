//! Hessian-vector products of the training loss of a BLT network on a fixed data subset, by
//! central differences of the native engine's gradients:
//! `H v ≈ (g(θ + εv) − g(θ − εv)) / 2ε` for unit v.
//!
//! The loss is the training loss, Σₜ wₜ·NLLₜ (batch means), averaged over the subset's batches
//! weighted by their sizes. Parameters are flattened in name order (PyTorch names and layout;
//! [`HvpProblem::names`]). Each product costs two gradient evaluations over the subset. The
//! gradients are float32, so the product's error is set by ε: too small and rounding of the
//! gradient dominates (∝ 1/ε), too large and the third derivative does (∝ ε²); the error at
//! the default ε is measured against float64 autodiff in `tests/hessian.rs`.

use crate::error::{ModelError, Result};
use crate::fast::{BltNet, BltSpec, Tensors};

/// Default central-difference step along a unit direction (see `tests/hessian.rs` for the
/// error against the exact Hessian at several steps).
pub const DEFAULT_EPS: f64 = 1e-2;

/// A fixed subset: `(images [n, 3, S, S] flattened, labels)` per batch.
pub type Subset = Vec<(Vec<f32>, Vec<usize>)>;

/// The loss landscape around θ on a subset.
#[derive(Debug)]
pub struct HvpProblem {
    spec: BltSpec,
    /// (name, shape-less length) in flattening order.
    layout: Vec<(String, usize)>,
    theta: Vec<f64>,
    data: Subset,
    weights: Vec<f64>,
    /// Gradient evaluations so far (each over the whole subset).
    pub gradient_calls: usize,
}

impl HvpProblem {
    /// `params`: θ in PyTorch layout by name; `weights`: the per-step loss weights.
    pub fn new(spec: BltSpec, params: &Tensors, data: Subset, weights: Vec<f64>) -> Result<Self> {
        if data.is_empty() || data.iter().all(|(_, y)| y.is_empty()) {
            return Err(ModelError::Config(
                "the Hessian subset holds no images".into(),
            ));
        }
        if weights.len() != spec.timesteps {
            return Err(ModelError::Config(format!(
                "{} loss weights for {} time steps",
                weights.len(),
                spec.timesteps
            )));
        }
        let layout: Vec<(String, usize)> =
            params.iter().map(|(k, v)| (k.clone(), v.len())).collect();
        let theta = params
            .values()
            .flat_map(|v| v.iter().map(|&x| x as f64))
            .collect();
        Ok(Self {
            spec,
            layout,
            theta,
            data,
            weights,
            gradient_calls: 0,
        })
    }

    /// Number of parameters.
    pub fn dim(&self) -> usize {
        self.theta.len()
    }

    /// Parameter names and lengths in flattening order.
    pub fn names(&self) -> &[(String, usize)] {
        &self.layout
    }

    /// θ, flattened.
    pub fn theta(&self) -> &[f64] {
        &self.theta
    }

    fn unflat(&self, x: &[f64]) -> Tensors {
        let mut out = Tensors::new();
        let mut at = 0;
        for (name, n) in &self.layout {
            out.insert(
                name.clone(),
                x[at..at + n].iter().map(|&v| v as f32).collect(),
            );
            at += n;
        }
        out
    }

    /// The subset's mean loss and its gradient at `x` (flattened parameters).
    pub fn loss_and_gradient(&mut self, x: &[f64]) -> Result<(f64, Vec<f64>)> {
        let p = self.unflat(x);
        let net = BltNet::new(&self.spec, &p).map_err(crate::fast::engine_err)?;
        let mut g = vec![0.0f64; self.dim()];
        let mut loss = 0.0f64;
        let total: usize = self.data.iter().map(|(_, y)| y.len()).sum();
        for (images, labels) in &self.data {
            if labels.is_empty() {
                continue;
            }
            let (_, nll, grads) = net
                .loss_and_grad(images, labels, &self.weights)
                .map_err(crate::fast::engine_err)?;
            let w = labels.len() as f64 / total as f64;
            loss += w * nll
                .iter()
                .zip(&self.weights)
                .map(|(l, a)| l * a)
                .sum::<f64>();
            let mut at = 0;
            for (name, n) in &self.layout {
                if let Some(gv) = grads.get(name) {
                    for (d, s) in g[at..at + n].iter_mut().zip(gv) {
                        *d += w * *s as f64;
                    }
                }
                at += n;
            }
        }
        self.gradient_calls += 1;
        Ok((loss, g))
    }

    /// H·v by central differences with step `eps` along v/‖v‖ (result scaled back to v).
    pub fn hvp(&mut self, v: &[f64], eps: f64) -> Result<Vec<f64>> {
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm == 0.0 {
            return Ok(vec![0.0; v.len()]);
        }
        let h = eps / norm;
        let plus: Vec<f64> = self.theta.iter().zip(v).map(|(t, d)| t + h * d).collect();
        let minus: Vec<f64> = self.theta.iter().zip(v).map(|(t, d)| t - h * d).collect();
        // The step actually taken is what float32 can represent of θ ± h·v.
        let (_, gp) = self.loss_and_gradient(&plus)?;
        let (_, gm) = self.loss_and_gradient(&minus)?;
        Ok(gp
            .iter()
            .zip(&gm)
            .map(|(a, b)| (a - b) / (2.0 * h))
            .collect())
    }
}
