"""TensorFlow checkpoints (the V2 "tensor bundle": PREFIX.index + PREFIX.data-NNNNN-of-NNNNN) for
ventral's reader (ventral_core::tf_checkpoint), written by TensorFlow itself, with the values they
must give:

    python scripts/make_tf_checkpoint_fixtures.py   # tensorflow-cpu 2.15 (the format is TF 1.x's too)
                                                    # writes crates/ventral-core/tests/fixtures/tf_checkpoint/

- dtypes: tf.compat.v1.train.Saver (graph mode, as TF 1.x code such as neuroailab/convrnns saves
  its checkpoints) over variables of every dtype the reader takes (float32/64/16, bfloat16,
  int64/32, uint8, bool), a scalar, an empty tensor, names in variable scopes
  (`conv1/weights`, HWIO as TensorFlow keeps them), 300 small variables (enough entries for the
  index's prefix compression to restart many times) and one 3 000-value tensor;
  dtypes.expected.npz the same values (floats as float64, integers as int64) under the names
  with '/' written as '|' (npz keys are file names).
- object: tf.train.Checkpoint (TF 2, object-based): names such as
  `model/kernel/.ATTRIBUTES/VARIABLE_VALUE`, and the string tensor `_CHECKPOINTABLE_OBJECT_GRAPH`,
  which is not a weight (skipped); object.expected.npz as above.
- sharded: Saver(sharded=True) over variables on two (logical) CPU devices: two data shards.
- partitioned: a variable saved in slices (fixed_size_partitioner), refused.
"""
import os
import numpy as np
import tensorflow as tf

OUT = os.path.join(os.path.dirname(__file__), "..", "crates", "ventral-core", "tests", "fixtures", "tf_checkpoint")
os.makedirs(OUT, exist_ok=True)
cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
v1 = tf.compat.v1
rng = np.random.default_rng(0)


def expected(path, values):
    out = {}
    for k, v in values.items():
        v = np.asarray(v)
        if v.dtype == tf.bfloat16.as_numpy_dtype:
            v = v.astype(np.float32)
        out[k.replace("/", "|")] = v.astype(np.float64) if v.dtype.kind == "f" else v.astype(np.int64)
    np.savez_compressed(path, **out)


def graph_saver(name, make, **saver_kwargs):
    g = tf.Graph()
    with g.as_default():
        vs = make()
        saver = v1.train.Saver(**saver_kwargs)
        with v1.Session(graph=g) as s:
            s.run(v1.global_variables_initializer())
            prefix = saver.save(s, os.path.join(OUT, name), write_meta_graph=False, write_state=False)
            values = {v.op.name: s.run(v) for v in vs if hasattr(v, "op")}
    return prefix, values


def dtypes():
    vs = []
    get = v1.get_variable
    with v1.variable_scope("conv1"):
        vs.append(get("weights", initializer=rng.standard_normal((3, 3, 3, 4)).astype(np.float32)))
        vs.append(get("bias", initializer=rng.standard_normal(4).astype(np.float32)))
    vs.append(get("double", initializer=np.array([1.0 / 3, -2.5e-300, 7.0])))
    vs.append(get("half", initializer=np.array([0.5, -1.25, 65504.0, 6.1e-5, 0.0], np.float16)))
    vs.append(v1.Variable(tf.cast(rng.standard_normal((2, 3)).astype(np.float32), tf.bfloat16), name="bf"))
    vs.append(get("global_step", initializer=np.int64(123456789012)))
    vs.append(get("int32", initializer=np.array([-7, 0, 2**31 - 1, -(2**31)], np.int32)))
    vs.append(get("u8", initializer=np.array([0, 17, 255], np.uint8)))
    vs.append(get("mask", initializer=np.array([True, False, False, True])))
    vs.append(get("empty", initializer=np.zeros((0, 3), np.float32)))
    vs.append(get("big", initializer=rng.standard_normal((30, 100)).astype(np.float32)))
    for i in range(300):
        vs.append(get(f"many/layer{i // 10}/v{i:03d}", initializer=np.full(2, i / 7, np.float32)))
    return vs


prefix, values = graph_saver("dtypes", dtypes)
expected(os.path.join(OUT, "dtypes.expected.npz"), values)


def sharded():
    vs = []
    for d in range(2):
        with tf.device(f"/device:CPU:{d}"):
            vs.append(v1.get_variable(f"dev{d}/w", initializer=rng.standard_normal((5, 3)).astype(np.float32)))
            vs.append(v1.get_variable(f"dev{d}/b", initializer=np.arange(3, dtype=np.float32) + d))
    return vs


prefix, values = graph_saver("sharded", sharded, sharded=True)
expected(os.path.join(OUT, "sharded.expected.npz"), values)


def partitioned():
    return [v1.get_variable("part", shape=(8, 2), partitioner=v1.fixed_size_partitioner(2),
                            initializer=v1.constant_initializer(1.5))]


graph_saver("partitioned", partitioned)

# TF 2, object-based (eager).
class Model(tf.Module):
    def __init__(self):
        self.kernel = tf.Variable(rng.standard_normal((3, 2)).astype(np.float32))
        self.bias = tf.Variable(np.array([0.25, -0.5], np.float32))


m = Model()
ck = tf.train.Checkpoint(model=m, step=tf.Variable(np.int64(7)))
path = ck.write(os.path.join(OUT, "object"))
expected(os.path.join(OUT, "object.expected.npz"), {n: tf.train.load_variable(path, n)
         for n, _ in tf.train.list_variables(path) if n != "_CHECKPOINTABLE_OBJECT_GRAPH"})
for f in sorted(os.listdir(OUT)):
    print(f, os.path.getsize(os.path.join(OUT, f)))
