//! The original convrnns zoo's checkpoints (TensorFlow variable names and layouts) mapped onto
//! ventral's translation of the same models (`convrnn::tf_weights`), checked against the
//! **original code's own forward**: `scripts/convrnns_tf_forward.py` builds each zoo model with
//! neuroailab/convrnns' `model_func` (TensorFlow 2.15 compat.v1 behind the tf.contrib shim of
//! `scripts/convrnns_tf_shim.py`), sets every variable to a deterministic value, runs a
//! deterministic input through the default presentation and keeps the first 64 ImageNet
//! logits of the readout at every step (`fixtures/convrnns_tf_forward/MODEL.safetensors`; the
//! variables' names and shapes in its metadata). This test computes the same variable values
//! under the same TensorFlow names, maps them with `tf_weights::from_tensorflow`, runs
//! ventral's model on the same input and compares every step's logits. `MODEL_64px` is the
//! model at 64 px (`rgc_intermediate`'s median cell then shrinks its 7 × 7 depthwise kernels
//! to the smaller maps, as `cell_utils._ds_conv` does); every fixture's parameter count is
//! checked against the original graph's trainable variables. `ugrnn_intermediate_feedback`
//! is not a zoo model: the script's `feedback` adds long-range feedback into nodes that are not
//! reciprocal gated cells (the JSON it ran, `MODEL.json`, is shipped beside it and read here).
//!
//! Generating snippet (the value rule, shared with `value` below and
//! `ventral_core::fixtures::convrnns_unit`):
//! ```python
//! def unit(name, n):  # FNV-1a 32 of the name; a golden-ratio sequence
//!     k = np.arange(n, dtype=np.uint64)
//!     x = (k * np.uint64(2654435761) + np.uint64(fnv1a(name))) % np.uint64(2**32)
//!     return x.astype(np.float64) / 2.0**32 - 0.5
//! # weights: u * sqrt(12 / fan_in) * (0.5 in cells and the readout); bias/beta: 0.2 u;
//! # gamma: 1 + 0.2 u; a training memory_decay: 0.3 + 0.2 u; input NHWC: 2 u
//! y = model_func(inputs=inp, base_name=path, out_layers=[], include_logits=True)
//! fetch = {f"logits.{t}": o for t, o in enumerate(G.node["imnetds"]["outputs"])}
//! ```

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use burn::tensor::{Device, Tensor, TensorData};
use serde_json::{Value, json};
use ventral_core::fixtures::{convrnns_input_nchw, convrnns_unit};
use ventral_core::safetensors::{self as st, SafeTensors, TensorOut};
use ventral_models::config::{ModelConfig, resolve_model};
use ventral_models::convrnn::{ConvRnn, tf_weights};
use ventral_models::params;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/convrnns_tf_forward")
        .join(name)
}

/// `value(name, shape, trainable)` of the fixture script.
fn value(name: &str, shape: &[usize], trainable: bool) -> Vec<f32> {
    let n: usize = shape.iter().product();
    let leaf = name.rsplit('/').next().unwrap();
    let u = convrnns_unit(name, n);
    let v: Vec<f64> = if leaf == "memory_decay" {
        if trainable {
            u.map(|u| 0.3 + 0.2 * u).collect()
        } else {
            vec![0.0; n]
        }
    } else if leaf == "softmax_beta" {
        if trainable {
            u.map(|u| 10.0 + 2.0 * u).collect()
        } else {
            vec![1.0; n]
        }
    } else if leaf == "decoder_threshold" {
        if trainable {
            u.map(|u| 0.5 + 0.2 * u).collect()
        } else {
            vec![0.9; n]
        }
    } else if leaf == "gamma" {
        u.map(|u| 1.0 + 0.2 * u).collect()
    } else if leaf == "beta"
        || leaf == "bias"
        || leaf.ends_with("_bias")
        || name.contains("peepholes")
    {
        u.map(|u| 0.2 * u).collect()
    } else {
        assert!(shape.len() >= 2, "{name}");
        let fan_in: usize = shape[..shape.len() - 1].iter().product();
        let g = if name.contains("imnetds/") {
            4.0
        } else if name.contains("Cell/") {
            0.5
        } else {
            1.0
        };
        u.map(|u| u * (12.0 / fan_in as f64).sqrt() * g).collect()
    };
    v.into_iter().map(|x| x as f32).collect()
}

