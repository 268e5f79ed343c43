//! Training end to end through the binary: kill -9 at several moments and resume gives
//! byte-identical weights, metrics and SGD-dynamics table (the tracker is on); SIGTERM checkpoints and exits 3; a diverging run exits 4 and keeps
//! its last good checkpoint; `--resume` on a finished run does nothing.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

fn bin() -> Command {
    common::command()
}

fn config() -> PathBuf {
    ventral_core::fixtures::crate_dir(env!("CARGO_MANIFEST_DIR")).join("../../configs/tiny.toml")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The resume test's run: the SGD-dynamics tracker on (every second step) at a constant rate.
const TRACKED: [&str; 2] = ["train.sgd_dynamics.every=2", "train.schedule.kind=constant"];

fn train_cmd(data: &Path, out: &Path, resume: bool) -> Command {
    train_cmd_with(data, out, resume, &TRACKED)
}

/// `ventral train configs/tiny.toml` for 2 epochs of batches of 16, a resume point every 3
/// steps, and `sets` on top.
fn train_cmd_with(data: &Path, out: &Path, resume: bool, sets: &[&str]) -> Command {
    let mut c = bin();
    c.args([
        "train",
        s(&config()),
        "--set",
        &format!("data.path={}", data.display()),
        "--set",
        "train.epochs=2",
        "--set",
        "train.batch_size=16",
        "--set",
        "train.checkpoint_steps=3",
    ]);
    for set in sets {
        c.args(["--set", set]);
    }
    c.args(["--out", s(out)]);
    if resume {
        c.arg("--resume");
    }
    c
}

fn finish(mut c: Command) -> Output {
    c.output().unwrap()
}

/// A run refused before anything was written: exit 2, a message holding every one of `says`,
/// and no `out`.
fn assert_refused(o: &Output, out: &Path, says: &[&str]) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    for want in says {
        assert!(err.contains(want), "wanted {want:?} in: {err}");
    }
    assert!(!out.exists(), "a refused run left {}", out.display());
}

