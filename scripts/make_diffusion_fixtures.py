"""Golden fixtures for `ventral diffusion` (crates/ventral-analysis/tests/diffusion.rs).

Two synthetic trajectories in the form of ventral's sgd_dynamics.csv (step, k, lr, dist_sq,
local_sq) and the anchor's fits computed with SciPy/NumPy: OLS of log dist_sq on log k
(scipy.stats.linregress) with a 95 % t-interval (scipy.stats.t.ppf(0.975, n - 2)), under the
anchor's two protocols (sweeps: all points after the first; Fig. 1: skip the first 21, fit the
last 2/3), the periodogram of projected positions
(np.fft.rfft, zero-padded to a power of two), rolling exponents (windows of 0.5 decades of k) and np.convolve moving averages (w = 15).

    python scripts/make_diffusion_fixtures.py crates/ventral-analysis/tests/fixtures/diffusion
"""
import json
import sys
from pathlib import Path

import numpy as np
from scipy import stats

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
rs = np.random.RandomState(0)
expected = {}
for name, (c, a, noise, n, every, lr) in {
    "a": (0.62, 3e-4, 0.05, 120, 5, 0.01),
    "b": (1.1, 1e-5, 0.2, 60, 1, 0.1),
}.items():
    step = 1000 + every * np.arange(n)  # global steps; tracking began at step 1000
    k = step - step[0]
    dist = np.zeros(n)
    dist[1:] = a * k[1:] ** c * np.exp(noise * rs.randn(n - 1))
    local = 1e-6 * np.exp(0.3 * rs.randn(n))
    # Projections onto one Hessian eigendirection: an oscillation (period 12 rows) plus noise.
    pos = np.sin(2 * np.pi * np.arange(n) / 12) + 0.1 * rs.randn(n)
    vel = np.diff(pos, append=pos[-1])
    with open(out / f"{name}.csv", "w") as f:
        f.write("step,k,epoch,lr,dist_sq,local_sq,proj_pos_0,proj_vel_0\n")
        for i in range(n):
            f.write(f"{step[i]},{k[i]},0,{lr!r},{float(dist[i])!r},{float(local[i])!r},"
                    f"{float(pos[i])!r},{float(vel[i])!r}\n")
    fits = {}
    for proto, (skip, last) in {"sweep": (1, 1.0), "fig1": (21, 2 / 3)}.items():
        kk, dd = k[skip:], dist[skip:]
        keep = (kk > 0) & (dd > 0)
        kk, dd = kk[keep], dd[keep]
        drop = int(np.floor(len(kk) * (1 - last)))
        kk, dd = kk[drop:], dd[drop:]
        r = stats.linregress(np.log(kk), np.log(dd))
        t = stats.t.ppf(0.975, len(kk) - 2)
        fits[proto] = dict(
            exponent=r.slope, intercept=r.intercept, stderr=r.stderr,
            ci_low=r.slope - t * r.stderr, ci_high=r.slope + t * r.stderr,
            r_squared=r.rvalue ** 2, n_points=int(len(kk)),
            k_first=float(kk[0]), k_last=float(kk[-1]),
        )
    kk, dd = k[(k > 0) & (dist > 0)], dist[(k > 0) & (dist > 0)]
    rolling, j = [], 0
    while True:  # windows of 0.5 decades starting 10 per decade
        lo = kk[0] * 10 ** (j / 10)
        hi = lo * 10 ** 0.5
        if hi > kk[-1] * (1 + 1e-12):
            break
        w = (kk >= lo * (1 - 1e-12)) & (kk <= hi * (1 + 1e-12))
        if w.sum() >= 3:
            rolling.append(stats.linregress(np.log(kk[w]), np.log(dd[w])).slope)
        j += 1
    ma = np.convolve(local, np.ones(15) / 15, "valid")
    nfft = 1 << (n - 1).bit_length()
    power = np.abs(np.fft.rfft(pos - pos.mean(), nfft)) ** 2 / n
    expected[name] = dict(fits=fits, rolling=rolling, ma15=ma.tolist(),
                          periodogram=power.tolist(), nfft=nfft,
                          local_final=float(local[-max(15, n // 10):].mean()))
json.dump(expected, open(out / "expected.json", "w"), indent=1)
