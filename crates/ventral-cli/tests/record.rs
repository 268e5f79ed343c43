//! `ventral record` on the reference fixture: the reference weights and input give the
//! reference's log-probabilities and representations under the reference's npz keys.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use ventral_core::npy::{NpzReader, write_npy};
use ventral_core::safetensors::SafeTensors;
use ventral_core::{NpyArray, NpyData};

fn fixture() -> Option<PathBuf> {
    ventral_core::fixtures::shared_fixture(
        env!("CARGO_MANIFEST_DIR"),
        "blt_ccn23/blt64_lt_additive_T4.safetensors",
    )
}

const MODEL: &str = r#"
[model]
kind = "blt"
image_size = 64
num_classes = 100
timesteps = 4
lateral = true
topdown = true
interaction = "additive"
lt_position = "all"
classifier_bias = false
norm = "layer"
faithful_v1 = true
"#;

#[test]
fn record_reproduces_the_reference_outputs() {
    let Some(fx) = fixture() else { return };
    let st = SafeTensors::read(&fx).unwrap();
    let d = tempfile::tempdir().unwrap();
    let (xs, x) = st.f32("input").unwrap();
    let (_, y) = st.i64("labels").unwrap();
    let images = d.path().join("x.npy");
    let labels = d.path().join("y.npy");
    write_npy(&images, &NpyArray::new(xs, NpyData::F32(x)).unwrap()).unwrap();
    write_npy(
        &labels,
        &NpyArray::new(vec![y.len()], NpyData::I64(y.clone())).unwrap(),
    )
    .unwrap();
    let model = d.path().join("model.toml");
    std::fs::write(&model, MODEL).unwrap();
    let out = d.path().join("acts.npz");
    let o = common::command()
        .args([
            "record",
            "--model",
            p(&model),
            "--weights",
            p(&fx),
            "--images",
            p(&images),
            "--labels",
            p(&labels),
            "--out",
            p(&out),
            "--batch-size",
            "4",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut z = NpzReader::open(&out).unwrap();
    let lp = z.read("outputs_all").unwrap();
    assert_eq!(lp.shape, vec![4, 6, 100]);
    let (_, want) = st.f32("log_probs").unwrap();
    let e = max_abs_diff(&lp.to_f32().unwrap(), &want);
    assert!(e <= 1e-4, "outputs_all differs from the reference by {e}");
    let reps = z.read("representations_all").unwrap();
    assert_eq!(reps.shape, vec![4, 6, 512]);
    let (_, want) = st.f32("representations").unwrap();
    let e = max_abs_diff(&reps.to_f32().unwrap(), &want);
    assert!(
        e <= 1e-4,
        "representations_all differs from the reference by {e}"
    );
    let w = z.read("readout_weight").unwrap();
    assert_eq!(w.shape, vec![100, 512]);
    assert_eq!(w.to_f32().unwrap(), st.f32("readout.weight").unwrap().1);
    assert_eq!(z.read("readout_bias").unwrap().shape, vec![0]);
    assert_eq!(z.read("labels_all").unwrap().to_i64().unwrap(), y);

    // The recording goes straight into `dynamics`; its accuracy per step is the reference's.
    let dyn_dir = d.path().join("dyn");
    let o = common::command()
        .args(["dynamics", "--activations", p(&out), "--out", p(&dyn_dir)])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (_, ref_lp) = st.f32("log_probs").unwrap();
    let acc = std::fs::read_to_string(dyn_dir.join("accuracy.csv")).unwrap();
    for (t, line) in acc.lines().skip(1).enumerate() {
        let correct = (0..6)
            .filter(|&i| {
                let row = &ref_lp[(t * 6 + i) * 100..(t * 6 + i + 1) * 100];
                let arg = (0..100).fold(0, |b, k| if row[k] > row[b] { k } else { b });
                arg as i64 == y[i]
            })
            .count();
        let got: f64 = line.split(',').nth(1).unwrap().parse().unwrap();
        assert!((got - correct as f64 / 6.0).abs() < 1e-12, "t={t}: {line}");
    }

    // Wrong image size: exit 2 naming the file and the expected shape.
    let bad = d.path().join("bad.npy");
    write_npy(
        &bad,
        &NpyArray::new(vec![1, 3, 32, 32], NpyData::F32(vec![0.0; 3 * 32 * 32])).unwrap(),
    )
    .unwrap();
    let o = common::command()
        .args([
            "record",
            "--model",
            p(&model),
            "--weights",
            p(&fx),
            "--images",
            p(&bad),
            "--out",
            p(&d.path().join("b.npz")),
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad.npy") && err.contains("[N, 3, 64, 64]"),
        "{err}"
    );
    assert!(!d.path().join("b.npz").exists());

    // A batch whose forward pass cannot fit the memory (here VENTRAL_MAX_MEMORY = 100 MB,
    // about 4 images of BLT_net_64): refused before anything is written, naming the option
    // (`--batch-size` beyond the image count is one batch of all 6).
    let o = common::command()
        .env("VENTRAL_MAX_MEMORY", "100M")
        .args(["record", "--model", p(&model), "--weights", p(&fx)])
        .args(["--images", p(&images), "--batch-size", "1000"])
        .args(["--out", p(&d.path().join("big.npz"))])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--batch-size 1000: a forward pass of 6 images needs about")
            && err.contains("100.0 MiB available"),
        "{err}"
    );
    assert!(!d.path().join("big.npz").exists());
    // The same memory holds a batch of 2.
    let o = common::command()
        .env("VENTRAL_MAX_MEMORY", "100M")
        .args(["record", "--model", p(&model), "--weights", p(&fx)])
        .args(["--images", p(&images), "--batch-size", "2"])
        .args(["--out", p(&d.path().join("small.npz"))])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // Labels outside the model's classes: exit 2 naming the labels file and the index.
    let bad_y = d.path().join("y_bad.npy");
    let mut yb = y.clone();
    yb[1] = 1000;
    write_npy(
        &bad_y,
        &NpyArray::new(vec![yb.len()], NpyData::I64(yb)).unwrap(),
    )
    .unwrap();
    let o = common::command()
        .args(["record", "--model", p(&model), "--weights", p(&fx)])
        .args(["--images", p(&images), "--labels", p(&bad_y)])
        .args(["--out", p(&d.path().join("c1.npz"))])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("y_bad.npy") && err.contains("index 1"),
        "{err}"
    );

    // A NaN in the weights: exit 2 naming the weights file and the tensor (not "diverged").
    let nan_w = d.path().join("nan.safetensors");
    {
        use std::collections::BTreeMap;
        use ventral_core::safetensors::{TensorOut, write};
        let names: Vec<String> = st.names().map(str::to_string).collect();
        let mut f32s = BTreeMap::new();
        for n in &names {
            if let Ok((shape, mut data)) = st.f32(n) {
                if n == "v2.lateral.weight" {
                    data[5] = f32::NAN;
                }
                f32s.insert(n.clone(), (shape, data));
            }
        }
        let out: BTreeMap<String, TensorOut<'_>> = f32s
            .iter()
            .map(|(k, (s, v))| (k.clone(), TensorOut::F32(s, v)))
            .collect();
        write(&nan_w, &out, &BTreeMap::new()).unwrap();
    }
    let o = common::command()
        .args(["record", "--model", p(&model), "--weights", p(&nan_w)])
        .args(["--images", p(&images), "--out", p(&d.path().join("c2.npz"))])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("nan.safetensors") && err.contains("v2.lateral.weight") && err.contains("NaN"),
        "{err}"
    );

    // The native engine (the default on cpu) and burn record the same numbers, areas included
    // (pooled and unpooled), under the same keys.
    let rec = |engine: &str, pool: &str| {
        let out = d.path().join(format!("{engine}_{pool}.npz"));
        let o = common::command()
            .args([
                "record",
                "--model",
                p(&model),
                "--weights",
                p(&fx),
                "--images",
                p(&images),
                "--layers",
                "v1,v2,v4,it",
                "--pool",
                pool,
                "--engine",
                engine,
                "--batch-size",
                "4",
                "--out",
                p(&out),
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        NpzReader::open(&out).unwrap()
    };
    for pool in ["gap", "none"] {
        let (mut a, mut b) = (rec("native", pool), rec("burn", pool));
        if pool == "gap" {
            // An existing output is not replaced without --overwrite (and is left as it was).
            let out = d.path().join("native_gap.npz");
            let before = std::fs::read(&out).unwrap();
            let o = common::command()
                .args(["record", "--model", p(&model), "--weights", p(&fx)])
                .args(["--images", p(&images), "--out", p(&out)])
                .output()
                .unwrap();
            assert_eq!(o.status.code(), Some(2));
            assert!(String::from_utf8_lossy(&o.stderr).contains("--overwrite"));
            assert_eq!(std::fs::read(&out).unwrap(), before);
        }
        let names = a.names();
        assert_eq!(names, b.names());
        for k in ["v1", "v2", "v4", "it", "outputs_all", "representations_all"] {
            assert!(names.iter().any(|n| n == k), "{pool}: no {k} in {names:?}");
        }
        for k in &names {
            let (x, y) = (a.read(k).unwrap(), b.read(k).unwrap());
            assert_eq!(x.shape, y.shape, "{pool}: {k}");
            if let (Some(x), Some(y)) = (x.to_f32(), y.to_f32()) {
                let scale = y.iter().fold(1.0f32, |m, v| m.max(v.abs()));
                let e = x
                    .iter()
                    .zip(&y)
                    .map(|(p, q)| (p - q).abs())
                    .fold(0.0, f32::max);
                assert!(e <= 1e-4 * scale, "{pool}: {k} differs by {e}");
            }
        }
    }
    let o = common::command()
        .args([
            "record",
            "--model",
            p(&model),
            "--weights",
            p(&fx),
            "--images",
            p(&images),
            "--engine",
            "fast",
            "--out",
            p(&d.path().join("c.npz")),
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--engine `fast`"));
}

/// A checkpoint as the reference code saves them (`torch.save(net.state_dict(), '….pth')`,
/// reference names) goes straight into `record`: a small BLT written by PyTorch
/// (`scripts/make_pth_fixtures.py`: channels 2, 2, 4, 4, 8, 5 classes, 3 steps, additive,
/// LayerNorm) gives PyTorch's own log-probabilities and GAP representations for the same
/// input, read from the same `.pth` (`blt_small.expected.npz`: `torch.stack(net(x))`, and the
/// post-ReLU `gap_ln` output per step).
#[test]
fn record_reads_a_pytorch_checkpoint_and_gives_pytorchs_outputs() {
    let dir = ventral_core::fixtures::crate_dir(env!("CARGO_MANIFEST_DIR"))
        .join("../ventral-core/tests/fixtures/pth");
    let mut want = NpzReader::open(&dir.join("blt_small.expected.npz")).unwrap();
    let d = tempfile::tempdir().unwrap();
    let images = d.path().join("x.npy");
    write_npy(&images, &want.read("input").unwrap()).unwrap();
    let model = d.path().join("model.toml");
    let small = MODEL
        .replace(
            "num_classes = 100",
            "num_classes = 5\nchannels = [2, 2, 4, 4, 8]",
        )
        .replace("timesteps = 4", "timesteps = 3");
    std::fs::write(&model, small).unwrap();
    let out = d.path().join("acts.npz");
    let weights = dir.join("blt_small.pth");
    let o = record_weights(&model, &weights, &images, &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut z = NpzReader::open(&out).unwrap();
    for (ours, theirs, shape) in [
        ("outputs_all", "log_probs", vec![3, 3, 5]),
        ("representations_all", "representations", vec![3, 3, 8]),
    ] {
        let got = z.read(ours).unwrap();
        assert_eq!(got.shape, shape, "{ours}");
        let w = want.read(theirs).unwrap().to_f32().unwrap();
        let e = max_abs_diff(&got.to_f32().unwrap(), &w);
        assert!(e <= 1e-5, "{ours} differs from PyTorch's by {e}");
    }
    // A whole pickled model instead of a state dict: exit 2 naming the file and the way out.
    let whole = dir.join("whole_model.pth");
    let o = record_weights(&model, &whole, &images, &d.path().join("no.npz"));
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("whole_model.pth") && e.contains("state_dict()"),
        "{e}"
    );
    assert!(!d.path().join("no.npz").exists());
}

/// The rcnn-sat reference's own Keras weights (`scripts/make_keras_fixtures.py`: its
/// `bl_net.py` under Keras 2.15, narrowed to channels 4, 4, 8, 8, 8, 8, 8, 5 classes, 3 steps;
/// BatchNorm statistics drawn at random) go straight into `record`, in both HDF5 layouts
/// (`save_weights` and `save`): ventral gives Keras' softmax outputs (`model(x,
/// training=False)`) and `GlobalAvgPool_Time_t` representations for the same input; and so
/// for the feedforward B-D control (`b_net.py`'s `b_d_net`, narrowed the same way).
#[test]
fn record_reads_rcnn_sats_keras_weights_and_gives_keras_outputs() {
    let dir = ventral_core::fixtures::crate_dir(env!("CARGO_MANIFEST_DIR"))
        .join("../ventral-models/tests/fixtures/keras");
    let mut want = NpzReader::open(&dir.join("bl_small.expected.npz")).unwrap();
    let probs = want.read("probs").unwrap().to_f32().unwrap();
    let reps = want.read("representations").unwrap().to_f32().unwrap();
    let d = tempfile::tempdir().unwrap();
    let images = d.path().join("x.npy");
    write_npy(&images, &want.read("input").unwrap()).unwrap();
    let model = d.path().join("model.toml");
    std::fs::write(
        &model,
        "[model]\nkind = \"rcnn_sat\"\nvariant = \"bl\"\nimage_size = 64\nnum_classes = 5\n\
         timesteps = 3\ncumulative_readout = false\nchannels = [4, 4, 8, 8, 8, 8, 8]\n",
    )
    .unwrap();
    for file in ["bl_small.h5", "bl_small_model.h5"] {
        let out = d.path().join(format!("{file}.npz"));
        let o = record_weights(&model, &dir.join(file), &images, &out);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let mut z = NpzReader::open(&out).unwrap();
        let lp = z.read("outputs_all").unwrap();
        assert_eq!(lp.shape, vec![3, 3, 5]);
        let got: Vec<f32> = lp.to_f32().unwrap().iter().map(|v| v.exp()).collect();
        let e = max_abs_diff(&got, &probs);
        assert!(e <= 1e-6, "{file}: probabilities differ from Keras' by {e}");
        let e = max_abs_diff(
            &z.read("representations_all").unwrap().to_f32().unwrap(),
            &reps,
        );
        assert!(
            e <= 1e-5,
            "{file}: representations differ from Keras' by {e}"
        );
    }
    // The feedforward B-D control (14 layers, `Conv_Layer_{n}`, one BatchNorm per layer).
    let mut want = NpzReader::open(&dir.join("bd_small.expected.npz")).unwrap();
    let bd = d.path().join("bd.toml");
    std::fs::write(
        &bd,
        "[model]\nkind = \"rcnn_sat\"\nvariant = \"b_d\"\nimage_size = 64\nnum_classes = 5\n\
         timesteps = 1\nchannels = [4, 4, 4, 4, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8]\n",
    )
    .unwrap();
    let out = d.path().join("bd.npz");
    let o = record_weights(&bd, &dir.join("bd_small.h5"), &images, &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut z = NpzReader::open(&out).unwrap();
    let got: Vec<f32> = z
        .read("outputs_all")
        .unwrap()
        .to_f32()
        .unwrap()
        .iter()
        .map(|v| v.exp())
        .collect();
    let e = max_abs_diff(&got, &want.read("probs").unwrap().to_f32().unwrap());
    assert!(e <= 1e-6, "B-D: probabilities differ from Keras' by {e}");
    let e = max_abs_diff(
        &z.read("representations_all").unwrap().to_f32().unwrap(),
        &want.read("representations").unwrap().to_f32().unwrap(),
    );
    assert!(e <= 1e-5, "B-D: representations differ from Keras' by {e}");

    // Keras weights for a BLT, or for a BL of other widths: exit 2 naming the file and why.
    let blt = d.path().join("blt.toml");
    std::fs::write(&blt, MODEL).unwrap();
    let wide = d.path().join("wide.toml");
    std::fs::write(
        &wide,
        std::fs::read_to_string(&model)
            .unwrap()
            .replace("[4, 4, 8, 8, 8, 8, 8]", "[4, 4, 8, 8, 8, 8, 16]"),
    )
    .unwrap();
    for (m, says) in [
        (&blt, "rcnn-sat networks"),
        (&wide, "layers.6.bottom_up.weight"),
    ] {
        let no = d.path().join("no.npz");
        let o = record_weights(m, &dir.join("bl_small.h5"), &images, &no);
        assert_eq!(o.status.code(), Some(2));
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(e.contains("bl_small.h5") && e.contains(says), "{e}");
        assert!(!no.exists());
    }
}

/// The largest elementwise difference of two arrays of the same length.
fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max)
}

/// `ventral record --model M --weights W --images X --out OUT`.
fn record_weights(model: &Path, weights: &Path, images: &Path, out: &Path) -> std::process::Output {
    common::command()
        .args(["record", "--model", p(model), "--weights", p(weights)])
        .args(["--images", p(images), "--out", p(out)])
        .output()
        .unwrap()
}

fn p(x: &Path) -> &str {
    x.to_str().unwrap()
}