/// The deterministic checkpoint of `variables` (name, shape, trainable), as a file.
fn checkpoint(model: &str, variables: &Value) -> PathBuf {
    checkpoint_with(model, variables, |_, _| {})
}

/// [`checkpoint`] with `edit` applied to each variable's name and values first.
fn checkpoint_with(
    model: &str,
    variables: &Value,
    edit: impl Fn(&mut String, &mut Vec<f32>),
) -> PathBuf {
    let vars: Vec<(String, Vec<usize>, Vec<f32>)> = variables
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let name = v[0].as_str().unwrap().to_string();
            let shape: Vec<usize> = v[1]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect();
            let mut data = value(&name, &shape, v[2].as_bool().unwrap());
            let mut name = name;
            edit(&mut name, &mut data);
            (name, shape, data)
        })
        .collect();
    let tensors: BTreeMap<String, TensorOut<'_>> = vars
        .iter()
        .map(|(n, s, d)| (n.clone(), TensorOut::F32(s, d)))
        .collect();
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{model}.tf.safetensors"));
    st::write(&path, &tensors, &BTreeMap::new()).unwrap();
    path
}

/// Runs `model` with the checkpoint's values and compares its logits with the original's;
/// returns the largest difference relative to the largest logit.
fn compare(model: &str) -> f64 {
    let gold = SafeTensors::read(&fixture(&format!("{model}.safetensors"))).unwrap();
    let vars: Value = serde_json::from_str(&gold.metadata()["variables"]).unwrap();
    let shape: Vec<usize> = serde_json::from_str(&gold.metadata()["input_shape"]).unwrap();
    let [b, h, w, c] = shape[..] else { panic!() };
    // `MODEL_64px`: the preset at 64 px (the size is the fixture's input's); a fixture with
    // its own graph (`MODEL.json`, the original's JSON form) is read from it.
    let graph = fixture(&format!("{model}.json"));
    let spec = if graph.exists() {
        json!({"graph": graph, "input_shape": [c, h, w]})
    } else {
        let preset = model.strip_suffix("_64px").unwrap_or(model);
        json!({"preset": preset, "input_shape": [c, h, w]})
    };
    let cfg = resolve_model(spec, std::path::Path::new(".")).unwrap();
    let ModelConfig::ConvRnn(cfg) = cfg else {
        panic!()
    };
    let device = Device::flex();
    let net = ConvRnn::init(&cfg, &device, 0).unwrap();
    // Sizes at the fixture's input size: the configuration's count, the built model's
    // parameters and the original graph's trainable variables agree (a kernel shrunk to its
    // map counts as shrunk; the intermediate backbone's three fixed time constants are
    // variables the original does not train and the reader makes identity memories; a
    // decoder's fixed β, like the original's `softmax_beta`, is a parameter never trained).
    let trainable: usize = vars
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v[2].as_bool().unwrap())
        .map(|v| {
            v[1].as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .product::<usize>()
        })
        .sum();
    let built: usize = params::list(&net)
        .iter()
        .map(|p| p.shape.iter().product::<usize>())
        .sum();
    assert_eq!(
        cfg.estimated_size().0,
        built as u128,
        "{model}: counted vs built"
    );
    let fixed_beta = usize::from(cfg.decoder.kind.has_beta() && !cfg.decoder.trainable);
    assert_eq!(
        built - fixed_beta,
        trainable,
        "{model}: built vs the original's trainable variables"
    );
    let ckpt = SafeTensors::read(&checkpoint(model, &vars)).unwrap();
    let named = tf_weights::from_tensorflow(&net, &ckpt).unwrap();
    let mut net = params::load_named(net, &named).unwrap();
    net.use_tensorflow_layer_norm_eps();
    let x = Tensor::<4>::from_data(
        TensorData::new(convrnns_input_nchw(b, h, w, c), [b, c, h, w]),
        &device,
    );
    let out = net.forward_areas(x, true);
    let steps = cfg.num_timesteps;
    let (mut worst, mut largest) = (0.0f64, 0.0f64);
    let mut per_step = Vec::new();
    for t in 0..steps {
        let (_, theirs) = gold.f32(&format!("logits.{t}")).unwrap();
        let ours = out.areas[t]
            .iter()
            .find(|(n, _)| n == "imnetds")
            .map(|(_, x)| x.clone())
            .unwrap();
        let classes = ours.dims()[1];
        let ours: Vec<f32> = ours.into_data().try_to_vec::<f32>().unwrap();
        let keep = theirs.len() / b;
        let mut step_worst = 0.0f64;
        for bb in 0..b {
            for k in 0..keep {
                let (a, t) = (ours[bb * classes + k] as f64, theirs[bb * keep + k] as f64);
                step_worst = step_worst.max((a - t).abs());
                largest = largest.max(t.abs());
            }
        }
        worst = worst.max(step_worst);
        per_step.push(step_worst);
    }
    assert!(
        gold.f32(&format!("logits.{steps}")).is_err(),
        "{model}: more steps in the original"
    );
    // Fixtures made with DEBUG=1 hold every node's output (NHWC) at every step: report the
    // first node and step that differ (a tool for finding where a model departs).
    for t in 0..steps {
        for (node, ours) in &out.areas[t] {
            let Ok((shape, theirs)) = gold.f32(&format!("out.{t}.{node}")) else {
                continue;
            };
            let ours: Vec<f32> = ours.clone().into_data().try_to_vec::<f32>().unwrap();
            let (hh, ww, cc) = match shape[..] {
                [_, h, w, c] => (h, w, c),
                [_, c] => (1, 1, c),
                _ => continue,
            };
            let (mut d, mut m) = (0.0f64, 0.0f64);
            for (i, v) in theirs.iter().enumerate() {
                let (c2, r) = (i % cc, i / cc);
                let (w2, r) = (r % ww, r / ww);
                let (h2, b2) = (r % hh, r / hh);
                let o = ours[((b2 * cc + c2) * hh + h2) * ww + w2];
                d = d.max((o as f64 - *v as f64).abs());
                m = m.max((*v as f64).abs());
            }
            if d > 1e-4 * m.max(1e-6) {
                eprintln!("{model}: {node} at step {t} differs by {d:.3e} (largest {m:.3e})");
            }
        }
    }
    if let Ok((_, theirs)) = gold.f32("decoded") {
        // The temporal decoder: the fixture's step choice is clear (no other step's
        // confidence within 5e-5 of the chosen one's, five times what ventral's logits'
        // differences, ~1e-6 times β = 10, move it), and ventral's output is the log-softmax
        // of the original's.
        let (cs, conf) = gold.f32("decoder_conf").unwrap();
        let (_, pick) = gold.i64("decoder_pick").unwrap();
        for bb in 0..b {
            let row = &conf[bb * cs[1]..(bb + 1) * cs[1]];
            let best = row[pick[bb] as usize - cfg.decoder.start];
            let others = row
                .iter()
                .filter(|v| **v != best)
                .fold(0.0f32, |m, v| m.max(*v));
            let crossed = cfg.decoder.kind == ventral_models::convrnn::DecoderKind::Thresh
                && best >= cfg.decoder.threshold as f32;
            assert!(
                crossed || best - others > 5e-5 * best,
                "{model}: near-tie {row:?}"
            );
        }
        let ours = out.decoded.clone().expect("a decoder output");
        let k = ours.dims()[1];
        let ours: Vec<f32> = ours.into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(theirs.len(), b * k);
        let mut d = 0.0f64;
        for bb in 0..b {
            let l = &theirs[bb * k..(bb + 1) * k];
            let m = l.iter().fold(f32::MIN, |m, v| m.max(*v)) as f64;
            let lse = m + l.iter().map(|v| (*v as f64 - m).exp()).sum::<f64>().ln();
            for j in 0..k {
                d = d.max((ours[bb * k + j] as f64 - (l[j] as f64 - lse)).abs());
            }
        }
        eprintln!("{model}: decoder picks {pick:?}, log-probabilities within {d:.2e}");
        assert!(
            d < 1e-4,
            "{model}: decoded log-probabilities differ by {d:.3e}"
        );
    }
    let rel = worst / largest;
    eprintln!(
        "{model}: {steps} steps, largest logit {largest:.3e}, max abs diff {worst:.3e} (relative {rel:.2e}); per step {:?}",
        per_step
            .iter()
            .map(|d| format!("{d:.1e}"))
            .collect::<Vec<_>>()
    );
    rel
}

