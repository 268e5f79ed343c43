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

use crate::stats::{mean_ci, nan_median, pearson, percentile, spearman_brown};

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
}

/// The random repetition halves used for ceilings and consistency: `(first, second)` masks
/// over repetition indices.
pub fn repetition_halves(
    n_reps: usize,
    n: usize,
    seed: u64,
    name: &str,
) -> Vec<(Vec<bool>, Vec<bool>)> {
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
    let mut averaged = Vec::with_capacity(halves.len());
    for (a, b) in &halves {
        averaged.push((rec.average(a)?, rec.average(b)?));
    }
    // Statistic over a list of stimulus rows: per halving, per site SB-corrected r; the
    // median over sites per halving; returns ([halving] medians, [site] mean over halvings).
    let stat = |bin: usize, rows: &[usize]| -> (Vec<f64>, Vec<f64>) {
        let per: Vec<Vec<f64>> = averaged
            .iter()
            .map(|(h1, h2)| {
                sites
                    .iter()
                    .map(|&k| {
                        let r = pearson(
                            &site_values(h1, nk, nb, k, bin, rows),
                            &site_values(h2, nk, nb, k, bin, rows),
                        );
                        spearman_brown(r, 2.0)
                    })
                    .collect()
            })
            .collect();
        let medians = per.iter().map(|v| nan_median(v)).collect();
        let per_site = (0..sites.len())
            .map(|i| mean_ci(&per.iter().map(|v| v[i]).collect::<Vec<_>>()).0)
            .collect();
        (medians, per_site)
    };
    let ns = all.len();
    Ok((0..nb)
        .into_par_iter()
        .map(|bin| {
            let (medians, per_site) = stat(bin, &all);
            let value = mean_ci(&medians).0;
            let boots: Vec<f64> = (0..CEILING_BOOTSTRAPS)
                .map(|i| {
                    let mut rng = stream(seed, "ceiling-bootstrap", &[bin as u64, i as u64]);
                    let rows: Vec<usize> = (0..ns)
                        .map(|_| (rng.next_u64() % ns as u64) as usize)
                        .collect();
                    mean_ci(&stat(bin, &rows).0).0
                })
                .collect();
            BinCeiling {
                bin,
                value,
                ci_low: percentile(&boots, 2.5),
                ci_high: percentile(&boots, 97.5),
                per_site,
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
