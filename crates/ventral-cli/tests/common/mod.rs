//! Helpers shared by the CLI integration tests (each test binary uses a subset).

#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

/// The `ventral` binary as a command — run through `VENTRAL_TEST_RUNNER` when it is set (a
/// program and its arguments, split at whitespace), so that `scripts/test_aarch64.sh cli` can
/// run these tests on a cross-built binary under `qemu-aarch64` without binfmt_misc.
pub fn command() -> Command {
    let bin = env!("CARGO_BIN_EXE_ventral");
    let runner = std::env::var("VENTRAL_TEST_RUNNER").unwrap_or_default();
    let mut words = runner.split_whitespace();
    match words.next() {
        Some(program) => {
            let mut c = Command::new(program);
            c.args(words).arg(bin);
            c
        }
        None => Command::new(bin),
    }
}

/// Runs the `ventral` binary with `args`.
pub fn ventral(args: &[&str]) -> Output {
    command().args(args).output().expect("run ventral")
}

/// A path as `&str`.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Asserts success, printing both streams otherwise.
pub fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Runs ventral expecting the bad-input exit code 2; returns stderr.
pub fn fails(args: &[&str]) -> String {
    let o = ventral(args);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stderr).into_owned()
}
