"""The variables of the original convrnns zoo (neuroailab/convrnns, TensorFlow 1.13 code): their
names, shapes and whether they train — what the published checkpoints hold — listed by building
each model's graph with the original code on TensorFlow 2.15's compat.v1 behind a small shim of
the tf.contrib parts it uses (TF 1.13 no longer installs):

    git clone https://github.com/neuroailab/convrnns /tmp/convrnns   # or a snapshot of it
    pip install tensorflow-cpu==2.15.* networkx==1.11 six
    cd /tmp/convrnns && python /path/to/ventral/scripts/convrnns_tf_variables.py OUT.json

Only graph construction runs (no weights, no data). The shim: contrib.layers' regularisers and
initialisers (which do not change names or shapes), flatten, and layer_norm rewritten from TF
1.13's source (the same `LayerNorm/beta`, `LayerNorm/gamma` variables); contrib.rnn's
LSTMStateTuple and RNNCell from compat.v1; empty tpu modules; fractions.gcd for networkx 1.11.
ventral's tests read OUT.json (crates/ventral-models/tests/fixtures/convrnns_tf_variables.json).
"""
import os, sys, json
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import convrnns_tf_shim
v1 = convrnns_tf_shim.v1
from convrnns.models.model_func import model_func
from convrnns.utils.loader import MODEL_TO_KWARGS

out = {}
names = list(MODEL_TO_KWARGS)
for name in names:
    g = v1.Graph()
    with g.as_default():
        x = v1.placeholder(v1.float32, [2, 224, 224, 3])
        model_func(inputs=x, out_layers="imnetds", include_logits=True, **MODEL_TO_KWARGS[name])
        trainable = {v.op.name for v in v1.trainable_variables()}
        out[name] = [[v.op.name, v.shape.as_list(), v.op.name in trainable]
                     for v in v1.global_variables()]
        print(name, len(out[name]), file=sys.stderr)
with open(sys.argv[1], "w") as f:
    json.dump(out, f, separators=(",", ":"))
    f.write("\n")
