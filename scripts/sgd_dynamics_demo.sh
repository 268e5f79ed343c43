#!/usr/bin/env bash
# The Kunin et al. protocol on the tiny BLT and the embedded stimuli: train to convergence with
# Adam, restart from the trained weights with constant-lr SGD + momentum and the tracker on,
# then fit the diffusion exponent.
#   bash scripts/sgd_dynamics_demo.sh OUT [SGD_EPOCHS] [LR]
set -euo pipefail
OUT=${1:?usage: sgd_dynamics_demo.sh OUT [SGD_EPOCHS] [LR]}
EPOCHS=${2:-20}
LR=${3:-0.002}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
V=${VENTRAL:-${CARGO_TARGET_DIR:-$ROOT/target}/release/ventral}
mkdir -p "$OUT"
[ -d "$OUT/stim" ] || "$V" stimuli --out "$OUT/stim" --num-images 4000 --seed 0 --no-stimulus-set
# Both phases at a constant learning rate, as measured in docs/sgd_dynamics.md (tiny.toml's cosine
# schedule is the quickstart's; the tracker refuses a non-constant one).
"$V" train "$ROOT/configs/tiny.toml" --set data.path="$OUT/stim" --set train.epochs=6 \
  --set train.schedule.kind=constant --out "$OUT/adam" --resume
"$V" train "$ROOT/configs/tiny.toml" --set data.path="$OUT/stim" --set train.epochs="$EPOCHS" \
  --set train.optimizer.kind=sgd --set train.optimizer.lr="$LR" --set train.optimizer.momentum=0.9 \
  --set train.schedule.kind=constant --set train.sgd_dynamics.every=1 \
  --init-from "$OUT/adam" --out "$OUT/sgd" --resume
"$V" diffusion "$OUT/sgd" --out "$OUT/diffusion" --overwrite
"$V" diffusion "$OUT/sgd" --skip-first 100 --fit-last 0.6667 --out "$OUT/diffusion_late" --overwrite
