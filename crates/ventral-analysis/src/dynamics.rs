//! The representation-dynamics analyses of Thorat, Doerig & Kietzmann (2023), exactly as the
//! reference notebook defines them (`analysis.ipynb`; see docs/dynamics.md), and the readout-zone
//! geometry beyond it. Time steps are 0-based throughout.

use std::collections::BTreeMap;

use faer::{Mat, MatRef};
use rayon::prelude::*;
use ventral_core::stats::{mcnemar_exact, mean_ci, wilson_interval};

use crate::activations::{Activations, Metadata};
use crate::error::{AnalysisError, Result};

/// Classification-dynamics category of one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Category {
    StableCorrect,
    StableIncorrect,
    UnstableCorrect,
    UnstableIncorrect,
}

impl Category {
    pub const ALL: [Category; 4] = [
        Category::StableCorrect,
        Category::StableIncorrect,
        Category::UnstableCorrect,
        Category::UnstableIncorrect,
    ];

    /// The CSV name.
    pub fn name(self) -> &'static str {
        match self {
            Category::StableCorrect => "stable_correct",
            Category::StableIncorrect => "stable_incorrect",
            Category::UnstableCorrect => "unstable_correct",
            Category::UnstableIncorrect => "unstable_incorrect",
        }
    }
}

/// The classification dynamics of one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageDynamics {
    pub category: Category,
    /// First step of the final constant run (stable images).
    pub t_stable: Option<usize>,
    /// The class it settles in (stable images; the incorrect class for stable-incorrect).
    pub final_class: Option<usize>,
    /// First step classified correctly (unstable-correct images).
    pub t_first_correct: Option<usize>,
}

/// Classifies one image from its predictions ŷ_0..ŷ_{T−1} and label `y`:
/// stable when the last two steps agree and the final class c* never appears before the start
/// `t_stable` of its final run (a constant sequence has `t_stable` = 0; so does T = 1);
/// otherwise unstable, correct when y appears at any step.
pub fn classify(preds: &[usize], y: usize) -> ImageDynamics {
    let t = preds.len();
    let stable = if t <= 1 {
        Some(0)
    } else if preds[t - 1] == preds[t - 2] {
        let c = preds[t - 1];
        let mut ts = t - 2;
        while ts > 0 && preds[ts - 1] == c {
            ts -= 1;
        }
        // Stable only if c* does not appear before its final run.
        (!preds[..ts].contains(&c)).then_some(ts)
    } else {
        None
    };
    match stable {
        Some(ts) => {
            let c = preds.last().copied().unwrap_or(0);
            ImageDynamics {
                category: if c == y {
                    Category::StableCorrect
                } else {
                    Category::StableIncorrect
                },
                t_stable: Some(ts),
                final_class: Some(c),
                t_first_correct: None,
            }
        }
        None => {
            let first = preds.iter().position(|&p| p == y);
            ImageDynamics {
                category: if first.is_some() {
                    Category::UnstableCorrect
                } else {
                    Category::UnstableIncorrect
                },
                t_stable: None,
                final_class: None,
                t_first_correct: first,
            }
        }
    }
}

/// The analysis horizon: the first t with count(t_stable = t) < count(t_stable = 0)/100 (the
/// number of steps analysed); T when there is none.
pub fn horizon(hist: &[usize]) -> usize {
    let h0 = hist.first().copied().unwrap_or(0) as f64;
    hist.iter()
        .position(|&c| (c as f64) < h0 / 100.0)
        .unwrap_or(hist.len())
}

/// Mean with its 95 % t-interval and the number of values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat {
    pub mean: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub n: usize,
}

impl Stat {
    /// A proportion — the mean of 0/1 values — with its 95 % Wilson interval
    /// ([`wilson_interval`]): unlike a t-interval it is not empty at 0 % or 100 % and stays
    /// inside [0, 1] for small groups.
    pub fn proportion(v: &[bool]) -> Self {
        let (k, n) = (v.iter().filter(|&&x| x).count(), v.len());
        let (ci_low, ci_high) = wilson_interval(k, n);
        Stat {
            mean: if n == 0 {
                f64::NAN
            } else {
                k as f64 / n as f64
            },
            ci_low,
            ci_high,
            n,
        }
    }

