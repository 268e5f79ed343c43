//! `ventral neural-synth` → `ventral neural-fit` end to end on the embedded stimuli, and the
//! bad-input paths (exit code 2, message naming the file and what is wrong, nothing written).

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::{fails, ok, s, ventral};

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
    // A subject step past the last is refused before anything is written (the features file
    // used to be left behind, blocking the rerun).
    let b = d.path().join("b.nc");
    let msg = fails(&[
        "neural-synth",
        "--stimuli",
        s(&stim),
        "--out",
        s(&b),
        "--behaviour",
        "--behaviour-step",
        "1000",
    ]);
    assert!(msg.contains("--behaviour-step 0 to"), "{msg}");
    for sib in ["b.nc", "b.features.npz", "b.truth.json", "b.behaviour.csv"] {
        assert!(!d.path().join(sib).exists(), "{sib} left behind");
    }
    // Pre-stimulus bins and negative offsets are values, not flags (clap took `-50:…` for an
    // unknown option).
    let pre = d.path().join("pre.nc");
    ok(&ventral(&[
        "neural-synth",
        "--stimuli",
        s(&stim),
        "--out",
        s(&pre),
        "--sites",
        "4",
        "--repetitions",
        "2",
        "--bins",
        "-50:100:10",
    ]));
    let truth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.path().join("pre.truth.json")).unwrap()).unwrap();
    assert_eq!(truth["time_bin_start"][0], -50.0, "{truth}");

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
    // Every fitted layer/step ranked per region and bin.
    let ranking = std::fs::read_to_string(out.join("layer_ranking.csv")).unwrap();
    assert!(
        ranking
            .starts_with("region,time_bin_start,time_bin_end,rank,model,layer,timestep,r,ceiled\n")
    );
    assert!(
        ranking
            .lines()
            .any(|l| l.starts_with("IT,150,160,1,gen,hidden,4,")),
        "{ranking}"
    );
    // The memory preflight refuses before anything is read or written.
    let small = d.path().join("fit_small");
    let o = ventral(&[
        "neural-fit",
        "--features",
        &format!("gen={}", s(&feats)),
        "--neural",
        s(&nc),
        "--out",
        s(&small),
        "--max-memory",
        "1K",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("a.features.npz") && err.contains("--max-memory"),
        "{err}"
    );
    assert!(!small.exists());
    for f in [
        "sites.csv",
        "predictivity_splits.csv",
        "ceiling_splits.csv",
        "run.json",
        "plots/IT_r.png",
        "plots/IT_r.svg",
        "plots/V4_ceiled.png",
    ] {
        assert!(out.join(f).exists(), "missing {f}");
    }

    // Brain-Score's own split draws, saved to splits.json; the same file given back with
    // --splits reproduces the scores exactly; a splits file naming unknown stimuli is refused.
    let fit_with = |splits: &str, out: &Path| {
        ventral(&[
            "neural-fit",
            "--features",
            &format!("gen={}", s(&feats)),
            "--neural",
            s(&nc),
            "--out",
            s(out),
            "--splits",
            splits,
            // 32 objects: Brain-Score's stratified split needs ≥ 32 test stimuli of 160.
            "--train-frac",
            "0.75",
            "--bootstraps",
            "1",
            "--ceiling-splits",
            "2",
            "--components",
            "3",
        ])
    };
    let bs = d.path().join("fit_bs");
    ok(&fit_with("brainscore:3", &bs));
    let sj: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bs.join("splits.json")).unwrap()).unwrap();
    assert!(
        sj["procedure"]
            .as_str()
            .unwrap()
            .contains("StratifiedShuffleSplit(n_splits=3, train_size=0.75, random_state=1)"),
        "{sj}"
    );
    let first = &sj["splits"][0];
    assert_eq!(first["train"].as_array().unwrap().len(), 120);
    assert_eq!(first["test"].as_array().unwrap().len(), 40);
    let again = d.path().join("fit_again");
    ok(&fit_with(s(&bs.join("splits.json")), &again));
    let table = |dir: &Path| std::fs::read_to_string(dir.join("predictivity.csv")).unwrap();
    assert_eq!(table(&bs), table(&again));
    let bad = d.path().join("bad_splits.json");
    std::fs::write(&bad, r#"{"splits":[{"train":["nope"],"test":["x"]}]}"#).unwrap();
    let o = fit_with(s(&bad), &d.path().join("fit_bad_splits"));
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("bad_splits.json") && e.contains("'nope'"), "{e}");

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
    assert!(csv.starts_with("model,layer,timestep,region,time_bin_start,time_bin_end,rdm,comparison,value,ci_low,ci_high,resamples\n"));
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
    // An offset for a region the assembly lacks is an error naming the regions present (was
    // silently ignored, every region falling back to the default).
    let err = fails(&[
        "neural-fit",
        "--features",
        s(&feats),
        "--neural",
        s(&nc),
        "--offset-ms",
        "V1=90",
        "--out",
        s(&bad_out),
    ]);
    assert!(err.contains("no region V1") && err.contains("IT"), "{err}");
    assert!(!bad_out.exists());

    // Issue 13's pathologies, each refused before any solver runs, naming the file at fault:
    // features with zero time steps (panicked in features.rs), absurd feature magnitudes, and
    // responses ×1e300 (ended in "SVD did not converge" blamed on the features).
    let fit_err = |features: &Path, neural: &Path| {
        fails(&[
            "neural-fit",
            "--features",
            s(features),
            "--neural",
            s(neural),
            "--out",
            s(&bad_out),
        ])
    };
    let empty = ventral_core::npy::NpyArray::new(
        vec![0, 160, 8],
        ventral_core::npy::NpyData::F32(Vec::new()),
    )
    .unwrap();
    ventral_core::npy::write_npz(&short, &[("layer", &empty)], false).unwrap();
    let err = fit_err(&short, &nc);
    assert!(
        err.contains("short.npz") && err.contains("no time steps"),
        "{err}"
    );
    let huge = ventral_core::npy::NpyArray::new(
        vec![1, 160, 2],
        ventral_core::npy::NpyData::F32(vec![1e35; 320]),
    )
    .unwrap();
    ventral_core::npy::write_npz(&short, &[("layer", &huge)], false).unwrap();
    let err = fit_err(&short, &nc);
    assert!(
        err.contains("short.npz") && err.contains("rescale"),
        "{err}"
    );
    let mut asm = ventral_neural::Assembly::read(&nc).unwrap();
    asm.data.iter_mut().for_each(|v| *v *= 1e300);
    let big = d.path().join("big.nc");
    asm.write(&big).unwrap();
    let err = fit_err(&feats, &big);
    assert!(
        err.contains("big.nc") && err.contains("rescale") && !err.contains("features.npz"),
        "{err}"
    );
    assert!(!bad_out.exists());

    // Constant (all-zero) features are fitted — the mean is predicted, r is left empty — and
    // the run says so instead of failing in the solver.
    let zeros = ventral_core::npy::NpyArray::new(
        vec![2, 160, 4],
        ventral_core::npy::NpyData::F32(vec![0.0; 1280]),
    )
    .unwrap();
    ventral_core::npy::write_npz(&short, &[("layer", &zeros)], false).unwrap();
    let zero_out = d.path().join("fit_zero");
    let o = ventral(&[
        "neural-fit",
        "--features",
        s(&short),
        "--neural",
        s(&nc),
        "--out",
        s(&zero_out),
        "--splits",
        "2",
        "--ceiling-splits",
        "2",
        "--bootstraps",
        "1",
    ]);
    ok(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("constant across the stimuli at step(s) [0, 1]"),
        "{err}"
    );
}

