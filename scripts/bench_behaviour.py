"""Behavioural consistency benchmark: ventral behaviour vs Brain-Score's own code, same data.

    python bench_behaviour.py make DIR OBJECTS FIT_PER TEST_PER FEATURES TRIALS_PER_PAIR
    python bench_behaviour.py run DIR          # Brain-Score: decoder + I1n/I2n score and ceiling
    python bench_behaviour.py check DIR VENTRAL_OUT

`make` writes class-structured features of fitting and test images (fit.npz, test.npz with a
`stimulus_id` array), the fitting images' objects (fit.csv) and two-alternative trials of a
subject that reads the test features (trials.csv). `run` times what Brain-Score does for the
Rajalingham2018 benchmark on these inputs — ProbabilitiesClassifier (StandardScaler +
LogisticRegression(multinomial, newton-cg, C=1e-3), its default tolerance) fitted on the fitting
images, probabilities of the test images, I1n and I2n (score and ceiling, 2 halvings) — and
prints JSON with the seconds and every halving's values; the decoder is also rerun untimed at
tol=1e-10 on float64 copies of the features (scikit-learn computes float32 input in float32,
as Brain-Score runs it on PyTorch features) so `check` can compare ventral's values to the
optimum's. Needs brainscore-vision
(see make_behaviour_fixtures.py for the environment).
"""
import json
import sys
import time
from collections import OrderedDict

import numpy as np


def make(d, k, fit_per, test_per, p, tpp):
    rng = np.random.RandomState(0)
    means = rng.randn(k, p) * 0.15
    objects = [f"obj{i:02d}" for i in range(k)]

    def draw(per, prefix):
        ids, labels, rows = [], [], []
        for o in range(k):
            for i in range(per):
                ids.append(f"{prefix}{o:02d}_{i:04d}")
                labels.append(o)
                rows.append(rng.uniform(0.2, 1.8) * means[o] + rng.randn(p) * 0.5)
        return ids, np.array(labels), np.array(rows, dtype=np.float32)

    fid, flab, fx = draw(fit_per, "f")
    tid, tlab, tx = draw(test_per, "t")
    np.savez(f"{d}/fit.npz", layer=fx, stimulus_id=np.array(fid))
    np.savez(f"{d}/test.npz", layer=tx, stimulus_id=np.array(tid))
    with open(f"{d}/fit.csv", "w") as f:
        f.write("stimulus_id,object_name\n")
        for i, l in zip(fid, flab):
            f.write(f"{i},{objects[l]}\n")
    # Subject: nearest-centroid evidence on the test features.
    z = (tx - tx.mean(0)) / tx.std(0)
    mu = np.stack([z[tlab == o].mean(0) for o in range(k)])
    ev = -4.0 * ((z[:, None, :] - mu[None]) ** 2).sum(-1) / p
    with open(f"{d}/trials.csv", "w") as f:
        f.write("stimulus_id,sample_obj,dist_obj,choice\n")
        for i, (sid, o) in enumerate(zip(tid, tlab)):
            for c in range(k):
                if c == o:
                    continue
                pc = 1.0 / (1.0 + np.exp(ev[i, c] - ev[i, o]))
                for _ in range(tpp):
                    ch = o if rng.uniform() < pc else c
                    f.write(f"{sid},{objects[o]},{objects[c]},{objects[ch]}\n")


def brainscore(d, tol, f64=False):
    import pandas as pd
    import sklearn.linear_model
    import sklearn.preprocessing
    from brainscore_core.supported_data_standards.brainio.assemblies import BehavioralAssembly
    from brainscore_vision.metrics.i1i2.metric import I1n, I2n

    fit, test = dict(np.load(f"{d}/fit.npz")), dict(np.load(f"{d}/test.npz"))
    if f64:  # scikit-learn keeps float32 input in float32; the optimum wants float64
        fit["layer"], test["layer"] = fit["layer"].astype(np.float64), test["layer"].astype(np.float64)
    labels = pd.read_csv(f"{d}/fit.csv")["object_name"].tolist()
    trials = pd.read_csv(f"{d}/trials.csv")
    t0 = time.perf_counter()
    # ProbabilitiesMapping.ProbabilitiesClassifier (behavior.py), tol exposed.
    scaler = sklearn.preprocessing.StandardScaler().fit(fit["layer"])
    label2index = OrderedDict()
    for l in labels:
        label2index.setdefault(l, len(label2index))
    clf = sklearn.linear_model.LogisticRegression(multi_class="multinomial", solver="newton-cg",
                                                  C=1e-3, tol=tol, max_iter=10000)
    clf.fit(scaler.transform(fit["layer"]), [label2index[l] for l in labels])
    probs = clf.predict_proba(scaler.transform(test["layer"]))
    t_decode = time.perf_counter() - t0
    source = BehavioralAssembly(probs, coords={
        "stimulus_id": ("presentation", test["stimulus_id"].tolist()),
        "image_label": ("presentation", ["x"] * len(probs)),
        "choice": ("choice", list(label2index.keys()))}, dims=["presentation", "choice"])

    def target():
        return BehavioralAssembly(trials["choice"].values, coords={
            "stimulus_id": ("presentation", trials["stimulus_id"].values),
            "sample_obj": ("presentation", trials["sample_obj"].values),
            "dist_obj": ("presentation", trials["dist_obj"].values),
            "truth": ("presentation", trials["sample_obj"].values)}, dims=["presentation"])

    out = {}
    t1 = time.perf_counter()
    for name, ctor in [("i1n", I1n), ("i2n", I2n)]:
        m = ctor()
        out[name] = {"raw": m(source.copy(), target()).raw.values.tolist(),
                     "ceiling": m.ceiling(target(), skipna=True).raw.values.tolist()}
    t_metric = time.perf_counter() - t1
    return {"decode_seconds": t_decode, "metric_seconds": t_metric,
            "seconds": t_decode + t_metric, "values": out}


def run(d):
    import warnings
    warnings.filterwarnings("ignore")
    res = brainscore(d, 1e-4)
    res["optimum"] = brainscore(d, 1e-10, f64=True)["values"]
    print(json.dumps(res))


def check(d, out):
    import pandas as pd
    bs = json.load(open(f"{d}/brainscore.json"))
    h = pd.read_csv(f"{out}/behaviour_halvings.csv")
    worst = {}
    for metric in ["i1n", "i2n"]:
        rows = h[h.metric == metric].sort_values("halving")
        for what, ref in [("raw", "optimum"), ("raw", "values"), ("ceiling", "values")]:
            want = np.array(bs[ref][metric][what])
            got = rows[what].values
            diff = np.where(np.isnan(got) & np.isnan(want), 0.0, np.abs(got - want))
            diff = np.where(np.isnan(diff), np.inf, diff)  # NaN on one side only
            worst[f"{metric} {what} vs Brain-Score ({'decoder at its optimum' if ref == 'optimum' else 'as run'})"] = \
                float(diff.max())
    for k, v in worst.items():
        print(f"  max |Δ| {k}: {v:.2e}")
    bad = [k for k, v in worst.items() if "as run" not in k and v > 1e-6]
    if bad:
        sys.exit(f"values differ beyond 1e-6: {bad}")
    print("values agree (ceilings and raw at the decoder's optimum to 1e-6)")


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "make":
        make(sys.argv[2], *map(int, sys.argv[3:8]))
    elif cmd == "run":
        run(sys.argv[2])
    else:
        check(sys.argv[2], sys.argv[3])
