//! Locating the shared reference fixtures (`../shared/fixtures`, or `VENTRAL_FIXTURES`) for
//! tests: a missing fixture fails loudly when `VENTRAL_REQUIRE_FIXTURES` is set (CI) and is
//! skipped with a printed reason otherwise.

use std::path::PathBuf;

/// The calling crate's directory: `CARGO_MANIFEST_DIR` as `cargo test` sets it at run time,
/// else `compiled` (the caller's `env!("CARGO_MANIFEST_DIR")`).
///
/// A test binary built in one checkout is reused by cargo from another checkout sharing the
/// same `CARGO_TARGET_DIR` (fingerprints of path packages are relative to the workspace), so
/// the compile-time value can name a checkout that no longer exists; the run-time one cannot.
pub fn crate_dir(compiled: &str) -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(compiled))
}

/// The fixture at `rel` under the fixtures folder; `manifest_dir` is the calling crate's
/// `CARGO_MANIFEST_DIR` (crates live two levels below the repository root).
///
/// # Panics
/// When the fixture is missing and `VENTRAL_REQUIRE_FIXTURES` is set.
pub fn shared_fixture(manifest_dir: &str, rel: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("VENTRAL_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate_dir(manifest_dir).join("../../../shared/fixtures"));
    let p = dir.join(rel);
    if p.is_file() {
        return Some(p);
    }
    if std::env::var_os("VENTRAL_REQUIRE_FIXTURES").is_some() {
        panic!(
            "reference fixture {} is missing (VENTRAL_REQUIRE_FIXTURES is set)",
            p.display()
        );
    }
    eprintln!(
        "SKIPPED: reference fixture {} not found (set VENTRAL_FIXTURES)",
        p.display()
    );
    None
}

/// The deterministic values `scripts/convrnns_tf_forward.py` gives the original convrnns code
/// (its `unit(name, n)`), for the tests that hold ventral to that code's forward:
/// `u_k = ((k · 2654435761 + FNV-1a₃₂(name)) mod 2³²) / 2³² − 0.5`, a golden-ratio sequence
/// seeded by the name — exact in float64 in Python and here.
pub fn convrnns_unit(name: &str, n: usize) -> impl Iterator<Item = f64> {
    let mut s: u32 = 0x811C_9DC5;
    for b in name.bytes() {
        s = (s ^ b as u32).wrapping_mul(0x0100_0193);
    }
    let s = s as u64;
    (0..n as u64).map(move |k| ((k * 2_654_435_761 + s) % (1 << 32)) as f64 / 4_294_967_296.0 - 0.5)
}

/// That script's input image batch: `2 u_k` of the name `"input"` over NHWC `[b, h, w, c]`,
/// returned in NCHW order (`[b, c, h, w]`, ventral's).
pub fn convrnns_input_nchw(b: usize, h: usize, w: usize, c: usize) -> Vec<f32> {
    let mut x = vec![0.0f32; b * c * h * w];
    for (k, u) in convrnns_unit("input", b * h * w * c).enumerate() {
        let (cc, r) = (k % c, k / c);
        let (ww, r) = (r % w, r / w);
        let (hh, bb) = (r % h, r / h);
        x[((bb * c + cc) * h + hh) * w + ww] = (u * 2.0) as f32;
    }
    x
}