/// Median of the finite values of one CSV column.
fn column_median(csv: &str, col: &str) -> f64 {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let c = header.iter().position(|h| *h == col).unwrap();
    let mut v: Vec<f64> = lines
        .filter_map(|l| l.split(',').nth(c).and_then(|x| x.parse::<f64>().ok()))
        .filter(|x| x.is_finite())
        .collect();
    v.sort_by(f64::total_cmp);
    assert!(!v.is_empty(), "no finite {col}");
    v[v.len() / 2]
}

/// The `summary.csv` row of a model as a map.
fn summary_row(dir: &Path, model: &str) -> std::collections::HashMap<String, f64> {
    let text = std::fs::read_to_string(dir.join("summary.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
    let row = lines.find(|l| l.starts_with(&format!("{model},"))).unwrap();
    header
        .into_iter()
        .zip(row.split(','))
        .map(|(h, v)| (h, v.parse::<f64>().unwrap_or(f64::NAN)))
        .collect()
}

/// Known answers for `ventral ost` on synthetic recordings: a later IT latency gives later
/// target OSTs (by the latency difference), the generating features' OSTs follow the targets'
/// order while random features do not, and targets written by one run reproduce it from file.
#[test]
fn ost_known_answers_and_bad_targets() {
    let d = tempfile::tempdir().unwrap();
    let stim = d.path().join("stim");
    ok(&ventral(&[
        "stimuli",
        "--out",
        s(&stim),
        "--num-images",
        "300",
    ]));
    let mut medians = Vec::new();
    for lat in ["110", "150"] {
        let nc = d.path().join(format!("it{lat}.nc"));
        ok(&ventral(&[
            "neural-synth",
            "--stimuli",
            s(&stim),
            "--out",
            s(&nc),
            "--sites",
            "24",
            "--latency",
            &format!("V4=90,IT={lat}"),
        ]));
        let out = d.path().join(format!("ost{lat}"));
        let feats = d.path().join(format!("it{lat}.features.npz"));
        ok(&ventral(&[
            "ost",
            "--features",
            &format!("gen={}", s(&feats)),
            "--neural",
            s(&nc),
            "--out",
            s(&out),
            "--splits",
            "5",
            "--bootstraps",
            "50",
            "--offset-ms",
            lat,
            "--procedure",
            "pooled",
            "--decoder",
            "zero-init",
        ]));
        let targets = std::fs::read_to_string(out.join("targets.csv")).unwrap();
        medians.push(column_median(&targets, "ost_ms"));
        let gen_row = summary_row(&out, "gen");
        assert!(
            gen_row["spearman"] > 0.25 && gen_row["ci_low"] > 0.0,
            "generating features' OST Spearman {:?}",
            gen_row
        );
        assert!(gen_row["fraction_solved"] > 0.8, "{gen_row:?}");
        assert!(out.join("plots/i1.png").exists() && out.join("plots/ost_gen_hidden.svg").exists());
    }
    let shift = medians[1] - medians[0];
    assert!(
        (shift - 40.0).abs() <= 12.0,
        "median target OST moved by {shift} ms for a 40 ms later IT latency ({medians:?})"
    );

    // Random features: nothing to decode, so (almost) nothing is solved in target order.
    let feats = d.path().join("it150.features.npz");
    let ids = ventral_core::npy::NpzReader::open(&feats)
        .unwrap()
        .read("stimulus_id")
        .unwrap();
    let n = ids.shape[0];
    let mut rng = ventral_core::rng::stream(5, "test-random-features", &[]);
    let rand: Vec<f32> = (0..19 * n * 32)
        .map(|_| (rand::Rng::next_u64(&mut rng) >> 40) as f32 / (1u64 << 24) as f32)
        .collect();
    let rand =
        ventral_core::npy::NpyArray::new(vec![19, n, 32], ventral_core::npy::NpyData::F32(rand))
            .unwrap();
    let rpath = d.path().join("random.npz");
    ventral_core::npy::write_npz(&rpath, &[("hidden", &rand), ("stimulus_id", &ids)], false)
        .unwrap();
    let targets = d.path().join("ost150").join("targets.csv");
    let out = d.path().join("ost_file");
    ok(&ventral(&[
        "ost",
        "--features",
        &format!("gen={}", s(&d.path().join("it150.features.npz"))),
        "--features",
        &format!("random={}", s(&rpath)),
        "--targets",
        s(&targets),
        "--out",
        s(&out),
        "--splits",
        "5",
        "--bootstraps",
        "50",
        "--offset-ms",
        "150",
        "--procedure",
        "pooled",
        "--decoder",
        "zero-init",
    ]));
    // Targets from file reproduce the run that wrote them.
    let row = |dir: &Path| {
        std::fs::read_to_string(dir.join("summary.csv"))
            .unwrap()
            .lines()
            .find(|l| l.starts_with("gen,"))
            .unwrap()
            .to_string()
    };
    assert_eq!(row(&out), row(&d.path().join("ost150")));
    let r = summary_row(&out, "random");
    let g = summary_row(&out, "gen");
    let rs = if r["spearman"].is_finite() {
        r["spearman"]
    } else {
        0.0
    };
    assert!(
        g["spearman"] > rs + 0.2 && g["fraction_solved"] > r["fraction_solved"].max(0.0) + 0.3,
        "generating {g:?} vs random {r:?}"
    );

    // Brain-Score's procedure (the default): one r per split in ost_splits.csv, whose mean is
    // the summary's score; the splits it used in splits.json, which reproduce the run. Its i1
    // needs every object among each split's test images: 32 objects in 30 test images is
    // refused with the objects named (Brain-Score raises KeyError), and nothing is written.
    let bs = d.path().join("ost_bs");
    let bs_args = |t: &Path, out: &Path, splits: &str| {
        vec![
            "ost".to_string(),
            "--features".into(),
            format!("gen={}", s(&d.path().join("it150.features.npz"))),
            "--targets".into(),
            s(t).to_string(),
            "--out".into(),
            s(out).to_string(),
            "--splits".into(),
            splits.to_string(),
            "--offset-ms".into(),
            "150".into(),
            "--test-frac".into(),
            "0.3".into(),
        ]
    };
    let mut args = bs_args(&targets, &bs, "4");
    args.truncate(args.len() - 2);
    let e = fails(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        e.contains("OST split 0") && e.contains("of 32 objects") && e.contains("KeyError"),
        "{e}"
    );
    assert!(!bs.exists());
    // Categories as the objects (8 of them, ≈ 37 images each) fit in 90 test images.
    let cat_targets = d.path().join("cat_targets.csv");
    let text = std::fs::read_to_string(&targets).unwrap();
    let relabelled: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(k, l)| {
            if k == 0 {
                return l.to_string();
            }
            let mut f: Vec<String> = l.split(',').map(String::from).collect();
            f[1] = f[1].split('_').next().unwrap().to_string();
            f.join(",")
        })
        .collect();
    std::fs::write(&cat_targets, relabelled.join("\n") + "\n").unwrap();
    let args = bs_args(&cat_targets, &bs, "4");
    ok(&ventral(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    ));
    let g = summary_row(&bs, "gen");
    let per_split: Vec<f64> = std::fs::read_to_string(bs.join("ost_splits.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            l.split(',')
                .nth(3)
                .unwrap()
                .parse::<f64>()
                .unwrap_or(f64::NAN)
        })
        .collect();
    assert_eq!(per_split.len(), 4, "{per_split:?}");
    let finite: Vec<f64> = per_split
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    let mean = finite.iter().sum::<f64>() / finite.len() as f64;
    assert!(
        (g["spearman"] - mean).abs() < 1e-9,
        "{g:?} vs {per_split:?}"
    );
    let sj: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bs.join("splits.json")).unwrap()).unwrap();
    assert_eq!(sj["splits"].as_array().unwrap().len(), 4);
    let again = d.path().join("ost_bs_again");
    let args = bs_args(&cat_targets, &again, s(&bs.join("splits.json")));
    ok(&ventral(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    ));
    assert_eq!(
        std::fs::read_to_string(again.join("ost_splits.csv")).unwrap(),
        std::fs::read_to_string(bs.join("ost_splits.csv")).unwrap()
    );
    // A splits.json is for Brain-Score's procedure; its seed must fit NumPy's RandomState.
    let bad_out = d.path().join("ost_bad");
    let mut args = bs_args(&cat_targets, &bad_out, s(&bs.join("splits.json")));
    args.extend(["--procedure".to_string(), "pooled".to_string()]);
    let e = fails(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(e.contains("the pooled procedure takes a count"), "{e}");
    let mut args = bs_args(&cat_targets, &bad_out, "4");
    args.extend(["--seed".to_string(), "5000000000".to_string()]);
    let e = fails(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        e.contains("--seed 5000000000") && e.contains("RandomState"),
        "{e}"
    );
    assert!(!bad_out.exists());

    // Bad targets: a missing column, a bad number, unknown stimuli; nothing written.
    let bad = d.path().join("bad.csv");
    let bad_out = d.path().join("bad_out");
    std::fs::write(&bad, "stimulus_id,object_name,ost_ms\na,x,100\nb,y,110\n").unwrap();
    let base = |t: &Path| {
        vec![
            "ost".to_string(),
            "--features".into(),
            s(&feats).to_string(),
            "--targets".into(),
            s(t).to_string(),
            "--out".into(),
            s(&bad_out).to_string(),
        ]
    };
    let args = base(&bad);
    let e = fails(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(e.contains("bad.csv") && e.contains("i1_threshold"), "{e}");
    std::fs::write(
        &bad,
        "stimulus_id,object_name,ost_ms,i1_threshold\na,x,100,1.0\nb,y,110,high\n",
    )
    .unwrap();
    let e = fails(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        e.contains("bad.csv") && e.contains("row 3") && e.contains("high"),
        "{e}"
    );
    std::fs::write(
        &bad,
        "stimulus_id,object_name,ost_ms,i1_threshold\na,x,100,1.0\nb,y,110,1.0\n",
    )
    .unwrap();
    // Unknown ids: both files are named, the targets as the source of the ids (issue 13's
    // "wrong file blamed"), with the first unknown id.
    let e = fails(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        e.contains("features.npz") && e.contains("the targets") && e.contains("bad.csv"),
        "{e}"
    );
    assert!(e.contains("'a' (entry 1)"), "{e}");
    assert!(!bad_out.exists());
    // A decoder learning rate that cannot train is refused before anything runs.
    for lr in ["nan", "-1", "inf"] {
        let e = fails(&[
            "ost",
            "--features",
            s(&feats),
            "--targets",
            s(&targets),
            "--out",
            s(&bad_out),
            &format!("--lr={lr}"),
        ]);
        assert!(e.contains("--lr must be finite and > 0"), "{e}");
    }
    assert!(!bad_out.exists());
}

/// Rows of `behaviour.csv` for (model, metric) at the last step: accuracy and ceiled value.
fn behaviour_last(dir: &Path, model: &str, metric: &str) -> (f64, f64) {
    let text = std::fs::read_to_string(dir.join("behaviour.csv")).unwrap();
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |n: &str| head.iter().position(|h| *h == n).unwrap();
    let rows: Vec<Vec<&str>> = lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|r| r[col("model")] == model && r[col("metric")] == metric)
        .collect();
    let last = rows
        .iter()
        .max_by_key(|r| r[col("step")].parse::<usize>().unwrap())
        .unwrap();
    let num = |n: &str| last[col(n)].parse::<f64>().unwrap_or(f64::NAN);
    (num("accuracy"), num("ceiled"))
}

