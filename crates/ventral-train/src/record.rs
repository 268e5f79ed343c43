//! Recording, first form: run a model on an `N×3×H×W` float32 array and write the reference's
//! npz keys (`extract_actvs.py` of BLT-pytorch-CCN23): `outputs_all [T, N, C]` log-probabilities,
//! `representations_all [T, N, D]` (post-ReLU GAP layer), `readout_weight [C, D]`,
//! `readout_bias` (`[C]`, or empty when the readout has no bias) and `labels_all [N]`.
//!
//! Images are read in batches from the `.npy` file and each step's outputs are streamed to
//! temporary files, so memory is bounded by one batch whatever N is.

use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use burn::tensor::{Device, Tensor, TensorData};
use ventral_core::npy::{DType, NpyRowReader, NpzWriter, read_npy};
use ventral_core::{NpyArray, NpyData};
use ventral_models::{Model, params};

use crate::error::{Result, TrainError, file_err};

/// Run `model` (on a plain, non-autodiff device) over `images` and write `out`.
pub fn record_arrays(
    model: &Model,
    device: &Device,
    images: &Path,
    labels: Option<&Path>,
    out: &Path,
    batch_size: usize,
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
            Some(v)
        }
        None => None,
    };
    let (t_steps, c) = (cfg.timesteps(), cfg.num_classes());
    let d = cfg.feature_dim();
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = parent.join(format!(".record-{}", std::process::id()));
    fs::create_dir_all(&tmp).map_err(|e| file_err(tmp.display(), e))?;
    let result = (|| -> Result<()> {
        let mut files: Vec<(BufWriter<File>, BufWriter<File>)> = (0..t_steps)
            .map(|t| {
                let a = File::create(tmp.join(format!("lp{t}")))
                    .map_err(|e| file_err(tmp.display(), e))?;
                let b = File::create(tmp.join(format!("rep{t}")))
                    .map_err(|e| file_err(tmp.display(), e))?;
                Ok((BufWriter::new(a), BufWriter::new(b)))
            })
            .collect::<Result<_>>()?;
        let mut start = 0;
        while start < n {
            let count = batch_size.max(1).min(n - start);
            let x = reader.read_rows(start, count)?.to_f32().unwrap_or_default();
            let x = Tensor::<4>::from_data(TensorData::new(x, [count, 3, s, s]), device);
            let o = model.forward(x);
            for t in 0..t_steps {
                let lp: Vec<f32> = o.log_probs[t]
                    .clone()
                    .into_data()
                    .convert::<f32>()
                    .try_to_vec::<f32>()
                    .unwrap_or_default();
                let rep: Vec<f32> = o.representations[t]
                    .clone()
                    .into_data()
                    .convert::<f32>()
                    .try_to_vec::<f32>()
                    .unwrap_or_default();
                if lp.iter().chain(&rep).any(|v| !v.is_finite()) {
                    return Err(TrainError::Diverged(format!(
                        "non-finite outputs at step {t} for images {start}..{} of {}",
                        start + count,
                        images.display()
                    )));
                }
                let w = |f: &mut BufWriter<File>, v: &[f32]| -> Result<()> {
                    for x in v {
                        f.write_all(&x.to_le_bytes())
                            .map_err(|e| file_err(tmp.display(), e))?;
                    }
                    Ok(())
                };
                w(&mut files[t].0, &lp)?;
                w(&mut files[t].1, &rep)?;
            }
            start += count;
            progress(start, n);
        }
        for (a, b) in files.iter_mut() {
            a.flush().map_err(|e| file_err(tmp.display(), e))?;
            b.flush().map_err(|e| file_err(tmp.display(), e))?;
        }
        drop(files);
        let exported = params::export(model);
        let (ws, wd) = exported
            .get("readout.weight")
            .cloned()
            .ok_or_else(|| TrainError::Config("model has no readout.weight".into()))?;
        let bias = exported.get("readout.bias").cloned();
        ventral_core::write_atomic(out, |w| {
            let mut z = NpzWriter::new(w, false);
            for (key, prefix, width) in
                [("outputs_all", "lp", c), ("representations_all", "rep", d)]
            {
                z.begin(key, DType::F32, &[t_steps, n, width])?;
                for t in 0..t_steps {
                    let mut f = BufReader::new(File::open(tmp.join(format!("{prefix}{t}")))?);
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
            if let Some(l) = &labels {
                z.add(
                    "labels_all",
                    &NpyArray {
                        shape: vec![n],
                        data: NpyData::I64(l.clone()),
                    },
                )?;
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
