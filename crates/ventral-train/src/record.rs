//! Recording: run a model over images and write the reference's npz keys
//! (`extract_actvs.py` of BLT-pytorch-CCN23): `outputs_all [T, N, C]` log-probabilities,
//! `representations_all [T, N, D]` (post-ReLU GAP layer), `readout_weight [C, D]`,
//! `readout_bias` (`[C]`, or empty when the readout has no bias) and `labels_all [N]`; plus,
//! on request, one array per area (`v1`, `v2`, `v4`, `it`: `[T, N, C]` after global average
//! pooling, or `[T, N, C·H·W]` unpooled), and the images' `stimulus_id` and metadata columns
//! (`meta.<column>`); a ConvRNN with a temporal decoder also writes its output, `decoded [N,
//! C]` log-probabilities.
//!
//! Two sources: an `N×3×H×W` float32 array ([`record_arrays`]) or a packed dataset split
//! ([`record_dataset`], normalised as in training). Images are processed in batches and every
//! (array, step) is streamed to a temporary file, so memory is bounded by one batch whatever N
//! is; the npz is assembled atomically at the end.

use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use burn::tensor::{Device, Tensor, TensorData};
use ventral_core::npy::{DType, NpyRowReader, NpzWriter, read_npy};
use ventral_core::{NpyArray, NpyData};
use ventral_data::PackedDataset;
use ventral_data::loader::{Loader, LoaderConfig};
use ventral_models::device::read_f32;
use ventral_models::{Model, fast, params};

use crate::error::{Result, TrainError, file_err};

/// Spatial reduction of recorded area outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pool {
    /// Global average over space: `[T, N, C]`.
    Gap,
    /// Unpooled, C·H·W per image: `[T, N, C·H·W]`.
    None,
    /// Adaptive average pooling to a K×K grid (PyTorch's `adaptive_avg_pool2d`), flattened
    /// channel-major: `[T, N, C·K·K]`. Keeps coarse spatial layout at a fraction of the size.
    Grid(usize),
}

impl Pool {
    pub fn parse(s: &str) -> Result<Self> {
        let bad = || {
            TrainError::Config(format!(
                "--pool `{s}`: expected gap, none or grid:K (K ≥ 1, e.g. grid:4)"
            ))
        };
        match s {
            "gap" => Ok(Pool::Gap),
            "none" => Ok(Pool::None),
            _ => match s.strip_prefix("grid:").map(str::parse::<usize>) {
                Some(Ok(k)) if k >= 1 => Ok(Pool::Grid(k)),
                _ => Err(bad()),
            },
        }
    }
}

/// Reduces one area's `[B, C, H, W]` output to `[B, width]` as `pool` says.
pub fn pool_area(a: Tensor<4>, pool: Pool, name: &str) -> Result<Tensor<2>> {
    let [b, ch, hh, ww] = a.dims();
    Ok(match pool {
        Pool::Gap => a.mean_dim(3).mean_dim(2).reshape([b, ch]),
        Pool::None => a.reshape([b, ch * hh * ww]),
        Pool::Grid(k) => {
            if k > hh || k > ww {
                return Err(TrainError::Config(format!(
                    "--pool grid:{k}: area `{name}` is only {hh}×{ww}"
                )));
            }
            burn::tensor::module::adaptive_avg_pool2d(a, [k, k]).reshape([b, ch * k * k])
        }
    })
}

/// Per step and stream, the shards' `[n_s, width]` arrays joined along the batch (in shard
/// order); one shard's arrays as they are.
/// A model with a temporal decoder whose forward pass returned none.
fn no_decoder_output() -> TrainError {
    TrainError::Config("the model's temporal decoder gave no output".into())
}

