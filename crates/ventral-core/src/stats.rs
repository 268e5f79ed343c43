//! Correlations and reliability: Pearson, Spearman (average ranks for ties, as
//! `scipy.stats.spearmanr`), Kendall τ-a and τ-b, the Spearman–Brown prophecy formula.

/// Mean.
pub fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len().max(1) as f64
}

/// Pearson correlation; NaN when either input is constant or shorter than 2.
pub fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len().min(y.len());
    if n < 2 {
        return f64::NAN;
    }
    let (mx, my) = (mean(&x[..n]), mean(&y[..n]));
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for i in 0..n {
        let (a, b) = (x[i] - mx, y[i] - my);
        sxy += a * b;
        sxx += a * a;
        syy += b * b;
    }
    if sxx == 0.0 || syy == 0.0 {
        return f64::NAN;
    }
    sxy / (sxx * syy).sqrt()
}

/// Ranks starting at 1, ties get the average rank (`scipy.stats.rankdata(method="average")`).
pub fn rank_average(x: &[f64]) -> Vec<f64> {
    let order = sorted_order(x);
    let mut ranks = vec![0.0; x.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && x[order[j + 1] as usize] == x[order[i] as usize] {
            j += 1;
        }
        let r = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            ranks[k as usize] = r;
        }
        i = j + 1;
    }
    ranks
}

/// Tie groups of `x`: for every entry the index of its value among the distinct values in
/// ascending order (`f64::total_cmp`; NaNs each a group of their own, as in
/// [`rank_average`]), and the number of groups. The average ranks of any sub-multiset of the
/// entries follow from group counts alone (a counting pass instead of a sort).
pub fn tie_groups(x: &[f64]) -> (Vec<u32>, usize) {
    let order = sorted_order(x);
    let mut groups = vec![0u32; x.len()];
    let mut g = 0u32;
    for (k, &i) in order.iter().enumerate() {
        if k > 0 && x[i as usize] != x[order[k - 1] as usize] {
            g += 1;
        }
        groups[i as usize] = g;
    }
    (groups, if x.is_empty() { 0 } else { g as usize + 1 })
}

/// `f32::total_cmp`'s order as an unsigned key.
#[inline]
fn total_key32(v: f32) -> u32 {
    let b = v.to_bits();
    if b >> 31 == 1 { !b } else { b | (1 << 31) }
}

/// Indices of `x` in `f64::total_cmp` order. Long inputs (RDM ranking sorts tens of thousands
/// of entries per RDM) are radix-sorted on the values rounded to f32 — rounding is monotonic,
/// so that order is exact except among values sharing an f32, which are then put in order by
/// a comparison sort of each such (typically tiny) run. Three LSD passes of 11 bits.
fn sorted_order(x: &[f64]) -> Vec<u32> {
    let n = x.len();
    assert!(
        n <= u32::MAX as usize,
        "rank_average: more than 2^32 values"
    );
    let cmp = |a: &u32, b: &u32| x[*a as usize].total_cmp(&x[*b as usize]);
    if n < 512 {
        let mut idx: Vec<u32> = (0..n as u32).collect();
        idx.sort_by(cmp);
        return idx;
    }
    const BITS: [u32; 3] = [11, 11, 10];
    let mut keys: Vec<u32> = x.iter().map(|&v| total_key32(v as f32)).collect();
    let mut idx: Vec<u32> = (0..n as u32).collect();
    let mut hist = [[0u32; 2048]; 3];
    for &k in &keys {
        let mut shift = 0;
        for (p, bits) in BITS.iter().enumerate() {
            hist[p][((k >> shift) & ((1 << bits) - 1)) as usize] += 1;
            shift += bits;
        }
    }
    let (mut k2, mut i2) = (vec![0u32; n], vec![0u32; n]);
    let mut shift = 0;
    for (p, bits) in BITS.iter().enumerate() {
        let h = &mut hist[p];
        let digit = |k: u32| ((k >> shift) & ((1 << bits) - 1)) as usize;
        if h[digit(keys[0])] as usize == n {
            shift += bits;
            continue; // every key has this digit
        }
        let mut off = 0;
        for c in h.iter_mut() {
            let here = *c;
            *c = off;
            off += here;
        }
        for (&k, &i) in keys.iter().zip(&idx) {
            let d = &mut h[digit(k)];
            k2[*d as usize] = k;
            i2[*d as usize] = i;
            *d += 1;
        }
        std::mem::swap(&mut keys, &mut k2);
        std::mem::swap(&mut idx, &mut i2);
        shift += bits;
    }
    // Runs of one f32 key: order by the exact values.
    let mut i = 0;
    while i < n {
        let mut j = i + 1;
        while j < n && keys[j] == keys[i] {
            j += 1;
        }
        if j - i > 1 {
            idx[i..j].sort_by(cmp);
        }
        i = j;
    }
    idx
}

