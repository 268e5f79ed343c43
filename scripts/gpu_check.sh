#!/usr/bin/env bash
# Issue 14's GPU checks in one run, sized for one 10-minute call on a lent GPU machine:
# BLT_net_64 training/inference steps against PyTorch (fp32, TF32, AMP bf16/fp16) with the
# device's log-probabilities and gradients checked against the native CPU engine, one epoch on
# a MiniEcoset-shaped synthetic set (100 classes, 64 px) through `ventral train` against the
# same epoch in PyTorch, every model family on the device against the CPU, and the
# backend-generic test binaries when they were carried.
#
#   VENTRAL=.gpu/ventral PYTHON=python3 bash scripts/gpu_check.sh OUTDIR
#
# Through the device tool (at most 8 files come back from $OUT, so bundle them):
#   run(command='bash scripts/gpu_check.sh /tmp/gc; rc=$?; tar czf $OUT/gpu_check.tgz -C /tmp gc; exit $rc',
#       carry=[".gpu"], timeout_s=600)
#
# Prepare it on a build machine with `bash scripts/gpu_pack.sh` (a `--features cuda` release
# binary, optionally the test binaries, stripped and compressed into .gpu/ for `run`'s carry);
# this script unpacks .gpu/*.xz itself. Everything else it needs is in the repository.
#
# Environment (defaults): DEVICE (cuda:0; ventral's name), TORCH_DEVICE (cuda; `cpu` with
# DEVICE=cpu runs the whole script on a CPU to try it), T (10), BATCHES ("64": the step
# benchmark), EPOCH_BATCH (256), EPOCHS (2, both sides; the last epoch's rate is past
# ventral's kernel compilation and cuDNN's autotuning), N_TRAIN (10000), N_VAL (1000), PRECISIONS ("fp32 tf32
# amp_bf16"; amp_fp16 also works), VENTRAL_PRECISIONS ("f32 bf16": bf16 = burn's engine with
# convolutions and linear layers in bfloat16), STEP_TIMEOUT (120 s per PyTorch step),
# VENTRAL_STEP_TIMEOUT (300 s per ventral step: each ventral process first compiles its CUDA
# kernels, 1–2 min on an H200 machine, docs/performance.md), BUDGET (540 s for the whole run: steps
# that would start later are reported as not run, so the summary and OUTDIR always come back
# from a 10-minute call), ORDER (the sections in the order they run: "data torch_epoch epoch
# epoch_bf16 families bench torch_bench tests"), SKIP ("": sections left out),
# FIXTURES (.gpu/fixtures: blt_ccn23/… for the parity test), FAMILIES (registered models
# for the families section, one process each: "rgc_shallow lstm_shallow bl blt64_lt_mult"),
# KERNEL_LOG (1: CubeCL's kernel-compilation and autotuning logs into OUTDIR), KERNEL_CACHE (1:
# CubeCL keeps compiled kernels on disk too, not only tuning results; with KERNEL_LOG=1).
#
# Writes OUTDIR/gpu_check.csv (what,model,timesteps,batch,side,precision,images_per_s,seconds)
# and OUTDIR/*.json / *.log, and prints a summary. A failing step is reported (rc) and the
# next one still runs; the exit status is that of the first failing step.
set -uo pipefail
cd "$(dirname "$0")/.."
OUTDIR="${1:-gpu_check_out}"
mkdir -p "$OUTDIR"
OUTDIR="$(cd "$OUTDIR" && pwd)"
PY="${PYTHON:-python3}"
DEVICE="${DEVICE:-cuda:0}"
TORCH_DEVICE="${TORCH_DEVICE:-cuda}"
T="${T:-10}"
BATCHES="${BATCHES:-64}"
EPOCH_BATCH="${EPOCH_BATCH:-256}"
EPOCHS="${EPOCHS:-2}"
N_TRAIN="${N_TRAIN:-10000}"
N_VAL="${N_VAL:-1000}"
PRECISIONS="${PRECISIONS:-fp32 tf32 amp_bf16}"
VENTRAL_PRECISIONS="${VENTRAL_PRECISIONS:-f32 bf16}"
STEP_TIMEOUT="${STEP_TIMEOUT:-120}"
VENTRAL_STEP_TIMEOUT="${VENTRAL_STEP_TIMEOUT:-300}"
SKIP="${SKIP:-}"
FIXTURES="${FIXTURES:-$PWD/.gpu/fixtures}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")"
DMON=""
KERNEL_TOML=""
cleanup() {
  [ -n "$DMON" ] && kill "$DMON" 2> /dev/null
  [ -n "$KERNEL_TOML" ] && rm -f "$KERNEL_TOML"
  rm -rf "$WORK"
}
trap cleanup EXIT

