//! Neural recordings prepared for fitting: an assembly reorganised into stimuli × neuroids ×
//! time bins, with the presentations (trials) kept so that split halves can be drawn.
//!
//! # Shapes
//! - `trials`: [P, K, B] (presentation, neuroid, time bin), C order
//! - [`Recordings::mean`]: [S, K, B] averaged over repetitions

use std::collections::HashMap;

use crate::assembly::Assembly;
use crate::error::{Result, file_err};

/// The largest magnitude accepted for a response or a model feature: firing rates and
/// activations are many orders below it, and far beyond it the fits' sums of squares and
/// cross-products overflow or lose every digit (a response ×1e300 used to end in "SVD did not
/// converge" blamed on the features).
pub const MAX_ABS_VALUE: f64 = 1e30;

/// Neural responses ready for the metrics.
#[derive(Debug, Clone)]
pub struct Recordings {
    /// The file they came from (for messages).
    pub source: String,
    /// Unique stimulus ids, in order of first presentation.
    pub stimulus_ids: Vec<String>,
    /// `object_name` per stimulus, when the assembly has it.
    pub object_names: Option<Vec<String>>,
    pub neuroid_ids: Vec<String>,
    /// Region per neuroid (`"all"` when the assembly has no `region` coordinate).
    pub regions: Vec<String>,
    /// (start, end) ms per time bin.
    pub bins: Vec<(f64, f64)>,
    /// Stimulus index per presentation.
    pub pres_stim: Vec<usize>,
    /// Repetition index (0-based, dense) per presentation.
    pub pres_rep: Vec<usize>,
    /// Number of distinct repetitions.
    pub n_reps: usize,
    /// [P, K, B]
    pub trials: Vec<f64>,
    /// [S, K, B]
    pub mean: Vec<f64>,
}

