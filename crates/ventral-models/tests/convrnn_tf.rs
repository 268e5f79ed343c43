//! The original convrnns (TensorFlow 1.13) model JSON files, read by
//! `ventral_models::convrnn::tf_json`: all sixteen of the zoo translate; their sizes agree with
//! TensorFlow's variable shapes; a scaled `lstm_shallow` (TF `SAME` padding, SAME pools, the
//! searched LSTM constants with peepholes, per-image layer norm, a state narrower than its
//! input, the 0.5 blank frame) agrees with a PyTorch transcription of convrnns' code
//! (`scripts/make_convrnn_tf_fixtures.py`; TensorFlow 1.13 no longer installs), as does the
//! align-corners harbor resize with `F.interpolate(align_corners=True)`.
//!
//! Generating snippet (see the script for the whole network):
//! ```python
//! def tf_same(x, k, s):  # tf.nn.conv2d(padding="SAME")
//!     o = -(-n // s); total = max((o - 1) * s + k - n, 0); F.pad(x, (total // 2, total - total // 2, ...))
//! nc = cs * torch.sigmoid(f + fb + wf * cs) + torch.sigmoid(i + wi * cs) * torch.tanh(j)  # ConvLSTMCell
//! nc = tf_ln(nc, ...); nh = torch.tanh(nc) * torch.sigmoid(og + wo * cs)
//! r[f"out.{h}x{w}.{oh}x{ow}"] = F.interpolate(a, size=(oh, ow), mode="bilinear", align_corners=True)
//! ```

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use burn::tensor::{Device, Int, Tensor, TensorData};
use serde_json::{Value, json};
use ventral_core::safetensors::SafeTensors;
use ventral_models::convrnn::spec::{CellSpec, HarborSpec};
use ventral_models::convrnn::{ConvRnn, ConvRnnConfig, config::tf_same_padding, ops, tf_json};
use ventral_models::params;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/convrnns_tf")
        .join(name)
}

/// A convrnns model JSON as shipped (`zoo/convrnns`, embedded as the presets).
fn zoo_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("zoo/convrnns")
        .join(name)
}

fn read(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(zoo_file(name)).unwrap()).unwrap()
}

const ZOO: [&str; 16] = [
    "gru_intermediate",
    "gru_shallow",
    "intersectionrnn_intermediate",
    "intersectionrnn_shallow",
    "lstm_intermediate",
    "lstm_shallow",
    "rgc_intermediate",
    "rgc_intermediate_t22",
    "rgc_shallow",
    "simplernn_intermediate",
    "simplernn_shallow",
    "timedecay_intermediate",
    "timedecay_shallow",
    "ugrnn_intermediate",
    "ugrnn_intermediate_t30",
    "ugrnn_shallow",
];