/// `ventral behaviour` on `neural-synth --behaviour` trials: the generating features reach a
/// consistency near the trials' reliability, random features about 0, out of fold and with a
/// separate fitting set; bad trials are named and nothing is written.
#[test]
fn behaviour_known_answers_and_bad_trials() {
    let d = tempfile::tempdir().unwrap();
    let stim = d.path().join("stim");
    ok(&ventral(&[
        "stimuli",
        "--out",
        s(&stim),
        "--num-images",
        "320",
    ]));
    let nc = d.path().join("b.nc");
    ok(&ventral(&[
        "neural-synth",
        "--stimuli",
        s(&stim),
        "--out",
        s(&nc),
        "--sites",
        "4",
        "--bins",
        "70:130:10",
        "--repetitions",
        "2",
        "--behaviour",
        "--behaviour-trials",
        "12",
    ]));
    let feats = d.path().join("b.features.npz");
    let trials = d.path().join("b.behaviour.csv");
    assert!(trials.exists());
    // Random features with the same stimulus ids and shape.
    let mut npz = ventral_core::npy::NpzReader::open(&feats).unwrap();
    let ids = npz.read("stimulus_id").unwrap();
    let hidden = npz.read("hidden").unwrap();
    let mut rng = ventral_core::rng::stream(9, "test-random-features", &[]);
    let rand: Vec<f32> = (0..hidden.shape.iter().product::<usize>())
        .map(|_| ventral_neural::synth::normal(&mut rng) as f32)
        .collect();
    let rand = ventral_core::npy::NpyArray::new(
        hidden.shape.clone(),
        ventral_core::npy::NpyData::F32(rand),
    )
    .unwrap();
    let rpath = d.path().join("random.npz");
    ventral_core::npy::write_npz(&rpath, &[("hidden", &rand), ("stimulus_id", &ids)], false)
        .unwrap();

    let out = d.path().join("beh");
    ok(&ventral(&[
        "behaviour",
        "--features",
        &format!("gen={}", s(&feats)),
        "--features",
        &format!("random={}", s(&rpath)),
        "--trials",
        s(&trials),
        "--out",
        s(&out),
        "--folds",
        "3",
        "--metrics",
        "i1n,i2n,i1",
    ]));
    for f in [
        "behaviour_halvings.csv",
        "target.csv",
        "probabilities.npz",
        "run.json",
        "plots/behaviour_gen.png",
    ] {
        assert!(out.join(f).exists(), "{f}");
    }
    let (gen_acc, gen_i1n) = behaviour_last(&out, "gen", "i1n");
    let (rand_acc, rand_i1n) = behaviour_last(&out, "random", "i1n");
    assert!(gen_i1n > 0.5, "generating features: ceiled i1n {gen_i1n}");
    assert!(
        rand_i1n.abs() < 0.3,
        "random features: ceiled i1n {rand_i1n}"
    );
    assert!(gen_acc > rand_acc, "accuracy {gen_acc} vs {rand_acc}");
    assert!(behaviour_last(&out, "gen", "i2n").1 > 0.3);

    // Brain-Score's protocol: a decoder fitted on the stimulus set's labelled images.
    let set = stim.join("stimulus_set").join("stimulus_set.csv");
    let out_fit = d.path().join("beh_fit");
    ok(&ventral(&[
        "behaviour",
        "--features",
        &format!("gen={}", s(&feats)),
        "--trials",
        s(&trials),
        "--fit-features",
        s(&feats),
        "--fit-stimuli",
        s(&set),
        "--out",
        s(&out_fit),
    ]));
    assert!(behaviour_last(&out_fit, "gen", "i1n").1 > 0.5);

    // Bad trials: a choice that was not offered, named with the file; nothing written.
    let text = std::fs::read_to_string(&trials).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let mut f: Vec<String> = lines[5].split(',').map(String::from).collect();
    f[3] = "unicorn".into();
    lines[5] = f.join(",");
    let bad = d.path().join("bad.csv");
    std::fs::write(&bad, lines.join("\n")).unwrap();
    let out_bad = d.path().join("beh_bad");
    let msg = fails(&[
        "behaviour",
        "--features",
        s(&feats),
        "--trials",
        s(&bad),
        "--out",
        s(&out_bad),
    ]);
    assert!(msg.contains("bad.csv") && msg.contains("unicorn"), "{msg}");
    assert!(!out_bad.exists());
    // Bad fitting stimuli: refused naming the file; nothing written.
    let refused_fit = |set: &std::path::Path| {
        let msg = fails(&[
            "behaviour",
            "--features",
            s(&feats),
            "--trials",
            s(&trials),
            "--fit-features",
            s(&feats),
            "--fit-stimuli",
            s(set),
            "--out",
            s(&out_bad),
        ]);
        assert!(!out_bad.exists());
        msg
    };
    // Naming an object the trials do not have.
    let bad_set = d.path().join("set.csv");
    std::fs::write(&bad_set, "stimulus_id,object_name\nx,unicorn\n").unwrap();
    let msg = refused_fit(&bad_set);
    assert!(msg.contains("set.csv") && msg.contains("unicorn"), "{msg}");
    // Listing one image twice.
    let set_text = std::fs::read_to_string(&set).unwrap();
    let first_row = set_text.lines().nth(1).unwrap().to_string();
    let dup_set = d.path().join("set_dup.csv");
    std::fs::write(&dup_set, format!("{}\n{first_row}\n", set_text.trim_end())).unwrap();
    let msg = refused_fit(&dup_set);
    assert!(
        msg.contains("set_dup.csv") && msg.contains("twice"),
        "{msg}"
    );
}

