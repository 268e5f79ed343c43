"""Keras weights of a small rcnn-sat BL network for ventral's Keras reader
(ventral_models::rcnn_sat::keras), written by the reference code itself (cjspoerer/rcnn-sat,
`rcnn_sat/bl_net.py`, commit dc33c73) under Keras 2.15 (TensorFlow 2.15, as the published
`bl_ecoset.h5` weights load):

    RCNN_SAT=path/to/rcnn-sat /path/to/venv-with-tensorflow/bin/python scripts/make_keras_fixtures.py

The reference's layer names and graph, narrower: its BLConvLayer is wrapped so that the filters
96, 128, 192, 256, 512, 1024, 2048 become 4, 4, 8, 8, 8, 8, 8 (kernels 7, 5, 3, 3, 3, 3, 1 as
published), 64 px input, 5 classes, 3 steps, instant readout. BatchNorm's gamma, beta, moving
mean and variance are drawn at random (else inference would not exercise them). Writes
crates/ventral-models/tests/fixtures/keras/:
- bl_small.h5: `model.save_weights(...)` (the layout of the published weights);
- bl_small_model.h5: `model.save(...)` (the whole model: weights under /model_weights);
- bl_small.expected.npz: `input` [3, 3, 64, 64] (NCHW, ventral's layout; Keras was fed its
  NHWC transpose), `probs` [3, 3, 5] (the softmax outputs per step, `model(x, training=False)`)
  and `representations` [3, 3, 8] (GlobalAvgPool_Time_t per step);
- bd_small.h5 and bd_small.expected.npz: the feedforward B-D control (`b_net.py`'s `b_d_net`,
  14 layers, pooling before every second one), narrowed the same way: `probs` [1, 3, 5] and
  `representations` [1, 3, 8] (GlobalAvgPool) for the same input.
"""
import os, sys
import numpy as np

sys.path.insert(0, os.environ["RCNN_SAT"])
import tensorflow as tf  # noqa: E402
import importlib  # noqa: E402

ref = importlib.import_module("rcnn_sat.bl_net")  # the module (the package exports the function)

OUT = os.path.join(os.path.dirname(__file__), "..", "crates", "ventral-models", "tests", "fixtures", "keras")
os.makedirs(OUT, exist_ok=True)
tf.keras.utils.set_random_seed(0)  # Python, NumPy and TensorFlow: the same weights every run
rng = np.random.default_rng(0)

WIDTH = {96: 4, 128: 4, 192: 8, 256: 8, 512: 8, 1024: 8, 2048: 8}
Published = ref.BLConvLayer


class Narrow(Published):
    def __init__(self, filters, kernel_size, layer_name):
        super().__init__(WIDTH[filters], kernel_size, layer_name)


ref.BLConvLayer = Narrow


def randomise_batchnorm(model):
    """BatchNorm's gamma, beta, moving mean and variance at random (else inference would not
    exercise them), drawn from `rng` layer by layer."""
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            g, b, m, v = layer.get_weights()
            layer.set_weights([
                1 + 0.2 * rng.standard_normal(g.shape).astype("float32"),
                0.1 * rng.standard_normal(b.shape).astype("float32"),
                0.1 * rng.standard_normal(m.shape).astype("float32"),
                (0.5 + rng.random(v.shape)).astype("float32"),
            ])


T, CLASSES = 3, 5
inp = tf.keras.layers.Input((64, 64, 3))
model = ref.bl_net(inp, CLASSES, n_timesteps=T, cumulative_readout=False)
randomise_batchnorm(model)
model.save_weights(os.path.join(OUT, "bl_small.h5"))
model.save(os.path.join(OUT, "bl_small_model.h5"))

x = rng.standard_normal((3, 64, 64, 3)).astype("float32")
probs = np.stack([p.numpy() for p in model(x, training=False)])
gaps = tf.keras.Model(model.input, [model.get_layer(f"GlobalAvgPool_Time_{t}").output for t in range(T)])
reps = np.stack([r.numpy() for r in gaps(x, training=False)])
np.savez(
    os.path.join(OUT, "bl_small.expected.npz"),
    input=np.ascontiguousarray(x.transpose(0, 3, 1, 2)),
    probs=probs,
    representations=reps,
)

# The B-D control: b_net.py's b_layer narrowed (b_d_net looks it up in its module).
bref = importlib.import_module("rcnn_sat.b_net")
published_layer = bref.b_layer


def narrow_layer(x, filters, kernel, layer_num, pooling=True):
    return published_layer(x, WIDTH[filters], kernel, layer_num, pooling)


bref.b_layer = narrow_layer
bd = bref.b_d_net(tf.keras.layers.Input((64, 64, 3)), CLASSES)
randomise_batchnorm(bd)
bd.save_weights(os.path.join(OUT, "bd_small.h5"))
gap = tf.keras.Model(bd.input, bd.get_layer("GlobalAvgPool").output)
np.savez(
    os.path.join(OUT, "bd_small.expected.npz"),
    probs=bd(x, training=False).numpy()[None],
    representations=gap(x, training=False).numpy()[None],
)
print("wrote", sorted(os.listdir(OUT)), probs.shape, reps.shape)
