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
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut ranks = vec![0.0; x.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && x[idx[j + 1]] == x[idx[i]] {
            j += 1;
        }
        let r = (i + j) as f64 / 2.0 + 1.0;
        for k in i..=j {
            ranks[idx[k]] = r;
        }
        i = j + 1;
    }
    ranks
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

/// Two-sided 97.5 % quantile of Student's t with `df` degrees of freedom
/// (`scipy.stats.t.ppf(0.975, df)`, tabulated to 1e-3 for df ≤ 30, normal beyond).
pub fn t975(df: usize) -> f64 {
    const T: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::NAN,
        d if d <= 30 => T[d - 1],
        d if d <= 60 => 2.042 - (d as f64 - 30.0) * (2.042 - 2.000) / 30.0,
        d if d <= 120 => 2.000 - (d as f64 - 60.0) * (2.000 - 1.980) / 60.0,
        _ => 1.96,
    }
}

/// Mean of the finite values with its 95 % t-interval (mean ± t · sd/√n); the interval is
/// NaN with fewer than two values.
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
}
