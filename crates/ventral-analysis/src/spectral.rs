//! Leading eigenpairs of a symmetric operator known only through matrix–vector products (the
//! Hessian of a loss through Hessian-vector products): Lanczos with full reorthogonalisation,
//! and power (subspace) iteration with QR — the two methods of the anchor's
//! `utils/spectral.py`.

/// A symmetric operator: x ↦ A x (fallible, e.g. a Hessian-vector product).
pub type Operator<'a, E> = dyn FnMut(&[f64]) -> Result<Vec<f64>, E> + 'a;

/// Eigenpairs, eigenvalues in decreasing order.
#[derive(Debug, Clone)]
pub struct Eigen {
    pub values: Vec<f64>,
    /// Unit eigenvectors, one per value.
    pub vectors: Vec<Vec<f64>>,
    /// ‖A y − λ y‖ of each pair (Lanczos: the Ritz estimate |β_m · s_m|).
    pub residuals: Vec<f64>,
    /// Operator applications used.
    pub products: usize,
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

/// Deterministic start vector (SplitMix64 → uniform in [−1, 1)), unit length.
fn start(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed ^ 0x005E_ED0F_1A2C;
    let mut v: Vec<f64> = (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 11) as f64 / (1u64 << 52) as f64 - 1.0
        })
        .collect();
    let nv = norm(&v).max(f64::MIN_POSITIVE);
    v.iter_mut().for_each(|x| *x /= nv);
    v
}

