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

/// Whether this CPU has AVX2 and FMA (checked once).
pub fn avx2() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    #[cfg(target_arch = "x86_64")]
    {
        *HAS.get_or_init(|| {
            std::arch::is_x86_feature_detected!("avx2")
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
