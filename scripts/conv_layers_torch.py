"""PyTorch's per-layer convolution times at BLT_net_64's shapes, beside the engine's own
(`cargo run --release -p ventral-engine --example conv_time`, rows `ref64 ...`): forward,
input gradient and weight gradient of each 3 x 3 lateral / bottom-up convolution and of each
top-down transposed convolution (stride 2, output padding 1), fastest of 15 calls after two
warm-ups, batch `--batch` (16), `torch.set_num_threads(--threads)` (2). The top-down's "fwd"
is PyTorch's ConvTranspose2d forward, which conv_time reports as its `bwd_data` (the adjoint
convolution's input gradient), and vice versa.

    python scripts/conv_layers_torch.py --threads 2 --batch 16
    CONV_ONLY=ref64 cargo run --release -p ventral-engine --example conv_time

`--bf16`: the operands in bf16 (what `torch.autocast("cpu", dtype=torch.bfloat16)` hands
oneDNN: on AMX where the CPU has it), beside `BF16=1 ... conv_time`.
"""
import argparse
import time

import torch


def best(f, n=15):
    f()
    f()
    b = float("inf")
    for _ in range(n):
        t = time.perf_counter()
        f()
        b = min(b, time.perf_counter() - t)
    return b * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--bf16", action="store_true")
    a = ap.parse_args()
    dt = torch.bfloat16 if a.bf16 else torch.float32

    def randn(*shape):
        return torch.randn(*shape).to(dt)

    torch.set_num_threads(a.threads)
    B = a.batch
    back = torch.ops.aten.convolution_backward
    # (name, in channels, out channels, side): stride 1, padding 1.
    for name, ci, co, s in [
        ("ref64 v1 lat 64", 64, 64, 64),
        ("ref64 v2 lat 32", 128, 128, 32),
        ("ref64 v4 bu 16", 128, 256, 16),
        ("ref64 v4 lat 16", 256, 256, 16),
        ("ref64 it lat 8", 512, 512, 8),
        ("ref64 it bu 8", 256, 512, 8),
    ]:
        x, w, dy = randn(B, ci, s, s), randn(co, ci, 3, 3), randn(B, co, s, s)
        args = (dy, x, w, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1)
        fwd = best(lambda: torch.nn.functional.conv2d(x, w, padding=1))
        bd = best(lambda: back(*args, [True, False, False]))
        bw = best(lambda: back(*args, [False, True, False]))
        print(f"{name:16s} fwd {fwd:6.2f} ms, bwd_data {bd:6.2f} ms, wgrad {bw:6.2f} ms")
    # Top-downs: (name, channels above, own channels, own side).
    for name, ca, c, s in [
        ("ref64 v1<-v2 td", 128, 64, 64),
        ("ref64 v2<-v4 td", 256, 128, 32),
        ("ref64 v4<-it td", 512, 256, 16),
    ]:
        x, w, dy = randn(B, ca, s // 2, s // 2), randn(ca, c, 3, 3), randn(B, c, s, s)
        args = (dy, x, w, None, [2, 2], [1, 1], [1, 1], True, [1, 1], 1)
        fwd = best(lambda: torch.nn.functional.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1))
        bd = best(lambda: back(*args, [True, False, False]))
        bw = best(lambda: back(*args, [False, True, False]))
        print(f"{name:16s} fwd {fwd:6.2f} ms, bwd_data {bd:6.2f} ms, wgrad {bw:6.2f} ms")


if __name__ == "__main__":
    main()
