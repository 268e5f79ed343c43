//! Split-half noise ceilings per time bin, as Brain-Score's `InternalConsistency` +
//! `TemporalCeiling`: repetitions are split into two halves (`n_splits` random halvings), each
//! half is averaged per stimulus, Pearson r per neuroid across stimuli, Spearman–Brown
//! corrected with n = 2, median over the region's neuroids; the ceiling is the mean over
//! halvings.

use crate::cv::shuffle_splits;
use crate::error::{Result, file_err};
use crate::recordings::{Recordings, site_values};
use crate::stats::{mean_ci, nan_median, pearson, spearman_brown};

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
}

/// The random repetition halves used for ceilings and consistency: `(first, second)` masks
/// over repetition indices.
pub fn repetition_halves(n_reps: usize, n: usize, seed: u64, name: &str) -> Vec<(Vec<bool>, Vec<bool>)> {
    shuffle_splits(n_reps, None, n, 0.5, seed, name)
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

/// Split-half ceilings of `sites` for every bin. Needs at least two repetitions.
pub fn split_half_ceiling(
    rec: &Recordings,
    sites: &[usize],
    n_splits: usize,
    seed: u64,
) -> Result<Vec<BinCeiling>> {
    if rec.n_reps < 2 {
        return Err(file_err(
            &rec.source,
            "a split-half ceiling needs at least 2 repetitions per stimulus (coordinate `repetition`); this assembly has 1",
        ));
    }
    let (nk, nb) = (rec.n_neuroids(), rec.n_bins());
    let all: Vec<usize> = (0..rec.n_stimuli()).collect();
    let halves = repetition_halves(rec.n_reps, n_splits, seed, "ceiling-halves");
    let mut per_split: Vec<Vec<Vec<f64>>> = Vec::with_capacity(halves.len()); // [split][bin][site]
    for (a, b) in &halves {
        let (h1, h2) = (rec.average(a)?, rec.average(b)?);
        per_split.push(
            (0..nb)
                .map(|bin| {
                    sites
                        .iter()
                        .map(|&k| {
                            let r = pearson(
                                &site_values(&h1, nk, nb, k, bin, &all),
                                &site_values(&h2, nk, nb, k, bin, &all),
                            );
                            spearman_brown(r, 2.0)
                        })
                        .collect()
                })
                .collect(),
        );
    }
    Ok((0..nb)
        .map(|bin| {
            let medians: Vec<f64> = per_split.iter().map(|s| nan_median(&s[bin])).collect();
            let (value, ci_low, ci_high) = mean_ci(&medians);
            let per_site = (0..sites.len())
                .map(|i| {
                    let v: Vec<f64> = per_split.iter().map(|s| s[bin][i]).collect();
                    mean_ci(&v).0
                })
                .collect();
            BinCeiling { bin, value, ci_low, ci_high, per_site }
        })
        .collect())
}
