//! The SGD limiting-dynamics tracker (Kunin et al. 2021): an observer of the training loop
//! that records how far the parameters travel.
//!
//! `[train.sgd_dynamics]` (off unless the table is present; `enabled = false` turns it off):
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `every` | 1 | record every this many optimiser steps |
//! | `start_epoch` | 0 | start tracking at the first step of this epoch (0-based); θ₀ is the parameters then; a `train.schedule.warmup_steps` must end by then |
//! | `project_onto` | – | Hessian eigenvectors to project the position and the step onto |
//!
//! θ₀ is the parameters at the first tracked step (the anchor's protocol restarts from a
//! trained network: `ventral train … --init-from RUN`, then θ₀ is that network). It is saved
//! as `sgd_dynamics/theta0.safetensors` (PyTorch names). Each tracked step k (θ_k → θ_{k+1})
//! adds one row to `sgd_dynamics.csv`:
//!
//! | column | meaning |
//! |---|---|
//! | `step` | global optimiser step k (0-based: the number of updates before θ_k) |
//! | `k` | steps since θ₀ (k − k₀) |
//! | `epoch`, `lr` | epoch of the step, its learning rate η |
//! | `dist_sq` | ‖θ_k − θ₀‖² |
//! | `local_sq` | ‖θ_{k+1} − θ_k‖² (the displacement δ_k; for SGD η²‖v_{k+1}‖² without Nesterov and weight decay, for Adam the step it took) |
//! | `pos_norm` | ‖θ_k‖ |
//! | `pos_dot` | θ_k · θ₀ |
//! | `vel_norm` | ‖v_{k+1}‖, the momentum buffer after the step (PyTorch's rule `v ← βv + g`); only for SGD with momentum |
//! | `<q>_<group>` | each quantity above restricted to one parameter group: `bottom_up`, `lateral`, `top_down`, `norm`, `readout` (`ventral_models::size::connection_type`) |
//! | `proj_pos_<i>`, `proj_vel_<i>` | with `project_onto = "…/eigenvectors.safetensors"` (from `ventral hessian`): eᵢ·(θ_k − θ₀) and eᵢ·δ_k for each eigenvector eᵢ |
//!
//! Sums are accumulated in f64 in parameter-name order. The table is rewritten atomically at
//! every resume point and at the end; the tracker's saved state (k₀ and the row count) lets a
//! resumed run continue it byte for byte.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use ventral_core::safetensors::{SafeTensors, TensorOut};
use ventral_models::params::{self, NamedTensors};
use ventral_models::size::connection_type;

use crate::config::OptimizerConfig;
use crate::error::{Result, file_err};
use crate::train::{Observer, RunInfo, StepInfo};

/// `[train.sgd_dynamics]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SgdDynamicsConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default = "one")]
    pub every: usize,
    #[serde(default)]
    pub start_epoch: usize,
    /// Eigenvectors to project θ_k − θ₀ and δ_k onto (`ventral hessian`'s
    /// `eigenvectors.safetensors`: per parameter `[k, numel]`), for phase-space plots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_onto: Option<PathBuf>,
}

fn yes() -> bool {
    true
}
fn one() -> usize {
    1
}

/// Table file name in the run directory.
pub const CSV: &str = "sgd_dynamics.csv";
/// θ₀, relative to the run directory.
pub const THETA0: &str = "sgd_dynamics/theta0.safetensors";

/// Per-group sums of one tracked step.
#[derive(Debug, Clone, Default)]
struct Sums {
    dist_sq: f64,
    local_sq: f64,
    pos_sq: f64,
    dot: f64,
    vel_sq: f64,
}

#[derive(Debug)]
struct Pending {
    step: usize,
    epoch: usize,
    lr: f64,
    theta: NamedTensors,
    /// Index 0: all parameters; 1..: groups.
    sums: Vec<Sums>,
    /// eᵢ·(θ_k − θ₀).
    proj_pos: Vec<f64>,
}

