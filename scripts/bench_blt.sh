#!/usr/bin/env bash
# ventral vs PyTorch on the same BLT networks, side by side in one run, with ratios and a CSV.
#
#   PYTHON=.venv/bin/python bash scripts/bench_blt.sh [OUT.csv] [ITERS]
#
# Runs every (model, T, batch) of the grid below on ventral's native CPU engine (what `ventral
# train` uses on cpu) and on PyTorch CPU with the same number of threads, and writes
# model,mode,timesteps,batch,ventral_img_s,torch_img_s,ratio,threads,commit,rounds,ratio_lo,
# ratio_hi,fma_gflops,ratio_at_peak to OUT.csv (default bench_blt.csv; fma_gflops: the
# multiply-add peak `ventral bench` measured, to compare rates across machines; ratio_at_peak:
# the ratio ventral would have if it ran every multiply-add it does at the measured peak that
# bounds it — float32 FMA, or bf16 dot products — and nothing else, i.e. the ceiling of that
# cell on this machine without fewer multiply-adds; empty for Winograd and AMX rows); modes
# `train_winograd` and `infer_winograd` are
# the opt-in Winograd paths (`train.winograd = true`, `ventral record --winograd`) against the
# same PyTorch runs.
# PRECISION=bf16 times bf16 mixed precision on both sides instead (ventral `--precision bf16`:
# AMX tiles where the CPU has them; PyTorch `torch.autocast("cpu", dtype=torch.bfloat16)`,
# oneDNN), modes `train_bf16` and `infer_bf16`, and no Winograd rows.
# GRID_T, GRID_B, MODELS override the grid. ROUNDS=R (default 1) runs each cell's two sides
# alternately R times (ventral, PyTorch, ventral, …) and reports each side's median images/s,
# with the lowest and highest per-round ratio: a shared machine's speed drifts by 15–40 %
# between processes, and alternating keeps a drift from landing on one side only. Needs a
# Python with torch (the PyPI wheel is the CUDA build, ~3 GB; only its CPU path is used). Run on
# a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
OUT="${1:-bench_blt.csv}"
N="${2:-3}"
GRID_T="${GRID_T:-4 10}"
GRID_B="${GRID_B:-16 64}"
MODELS="${MODELS:-ref64,ref64_mult,tiny}"
THREADS="${THREADS:-$(nproc)}"
ROUNDS="${ROUNDS:-1}"
PRECISION="${PRECISION:-f32}"
case "$PRECISION" in
  f32) V_ARGS="--winograd" P_ARGS="" ;;
  bf16) V_ARGS="--precision bf16" P_ARGS="--precision amp_bf16" ;;
  *) echo "PRECISION must be f32 or bf16, not '$PRECISION'" >&2; exit 2 ;;
