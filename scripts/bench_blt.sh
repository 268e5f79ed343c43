#!/usr/bin/env bash
# ventral vs PyTorch on the same BLT networks, side by side in one run, with ratios and a CSV.
#
#   PYTHON=.venv/bin/python bash scripts/bench_blt.sh [OUT.csv] [ITERS]
#
# Runs every (model, T, batch) of the grid below on ventral's native CPU engine (what `ventral
# train` uses on cpu) and on PyTorch CPU with the same number of threads, and writes
# model,mode,timesteps,batch,ventral_img_s,torch_img_s,ratio,threads,commit to OUT.csv
# (default bench_blt.csv); modes `train_winograd` and `infer_winograd` are the opt-in Winograd
# paths (`train.winograd = true`, `ventral record --winograd`) against the same PyTorch run.
# GRID_T, GRID_B, MODELS override the grid. Needs a Python with torch (the PyPI wheel is the
# CUDA build, ~3 GB; only its CPU path is used). Run on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
OUT="${1:-bench_blt.csv}"
N="${2:-3}"
GRID_T="${GRID_T:-4 10}"
GRID_B="${GRID_B:-16 64}"
MODELS="${MODELS:-ref64,ref64_mult,tiny}"
THREADS="${THREADS:-$(nproc)}"
cargo build --release -q -p ventral-cli
V="${CARGO_TARGET_DIR:-target}/release/ventral"
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
export RAYON_NUM_THREADS="$THREADS"
echo "model,mode,timesteps,batch,ventral_img_s,torch_img_s,ratio,threads,commit" > "$OUT"
# One process per (model, T, batch) and side: a model's timing never inherits the previous
# model's heap, caches or thread state.
for T in $GRID_T; do
  for B in $GRID_B; do
   for M in ${MODELS//,/ }; do
    PROFILE=""
    [ "$T" = "4" ] && [ "$B" = "16" ] && PROFILE="--profile"
    R=$($V bench --models "$M" --timesteps "$T" --batch "$B" --iters "$N" $PROFILE --winograd --json)
    P=$("$PY" scripts/bench_blt_torch.py --models "$M" --timesteps "$T" --batch "$B" --iters "$N" --threads "$THREADS" --json)
    "$PY" - "$R" "$P" "$OUT" "$COMMIT" <<'PYEOF'
import json, sys
r, p, out, commit = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
print(f"threads: ventral {r['threads']}, torch {p['threads']} (torch {p['torch']}); peak {r['peak']}")
print(f"{'model':<11} {'mode':<6} {'T':>3} {'batch':>5} {'ventral img/s':>14} {'torch img/s':>12} {'ventral/torch':>14}")
with open(out, "a") as f:
    for m in ("ref64", "ref64_mult", "tiny"):
        if m not in r or m not in p:
            continue
        for mode in ("train", "infer"):
            a, b = r[m][f"{mode}_images_per_s"], p[m][f"{mode}_images_per_s"]
            print(f"{m:<11} {mode:<6} {r[m]['timesteps']:>3} {r[m]['batch']:>5} {a:>14.2f} {b:>12.2f} {a / b:>14.2f}")
            f.write(f"{m},{mode},{r[m]['timesteps']},{r[m]['batch']},{a:.3f},{b:.3f},{a / b:.3f},{r['threads']},{commit}\n")
        w = r[m].get("winograd")
        for mode in ("train", "infer"):
            # Opt-in Winograd paths (`train.winograd`, `record --winograd`) against the same
            # PyTorch run.
            if not w or f"{mode}_images_per_s" not in w:
                continue
            a, b = w[f"{mode}_images_per_s"], p[m][f"{mode}_images_per_s"]
            note = f"  (log-probs within {w['log_probs_max_abs_diff']:.1e} of the exact path)" if mode == "infer" else ""
            print(f"{m:<11} {mode + '_winograd':<6} {r[m]['timesteps']:>3} {r[m]['batch']:>5} {a:>14.2f} {b:>12.2f} {a / b:>14.2f}{note}")
            f.write(f"{m},{mode}_winograd,{r[m]['timesteps']},{r[m]['batch']},{a:.3f},{b:.3f},{a / b:.3f},{r['threads']},{commit}\n")
        if "profile" in r[m]:
            print(f"  ventral convolutions ({m}), GFLOP/s forward / input grad / weight grad:")
            for row in r[m]["profile"]:
                print(f"    {row['layer']:<4} {row['conv']:<10} {row['forward_gflops']:7.1f} {row['input_grad_gflops']:7.1f} {row['weight_grad_gflops']:7.1f}")
        for key, label in (("step_profile", ""), ("winograd_step_profile", ", Winograd")):
            sp = r[m].get(key)
            if not sp:
                continue
            tr = sp["train"]
            print(f"  ventral training step ({m}{label}) {tr['step_s']:.4f} s: engine {tr['engine_s']:.4f}, parameters in {tr['parameters_to_engine_s']:.4f}, layout + Adam {tr['layout_and_adam_s']:.4f}; engine ops (train / infer s):")
            for a, b in zip(tr["engine_ops"], sp["infer"]["engine_ops"]):
                print(f"    {a['op']:<28} {a['s']:8.4f} {b['s']:8.4f}")
PYEOF
   done
  done
done
echo "wrote $OUT"
