#![allow(clippy::unwrap_used)]
//! Known-answer tests on synthetic recordings: the ceiling recovers the generator's
//! reliability, the generating features out-predict random features, the recovered latency is
//! the generator's, and an assembly written and read back gives the same answers.

use rand::Rng;
use ventral_core::rng::stream;
use ventral_neural::ceiling::latency_from_ceiling;
use ventral_neural::features::{Features, Layer};
use ventral_neural::predictivity::{FitOptions, Row, StepMapping, ceilings, fit_predictivity};
use ventral_neural::recordings::Recordings;
use ventral_neural::regression::Pls;
use ventral_neural::stats::nan_median;
use ventral_neural::synth::{Synth, SynthConfig, generate, normal};
use ventral_neural::{Assembly, predictivity::Regressor};

fn gaussian_inputs(n: usize, d: usize, seed: u64) -> Vec<Vec<f64>> {
    let mut rng = stream(seed, "test-inputs", &[]);
    (0..n)
        .map(|_| (0..d).map(|_| normal(&mut rng)).collect())
        .collect()
}

fn synth() -> (SynthConfig, Synth) {
    let cfg = SynthConfig {
        regions: vec![("V4".into(), 90.0, 16), ("IT".into(), 120.0, 16)],
        n_bins: 12,
        hidden: 32,
        snr: 1.0,
        repetitions: 8,
        ..SynthConfig::default()
    };
    let n = 240;
    let ids: Vec<String> = (0..n).map(|i| format!("stim{i:04}")).collect();
    let objects: Vec<String> = (0..n).map(|i| format!("obj{}", i % 8)).collect();
    let x = gaussian_inputs(n, 192, 3);
    let s = generate(&cfg, &ids, &objects, &x).unwrap();
    (cfg, s)
}

fn features_of(s: &Synth, name: &str, data: Vec<f32>) -> Features {
    Features {
        model: name.into(),
        source: name.into(),
        layers: vec![Layer {
            name: "hidden".into(),
            steps: s.steps,
            n: s.stimulus_ids.len(),
            d: s.hidden,
            data,
            first_step: 0,
        }],
        rows: (0..s.stimulus_ids.len()).collect(),
    }
}

fn opts(cfg: &SynthConfig) -> FitOptions {
    FitOptions {
        regressor: Regressor::Pls(Pls::new(10)),
        n_splits: 5,
        steps: StepMapping::Recurrent {
            step_ms: 10.0,
            offsets: cfg
                .regions
                .iter()
                .map(|(r, l, _)| (r.clone(), *l))
                .collect(),
            default_offset: None,
        },
        consistency_bootstraps: 2,
        ..FitOptions::default()
    }
}

