//! Model features from an `.npz`: one float array per layer shaped [T, N, D] (recurrent, one
//! slice per time step) or [N, D] (feedforward), rows in the order of the recordings' stimuli
//! unless an array `stimulus_id` (fixed-width bytes or unicode) gives the order. `ventral
//! record` output is accepted as is (its `readout_*` and `labels_all` arrays are not features).

use std::collections::HashMap;
use std::path::Path;

use ventral_core::npy::NpzReader;

use crate::error::{Result, file_err};
use crate::recordings::MAX_ABS_VALUE;

/// Arrays in a feature file that are never treated as features.
const NOT_FEATURES: [&str; 4] = [
    "readout_weight",
    "readout_bias",
    "labels_all",
    "stimulus_id",
];

/// One layer's features.
#[derive(Debug, Clone)]
pub struct Layer {
    pub name: String,
    /// Time steps (1 for a feedforward layer).
    pub steps: usize,
    /// Rows in the file.
    pub n: usize,
    /// Features per row.
    pub d: usize,
    /// The steps held, from `first_step` on, [held, N, D] C order: all of them after
    /// [`Features::read`], none after [`Features::open`] (streamed per step by
    /// [`Features::for_each_step`]), one in a layer that call hands out.
    pub data: Vec<f32>,
    /// The step `data` starts at.
    pub first_step: usize,
}

impl Layer {
    /// Row-major value at step `t`, file row `r`, feature `j` (`t` must be held).
    #[inline]
    pub fn at(&self, t: usize, r: usize, j: usize) -> f32 {
        self.data[((t - self.first_step) * self.n + r) * self.d + j]
    }

    /// The `d` features of file row `r` at step `t` (`t` must be held).
    #[inline]
    pub fn row(&self, t: usize, r: usize) -> &[f32] {
        let start = ((t - self.first_step) * self.n + r) * self.d;
        &self.data[start..start + self.d]
    }

    /// The layer's name and shape without its data.
    pub fn shape_only(&self) -> Layer {
        Layer {
            name: self.name.clone(),
            steps: self.steps,
            n: self.n,
            d: self.d,
            data: Vec::new(),
            first_step: 0,
        }
    }

    /// True when the data of every step is in memory.
    pub fn is_loaded(&self) -> bool {
        self.first_step == 0 && self.data.len() == self.steps * self.n * self.d
    }

    /// True when every unit at (held) step `t` has one value across the file rows `rows`.
    pub fn constant_at(&self, t: usize, rows: &[usize]) -> bool {
        (0..self.d).all(|j| {
            let first = rows.first().map(|&r| self.at(t, r, j));
            rows.iter().all(|&r| Some(self.at(t, r, j)) == first)
        })
    }
}

/// The first non-finite or out-of-range value of `data` ([held, n, d] from `first_step`) as an
/// error naming the array, step and row.
fn check_values(
    src: &str,
    name: &str,
    first_step: usize,
    n: usize,
    d: usize,
    data: &[f32],
) -> Result<()> {
    if let Some(i) = data
        .iter()
        .position(|v| !v.is_finite() || f64::from(v.abs()) > MAX_ABS_VALUE)
    {
        let (t, r) = (first_step + i / (n * d).max(1), (i / d.max(1)) % n.max(1));
        let what = if data[i].is_finite() {
            format!(
                "a value of {:e} (beyond ±{MAX_ABS_VALUE:e}; rescale the features)",
                data[i]
            )
        } else {
            "a non-finite value".to_string()
        };
        return Err(file_err(
            src,
            format!("array `{name}` has {what} at step {t}, row {r}"),
        ));
    }
    Ok(())
}

/// A model's features aligned to a list of stimuli.
#[derive(Debug, Clone)]
pub struct Features {
    /// Label (the file stem unless given).
    pub model: String,
    pub source: String,
    pub layers: Vec<Layer>,
    /// File row of each recording stimulus.
    pub rows: Vec<usize>,
}

/// Shape of one feature array, read from its header alone.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerShape {
    pub name: String,
    pub steps: usize,
    /// Rows in the file.
    pub n: usize,
    pub d: usize,
}

impl LayerShape {
    /// Bytes the layer takes in memory (f32).
    pub fn bytes(&self) -> u64 {
        (self.steps as u64) * (self.n as u64) * (self.d as u64) * 4
    }
}

