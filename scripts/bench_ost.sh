#!/usr/bin/env bash
# OST: `ventral ost` (Brain-Score's procedure and decoder, the default) vs Brain-Score's own
# OSTCorrelation (brainscore-vision 2.4.2 + tensorflow-cpu), same data, one run; checks that
# every split's Spearman r agrees.
#
#   PYTHON=/path/to/venv/bin/python bash scripts/bench_ost.sh [IMAGES] [FEATURES] [STEPS] [OBJECTS]
#
# Defaults are Kar2019's shape: 1 320 images of 10 objects, 18 bins (70–250 ms), 512 features.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
N="${1:-1320}"; D="${2:-512}"; T="${3:-18}"; O="${4:-10}"
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
cargo build --release -q
V_BIN="${CARGO_TARGET_DIR:-target}/release/ventral"
"$PY" scripts/bench_ost.py make "$W" "$N" "$D" "$T" "$O"
V=$("$V_BIN" ost --features "m=$W/feat.npz" --targets "$W/targets.csv" --out "$W/ost" 2>&1 >/dev/null)
VS=$(echo "$V" | sed -n 's/.*decoded in \([0-9.]*\) s.*/\1/p')
P=$("$PY" scripts/bench_ost.py "$W/feat.npz" hidden "$W/targets.csv" 70 10 2>/dev/null | tail -1)
echo "OST: $N images × $D features × $T bins, $O objects, 10 splits"
echo "brainscore: $P"
"$PY" - "$W/ost/ost_splits.csv" "$P" "$VS" <<'PYEOF'
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1])))
bs = json.loads(sys.argv[2])
vs = float(sys.argv[3])
ours = [float(r["spearman"]) for r in rows]
diff = max(abs(a - b) for a, b in zip(ours, bs["split_r"]))
print(f"{'':12s} {'seconds':>10s}")
print(f"{'ventral':12s} {vs:10.2f}")
print(f"{'brainscore':12s} {bs['seconds']:10.2f}")
print(f"brainscore/ventral time ratio: {bs['seconds'] / vs:.1f} (>1: ventral faster)")
print(f"max |Δr| over {len(ours)} splits: {diff:.1e}")
assert len(ours) == len(bs["split_r"]) and diff < 1e-6, "per-split r differ"
PYEOF
