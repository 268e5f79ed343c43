"""NumPy transcription of the reference notebook's definitions (Thorat et al. 2023,
analysis.ipynb; docs/dynamics.md), used to generate ventral's golden fixtures and as the
baseline of scripts/bench_dynamics.sh. Development only: ventral never runs Python.

    python scripts/dynamics_reference.py fixtures OUTDIR   # small reference-format npz + expected.json
    python scripts/dynamics_reference.py bench FILE.npz    # time the analysis on FILE.npz
"""
import json
import sys
import time

import numpy as np
from scipy import stats
from scipy.cluster.hierarchy import linkage


def cis(x):
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return [None, None, None, 0]
    m = float(x.mean())
    if len(x) < 2:
        return [m, None, None, 1]
    lo, hi = stats.t.interval(0.95, len(x) - 1, loc=m, scale=stats.sem(x))
    return [m, float(lo), float(hi), int(len(x))]


def categorise(pred, y):
    T = len(pred)
    if T == 1:
        return ("stable_correct" if pred[0] == y else "stable_incorrect"), 0
    if pred[-1] == pred[-2]:
        c = pred[-1]
        ts = T - 2
        while ts > 0 and pred[ts - 1] == c:
            ts -= 1
        if c not in pred[:ts]:
            return ("stable_correct" if c == y else "stable_incorrect"), ts
    return ("unstable_correct" if y in pred else "unstable_incorrect"), None


def analyse(z, zu=None):
    out = z["outputs_all"]; lab = z["labels_all"].astype(int)
    R = z["representations_all"].astype(np.float64); W = z["readout_weight"].astype(np.float64)
    T, N, C = out.shape
    pred = out.argmax(2)  # [T, N]
    acc = (pred == lab[None]).mean(1)
    cats, tst = [], []
    for i in range(N):
        c, ts = categorise(list(pred[:, i]), lab[i])
        cats.append(c); tst.append(ts)
    hist = [sum(1 for c, ts in zip(cats, tst) if c == "stable_correct" and ts == t) for t in range(T)]
    hz = next((t for t in range(T) if hist[t] < hist[0] / 100), T)
    sc = [i for i in range(N) if cats[i] == "stable_correct" and tst[i] < hz]
    change = []
    for name, RR in [("trained", R)] + ([("untrained", zu["representations_all"].astype(np.float64))] if zu is not None else []):
        for g in range(hz):
            mem = [i for i in sc if tst[i] == g]
            for t in range(T - 1):
                d = [np.linalg.norm(RR[t + 1, i] - RR[t, i]) for i in mem]
                change.append([name, g, t] + cis(d))
    wn = np.linalg.norm(W, axis=1)
    def cos(t, i, k):
        return float(R[t, i] @ W[k] / (np.linalg.norm(R[t, i]) * wn[k]))
    sig = []
    for t in range(1, hz):
        now = [i for i in sc if tst[i] <= t]; later = [i for i in sc if tst[i] > t]
        for g, idx in [("stable_now", now), ("stable_later", later)]:
            sig.append([t, g, "norm"] + cis([np.linalg.norm(R[t, i]) for i in idx]))
            sig.append([t, g, "cos_current"] + cis([cos(t, i, pred[t, i]) for i in idx]))
        sig.append([t, "stable_later", "cos_future"] + cis([cos(t, i, lab[i]) for i in later]))
        other = []
        for i in later:
            js = [j for j in later if pred[t, j] == pred[t, i] and lab[j] != lab[i]]
            if js:
                other.append(np.mean([cos(t, i, lab[j]) for j in js]))
        sig.append([t, "stable_later", "cos_other"] + cis(other))
    # readout zones
    marg = []
    for t in range(T):
        for g, want in [("correct", True), ("misclassified", False)]:
            idx = [i for i in range(N) if (pred[t, i] == lab[i]) == want]
            nrm, lm, am = [], [], []
            for i in idx:
                p = pred[t, i]; r = R[t, i]; nr = np.linalg.norm(r)
                nrm.append(nr)
                lm.append(min(out[t, i, p] - out[t, i, k] for k in range(C) if k != p))
                am.append(np.degrees(np.arcsin(np.clip(min((r @ (W[p] - W[k])) / (np.linalg.norm(W[p] - W[k]) * nr) for k in range(C) if k != p), -1, 1))))
            marg += [[t, g, "norm"] + cis(nrm), [t, g, "logit_margin"] + cis(lm), [t, g, "angular_margin_deg"] + cis(am)]
    entry = []
    for t in range(T):
        mis = [i for i in range(N) if pred[t, i] != lab[i]]
        entry.append([t, len(mis), sum(1 for i in mis if (pred[t + 1:, i] == lab[i]).any()), sum(1 for i in mis if pred[-1, i] == lab[i])])
    wnn = W / wn[:, None]
    D = (1 - wnn @ wnn.T) / 2; D = (D + D.T) / 2; np.fill_diagonal(D, 0)
    from scipy.spatial.distance import squareform
    Z = linkage(squareform(D, checks=False), method="ward")
    counts = {c: cats.count(c) for c in ["stable_correct", "stable_incorrect", "unstable_correct", "unstable_incorrect"]}
    return dict(accuracy=acc.tolist(), best_step=int(acc.argmax()), categories=counts, t_stable_hist=hist,
                horizon=hz, representation_change=change, signatures=sig, margins=marg, zone_entry=entry,
                linkage=Z.tolist())


def make_fixture(seed, T=5, N=80, C=4, D=6, trained=True):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(C, D)).astype(np.float32)
    lab = rng.integers(0, C, size=N)
    R = np.zeros((T, N, D), np.float32)
    speed = rng.uniform(0.0, 1.0, size=N)
    start = rng.normal(size=(N, D))
    for t in range(T):
        pull = (W[lab] * (1.0 + 2.0 * speed[:, None] * t)) if trained else 0.0
        R[t] = np.maximum(0.1, start + 0.6 * pull + 0.3 * rng.normal(size=(N, D)))
    logits = np.einsum("tnd,cd->tnc", R, W)
    lp = logits - np.log(np.exp(logits - logits.max(2, keepdims=True)).sum(2, keepdims=True)) - logits.max(2, keepdims=True)
    return dict(outputs_all=lp.astype(np.float32), labels_all=lab.astype(np.int64), representations_all=R,
                readout_weight=W, readout_bias=np.zeros(0, np.float32))


if __name__ == "__main__":
    if sys.argv[1] == "fixtures":
        d = sys.argv[2]
        a = make_fixture(0); u = make_fixture(1, trained=False)
        u["labels_all"] = a["labels_all"]
        np.savez(f"{d}/small.npz", **a); np.savez(f"{d}/small_untrained.npz", **u)
        exp = analyse(a, u)
        json.dump(exp, open(f"{d}/small_expected.json", "w"), indent=1)
        print(exp["accuracy"], exp["categories"], exp["t_stable_hist"], exp["horizon"])
    else:
        z = np.load(sys.argv[2])
        z = {k: z[k] for k in z.files}
        t0 = time.perf_counter()
        # Vectorised where the notebook is (argmax, accuracy, norms); the per-image loops as the notebook.
        res = analyse(z)
        print(json.dumps({"seconds": time.perf_counter() - t0, "accuracy": res["accuracy"]}))