impl Recordings {
    /// Reorganise an assembly read from `source`. Requires a `presentation` and a `neuroid`
    /// dimension; `time_bin` is optional (one bin then). Repetitions come from the
    /// `repetition` coordinate, or from the order in which a stimulus recurs.
    /// NaN or infinite responses are an error naming the neuroid and the bin.
    pub fn from_assembly(a: &Assembly, source: &str) -> Result<Self> {
        let pos = |d: &str| a.dims.iter().position(|x| x == d);
        let pdim = pos("presentation").ok_or_else(|| {
            file_err(
                source,
                format!("no `presentation` dimension (dims: {:?})", a.dims),
            )
        })?;
        let ndim = pos("neuroid").ok_or_else(|| {
            file_err(
                source,
                format!("no `neuroid` dimension (dims: {:?})", a.dims),
            )
        })?;
        let tdim = pos("time_bin");
        if a.dims.len() != 2 + usize::from(tdim.is_some()) {
            return Err(file_err(
                source,
                format!(
                    "expected dims presentation × neuroid [× time_bin], got {:?}",
                    a.dims
                ),
            ));
        }
        let (np, nk) = (a.shape[pdim], a.shape[ndim]);
        let nb = tdim.map_or(1, |t| a.shape[t]);
        let stim_of_pres = a.stimulus_ids().ok_or_else(|| {
            file_err(
                source,
                "no `stimulus_id` (or `image_id`) coordinate along `presentation`",
            )
        })?;
        let mut stimulus_ids: Vec<String> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let pres_stim: Vec<usize> = stim_of_pres
            .iter()
            .map(|s| {
                let n = stimulus_ids.len();
                *index.entry(s.clone()).or_insert_with(|| {
                    stimulus_ids.push(s.clone());
                    n
                })
            })
            .collect();
        let ns = stimulus_ids.len();
        // Repetitions.
        let pres_rep: Vec<usize> = match a.coord("repetition").filter(|c| c.dim == "presentation") {
            Some(c) => {
                let vals = c.values.to_strings();
                let mut uniq: Vec<String> = vals.clone();
                uniq.sort_by(|x, y| match (x.parse::<f64>(), y.parse::<f64>()) {
                    (Ok(a), Ok(b)) => a.total_cmp(&b),
                    _ => x.cmp(y),
                });
                uniq.dedup();
                vals.iter()
                    .map(|v| uniq.iter().position(|u| u == v).unwrap_or(0))
                    .collect()
            }
            None => {
                let mut seen = vec![0usize; ns];
                pres_stim
                    .iter()
                    .map(|&s| {
                        seen[s] += 1;
                        seen[s] - 1
                    })
                    .collect()
            }
        };
        let n_reps = pres_rep.iter().copied().max().map_or(0, |m| m + 1);
        let object_names = a
            .coord("object_name")
            .filter(|c| c.dim == "presentation")
            .map(|c| {
                let v = c.values.to_strings();
                let mut per = vec![String::new(); ns];
                for (p, &s) in pres_stim.iter().enumerate() {
                    per[s] = v[p].clone();
                }
                per
            });
        let neuroid_ids = a
            .coord("neuroid_id")
            .filter(|c| c.dim == "neuroid")
            .map(|c| c.values.to_strings())
            .unwrap_or_else(|| (0..nk).map(|i| i.to_string()).collect());
        let regions = a
            .coord("region")
            .filter(|c| c.dim == "neuroid")
            .map(|c| c.values.to_strings())
            .unwrap_or_else(|| vec!["all".to_string(); nk]);
        let bins: Vec<(f64, f64)> = if tdim.is_some() {
            let get = |name: &str| {
                a.coord(name)
                    .filter(|c| c.dim == "time_bin")
                    .and_then(|c| c.values.to_f64())
                    .ok_or_else(|| {
                        file_err(
                            source,
                            format!("no numeric `{name}` coordinate along `time_bin`"),
                        )
                    })
            };
            let (s, e) = (get("time_bin_start")?, get("time_bin_end")?);
            let bins: Vec<(f64, f64)> = s.into_iter().zip(e).collect();
            check_bins(&bins).map_err(|m| file_err(source, m))?;
            bins
        } else {
            vec![(0.0, 0.0)]
        };
        // Strides of the data in its own dim order.
        let mut strides = vec![1usize; a.dims.len()];
        for i in (0..a.dims.len().saturating_sub(1)).rev() {
            strides[i] = strides[i + 1] * a.shape[i + 1];
        }
        let mut trials = vec![0.0; np * nk * nb];
        for p in 0..np {
            for k in 0..nk {
                for b in 0..nb {
                    let mut off = p * strides[pdim] + k * strides[ndim];
                    if let Some(t) = tdim {
                        off += b * strides[t];
                    }
                    let v = a.data[off];
                    if !v.is_finite() {
                        return Err(file_err(
                            source,
                            format!(
                                "neuroid `{}` has a non-finite response ({v}) for stimulus `{}` at time bin {}–{} ms; drop or fill that site",
                                neuroid_ids[k], stimulus_ids[pres_stim[p]], bins[b].0, bins[b].1
                            ),
                        ));
                    }
                    if v.abs() > MAX_ABS_VALUE {
                        return Err(file_err(
                            source,
                            format!(
                                "neuroid `{}` has a response of {v:e} for stimulus `{}` at time bin {}–{} ms — beyond ±{MAX_ABS_VALUE:e}, where sums of squares in the fits lose all precision; rescale the responses",
                                neuroid_ids[k], stimulus_ids[pres_stim[p]], bins[b].0, bins[b].1
                            ),
                        ));
                    }
                    trials[(p * nk + k) * nb + b] = v;
                }
            }
        }
        let mut r = Recordings {
            source: source.to_string(),
            stimulus_ids,
            object_names,
            neuroid_ids,
            regions,
            bins,
            pres_stim,
            pres_rep,
            n_reps,
            trials,
            mean: Vec::new(),
        };
        let all: Vec<bool> = vec![true; r.n_reps];
        r.mean = r.average(&all)?;
        Ok(r)
    }

    pub fn n_stimuli(&self) -> usize {
        self.stimulus_ids.len()
    }
    pub fn n_neuroids(&self) -> usize {
        self.neuroid_ids.len()
    }
    pub fn n_bins(&self) -> usize {
        self.bins.len()
    }

