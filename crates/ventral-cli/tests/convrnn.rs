//! ConvRNNs through the binary: a CPU-sized reciprocal-gated ConvRNN trains from
//! `configs/convrnn_cpu.toml` (its steps in two data-parallel shards), a run killed with
//! SIGKILL and resumed ends with byte-identical weights and metrics, `record --run` writes its
//! nodes per step (in shards or whole, the same to round-off), `pareto` reads the runs, and
//! `size` reads a PyTorchTNN graph JSON as it is.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

mod common;
use common::s;

fn bin() -> Command {
    common::command()
}

fn root() -> PathBuf {
    ventral_core::fixtures::crate_dir(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn train_cmd(data: &Path, out: &Path, resume: bool) -> Command {
    let mut c = bin();
    c.args([
        "train",
        s(&root().join("configs/convrnn_cpu.toml")),
        "--set",
        &format!("data.path={}", data.display()),
        "--set",
        "train.epochs=2",
        // Two data-parallel shards of 16 per step (`ventral_models::shards`).
        "--set",
        "train.batch_size=32",
        "--set",
        "train.checkpoint_steps=3",
        "--set",
        "model.num_timesteps=7",
        "--set",
        "model.movie.image_off=5",
        // Read out (and trained) at the max-confidence decoder: decoder.csv is written.
        "--set",
        "model.decoder.kind=\"max_conf\"",
        "--out",
        s(out),
    ]);
    if resume {
        c.arg("--resume");
    }
    c
}

#[test]
fn convrnn_trains_resumes_byte_identically_records_and_sizes() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("stim");
    let o = bin()
        .args([
            "stimuli",
            "--out",
            s(&data),
            "--num-images",
            "120",
            "--seed",
            "3",
            "--no-stimulus-set",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let reference = d.path().join("ref");
    let o = train_cmd(&data, &reference, false).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    // The max_conf decoder reads from step 0, but the image reaches the readout of this
    // 6-node chain at step 5: said in a note (convrnns starts decoders at the layer count).
    assert!(
        err.contains("note: decoder.start = 0 lets the max_conf decoder choose steps 0–4")
            && err.contains("decoder.start ≥ 5"),
        "{err}"
    );
    // The saved configuration is the resolved graph (self-contained), not the preset name.
    let saved = std::fs::read_to_string(reference.join("config.toml")).unwrap();
    assert!(saved.contains("kind = \"convrnn\"") && saved.contains("ReciprocalGatedCell"));
    assert!(!saved.contains("preset"));

    // Killed mid-training and resumed: byte-identical.
    let files = ["weights.safetensors", "metrics.csv", "decoder.csv"];
    for ms in [700u64, 2000] {
        let out = d.path().join(format!("killed{ms}"));
        let mut child = train_cmd(&data, &out, false).spawn().unwrap();
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(ms) && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        child.wait().unwrap();
        let o = train_cmd(&data, &out, out.exists()).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        for f in files {
            assert!(
                std::fs::read(out.join(f)).unwrap() == std::fs::read(reference.join(f)).unwrap(),
                "kill at {ms} ms: resumed {f} differs"
            );
        }
    }

    // `record --run` on the trained run with `extra` arguments, into `out`.
    let record = |extra: &[&str], out: &Path| {
        let mut args = vec!["record", "--run", s(&reference), "--data", s(&data)];
        args.extend_from_slice(extra);
        args.extend(["--out", s(out)]);
        let o = bin().args(&args).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        ventral_core::npy::NpzReader::open(out).unwrap()
    };

    // Every node per step, by name.
    let mut z = record(&["--layers", "conv3,conv5"], &d.path().join("rec.npz"));
    let conv3 = z.read("conv3").unwrap().shape;
    assert_eq!(conv3[0], 7, "one row per step");
    assert_eq!(conv3[2], 32, "conv3's channels (GAP)");
    let w = z.read("readout_weight").unwrap().shape;
    assert_eq!(w, vec![8, 64], "the FC readout on the representation");

    // Recorded in data-parallel shards (batch 64: four of 16) and whole (batch 16): the same
    // per-image values to float32 round-off (the convolutions' sums run over other blocks).
    let rec_on = |batch: &str, out: &Path| {
        let extra = [
            "--split",
            "train",
            "--layers",
            "conv5",
            "--batch-size",
            batch,
        ];
        let mut z = record(&extra, out);
        ["outputs_all", "conv5"].map(|k| {
            let a = z.read(k).unwrap();
            assert!(
                a.shape[1] >= 32,
                "{k}: {:?}: too few images for shards",
                a.shape
            );
            a.to_f32().unwrap()
        })
    };
    let sharded = rec_on("64", &d.path().join("sharded.npz"));
    let whole = rec_on("16", &d.path().join("whole.npz"));
    for (a, b) in sharded.iter().zip(&whole) {
        let scale = b.iter().fold(1e-30f32, |m, v| m.max(v.abs()));
        let diff = a
            .iter()
            .zip(b)
            .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(
            diff / scale <= 1e-5,
            "sharded recording differs by {:e}",
            diff / scale
        );
    }

    // Pareto over the runs.
    let par = d.path().join("pareto");
    let o = bin()
        .args([
            "pareto",
            s(&reference),
            s(&d.path().join("killed700")),
            "--out",
            s(&par),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let csv = std::fs::read_to_string(par.join("pareto.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    // Scored at the decoder: the last epoch's validation accuracy of decoder.csv.
    let dec = std::fs::read_to_string(reference.join("decoder.csv")).unwrap();
    assert!(
        dec.starts_with("epoch,split,decoder,loss,accuracy\n"),
        "{dec}"
    );
    assert_eq!(dec.lines().count(), 3, "one val row per epoch: {dec}");
    let last_acc = dec.lines().last().unwrap().rsplit(',').next().unwrap();
    let row = csv.lines().nth(1).unwrap();
    assert!(row.ends_with(",decoder MaxConf"), "{row}");
    assert_eq!(
        row.split(',').nth(5).unwrap().parse::<f64>().unwrap(),
        last_acc.parse::<f64>().unwrap(),
        "{row} vs {dec}"
    );
    assert!(
        // 358 632 of the network + the max_conf decoder's trainable temperature β.
        csv.lines().nth(1).unwrap().contains(",358633,6856,"),
        "{csv}"
    );

    // A PyTorchTNN graph JSON, read as it is.
    let json = root().join("crates/ventral-models/tests/fixtures/convrnn/rgc_shallow.json");
    let o = bin().args(["size", s(&json), "--json"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["params_total"], 87487, "PyTorchTNN's own parameter count");
    // The presentation: when the image first reaches the readout. This parity graph runs 5
    // steps on a chain of 6 nodes, so its readout never sees the image (its areas do: the
    // parity tests compare every node) — said, not refused.
    assert!(v["image_reaches_output_at_step"].is_null(), "{v}");
    let o = bin().args(["size", s(&json)]).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("warning: the image reaches output_node 'imnetds' at step 5")
            && text.contains("num_timesteps ≥ 6"),
        "{text}"
    );
    let o = bin()
        .args(["size", "rgc_intermediate_cpu"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("the image reaches output node 'imnetds' at step 10 of 17"),
        "{text}"
    );
}

/// The convrnns zoo's sizes against the original code's variables: every preset's parameter
/// count equals the trainable variables its original TensorFlow graph creates — what the
/// published checkpoints hold — listed by `scripts/convrnns_tf_variables.py` (the original
/// neuroailab/convrnns code built on TensorFlow 2.15's compat.v1 behind a tf.contrib shim):
///   trainable = {v.op.name for v in tf.trainable_variables()}
///   out[name] = [[v.op.name, v.shape.as_list(), v.op.name in trainable] for v in tf.global_variables()]
/// (The untrainable `memory_decay` scalars of the non-cell nodes are 0: `state * 0 + input`.)
/// The reciprocal gated cells included: their convolutions' biases and output residual as
/// convrnns has them (`RgcSpec::tensorflow`; docs/convrnn.md, "Against the original
/// checkpoints"). The decoder variants (`_tmaxconf`, `_dthresh`) are not presets of their own.
#[test]
fn zoo_sizes_equal_the_original_graphs_trainable_variables() {
    let fixture = root().join("crates/ventral-models/tests/fixtures/convrnns_tf_variables.json");
    let tf: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&fixture).unwrap()).unwrap();
    let o = bin().args(["models", "--json"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let models: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let ours = |name: &str| {
        models
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name)
            .unwrap_or_else(|| panic!("no preset {name}"))["parameters"]
            .as_u64()
            .unwrap()
    };
    let mut checked = 0;
    for (name, vars) in tf.as_object().unwrap() {
        if name.contains("tmaxconf") || name.contains("dthresh") {
            continue;
        }
        let trainable: u64 = vars
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| v[2] == true)
            .map(|v| {
                v[1].as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d.as_u64().unwrap())
                    .product::<u64>()
            })
            .sum();
        assert_eq!(ours(name), trainable, "{name}");
        checked += 1;
    }
    // Seven cells × two depths, and ugrnn_intermediate_t30.
    assert_eq!(checked, 15);
    // `size --params` lists what the total counts.
    let o = bin()
        .args(["size", "rgc_shallow", "--params", "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let listed: u64 = v["params"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["values"].as_u64().unwrap())
        .sum();
    assert_eq!(listed, v["params_total"].as_u64().unwrap());
    assert_eq!(listed, ours("rgc_shallow"));
    // The median cell as convrnns has it: no output-residual convolution at equal widths
    // (conv4: 128 → 128), a bias-free projection where they change (conv6: 128 → 256), one
    // bias per separable convolution.
    let o = bin()
        .args(["size", "rgc_intermediate", "--params", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> = v["params"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("conv4._recurrent_cell.res2out"))
    );
    assert!(names.contains(&"conv6._recurrent_cell.res2out_conv.conv.weight"));
    assert!(!names.iter().any(|n| n.contains("res2out_conv.conv.bias")));
    assert!(!names.iter().any(|n| n.contains("depth_wise.bias")));
    assert!(names.contains(&"conv6._recurrent_cell.out_tau_conv.point_wise.bias"));
}

/// A real TensorFlow checkpoint of the original convrnns code through `ventral record`:
/// `scripts/convrnns_tf_forward.py small` builds `simplernn_shallow` scaled down (channels ÷ 16,
/// 10 classes, 128 px) with neuroailab/convrnns' `model_func`, sets its variables to the
/// deterministic values of `tests/convrnns_checkpoint.rs` (ventral-models), saves them with
/// `tf.compat.v1.train.Saver` (`fixtures/convrnns_checkpoint/model.ckpt.*`) and keeps its
/// readout at every step (`logits.safetensors`):
/// ```python
/// v1.train.Saver().save(s, os.path.join(dst, "model.ckpt"), write_meta_graph=False)
/// vals = s.run({f"logits.{t}": o for t, o in enumerate(G.node["imnetds"]["outputs"])}, {inp: x})
/// ```
/// ventral reads the same JSON (`graph = "simplernn_shallow.json"`) and the checkpoint
/// (TensorFlow's names mapped onto its own, TensorFlow's layer-norm ε) and records
/// log-probabilities equal to the log-softmax of the original's logits at every step.
#[test]
fn record_runs_an_original_convrnns_tensorflow_checkpoint() {
    use ventral_core::npy::{NpyArray, NpyData, NpzReader, write_npy};
    use ventral_core::safetensors::SafeTensors;
    let fx = root().join("crates/ventral-cli/tests/fixtures/convrnns_checkpoint");
    let gold = SafeTensors::read(&fx.join("logits.safetensors")).unwrap();
    let shape: Vec<usize> = serde_json::from_str(&gold.metadata()["input_shape"]).unwrap();
    let [b, h, w, c] = shape[..] else { panic!() };
    // The script's input (`2 u_k` of the name "input", NHWC), in NCHW.
    let x = ventral_core::fixtures::convrnns_input_nchw(b, h, w, c);
    let d = tempfile::tempdir().unwrap();
    let images = d.path().join("x.npy");
    write_npy(
        &images,
        &NpyArray::new(vec![b, c, h, w], NpyData::F32(x)).unwrap(),
    )
    .unwrap();
    let model = d.path().join("model.toml");
    std::fs::write(
        &model,
        format!(
            "[model]\ngraph = \"{}\"\n",
            fx.join("simplernn_shallow.json").display()
        ),
    )
    .unwrap();
    let out = d.path().join("rec.npz");
    let ckpt = fx.join("model.ckpt");
    let o = bin()
        .args(["record", "--model", s(&model), "--weights", s(&ckpt)])
        .args(["--images", s(&images), "--out", s(&out)])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut z = NpzReader::open(&out).unwrap();
    let a = z.read("outputs_all").unwrap();
    let [steps, n, k] = a.shape[..] else {
        panic!("{:?}", a.shape)
    };
    assert_eq!((steps, n, k), (16, b, 10));
    let ours = a.to_f32().unwrap();
    let mut worst = 0.0f64;
    for t in 0..steps {
        let (_, logits) = gold.f32(&format!("logits.{t}")).unwrap();
        for i in 0..n {
            let l = &logits[i * k..(i + 1) * k];
            let m = l.iter().fold(f32::MIN, |m, v| m.max(*v)) as f64;
            let lse = m + l.iter().map(|v| (*v as f64 - m).exp()).sum::<f64>().ln();
            for j in 0..k {
                let theirs = l[j] as f64 - lse;
                worst = worst.max((ours[(t * n + i) * k + j] as f64 - theirs).abs());
            }
        }
    }
    assert!(
        worst < 1e-4,
        "log-probabilities differ from the original's by {worst:.3e}"
    );
    assert!(z.read("decoded").is_err(), "no decoder, no `decoded`");

    // With a temporal decoder (max_conf over steps 6 …, as the zoo's `_tmaxconf` over 11 …;
    // its β stays 1: this checkpoint has none), `decoded` [N, K] holds the log-probabilities
    // of the most confident step.
    let with_decoder = d.path().join("decoder.toml");
    std::fs::write(
        &with_decoder,
        format!(
            "[model]\ngraph = \"{}\"\ndecoder = {{ kind = \"max_conf\", start = 6 }}\n",
            fx.join("simplernn_shallow.json").display()
        ),
    )
    .unwrap();
    let out2 = d.path().join("rec2.npz");
    let o = bin()
        .args(["record", "--model", s(&with_decoder), "--weights", s(&ckpt)])
        .args(["--images", s(&images), "--out", s(&out2)])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut z2 = NpzReader::open(&out2).unwrap();
    let dec = z2.read("decoded").unwrap();
    assert_eq!(dec.shape, vec![n, k]);
    let dec = dec.to_f32().unwrap();
    let steps_lp = z2.read("outputs_all").unwrap().to_f32().unwrap();
    for i in 0..n {
        let conf = |t: usize| {
            (0..k)
                .map(|j| steps_lp[(t * n + i) * k + j])
                .fold(f32::MIN, f32::max)
        };
        let best = (6..steps).fold(6, |b, t| if conf(t) > conf(b) { t } else { b });
        for j in 0..k {
            let (a, e) = (dec[i * k + j], steps_lp[(best * n + i) * k + j]);
            assert!(
                (a - e).abs() < 1e-5,
                "image {i}: decoded {a} vs step {best} {e}"
            );
        }
    }

    // Another model's checkpoint is refused, naming the file and what does not fit.
    let o = bin()
        .args(["record", "--model", "gru_shallow", "--weights", s(&ckpt)])
        .args(["--images", s(&images), "--out", s(&d.path().join("x.npz"))])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("model.ckpt") && err.contains("does not fit"),
        "{err}"
    );
    assert!(!d.path().join("x.npz").exists());
}

/// A graph whose readout the image never reaches within the run (PyTorchTNN's
/// `test_rgc_shallow.json` parity graph: 5 steps on a chain of 6 nodes) is still recorded —
/// its areas see the image — with a warning that its logits do not depend on the image.
#[test]
fn record_warns_when_the_readout_never_sees_the_image() {
    use ventral_core::npy::{NpyArray, NpyData, write_npy};
    let fx = root().join("crates/ventral-models/tests/fixtures/convrnn");
    let graph = fx.join("rgc_shallow.json");
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&graph).unwrap()).unwrap();
    let shape: Vec<usize> = serde_json::from_value(cfg["input_shape"].clone()).unwrap();
    let [c, h, w] = shape[..] else { panic!() };
    let d = tempfile::tempdir().unwrap();
    let images = d.path().join("x.npy");
    let x: Vec<f32> = (0..2 * c * h * w).map(|i| (i % 7) as f32 * 0.1).collect();
    write_npy(
        &images,
        &NpyArray::new(vec![2, c, h, w], NpyData::F32(x)).unwrap(),
    )
    .unwrap();
    let out = d.path().join("rec.npz");
    let o = bin()
        .args(["record", "--model", s(&graph)])
        .args(["--weights", s(&fx.join("rgc_shallow.weights.safetensors"))])
        .args(["--images", s(&images), "--out", s(&out)])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("warning:")
            && err.contains("reaches output_node 'imnetds' at step 5")
            && err.contains("its logits do not depend on the image"),
        "{err}"
    );
    assert!(out.exists());
}

/// `ventral train` refuses a ConvRNN whose readout the image never reaches within the run
/// (`rgc_intermediate_cpu`'s 11-node chain cut to 10 steps), naming the file, the step and the
/// steps needed, before writing anything.
#[test]
fn train_refuses_a_readout_that_never_sees_the_image() {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("short.toml");
    std::fs::write(
        &cfg,
        "[model]\npreset = \"rgc_intermediate_cpu\"\nnum_timesteps = 10\n\n[data]\npath = \"nowhere\"\n\n[train]\nepochs = 1\nbatch_size = 4\nseed = 0\n",
    )
    .unwrap();
    let out = d.path().join("run");
    let o = bin()
        .args(["train", s(&cfg), "--out", s(&out)])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("short.toml")
            && err.contains("reaches output_node 'imnetds' at step 10")
            && err.contains("num_timesteps ≥ 11"),
        "{err}"
    );
    assert!(!out.exists());
}
