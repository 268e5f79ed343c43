"""Golden fixtures for ventral's reader of the original convrnns (TensorFlow 1.13) model JSON.

convrnns needs TensorFlow 1.13 (tf.contrib), which no longer installs on Python 3.11, so the
reference is written here in PyTorch from convrnns' code, line by line:

- `lstm_shallow`: convrnns/models/lstm_shallow.json with `model_func.py`'s overrides
  (configs/lstm_shallow.npz: per-layer filter size, forget bias, peepholes, layer norm), scaled
  down (96 px input; feedforward channels ÷ 16, LSTM widths ÷ 16, 10 classes; the test applies
  the same scaling before and after translation), 8 steps with the image off at 6 and
  `make_movie`'s blank frame (the constant 0.5).
  - `tf.nn.conv2d(padding="SAME")`: out ⌈H/s⌉, total padding (out − 1)·s + k − H, the smaller
    half before (`tf_same` below);
  - `max_pool` 2 × 2 / 2 SAME (padding after with −∞);
  - `ConvLSTMCell.__call__` (utils/cells.py): `[i, j, f, o] = conv([x, h])`, each through
    `tf.contrib.layers.layer_norm` (moments over H, W, C; γ, β per channel; ε = 1e-5 for
    TensorFlow's 1e-12, as ventral),
    `c' = c·σ(f + b_f + w_f⊙c) + σ(i + w_i⊙c)·tanh(j)`, `c' = LN(c')`,
    `h' = tanh(c')·σ(o + w_o⊙c)`;
  - biological unrolling (utils/main.py::unroll): every node reads its predecessor's output
    of the previous step (zeros at t = 0), the input node the frame of this step.
- `resize_align_corners`: `tf.image.resize_images(align_corners=True)` (bilinear) is
  `F.interpolate(mode="bilinear", align_corners=True)`.

Weights are random, under ventral's parameter names (printed by `params::list` for the
translated graph). Run: python scripts/make_convrnn_tf_fixtures.py CONVRNNS_REPO OUT_DIR
"""

import math
import sys

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

repo, out = sys.argv[1], sys.argv[2]
npz = np.load(f"{repo}/convrnns/configs/lstm_shallow.npz", allow_pickle=True)["arr_0"][()]
layer_params = npz["model_params"]["layer_params"]

torch.manual_seed(0)
g = torch.Generator().manual_seed(0)


def rnd(*shape, scale=0.3):
    return (torch.rand(*shape, generator=g) * 2 - 1) * scale