fn join_shards(parts: Vec<Vec<Vec<Tensor<2>>>>) -> Vec<Vec<Tensor<2>>> {
    let mut it = parts.into_iter();
    let Some(first) = it.next() else {
        return Vec::new();
    };
    let rest: Vec<Vec<Vec<Tensor<2>>>> = it.collect();
    if rest.is_empty() {
        return first;
    }
    first
        .into_iter()
        .enumerate()
        .map(|(t, arrays)| {
            arrays
                .into_iter()
                .enumerate()
                .map(|(j, a)| {
                    let mut all = vec![a];
                    all.extend(rest.iter().map(|p| p[t][j].clone()));
                    Tensor::cat(all, 0)
                })
                .collect()
        })
        .collect()
}

/// What to record beyond the reference keys.
#[derive(Debug, Clone)]
pub struct RecordOptions {
    /// Images per forward pass (on the native engine at most `fast::CHUNK`).
    pub batch_size: usize,
    /// Areas to record (`v1`, `v2`, `v4`, `it`).
    pub layers: Vec<String>,
    pub pool: Pool,
    /// Run BLT models on ventral's CPU engine (same numbers as burn to float32 round-off,
    /// several times faster); other models and devices use burn.
    pub native: bool,
    /// On the native engine, run the 3 × 3 stride-1 convolutions by Winograd F(4 × 4, 3 × 3)
    /// (faster, another float32 rounding: `ventral_engine::winograd`).
    pub winograd: bool,
}

impl RecordOptions {
    /// Whether `model` runs on the native engine.
    fn runs_native(&self, model: &Model) -> bool {
        self.native && matches!(model, Model::Blt(_))
    }

    /// Images per forward pass. The native engine runs at most `CHUNK` images per pass
    /// (as fast per image, and a fraction of the memory), so its batches are read, pooled and
    /// written that many at a time: any `--batch-size` from `CHUNK` up records the same
    /// bits.
    fn pass_size(&self, model: &Model) -> usize {
        if self.runs_native(model) {
            self.batch_size.clamp(1, fast::CHUNK)
        } else {
            self.batch_size.max(1)
        }
    }
}

/// Run `model` (on a plain, non-autodiff device) over `images` and write `out`.
pub fn record_arrays(
    model: &Model,
    device: &Device,
    images: &Path,
    labels: Option<&Path>,
    out: &Path,
    opts: &RecordOptions,
    progress: &dyn Fn(usize, usize),
) -> Result<()> {
    let cfg = model.config();
    let mut reader = NpyRowReader::open(images)?;
    let h = reader.header().clone();
    let s = cfg.image_size();
    if h.shape.len() != 4 || h.shape[1] != 3 || h.shape[2] != s || h.shape[3] != s {
        return Err(file_err(
            images.display(),
            format!(
                "images have shape {:?}; the model needs [N, 3, {s}, {s}] (float32, NCHW, already normalised)",
                h.shape
            ),
        ));
    }
    if !matches!(h.dtype, DType::F32 | DType::F64) {
        return Err(file_err(
            images.display(),
            format!("images are {}, expected float32", h.dtype.descr()),
        ));
    }
    let n = reader.rows();
    let labels = match labels {
        Some(p) => {
            let a = read_npy(p)?;
            let v = a
                .to_i64()
                .filter(|_| !a.is_float())
                .ok_or_else(|| file_err(p.display(), "labels must be integers"))?;
            if a.shape != vec![n] {
                return Err(file_err(
                    p.display(),
                    format!(
                        "labels have shape {:?}, expected [{n}] to match {}",
                        a.shape,
                        images.display()
                    ),
                ));
            }
            let k = cfg.num_classes();
            if let Some((i, l)) = v
                .iter()
                .enumerate()
                .find(|(_, l)| **l < 0 || **l as u64 >= k as u64)
            {
                return Err(file_err(
                    p.display(),
                    format!("label {l} at index {i} is outside the model's {k} classes (0..{k})"),
                ));
            }
            Some(v)
        }
        None => None,
    };
    let mut fetch = |start: usize, count: usize| -> Result<Vec<f32>> {
        Ok(reader.read_rows(start, count)?.to_f32().unwrap_or_default())
    };
    record_core(
        model,
        device,
        n,
        &mut fetch,
        labels,
        Vec::new(),
        opts,
        &images.display().to_string(),
        out,
        progress,
    )
}

