"""Golden per-split neural predictivity and ceilings from Brain-Score's own code
(crates/ventral-neural/tests/brainscore_neural.rs).

A fixed synthetic recording (80 stimuli of 4 objects × 6 repetitions, IT and V4 sites, two 10 ms
bins) and two feature layers (60 features: primal PLS; 150 features > training stimuli: ventral's
dual form), scored by brainscore-vision 2.4.2 exactly as its neural benchmarks do:
    metric  = load_metric('pls', crossvalidation_kwargs=dict(stratification_coord='object_name'))
            = CrossRegressedCorrelation(pls_regression(), pearsonr_correlation(), ...)
              (StratifiedShuffleSplit(10, train_size=.9, random_state=1) over stimulus_id,
               PLSRegression(25, scale=False), Pearson r per neuroid, median over neuroids)
    ceiling = InternalConsistency() (ShuffleSplit(10, train_size=.5, random_state=1) over the
              unique repetitions, trial averages per half, Pearson r per neuroid, Spearman-Brown
              n = 2, median over neuroids)
per region and per time bin (the benchmark's `average_repetition` target; `TemporalCeiling`'s
per-bin ceiling). The per-split values are what Brain-Score keeps in `score.raw`.
Needs the venv of scripts/make_behaviour_fixtures.py (brainscore-vision 2.4.2, numpy < 2):
    /work/venv-bs/bin/python scripts/make_neural_fixtures.py
"""
import json
import sys

import numpy as np
from brainscore_core.supported_data_standards.brainio.assemblies import (NeuroidAssembly,
                                                                          NeuronRecordingAssembly)
from brainscore_core.supported_data_standards.brainio.packaging import write_netcdf
from brainscore_vision.benchmark_helpers.neural_common import average_repetition
from brainscore_vision.metrics.internal_consistency.ceiling import InternalConsistency
from brainscore_vision.metrics.regression_correlation.metric import (CrossRegressedCorrelation,
                                                                     pearsonr_correlation,
                                                                     pls_regression)

DIR = "crates/ventral-neural/tests/fixtures/"
rng = np.random.default_rng(20261202)
S, R, OBJ = 80, 6, 4
ids = [f"img{i:03d}" for i in range(S)]
objects = [f"obj{i % OBJ}" for i in range(S)]
sites = [("IT", 10), ("V4", 6)]
K = sum(k for _, k in sites)
bins = [(70, 80), (80, 90)]
# Latent stimulus code → features (two layers) and sites (noisy, per repetition).
obj_means = rng.normal(size=(OBJ, 12))
latent = rng.normal(size=(S, 12)) + obj_means[np.arange(S) % OBJ]
feat_a = (latent @ rng.normal(size=(12, 60)) + 0.5 * rng.normal(size=(S, 60))).astype(np.float32)
feat_b = np.tanh(latent @ rng.normal(size=(12, 150)) / 3 + 0.3 * rng.normal(size=(S, 150))).astype(
    np.float32)
loading = rng.normal(size=(12, K, len(bins)))
signal = np.einsum("sl,lkb->skb", latent, loading)
noise_sd = np.concatenate([np.full(10, 4.0), np.full(6, 6.0)])[None, :, None]
# Presentations repetition-major (as recorded); the assembly is float32 like Brain-Score's data.
data = np.stack([signal + noise_sd * rng.normal(size=signal.shape) for _ in range(R)])
pres_stim = [ids[s] for r in range(R) for s in range(S)]
pres_obj = [objects[s] for r in range(R) for s in range(S)]
pres_rep = [r for r in range(R) for s in range(S)]
values = data.reshape(R * S, K, len(bins)).astype(np.float32)
regions = [reg for reg, k in sites for _ in range(k)]
assembly = NeuronRecordingAssembly(values, coords={
    "stimulus_id": ("presentation", pres_stim), "object_name": ("presentation", pres_obj),
    "repetition": ("presentation", pres_rep),
    "neuroid_id": ("neuroid", [f"n{j:02d}" for j in range(K)]), "region": ("neuroid", regions),
    "time_bin_start": ("time_bin", [b[0] for b in bins]),
    "time_bin_end": ("time_bin", [b[1] for b in bins])},
    dims=["presentation", "neuroid", "time_bin"])
write_netcdf(assembly, DIR + "brainscore_neural.nc")
np.savez(DIR + "brainscore_neural_features.npz", a=feat_a, b=feat_b, stimulus_id=np.array(ids))

metric = CrossRegressedCorrelation(regression=pls_regression(), correlation=pearsonr_correlation(),
                                   crossvalidation_kwargs=dict(stratification_coord="object_name"))
out = {"fits": [], "ceilings": []}
offset = 0
for region, k in sites:
    # One region's sites as its own assembly (what a benchmark's `assembly.sel(region=...)`
    # hands the metric), built afresh so the neuroid MultiIndex keeps its levels.
    sel = slice(offset, offset + k)
    offset += k
    def build(b):
        return NeuronRecordingAssembly(values[:, sel, b], coords={
            "stimulus_id": ("presentation", pres_stim), "object_name": ("presentation", pres_obj),
            "repetition": ("presentation", pres_rep),
            "neuroid_id": ("neuroid", [f"n{j:02d}" for j in range(sel.start, sel.stop)]),
            "region": ("neuroid", [region] * k)}, dims=["presentation", "neuroid"])
    for b in range(len(bins)):
        rec = build(b)
        ceiling = InternalConsistency()(rec)
        out["ceilings"].append({"region": region, "bin": b,
                                # raw: split × neuroid Spearman-Brown-corrected r
                                "per_split": [float(v) for v in
                                              ceiling.raw.median("neuroid").values],
                                "value": float(ceiling.values)})
        target = average_repetition(rec)
        for layer, feats in (("a", feat_a), ("b", feat_b)):
            source = NeuroidAssembly(feats, coords={
                "stimulus_id": ("presentation", ids), "object_name": ("presentation", objects),
                "neuroid_id": ("neuroid", [f"{layer}{j}" for j in range(feats.shape[1])])},
                dims=["presentation", "neuroid"])
            score = metric(source, target)
            raw = score.raw  # split × neuroid Pearson r
            per_split = raw.median("neuroid")
            per_site = raw.mean("split")
            out["fits"].append({
                "layer": layer, "region": region, "bin": b,
                "per_split": [float(v) for v in per_split.values],
                "value": float(score.values),
                "per_site": {str(n): float(v) for n, v in zip(per_site["neuroid_id"].values,
                                                                per_site.values)}})
with open(DIR + "brainscore_neural.json", "w") as f:
    json.dump(out, f, indent=1)
print("wrote", DIR + "brainscore_neural.json", file=sys.stderr)