# Unpack what scripts/gpu_pack.sh compressed (xz, read with Python's lzma: no xz binary needed).
# shellcheck source=scripts/gpu_unpack.sh
. scripts/gpu_unpack.sh
V="${VENTRAL:-.gpu/ventral}"
CSV="$OUTDIR/gpu_check.csv"
echo "what,model,timesteps,batch,side,precision,images_per_s,seconds" > "$CSV"
FIRST_RC=0
now() { echo "${EPOCHREALTIME/,/.}"; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
fail() { [ "$FIRST_RC" = 0 ] && FIRST_RC="$1"; return 0; }
END=$(($(date +%s) + ${BUDGET:-540}))
step() { # name, command…: run with a timeout, report rc and seconds
  local name="$1" limit="$STEP_TIMEOUT"
  shift
  local arg
  for arg in "$@"; do # ventral's binaries compile CUDA kernels first
    case "$arg" in "$V" | .gpu/test_*) limit="$VENTRAL_STEP_TIMEOUT" ;; esac
  done
  local left=$((END - $(date +%s) - 20))
  if [ "$left" -lt 10 ]; then
    echo "== $name: not run (BUDGET spent)" >&2
    fail 124
    return 124
  fi
  echo "== $name" >&2
  local t0 rc
  t0=$(now)
  timeout "$((left < limit ? left : limit))" "$@"
  rc=$?
  echo "== $name: rc=$rc, $(since "$t0") s" >&2
  [ "$rc" = 0 ] || fail "$rc"
  return "$rc"
}
# ventral's engine for a precision: bf16 runs on burn's engine, which on a CPU dry run is not
# the default (`auto` = the native float32 engine there).
engine_for() { if [ "$DEVICE" = cpu ] && [ "$1" = bf16 ]; then echo burn; else echo auto; fi; }
skip() { case " $SKIP " in *" $1 "*) echo "== $1: skipped (SKIP)"; return 0 ;; esac; return 1; }

# cubecl compiles kernels with LLVM and links math functions from the CUDA toolkit's
# libdevice.10.bc: CUDA_PATH, else /usr/local/cuda, /opt/cuda, /usr/lib/cuda, /usr. Look for
# one elsewhere (e.g. PyPI's nvidia-cuda-nvcc) when none of those has it.
if [ -z "${CUDA_PATH:-}" ] && ! ls /usr/local/cuda/nvvm/libdevice /opt/cuda/nvvm/libdevice \
  /usr/lib/cuda/nvvm/libdevice /usr/nvvm/libdevice > /dev/null 2>&1; then
  d="$(find / -xdev -path '*/nvvm/libdevice/libdevice.10.bc' 2> /dev/null | head -1)"
  [ -n "$d" ] && export CUDA_PATH="${d%/nvvm/libdevice/libdevice.10.bc}"
fi
echo "== machine"
echo "CUDA_PATH=${CUDA_PATH:-} (libdevice: $(ls "${CUDA_PATH:-/usr/local/cuda}"/nvvm/libdevice/libdevice.10.bc 2> /dev/null || echo 'not found'))"
if command -v nvidia-smi > /dev/null; then nvidia-smi -L | head -4; else echo "no nvidia-smi"; fi
"$V" --version
"$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'