/// The shapes of the feature arrays [`Features::read`] would load from `path` (same
/// selection), from the npy headers only — for a memory preflight before any data is read.
pub fn layer_shapes(path: &Path, only: &[String]) -> Result<Vec<LayerShape>> {
    let src = path.display().to_string();
    let mut npz = NpzReader::open(path).map_err(|e| file_err(&src, e))?;
    let mut out = Vec::new();
    for name in npz.names() {
        if NOT_FEATURES.contains(&name.as_str()) || (!only.is_empty() && !only.contains(&name)) {
            continue;
        }
        let h = npz.header(&name).map_err(|e| file_err(&src, e))?;
        if !matches!(
            h.dtype,
            ventral_core::npy::DType::F32 | ventral_core::npy::DType::F64
        ) {
            continue;
        }
        let (steps, n, d) = match h.shape.as_slice() {
            [n, d] => (1, *n, *d),
            [t, n, d] => (*t, *n, *d),
            _ => continue, // `Features::read` names the bad shape
        };
        out.push(LayerShape { name, steps, n, d });
    }
    Ok(out)
}

impl Features {
    /// The steps of each layer at which every unit is constant across the aligned stimuli
    /// (all-zero areas before the input reaches them, dead layers): no regression can use them,
    /// so the fits predict the training mean there and correlations are undefined. Layers not
    /// in memory ([`Features::open`]) are skipped; the streamed fit reports them itself.
    pub fn constant_steps(&self) -> Vec<(String, Vec<usize>)> {
        self.layers
            .iter()
            .filter(|l| l.is_loaded())
            .filter_map(|l| {
                let steps: Vec<usize> = (0..l.steps)
                    .filter(|&t| l.constant_at(t, &self.rows))
                    .collect();
                (!steps.is_empty()).then(|| (l.name.clone(), steps))
            })
            .collect()
    }

    /// Reads `path` whole and aligns it to `stimulus_ids`, which come from `ids_from` (named in
    /// the error when an id is missing, e.g. "the recordings rec.nc"). `only` restricts to the
    /// named layers.
    pub fn read(
        path: &Path,
        stimulus_ids: &[String],
        ids_from: &str,
        only: &[String],
    ) -> Result<Self> {
        let mut f = Self::open(path, stimulus_ids, ids_from, only)?;
        f.load_all()?;
        Ok(f)
    }

    /// Reads every layer's data not yet in memory (after [`Features::open`]).
    pub fn load_all(&mut self) -> Result<()> {
        for l in 0..self.layers.len() {
            self.layers[l] = self.load_layer(l)?;
        }
        Ok(())
    }

