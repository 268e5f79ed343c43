"""Generate the small reader fixtures in tests/fixtures/data (run at development time only).

    python scripts/make_data_fixtures.py

Pixel values follow px(i, y, x, c) = (7*i + 3*y + 5*x + 11*c) % 256 so tests can recompute them.
"""
import os
import numpy as np
import h5py

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "data")
os.makedirs(OUT, exist_ok=True)


def pixels(n, h, w, c, offset=0):
    i, y, x, k = np.meshgrid(np.arange(n) + offset, np.arange(h), np.arange(w), np.arange(c), indexing="ij")
    return ((7 * i + 3 * y + 5 * x + 11 * k) % 256).astype(np.uint8)


def miniecoset(path, with_labels=True, with_categories=True):
    with h5py.File(path, "w") as f:
        f["train_img_mean_channels"] = np.array([127.0, 120.5, 110.25])
        f["train_img_std_channels"] = np.array([60.0, 61.0, 62.0])
        if with_categories:
            f["categories"] = np.array([b"cat", b"dog", b"ice_cream"])
        offset = 0
        for split, n in [("train", 12), ("val", 4), ("test", 4), ("testplus", 6)]:
            g = f.create_group(split)
            data = pixels(n, 8, 8, 3, offset)
            if split == "train":
                # chunked + gzip like the real file; other splits contiguous
                g.create_dataset("data", data=data, chunks=(1, 8, 8, 3), compression="gzip")
            else:
                g["data"] = data
            if with_labels or split != "val":
                g["labels"] = (np.arange(n) % 3).astype(np.int64)
            offset += n


miniecoset(os.path.join(OUT, "miniecoset_8px.h5"))
miniecoset(os.path.join(OUT, "miniecoset_missing_labels.h5"), with_labels=False)

# npz as numpy writes it: NCHW uint8 images, int64 labels, unicode class names.
imgs = pixels(5, 6, 4, 3)  # NHWC
np.savez(
    os.path.join(OUT, "nchw_u8.npz"),
    images=np.ascontiguousarray(imgs.transpose(0, 3, 1, 2)),
    labels=np.array([0, 1, 1, 0, 1], dtype=np.int64),
    class_names=np.array(["zero", "one"]),
)
# compressed, float images on the 0-1 scale, NHWC, labels as int32 under other names
np.savez_compressed(
    os.path.join(OUT, "nhwc_f32.npz"),
    x=(imgs.astype(np.float32) / 255.0),
    y=np.array([2, 0, 1, 2, 0], dtype=np.int32),
)
