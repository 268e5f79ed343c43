"""A shim that lets the original neuroailab/convrnns code (TensorFlow 1.13, tf.contrib) build its
graphs on TensorFlow 2.15's compat.v1: contrib.layers' regularisers and initialisers (which do
not change names or shapes), flatten, and layer_norm rewritten from TF 1.13's source (the same
`LayerNorm/beta`, `LayerNorm/gamma` variables, epsilon 1e-12); contrib.rnn's LSTMStateTuple and
RNNCell from compat.v1; empty tpu modules; fractions.gcd for networkx 1.11.

Import it before convrnns (from the convrnns checkout as the working directory):
`import convrnns_tf_shim; v1 = convrnns_tf_shim.v1`. Used by convrnns_tf_variables.py and
convrnns_tf_forward.py.
"""
import os, sys, types, fractions, math
sys.path.insert(0, os.getcwd())
fractions.gcd = math.gcd
import tensorflow as tf2
v1 = tf2.compat.v1
v1.disable_eager_execution()
v1.disable_v2_behavior()
# tf.contrib shim: the parts convrnns uses.
contrib = types.ModuleType("tensorflow.contrib")
layers = types.SimpleNamespace(
    l2_regularizer=lambda scale, scope=None: (lambda w: scale * tf2.nn.l2_loss(w)),
    l1_regularizer=lambda scale, scope=None: (lambda w: scale * tf2.reduce_sum(tf2.abs(w))),
    sum_regularizer=lambda regs, scope=None: (lambda w: tf2.add_n([r(w) for r in regs])),
    xavier_initializer=lambda *a, **k: v1.glorot_uniform_initializer(),
    variance_scaling_initializer=lambda *a, **k: v1.variance_scaling_initializer(*a, **k),
    flatten=v1.layers.flatten,
)
def layer_norm(inputs, center=True, scale=True, activation_fn=None, reuse=None,
               variables_collections=None, outputs_collections=None, trainable=True,
               begin_norm_axis=1, begin_params_axis=-1, scope=None):
    # tf.contrib.layers.layer_norm of TF 1.13: the same variable names and epsilon.
    with v1.variable_scope(scope, "LayerNorm", [inputs], reuse=reuse):
        inputs = v1.convert_to_tensor(inputs)
        shape = inputs.shape
        rank = shape.ndims
        if begin_norm_axis < 0:
            begin_norm_axis = rank + begin_norm_axis
        params_shape = shape[begin_params_axis:]
        beta = v1.get_variable("beta", shape=params_shape, dtype=inputs.dtype,
                               initializer=v1.zeros_initializer(), trainable=trainable) if center else None
        gamma = v1.get_variable("gamma", shape=params_shape, dtype=inputs.dtype,
                                initializer=v1.ones_initializer(), trainable=trainable) if scale else None
        mean, var = v1.nn.moments(inputs, list(range(begin_norm_axis, rank)), keep_dims=True)
        out = v1.nn.batch_normalization(inputs, mean, var, offset=beta, scale=gamma,
                                        variance_epsilon=1e-12)
        out.set_shape(shape)
        return activation_fn(out) if activation_fn is not None else out
layers.layer_norm = layer_norm
contrib.layers = layers
rnn = types.ModuleType("tensorflow.contrib.rnn")
rnn.LSTMStateTuple = v1.nn.rnn_cell.LSTMStateTuple
rnn.RNNCell = v1.nn.rnn_cell.RNNCell
contrib.rnn = rnn
tpu = types.ModuleType("tensorflow.contrib.tpu")
tpu_python = types.ModuleType("tensorflow.contrib.tpu.python")
tpu_ops_pkg = types.ModuleType("tensorflow.contrib.tpu.python.ops")
tpu_ops = types.ModuleType("tensorflow.contrib.tpu.python.ops.tpu_ops")
tpu_tpu = types.ModuleType("tensorflow.contrib.tpu.python.tpu")
tpu_function = types.ModuleType("tensorflow.contrib.tpu.python.tpu.tpu_function")
tpu_function.get_tpu_context = lambda: types.SimpleNamespace(number_of_shards=None)
tpu_ops_pkg.tpu_ops = tpu_ops
tpu_tpu.tpu_function = tpu_function
for name, mod in {"tensorflow.contrib": contrib, "tensorflow.contrib.rnn": rnn,
                  "tensorflow.contrib.tpu": tpu, "tensorflow.contrib.tpu.python": tpu_python,
                  "tensorflow.contrib.tpu.python.ops": tpu_ops_pkg,
                  "tensorflow.contrib.tpu.python.ops.tpu_ops": tpu_ops,
                  "tensorflow.contrib.tpu.python.tpu": tpu_tpu,
                  "tensorflow.contrib.tpu.python.tpu.tpu_function": tpu_function}.items():
    sys.modules[name] = mod
# `import tensorflow as tf` in convrnns gets compat.v1 with contrib attached.
v1.contrib = contrib
sys.modules["tensorflow"] = v1
