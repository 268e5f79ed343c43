#!/usr/bin/env bash
# ventral vs the original convrnns code (TensorFlow) on the zoo's models: inference, side by
# side in one run, with ratios and a CSV.
#
#   PYTHON=venv-tf/bin/python CONVRNNS=path/to/convrnns bash scripts/bench_convrnns_tf.sh [OUT.csv] [ITERS]
#
# MODELS (default rgc_shallow,rgc_intermediate) are zoo presets; `ventral bench` times their
# inference (the image at every step, the preset's steps, 224 px, 1000 classes, on the CPU
# engine) and scripts/bench_convrnns_tf.py the same graphs built by convrnns' model_func on
# TensorFlow 2.15 (compat.v1 graph mode, oneDNN), both at batch BATCH (default 8) on THREADS
# threads. Numerical agreement of the two is tests/convrnns_checkpoint.rs'. Needs a Python with
# tensorflow-cpu 2.15, networkx 1.11 and six, and a convrnns checkout (CONVRNNS). Run on a quiet
# machine.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
OUT="${1:-bench_convrnns_tf.csv}"
N="${2:-3}"
MODELS="${MODELS:-rgc_shallow,rgc_intermediate}"
BATCH="${BATCH:-8}"
THREADS="${THREADS:-$(nproc)}"
: "${CONVRNNS:?set CONVRNNS to a neuroailab/convrnns checkout}"
HERE="$(pwd)"
cargo build --release -q -p ventral-cli
V="${CARGO_TARGET_DIR:-target}/release/ventral"
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
export RAYON_NUM_THREADS="$THREADS"
R=$($V bench --models "$MODELS" --batch "$BATCH" --iters "$N" --json)
P=$(cd "$CONVRNNS" && "$PY" "$HERE/scripts/bench_convrnns_tf.py" --models "$MODELS" --batch "$BATCH" --iters "$N" --threads "$THREADS")
"$PY" - "$R" "$P" "$OUT" "$COMMIT" "$MODELS" <<'PYEOF'
import json, sys
r, p, out, commit, models = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5].split(",")
print(f"threads: ventral {r['threads']}, TensorFlow {p['threads']} (tensorflow {p['tensorflow']})")
print(f"{'model':<20} {'T':>3} {'batch':>5} {'ventral img/s':>14} {'convrnns (TF) img/s':>20} {'ventral/TF':>11}")
with open(out, "w") as f:
    f.write("model,mode,timesteps,batch,ventral_img_s,convrnns_tf_img_s,ratio,threads,commit\n")
    for m in models:
        a, b = r[m]["infer_images_per_s"], p[m]["infer_images_per_s"]
        assert r[m]["timesteps"] == p[m]["timesteps"], (m, r[m]["timesteps"], p[m]["timesteps"])
        print(f"{m:<20} {r[m]['timesteps']:>3} {r[m]['batch']:>5} {a:>14.2f} {b:>20.2f} {a / b:>11.2f}")
        f.write(f"{m},infer,{r[m]['timesteps']},{r[m]['batch']},{a:.3f},{b:.3f},{a / b:.3f},{r['threads']},{commit}\n")
PYEOF
echo "wrote $OUT"