def tf_same(x, k, s):
    h, w = x.shape[2:]

    def pad(n):
        o = -(-n // s)
        total = max((o - 1) * s + k - n, 0)
        return total // 2, total - total // 2

    (t, b), (l, r) = pad(h), pad(w)
    return F.pad(x, (l, r, t, b))


def conv_same(x, w, b, s=1):
    return F.conv2d(tf_same(x, w.shape[-1], s), w, b, stride=s)


def pool_same(x):
    h, w = x.shape[2:]

    def pad(n):
        o = -(-n // 2)
        total = max((o - 1) * 2 + 2 - n, 0)
        return total // 2, total - total // 2

    (t, b), (l, r) = pad(h), pad(w)
    return F.max_pool2d(F.pad(x, (l, r, t, b), value=-math.inf), 2, 2)


def tf_ln(x, gamma, beta):
    m = x.mean(dim=(1, 2, 3), keepdim=True)
    v = ((x - m) ** 2).mean(dim=(1, 2, 3), keepdim=True)
    # TensorFlow's epsilon is 1e-12; ventral uses 1e-5 (see ops::LayerNormC: with 1e-12 the
    # constant gate maps before the image arrives overflow float32 gradients).
    return (x - m) / torch.sqrt(v + 1e-5) * gamma[None, :, None, None] + beta[None, :, None, None]


# The scaled network: (node, pre conv out, cell out) as lstm_shallow.json ÷ 16 and the npz ÷ 16.
H = 96
T, OFF, B = 8, 6, 2
ff = {"conv1": 4, "conv2": 8, "conv3": 16, "conv4": 16, "conv5": 32}
cells = {}
for name in ["conv3", "conv4", "conv5"]:
    p = layer_params[name]["cell_params"]
    cells[name] = dict(
        k=int(p["filter_size"]),
        fb=float(p["forget_bias"]),
        peep=bool(p["use_peepholes"]),
        out=int(p["out_depth"]) // 16,
        ln=bool(p["layer_norm"]),
    )
    assert cells[name]["ln"]
print({k: (v["k"], v["fb"], v["peep"], v["out"]) for k, v in cells.items()})

W = {}
cin = 3
sizes = {}
hw = H
for name in ["conv1", "conv2"]:
    k = 7 if name == "conv1" else 3
    W[f"{name}._post_memory.sequential_mem.0.conv.weight"] = rnd(ff[name], cin, k, k)
    W[f"{name}._post_memory.sequential_mem.0.conv.bias"] = rnd(ff[name])
    cin = ff[name]
for name in ["conv3", "conv4", "conv5"]:
    c = cells[name]
    o = c["out"]
    pre = ff[name]
    W[f"{name}._pre_memory.conv.weight"] = rnd(ff[name], cin, 3, 3)
    W[f"{name}._pre_memory.conv.bias"] = rnd(ff[name])
    W[f"{name}._recurrent_cell.conv.weight"] = rnd(4 * o, pre + o, c["k"], c["k"])
    W[f"{name}._recurrent_cell.conv.bias"] = rnd(4 * o)
    for ln in ["input", "transform", "forget", "output", "state"]:
        W[f"{name}._recurrent_cell.ln_{ln}.weight"] = 1 + rnd(o, scale=0.2)
        W[f"{name}._recurrent_cell.ln_{ln}.bias"] = rnd(o, scale=0.2)
    cin = o
W["imnetds._post_memory.sequential_mem.0.conv.weight"] = rnd(10, cin, 2, 2)
W["imnetds._post_memory.sequential_mem.0.conv.bias"] = rnd(10)

# Spatial sizes (to size the peepholes): conv1 48 → pool 24, conv2 → 12, conv3 12 → 6,
# conv4 6 → 3, conv5 3 → 2 (ceil), imnetds 2×2 VALID → 1.
cell_hw = {"conv3": 12, "conv4": 6, "conv5": 3}
for name, c in cells.items():
    if c["peep"]:
        for d in ["w_f_diag", "w_i_diag", "w_o_diag"]:
            W[f"{name}._recurrent_cell.peepholes.{d}"] = rnd(c["out"], cell_hw[name], cell_hw[name])

x = torch.rand(B, 3, H, H, generator=g) * 2 - 1


def lstm(name, x, state):
    c = cells[name]
    o = c["out"]
    cs, h = state
    p = f"{name}._recurrent_cell."
    cat = conv_same(torch.cat([x, h], 1), W[p + "conv.weight"], W[p + "conv.bias"])
    i, j, f, og = cat.chunk(4, 1)
    i = tf_ln(i, W[p + "ln_input.weight"], W[p + "ln_input.bias"])
    j = tf_ln(j, W[p + "ln_transform.weight"], W[p + "ln_transform.bias"])
    f = tf_ln(f, W[p + "ln_forget.weight"], W[p + "ln_forget.bias"])
    og = tf_ln(og, W[p + "ln_output.weight"], W[p + "ln_output.bias"])
    if c["peep"]:
        wf, wi, wo = (W[p + f"peepholes.{d}"][None] for d in ["w_f_diag", "w_i_diag", "w_o_diag"])
        nc = cs * torch.sigmoid(f + c["fb"] + wf * cs) + torch.sigmoid(i + wi * cs) * torch.tanh(j)
    else:
        nc = cs * torch.sigmoid(f + c["fb"]) + torch.sigmoid(i) * torch.tanh(j)
    nc = tf_ln(nc, W[p + "ln_state.weight"], W[p + "ln_state.bias"])
    if c["peep"]:
        nh = torch.tanh(nc) * torch.sigmoid(og + wo * cs)
    else:
        nh = torch.tanh(nc) * torch.sigmoid(og)
    return nh, (nc, nh)


order = ["conv1", "conv2", "conv3", "conv4", "conv5", "imnetds"]
pred = {"conv2": "conv1", "conv3": "conv2", "conv4": "conv3", "conv5": "conv4", "imnetds": "conv5"}
out_shape = {
    "conv1": (ff["conv1"], 24, 24),
    "conv2": (ff["conv2"], 12, 12),
    "conv3": (cells["conv3"]["out"], 6, 6),
    "conv4": (cells["conv4"]["out"], 3, 3),
    "conv5": (cells["conv5"]["out"], 2, 2),
}
state = {n: None for n in cells}
prev = {}
io = {"input": x}
with torch.no_grad():
    for t in range(T):
        frame = x if t < OFF else torch.full_like(x, 0.5)
        cur = {}
        for n in order:
            if n == "conv1":
                inp = frame
            else:
                p = pred[n]
                inp = prev.get(p, torch.zeros(B, *out_shape[p]))
            if n in ("conv1", "conv2"):
                pw = f"{n}._post_memory.sequential_mem.0.conv."
                y = conv_same(inp, W[pw + "weight"], W[pw + "bias"], s=2 if n == "conv1" else 1)
                y = pool_same(F.elu(y))
            elif n in cells:
                y = conv_same(inp, W[f"{n}._pre_memory.conv.weight"], W[f"{n}._pre_memory.conv.bias"])
                if state[n] is None:
                    z = torch.zeros(B, cells[n]["out"], *y.shape[2:])
                    state[n] = (z, z)
                y, state[n] = lstm(n, y, state[n])
                y = pool_same(y)
            else:
                pw = "imnetds._post_memory.sequential_mem.0.conv."
                y = F.conv2d(inp, W[pw + "weight"], W[pw + "bias"])
                y = y.mean(dim=(2, 3))
            cur[n] = y
            io[f"out.{t}.{n}"] = y.contiguous()
        prev = cur

save_file({k: v.contiguous() for k, v in W.items()}, f"{out}/lstm_shallow_small.weights.safetensors")
save_file(io, f"{out}/lstm_shallow_small.io.safetensors")

# Align-corners bilinear resize, up and down, odd sizes.
r = {}
for (h, w, oh, ow) in [(3, 5, 7, 4), (6, 6, 11, 2), (7, 4, 1, 9)]:
    a = torch.rand(2, 3, h, w, generator=g)
    r[f"in.{h}x{w}.{oh}x{ow}"] = a
    r[f"out.{h}x{w}.{oh}x{ow}"] = F.interpolate(a, size=(oh, ow), mode="bilinear", align_corners=True)
save_file(r, f"{out}/resize_align_corners.safetensors")
print("written to", out)