    pub fn of(v: &[f64]) -> Self {
        let (mean, ci_low, ci_high) = mean_ci(v);
        Stat {
            mean,
            ci_low,
            ci_high,
            n: v.iter().filter(|x| x.is_finite()).count(),
        }
    }
}

/// `representation_change.csv` row: ‖r(t+1) − r(t)‖₂ over stable-correct images of one
/// `t_stable` group; `timestep` is t.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeRow {
    pub network: String,
    pub t_stable: usize,
    pub timestep: usize,
    pub stat: Stat,
}

/// A row keyed by step, group and metric (`signatures.csv`, `margins.csv`).
#[derive(Debug, Clone, PartialEq)]
pub struct GroupRow {
    pub timestep: usize,
    pub group: &'static str,
    pub metric: &'static str,
    pub stat: Stat,
}

/// `zone_transitions.csv` row: images in state `from` at t and `to` at t + 1.
#[derive(Debug, Clone, PartialEq)]
pub struct TransitionRow {
    pub timestep: usize,
    pub from: &'static str,
    pub to: &'static str,
    pub count: usize,
    /// Fraction of the images in `from` at t.
    pub fraction: f64,
}

/// Accuracy from step `timestep` − 1 to `timestep`, paired over the same images: how many
/// turned correct (`gained`) and incorrect (`lost`), and the exact McNemar test of the change
/// (`p`: the probability of a split at least this uneven if no step were better than the other).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepChange {
    pub timestep: usize,
    pub gained: usize,
    pub lost: usize,
    pub p: f64,
}

/// `zone_entry.csv` row: of the images misclassified at t, how many are correct at a later
/// step, and at the last step.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryRow {
    pub timestep: usize,
    pub misclassified: usize,
    pub enter_correct_later: usize,
    pub correct_at_last: usize,
}

/// `by_metadata.csv` row.
#[derive(Debug, Clone, PartialEq)]
pub struct MetaRow {
    pub column: String,
    pub level: String,
    pub timestep: usize,
    pub metric: &'static str,
    pub stat: Stat,
}

/// Everything the dynamics analysis computes for one network.
#[derive(Debug, Clone)]
pub struct Dynamics {
    pub t: usize,
    pub n: usize,
    pub c: usize,
    /// `[T]` fraction correct.
    pub accuracy: Vec<f64>,
    /// `[T]` images correct at each step.
    pub correct: Vec<usize>,
    /// `[T]` 95 % Wilson interval of each step's accuracy (over images).
    pub accuracy_ci: Vec<(f64, f64)>,
    /// `[T − 1]` how accuracy changes from each step to the next on the same images.
    pub step_changes: Vec<StepChange>,
    /// Step of best accuracy (the first on ties).
    pub best_step: usize,
    /// `[T][N]` predicted class (zone) per step and image.
    pub predictions: Vec<Vec<usize>>,
    /// Ward linkage of the readout vectors on (1 − cos)/2 (SciPy's `Z`).
    pub linkage: Vec<[f64; 4]>,
    pub images: Vec<ImageDynamics>,
    /// `[T]` count of stable-correct images per `t_stable`.
    pub t_stable_hist: Vec<usize>,
    /// Steps analysed (see [`horizon`]).
    pub horizon: usize,
    pub change: Vec<ChangeRow>,
    pub signatures: Vec<GroupRow>,
    pub margins: Vec<GroupRow>,
    pub transitions: Vec<TransitionRow>,
    /// `[T − 1][C][C]` counts of zone (predicted class) at t → t + 1.
    pub transition_matrix: Vec<Vec<u64>>,
    pub entry: Vec<EntryRow>,
    pub by_metadata: Vec<MetaRow>,
}

impl Dynamics {
    /// Count of each category, in [`Category::ALL`] order.
    pub fn category_counts(&self) -> Vec<(Category, usize)> {
        Category::ALL
            .iter()
            .map(|&c| (c, self.images.iter().filter(|i| i.category == c).count()))
            .collect()
    }
}

