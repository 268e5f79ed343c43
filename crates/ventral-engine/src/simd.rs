//! Run-time dispatch of plain loops to AVX2 + FMA code.
//!
//! The release build targets baseline x86-64 (SSE2), so the compiler vectorises the engine's
//! elementwise loops 4 lanes wide at most. [`run`] calls a closure from inside a function
//! compiled with `avx2,fma` enabled when the CPU has them: the closure is inlined there and its
//! loops are vectorised 8 lanes wide, with fused multiply-adds. Same source, same results up to
//! the rounding of fused multiply-adds.
//!
//! Call it inside each parallel task (rayon runs tasks in functions of its own, which do not
//! inherit the target features).

#![allow(unsafe_code)]

use std::sync::OnceLock;

/// The widest x86-64 vector instructions the engine may use: at most what the CPU has, and at
/// most what `VENTRAL_SIMD` says (read once: `baseline` = none beyond SSE2 — the portable
/// paths every other architecture takes —, `avx2` = AVX2 + FMA, no AVX-512 nor AMX, `avx512`
/// or unset = everything the CPU has). For testing the narrower paths on a wide machine and
/// for timing them; [`level_from_env`] says whether the variable is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Only what every CPU of the architecture has (SSE2 on x86-64, NEON on aarch64).
    Baseline,
    /// AVX2 + FMA.
    Avx2,
    /// AVX-512F (and AMX where the CPU has it).
    Avx512,
}

impl Level {
    /// Every level, narrowest first.
    pub const ALL: [Level; 3] = [Level::Baseline, Level::Avx2, Level::Avx512];

    /// The variable's spelling of this level.
    pub fn name(self) -> &'static str {
        match self {
            Level::Baseline => "baseline",
            Level::Avx2 => "avx2",
            Level::Avx512 => "avx512",
        }
    }
}

/// `VENTRAL_SIMD`'s level: `Ok(None)` when unset or empty, an error naming the variable and
/// the accepted values when it says something else (the CLI refuses to start then; the engine
/// itself treats an invalid value as unset).
pub fn level_from_env() -> Result<Option<Level>, String> {
    let Some(v) = std::env::var_os("VENTRAL_SIMD") else {
        return Ok(None);
    };
    let v = v.to_string_lossy();
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    match Level::ALL.into_iter().find(|l| l.name() == v) {
        Some(l) => Ok(Some(l)),
        None => Err(format!(
            "VENTRAL_SIMD={v}: expected baseline, avx2 or avx512 (or unset: whatever the CPU has)"
        )),
    }
}

/// Where dispatch reached x86-64-only code on another architecture: an engine bug (every
/// caller is behind [`avx2`], [`avx512`] or `bf16::amx_available`, which are false there).
#[cfg(not(target_arch = "x86_64"))]
pub(crate) fn x86_only() -> ! {
    unreachable!("x86-64 code reached on another architecture (a dispatch bug)")
}

/// The cap `VENTRAL_SIMD` puts on the vector instructions (checked once; other architectures
/// have only their baseline paths).
#[cfg(target_arch = "x86_64")]
fn cap() -> Level {
    static CAP: OnceLock<Level> = OnceLock::new();
    *CAP.get_or_init(|| level_from_env().ok().flatten().unwrap_or(Level::Avx512))
}

/// The vector instructions the engine uses on this CPU: the widest it has, capped by
/// `VENTRAL_SIMD`.
pub fn level() -> Level {
    if avx512() {
        Level::Avx512
    } else if avx2() {
        Level::Avx2
    } else {
        Level::Baseline
    }
}

