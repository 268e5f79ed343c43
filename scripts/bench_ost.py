"""Brain-Score's own OSTCorrelation on a ventral `ost` input (features .npz + targets CSV):
the baseline side of scripts/bench_ost.sh.

    python scripts/bench_ost.py make DIR N D T OBJECTS   # DIR/feat.npz (layer `hidden`), DIR/targets.csv
    python scripts/bench_ost.py FEATURES.npz LAYER TARGETS.csv OFFSET_MS STEP_MS

`make` writes Kar2019-shaped data (N images of OBJECTS objects, T steps of D float32 features
whose class signal rises at a per-image delay; target OSTs follow the delay, thresholds
uniform in [0.5, 2]).

Builds the source assembly (presentation × neuroid × time_bin, model step t in the bin starting
at OFFSET_MS + t·STEP_MS; `image_label` and `truth` from the targets' object_name) and the
target OSTs (`ost_ms`, coordinate `i1` from `i1_threshold`), times
`OSTCorrelation()(source, targets)` and prints JSON: seconds, score, error and each split's
Spearman r (kept by wrapping `correlate`). Needs brainscore-vision 2.4.2 and tensorflow-cpu.
"""
import csv
import json
import sys
import time

import numpy as np
from brainscore_core.supported_data_standards.brainio.assemblies import (DataAssembly,
                                                                          NeuroidAssembly)
from brainscore_vision.metrics.ost.metric import OSTCorrelation

if sys.argv[1] == "make":
    out, S, D, T, O = sys.argv[2], *map(int, sys.argv[3:7])
    rng = np.random.default_rng(0)
    codes = np.arange(S) % O
    proto = rng.normal(size=(O, D)) * 0.3
    delay = rng.uniform(0, 12, size=S)
    x = np.zeros((T, S, D), dtype=np.float32)
    for t in range(T):
        g = 1 / (1 + np.exp(-(t - delay)))
        x[t] = (g[:, None] * proto[codes] + rng.normal(size=(S, D))).astype(np.float32)
    ids = np.array([f"im{i:05d}" for i in range(S)])
    np.savez(f"{out}/feat.npz", hidden=x, stimulus_id=ids)
    ost = 70 + 10 * delay + rng.normal(size=S) * 5
    with open(f"{out}/targets.csv", "w") as f:
        f.write("stimulus_id,object_name,ost_ms,i1_threshold\n")
        for i in range(S):
            f.write(f"{ids[i]},obj{codes[i]},{ost[i]:.2f},{rng.uniform(0.5, 2.0):.4f}\n")
    sys.exit(0)

feats, layer, targets_csv, offset, step = sys.argv[1], sys.argv[2], sys.argv[3], float(
    sys.argv[4]), float(sys.argv[5])
z = np.load(feats)
x = z[layer]  # [T, N, D]
ids = [str(s) for s in z["stimulus_id"]]
rows = list(csv.DictReader(open(targets_csv)))
assert [r["stimulus_id"] for r in rows] == ids, "targets and features list different stimuli"
labels = [r["object_name"] for r in rows]
T, N, D = x.shape
starts = [offset + t * step for t in range(T)]
if all(float(v).is_integer() for v in starts + [step]):  # Brain-Score's bins are integers
    starts, step = [int(v) for v in starts], int(step)
source = NeuroidAssembly(np.ascontiguousarray(x.transpose(1, 2, 0)), coords={
    "stimulus_id": ("presentation", ids), "image_label": ("presentation", labels),
    "truth": ("presentation", labels),
    "neuroid_id": ("neuroid", [f"f{j}" for j in range(D)]),
    "time_bin_start": ("time_bin", starts), "time_bin_end": ("time_bin", [s + step for s in starts]),
}, dims=["presentation", "neuroid", "time_bin"])
ost = np.array([float(r["ost_ms"]) if r["ost_ms"] not in ("", "nan") else np.nan for r in rows])
targets = DataAssembly(ost, coords={
    "stimulus_id": ("presentation", ids), "image_label": ("presentation", labels),
    "truth": ("presentation", labels),
    "i1": ("presentation", [float(r["i1_threshold"]) for r in rows]),
}, dims=["presentation"])
split_r = []
orig = OSTCorrelation.correlate


def correlate(self, pred, target):
    s = orig(self, pred, target)
    split_r.append(float(s.values))
    return s


OSTCorrelation.correlate = correlate
t0 = time.time()
score = OSTCorrelation()(source, targets)
print(json.dumps({"seconds": time.time() - t0, "score": float(score.values),
                  "error": float(score.attrs["error"]), "split_r": split_r}))
