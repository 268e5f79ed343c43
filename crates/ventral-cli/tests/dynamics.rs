//! `ventral record --run` → `ventral dynamics` end to end on a tiny trained BLT, the analysis
//! on a reference-format `.npz`, and bad inputs (exit code 2 naming the file, nothing written).

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::{fails, ok, s, ventral};

#[test]
fn record_a_run_then_analyse_its_dynamics() {
    let d = tempfile::tempdir().unwrap();
    let stim = d.path().join("stim");
    ok(&ventral(&[
        "stimuli",
        "--out",
        s(&stim),
        "--num-images",
        "200",
        "--seed",
        "3",
        "--no-stimulus-set",
    ]));
    let cfg = ventral_core::fixtures::crate_dir(env!("CARGO_MANIFEST_DIR"))
        .join("../../configs/tiny.toml");
    let run = d.path().join("run");
    ok(&ventral(&[
        "train",
        s(&cfg),
        "--set",
        &format!("data.path={}", stim.display()),
        "--set",
        "train.epochs=1",
        "--set",
        "train.batch_size=16",
        // A constant learning rate: tiny.toml's cosine schedule decays to 0 within this
        // one-epoch run of 10 steps, and the network must learn enough for images to become
        // stable (the trained representation-change plot has one line per stability time).
        "--set",
        "train.schedule.kind=constant",
        "--out",
        s(&run),
    ]));
    let last = d.path().join("last.npz");
    let init = d.path().join("init.npz");
    // `record` of the run over the validation split into `out`, with `extra` options.
    let record = |out: &Path, extra: &[&str]| {
        let mut args = vec![
            "record",
            "--run",
            s(&run),
            "--data",
            s(&stim),
            "--split",
            "val",
            "--out",
            s(out),
        ];
        args.extend_from_slice(extra);
        ventral(&args)
    };
    for (ck, out) in [("last", &last), ("init", &init)] {
        ok(&record(out, &["--checkpoint", ck, "--layers", "v4,it"]));
    }
    // The recording has the reference keys, the areas and the metadata.
    let mut z = ventral_core::npy::NpzReader::open(&last).unwrap();
    for k in [
        "outputs_all",
        "representations_all",
        "labels_all",
        "readout_weight",
        "readout_bias",
        "v4",
        "it",
        "stimulus_id",
        "meta.variation",
    ] {
        assert!(z.contains(k), "missing {k}: {:?}", z.names());
    }
    let out_shape = z.read("outputs_all").unwrap().shape;
    assert_eq!(out_shape[0], 4); // tiny.toml: 4 steps
    assert_eq!(z.read("it").unwrap().shape[..2], out_shape[..2]);

    // --pool none / grid:K / gap agree: gap and the K×K grid are averages of the unpooled map
    // (grid cells as PyTorch's adaptive_avg_pool2d: rows floor(iH/K) .. ceil((i+1)H/K)).
    let gap = z.read("v4").unwrap();
    let channels = gap.shape[2];
    let mut pooled = Vec::new();
    for pool in ["none", "grid:3"] {
        let out = d.path().join(format!("v4_{}.npz", pool.replace(':', "")));
        ok(&record(&out, &["--layers", "v4", "--pool", pool]));
        let a = ventral_core::npy::NpzReader::open(&out)
            .unwrap()
            .read("v4")
            .unwrap();
        pooled.push(a);
    }
    let (full, grid) = (&pooled[0], &pooled[1]);
    let hw = full.shape[2] / channels;
    let h = (hw as f64).sqrt() as usize;
    assert_eq!(h * h * channels, full.shape[2]);
    let k = 3;
    assert_eq!(grid.shape[2], channels * k * k);
    let (fv, gv, av) = (
        full.to_f64().unwrap(),
        grid.to_f64().unwrap(),
        gap.to_f64().unwrap(),
    );
    let rows = full.shape[0] * full.shape[1];
    for r in (0..rows).step_by(7) {
        for c in 0..channels {
            // Mean of the unpooled map over rows y0..y1 and columns x0..x1.
            let box_mean = |(y0, y1): (usize, usize), (x0, x1): (usize, usize)| {
                (y0..y1)
                    .flat_map(|y| (x0..x1).map(move |x| (y, x)))
                    .map(|(y, x)| fv[r * full.shape[2] + c * h * h + y * h + x])
                    .sum::<f64>()
                    / ((y1 - y0) * (x1 - x0)) as f64
            };
            let mean = box_mean((0, h), (0, h));
            assert!((mean - av[r * channels + c]).abs() < 1e-4, "gap r{r} c{c}");
            for i in 0..k {
                for j in 0..k {
                    let cell = box_mean(
                        (i * h / k, ((i + 1) * h).div_ceil(k)),
                        (j * h / k, ((j + 1) * h).div_ceil(k)),
                    );
                    let got = gv[r * grid.shape[2] + c * k * k + i * k + j];
                    assert!(
                        (cell - got).abs() < 1e-4,
                        "grid r{r} c{c} cell {i},{j}: {cell} vs {got}"
                    );
                }
            }
        }
    }
    // The training split's 160 images: the native engine runs at most 64 per pass, so any
    // --batch-size from 64 up records the same bits (areas included) — one pass of 1 000 used
    // to touch gigabytes of fresh memory for nothing.
    let arrays = |extra: &[&str]| {
        let out = d.path().join(format!("train_{}.npz", extra.join("")));
        let mut args = vec!["record", "--run", s(&run), "--data", s(&stim)];
        args.extend_from_slice(&["--split", "train", "--layers", "v1,it", "--out", s(&out)]);
        args.extend_from_slice(extra);
        ok(&ventral(&args));
        let mut z = ventral_core::npy::NpzReader::open(&out).unwrap();
        let names = z.names();
        names
            .iter()
            .map(|k| (k.clone(), z.read(k).unwrap()))
            .collect::<Vec<_>>()
    };
    let (default, large) = (arrays(&[]), arrays(&["--batch-size", "1000"]));
    assert_eq!(default.len(), large.len());
    for ((k, a), (l, b)) in default.iter().zip(&large) {
        assert_eq!(k, l);
        assert!(a == b, "{k} differs between --batch-size 64 and 1000");
    }
    let outputs = default.iter().find(|(k, _)| k == "outputs_all").unwrap();
    assert_eq!(outputs.1.shape, vec![4, 160, 8]);

    let bad = d.path().join("bad.npz");
    let err = fails(&[
        "record",
        "--run",
        s(&run),
        "--data",
        s(&stim),
        "--layers",
        "v4",
        "--pool",
        "grid:0",
        "--out",
        s(&bad),
    ]);
    assert!(err.contains("grid:K"), "{err}");
    assert!(!bad.exists());

    let dir = d.path().join("dyn");
    ok(&ventral(&[
        "dynamics",
        "--activations",
        &format!("BLT={}", last.display()),
        "--untrained",
        &format!("BLT={}", init.display()),
        "--out",
        s(&dir),
    ]));
    for f in [
        "accuracy.csv",
        "stability.csv",
        "t_stable_hist.csv",
        "representation_change.csv",
        "signatures.csv",
        "margins.csv",
        "zone_transitions.csv",
        "zone_entry.csv",
        "by_metadata.csv",
        "per_image.csv",
        "readout_linkage.csv",
        "run.json",
        "report.html",
        "plots/accuracy.png",
        "plots/readout_dendrogram.svg",
        "plots/representation_change_trained.svg",
        "plots/representation_change_untrained.png",
    ] {
        assert!(dir.join(f).is_file(), "missing {f}");
    }
    let acc = std::fs::read_to_string(dir.join("accuracy.csv")).unwrap();
    assert_eq!(acc.lines().count(), 5, "{acc}");
    assert!(
        acc.starts_with("timestep,accuracy,correct,n,ci_low,ci_high,gained,lost,p_mcnemar\n0,")
    );
    let stab = std::fs::read_to_string(dir.join("stability.csv")).unwrap();
    let total: usize = stab
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().parse::<usize>().unwrap())
        .sum();
    assert_eq!(total, out_shape[1]);
    let change = std::fs::read_to_string(dir.join("representation_change.csv")).unwrap();
    assert!(change.contains("\nuntrained,") && change.contains("\ntrained,"));
    let meta = std::fs::read_to_string(dir.join("by_metadata.csv")).unwrap();
    assert!(meta.contains("variation,\"low\""), "{meta}");
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("<svg") && !html.contains("src=\"http"));

    // Image metadata with the wrong number of rows: record names the file (the meta.* arrays
    // used to be dropped without a word).
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(stim.join("val/manifest.json")).unwrap()).unwrap();
    let meta_path = stim.join("val").join(m["metadata_file"].as_str().unwrap());
    let text = std::fs::read_to_string(&meta_path).unwrap();
    let cut: Vec<&str> = text.lines().collect();
    std::fs::write(&meta_path, cut[..cut.len() - 1].join("\n") + "\n").unwrap();
    let o = record(&d.path().join("short_meta.npz"), &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("rows for") && err.contains(meta_path.file_name().unwrap().to_str().unwrap()),
        "{err}"
    );
}

