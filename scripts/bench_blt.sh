#!/usr/bin/env bash
# ventral vs PyTorch on the same BLT networks, in one run, with the ratio.
#
#   PYTHON=.venv/bin/python bash scripts/bench_blt.sh [TIMESTEPS] [BATCH] [ITERS]
#
# Needs a Python with torch (the PyPI wheel is the CUDA build, ~3 GB; CPU is used here).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
T="${1:-4}"; B="${2:-16}"; N="${3:-3}"
cargo build --release -q
V=target/release/ventral
R=$($V bench --timesteps "$T" --batch "$B" --iters "$N" --profile --json)
P=$("$PY" scripts/bench_blt_torch.py --timesteps "$T" --batch "$B" --iters "$N" --json)
"$PY" - "$R" "$P" <<'PYEOF'
import json, sys
r, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"threads: ventral {r['threads']}, torch {p['threads']} (torch {p['torch']})")
print(f"{'model':<7} {'mode':<6} {'ventral img/s':>14} {'torch img/s':>12} {'ventral/torch':>14}")
for m in ("ref64", "tiny"):
    if m not in r or m not in p:
        continue
    for mode in ("train", "infer"):
        a, b = r[m][f"{mode}_images_per_s"], p[m][f"{mode}_images_per_s"]
        print(f"{m:<7} {mode:<6} {a:>14.2f} {b:>12.2f} {a / b:>14.2f}")
    if "profile" in r[m]:
        print(f"  ventral per-op profile ({m}, seconds per call):")
        for row in r[m]["profile"]:
            print("   ", row["layer"], {k: round(v, 4) for k, v in row.items() if k.endswith("_s")})
PYEOF
