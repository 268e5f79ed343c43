//! Training end to end through the binary: kill -9 at several moments and resume gives
//! byte-identical weights; SIGTERM checkpoints and exits 3; a diverging run exits 4 and keeps
//! its last good checkpoint; `--resume` on a finished run does nothing.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ventral"))
}

fn config() -> PathBuf {
    ventral_core::fixtures::crate_dir(env!("CARGO_MANIFEST_DIR")).join("../../configs/tiny.toml")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn train_cmd(data: &Path, out: &Path, resume: bool) -> Command {
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
        "--out",
        s(out),
    ]);
    if resume {
        c.arg("--resume");
    }
    c
}

fn finish(mut c: Command) -> Output {
    c.output().unwrap()
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

#[test]
fn kill_and_resume_is_byte_identical() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("stim");
    stimuli(&data);
    let reference = d.path().join("ref");
    let o = finish(train_cmd(&data, &reference, false));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let want = std::fs::read(reference.join("weights.safetensors")).unwrap();

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
        let got = std::fs::read(out.join("weights.safetensors")).unwrap();
        assert!(
            got == want,
            "kill at {ms} ms: resumed weights differ from the uninterrupted run"
        );
    }
}

#[test]
fn sigterm_checkpoints_and_exits_3() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("stim");
    stimuli(&data);
    let out = d.path().join("run");
    let child = train_cmd(&data, &out, false)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until training is under way (a resume point beyond the initial one exists).
    let start = Instant::now();
    loop {
        let latest = std::fs::read_to_string(out.join("checkpoints/LATEST")).unwrap_or_default();
        if latest.trim() != "" && latest.trim() != "step_00000000" {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "training did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
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