/// Spearman rank correlation (Pearson of average ranks).
pub fn spearman(x: &[f64], y: &[f64]) -> f64 {
    pearson(&rank_average(x), &rank_average(y))
}

fn sign(v: f64) -> f64 {
    if v > 0.0 {
        1.0
    } else if v < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// Kendall τ-a: (concordant − discordant) / (n(n − 1)/2), ties count as neither (the RSA
/// convention of rsatoolbox for RDMs with ties).
pub fn kendall_tau_a(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len().min(y.len());
    if n < 2 {
        return f64::NAN;
    }
    let mut s = 0.0;
    for i in 0..n {
        for j in i + 1..n {
            s += sign(x[i] - x[j]) * sign(y[i] - y[j]);
        }
    }
    s / (n * (n - 1) / 2) as f64
}

/// Kendall τ-b (`scipy.stats.kendalltau`, default variant).
pub fn kendall_tau_b(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len().min(y.len());
    let (mut s, mut tx, mut ty) = (0.0, 0.0, 0.0);
    for i in 0..n {
        for j in i + 1..n {
            let (a, b) = (sign(x[i] - x[j]), sign(y[i] - y[j]));
            s += a * b;
            tx += a * a;
            ty += b * b;
        }
    }
    if tx == 0.0 || ty == 0.0 {
        return f64::NAN;
    }
    s / (tx * ty).sqrt()
}

/// Spearman–Brown: reliability of the full data from the correlation of two halves,
/// `k r / (1 + (k − 1) r)` with `k = 2` for split halves.
pub fn spearman_brown(r: f64, k: f64) -> f64 {
    k * r / (1.0 + (k - 1.0) * r)
}

/// Median of the finite values (NaN when there are none), like xarray's NaN-skipping median.
pub fn nan_median(x: &[f64]) -> f64 {
    let mut v: Vec<f64> = x.iter().copied().filter(|a| a.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// Natural log of the gamma function (Lanczos, g = 7, n = 9; |rel. error| < 1e-13 for x > 0).
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Regularised incomplete beta I_x(a, b) (continued fraction, modified Lentz).
fn inc_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front =
        (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    if x > (a + 1.0) / (a + b + 2.0) {
        return 1.0 - inc_beta(b, a, 1.0 - x);
    }
    let tiny = 1e-300;
    let (mut c, mut d) = (1.0, 1.0 - (a + b) * x / (a + 1.0));
    if d.abs() < tiny {
        d = tiny;
    }
    d = 1.0 / d;
    let mut f = d;
    for m in 1..500 {
        let m = m as f64;
        for num in [
            m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0)),
        ] {
            d = 1.0 + num * d;
            if d.abs() < tiny {
                d = tiny;
            }
            c = 1.0 + num / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            f *= c * d;
        }
        if (c * d - 1.0).abs() < 1e-15 {
            break;
        }
    }
    front * f / a
}

/// Student's t CDF with `df` degrees of freedom.
pub fn t_cdf(t: f64, df: f64) -> f64 {
    let x = df / (df + t * t);
    let tail = 0.5 * inc_beta(0.5 * df, 0.5, x);
    if t >= 0.0 { 1.0 - tail } else { tail }
}

/// Quantile of Student's t (`scipy.stats.t.ppf(p, df)`), by bisection on [`t_cdf`] to
/// machine precision; NaN for df = 0 or p outside (0, 1).
pub fn t_ppf(p: f64, df: f64) -> f64 {
    if df.is_nan() || df <= 0.0 || p.is_nan() || p <= 0.0 || p >= 1.0 {
        return f64::NAN;
    }
    let (mut lo, mut hi) = (-1.0, 1.0);
    while t_cdf(lo, df) > p {
        lo *= 2.0;
    }
    while t_cdf(hi, df) < p {
        hi *= 2.0;
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid == lo || mid == hi {
            break;
        }
        if t_cdf(mid, df) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Two-sided 95 % quantile of Student's t with `df` degrees of freedom
/// (`scipy.stats.t.ppf(0.975, df)`); NaN for df = 0.
pub fn t975(df: usize) -> f64 {
    if df == 0 {
        return f64::NAN;
    }
    t_ppf(0.975, df as f64)
}

/// Mean of the finite values with its 95 % t-interval (mean ± t · sd/√n, as
/// `scipy.stats.t.interval(0.95, n − 1, loc=mean, scale=sem)`); the interval is NaN with fewer
/// than two values.
pub fn mean_ci(x: &[f64]) -> (f64, f64, f64) {
    let v: Vec<f64> = x.iter().copied().filter(|a| a.is_finite()).collect();
    let n = v.len();
    if n == 0 {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let m = mean(&v);
    if n < 2 {
        return (m, f64::NAN, f64::NAN);
    }
    let sd = (v.iter().map(|a| (a - m) * (a - m)).sum::<f64>() / (n - 1) as f64).sqrt();
    let h = t975(n - 1) * sd / (n as f64).sqrt();
    (m, m - h, m + h)
}

/// Two-sided 95 % Wilson score interval of the proportion `k / n`, as statsmodels'
/// `proportion_confint(k, n, alpha=0.05, method="wilson")` (clamped to [0, 1], where
/// rounding could leave it a few ulps outside); NaN when `n = 0`.
pub fn wilson_interval(k: usize, n: usize) -> (f64, f64) {
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    const Z: f64 = 1.959_963_984_540_054; // scipy.stats.norm.isf(0.025)
    let (nf, p) = (n as f64, k.min(n) as f64 / n as f64);
    let z2 = Z * Z;
    let denom = 1.0 + z2 / nf;
    let centre = (p + z2 / (2.0 * nf)) / denom;
    let half = Z * (p * (1.0 - p) / nf + z2 / (4.0 * nf * nf)).sqrt() / denom;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// Exact two-sided McNemar test of paired binary outcomes, `b` pairs changed one way and `c`
/// the other: 2 · P(X ≤ min(b, c)) for X ~ Binomial(b + c, ½), at most 1 — statsmodels'
/// `mcnemar([[·, b], [c, ·]], exact=True).pvalue`, i.e. SciPy's `binomtest(b, b + c).pvalue`;
/// 1 when nothing changed.
pub fn mcnemar_exact(b: usize, c: usize) -> f64 {
    let (k, n) = (b.min(c), b + c);
    if 2 * k >= n {
        return 1.0; // b = c (or none): the lower tail alone holds half the mass
    }
    // P(X = i) = C(n, i) / 2ⁿ rises with i up to n / 2 > k: summed from i = k downwards
    // relative to the largest term, P(X = i − 1) / P(X = i) = i / (n − i + 1).
    // ln P(X = k) = Σᵢ ln((n − k + i) / i) − n ln 2, summed compensated (Neumaier): the
    // terms' sum nearly cancels n ln 2, so plain summation lost ~1e-12 at n = 2 100.
    let (mut ln_top, mut comp) = (-(n as f64) * std::f64::consts::LN_2, 0.0f64);
    for i in 1..=k {
        let x = ((n - k + i) as f64 / i as f64).ln();
        let t = ln_top + x;
        comp += if ln_top.abs() >= x.abs() {
            (ln_top - t) + x
        } else {
            (x - t) + ln_top
        };
        ln_top = t;
    }
    let ln_top = ln_top + comp;
    let (mut sum, mut r) = (1.0f64, 1.0f64);
    for i in (1..=k).rev() {
        r *= i as f64 / (n - i + 1) as f64;
        sum += r;
        if r < 1e-18 * sum {
            break;
        }
    }
    (2.0 * ln_top.exp() * sum).min(1.0)
}

/// Percentile (linear interpolation, NumPy's default) of the finite values.
pub fn percentile(x: &[f64], q: f64) -> f64 {
    let mut v: Vec<f64> = x.iter().copied().filter(|a| a.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let pos = q / 100.0 * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The radix-sorted ranks of a long vector (ties, negatives, ±0, ±inf, huge and tiny
    /// magnitudes) equal ranks counted by definition: #less + (#equal + 1)/2.
    #[test]
    fn radix_ranks_equal_ranks_by_definition() {
        let mut z = 0x2545_f491_4f6c_dd1du64;
        let x: Vec<f64> = (0..1500)
            .map(|i| {
                z ^= z << 13;
                z ^= z >> 7;
                z ^= z << 17;
                match i % 7 {
                    0 => ((z % 9) as f64) - 4.0, // many ties
                    1 => -0.0,
                    2 => 0.0,
                    3 => f64::from_bits(z >> 2) * if z & 1 == 1 { -1.0 } else { 1.0 },
                    4 => (z as f64 / u64::MAX as f64 - 0.5) * 1e-300,
                    5 => {
                        if z & 1 == 1 {
                            f64::INFINITY
                        } else {
                            f64::NEG_INFINITY
                        }
                    }
                    _ => z as f64 / u64::MAX as f64,
                }
            })
            .collect();
        let r = rank_average(&x);
        for (i, &v) in x.iter().enumerate() {
            let less = x.iter().filter(|&&w| w < v).count() as f64;
            let equal = x.iter().filter(|&&w| w == v).count() as f64;
            assert_eq!(r[i], less + (equal + 1.0) / 2.0, "value {v}");
        }
    }

    // Generated with SciPy 1.16 / NumPy 2.4:
    // x = np.array([1.0, 2.0, 2.0, 3.5, 0.5, 4.0, 4.0, 4.0])
    // y = np.array([2.0, 1.0, 3.0, 3.0, 0.0, 5.0, 4.5, 6.0])
    // st.pearsonr(x, y)[0]        -> 0.8874384948118581
    // st.spearmanr(x, y)[0]       -> 0.9200335844703181
    // st.kendalltau(x, y)[0]      -> 0.8249579113843055   (tau-b)
    // st.rankdata(x)              -> [2. 3.5 3.5 5. 1. 7. 7. 7.]
    // tau-a = sum_{i<j} sign(dx) sign(dy) / (n(n-1)/2)    -> 0.75
    // Spearman-Brown(0.6, 2) = 2*0.6/1.6                  -> 0.75
    const X: [f64; 8] = [1.0, 2.0, 2.0, 3.5, 0.5, 4.0, 4.0, 4.0];
    const Y: [f64; 8] = [2.0, 1.0, 3.0, 3.0, 0.0, 5.0, 4.5, 6.0];

    #[test]
    fn golden_against_scipy() {
        assert!((pearson(&X, &Y) - 0.8874384948118581).abs() < 1e-12);
        assert!((spearman(&X, &Y) - 0.9200335844703181).abs() < 1e-12);
        assert!((kendall_tau_b(&X, &Y) - 0.8249579113843055).abs() < 1e-12);
        assert!((kendall_tau_a(&X, &Y) - 0.75).abs() < 1e-12);
        assert_eq!(
            rank_average(&X),
            vec![2.0, 3.5, 3.5, 5.0, 1.0, 7.0, 7.0, 7.0]
        );
        assert!((spearman_brown(0.6, 2.0) - 0.75).abs() < 1e-12);
        assert!(pearson(&[1.0, 1.0], &[1.0, 2.0]).is_nan());
        // np.median([3, 1, nan, 2, 10]) skipping NaN -> 2.5; np.percentile(X, 2.5) -> 0.5875
        assert_eq!(nan_median(&[3.0, 1.0, f64::NAN, 2.0, 10.0]), 2.5);
        assert!((percentile(&X, 2.5) - 0.5875).abs() < 1e-12);
        // scipy.stats.t.ppf(0.975, 9) -> 2.2621571627409915
        assert!((t975(9) - 2.2621571627409915).abs() < 1e-3);
    }

    // SciPy 1.16: [stats.t.ppf(0.975, df) for df in ...]
    const T975: [(usize, f64); 12] = [
        (1, 12.706204736174694),
        (2, 4.302652729749462),
        (3, 3.1824463052837078),
        (5, 2.5705818356363146),
        (10, 2.228138851986274),
        (29, 2.045229642132703),
        (30, 2.0422724563012378),
        (31, 2.039513446396408),
        (60, 2.0002978220142604),
        (100, 1.9839715185235518),
        (1000, 1.9623390808264083),
        (24999, 1.9600588837015738),
    ];

    /// Golden values from statsmodels 0.14 / SciPy:
    /// ```python
    /// from statsmodels.stats.proportion import proportion_confint
    /// from statsmodels.stats.contingency_tables import mcnemar
    /// proportion_confint(k, n, alpha=0.05, method="wilson")
    /// mcnemar([[10, b], [c, 10]], exact=True).pvalue  # == scipy.stats.binomtest(b, b + c).pvalue
    /// ```
    #[test]
    fn wilson_and_mcnemar_match_statsmodels() {
        for (k, n, lo, hi) in [
            (0, 10, 0.0, 0.27753279986288926),
            (3, 10, 0.10779126740630104, 0.6032218525388546),
            (10, 10, 0.7224672001371106, 1.0),
            (1205, 2000, 0.5808754963646655, 0.6237315089426777),
            (1, 1, 0.2065493143772374, 1.0),
            (17, 80, 0.13712386717696146, 0.3142215573059666),
            (24999, 25000, 0.999773438562308, 0.9999929389829061),
        ] {
            let (l, h) = wilson_interval(k, n);
            assert!(
                (l - lo).abs() < 1e-14 && (h - hi).abs() < 1e-14,
                "{k}/{n}: {l} {h}"
            );
        }
        assert!(wilson_interval(0, 0).0.is_nan());
        for (b, c, p) in [
            (0, 0, 1.0),
            (0, 1, 1.0),
            (72, 51, 0.07090166737501427),
            (69, 69, 1.0),
            (64, 61, 0.8581193732635906),
            (65, 78, 0.31562489744334127),
            (0, 25, 5.960464477539063e-08),
            (3, 40, 3.0213413992896676e-09),
            (1000, 1100, 0.03072070786424249),
            (30, 2, 2.4633482098579407e-07),
            (20000, 20500, 0.013153825113144245),
            (5000, 5400, 9.116949314541157e-05),
            (12, 400, 8.280052161431068e-102),
        ] {
            let got = mcnemar_exact(b, c);
            assert!((got - p).abs() <= 1e-12 * p, "b={b} c={c}: {got} vs {p}");
            assert_eq!(got, mcnemar_exact(c, b));
        }
    }

    #[test]
    fn t_quantiles_and_interval_match_scipy() {
        for (df, want) in T975 {
            let got = t975(df);
            assert!((got - want).abs() < 1e-10, "df {df}: {got} vs {want}");
        }
        // stats.t.interval(0.95, 7, loc=x.mean(), scale=stats.sem(x)) for the x above
        // -> (1.4269579748807848, 3.823042025119215)
        let x = [1.0, 2.0, 2.0, 3.5, 0.5, 4.0, 4.0, 4.0];
        let (m, lo, hi) = mean_ci(&x);
        assert!((m - 2.625).abs() < 1e-15);
        assert!((lo - 1.4269579748807848).abs() < 1e-10, "{lo}");
        assert!((hi - 3.823042025119215).abs() < 1e-10, "{hi}");
        assert!(t975(0).is_nan());
    }
}