#[test]
fn ceiling_latency_and_feature_ranking_recover_the_generator() {
    let (cfg, s) = synth();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("synth.nc");
    s.assembly.write(&path).unwrap();
    let asm = Assembly::read(&path).unwrap();
    let rec = Recordings::from_assembly(&asm, "synth.nc").unwrap();
    assert_eq!(rec.n_reps, cfg.repetitions);
    assert_eq!(rec.n_stimuli(), 240);
    let o = opts(&cfg);
    let ceil = ceilings(&rec, &o).unwrap().unwrap();
    let starts: Vec<f64> = rec.bins.iter().map(|b| b.0).collect();
    for (ri, (region, sites)) in rec.region_sites().iter().enumerate() {
        // Latency: the generator's, exactly (first bin with half the peak ceiling).
        let (_, lat, _) = cfg.regions.iter().find(|r| &r.0 == region).unwrap();
        let (got, _) = latency_from_ceiling(&ceil[ri], &starts).unwrap();
        assert_eq!(got, *lat, "{region} latency");
        // Ceiling vs the true median reliability of the region's sites, every bin.
        for c in &ceil[ri] {
            let truth = nan_median(
                &sites
                    .iter()
                    .map(|&k| s.sites[k].3[c.bin])
                    .collect::<Vec<_>>(),
            );
            let half = 0.5 * (c.ci_high - c.ci_low);
            assert!(
                (c.value - truth).abs() <= (2.0 * half).max(0.04),
                "{region} bin {}: ceiling {} [{}, {}] vs true reliability {truth}",
                starts[c.bin],
                c.value,
                c.ci_low,
                c.ci_high
            );
        }
    }
    // Generating features vs random features of the same shape.
    let truth = features_of(&s, "truth", s.features.clone());
    let mut rng = stream(9, "random-features", &[]);
    let random: Vec<f32> = (0..s.features.len())
        .map(|_| (rng.next_u64() % 1000) as f32 / 1000.0)
        .collect();
    let random = features_of(&s, "random", random);
    let rt = fit_predictivity(&truth, &rec, Some(&ceil), &o)
        .unwrap()
        .rows;
    let rr = fit_predictivity(&random, &rec, Some(&ceil), &o)
        .unwrap()
        .rows;
    let get = |rows: &[Row], region: &str, start: f64, metric: &str| {
        rows.iter()
            .find(|r| r.region == region && r.time_bin_start == start && r.metric == metric)
            .unwrap()
            .value
    };
    for (region, lat, _) in &cfg.regions {
        for &start in starts.iter().filter(|&&t| t >= lat + 20.0) {
            let (a, b) = (get(&rt, region, start, "r"), get(&rr, region, start, "r"));
            assert!(
                a > 0.5 && a > b + 0.3,
                "{region} {start}: generating r {a} vs random {b}"
            );
            let ceiled = get(&rt, region, start, "ceiled");
            assert!(
                ceiled > 0.6 && ceiled < 1.3,
                "{region} {start}: ceiled {ceiled}"
            );
            assert!(get(&rt, region, start, "consistency").is_finite());
        }
        // Before the latency there is nothing to predict.
        let early = get(&rt, region, starts[0], "r");
        assert!(early.abs() < 0.25, "{region} first bin r {early}");
    }
}

#[test]
fn bad_assemblies_name_the_file_and_coordinate() {
    let (_, s) = synth();
    // NaN site.
    let mut a = s.assembly.clone();
    a.data[5 * a.shape[2] + 3] = f64::NAN;
    let e = Recordings::from_assembly(&a, "bad.nc")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("bad.nc") && e.contains("V4_005") && e.contains("100–110 ms"),
        "{e}"
    );
    // Missing stimulus ids.
    let mut a = s.assembly.clone();
    a.coords.remove("stimulus_id");
    let e = Recordings::from_assembly(&a, "bad.nc")
        .unwrap_err()
        .to_string();
    assert!(e.contains("stimulus_id"), "{e}");
    // One repetition: no ceiling, clear error if asked for one.
    let mut a = s.assembly.clone();
    let keep: Vec<usize> = (0..a.shape[0]).filter(|p| p % 8 == 0).collect();
    let row = a.shape[1] * a.shape[2];
    a.data = keep
        .iter()
        .flat_map(|&p| a.data[p * row..(p + 1) * row].to_vec())
        .collect();
    a.shape[0] = keep.len();
    for c in a.coords.values_mut().filter(|c| c.dim == "presentation") {
        c.values = match &c.values {
            ventral_neural::CoordValues::Str(v) => {
                ventral_neural::CoordValues::Str(keep.iter().map(|&p| v[p].clone()).collect())
            }
            ventral_neural::CoordValues::Int(v) => {
                ventral_neural::CoordValues::Int(keep.iter().map(|&p| v[p]).collect())
            }
            ventral_neural::CoordValues::Float(v) => {
                ventral_neural::CoordValues::Float(keep.iter().map(|&p| v[p]).collect())
            }
        };
    }
    let rec = Recordings::from_assembly(&a, "single.nc").unwrap();
    assert_eq!(rec.n_reps, 1);
    let e = ventral_neural::ceiling::split_half_ceiling(&rec, &[0], 2, 0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("single.nc") && e.contains("repetition"), "{e}");
}

