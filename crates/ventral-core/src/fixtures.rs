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
