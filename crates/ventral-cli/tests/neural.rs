//! `ventral neural-synth` → `ventral neural-fit` end to end on the embedded stimuli, and the
//! bad-input paths (exit code 2, message naming the file and what is wrong, nothing written).

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

fn ventral(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ventral"))
        .args(args)
        .output()
        .expect("run ventral")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs ventral expecting the bad-input exit code 2; returns stderr.
fn fails(args: &[&str]) -> String {
    let o = ventral(args);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn synth_then_fit_then_bad_inputs() {
    let d = tempfile::tempdir().unwrap();
    let stim = d.path().join("stim");
    ok(&ventral(&[
        "stimuli",
        "--out",
        s(&stim),
        "--num-images",
        "160",
    ]));
    let nc = d.path().join("a.nc");
    ok(&ventral(&[
        "neural-synth",
        "--stimuli",
        s(&stim),
        "--out",
        s(&nc),
        "--sites",
        "6",
        "--bins",
        "70:170:10",
        "--repetitions",
        "6",
        "--snr",
        "1",
        "--latency",
        "V4=90,IT=110",
    ]));
    let feats = d.path().join("a.features.npz");
    assert!(d.path().join("a.truth.json").exists() && feats.exists());
    // Refuses to overwrite.
    fails(&["neural-synth", "--stimuli", s(&stim), "--out", s(&nc)]);

    let out = d.path().join("fit");
    ok(&ventral(&[
        "neural-fit",
        "--features",
        &format!("gen={}", s(&feats)),
        "--neural",
        s(&nc),
        "--out",
        s(&out),
        "--splits",
        "3",
        "--bootstraps",
        "1",
        "--ceiling-splits",
        "3",
        "--components",
        "5",
        "--offset-ms",
        "V4=90",
        "--offset-ms",
        "IT=110",
        "--shared",
    ]));
    let csv = std::fs::read_to_string(out.join("predictivity.csv")).unwrap();
    let header = csv.lines().next().unwrap();
    assert_eq!(
        header,
        "model,layer,timestep,region,time_bin_start,time_bin_end,metric,value,ci_low,ci_high"
    );
    for metric in ["ceiling", "r", "ceiled", "consistency", "r_shared"] {
        assert!(
            csv.lines().any(|l| l.split(',').nth(6) == Some(metric)),
            "no {metric} rows"
        );
    }
    // IT at 150 ms is fitted from step 4 and predicted well above zero.
    let it150 = csv
        .lines()
        .find(|l| l.starts_with("gen,hidden,4,IT,150,160,r,"))
        .unwrap();
    let r: f64 = it150.split(',').nth(7).unwrap().parse().unwrap();
    assert!(r > 0.4, "{it150}");
    let lat = std::fs::read_to_string(out.join("latency.csv")).unwrap();
    assert!(lat.contains("IT,110,") && lat.contains("V4,90,"), "{lat}");
    for f in [
        "sites.csv",
        "run.json",
        "plots/IT_r.png",
        "plots/IT_r.svg",
        "plots/V4_ceiled.png",
    ] {
        assert!(out.join(f).exists(), "missing {f}");
    }

    // RSA: model-time × neural-time, heat maps, RDMs.
    let rsa = d.path().join("rsa");
    ok(&ventral(&[
        "rsa",
        "--features",
        &format!("gen={}", s(&feats)),
        "--neural",
        s(&nc),
        "--out",
        s(&rsa),
        "--bootstraps",
        "3",
        "--rdm",
        "crossval-euclidean",
        "--compare",
        "kendall-a",
    ]));
    let csv = std::fs::read_to_string(rsa.join("rsa.csv")).unwrap();
    assert!(csv.starts_with("model,layer,timestep,region,time_bin_start,time_bin_end,rdm,comparison,value,ci_low,ci_high\n"));
    let cell = csv
        .lines()
        .find(|l| l.starts_with("gen,hidden,6,IT,150,160,"))
        .unwrap();
    let v: f64 = cell.split(',').nth(8).unwrap().parse().unwrap();
    assert!(v > 0.1, "{cell}");
    assert!(rsa.join("plots/gen_hidden_IT.png").exists() && rsa.join("rdms.npz").exists());
    let err = fails(&[
        "rsa",
        "--features",
        s(&feats),
        "--neural",
        s(&nc),
        "--out",
        s(&rsa),
        "--rdm",
        "manhattan",
    ]);
    assert!(err.contains("manhattan"), "{err}");

    // Features whose rows do not match the stimuli: exit 2 naming the file, nothing written.
    let short = d.path().join("short.npz");
    let npz = ventral_core::npy::NpyArray::new(
        vec![2, 5, 3],
        ventral_core::npy::NpyData::F32(vec![0.5; 30]),
    )
    .unwrap();
    ventral_core::npy::write_npz(&short, &[("layer", &npz)], false).unwrap();
    let bad_out = d.path().join("fit_bad");
    let err = fails(&[
        "neural-fit",
        "--features",
        s(&short),
        "--neural",
        s(&nc),
        "--out",
        s(&bad_out),
    ]);
    assert!(
        err.contains("short.npz") && err.contains("5 rows") && err.contains("160 stimuli"),
        "{err}"
    );
    assert!(!bad_out.exists());
    // Stimulus ids that are not the recording's.
    let ids = ventral_core::npy::NpyArray::new(
        vec![5],
        ventral_core::npy::NpyData::Bytes {
            width: 3,
            values: (0..5).map(|i| format!("x{i:02}").into_bytes()).collect(),
        },
    )
    .unwrap();
    let npz = ventral_core::npy::NpyArray::new(
        vec![5, 3],
        ventral_core::npy::NpyData::F32(vec![0.5; 15]),
    )
    .unwrap();
    ventral_core::npy::write_npz(&short, &[("layer", &npz), ("stimulus_id", &ids)], false).unwrap();
    let err = fails(&[
        "neural-fit",
        "--features",
        s(&short),
        "--neural",
        s(&nc),
        "--out",
        s(&bad_out),
    ]);
    assert!(
        err.contains("short.npz") && err.contains("stimulus_id"),
        "{err}"
    );
    // A truncated assembly.
    let bytes = std::fs::read(&nc).unwrap();
    let trunc = d.path().join("trunc.nc");
    std::fs::write(&trunc, &bytes[..bytes.len() / 3]).unwrap();
    let err = fails(&[
        "neural-fit",
        "--features",
        s(&feats),
        "--neural",
        s(&trunc),
        "--out",
        s(&bad_out),
    ]);
    assert!(err.contains("trunc.nc"), "{err}");
    assert!(!bad_out.exists());
}