/// Saved state (in each resume point).
#[derive(Serialize, Deserialize)]
struct State {
    k0: Option<usize>,
    rows: usize,
}

/// The tracker (see the module docs).
#[derive(Debug)]
pub struct Tracker {
    cfg: SgdDynamicsConfig,
    momentum: bool,
    dir: PathBuf,
    groups: Vec<&'static str>,
    k0: Option<usize>,
    theta0: Option<NamedTensors>,
    pending: Option<Pending>,
    /// θ after the last tracked update, reused when the next step is tracked too.
    next: Option<(usize, NamedTensors)>,
    lines: Vec<String>,
    /// Eigenvectors by parameter name: (numel, `[k, numel]` row-major).
    proj: BTreeMap<String, (usize, Vec<f32>)>,
    proj_k: usize,
}

/// Σ over parameters of eᵢ[name]·d[name] for every eigenvector i, d = a − b (b = None: d = a).
fn project(
    proj: &BTreeMap<String, (usize, Vec<f32>)>,
    k: usize,
    a: &NamedTensors,
    b: Option<&NamedTensors>,
) -> Vec<f64> {
    let mut out = vec![0.0f64; k];
    for (name, (numel, e)) in proj {
        let Some((_, av)) = a.get(name) else { continue };
        let bv = b.and_then(|b| b.get(name)).map(|(_, v)| v.as_slice());
        for (i, o) in out.iter_mut().enumerate() {
            let row = &e[i * numel..(i + 1) * numel];
            *o += row
                .iter()
                .zip(av)
                .enumerate()
                .map(|(j, (&ei, &x))| {
                    let d = x as f64 - bv.map_or(0.0, |b| b[j] as f64);
                    ei as f64 * d
                })
                .sum::<f64>();
        }
    }
    out
}

impl Tracker {
    pub fn new(cfg: SgdDynamicsConfig, opt: &OptimizerConfig) -> Self {
        let momentum = matches!(opt, OptimizerConfig::Sgd { momentum, .. } if *momentum != 0.0);
        Self {
            cfg,
            momentum,
            dir: PathBuf::new(),
            groups: Vec::new(),
            k0: None,
            theta0: None,
            pending: None,
            next: None,
            lines: Vec::new(),
            proj: BTreeMap::new(),
            proj_k: 0,
        }
    }

    fn load_projection(&mut self, model: &ventral_models::Model) -> Result<()> {
        let Some(path) = self.cfg.project_onto.clone() else {
            return Ok(());
        };
        let st = SafeTensors::read(&path)?;
        let have: BTreeMap<String, usize> = params::list(model)
            .into_iter()
            .map(|p| (p.name.clone(), p.shape.iter().product()))
            .collect();
        let names: Vec<String> = st.names().map(str::to_string).collect();
        let mut k = None;
        for n in names {
            let (shape, data) = st.f32(&n)?;
            let Some(&numel) = have.get(&n) else {
                return Err(file_err(
                    path.display(),
                    format!("eigenvector tensor '{n}' names no parameter of this model"),
                ));
            };
            if shape.len() != 2 || shape[1] != numel || k.is_some_and(|k| k != shape[0]) {
                return Err(file_err(
                    path.display(),
                    format!(
                        "'{n}' is {shape:?}; expected [k, {numel}] with the same k for every parameter"
                    ),
                ));
            }
            k = Some(shape[0]);
            self.proj.insert(n, (numel, data));
        }
        self.proj_k = k.unwrap_or(0);
        if self.proj_k == 0 {
            return Err(file_err(path.display(), "no eigenvectors"));
        }
        Ok(())
    }