macro_rules! zoo_test {
    ($($name:ident),*) => {$(
        #[test]
        fn $name() {
            let rel = compare(stringify!($name));
            assert!(rel <= 1e-4, "{}: relative difference {rel:.3e}", stringify!($name));
        }
    )*};
}

zoo_test!(
    timedecay_shallow,
    timedecay_intermediate,
    simplernn_shallow,
    simplernn_intermediate,
    gru_shallow,
    gru_intermediate,
    lstm_shallow,
    lstm_intermediate,
    ugrnn_shallow,
    ugrnn_intermediate,
    ugrnn_intermediate_t30,
    intersectionrnn_shallow,
    intersectionrnn_intermediate,
    rgc_shallow,
    rgc_intermediate,
    rgc_intermediate_64px,
    rgc_intermediate_tmaxconf,
    rgc_intermediate_t22_tmaxconf,
    rgc_intermediate_dthresh,
    ugrnn_intermediate_t30_tmaxconf,
    ugrnn_intermediate_t30_dthresh,
    ugrnn_intermediate_feedback
);

/// Checkpoints that do not fit the model are refused with the file and every tensor at fault:
/// an extra variable (a max_conf decoder's temperature, the model having no decoder), a memory that decays where the model's node has none, a
/// renamed variable (missing on one side, extra on the other), another model's checkpoint.
#[test]
fn checkpoints_that_do_not_fit_are_refused_naming_the_tensors() {
    let gold = SafeTensors::read(&fixture("timedecay_shallow.safetensors")).unwrap();
    let mut vars: Value = serde_json::from_str(&gold.metadata()["variables"]).unwrap();
    let cfg = resolve_model(
        json!({"preset": "timedecay_shallow", "input_shape": [3, 128, 128]}),
        std::path::Path::new("."),
    )
    .unwrap();
    let ModelConfig::ConvRnn(cfg) = cfg else {
        panic!()
    };
    let net = ConvRnn::init(&cfg, &Device::flex(), 0).unwrap();
    let refuse = |path: PathBuf| -> String {
        let ckpt = SafeTensors::read(&path).unwrap();
        let e = tf_weights::from_tensorflow(&net, &ckpt)
            .unwrap_err()
            .to_string();
        assert!(e.contains(&path.display().to_string()), "{e}");
        e
    };
    // A decoder's temperature (as `_tmaxconf` checkpoints hold).
    vars.as_array_mut()
        .unwrap()
        .push(json!(["tnn_model/normalize/softmax_beta", [1], true]));
    let e = refuse(checkpoint_with("td_extra", &vars, |_, _| {}));
    assert!(
        e.contains("tnn_model/normalize/softmax_beta") && e.contains("not the model's"),
        "{e}"
    );
    vars.as_array_mut().unwrap().pop();
    // conv1 has no memory in the model; a checkpoint whose conv1 decays its state.
    let e = refuse(checkpoint_with("td_decay", &vars, |n, d| {
        if n == "tnn_model/conv1/memory_decay" {
            d[0] = 0.5;
        }
    }));
    assert!(
        e.contains("tnn_model/conv1/memory_decay") && e.contains("decays"),
        "{e}"
    );
    // A renamed convolution: the model's parameter finds no tensor, the tensor no parameter.
    let e = refuse(checkpoint_with("td_renamed", &vars, |n, _| {
        if n == "tnn_model/conv4/pre_0/bias" {
            *n = "tnn_model/conv4/pre_0/biases".into();
        }
    }));
    assert!(e.contains("conv4") && e.contains("biases"), "{e}");
    // Another zoo model's checkpoint (the GRU network's cells, at the same widths).
    let other = SafeTensors::read(&fixture("gru_shallow.safetensors")).unwrap();
    let other: Value = serde_json::from_str(&other.metadata()["variables"]).unwrap();
    let e = refuse(checkpoint("td_other", &other));
    assert!(e.contains("ConvGRUCell"), "{e}");
    // Not a convrnns checkpoint at all.
    let e = refuse(checkpoint_with("td_foreign", &vars, |n, _| {
        *n = n.replace("tnn_model/", "model/");
    }));
    assert!(e.contains("not a checkpoint of the convrnns zoo"), "{e}");
}

