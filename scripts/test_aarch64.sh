#!/usr/bin/env bash
# Cross-build ventral for aarch64 (Apple-Silicon-class and Graviton-class CPUs run the same
# portable engine paths) and run its engine and model tests under qemu-user emulation.
#
#   bash scripts/test_aarch64.sh                 # engine, the model parity tests, the other crates
#   bash scripts/test_aarch64.sh quick           # engine unit tests, kernels, engine_ops (CI)
#   bash scripts/test_aarch64.sh --test fast     # other cargo test arguments for ventral-models
#   bash scripts/test_aarch64.sh cli [ARGS]      # ventral-cli's tests: the binary under qemu too
#
# Needs (Debian): qemu-user, gcc-aarch64-linux-gnu, libc6-dev-arm64-cross, and the Rust target
# (`rustup target add aarch64-unknown-linux-gnu`); INSTALL=1 installs what is missing. Exits 3
# (nothing run) where they are missing and cannot be installed; CI skips the step then. Emulation
# is 30-60x slower than native: the default set takes about 45 minutes on 2 cores (the BLT
# parity test alone about 35), `quick` about one, after a cold cross-build of about 10. Timings
# under qemu mean nothing; this checks that the code builds, links and computes the same numbers.
set -euo pipefail
cd "$(dirname "$0")/.."

target=aarch64-unknown-linux-gnu
# What is missing: Debian packages, then `rust-target` for the Rust target.
missing() {
  command -v qemu-aarch64 >/dev/null || echo qemu-user
  command -v aarch64-linux-gnu-gcc >/dev/null || echo gcc-aarch64-linux-gnu
  [ -d /usr/aarch64-linux-gnu/lib ] || echo libc6-dev-arm64-cross
  rustup target list --installed | grep -qx "$target" || echo rust-target
}
gone=$(missing)
if [ -n "$gone" ] && [ "${INSTALL:-0}" = 1 ]; then
  pkgs=$(echo "$gone" | grep -vx rust-target || true)
  if [ -n "$pkgs" ]; then
    # shellcheck disable=SC2086 # one package per word
    apt-get install -y -q $pkgs >/dev/null 2>&1 ||
      { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q $pkgs >/dev/null 2>&1; } || true
  fi
  echo "$gone" | grep -qx rust-target && { rustup target add "$target" || true; }
  gone=$(missing)
fi
if [ -n "$gone" ]; then
  echo "unavailable here: $(echo $gone) (Debian packages: apt-get install -y …; rust-target:" \
    "rustup target add $target; or INSTALL=1)" >&2
  exit 3
fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ventral-target}"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"

if [ "${1:-}" = cli ]; then
  # The CLI's tests start the `ventral` binary as a child process; without binfmt_misc the
  # kernel cannot run an aarch64 executable, so the tests start it through qemu themselves
  # (`VENTRAL_TEST_RUNNER`, read by tests/common's `command`).
  shift
  echo "== ventral-cli tests ($target, qemu, the binary through VENTRAL_TEST_RUNNER)"
  VENTRAL_TEST_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu" \
    cargo test --locked --target "$target" -p ventral-cli "$@"
  exit 0
fi
echo "== engine unit tests ($target, qemu)"
cargo test --locked --target "$target" -p ventral-engine
echo "== model tests ($target, qemu)"
if [ "${1:-}" = quick ]; then
  cargo test --locked --target "$target" -p ventral-models --test kernels --test engine_ops
elif [ $# -gt 0 ]; then
  cargo test --locked --target "$target" -p ventral-models "$@"
else
  # The PyTorch BLT parity fixture, the PyTorchTNN ConvRNN parity graphs, the engine's kernels
  # and operations inside burn against burn's float64 autodiff, and the native BLT engine.
  cargo test --locked --target "$target" -p ventral-models \
    --test parity --test convrnn --test kernels --test engine_ops --test fast
  # The framework-free crates: readers, stimuli, the golden tests against scikit-learn,
  # Brain-Score and rsatoolbox, the dynamics analysis and report, training's units.
  echo "== other crates ($target, qemu)"
  cargo test --locked --target "$target" -p ventral-core -p ventral-data -p ventral-neural \
    -p ventral-analysis -p ventral-report -p ventral-train
fi
# ventral-cli's tests run apart (`cli`, above): they start the `ventral` binary as a child
# process, through qemu by VENTRAL_TEST_RUNNER (binfmt_misc, which would hand aarch64
# executables to qemu by itself, is rarely allowed in containers).