    fn header(&self) -> String {
        let q: &[&str] = if self.momentum {
            &["dist_sq", "local_sq", "pos_norm", "pos_dot", "vel_norm"]
        } else {
            &["dist_sq", "local_sq", "pos_norm", "pos_dot"]
        };
        let mut h: Vec<String> = ["step", "k", "epoch", "lr"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        h.extend(q.iter().map(|s| s.to_string()));
        for g in &self.groups {
            h.extend(q.iter().map(|s| format!("{s}_{g}")));
        }
        for i in 0..self.proj_k {
            h.push(format!("proj_pos_{i}"));
        }
        for i in 0..self.proj_k {
            h.push(format!("proj_vel_{i}"));
        }
        h.join(",")
    }

    fn group_index(&self, name: &str) -> usize {
        let g = connection_type(name);
        1 + self.groups.iter().position(|x| *x == g).unwrap_or(0)
    }

    fn csv_path(&self) -> PathBuf {
        self.dir.join(CSV)
    }

    fn write_csv(&self) -> Result<()> {
        let path = self.csv_path();
        let mut text = self.header();
        text.push('\n');
        for l in &self.lines {
            text.push_str(l);
            text.push('\n');
        }
        ventral_core::write_bytes_atomic(&path, text.as_bytes())
            .map_err(|e| file_err(path.display(), e))
    }

    fn active(&self, epoch: usize, step: usize) -> bool {
        if epoch < self.cfg.start_epoch {
            return false;
        }
        match self.k0 {
            Some(k0) => step >= k0 && (step - k0).is_multiple_of(self.cfg.every),
            None => true,
        }
    }
}

fn save_theta(path: &Path, theta: &NamedTensors) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| file_err(parent.display(), e))?;
    }
    let tensors: BTreeMap<String, TensorOut<'_>> = theta
        .iter()
        .map(|(k, (s, d))| (k.clone(), TensorOut::F32(s, d)))
        .collect();
    let mut meta = BTreeMap::new();
    meta.insert("format".into(), "ventral sgd_dynamics theta0".into());
    ventral_core::safetensors::write(path, &tensors, &meta)?;
    Ok(())
}

fn load_theta(path: &Path) -> Result<NamedTensors> {
    let st = SafeTensors::read(path)?;
    let mut out = NamedTensors::new();
    let names: Vec<String> = st.names().map(str::to_string).collect();
    for n in names {
        let (s, d) = st.f32(&n)?;
        out.insert(n, (s, d));
    }
    Ok(out)
}

