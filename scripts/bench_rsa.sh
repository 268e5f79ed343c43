#!/usr/bin/env bash
# RSA: ventral rsa vs rsatoolbox's batched compare (Spearman over correlation RDMs), same data,
# one run; checks every value agrees.
#
#   PYTHON=/path/to/python bash scripts/bench_rsa.sh [STIMULI] [FEATURES] [SITES] [STEPS] [BINS]
#
# Defaults give 19 model steps × (2 regions × 19 bins) = 722 comparisons of 200-stimulus RDMs.
# Needs a Python with numpy, xarray, netCDF4 and rsatoolbox. Times the comparison step of each
# side (ventral: "compared in", no bootstraps) and prints the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
N="${1:-200}"; D="${2:-512}"; K="${3:-100}"; T="${4:-19}"; B="${5:-19}"
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
cargo build --release -q
V_BIN="${CARGO_TARGET_DIR:-target}/release/ventral"
"$PY" scripts/bench_rsa.py make "$W/bench" "$N" "$D" "$K" "$T" "$B"
V=$("$V_BIN" rsa --features "$W/bench.npz" --neural "$W/bench.nc" --out "$W/rsa" \
      --rdm correlation --compare spearman --bootstraps 0 2>&1 >/dev/null)
VS=$(echo "$V" | sed -n 's/.*compared in \([0-9.]*\) s.*/\1/p')
P=$("$PY" scripts/bench_rsa.py run "$W/bench")
PS=$(echo "$P" | sed -n 's/.*"compare_seconds": \([0-9.e-]*\).*/\1/p')
echo "RSA: $N stimuli, $T model steps × 2 regions × $B bins, Spearman of correlation RDMs"
echo "rsatoolbox: $P"
printf "%-12s %12s\n" "" "compare s"
printf "%-12s %12.4f\n" ventral "$VS"
printf "%-12s %12.4f\n" rsatoolbox "$PS"
"$PY" -c "print(f'rsatoolbox/ventral time ratio: {$PS / $VS:.1f} (>1: ventral faster)')"
"$PY" scripts/bench_rsa.py check "$W/bench" "$W/rsa/rsa.csv"