    /// Opens `path` like [`Features::read`] — the same checks of names, shapes, dtypes and
    /// stimulus alignment, from the npy headers and `stimulus_id` — without reading any
    /// feature data: [`Features::for_each_step`] streams it one (layer, step) at a time and
    /// [`Features::load_layer`] reads a layer whole.
    pub fn open(
        path: &Path,
        stimulus_ids: &[String],
        ids_from: &str,
        only: &[String],
    ) -> Result<Self> {
        let src = path.display().to_string();
        let mut npz = NpzReader::open(path).map_err(|e| file_err(&src, e))?;
        let names = npz.names();
        let mut layers = Vec::new();
        for name in &names {
            if NOT_FEATURES.contains(&name.as_str()) || (!only.is_empty() && !only.contains(name)) {
                continue;
            }
            let h = npz.header(name).map_err(|e| file_err(&src, e))?;
            if !matches!(
                h.dtype,
                ventral_core::npy::DType::F32 | ventral_core::npy::DType::F64
            ) {
                continue;
            }
            let (steps, n, d) = match h.shape.as_slice() {
                [n, d] => (1, *n, *d),
                [t, n, d] => (*t, *n, *d),
                s => {
                    return Err(file_err(
                        &src,
                        format!(
                            "array `{name}` has shape {s:?}; features must be [T, N, D] or [N, D]"
                        ),
                    ));
                }
            };
            if steps == 0 || n == 0 || d == 0 {
                return Err(file_err(
                    &src,
                    format!(
                        "array `{name}` has shape {:?}: no {} — features need at least one step, stimulus and unit",
                        h.shape,
                        if steps == 0 {
                            "time steps"
                        } else if n == 0 {
                            "stimuli (rows)"
                        } else {
                            "units (columns)"
                        }
                    ),
                ));
            }
            layers.push(Layer {
                name: name.clone(),
                steps,
                n,
                d,
                data: Vec::new(),
                first_step: 0,
            });
        }
        for want in only {
            if !layers.iter().any(|l| &l.name == want) {
                return Err(file_err(
                    &src,
                    format!("no float feature array `{want}` (arrays: {names:?})"),
                ));
            }
        }
        if layers.is_empty() {
            return Err(file_err(
                &src,
                format!("no feature arrays (arrays: {names:?})"),
            ));
        }
        let n = layers[0].n;
        if let Some(l) = layers.iter().find(|l| l.n != n) {
            return Err(file_err(
                &src,
                format!(
                    "layer `{}` has {} rows but `{}` has {n}",
                    l.name, l.n, layers[0].name
                ),
            ));
        }
        let rows = if npz.contains("stimulus_id") {
            let ids = npz
                .read("stimulus_id")
                .map_err(|e| file_err(&src, e))?
                .to_strings()
                .ok_or_else(|| file_err(&src, "`stimulus_id` must be a bytes or unicode array"))?;
            if ids.len() != n {
                return Err(file_err(
                    &src,
                    format!(
                        "`stimulus_id` has {} entries but the features have {n} rows",
                        ids.len()
                    ),
                ));
            }
            let index: HashMap<&str, usize> = ids
                .iter()
                .enumerate()
                .map(|(i, s)| (s.as_str(), i))
                .collect();
            let missing: Vec<(usize, &String)> = stimulus_ids
                .iter()
                .enumerate()
                .filter(|(_, s)| !index.contains_key(s.as_str()))
                .collect();
            if !missing.is_empty() {
                let eg: Vec<String> = missing
                    .iter()
                    .take(3)
                    .map(|(i, s)| format!("'{s}' (entry {})", i + 1))
                    .collect();
                return Err(file_err(
                    &src,
                    format!(
                        "{} stimulus_id(s) of {ids_from} are not in this file's `stimulus_id`, e.g. {}",
                        missing.len(),
                        eg.join(", ")
                    ),
                ));
            }
            stimulus_ids.iter().map(|s| index[s.as_str()]).collect()
        } else {
            if n != stimulus_ids.len() {
                return Err(file_err(
                    &src,
                    format!(
                        "features have {n} rows but {ids_from} has {} stimuli; add a `stimulus_id` array to align them",
                        stimulus_ids.len()
                    ),
                ));
            }
            (0..n).collect()
        };
        let model = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into());
        Ok(Features {
            model,
            source: src,
            layers,
            rows,
        })
    }

    /// Layer `l` with every step in memory (itself when already loaded).
    pub fn load_layer(&self, l: usize) -> Result<Layer> {
        let layer = &self.layers[l];
        if layer.is_loaded() {
            return Ok(layer.clone());
        }
        let src = &self.source;
        let mut npz = NpzReader::open(Path::new(src)).map_err(|e| file_err(src, e))?;
        let a = npz.read(&layer.name).map_err(|e| file_err(src, e))?;
        let data = a
            .into_f32()
            .ok_or_else(|| file_err(src, format!("array `{}` is not numeric", layer.name)))?;
        if data.len() != layer.steps * layer.n * layer.d {
            return Err(file_err(
                src,
                format!("array `{}` changed since it was opened", layer.name),
            ));
        }
        check_values(src, &layer.name, 0, layer.n, layer.d, &data)?;
        Ok(Layer {
            data,
            first_step: 0,
            ..layer.clone()
        })
    }

    /// Calls `f` with layer `l` holding one step at a time, in step order: from memory when
    /// the layer is loaded, else streamed from the file (a [T, N, D] array is decompressed
    /// once, front to back, one [N, D] step in memory; an [N, D] array is its one step; a
    /// Fortran-ordered array, whose steps are not contiguous, is read whole).
    pub fn for_each_step(&self, l: usize, mut f: impl FnMut(&Layer) -> Result<()>) -> Result<()> {
        let layer = &self.layers[l];
        let from_memory = |whole: &Layer, f: &mut dyn FnMut(&Layer) -> Result<()>| {
            let step_len = whole.n * whole.d;
            for t in 0..whole.steps {
                f(&Layer {
                    data: whole.data[t * step_len..(t + 1) * step_len].to_vec(),
                    first_step: t,
                    ..whole.shape_only()
                })?;
            }
            Ok(())
        };
        if layer.is_loaded() {
            return from_memory(layer, &mut f);
        }
        let src = &self.source;
        let mut npz = NpzReader::open(Path::new(src)).map_err(|e| file_err(src, e))?;
        // One step, or a Fortran-ordered array (its steps are not contiguous): read whole.
        if layer.steps == 1
            || npz
                .header(&layer.name)
                .map_err(|e| file_err(src, e))?
                .fortran_order
        {
            return from_memory(&self.load_layer(l)?, &mut f);
        }
        npz.for_each_slice(&layer.name, |t, block: &[f32]| -> Result<()> {
            check_values(src, &layer.name, t, layer.n, layer.d, block)?;
            f(&Layer {
                data: block.to_vec(),
                first_step: t,
                ..layer.clone()
            })
        })
    }
}
