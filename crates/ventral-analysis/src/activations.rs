//! Activation files in the reference's format (`BLT_analyse/extract_actvs.py`), as `ventral
//! record` also writes them.
//!
//! # Shapes
//! - `outputs_all`: `[T, N, C]` log-probabilities (float32 or float64)
//! - `labels_all`: `[N]` integer class labels
//! - `representations_all`: `[T, N, D]` (post-ReLU GAP layer)
//! - `readout_weight`: `[C, D]`; `readout_bias`: `[C]`, or empty / absent without a bias
//! - optional: `stimulus_id` `[N]` strings; `meta.<column>` `[N]` per metadata column

use std::collections::HashMap;
use std::path::Path;

use ventral_core::npy::{NpyArray, NpzReader};

use crate::error::{AnalysisError, Result, file_err};

/// Per-image metadata: column names and rows (one per image, in image order).
#[derive(Debug, Clone, PartialEq)]
pub struct Metadata {
    pub source: String,
    pub columns: Vec<String>,
    /// `[N][columns]`.
    pub rows: Vec<Vec<String>>,
}

/// The metadata columns the zone analyses are split by when none are named (`ventral
/// dynamics` without `--split-by`): those of these the metadata has.
pub const DEFAULT_SPLIT_BY: [&str; 2] = ["variation", "occluded_fraction"];

impl Metadata {
    /// The columns of [`DEFAULT_SPLIT_BY`] this metadata has, in that order.
    pub fn default_split_by(&self) -> Vec<String> {
        DEFAULT_SPLIT_BY
            .iter()
            .filter(|c| self.columns.iter().any(|h| h == *c))
            .map(|c| c.to_string())
            .collect()
    }

    /// The values of one column.
    pub fn column(&self, name: &str) -> Option<Vec<&str>> {
        let c = self.columns.iter().position(|h| h == name)?;
        Some(
            self.rows
                .iter()
                .map(|r| r.get(c).map_or("", String::as_str))
                .collect(),
        )
    }

    /// Reads a CSV with a header. With `stimulus_ids` and a `stimulus_id` column, rows are
    /// matched by id; otherwise the CSV must have one row per image, in image order.
    pub fn read_csv(path: &Path, n: usize, stimulus_ids: Option<&[String]>) -> Result<Self> {
        let label = path.display().to_string();
        let mut r = csv::Reader::from_path(path).map_err(|e| file_err(&label, e))?;
        let columns: Vec<String> = r
            .headers()
            .map_err(|e| file_err(&label, e))?
            .iter()
            .map(String::from)
            .collect();
        let mut rows = Vec::new();
        for rec in r.records() {
            let rec = rec.map_err(|e| file_err(&label, e))?;
            rows.push(rec.iter().map(String::from).collect::<Vec<_>>());
        }
        let id_col = columns.iter().position(|c| c == "stimulus_id");
        if let (Some(ids), Some(ic)) = (stimulus_ids, id_col) {
            let by_id: HashMap<&str, usize> = rows
                .iter()
                .enumerate()
                .map(|(i, r)| (r[ic].as_str(), i))
                .collect();
            let mut aligned = Vec::with_capacity(n);
            for id in ids {
                let i = by_id.get(id.as_str()).ok_or_else(|| {
                    file_err(
                        &label,
                        format!("no row with stimulus_id '{id}' (an image of the activations)"),
                    )
                })?;
                aligned.push(rows[*i].clone());
            }
            rows = aligned;
        } else if rows.len() != n {
            return Err(file_err(
                &label,
                format!(
                    "{} rows, but the activations have {n} images (rows must be in image order, or give a stimulus_id column)",
                    rows.len()
                ),
            ));
        }
        Ok(Self {
            source: label,
            columns,
            rows,
        })
    }
}

/// One network's activations.
#[derive(Debug, Clone)]
pub struct Activations {
    pub source: String,
    /// Time steps, images, classes, representation units.
    pub t: usize,
    pub n: usize,
    pub c: usize,
    pub d: usize,
    /// `[T, N, C]`.
    pub log_probs: Vec<f32>,
    pub labels: Vec<usize>,
    /// `[T, N, D]`.
    pub reps: Vec<f32>,
    /// `[C, D]`.
    pub readout_weight: Vec<f64>,
    pub readout_bias: Option<Vec<f64>>,
    pub stimulus_ids: Option<Vec<String>>,
    pub metadata: Option<Metadata>,
}

