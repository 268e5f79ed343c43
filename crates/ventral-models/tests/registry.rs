//! One test over every registered model at small size: forward, backward, every used
//! parameter receives a finite gradient, unused ones are exactly those flagged, output shapes.

#![allow(clippy::unwrap_used)]

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};
use ventral_models::config::ModelConfig;
use ventral_models::params::ParamKind;
use ventral_models::{Blt, Model, params, registry, size};

mod common;

#[test]
fn every_registered_model_runs_and_learns() {
    let device = common::device().autodiff();
    let on_cpu = ventral_models::device::is_cpu(&common::device_name());
    let mut failed = Vec::new();
    // `VENTRAL_REGISTRY_ONLY=a,b`: only these models (to chase one model's failure on a
    // device without running the whole registry there).
    let only: Option<Vec<String>> = std::env::var("VENTRAL_REGISTRY_ONLY")
        .ok()
        .map(|v| v.split(',').map(|s| s.trim().to_string()).collect());
    let entries = registry::entries();
    if let Some(o) = &only {
        let unknown: Vec<&String> = o
            .iter()
            .filter(|n| !entries.iter().any(|e| e.name == n.as_str()))
            .collect();
        assert!(
            unknown.is_empty(),
            "VENTRAL_REGISTRY_ONLY names unknown models: {unknown:?}"
        );
    }
    for entry in entries {
        if only
            .as_ref()
            .is_some_and(|o| !o.iter().any(|n| n == entry.name))
        {
            continue;
        }
        println!("[registry] {}", entry.name);
        // Off the CPU a backend failure (a kernel that does not compile there) is recorded and
        // the next model still runs, so one run lists every model the device cannot train.
        let run = || check_model(&entry, &device, on_cpu);
        if on_cpu {
            run();
        } else if let Err(e) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
            let why = ventral_models::device::panic_text(e.as_ref()).unwrap_or_default();
            let first = why.lines().next().unwrap_or("").to_string();
            println!("[registry] {} FAILED: {first}", entry.name);
            failed.push(entry.name);
        }
    }
    assert!(failed.is_empty(), "failed on the device: {failed:?}");
}

/// Forward (with and without areas), backward and the gradient checks of one registered
/// model at test size.
fn check_model(entry: &registry::Entry, device: &Device, on_cpu: bool) {
    let device = device.clone();
    // Small: narrow layers, few classes, at most 3 steps, 64 px, 2 images.
    let mut cfg = entry.config.clone();
    match &mut cfg {
        ModelConfig::Blt(c) => {
            c.channels = vec![4, 4, 8, 8, 8];
            c.num_classes = 5;
            c.timesteps = c.timesteps.min(3);
        }
        ModelConfig::RcnnSat(c) => common::small_rcnn_sat(c),
        ModelConfig::ConvRnn(c) => *c = small_convrnn(c),
    }
    let model = Model::init_seeded(&cfg, &device, 1).unwrap();
    let s = cfg.image_size();
    // Seeded input: a channel whose ReLU is dead for every input has (legitimately) a
    // zero gradient, so the check must not depend on an unseeded draw.
    let x = common::images(2, s, 7, &device);
    // Every family records its named areas at every step, the same outputs as forward.
    let with_areas = model.forward_areas(x.clone());
    let names = model.areas();
    assert!(!names.is_empty(), "{}", entry.name);
    assert_eq!(with_areas.areas.len(), cfg.timesteps(), "{}", entry.name);
    for step in &with_areas.areas {
        let got: Vec<&str> = step.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(got, names, "{}", entry.name);
        for (n, a) in step {
            assert_eq!(a.dims()[0], 2, "{}: {n}", entry.name);
        }
    }
    let out = model.forward(x);
    assert!(out.areas.is_empty());
    // Bit for bit on the CPU; a GPU backend may pick other kernels (fusion, autotuning)
    // for the two graphs — measured on wgpu (lavapipe): 2.4e-7 apart for simplernn_shallow.
    let tol = if on_cpu { 0.0 } else { 1e-5 };
    for (a, b) in out.log_probs.iter().zip(&with_areas.log_probs) {
        let d: f32 = (a.clone() - b.clone()).abs().max().into_scalar();
        assert!(
            d <= tol,
            "{}: forward and forward_areas {d} apart",
            entry.name
        );
    }
    assert_eq!(out.log_probs.len(), cfg.timesteps(), "{}", entry.name);
    let mut loss: Option<Tensor<1>> = None;
    let y = Tensor::<1, Int>::from_data(TensorData::new(vec![1i64, 3], [2]), &device);
    for (lp, rep) in out.log_probs.iter().zip(&out.representations) {
        assert_eq!(lp.dims(), [2, 5], "{}", entry.name);
        assert_eq!(rep.dims(), [2, 8], "{}", entry.name);
        let l = lp.clone().gather(1, y.clone().reshape([2, 1])).mean().neg();
        loss = Some(match loss {
            None => l,
            Some(a) => a + l,
        });
    }
    let loss = loss.unwrap();
    let lv: f32 = loss.clone().into_scalar();
    assert!(lv.is_finite(), "{}: loss {lv}", entry.name);
    let grads = params::gradients(&model, &loss.backward()).unwrap();
    let listed = params::list(&model);
    let report = size::model_size(&cfg, &listed);
    let unused: Vec<&str> = report.unused.iter().map(|u| u.0.as_str()).collect();
    for p in listed.iter().filter(|p| p.kind != ParamKind::Buffer) {
        let got = grads.get(&p.name);
        if unused.contains(&p.name.as_str()) {
            let g = got.map(|g| g.1.iter().all(|v| *v == 0.0)).unwrap_or(true);
            assert!(
                g,
                "{}: {} is flagged unused but has a gradient",
                entry.name, p.name
            );
            continue;
        }
        let (_, g) = got.unwrap_or_else(|| panic!("{}: no gradient for {}", entry.name, p.name));
        assert!(
            g.iter().all(|v| v.is_finite()),
            "{}: non-finite gradient for {}",
            entry.name,
            p.name
        );
        assert!(
            g.iter().any(|v| *v != 0.0),
            "{}: zero gradient for {}",
            entry.name,
            p.name
        );
    }
}

