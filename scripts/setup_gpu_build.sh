#!/usr/bin/env bash
# Prepare this machine to build ventral with `--features cuda` without downloading at build time.
#
#   bash scripts/setup_gpu_build.sh            # idempotent; prints what it did
#   cargo build --release --features cuda      # then builds offline (wgpu needs no setup)
#
# Why: burn's CUDA backend (cubecl-cuda 0.11) compiles kernels with LLVM's NVPTX target through
# `tracel-llvm-bundler`, whose build script downloads LLVM 23.1 unless the file
# `.tracel-llvm-installed` exists in its prefix,
#   ${XDG_DATA_HOME:-~/.local/share}/tracel/tracel-llvm-23.1.0-4
# (no Cargo feature removes that; Debian has no LLVM 23). PyPI's `mlc-llvm-static` (+ its
# `-extra-targets` wheel, which adds NVPTX) is a static LLVM 23.1 with `bin/llvm-config`: this
# script unpacks both wheels into that prefix and writes the sentinel.
#
# Wheels: taken from $VENTRAL_LLVM_WHEELS (default ~/.cache/ventral-llvm-wheels) when present —
# copy them there on an air-gapped machine — else fetched once with `pip download`.
# Run time (not this script): CUDA needs the driver's libcuda.so.1 and libdevice.10.bc
# (PyPI `nvidia-cuda-nvcc-cu12`; point CUDA_PATH at it); see README "GPUs".
set -euo pipefail

VERSION="23.1.1.post0"
DATA="${XDG_DATA_HOME:-$HOME/.local/share}"
PREFIX="$DATA/tracel/tracel-llvm-23.1.0-4"
WHEELS="${VENTRAL_LLVM_WHEELS:-$HOME/.cache/ventral-llvm-wheels}"
PYTHON="${PYTHON:-python3}"

check() {
  local cfg="$PREFIX/bin/llvm-config"
  [ -f "$PREFIX/.tracel-llvm-installed" ] && [ -x "$cfg" ] || return 1
  local v t
  v="$("$cfg" --version)" || return 1
  t="$("$cfg" --targets-built)" || return 1
  case "$v" in 23.1.*) ;; *) echo "llvm-config in $PREFIX reports $v, need 23.1" >&2; return 1 ;; esac
  case " $t " in *" NVPTX "*) ;; *) echo "LLVM in $PREFIX lacks the NVPTX target" >&2; return 1 ;; esac
  echo "LLVM $v with NVPTX ready in $PREFIX"
}

if check; then
  exit 0
fi

mkdir -p "$WHEELS"
have() { ls "$WHEELS"/$1-"$VERSION"-*.whl >/dev/null 2>&1; }
if ! have mlc_llvm_static || ! have mlc_llvm_static_extra_targets; then
  echo "fetching mlc-llvm-static $VERSION wheels into $WHEELS (about 90 MB)"
  "$PYTHON" -m pip download --no-deps --only-binary=:all: -d "$WHEELS" \
    "mlc-llvm-static==$VERSION" "mlc-llvm-static-extra-targets==$VERSION"
fi

tmp="$(mktemp -d "$DATA/tracel-llvm-setup.XXXXXX" 2>/dev/null || { mkdir -p "$DATA"; mktemp -d "$DATA/tracel-llvm-setup.XXXXXX"; })"
trap 'rm -rf "$tmp"' EXIT
for w in "$WHEELS"/mlc_llvm_static-"$VERSION"-*.whl "$WHEELS"/mlc_llvm_static_extra_targets-"$VERSION"-*.whl; do
  "$PYTHON" -m zipfile -e "$w" "$tmp/x"
done
chmod +x "$tmp/x/mlc_llvm_static/static/bin/"*
touch "$tmp/x/mlc_llvm_static/static/.tracel-llvm-installed"
mkdir -p "$(dirname "$PREFIX")"
rm -rf "$PREFIX.old"
[ -e "$PREFIX" ] && mv "$PREFIX" "$PREFIX.old"
mv "$tmp/x/mlc_llvm_static/static" "$PREFIX"
rm -rf "$PREFIX.old"
check