# The sections, run in the order ORDER names them (each can be left out with SKIP). The default
# puts first what is cheapest and what the issue asks for: PyTorch's epochs, ventral's float32
# and bf16 epochs, then every family on the device and the step benchmarks; the test binaries
# last (they travel only in calls of their own, scripts/gpu_pack.sh). Each ventral process on a
# fresh machine compiles for minutes (session 41: 232 s for the f32 epoch's process), so one
# 10-minute call reaches about the families; a second call on the still-warm machine
# (`ORDER="families bench"`) finds the compiled kernels of the first on disk.
ORDER="${ORDER:-data torch_epoch epoch epoch_bf16 families bench torch_bench tests}"

# tests: the backend-generic tests on the device: the parity test's burn paths (forward
#    log-probabilities and autodiff gradients of BLT_net_64 against PyTorch's fixture) and the
#    registry test (every registered model's forward on the device) and the bf16 mixed-precision
#    test (every family's bf16 pass against its float32 pass on the device).
section_tests() {
  local t b m
  for t in parity registry precision; do
    b=".gpu/test_$t"
    if [ -x "$b" ]; then
      step "test $t on $DEVICE" env VENTRAL_TEST_DEVICE="$DEVICE" VENTRAL_FIXTURES="$FIXTURES" \
        VENTRAL_REQUIRE_FIXTURES=1 CARGO_MANIFEST_DIR="$PWD/crates/ventral-models" \
        "$b" --nocapture --test-threads 1 > "$OUTDIR/test_$t.log" 2>&1
      grep -E "^test |\[device\]|rel L2|max_abs|test result|panicked" "$OUTDIR/test_$t.log" | head -60
      # burn's fusion can reuse a reduction kernel tuned for another model's graph in the same
      # process (docs/performance.md): each model that failed runs again alone, with a fresh
      # CubeCL cache, to show which failures remain without what other models tuned (on
      # lavapipe: simplernn_shallow_cpu then passes, lstm_shallow_cpu still fails).
      if [ "$t" = registry ]; then
        for m in $(sed -n 's/^\[registry\] \([^ ]*\) FAILED:.*/\1/p' "$OUTDIR/test_$t.log"); do
          step "registry $m alone, fresh CubeCL cache" env VENTRAL_TEST_DEVICE="$DEVICE" \
            VENTRAL_REGISTRY_ONLY="$m" CUBECL_ENVIRONMENT="ventral-check-$m-$$" \
            CARGO_MANIFEST_DIR="$PWD/crates/ventral-models" \
            "$b" every_registered --nocapture --test-threads 1 > "$OUTDIR/test_registry_$m.log" 2>&1
          grep -E "FAILED|test result" "$OUTDIR/test_registry_$m.log" | head -3
        done
      fi
    else
      echo "== test $t: no $b (scripts/gpu_pack.sh builds it)"
    fi
  done
}

# bench / torch_bench: training steps and inference passes, ventral (burn on the device) and
#    PyTorch; the JSON's `vs_native` compares the device's log-probabilities and gradients with
#    the native CPU engine's on the same weights (the engine is held to PyTorch by the parity
#    test).
section_bench() {
  local B VP
  for B in $BATCHES; do
    for VP in $VENTRAL_PRECISIONS; do
      step "ventral bench $VP T=$T batch $B" "$V" bench --device "$DEVICE" --models ref64,ref64_mult \
        --timesteps "$T" --batch "$B" --warmup 3 --iters 10 --precision "$VP" \
        --engine "$(engine_for "$VP")" --json > "$OUTDIR/ventral_bench_${VP}_T${T}_b$B.json"
    done
  done
}
section_torch_bench() {
  local B P
  for B in $BATCHES; do
    for P in $PRECISIONS; do
      [ "$TORCH_DEVICE" = cpu ] && [ "$P" != fp32 ] && continue
      step "torch $P T=$T batch $B" "$PY" scripts/bench_blt_torch.py --device "$TORCH_DEVICE" \
        --precision "$P" --models ref64,ref64_mult --timesteps "$T" --batch "$B" --warmup 3 \
        --iters 10 --json > "$OUTDIR/torch_bench_${P}_T${T}_b$B.json"
    done
  done
}

