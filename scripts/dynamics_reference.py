"""NumPy transcription of the reference notebook's definitions (Thorat et al. 2023,
analysis.ipynb; docs/dynamics.md), used to generate ventral's golden fixtures and as the
baseline of scripts/bench_dynamics.sh. Development only: ventral never runs Python.

    python scripts/dynamics_reference.py fixtures OUTDIR   # small reference-format npz + expected.json
    python scripts/dynamics_reference.py check             # vectorised == loop transcription
    python scripts/dynamics_reference.py make-bench OUT.npz OUT_UNTRAINED.npz [N T C D]
    python scripts/dynamics_reference.py bench FILE.npz [UNTRAINED.npz] [--json OUT.json]   # time analyse_vec
    python scripts/dynamics_reference.py compare DIR OUT.json   # ventral dynamics tables == OUT.json

`analyse` follows the notebook's loops one image at a time (clear, slow: the golden fixtures);
`analyse_vec` computes the same values with whole-array NumPy operations (the fair baseline
that scripts/bench_dynamics.sh times against `ventral dynamics`).
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


def analyse_vec(z, zu=None):
    """`analyse` with whole-array NumPy: same definitions, same rows, plus the zone-transition
    matrix that ventral also computes. Representations stay float32 in memory and are promoted
    to float64 one step at a time (as ventral does)."""
    out = z["outputs_all"]; lab = z["labels_all"].astype(np.int64)
    R = z["representations_all"]; W = z["readout_weight"].astype(np.float64)
    b = z.get("readout_bias")
    b = b.astype(np.float64) if b is not None and len(b) == W.shape[0] else None
    T, N, C = out.shape
    ar = np.arange(N)
    pred = out.argmax(2)
    correct = pred == lab[None]
    acc = correct.mean(1)
    # accuracy.csv: correct count, 95 % Wilson interval (statsmodels' formula) and, against the
    # previous step, images gained / lost with the exact McNemar p (SciPy's binomtest).
    k = correct.sum(1); z = stats.norm.isf(0.025); q = k / N
    den = 1 + z * z / N; centre = (q + z * z / (2 * N)) / den
    half = z * np.sqrt(q * (1 - q) / N + z * z / (4 * N * N)) / den
    acc_table = []
    for t in range(T):
        row = [t, float(acc[t]), int(k[t]), N, float(max(centre[t] - half[t], 0)), float(min(centre[t] + half[t], 1))]
        if t == 0:
            row += [None, None, None]
        else:
            g = int((~correct[t - 1] & correct[t]).sum()); l = int((correct[t - 1] & ~correct[t]).sum())
            row += [g, l, float(stats.binomtest(g, g + l).pvalue) if g + l else 1.0]
        acc_table.append(row)
    # categories: trailing run of the final prediction; stable if it is >= 2 long (or T == 1)
    # and the final class never appeared before the run
    eq = pred == pred[-1][None]
    run = np.cumprod(eq[::-1], axis=0).sum(0)
    ts = T - run
    before = (eq & (np.arange(T)[:, None] < ts[None])).any(0)
    stable = ((run >= 2) | (T == 1)) & ~before
    fin_ok = pred[-1] == lab
    ever = correct.any(0)
    cat = np.where(stable, np.where(fin_ok, 0, 1), np.where(ever, 2, 3))
    names = ["stable_correct", "stable_incorrect", "unstable_correct", "unstable_incorrect"]
    sc_all = cat == 0
    hist = np.bincount(ts[sc_all], minlength=T)[:T]
    hz = next((t for t in range(T) if hist[t] < hist[0] / 100), T)
    sc = sc_all & (ts < hz)
    change = []
    for name, RR in [("trained", R)] + ([("untrained", zu["representations_all"])] if zu is not None else []):
        d = np.stack([np.linalg.norm(RR[t + 1].astype(np.float64) - RR[t], axis=1) for t in range(T - 1)]) if T > 1 else np.zeros((0, N))
        for g in range(hz):
            mem = sc & (ts == g)
            for t in range(T - 1):
                change.append([name, g, t] + cis(d[t, mem]))
    wn = np.linalg.norm(W, axis=1)
    pair = np.linalg.norm(W[:, None, :] - W[None, :, :], axis=2)  # [C, C]
    sig, marg = [], []
    later_any = np.zeros((T, N), bool)  # correct at some step after t
    for t in range(T - 2, -1, -1):
        later_any[t] = later_any[t + 1] | correct[t + 1]
    for t in range(T):
        Rt = R[t].astype(np.float64)
        nr = np.linalg.norm(Rt, axis=1)
        G = Rt @ W.T
        cos = G / (nr[:, None] * wn[None])
        p = pred[t]
        o = out[t].astype(np.float64)
        om = o.copy(); om[ar, p] = -np.inf
        lm = o[ar, p] - om.max(1)
        num = G[ar, p][:, None] - G
        if b is not None:
            num = num + (b[p][:, None] - b[None])
        with np.errstate(invalid="ignore", divide="ignore"):
            q = num / (pair[p] * nr[:, None])
            q[ar, p] = np.inf
            am = np.degrees(np.arcsin(np.clip(q.min(1), -1, 1)))
        am[nr == 0] = np.nan
        for g, want in [("correct", True), ("misclassified", False)]:
            m = correct[t] == want
            marg += [[t, g, "norm"] + cis(nr[m]), [t, g, "logit_margin"] + cis(lm[m]), [t, g, "angular_margin_deg"] + cis(am[m])]
        if 1 <= t < hz:
            now = sc & (ts <= t); later = sc & (ts > t)
            for g, m in [("stable_now", now), ("stable_later", later)]:
                sig.append([t, g, "norm"] + cis(nr[m]))
                sig.append([t, g, "cos_current"] + cis(cos[ar, p][m]))
            li = np.flatnonzero(later)
            sig.append([t, "stable_later", "cos_future"] + cis(cos[li, lab[li]]))
            cnt = np.zeros((C, C)); np.add.at(cnt, (p[li], lab[li]), 1)
            M = cnt[p[li]]; M[np.arange(len(li)), lab[li]] = 0
            den = M.sum(1)
            with np.errstate(invalid="ignore", divide="ignore"):
                other = (M * cos[li]).sum(1) / den
            sig.append([t, "stable_later", "cos_other"] + cis(other[den > 0]))
    entry = [[t, int((~correct[t]).sum()), int((~correct[t] & later_any[t]).sum()), int((~correct[t] & correct[-1]).sum())] for t in range(T)]
    tm = np.stack([np.bincount(pred[t] * C + pred[t + 1], minlength=C * C).reshape(C, C) for t in range(T - 1)]) if T > 1 else None
    wnn = W / wn[:, None]
    D = (1 - wnn @ wnn.T) / 2; D = (D + D.T) / 2; np.fill_diagonal(D, 0)
    from scipy.spatial.distance import squareform
    Z = linkage(squareform(D, checks=False), method="ward")
    counts = {n: int((cat == k).sum()) for k, n in enumerate(names)}
    return dict(accuracy=acc.tolist(), best_step=int(acc.argmax()), categories=counts, t_stable_hist=hist.tolist(),
                horizon=hz, representation_change=change, signatures=sig, margins=marg, zone_entry=entry,
                linkage=Z.tolist(), transition_matrix=tm, accuracy_table=acc_table)


def make_bench(seed, N=25000, T=10, C=100, D=512, trained=True):
    """Activations with realistic dynamics: a class pull that grows at an image-specific speed
    plus fresh noise each step, so accuracy rises over steps and images stabilise at different
    steps (make_fixture's pulls are too strong at this size: every image is correct at t=0)."""
    rng = np.random.default_rng(seed)
    W = (rng.normal(size=(C, D)) / np.sqrt(D)).astype(np.float32)
    lab = rng.integers(0, C, size=N)
    speed = rng.uniform(0.0, 1.0, size=N).astype(np.float32)
    start = rng.normal(size=(N, D)).astype(np.float32)
    R = np.empty((T, N, D), np.float32)
    out = np.empty((T, N, C), np.float32)
    for t in range(T):
        s = (0.1 * speed * t)[:, None] if trained else 0.0
        R[t] = np.maximum(0.0, start + s * W[lab] * np.sqrt(D) + 0.5 * rng.normal(size=(N, D)).astype(np.float32))
        l = R[t] @ W.T
        l = l - l.max(1, keepdims=True)
        out[t] = l - np.log(np.exp(l).sum(1, keepdims=True))
    return dict(outputs_all=out, labels_all=lab.astype(np.int64), representations_all=R,
                readout_weight=W, readout_bias=np.zeros(0, np.float32))


def same(a, b, path="", rtol=1e-6):
    # 1e-6: the loop version subtracts float32 log-probabilities before promoting (as the notebook)
    if isinstance(a, dict):
        for k in a:
            if k in b:
                same(a[k], b[k], f"{path}.{k}", rtol)
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{path}: {len(a)} vs {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, f"{path}[{i}]", rtol)
    elif isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            assert a is None and b is None, f"{path}: {a} vs {b}"
        else:
            assert np.isclose(a, b, rtol=rtol, atol=1e-12), f"{path}: {a} vs {b}"
    else:
        assert a == b, f"{path}: {a} vs {b}"


def compare(d, res, rtol=1e-6):
    """Checks `ventral dynamics` tables in `d` against `analyse`/`analyse_vec` results."""
    import csv
    def rows(name):
        with open(f"{d}/{name}") as f:
            r = list(csv.reader(f))
        def val(x):
            if x == "":
                return None
            try:
                return int(x)
            except ValueError:
                try:
                    return float(x)
                except ValueError:
                    return x
        return [[val(x) for x in row] for row in r[1:]]
    same([r[1] for r in rows("accuracy.csv")], res["accuracy"], "accuracy", rtol)
    if "accuracy_table" in res:  # analyse_vec's: Wilson intervals, gained / lost, McNemar p
        same(rows("accuracy.csv"), res["accuracy_table"], "accuracy table", rtol)
    same({r[0]: r[1] for r in rows("stability.csv")}, res["categories"], "categories", rtol)
    same([r[1] for r in rows("t_stable_hist.csv")], res["t_stable_hist"], "t_stable_hist", rtol)
    same(rows("representation_change.csv"), res["representation_change"], "representation_change", rtol)
    same(rows("signatures.csv"), res["signatures"], "signatures", rtol)
    same(rows("margins.csv"), res["margins"], "margins", rtol)
    same([r[:3] + [r[4]] for r in rows("zone_entry.csv")], res["zone_entry"], "zone_entry", rtol)
    same(rows("readout_linkage.csv"), res["linkage"], "linkage", rtol)
    acc_what = "accuracy (with Wilson intervals, gained / lost, McNemar p)" if "accuracy_table" in res else "accuracy"
    print(f"ventral tables in {d} == NumPy (rtol {rtol}): {acc_what}, categories, t_stable histogram, "
          f"{len(res['representation_change'])} change, {len(res['signatures'])} signature, "
          f"{len(res['margins'])} margin rows, zone entry, linkage")


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
    cmd = sys.argv[1]
    if cmd == "fixtures":
        d = sys.argv[2]
        a = make_fixture(0); u = make_fixture(1, trained=False)
        u["labels_all"] = a["labels_all"]
        np.savez(f"{d}/small.npz", **a); np.savez(f"{d}/small_untrained.npz", **u)
        exp = analyse(a, u)
        json.dump(exp, open(f"{d}/small_expected.json", "w"), indent=1)
        print(exp["accuracy"], exp["categories"], exp["t_stable_hist"], exp["horizon"])
    elif cmd == "check":
        for seed in range(6):
            kw = [dict(), dict(T=1), dict(T=2, N=40), dict(T=7, N=120, C=6, D=9)][seed % 4]
            a = make_fixture(seed, **kw); u = make_fixture(seed + 100, trained=False, **kw)
            u["labels_all"] = a["labels_all"]
            same(analyse(a, u), analyse_vec(a, u))
        a = make_bench(0, N=600, T=6, C=10, D=32); u = make_bench(1, N=600, T=6, C=10, D=32, trained=False)
        u["labels_all"] = a["labels_all"]
        r = analyse(a, u)
        same(r, analyse_vec(a, u))
        print("analyse_vec == analyse on 7 files; bench-like accuracy", [round(x, 3) for x in r["accuracy"]], "horizon", r["horizon"])
    elif cmd == "make-bench":
        n, t, c, d = (int(x) for x in (sys.argv[4:8] + ["25000", "10", "100", "512"][len(sys.argv[4:8]):]))
        a = make_bench(0, n, t, c, d)
        np.savez(sys.argv[2], **a)
        u = make_bench(1, n, t, c, d, trained=False); u["labels_all"] = a["labels_all"]
        np.savez(sys.argv[3], **u)
        acc = (a["outputs_all"].argmax(2) == a["labels_all"][None]).mean(1)
        print("accuracy per step", " ".join(f"{x:.3f}" for x in acc))
    elif cmd == "compare":
        compare(sys.argv[2], json.load(open(sys.argv[3])))
    else:
        args = [a for a in sys.argv[2:]]
        dump = None
        if "--json" in args:
            k = args.index("--json"); dump = args[k + 1]; del args[k:k + 2]
        z = np.load(args[0]); z = {k: z[k] for k in z.files}
        zu = None
        if len(args) > 1:
            zu = np.load(args[1]); zu = {k: zu[k] for k in zu.files}
        t0 = time.perf_counter()
        res = analyse_vec(z, zu)
        secs = time.perf_counter() - t0
        if dump:
            res.pop("transition_matrix")
            json.dump(res, open(dump, "w"))
        print(json.dumps({"seconds": secs, "accuracy": res["accuracy"], "horizon": res["horizon"]}))
