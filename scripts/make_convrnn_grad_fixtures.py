"""Gradient fixtures for ventral's ConvRNNs, computed by PyTorchTNN itself on the graphs,
weights and inputs of scripts/make_convrnn_fixtures.py (read back from the fixture directory,
so those files stay as they are).

usage: venv/bin/python scripts/make_convrnn_grad_fixtures.py PATH/TO/PyTorchTNN FIXDIR

For each graph: G[t][n] (seeded normal, node n's output shape at step t, nodes in the
graph's `nodes` order) and the gradient of
    loss = Σ_t Σ_n Σ (n(t) · G[t][n])
for every parameter, by PyTorchTNN's state-dict name — `{name}.grads.safetensors` with
`g.{t}.{node}` and `grad.{parameter}`. Every node's output enters the loss, so every parameter
has a gradient even where the image (or any path) does not reach the output node within the
run (rgc_shallow and timedecay_intermediate run 5 and 6 steps on 6- and 11-node chains: with
the loss at the output node alone, conv1's and conv2's gradients were absent). Graphs without BatchNorm only (ventral trains BatchNorm on
batch statistics, the forward fixtures are PyTorchTNN's eval mode).
"""
import json, os, sys

import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, sys.argv[1])
from pt_tnn.temporal_graph import TemporalGraph  # noqa: E402
from pt_tnn.recurrent_module import RecurrentModuleRGC  # noqa: E402

D = sys.argv[2]
NAMES = ["timedecay", "basic", "vanilla", "gru", "gru_layernorm", "lstm", "ugrnn",
         "intersection", "rgc", "feedback_rgc", "feedback_gru", "timedecay_intermediate",
         "rgc_shallow"]
RGC = {"rgc", "feedback_rgc", "rgc_shallow"}

for i, name in enumerate(NAMES):
    cfg = json.load(open(os.path.join(D, f"{name}.json")))
    tg = TemporalGraph(cfg, recurrent_module=RecurrentModuleRGC if name in RGC else None)
    tg.load_state_dict(load_file(os.path.join(D, f"{name}.weights.safetensors")), strict=False)
    tg.eval()
    io = load_file(os.path.join(D, f"{name}.io.safetensors"))
    x = io["input"]
    T = cfg["num_timesteps"]
    _, acts = tg(x, n_times=T, return_all=True, return_activations=True)
    # The weights were loaded whole: the forward is the forward fixture's (to float32 rounding).
    for t in range(T):
        for n, v in acts[t].items():
            ref = io[f"out.{t}.{n}"]
            err = (v.detach() - ref).abs().max().item() / max(ref.abs().max().item(), 1e-12)
            assert err < 1e-5, (name, t, n, err)
    nodes = [n["name"] for n in cfg["nodes"]]
    gen = torch.Generator().manual_seed(100 + i)
    gs = {(t, n): torch.randn(acts[t][n].shape, generator=gen) for t in range(T) for n in nodes}
    loss = sum((acts[t][n] * g).sum() for (t, n), g in gs.items())
    tg.zero_grad()
    loss.backward()
    tensors = {f"g.{t}.{n}": g.contiguous() for (t, n), g in gs.items()}
    for pname, p in tg.named_parameters():
        if p.grad is not None:
            tensors[f"grad.{pname}"] = p.grad.detach().contiguous()
    save_file(tensors, os.path.join(D, f"{name}.grads.safetensors"))
    print(name, "ok", len(tensors) - len(gs), "gradients")
