//! Leading principal components (power iteration with deflation on the covariance matrix).

use faer::Mat;

/// The mean (`[d]`) and the first `k` principal axes (`[k][d]`, unit length, the largest
/// component of each positive) of the rows of `x` (`[m, d]`).
pub fn principal_axes(x: &[f64], m: usize, d: usize, k: usize) -> (Vec<f64>, Vec<Vec<f64>>) {
    let mean: Vec<f64> = (0..d)
        .map(|j| (0..m).map(|i| x[i * d + j]).sum::<f64>() / m.max(1) as f64)
        .collect();
    let xc = Mat::from_fn(m, d, |i, j| x[i * d + j] - mean[j]);
    let cov = xc.transpose() * &xc;
    let mut axes: Vec<Vec<f64>> = Vec::new();
    for a in 0..k.min(d) {
        // Start from a fixed, non-degenerate vector.
        let mut v: Vec<f64> = (0..d)
            .map(|j| 1.0 + ((j * 7 + a * 13) % 11) as f64 / 11.0)
            .collect();
        for _ in 0..500 {
            // cov is symmetric: row i · v = column i · v, and columns are contiguous.
            let mut nv: Vec<f64> = (0..d)
                .map(|i| cov.col_as_slice(i).iter().zip(&v).map(|(c, x)| c * x).sum())
                .collect();
            for u in &axes {
                let p: f64 = nv.iter().zip(u).map(|(a, b)| a * b).sum();
                nv.iter_mut().zip(u).for_each(|(a, b)| *a -= p * b);
            }
            let norm = nv.iter().map(|a| a * a).sum::<f64>().sqrt();
            if norm == 0.0 {
                break;
            }
            nv.iter_mut().for_each(|a| *a /= norm);
            let diff: f64 = nv.iter().zip(&v).map(|(a, b)| (a - b).abs()).sum();
            v = nv;
            if diff < 1e-12 {
                break;
            }
        }
        let big = v
            .iter()
            .copied()
            .fold(0.0f64, |b, a| if a.abs() > b.abs() { a } else { b });
        if big < 0.0 {
            v.iter_mut().for_each(|a| *a = -*a);
        }
        axes.push(v);
    }
    (mean, axes)
}
