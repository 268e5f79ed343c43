//! Representational similarity analysis: RDMs and their comparison.
//!
//! RDMs are condensed upper triangles in SciPy's `pdist` order (pairs (i, j), i < j, row by
//! row). Comparisons are Spearman's ρ (average ranks) and Kendall's τ-a (O(m log m), Knight's
//! algorithm, so RDMs of thousands of stimuli compare in milliseconds).
//!
//! # Shapes
//! - `x`: [n, d] row-major (n stimuli)
//! - RDM: [n (n − 1) / 2]

use crate::error::{NeuralError, Result};
use crate::stats::{mean, spearman};

/// Dissimilarity measure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RdmKind {
    /// 1 − Pearson r between stimulus patterns (`pdist(metric="correlation")`).
    Correlation,
    /// 1 − cosine (`pdist(metric="cosine")`).
    Cosine,
    /// Euclidean distance (`pdist(metric="euclidean")`).
    Euclidean,
}

impl RdmKind {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "correlation" => Ok(Self::Correlation),
            "cosine" => Ok(Self::Cosine),
            "euclidean" => Ok(Self::Euclidean),
            o => Err(NeuralError::Invalid(format!(
                "unknown RDM `{o}` (correlation, cosine, euclidean, crossval-euclidean)"
            ))),
        }
    }
}

/// Condensed RDM of the rows of `x` ([n, d]).
pub fn rdm(x: &[f64], n: usize, d: usize, kind: RdmKind) -> Vec<f64> {
    // Pre-centre / normalise rows once.
    let rows: Vec<Vec<f64>> = (0..n)
        .map(|i| {
            let r = &x[i * d..(i + 1) * d];
            match kind {
                RdmKind::Correlation => {
                    let m = mean(r);
                    let c: Vec<f64> = r.iter().map(|v| v - m).collect();
                    let norm = c.iter().map(|v| v * v).sum::<f64>().sqrt();
                    c.iter().map(|v| v / norm).collect()
                }
                RdmKind::Cosine => {
                    let norm = r.iter().map(|v| v * v).sum::<f64>().sqrt();
                    r.iter().map(|v| v / norm).collect()
                }
                RdmKind::Euclidean => r.to_vec(),
            }
        })
        .collect();
    let mut out = Vec::with_capacity(n * n.saturating_sub(1) / 2);
    for i in 0..n {
        for j in i + 1..n {
            let (a, b) = (&rows[i], &rows[j]);
            out.push(match kind {
                RdmKind::Correlation | RdmKind::Cosine => {
                    1.0 - a.iter().zip(b).map(|(p, q)| p * q).sum::<f64>()
                }
                RdmKind::Euclidean => a
                    .iter()
                    .zip(b)
                    .map(|(p, q)| (p - q) * (p - q))
                    .sum::<f64>()
                    .sqrt(),
            });
        }
    }
    out
}

/// Cross-validated squared Euclidean distance between two independent measurements `a`, `b`
/// ([n, d] each, e.g. the averages of two halves of the trials): (aᵢ − aⱼ)·(bᵢ − bⱼ) / d,
/// unbiased by noise (it can be negative). With `a = b` it is the squared Euclidean / d.
pub fn crossval_euclidean(a: &[f64], b: &[f64], n: usize, d: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(n * n.saturating_sub(1) / 2);
    for i in 0..n {
        for j in i + 1..n {
            let s: f64 = (0..d)
                .map(|k| (a[i * d + k] - a[j * d + k]) * (b[i * d + k] - b[j * d + k]))
                .sum();
            out.push(s / d as f64);
        }
    }
    out
}

/// Kendall's τ-a = (concordant − discordant) / (m (m − 1) / 2), ties count as neither;
/// O(m log m).
pub fn kendall_tau_a(x: &[f64], y: &[f64]) -> f64 {
    let m = x.len().min(y.len());
    if m < 2 {
        return f64::NAN;
    }
    let mut idx: Vec<usize> = (0..m).collect();
    idx.sort_by(|&i, &j| x[i].total_cmp(&x[j]).then(y[i].total_cmp(&y[j])));
    // Pairs tied in x, and tied in both.
    let (mut xtie, mut ntie) = (0u64, 0u64);
    let mut i = 0;
    while i < m {
        let mut j = i + 1;
        while j < m && x[idx[j]] == x[idx[i]] {
            j += 1;
        }
        let c = (j - i) as u64;
        xtie += c * (c - 1) / 2;
        let mut k = i;
        while k < j {
            let mut l = k + 1;
            while l < j && y[idx[l]] == y[idx[k]] {
                l += 1;
            }
            let c = (l - k) as u64;
            ntie += c * (c - 1) / 2;
            k = l;
        }
        i = j;
    }
    // Merge sort on y counting swaps (= discordant pairs).
    let mut ys: Vec<f64> = idx.iter().map(|&i| y[i]).collect();
    let mut buf = vec![0.0; m];
    let swaps = merge_count(&mut ys, &mut buf);
    let mut ytie = 0u64;
    let mut i = 0;
    while i < m {
        let mut j = i + 1;
        while j < m && ys[j] == ys[i] {
            j += 1;
        }
        let c = (j - i) as u64;
        ytie += c * (c - 1) / 2;
        i = j;
    }
    let tot = (m as u64) * (m as u64 - 1) / 2;
    let con_minus_dis = tot as f64 - xtie as f64 - ytie as f64 + ntie as f64 - 2.0 * swaps as f64;
    con_minus_dis / tot as f64
}

