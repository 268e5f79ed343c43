#!/usr/bin/env bash
# Representation-dynamics analysis: `ventral dynamics` vs a vectorised NumPy implementation of
# the same definitions (scripts/dynamics_reference.py analyse_vec), same files, one run.
#
#   PYTHON=/path/to/python bash scripts/bench_dynamics.sh [IMAGES] [STEPS] [CLASSES] [UNITS]
#
# Defaults 25000 × 10 × 100 × 512 (about 1.2 GB of npz in a temp dir). Needs a Python with numpy
# and scipy. The trained file has accuracy rising over steps and a matching untrained file, so
# every analysis (representation change of both, signatures, margins, zones, linkage) runs.
# The run also checks that ventral's tables equal the NumPy results (rtol 1e-6).
# Analysis seconds exclude reading; wall and peak memory (GNU time) include it, and for ventral
# also the tables, plots and report.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
N="${1:-25000}"; T="${2:-10}"; C="${3:-100}"; D="${4:-512}"
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
cargo build --release -q
VBIN="${CARGO_TARGET_DIR:-target}/release/ventral"
"$PY" scripts/dynamics_reference.py check
"$PY" scripts/dynamics_reference.py make-bench "$W/a.npz" "$W/u.npz" "$N" "$T" "$C" "$D"
TIME=/usr/bin/time
V=$( { $TIME -f "PEAK_KB %M WALL %e" "$VBIN" dynamics --activations "$W/a.npz" \
      --untrained "$W/u.npz" --out "$W/dyn" >/dev/null; } 2>&1 )
VS=$(echo "$V" | sed -n 's/.*analysed in \([0-9.]*\) s.*/\1/p')
VM=$(echo "$V" | sed -n 's/PEAK_KB \([0-9]*\).*/\1/p')
VW=$(echo "$V" | sed -n 's/.*WALL \([0-9.]*\).*/\1/p')
P=$( { $TIME -f "PEAK_KB %M WALL %e" "$PY" scripts/dynamics_reference.py bench "$W/a.npz" "$W/u.npz" --json "$W/np.json"; } 2>&1 )
PS=$(echo "$P" | sed -n 's/.*"seconds": \([0-9.]*\).*/\1/p')
PM=$(echo "$P" | sed -n 's/PEAK_KB \([0-9]*\).*/\1/p')
PW=$(echo "$P" | sed -n 's/.*WALL \([0-9.]*\).*/\1/p')
"$PY" scripts/dynamics_reference.py compare "$W/dyn" "$W/np.json"
echo "ventral:  $(echo "$V" | grep 'analysed in' | sed 's/^ *//')"
echo "numpy:    $(echo "$P" | grep seconds)"
echo "dynamics analysis: $N images × $T steps × $C classes × $D units, trained + untrained"
printf "%-8s %12s %10s %10s\n" "" "analysis s" "wall s" "peak MiB"
printf "%-8s %12.2f %10.2f %10.0f\n" ventral "$VS" "$VW" "$((VM / 1024))"
printf "%-8s %12.2f %10.2f %10.0f\n" numpy "$PS" "$PW" "$((PM / 1024))"
"$PY" -c "print(f'numpy/ventral analysis time ratio: {$PS / $VS:.2f}, wall ratio: {$PW / $VW:.2f} (>1: ventral faster)')"
