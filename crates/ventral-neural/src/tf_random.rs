//! TensorFlow's stateless random numbers, as far as Brain-Score's OST decoder needs them: the
//! Philox-4×32-10 counter generator, `tf.random.stateless_truncated_normal` (float32, CPU
//! kernel) and Keras 3's `VarianceScaling(seed=…)` initializer built on it — the initial
//! weights of `TFProbabilitiesClassifier` (`tf.compat.v1.keras.initializers.VarianceScaling
//! (seed=0)`: truncated normal, fan_in, scale 1).
//!
//! Reproduced from TensorFlow's kernels (`core/lib/random/philox_random.h`,
//! `random_distributions.h`, `kernels/random_op_cpu.h`, `stateless_random_ops_v2.cc`):
//! the seed pair is scrambled into a key and counter by one Philox block
//! (`StatelessRandomGetKeyCounter`); output group g (4 values) starts from the counter skipped by
//! 256·g blocks; each group draws pairs of uint32 through a single-sample adapter, maps them to
//! two normals by Box–Muller in float32 and keeps those with |x| < 2 until it has four.
//! Checked bit for bit against TensorFlow 2.21 in `tests/brainscore_ost.rs`.

/// Philox-4×32 with 10 rounds, TensorFlow's variant (`PhiloxRandom`).
#[derive(Debug, Clone, Copy)]
pub struct Philox {
    counter: [u32; 4],
    key: [u32; 2],
}

impl Philox {
    pub fn new(counter: [u32; 4], key: [u32; 2]) -> Self {
        Self { counter, key }
    }

    fn round(c: [u32; 4], k: [u32; 2]) -> [u32; 4] {
        let p0 = u64::from(0xD251_1F53u32) * u64::from(c[0]);
        let p1 = u64::from(0xCD9E_8D57u32) * u64::from(c[2]);
        [
            ((p1 >> 32) as u32) ^ c[1] ^ k[0],
            p1 as u32,
            ((p0 >> 32) as u32) ^ c[3] ^ k[1],
            p0 as u32,
        ]
    }

    /// The next 128-bit block; the counter advances by one.
    pub fn next_block(&mut self) -> [u32; 4] {
        let (mut c, mut k) = (self.counter, self.key);
        for r in 0..10 {
            c = Self::round(c, k);
            if r < 9 {
                k[0] = k[0].wrapping_add(0x9E37_79B9);
                k[1] = k[1].wrapping_add(0xBB67_AE85);
            }
        }
        self.skip(1);
        c
    }

    /// Advances the 128-bit counter by `n` blocks.
    pub fn skip(&mut self, n: u64) {
        let c = &mut self.counter;
        let v = u128::from(c[0])
            | (u128::from(c[1]) << 32)
            | (u128::from(c[2]) << 64)
            | (u128::from(c[3]) << 96);
        let v = v.wrapping_add(u128::from(n));
        for (i, w) in c.iter_mut().enumerate() {
            *w = (v >> (32 * i)) as u32;
        }
    }

    /// The generator of a stateless op with seed `[s0, s1]` (`StatelessRandomGetKeyCounter`).
    pub fn from_stateless_seed(s0: u64, s1: u64) -> Self {
        let mut scramble = Philox::new(
            [s0 as u32, (s0 >> 32) as u32, s1 as u32, (s1 >> 32) as u32],
            [0x3ec8_f720, 0x0246_1e29],
        );
        let mix = scramble.next_block();
        Philox::new([0, 0, mix[2], mix[3]], [mix[0], mix[1]])
    }
}

/// `Uint32ToFloat`: a uniform float in [0, 1) from the low 23 bits.
fn uint32_to_float(x: u32) -> f32 {
    f32::from_bits((127 << 23) | (x & 0x7f_ffff)) - 1.0
}

/// TensorFlow's `BoxMullerFloat` (float32 throughout; 2π·u is formed in double as the C++
/// expression `2.0f * M_PI * u` is).
fn box_muller(x0: u32, x1: u32) -> (f32, f32) {
    let u1 = uint32_to_float(x0).max(1.0e-7);
    let v1 = (2.0 * std::f64::consts::PI * f64::from(uint32_to_float(x1))) as f32;
    let u2 = (-2.0f32 * u1.ln()).sqrt();
    (v1.sin() * u2, v1.cos() * u2)
}

/// `tf.random.stateless_truncated_normal(shape, seed=[s0, s1])` (float32, mean 0, stddev 1)
/// flattened row-major: `n` values.
pub fn stateless_truncated_normal(n: usize, s0: u64, s1: u64) -> Vec<f32> {
    const GROUP: usize = 4;
    const SKIP_PER_GROUP: u64 = 256; // kGroupSize · kReservedSamplesPerOutput / 4
    let base = Philox::from_stateless_seed(s0, s1);
    let mut out = Vec::with_capacity(n);
    let mut g = 0u64;
    while out.len() < n {
        let mut philox = base;
        philox.skip(g * SKIP_PER_GROUP);
        // SingleSampleAdapter: one uint32 at a time from 4-wide blocks.
        let (mut block, mut used) = ([0u32; 4], 4usize);
        let mut next = || {
            if used == 4 {
                block = philox.next_block();
                used = 0;
            }
            used += 1;
            block[used - 1]
        };
        let mut kept = 0;
        while kept < GROUP {
            let (x0, x1) = (next(), next());
            let (f0, f1) = box_muller(x0, x1);
            for f in [f0, f1] {
                if kept < GROUP && f.abs() < 2.0 {
                    if out.len() < n {
                        out.push(f);
                    }
                    kept += 1;
                }
            }
        }
        g += 1;
    }
    out
}

/// Keras 3 `VarianceScaling(scale=1, mode="fan_in", distribution="truncated_normal",
/// seed=seed)` for a `[fan_in, fan_out]` kernel (TensorFlow backend): row-major float32.
pub fn variance_scaling_fan_in(fan_in: usize, fan_out: usize, seed: u32) -> Vec<f32> {
    let stddev = ((1.0 / (fan_in.max(1) as f64)).sqrt() / 0.879_625_661_034_239_8) as f32;
    stateless_truncated_normal(fan_in * fan_out, u64::from(seed), 0)
        .into_iter()
        .map(|v| v * stddev)
        .collect()
}
