//! Split-half noise ceilings per time bin, as Brain-Score's `InternalConsistency` +
//! `TemporalCeiling`: repetitions are split into two halves (`n_splits` random halvings), each
//! half is averaged per stimulus, Pearson r per neuroid across stimuli, Spearman–Brown
//! corrected with n = 2, median over the region's neuroids; the ceiling is the mean over
//! halvings. Its 95 % interval is a percentile bootstrap over stimuli (200 resamples of the
//! same statistic), so it reflects the sampling of stimuli, not only the choice of halves.

use crate::cv::shuffle_splits;
use crate::error::{Result, file_err};
use crate::recordings::{Recordings, site_values};
use rand::Rng;
use rayon::prelude::*;
use ventral_core::rng::stream;

use crate::stats::{nan_median, pearson, percentile, spearman_brown};

/// Stimulus resamples for the ceiling interval.
pub const CEILING_BOOTSTRAPS: usize = 200;

/// Ceiling of one region in one bin.
#[derive(Debug, Clone)]
pub struct BinCeiling {
    pub bin: usize,
    /// Mean over halvings of the median over neuroids.
    pub value: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    /// Per neuroid (in the order of `sites`): SB-corrected r averaged over halvings.
    pub per_site: Vec<f64>,
    /// Per halving: the median over neuroids (Brain-Score's `ceiling.raw` reduced over
    /// neuroids); `value` is their mean.
    pub per_halving: Vec<f64>,
}

/// The random repetition halves used for ceilings and consistency: `(first, second)` masks
/// over repetition indices.
pub fn repetition_halves(n_reps: usize, n: usize, seed: u64, name: &str) -> Vec<Halving> {
    halving_masks(n_reps, shuffle_splits(n_reps, None, n, 0.5, seed, name))
}

/// Splits over repetition indices as `(train, test)` masks of length `n_reps`.
fn halving_masks(n_reps: usize, splits: Vec<crate::cv::Split>) -> Vec<Halving> {
    splits
        .into_iter()
        .map(|s| {
            let mut a = vec![false; n_reps];
            let mut b = vec![false; n_reps];
            s.train.iter().for_each(|&i| a[i] = true);
            s.test.iter().for_each(|&i| b[i] = true);
            (a, b)
        })
        .collect()
}

/// Trial averages of the two halves of each halving: `([S, K, B], [S, K, B])`.
type HalfAverages = (Vec<f64>, Vec<f64>);

/// One bin of every halving's two half-averages, site-major: per halving, `[site][stimulus]`
/// for each half, so that resampled stimulus rows are gathered from contiguous memory.
struct BinColumns {
    halves: Vec<(Vec<f64>, Vec<f64>)>,
    n_sites: usize,
    n_stimuli: usize,
}

impl BinColumns {
    fn new(averaged: &[HalfAverages], sites: &[usize], nk: usize, nb: usize, bin: usize) -> Self {
        let n_stimuli = averaged
            .first()
            .map_or(0, |(h, _)| h.len() / (nk * nb).max(1));
        let all: Vec<usize> = (0..n_stimuli).collect();
        let column = |arr: &[f64]| -> Vec<f64> {
            sites
                .iter()
                .flat_map(|&k| site_values(arr, nk, nb, k, bin, &all))
                .collect()
        };
        BinColumns {
            halves: averaged
                .iter()
                .map(|(h1, h2)| (column(h1), column(h2)))
                .collect(),
            n_sites: sites.len(),
            n_stimuli,
        }
    }

    /// Statistic over a list of stimulus rows: per halving, per site the Spearman–Brown-
    /// corrected (n = 2) Pearson r between the halves' averages; returns ([halving] median over
    /// sites, [site] mean over halvings — empty unless `per_site`).
    fn stats(&self, rows: &[usize], per_site: bool) -> (Vec<f64>, Vec<f64>) {
        let ns = self.n_stimuli;
        let (mut x, mut y) = (vec![0.0; rows.len()], vec![0.0; rows.len()]);
        let per: Vec<Vec<f64>> = self
            .halves
            .iter()
            .map(|(h1, h2)| {
                (0..self.n_sites)
                    .map(|k| {
                        let (c1, c2) = (&h1[k * ns..(k + 1) * ns], &h2[k * ns..(k + 1) * ns]);
                        for (i, &r) in rows.iter().enumerate() {
                            x[i] = c1[r];
                            y[i] = c2[r];
                        }
                        spearman_brown(pearson(&x, &y), 2.0)
                    })
                    .collect()
            })
            .collect();
        let medians = per.iter().map(|v| nan_median(v)).collect();
        let per_site = if per_site {
            (0..self.n_sites)
                .map(|i| finite_mean(per.iter().map(|v| v[i])))
                .collect()
        } else {
            Vec::new()
        };
        (medians, per_site)
    }
}