/// Per step and image geometry of a representation against the readout.
struct StepGeometry {
    /// `[N]` ‖r‖.
    norm: Vec<f64>,
    /// `[N, C]` cos(r, w_k).
    cos: Vec<f64>,
    /// `[N]` logit margin of the current zone: l_ŷ − max_{k≠ŷ} l_k.
    logit_margin: Vec<f64>,
    /// `[N]` angle (degrees) from r to the nearest boundary of its current zone.
    angular_margin: Vec<f64>,
}

fn geometry(
    a: &Activations,
    t: usize,
    preds: &[usize],
    w_norm: &[f64],
    pair: &[f64],
) -> StepGeometry {
    let (n, c, d) = (a.n, a.c, a.d);
    // Representations of step t promoted to f64 ([N, D] row-major = [D, N] column-major, so
    // each image is one contiguous column) and their norms, one pass, in parallel.
    let reps = &a.reps[t * n * d..(t + 1) * n * d];
    let mut r64 = vec![0.0f64; n * d];
    let mut norm = vec![0.0f64; n];
    r64.par_chunks_mut(d.max(1))
        .zip(reps.par_chunks(d.max(1)))
        .zip(norm.par_iter_mut())
        .for_each(|((o, r), nr)| {
            let mut ss = 0.0;
            for (o, &v) in o.iter_mut().zip(r) {
                *o = f64::from(v);
                ss += *o * *o;
            }
            *nr = ss.sqrt();
        });
    let rt = MatRef::from_column_major_slice(&r64, d, n); // column i = r_i
    let wt = MatRef::from_column_major_slice(&a.readout_weight, d, c); // column k = w_k
    let gt: Mat<f64> = wt.transpose() * rt; // [C, N]: column i = (w_k · r_i)_k
    let mut geo = StepGeometry {
        norm,
        cos: vec![0.0; n * c],
        logit_margin: vec![0.0; n],
        angular_margin: vec![0.0; n],
    };
    let bias = |k: usize| a.readout_bias.as_ref().map_or(0.0, |b| b[k]);
    geo.cos
        .par_chunks_mut(c.max(1))
        .zip(geo.logit_margin.par_iter_mut())
        .zip(geo.angular_margin.par_iter_mut())
        .enumerate()
        .for_each(|(i, ((cos, lm), am))| {
            let g = gt.col(i);
            let nr = geo.norm[i];
            for (k, o) in cos.iter_mut().enumerate() {
                *o = g[k] / (nr * w_norm[k]);
            }
            let p = preds[i];
            let lp = a.logp(t, i);
            *lm = (0..c)
                .filter(|&k| k != p)
                .map(|k| f64::from(lp[p]) - f64::from(lp[k]))
                .fold(f64::INFINITY, f64::min);
            let m = (0..c)
                .filter(|&k| k != p)
                .map(|k| (g[p] - g[k] + bias(p) - bias(k)) / (pair[p * c + k] * nr))
                .fold(f64::INFINITY, f64::min);
            *am = if nr > 0.0 {
                m.clamp(-1.0, 1.0).asin().to_degrees()
            } else {
                f64::NAN
            };
        });
    geo
}

/// Levels of a metadata column: categorical values as they are when there are at most 12
/// distinct ones; numeric columns with more become tertiles labelled by their ranges.
pub fn metadata_levels(values: &[&str]) -> Option<Vec<String>> {
    let distinct: std::collections::BTreeSet<&str> = values.iter().copied().collect();
    if distinct.len() < 2 {
        return None;
    }
    if distinct.len() <= 12 {
        return Some(values.iter().map(|v| v.to_string()).collect());
    }
    let nums: Vec<f64> = values
        .iter()
        .map(|v| v.trim().parse::<f64>().unwrap_or(f64::NAN))
        .collect();
    if nums.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let q1 = ventral_core::stats::percentile(&nums, 100.0 / 3.0);
    let q2 = ventral_core::stats::percentile(&nums, 200.0 / 3.0);
    let lo = nums.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = nums.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some(
        nums.iter()
            .map(|&v| {
                if v <= q1 {
                    format!("1: {lo:.3}–{q1:.3}")
                } else if v <= q2 {
                    format!("2: {q1:.3}–{q2:.3}")
                } else {
                    format!("3: {q2:.3}–{hi:.3}")
                }
            })
            .collect(),
    )
}