fn stimuli(dir: &Path) {
    let o = bin()
        .args([
            "stimuli",
            "--out",
            s(dir),
            "--num-images",
            "200",
            "--seed",
            "3",
            "--no-stimulus-set",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn kill_after(mut child: Child, d: Duration) {
    let start = Instant::now();
    while start.elapsed() < d {
        if child.try_wait().unwrap().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

/// Wait (at most `limit`) until `out/checkpoints/LATEST` of `child`, a `ventral train` into
/// `out`, names a resume point of step `at` or later; returns that step.
fn wait_for_resume_point(child: &mut Child, out: &Path, at: usize, limit: Duration) -> usize {
    let latest = out.join("checkpoints/LATEST");
    let start = Instant::now();
    loop {
        let step = std::fs::read_to_string(&latest)
            .ok()
            .and_then(|n| n.trim().strip_prefix("step_")?.parse::<usize>().ok());
        if let Some(s) = step.filter(|s| *s >= at) {
            return s;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run into {} ended before its resume point of step {at}",
            out.display()
        );
        assert!(start.elapsed() < limit, "no resume point of step {at}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// SIGKILL `child` (a `ventral train` into `out`) as soon as `out/checkpoints/LATEST` names a
/// resume point of step `at` or later; returns that step.
fn kill_at_resume_point(mut child: Child, out: &Path, at: usize) -> usize {
    let s = wait_for_resume_point(&mut child, out, at, Duration::from_secs(600));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    s
}

#[test]
fn kill_and_resume_is_byte_identical() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("stim");
    stimuli(&data);
    let reference = d.path().join("ref");
    let o = finish(train_cmd(&data, &reference, false));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let files = [
        "weights.safetensors",
        "metrics.csv",
        "sgd_dynamics.csv",
        "sgd_dynamics/theta0.safetensors",
    ];
    let want: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(reference.join(f)).unwrap())
        .collect();
    // 2 epochs × 10 batches of 16 (160 training images), every second step tracked.
    let rows = String::from_utf8_lossy(&want[2]).lines().count() - 1;
    assert_eq!(rows, 10, "sgd_dynamics.csv rows");

    // Resuming a finished run does nothing and exits 0.
    let o = finish(train_cmd(&data, &reference, true));
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("nothing to do"));

    // Kill at several moments, from right after start to late in training, then resume.
    for (k, ms) in [50u64, 400, 1200, 2500, 4000].iter().enumerate() {
        let out = d.path().join(format!("killed{k}"));
        let child = train_cmd(&data, &out, false).spawn().unwrap();
        kill_after(child, Duration::from_millis(*ms));
        // A second kill during the resumed run, for good measure.
        if out.exists() {
            let child = train_cmd(&data, &out, true).spawn().unwrap();
            kill_after(child, Duration::from_millis(*ms / 2 + 100));
        }
        let o = finish(train_cmd(&data, &out, out.exists()));
        assert!(
            o.status.success(),
            "kill at {ms} ms: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        for (f, w) in files.iter().zip(&want) {
            let got = std::fs::read(out.join(f)).unwrap();
            assert!(
                got == *w,
                "kill at {ms} ms: resumed {f} differs from the uninterrupted run"
            );
        }
    }
}

/// The quickstart's schedule (tiny.toml: cosine to 0 over the run), with a warm-up of 8 steps:
/// the learning rate is a function of the global step, which resume restores, so a killed and
/// resumed run still ends byte-identical to the uninterrupted one.
#[test]
fn kill_and_resume_under_a_cosine_schedule_with_warmup_is_byte_identical() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("stim");
    stimuli(&data);
    let sets = ["train.schedule.warmup_steps=8"];
    let reference = d.path().join("ref");
    let o = finish(train_cmd_with(&data, &reference, false, &sets));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let cfg = std::fs::read_to_string(reference.join("config.toml")).unwrap();
    assert!(
        cfg.contains("kind = \"cosine\"") && cfg.contains("warmup_steps = 8"),
        "{cfg}"
    );
    let files = ["weights.safetensors", "metrics.csv"];
    let want: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(reference.join(f)).unwrap())
        .collect();
    // 20 steps (2 epochs × 10 batches), a resume point every 3 and at each epoch's end: killed
    // as soon as the resume point of step 6 (inside the warm-up) or 15 (in the cosine decay) is
    // committed, so the resumed runs replay warm-up and decay steps whatever the machine's speed.
    for (k, at) in [6usize, 15].iter().enumerate() {
        let out = d.path().join(format!("killed{k}"));
        let child = train_cmd_with(&data, &out, false, &sets).spawn().unwrap();
        let killed_at = kill_at_resume_point(child, &out, *at);
        let o = finish(train_cmd_with(&data, &out, true, &sets));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "killed at step {killed_at}: {err}");
        let want_line = format!(
            "resuming at epoch {}, batch {}",
            killed_at / 10,
            killed_at % 10
        );
        assert!(
            (*at..20).contains(&killed_at) && err.contains(&want_line),
            "killed at step {killed_at} (waited for {at}): {err}"
        );
        for (f, w) in files.iter().zip(&want) {
            let got = std::fs::read(out.join(f)).unwrap();
            assert!(
                got == *w,
                "killed at step {killed_at}: resumed {f} differs from the uninterrupted run"
            );
        }
    }
    // The tracker refuses a warm-up that overlaps its steps (10 batches per epoch here, tracking
    // from epoch 0), before anything is written.
    let out = d.path().join("warm_tracked");
    let o = finish(train_cmd_with(
        &data,
        &out,
        false,
        &[TRACKED[0], TRACKED[1], "train.schedule.warmup_steps=5"],
    ));
    assert_refused(
        &o,
        &out,
        &[
            &format!("{}: ", data.join("train").display()),
            "train.schedule.warmup_steps = 5",
            "start_epoch to at least 1",
        ],
    );
}

/// A data set with fewer classes than the model is refused before anything is written, with
/// what to change (a split packed from labels alone counts its largest label + 1 classes).
#[test]
fn fewer_classes_than_the_model_says_what_to_change() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("stim4");
    let o = bin()
        .args(["stimuli", "--out", s(&data), "--num-images", "120"])
        .args(["--num-classes", "4", "--no-stimulus-set"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = d.path().join("run");
    let o = finish(train_cmd_with(&data, &out, false, &[]));
    let says = [
        "4 classes, the model has num_classes = 8",
        "set model.num_classes = 4",
        "class_names",
    ];
    assert_refused(&o, &out, &says);
}

#[test]
fn sigterm_checkpoints_and_exits_3() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("stim");
    stimuli(&data);
    let out = d.path().join("run");
    let mut child = train_cmd(&data, &out, false)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until training is under way (a resume point beyond the initial one exists).
    wait_for_resume_point(&mut child, &out, 1, Duration::from_secs(120));
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let o = child.wait_with_output().unwrap();
    if o.status.code() == Some(0) {
        return; // finished before the signal arrived: nothing to check
    }
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("interrupted"));
    let o = finish(train_cmd(&data, &out, true));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.join("DONE").exists());
}