/// Whether this CPU has AVX2 and FMA and `VENTRAL_SIMD` allows them (checked once).
pub fn avx2() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    #[cfg(target_arch = "x86_64")]
    {
        *HAS.get_or_init(|| {
            cap() >= Level::Avx2
                && std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        *HAS.get_or_init(|| false)
    }
}

/// `f()`, compiled for AVX2 + FMA when the CPU has them.
#[inline(always)]
pub fn run<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if avx2() {
        // SAFETY: the CPU was checked to support every feature the function is compiled with.
        return unsafe { with_avx2(f) };
    }
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,avx2,fma")]
fn with_avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// Whether this CPU has AVX-512F besides AVX2 and FMA and `VENTRAL_SIMD` allows it (checked
/// once).
pub fn avx512() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    #[cfg(target_arch = "x86_64")]
    {
        *HAS.get_or_init(|| {
            cap() >= Level::Avx512 && avx2() && std::arch::is_x86_feature_detected!("avx512f")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        *HAS.get_or_init(|| false)
    }
}

/// [`run`], compiled for AVX-512F too when the CPU has it: loops vectorised 16 float or 8
/// double lanes wide. For loops whose vector width does not change the arithmetic (each lane
/// its own element or its own fixed partial sum, as every loop of this crate: Rust never
/// reassociates floating-point operations), so the results are those of [`run`], bit for bit.
#[inline(always)]
pub fn run_wide<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if avx512() {
        // SAFETY: the CPU was checked to support every feature the function is compiled with.
        return unsafe { with_avx512(f) };
    }
    run(f)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,avx2,fma,avx512f")]
fn with_avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// The float32 multiply-add peak of this machine, measured: every rayon thread at once runs
/// independent chains of fused multiply-adds on the widest vectors the CPU has (x86-64: 12
/// chains of AVX-512F, else AVX2; aarch64: 16 chains of NEON, enough for four 4-lane FMA
/// pipes) for about `ms` milliseconds; GFLOP/s of the fastest of three rounds (2 flops per
/// lane). It counts what the cores deliver at the clock they run (turbo included, on a shared
/// machine whatever it lets them have), which the clock in `/proc/cpuinfo` does not say.
/// `None` on x86-64 without AVX2 + FMA (or `VENTRAL_SIMD=baseline`) and on other
/// architectures.
pub fn fma_peak_gflops(ms: f64) -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    {
        if !avx2() {
            return None;
        }
        let wide = avx512();
        let lanes = if wide { 16 } else { 8 };
        // SAFETY: the features each loop is compiled with were checked above.
        let chains = |iters: usize| unsafe {
            if wide {
                fma_chains512(iters)
            } else {
                fma_chains256(iters)
            }
        };
        Some(peak_of(ms, CHAINS * lanes, chains))
    }
    #[cfg(target_arch = "aarch64")]
    {
        Some(peak_of(ms, CHAINS * 4, fma_chains_neon))
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let _ = ms;
        None
    }
}

/// The bf16 dot-product peak of this machine, measured as [`fma_peak_gflops`] is: every rayon
/// thread runs independent chains of AVX512-BF16's `VDPBF16PS` (16 float32 lanes, each adding
/// two bf16 products: 32 multiply-adds per instruction) for about `ms` milliseconds; GFLOP/s
/// of the fastest of three rounds. What the engine's bf16 convolutions on dot products
/// ([`crate::bf16::bf16_unit`] `avx512bf16`) can reach at most: twice the float32 peak where
/// the instruction issues at the FMA's rate (AMD Zen 4), the same where at half of it.
/// `None` without AVX-512F + AVX512-BF16, with AVX-512 capped (`VENTRAL_SIMD` below
/// `avx512`: the engine then runs no dot products either) and off x86-64.
pub fn bf16_dot_peak_gflops(ms: f64) -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    {
        if !(avx512() && is_x86_feature_detected!("avx512bf16")) {
            return None;
        }
        // SAFETY: AVX-512F and AVX512-BF16 checked above.
        let chains = |iters: usize| unsafe { dpbf16_chains(iters) };
        Some(peak_of(ms, CHAINS * 32, chains))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = ms;
        None
    }
}

/// GFLOP/s of `chains(iters)` (`lanes_per_iter` fused multiply-adds per iteration) on every
/// rayon thread at once, the iterations calibrated to about `ms` on one thread first.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn peak_of(ms: f64, lanes_per_iter: usize, chains: impl Fn(usize) -> f32 + Sync) -> f64 {
    let mut iters = 1 << 12;
    loop {
        let t = std::time::Instant::now();
        std::hint::black_box(chains(iters));
        let el = t.elapsed().as_secs_f64() * 1e3;
        if el >= ms / 4.0 || iters >= 1 << 30 {
            iters = ((iters as f64) * (ms / el.max(1e-3))).max(1.0) as usize;
            break;
        }
        iters *= 4;
    }
    let threads = rayon::current_num_threads();
    let mut best = f64::MAX;
    for _ in 0..3 {
        let t = std::time::Instant::now();
        rayon::broadcast(|_| std::hint::black_box(chains(iters)));
        best = best.min(t.elapsed().as_secs_f64());
    }
    let flops = (threads * iters * lanes_per_iter * 2) as f64;
    flops / best / 1e9
}

/// Independent multiply-add chains of [`fma_peak_gflops`]: more than the FMA latency (4) ×
/// pipes (2) needs to keep every pipe busy.
#[cfg(target_arch = "x86_64")]
const CHAINS: usize = 12;
/// On aarch64: latency 4 × up to four 128-bit FMA pipes (Apple's big cores).
#[cfg(target_arch = "aarch64")]
const CHAINS: usize = 16;