#[test]
fn every_convrnns_model_json_translates_with_tensorflows_semantics() {
    for name in ZOO {
        let file = format!("{name}.json");
        let text = std::fs::read_to_string(zoo_file(&file)).unwrap();
        // The same entry point as PyTorchTNN's JSON (`--model file.json`, `graph = …`).
        let cfg = ConvRnnConfig::from_json(&text, &file).unwrap();
        assert_eq!(cfg.input_shape, [3, 224, 224], "{name}");
        assert_eq!(cfg.num_classes(), 1000, "{name}");
        let intermediate = name.contains("intermediate");
        assert_eq!(cfg.nodes.len(), if intermediate { 11 } else { 6 }, "{name}");
        // model_func's presentations.
        let (steps, off) = if name.ends_with("t30") {
            (30, None)
        } else if name.ends_with("t22") {
            (22, None)
        } else if intermediate {
            (17, Some(12))
        } else {
            (16, Some(12))
        };
        assert_eq!(
            (cfg.num_timesteps, cfg.movie.image_off),
            (steps, off),
            "{name}"
        );
        assert_eq!(cfg.movie.blank_value, 0.5);
        for n in &cfg.nodes {
            assert_eq!(
                n.harbor_policy,
                HarborSpec::ResizeConcat {
                    align_corners: true
                },
                "{name}"
            );
        }
        // The cell layers carry the file's cell type.
        let cell_layers: Vec<String> = if intermediate {
            (4..=10).map(|i| format!("conv{i}")).collect()
        } else {
            (3..=5).map(|i| format!("conv{i}")).collect()
        };
        for n in &cfg.nodes {
            let want = match (
                cell_layers.contains(&n.name),
                name.split('_').next().unwrap(),
            ) {
                (false, _) => "IdentityCell",
                (true, "timedecay") => "TimeDecayRecurrentCell",
                (true, "simplernn") => "VanillaRNNCell",
                (true, "gru") => "GRUCell",
                (true, "lstm") => "LSTMCell",
                (true, "ugrnn") => "UGRNNCell",
                (true, "intersectionrnn") => "IntersectionRNNCell",
                (true, "rgc") => "ReciprocalGatedCell",
                _ => unreachable!(),
            };
            let got = serde_json::to_value(&n.recurrent_cell).unwrap()["name"].clone();
            assert_eq!(got, want, "{name} {}", n.name);
        }
        // rgc_intermediate: the median cell and model_func's long-range feedback.
        if name.starts_with("rgc_intermediate") {
            assert_eq!(cfg.edges.len(), 10 + 5);
            for (f, t) in tf_json::EDGES_5 {
                assert!(cfg.edges.iter().any(|e| e.from == f && e.to == t));
            }
            let CellSpec::ReciprocalGatedCell(r) = &cfg.nodes[4].recurrent_cell else {
                panic!()
            };
            assert_eq!(r.cell_depth, 64);
            assert_eq!(r.tau_filter_size, [7, 7]);
            assert!(r.tau_depth_separable && r.gate_depth_separable);
            // The median config's tau_bias (4.147…) and gate_bias (2.777…) are added after
            // plain convolutions only; its τ and γ convolutions are separable
            // (`utils/median_rgcell.py`; checked against the original's forward in
            // tests/convrnns_checkpoint.rs).
            assert_eq!((r.tau_bias, r.gate_bias), (0.0, 0.0));
            assert_eq!(r.tau_offset, 0.9219348064291611);
            assert_eq!(r.feedback_filter_size, [1, 1]);
        }
    }
}