/// Runs every analysis on `a`. `untrained` (the same images through the untrained network)
/// adds its representation change; `metadata` with `split_by` columns adds `by_metadata`.
pub fn analyse(
    a: &Activations,
    untrained: Option<&Activations>,
    metadata: Option<&Metadata>,
    split_by: &[String],
) -> Result<Dynamics> {
    if let Some(u) = untrained {
        a.check_same_images(u)?;
    }
    let (tt, n, c, d) = (a.t, a.n, a.c, a.d);
    let preds = a.predictions();
    let correct = |t: usize, i: usize| preds[t][i] == a.labels[i];
    let n_correct: Vec<usize> = (0..tt)
        .map(|t| (0..n).filter(|&i| correct(t, i)).count())
        .collect();
    let accuracy: Vec<f64> = n_correct.iter().map(|&k| k as f64 / n as f64).collect();
    let accuracy_ci = n_correct.iter().map(|&k| wilson_interval(k, n)).collect();
    let step_changes = (1..tt)
        .map(|t| {
            let gained = (0..n)
                .filter(|&i| !correct(t - 1, i) && correct(t, i))
                .count();
            let lost = (0..n)
                .filter(|&i| correct(t - 1, i) && !correct(t, i))
                .count();
            StepChange {
                timestep: t,
                gained,
                lost,
                p: mcnemar_exact(gained, lost),
            }
        })
        .collect();
    let best_step = (0..tt).fold(0, |b, t| if accuracy[t] > accuracy[b] { t } else { b });
    let images: Vec<ImageDynamics> = (0..n)
        .map(|i| {
            let seq: Vec<usize> = (0..tt).map(|t| preds[t][i]).collect();
            classify(&seq, a.labels[i])
        })
        .collect();
    let mut hist = vec![0usize; tt];
    for im in &images {
        if im.category == Category::StableCorrect
            && let Some(ts) = im.t_stable
        {
            hist[ts] += 1;
        }
    }
    let hz = horizon(&hist);
    // Stable-correct images inside the horizon, the population of the reference analyses.
    let analysed: Vec<usize> = (0..n)
        .filter(|&i| {
            images[i].category == Category::StableCorrect
                && images[i].t_stable.is_some_and(|ts| ts < hz)
        })
        .collect();

    // Representation change per t_stable group.
    let mut change = Vec::new();
    for (label, net) in std::iter::once(("trained", a)).chain(untrained.map(|u| ("untrained", u))) {
        // [T − 1][analysed] ‖r(t + 1) − r(t)‖₂, in parallel over images.
        let steps: Vec<Vec<f64>> = (0..tt.saturating_sub(1))
            .map(|t| {
                analysed
                    .par_iter()
                    .map(|&i| {
                        net.rep(t + 1, i)
                            .iter()
                            .zip(net.rep(t, i))
                            .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
                            .sum::<f64>()
                            .sqrt()
                    })
                    .collect()
            })
            .collect();
        for g in 0..hz {
            let members: Vec<usize> = (0..analysed.len())
                .filter(|&q| images[analysed[q]].t_stable == Some(g))
                .collect();
            for (t, dist) in steps.iter().enumerate() {
                let v: Vec<f64> = members.iter().map(|&q| dist[q]).collect();
                change.push(ChangeRow {
                    network: label.into(),
                    t_stable: g,
                    timestep: t,
                    stat: Stat::of(&v),
                });
            }
        }
    }

    // Readout geometry: norms of w_k and of w_c − w_k.
    let w_norm: Vec<f64> = (0..c)
        .map(|k| {
            a.readout_weight[k * d..(k + 1) * d]
                .iter()
                .map(|v| v * v)
                .sum::<f64>()
                .sqrt()
        })
        .collect();
    let pair: Vec<f64> = (0..c * c)
        .map(|q| {
            let (p, k) = (q / c, q % c);
            (0..d)
                .map(|j| (a.readout_weight[p * d + j] - a.readout_weight[k * d + j]).powi(2))
                .sum::<f64>()
                .sqrt()
        })
        .collect();
    if let Some(k) = w_norm.iter().position(|&v| v == 0.0) {
        return Err(AnalysisError::Invalid(format!(
            "{}: readout_weight row {k} is all zeros (class {k} has no readout vector)",
            a.source
        )));
    }

    // Metadata levels.
    let mut level_cols: Vec<(String, Vec<String>)> = Vec::new();
    if let Some(m) = metadata {
        for col in split_by {
            let v = m.column(col).ok_or_else(|| {
                AnalysisError::Invalid(format!(
                    "{}: no metadata column '{col}' (columns: {})",
                    m.source,
                    m.columns.join(", ")
                ))
            })?;
            if let Some(levels) = metadata_levels(&v) {
                level_cols.push((col.clone(), levels));
            }
        }
    }

    let mut signatures = Vec::new();
    let mut margins = Vec::new();
    let mut by_metadata = Vec::new();
    let later_correct = |t: usize, i: usize| (t + 1..tt).any(|s| correct(s, i));
    for t in 0..tt {
        let geo = geometry(a, t, &preds[t], &w_norm, &pair);
        let cos = |i: usize, k: usize| geo.cos[i * c + k];
        // Margins for all images: correct vs misclassified.
        for (group, want) in [("correct", true), ("misclassified", false)] {
            let idx: Vec<usize> = (0..n).filter(|&i| correct(t, i) == want).collect();
            for (metric, vals) in [
                ("norm", &geo.norm),
                ("logit_margin", &geo.logit_margin),
                ("angular_margin_deg", &geo.angular_margin),
            ] {
                let v: Vec<f64> = idx.iter().map(|&i| vals[i]).collect();
                margins.push(GroupRow {
                    timestep: t,
                    group,
                    metric,
                    stat: Stat::of(&v),
                });
            }
        }
        // Signatures of stability, t = 1..horizon − 1.
        if t >= 1 && t < hz {
            let now: Vec<usize> = analysed
                .iter()
                .copied()
                .filter(|&i| images[i].t_stable.is_some_and(|ts| ts <= t))
                .collect();
            let later: Vec<usize> = analysed
                .iter()
                .copied()
                .filter(|&i| images[i].t_stable.is_some_and(|ts| ts > t))
                .collect();
            for (group, idx) in [("stable_now", &now), ("stable_later", &later)] {
                let norm: Vec<f64> = idx.iter().map(|&i| geo.norm[i]).collect();
                let cur: Vec<f64> = idx.iter().map(|&i| cos(i, preds[t][i])).collect();
                signatures.push(GroupRow {
                    timestep: t,
                    group,
                    metric: "norm",
                    stat: Stat::of(&norm),
                });
                signatures.push(GroupRow {
                    timestep: t,
                    group,
                    metric: "cos_current",
                    stat: Stat::of(&cur),
                });
            }
            // Future (correct) class vs the final classes of other stable-later images that
            // share i's current zone but not its label.
            let fut: Vec<f64> = later.iter().map(|&i| cos(i, a.labels[i])).collect();
            let mut cnt = vec![0usize; c * c]; // [current zone][final class]
            for &j in &later {
                cnt[preds[t][j] * c + a.labels[j]] += 1;
            }
            let other: Vec<f64> = later
                .iter()
                .map(|&i| {
                    let p = preds[t][i];
                    let (mut s, mut m) = (0.0, 0usize);
                    for k in (0..c).filter(|&k| k != a.labels[i]) {
                        let q = cnt[p * c + k];
                        if q > 0 {
                            s += q as f64 * cos(i, k);
                            m += q;
                        }
                    }
                    if m == 0 { f64::NAN } else { s / m as f64 }
                })
                .collect();
            signatures.push(GroupRow {
                timestep: t,
                group: "stable_later",
                metric: "cos_future",
                stat: Stat::of(&fut),
            });
            signatures.push(GroupRow {
                timestep: t,
                group: "stable_later",
                metric: "cos_other",
                stat: Stat::of(&other),
            });
        }
        // Metadata splits.
        for (col, levels) in &level_cols {
            let mut by_level: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
            for (i, l) in levels.iter().enumerate() {
                by_level.entry(l.as_str()).or_default().push(i);
            }
            for (level, idx) in by_level {
                let acc: Vec<bool> = idx.iter().map(|&i| correct(t, i)).collect();
                let norm: Vec<f64> = idx.iter().map(|&i| geo.norm[i]).collect();
                let am: Vec<f64> = idx.iter().map(|&i| geo.angular_margin[i]).collect();
                let enter: Vec<bool> = idx
                    .iter()
                    .filter(|&&i| !correct(t, i))
                    .map(|&i| later_correct(t, i))
                    .collect();
                // Proportions with Wilson intervals, means with t-intervals.
                for (metric, stat) in [
                    ("accuracy", Stat::proportion(&acc)),
                    ("norm", Stat::of(&norm)),
                    ("angular_margin_deg", Stat::of(&am)),
                    ("enter_correct_later", Stat::proportion(&enter)),
                ] {
                    by_metadata.push(MetaRow {
                        column: col.clone(),
                        level: level.to_string(),
                        timestep: t,
                        metric,
                        stat,
                    });
                }
            }
        }
    }

    // Zone transitions and entry into the correct zone.
    let mut transitions = Vec::new();
    let mut transition_matrix = Vec::new();
    for t in 0..tt.saturating_sub(1) {
        let mut m = vec![0u64; c * c];
        let mut counts: BTreeMap<(&'static str, &'static str), usize> = BTreeMap::new();
        for i in 0..n {
            let (p0, p1, y) = (preds[t][i], preds[t + 1][i], a.labels[i]);
            m[p0 * c + p1] += 1;
            let from = if p0 == y { "correct" } else { "incorrect" };
            let to = if p1 == y {
                "correct"
            } else if p1 == p0 {
                "same_incorrect_zone"
            } else {
                "other_incorrect_zone"
            };
            *counts.entry((from, to)).or_default() += 1;
        }
        for from in ["correct", "incorrect"] {
            let total: usize = counts
                .iter()
                .filter(|((f, _), _)| *f == from)
                .map(|(_, v)| v)
                .sum();
            for to in ["correct", "same_incorrect_zone", "other_incorrect_zone"] {
                if from == "correct" && to == "same_incorrect_zone" {
                    continue;
                }
                let count = counts.get(&(from, to)).copied().unwrap_or(0);
                transitions.push(TransitionRow {
                    timestep: t,
                    from,
                    to,
                    count,
                    fraction: if total > 0 {
                        count as f64 / total as f64
                    } else {
                        f64::NAN
                    },
                });
            }
        }
        transition_matrix.push(m);
    }
    let entry = (0..tt)
        .map(|t| {
            let mis: Vec<usize> = (0..n).filter(|&i| !correct(t, i)).collect();
            EntryRow {
                timestep: t,
                misclassified: mis.len(),
                enter_correct_later: mis.iter().filter(|&&i| later_correct(t, i)).count(),
                correct_at_last: mis.iter().filter(|&&i| correct(tt - 1, i)).count(),
            }
        })
        .collect();

    Ok(Dynamics {
        t: tt,
        n,
        c,
        accuracy,
        correct: n_correct,
        accuracy_ci,
        step_changes,
        best_step,
        images,
        t_stable_hist: hist,
        horizon: hz,
        change,
        signatures,
        margins,
        transitions,
        transition_matrix,
        entry,
        by_metadata,
        linkage: crate::linkage::ward(
            &crate::linkage::readout_distances(&a.readout_weight, c, d),
            c,
        ),
        predictions: preds,
    })
}

