#!/usr/bin/env bash
# Measure stimulus generation and packing speed, side by side with a Python baseline
# (h5py + numpy for HDF5, PIL for ImageFolder) where one exists.
#
#   bash scripts/bench_data.sh [WORKDIR]
#
# Needs python3 with numpy, h5py and pillow for the inputs and the baselines
# (e.g. python3 -m venv .venv && .venv/bin/pip install numpy h5py pillow; PYTHON=.venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
W="${1:-$(mktemp -d)}"
mkdir -p "$W"
cargo build --release -q
V="${CARGO_TARGET_DIR:-target}/release/ventral"
now() { date +%s.%N; }
rate() { "$PY" -c "import sys; n,t=float(sys.argv[1]),float(sys.argv[2]); print(f'{t:.2f} s, {n/t:.0f} images/s')" "$1" "$2"; }

echo "== machine: $(nproc) cores"
echo "== stimuli: 10000 images at 64 px"
t0=$(now); $V stimuli --out "$W/stim" --num-images 10000 --image-size 64 --overwrite >/dev/null; t1=$(now)
echo "ventral stimuli (with the PNG stimulus set): $(rate 10000 "$(echo "$t1 - $t0" | bc)")"
t0=$(now); $V stimuli --out "$W/stim2" --num-images 10000 --image-size 64 --no-stimulus-set --overwrite >/dev/null; t1=$(now)
echo "ventral stimuli (packed splits only):        $(rate 10000 "$(echo "$t1 - $t0" | bc)")"

echo "== inputs (MiniEcoset-layout HDF5 20000×64×64×3, chunked per image, gzip; ImageFolder 2000 JPEGs 160×120)"
"$PY" - "$W" <<'PYEOF'
import sys, os, numpy as np, h5py
from PIL import Image
w = sys.argv[1]
rng = np.random.default_rng(0)
n = 20000
data = rng.integers(0, 256, size=(n, 64, 64, 3), dtype=np.uint8)
data[:, ::2] //= 2  # some structure so gzip has work to do
with h5py.File(os.path.join(w, "mini.h5"), "w") as f:
    g = f.create_group("train")
    g.create_dataset("data", data=data, chunks=(1, 64, 64, 3), compression="gzip")
    g["labels"] = (np.arange(n) % 100).astype(np.int64)
    f["categories"] = np.array([f"c{i}".encode() for i in range(100)])
for c in range(10):
    d = os.path.join(w, "folder", f"{c:04d}_class{c}")
    os.makedirs(d, exist_ok=True)
    for i in range(200):
        Image.fromarray(rng.integers(0, 256, size=(120, 160, 3), dtype=np.uint8)).save(os.path.join(d, f"{i}.jpg"), quality=90)
PYEOF

t0=$(now); $V pack --format hdf5 "$W/mini.h5" --out "$W/p_h5" --overwrite >/dev/null; t1=$(now)
tv=$(echo "$t1 - $t0" | bc)
t0=$(now)
"$PY" - "$W" <<'PYEOF'
import sys, os, numpy as np, h5py
w = sys.argv[1]
with h5py.File(os.path.join(w, "mini.h5"), "r") as f:
    x = f["train/data"][:]
    y = f["train/labels"][:]
np.save(os.path.join(w, "baseline_images.npy"), x)
np.save(os.path.join(w, "baseline_labels.npy"), y)
PYEOF
t1=$(now); tb=$(echo "$t1 - $t0" | bc)
echo "hdf5 → packed: ventral $(rate 20000 "$tv") | h5py read + np.save $(rate 20000 "$tb") | time ratio ventral/python $(echo "scale=2; $tv / $tb" | bc)"

t0=$(now); $V pack --format imagefolder "$W/folder" --out "$W/p_folder" --image-size 64 --overwrite >/dev/null; t1=$(now)
tv=$(echo "$t1 - $t0" | bc)
t0=$(now)
"$PY" - "$W" <<'PYEOF'
import sys, os, numpy as np
from PIL import Image
w = sys.argv[1]
root = os.path.join(w, "folder")
imgs, labels = [], []
for k, c in enumerate(sorted(os.listdir(root))):
    for fn in sorted(os.listdir(os.path.join(root, c))):
        im = Image.open(os.path.join(root, c, fn)).convert("RGB")
        s = 64 / min(im.size)
        im = im.resize((round(im.size[0] * s), round(im.size[1] * s)), Image.BILINEAR)
        l, t = (im.size[0] - 64) // 2, (im.size[1] - 64) // 2
        imgs.append(np.asarray(im.crop((l, t, l + 64, t + 64))))
        labels.append(k)
np.save(os.path.join(w, "baseline_folder.npy"), np.stack(imgs))
PYEOF
t1=$(now); tb=$(echo "$t1 - $t0" | bc)
echo "imagefolder → packed (2000 JPEG): ventral $(rate 2000 "$tv") | PIL single process $(rate 2000 "$tb") | time ratio ventral/python $(echo "scale=2; $tv / $tb" | bc)"
echo "work dir: $W"
