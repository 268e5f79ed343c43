"""PyTorch baseline for `ventral bench`: the same BLT_net_64 (reference architecture of
KietzmannLab/BLT-pytorch-CCN23: retina once, V1..IT with bottom-up / lateral / top-down
(transposed, stride 2), additive b + l + t or multiplicative b * (1 + l + t), LayerNorm over
(C,H,W), GAP with lateral Linear, readout, V1 without lateral/top-down input) and the same tiny
configuration (multiplicative, as configs/tiny.toml), timed the same way (median of iterations
after warm-up; training = forward + summed per-step NLL + backward + Adam step).

    python scripts/bench_blt_torch.py --models ref64,ref64_mult,tiny --timesteps 4 --batch 16 --iters 3 --json

On a GPU (`--device cuda`), `--precision` picks the arithmetic: `fp32` (TF32 off for
convolutions and matrix products: exact float32, as ventral's native CPU engine), `tf32`
(PyTorch's defaults: cuDNN convolutions on TF32 tensor cores; what ventral's float32 computes on
CUDA, where burn's kernels stage float32 operands as TF32, docs/performance.md), `amp_bf16` / `amp_fp16` (torch.autocast, the latter
with a GradScaler); cuDNN autotuning (`cudnn.benchmark`) is on, and every timed call ends with
torch.cuda.synchronize(). On the CPU, `amp_bf16` is `torch.autocast("cpu", dtype=torch.bfloat16)`:
oneDNN's bf16 convolutions (on AMX tiles where the CPU has them), against `ventral bench
--precision bf16`.

`--epoch-data DIR` times one training epoch instead (DIR/train.npz and DIR/val.npz, `images`
uint8 [N, 64, 64, 3] and `labels`, as `scripts/gpu_check.sh` writes them for `ventral pack`):
the arrays loaded onto the device, normalised per channel, shuffled batches of `--batch`,
the summed per-step NLL, Adam, then the last step's validation accuracy — wall time of each.
Each epoch drops the last, smaller batch (as `train.drop_last = true` in ventral). `--epochs N`
trains N epochs and reports the last one's time (`epoch_s` lists all): the first epoch includes
cuDNN's autotuning of every new convolution shape, as ventral's first includes its kernels'
compilation.
"""
import argparse, json, time, statistics
import contextlib
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


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timeit(warmup, iters, f, device=torch.device("cpu")):
    for _ in range(warmup):
        f()
    sync(device)
    ts = []
    for _ in range(max(iters, 1)):
        t0 = time.perf_counter()
        f()
        sync(device)
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def set_precision(a):
    """TF32 switches for `--precision`; returns (autocast context factory, GradScaler or None)."""
    dev = torch.device(a.device)
    if dev.type == "cuda":
        tf32 = a.precision == "tf32"
        torch.backends.cudnn.allow_tf32 = tf32
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.benchmark = True
    elif a.precision not in ("fp32", "amp_bf16"):
        raise SystemExit(f"--precision {a.precision} needs --device cuda (on cpu: fp32 or amp_bf16)")
    if a.precision.startswith("amp_"):
        dt = torch.bfloat16 if a.precision == "amp_bf16" else torch.float16
        scaler = torch.amp.GradScaler("cuda") if dt == torch.float16 else None
        return (lambda: torch.autocast(dev.type, dtype=dt)), scaler
    return contextlib.nullcontext, None


def train_step(net, opt, x, y, autocast, scaler):
    """Forward, summed per-step NLL, backward, Adam (as `ventral train`)."""
    opt.zero_grad(set_to_none=True)
    with autocast():
        outs = net(x)
    loss = sum(F.nll_loss(o.float(), y) for o in outs)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    else:
        loss.backward()
        opt.step()
    return loss


def bench(ch, classes, a, mult=False):
    dev = torch.device(a.device)
    autocast, scaler = set_precision(a)
    torch.manual_seed(0)
    net = BLT(ch, classes, a.timesteps, mult=mult).to(dev)
    x = torch.randn(a.batch, 3, 64, 64).to(dev)
    y = (torch.arange(a.batch) % classes).to(dev)
    net.eval()
    with torch.no_grad(), autocast():
        infer = timeit(a.warmup, a.iters, lambda: net(x)[-1].float().sum().item(), dev)
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    train = timeit(a.warmup, a.iters, lambda: train_step(net, opt, x, y, autocast, scaler), dev)
    return {
        "parameters": sum(p.numel() for p in net.parameters()),
        "timesteps": a.timesteps, "batch": a.batch,
        "device": str(dev), "precision": a.precision,
        "train_s_per_batch": train, "train_images_per_s": a.batch / train,
        "infer_s_per_batch": infer, "infer_images_per_s": a.batch / infer,
    }


