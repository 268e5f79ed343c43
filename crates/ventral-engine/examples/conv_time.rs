use std::time::Instant;
use ventral_engine::conv::{Conv, Scratch};
fn main() {
    let b = 16;
    for &(ci, co, side) in &[
        (8, 8, 64),
        (16, 16, 32),
        (16, 16, 16),
        (32, 32, 8),
        (3, 8, 64),
    ] {
        let g = Conv::new(ci, co, 3, 1, 1, side, side);
        let x: Vec<f32> = (0..ci * b * side * side)
            .map(|i| (i % 7) as f32 * 0.1)
            .collect();
        let w: Vec<f32> = (0..co * ci * 9).map(|i| (i % 5) as f32 * 0.1).collect();
        let dy: Vec<f32> = (0..co * b * side * side)
            .map(|i| (i % 3) as f32 * 0.1)
            .collect();
        let mut y = vec![0.0f32; co * b * side * side];
        let mut dx = vec![0.0f32; x.len()];
        let mut s = Scratch::default();
        let flop = 2.0 * g.macs_per_image() as f64 * b as f64;
        let mut best = [f64::MAX; 2];
        for _ in 0..20 {
            let t = Instant::now();
            g.forward(&w, &x, b, &mut y, false, &mut s);
            best[0] = best[0].min(t.elapsed().as_secs_f64());
            let t = Instant::now();
            g.backward_data(&w, &dy, b, &mut dx, &mut s);
            best[1] = best[1].min(t.elapsed().as_secs_f64());
        }
        println!(
            "{ci}->{co} {side}: fwd {:.2} ms {:.1} GF/s, bwd_data {:.2} ms {:.1} GF/s",
            best[0] * 1e3,
            flop / best[0] / 1e9,
            best[1] * 1e3,
            flop / best[1] / 1e9
        );
    }
}
#[allow(dead_code)]
pub fn kern() {
    use ventral_engine::kernel::{Small, small_m};
    for &(m, n, k) in &[
        (8usize, 65536usize, 72usize),
        (16, 16384, 144),
        (72, 65536, 8),
        (32, 4096, 288),
    ] {
        let a: Vec<f32> = (0..m * k).map(|i| (i % 5) as f32).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 7) as f32).collect();
        let mut c = vec![0.0f32; m * n];
        let mut best = f64::MAX;
        for _ in 0..20 {
            let t = Instant::now();
            small_m(
                m,
                n,
                k,
                Small {
                    data: &a,
                    off: 0,
                    rs: k,
                    cs: 1,
                },
                &b,
                0,
                n,
                &mut c,
                0,
                n,
                false,
            );
            best = best.min(t.elapsed().as_secs_f64());
        }
        println!(
            "small_m {m}x{n}x{k}: {:.2} ms {:.1} GF/s",
            best * 1e3,
            2.0 * (m * n * k) as f64 / best / 1e9
        );
    }
}