# data / torch_epoch / epoch / epoch_bf16: a MiniEcoset-shaped synthetic set
#    (scripts/make_synthetic_npz.py: 100 classes, 64 px, uint8 HWC) imported with `ventral
#    pack`; EPOCHS epochs of `ventral train` (timed whole: load, kernel compilation, epochs,
#    validation; and the last epoch's own rate, which `ventral train` counts from the end of the
#    previous validation, i.e. past the compilation when EPOCHS > 1) and one epoch of the same
#    loop in PyTorch (its data held on the GPU).
section_data() {
  local split
  step "synthetic set ($N_TRAIN train, $N_VAL val)" "$PY" scripts/make_synthetic_npz.py "$WORK/npz" "$N_TRAIN" "$N_VAL"
  for split in train val; do
    step "pack $split" "$V" pack --format npz "$WORK/npz/$split.npz" --split "$split" --out "$WORK/ds" > /dev/null
  done
}
epoch() { # ventral's precision
  local VP="$1" eng t0 rc secs ips last
  eng=$(engine_for "$VP")
  cat > "$WORK/ref64_$VP.toml" <<EOF
[model]
preset = "blt64_lt"   # BLT_net_64, additive, 100 classes (see: ventral models)
timesteps = $T

[data]
path = "$WORK/ds"

[train]
epochs = $EPOCHS
batch_size = $EPOCH_BATCH
seed = 0
eval_batch_size = $EPOCH_BATCH
drop_last = true      # as PyTorch's loop; a ragged batch would compile every kernel again
device = "$DEVICE"
precision = "$VP"
engine = "$eng"

[train.optimizer]
kind = "adam"
lr = 0.001
EOF
  t0=$(now)
  step "ventral train $VP: $EPOCHS epochs, T=$T batch $EPOCH_BATCH" "$V" train "$WORK/ref64_$VP.toml" \
    --out "$WORK/run_$VP" > "$OUTDIR/ventral_train_$VP.log" 2>&1
  rc=$?
  secs=$(since "$t0")
  tail -3 "$OUTDIR/ventral_train_$VP.log"
  if [ "$rc" = 0 ]; then
    cp "$WORK/run_$VP/metrics.csv" "$OUTDIR/ventral_train_metrics_$VP.csv"
    ips=$(awk -v n="$((N_TRAIN / EPOCH_BATCH * EPOCH_BATCH * EPOCHS))" -v s="$secs" 'BEGIN { printf "%.2f", n / s }')
    echo "epoch_whole,ref64,$T,$EPOCH_BATCH,ventral,${VP/f32/fp32},$ips,$secs" >> "$CSV"
    # The last epoch's training rate: its final progress line ("epoch N … X images/s, loss …").
    last=$(grep -E "^ *epoch $((EPOCHS - 1)):.* images/s" "$OUTDIR/ventral_train_$VP.log" | tail -1 |
      sed -E 's/.* ([0-9.]+) images\/s.*/\1/')
    [ -n "$last" ] && echo "epoch_train,ref64,$T,$EPOCH_BATCH,ventral,${VP/f32/fp32},$last," >> "$CSV"
  fi
  return 0
}
section_torch_epoch() {
  local P
  for P in $PRECISIONS; do
    [ "$TORCH_DEVICE" = cpu ] && [ "$P" != fp32 ] && continue
    step "torch epoch $P" "$PY" scripts/bench_blt_torch.py --device "$TORCH_DEVICE" \
      --precision "$P" --models ref64 --timesteps "$T" --batch "$EPOCH_BATCH" \
      --epoch-data "$WORK/npz" --epochs "$EPOCHS" --json > "$OUTDIR/torch_epoch_$P.json"
  done
}
section_epoch() { case " $VENTRAL_PRECISIONS " in *" f32 "*) epoch f32 ;; esac; }
section_epoch_bf16() { case " $VENTRAL_PRECISIONS " in *" bf16 "*) epoch bf16 ;; esac; }