/// A resume point whose optimiser state does not fit the model (one moment buffer a value
/// short, as from another model or a damaged file) is refused at resume with exit 2, naming
/// the file and the parameter, and the resume point is left as it was — not a panic in the
/// middle of the first step (found in session 58).
#[test]
fn optimiser_state_of_another_shape_is_refused_at_resume() {
    use ventral_core::safetensors::{SafeTensors, TensorOut, write};
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("stim");
    stimuli(&data);
    let out = d.path().join("run");
    let child = train_cmd(&data, &out, false).spawn().unwrap();
    kill_at_resume_point(child, &out, 3);
    let latest = std::fs::read_to_string(out.join("checkpoints/LATEST")).unwrap();
    let optim = out
        .join("checkpoints")
        .join(latest.trim())
        .join("optim.safetensors");
    let st = SafeTensors::read(&optim).unwrap();
    let mut tensors: std::collections::BTreeMap<String, (Vec<usize>, Vec<f32>)> = st
        .names()
        .filter(|n| *n != "__step__")
        .map(|n| (n.to_string(), st.f32(n).unwrap()))
        .collect();
    let (_, step) = st.i64("__step__").unwrap();
    let victim = "v2.lateral.weight.m";
    let (shape, v) = tensors
        .get_mut(victim)
        .expect("Adam's first moment of v2.lateral");
    v.pop();
    shape[0] -= 1;
    let mut w: std::collections::BTreeMap<String, TensorOut<'_>> = tensors
        .iter()
        .map(|(k, (s, v))| (k.clone(), TensorOut::F32(s, v)))
        .collect();
    let one = [1usize];
    w.insert("__step__".into(), TensorOut::I64(&one, &step));
    write(&optim, &w, &Default::default()).unwrap();
    let before = std::fs::read(&optim).unwrap();
    let o = finish(train_cmd(&data, &out, true));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("optim.safetensors") && err.contains("v2.lateral.weight"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        std::fs::read(&optim).unwrap(),
        before,
        "the resume point changed"
    );
    let now = std::fs::read_to_string(out.join("checkpoints/LATEST")).unwrap();
    assert_eq!(now, latest);
    assert!(!out.join("DONE").exists());
}

#[test]
fn divergence_stops_with_exit_4_and_keeps_a_checkpoint() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("stim");
    stimuli(&data);
    let out = d.path().join("run");
    let mut c = train_cmd(&data, &out, false);
    c.args(["--set", "train.optimizer.lr=1e30"]);
    let o = finish(c);
    assert_eq!(
        o.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("diverged") && err.contains("last good checkpoint"),
        "{err}"
    );
    let latest = std::fs::read_to_string(out.join("checkpoints/LATEST")).unwrap();
    assert!(
        out.join("checkpoints")
            .join(latest.trim())
            .join("model.safetensors")
            .is_file()
    );
    assert!(!out.join("DONE").exists());
}

