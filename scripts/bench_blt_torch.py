"""PyTorch baseline for `ventral bench`: the same BLT_net_64 (reference architecture of
KietzmannLab/BLT-pytorch-CCN23: retina once, V1..IT with bottom-up / lateral / top-down
(transposed, stride 2), additive b + l + t or multiplicative b * (1 + l + t), LayerNorm over
(C,H,W), GAP with lateral Linear, readout, V1 without lateral/top-down input) and the same tiny
configuration (multiplicative, as configs/tiny.toml), timed the same way (median of iterations
after warm-up; training = forward + summed per-step NLL + backward + Adam step).

    python scripts/bench_blt_torch.py --models ref64,ref64_mult,tiny --timesteps 4 --batch 16 --iters 3 --json
"""
import argparse, json, time, statistics
import torch
import torch.nn as nn
import torch.nn.functional as F


class BLTConv(nn.Module):
    def __init__(self, cin, c, k, lateral, topdown, above, mult=False):
        super().__init__()
        self.mult = mult
        self.bottom_up = nn.Conv2d(cin, c, k, padding="same", bias=False)
        self.lateral = nn.Conv2d(c, c, k, padding="same", bias=False) if lateral else None
        self.top_down = (nn.ConvTranspose2d(above, c, k, stride=2, padding=(k - 1) // 2, output_padding=1, bias=False)
                         if topdown and above else None)

    def forward(self, x, own=None, above=None):
        b = self.bottom_up(x)
        e = None
        if self.lateral is not None and own is not None:
            e = self.lateral(own)
        if self.top_down is not None and above is not None:
            td = self.top_down(above)
            e = td if e is None else e + td
        if e is None:
            return b
        return b * (1 + e) if self.mult else b + e


class BLT(nn.Module):
    def __init__(self, ch, classes, T, size=64, k=3, mult=False):
        super().__init__()
        self.T = T
        self.mult = mult
        self.retina = nn.Conv2d(3, ch[0], k, padding="same")
        s = size
        self.v1 = BLTConv(ch[0], ch[1], k, True, True, ch[2], mult)
        self.v2 = BLTConv(ch[1], ch[2], k, True, True, ch[3], mult)
        self.v4 = BLTConv(ch[2], ch[3], k, True, True, ch[4], mult)
        self.it = BLTConv(ch[3], ch[4], k, True, False, None, mult)
        self.v1_ln = nn.LayerNorm([ch[1], s, s])
        self.v2_ln = nn.LayerNorm([ch[2], s // 2, s // 2])
        self.v4_ln = nn.LayerNorm([ch[3], s // 4, s // 4])
        self.it_ln = nn.LayerNorm([ch[4], s // 8, s // 8])
        self.gap_lateral = nn.Linear(ch[4], ch[4], bias=False)
        self.gap_ln = nn.LayerNorm([ch[4]])
        self.readout = nn.Linear(ch[4], classes, bias=False)

    def forward(self, x):
        r = F.relu(self.retina(x))
        prev, g_prev, outs = None, None, []
        for t in range(self.T):
            a1 = F.relu(self.v1_ln(self.v1(r)))  # reference: V1 gets no lateral/top-down input
            p = prev if prev is not None else [None] * 4
            a2 = F.relu(self.v2_ln(self.v2(F.max_pool2d(a1, 2), p[1], p[2])))
            a4 = F.relu(self.v4_ln(self.v4(F.max_pool2d(a2, 2), p[2], p[3])))
            ait = F.relu(self.it_ln(self.it(F.max_pool2d(a4, 2), p[3])))
            g = ait.mean(dim=(2, 3))
            if g_prev is not None:
                gl = self.gap_lateral(g_prev)
                g = g * (1 + gl) if self.mult else g + gl
            g = F.relu(self.gap_ln(g))
            outs.append(torch.log(torch.clamp(F.softmax(self.readout(g), dim=1), 1e-10, 1)))
            prev, g_prev = [a1, a2, a4, ait], g
        return outs


def timeit(warmup, iters, f):
    for _ in range(warmup):
        f()
    ts = []
    for _ in range(max(iters, 1)):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def bench(ch, classes, a, mult=False):
    torch.manual_seed(0)
    net = BLT(ch, classes, a.timesteps, mult=mult)
    x = torch.randn(a.batch, 3, 64, 64)
    y = torch.arange(a.batch) % classes
    net.eval()
    with torch.no_grad():
        infer = timeit(a.warmup, a.iters, lambda: net(x)[-1].sum().item())
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def step():
        opt.zero_grad()
        loss = sum(F.nll_loss(o, y) for o in net(x))
        loss.backward()
        opt.step()

    train = timeit(a.warmup, a.iters, step)
    return {
        "parameters": sum(p.numel() for p in net.parameters()),
        "timesteps": a.timesteps, "batch": a.batch,
        "train_s_per_batch": train, "train_images_per_s": a.batch / train,
        "infer_s_per_batch": infer, "infer_images_per_s": a.batch / infer,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="ref64,tiny")
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    ap.add_argument("--timesteps", type=int, default=4)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    out = {"threads": torch.get_num_threads(), "torch": torch.__version__}
    wanted = a.models.split(",")
    every = "all" in wanted
    if every or "ref64" in wanted:
        out["ref64"] = bench([32, 64, 128, 256, 512], 100, a)
    if every or "ref64_mult" in wanted:
        out["ref64_mult"] = bench([32, 64, 128, 256, 512], 100, a, mult=True)
    if every or "tiny" in wanted:
        out["tiny"] = bench([8, 8, 16, 16, 32], 8, a, mult=True)
    print(json.dumps(out, indent=2) if a.json else out)


if __name__ == "__main__":
    main()