/// Trainable parameters from TensorFlow's variable shapes (convrnns' `component_conv`
/// `[k, k, cin, out] + [out]`, `_conv_linear`, the layer norms' γ, β, the peepholes
/// `[H, W, out]`), counted independently of ventral:
/// ```python
/// def conv(k, ci, co): return k*k*ci*co + co
/// s = conv(7,3,64) + conv(3,64,128); cin = 128           # simplernn_shallow
/// for pre, out in [(256,128),(256,256),(512,256)]:
///     s += conv(3,cin,pre) + conv(3,pre,out) + conv(3,out,out) + 2*out; cin = out
/// s += conv(2,cin,1000)                                    # 6 272 872
/// s = conv(7,3,64) + conv(3,64,128); cin = 128           # lstm_shallow + lstm_shallow.npz
/// for hw, pre, (k, out, peep) in [(28,256,(2,128,0)),(14,256,(3,256,1)),(7,512,(4,256,0))]:
///     s += conv(3,cin,pre) + conv(k,pre+out,4*out) + 10*out + 3*hw*hw*out*peep; cin = out
/// s += conv(2,cin,1000)                                    # 21 126 248
/// ```
/// The others have the widths ventral's PyTorchTNN-form builders (`registry::shallow`,
/// `registry::intermediate`, written from domain notes §3.3) give them: two constructions
/// agree (less the builder's three fixed time constants in conv1–3 of the intermediate
/// backbone, which convrnns keeps as non-trainable variables and the reader as identity
/// memories). The registered presets are the translated files.
#[test]
fn sizes_agree_with_tensorflows_variables() {
    use ventral_models::convrnn::registry::{CellKind, intermediate, shallow};
    let count = |name: &str| {
        let text = std::fs::read_to_string(zoo_file(&format!("{name}.json"))).unwrap();
        let cfg = ConvRnnConfig::from_json(&text, &format!("{name}.json")).unwrap();
        let preset = ventral_models::registry::get(name).unwrap().config;
        assert_eq!(
            ventral_models::config::ModelConfig::ConvRnn(cfg.clone()),
            preset,
            "{name}: the preset is the file"
        );
        cfg.estimated_size().0
    };
    assert_eq!(count("simplernn_shallow"), 6_272_872);
    assert_eq!(count("lstm_shallow"), 21_126_248);
    // The reciprocal gated cells as convrnns builds them (`RgcSpec::tensorflow`): no bias on
    // the generic cell's convolutions; the median cell's output residual by `residual_add`
    // and one bias per separable convolution. The original graphs' trainable variables
    // (`scripts/convrnns_tf_variables.py`; also checked through the CLI, tests/convrnn.rs):
    assert_eq!(count("rgc_shallow"), 23_956_840);
    assert_eq!(count("rgc_intermediate"), 15_445_800);
    for kind in [
        CellKind::Gru,
        CellKind::TimeDecay,
        CellKind::Ugrnn,
        CellKind::IntersectionRnn,
    ] {
        let built = shallow(
            kind,
            [64, 128, 256, 256, 512],
            224,
            1000,
            16,
            Some(12),
            false,
        );
        let name = format!("{}_shallow", kind.prefix());
        assert_eq!(count(&name), built.estimated_size().0, "{name}");
    }
    for kind in [
        CellKind::Gru,
        CellKind::Ugrnn,
        CellKind::Lstm,
        CellKind::IntersectionRnn,
    ] {
        let built = intermediate(kind, [64, 128, 256, 512], 224, 1000, 17, Some(12), false);
        let name = format!("{}_intermediate", kind.prefix());
        assert_eq!(count(&name) + 3, built.estimated_size().0, "{name}");
    }
}

#[test]
fn tf_same_padding_is_tensorflows_rule() {
    // out = ⌈H/s⌉, total = max((out − 1)·s + k − H, 0), the smaller half first.
    assert_eq!(
        tf_same_padding([224, 224], [7, 7], [1, 1], [2, 2]),
        [(2, 3), (2, 3)]
    );
    assert_eq!(
        tf_same_padding([223, 96], [7, 7], [1, 1], [2, 2]),
        [(3, 3), (2, 3)]
    );
    assert_eq!(
        tf_same_padding([7, 7], [3, 3], [1, 1], [1, 1]),
        [(1, 1), (1, 1)]
    );
    assert_eq!(
        tf_same_padding([7, 7], [2, 4], [1, 1], [1, 1]),
        [(0, 1), (1, 2)]
    );
    assert_eq!(
        tf_same_padding([8, 8], [1, 1], [1, 1], [2, 2]),
        [(0, 0), (0, 0)]
    );
}

/// `lstm_shallow.json` at 96 px, feedforward widths ÷ 16, 10 classes, then the LSTM widths
/// ÷ 16, 8 steps with the image off at 6 (as the fixture script).
fn scaled_lstm_shallow() -> ConvRnnConfig {
    let mut v = read("lstm_shallow.json");
    v["nodes"][0]["shape"] = json!([96, 96, 3]);
    for n in v["nodes"].as_array_mut().unwrap() {
        for key in ["pre_memory", "post_memory"] {
            for op in n[key].as_array_mut().unwrap() {
                if let Some(d) = op.get("out_depth").and_then(Value::as_u64) {
                    op["out_depth"] = json!(if d == 1000 { 10 } else { d / 16 });
                }
            }
        }
    }
    let mut cfg = tf_json::translate(&v, "lstm_shallow.json").unwrap();
    for n in &mut cfg.nodes {
        if let CellSpec::LSTMCell(g) = &mut n.recurrent_cell {
            assert!(g.layernorm_per_image);
            g.out_channels /= 16;
            n.out_channels = g.out_channels;
        }
    }
    cfg.num_timesteps = 8;
    cfg.movie.image_off = Some(6);
    cfg.validate().unwrap();
    cfg
}

