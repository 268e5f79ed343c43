//! Helpers shared by the integration tests: a seeded random stream (SplitMix64), so every run
//! checks the same numbers.

#![allow(dead_code)]

/// SplitMix64: tiny, seeded, and the same on every machine.
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform integer in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }

    /// `n` standard normal values (Box-Muller).
    pub fn normals(&mut self, n: usize) -> Vec<f32> {
        (0..n)
            .map(|_| {
                let u1 = self.uniform().max(1e-300);
                let u2 = self.uniform();
                ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
            })
            .collect()
    }
}

/// Standard normal values for `seed`.
pub fn normals(n: usize, seed: u64) -> Vec<f32> {
    SplitMix::new(seed).normals(n)
}

/// Largest difference relative to the reference's largest magnitude (at least 1).
pub fn max_rel(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
        / scale
}

/// An rcnn-sat configuration at test size: 8 channels per layer, 5 classes, at most 3 steps,
/// 64 px (the smallest size its six 2×2 max-pools allow).
pub fn small_rcnn_sat(c: &mut ventral_models::rcnn_sat::RcnnSatConfig) {
    let n = c.layers().len();
    c.channels = Some(vec![8; n]);
    c.num_classes = 5;
    c.timesteps = c.timesteps.min(3);
    c.image_size = 64;
}

/// The device the backend-generic tests run on: `VENTRAL_TEST_DEVICE` (`cpu` when unset; e.g.
/// `wgpu` or `cuda:0` in a build with that feature), parsed as `--device` is.
///
/// # Panics
/// When the variable names a device this build or machine cannot run (so a GPU run that
/// silently fell back to the CPU cannot pass for one).
pub fn device() -> burn::tensor::Device {
    let name = device_name();
    let d = ventral_models::device::parse_device(&name)
        .unwrap_or_else(|e| panic!("VENTRAL_TEST_DEVICE={name}: {e}"));
    if name != "cpu" {
        println!("[device] {name}");
    }
    d
}

/// The name in `VENTRAL_TEST_DEVICE` (`cpu` when unset).
pub fn device_name() -> String {
    std::env::var("VENTRAL_TEST_DEVICE").unwrap_or_else(|_| "cpu".into())
}

/// `n` seeded standard-normal images `[n, 3, side, side]` on `device`, drawn on the CPU so
/// that every device sees the same images (and a check never depends on an unseeded draw).
pub fn images(
    n: usize,
    side: usize,
    seed: u64,
    device: &burn::tensor::Device,
) -> burn::tensor::Tensor<4> {
    use burn::tensor::{Device, Distribution, Tensor};
    Device::flex().seed(seed);
    Tensor::<4>::random(
        [n, 3, side, side],
        Distribution::Normal(0.0, 1.0),
        &Device::flex(),
    )
    .to_device(device)
}