def epoch(ch, classes, a, mult=False):
    """One training epoch over DIR/train.npz and a validation pass over DIR/val.npz."""
    import numpy as np
    dev = torch.device(a.device)
    autocast, scaler = set_precision(a)
    t0 = time.perf_counter()
    data = {}
    for split in ("train", "val"):
        z = np.load(f"{a.epoch_data}/{split}.npz")
        data[split] = (torch.from_numpy(z["images"]).to(dev).permute(0, 3, 1, 2).contiguous(),
                       torch.from_numpy(z["labels"].astype(np.int64)).to(dev))
    xs = data["train"][0].float().div_(255)
    mean = xs.mean(dim=(0, 2, 3), keepdim=True)
    std = xs.std(dim=(0, 2, 3), keepdim=True)
    del xs
    norm = lambda u8: (u8.float().div_(255) - mean) / std
    sync(dev)
    t_load = time.perf_counter() - t0
    torch.manual_seed(0)
    net = BLT(ch, classes, a.timesteps, mult=mult).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    g = torch.Generator(device="cpu").manual_seed(0)
    xt, yt = data["train"]
    n = len(yt)
    net.train()
    epoch_s = []
    for _ in range(a.epochs):
        t1 = time.perf_counter()
        order = torch.randperm(n, generator=g).to(dev)
        total, batches = 0.0, 0
        for i in range(0, n - a.batch + 1, a.batch):
            idx = order[i:i + a.batch]
            loss = train_step(net, opt, norm(xt[idx]), yt[idx], autocast, scaler)
            total += loss.detach()
            batches += 1
        sync(dev)
        epoch_s.append(time.perf_counter() - t1)
    t_train = epoch_s[-1]
    xv, yv = data["val"]
    net.eval()
    correct = 0
    t2 = time.perf_counter()
    with torch.no_grad(), autocast():
        for i in range(0, len(yv), a.batch):
            out = net(norm(xv[i:i + a.batch]))[-1]
            correct += (out.argmax(1) == yv[i:i + a.batch]).sum()
    sync(dev)
    t_val = time.perf_counter() - t2
    return {
        "device": str(dev), "precision": a.precision, "timesteps": a.timesteps, "batch": a.batch,
        "train_images": batches * a.batch, "val_images": len(yv),
        "epochs": a.epochs, "epoch_s": epoch_s,
        "load_s": t_load, "train_epoch_s": t_train, "val_s": t_val,
        "train_images_per_s": batches * a.batch / t_train,
        "mean_train_loss": float(total) / max(batches, 1),
        "val_acc_last": float(correct) / max(len(yv), 1),
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
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "tf32", "amp_bf16", "amp_fp16"])
    ap.add_argument("--epoch-data", default=None, help="time one epoch on DIR/train.npz, DIR/val.npz")
    ap.add_argument("--epochs", type=int, default=1,
                    help="with --epoch-data: train this many epochs; the last one is reported "
                         "(2: past cuDNN's autotuning, as ventral's second epoch is past its compilation)")
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    out = {"threads": torch.get_num_threads(), "torch": torch.__version__}
    if torch.device(a.device).type == "cuda":
        out["gpu"] = torch.cuda.get_device_name(torch.device(a.device))
    run = epoch if a.epoch_data else bench
    wanted = a.models.split(",")
    every = "all" in wanted
    if every or "ref64" in wanted:
        out["ref64"] = run([32, 64, 128, 256, 512], 100, a)
    if every or "ref64_mult" in wanted:
        out["ref64_mult"] = run([32, 64, 128, 256, 512], 100, a, mult=True)
    if every or "tiny" in wanted:
        out["tiny"] = run([8, 8, 16, 16, 32], 8, a, mult=True)
    print(json.dumps(out, indent=2) if a.json else out)


if __name__ == "__main__":
    main()