/// `iters` rounds of [`CHAINS`] independent 4-lane fused multiply-adds (NEON is part of every
/// aarch64 CPU).
#[cfg(target_arch = "aarch64")]
fn fma_chains_neon(iters: usize) -> f32 {
    use std::arch::aarch64::*;
    // SAFETY: NEON is part of every aarch64 CPU (the target enables it); register arithmetic
    // only, no memory accessed.
    unsafe {
        let (m, c) = (vdupq_n_f32(0.999_999), vdupq_n_f32(1e-7));
        let mut a = [vdupq_n_f32(1.0); CHAINS];
        for _ in 0..iters {
            for x in a.iter_mut() {
                *x = vfmaq_f32(c, *x, m);
            }
        }
        let mut t = vdupq_n_f32(0.0);
        for x in a {
            t = vaddq_f32(t, x);
        }
        vaddvq_f32(t)
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,avx2,fma")]
fn fma_chains256(iters: usize) -> f32 {
    use std::arch::x86_64::*;
    let (m, c) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
    let mut a = [_mm256_set1_ps(1.0); CHAINS];
    for _ in 0..iters {
        for x in a.iter_mut() {
            *x = _mm256_fmadd_ps(*x, m, c);
        }
    }
    let mut t = _mm256_setzero_ps();
    for x in a {
        t = _mm256_add_ps(t, x);
    }
    let mut s = [0.0f32; 8];
    // SAFETY: `s` holds 8 floats.
    unsafe { _mm256_storeu_ps(s.as_mut_ptr(), t) };
    s.iter().sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,avx2,fma,avx512f")]
fn fma_chains512(iters: usize) -> f32 {
    use std::arch::x86_64::*;
    let (m, c) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
    chains512(iters, _mm512_set1_ps(1.0), |x| _mm512_fmadd_ps(x, m, c))
}

/// [`CHAINS`] independent chains of `step` from `start`, `iters` rounds, summed: the loop of
/// the 512-bit peaks (`step` inlined into its caller, which has the features it needs).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn chains512(
    iters: usize,
    start: std::arch::x86_64::__m512,
    step: impl Fn(std::arch::x86_64::__m512) -> std::arch::x86_64::__m512,
) -> f32 {
    let mut a = [start; CHAINS];
    for _ in 0..iters {
        for x in a.iter_mut() {
            *x = step(*x);
        }
    }
    // SAFETY: `__m512` is 16 floats.
    a.iter()
        .map(|x| {
            unsafe { std::mem::transmute::<std::arch::x86_64::__m512, [f32; 16]>(*x) }
                .iter()
                .sum::<f32>()
        })
        .sum()
}

/// Independent `VDPBF16PS` chains of [`bf16_dot_peak_gflops`] (latency 6 × 2 pipes at most).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
fn dpbf16_chains(iters: usize) -> f32 {
    use std::arch::x86_64::*;
    // Pairs of bf16 0.0009765625 (2^-10, bits 0x3A80) in every 32-bit lane: each instruction
    // adds 2 · 2^-20 per lane, exact and far from overflow for any count of iterations.
    // SAFETY: register arithmetic only; `__m512bh` and `__m512i` are both 512 bits.
    let v: __m512bh = unsafe { std::mem::transmute(_mm512_set1_epi32(0x3A80_3A80)) };
    chains512(iters, _mm512_setzero_ps(), |x| _mm512_dpbf16_ps(x, v, v))
}

#[cfg(test)]
mod tests {
    /// The peak is a positive, finite rate wherever the CPU has the vector units (no bound on
    /// its size: timings are not asserted).
    #[test]
    fn fma_peak_is_a_rate() {
        match super::fma_peak_gflops(2.0) {
            Some(g) => assert!(g.is_finite() && g > 0.0, "peak {g}"),
            None => assert!(
                !super::avx2() && !cfg!(target_arch = "aarch64"),
                "no peak on a CPU with AVX2 + FMA or NEON"
            ),
        }
    }

    /// The bf16 dot-product peak is a positive, finite rate exactly where the CPU has
    /// AVX512-BF16.
    #[test]
    fn bf16_dot_peak_is_a_rate() {
        #[cfg(target_arch = "x86_64")]
        let has = super::avx512() && is_x86_feature_detected!("avx512bf16");
        #[cfg(not(target_arch = "x86_64"))]
        let has = false;
        match super::bf16_dot_peak_gflops(2.0) {
            Some(g) => assert!(has && g.is_finite() && g > 0.0, "peak {g}"),
            None => assert!(!has, "no bf16 peak on a CPU with AVX512-BF16"),
        }
    }
}
