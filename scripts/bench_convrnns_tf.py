"""The original convrnns zoo's inference speed (neuroailab/convrnns' TensorFlow 1.x code, run
by TensorFlow 2.15's compat.v1 graph mode behind convrnns_tf_shim.py), for
scripts/bench_convrnns_tf.sh to set beside `ventral bench` on the same models:

    cd CONVRNNS_CHECKOUT && python bench_convrnns_tf.py --models rgc_shallow,rgc_intermediate \\
        --batch 8 --iters 3 --threads 2

Each model as `model_func` builds it (224 px, 1000 classes), with the image at every step for
the model's default number of steps (`image_pres="constant"`, as `ventral bench` presents it),
its variables initialised (values do not change the time); one untimed run, then ITERS timed
`session.run`s of the logits over a batch of random normalised images. Prints one JSON object:
{model: {"timesteps", "batch", "infer_images_per_s", "seconds"}, "threads", "tensorflow",
"onednn"} (TF_ENABLE_ONEDNN_OPTS=0 runs TensorFlow's Eigen kernels instead of oneDNN's).
"""
import argparse, contextlib, json, os, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import convrnns_tf_shim
v1 = convrnns_tf_shim.v1
import numpy as np
from convrnns.models.model_func import model_func
from convrnns.utils.loader import MODEL_TO_KWARGS

ap = argparse.ArgumentParser()
ap.add_argument("--models", required=True)
ap.add_argument("--batch", type=int, default=8)
ap.add_argument("--iters", type=int, default=3)
ap.add_argument("--threads", type=int, default=os.cpu_count())
a = ap.parse_args()
out = {"threads": a.threads, "tensorflow": convrnns_tf_shim.tf2.__version__,
       "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1") != "0"}
rng = np.random.default_rng(0)
for name in a.models.split(","):
    kw = dict(MODEL_TO_KWARGS[name])
    base = kw["base_name"]
    nodes = len(json.load(open(base + ".json"))["nodes"])
    times = 30 if "t30" in base else 22 if "t22" in base else 17 if nodes == 11 else 16
    g = v1.Graph()
    with g.as_default():
        x = v1.placeholder(v1.float32, [a.batch, 224, 224, 3])
        with contextlib.redirect_stdout(sys.stderr):  # model_func prints as it builds
            y = model_func(inputs=x, out_layers=[], include_logits=True,
                           image_pres="constant", times=times, **kw)["logits"]
        cfg = v1.ConfigProto(intra_op_parallelism_threads=a.threads,
                             inter_op_parallelism_threads=a.threads)
        with v1.Session(config=cfg) as s:
            s.run(v1.global_variables_initializer())
            img = rng.standard_normal((a.batch, 224, 224, 3)).astype(np.float32)
            s.run(y, {x: img})
            t0 = time.perf_counter()
            for _ in range(a.iters):
                s.run(y, {x: img})
            dt = time.perf_counter() - t0
    out[name] = {"timesteps": times, "batch": a.batch, "seconds": dt / a.iters,
                 "infer_images_per_s": a.batch * a.iters / dt}
    print(name, out[name], file=sys.stderr)
print(json.dumps(out))