fn merge_count(v: &mut [f64], buf: &mut [f64]) -> u64 {
    let n = v.len();
    if n < 2 {
        return 0;
    }
    let mid = n / 2;
    let mut s = {
        let (l, r) = v.split_at_mut(mid);
        let (bl, br) = buf.split_at_mut(mid);
        merge_count(l, bl) + merge_count(r, br)
    };
    let (mut i, mut j, mut k) = (0, mid, 0);
    while i < mid && j < n {
        if v[j] < v[i] {
            buf[k] = v[j];
            s += (mid - i) as u64;
            j += 1;
        } else {
            buf[k] = v[i];
            i += 1;
        }
        k += 1;
    }
    while i < mid {
        buf[k] = v[i];
        i += 1;
        k += 1;
    }
    while j < n {
        buf[k] = v[j];
        j += 1;
        k += 1;
    }
    v.copy_from_slice(&buf[..n]);
    s
}

/// RDM comparison.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Compare {
    Spearman,
    KendallTauA,
}

impl Compare {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "spearman" => Ok(Self::Spearman),
            "kendall-a" | "kendall_tau_a" => Ok(Self::KendallTauA),
            o => Err(NeuralError::Invalid(format!(
                "unknown comparison `{o}` (spearman, kendall-a)"
            ))),
        }
    }
    pub fn apply(self, a: &[f64], b: &[f64]) -> f64 {
        match self {
            Compare::Spearman => spearman(a, b),
            Compare::KendallTauA => kendall_tau_a(a, b),
        }
    }
}

/// Entries of a condensed RDM of `n` stimuli for the pairs of a stimulus resample: all pairs
/// (p, q), p < q in the resample, whose stimuli differ (rsatoolbox's bootstrap convention).
pub fn resample_pairs(n: usize, sample: &[usize]) -> Vec<usize> {
    let mut out = Vec::new();
    for p in 0..sample.len() {
        for q in p + 1..sample.len() {
            let (i, j) = (sample[p].min(sample[q]), sample[p].max(sample[q]));
            if i != j {
                out.push(i * n - i * (i + 1) / 2 + (j - i - 1));
            }
        }
    }
    out
}

/// RDM choice for [`neural_rdms`] and [`model_rdms`]: a plain RDM, or cross-validated Euclidean (neural side
/// from two halves of the repetitions, model side from its deterministic features, where it
/// equals the squared Euclidean / d).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RdmChoice {
    Plain(RdmKind),
    CrossValEuclidean,
}

impl RdmChoice {
    pub fn parse(s: &str) -> Result<Self> {
        if s == "crossval-euclidean" {
            Ok(Self::CrossValEuclidean)
        } else {
            RdmKind::parse(s).map(Self::Plain)
        }
    }
}

/// Condensed RDMs, [layer or region][step or bin][pair].
pub type Rdms = Vec<Vec<Vec<f64>>>;

/// One cell of the model-time × neural-time RSA matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct RsaCell {
    pub layer: usize,
    pub timestep: usize,
    pub region: usize,
    pub bin: usize,
    pub value: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