#[test]
fn nan_weights_after_the_last_batch_exit_4_not_done() {
    // One batch per epoch and one epoch: the only training loss is finite, the update is not,
    // so only validation can see it (this ended with DONE and NaN weights before).
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("stim");
    stimuli(&data);
    let out = d.path().join("run");
    let mut c = train_cmd(&data, &out, false);
    c.args([
        "--set",
        "train.epochs=1",
        "--set",
        "train.batch_size=256",
        "--set",
        "train.optimizer.lr=1e38",
    ]);
    let o = finish(c);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{err}");
    assert!(err.contains("validation loss"), "{err}");
    assert!(!out.join("DONE").exists());
    assert!(!out.join("weights.safetensors").exists());
}

fn read_f32(path: &Path) -> std::collections::BTreeMap<String, Vec<f32>> {
    let st = ventral_core::safetensors::SafeTensors::read(path).unwrap();
    let names: Vec<String> = st.names().map(str::to_string).collect();
    names
        .into_iter()
        .map(|n| {
            let (_, d) = st.f32(&n).unwrap();
            (n, d)
        })
        .collect()
}

fn dist_sq(
    a: &std::collections::BTreeMap<String, Vec<f32>>,
    b: &std::collections::BTreeMap<String, Vec<f32>>,
) -> f64 {
    a.iter()
        .map(|(k, v)| {
            v.iter()
                .zip(&b[k])
                .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
                .sum::<f64>()
        })
        .sum()
}

