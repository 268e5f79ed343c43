#!/usr/bin/env bash
# Per-bin PLS(25) predictivity: ventral neural-fit vs scikit-learn, same data, one run.
#
#   PYTHON=/path/to/python bash scripts/bench_neural.sh [STIMULI] [FEATURES] [SITES] [BINS] [SPLITS]
#
# Needs a Python with numpy, xarray, netCDF4 and scikit-learn (to make the data and run the
# baseline). Prints seconds, peak memory (GNU time) and the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
N="${1:-1000}"; D="${2:-2000}"; K="${3:-100}"; B="${4:-6}"; S="${5:-5}"
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
cargo build --release -q
"$PY" scripts/bench_neural.py make "$W/bench" "$N" "$D" "$K" "$B"
TIME=/usr/bin/time
V=$( { $TIME -f "PEAK_KB %M" target/release/ventral neural-fit --features "$W/bench.npz" --neural "$W/bench.nc" \
      --out "$W/fit" --splits "$S" --bootstraps 0 --ceiling-splits 2 >/dev/null; } 2>&1 )
VS=$(echo "$V" | sed -n 's/.*fitted in \([0-9.]*\) s.*/\1/p')
VM=$(echo "$V" | sed -n 's/PEAK_KB //p')
P=$( { $TIME -f "PEAK_KB %M" "$PY" scripts/bench_neural.py fit "$W/bench" "$S"; } 2>&1 )
PS=$(echo "$P" | sed -n 's/.*"seconds": \([0-9.]*\).*/\1/p')
PM=$(echo "$P" | sed -n 's/PEAK_KB //p')
echo "PLS(25) per bin: $N stimuli × $D features × $K sites × $B bins × $S splits ($((B * S)) fits)"
printf "%-14s %10s %14s\n" "" "fit s" "peak MiB"
printf "%-14s %10.2f %14.0f\n" ventral "$VS" "$((VM / 1024))"
printf "%-14s %10.2f %14.0f\n" scikit-learn "$PS" "$((PM / 1024))"
"$PY" -c "print(f'sklearn/ventral time ratio: {$PS / $VS:.2f} (>1: ventral faster)')"
