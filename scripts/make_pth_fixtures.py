"""PyTorch checkpoints (`torch.save`) for ventral's `.pth` reader (ventral_core::pth), written by
PyTorch itself, with the values they must give:

    python scripts/make_pth_fixtures.py      # PyTorch 2.15; writes crates/ventral-core/tests/fixtures/pth/

- dtypes.pth: a state dict of every dtype the reader takes (float32/64/16, bfloat16, int64/32,
  uint8, bool), a 0-d tensor, an empty one, a parameter (`_rebuild_parameter`), a transposed
  view and a row of the same storage (strides and offsets); dtypes.expected.npz the same values
  contiguous (floats as float64, integers as int64).
- wrapped.pth: {'epoch': 3, 'model_state_dict': {'module.…': …}, 'optimizer_state_dict': …}, as
  training scripts save checkpoints under nn.DataParallel.
- whole_model.pth: torch.save of a module itself (refused: only Python rebuilds its classes).
- legacy.pth: the same state dict in PyTorch's pre-1.6 serialisation (refused, with the way out).
- blt_small.pth: a small BLT in the reference's names (KietzmannLab/BLT-pytorch-CCN23:
  retina, v1..it with bottom_up / lateral / top_down, v1_ln…, gap.lateral, gap_ln, readout;
  channels 2, 2, 4, 4, 8, 64 px, 5 classes, 3 steps, additive, LayerNorm, no classifier bias),
  and blt_small.expected.npz: `input` [3, 3, 64, 64], `log_probs` [3, 3, 5] and
  `representations` [3, 3, 8] of PyTorch's forward (scripts/bench_blt_torch.py's BLT, the
  reference architecture).
"""
import collections, os, sys
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from bench_blt_torch import BLT  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "crates", "ventral-core", "tests", "fixtures", "pth")
os.makedirs(OUT, exist_ok=True)
torch.manual_seed(0)

# Every dtype, views into one storage, a parameter.
base = torch.arange(12, dtype=torch.float32).reshape(3, 4) / 8 - 0.7
sd = collections.OrderedDict()
sd["conv.weight"] = torch.randn(4, 3, 3, 3)
sd["half"] = torch.tensor([0.5, -1.25, 65504.0, 6.1e-5, 0.0], dtype=torch.float16)
sd["bf"] = torch.randn(2, 3).to(torch.bfloat16)
sd["double"] = torch.tensor([1.0 / 3, -2.5e-300, 7.0], dtype=torch.float64)
sd["count"] = torch.tensor(123456789012, dtype=torch.int64)
sd["int32"] = torch.tensor([-7, 0, 2**31 - 1, -(2**31)], dtype=torch.int32)
sd["u8"] = torch.tensor([0, 17, 255], dtype=torch.uint8)
sd["mask"] = torch.tensor([True, False, False, True])
sd["transposed"] = base.t()
sd["row"] = base[1]
sd["empty"] = torch.zeros(0, 3)
sd["param"] = torch.nn.Parameter(torch.randn(2, 2))
torch.save(sd, os.path.join(OUT, "dtypes.pth"))
expected = {}
for k, v in sd.items():
    v = v.detach()
    expected[k] = (v.to(torch.float64) if v.is_floating_point() else v.to(torch.int64)).contiguous().numpy()
np.savez(os.path.join(OUT, "dtypes.expected.npz"), **expected)

small = collections.OrderedDict(
    [("module.a.weight", torch.randn(3, 2)), ("module.b", torch.tensor([1.5, -2.0]))]
)
torch.save(
    {"epoch": 3, "model_state_dict": small,
     "optimizer_state_dict": {"state": {}, "param_groups": [{"lr": 1e-3, "params": [0, 1]}]}},
    os.path.join(OUT, "wrapped.pth"),
)
torch.save(torch.nn.Linear(2, 3), os.path.join(OUT, "whole_model.pth"))
torch.save(small, os.path.join(OUT, "legacy.pth"), _use_new_zipfile_serialization=False)

# The small BLT: reference names, non-trivial LayerNorm affine parameters.
net = BLT([2, 2, 4, 4, 8], 5, 3)
with torch.no_grad():
    for name, p in net.named_parameters():
        if "_ln" in name:
            p.add_(0.1 * torch.randn_like(p))
net.eval()
state = collections.OrderedDict(
    (k.replace("gap_lateral.", "gap.lateral."), v) for k, v in net.state_dict().items()
)
torch.save(state, os.path.join(OUT, "blt_small.pth"))
x = torch.randn(3, 3, 64, 64)
reps = []
net_g = []
def hook(_m, _i, o):  # the post-ReLU GAP representation of each step
    reps.append(torch.relu(o).detach())
net.gap_ln.register_forward_hook(hook)
with torch.no_grad():
    lp = net(x)
np.savez(
    os.path.join(OUT, "blt_small.expected.npz"),
    input=x.numpy(),
    log_probs=torch.stack(lp).numpy(),
    representations=torch.stack(reps).numpy(),
)
print("wrote", sorted(os.listdir(OUT)))