esac
cargo build --release -q -p ventral-cli
V="${CARGO_TARGET_DIR:-target}/release/ventral"
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
export RAYON_NUM_THREADS="$THREADS"
echo "model,mode,timesteps,batch,ventral_img_s,torch_img_s,ratio,threads,commit,rounds,ratio_lo,ratio_hi,fma_gflops,ratio_at_peak" > "$OUT"
# One process per (model, T, batch) and side: a model's timing never inherits the previous
# model's heap, caches or thread state.
for T in $GRID_T; do
  for B in $GRID_B; do
   for M in ${MODELS//,/ }; do
    RS="" PS=""
    for ((round = 0; round < ROUNDS; round++)); do
      PROFILE=""
      [ "$T" = "4" ] && [ "$B" = "16" ] && [ "$round" = "0" ] && PROFILE="--profile"
      R=$($V bench --models "$M" --timesteps "$T" --batch "$B" --iters "$N" $PROFILE $V_ARGS --json)
      P=$("$PY" scripts/bench_blt_torch.py --models "$M" --timesteps "$T" --batch "$B" --iters "$N" --threads "$THREADS" $P_ARGS --json)
      RS="$RS${RS:+,}$R" PS="$PS${PS:+,}$P"
    done
    "$PY" - "[$RS]" "[$PS]" "$OUT" "$COMMIT" <<'PYEOF'
import json, statistics, sys
rs, ps, out, commit = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
r, p = rs[0], ps[0]


def ips(runs, m, mode, winograd=False):
    """Per-round images/s of one side (the Winograd entry of ventral's JSON if asked)."""
    vals = []
    for run in runs:
        d = run.get(m, {})
        d = (d.get("winograd") or {}) if winograd else d
        if f"{mode}_images_per_s" in d:
            vals.append(d[f"{mode}_images_per_s"])
    return vals


# A side whose rounds differ by more than this (max / min − 1) is flagged: on a shared VM
# another tenant's load moved one side's rate by up to 1.6× between rounds (session 63).
NOISY = 0.15


def row(a_s, b_s):
    a, b = statistics.median(a_s), statistics.median(b_s)
    per = [x / y for x, y in zip(a_s, b_s)]
    return a, b, a / b, min(per), max(per)
print(f"threads: ventral {r['threads']}, torch {p['threads']} (torch {p['torch']}); peak {r['peak']}")
# The measured multiply-add peak of ventral's first round (0 where the CPU has no AVX2 + FMA):
# machines differ by 2x between sessions, so rates are comparable across CSVs only relative
# to it.
fma = r.get("peak", {}).get("fma_gflops") or 0.0
print(f"{'model':<11} {'mode':<6} {'T':>3} {'batch':>5} {'ventral img/s':>14} {'torch img/s':>12} {'ventral/torch':>14} {'at peak':>8}")
with open(out, "a") as f:
    for m in ("ref64", "ref64_mult", "tiny"):
        if m not in r or m not in p:
            continue
        for winograd in (False, True):
            for mode in ("train", "infer"):
                # Opt-in Winograd paths (`train.winograd`, `record --winograd`) against the
                # same PyTorch runs.
                a_s, b_s = ips(rs, m, mode, winograd), ips(ps, m, mode)
                if not a_s or len(a_s) != len(b_s):
                    continue
                a, b, ratio, lo, hi = row(a_s, b_s)
                name = mode + ("_winograd" if winograd else "")
                if r[m].get("precision") == "bf16":
                    name += "_bf16"
                spread = ""
                if len(a_s) > 1:
                    # Each side's own spread over the rounds: which side a noisy machine moved.
                    va, vb = max(a_s) / min(a_s) - 1, max(b_s) / min(b_s) - 1
                    spread = f"  (rounds {lo:.2f}-{hi:.2f}; ventral's within {100 * va:.0f} %, torch's {100 * vb:.0f} %)"
                    if max(va, vb) > NOISY:
                        spread += f"  NOISY: a side's rounds differ by more than {100 * NOISY:.0f} %; a busy machine?"
                w = r[m].get("winograd") or {}
                if winograd and mode == "infer" and "log_probs_max_abs_diff" in w:
                    spread += f"  (log-probs within {w['log_probs_max_abs_diff']:.1e} of the exact path)"
                # The ceiling: PyTorch's time over the time of ventral's multiply-adds at the
                # peak that bounds them (GFLOP per image from ventral's own rate).
                pk, g = r[m].get("peak_gflops"), r[m].get(f"{mode}_gflops")
                at_peak = pk / (g / r[m][f"{mode}_images_per_s"]) / b if pk and g and not winograd else None
                cell = f"{at_peak:8.2f}" if at_peak else f"{'':>8}"
                print(f"{m:<11} {name:<6} {r[m]['timesteps']:>3} {r[m]['batch']:>5} {a:>14.2f} {b:>12.2f} {ratio:>14.2f} {cell}{spread}")
                f.write(f"{m},{name},{r[m]['timesteps']},{r[m]['batch']},{a:.3f},{b:.3f},{ratio:.3f},{r['threads']},{commit},{len(a_s)},{lo:.3f},{hi:.3f},{fma:.1f},{f'{at_peak:.3f}' if at_peak else ''}\n")
        if "profile" in r[m]:
            pk, kind = r[m].get("peak_gflops"), r[m].get("peak_kind")
            bf16 = r[m].get("precision") == "bf16"
            share = f"% of the {pk:.0f} GFLOP/s {kind}" if pk else ("bf16 operands" if bf16 else "no measured peak")
            print(f"  ventral convolutions ({m}): calls per forward pass, GFLOP/s forward / input grad / weight grad ({share}):")
            pct = lambda g: f"{g:7.1f} {100 * g / pk:3.0f}%" if pk else f"{g:7.1f}"
            for row in r[m]["profile"]:
                print(f"    {row['layer']:<4} {row['conv']:<10} {row.get('calls_per_pass', ''):>2} {pct(row['forward_gflops'])} {pct(row['input_grad_gflops'])} {pct(row['weight_grad_gflops'])}")
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
