#!/usr/bin/env bash
# Per-bin neural predictivity: ventral neural-fit vs scikit-learn, same data, same splits
# (Brain-Score's StratifiedShuffleSplit draws), one run; checks the per-site r agree.
#
#   PYTHON=/path/to/python bash scripts/bench_neural.sh [STIMULI] [FEATURES] [SITES] [BINS] [SPLITS]
#
# REG=pls (default, PLSRegression(25, scale=False)) or REG=ridge (RidgeCV over ventral's default
# alpha grid); SOLVER=auto|dual|primal is passed to `ventral neural-fit --solver`.
# Needs a Python with numpy, xarray, netCDF4 and scikit-learn (to make the data and run the
# baseline). Prints seconds, peak memory (GNU time), the ratio and the largest r difference.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
REG="${REG:-pls}"
SOLVER="${SOLVER:-auto}"
N="${1:-1000}"; D="${2:-2000}"; K="${3:-100}"; B="${4:-6}"; S="${5:-5}"
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
cargo build --release -q
"$PY" scripts/bench_neural.py make "$W/bench" "$N" "$D" "$K" "$B"
V_BIN="${CARGO_TARGET_DIR:-target}/release/ventral"
TIME=/usr/bin/time
V=$( { $TIME -f "PEAK_KB %M" "$V_BIN" neural-fit --features "$W/bench.npz" --neural "$W/bench.nc" \
      --out "$W/fit" --splits "brainscore:$S" --seed 1 --regression "$REG" --solver "$SOLVER" \
      --bootstraps 0 --ceiling-splits 2 >/dev/null; } 2>&1 )
VS=$(echo "$V" | sed -n 's/.*fitted in \([0-9.]*\) s.*/\1/p')
VM=$(echo "$V" | sed -n 's/PEAK_KB //p')
P=$( { $TIME -f "PEAK_KB %M" "$PY" scripts/bench_neural.py fit "$W/bench" "$S" "$REG"; } 2>&1 )
PS=$(echo "$P" | sed -n 's/.*"seconds": \([0-9.]*\).*/\1/p')
PM=$(echo "$P" | sed -n 's/PEAK_KB //p')
echo "$REG per bin: $N stimuli × $D features × $K sites × $B bins × $S splits ($((B * S)) fits), solver $SOLVER"
printf "%-14s %10s %14s\n" "" "fit s" "peak MiB"
printf "%-14s %10.2f %14.0f\n" ventral "$VS" "$((VM / 1024))"
printf "%-14s %10.2f %14.0f\n" scikit-learn "$PS" "$((PM / 1024))"
"$PY" -c "print(f'sklearn/ventral time ratio: {$PS / $VS:.2f} (>1: ventral faster)')"
"$PY" scripts/bench_neural.py compare "$W/bench" "$REG" "$W/fit/sites.csv"
