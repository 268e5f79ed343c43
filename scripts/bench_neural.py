"""Data maker and scikit-learn baseline for scripts/bench_neural.sh.

make:  writes an assembly (presentation × neuroid × time_bin, 2 repetitions, object_name) and a
       feature npz ([N, D] feedforward layer) of the requested size.
fit:   the same per-bin PLS(25, scale=False) fits as `ventral neural-fit --ff-mapping uniform`:
       per time bin and split (StratifiedShuffleSplit by object_name, train 0.9), fit on the
       repetition-averaged training responses, Pearson r per site on held-out stimuli,
       median over sites. Prints seconds for the fitting loop.
"""
import sys, time, json
import numpy as np

def make(out, n, d, k, b):
    import xarray as xr
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d)).astype(np.float32)
    W = rng.standard_normal((d, k)) / np.sqrt(d)
    sig = X @ W
    reps = 2
    data = np.stack([sig[:, :, None] * (1 + 0.1 * np.arange(b)) + rng.standard_normal((n, k, b)) for _ in range(reps)], 1)
    data = data.reshape(n * reps, k, b)
    ids = [f"s{i:05d}" for i in range(n)]
    a = xr.DataArray(data, dims=("presentation", "neuroid", "time_bin"), coords={
        "stimulus_id": ("presentation", np.repeat(ids, reps)),
        "object_name": ("presentation", np.repeat([f"o{i % 8}" for i in range(n)], reps)),
        "repetition": ("presentation", np.tile(np.arange(reps), n)),
        "neuroid_id": ("neuroid", [f"n{i}" for i in range(k)]),
        "region": ("neuroid", ["IT"] * k),
        "time_bin_start": ("time_bin", 70 + 10 * np.arange(b)),
        "time_bin_end": ("time_bin", 80 + 10 * np.arange(b)),
    }, name="data")
    a.attrs.update(identifier="bench", stimulus_set_identifier="bench")
    a.to_netcdf(out + ".nc")
    np.savez(out + ".npz", layer=X, stimulus_id=np.array(ids, dtype="S"))

def alphas():
    """ventral's default ridge grid: 1e-2 … 1e7, 4 per decade."""
    return [10.0 ** (-2 + i / 4) for i in range(37)]

def fit(out, splits, reg):
    import xarray as xr
    from sklearn.cross_decomposition import PLSRegression
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import StratifiedShuffleSplit
    a = xr.open_dataarray(out + ".nc").load()
    X = np.load(out + ".npz")["layer"].astype(np.float64)
    reps = int(a.repetition.max()) + 1
    Y = a.values.reshape(-1, reps, a.shape[1], a.shape[2]).mean(1)
    obj = a.object_name.values[::reps]
    t0 = time.time()
    scores = []
    per_site = np.zeros((Y.shape[2], Y.shape[1]))  # [bin, site], mean r over splits
    for b in range(Y.shape[2]):
        sss = StratifiedShuffleSplit(n_splits=splits, train_size=0.9, random_state=1)
        for tr, te in sss.split(X, obj):
            if reg == "pls":
                m = PLSRegression(n_components=25, scale=False).fit(X[tr], Y[tr, :, b])
            else:
                m = RidgeCV(alphas=alphas()).fit(X[tr], Y[tr, :, b])
            p = m.predict(X[te])
            yt = Y[te, :, b]
            pc = p - p.mean(0); yc = yt - yt.mean(0)
            r = (pc * yc).sum(0) / np.sqrt((pc ** 2).sum(0) * (yc ** 2).sum(0))
            per_site[b] += r / splits
            scores.append(np.median(r))
    seconds = time.time() - t0
    np.save(out + f".{reg}.sites.npy", per_site)
    print(json.dumps({"seconds": seconds, "mean_median_r": float(np.mean(scores))}))

def compare(out, reg, sites_csv):
    """Max |r_ventral − r_sklearn| over (bin, site), and the largest relative difference."""
    import csv
    ref = np.load(out + f".{reg}.sites.npy")
    got = np.full_like(ref, np.nan)
    with open(sites_csv) as f:
        rows = list(csv.DictReader(f))
    starts = sorted({float(r["time_bin_start"]) for r in rows})
    for r in rows:
        got[starts.index(float(r["time_bin_start"])), int(r["neuroid_id"][1:])] = float(r["r"])
    d = np.abs(got - ref)
    rel = d / np.maximum(np.abs(ref), 1e-12)
    print(json.dumps({"max_abs_diff": float(d.max()), "max_rel_diff": float(rel.max()),
                      "sites": int(ref.size)}))

if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2], *map(int, sys.argv[3:7]))
    elif sys.argv[1] == "fit":
        fit(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        compare(sys.argv[2], sys.argv[3], sys.argv[4])
