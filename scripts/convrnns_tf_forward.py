"""Golden forwards of the original convrnns zoo (neuroailab/convrnns, TensorFlow 1.13 code), run
by the original code on TensorFlow 2.15's compat.v1 behind convrnns_tf_shim.py, for ventral's
reader of the published checkpoints (crates/ventral-models/tests/convrnns_checkpoint.rs):

    git clone https://github.com/neuroailab/convrnns /tmp/convrnns   # or a snapshot of it
    pip install tensorflow-cpu==2.15.* networkx==1.11 six safetensors
    cd /tmp/convrnns && python /path/to/ventral/scripts/convrnns_tf_forward.py OUT_DIR [MODEL...]

Each zoo model's graph is built by `model_func` exactly as `run_model.py` builds it (its
default presentation: the image for 12 steps, then the 0.5 blank, 16 / 17 steps; `_t30` a
constant image for 30), at a 64 px input (the checkpoints' parameters do not depend on the
input size; 128 px for the shallow models, 64 px for the intermediate ones: the smallest their
readouts take) and batch 2 — except rgc_intermediate, at 224 px: its median cell's
separable convolutions shrink their 7 x 7 kernels to a smaller map, which at 224 px none is;
`rgc_intermediate_64px` is it at 64 px, kernels shrunk). Every variable is set to a
deterministic value that ventral's test computes the same way, in float64 then rounded to
float32 (so no checkpoint needs to be shipped):

    s = FNV-1a 32 of the variable's name;  u_k = ((k * 2654435761 + s) mod 2^32) / 2^32 - 0.5
    weights (rank >= 2): u_k * sqrt(12 / fan_in) * gain   (fan_in: product of all dims but the last;
                         gain 1, 0.5 for the cells' own kernels, 4 for the readout)
    bias / beta:         0.2 u_k         gamma: 1 + 0.2 u_k
    memory_decay:        0.3 + 0.2 u_k where it trains (time-decay layers), else 0 (as saved)
    softmax_beta:        10 + 2 u_k where it trains (`_tmaxconf`), else 1 (as saved)
    decoder_threshold:   0.5 + 0.2 u_k where it trains, else 0.9 (as saved)
    peepholes:           0.2 u_k

The input, NHWC [2, H, W, 3], is u_k * 2 under the name "input". `small` (run by default)
also writes a scaled simplernn_shallow and its checkpoint as TensorFlow's Saver writes it
(OUT_DIR/small/, see `small`), which the CLI test reads as a real checkpoint; `feedback` (also run by default) a
scaled ugrnn_intermediate with long-range feedback into nodes that are not reciprocal gated
cells, and its JSON (see `feedback`). Written: OUT_DIR/MODEL.safetensors with `logits.T`
([2, 64], the first 64 of the 1000 ImageNet logits of the readout `imnetds` at step T, every
step) and, in its metadata, the graph's variables (`variables`: name, shape, trainable) and
the input's shape; with DEBUG=1 also the input and every node's output at every step (not
shipped).
"""
import os, sys, json
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import convrnns_tf_shim
v1 = convrnns_tf_shim.v1
import numpy as np
from safetensors.numpy import save_file
from convrnns.models.model_func import model_func
from convrnns.utils.loader import MODEL_TO_KWARGS

BATCH, KEEP = 2, 64
# The published decoder variants (loader.MODEL_TO_KWARGS): max_conf with a trained softmax
# temperature, or the fixed 0.9 threshold, over steps 11 .. T-1.
DECODERS = [
    "rgc_intermediate_tmaxconf", "rgc_intermediate_t22_tmaxconf", "rgc_intermediate_dthresh",
    "ugrnn_intermediate_t30_tmaxconf", "ugrnn_intermediate_t30_dthresh",
]
ZOO = [
    "timedecay_shallow", "timedecay_intermediate", "simplernn_shallow", "simplernn_intermediate",
    "gru_shallow", "gru_intermediate", "lstm_shallow", "lstm_intermediate", "ugrnn_shallow",
    "ugrnn_intermediate", "ugrnn_intermediate_t30", "intersectionrnn_shallow",
    "intersectionrnn_intermediate", "rgc_shallow", "rgc_intermediate",
]