#[test]
fn plain_npz_with_a_toml_naming_the_axes_reads_like_the_netcdf() {
    use ventral_core::npy::{NpyArray, NpyData, write_npz};
    use ventral_neural::CoordValues;
    let (_, s) = synth();
    let a = &s.assembly;
    let dir = tempfile::tempdir().unwrap();
    let mut arrays: Vec<(String, NpyArray)> = vec![(
        "resp".into(),
        NpyArray::new(a.shape.clone(), NpyData::F64(a.data.clone())).unwrap(),
    )];
    let mut coords = String::new();
    for (name, c) in &a.coords {
        let n = c.values.len();
        let data = match &c.values {
            CoordValues::Str(v) => NpyData::Bytes {
                width: v.iter().map(String::len).max().unwrap_or(1),
                values: v.iter().map(|x| x.as_bytes().to_vec()).collect(),
            },
            CoordValues::Int(v) => NpyData::I64(v.clone()),
            CoordValues::Float(v) => NpyData::F64(v.clone()),
        };
        arrays.push((format!("c_{name}"), NpyArray::new(vec![n], data).unwrap()));
        coords.push_str(&format!("{name} = \"c_{name}\"\n"));
    }
    let refs: Vec<(&str, &NpyArray)> = arrays.iter().map(|(n, x)| (n.as_str(), x)).collect();
    write_npz(&dir.path().join("resp.npz"), &refs, false).unwrap();
    let toml = dir.path().join("resp.toml");
    std::fs::write(
        &toml,
        format!("npz = \"resp.npz\"\ndata = \"resp\"\ndims = [\"presentation\", \"neuroid\", \"time_bin\"]\n\n[coords]\n{coords}"),
    )
    .unwrap();
    let b = Assembly::read_any(&toml).unwrap();
    let (ra, rb) = (
        Recordings::from_assembly(a, "a").unwrap(),
        Recordings::from_assembly(&b, "b").unwrap(),
    );
    assert_eq!(ra.mean, rb.mean);
    assert_eq!(ra.stimulus_ids, rb.stimulus_ids);
    assert_eq!(ra.regions, rb.regions);
    assert_eq!(ra.bins, rb.bins);
    assert_eq!(ra.n_reps, rb.n_reps);
    // Wrong number of dims: the error names the TOML.
    std::fs::write(
        &toml,
        "npz = \"resp.npz\"\ndata = \"resp\"\ndims = [\"presentation\", \"neuroid\"]\n",
    )
    .unwrap();
    let e = Assembly::read_any(&toml).unwrap_err().to_string();
    assert!(e.contains("resp.toml") && e.contains("dims"), "{e}");
    // A typo in a key is refused.
    std::fs::write(&toml, "npz = \"resp.npz\"\ndata = \"resp\"\ndimz = []\n").unwrap();
    assert!(
        Assembly::read_any(&toml)
            .unwrap_err()
            .to_string()
            .contains("resp.toml")
    );
}

/// The dual (Gram-matrix) fits give the primal fits' scores — r, ceiled, consistency and every
/// per-site r — for PLS and ridge, with the consistency resamples that fit each trial half.
#[test]
fn dual_and_primal_fits_give_the_same_scores() {
    use ventral_neural::predictivity::Form;
    use ventral_neural::regression::RidgeCv;
    let (cfg, s) = synth();
    let rec = Recordings::from_assembly(&s.assembly, "synth").unwrap();
    let feats = features_of(&s, "truth", s.features.clone());
    let ceil = ceilings(&rec, &opts(&cfg)).unwrap().unwrap();
    for regressor in [
        Regressor::Pls(Pls::new(10)),
        Regressor::Ridge(RidgeCv::default()),
    ] {
        let run = |form| {
            let o = FitOptions {
                regressor: regressor.clone(),
                form,
                ..opts(&cfg)
            };
            fit_predictivity(&feats, &rec, Some(&ceil), &o).unwrap()
        };
        let (p, d) = (run(Form::Primal), run(Form::Dual));
        assert_eq!(p.rows.len(), d.rows.len());
        for (a, b) in p.rows.iter().zip(&d.rows) {
            assert_eq!(
                (&a.layer, a.timestep, &a.metric),
                (&b.layer, b.timestep, &b.metric)
            );
            for (x, y) in [
                (a.value, b.value),
                (a.ci_low, b.ci_low),
                (a.ci_high, b.ci_high),
            ] {
                assert!(
                    (x - y).abs() <= 1e-9 * (1.0 + x.abs()) || (x.is_nan() && y.is_nan()),
                    "{} {} {}: primal {x} vs dual {y}",
                    regressor.name(),
                    a.metric,
                    a.time_bin_start
                );
            }
        }
        for (a, b) in p.sites.iter().zip(&d.sites) {
            let same = (a.5 - b.5).abs() <= 1e-9 || (a.5.is_nan() && b.5.is_nan());
            assert!(same, "site {}: {} vs {}", a.4, a.5, b.5);
        }
    }
}

