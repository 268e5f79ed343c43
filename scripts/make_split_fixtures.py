"""Golden split draws for ventral's Brain-Score-identical splits (crates/ventral-neural/tests/splits.rs).

NumPy's legacy RandomState and scikit-learn's ShuffleSplit / StratifiedShuffleSplit, as Brain-Score
calls them (train_size=0.9, random_state=1 by default). Development time only:
    /work/venv/bin/python scripts/make_split_fixtures.py
"""
import json
import numpy as np
import sklearn
from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit
from sklearn.utils.extmath import _approximate_mode

out = {"numpy": np.__version__, "sklearn": sklearn.__version__, "permutation": [], "raw": [],
       "approximate_mode": [], "shuffle_split": [], "stratified": []}
for seed in [0, 1, 42, 4294967295]:
    # The seeded key (first and last words) before any draw.
    key = np.random.RandomState(seed).get_state()[1]
    out["raw"].append({"seed": seed, "key_head": key[:5].tolist(), "key_tail": key[-3:].tolist()})
for seed, n in [(0, 10), (1, 1), (1, 17), (7, 1000), (1, 1000)]:
    out["permutation"].append({"seed": seed, "n": n,
                               "perm": np.random.RandomState(seed).permutation(n).tolist()})
for counts, draws, seed in [([4, 2], 3, 0), ([5, 2], 4, 0), ([2, 2, 2, 1], 2, 0),
                            ([2, 2, 2, 1], 2, 42), ([7, 7, 7, 7, 7], 9, 1), ([33, 17, 50], 90, 3)]:
    out["approximate_mode"].append({"counts": counts, "draws": draws, "seed": seed,
                                    "mode": _approximate_mode(np.array(counts), draws, seed).tolist()})
for n, splits, train, seed in [(10, 3, 0.9, 1), (160, 10, 0.9, 1), (57, 4, 0.75, 5),
                               (2, 10, 0.5, 1), (5, 10, 0.5, 1), (10, 10, 0.5, 1)]:
    ss = ShuffleSplit(n_splits=splits, train_size=train, random_state=seed)
    out["shuffle_split"].append({"n": n, "splits": splits, "train": train, "seed": seed,
                                 "draws": [{"train": sorted(a.tolist()), "test": sorted(b.tolist())}
                                           for a, b in ss.split(np.zeros(n))]})
rng = np.random.RandomState(123)
names = ["animals", "boats", "cars", "chairs", "faces", "fruits", "planes", "tables"]
for n, k, splits, train, seed in [(160, 8, 10, 0.9, 1), (400, 8, 10, 0.9, 1), (63, 5, 3, 0.8, 7),
                                   (3200, 8, 2, 0.9, 1)]:
    labels = [names[i] for i in rng.randint(0, k, size=n)]
    sss = StratifiedShuffleSplit(n_splits=splits, train_size=train, random_state=seed)
    out["stratified"].append({"labels": labels, "splits": splits, "train": train, "seed": seed,
                              "draws": [{"train": sorted(a.tolist()), "test": sorted(b.tolist())}
                                        for a, b in sss.split(np.zeros(n), labels)]})
with open("crates/ventral-neural/tests/fixtures/sklearn_splits.json", "w") as f:
    json.dump(out, f, separators=(",", ":"))
