//! The `ventral` binary end to end: generate, inspect (text and JSON), verify, pack, and exit
//! code 2 with a message naming the file on bad input.

#![allow(clippy::unwrap_used)]

mod common;

use common::{s, ventral};

fn fixtures() -> std::path::PathBuf {
    ventral_core::fixtures::crate_dir(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/data")
}

#[test]
fn stimuli_inspect_json_and_verify() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("stim");
    let o = ventral(&[
        "stimuli",
        "--out",
        s(&out),
        "--num-images",
        "60",
        "--image-size",
        "32",
        "--seed",
        "5",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("generated 60 images") && text.contains("train: 48 images"),
        "{text}"
    );

    let o = ventral(&["inspect", s(&out.join("train")), "--json", "--verify"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["num_images"], 48);
    assert_eq!(v["height"], 32);
    assert_eq!(v["width"], 32);
    assert_eq!(v["channels"], 3);
    assert_eq!(v["num_classes"], 8);
    assert_eq!(v["class_names"][4], "faces");
    assert_eq!(v["blake3"].as_str().unwrap().len(), 64);
    assert_eq!(v["verified"], true);

    // The root: one object with totals and the splits.
    let o = ventral(&["inspect", s(&out), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["num_images"], 60);
    assert_eq!(v["splits"].as_array().unwrap().len(), 3);

    // Contact sheets: into a directory (one per split), or to a file whose parents are made.
    let sheets = d.path().join("sheets");
    std::fs::create_dir_all(&sheets).unwrap();
    let o = ventral(&["inspect", s(&out), "--contact-sheet", s(&sheets)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for split in ["train", "val", "test"] {
        assert!(sheets.join(format!("{split}.png")).is_file(), "{split}");
    }
    let deep = d.path().join("a/b/sheet.png");
    let o = ventral(&["inspect", s(&out.join("val")), "--contact-sheet", s(&deep)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(deep.is_file());
    // Each row is labelled: dark text pixels in the white label column left of the images.
    let img = image::open(&deep).unwrap().to_rgb8();
    let dark_in_labels = (0..img.height())
        .flat_map(|y| (0..40.min(img.width())).map(move |x| (x, y)))
        .filter(|&(x, y)| img.get_pixel(x, y).0.iter().all(|&c| c < 80))
        .count();
    assert!(
        dark_in_labels > 50,
        "no class labels drawn ({dark_in_labels} dark pixels)"
    );

    // Existing output is refused and left intact.
    let o = ventral(&["stimuli", "--out", s(&out), "--num-images", "60"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("already exists"));
    assert!(out.join("train/manifest.json").exists());

    // Corrupt one byte: --verify fails with exit 2 naming the manifest.
    let img = out.join("train/images.npy");
    let mut b = std::fs::read(&img).unwrap();
    let k = b.len() - 100;
    b[k] = b[k].wrapping_add(1);
    std::fs::write(&img, b).unwrap();
    let o = ventral(&["inspect", s(&out.join("train")), "--verify"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("manifest.json") && err.contains("hash mismatch"),
        "{err}"
    );
}

#[test]
fn pack_every_format_from_the_cli() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("h5");
    let o = ventral(&[
        "pack",
        "--format",
        "hdf5",
        s(&fixtures().join("miniecoset_8px.h5")),
        "--out",
        s(&out),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("testplus: 6 images"));
    let o = ventral(&[
        "pack",
        "--format",
        "npz",
        s(&fixtures().join("nhwc_f32.npz")),
        "--out",
        s(&d.path().join("npz")),
        "--images-key",
        "x",
        "--labels-key",
        "y",
        "--image-size",
        "12",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = ventral(&["inspect", s(&d.path().join("npz/train")), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["height"], 12);
    // A split name is one directory inside --out: `--split ../escaped` wrote the split beside
    // it, and `..` or a hidden name are refused too, before anything is made.
    let inner = d.path().join("inner");
    std::fs::create_dir(&inner).unwrap();
    let before = std::fs::read_dir(d.path()).unwrap().count();
    for bad in ["../escaped", "..", ".hidden", "a/b"] {
        let err = common::fails(&[
            "pack",
            "--format",
            "npz",
            s(&fixtures().join("nhwc_f32.npz")),
            "--out",
            s(&inner.join("root")),
            "--images-key",
            "x",
            "--labels-key",
            "y",
            "--split",
            bad,
        ]);
        assert!(
            err.contains("split name") && err.contains(bad),
            "{bad}: {err}"
        );
        assert_eq!(std::fs::read_dir(&inner).unwrap().count(), 0, "{bad}");
        assert_eq!(
            std::fs::read_dir(d.path()).unwrap().count(),
            before,
            "{bad}"
        );
    }
}

#[test]
fn bad_input_exits_2_and_names_the_file() {
    let d = tempfile::tempdir().unwrap();
    let bad = d.path().join("broken.h5");
    std::fs::write(&bad, b"\x89HDF\r\n\x1a\nthis is not really hdf5").unwrap();
    let out = d.path().join("out");
    let o = ventral(&["pack", "--format", "hdf5", s(&bad), "--out", s(&out)]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("broken.h5"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!out.join("train").exists());

    let o = ventral(&[
        "pack",
        "--format",
        "cifar",
        s(&d.path().join("missing.bin")),
        "--out",
        s(&out),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing.bin"));

    let o = ventral(&["inspect", s(d.path())]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a packed dataset"));
}

/// A reader that closes the pipe early (`ventral models | head -1`) ends the command quietly
/// with exit 0, and a GPU device in a build without its feature says so (exit 2).
#[test]
fn closed_stdout_and_missing_gpu_feature() {
    use std::io::Read;
    use std::process::Stdio;
    for _ in 0..3 {
        let mut child = common::command()
            .args(["models"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Close the pipe's read end at once: the listing is written into a closed pipe.
        drop(child.stdout.take());
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let d = tempfile::tempdir().unwrap();
    // An error that prints its cause is not followed by the same cause again.
    let o = common::command()
        .args(["inspect", d.path().join("missing").to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.matches("No such file").count(), 1, "{err}");
    let cfg = d.path().join("m.toml");
    std::fs::write(&cfg, "[model]\nkind = \"blt\"\n").unwrap();
    for dev in ["cuda:0", "wgpu"] {
        let o = common::command()
            .args([
                "record",
                "--model",
                cfg.to_str().unwrap(),
                "--weights",
                "w.safetensors",
            ])
            .args(["--images", "x.npy", "--out", "o.npz", "--device", dev])
            .current_dir(d.path())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{dev}: {err}");
        assert!(err.contains("built without the"), "{dev}: {err}");
    }
}

#[test]
fn quickstart_does_not_reuse_results_of_other_settings() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("qs");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(
        out.join("quickstart.json"),
        r#"{"num_images": 8000, "epochs": 3, "seed": 0, "config": "x"}"#,
    )
    .unwrap();
    let o = common::command()
        .args(["quickstart", "--epochs", "5", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--epochs 3") && err.contains("--overwrite"),
        "{err}"
    );
    // A non-empty directory of unknown settings is not reused either.
    std::fs::remove_file(out.join("quickstart.json")).unwrap();
    std::fs::write(out.join("something"), b"x").unwrap();
    let o = common::command()
        .args(["quickstart", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("unknown settings"), "{err}");
    assert!(!out.join("stimuli").exists());
}

#[test]
fn two_writers_into_one_output_one_fails_cleanly() {
    // Two `stimuli` runs into the same --out at once: one writes it, the other stops at once
    // naming the holder (or, if the first already finished, finds it existing) — exit 2, and
    // the dataset is whole (it used to be replaced silently, or mixed).
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("stim");
    let spawn = || {
        common::command()
            .args(["stimuli", "--num-images", "600", "--seed", "1", "--out"])
            .arg(&out)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let outs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
    let ok: Vec<&std::process::Output> = outs.iter().filter(|o| o.status.success()).collect();
    assert_eq!(ok.len(), 1, "exactly one writer succeeds");
    let loser = outs.iter().find(|o| !o.status.success()).unwrap();
    assert_eq!(loser.status.code(), Some(2));
    let err = String::from_utf8_lossy(&loser.stderr);
    assert!(
        err.contains("being written by another process") || err.contains("already exists"),
        "{err}"
    );
    let o = ventral(&["inspect", s(&out), "--verify"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!d.path().join(".stim.lock").exists());
}

/// `ventral bench --profile` on a burn-built model (the CPU-sized median-cell ConvRNN): one
/// unsharded inference pass timed per node and kind of operation, every convolution with its
/// shape and operation count; each node's step is its operations plus its "other" time, and
/// the nodes' steps fit in the pass.
#[test]
fn bench_profiles_a_convrnn_forward_pass() {
    let o = ventral(&[
        "bench",
        "--models",
        "rgc_intermediate_cpu",
        "--batch",
        "2",
        "--iters",
        "1",
        "--warmup",
        "0",
        "--profile",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let p = &v["rgc_intermediate_cpu"]["forward_profile"];
    let pass = p["pass_s"].as_f64().unwrap();
    let rows = p["rows"].as_array().unwrap();
    let nodes: Vec<&str> = v["rgc_intermediate_cpu"]["config"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    let kind = |r: &serde_json::Value| r["kind"].as_str().unwrap().to_string();
    let secs = |r: &serde_json::Value| r["seconds"].as_f64().unwrap();
    let mut steps = 0.0;
    for r in rows {
        let node = r["node"].as_str().unwrap();
        assert!(nodes.contains(&node), "{r} names no node of {nodes:?}");
        if kind(r).starts_with("conv") {
            assert!(r["flops"].as_f64().unwrap() > 0.0, "{r}");
            assert!(r["detail"].as_str().unwrap().contains(" on "), "{r}");
        }
        if kind(r) == "node step" {
            steps += secs(r);
            let inside: f64 = rows
                .iter()
                .filter(|q| q["node"] == r["node"] && kind(q) != "node step")
                .map(secs)
                .sum();
            assert!(
                (inside - secs(r)).abs() <= 1e-6 + 1e-9 * secs(r),
                "{r}: {inside}"
            );
        }
    }
    assert!(steps > 0.0 && steps <= pass, "{steps} of {pass}");
    // The median cell's depthwise convolutions are timed with their group count.
    assert!(
        rows.iter().any(
            |r| kind(r).starts_with("conv") && r["detail"].as_str().unwrap().contains("groups")
        ),
        "{p}"
    );
}

/// `ventral bench`: the JSON names the device and the engine `auto` resolved to; the burn
/// engine on cpu times a step; a GPU device in a build without its feature, the native engine
/// off the CPU and `--winograd` off the native engine are refused with exit 2.
#[test]
fn bench_device_and_engine() {
    let run = |extra: &[&str]| {
        let mut args = vec![
            "bench",
            "--models",
            "tiny",
            "--timesteps",
            "2",
            "--batch",
            "2",
            "--iters",
            "1",
            "--warmup",
            "0",
            "--json",
        ];
        args.extend_from_slice(extra);
        ventral(&args)
    };
    for (extra, engine) in [(&[][..], "native"), (&["--engine", "burn"][..], "burn")] {
        let o = run(extra);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["device"], "cpu");
        assert_eq!(v["engine"], engine);
        assert_eq!(v["tiny"]["engine"], engine);
        assert!(v["tiny"]["train_images_per_s"].as_f64().unwrap() > 0.0);
        assert!(v["tiny"]["infer_images_per_s"].as_f64().unwrap() > 0.0);
        assert!(v["peak"]["sgemm_1536_gflops"].as_f64().unwrap() > 0.0);
        // The peak that bounds the run: the FMA peak for the native engine in float32 (where
        // the CPU has one), none for burn's engine.
        let fma = v["peak"]["fma_gflops"].as_f64();
        if engine == "native" && fma.is_some() {
            assert_eq!(v["tiny"]["peak_gflops"].as_f64(), fma);
            assert_eq!(v["tiny"]["peak_kind"], "FMA peak");
            // Measured at the start and again after the model (the highest kept).
            assert!(v["peak"]["rounds"].as_u64().unwrap() >= 2, "{}", v["peak"]);
        } else {
            assert!(v["tiny"]["peak_gflops"].is_null(), "{}", v["tiny"]);
        }
        // burn's path is checked against the native engine on the same weights and images.
        let c = &v["tiny"]["vs_native"];
        if engine == "burn" {
            assert_eq!(c["images"], 2, "{c}");
            assert!(c["log_probs_max_abs_diff"].as_f64().unwrap() <= 1e-4, "{c}");
            assert_eq!(v["tiny"]["precision"], "f32");
            assert!(c["grad_max_rel_l2"].as_f64().unwrap() <= 1.5e-3, "{c}");
            // Every parameter, the lateral, top-down and GAP-lateral weights included.
            let names = c["grad_rel_l2"].as_object().unwrap();
            assert_eq!(names.len(), 23, "{c}");
            assert!(names.contains_key("v2.top_down.weight"), "{c}");
            assert_eq!(c["within_parity_bounds"], true, "{c}");
            assert_eq!(c["within_tf32_bounds"], true, "{c}");
        } else {
            assert!(c.is_null(), "{c}");
        }
    }
    // bf16 on the native engine (AMX tiles or AVX512-BF16 dot products where the CPU has
    // them, else the rounded operands through the float32 kernels): it runs and says which.
    let o = run(&["--precision", "bf16"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["tiny"]["engine"], "native");
    assert_eq!(v["tiny"]["precision"], "bf16");
    assert!(v["tiny"]["bf16_amx"].is_boolean());
    let unit = ventral_engine::bf16::bf16_unit().map(|u| u.name());
    assert_eq!(v["tiny"]["bf16_unit"].as_str(), unit);
    // On dot products the bf16 passes are bounded by the measured dot-product peak; on AMX
    // and the rounded float32 kernels no peak is given.
    let dot = v["peak"]["bf16_dot_gflops"].as_f64();
    assert!(v["peak"].get("bf16_dot_gflops").is_some(), "{}", v["peak"]);
    if unit == Some("avx512bf16") {
        assert!(dot.unwrap() > 0.0);
        assert_eq!(v["tiny"]["peak_gflops"].as_f64(), dot);
        assert_eq!(v["tiny"]["peak_kind"], "bf16 dot-product peak");
    } else {
        assert!(v["tiny"]["peak_gflops"].is_null(), "{}", v["tiny"]);
    }
    assert!(v["tiny"]["train_images_per_s"].as_f64().unwrap() > 0.0);
    // `--profile`: the convolutions the network runs, with their calls per forward pass (the
    // tiny BLT keeps the reference's quirk: V1's lateral and top-down never run, and are not
    // listed), each one's time per inference pass and per training step.
    let o = run(&["--profile"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = v["tiny"]["profile"].as_array().unwrap();
    let listed: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{} {} {}",
                r["layer"].as_str().unwrap(),
                r["conv"].as_str().unwrap(),
                r["calls_per_pass"]
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            "v1 bottom_up 1",
            "v2 bottom_up 1",
            "v2 lateral 1",
            "v2 top_down 1",
            "v4 bottom_up 2",
            "v4 lateral 1",
            "v4 top_down 1",
            "it bottom_up 2",
            "it lateral 1"
        ],
        "{listed:?}"
    );
    for r in rows {
        let (infer, train) = (
            r["forward_s_per_pass"].as_f64().unwrap(),
            r["train_s_per_step"].as_f64().unwrap(),
        );
        assert!(infer > 0.0 && train > infer, "{r}");
    }
    // bf16 mixed precision on burn's engine: the timed passes in bf16, the checks in float32.
    let o = run(&["--engine", "burn", "--precision", "bf16"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["tiny"]["precision"], "bf16");
    assert!(v["tiny"]["train_images_per_s"].as_f64().unwrap() > 0.0);
    assert_eq!(v["tiny"]["vs_native"]["within_parity_bounds"], true);
    for (extra, says) in [
        (
            &["--device", "cuda:0"][..],
            "built without the `cuda` feature",
        ),
        (
            &["--device", "wgpu", "--engine", "native"][..],
            "--engine native runs on cpu only",
        ),
        (
            &["--engine", "burn", "--winograd"][..],
            "--winograd times the native engine",
        ),
        (
            &["--engine", "fast"][..],
            "--engine must be auto, native or burn",
        ),
        (
            &["--precision", "bf16", "--winograd"][..],
            "--precision bf16 and --winograd exclude each other",
        ),
        (
            &["--engine", "burn", "--precision", "fp8"][..],
            "--precision: unknown precision 'fp8'",
        ),
    ] {
        let o = run(extra);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains(says), "{extra:?}: {err}");
    }
}

/// Sizes no machine can hold and counts of 0 are refused before any work, with exit 2 and a
/// message naming the option: `stimuli` against the free disk (2⁶⁴ − 1 images used to render
/// until the disk filled), `bench` against the model's size limit and the memory available
/// (2⁶⁴ − 1 time steps ran until stopped, a batch of 2⁶⁴ − 1 panicked inside burn, 2⁶⁴ − 1
/// iterations ran until stopped), and zero batch sizes, steps, iterations and epochs (clamped
/// to 1 silently, or refused only after the stimuli were generated).
#[test]
fn absurd_sizes_and_zero_counts_are_refused_up_front() {
    use common::fails;
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("stim");
    let err = fails(&[
        "stimuli",
        "--out",
        s(&out),
        "--num-images",
        "10000000000000",
    ]);
    assert!(
        err.contains("--num-images 10000000000000") && err.contains("free on the file system"),
        "{err}"
    );
    // Nothing was made: neither the output nor its hidden temporary directory.
    assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);

    let max = u64::MAX.to_string();
    let bench = |extra: &[&str]| {
        let mut a = vec!["bench", "--models", "tiny"];
        a.extend_from_slice(extra);
        fails(&a)
    };
    let err = bench(&["--timesteps", &max]);
    assert!(err.contains("bench tiny") && err.contains("steps"), "{err}");
    let err = bench(&["--batch", &max]);
    assert!(
        err.contains("--batch") && err.contains("available") && !err.contains("panicked"),
        "{err}"
    );
    let err = bench(&["--iters", &max]);
    assert!(err.contains("--iters") && err.contains("at most"), "{err}");
    let err = bench(&["--warmup", &max]);
    assert!(err.contains("--warmup") && err.contains("at most"), "{err}");
    for (cmd, flag) in [
        ("bench", "--iters"),
        ("bench", "--batch"),
        ("bench", "--timesteps"),
        ("record", "--batch-size"),
        ("quickstart", "--epochs"),
        ("quickstart", "--num-images"),
        ("neural-fit", "--components"),
        ("neural-fit", "--ceiling-splits"),
    ] {
        // Refused while the arguments are parsed: before the missing required ones are named.
        let err = fails(&[cmd, flag, "0"]);
        assert!(
            err.contains(&format!("invalid value '0' for '{flag}")) && err.contains("at least 1"),
            "{cmd} {flag} 0: {err}"
        );
    }
    assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
}

/// `ventral inspect` on weights files: a TensorFlow checkpoint by its prefix (TensorFlow's
/// names, HWIO kernels; fixtures from scripts/make_tf_checkpoint_fixtures.py) and a PyTorch
/// checkpoint; a partitioned TensorFlow variable refused (exit 2, the file named).
#[test]
fn inspect_lists_the_tensors_of_weights_files() {
    let core = ventral_core::fixtures::crate_dir(env!("CARGO_MANIFEST_DIR"))
        .join("../ventral-core/tests/fixtures");
    let o = ventral(&["inspect", s(&core.join("tf_checkpoint/dtypes")), "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["format"], "TensorFlow checkpoint");
    assert_eq!(v["num_tensors"], 311);
    let conv = v["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "conv1/weights")
        .unwrap();
    assert_eq!(conv["shape"], serde_json::json!([3, 3, 3, 4]));
    assert_eq!(conv["dtype"], "F32");
    let o = ventral(&["inspect", s(&core.join("pth/wrapped.pth"))]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("(PyTorch checkpoint): 2 tensors, 8 values"),
        "{text}"
    );
    assert!(
        text.contains("a.weight") && text.contains("[3, 2]"),
        "{text}"
    );
    let p = core.join("tf_checkpoint/partitioned.index");
    let o = ventral(&["inspect", s(&p)]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("partitioned.index") && err.contains("'part'"),
        "{err}"
    );
}
