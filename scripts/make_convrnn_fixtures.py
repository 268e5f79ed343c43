"""Golden fixtures for ventral's ConvRNNs, generated with PyTorchTNN itself.

usage: /work/venv/bin/python scripts/make_convrnn_fixtures.py PATH/TO/PyTorchTNN OUTDIR

For every graph below: the PyTorchTNN JSON config, PyTorchTNN's random initial weights
(its own state-dict names, safetensors), a random input [batch, 3, S, S], and every node's
output at every step plus the output node's logits (npz-free: one safetensors file with
`input`, `out.{t}.{node}`). Graphs: one per local cell (time decay, basic, vanilla, GRU,
LSTM, UGRNN, IntersectionRNN, reciprocal gated) on a 3-node backbone; a graph with feedback
(an RGC node receiving a smaller node's output through the resizing harbor) and one with a
plain GRU node receiving feedback into its pre-memory; the intermediate residual backbone
(PyTorchTNN's own test_timedecay_intermediate.json with channels scaled down, trained τ
set to 0.4); rgc_shallow (PyTorchTNN's test_rgc_shallow.json, channels scaled down, run with
RecurrentModuleRGC as its README trains it — plain RecurrentModule cannot construct it).
"""
import copy, json, os, sys

import torch
from safetensors.torch import save_file

sys.path.insert(0, sys.argv[1])
from pt_tnn.temporal_graph import TemporalGraph  # noqa: E402
from pt_tnn.recurrent_module import RecurrentModuleRGC  # noqa: E402

OUT = sys.argv[2]
os.makedirs(OUT, exist_ok=True)


def conv(c, k=3, pad="same", act="ELU", stride=1):
    return {"name": "Conv2dCell", "out_channels": c, "ksize": [k, k], "stride": stride,
            "padding": pad, "bias": None, "activation": act, "batchnorm": None}


def node(name, shape_from, pre, cell, post, out, residual=None):
    return {"name": name, "shape_from": shape_from, "harbor_policy": {"name": "ResizeConcat"},
            "pre_memory": pre, "recurrent_cell": cell, "post_memory": post,
            "out_channels": out, "residual": residual}


HEAD = {"name": "Sequential", "list_of_func_kwargs": [
    {"name": "AdaptiveAvgPool", "output_size": [1, 1]},
    {"name": "FullyConnected", "out_channels": 5, "activation": None, "bias": None}]}


def backbone(cell, c=6):
    return {
        "nodes": [
            node("conv1", None, conv(c, 3, 1), {"name": "IdentityCell"},
                 {"name": "MaxPool", "ksize": 2, "stride": 2, "padding": 0}, c),
            node("conv2", "conv1", conv(c), cell, {"name": "Identity"}, c),
            node("out", "conv2", {"name": "Identity"}, {"name": "IdentityCell"}, HEAD, 5),
        ],
        "edges": [{"from": "conv1", "to": "conv2"}, {"from": "conv2", "to": "out"}],
        "input_nodes": ["conv1"], "output_node": "out", "input_shape": [3, 16, 16],
        "num_timesteps": 5,
    }


def gated(name, c=6, **kw):
    d = {"name": name, "input_in_channels": c, "out_channels": c, "ksize": [3, 3]}
    d.update(kw)
    return d


RGC = {"name": "ReciprocalGatedCell", "input_in_channels": 6, "out_channels": 6, "cell_depth": 6}
GRAPHS = {
    "timedecay": (backbone({"name": "TimeDecayRecurrentCell", "tau": 0.0, "trainable": True}), None),
    "basic": (backbone({"name": "ConvRNNBasicCell", "out_channels": 6, "padding": 1, "state_shape": [8, 8]}), None),
    "vanilla": (backbone(gated("VanillaRNNCell")), None),
    "gru": (backbone(gated("GRUCell")), None),
    "gru_layernorm": (backbone(gated("GRUCell", layernorm=True)), None),
    "lstm": (backbone(gated("LSTMCell")), None),
    "ugrnn": (backbone(gated("UGRNNCell")), None),
    "intersection": (backbone(gated("IntersectionRNNCell")), None),
    "rgc": (backbone(dict(RGC)), RecurrentModuleRGC),
}