#[test]
fn scaled_lstm_shallow_matches_a_pytorch_transcription_of_convrnns() {
    let cfg = scaled_lstm_shallow();
    // The searched constants of lstm_shallow.npz.
    let CellSpec::LSTMCell(g) = &cfg.nodes[3].recurrent_cell else {
        panic!()
    };
    assert!(g.use_peepholes);
    assert_eq!(g.forget_bias, 0.977962918535079);
    let device = Device::flex();
    let model = ConvRnn::init(&cfg, &device, 0).unwrap();
    let w = SafeTensors::read(&fixture("lstm_shallow_small.weights.safetensors")).unwrap();
    let model = params::load(model, &w).unwrap();
    let io = SafeTensors::read(&fixture("lstm_shallow_small.io.safetensors")).unwrap();
    let (shape, x) = io.f32("input").unwrap();
    let x = Tensor::<4>::from_data(TensorData::new(x, shape), &device);
    let out = model.forward_areas(x, true);
    let (mut worst, mut largest, mut compared) = (0.0f64, 0.0f64, 0);
    for t in 0..cfg.num_timesteps {
        for (node, ours) in &out.areas[t] {
            let (_, theirs) = io.f32(&format!("out.{t}.{node}")).unwrap();
            let ours: Vec<f32> = ours.clone().into_data().try_to_vec::<f32>().unwrap();
            assert_eq!(ours.len(), theirs.len(), "{node} t={t}");
            for (a, b) in ours.iter().zip(&theirs) {
                worst = worst.max((a - b).abs() as f64);
                largest = largest.max(b.abs() as f64);
            }
            compared += 1;
        }
    }
    assert_eq!(compared, 8 * 6);
    let rel = worst / largest;
    eprintln!("lstm_shallow (scaled): max abs diff {worst:.3e}, relative {rel:.3e}");
    assert!(rel <= 1e-4, "relative difference {rel:.3e}");
}

#[test]
fn scaled_lstm_shallow_learns_every_parameter_including_the_peepholes() {
    let cfg = scaled_lstm_shallow();
    let device = Device::flex().autodiff();
    let model = ConvRnn::init(&cfg, &device, 3).unwrap();
    Device::flex().seed(5);
    let x = Tensor::<4>::random(
        [2, 3, 96, 96],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &device,
    );
    let out = model.forward_areas(x, false);
    let y = Tensor::<2, Int>::from_data(TensorData::new(vec![1i64, 3], [2, 1]), &device);
    let loss = out
        .log_probs
        .last()
        .unwrap()
        .clone()
        .gather(1, y)
        .mean()
        .neg();
    let grads = params::gradients(&model, &loss.backward()).unwrap();
    for p in params::list(&model) {
        let (_, g) = grads
            .get(&p.name)
            .unwrap_or_else(|| panic!("no gradient for {}", p.name));
        assert!(g.iter().all(|v| v.is_finite()), "{}", p.name);
        assert!(g.iter().any(|v| *v != 0.0), "zero gradient for {}", p.name);
    }
}

#[test]
fn align_corners_resize_matches_pytorch() {
    let f = SafeTensors::read(&fixture("resize_align_corners.safetensors")).unwrap();
    let device = Device::flex();
    for (h, w, oh, ow) in [(3, 5, 7, 4), (6, 6, 11, 2), (7, 4, 1, 9)] {
        let (shape, x) = f.f32(&format!("in.{h}x{w}.{oh}x{ow}")).unwrap();
        let (_, want) = f.f32(&format!("out.{h}x{w}.{oh}x{ow}")).unwrap();
        let x = Tensor::<4>::from_data(TensorData::new(x, shape), &device);
        let got: Vec<f32> = ops::resize(x, oh, ow, true)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(got.len(), want.len());
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() <= 1e-6, "{h}x{w} → {oh}x{ow}: {a} vs {b}");
        }
    }
}