/// The mean of the finite values (NaN when none): `mean_ci(..).0` without its t-quantile.
fn finite_mean(values: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = values.filter(|a| a.is_finite()).collect();
    if v.is_empty() {
        f64::NAN
    } else {
        crate::stats::mean(&v)
    }
}

/// The split-half ceiling of `sites` in one bin for given repetition halvings (masks over
/// repetition indices), over all stimuli: the mean over halvings of the median over sites.
pub fn ceiling_for_halves(
    rec: &Recordings,
    sites: &[usize],
    bin: usize,
    halves: &[(Vec<bool>, Vec<bool>)],
) -> Result<f64> {
    let mut averaged = Vec::with_capacity(halves.len());
    for (a, b) in halves {
        averaged.push((rec.average(a)?, rec.average(b)?));
    }
    let rows: Vec<usize> = (0..rec.n_stimuli()).collect();
    let cols = BinColumns::new(&averaged, sites, rec.n_neuroids(), rec.n_bins(), bin);
    Ok(finite_mean(cols.stats(&rows, false).0.into_iter()))
}

/// A halving of the repetitions: (first half, second half) as masks over repetition indices.
pub type Halving = (Vec<bool>, Vec<bool>);

/// Brain-Score's repetition halves: `ShuffleSplit(n_splits, train_size=0.5,
/// random_state=seed)` over the sorted unique repetition values (its `InternalConsistency` via
/// `CrossValidationSingle(split_coord='repetition', unique_split_values=True)`), as masks.
pub fn brainscore_halves(
    n_reps: usize,
    n: usize,
    seed: u64,
) -> std::result::Result<Vec<Halving>, String> {
    let seed = u32::try_from(seed)
        .map_err(|_| format!("Brain-Score's draws need a 32-bit seed, got {seed}"))?;
    Ok(halving_masks(
        n_reps,
        crate::numpy_rng::shuffle_split(n_reps, n, 0.5, seed)?,
    ))
}

/// Split-half ceilings of `sites` for every bin (ventral's halvings from the stream
/// `ceiling-halves`). Needs at least two repetitions.
pub fn split_half_ceiling(
    rec: &Recordings,
    sites: &[usize],
    n_splits: usize,
    seed: u64,
) -> Result<Vec<BinCeiling>> {
    check_repetitions(rec)?;
    let halves = repetition_halves(rec.n_reps, n_splits, seed, "ceiling-halves");
    split_half_ceiling_from(rec, sites, &halves, seed)
}

fn check_repetitions(rec: &Recordings) -> Result<()> {
    if rec.n_reps < 2 {
        return Err(file_err(
            &rec.source,
            "a split-half ceiling needs at least 2 repetitions per stimulus (coordinate `repetition`); this assembly has 1",
        ));
    }
    Ok(())
}

/// Split-half ceilings of `sites` for every bin over the given repetition halvings; `seed`
/// drives the bootstrap interval over stimuli.
pub fn split_half_ceiling_from(
    rec: &Recordings,
    sites: &[usize],
    halves: &[(Vec<bool>, Vec<bool>)],
    seed: u64,
) -> Result<Vec<BinCeiling>> {
    check_repetitions(rec)?;
    let (nk, nb) = (rec.n_neuroids(), rec.n_bins());
    let all: Vec<usize> = (0..rec.n_stimuli()).collect();
    let mut averaged = Vec::with_capacity(halves.len());
    for (a, b) in halves {
        averaged.push((rec.average(a)?, rec.average(b)?));
    }
    let ns = all.len();
    Ok((0..nb)
        .into_par_iter()
        .map(|bin| {
            let cols = BinColumns::new(&averaged, sites, nk, nb, bin);
            let (medians, per_site) = cols.stats(&all, true);
            let value = finite_mean(medians.iter().copied());
            let boots: Vec<f64> = (0..CEILING_BOOTSTRAPS)
                .map(|i| {
                    let mut rng = stream(seed, "ceiling-bootstrap", &[bin as u64, i as u64]);
                    let rows: Vec<usize> = (0..ns)
                        .map(|_| (rng.next_u64() % ns as u64) as usize)
                        .collect();
                    finite_mean(cols.stats(&rows, false).0.into_iter())
                })
                .collect();
            BinCeiling {
                bin,
                value,
                ci_low: percentile(&boots, 2.5),
                ci_high: percentile(&boots, 97.5),
                per_site,
                per_halving: medians,
            }
        })
        .collect())
}