/// Run `model` over a packed split (normalised with the split's recorded normalisation, no
/// augmentation, in dataset order) and write `out` with the split's labels, `stimulus_id` and
/// metadata columns.
pub fn record_dataset(
    model: &Model,
    device: &Device,
    ds: std::sync::Arc<PackedDataset>,
    out: &Path,
    opts: &RecordOptions,
    progress: &dyn Fn(usize, usize),
) -> Result<()> {
    let cfg = model.config();
    let [h, w, c] = ds.image_shape();
    let label = ds.dir().display().to_string();
    if h != cfg.image_size() || w != cfg.image_size() || c != 3 {
        return Err(file_err(
            &label,
            format!(
                "images are {h}×{w}×{c}, the model needs {s}×{s}×3",
                s = cfg.image_size()
            ),
        ));
    }
    let nc = ds.manifest().num_classes;
    if nc > cfg.num_classes() {
        return Err(file_err(
            &label,
            format!("{nc} classes, the model has {}", cfg.num_classes()),
        ));
    }
    let bs = opts.pass_size(model);
    let loader = Loader::new(
        ds.clone(),
        LoaderConfig {
            batch_size: bs,
            shuffle: false,
            ..Default::default()
        },
    );
    let order = loader.order(0);
    let mut fetch = |start: usize, _count: usize| -> Result<Vec<f32>> {
        Ok(loader.batch_from_order(&order, 0, start / bs).images)
    };
    let (header, rows) = ds.metadata().map_err(|e| file_err(&label, e))?;
    if !header.is_empty() && rows.len() != ds.len() {
        // The analyses split by these columns; dropping them silently hid a broken pack.
        let meta = ds.dir().join(&ds.manifest().metadata_file);
        return Err(file_err(
            meta.display(),
            format!(
                "{} rows for {} images: the image metadata does not match the split (repack it)",
                rows.len(),
                ds.len()
            ),
        ));
    }
    let mut extras = Vec::new();
    for (k, col) in header.iter().enumerate() {
        let values: Vec<String> = rows
            .iter()
            .map(|r| r.get(k).cloned().unwrap_or_default())
            .collect();
        if col == "stimulus_id" {
            extras.push(("stimulus_id".to_string(), NpyArray::from_strings(&values)));
        }
        extras.push((format!("meta.{col}"), NpyArray::from_strings(&values)));
    }
    record_core(
        model,
        device,
        ds.len(),
        &mut fetch,
        Some(ds.labels().to_vec()),
        extras,
        opts,
        &label,
        out,
        progress,
    )
}

/// One streamed array: npz key, per-image width (known after the first batch).
struct Stream {
    key: String,
    width: usize,
    files: Vec<BufWriter<File>>,
}