#[test]
fn unreadable_convrnns_json_is_refused_with_the_file_and_the_reason() {
    let v = read("gru_shallow.json");
    // No cell type in the name.
    let e = tf_json::translate(&v, "/data/model.json")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("/data/model.json") && e.contains("convrnn_type"),
        "{e}"
    );
    // …unless the JSON says it.
    let mut named = v.clone();
    named["convrnn_type"] = json!("gru");
    assert!(tf_json::translate(&named, "model.json").is_ok());
    // Dropout that would drop.
    let mut d = v.clone();
    d["nodes"][2]["pre_memory"][1]["keep_prob"] = json!(0.5);
    let e = tf_json::translate(&d, "gru_shallow.json")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("gru_shallow.json") && e.contains("conv3") && e.contains("keep_prob"),
        "{e}"
    );
    // An operation convrnns has and ventral does not read.
    let mut s = v.clone();
    s["nodes"][1]["post_memory"][0]["function"] = json!("spatial_fc");
    let e = tf_json::translate(&s, "gru_shallow.json")
        .unwrap_err()
        .to_string();
    assert!(e.contains("conv2") && e.contains("spatial_fc"), "{e}");
    // A harbor preprocessing step.
    let mut h = v;
    h["nodes"][3]["harbor"]["preproc"] = json!("crop");
    let e = tf_json::translate(&h, "gru_shallow.json")
        .unwrap_err()
        .to_string();
    assert!(e.contains("conv4") && e.contains("preproc"), "{e}");
}

#[test]
fn zoo_presets_take_another_number_of_classes_and_input_size() {
    use ventral_models::config::{ModelConfig, resolve_model};
    // Shallow (2×2 VALID convolution readout) and intermediate (fully connected readout);
    // the reciprocal gated cells as convrnns has them (the median cell's output residual as
    // it is at equal widths, a bias-free projection where they change).
    for preset in [
        "gru_shallow",
        "ugrnn_intermediate",
        "rgc_shallow",
        "rgc_intermediate",
    ] {
        let c = resolve_model(
            json!({"preset": preset, "num_classes": 8, "input_shape": [3, 96, 96]}),
            std::path::Path::new("."),
        )
        .unwrap();
        let ModelConfig::ConvRnn(c) = c else { panic!() };
        assert_eq!(c.num_classes(), 8, "{preset}");
        let m = ConvRnn::init(&c, &Device::flex(), 0).unwrap();
        let x = Tensor::<4>::zeros([1, 3, 96, 96], &Device::flex());
        let out = m.forward_areas(x, false);
        let last = out.log_probs.last().unwrap();
        assert_eq!(last.dims(), [1, 8], "{preset}");
        let v: Vec<f32> = last.clone().into_data().try_to_vec::<f32>().unwrap();
        assert!(v.iter().all(|x| x.is_finite()), "{preset}: {v:?}");
    }
    let e = resolve_model(
        json!({"preset": "gru_shallow", "num_classes": 0}),
        std::path::Path::new("."),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("num_classes"), "{e}");
}

/// With several inputs, component_conv's `input_name` (the input whose kernel is
/// `weights_basenet`) must be the node's `shape_from`, the input ventral's checkpoint mapping
/// takes as the feedforward one.
#[test]
fn a_feedback_nodes_component_conv_must_name_its_shape_from_input() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/convrnns_tf_forward/ugrnn_intermediate_feedback.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(tf_json::translate(&v, "ugrnn_intermediate_feedback.json").is_ok());
    let mut bad = v.clone();
    let conv3 = bad["nodes"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|n| n["name"] == "conv3")
        .unwrap();
    conv3["pre_memory"][0]["input_name"] = json!("conv10");
    let e = tf_json::translate(&bad, "ugrnn_intermediate_feedback.json")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("ugrnn_intermediate_feedback.json")
            && e.contains("conv3")
            && e.contains("input_name 'conv10'")
            && e.contains("shape_from 'conv2'"),
        "{e}"
    );
}