#[test]
fn sgd_dynamics_tracker_from_a_trained_run() {
    // The anchor's protocol: train, then restart from the trained weights with constant-lr
    // SGD + momentum and the tracker on.
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("stim");
    stimuli(&data);
    let first = d.path().join("first");
    let mut c = train_cmd(&data, &first, false);
    c.args([
        "--set",
        "train.epochs=1",
        "--set",
        "train.checkpoint_every=1",
    ]);
    let o = finish(c);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Hessian eigenvectors at the restart point, to project the trajectory onto.
    let hess = d.path().join("hess");
    // `ventral hessian` at the first run's epoch 1 on 16 images.
    let hessian = |k: &str, it: &str, out: &std::path::Path| {
        let mut c = bin();
        c.args(["hessian"])
            .arg(&first)
            .args(["--checkpoint", "1", "--data"])
            .arg(&data)
            .args(["--images", "16", "--batch-size", "8", "--top-k", k])
            .args(["--iterations", it, "--out"])
            .arg(out);
        c
    };
    let o = finish(hessian("2", "6", &hess));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ev = std::fs::read_to_string(hess.join("eigenvalues.csv")).unwrap();
    assert_eq!(ev.lines().count(), 3, "{ev}");
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(hess.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["hessian_vector_products"], 6);
    let eig = read_f32(&hess.join("eigenvectors.safetensors"));
    // Absurd --top-k / --iterations: refused before the first product (the vectors would not
    // fit the memory; before, Lanczos ran one step per parameter, and `--iterations` of
    // 2⁶⁴ − 1 overflowed), nothing written.
    for (k, it) in [("18446744073709551615", "6"), ("2", "18446744073709551615")] {
        let out = d.path().join(format!("hess_big_{k}_{it}"));
        let o = finish({
            let mut c = hessian(k, it, &out);
            c.env("VENTRAL_MAX_MEMORY", "1G");
            c
        });
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains("more than the 1.0 GiB available"), "{err}");
        assert!(!out.exists());
    }
    // A gradient batch whose activations cannot fit (VENTRAL_MAX_MEMORY = 1 MB: the tiny
    // network needs about 5.6 MB per image): refused naming --batch-size, nothing written.
    let out = d.path().join("hess_batch");
    let o = finish({
        let mut c = hessian("1", "2", &out);
        c.env("VENTRAL_MAX_MEMORY", "1M");
        c
    });
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--batch-size 8: a gradient batch of 8 images"),
        "{err}"
    );
    assert!(!out.exists());
    // A finite-difference step so large that the loss overflows: refused naming --eps (NaN
    // eigenvalues were written with exit 0), nothing written.
    let out = d.path().join("hess_eps");
    let o = finish({
        let mut c = hessian("1", "2", &out);
        c.args(["--eps", "1e300"]);
        c
    });
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("not finite") && err.contains("--eps"), "{err}");
    assert!(!out.exists());

    let second = d.path().join("second");
    let mut c = train_cmd(&data, &second, false);
    c.args([
        "--set",
        &format!(
            "train.sgd_dynamics.project_onto=\"{}\"",
            hess.join("eigenvectors.safetensors").display()
        ),
    ]);
    c.args([
        "--init-from",
        &format!("{}:1", first.display()),
        "--set",
        "train.optimizer.kind=sgd",
        "--set",
        "train.optimizer.lr=0.05",
        "--set",
        "train.optimizer.momentum=0.9",
        "--set",
        "train.sgd_dynamics.every=1",
        "--set",
        "train.schedule.kind=constant",
        "--set",
        "train.checkpoint_every=1",
    ]);
    let o = finish(c);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // θ₀ is the weights it started from.
    let theta0 = read_f32(&second.join("sgd_dynamics/theta0.safetensors"));
    let start = read_f32(&first.join("checkpoints/epoch_0001/model.safetensors"));
    assert_eq!(theta0, start);

    let text = std::fs::read_to_string(second.join("sgd_dynamics.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let rows: Vec<Vec<f64>> = lines
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    assert_eq!(rows.len(), 20, "2 epochs × 10 steps, every step");
    for (k, r) in rows.iter().enumerate() {
        assert_eq!(r[col("step")] as usize, k);
        assert_eq!(r[col("k")] as usize, k);
        // Plain SGD with momentum: δ_k = η·v_{k+1} (up to float32 rounding of θ).
        let lr = r[col("lr")];
        let want = lr * lr * r[col("vel_norm")].powi(2);
        let got = r[col("local_sq")];
        assert!(
            (got - want).abs() <= 1e-3 * want,
            "step {k}: local_sq {got} vs (lr·vel_norm)² {want}"
        );
        // Groups add up to the total.
        for q in ["dist_sq", "local_sq", "pos_dot"] {
            let parts: f64 = header
                .iter()
                .enumerate()
                .filter(|(_, h)| h.starts_with(&format!("{q}_")))
                .map(|(i, _)| r[i])
                .sum();
            assert!(
                (parts - r[col(q)]).abs() <= 1e-9 * r[col(q)].abs().max(1e-30),
                "step {k}: {q} groups sum {parts} vs {}",
                r[col(q)]
            );
        }
    }
    assert_eq!(rows[0][col("dist_sq")], 0.0);
    assert_eq!(rows[1][col("dist_sq")], rows[0][col("local_sq")]);
    // ‖θ₁₀ − θ₀‖² from the epoch-1 checkpoint of the second run equals row 10's dist_sq.
    let after = read_f32(&second.join("checkpoints/epoch_0001/model.safetensors"));
    let want = dist_sq(&after, &theta0);
    let got = rows[10][col("dist_sq")];
    assert!((got - want).abs() <= 1e-12 * want, "{got} vs {want}");
    let pos: f64 = after
        .values()
        .flat_map(|v| v.iter())
        .map(|x| (*x as f64).powi(2))
        .sum::<f64>()
        .sqrt();
    assert!((rows[10][col("pos_norm")] - pos).abs() <= 1e-12 * pos);
    // Projections: eᵢ·(θ₁₀ − θ₀) from the files equals the table's proj_pos_i at k = 10.
    for i in 0..2 {
        let want: f64 = eig
            .iter()
            .map(|(name, e)| {
                let n = after[name].len();
                e[i * n..(i + 1) * n]
                    .iter()
                    .zip(&after[name])
                    .zip(&theta0[name])
                    .map(|((e, a), b)| *e as f64 * (*a as f64 - *b as f64))
                    .sum::<f64>()
            })
            .sum();
        let got = rows[10][col(&format!("proj_pos_{i}"))];
        assert!(
            (got - want).abs() <= 1e-9 * want.abs().max(1e-12),
            "proj_pos_{i}: {got} vs {want}"
        );
        assert_eq!(rows[0][col(&format!("proj_pos_{i}"))], 0.0);
    }
    // The diffusion analysis reads the projections.
    let o = bin()
        .arg("diffusion")
        .arg(&second)
        .arg("--out")
        .arg(d.path().join("diff"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(d.path().join("diff/spectrum.csv").is_file());
    assert!(d.path().join("diff/plots/phase_second.png").is_file());
}

#[test]
fn init_from_names_what_is_missing() {
    let d = tempfile::tempdir().unwrap();
    let run = d.path().join("unfinished");
    std::fs::create_dir_all(run.join("checkpoints/epoch_0002")).unwrap();
    let data = d.path().join("stim");
    for (spec, want) in [
        (format!("{}", run.display()), "has not finished"),
        (format!("{}:3", run.display()), "epochs kept: 2"),
        (
            format!("{}/nope", d.path().display()),
            "neither a run directory",
        ),
    ] {
        let mut c = train_cmd(&data, &d.path().join("out"), false);
        c.args(["--init-from", &spec]);
        let o = finish(c);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{spec}: {err}");
        assert!(err.contains(want), "{spec}: {err}");
    }
}

/// A warm-up longer than the whole run trains (a resume may add epochs) but says that the
/// learning rate never reaches its set value.
#[test]
fn a_warmup_longer_than_the_run_is_pointed_out() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("stim");
    stimuli(&data);
    let out = d.path().join("run");
    let mut c = train_cmd_with(&data, &out, false, &["train.schedule.warmup_steps=1000"]);
    c.args(["--set", "train.epochs=1"]);
    let o = finish(c);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("warmup_steps = 1000 is longer than the whole run"),
        "{err}"
    );
}

#[test]
fn a_batch_that_cannot_fit_is_refused_before_anything_is_written() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("stim");
    stimuli(&data);
    let out = d.path().join("run");
    let mut c = train_cmd(&data, &out, false);
    c.env("VENTRAL_MAX_MEMORY", "100M");
    c.args(["--set", "train.batch_size=64"]);
    let o = finish(c);
    assert_refused(&o, &out, &["train.batch_size = 64", "VENTRAL_MAX_MEMORY"]);
    // Absurd widths are refused by the configuration check, naming the limit.
    let mut c = train_cmd(&data, &out, false);
    c.args(["--set", "model.channels=[8, 100000, 100000, 16, 32]"]);
    let o = finish(c);
    assert_refused(&o, &out, &["parameters", "limit"]);
}