# families: every model family on the device against the same network on the CPU (forward
#    log-probabilities; `vs_cpu` in the JSON), with a training step timed: ConvRNNs with local
#    cells, rcnn-sat BL, the multiplicative BLT. The BLT gradients are checked by bench
#    (`vs_native`). One process per model: each compiles its own kernels for minutes (the
#    four in one process had not finished after 207 s on an H200), and each finished one
#    keeps its JSON when the budget stops the next.
section_families() {
  local m
  for m in ${FAMILIES:-rgc_shallow lstm_shallow bl blt64_lt_mult}; do
    step "family $m on $DEVICE" "$V" bench --device "$DEVICE" --models "$m" --batch 8 --warmup 1 \
      --iters 2 --json > "$OUTDIR/ventral_family_$m.json"
  done
}

# GPU utilisation through the run, one sample per second (where the GPU waits: compilation).
if [ "$DEVICE" != cpu ] && command -v nvidia-smi > /dev/null; then
  nvidia-smi dmon -s u -d 1 > "$OUTDIR/dmon.txt" 2>&1 &
  DMON=$!
fi
# Where each ventral process's first minutes go: CubeCL logs every kernel it compiles and
# every autotuning decision to OUTDIR (it reads cubecl.toml from the working directory or a
# parent; written here for this run only, removed at exit). KERNEL_LOG=0 leaves it off. By
# default CubeCL keeps only its tuning results on disk; KERNEL_CACHE=1 (default) also keeps the
# compiled kernels (`[compilation] cache = true`), so later processes of the run — and a second
# call on the warm machine — can skip compiling what an earlier one compiled.
if [ "${KERNEL_LOG:-1}" = 1 ] && [ ! -e cubecl.toml ]; then
  KERNEL_TOML="$PWD/cubecl.toml"
  cat > "$KERNEL_TOML" <<EOF
[compilation]
cache = $([ "${KERNEL_CACHE:-1}" = 1 ] && echo true || echo false)

[compilation.logger]
level = "basic"
file = "$OUTDIR/cubecl_compile.log"

[autotune.logger]
level = "minimal"
file = "$OUTDIR/cubecl_autotune.log"
EOF
fi
for s in $ORDER; do
  case "$s" in data | torch_epoch | epoch | epoch_bf16 | families | bench | torch_bench | tests) ;;
    *) echo "unknown section in ORDER: $s" >&2; exit 2 ;;
  esac
  skip "$s" || "section_$s"
done

# Summary: the CSV and a table of ratios.
"$PY" - "$OUTDIR" "$CSV" "$T" <<'PYEOF'
import glob, json, os, re, sys
out, csv, T = sys.argv[1], sys.argv[2], sys.argv[3]
rows = []
def load(p):
    try:
        return json.load(open(p))
    except Exception:
        return None
for p in sorted(glob.glob(f"{out}/ventral_bench_*.json")):
    d = load(p)
    vp, b = re.search(r"ventral_bench_(\w+?)_T\d+_b(\d+)\.json$", p).groups()
    vp = "fp32" if vp == "f32" else vp
    for m in ("ref64", "ref64_mult"):
        if d and m in d:
            for mode in ("train", "infer"):
                rows.append((f"{mode}_step", m, T, b, "ventral", vp, d[m][f"{mode}_images_per_s"], d[m][f"{mode}_s_per_batch"]))
for p in sorted(glob.glob(f"{out}/torch_bench_*.json")):
    d = load(p)
    prec, b = re.search(r"torch_bench_(\w+?)_T\d+_b(\d+)\.json$", p).groups()
    for m in ("ref64", "ref64_mult"):
        if d and m in d:
            for mode in ("train", "infer"):
                rows.append((f"{mode}_step", m, T, b, "torch", prec, d[m][f"{mode}_images_per_s"], d[m][f"{mode}_s_per_batch"]))
