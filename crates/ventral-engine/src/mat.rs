//! Strided matrix views and the one place that calls the `gemm` crate's micro-kernels.
//!
//! `gemm::gemm` takes raw pointers; this module checks every view against its slice before the
//! call, so the rest of the engine is safe code. The `gemm` crate picks AVX-512 / AVX2+FMA /
//! SSE kernels at run time, blocks K into cache-sized panels (float32 sums are accumulated per
//! panel into the destination, which keeps long reductions accurate), and parallelises over the
//! destination's blocks with rayon. Every destination element's K-sum runs in one fixed order,
//! whatever the thread count, so results are deterministic.

#![allow(unsafe_code)]

/// A read-only strided matrix: element (i, j) at `data[off + i * rs + j * cs]`.
#[derive(Debug, Clone, Copy)]
pub struct MatRef<'a> {
    pub data: &'a [f32],
    pub off: usize,
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

/// A writable strided matrix (same addressing as [`MatRef`]).
#[derive(Debug)]
pub struct MatMut<'a> {
    pub data: &'a mut [f32],
    pub off: usize,
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<'a> MatRef<'a> {
    /// Row-major `rows × cols` starting at `off`.
    pub fn rm(data: &'a [f32], off: usize, rows: usize, cols: usize) -> Self {
        Self {
            data,
            off,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }
    /// The transpose (a view, no copy).
    pub fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }
    /// Every element the view addresses lies inside its slice.
    pub(crate) fn fits(&self) -> bool {
        self.rows == 0
            || self.cols == 0
            || self.off + (self.rows - 1) * self.rs + (self.cols - 1) * self.cs < self.data.len()
    }
}

impl<'a> MatMut<'a> {
    /// Row-major `rows × cols` starting at `off`.
    pub fn rm(data: &'a mut [f32], off: usize, rows: usize, cols: usize) -> Self {
        Self {
            data,
            off,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }
    /// Every element the view addresses lies inside its slice.
    pub(crate) fn fits(&self) -> bool {
        self.rows == 0
            || self.cols == 0
            || self.off + (self.rows - 1) * self.rs + (self.cols - 1) * self.cs < self.data.len()
    }
}

/// `dst = a · b` (`accumulate = false`) or `dst += a · b` (`accumulate = true`).
///
/// # Panics
/// On mismatched shapes or a view outside its slice (engine bugs, never user data: shapes are
/// checked when a network is built).
pub fn gemm(dst: MatMut<'_>, accumulate: bool, a: MatRef<'_>, b: MatRef<'_>) {
    gemm_on(dst, accumulate, a, b, rayon::current_num_threads() > 1)
}

/// [`gemm`](fn@gemm) on the calling thread only: for many independent products run in parallel by the
/// caller. The same sums in the same order as [`gemm`](fn@gemm) (the crate's per-element order does not
/// depend on its parallelism).
pub fn gemm_serial(dst: MatMut<'_>, accumulate: bool, a: MatRef<'_>, b: MatRef<'_>) {
    gemm_on(dst, accumulate, a, b, false)
}

fn gemm_on(dst: MatMut<'_>, accumulate: bool, a: MatRef<'_>, b: MatRef<'_>, parallel: bool) {
    assert!(
        dst.rows == a.rows && dst.cols == b.cols && a.cols == b.rows,
        "gemm shapes: dst {}x{}, a {}x{}, b {}x{}",
        dst.rows,
        dst.cols,
        a.rows,
        a.cols,
        b.rows,
        b.cols
    );
    assert!(
        dst.fits() && a.fits() && b.fits(),
        "gemm view outside its slice"
    );
    if dst.rows == 0 || dst.cols == 0 {
        return;
    }
    if a.cols == 0 {
        if !accumulate {
            for i in 0..dst.rows {
                for j in 0..dst.cols {
                    dst.data[dst.off + i * dst.rs + j * dst.cs] = 0.0;
                }
            }
        }
        return;
    }
    let par = if parallel {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: every view was checked above to lie inside its slice for all (i, j) it
    // addresses; `dst` is borrowed mutably and so cannot alias `a` or `b`; strides are
    // non-negative and fit in isize because the slices' lengths do.
    unsafe {
        gemm::gemm(
            dst.rows,
            dst.cols,
            a.cols,
            dst.data.as_mut_ptr().add(dst.off),
            dst.cs as isize,
            dst.rs as isize,
            accumulate,
            a.data.as_ptr().add(a.off),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr().add(b.off),
            b.cs as isize,
            b.rs as isize,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            par,
        );
    }
}

/// Throughput of [`gemm`](fn@gemm) on a row-major `m × k` by `k × n` product: the best of `reps` timed
/// runs, in GFLOP/s (2·m·k·n per run). What `ventral bench` reports as the measured peak.
pub fn gemm_gflops(m: usize, k: usize, n: usize, reps: usize) -> f64 {
    product_gflops(gemm, (m, k, n), reps)
}

/// Throughput of a product `product(dst, accumulate, a, b)` on row-major operands: the best of
/// `reps` timed runs, in GFLOP/s.
pub fn product_gflops(
    product: impl Fn(MatMut<'_>, bool, MatRef<'_>, MatRef<'_>),
    (m, k, n): (usize, usize, usize),
    reps: usize,
) -> f64 {
    let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 * 0.1).collect();
    let b: Vec<f32> = (0..k * n).map(|i| (i % 7) as f32 * 0.1).collect();
    let mut c = vec![0.0f32; m * n];
    let mut best = f64::INFINITY;
    for _ in 0..reps.max(1) {
        let t = std::time::Instant::now();
        product(
            MatMut::rm(&mut c, 0, m, n),
            false,
            MatRef::rm(&a, 0, m, k),
            MatRef::rm(&b, 0, k, n),
        );
        best = best.min(t.elapsed().as_secs_f64());
    }
    2.0 * (m * k * n) as f64 / best / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemm_matches_naive_with_strides_and_accumulation() {
        let (m, n, k) = (5, 7, 3);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
        let mut naive = vec![0.0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                for l in 0..k {
                    naive[i * n + j] += a[i * k + l] * b[l * n + j];
                }
            }
        }
        let mut d = vec![1.0f32; m * n];
        gemm(
            MatMut::rm(&mut d, 0, m, n),
            true,
            MatRef::rm(&a, 0, m, k),
            MatRef::rm(&b, 0, k, n),
        );
        for (x, y) in d.iter().zip(&naive) {
            assert!((x - 1.0 - y).abs() < 1e-5);
        }
        // Transposed operands: (bᵀ aᵀ) = (a b)ᵀ.
        let mut e = vec![0.0f32; n * m];
        gemm(
            MatMut::rm(&mut e, 0, n, m),
            false,
            MatRef::rm(&b, 0, k, n).t(),
            MatRef::rm(&a, 0, m, k).t(),
        );
        for i in 0..m {
            for j in 0..n {
                assert!((e[j * m + i] - naive[i * n + j]).abs() < 1e-5);
            }
        }
    }
}