/// `train.drop_last = true` leaves out each epoch's ragged last batch (160 training images in
/// batches of 48: 3 batches, not 4), is saved in the run's configuration, and is refused,
/// naming the split, where it would leave no batch at all — before anything is written.
#[test]
fn drop_last_leaves_out_the_ragged_batch() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("stim");
    stimuli(&data);
    let run = |name: &str, sets: &[&str]| {
        let out = d.path().join(name);
        let mut c = train_cmd(&data, &out, false);
        c.args(["--set", "train.epochs=1", "--set", "train.batch_size=48"]);
        for s in sets {
            c.args(["--set", s]);
        }
        (finish(c), out)
    };
    let batches = |o: &Output| {
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert!(o.status.success(), "{err}");
        let n = err.split(" epochs × ").nth(1).unwrap();
        n.split(' ').next().unwrap().parse::<usize>().unwrap()
    };
    let (o, out) = run("dropped", &["train.drop_last=true"]);
    assert_eq!(batches(&o), 3);
    let cfg = std::fs::read_to_string(out.join("config.toml")).unwrap();
    assert!(cfg.contains("drop_last = true"), "{cfg}");
    let (o, out) = run("kept", &[]);
    assert_eq!(batches(&o), 4);
    let cfg = std::fs::read_to_string(out.join("config.toml")).unwrap();
    assert!(!cfg.contains("drop_last"), "{cfg}");
    let (o, out) = run("none", &["train.drop_last=true", "train.batch_size=200"]);
    assert_refused(&o, &out, &["train", "160 images", "drop_last"]);
}