/// Response latency of a region from its ceilings: the start of the first bin whose ceiling
/// reaches half the peak ceiling (None when no bin has a positive ceiling). With one step per
/// bin this is where reliable stimulus-driven signal begins.
pub fn latency_from_ceiling(ceil: &[BinCeiling], bin_starts: &[f64]) -> Option<(f64, f64)> {
    let peak = ceil
        .iter()
        .map(|c| c.value)
        .filter(|v| v.is_finite())
        .fold(f64::NEG_INFINITY, f64::max);
    if peak.is_nan() || peak <= 0.0 {
        return None;
    }
    ceil.iter()
        .find(|c| c.value >= 0.5 * peak)
        .map(|c| (bin_starts[c.bin], peak))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assembly::{Assembly, Coord, CoordValues};

    // Brain-Score's split-half consistency (InternalConsistency: per neuroid Pearson r of the
    // two halves' trial averages, Spearman–Brown n = 2, median over neuroids, mean over
    // halvings) for fixed halvings, in NumPy:
    // rng = np.random.default_rng(3); S, R, K = 6, 4, 3
    // data = rng.integers(0, 10, size=(S, 1, K)) + rng.integers(0, 8, size=(S, R, K))
    // halves = [([0,2],[1,3]), ([0,1],[2,3]), ([1,2],[0,3])]
    // meds = []
    // for a, b in halves:
    //     h1, h2 = data[:, a, :].mean(1), data[:, b, :].mean(1)
    //     r = [np.corrcoef(h1[:, k], h2[:, k])[0, 1] for k in range(K)]
    //     meds.append(np.median([2 * x / (1 + x) for x in r]))
    // np.mean(meds) -> 0.8931249622803318
    const DATA: [f64; 72] = [
        8., 0., 4., 11., 7., 5., 11., 3., 6., 12., 1., 6., 8., 8., 14., 4., 3., 13., 7., 6., 14.,
        4., 8., 8., 8., 12., 7., 10., 6., 2., 8., 12., 5., 12., 6., 3., 1., 9., 7., 0., 5., 9., 4.,
        5., 6., 0., 7., 9., 10., 11., 9., 7., 8., 7., 7., 6., 5., 11., 6., 7., 6., 7., 10., 7.,
        12., 12., 1., 11., 8., 7., 13., 10.,
    ];

    #[test]
    fn split_half_ceiling_matches_numpy_for_fixed_halves() {
        let (s, r, k) = (6, 4, 3);
        let mut coords = std::collections::BTreeMap::new();
        let pres = |v| Coord {
            dim: "presentation".into(),
            values: v,
        };
        let neu = |v| Coord {
            dim: "neuroid".into(),
            values: v,
        };
        coords.insert(
            "stimulus_id".into(),
            pres(CoordValues::Str(
                (0..s * r).map(|p| format!("s{}", p / r)).collect(),
            )),
        );
        coords.insert(
            "repetition".into(),
            pres(CoordValues::Int(
                (0..s * r).map(|p| (p % r) as i64).collect(),
            )),
        );
        coords.insert(
            "neuroid_id".into(),
            neu(CoordValues::Str((0..k).map(|j| format!("n{j}")).collect())),
        );
        coords.insert("region".into(), neu(CoordValues::Str(vec!["IT".into(); k])));
        for (name, v) in [("time_bin_start", 70), ("time_bin_end", 80)] {
            coords.insert(
                name.into(),
                Coord {
                    dim: "time_bin".into(),
                    values: CoordValues::Int(vec![v]),
                },
            );
        }
        let asm = Assembly {
            dims: vec!["presentation".into(), "neuroid".into(), "time_bin".into()],
            shape: vec![s * r, k, 1],
            data: DATA.to_vec(),
            coords,
            attrs: Default::default(),
        };
        let rec = Recordings::from_assembly(&asm, "golden").unwrap();
        let mask = |idx: &[usize]| (0..r).map(|i| idx.contains(&i)).collect::<Vec<bool>>();
        let halves = vec![
            (mask(&[0, 2]), mask(&[1, 3])),
            (mask(&[0, 1]), mask(&[2, 3])),
            (mask(&[1, 2]), mask(&[0, 3])),
        ];
        let c = ceiling_for_halves(&rec, &[0, 1, 2], 0, &halves).unwrap();
        assert!((c - 0.8931249622803318).abs() < 1e-12, "{c}");
    }
}