/// Neural RDMs per region (in [`Recordings::region_sites`] order) and bin, from the
/// repetition-averaged responses, or for cross-validated Euclidean from the even/odd
/// repetition halves.
///
/// [`Recordings::region_sites`]: crate::recordings::Recordings::region_sites
pub fn neural_rdms(rec: &crate::recordings::Recordings, choice: RdmChoice) -> Result<Rdms> {
    use rayon::prelude::*;
    let n = rec.n_stimuli();
    if n < 3 {
        return Err(NeuralError::Invalid(format!(
            "{}: RSA needs at least 3 stimuli",
            rec.source
        )));
    }
    let (nk, nb) = (rec.n_neuroids(), rec.n_bins());
    let pattern = |arr: &[f64], sites: &[usize], bin: usize| -> Vec<f64> {
        (0..n)
            .flat_map(|s| sites.iter().map(move |&k| arr[(s * nk + k) * nb + bin]))
            .collect()
    };
    // Where each bin's RDM comes from.
    enum Source {
        Mean(RdmKind),
        Halves(Vec<f64>, Vec<f64>),
    }
    let source = match choice {
        RdmChoice::Plain(k) => Source::Mean(k),
        RdmChoice::CrossValEuclidean => {
            if rec.n_reps < 2 {
                return Err(crate::error::file_err(
                    &rec.source,
                    "cross-validated distances need at least 2 repetitions (coordinate `repetition`)",
                ));
            }
            let a: Vec<bool> = (0..rec.n_reps).map(|r| r % 2 == 0).collect();
            let b: Vec<bool> = a.iter().map(|x| !x).collect();
            Source::Halves(rec.average(&a)?, rec.average(&b)?)
        }
    };
    Ok(rec
        .region_sites()
        .iter()
        .map(|(_, sites)| {
            (0..nb)
                .into_par_iter()
                .map(|bin| match &source {
                    Source::Halves(h1, h2) => crossval_euclidean(
                        &pattern(h1, sites, bin),
                        &pattern(h2, sites, bin),
                        n,
                        sites.len(),
                    ),
                    Source::Mean(k) => rdm(&pattern(&rec.mean, sites, bin), n, sites.len(), *k),
                })
                .collect()
        })
        .collect())
}

/// Model RDMs per layer and step over the aligned stimuli (`feats.rows`).
pub fn model_rdms(feats: &crate::features::Features, choice: RdmChoice) -> Rdms {
    use rayon::prelude::*;
    let n = feats.rows.len();
    feats
        .layers
        .iter()
        .map(|l| {
            (0..l.steps)
                .into_par_iter()
                .map(|t| {
                    let x: Vec<f64> = (0..n)
                        .flat_map(|s| (0..l.d).map(move |j| l.at(t, feats.rows[s], j) as f64))
                        .collect();
                    match choice {
                        RdmChoice::Plain(k) => rdm(&x, n, l.d, k),
                        RdmChoice::CrossValEuclidean => crossval_euclidean(&x, &x, n, l.d),
                    }
                })
                .collect()
        })
        .collect()
}

/// RDM entries of `bootstraps` stimulus resamples (with replacement, stream `rsa-bootstrap`).
pub fn bootstrap_pairs(n: usize, bootstraps: usize, seed: u64) -> Vec<Vec<usize>> {
    use rand::Rng;
    (0..bootstraps)
        .map(|b| {
            let mut rng = ventral_core::rng::stream(seed, "rsa-bootstrap", &[b as u64]);
            let s: Vec<usize> = (0..n)
                .map(|_| (rng.next_u64() % n as u64) as usize)
                .collect();
            resample_pairs(n, &s)
        })
        .collect()
}

