//! Keras weights of the rcnn-sat networks — the HDF5 files `cjspoerer/rcnn-sat` publishes and
//! loads with `model.load_weights(...)` (`bl_ecoset.h5`, …): `model.save_weights` (each layer a
//! group `<layer>/<layer>/<variable>:0`) or `model.save` (the same under `/model_weights`).
//!
//! The reference's layer names map onto ventral's parameters:
//!
//! | Keras (`bl_net.py`, `b_net.py`) | ventral |
//! |---|---|
//! | `RCL_{n}_BConv/kernel:0` (BL), `Conv_Layer_{n}/kernel:0` (B, B-K, B-F, B-D) `[k, k, in, out]` | `layers.{n}.bottom_up.weight` `[out, in, k, k]` |
//! | `RCL_{n}_LConv/kernel:0` | `layers.{n}.lateral.weight` |
//! | `BatchNorm_Layer_{n}_Time_{t}/{gamma,beta,moving_mean,moving_variance}:0` (BL), `BatchNorm_Layer_{n}/…` (B) | `bn.{n}.{t}.{gamma,beta,running_mean,running_var}` |
//! | `ReadoutDense/kernel:0` `[in, out]`, `ReadoutDense/bias:0` | `readout.weight` `[out, in]`, `readout.bias` |
//!
//! Kernels are transposed from Keras' `channels_last` layout; every tensor the network needs
//! must be present exactly once (found by its `<layer>/<variable>` suffix, whatever group it
//! sits under), and its shape is checked when the weights are loaded.

use std::collections::BTreeMap;
use std::path::Path;

use hdf5_reader::Hdf5File;
use ventral_core::safetensors::{SafeTensors, TensorOut, to_bytes};

use super::{RcnnSatConfig, RcnnVariant};
use crate::{ModelError, Result};

/// The first bytes of an HDF5 file (its superblock signature at offset 0).
pub const HDF5_MAGIC: &[u8] = b"\x89HDF\r\n\x1a\n";

/// Groups are walked at most this deep (Keras nests three).
const MAX_DEPTH: usize = 8;
/// Datasets listed at most (a BL network has 4 + 4 · layers · steps + 2 … a few hundred).
const MAX_DATASETS: usize = 100_000;

