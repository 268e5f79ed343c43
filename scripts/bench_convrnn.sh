#!/usr/bin/env bash
# ventral vs PyTorchTNN on the same ConvRNN, side by side in one run, with ratios and a CSV.
#
#   PYTHON=.venv/bin/python PTNN=path/to/PyTorchTNN bash scripts/bench_convrnn.sh [OUT.csv] [ITERS]
#
# MODELS (default rgc_shallow_cpu,ff_shallow_cpu,gru_shallow_cpu) are registered ventral models;
# `ventral bench` times them on burn's autodiff (what `ventral train` runs for ConvRNNs) and
# prints each one's configuration, which scripts/bench_convrnn_torch.py hands to PyTorchTNN's
# TemporalGraph unchanged (RecurrentModuleRGC for graphs with reciprocal gated cells). Both
# sides: batch BATCH (default 32), the image at every step, inference = forward over all
# steps; training step = forward, cross-entropy at the last step (the presets' decoder),
# backward, Adam. Needs a Python with torch, torchvision and networkx, and a PyTorchTNN
# checkout (PTNN). Run on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
OUT="${1:-bench_convrnn.csv}"
N="${2:-3}"
MODELS="${MODELS:-rgc_shallow_cpu,ff_shallow_cpu,gru_shallow_cpu}"
BATCH="${BATCH:-32}"
THREADS="${THREADS:-$(nproc)}"
: "${PTNN:?set PTNN to a PyTorchTNN checkout}"
cargo build --release -q -p ventral-cli
V="${CARGO_TARGET_DIR:-target}/release/ventral"
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
export RAYON_NUM_THREADS="$THREADS"
R=$($V bench --models "$MODELS" --batch "$BATCH" --iters "$N" --json)
echo "$R" > "${OUT%.csv}.ventral.json"
P=$("$PY" scripts/bench_convrnn_torch.py "${OUT%.csv}.ventral.json" --ptnn "$PTNN" --batch "$BATCH" --iters "$N" --threads "$THREADS")
"$PY" - "$R" "$P" "$OUT" "$COMMIT" "$MODELS" <<'PYEOF'
import json, sys
r, p, out, commit, models = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5].split(",")
# The multiply-add peak `ventral bench` measured (0 without AVX2 + FMA): rates from different
# machines compare only relative to it.
fma = r.get("peak", {}).get("fma_gflops") or 0.0
print(f"threads: ventral {r['threads']}, torch {p['threads']} (torch {p['torch']}); FMA peak {fma:.0f} GFLOP/s")
print(f"{'model':<18} {'mode':<6} {'T':>3} {'batch':>5} {'ventral img/s':>14} {'PyTorchTNN img/s':>17} {'ventral/PyTorchTNN':>19}")
with open(out, "w") as f:
    f.write("model,mode,timesteps,batch,ventral_img_s,pytorchtnn_img_s,ratio,threads,commit,fma_gflops\n")
    for m in models:
        for mode in ("train", "infer"):
            a, b = r[m][f"{mode}_images_per_s"], p[m][f"{mode}_images_per_s"]
            print(f"{m:<18} {mode:<6} {r[m]['timesteps']:>3} {r[m]['batch']:>5} {a:>14.2f} {b:>17.2f} {a / b:>19.2f}")
            f.write(f"{m},{mode},{r[m]['timesteps']},{r[m]['batch']},{a:.3f},{b:.3f},{a / b:.3f},{r['threads']},{commit},{fma:.1f}\n")
PYEOF
echo "wrote $OUT"