    /// Mean over the presentations whose repetition is selected: [S, K, B]. A stimulus without
    /// any selected presentation is an error naming it.
    pub fn average(&self, use_rep: &[bool]) -> Result<Vec<f64>> {
        let (ns, nk, nb) = (self.n_stimuli(), self.n_neuroids(), self.n_bins());
        let mut sum = vec![0.0; ns * nk * nb];
        let mut count = vec![0usize; ns];
        let row = nk * nb;
        for (p, (&s, &r)) in self.pres_stim.iter().zip(&self.pres_rep).enumerate() {
            if !use_rep[r] {
                continue;
            }
            count[s] += 1;
            for (acc, v) in sum[s * row..(s + 1) * row]
                .iter_mut()
                .zip(&self.trials[p * row..(p + 1) * row])
            {
                *acc += v;
            }
        }
        for s in 0..ns {
            if count[s] == 0 {
                return Err(file_err(
                    &self.source,
                    format!(
                        "stimulus `{}` has no presentation in repetitions {:?}; every stimulus needs a presentation in each half",
                        self.stimulus_ids[s],
                        use_rep
                            .iter()
                            .enumerate()
                            .filter(|(_, u)| **u)
                            .map(|(i, _)| i)
                            .collect::<Vec<_>>()
                    ),
                ));
            }
            let c = count[s] as f64;
            sum[s * row..(s + 1) * row].iter_mut().for_each(|v| *v /= c);
        }
        Ok(sum)
    }

    /// Distinct regions in order of first appearance, with their neuroid indices.
    pub fn region_sites(&self) -> Vec<(String, Vec<usize>)> {
        let mut out: Vec<(String, Vec<usize>)> = Vec::new();
        for (k, r) in self.regions.iter().enumerate() {
            match out.iter_mut().find(|(n, _)| n == r) {
                Some((_, v)) => v.push(k),
                None => out.push((r.clone(), vec![k])),
            }
        }
        out
    }
}

/// Column `[S]` of an [S, K, B] array at neuroid `k`, bin `b`, over stimuli `rows`.
pub fn site_values(
    arr: &[f64],
    nk: usize,
    nb: usize,
    k: usize,
    b: usize,
    rows: &[usize],
) -> Vec<f64> {
    rows.iter().map(|&s| arr[(s * nk + k) * nb + b]).collect()
}

/// Time bins must be finite, non-empty (start < end), and distinct and increasing in start
/// (the step mapping, the OST interpolation and the plots read them in order).
fn check_bins(bins: &[(f64, f64)]) -> std::result::Result<(), String> {
    if bins.is_empty() {
        return Err("the time_bin dimension is empty".into());
    }
    for (i, &(s, e)) in bins.iter().enumerate() {
        if !s.is_finite() || !e.is_finite() {
            return Err(format!("time bin {i} is [{s}, {e}): bins must be finite"));
        }
        if s >= e {
            return Err(format!(
                "time bin {i} is [{s}, {e}): a bin must start before it ends"
            ));
        }
        if i > 0 && s <= bins[i - 1].0 {
            return Err(format!(
                "time bin {i} starts at {s}, not after bin {} ({}): bins must be distinct and in increasing order",
                i - 1,
                bins[i - 1].0
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod bin_tests {
    use super::check_bins;

    #[test]
    fn bad_time_bins_are_named() {
        assert!(check_bins(&[(70.0, 80.0), (80.0, 90.0)]).is_ok());
        for (bins, want) in [
            (vec![], "empty"),
            (vec![(f64::NAN, 80.0)], "finite"),
            (vec![(80.0, 70.0)], "start before it ends"),
            (vec![(70.0, 80.0), (70.0, 80.0)], "distinct"),
            (vec![(80.0, 90.0), (70.0, 80.0)], "increasing"),
        ] {
            let e = check_bins(&bins).unwrap_err();
            assert!(e.contains(want), "{bins:?}: {e}");
        }
    }
}