/// `networks_compared.csv` row: two networks' accuracies, one step of each, on the same images,
/// paired — the images only `a` classifies correctly, those only `b` does — with the exact
/// McNemar test of the difference.
#[derive(Debug, Clone, PartialEq)]
pub struct PairRow {
    pub a: String,
    pub b: String,
    /// The steps compared: the same step of both, or each network's last.
    pub step_a: usize,
    pub step_b: usize,
    pub accuracy_a: f64,
    pub accuracy_b: f64,
    pub only_a: usize,
    pub only_b: usize,
    pub p: f64,
}

/// Whether two recordings hold the same images in the same order: as many, the same labels,
/// and the same stimulus ids where both have them.
pub fn same_images(a: &Activations, b: &Activations) -> bool {
    a.n == b.n
        && a.labels == b.labels
        && match (&a.stimulus_ids, &b.stimulus_ids) {
            (Some(x), Some(y)) => x == y,
            _ => true,
        }
}

/// Every pair of networks (in the order given) recorded on the same images, compared at each
/// step both have and, when their step counts differ, last step against last step. Pairs of
/// recordings of different images are left out ([`same_images`]).
pub fn compare_networks(nets: &[(&str, &Activations, &Dynamics)]) -> Vec<PairRow> {
    let mut rows = Vec::new();
    for (x, &(na, aa, da)) in nets.iter().enumerate() {
        for &(nb, ab, db) in &nets[x + 1..] {
            if !same_images(aa, ab) || da.n != aa.n || db.n != ab.n {
                continue;
            }
            let mut steps: Vec<(usize, usize)> = (0..da.t.min(db.t)).map(|t| (t, t)).collect();
            if da.t != db.t && da.t > 0 && db.t > 0 {
                steps.push((da.t - 1, db.t - 1));
            }
            for (sa, sb) in steps {
                let ok_a = |i: usize| da.predictions[sa][i] == aa.labels[i];
                let ok_b = |i: usize| db.predictions[sb][i] == ab.labels[i];
                let only_a = (0..aa.n).filter(|&i| ok_a(i) && !ok_b(i)).count();
                let only_b = (0..aa.n).filter(|&i| !ok_a(i) && ok_b(i)).count();
                rows.push(PairRow {
                    a: na.to_string(),
                    b: nb.to_string(),
                    step_a: sa,
                    step_b: sb,
                    accuracy_a: da.accuracy[sa],
                    accuracy_b: db.accuracy[sb],
                    only_a,
                    only_b,
                    p: mcnemar_exact(only_a, only_b),
                });
            }
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_follow_the_reference_rules() {
        // constant → stable at 0
        assert_eq!(classify(&[2, 2, 2, 2], 2).t_stable, Some(0));
        assert_eq!(classify(&[2, 2, 2, 2], 2).category, Category::StableCorrect);
        // settles at 2 into the correct class
        let d = classify(&[0, 1, 2, 2], 2);
        assert_eq!((d.category, d.t_stable), (Category::StableCorrect, Some(2)));
        // final class seen before its final run: unstable (correct, first seen at 0)
        let d = classify(&[2, 1, 2, 2], 2);
        assert_eq!(
            (d.category, d.t_first_correct),
            (Category::UnstableCorrect, Some(0))
        );
        // last two differ: unstable; never correct
        let d = classify(&[0, 0, 1, 0], 2);
        assert_eq!(d.category, Category::UnstableIncorrect);
        // stable in a wrong class
        let d = classify(&[2, 1, 1, 1], 2);
        assert_eq!(
            (d.category, d.t_stable, d.final_class),
            (Category::StableIncorrect, Some(1), Some(1))
        );
        // one step
        assert_eq!(classify(&[3], 3).category, Category::StableCorrect);
    }

    #[test]
    fn horizon_matches_the_reference_main_net() {
        // t_stable histogram of the reference's main network (domain notes §1.7): horizon 8.
        let h = [9609, 917, 627, 411, 285, 219, 159, 103, 88, 0];
        assert_eq!(horizon(&h), 8);
        assert_eq!(horizon(&[5, 5]), 2);
    }
}