/// `neural-fit` streams features one (layer, step) at a time from the npz (`Features::open`)
/// instead of reading the file whole: the same rows, per-site values, per-split scores and
/// constant-step report, compressed or stored members, per-bin and span-time (`shared`) fits,
/// a [T, N, D] and an [N, D] layer; a bad value in a late step is still an error naming the
/// file, array, step and row.
#[test]
fn streamed_features_fit_exactly_like_features_read_whole() {
    use ventral_core::npy::{NpyArray, NpyData, write_npz};
    let (cfg, s) = synth();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("synth.nc");
    s.assembly.write(&path).unwrap();
    let rec = Recordings::from_assembly(&Assembly::read(&path).unwrap(), "synth.nc").unwrap();
    let n = s.stimulus_ids.len();
    let mut stepped = s.features.clone();
    // Step 0 all zero: an area the input has not reached yet.
    stepped[..n * s.hidden].iter_mut().for_each(|v| *v = 0.0);
    let recurrent = NpyArray::new(vec![s.steps, n, s.hidden], NpyData::F32(stepped)).unwrap();
    let flat = NpyArray::new(
        vec![n, s.hidden],
        NpyData::F32(s.features[n * s.hidden..2 * n * s.hidden].to_vec()),
    )
    .unwrap();
    for compress in [false, true] {
        let npz = dir.path().join(format!("f{compress}.npz"));
        write_npz(&npz, &[("it", &recurrent), ("pool", &flat)], compress).unwrap();
        for shared in [false, true] {
            let o = FitOptions {
                shared,
                ..opts(&cfg)
            };
            let whole = Features::read(&npz, &rec.stimulus_ids, "rec", &[]).unwrap();
            let open = Features::open(&npz, &rec.stimulus_ids, "rec", &[]).unwrap();
            assert!(open.layers.iter().all(|l| l.data.is_empty()));
            let a = fit_predictivity(&whole, &rec, None, &o).unwrap();
            let b = fit_predictivity(&open, &rec, None, &o).unwrap();
            assert!(!a.rows.is_empty());
            assert_eq!(a.rows.len(), b.rows.len());
            for (x, y) in a.rows.iter().zip(&b.rows) {
                assert_eq!(format!("{x:?}"), format!("{y:?}"), "compress {compress}");
            }
            assert_eq!(format!("{:?}", a.sites), format!("{:?}", b.sites));
            assert_eq!(a.per_split, b.per_split);
            // Span-time maps' per-split values are there too, one per bin and split.
            let n_shared = a
                .per_split
                .iter()
                .filter(|s| s.metric == "r_shared")
                .count();
            let n_rows = a.rows.iter().filter(|r| r.metric == "r_shared").count();
            assert_eq!(n_shared, if shared { n_rows * o.n_splits } else { 0 });
            assert!(!shared || n_rows > 0);
            assert_eq!(a.constant_steps, vec![("it".to_string(), vec![0])]);
            assert_eq!(a.constant_steps, b.constant_steps);
        }
    }
    // A Fortran-ordered copy of the [T, N, D] layer (NumPy's `np.asfortranarray`): its steps
    // are not contiguous, so it is read whole — the same fits as the C-ordered file.
    let (t_n, n_n, d_n) = (s.steps, n, s.hidden);
    let mut fortran = Vec::with_capacity(t_n * n_n * d_n * 4);
    for d in 0..d_n {
        for r in 0..n_n {
            for t in 0..t_n {
                fortran.extend_from_slice(&s.features[(t * n_n + r) * d_n + d].to_le_bytes());
            }
        }
    }
    let mut header =
        format!("{{'descr': '<f4', 'fortran_order': True, 'shape': ({t_n}, {n_n}, {d_n}), }}")
            .into_bytes();
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(b' ');
    }
    header.push(b'\n');
    let mut member = b"\x93NUMPY\x01\x00".to_vec();
    member.extend_from_slice(&(header.len() as u16).to_le_bytes());
    member.extend_from_slice(&header);
    member.extend_from_slice(&fortran);
    let fpath = dir.path().join("fortran.npz");
    {
        let mut z = zip::ZipWriter::new(std::fs::File::create(&fpath).unwrap());
        z.start_file("it.npy", zip::write::SimpleFileOptions::default())
            .unwrap();
        std::io::Write::write_all(&mut z, &member).unwrap();
        z.finish().unwrap();
    }
    let cpath = dir.path().join("c.npz");
    let c = NpyArray::new(vec![t_n, n_n, d_n], NpyData::F32(s.features.clone())).unwrap();
    write_npz(&cpath, &[("it", &c)], false).unwrap();
    let whole = Features::read(&cpath, &rec.stimulus_ids, "rec", &[]).unwrap();
    let mut open = Features::open(&fpath, &rec.stimulus_ids, "rec", &[]).unwrap();
    open.model = whole.model.clone();
    let (a, b) = (
        fit_predictivity(&whole, &rec, None, &opts(&cfg)).unwrap(),
        fit_predictivity(&open, &rec, None, &opts(&cfg)).unwrap(),
    );
    assert_eq!(format!("{:?}", a.rows), format!("{:?}", b.rows));
    // A NaN at step 3, row 5, met while streaming.
    let mut bad = s.features.clone();
    bad[(3 * n + 5) * s.hidden + 1] = f32::NAN;
    let bad = NpyArray::new(vec![s.steps, n, s.hidden], NpyData::F32(bad)).unwrap();
    let npz = dir.path().join("bad.npz");
    write_npz(&npz, &[("it", &bad)], true).unwrap();
    let open = Features::open(&npz, &rec.stimulus_ids, "rec", &[]).unwrap();
    let err = fit_predictivity(&open, &rec, None, &opts(&cfg))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("bad.npz") && err.contains("`it`") && err.contains("step 3, row 5"),
        "{err}"
    );
}

