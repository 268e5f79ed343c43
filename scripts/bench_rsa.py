"""Data maker and rsatoolbox baseline for scripts/bench_rsa.sh.

make:    features [T, N, D] (one layer, `T` steps) and an assembly (presentation × neuroid ×
         time_bin, 2 regions, `B` bins, 2 repetitions) of the requested size.
run:     rsatoolbox: correlation RDMs of every model step and every (region, bin) from the
         repetition-averaged responses (`calc_rdm`), then one batched
         `compare(model_rdms, neural_rdms, method="spearman")`. Prints the seconds of the compare
         call (and of the RDMs) and saves the values for `check`.
check:   the largest difference between ventral's rsa.csv values and rsatoolbox's.
"""
import sys, time, json
import numpy as np


def make(out, n, d, k, t, b):
    import xarray as xr
    rng = np.random.default_rng(0)
    base = rng.standard_normal((n, d))
    feats = np.stack([base * (1 + 0.1 * s) + rng.standard_normal((n, d)) * (0.5 + 0.05 * s)
                      for s in range(t)]).astype(np.float32)
    ids = [f"s{i:05d}" for i in range(n)]
    np.savez(out + ".npz", layer=feats, stimulus_id=np.array(ids, dtype="S"))
    w = rng.standard_normal((d, k)) / np.sqrt(d)
    reps = 2
    sig = base @ w
    data = np.stack([sig[:, :, None] * (1 + 0.1 * np.arange(b)) + rng.standard_normal((n, k, b))
                     for _ in range(reps)], 1).reshape(n * reps, k, b)
    a = xr.DataArray(data, dims=("presentation", "neuroid", "time_bin"), coords={
        "stimulus_id": ("presentation", np.repeat(ids, reps)),
        "repetition": ("presentation", np.tile(np.arange(reps), n)),
        "neuroid_id": ("neuroid", [f"n{i}" for i in range(k)]),
        "region": ("neuroid", ["V4"] * (k // 2) + ["IT"] * (k - k // 2)),
        "time_bin_start": ("time_bin", 70 + 10 * np.arange(b)),
        "time_bin_end": ("time_bin", 80 + 10 * np.arange(b)),
    }, name="data")
    a.attrs.update(identifier="bench", stimulus_set_identifier="bench")
    a.to_netcdf(out + ".nc")


def run(out):
    import xarray as xr
    import rsatoolbox
    from rsatoolbox.data import Dataset
    from rsatoolbox.rdm import calc_rdm, compare, concat
    feats = np.load(out + ".npz")["layer"].astype(np.float64)
    a = xr.open_dataarray(out + ".nc").load()
    reps = int(a.repetition.max()) + 1
    y = a.values.reshape(-1, reps, a.shape[1], a.shape[2]).mean(1)
    region = a.region.values
    t0 = time.time()
    model = concat([calc_rdm(Dataset(feats[s]), method="correlation") for s in range(feats.shape[0])])
    neural = concat([calc_rdm(Dataset(y[:, region == r, b]), method="correlation")
                     for r in ["V4", "IT"] for b in range(y.shape[2])])
    t1 = time.time()
    values = compare(model, neural, method="spearman")
    t2 = time.time()
    np.save(out + ".rsat.npy", values)
    print(json.dumps({"rdm_seconds": t1 - t0, "compare_seconds": t2 - t1,
                      "comparisons": int(values.size), "rsatoolbox": __import__("importlib.metadata").metadata.version("rsatoolbox")}))


def check(out, rsa_csv):
    import csv
    ref = np.load(out + ".rsat.npy")  # [steps, regions × bins], regions in V4, IT order
    got = np.full_like(ref, np.nan)
    with open(rsa_csv) as f:
        rows = list(csv.DictReader(f))
    starts = sorted({float(r["time_bin_start"]) for r in rows})
    nb = len(starts)
    for r in rows:
        j = ["V4", "IT"].index(r["region"]) * nb + starts.index(float(r["time_bin_start"]))
        got[int(r["timestep"]), j] = float(r["value"])
    d = np.abs(got - ref)
    print(json.dumps({"max_abs_diff": float(d.max()), "comparisons": int(ref.size)}))


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2], *map(int, sys.argv[3:8]))
    elif sys.argv[1] == "run":
        run(sys.argv[2])
    else:
        check(sys.argv[2], sys.argv[3])