/// Compares every model RDM ([layer][step]) with every neural RDM ([region][bin]); intervals
/// are percentiles over the resampled entries `samples` (none when empty). Cells come in
/// (layer, step, region, bin) order.
pub fn compare_rdms(
    model: &Rdms,
    neural: &Rdms,
    compare: Compare,
    samples: &[Vec<usize>],
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Vec<RsaCell> {
    use rayon::prelude::*;
    let done = std::sync::atomic::AtomicUsize::new(0);
    let mut jobs = Vec::new();
    for (l, lm) in model.iter().enumerate() {
        for t in 0..lm.len() {
            for (r, rn) in neural.iter().enumerate() {
                for bin in 0..rn.len() {
                    jobs.push((l, t, r, bin));
                }
            }
        }
    }
    jobs.par_iter()
        .map(|&(l, t, r, bin)| {
            let (a, b) = (&model[l][t], &neural[r][bin]);
            let value = compare.apply(a, b);
            let boots: Vec<f64> = samples
                .iter()
                .map(|idx| {
                    let sa: Vec<f64> = idx.iter().map(|&i| a[i]).collect();
                    let sb: Vec<f64> = idx.iter().map(|&i| b[i]).collect();
                    compare.apply(&sa, &sb)
                })
                .collect();
            progress(
                done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1,
                jobs.len(),
            );
            let (ci_low, ci_high) = if boots.is_empty() {
                (f64::NAN, f64::NAN)
            } else {
                (
                    crate::stats::percentile(&boots, 2.5),
                    crate::stats::percentile(&boots, 97.5),
                )
            };
            RsaCell {
                layer: l,
                timestep: t,
                region: r,
                bin,
                value,
                ci_low,
                ci_high,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::approx_constant)]
    use super::*;

    // Generated with SciPy 1.16 / NumPy 2.4:
    // X = np.array([[1, 2, 0.5], [2, 1, 3], [0, 0, 1], [4, 2, 2], [1, 1, 1.5]])
    // pdist(X, "correlation"), pdist(X, "cosine"), pdist(X, "euclidean") (printed below)
    // a, b = pdist(X, "euclidean"), pdist(X, "cosine")
    // spearmanr(a, b)[0] -> see SPEARMAN; tau-a by brute force -> see TAU_A
    const X: [f64; 15] = [
        1.0, 2.0, 0.5, 2.0, 1.0, 3.0, 0.0, 0.0, 1.0, 4.0, 2.0, 2.0, 1.0, 1.0, 1.5,
    ];

    const CORR: [f64; 10] = [
        1.9819805060619657,
        1.7559289460184546,
        1.1889822365046137,
        1.7559289460184546,
        0.13397459621556151,
        1.0,
        0.13397459621556151,
        1.5,
        0.0,
        1.5,
    ];
    const COS: [f64; 10] = [
        0.3584669721282152,
        0.7817821097640076,
        0.1982162742627267,
        0.2061158139625553,
        0.1982162742627268,
        0.12712843905603044,
        0.02769441467175338,
        0.5917517095361369,
        0.2723931248910011,
        0.10886721132099308,
    ];
    const EUC: [f64; 10] = [
        2.8722813232690143,
        2.29128784747792,
        3.3541019662496847,
        1.4142135623730951,
        3.0,
        2.449489742783178,
        1.8027756377319946,
        4.58257569495584,
        1.5,
        3.2015621187164243,
    ];
    const SPEARMAN: f64 = 0.006060606060606061;
    const TAU_A: f64 = 0.022222222222222223;

    #[test]
    fn rdms_and_comparisons_match_scipy() {
        for (kind, want) in [
            (RdmKind::Correlation, CORR),
            (RdmKind::Cosine, COS),
            (RdmKind::Euclidean, EUC),
        ] {
            for (g, w) in rdm(&X, 5, 3, kind).iter().zip(want) {
                assert!((g - w).abs() < 1e-12, "{kind:?}: {g} vs {w}");
            }
        }
        let (a, b) = (
            rdm(&X, 5, 3, RdmKind::Euclidean),
            rdm(&X, 5, 3, RdmKind::Cosine),
        );
        assert!((Compare::Spearman.apply(&a, &b) - SPEARMAN).abs() < 1e-12);
        assert!((Compare::KendallTauA.apply(&a, &b) - TAU_A).abs() < 1e-12);
    }

    #[test]
    fn kendall_fast_equals_brute_force_with_ties() {
        let x: [f64; 10] = [1.0, 2.0, 2.0, 3.5, 0.5, 4.0, 4.0, 4.0, 1.0, 2.0];
        let y: [f64; 10] = [2.0, 1.0, 3.0, 3.0, 0.0, 5.0, 4.5, 6.0, 2.0, 1.0];
        let mut s = 0.0;
        for i in 0..x.len() {
            for j in i + 1..x.len() {
                s += (x[i] - x[j]).signum()
                    * (y[i] - y[j]).signum()
                    * f64::from(u8::from(x[i] != x[j] && y[i] != y[j]));
            }
        }
        let brute = s / 45.0;
        assert!((kendall_tau_a(&x, &y) - brute).abs() < 1e-12);
        assert!((kendall_tau_a(&x, &y) - crate::stats::kendall_tau_a(&x, &y)).abs() < 1e-12);
    }

    #[test]
    fn resample_pairs_index_condensed_entries() {
        // n = 4: pairs (0,1)=0 (0,2)=1 (0,3)=2 (1,2)=3 (1,3)=4 (2,3)=5
        assert_eq!(resample_pairs(4, &[0, 1, 2, 3]), vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(resample_pairs(4, &[3, 1, 1]), vec![4, 4]);
        let r = rdm(&X, 5, 3, RdmKind::Euclidean);
        assert_eq!(r.len(), 10);
        let cv = crossval_euclidean(&X, &X, 5, 3);
        for (e, c) in r.iter().zip(&cv) {
            assert!((e * e / 3.0 - c).abs() < 1e-12);
        }
    }
}