/// Eigen-decomposition of a small dense symmetric matrix (`a`, row-major m × m) by cyclic
/// Jacobi rotations: eigenvalues (unsorted) and eigenvectors as columns of `[m × m]`.
pub fn symmetric_eigen(a: &[f64], m: usize) -> (Vec<f64>, Vec<f64>) {
    let mut a = a.to_vec();
    let mut v = vec![0.0; m * m];
    for i in 0..m {
        v[i * m + i] = 1.0;
    }
    for _sweep in 0..100 {
        let off: f64 = (0..m)
            .flat_map(|i| (0..m).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * m + j] * a[i * m + j])
            .sum();
        let scale: f64 = (0..m).map(|i| a[i * m + i] * a[i * m + i]).sum::<f64>();
        if off <= 1e-30 * scale.max(f64::MIN_POSITIVE) {
            break;
        }
        for p in 0..m {
            for q in p + 1..m {
                let apq = a[p * m + q];
                if apq == 0.0 {
                    continue;
                }
                let theta = (a[q * m + q] - a[p * m + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..m {
                    let (akp, akq) = (a[k * m + p], a[k * m + q]);
                    a[k * m + p] = c * akp - s * akq;
                    a[k * m + q] = s * akp + c * akq;
                }
                for k in 0..m {
                    let (apk, aqk) = (a[p * m + k], a[q * m + k]);
                    a[p * m + k] = c * apk - s * aqk;
                    a[q * m + k] = s * apk + c * aqk;
                }
                for k in 0..m {
                    let (vkp, vkq) = (v[k * m + p], v[k * m + q]);
                    v[k * m + p] = c * vkp - s * vkq;
                    v[k * m + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..m).map(|i| a[i * m + i]).collect(), v)
}

/// The `k` largest (algebraic) eigenpairs of the symmetric operator `op` on ℝⁿ by `m` steps of
/// Lanczos with full reorthogonalisation (two Gram–Schmidt passes), from a seeded start. Ritz
/// vectors are assembled from the Lanczos basis (n·m doubles of memory).
pub fn lanczos<E>(
    n: usize,
    k: usize,
    m: usize,
    seed: u64,
    op: &mut Operator<'_, E>,
) -> Result<Eigen, E> {
    let m = m.max(k).min(n).max(1);
    let mut q: Vec<Vec<f64>> = vec![start(n, seed)];
    let (mut alpha, mut beta) = (Vec::new(), Vec::new());
    let mut products = 0;
    for j in 0..m {
        let mut w = op(&q[j])?;
        products += 1;
        let a = dot(&q[j], &w);
        alpha.push(a);
        for _ in 0..2 {
            for qi in &q {
                let c = dot(qi, &w);
                w.iter_mut().zip(qi).for_each(|(x, y)| *x -= c * y);
            }
        }
        let b = norm(&w);
        if j + 1 == m || b <= 1e-12 * alpha.iter().map(|x| x.abs()).fold(1e-300, f64::max) {
            beta.push(b);
            break;
        }
        beta.push(b);
        q.push(w.iter().map(|x| x / b).collect());
    }
    let s = alpha.len();
    let mut t = vec![0.0; s * s];
    for i in 0..s {
        t[i * s + i] = alpha[i];
        if i + 1 < s {
            t[i * s + i + 1] = beta[i];
            t[(i + 1) * s + i] = beta[i];
        }
    }
    let (vals, vecs) = symmetric_eigen(&t, s);
    let mut order: Vec<usize> = (0..s).collect();
    order.sort_by(|&a, &b| vals[b].total_cmp(&vals[a]));
    let last_beta = beta.last().copied().unwrap_or(0.0);
    let mut out = Eigen {
        values: Vec::new(),
        vectors: Vec::new(),
        residuals: Vec::new(),
        products,
    };
    for &i in order.iter().take(k) {
        let mut y = vec![0.0; n];
        for (r, qr) in q.iter().enumerate().take(s) {
            let c = vecs[r * s + i];
            y.iter_mut().zip(qr).for_each(|(a, b)| *a += c * b);
        }
        let ny = norm(&y).max(f64::MIN_POSITIVE);
        y.iter_mut().for_each(|a| *a /= ny);
        out.values.push(vals[i]);
        out.residuals
            .push((last_beta * vecs[(s - 1) * s + i]).abs());
        out.vectors.push(y);
    }
    Ok(out)
}

/// The `k` eigenpairs of largest magnitude by subspace (block power) iteration with QR and a
/// Rayleigh–Ritz step, `iters` iterations from a seeded start; residuals are computed exactly
/// (k more products).
pub fn power_iteration<E>(
    n: usize,
    k: usize,
    iters: usize,
    seed: u64,
    op: &mut Operator<'_, E>,
) -> Result<Eigen, E> {
    let k = k.min(n).max(1);
    let mut v: Vec<Vec<f64>> = (0..k).map(|i| start(n, seed + i as u64)).collect();
    let mut products = 0;
    let orthonormalise = |v: &mut Vec<Vec<f64>>| {
        for i in 0..v.len() {
            for _ in 0..2 {
                for j in 0..i {
                    let c = dot(&v[j], &v[i]);
                    let (a, b) = v.split_at_mut(i);
                    b[0].iter_mut().zip(&a[j]).for_each(|(x, y)| *x -= c * y);
                }
            }
            let nv = norm(&v[i]).max(f64::MIN_POSITIVE);
            v[i].iter_mut().for_each(|x| *x /= nv);
        }
    };
    orthonormalise(&mut v);
    for _ in 0..iters.max(1) {
        v = v.iter().map(|x| op(x)).collect::<Result<_, E>>()?;
        products += k;
        orthonormalise(&mut v);
    }
    // Rayleigh–Ritz on the final basis.
    let av: Vec<Vec<f64>> = v.iter().map(|x| op(x)).collect::<Result<_, E>>()?;
    products += k;
    let mut h = vec![0.0; k * k];
    for i in 0..k {
        for j in 0..k {
            h[i * k + j] = 0.5 * (dot(&v[i], &av[j]) + dot(&v[j], &av[i]));
        }
    }
    let (vals, vecs) = symmetric_eigen(&h, k);
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&a, &b| vals[b].total_cmp(&vals[a]));
    let mut out = Eigen {
        values: Vec::new(),
        vectors: Vec::new(),
        residuals: Vec::new(),
        products,
    };
    for &i in &order {
        let mut y = vec![0.0; n];
        let mut ay = vec![0.0; n];
        for r in 0..k {
            let c = vecs[r * k + i];
            y.iter_mut().zip(&v[r]).for_each(|(a, b)| *a += c * b);
            ay.iter_mut().zip(&av[r]).for_each(|(a, b)| *a += c * b);
        }
        let res: f64 = ay
            .iter()
            .zip(&y)
            .map(|(a, b)| (a - vals[i] * b).powi(2))
            .sum::<f64>()
            .sqrt();
        out.values.push(vals[i]);
        out.residuals.push(res);
        out.vectors.push(y);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A = Q diag(λ) Qᵀ with a random orthogonal Q (Gram–Schmidt of seeded vectors).
    fn matrix(lams: &[f64]) -> (Vec<f64>, Vec<Vec<f64>>) {
        let n = lams.len();
        let mut q: Vec<Vec<f64>> = (0..n).map(|i| start(n, 100 + i as u64)).collect();
        for i in 0..n {
            for j in 0..i {
                let c = dot(&q[j], &q[i]);
                let (a, b) = q.split_at_mut(i);
                b[0].iter_mut().zip(&a[j]).for_each(|(x, y)| *x -= c * y);
            }
            let nv = norm(&q[i]);
            q[i].iter_mut().for_each(|x| *x /= nv);
        }
        let mut a = vec![0.0; n * n];
        for (l, qi) in lams.iter().zip(&q) {
            for r in 0..n {
                for c in 0..n {
                    a[r * n + c] += l * qi[r] * qi[c];
                }
            }
        }
        (a, q)
    }

    #[test]
    fn jacobi_lanczos_and_power_find_known_eigenpairs() {
        let n = 60;
        let mut lams: Vec<f64> = (0..n).map(|i| 0.01 * i as f64).collect();
        lams[0] = 10.0;
        lams[1] = 5.0;
        lams[2] = -3.0; // a negative direction, as Hessians away from minima have
        lams[3] = 2.5;
        let (a, q) = matrix(&lams);
        let (vals, _) = symmetric_eigen(&a, n);
        let mut sorted = vals.clone();
        sorted.sort_by(|x, y| y.total_cmp(x));
        let mut want = lams.clone();
        want.sort_by(|x, y| y.total_cmp(x));
        for (g, w) in sorted.iter().zip(&want) {
            assert!((g - w).abs() < 1e-10, "{g} vs {w}");
        }
        let mut op = |x: &[f64]| -> Result<Vec<f64>, ()> {
            Ok((0..n).map(|r| dot(&a[r * n..(r + 1) * n], x)).collect())
        };
        let e = lanczos(n, 3, 30, 1, &mut op).unwrap();
        for (i, (&want, qi)) in [10.0, 5.0, 2.5]
            .iter()
            .zip([&q[0], &q[1], &q[3]])
            .enumerate()
        {
            assert!((e.values[i] - want).abs() < 1e-9, "{:?}", e.values);
            assert!((dot(&e.vectors[i], qi).abs() - 1.0).abs() < 1e-9);
            assert!(e.residuals[i] < 1e-6);
        }
        let p = power_iteration(n, 3, 200, 1, &mut op).unwrap();
        // Largest magnitudes: 10, 5, −3.
        assert!((p.values[0] - 10.0).abs() < 1e-8, "{:?}", p.values);
        assert!((p.values[1] - 5.0).abs() < 1e-8);
        assert!((p.values[2] + 3.0).abs() < 1e-8);
        assert!(p.residuals.iter().all(|r| *r < 1e-6), "{:?}", p.residuals);
    }
}