/// A ConvRNN preset at test size: every width 8, 5 classes, at most 96 px, enough steps for
/// the image to reach the readout and every recurrent state to matter (depth + 2), the image
/// shown throughout.
fn small_convrnn(
    c: &ventral_models::convrnn::ConvRnnConfig,
) -> ventral_models::convrnn::ConvRnnConfig {
    fn walk(v: &mut serde_json::Value, to: u64) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m.iter_mut() {
                    if [
                        "out_channels",
                        "in_channels",
                        "input_in_channels",
                        "cell_depth",
                    ]
                    .contains(&k.as_str())
                        && x.is_u64()
                    {
                        *x = to.into();
                    } else {
                        walk(x, to);
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(|x| walk(x, to)),
            _ => {}
        }
    }
    let mut v = serde_json::to_value(c).unwrap();
    let out = c.output_node.clone();
    for n in v["nodes"].as_array_mut().unwrap() {
        let to = if n["name"] == out.as_str() { 5 } else { 8 };
        walk(n, to);
    }
    let mut s: ventral_models::convrnn::ConvRnnConfig = serde_json::from_value(v).unwrap();
    let side = s.input_shape[1].min(96);
    s.input_shape = [3, side, side];
    s.num_timesteps = s.nodes.len() + 2;
    s.movie.image_off = None;
    s.validate().unwrap();
    s
}

#[test]
fn reference_parameter_counts() {
    // Counts of the reference (PyTorch trainable parameters, 64 px, LN, no classifier bias),
    // from domain.md §1.2: B 2,602,880; L 5,998,464; T-only 4,151,168; L+T 7,546,752.
    let device = Device::flex();
    for (name, want) in [
        ("blt64_b", 2_602_880),
        ("blt64_l", 5_998_464),
        ("blt64_t", 4_151_168),
        ("blt64_lt", 7_546_752),
    ] {
        let ModelConfig::Blt(cfg) = registry::get(name).unwrap().config else {
            unreachable!()
        };
        let m = Blt::init(&cfg, &device).unwrap();
        let n: usize = params::list(&m)
            .iter()
            .map(|p| p.shape.iter().product::<usize>())
            .sum();
        assert_eq!(n, want, "{name}");
        let r = size::blt_size(&cfg, &params::list(&m));
        assert_eq!(r.params_total, want);
        assert_eq!(r.units_per_step, 492_032);
    }
}

