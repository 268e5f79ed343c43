"""How far TF32 tensor-core arithmetic moves BLT_net_64's log-probabilities and gradients from
exact float32, emulated on the CPU: the size of difference to expect when a GPU backend runs
float32 convolutions and matrix products on TF32 tensor cores (as cuDNN does under PyTorch's
default `allow_tf32`, and as burn's CubeCL kernels do on CUDA: cubek-matmul 0.3.1's
`adjust_dtypes` stages float32 operands as tf32 in every tensor-core routine).

Emulation: every convolution, transposed convolution and linear layer rounds its two operands to
TF32 (10-bit mantissa, round to nearest) in the forward pass, and rounds the incoming gradient
likewise in the backward pass, so that the data and weight gradients are also products of TF32
operands; accumulation stays float32, as on the tensor cores. A float64 run is the ground truth.

The network, images and labels are those of `ventral bench --device`'s `vs_native` check
(BLT_net_64, additive; 8 images uniform with unit variance; labels (3i + 1) mod 100; the summed
per-step NLL), with xavier-uniform weights (PyTorch's generator, not ventral's: the statistics
are comparable, the numbers are not the same draw).

    python scripts/tf32_emulation.py [--timesteps 2 10] [--images 8] [--seed 0]

Prints, per T: exact float32 and TF32-emulated against float64: the largest log-probability
difference and each parameter's gradient relative L2 error (worst first).
"""
import argparse
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_blt_torch import BLT  # noqa: E402


def to_tf32(x):
    """Round float32 to TF32 (8-bit exponent, 10-bit mantissa), to nearest, ties away."""
    if x.dtype != torch.float32:
        return x
    b = x.contiguous().view(torch.int32)
    b = (b + 0x1000) & ~0x1FFF
    return b.view(torch.float32)


class RoundOperand(torch.autograd.Function):
    """Forward: the operand rounded to TF32; backward: the gradient passed through."""

    @staticmethod
    def forward(ctx, x):
        return to_tf32(x)

    @staticmethod
    def backward(ctx, g):
        return g


class RoundGradient(torch.autograd.Function):
    """Forward: identity; backward: the incoming gradient rounded to TF32 (an operand of the
    data- and weight-gradient products)."""

    @staticmethod
    def forward(ctx, y):
        return y.view_as(y)

    @staticmethod
    def backward(ctx, g):
        return to_tf32(g)


def tf32_op(f):
    def wrapped(x, w, *args, **kw):
        y = f(RoundOperand.apply(x), RoundOperand.apply(w), *args, **kw)
        return RoundGradient.apply(y)

    return wrapped


def run(T, n, seed, dtype, tf32):
    torch.manual_seed(seed)
    net = BLT([32, 64, 128, 256, 512], 100, T)
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    net = net.to(dtype)
    g = torch.Generator().manual_seed(seed + 1)
    x = ((torch.rand(n, 3, 64, 64, generator=g) * 2 - 1) * 3**0.5).to(dtype)
    y = (3 * torch.arange(n) + 1) % 100
    saved = F.conv2d, F.conv_transpose2d, F.linear
    if tf32:
        F.conv2d, F.conv_transpose2d, F.linear = (tf32_op(f) for f in saved)
    try:
        outs = net(x)
        loss = sum(F.nll_loss(o, y) for o in outs)
        loss.backward()
    finally:
        F.conv2d, F.conv_transpose2d, F.linear = saved
    lp = torch.stack([o.detach().double() for o in outs])
    grads = {k: p.grad.detach().double() for k, p in net.named_parameters() if p.grad is not None}
    return lp, grads


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--timesteps", type=int, nargs="+", default=[2, 10])
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    for T in a.timesteps:
        lp64, g64 = run(T, a.images, a.seed, torch.float64, False)
        print(f"T = {T}, {a.images} images (against float64):")
        for label, tf32 in (("float32", False), ("TF32-emulated", True)):
            lp, g = run(T, a.images, a.seed, torch.float32, tf32)
            rel = {k: ((g[k] - g64[k]).norm() / g64[k].norm()).item() for k in g64}
            worst = sorted(rel.items(), key=lambda kv: -kv[1])
            print(f"  {label:<14} log-probs max abs diff {(lp - lp64).abs().max().item():.2e}; "
                  f"gradient rel L2: worst {worst[0][0]} {worst[0][1]:.2e}, "
                  + ", ".join(f"{k} {v:.2e}" for k, v in worst[1:6]))


if __name__ == "__main__":
    main()
