#!/usr/bin/env bash
# Where the time of ventral's first CUDA runs goes: kernel compilation and autotuning (paid
# once per process, or once per machine with CubeCL's on-disk cache) against the steady-state
# step. Written after gpu_check.sh's first H200 run (2026-12-04), where `ventral bench` at T = 10,
# batch 64 did not finish within 130 s while PyTorch's whole benchmark took 17 s.
#
#   VENTRAL=.gpu/ventral bash scripts/gpu_probe.sh OUTDIR
#
# Three runs of `ventral bench --device $DEVICE`, each timed whole (wall, user and system CPU):
#   A. T = 2, batch 8, no warm-up, one step: cold (every kernel compiled and tuned);
#   B. the same again in a new process: what CubeCL's on-disk caches save;
#   C. T = 10, batch 64 (gpu_check.sh's size), 2 warm-up steps and 5 timed: the steady state.
# GPU utilisation is sampled every second throughout (nvidia-smi dmon) into OUTDIR/dmon.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
OUTDIR="${1:-gpu_probe_out}"
mkdir -p "$OUTDIR"
PY="${PYTHON:-python3}"
DEVICE="${DEVICE:-cuda:0}"
# shellcheck source=scripts/gpu_unpack.sh
. scripts/gpu_unpack.sh
V="${VENTRAL:-.gpu/ventral}"
if command -v nvidia-smi > /dev/null; then
  nvidia-smi dmon -s u -d 1 > "$OUTDIR/dmon.txt" 2>&1 &
  DMON=$!
fi
probe() { # name, timeout, bench arguments…
  local name="$1" limit="$2" rc
  shift 2
  echo "== $name: ventral bench $*"
  date +%s.%N > "$OUTDIR/$name.start"
  TIMEFORMAT="== $name: %R s wall, %U s user, %S s system"
  time timeout "$limit" "$V" bench --device "$DEVICE" --models ref64 --json "$@" > "$OUTDIR/$name.json" 2> "$OUTDIR/$name.err"
  rc=$?
  echo "== $name: rc=$rc"
  tail -3 "$OUTDIR/$name.err"
  "$PY" -c 'import json, sys
d = json.load(open(sys.argv[1]))["ref64"]
v = d.get("vs_native") or {}
print("   train %.4f s/batch (%.1f img/s), inference %.4f s/batch (%.1f img/s); vs native: log-probs %s, grads rel L2 %s, within parity bounds %s, within TF32 bounds %s"
      % (d["train_s_per_batch"], d["train_images_per_s"], d["infer_s_per_batch"], d["infer_images_per_s"],
         v.get("log_probs_max_abs_diff"), v.get("grad_max_rel_l2"), v.get("within_parity_bounds"),
         v.get("within_tf32_bounds")))' "$OUTDIR/$name.json" 2> /dev/null
  for d in target/environment "$HOME/.cache/cubecl"; do
    [ -d "$d" ] && echo "   cache $d: $(du -sh "$d" | cut -f1), $(find "$d" -type f | wc -l) files"
  done
  return 0
}
probe A_cold "${A_LIMIT:-100}" --timesteps 2 --batch 8 --warmup 0 --iters 1
probe B_cached "${B_LIMIT:-60}" --timesteps 2 --batch 8 --warmup 0 --iters 1
probe C_steady "${C_LIMIT:-110}" --timesteps 10 --batch 64 --warmup 2 --iters 5
[ -n "${DMON:-}" ] && kill "$DMON" 2> /dev/null
echo "== GPU utilisation (nvidia-smi dmon, % SM, one sample per second)"
[ -f "$OUTDIR/dmon.txt" ] && awk '!/^#/ { n++; s += $2; if ($2 > 5) busy++ } END { printf "   %d samples, mean SM %.1f %%, %d seconds above 5 %%\n", n, s / n, busy }' "$OUTDIR/dmon.txt"
