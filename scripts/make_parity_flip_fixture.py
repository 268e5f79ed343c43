"""Float64 reference gradients of the BLT parity fixture with its one sub-float32 ReLU decision
taken the other way (the way ventral's float32 engine and burn's float32 autodiff take it).

    python scripts/make_parity_flip_fixture.py <BLT-pytorch-CCN23 checkout> \
        ../shared/fixtures/blt_ccn23/blt64_lt_additive_T4.safetensors \
        crates/ventral-models/tests/fixtures/blt64_float64_it_flip.safetensors

The shared fixture holds PyTorch float32 gradients of the reference BLT_net_64
(KietzmannLab/BLT-pytorch-CCN23 @ f8505a9, BLT_analyse/models/BLT_net.py). They agree with a
float64 run of the same code to 2e-7 .. 2e-6 relative L2 in every tensor. Of the network's
~12 million ReLU inputs (LayerNorm outputs at V1, V2, V4 and IT over 4 steps and 6 images), the
smallest in magnitude is IT's at step 3, image 5, channel 408, (y, x) = (1, 7): +1.40e-8 in
float64, below float32's resolution of the O(1) values it is computed from (half an ulp of 1.0
is 6e-8). PyTorch's float32 run put it on the positive side, as float64 does; ventral's engine
and burn's float32 autodiff put it at or below zero, so that unit's ReLU passes no gradient at
that step. That single decision moves every gradient below IT by 1e-4 .. 1e-3 relative L2 and is
what the parity test's 3 off-bound `v2_ln.weight` Adam steps come from.

This script runs the reference in float64 with exactly that ReLU's backward mask flipped and
stores the gradients the parity test compares the engine with (float32 storage):
`grad.v2_ln.weight` (where the Adam steps missed) and `grad.it_ln.bias` (the flip's signature:
8.9e-4 relative L2 against the unflipped reference). It prints the five smallest ReLU inputs
so that the choice of the flipped one can be checked.

With `--pool` it also routes the backward of the network's closest max-pool window the other
way: among the 2 x 2 windows whose two largest inputs are both positive, the smallest gap
between them is at the pooling of V2's output into V4 at step 1, image 3, channel 89, window
(8, 3): 4.46e-7 between two values of 0.049 (V2's LayerNorm outputs carry float32 errors of a
few 1e-7 from their O(1) sums). On aarch64 the engine's convolutions run on the `gemm` crate's
NEON kernels, whose summation order decides that window the other way than x86-64's kernels and
PyTorch do (measured under qemu-user: the engine's gradients within 7.7e-7 relative L2 of this
reference in every tensor compared, 1e-3 from the others). Stored, besides the two above:
`grad.v2.top_down.weight`, where that decision moves Adam steps.

    python scripts/make_parity_flip_fixture.py <BLT-pytorch-CCN23 checkout> \
        ../shared/fixtures/blt_ccn23/blt64_lt_additive_T4.safetensors \
        crates/ventral-models/tests/fixtures/blt64_float64_it_pool_flip.safetensors --pool
"""
import json
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

ref_dir, fixture, out = sys.argv[1:4]
with_pool = "--pool" in sys.argv[4:]
sys.path.insert(0, f"{ref_dir}/BLT_analyse/models")
import BLT_net as M  # noqa: E402  (the reference code, unmodified)

