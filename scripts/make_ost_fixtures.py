"""Golden object solution times from Brain-Score's own OST code
(crates/ventral-neural/tests/brainscore_ost.rs).

1. Keras' VarianceScaling draws (Brain-Score's decoder initial weights:
   tf.compat.v1.keras.initializers.VarianceScaling(seed=0), i.e. Keras 3's truncated normal,
   fan_in, TensorFlow's stateless Philox kernel with seed [0, 0]) for several shapes.
2. One TFProbabilitiesClassifier fit (Brain-Score's decoder: z-scored features, softmax layer,
   L2 0.5·0.463 on weights and bias, TF1 Adam, batches of 64 shuffled by RandomState(0)) at
   Brain-Score's lr (1e-4) and at lr 1e-2 (so that training, not the initial weights, decides
   the probabilities), its predicted probabilities kept.
3. OSTCorrelation()(source, target_osts) itself on a fixed synthetic recording: 150 images of 5
   objects, 4 time bins, 12 features; ShuffleSplit(10, test_size=.1, random_state=1), so 16 test
   images per split (ceil(0.1 · 150) = 16 in floating point) and every object in every test split (Brain-Score's i1 raises KeyError
   otherwise). Kept per split: the test images, their i1 per bin, the predicted OSTs, the
   Spearman r; and the score and its error.
Needs brainscore-vision 2.4.2 and tensorflow-cpu (2.21, Keras 3.15) in one venv:
    /work/venv-bs/bin/python scripts/make_ost_fixtures.py
"""
import json
import math

import numpy as np
import tensorflow as tf
from brainscore_core.supported_data_standards.brainio.assemblies import (DataAssembly,
                                                                          NeuroidAssembly)
from brainscore_vision.metrics.ost import metric as ost_metric
from brainscore_vision.metrics.ost.metric import OSTCorrelation, TFProbabilitiesClassifier

OUT = "crates/ventral-neural/tests/fixtures/brainscore_ost.json"
fixture = {"tensorflow": tf.__version__}

# 1. Initial weights.
init = []
for shape in [(12, 5), (7, 3), (1, 1), (301, 10)]:
    g = tf.Graph()
    with g.as_default():
        v = tf.compat.v1.keras.initializers.VarianceScaling(seed=0)(shape, dtype=tf.float32)
        with tf.compat.v1.Session() as s:
            w = s.run(v)
    init.append({"shape": list(shape), "bits": w.astype(np.float32).view(np.uint32).ravel().tolist()})
fixture["variance_scaling"] = init

# The recording: 150 images, 5 objects, 4 bins; class signal that grows over bins and differs
# per image (some images are solved late).
rng = np.random.default_rng(20261203)
S, OBJ, D, BINS = 150, 5, 12, [(70, 80), (80, 90), (90, 100), (100, 110)]
ids = [f"im{i:03d}" for i in range(S)]
# Balanced labels, reshuffled until every ShuffleSplit test set holds every object.
from sklearn.model_selection import ShuffleSplit
tests = [t for _, t in ShuffleSplit(n_splits=10, test_size=.1, random_state=1).split(np.zeros(S))]
codes = np.arange(S) % OBJ
while not all(len(set(codes[t])) == OBJ for t in tests):
    codes = rng.permutation(codes)
labels = [f"obj{c}" for c in codes]
proto = rng.normal(size=(OBJ, D)) * 1.5
delay = rng.uniform(0, 3, size=S)
feats = np.zeros((S, D, len(BINS)), dtype=np.float32)
for b in range(len(BINS)):
    gain = 1 / (1 + np.exp(-(b - delay) * 2))
    feats[:, :, b] = (gain[:, None] * proto[codes] + rng.normal(size=(S, D))).astype(np.float32)

source = NeuroidAssembly(feats, coords={
    "stimulus_id": ("presentation", ids), "image_label": ("presentation", labels),
    "truth": ("presentation", labels),
    "neuroid_id": ("neuroid", [f"f{j:02d}" for j in range(D)]),
    "time_bin_start": ("time_bin", [b[0] for b in BINS]),
    "time_bin_end": ("time_bin", [b[1] for b in BINS]),
}, dims=["presentation", "neuroid", "time_bin"])
target_ost = np.round(rng.uniform(80, 160, size=S), 1)
target_ost[::13] = np.nan  # some images the target never solves
thresholds = rng.uniform(0.2, 1.6, size=S)
targets = DataAssembly(target_ost, coords={
    "stimulus_id": ("presentation", ids), "image_label": ("presentation", labels),
    "truth": ("presentation", labels), "i1": ("presentation", thresholds),
}, dims=["presentation"])
fixture["recording"] = {
    "stimulus_id": ids, "object_name": labels,
    "features_bits": feats.transpose(2, 0, 1).view(np.uint32).ravel().tolist(),  # [bin][image][feature]
    "shape": [len(BINS), S, D], "time_bin_start": [b[0] for b in BINS],
    "target_ost": [None if np.isnan(v) else float(v) for v in target_ost],
    "i1_threshold": thresholds.tolist(),
}

# 2. One decoder fit (train: images 0..119 of bin 2, test: 120..149), two learning rates.
fits = []
x2 = source.sel(time_bin_start=90).squeeze("time_bin_end").transpose("presentation", "neuroid")
for lr in [1e-4, 1e-2]:
    clf = TFProbabilitiesClassifier(init_lr=lr)
    clf.fit(x2.isel(presentation=slice(0, 120)), x2.isel(presentation=slice(0, 120))["image_label"])
    p = clf.predict_proba(x2.isel(presentation=slice(120, 150)))
    clf.close()
    fits.append({"lr": lr, "choice": [str(c) for c in p["choice"].values],
                 "probs": np.asarray(p.values, dtype=np.float64).ravel().tolist()})
fixture["decoder"] = {"bin_start": 90, "train": [0, 120], "test": [120, 150], "fits": fits}

# 3. OSTCorrelation, intermediate values kept.
splits = []
orig_compute, orig_i1, orig_corr = (OSTCorrelation.compute_osts, OSTCorrelation.i1,
                                    OSTCorrelation.correlate)


def compute_osts(self, train_source, test_source, test_osts):
    splits.append({"test": [ids.index(s) for s in test_osts["stimulus_id"].values], "i1": []})
    pred = orig_compute(self, train_source, test_source, test_osts)
    splits[-1]["ost"] = [None if np.isnan(v) else float(v) for v in pred]
    return pred


def i1(self, probs):
    r = orig_i1(self, probs)
    splits[-1]["i1"].append([float(v) for v in r.values])
    return r


def correlate(self, pred, target):
    s = orig_corr(self, pred, target)
    splits[-1]["spearman"] = float(s.values)
    return s


OSTCorrelation.compute_osts, OSTCorrelation.i1, OSTCorrelation.correlate = compute_osts, i1, correlate
score = OSTCorrelation()(source, targets)
fixture["ost"] = {"splits": splits, "score": float(score.values),
                  "error": float(score.attrs["error"])}
def no_nan(v):  # JSON has no NaN: null
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, list):
        return [no_nan(x) for x in v]
    if isinstance(v, dict):
        return {k: no_nan(x) for k, x in v.items()}
    return v


with open(OUT, "w") as f:
    json.dump(no_nan(fixture), f, allow_nan=False)
print("score", float(score.values), "error", float(score.attrs["error"]))
print("test classes per split", [len({labels[i] for i in s["test"]}) for s in splits])