for p in sorted(glob.glob(f"{out}/torch_epoch_*.json")):
    d = load(p)
    prec = re.search(r"torch_epoch_(\w+)\.json$", p).group(1)
    if d and "ref64" in d:
        e = d["ref64"]
        epochs = e.get("epoch_s", [e["train_epoch_s"]])
        total = e["load_s"] + sum(epochs) + e["val_s"]
        rows.append(("epoch_whole", "ref64", T, e["batch"], "torch", prec, e["train_images"] * len(epochs) / total, total))
        rows.append(("epoch_train", "ref64", T, e["batch"], "torch", prec, e["train_images_per_s"], e["train_epoch_s"]))
        print(f"torch {prec}: load {e['load_s']:.1f} s, epochs {', '.join(f'{t:.1f}' for t in epochs)} s "
              f"(the last {e['train_images_per_s']:.0f} images/s), val {e['val_s']:.1f} s, val acc {e['val_acc_last']:.3f}")
checks = []
for p in sorted(glob.glob(f"{out}/ventral_bench_*.json")):
    d = load(p) or {}
    for m in ("ref64", "ref64_mult"):
        c = (d.get(m) or {}).get("vs_native")
        if c:
            checks.append(f"{os.path.basename(p)} {m} vs native CPU engine: log-probs {c['log_probs_max_abs_diff']:.2e}, "
                          f"gradients {c['grad_max_rel_l2']:.2e} rel L2 (worst {c['grad_worst']}), within parity bounds: {c['within_parity_bounds']}, "
                          f"within TF32 bounds: {c.get('within_tf32_bounds')}")
fam = {}
for p in sorted(glob.glob(f"{out}/ventral_family_*.json")):
    fam.update(load(p) or {})
for m, r in fam.items():
    if isinstance(r, dict) and r.get("vs_cpu"):
        c = r["vs_cpu"]
        checks.append(f"{m} vs CPU: log-probs {c['log_probs_max_abs_diff']:.2e} ({c['images']} images); "
                      f"train {r['train_images_per_s']:.1f} images/s, inference {r['infer_images_per_s']:.1f} (batch {r['batch']})")
print("\n".join(["", "correctness on the device:"] + checks) if checks else "\nno device correctness results")
with open(csv, "a") as f:
    for r in rows:
        f.write(",".join(str(v) for v in r) + "\n")
lines = [l.strip().split(",") for l in open(csv)][1:]
ven = {(w, m, b, p): float(v) for w, m, t, b, s, p, v, _ in lines if s == "ventral"}
# ventral float32 against every torch precision; ventral bf16 against torch's AMP bf16 too.
print("\nwhat        model       batch  torch      torch img/s  ventral   ventral img/s  ventral/torch")
for w, m, t, b, s, p, v, _ in lines:
    if s != "torch":
        continue
    for vp in ["fp32"] + (["bf16"] if p == "amp_bf16" else []):
        if (w, m, b, vp) in ven:
            x = ven[(w, m, b, vp)]
            print(f"{w:<11} {m:<11} {b:>5}  {p:<9} {float(v):>11.1f}  {vp:<7} {x:>13.1f}  {x / float(v):>13.2f}")
PYEOF
for m in "$OUTDIR"/ventral_train_metrics_*.csv; do
  p="${m##*_}"
  [ -f "$m" ] && echo "ventral's epoch, ${p%.csv} (metrics.csv, last step):" && grep -E "^$((EPOCHS - 1)),$((T - 1)),(train|val)," "$m"
done
for f in "$OUTDIR"/cubecl_compile.log "$OUTDIR"/cubecl_autotune.log; do
  [ -f "$f" ] && echo "$(basename "$f"): $(wc -l < "$f") lines"
done
exit "$FIRST_RC"
