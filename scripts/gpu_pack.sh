#!/usr/bin/env bash
# Build what scripts/gpu_check.sh runs on a GPU machine that has no Rust toolchain and no
# network: a `--features cuda` release binary of ventral and the backend-generic test binaries
# (parity, registry, precision), stripped and xz-compressed into .gpu/ (in .gitignore), plus the parity
# fixture under .gpu/fixtures.
#
#   bash scripts/gpu_pack.sh                              # the binary (38 MiB compressed)
#   PARTS="tests fixtures" bash scripts/gpu_pack.sh       # + test binaries and the fixture
#   PARTS="tests fixtures" TESTS=parity bash …            # only the parity test (fits one call)
#
# The device tool carries at most 64 MiB per call, the repository (9 MiB) included: the binary
# fits; each test binary is as large again and the fixture is 37 MiB, so they need calls of
# their own (a warm machine keeps the ignored files of the previous call). The binary alone
# checks the device: `ventral bench --device` compares the device's log-probabilities and
# gradients with the native CPU engine's (which CI holds to PyTorch), see gpu_check.sh.
# Builds in CARGO_TARGET_DIR (default ~/.cache/ventral-target-gpu: the GPU feature set keeps its
# own target directory so that it never invalidates the CPU build's). Measured on the 2-core
# build machine (2026-12-04): 35 min cold (62 min on a contended Zen 1, 2026-12-05); after an
# edit of ventral's crates 1–3 min, plus 2 min of xz. The tests part builds the ventral-models
# test binaries under that crate's own features, which recompiles part of the dependency tree
# again. The binary is 812 MB as built (debug line tables, static LLVM), 177 MB stripped,
# 37 MiB compressed. Needs
# scripts/setup_gpu_build.sh (run here) for the offline LLVM.
set -euo pipefail
cd "$(dirname "$0")/.."
PARTS="${PARTS:-ventral}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ventral-target-gpu}"
PY="${PYTHON:-python3}"
bash scripts/setup_gpu_build.sh
mkdir -p .gpu
pack() { # source binary, name in .gpu/
  local tmp
  tmp="$(mktemp .gpu/.pack.XXXXXX)"
  strip -o "$tmp" "$1"
  xz -9 -T0 -c "$tmp" > ".gpu/$2.xz.part"
  rm -f "$tmp"
  mv ".gpu/$2.xz.part" ".gpu/$2.xz"
  rm -f ".gpu/$2"
  echo "  .gpu/$2.xz: $(du -h ".gpu/$2.xz" | cut -f1) ($(du -h "$1" | cut -f1) as built, stripped and compressed)"
}
case " $PARTS " in *" ventral "*)
  cargo build --release --locked -p ventral-cli --features ventral-cli/cuda
  pack "$CARGO_TARGET_DIR/release/ventral" ventral ;;
esac
case " $PARTS " in *" tests "*)
  # The test executables, as cargo names them (the JSON messages give their paths).
  TESTS="${TESTS:-parity registry precision}"
  # shellcheck disable=SC2046 # one --test per name
  cargo test --release --locked -p ventral-models --features cuda $(printf -- '--test %s ' $TESTS) \
    --no-run --message-format json |
    "$PY" -c 'import json, sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["target"]["name"], m["executable"])' |
    while read -r name exe; do pack "$exe" "test_$name"; done ;;
esac
case " $PARTS " in *" fixtures "*)
  src="${VENTRAL_FIXTURES:-../shared/fixtures}/blt_ccn23"
  mkdir -p .gpu/fixtures/blt_ccn23
  cp "$src"/*.safetensors .gpu/fixtures/blt_ccn23/
  echo "  .gpu/fixtures: $(du -sh .gpu/fixtures | cut -f1)" ;;
esac
echo "repository (tracked files): $(git ls-files -z | xargs -0 du -cb | tail -1 | awk '{printf "%.1f MiB", $1 / 1048576}')"
echo ".gpu: $(du -sb .gpu | awk '{printf "%.1f MiB", $1 / 1048576}') in all"