fn read_key(z: &mut NpzReader, src: &str, key: &str) -> Result<NpyArray> {
    if !z.contains(key) {
        return Err(file_err(
            src,
            format!(
                "no array '{key}' (arrays: {}); expected the reference keys outputs_all, labels_all, representations_all, readout_weight",
                z.names().join(", ")
            ),
        ));
    }
    Ok(z.read(key)?)
}

impl Activations {
    /// Reads and checks an activation `.npz`.
    pub fn read(path: &Path) -> Result<Self> {
        let src = path.display().to_string();
        let mut z = NpzReader::open(path)?;
        let out = read_key(&mut z, &src, "outputs_all")?;
        let reps = read_key(&mut z, &src, "representations_all")?;
        let labels = read_key(&mut z, &src, "labels_all")?;
        let w = read_key(&mut z, &src, "readout_weight")?;
        let shape_err = |key: &str, got: &[usize], want: &str| {
            file_err(&src, format!("{key} has shape {got:?}, expected {want}"))
        };
        let [t, n, c] = out.shape[..] else {
            return Err(shape_err("outputs_all", &out.shape, "[T, N, C]"));
        };
        if reps.shape.len() != 3 || reps.shape[0] != t || reps.shape[1] != n {
            return Err(shape_err(
                "representations_all",
                &reps.shape,
                &format!("[{t}, {n}, D] to match outputs_all"),
            ));
        }
        let d = reps.shape[2];
        if labels.shape != [n] {
            return Err(shape_err("labels_all", &labels.shape, &format!("[{n}]")));
        }
        if w.shape != [c, d] {
            return Err(shape_err(
                "readout_weight",
                &w.shape,
                &format!("[{c}, {d}]"),
            ));
        }
        if t == 0 || n == 0 || c < 2 || d == 0 {
            return Err(file_err(
                &src,
                format!(
                    "empty activations (T={t}, N={n}, C={c}, D={d}); need T, N, D ≥ 1 and C ≥ 2"
                ),
            ));
        }
        // A [T, N, width] float array, every value finite (else: where the first one is not).
        let float = |a: NpyArray, key: &str, width: usize, unit: &str| {
            if !a.is_float() {
                return Err(file_err(
                    &src,
                    format!("{key} must be float32 or float64, is {}", a.dtype().descr()),
                ));
            }
            let v = a.into_f32().unwrap_or_default();
            match v.iter().position(|x| !x.is_finite()) {
                Some(q) => Err(file_err(
                    &src,
                    format!(
                        "{key} has a non-finite value at step {}, image {}, {unit} {}",
                        q / (n * width),
                        (q / width) % n,
                        q % width
                    ),
                )),
                None => Ok(v),
            }
        };
        let log_probs = float(out, "outputs_all", c, "class")?;
        let reps = float(reps, "representations_all", d, "unit")?;
        let lab = labels
            .to_f64()
            .ok_or_else(|| file_err(&src, "labels_all must be numeric"))?;
        let labels = lab
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                if v.fract() == 0.0 && v >= 0.0 && (v as usize) < c {
                    Ok(v as usize)
                } else {
                    Err(file_err(
                        &src,
                        format!("labels_all[{i}] = {v} is not a class index in 0..{c}"),
                    ))
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let readout_weight = w
            .to_f64()
            .filter(|_| w.is_float())
            .ok_or_else(|| file_err(&src, "readout_weight must be float"))?;
        // `readout_bias` is empty (or absent, or a pickled None) when the readout has no bias.
        let readout_bias = match z.contains("readout_bias").then(|| z.read("readout_bias")) {
            Some(Ok(b)) if b.len() == c => b.to_f64(),
            Some(Ok(b)) if b.is_empty() => None,
            Some(Ok(b)) => {
                return Err(shape_err(
                    "readout_bias",
                    &b.shape,
                    &format!("[{c}] or empty"),
                ));
            }
            _ => None,
        };
        // The readout decides the zones: a NaN there would silently poison every margin.
        for (key, v) in [
            ("readout_weight", Some(&readout_weight)),
            ("readout_bias", readout_bias.as_ref()),
        ] {
            if let Some(q) = v.and_then(|v| v.iter().position(|x| !x.is_finite())) {
                return Err(file_err(
                    &src,
                    if key == "readout_weight" {
                        format!(
                            "{key} has a non-finite value at class {}, unit {}",
                            q / d.max(1),
                            q % d.max(1)
                        )
                    } else {
                        format!("{key} has a non-finite value at class {q}")
                    },
                ));
            }
        }
        let stimulus_ids = if z.contains("stimulus_id") {
            let a = z.read("stimulus_id")?;
            let ids = a
                .to_strings()
                .filter(|v| v.len() == n)
                .ok_or_else(|| file_err(&src, format!("stimulus_id must hold {n} strings")))?;
            Some(ids)
        } else {
            None
        };
        let meta_keys: Vec<String> = z
            .names()
            .into_iter()
            .filter(|k| k.starts_with("meta."))
            .collect();
        let metadata = if meta_keys.is_empty() {
            None
        } else {
            let mut columns = Vec::new();
            let mut cols = Vec::new();
            for k in &meta_keys {
                let a = z.read(k)?;
                let v = a
                    .to_strings()
                    .or_else(|| {
                        a.to_f64()
                            .map(|v| v.iter().map(|x| x.to_string()).collect())
                    })
                    .filter(|v| v.len() == n)
                    .ok_or_else(|| file_err(&src, format!("{k} must hold {n} values")))?;
                columns.push(k.trim_start_matches("meta.").to_string());
                cols.push(v);
            }
            Some(Metadata {
                source: src.clone(),
                columns,
                rows: (0..n)
                    .map(|i| cols.iter().map(|c| c[i].clone()).collect())
                    .collect(),
            })
        };
        Ok(Self {
            source: src,
            t,
            n,
            c,
            d,
            log_probs,
            labels,
            reps,
            readout_weight,
            readout_bias,
            stimulus_ids,
            metadata,
        })
    }

    /// Checks that `other` shows the same images at the same steps (an untrained control).
    pub fn check_same_images(&self, other: &Activations) -> Result<()> {
        if other.t != self.t || other.n != self.n || other.d != self.d {
            return Err(file_err(
                &other.source,
                format!(
                    "shape [T={}, N={}, D={}] does not match {} [T={}, N={}, D={}]",
                    other.t, other.n, other.d, self.source, self.t, self.n, self.d
                ),
            ));
        }
        if other.labels != self.labels {
            return Err(file_err(
                &other.source,
                format!(
                    "labels_all differ from {}: not the same images in the same order",
                    self.source
                ),
            ));
        }
        Ok(())
    }

    /// Predicted class per step and image, `[T][N]` (argmax of the log-probabilities; the
    /// first maximum on ties, as `np.argmax`).
    pub fn predictions(&self) -> Vec<Vec<usize>> {
        let (n, c) = (self.n, self.c);
        (0..self.t)
            .map(|t| {
                (0..n)
                    .map(|i| {
                        let row = &self.log_probs[(t * n + i) * c..(t * n + i + 1) * c];
                        let mut best = 0;
                        for k in 1..c {
                            if row[k] > row[best] {
                                best = k;
                            }
                        }
                        best
                    })
                    .collect()
            })
            .collect()
    }

    /// Representation of image `i` at step `t`.
    #[inline]
    pub fn rep(&self, t: usize, i: usize) -> &[f32] {
        &self.reps[(t * self.n + i) * self.d..(t * self.n + i + 1) * self.d]
    }

    /// Log-probabilities of image `i` at step `t`.
    #[inline]
    pub fn logp(&self, t: usize, i: usize) -> &[f32] {
        &self.log_probs[(t * self.n + i) * self.c..(t * self.n + i + 1) * self.c]
    }
}

impl From<String> for AnalysisError {
    fn from(s: String) -> Self {
        AnalysisError::Invalid(s)
    }
}