/// Repetition counts of 2⁶⁴ − 1 (a typo away from a real one) used to panic allocating their
/// index vectors (`neural-fit --splits`, `--ceiling-splits`, `--bootstraps`, `rsa
/// --bootstraps`, `ost --splits`) or run without end (`behaviour --folds`, `--halvings`); they
/// are refused before any input is read, naming the option and its limit.
#[test]
fn absurd_repetition_counts_are_refused_up_front() {
    let d = tempfile::tempdir().unwrap();
    let (feats, nc, trials) = (
        d.path().join("missing.features.npz"),
        d.path().join("missing.nc"),
        d.path().join("missing.csv"),
    );
    let big = "18446744073709551615";
    let out = d.path().join("out");
    let (f, n, t, o) = (s(&feats), s(&nc), s(&trials), s(&out));
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "neural-fit",
                "--features",
                f,
                "--neural",
                n,
                "--splits",
                big,
            ],
            "--splits",
        ),
        (
            vec![
                "neural-fit",
                "--features",
                f,
                "--neural",
                n,
                "--splits",
                "1001",
            ],
            "1 to 1000",
        ),
        (
            vec![
                "neural-fit",
                "--features",
                f,
                "--neural",
                n,
                "--ceiling-splits",
                big,
            ],
            "--ceiling-splits",
        ),
        (
            vec![
                "neural-fit",
                "--features",
                f,
                "--neural",
                n,
                "--bootstraps",
                big,
            ],
            "--bootstraps",
        ),
        (
            vec!["rsa", "--features", f, "--neural", n, "--bootstraps", big],
            "--bootstraps",
        ),
        (
            vec!["ost", "--features", f, "--neural", n, "--splits", big],
            "--splits",
        ),
        (
            vec![
                "ost",
                "--features",
                f,
                "--neural",
                n,
                "--bootstraps",
                "100001",
            ],
            "at most 100000",
        ),
        (
            vec!["behaviour", "--features", f, "--trials", t, "--folds", big],
            "--folds",
        ),
        (
            vec![
                "behaviour",
                "--features",
                f,
                "--trials",
                t,
                "--halvings",
                "1001",
            ],
            "at most 1000",
        ),
        (
            vec!["ost", "--features", f, "--neural", n, "--epochs", big],
            "--epochs",
        ),
    ];
    for (mut args, says) in cases {
        args.extend(["--out", o]);
        let msg = fails(&args);
        assert!(msg.contains(says), "{args:?}: {msg}");
        assert!(!msg.contains("panicked"), "{args:?}: {msg}");
        assert!(!out.exists(), "{args:?}");
    }
}
