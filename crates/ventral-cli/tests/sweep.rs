//! `ventral sweep` through the binary: planning (named by config hash, idempotent), three
//! workers at once — two shards and an unsharded "requeued" one, one of them sharded through
//! Slurm's variables — train every run exactly once; status and aggregate.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    common::command()
}

fn config() -> PathBuf {
    ventral_core::fixtures::crate_dir(env!("CARGO_MANIFEST_DIR")).join("../../configs/tiny.toml")
}

fn ok(o: std::process::Output) -> String {
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn spec(d: &Path, data: &Path, lrs: &str) -> PathBuf {
    let p = d.join(format!("sweep_{}.toml", lrs.len()));
    std::fs::write(
        &p,
        format!(
            r#"base = "{}"
set = ["data.path={}", "train.epochs=1", "train.sgd_dynamics.every=1",
       "train.schedule.kind=\"constant\"",
       "train.optimizer.kind=\"sgd\"", "train.optimizer.momentum=0.9"]
[grid]
"train.optimizer.lr" = [{lrs}]
"train.batch_size" = [16, 32]
"#,
            config().display(),
            data.display()
        ),
    )
    .unwrap();
    p
}

#[test]
fn shards_train_every_run_exactly_once() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("stim");
    ok(bin()
        .args([
            "stimuli",
            "--num-images",
            "200",
            "--seed",
            "3",
            "--no-stimulus-set",
            "--out",
        ])
        .arg(&data)
        .output()
        .unwrap());
    let dir = d.path().join("sweep");
    let s = spec(d.path(), &data, "0.01, 0.02");
    let out = ok(bin()
        .arg("sweep")
        .arg(&s)
        .arg("--out")
        .arg(&dir)
        .output()
        .unwrap());
    assert!(out.contains("planned 4 runs"), "{out}");
    // Same spec again: a no-op. Another spec into the same directory: refused.
    let out = ok(bin()
        .arg("sweep")
        .arg(&s)
        .arg("--out")
        .arg(&dir)
        .output()
        .unwrap());
    assert!(out.contains("already planned"), "{out}");
    let other = spec(d.path(), &data, "0.01, 0.02, 0.05");
    let o = bin()
        .arg("sweep")
        .arg(&other)
        .arg("--out")
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("different sweep"));

    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("sweep.json")).unwrap()).unwrap();
    let names: Vec<String> = m["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names.len(), 4);
    assert!(names.iter().all(|n| n.starts_with("run-") && n.len() == 16));

    // Three workers at once.
    let a = bin()
        .args(["sweep", "run"])
        .arg(&dir)
        .args(["--shard", "0/2"])
        .spawn()
        .unwrap();
    let b = bin()
        .args(["sweep", "run"])
        .arg(&dir)
        .env("SLURM_ARRAY_TASK_ID", "1")
        .env("SLURM_ARRAY_TASK_COUNT", "2")
        .spawn()
        .unwrap();
    let c = bin().args(["sweep", "run"]).arg(&dir).spawn().unwrap();
    for w in [a, b, c] {
        let o = w.wait_with_output().unwrap();
        assert!(o.status.success());
    }
    let log = std::fs::read_to_string(dir.join("sweep.log")).unwrap();
    for n in &names {
        let starts = log
            .lines()
            .filter(|l| l.starts_with(&format!("start {n} ")))
            .count();
        let dones = log
            .lines()
            .filter(|l| l.starts_with(&format!("done {n} ")))
            .count();
        assert_eq!((starts, dones), (1, 1), "{n}:\n{log}");
        assert!(dir.join("runs").join(n).join("DONE").is_file());
        assert!(!dir.join("runs").join(format!("{n}.lock")).exists());
    }

    // Everything done: another worker has nothing to do.
    let out = ok(bin().args(["sweep", "run"]).arg(&dir).output().unwrap());
    assert!(out.contains("trained 0, already done 4"), "{out}");
    let out = ok(bin().args(["sweep", "status"]).arg(&dir).output().unwrap());
    assert!(out.contains("4 runs: 4 done"), "{out}");
    let out = ok(bin()
        .args(["sweep", "aggregate"])
        .arg(&dir)
        .output()
        .unwrap());
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(
        &header[..3],
        &["run", "train.batch_size", "train.optimizer.lr"]
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 4);
    let col = |n: &str| header.iter().position(|h| *h == n).unwrap();
    for r in &rows {
        assert_eq!(r[col("state")], "done");
        let acc: f64 = r[col("val_accuracy_last_step")].parse().unwrap();
        assert!((0.0..=1.0).contains(&acc));
        let c: f64 = r[col("exponent")].parse().unwrap();
        assert!(c.is_finite());
    }
    assert!(dir.join("aggregate.csv").is_file());
}