#[test]
fn size_guard_estimates_bound_the_real_sizes_and_refuse_absurd_widths() {
    // The guard's estimate (from the configuration alone, before allocation) is within a factor
    // of 2 of the real parameter count and units of every registered model, so the limit acts
    // on what a network really needs.
    let device = Device::flex();
    for entry in registry::entries() {
        let (est, units, _) = entry.config.estimated_size();
        let m = ventral_models::Model::init(&entry.config, &device).unwrap();
        let n: usize = params::list(&m)
            .iter()
            .map(|p| p.shape.iter().product::<usize>())
            .sum();
        let r = size::model_size(&entry.config, &params::list(&m));
        if let ModelConfig::ConvRnn(_) = &entry.config {
            // Exact for ConvRNNs (`ventral models` lists it without building the network).
            assert_eq!(est as usize, n, "{}", entry.name);
            assert_eq!(units as usize, r.units_per_step, "{}", entry.name);
        }
        assert!(
            est as f64 >= 0.5 * n as f64 && est as f64 <= 2.0 * n as f64,
            "{}: estimate {est} vs {n} parameters",
            entry.name
        );
        assert!(
            units as f64 >= 0.5 * r.units_per_step as f64
                && units as f64 <= 2.0 * r.units_per_step as f64,
            "{}: units {units} vs {}",
            entry.name,
            r.units_per_step
        );
    }
    // The reproducers of issue 13: checked, not aborted.
    let ModelConfig::Blt(base) = registry::get("blt_tiny").unwrap().config else {
        unreachable!()
    };
    let mut wide = base.clone();
    wide.channels = vec![8, 30_000, 8, 8, 8];
    wide.timesteps = 10;
    wide.lateral = false;
    wide.topdown = false;
    wide.norm = ventral_models::config::NormKind::None;
    let e = ModelConfig::Blt(wide.clone())
        .validate()
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("activations per image") && e.contains("limit"),
        "{e}"
    );
    wide.channels = vec![8, 100_000, 100_000, 16, 32];
    let e = ModelConfig::Blt(wide).validate().unwrap_err().to_string();
    assert!(e.contains("parameters") && e.contains("limit"), "{e}");
    let mut classes = base.clone();
    classes.num_classes = usize::MAX;
    let e = ModelConfig::Blt(classes)
        .validate()
        .unwrap_err()
        .to_string();
    assert!(e.contains("parameters"), "{e}");
}

/// burn's BatchNorm keeps one pending running-statistics update per thread; training steps run
/// on whichever pool worker is free. `Model::settle_running_state` after each step (as the
/// training loop does) makes the statistics the plain momentum updates, the same bits whether
/// two steps ran on one thread or on two (without it the second step, on another thread, read
/// a stale value and the two pending values were averaged: a mutation dropping the settle
/// fails here).
#[test]
fn batch_norm_statistics_do_not_depend_on_which_thread_ran_each_step() {
    let ModelConfig::RcnnSat(mut cfg) = registry::get("bl").unwrap().config else {
        unreachable!()
    };
    common::small_rcnn_sat(&mut cfg);
    cfg.timesteps = 2;
    let device = Device::flex().autodiff();
    let s = cfg.image_size;
    let batch = |seed: u64| {
        let x = common::normals(2 * 3 * s * s, seed);
        Tensor::<4>::from_data(TensorData::new(x, [2, 3, s, s]), &device)
    };
    let config = ModelConfig::RcnnSat(cfg);
    let step = |m: &Model, seed: u64| {
        let _ = m.forward(batch(seed));
        m.settle_running_state();
    };
    let stats = |m: &Model| {
        let all = params::export(&m.valid()).unwrap();
        let s: Vec<(String, Vec<u32>)> = all
            .into_iter()
            .filter(|(k, _)| k.contains("running_"))
            .map(|(k, (_, v))| (k, v.iter().map(|e| e.to_bits()).collect()))
            .collect();
        assert!(!s.is_empty(), "no running statistics exported");
        s
    };
    // Two steps on this thread.
    let one = Model::init_seeded(&config, &device, 3).unwrap();
    step(&one, 11);
    step(&one, 12);
    // The same two steps, each on a thread of its own.
    let two = Model::init_seeded(&config, &device, 3).unwrap();
    for seed in [11, 12] {
        std::thread::scope(|sc| {
            sc.spawn(|| step(&two, seed));
        });
    }
    let (a, b) = (stats(&one), stats(&two));
    assert_eq!(a.len(), b.len());
    for ((k, x), (_, y)) in a.iter().zip(&b) {
        assert_eq!(x, y, "{k}");
    }
    // And they moved: the first step's update is not the initial value.
    let fresh = stats(&Model::init_seeded(&config, &device, 3).unwrap());
    assert_ne!(a, fresh);
}