/// Reads the Keras weights at `path` for a network of `config`, under ventral's names.
pub fn read(path: &Path, config: &RcnnSatConfig) -> Result<SafeTensors> {
    let err = |msg: String| ModelError::Weights {
        path: path.display().to_string(),
        msg,
    };
    let file = Hdf5File::open(path).map_err(|e| err(format!("not a readable HDF5 file: {e}")))?;
    let mut paths = Vec::new();
    list(&file, "", 0, &mut paths).map_err(&err)?;
    let find = |layer: &str, var: &str| -> Result<String> {
        let suffix = format!("{layer}/{var}:0");
        let below = format!("/{suffix}");
        let hits: Vec<&String> = paths
            .iter()
            .filter(|p| **p == suffix || p.ends_with(&below))
            .collect();
        match hits[..] {
            [one] => Ok(one.clone()),
            [] => Err(err(format!(
                "no Keras weight {suffix} (the rcnn-sat {:?} network's layer names; this file \
                 holds {} datasets{})",
                config.variant,
                paths.len(),
                paths
                    .first()
                    .map(|p| format!(", e.g. {p}"))
                    .unwrap_or_default()
            ))),
            _ => Err(err(format!("{suffix} found {} times", hits.len()))),
        }
    };
    let read = |p: &str| -> Result<(Vec<usize>, Vec<f32>)> {
        let ds = file
            .dataset(p)
            .map_err(|e| err(format!("dataset {p}: {e}")))?;
        let shape: Vec<usize> = ds.shape().iter().map(|&d| d as usize).collect();
        let a = ds
            .read_array::<f32>()
            .map_err(|e| err(format!("dataset {p}: {e}")))?;
        Ok((shape, a.iter().copied().collect()))
    };
    let bl = config.variant == RcnnVariant::Bl;
    let mut tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)> = BTreeMap::new();
    for n in 0..config.layers().len() {
        let convs: &[(&str, &str)] = if bl {
            &[("BConv", "bottom_up"), ("LConv", "lateral")]
        } else {
            &[("", "bottom_up")]
        };
        for &(k, ours) in convs {
            let layer = if bl {
                format!("RCL_{n}_{k}")
            } else {
                format!("Conv_Layer_{n}")
            };
            let p = find(&layer, "kernel")?;
            let (shape, v) = read(&p)?;
            let [kh, kw, ci, co] = shape[..] else {
                return Err(err(format!("{p} has shape {shape:?}, not [k, k, in, out]")));
            };
            // [kh, kw, in, out] → [out, in, kh, kw].
            let mut w = vec![0.0f32; v.len()];
            for (i, &x) in v.iter().enumerate() {
                let (o, c) = (i % co, (i / co) % ci);
                let (y, xk) = ((i / (co * ci)) / kw, (i / (co * ci)) % kw);
                w[((o * ci + c) * kh + y) * kw + xk] = x;
            }
            tensors.insert(
                format!("layers.{n}.{ours}.weight"),
                (vec![co, ci, kh, kw], w),
            );
        }
        for t in 0..config.timesteps {
            let layer = if bl {
                format!("BatchNorm_Layer_{n}_Time_{t}")
            } else {
                format!("BatchNorm_Layer_{n}")
            };
            for (var, ours) in [
                ("gamma", "gamma"),
                ("beta", "beta"),
                ("moving_mean", "running_mean"),
                ("moving_variance", "running_var"),
            ] {
                let v = read(&find(&layer, var)?)?;
                tensors.insert(format!("bn.{n}.{t}.{ours}"), v);
            }
        }
    }
    let p = find("ReadoutDense", "kernel")?;
    let (shape, v) = read(&p)?;
    let [di, dout] = shape[..] else {
        return Err(err(format!("{p} has shape {shape:?}, not [in, out]")));
    };
    let mut w = vec![0.0f32; v.len()];
    for (i, &x) in v.iter().enumerate() {
        w[(i % dout) * di + i / dout] = x;
    }
    tensors.insert("readout.weight".into(), (vec![dout, di], w));
    tensors.insert("readout.bias".into(), read(&find("ReadoutDense", "bias")?)?);
    let out: BTreeMap<String, TensorOut<'_>> = tensors
        .iter()
        .map(|(k, (s, v))| (k.clone(), TensorOut::F32(s, v)))
        .collect();
    let mut meta = BTreeMap::new();
    meta.insert("format".into(), "keras (rcnn-sat)".into());
    SafeTensors::parse(to_bytes(&out, &meta), path).map_err(|e| err(e.to_string()))
}

/// Every dataset's path below `group` (`""`: the root), depth-first.
fn list(
    file: &Hdf5File,
    group: &str,
    depth: usize,
    out: &mut Vec<String>,
) -> std::result::Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!(
            "groups nested more than {MAX_DEPTH} deep at {group}"
        ));
    }
    let g = if group.is_empty() {
        file.root_group()
    } else {
        file.group(group)
    }
    .map_err(|e| format!("group /{group}: {e}"))?;
    let (groups, datasets) = g
        .member_names()
        .map_err(|e| format!("group /{group}: {e}"))?;
    let at = |name: &str| {
        if group.is_empty() {
            name.to_string()
        } else {
            format!("{group}/{name}")
        }
    };
    for d in datasets {
        if out.len() >= MAX_DATASETS {
            return Err(format!("more than {MAX_DATASETS} datasets"));
        }
        out.push(at(&d));
    }
    for sub in groups {
        list(file, &at(&sub), depth + 1, out)?;
    }
    Ok(())
}