#[test]
fn reference_npz_and_bad_inputs() {
    let fx = ventral_core::fixtures::crate_dir(env!("CARGO_MANIFEST_DIR"))
        .join("../ventral-analysis/tests/fixtures");
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("ref");
    ok(&ventral(&[
        "dynamics",
        "--activations",
        s(&fx.join("small.npz")),
        "--untrained",
        s(&fx.join("small_untrained.npz")),
        "--out",
        s(&out),
    ]));
    let acc = std::fs::read_to_string(out.join("accuracy.csv")).unwrap();
    // Accuracy with its Wilson interval, and each step against the previous one on the same
    // images (gained, lost, exact McNemar p):
    // ```python
    // from statsmodels.stats.proportion import proportion_confint
    // from statsmodels.stats.contingency_tables import mcnemar
    // z = np.load("small.npz"); c = z["outputs_all"].argmax(-1) == z["labels_all"]
    // k = c[t].sum(); proportion_confint(k, 80, method="wilson")
    // g = (~c[t-1] & c[t]).sum(); l = (c[t-1] & ~c[t]).sum()
    // mcnemar([[0, g], [l, 0]], exact=True).pvalue
    // ```
    // (accuracy, correct, Wilson low, high, (gained, lost, p) against the previous step)
    type Row = (f64, usize, f64, f64, Option<(usize, usize, f64)>);
    #[rustfmt::skip]
    let golden: [Row; 5] = [
        (0.3875, 31, 0.2882456512530506, 0.4970634278924429, None),
        (0.5125, 41, 0.40493334216542254, 0.6189212045961893, Some((10, 0, 0.001953125))),
        (0.5875, 47, 0.4780404034589016, 0.6889414238723812, Some((6, 0, 0.03125))),
        (0.6125, 49, 0.5029365721075572, 0.7117543487469493, Some((2, 0, 0.5))),
        (0.6125, 49, 0.5029365721075572, 0.7117543487469493, Some((1, 1, 1.0))),
    ];
    let rows: Vec<Vec<&str>> = acc
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), golden.len(), "{acc}");
    let f = |s: &str| s.parse::<f64>().unwrap();
    for (t, (row, (a, k, lo, hi, change))) in rows.iter().zip(golden).enumerate() {
        assert_eq!(row[0], t.to_string(), "{acc}");
        assert_eq!(
            (f(row[1]), row[2], row[3]),
            (a, &*k.to_string(), "80"),
            "{acc}"
        );
        assert!(
            (f(row[4]) - lo).abs() < 1e-14 && (f(row[5]) - hi).abs() < 1e-14,
            "{acc}"
        );
        match change {
            None => assert_eq!(row[6..], ["", "", ""], "{acc}"),
            Some((g, l, p)) => {
                assert_eq!(
                    (row[6], row[7]),
                    (&*g.to_string(), &*l.to_string()),
                    "{acc}"
                );
                assert!((f(row[8]) - p).abs() < 1e-12 * p, "{acc}");
            }
        }
    }
    // The report's table of changes: (41 − 31) / 80 = 12.5 points, p = 0.001953125.
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        html.contains("exact McNemar")
            && html.contains("+12.5 points (10 gained, 0 lost, p = 0.002)")
            && html.contains("+0.0 points (1 gained, 1 lost, p = 1.000)"),
        "the report's table of step changes"
    );

    // Two networks on the same images: compared pairwise (values: tests/golden.rs of
    // ventral-analysis), in a CSV, the report and the terminal.
    let two = d.path().join("two");
    let o = ventral(&[
        "dynamics",
        "--activations",
        &format!("trained={}", s(&fx.join("small.npz"))),
        "--activations",
        &format!("untrained={}", s(&fx.join("small_untrained.npz"))),
        "--out",
        s(&two),
    ]);
    ok(&o);
    let cmp = std::fs::read_to_string(two.join("networks_compared.csv")).unwrap();
    assert!(
        cmp.starts_with("a,b,step_a,step_b,accuracy_a,accuracy_b,only_a,only_b,p_mcnemar\n")
            && cmp.contains("\ntrained,untrained,4,4,0.6125,0.15,40,3,3.02134139928966"),
        "{cmp}"
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("trained t=4 vs untrained t=4: +46.2 points (trained alone right on 40 images, untrained alone on 3, p < 0.001)"),
        "{err}"
    );
    let html = std::fs::read_to_string(two.join("report.html")).unwrap();
    assert!(html.contains("Networks compared on the same images"));

    // A file without the reference keys.
    let bad = d.path().join("bad.npz");
    let a =
        ventral_core::npy::NpyArray::new(vec![2], ventral_core::npy::NpyData::F32(vec![1.0, 2.0]))
            .unwrap();
    ventral_core::npy::write_npz(&bad, &[("x", &a)], false).unwrap();
    let bad_out = d.path().join("bad_out");
    let e = fails(&["dynamics", "--activations", s(&bad), "--out", s(&bad_out)]);
    assert!(e.contains("bad.npz") && e.contains("outputs_all"), "{e}");
    assert!(!bad_out.exists());
    // An untrained control of other images.
    fails(&[
        "dynamics",
        "--activations",
        s(&fx.join("small.npz")),
        "--untrained",
        s(&bad),
        "--out",
        s(&bad_out),
    ]);
    assert!(!bad_out.exists());
    // A truncated file.
    let bytes = std::fs::read(fx.join("small.npz")).unwrap();
    let trunc = d.path().join("trunc.npz");
    std::fs::write(&trunc, &bytes[..bytes.len() / 2]).unwrap();
    let e = fails(&["dynamics", "--activations", s(&trunc), "--out", s(&bad_out)]);
    assert!(e.contains("trunc.npz"), "{e}");
    assert!(!bad_out.exists());
    // A NaN in the readout: refused naming the array and where (it passed silently before).
    let mut z = ventral_core::npy::NpzReader::open(&fx.join("small.npz")).unwrap();
    let names = z.names();
    let mut arrays: Vec<(String, ventral_core::npy::NpyArray)> = names
        .iter()
        .map(|n| (n.clone(), z.read(n).unwrap()))
        .collect();
    for (n, a) in arrays.iter_mut() {
        if n == "readout_weight" {
            let mut v = a.to_f32().unwrap();
            v[7] = f32::NAN;
            *a = ventral_core::npy::NpyArray::new(
                a.shape.clone(),
                ventral_core::npy::NpyData::F32(v),
            )
            .unwrap();
        }
    }
    let nan = d.path().join("nan_readout.npz");
    let refs: Vec<(&str, &ventral_core::npy::NpyArray)> =
        arrays.iter().map(|(n, a)| (n.as_str(), a)).collect();
    ventral_core::npy::write_npz(&nan, &refs, false).unwrap();
    let e = fails(&["dynamics", "--activations", s(&nan), "--out", s(&bad_out)]);
    assert!(
        e.contains("nan_readout.npz") && e.contains("readout_weight") && e.contains("non-finite"),
        "{e}"
    );
    assert!(!bad_out.exists());
}
