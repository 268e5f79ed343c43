"""Golden values for the engine's convolution kernels, from PyTorch (float64).

    python scripts/make_conv_fixtures.py crates/ventral-models/tests/fixtures/conv_kernels.npz

For every case: input x, weight w, an upstream gradient g, and PyTorch's output y and the
gradients dx, dw of sum(y * g). Layout is PyTorch's ([B, C, H, W]; weight [Co, Ci, k, k] for
Conv2d and [Cin, Cout, k, k] for ConvTranspose2d). `geom` is
[transposed, batch, ci, co, k, stride, padding, output_padding, h, w] where ci/co are the
module's in/out channels and h, w its input size.
"""
import sys

import numpy as np
import torch

CASES = [
    # transposed, batch, ci, co, k, stride, pad, out_pad, h, w
    (0, 1, 3, 5, 3, 1, 1, 0, 7, 9),
    (0, 2, 1, 7, 1, 1, 0, 0, 5, 5),
    (0, 3, 5, 3, 5, 2, 2, 0, 11, 8),
    (0, 1, 9, 2, 7, 1, 3, 0, 9, 13),
    (0, 2, 4, 6, 7, 2, 1, 0, 12, 10),
    (0, 1, 2, 3, 3, 2, 0, 0, 6, 7),
    (1, 2, 6, 4, 3, 2, 1, 1, 4, 5),
    (1, 1, 3, 5, 5, 2, 2, 1, 3, 3),
    (1, 3, 5, 3, 1, 1, 0, 0, 6, 4),
    (1, 1, 7, 2, 7, 2, 3, 1, 5, 6),
    (1, 2, 2, 9, 3, 1, 1, 0, 7, 5),
    # 3 x 3, stride 1, padding 1 on sides that are multiples of 2 or 4: the Winograd paths too.
    (0, 2, 5, 7, 3, 1, 1, 0, 8, 12),
    (0, 1, 19, 21, 3, 1, 1, 0, 16, 8),
    (0, 3, 3, 4, 3, 1, 1, 0, 4, 4),
    (0, 1, 9, 17, 3, 1, 1, 0, 6, 10),
    # 3 x 3, stride 2, padding 1, output padding 1 transposed on inputs whose sides are
    # multiples of 4: the top-down forward by Winograd F(4 x 4, 2 x 2) phases too.
    (1, 2, 7, 5, 3, 2, 1, 1, 4, 8),
    (1, 1, 13, 11, 3, 2, 1, 1, 8, 4),
    # 64+ channels on maps whose rows are not whole 8-column tiles: forward and input gradient
    # with the output channels in the vector lanes (`ventral_engine::lanes`, AVX-512F).
    (0, 2, 64, 65, 1, 1, 0, 0, 9, 9),
    (0, 1, 64, 64, 3, 1, 0, 0, 10, 11),
]


def main(out):
    g = torch.Generator().manual_seed(0)
    arrays = {}
    for i, (tr, b, ci, co, k, s, p, op, h, w) in enumerate(CASES):
        x = torch.randn(b, ci, h, w, generator=g, dtype=torch.float64, requires_grad=True)
        if tr:
            wt = torch.randn(ci, co, k, k, generator=g, dtype=torch.float64, requires_grad=True)
            y = torch.nn.functional.conv_transpose2d(x, wt, stride=s, padding=p, output_padding=op)
        else:
            wt = torch.randn(co, ci, k, k, generator=g, dtype=torch.float64, requires_grad=True)
            y = torch.nn.functional.conv2d(x, wt, stride=s, padding=p)
        up = torch.randn(y.shape, generator=g, dtype=torch.float64)
        (y * up).sum().backward()
        for name, v in [("x", x), ("w", wt), ("g", up), ("y", y), ("dx", x.grad), ("dw", wt.grad)]:
            arrays[f"c{i}_{name}"] = v.detach().numpy().astype(np.float32)
        arrays[f"c{i}_geom"] = np.array([tr, b, ci, co, k, s, p, op, h, w], dtype=np.int64)
    np.savez(out, **arrays)


if __name__ == "__main__":
    main(sys.argv[1])