#[allow(clippy::too_many_arguments)]
fn record_core(
    model: &Model,
    device: &Device,
    n: usize,
    fetch: &mut dyn FnMut(usize, usize) -> Result<Vec<f32>>,
    labels: Option<Vec<i64>>,
    extras: Vec<(String, NpyArray)>,
    opts: &RecordOptions,
    source: &str,
    out: &Path,
    progress: &dyn Fn(usize, usize),
) -> Result<()> {
    let cfg = model.config();
    let s = cfg.image_size();
    let t_steps = cfg.timesteps();
    let areas = cfg.areas();
    for l in &opts.layers {
        if !areas.contains(l) {
            return Err(TrainError::Config(format!(
                "--layers: unknown area `{l}` (this model's areas are {})",
                areas.join(", ")
            )));
        }
    }
    // A batch larger than memory would end in an allocation abort, which cannot be reported
    // well: refused before anything is written (`--batch-size` beyond the image count means
    // one batch of every image).
    let native = opts.runs_native(model);
    let bs = opts.pass_size(model);
    let batch = bs.min(n);
    if let Some(more) =
        ventral_core::mem::exceeds_u128(cfg.inference_bytes(batch)).map_err(TrainError::Config)?
    {
        return Err(TrainError::Config(format!(
            "--batch-size {}: a forward pass of {batch} images needs about {more}; lower --batch-size",
            opts.batch_size
        )));
    }
    // A temporary directory named like every atomic write's (`.<name>.<pid>-<n>.tmp`), so
    // that a later run removes it if this process is killed.
    // One writer at a time for `out` (a second `record` into it fails at once, naming the pid).
    let _lock =
        ventral_core::atomic::OutputLock::acquire(out).map_err(|e| file_err(out.display(), e))?;
    let tmp = ventral_core::atomic::temp_path(out);
    fs::create_dir_all(&tmp).map_err(|e| file_err(tmp.display(), e))?;
    let result = (|| -> Result<()> {
        let mut keys = vec!["outputs_all".to_string(), "representations_all".to_string()];
        keys.extend(opts.layers.iter().cloned());
        let mut streams: Vec<Stream> = keys
            .iter()
            .enumerate()
            .map(|(q, key)| {
                let files = (0..t_steps)
                    .map(|t| {
                        let p = tmp.join(format!("s{q}_{t}"));
                        File::create(&p)
                            .map(BufWriter::new)
                            .map_err(|e| file_err(p.display(), e))
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(Stream {
                    key: key.clone(),
                    width: 0,
                    files,
                })
            })
            .collect::<Result<_>>()?;
        // The engine reads the parameters once.
        let params = match model {
            Model::Blt(m) if native => Some((fast::spec(&m.config), fast::parameters(m)?)),
            _ => None,
        };
        let engine = match &params {
            Some((spec, p)) => {
                let mut net = fast::BltNet::new(spec, p).map_err(fast::engine_err)?;
                net.set_winograd(opts.winograd);
                Some(net)
            }
            None => None,
        };
        // A ConvRNN with a temporal decoder (the zoo's `_tmaxconf` / `_dthresh`): its output
        // too, as `decoded` [N, K] (log-probabilities).
        let decodes = matches!(model, Model::ConvRnn(m)
            if m.config.decoder.kind != ventral_models::convrnn::DecoderKind::Last);
        let mut decoded: Vec<f32> = Vec::new();
        let mut start = 0;
        while start < n {
            let count = bs.min(n - start);
            let x = fetch(start, count)?;
            // Per step: outputs, representations and the requested areas.
            let per_step: Vec<Vec<Tensor<2>>> = if let Some(net) = &engine {
                let o = net
                    .forward(&x, count, !opts.layers.is_empty())
                    .map_err(fast::engine_err)?;
                let k = cfg.num_classes();
                let mat = |v: &[f32], w: usize| {
                    Tensor::<2>::from_data(TensorData::new(v.to_vec(), [count, w]), device)
                };
                (0..t_steps)
                    .map(|t| {
                        let d = o.representations[t].len() / count.max(1);
                        let mut arrays =
                            vec![mat(&o.log_probs[t], k), mat(&o.representations[t], d)];
                        for l in &opts.layers {
                            let j = areas.iter().position(|a| a == l).unwrap_or(0);
                            let a = &o.areas[t][j];
                            let (c, side) = net.spec().area_shape(j);
                            let a = Tensor::<4>::from_data(
                                TensorData::new(a.clone(), [count, c, side, side]),
                                device,
                            );
                            arrays.push(pool_area(a, opts.pool, l)?);
                        }
                        Ok(arrays)
                    })
                    .collect::<Result<_>>()?
            } else {
                let x = Tensor::<4>::from_data(TensorData::new(x, [count, 3, s, s]), device);
                // On a pool worker (`on_pool`): small parallel passes run inline; in
                // data-parallel shards on the CPU (`ventral_models::shards`: every recorded
                // quantity is per image), joined along the batch afterwards.
                let shards = ventral_models::shards::ranges(count, model, device);
                let parts = ventral_models::engine_ops::on_pool(|| {
                    ventral_models::shards::map(model, device, &x, &shards, |m, xs, _| {
                        let o = if opts.layers.is_empty() {
                            m.forward(xs)
                        } else {
                            m.forward_areas(xs)
                        };
                        let mut steps = (0..t_steps)
                            .map(|t| {
                                let mut arrays: Vec<Tensor<2>> =
                                    vec![o.log_probs[t].clone(), o.representations[t].clone()];
                                for l in &opts.layers {
                                    let Some(a) = o.area(t, l) else {
                                        return Err(TrainError::Config(format!(
                                            "the forward pass recorded no area `{l}` at step {t}"
                                        )));
                                    };
                                    arrays.push(pool_area(a.clone(), opts.pool, l)?);
                                }
                                Ok(arrays)
                            })
                            .collect::<Result<Vec<_>>>()?;
                        if decodes {
                            // After the steps, joined along the batch as they are.
                            let d = o.decoded.clone().ok_or_else(no_decoder_output)?;
                            steps.push(vec![d]);
                        }
                        Ok::<_, TrainError>(steps)
                    })
                })?;
                let mut joined = join_shards(parts);
                if decodes {
                    let d = joined
                        .pop()
                        .and_then(|mut v| v.pop())
                        .ok_or_else(no_decoder_output)?;
                    let v = read_f32(&d, "the decoder's output")?;
                    if let Some(q) = v.iter().position(|x| !x.is_finite()) {
                        return Err(TrainError::Diverged(format!(
                            "non-finite decoder output for image {} of {source}",
                            start + q / d.dims()[1].max(1)
                        )));
                    }
                    decoded.extend(v);
                }
                joined
            };
            for (t, arrays) in per_step.into_iter().enumerate() {
                for (st, arr) in streams.iter_mut().zip(arrays) {
                    st.width = arr.dims()[1];
                    let v = read_f32(&arr, &format!("{} at step {t}", st.key))?;
                    if let Some(q) = v.iter().position(|x| !x.is_finite()) {
                        return Err(TrainError::Diverged(format!(
                            "non-finite {} at step {t} for image {} of {source}",
                            st.key,
                            start + q / st.width.max(1)
                        )));
                    }
                    let f = &mut st.files[t];
                    for x in &v {
                        f.write_all(&x.to_le_bytes())
                            .map_err(|e| file_err(tmp.display(), e))?;
                    }
                }
            }
            start += count;
            progress(start, n);
        }
        for st in streams.iter_mut() {
            for f in st.files.iter_mut() {
                f.flush().map_err(|e| file_err(tmp.display(), e))?;
            }
        }
        let widths: Vec<(String, usize)> =
            streams.iter().map(|s| (s.key.clone(), s.width)).collect();
        drop(streams);
        let exported = params::export(model)?;
        // A model without a linear readout on its representation (a ConvRNN reading out with
        // a convolution) gets an empty `readout_weight` [0, D]: the analyses that need one
        // say so.
        let names = model.readout_names();
        let (ws, wd) = names
            .as_ref()
            .and_then(|(w, _)| exported.get(w).cloned())
            .unwrap_or((vec![0, model.config().feature_dim()], Vec::new()));
        let bias = names.and_then(|(_, b)| exported.get(&b).cloned());
        ventral_core::write_atomic(out, |w| {
            let mut z = NpzWriter::new(w, false);
            for (q, (key, width)) in widths.iter().enumerate() {
                z.begin(key, DType::F32, &[t_steps, n, *width])?;
                for t in 0..t_steps {
                    let mut f = BufReader::new(File::open(tmp.join(format!("s{q}_{t}")))?);
                    let mut buf = vec![0u8; 1 << 20];
                    loop {
                        let k = f.read(&mut buf)?;
                        if k == 0 {
                            break;
                        }
                        let vals: Vec<f32> = buf[..k]
                            .chunks_exact(4)
                            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                            .collect();
                        z.write_chunk(&vals)?;
                    }
                }
            }
            let arr = |shape: Vec<usize>, data: Vec<f32>| NpyArray {
                shape,
                data: NpyData::F32(data),
            };
            z.add("readout_weight", &arr(ws.clone(), wd.clone()))?;
            match &bias {
                Some((bs, bd)) => z.add("readout_bias", &arr(bs.clone(), bd.clone()))?,
                None => z.add("readout_bias", &arr(vec![0], vec![]))?,
            }
            if decodes {
                let k = decoded.len() / n.max(1);
                z.add("decoded", &arr(vec![n, k], std::mem::take(&mut decoded)))?;
            }
            if let Some(l) = &labels {
                z.add(
                    "labels_all",
                    &NpyArray {
                        shape: vec![n],
                        data: NpyData::I64(l.clone()),
                    },
                )?;
            }
            for (k, a) in &extras {
                z.add(k, a)?;
            }
            // The family's brain-area mapping (ConvRNN presets: the authors'), `REGION=node,…`,
            // which `neural-fit` uses by default.
            if let ventral_models::ModelConfig::ConvRnn(c) = model.config()
                && !c.brain_areas.is_empty()
            {
                let v: Vec<String> = c
                    .brain_areas
                    .iter()
                    .map(|(r, nodes)| format!("{r}={}", nodes.join(",")))
                    .collect();
                z.add("brain_areas", &NpyArray::from_strings(&v))?;
            }
            z.finish()?;
            Ok(())
        })
        .map_err(|e| file_err(out.display(), e))?;
        Ok(())
    })();
    let _ = fs::remove_dir_all(&tmp);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    // PyTorch 2.x:
    //   x = torch.sin(torch.arange(2*7*7, dtype=torch.float32).reshape(1, 2, 7, 7) * 0.37) * 3
    //   torch.nn.functional.adaptive_avg_pool2d(x, (3, 3)).flatten()
    #[test]
    fn grid_pool_equals_pytorch_adaptive_avg_pool2d() {
        let want: [f64; 18] = [
            -0.12129719,
            0.35586378,
            0.64688575,
            -0.64436311,
            -0.3480674,
            0.13028954,
            -0.45960286,
            -0.66965008,
            -0.52942866,
            -0.52659935,
            -0.10776713,
            0.36743435,
            -0.6095112,
            -0.64035416,
            -0.33625153,
            -0.022881515,
            -0.46951878,
            -0.67056847,
        ];
        let x: Vec<f32> = (0..2 * 7 * 7)
            .map(|i| (i as f32 * 0.37).sin() * 3.0)
            .collect();
        let device = ventral_models::device::parse_device("cpu").unwrap();
        let t = Tensor::<4>::from_data(TensorData::new(x, [1, 2, 7, 7]), &device);
        let got: Vec<f32> = pool_area(t, Pool::Grid(3), "v4")
            .unwrap()
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(got.len(), 18);
        for (g, w) in got.iter().zip(want) {
            assert!((f64::from(*g) - w).abs() < 1e-5, "{g} vs {w}");
        }
        let t = Tensor::<4>::from_data(TensorData::new(vec![0f32; 4], [1, 1, 2, 2]), &device);
        assert!(pool_area(t, Pool::Grid(3), "v4").is_err());
        assert!(Pool::parse("grid:0").is_err() && Pool::parse("grid:x").is_err());
        assert_eq!(Pool::parse("grid:4").unwrap(), Pool::Grid(4));
    }
}