/// Found probing `neural-synth` with absurd sizes in a dev build: `--hidden` or
/// `--repetitions` of 2⁶⁴ − 1 overflowed the array sizes (a panic; in release a wrap), and
/// `--sites` that large ran until memory ran out. Each is refused before anything is
/// allocated; a size that is merely too large for the memory is refused naming what it needs.
#[test]
fn absurd_sizes_are_refused_before_allocating() {
    let n = 8;
    let ids: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
    let objects: Vec<String> = (0..n).map(|i| format!("o{}", i % 2)).collect();
    let x = gaussian_inputs(n, 192, 1);
    let base = SynthConfig {
        regions: vec![("V4".into(), 90.0, 2), ("IT".into(), 110.0, 2)],
        n_bins: 3,
        hidden: 4,
        repetitions: 2,
        ..SynthConfig::default()
    };
    assert!(generate(&base, &ids, &objects, &x).is_ok());
    let big = usize::MAX;
    for (what, cfg) in [
        (
            "hidden",
            SynthConfig {
                hidden: big,
                ..base.clone()
            },
        ),
        (
            "repetitions",
            SynthConfig {
                repetitions: big,
                ..base.clone()
            },
        ),
        (
            "sites",
            SynthConfig {
                regions: vec![("V4".into(), 90.0, big), ("IT".into(), 110.0, big)],
                ..base.clone()
            },
        ),
        (
            "bins",
            SynthConfig {
                n_bins: big / 2,
                ..base.clone()
            },
        ),
    ] {
        let e = match generate(&cfg, &ids, &objects, &x) {
            Ok(_) => panic!("{what}: generated"),
            Err(e) => e.to_string(),
        };
        assert!(
            e.contains("overflow") || e.contains("available"),
            "{what}: {e}"
        );
    }
    // Fits usize, not memory: 10¹² repetitions.
    let e = match generate(
        &SynthConfig {
            repetitions: 1_000_000_000_000,
            ..base.clone()
        },
        &ids,
        &objects,
        &x,
    ) {
        Ok(_) => panic!("10^12 repetitions generated"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("available") && e.contains("repetitions"), "{e}");
}
