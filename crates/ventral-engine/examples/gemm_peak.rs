//! Peak of the gemm micro-kernels on this machine (square and conv-shaped products), float32 and bf16 (`ventral_engine::bf16`, on AMX where the CPU has it):
//! `cargo run --release -p ventral-engine --example gemm_peak`.
fn main() {
    for (m, k, n) in [
        (1024, 1024, 1024),
        (128, 1152, 1024),
        (256, 2304, 256),
        (512, 4608, 64),
        (512, 512, 4096),
    ] {
        let g = ventral_engine::mat::gemm_gflops(m, k, n, 10);
        let h = ventral_engine::bf16::gemm_bf16_gflops(m, k, n, 10);
        println!("{m}x{k}x{n}: float32 {g:.1} GFLOP/s, bf16 {h:.1} GFLOP/s");
    }
}
