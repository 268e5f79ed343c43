//! Object solution times (Kar et al. 2019, Brain-Score's `metrics/ost`): per-image i1 d′ from
//! a decoder's class probabilities, and the first time an image's i1 reaches its threshold,
//! linearly interpolated. The per-bin decoder and the `ventral ost` command are still to come.

/// Inverse of the standard normal CDF (`scipy.stats.norm.ppf`): Acklam's rational
/// approximation (relative error < 1.2e-9).
pub fn norm_ppf(p: f64) -> f64 {
    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.38357751867269e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    let pl = 0.02425;
    if p < pl {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - pl {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        let q = (-2.0 * (1.0 - p).ln()).sqrt();
        -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    }
}

/// Per-image i1 d′ as Brain-Score's `I1` (no mean subtraction): `probs` [n, c] class
/// probabilities, `labels` [n] true classes. For image i of class y and each distractor k ≠ y:
/// HR = P[i,y]/(P[i,y]+P[i,k]); FAR = mean over images j of class k of P[j,y]/(P[j,y]+P[j,k]);
/// d′ = Φ⁻¹(HR) − Φ⁻¹(FAR) clipped to [−5, 5]; i1 = mean over distractors (classes present).
pub fn i1_dprime(probs: &[f64], labels: &[usize], c: usize) -> Vec<f64> {
    let n = labels.len();
    // far[y][k]: mean over images of class k of P[j,y]/(P[j,y]+P[j,k]).
    let mut far = vec![vec![0.0; c]; c];
    let mut count = vec![0usize; c];
    for j in 0..n {
        let k = labels[j];
        count[k] += 1;
        for y in 0..c {
            if y != k {
                let (py, pk) = (probs[j * c + y], probs[j * c + k]);
                far[y][k] += py / (py + pk);
            }
        }
    }
    for y in 0..c {
        for k in 0..c {
            if count[k] > 0 {
                far[y][k] /= count[k] as f64;
            }
        }
    }
    (0..n)
        .map(|i| {
            let y = labels[i];
            let mut s = 0.0;
            let mut m = 0;
            for k in (0..c).filter(|&k| k != y && count[k] > 0) {
                let (py, pk) = (probs[i * c + y], probs[i * c + k]);
                let hr = py / (py + pk);
                let d = (norm_ppf(hr) - norm_ppf(far[y][k])).clamp(-5.0, 5.0);
                s += d;
                m += 1;
            }
            if m == 0 { f64::NAN } else { s / m as f64 }
        })
        .collect()
}

/// The solution time of one image: the first time `i1[b] ≥ threshold`, interpolated linearly
/// between the previous bin's time and that bin's (the interpolant's root); the first bin's
/// time when it is already reached; NaN when never reached.
pub fn solution_time(times: &[f64], i1: &[f64], threshold: f64) -> f64 {
    for b in 0..times.len().min(i1.len()) {
        if i1[b] >= threshold {
            if b == 0 {
                return times[0];
            }
            let (t0, t1, v0, v1) = (times[b - 1], times[b], i1[b - 1], i1[b]);
            if v1.is_nan() || v0.is_nan() || v1 <= v0 {
                return t1;
            }
            return t0 + (threshold - v0) * (t1 - t0) / (v1 - v0);
        }
    }
    f64::NAN
}

#[cfg(test)]
mod tests {
    use super::*;

    // SciPy 1.16: norm.ppf([1e-10, 0.001, 0.02, 0.3, 0.5, 0.77, 0.999]) ->
    const PPF: [(f64, f64); 7] = [
        (1e-10, -6.361340902404056),
        (0.001, -3.090232306167813),
        (0.02, -2.053748910631823),
        (0.3, -0.5244005127080409),
        (0.5, 0.0),
        (0.77, 0.7388468491852137),
        (0.999, 3.090232306167813),
    ];

    #[test]
    fn ppf_matches_scipy() {
        for (p, want) in PPF {
            assert!(
                (norm_ppf(p) - want).abs() < 1e-8 * (1.0 + want.abs()),
                "ppf({p}) = {} vs {want}",
                norm_ppf(p)
            );
        }
    }

    // NumPy reference of Brain-Score's I1 formula (generated with the snippet):
    // P = np.array([[.7,.2,.1],[.3,.5,.2],[.2,.2,.6],[.5,.4,.1],[.1,.3,.6],[.4,.4,.2]]); y = [0,1,2,0,2,1]
    // def i1(P, y):
    //     n, c = P.shape; out = []
    //     for i in range(n):
    //         d = []
    //         for k in range(c):
    //             if k == y[i]: continue
    //             hr = P[i,y[i]] / (P[i,y[i]] + P[i,k])
    //             js = [j for j in range(n) if y[j] == k]
    //             far = np.mean([P[j,y[i]] / (P[j,y[i]] + P[j,k]) for j in js])
    //             d.append(np.clip(norm.ppf(hr) - norm.ppf(far), -5, 5))
    //         out.append(np.mean(d))
    //     return out
    const I1: [f64; 6] = [
        1.4634085687342777,
        0.9319188839453968,
        1.4503262614218848,
        1.0594449741448617,
        1.5249854228126032,
        0.7049884406445064,
    ];

    #[test]
    fn i1_and_solution_time_match_numpy() {
        let p = [
            0.7, 0.2, 0.1, 0.3, 0.5, 0.2, 0.2, 0.2, 0.6, 0.5, 0.4, 0.1, 0.1, 0.3, 0.6, 0.4, 0.4,
            0.2,
        ];
        let y = [0, 1, 2, 0, 2, 1];
        for (g, w) in i1_dprime(&p, &y, 3).iter().zip(I1) {
            assert!((g - w).abs() < 1e-8, "{g} vs {w}");
        }
        let t = [70.0, 80.0, 90.0, 100.0];
        assert_eq!(solution_time(&t, &[0.1, 0.5, 1.5, 2.0], 1.0), 85.0);
        assert_eq!(solution_time(&t, &[1.2, 0.5, 1.5, 2.0], 1.0), 70.0);
        assert!(solution_time(&t, &[0.1, 0.2, 0.3, 0.4], 1.0).is_nan());
    }
}
