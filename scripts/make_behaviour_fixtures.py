"""Golden behavioural-consistency values for ventral's i1/i2 (crates/ventral-neural/tests/behaviour.rs).

Runs Brain-Score's own code at development time: the probabilities decoder of
`brainscore_vision.model_helpers.brain_transformation.behavior.ProbabilitiesMapping`
(StandardScaler + multinomial LogisticRegression, newton-cg, C=1e-3; tol tightened to 1e-12 so the
fixture holds the optimum rather than one solver's stopping point) and the metrics of
`brainscore_vision.metrics.i1i2.metric` (I1, I1n, I2, I2n: score per split, ceiling per split) with
the ceiling step of `benchmarks/rajalingham2018` (score / sqrt(ceiling) per split, mean and std).
Needs brainscore-vision 2.4.2 with its pinned xarray < 2022.6 and numpy < 2 (a separate venv):
    python3 -m venv /work/venv-bs && . /work/venv-bs/bin/activate
    pip install "numpy<2" "xarray<2022.6" "pandas<2" scipy "scikit-learn<1.6" netCDF4 boto3 tqdm \
        pillow psutil result_caching
    pip install --no-deps brainscore-vision==2.4.2 brainscore-core==2.5.0 brainio==0.0.20
    python scripts/make_behaviour_fixtures.py
"""
import json
import sys
from collections import OrderedDict

import numpy as np
import scipy.stats
import sklearn
import sklearn.linear_model
import sklearn.preprocessing
from brainscore_core.supported_data_standards.brainio.assemblies import BehavioralAssembly
from brainscore_vision.metrics.i1i2.metric import I1, I1n, I2, I2n

OUT = "crates/ventral-neural/tests/fixtures/brainscore_behaviour.json"


def probabilities_classifier(x_fit, y_fit, x_test, tol):
    # brainscore_vision ... behavior.py ProbabilitiesMapping.ProbabilitiesClassifier, tol exposed.
    scaler = sklearn.preprocessing.StandardScaler().fit(x_fit)
    label2index = OrderedDict()
    idx = []
    for label in y_fit:
        if label not in label2index:
            label2index[label] = (max(label2index.values()) + 1) if label2index else 0
        idx.append(label2index[label])
    clf = sklearn.linear_model.LogisticRegression(multi_class="multinomial", solver="newton-cg",
                                                  C=1e-3, tol=tol, max_iter=10000)
    clf.fit(scaler.transform(x_fit), idx)
    return clf.predict_proba(scaler.transform(x_test)), list(label2index.keys())


