"""A MiniEcoset-shaped synthetic image set for timing epochs (scripts/gpu_check.sh): 64-px
uint8 HWC images of 100 classes in DIR/train.npz and DIR/val.npz (`images`, `labels`, as
`ventral pack --format npz` reads them).

Each class is a smooth random prototype (an 8 × 8 grid of colours, upsampled) shown at a random
brightness with pixel noise: learnable, but measured on CPU (PyTorch, BLT_net_64 at T = 1, Adam
1e-3, 50 batches of 64) one short epoch stays at chance (1 %), as real 100-class training does
in its first hundred steps. The set is for timing; the device's correctness is checked
against the CPU engine (`ventral bench --device`, `vs_native`).

    python scripts/make_synthetic_npz.py DIR N_TRAIN N_VAL [--classes 100] [--size 64] [--seed 0]
"""
import argparse, os
import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("n_train", type=int)
ap.add_argument("n_val", type=int)
ap.add_argument("--classes", type=int, default=100)
ap.add_argument("--size", type=int, default=64)
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--noise", type=float, default=24.0, help="pixel noise s.d. (0-255 scale)")
a = ap.parse_args()
os.makedirs(a.out, exist_ok=True)
rng = np.random.default_rng(a.seed)
cell = a.size // 8
proto = rng.uniform(0, 255, (a.classes, 8, 8, 3)).repeat(cell, axis=1).repeat(cell, axis=2)
for split, n in (("train", a.n_train), ("val", a.n_val)):
    labels = np.arange(n) % a.classes
    rng.shuffle(labels)
    images = np.empty((n, a.size, a.size, 3), np.uint8)
    for i in range(0, n, 1000):
        j = slice(i, min(i + 1000, n))
        k = len(labels[j])
        gain = rng.uniform(0.6, 1.0, (k, 1, 1, 1))
        x = gain * proto[labels[j]] + rng.normal(0, a.noise, (k, a.size, a.size, 3))
        images[j] = np.clip(x, 0, 255).astype(np.uint8)
    np.savez(f"{a.out}/{split}.npz", images=images, labels=labels.astype(np.int64))
    print(f"{split}: {images.shape} uint8, {a.classes} classes")