def fnv1a(s):
    h = 0x811C9DC5
    for b in s.encode():
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def unit(name, n):
    k = np.arange(n, dtype=np.uint64)
    x = (k * np.uint64(2654435761) + np.uint64(fnv1a(name))) % np.uint64(2**32)
    return x.astype(np.float64) / 2.0**32 - 0.5


def value(name, shape, trainable):
    n = int(np.prod(shape))
    u = unit(name, n)
    leaf = name.rsplit("/", 1)[-1]
    if leaf == "softmax_beta":
        # The temporal decoders' inverse temperatures: trained (`_tmaxconf`) or 1 as saved.
        v = 10.0 + 2.0 * u if trainable else np.ones(n)
    elif leaf == "decoder_threshold":
        v = 0.5 + 0.2 * u if trainable else np.full(n, 0.9)
    elif leaf == "memory_decay":
        v = 0.3 + 0.2 * u if trainable else np.zeros(n)
    elif leaf == "gamma":
        v = 1.0 + 0.2 * u
    elif leaf in ("beta", "bias") or leaf.endswith("_bias") or "peepholes" in name:
        v = 0.2 * u
    elif len(shape) >= 2:
        fan_in = int(np.prod(shape[:-1]))
        gain = 4.0 if "imnetds/" in name else 0.5 if "Cell/" in name else 1.0
        v = u * np.sqrt(12.0 / fan_in) * gain
    else:
        raise SystemExit(f"no value rule for {name} {shape}")
    return v.astype(np.float32).reshape(shape)


def scaled(model, size):
    """The zoo model's JSON at 1/16 of its widths, 10 classes and SIZE px (the cells' state
    sizes, written for 224 px, scaled with it)."""
    d = json.load(open(f"convrnns/models/{model}.json"))
    d["nodes"][0]["shape"] = [size, size, 3]
    for nd in d["nodes"]:
        for op in nd["pre_memory"] + nd["post_memory"]:
            if "out_depth" in op:
                op["out_depth"] = 10 if op["out_depth"] == 1000 else op["out_depth"] // 16
        m = nd.get("memory", {})
        if "out_depth" in m:
            m["out_depth"] //= 16
        if "shape" in m:
            m["shape"] = [s * size // 224 for s in m["shape"]]
    return d


def run_scaled(d, path, size, ckpt=None):
    """Writes the graph D to PATH.json, builds it with model_func at SIZE px (batch 2), sets
    every variable by `value`, runs the input `u_k * 2` and returns the variables (name,
    shape, trainable), the input and the readout's logits at every step (`logits.T` [2, K];
    with DEBUG=1 also every node's output, `out.T.NODE`); CKPT: also saved there by
    tf.compat.v1.train.Saver."""
    with open(path + ".json", "w") as f:
        json.dump(d, f, indent=1)
        f.write("\n")
    x = (unit("input", BATCH * size * size * 3) * 2.0).astype(np.float32)
    x = x.reshape(BATCH, size, size, 3)
    g = v1.Graph()
    with g.as_default():
        inp = v1.placeholder(v1.float32, [BATCH, size, size, 3])
        model_func(inputs=inp, base_name=path, out_layers=[], include_logits=True)
        trainable = {v.op.name for v in v1.trainable_variables()}
        variables = [[v.op.name, v.shape.as_list(), v.op.name in trainable]
                     for v in v1.global_variables()]
        with v1.Session() as s:
            for var in v1.global_variables():
                s.run(var.assign(value(var.op.name, var.shape.as_list(),
                                       var.op.name in trainable)))
            steps = OUTPUTS[-1]
            fetch = {f"logits.{t}": o for t, o in enumerate(steps["imnetds"])}
            if os.environ.get("DEBUG"):
                for node, lst in steps.items():
                    for t, o in enumerate(lst):
                        fetch[f"out.{t}.{node}"] = o
            vals = s.run(fetch, feed_dict={inp: x})
            if ckpt:
                v1.train.Saver().save(s, ckpt, write_meta_graph=False)
    tensors = {}
    for k, v in vals.items():
        v = np.asarray(v, np.float32)
        if k.startswith("logits."):
            v = v.reshape(BATCH, -1)
        tensors[k] = np.ascontiguousarray(v)
    return variables, x, tensors


def small(out):
    """simplernn_shallow scaled down (channels / 16, 10 classes, 128 px, the default 16 steps)
    and saved by tf.compat.v1.train.Saver as a real checkpoint (OUT_DIR/small/model.ckpt.*),
    with its JSON (OUT_DIR/small/simplernn_shallow.json) and its logits at every step
    (OUT_DIR/small/logits.safetensors, `logits.T` [2, 10]): the CLI test runs `ventral record`
    on them."""
    dst = os.path.join(out, "small")
    os.makedirs(dst, exist_ok=True)
    _, x, tensors = run_scaled(scaled("simplernn_shallow", 128),
                               os.path.join(dst, "simplernn_shallow"), 128,
                               ckpt=os.path.join(dst, "model.ckpt"))
    tensors = {k: v for k, v in tensors.items() if k.startswith("logits.")}
    save_file(tensors, os.path.join(dst, "logits.safetensors"),
              metadata={"input_shape": json.dumps(list(x.shape))})
    print("small", len(tensors), "steps", file=sys.stderr)


# Long-range feedback into nodes that are not reciprocal gated cells (the zoo has none; a user's
# own graph may): each (from, to) edge is added to the JSON's edges.
FEEDBACK_EDGES = [("conv10", "conv3"), ("conv8", "conv5"), ("conv9", "conv5"), ("conv3", "conv1")]


def feedback(out):
    """ugrnn_intermediate scaled down (channels / 16, 10 classes, 64 px, 17 steps) with
    FEEDBACK_EDGES added, run by the original code: its harbor concatenates a node's inputs in
    sorted-name order (conv3's are [conv10, conv2]: the feedback first) and component_conv splits
    the kernel into `weights_basenet` (the input named by `input_name`) and `weights_0`,
    `weights_1`, ... for the others in that order; conv3's residual projection
    (`residual_add_weights`) reads the whole concatenation; the input node conv1's are
    [image, conv3] (its `input_name` "split" names the image: `weights_basenet`). Writes
    OUT_DIR/ugrnn_intermediate_feedback.json (the graph, as ventral reads it) and
    OUT_DIR/ugrnn_intermediate_feedback.safetensors (`logits.T` [2, 10] at every step; the
    variables and the input's shape in its metadata; DEBUG=1: every node's output)."""
    name = "ugrnn_intermediate_feedback"
    d = scaled("ugrnn_intermediate", 64)
    d["edges"] += [{"from": a, "to": b} for a, b in FEEDBACK_EDGES]
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, name)
    variables, x, tensors = run_scaled(d, path, 64)
    meta = {"variables": json.dumps(variables, separators=(",", ":")),
            "input_shape": json.dumps(list(x.shape))}
    save_file(tensors, path + ".safetensors", metadata=meta)
    print(name, len(tensors), "tensors", file=sys.stderr)