def case(name, seed, n_obj, n_fit_per, n_test_per, d, trials_per_pair):
    rng = np.random.RandomState(seed)
    objects = [f"obj{k}" for k in range(n_obj)]
    means = rng.randn(n_obj, d) * 0.6

    def draw(n_per, prefix):
        ids, labels, rows = [], [], []
        for k in range(n_obj):
            for i in range(n_per):
                gain = rng.uniform(0.2, 1.8)
                rows.append(gain * means[k] + rng.randn(d))
                ids.append(f"{prefix}{k}_{i}")
                labels.append(objects[k])
        order = rng.permutation(len(ids))  # interleave classes: label order = first appearance
        return [ids[o] for o in order], [labels[o] for o in order], np.array(rows)[order]

    fit_ids, fit_labels, x_fit = draw(n_fit_per, "f")
    test_ids, test_labels, x_test = draw(n_test_per, "t")
    probs, choices = probabilities_classifier(x_fit, fit_labels, x_test, tol=1e-12)
    probs_default, _ = probabilities_classifier(x_fit, fit_labels, x_test, tol=1e-4)

    # Trials: every (image, distractor) pair `trials_per_pair` times; the subject picks the
    # sample with a probability that varies per image and distractor.
    trials = {"stimulus_id": [], "sample_obj": [], "dist_obj": [], "choice": []}
    for sid, truth in zip(test_ids, test_labels):
        ease = rng.uniform(0.3, 0.97)
        for dist in objects:
            if dist == truth:
                continue
            p = np.clip(ease + rng.uniform(-0.2, 0.2), 0.02, 0.99)
            for _ in range(trials_per_pair):
                trials["stimulus_id"].append(sid)
                trials["sample_obj"].append(truth)
                trials["dist_obj"].append(dist)
                trials["choice"].append(truth if rng.uniform() < p else dist)
    # Presentation order shuffled (as collected trials are).
    order = rng.permutation(len(trials["choice"]))
    trials = {k: [v[o] for o in order] for k, v in trials.items()}

    def target():
        return BehavioralAssembly(
            trials["choice"],
            coords={"stimulus_id": ("presentation", trials["stimulus_id"]),
                    "sample_obj": ("presentation", trials["sample_obj"]),
                    "dist_obj": ("presentation", trials["dist_obj"]),
                    "truth": ("presentation", trials["sample_obj"])},
            dims=["presentation"])

    def source():
        return BehavioralAssembly(probs, coords={"stimulus_id": ("presentation", test_ids),
                                                 # a second coordinate keeps BrainIO's presentation
                                                 # MultiIndex (one level alone is dropped)
                                                 "object_name": ("presentation", test_labels),
                                                 "choice": ("choice", choices)},
                                  dims=["presentation", "choice"])

    metrics = {}
    for mname, ctor in [("i1", I1), ("i1n", I1n), ("i2", I2), ("i2n", I2n)]:
        metric = ctor()
        score = metric(source(), target())
        # skipna=True: Brain-Score's default (False) asserts that the first half has no NaN
        # where the second has a value, i.e. fails when a half never shows an image with some
        # distractor (it happens with few trials per pair); where it passes both are equal.
        ceiling = metric.ceiling(target(), skipna=True)
        raw = score.raw.values.tolist()
        ceil = ceiling.raw.values.tolist()
        ceiled = [s / np.sqrt(c) for s, c in zip(raw, ceil)]
        # The model's response matrix as the metric builds it (sorted by stimulus_id, choice).
        src = source()
        metric.add_source_meta(src, target())
        m = metric.dprimes(metric.target_distractor_scores(src))
        if metric._collapse_distractors:
            m = metric.collapse_distractors(m)
            m = m.sortby("stimulus_id")
        else:
            m = m.sortby("stimulus_id").sortby("choice")
        metrics[mname] = {
            "raw": raw, "ceiling": ceil, "ceiled_center": float(np.mean(ceiled)),
            "ceiled_error": float(np.std(ceiled)),
            "source_matrix": [None if np.isnan(v) else float(v) for v in np.asarray(m.values).ravel()],
        }
    return {
        "name": name, "objects_in_label_order": choices,
        "fit": {"stimulus_id": fit_ids, "label": fit_labels, "x": x_fit.ravel().tolist(), "d": d},
        "test": {"stimulus_id": test_ids, "label": test_labels, "x": x_test.ravel().tolist()},
        "probabilities": probs.ravel().tolist(),
        "probabilities_default_tol": probs_default.ravel().tolist(),
        "trials": trials, "metrics": metrics,
    }


out = {"numpy": np.__version__, "sklearn": sklearn.__version__,
       "brainscore_vision": "2.4.2", "cases": [
           case("primal", 0, 4, 15, 8, 12, 8),
           case("dual", 1, 5, 8, 6, 90, 8),
       ],
       "norm_ppf": [[q, float(scipy.stats.norm.ppf(q))] for q in
                    [1e-300, 1e-12, 1e-6, 0.001, 0.0242, 0.02425, 0.1, 0.3, 0.5, 0.7, 0.97575,
                     0.98, 0.999, 1 - 1e-9]]}
with open(OUT, "w") as f:
    json.dump(out, f)
# The first case's trials as a BrainIO behavioural assembly (what Rajalingham2018 ships as).
from brainscore_core.supported_data_standards.brainio.packaging import write_netcdf
t = out["cases"][0]["trials"]
write_netcdf(BehavioralAssembly(t["choice"], coords={
    "stimulus_id": ("presentation", t["stimulus_id"]), "sample_obj": ("presentation", t["sample_obj"]),
    "dist_obj": ("presentation", t["dist_obj"]), "truth": ("presentation", t["sample_obj"])},
    dims=["presentation"]), OUT.replace("brainscore_behaviour.json", "brainscore_trials.nc"))
print("wrote", OUT, file=sys.stderr)