/// `train.precision = "bf16"` (burn's engine): convolutions and linear layers in bfloat16,
/// the weights float32 — the run saves float32 weights, its configuration says bf16, and its
/// per-step training loss over one epoch stays within 0.06 of the float32 run's from the same
/// start (measured: 0.003–0.020). The weights themselves are not compared element by element:
/// Adam's first steps are about `lr · sign(g)`, so elements whose gradient is near zero step
/// either way in both runs (after one epoch the runs are 2.4 apart, each 4.2 from the start).
#[test]
fn bf16_training_keeps_float32_weights_and_follows_the_float32_run() {
    bf16_follows_float32("burn");
}

/// The same on the native CPU engine (`BltNet::set_bf16`: AMX tiles where the CPU has them,
/// else the rounded operands through the float32 kernels).
#[test]
fn native_bf16_training_keeps_float32_weights_and_follows_the_float32_run() {
    bf16_follows_float32("native");
}

fn bf16_follows_float32(engine: &str) {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("stim");
    stimuli(&data);
    let run = |name: &str, precision: &str| {
        let out = d.path().join(name);
        let mut c = train_cmd(&data, &out, false);
        c.args([
            "--set",
            "train.epochs=1",
            "--set",
            &format!("train.engine=\"{engine}\""),
            "--set",
            &format!("train.precision=\"{precision}\""),
        ]);
        let o = finish(c);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        out
    };
    let (half, full) = (run("bf16", "bf16"), run("f32", "f32"));
    let cfg = std::fs::read_to_string(half.join("config.toml")).unwrap();
    assert!(cfg.contains("precision = \"bf16\""), "{cfg}");
    let cfg = std::fs::read_to_string(full.join("config.toml")).unwrap();
    assert!(!cfg.contains("precision"), "{cfg}");
    let (wh, wf) = (
        read_f32(&half.join("weights.safetensors")),
        read_f32(&full.join("weights.safetensors")),
    );
    let init = read_f32(&full.join("checkpoints/init/model.safetensors"));
    assert!(wh.values().flatten().all(|v| v.is_finite()));
    let (apart, moved) = (dist_sq(&wh, &wf).sqrt(), dist_sq(&wh, &init).sqrt());
    println!("{engine}: bf16 vs f32 after one epoch: {apart:.4e}; bf16 moved {moved:.4e}");
    assert!(apart > 0.0 && moved > 0.0, "{apart} {moved}");
    let train_loss = |dir: &Path| -> Vec<f64> {
        std::fs::read_to_string(dir.join("metrics.csv"))
            .unwrap()
            .lines()
            .filter(|l| l.contains(",train,"))
            .map(|l| l.split(',').nth(3).unwrap().parse().unwrap())
            .collect()
    };
    let (lh, lf) = (train_loss(&half), train_loss(&full));
    assert_eq!(lh.len(), 4);
    for (h, f) in lh.iter().zip(&lf) {
        assert!(
            h.is_finite() && (h - f).abs() < 0.06,
            "{engine}: {lh:?} vs {lf:?}"
        );
    }
}