def main():
    out = sys.argv[1]
    names = sys.argv[2:] or ZOO + DECODERS + ["small", "feedback"]
    if "feedback" in names:
        names = [n for n in names if n != "feedback"]
        feedback(out)
    if "small" in names:
        names = [n for n in names if n != "small"]
        small(out)
    os.makedirs(out, exist_ok=True)
    tmp = os.path.join(out, "json")
    os.makedirs(tmp, exist_ok=True)
    for out_name in names:
        # `MODEL_64px`: MODEL at 64 px whatever its default size here.
        name = out_name.removesuffix("_64px")
        size = 128 if "shallow" in name else 64
        batch = BATCH
        if name.startswith("rgc_intermediate") and name == out_name:
            # The median cell's separable convolutions (cell_utils._ds_conv) shrink a 7 x 7
            # kernel to the map where the map is smaller; at 224 px none is (conv8-10: 7 x 7),
            # as with the checkpoints. `rgc_intermediate_64px` is the shrunk form (conv7's
            # kernels 4 x 4 on 4 x 4 maps, conv8-10's 2 x 2 on 2 x 2).
            size = 224
        x = (unit("input", batch * size * size * 3) * 2.0).astype(np.float32)
        x = x.reshape(batch, size, size, 3)
        base = MODEL_TO_KWARGS[name]["base_name"]
        d = json.load(open(base + ".json"))
        d["nodes"][0]["shape"] = [size, size, 3]
        # The cells' state sizes are written into the file for 224 px.
        for nd in d["nodes"]:
            m = nd.get("memory", {})
            if "shape" in m:
                assert all(s * size % 224 == 0 for s in m["shape"]), (name, m["shape"])
                m["shape"] = [s * size // 224 for s in m["shape"]]
        path = os.path.join(tmp, os.path.basename(base))
        with open(path + ".json", "w") as f:
            json.dump(d, f)
        g = v1.Graph()
        with g.as_default():
            inp = v1.placeholder(v1.float32, [batch, size, size, 3])
            kwargs = {k: v for k, v in MODEL_TO_KWARGS[name].items() if k != "base_name"}
            y = model_func(inputs=inp, base_name=path, out_layers=[], include_logits=True,
                           **kwargs)
            trainable = {v.op.name for v in v1.trainable_variables()}
            variables = [[v.op.name, v.shape.as_list(), v.op.name in trainable]
                         for v in v1.global_variables()]
            with v1.Session() as s:
                for var in v1.global_variables():
                    s.run(var.assign(value(var.op.name, var.shape.as_list(),
                                           var.op.name in trainable)))
                # The readout at every step: imnetds' outputs as unroll left them.
                tensors = {}
                steps = OUTPUTS[-1]
                fetch = {f"logits.{t}": o for t, o in enumerate(steps["imnetds"])}
                if "decoder_type" in kwargs:
                    # The decoder's output (all classes) and every step's full logits.
                    fetch["decoded"] = y["logits"]
                    for t, o in enumerate(steps["imnetds"]):
                        fetch[f"full.{t}"] = o
                if os.environ.get("DEBUG"):
                    for node, lst in steps.items():
                        for t, o in enumerate(lst):
                            fetch[f"out.{t}.{node}"] = o
                vals = s.run(fetch, feed_dict={inp: x})
                full = {}
                for k, v in vals.items():
                    v = np.asarray(v, dtype=np.float32)
                    if k.startswith("full."):
                        full[int(k[5:])] = v.reshape(batch, -1)
                        continue
                    if k.startswith("logits."):
                        v = v.reshape(batch, -1)[:, :KEEP]
                    tensors[k] = np.ascontiguousarray(v)
                if "decoder_type" in kwargs:
                    # The step each image's decoder reads, by the decoder's rule recomputed
                    # here (checked against its output), and every step's confidence
                    # max_c softmax(beta * logits): the test checks ventral picks the same
                    # step and that no other step comes within its tolerance.
                    beta = s.run(g.get_tensor_by_name("tnn_model/normalize/softmax_beta:0"))[0]
                    first = 11
                    conf = []
                    for t in range(first, len(full)):
                        z = beta.astype(np.float64) * full[t].astype(np.float64)
                        z = np.exp(z - z.max(axis=1, keepdims=True))
                        conf.append((z / z.sum(axis=1, keepdims=True)).max(axis=1))
                    conf = np.stack(conf, axis=1)  # [B, T - first]
                    pick = conf.argmax(axis=1)
                    if kwargs["decoder_type"] == "thresh":
                        over = conf >= 0.9
                        pick = np.where(over.any(axis=1), over.argmax(axis=1), pick)
                    pick = pick + first
                    for b in range(batch):
                        assert np.array_equal(full[pick[b]][b], tensors["decoded"][b]), name
                    tensors["decoder_pick"] = pick.astype(np.int64)
                    tensors["decoder_conf"] = conf.astype(np.float32)
                if os.environ.get("DEBUG"):
                    tensors["input"] = x
        meta = {"variables": json.dumps(variables, separators=(",", ":")),
                "input_shape": json.dumps(list(x.shape))}
        save_file(tensors, os.path.join(out, f"{out_name}.safetensors"), metadata=meta)
        print(out_name, len(tensors), "tensors", file=sys.stderr)


# model_func keeps the unrolled graph to itself; record every node's outputs list as unroll
# leaves it (main.unroll stores them in G.node[...]["outputs"]).
OUTPUTS = []
from convrnns.utils import main as _tnn_main
_unroll = _tnn_main.unroll


def _recording_unroll(G, *a, **k):
    r = _unroll(G, *a, **k)
    OUTPUTS.append({n: list(G.node[n]["outputs"]) for n in G.nodes()})
    return r


_tnn_main.unroll = _recording_unroll

if __name__ == "__main__":
    main()