raw = open(fixture, "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8 : 8 + n])


def get(k):
    v = header[k]
    a, b = v["data_offsets"]
    dt = {"F32": np.float32, "I64": np.int64}[v["dtype"]]
    return np.frombuffer(raw[8 + n + a : 8 + n + b], dtype=dt).reshape(v["shape"]).copy()


def build():
    net = M.BLT_net_64(lateral_connections=1, topdown_connections=1, LT_interaction="additive",
                       timesteps=4, LT_position="all", classifier_bias=0, norm_type="LN")
    sd = net.state_dict()
    for k in sd:
        sd[k] = torch.from_numpy(get(k))
    net.load_state_dict(sd)
    return net.double()


x = torch.from_numpy(get("input")).double()
y = torch.from_numpy(get("labels"))

# The smallest |ReLU input| per LayerNorm and step, float64.
net = build()
outs = {}
for name in ["v1_ln", "v2_ln", "v4_ln", "it_ln"]:
    getattr(net, name).register_forward_hook(
        lambda m, i, o, name=name: outs.setdefault(name, []).append(o.detach()))
net(x)
cands = []
for name, steps in outs.items():
    for t, v in enumerate(steps):
        a = v.abs().flatten()
        i = int(a.argmin())
        cands.append((float(a[i]), name, t, tuple(int(j) for j in np.unravel_index(i, v.shape))))
cands.sort()
for c in cands[:5]:
    print("smallest |ReLU input|: %.3e at %s step %d index %s" % c)
_, layer, step, index = cands[0]
assert (layer, step, index) == ("it_ln", 3, (5, 408, 1, 7)), cands[0]
shape = tuple(outs[layer][0].shape)


class FlippedRelu(torch.autograd.Function):
    """ReLU whose backward mask is inverted at one index."""

    @staticmethod
    def forward(ctx, z):
        ctx.save_for_backward(z)
        return z.clamp_min(0)

    @staticmethod
    def backward(ctx, g):
        (z,) = ctx.saved_tensors
        m = (z > 0).to(g.dtype)
        m[index] = 1 - m[index]
        return g * m


calls = {}
relu = F.relu


def patched(z):
    t = calls.get(tuple(z.shape), 0)
    calls[tuple(z.shape)] = t + 1
    return FlippedRelu.apply(z) if (tuple(z.shape), t) == (shape, step) else relu(z)


# The closest max-pool windows (two largest inputs both positive), float64.
pool = torch.nn.MaxPool2d.forward
pool_in = []


def pool_rec(self, z):
    pool_in.append(z.detach())
    return pool(self, z)


torch.nn.MaxPool2d.forward = pool_rec
build()(x)
torch.nn.MaxPool2d.forward = pool
windows, seen = [], {}
for z in pool_in:
    s = tuple(z.shape)
    t = seen.get(s, 0)
    seen[s] = t + 1
    B, C, H, W = s
    w = z.reshape(B, C, H // 2, 2, W // 2, 2).permute(0, 1, 2, 4, 3, 5).reshape(B, C, H // 2, W // 2, 4)
    top = torch.topk(w, 2, dim=-1).values
    gap = torch.where(top[..., 1] > 0, top[..., 0] - top[..., 1], torch.full_like(top[..., 0], float("inf")))
    i = int(gap.flatten().argmin())
    windows.append((float(gap.flatten()[i]), s, t, tuple(int(j) for j in np.unravel_index(i, gap.shape)),
                    float(top.reshape(-1, 2)[i, 0])))
windows.sort()
for g, s, t, win, v in windows[:5]:
    print("closest max-pool window: gap %.3e at input %s call %d window %s (max %.4g)" % (g, s, t, win, v))
_, pool_shape, pool_step, pool_window, _ = windows[0]
if with_pool:
    assert (pool_shape, pool_step, pool_window) == ((6, 128, 32, 32), 1, (3, 89, 8, 3)), windows[0]


class FlippedPool(torch.autograd.Function):
    """2 x 2 / stride-2 max-pool whose backward takes the second largest input of one window."""

    @staticmethod
    def forward(ctx, z):
        B, C, H, W = z.shape
        w = z.reshape(B, C, H // 2, 2, W // 2, 2).permute(0, 1, 2, 4, 3, 5).reshape(B, C, H // 2, W // 2, 4)
        ctx.save_for_backward(w)
        ctx.shape = z.shape
        return w.max(-1).values

    @staticmethod
    def backward(ctx, g):
        (w,) = ctx.saved_tensors
        B, C, H, W = ctx.shape
        i = w.argmax(-1)
        i[pool_window] = torch.topk(w[pool_window], 2).indices[1]
        gw = torch.zeros_like(w).scatter_(-1, i.unsqueeze(-1), g.unsqueeze(-1))
        return gw.reshape(B, C, H // 2, W // 2, 2, 2).permute(0, 1, 2, 4, 3, 5).reshape(B, C, H, W)


pool_calls = {}


def pool_patched(self, z):
    t = pool_calls.get(tuple(z.shape), 0)
    pool_calls[tuple(z.shape)] = t + 1
    if with_pool and (tuple(z.shape), t) == (pool_shape, pool_step):
        return FlippedPool.apply(z)
    return pool(self, z)


net = build()
M.F.relu = patched
torch.nn.MaxPool2d.forward = pool_patched
log_probs, _ = net(x)
M.F.relu = relu
torch.nn.MaxPool2d.forward = pool
sum(F.nll_loss(lp, y) for lp in log_probs).backward()
assert calls[shape] == 4
params = dict(net.named_parameters())
stored = ["v2_ln.weight", "it_ln.bias"] + (["v2.top_down.weight"] if with_pool else [])
tensors = {f"grad.{k}": params[k].grad.numpy().astype(np.float32) for k in stored}

meta = {
    "source": "KietzmannLab/BLT-pytorch-CCN23 BLT_net_64 (f8505a9) in float64 on the weights, input "
              "and labels of blt_ccn23/blt64_lt_additive_T4.safetensors",
    "flipped": f"ReLU backward mask of {layer} at step {step}, index {list(index)} "
               f"(float64 input {cands[0][0]:.3e})"
               + (f"; max-pool backward of input {list(pool_shape)} call {pool_step} window "
                  f"{list(pool_window)} to its second largest input (gap {windows[0][0]:.3e})"
                  if with_pool else ""),
    "torch_version": torch.__version__,
}
hdr, blobs, off = {"__metadata__": meta}, [], 0
for k, v in tensors.items():
    b = np.ascontiguousarray(v).tobytes()
    hdr[k] = {"dtype": "F32", "shape": list(v.shape), "data_offsets": [off, off + len(b)]}
    blobs.append(b)
    off += len(b)
h = json.dumps(hdr).encode()
h += b" " * (-len(h) % 8)
with open(out, "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
print("wrote", out)