impl Observer for Tracker {
    fn name(&self) -> &'static str {
        "sgd_dynamics"
    }

    fn start(&mut self, run: &RunInfo<'_>, saved: Option<&[u8]>) -> Result<()> {
        self.dir = run.dir.to_path_buf();
        let mut groups: Vec<&'static str> = params::list(run.model)
            .iter()
            .map(|p| connection_type(&p.name))
            .collect();
        groups.sort_unstable();
        groups.dedup();
        self.groups = groups;
        self.load_projection(run.model)?;
        let Some(b) = saved else { return Ok(()) };
        let st: State = serde_json::from_slice(b).map_err(|e| {
            file_err(
                run.dir.join("checkpoints").display(),
                format!("saved sgd_dynamics state of the resume point: {e}"),
            )
        })?;
        self.k0 = st.k0;
        if self.k0.is_none() {
            return Ok(());
        }
        let t0 = self.dir.join(THETA0);
        self.theta0 = Some(load_theta(&t0)?);
        let path = self.csv_path();
        let text = std::fs::read_to_string(&path).map_err(|e| file_err(path.display(), e))?;
        let mut lines = text.lines();
        if lines.next() != Some(self.header().as_str()) {
            return Err(file_err(
                path.display(),
                "the header differs from this run's tracker columns (edited, or another run's file?)",
            ));
        }
        self.lines = lines.take(st.rows).map(str::to_string).collect();
        if self.lines.len() != st.rows {
            return Err(file_err(
                path.display(),
                format!(
                    "{} rows, the resume point recorded {}; the file was truncated",
                    self.lines.len(),
                    st.rows
                ),
            ));
        }
        Ok(())
    }

    fn before_update(&mut self, s: &StepInfo<'_>) -> Result<()> {
        if !self.active(s.epoch, s.step) {
            return Ok(());
        }
        let theta = match self.next.take() {
            Some((k, t)) if k == s.step => t,
            _ => params::export(s.model)?,
        };
        if self.k0.is_none() {
            save_theta(&self.dir.join(THETA0), &theta)?;
            self.theta0 = Some(theta.clone());
            self.k0 = Some(s.step);
        }
        let theta0 = self
            .theta0
            .as_ref()
            .ok_or_else(|| file_err(self.dir.join(THETA0).display(), "θ₀ was not loaded"))?;
        let mut sums = vec![Sums::default(); 1 + self.groups.len()];
        for (name, (_, d)) in &theta {
            let g = self.group_index(name);
            let d0 = theta0.get(name).map(|(_, v)| v.as_slice());
            let (mut dist, mut pos, mut dot) = (0.0f64, 0.0f64, 0.0f64);
            for (i, &v) in d.iter().enumerate() {
                let v = v as f64;
                let v0 = d0.and_then(|x| x.get(i)).map_or(0.0, |&x| x as f64);
                dist += (v - v0) * (v - v0);
                pos += v * v;
                dot += v * v0;
            }
            for idx in [0, g] {
                sums[idx].dist_sq += dist;
                sums[idx].pos_sq += pos;
                sums[idx].dot += dot;
            }
        }
        let proj_pos = if self.proj_k > 0 {
            project(&self.proj, self.proj_k, &theta, Some(theta0))
        } else {
            Vec::new()
        };
        self.pending = Some(Pending {
            step: s.step,
            epoch: s.epoch,
            lr: s.lr,
            theta,
            sums,
            proj_pos,
        });
        Ok(())
    }

    fn after_update(&mut self, s: &StepInfo<'_>) -> Result<()> {
        let Some(mut p) = self.pending.take() else {
            return Ok(());
        };
        if p.step != s.step {
            return Ok(());
        }
        let theta1 = params::export(s.model)?;
        for (name, (_, d1)) in &theta1 {
            let g = self.group_index(name);
            let d = p.theta.get(name).map(|(_, v)| v.as_slice());
            let mut local = 0.0f64;
            for (i, &v1) in d1.iter().enumerate() {
                let v = d.and_then(|x| x.get(i)).map_or(0.0, |&x| x as f64);
                local += (v1 as f64 - v) * (v1 as f64 - v);
            }
            for idx in [0, g] {
                p.sums[idx].local_sq += local;
            }
        }
        if self.momentum
            && let Some(v) = s.opt.momentum_sq()?
        {
            for (name, sq) in v {
                let g = self.group_index(&name);
                for idx in [0, g] {
                    p.sums[idx].vel_sq += sq;
                }
            }
        }
        let k0 = self.k0.unwrap_or(p.step);
        let mut fields = vec![
            p.step.to_string(),
            (p.step - k0).to_string(),
            p.epoch.to_string(),
            format!("{}", p.lr),
        ];
        for sm in &p.sums {
            fields.push(format!("{}", sm.dist_sq));
            fields.push(format!("{}", sm.local_sq));
            fields.push(format!("{}", sm.pos_sq.sqrt()));
            fields.push(format!("{}", sm.dot));
            if self.momentum {
                fields.push(format!("{}", sm.vel_sq.sqrt()));
            }
        }
        if self.proj_k > 0 {
            let vel = project(&self.proj, self.proj_k, &theta1, Some(&p.theta));
            fields.extend(p.proj_pos.iter().map(|v| format!("{v}")));
            fields.extend(vel.iter().map(|v| format!("{v}")));
        }
        self.lines.push(fields.join(","));
        if self.cfg.every == 1 {
            self.next = Some((s.step + 1, theta1));
        }
        Ok(())
    }

    fn checkpoint(&mut self, _dir: &Path, _global_step: usize) -> Result<Vec<u8>> {
        if self.k0.is_some() {
            self.write_csv()?;
        }
        Ok(serde_json::to_vec(&State {
            k0: self.k0,
            rows: self.lines.len(),
        })
        .unwrap_or_default())
    }

    fn finish(&mut self, _dir: &Path) -> Result<()> {
        self.write_csv()
    }
}
