//! `ventral diffusion` through the binary: a trajectory CSV in, tables, plots and run.json out;
//! inputs that are not trajectories are refused naming the file; an existing output is kept.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::process::Command;

fn bin() -> Command {
    common::command()
}

fn fixture(name: &str) -> PathBuf {
    ventral_core::fixtures::crate_dir(env!("CARGO_MANIFEST_DIR"))
        .join("../ventral-analysis/tests/fixtures/diffusion")
        .join(name)
}

#[test]
fn trajectory_csv_to_tables() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("diff");
    let o = bin()
        .args(["diffusion", "--trajectory"])
        .arg(format!("fast={}", fixture("a.csv").display()))
        .args(["--batch-size", "32", "--momentum", "0.9", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("fast: exponent c = 0.6"), "{stdout}");
    let csv = std::fs::read_to_string(out.join("exponent.csv")).unwrap();
    let row: Vec<&str> = csv.lines().nth(1).unwrap().split(',').collect();
    assert_eq!(row[0], "fast");
    assert_eq!(row[10], "0.01", "lr from the file's lr column");
    assert_eq!(row[11], "32");
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["inputs"][0]["model"], "fast");
    assert!(out.join("plots/displacement_loglog.png").is_file());
    // The fixture carries one projected direction: phase space and spectrum.
    assert!(out.join("plots/phase_fast.png").is_file());
    assert!(out.join("plots/spectrum_fast.svg").is_file());
    let spec = std::fs::read_to_string(out.join("spectrum.csv")).unwrap();
    assert!(
        spec.starts_with("run,direction,frequency_per_step,power\nfast,0,0,"),
        "{spec}"
    );

    // The output exists: refused without --overwrite, and left as it was.
    let before = std::fs::read(out.join("exponent.csv")).unwrap();
    let o = bin()
        .args(["diffusion", "--trajectory"])
        .arg(fixture("b.csv"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(std::fs::read(out.join("exponent.csv")).unwrap(), before);
}

#[test]
fn not_a_trajectory_or_not_a_tracked_run() {
    let d = tempfile::tempdir().unwrap();
    let bad = d.path().join("metrics.csv");
    std::fs::write(
        &bad,
        "epoch,timestep,split,loss,accuracy\n0,0,train,1,0.5\n",
    )
    .unwrap();
    let o = bin()
        .args(["diffusion", "--trajectory"])
        .arg(&bad)
        .arg("--out")
        .arg(d.path().join("o1"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("metrics.csv") && err.contains("no dist_sq column"),
        "{err}"
    );
    let run = d.path().join("run");
    std::fs::create_dir_all(&run).unwrap();
    let o = bin()
        .arg("diffusion")
        .arg(&run)
        .arg("--out")
        .arg(d.path().join("o2"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("[train.sgd_dynamics]"), "{err}");
    assert!(!d.path().join("o1").exists() && !d.path().join("o2").exists());
}

/// Theory hyperparameters that give no level (a NaN or zero rate or batch, β = 1) and a window
/// count that would run without end are refused before anything is read or written.
#[test]
fn meaningless_hyperparameters_and_window_counts_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("o");
    for (args, says) in [
        (&["--lr", "nan"][..], "--lr must be finite and > 0"),
        (&["--lr=-0.1"][..], "--lr must be finite and > 0"),
        (
            &["--batch-size", "0"][..],
            "--batch-size must be finite and at least 1",
        ),
        (&["--momentum", "1"][..], "--momentum must be in [0, 1)"),
        (&["--momentum=-0.5"][..], "--momentum must be in [0, 1)"),
        (
            &["--windows-per-decade", "18446744073709551615"][..],
            "--windows-per-decade",
        ),
    ] {
        let o = bin()
            .args(["diffusion", "--trajectory"])
            .arg(fixture("a.csv"))
            .args(args)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!out.exists(), "{args:?}");
    }
}
