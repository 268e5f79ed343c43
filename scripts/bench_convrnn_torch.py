"""PyTorchTNN side of scripts/bench_convrnn.sh: the same graphs as `ventral bench` printed.

usage: python scripts/bench_convrnn_torch.py VENTRAL_BENCH.json --ptnn PATH [--batch B] [--iters N] [--threads T]
"""
import argparse, copy, json, sys, time

import torch

ap = argparse.ArgumentParser()
ap.add_argument("ventral_json")
ap.add_argument("--ptnn", required=True)
ap.add_argument("--batch", type=int, default=32)
ap.add_argument("--iters", type=int, default=3)
ap.add_argument("--warmup", type=int, default=1)
ap.add_argument("--threads", type=int, default=torch.get_num_threads())
a = ap.parse_args()
sys.path.insert(0, a.ptnn)
from pt_tnn.temporal_graph import TemporalGraph  # noqa: E402
from pt_tnn.recurrent_module import RecurrentModuleRGC  # noqa: E402

torch.set_num_threads(a.threads)
r = json.load(open(a.ventral_json))
# PyTorchTNN prints notes on stdout (a graph with feedback: "Cannot topologically sort,
# assuming this ordering"); they go to stderr, the JSON alone to stdout.
RESULT, sys.stdout = sys.stdout, sys.stderr


def timed(f):
    for _ in range(a.warmup):
        f()
    ts = []
    for _ in range(max(a.iters, 1)):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return sorted(ts)[len(ts) // 2]


out = {"threads": torch.get_num_threads(), "torch": torch.__version__}
for name, v in r.items():
    if not isinstance(v, dict) or "config" not in v:
        continue
    cfg = copy.deepcopy(v["config"])
    rgc = any(n["recurrent_cell"]["name"] == "ReciprocalGatedCell" for n in cfg["nodes"])
    tg = TemporalGraph(cfg, recurrent_module=RecurrentModuleRGC if rgc else None)
    T = cfg["num_timesteps"]
    c, s = cfg["input_shape"][0], cfg["input_shape"][1]
    x = torch.randn(a.batch, c, s, s)
    k = next(n for n in cfg["nodes"] if n["name"] == cfg["output_node"])["out_channels"]
    y = torch.arange(a.batch) % k
    tg.eval()

    def infer():
        with torch.no_grad():
            tg(x, n_times=T)

    ti = timed(infer)
    tg.train()
    opt = torch.optim.Adam(tg.parameters(), lr=1e-3)

    def step():
        opt.zero_grad()
        logits = tg(x, n_times=T).reshape(a.batch, -1)
        loss = torch.nn.functional.cross_entropy(logits, y)
        loss.backward()
        opt.step()

    tt = timed(step)
    out[name] = {"train_images_per_s": a.batch / tt, "infer_images_per_s": a.batch / ti,
                 "train_s_per_batch": tt, "infer_s_per_batch": ti, "timesteps": T,
                 "parameters": sum(p.numel() for p in tg.parameters())}
print(json.dumps(out), file=RESULT)