/// Long-range feedback into nodes that are not reciprocal gated cells
/// (`ugrnn_intermediate_feedback`, checked against the original above): `component_conv`'s
/// kernel parts must all be there, one per input with that input's channels, and a model
/// without the feedback refuses the checkpoint.
#[test]
fn feedback_checkpoints_that_do_not_fit_are_refused_naming_the_tensors() {
    let model = "ugrnn_intermediate_feedback";
    let gold = SafeTensors::read(&fixture(&format!("{model}.safetensors"))).unwrap();
    let vars: Value = serde_json::from_str(&gold.metadata()["variables"]).unwrap();
    let build = |spec: Value| {
        let ModelConfig::ConvRnn(cfg) = resolve_model(spec, std::path::Path::new(".")).unwrap()
        else {
            panic!()
        };
        ConvRnn::init(&cfg, &Device::flex(), 0).unwrap()
    };
    let net =
        build(json!({"graph": fixture(&format!("{model}.json")), "input_shape": [3, 64, 64]}));
    let refuse = |net: &ConvRnn, path: PathBuf| -> String {
        let ckpt = SafeTensors::read(&path).unwrap();
        let e = tf_weights::from_tensorflow(net, &ckpt)
            .unwrap_err()
            .to_string();
        assert!(e.contains(&path.display().to_string()), "{e}");
        e
    };
    let edited = |drop: &str, reshape: Option<(&str, [u64; 4])>| -> Value {
        let mut v = vars.clone();
        let a = v.as_array_mut().unwrap();
        a.retain(|x| x[0] != drop);
        if let Some((name, shape)) = reshape {
            for x in a.iter_mut().filter(|x| x[0] == name) {
                x[1] = json!(shape);
            }
        }
        v
    };
    // conv5's second feedback kernel (conv9's) missing.
    let e = refuse(
        &net,
        checkpoint(
            "fb_missing",
            &edited("tnn_model/conv5/pre_0/weights_1", None),
        ),
    );
    assert!(e.contains("conv5") && e.contains("weights_1"), "{e}");
    // conv3's feedback kernel (conv10's, 32 channels) with 16 input channels.
    let e = refuse(
        &net,
        checkpoint(
            "fb_channels",
            &edited("", Some(("tnn_model/conv3/pre_0/weights_0", [3, 3, 16, 4]))),
        ),
    );
    assert!(
        e.contains("tnn_model/conv3/pre_0/weights_0") && e.contains("input channels"),
        "{e}"
    );
    // The fixture's graph edited by `edit`, written under `tag` and built.
    let edited_graph = |tag: &str, edit: &dyn Fn(&mut Value)| -> ConvRnn {
        let text = std::fs::read_to_string(fixture(&format!("{model}.json"))).unwrap();
        let mut g: Value = serde_json::from_str(&text).unwrap();
        edit(&mut g);
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(tag);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{model}.json"));
        std::fs::write(&path, g.to_string()).unwrap();
        build(json!({"graph": path, "input_shape": [3, 64, 64]}))
    };
    // The same graph without its feedback edges: the parts are not its.
    let plain = edited_graph("fb_plain", &|g| {
        let fb = [
            ("conv10", "conv3"),
            ("conv8", "conv5"),
            ("conv9", "conv5"),
            ("conv3", "conv1"),
        ];
        g["edges"]
            .as_array_mut()
            .unwrap()
            .retain(|e| !fb.iter().any(|(f, t)| e["from"] == *f && e["to"] == *t));
        assert_eq!(g["edges"].as_array().unwrap().len(), 10);
    });
    let e = refuse(&plain, checkpoint("fb_plain", &vars));
    assert!(
        e.contains("tnn_model/conv3/pre_0") && e.contains("weights_0"),
        "{e}"
    );
    // A cell that convolves its harbor itself (no convolution before it) where TensorFlow's
    // order is not ventral's: conv4 (a UGRNN node) fed back from conv10, which sorts before
    // its feedforward conv3, with its pre-memory convolution taken out.
    let direct = edited_graph("fb_direct", &|g| {
        g["edges"]
            .as_array_mut()
            .unwrap()
            .push(json!({"from": "conv10", "to": "conv4"}));
        let conv4 = g["nodes"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|n| n["name"] == "conv4")
            .unwrap();
        conv4["pre_memory"]
            .as_array_mut()
            .unwrap()
            .retain(|op| op["function"] != "component_conv");
    });
    let e = refuse(&direct, checkpoint("fb_direct", &vars));
    assert!(
        e.contains("node conv4") && e.contains("reads the harbor directly"),
        "{e}"
    );
}