# Feedback: conv3 (4×4) → conv2 (8×8), upsampled by the harbor.
fb = backbone(dict(RGC))
fb["nodes"].insert(2, node("conv3", "conv2", conv(6), {"name": "IdentityCell"},
                           {"name": "MaxPool", "ksize": 2, "stride": 2, "padding": 0}, 6))
fb["nodes"][3]["shape_from"] = "conv3"
fb["edges"] = [{"from": "conv1", "to": "conv2"}, {"from": "conv2", "to": "conv3"},
               {"from": "conv3", "to": "out"}, {"from": "conv3", "to": "conv2"}]
GRAPHS["feedback_rgc"] = (fb, RecurrentModuleRGC)
fb2 = copy.deepcopy(fb)
fb2["nodes"][1]["recurrent_cell"] = gated("GRUCell")
fb2["nodes"][1]["pre_memory"] = conv(6)
GRAPHS["feedback_gru"] = (fb2, None)

# PyTorchTNN's own configs, channels scaled down.
ROOT = sys.argv[1]


def scaled(path, div, size, steps):
    cfg = json.load(open(os.path.join(ROOT, "configs", path)))

    def walk(o):
        if isinstance(o, dict):
            for k, v in list(o.items()):
                if k in ("out_channels", "in_channels", "input_in_channels", "cell_depth", "batchnorm") and isinstance(v, int) and v not in (1000,):
                    o[k] = max(v // div, 2)
                else:
                    walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)
    walk(cfg["nodes"])
    walk_fc(cfg["nodes"])
    cfg["input_shape"] = [3, size, size]
    cfg["num_timesteps"] = steps
    return cfg


def walk_fc(o):
    if isinstance(o, dict):
        for k, v in list(o.items()):
            if k == "out_channels" and v == 1000:
                o[k] = 7
            else:
                walk_fc(v)
    elif isinstance(o, list):
        for v in o:
            walk_fc(v)


GRAPHS["timedecay_intermediate"] = (scaled("test_timedecay_intermediate.json", 16, 32, 6), None)
GRAPHS["rgc_shallow"] = (scaled("test_rgc_shallow.json", 16, 96, 5), RecurrentModuleRGC)
# Time-varying BatchNorm (one per node per step), ResNet-18 as PyTorchTNN writes it; eval mode
# (running statistics, which PyTorchTNN's shape probe at construction has already moved).
GRAPHS["resnet18_bn_timevary"] = (scaled("test_resnet18_bn_timevary.json", 16, 32, 4), None)

torch.manual_seed(0)
for seed, (name, (cfg, module)) in enumerate(GRAPHS.items()):
    torch.manual_seed(seed)
    tg = TemporalGraph(copy.deepcopy(cfg), recurrent_module=module)
    tg.eval()
    with torch.no_grad():
        for pname, p in tg.named_parameters():
            if pname.endswith(".tau"):
                p.fill_(0.4)  # exercise the memory (PyTorchTNN initialises τ at 0)
            if "ln" in pname and pname.endswith("weight"):
                p.uniform_(0.5, 1.5)
            if "ln" in pname and pname.endswith("bias"):
                p.uniform_(-0.3, 0.3)
            if ".bns." in pname:
                p.uniform_(0.5, 1.5) if pname.endswith("weight") else p.uniform_(-0.3, 0.3)
        for bname, b in tg.named_buffers():
            if bname.endswith("running_mean"):
                b.uniform_(-0.2, 0.2)
            if bname.endswith("running_var"):
                b.uniform_(0.5, 2.0)
        c, s = cfg["input_shape"][0], cfg["input_shape"][1]
        x = torch.rand(2, c, s, s) * 2 - 1
        T = cfg["num_timesteps"]
        _, acts = tg(x, n_times=T, return_all=True, return_activations=True)
    tensors = {"input": x.contiguous()}
    for t in range(T):
        for n, v in acts[t].items():
            tensors[f"out.{t}.{n}"] = v.contiguous()
    save_file(tensors, os.path.join(OUT, f"{name}.io.safetensors"))
    save_file({k: v.detach().contiguous() for k, v in tg.state_dict().items() if v.dtype == torch.float32},
              os.path.join(OUT, f"{name}.weights.safetensors"))
    with open(os.path.join(OUT, f"{name}.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    print(name, "ok", sum(p.numel() for p in tg.parameters()), "parameters")
