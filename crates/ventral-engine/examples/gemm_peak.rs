//! Peak of the gemm micro-kernels on this machine (square and conv-shaped products).
use std::time::Instant;
use ventral_engine::mat::{MatMut, MatRef, gemm};
fn main() {
    for (m, k, n) in [
        (1024, 1024, 1024),
        (128, 1152, 1024),
        (256, 2304, 256),
        (512, 4608, 64),
        (512, 512, 4096),
    ] {
        let a = vec![0.5f32; m * k];
        let b = vec![0.25f32; k * n];
        let mut c = vec![0.0f32; m * n];
        let mut best = f64::MAX;
        for _ in 0..10 {
            let t = Instant::now();
            gemm(
                MatMut::rm(&mut c, 0, m, n),
                false,
                MatRef::rm(&a, 0, m, k),
                MatRef::rm(&b, 0, k, n),
            );
            best = best.min(t.elapsed().as_secs_f64());
        }
        println!(
            "{m}x{k}x{n}: {:.1} GFLOP/s",
            2.0 * (m * k * n) as f64 / best / 1e9
        );
    }
}
