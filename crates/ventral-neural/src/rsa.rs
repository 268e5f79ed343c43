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
    /// Squared Euclidean distance divided by the number of channels: what rsatoolbox's
    /// `calc_rdm(method="euclidean")` returns (its RDM values, not SciPy's).
    SquaredEuclidean,
}

impl RdmKind {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "correlation" => Ok(Self::Correlation),
            "cosine" => Ok(Self::Cosine),
            "euclidean" => Ok(Self::Euclidean),
            "sq-euclidean" => Ok(Self::SquaredEuclidean),
            o => Err(NeuralError::Invalid(format!(
                "unknown RDM `{o}` (correlation, cosine, euclidean, sq-euclidean, crossval-euclidean)"
            ))),
        }
    }
}

/// Condensed RDM of the rows of `x` ([n, d]). Correlation and cosine distances are one GEMM of
/// the centred/normalised rows (as rsatoolbox computes them); Euclidean distances are summed
/// per pair (no cancellation between large norms).
pub fn rdm(x: &[f64], n: usize, d: usize, kind: RdmKind) -> Vec<f64> {
    use rayon::prelude::*;
    let pairs = n * n.saturating_sub(1) / 2;
    match kind {
        RdmKind::Correlation | RdmKind::Cosine => {
            // Rows as columns of a [d, n] matrix, centred (correlation) and unit-normed.
            let cols = faer::Mat::from_fn(d, n, |k, i| x[i * d + k]);
            let mut cols = cols;
            for i in 0..n {
                let c = cols.col_as_slice_mut(i);
                if kind == RdmKind::Correlation {
                    let m = mean(c);
                    c.iter_mut().for_each(|v| *v -= m);
                }
                let norm = c.iter().map(|v| v * v).sum::<f64>().sqrt();
                c.iter_mut().for_each(|v| *v /= norm);
            }
            let g = cols.transpose() * &cols; // [n, n]
            let mut out = Vec::with_capacity(pairs);
            for i in 0..n {
                for j in i + 1..n {
                    out.push(1.0 - g[(i, j)]);
                }
            }
            out
        }
        RdmKind::Euclidean | RdmKind::SquaredEuclidean => {
            let rows: Vec<Vec<f64>> = (0..n)
                .into_par_iter()
                .map(|i| {
                    let a = &x[i * d..(i + 1) * d];
                    (i + 1..n)
                        .map(|j| {
                            let b = &x[j * d..(j + 1) * d];
                            let s = a.iter().zip(b).map(|(p, q)| (p - q) * (p - q)).sum::<f64>();
                            if kind == RdmKind::Euclidean {
                                s.sqrt()
                            } else {
                                s / d as f64
                            }
                        })
                        .collect()
                })
                .collect();
            rows.concat()
        }
    }
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

/// Condensed RDMs, `[layer or region][step or bin][pair]`.
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

/// Model RDMs per layer and step over the aligned stimuli (`feats.rows`), one layer in memory
/// at a time.
pub fn model_rdms(feats: &crate::features::Features, choice: RdmChoice) -> Result<Rdms> {
    use rayon::prelude::*;
    let n = feats.rows.len();
    (0..feats.layers.len())
        .map(|li| {
            // One layer in memory at a time (read from the file when `feats` was opened
            // without data, `Features::open`); its RDMs are n(n − 1)/2 per step.
            let loaded = feats.load_layer(li)?;
            let l = &loaded;
            Ok((0..l.steps)
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
                .collect())
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

/// Average ranks of `v` centred and scaled to unit norm, so that Spearman's ρ of two RDMs is
/// the dot product of their unit ranks (rsatoolbox's `compare_spearman`: ranks, centring,
/// cosine). All NaN when every value is tied (ρ is undefined).
pub fn unit_ranks(v: &[f64]) -> Vec<f64> {
    let mut r = crate::stats::rank_average(v);
    unit_norm(&mut r);
    r
}

/// Centres and unit-norms ranks in place (NaN when all are tied).
fn unit_norm(r: &mut [f64]) {
    let m = mean(r);
    r.iter_mut().for_each(|x| *x -= m);
    let norm = r.iter().map(|x| x * x).sum::<f64>().sqrt();
    let scale = if norm > 0.0 { 1.0 / norm } else { f64::NAN };
    r.iter_mut().for_each(|x| *x *= scale);
}

/// An RDM prepared for ranking its resamples: tie groups of its entries (`None` when it holds
/// a NaN: NaNs are never tied with each other, so a resample repeating one must be ranked by
/// value).
struct Ranked<'a> {
    values: &'a [f64],
    groups: Option<(Vec<u32>, usize)>,
}

impl<'a> Ranked<'a> {
    fn new(values: &'a [f64]) -> Self {
        let groups = (!values.iter().any(|v| v.is_nan())).then(|| crate::stats::tie_groups(values));
        Ranked { values, groups }
    }

    /// Unit ranks of the entries `idx` (a resample, repeats allowed): the average rank of an
    /// entry among the resample is where its tie group starts plus half the group's count —
    /// one counting pass, the same ranks as sorting the gathered values.
    fn unit_ranks_of(&self, idx: &[usize]) -> Vec<f64> {
        let Some((groups, g)) = &self.groups else {
            return unit_ranks(&idx.iter().map(|&i| self.values[i]).collect::<Vec<_>>());
        };
        let mut counts = vec![0u32; *g];
        for &i in idx {
            counts[groups[i] as usize] += 1;
        }
        Self::ranks_from_counts(groups, &counts, idx.iter().copied())
    }

    /// Unit ranks of all entries: from the tie groups already sorted once (the same average
    /// ranks as [`unit_ranks`]'s sort, bit for bit), so an RDM is sorted once, not twice.
    fn unit_ranks_all(&self) -> Vec<f64> {
        let Some((groups, g)) = &self.groups else {
            return unit_ranks(self.values);
        };
        let mut counts = vec![0u32; *g];
        for &k in groups {
            counts[k as usize] += 1;
        }
        Self::ranks_from_counts(groups, &counts, 0..groups.len())
    }

    fn ranks_from_counts(
        groups: &[u32],
        counts: &[u32],
        idx: impl Iterator<Item = usize>,
    ) -> Vec<f64> {
        let mut avg = vec![0.0f64; counts.len()];
        let mut start = 0u64;
        for (a, &c) in avg.iter_mut().zip(counts) {
            *a = start as f64 + (f64::from(c) + 1.0) / 2.0;
            start += u64::from(c);
        }
        let mut r: Vec<f64> = idx.map(|i| avg[groups[i] as usize]).collect();
        unit_norm(&mut r);
        r
    }
}

/// Spearman ρ of every RDM in `a` with every RDM in `b`, over the entries `idx` (all when
/// `None`): each RDM ranked once, then one GEMM of the unit ranks. [a.len(), b.len()].
fn spearman_matrix(a: &[Ranked<'_>], b: &[Ranked<'_>], idx: Option<&[usize]>) -> faer::Mat<f64> {
    use rayon::prelude::*;
    let ranks = |set: &[Ranked<'_>]| {
        let cols: Vec<Vec<f64>> = set
            .par_iter()
            .map(|v| match idx {
                Some(idx) => v.unit_ranks_of(idx),
                None => v.unit_ranks_all(),
            })
            .collect();
        let m = cols.first().map_or(0, Vec::len);
        faer::Mat::from_fn(m, cols.len(), |i, c| cols[c][i])
    };
    let (ra, rb) = (ranks(a), ranks(b));
    let mut out = faer::Mat::zeros(a.len(), b.len());
    faer::linalg::matmul::matmul(
        out.as_mut(),
        faer::Accum::Replace,
        ra.transpose(),
        rb.as_ref(),
        1.0,
        faer::Par::Seq,
    );
    out
}

/// Compares every model RDM (`[layer][step]`) with every neural RDM (`[region][bin]`); intervals
/// are percentiles over the resampled entries `samples` (none when empty). Cells come in
/// (layer, step, region, bin) order. Spearman ranks each RDM once (per resample) and compares
/// all pairs by one matrix product; Kendall's τ-a compares pair by pair.
pub fn compare_rdms(
    model: &Rdms,
    neural: &Rdms,
    compare: Compare,
    samples: &[Vec<usize>],
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Vec<RsaCell> {
    use rayon::prelude::*;
    let done = std::sync::atomic::AtomicUsize::new(0);
    let ms: Vec<(usize, usize)> = model
        .iter()
        .enumerate()
        .flat_map(|(l, lm)| (0..lm.len()).map(move |t| (l, t)))
        .collect();
    let ns: Vec<(usize, usize)> = neural
        .iter()
        .enumerate()
        .flat_map(|(r, rn)| (0..rn.len()).map(move |b| (r, b)))
        .collect();
    let ma: Vec<&[f64]> = ms.iter().map(|&(l, t)| model[l][t].as_slice()).collect();
    let na: Vec<&[f64]> = ns.iter().map(|&(r, b)| neural[r][b].as_slice()).collect();
    // values[s][(i, j)]: s = 0 the full RDMs, s ≥ 1 resample s − 1.
    let tables: Vec<faer::Mat<f64>> = match compare {
        Compare::Spearman => {
            let (ma, na): (Vec<Ranked<'_>>, Vec<Ranked<'_>>) = rayon::join(
                || ma.par_iter().map(|v| Ranked::new(v)).collect(),
                || na.par_iter().map(|v| Ranked::new(v)).collect(),
            );
            let total = samples.len() + 1;
            let one = |idx: Option<&[usize]>| {
                let m = spearman_matrix(&ma, &na, idx);
                progress(
                    done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1,
                    total,
                );
                m
            };
            let mut t = vec![one(None)];
            t.extend(samples.par_iter().map(|s| one(Some(s))).collect::<Vec<_>>());
            t
        }
        Compare::KendallTauA => {
            let total = ms.len() * ns.len();
            let cells: Vec<Vec<f64>> = (0..total)
                .into_par_iter()
                .map(|c| {
                    let (a, b) = (ma[c / ns.len()], na[c % ns.len()]);
                    let mut v = vec![compare.apply(a, b)];
                    v.extend(samples.iter().map(|idx| {
                        let sa: Vec<f64> = idx.iter().map(|&i| a[i]).collect();
                        let sb: Vec<f64> = idx.iter().map(|&i| b[i]).collect();
                        compare.apply(&sa, &sb)
                    }));
                    progress(
                        done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1,
                        total,
                    );
                    v
                })
                .collect();
            (0..=samples.len())
                .map(|s| faer::Mat::from_fn(ms.len(), ns.len(), |i, j| cells[i * ns.len() + j][s]))
                .collect()
        }
    };
    let mut out = Vec::with_capacity(ms.len() * ns.len());
    for (i, &(l, t)) in ms.iter().enumerate() {
        for (j, &(r, bin)) in ns.iter().enumerate() {
            let boots: Vec<f64> = tables[1..].iter().map(|m| m[(i, j)]).collect();
            let (ci_low, ci_high) = if boots.is_empty() {
                (f64::NAN, f64::NAN)
            } else {
                (
                    crate::stats::percentile(&boots, 2.5),
                    crate::stats::percentile(&boots, 97.5),
                )
            };
            out.push(RsaCell {
                layer: l,
                timestep: t,
                region: r,
                bin,
                value: tables[0][(i, j)],
                ci_low,
                ci_high,
            });
        }
    }
    out
}

/// What names the cells of one model's comparison in `rsa.csv`.
#[derive(Debug, Clone)]
pub struct RsaLabels<'a> {
    pub model: &'a str,
    /// Layer names, indexed by [`RsaCell::layer`].
    pub layers: &'a [String],
    /// Region names, indexed by [`RsaCell::region`].
    pub regions: &'a [String],
    /// Bin (start, end) in ms, indexed by [`RsaCell::bin`].
    pub bins: &'a [(f64, f64)],
    pub rdm: &'a str,
    pub comparison: &'a str,
    pub resamples: usize,
}

/// The `rsa.csv` rows of one model's cells.
pub fn rsa_rows(labels: &RsaLabels<'_>, cells: &[RsaCell]) -> Vec<Vec<String>> {
    use crate::tables::csv_number;
    cells
        .iter()
        .map(|c| {
            crate::tables::fit_key_row(
                labels.model,
                &labels.layers[c.layer],
                c.timestep.to_string(),
                &labels.regions[c.region],
                labels.bins[c.bin],
                [
                    labels.rdm.to_string(),
                    labels.comparison.to_string(),
                    csv_number(c.value),
                    csv_number(c.ci_low),
                    csv_number(c.ci_high),
                    labels.resamples.to_string(),
                ],
            )
        })
        .collect()
}

/// `rsa.csv` from every model's [`rsa_rows`].
pub fn rsa_csv(rows: Vec<Vec<String>>) -> Result<String> {
    crate::tables::csv_table(
        "rsa.csv",
        &crate::tables::fit_key_header(&[
            "rdm",
            "comparison",
            "value",
            "ci_low",
            "ci_high",
            "resamples",
        ]),
        rows.into_iter(),
    )
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

    // Generated with rsatoolbox 0.3.2 (pip install rsatoolbox==0.3.2):
    // from rsatoolbox.data import Dataset
    // from rsatoolbox.rdm import calc_rdm, compare, concat
    // calc_rdm(Dataset(X), method="euclidean").get_vectors()           -> SQ_EUC
    // rng = np.random.default_rng(3)
    // A = np.round(rng.standard_normal((5, 3)), 3); B = np.round(rng.standard_normal((5, 3)), 3)
    // a = concat([calc_rdm(Dataset(A), method="correlation"),
    //             calc_rdm(Dataset(A * [1, 2, 3]), method="correlation")])
    // b = concat([calc_rdm(Dataset(D), method="correlation") for D in (B, A + B, A - 2 * B)])
    // compare(a, b, method="spearman").ravel()                         -> RSAT_SPEARMAN
    // compare(a, b, method="tau-a").ravel()                            -> RSAT_TAU_A
    // The data are tie-free on purpose: between two mathematically tied distances, which
    // ranks first is decided by the last bit each implementation's rounding leaves.
    const A: [f64; 15] = [
        2.041, -2.556, 0.418, -0.568, -0.453, -0.216, -2.02, -0.232, -0.865, 3.323, 0.226, -0.353,
        -0.281, -0.668, -1.055,
    ];
    const B: [f64; 15] = [
        -0.391, 0.482, -0.239, 0.958, -0.2, 0.024, 1.546, 0.545, -0.505, -0.183, 0.541, 1.935,
        -0.27, -0.244, 1.002,
    ];
    const SQ_EUC: [f64; 10] = [
        2.75,
        1.75,
        3.75,
        0.6666666666666666,
        3.0,
        2.0,
        1.0833333333333333,
        7.0,
        0.75,
        3.4166666666666665,
    ];
    const RSAT_SPEARMAN: [f64; 6] = [
        0.6,
        0.16363636363636366,
        0.6727272727272728,
        -0.27272727272727276,
        0.38181818181818183,
        -0.28484848484848485,
    ];
    const RSAT_TAU_A: [f64; 6] = [
        0.4666666666666667,
        0.06666666666666667,
        0.5555555555555556,
        -0.24444444444444444,
        0.3333333333333333,
        -0.15555555555555556,
    ];

    #[test]
    fn rdms_and_batched_comparisons_match_rsatoolbox() {
        for (g, w) in rdm(&X, 5, 3, RdmKind::SquaredEuclidean).iter().zip(SQ_EUC) {
            assert!((g - w).abs() < 1e-12, "sq-euclidean: {g} vs {w}");
        }
        let corr = |x: &[f64]| rdm(x, 5, 3, RdmKind::Correlation);
        let scaled: Vec<f64> = A
            .iter()
            .enumerate()
            .map(|(i, v)| v * (i % 3 + 1) as f64)
            .collect();
        let plus: Vec<f64> = A.iter().zip(B).map(|(a, b)| a + b).collect();
        let minus: Vec<f64> = A.iter().zip(B).map(|(a, b)| a - 2.0 * b).collect();
        // Model: one layer, two steps; neural: one region, three bins.
        let model: Rdms = vec![vec![corr(&A), corr(&scaled)]];
        let neural: Rdms = vec![vec![corr(&B), corr(&plus), corr(&minus)]];
        for (cmp, want) in [
            (Compare::Spearman, RSAT_SPEARMAN),
            (Compare::KendallTauA, RSAT_TAU_A),
        ] {
            let cells = compare_rdms(&model, &neural, cmp, &[], &|_, _| {});
            assert_eq!(cells.len(), 6);
            for (c, w) in cells.iter().zip(want) {
                assert!((c.value - w).abs() < 1e-12, "{cmp:?}: {} vs {w}", c.value);
            }
        }
    }

    /// Resampled intervals: the batched (GEMM) Spearman equals pairwise Spearman on every
    /// resample.
    #[test]
    fn batched_spearman_bootstraps_equal_pairwise() {
        let corr = |x: &[f64]| rdm(x, 5, 3, RdmKind::Correlation);
        let model: Rdms = vec![vec![corr(&X), rdm(&X, 5, 3, RdmKind::Euclidean)]];
        let neural: Rdms = vec![vec![corr(&B)], vec![rdm(&B, 5, 3, RdmKind::Cosine)]];
        let samples = bootstrap_pairs(5, 30, 7);
        let cells = compare_rdms(&model, &neural, Compare::Spearman, &samples, &|_, _| {});
        for c in &cells {
            let (a, b) = (&model[c.layer][c.timestep], &neural[c.region][c.bin]);
            let boots: Vec<f64> = samples
                .iter()
                .map(|idx| {
                    let sa: Vec<f64> = idx.iter().map(|&i| a[i]).collect();
                    let sb: Vec<f64> = idx.iter().map(|&i| b[i]).collect();
                    spearman(&sa, &sb)
                })
                .collect();
            let lo = crate::stats::percentile(&boots, 2.5);
            let hi = crate::stats::percentile(&boots, 97.5);
            assert!((c.ci_low - lo).abs() < 1e-12 || (c.ci_low.is_nan() && lo.is_nan()));
            assert!((c.ci_high - hi).abs() < 1e-12 || (c.ci_high.is_nan() && hi.is_nan()));
            assert!((c.value - spearman(a, b)).abs() < 1e-12);
        }
    }

    /// Ranks of a resample from tie-group counts equal ranks of the gathered values, with
    /// ties, repeats, and (by value) with NaNs.
    #[test]
    fn resample_ranks_from_counts_equal_sorting() {
        let v: Vec<f64> = (0..700)
            .map(|i| ((i * 37) % 101) as f64 * 0.5 - 7.0)
            .collect();
        let mut w = v.clone();
        w[3] = f64::NAN;
        w[50] = f64::NAN;
        let idx: Vec<usize> = (0..900).map(|k| (k * 7919 + 13) % 700).collect();
        for x in [&v, &w] {
            let r = Ranked::new(x);
            let fast = r.unit_ranks_of(&idx);
            let slow = unit_ranks(&idx.iter().map(|&i| x[i]).collect::<Vec<_>>());
            for (a, b) in fast.iter().zip(&slow) {
                assert!((a - b).abs() < 1e-14, "{a} vs {b}");
            }
        }
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
