//! Registered ConvRNNs: the convrnns zoo itself (its sixteen model JSON files embedded and read
//! with TensorFlow's semantics: the shallow (6 nodes) and intermediate (11 nodes, ResNet-18-like)
//! backbones with each local cell, `rgc_intermediate` with the architecture search's median cell
//! and long-range feedback), feedforward controls of both backbones, and CPU-sized variants
//! (64 px, narrow, the embedded stimuli's 8 classes; ventral's own, PyTorchTNN semantics) that
//! train in minutes.

use std::collections::BTreeMap;

use super::config::{ConvRnnConfig, Decoder, DecoderKind, HarborOrder, Movie};
use super::spec::{
    CellSpec, ConvSpec, EdgeSpec, GatedSpec, HarborSpec, Kwargs, NodeSpec, OpSpec, Padding, Pair,
    RgcSpec,
};
use crate::config::ModelConfig;
use crate::registry::Entry;

/// The local cells of the zoo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellKind {
    Feedforward,
    TimeDecay,
    SimpleRnn,
    Gru,
    Lstm,
    Ugrnn,
    IntersectionRnn,
    Rgc,
}

impl CellKind {
    pub const ALL: [CellKind; 8] = [
        CellKind::Feedforward,
        CellKind::TimeDecay,
        CellKind::SimpleRnn,
        CellKind::Gru,
        CellKind::Lstm,
        CellKind::Ugrnn,
        CellKind::IntersectionRnn,
        CellKind::Rgc,
    ];
    pub fn prefix(self) -> &'static str {
        match self {
            CellKind::Feedforward => "ff",
            CellKind::TimeDecay => "timedecay",
            CellKind::SimpleRnn => "simplernn",
            CellKind::Gru => "gru",
            CellKind::Lstm => "lstm",
            CellKind::Ugrnn => "ugrnn",
            CellKind::IntersectionRnn => "intersectionrnn",
            CellKind::Rgc => "rgc",
        }
    }

    /// The cell for a node with `c` channels (`rgc_shallow`'s constants for the RGC).
    pub fn cell(self, c: usize) -> CellSpec {
        // Activations written out (PyTorchTNN's GRU/LSTM default Tanh, VanillaRNN ELU), so the
        // exported JSON builds the same network in PyTorchTNN.
        let gated = |layernorm: Option<bool>, activation: Option<&str>| GatedSpec {
            input_in_channels: Some(c),
            out_channels: c,
            ksize: Pair::Two([3, 3]),
            padding: Padding::Named("same".into()),
            use_bias: true,
            bias: None,
            init_dict: None,
            layernorm,
            forget_bias: 1.0,
            use_peepholes: false,
            layernorm_per_image: false,
            layernorm_eps: None,
            activation: activation.map(str::to_string),
            activation_func_kwargs: Kwargs::new(),
        };
        match self {
            CellKind::Feedforward => CellSpec::IdentityCell {},
            CellKind::TimeDecay => CellSpec::TimeDecayRecurrentCell {
                tau: 0.0,
                trainable: true,
                init_dict: None,
            },
            CellKind::SimpleRnn => CellSpec::VanillaRNNCell(gated(Some(true), Some("ELU"))),
            CellKind::Gru => CellSpec::GRUCell(gated(Some(false), Some("Tanh"))),
            CellKind::Lstm => CellSpec::LSTMCell(gated(Some(false), Some("Tanh"))),
            CellKind::Ugrnn => CellSpec::UGRNNCell(gated(Some(false), None)),
            CellKind::IntersectionRnn => CellSpec::IntersectionRNNCell(gated(Some(false), None)),
            CellKind::Rgc => CellSpec::ReciprocalGatedCell(Box::new(rgc_shallow(c))),
        }
    }
}

pub(crate) fn rgc_base(c: usize, cell_depth: usize) -> RgcSpec {
    serde_json::from_value(serde_json::json!({
        "input_in_channels": c, "out_channels": c, "cell_depth": cell_depth
    }))
    .expect("the RGC defaults deserialise")
}

/// `rgc_shallow`'s cell: 3×3 filters, input → cell, residual → output gate, σ gates, ELU.
pub fn rgc_shallow(c: usize) -> RgcSpec {
    rgc_base(c, c)
}

/// The median cell of the architecture search (`configs/median_rgcell_cfg.py`, its constants
/// in full) with `model_func.py`'s feedback overrides: depthwise-separable 7×7 τ/γ
/// convolutions, 2×2 feedforward, 3×3 input → output, input → cell and → output, output
/// residual, ELU input activation, σ τ with a = 0.92193…, k = −a and bias 4.1473… inside the
/// nonlinearity, tanh γ with a = 0.70066…, k = −a, bias 2.7765…, feedback 1×1 non-separable
/// with identity activation entering at the output. The original's cell depth is 64.
pub fn rgc_median(c: usize, cell_depth: usize) -> RgcSpec {
    let mut r = rgc_base(c, cell_depth);
    r.tau_filter_size = [7, 7];
    r.gate_filter_size = [7, 7];
    r.ff_filter_size = [2, 2];
    r.in_out_filter_size = [3, 3];
    r.feedback_filter_size = [1, 1];
    r.feedback_depth_separable = false;
    r.feedback_activation = Some("Identity".into());
    r.feedback_entry = "out".into();
    r.tau_depth_separable = true;
    r.gate_depth_separable = true;
    r.ff_depth_separable = false;
    r.in_out_depth_separable = false;
    r.input_to_cell = true;
    r.input_to_out = true;
    r.cell_to_out = false;
    r.cell_residual = false;
    r.out_residual = true;
    r.residual_to_out_gate = false;
    r.layernorm = false;
    r.input_activation = Some("ELU".into());
    r.cell_activation = Some("ELU".into());
    r.out_activation = Some("ELU".into());
    r.tau_nonlinearity = Some("Sigmoid".into());
    r.tau_offset = 0.9219348064291611;
    r.tau_multiplier = -0.9219348064291611;
    r.tau_bias = 4.147336708899556;
    r.gate_nonlinearity = Some("Tanh".into());
    r.gate_offset = 0.7006566684988862;
    r.gate_multiplier = -0.7006566684988862;
    r.gate_bias = 2.776542926439013;
    r
}

fn conv(
    cin: Option<usize>,
    c: usize,
    k: usize,
    stride: usize,
    padding: Padding,
    act: Option<&str>,
    bias: bool,
) -> ConvSpec {
    ConvSpec {
        in_channels: cin,
        out_channels: c,
        ksize: Pair::Two([k, k]),
        stride: Pair::One(stride),
        padding,
        dilation: Pair::One(1),
        groups: 1,
        use_bias: bias,
        bias: if bias { Some(0.0) } else { None },
        init_dict: None,
        dropout: 0.0,
        batchnorm: None,
        batchnorm_timevary: false,
        activation: act.map(|s| s.to_string()),
        activation_func_kwargs: Kwargs::new(),
    }
}

fn same() -> Padding {
    Padding::Named("same".into())
}

fn pool(ceil: bool) -> OpSpec {
    OpSpec::MaxPool {
        ksize: Pair::One(2),
        stride: Some(Pair::One(2)),
        padding: Some(Pair::One(0)),
        ceil_mode: ceil,
    }
}

fn node(
    name: &str,
    from: Option<&str>,
    pre: OpSpec,
    cell: CellSpec,
    post: OpSpec,
    out: usize,
    residual: bool,
) -> NodeSpec {
    NodeSpec {
        name: name.into(),
        shape_from: from.map(|s| s.to_string()),
        harbor_policy: HarborSpec::ResizeConcat {
            align_corners: false,
        },
        pre_memory: pre,
        recurrent_cell: cell,
        post_memory: post,
        out_channels: out,
        residual: Some(residual),
    }
}

fn chain(names: &[String]) -> Vec<EdgeSpec> {
    names
        .windows(2)
        .map(|w| EdgeSpec {
            from: w[0].clone(),
            to: w[1].clone(),
        })
        .collect()
}

fn gap_fc(classes: usize) -> OpSpec {
    OpSpec::Sequential {
        list_of_func_kwargs: vec![
            OpSpec::AdaptiveAvgPool {
                output_size: Pair::Two([1, 1]),
                flatten: false,
            },
            OpSpec::FullyConnected {
                out_channels: classes,
                init_dict: None,
                use_bias: true,
                bias: Some(1.0),
                dropout: 0.0,
                batchnorm: None,
                activation: None,
                activation_func_kwargs: Kwargs::new(),
            },
        ],
    }
}

/// The shallow backbone (`*_shallow.json`): conv1 7×7/2 + ELU + pool, conv2 3×3 + ELU + pool,
/// conv3–5 3×3 + ELU → cell → pool, readout `imnetds`. With `gap_readout` the readout is
/// average pool + fully connected (the CPU variants, whose 1×1 conv5 output is too small for
/// the original's 2×2 VALID convolution).
pub fn shallow(
    kind: CellKind,
    ch: [usize; 5],
    image: usize,
    classes: usize,
    steps: usize,
    image_off: Option<usize>,
    gap_readout: bool,
) -> ConvRnnConfig {
    let mut nodes = Vec::new();
    nodes.push(node(
        "conv1",
        None,
        OpSpec::Conv2dCell(conv(
            None,
            ch[0],
            7,
            2,
            Padding::Pair(Pair::One(3)),
            Some("ELU"),
            true,
        )),
        CellSpec::IdentityCell {},
        pool(false),
        ch[0],
        false,
    ));
    nodes.push(node(
        "conv2",
        Some("conv1"),
        OpSpec::Conv2dCell(conv(None, ch[1], 3, 1, same(), Some("ELU"), true)),
        CellSpec::IdentityCell {},
        pool(false),
        ch[1],
        false,
    ));
    for (i, name) in ["conv3", "conv4", "conv5"].iter().enumerate() {
        let c = ch[2 + i];
        nodes.push(node(
            name,
            Some(if i == 0 {
                "conv2"
            } else if i == 1 {
                "conv3"
            } else {
                "conv4"
            }),
            OpSpec::Conv2dCell(conv(None, c, 3, 1, same(), Some("ELU"), true)),
            kind.cell(c),
            pool(i == 2),
            c,
            false,
        ));
    }
    let readout = if gap_readout {
        node(
            "imnetds",
            Some("conv5"),
            OpSpec::Identity {},
            CellSpec::IdentityCell {},
            gap_fc(classes),
            classes,
            false,
        )
    } else {
        node(
            "imnetds",
            Some("conv5"),
            OpSpec::Conv2dCell(conv(
                None,
                classes,
                2,
                1,
                Padding::Named("valid".into()),
                None,
                true,
            )),
            CellSpec::IdentityCell {},
            OpSpec::AdaptiveAvgPool {
                output_size: Pair::Two([1, 1]),
                flatten: false,
            },
            classes,
            false,
        )
    };
    nodes.push(readout);
    let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
    let mut areas = BTreeMap::new();
    areas.insert("V4".to_string(), vec!["conv3".to_string()]);
    areas.insert(
        "IT".to_string(),
        vec!["conv4".to_string(), "conv5".to_string()],
    );
    ConvRnnConfig {
        nodes,
        edges: chain(&names),
        input_nodes: vec!["conv1".into()],
        output_node: "imnetds".into(),
        input_shape: [3, image, image],
        num_timesteps: steps,
        movie: Movie {
            image_off,
            blank_value: 0.5,
        },
        decoder: Decoder::default(),
        harbor_order: HarborOrder::FeedforwardFirst,
        brain_areas: areas,
        ff_order: None,
    }
}

/// The intermediate backbone (`*_intermediate.json`, ResNet-18-like): conv1 7×7/2 + ELU +
/// pool; conv2–10 3×3 + ELU → cell → residual block (3×3, 1×1 projection where the width
/// changes) + ELU, pooling after conv4, conv6, conv7, conv10; readout average pool + fully
/// connected. Cells in conv4–10 (conv1–3 time decay with τ fixed at 0, as the original).
pub fn intermediate(
    kind: CellKind,
    ch: [usize; 4],
    image: usize,
    classes: usize,
    steps: usize,
    image_off: Option<usize>,
    feedback: bool,
) -> ConvRnnConfig {
    let width = |i: usize| match i {
        1..=3 => ch[0],
        4 | 5 => ch[1],
        6 | 7 => ch[2],
        _ => ch[3],
    };
    let mut nodes = vec![node(
        "conv1",
        None,
        OpSpec::Conv2dCell(conv(
            None,
            ch[0],
            7,
            2,
            Padding::Pair(Pair::One(3)),
            None,
            true,
        )),
        CellSpec::TimeDecayRecurrentCell {
            tau: 0.0,
            trainable: false,
            init_dict: None,
        },
        OpSpec::Sequential {
            list_of_func_kwargs: vec![
                OpSpec::ActivationLayer {
                    activation: Some("ELU".into()),
                    activation_func_kwargs: Kwargs::new(),
                },
                pool(true),
            ],
        },
        ch[0],
        false,
    )];
    for i in 2..=10 {
        let (cin, c) = (width(i - 1), width(i));
        let cell = if i >= 4 {
            if kind == CellKind::Rgc && feedback {
                CellSpec::ReciprocalGatedCell(Box::new(rgc_median(c, 64.min(c))))
            } else {
                kind.cell(c)
            }
        } else {
            CellSpec::TimeDecayRecurrentCell {
                tau: 0.0,
                trainable: false,
                init_dict: None,
            }
        };
        let res = OpSpec::ResidualAdd {
            feedforward_func_kwargs: Box::new(OpSpec::Conv2dCell(conv(
                Some(c),
                c,
                3,
                1,
                same(),
                None,
                true,
            ))),
            residual_func_kwargs: (cin != c).then(|| {
                Box::new(OpSpec::Conv2dCell(conv(
                    Some(cin),
                    c,
                    1,
                    1,
                    same(),
                    None,
                    false,
                )))
            }),
            activation: Some("ELU".into()),
            activation_func_kwargs: Kwargs::new(),
        };
        let post = if [4, 6, 7, 10].contains(&i) {
            OpSpec::Sequential {
                list_of_func_kwargs: vec![res, pool(true)],
            }
        } else {
            res
        };
        let name = format!("conv{i}");
        let from = format!("conv{}", i - 1);
        nodes.push(node(
            &name,
            Some(&from),
            OpSpec::Conv2dCell(conv(None, c, 3, 1, same(), Some("ELU"), true)),
            cell,
            post,
            c,
            true,
        ));
    }
    nodes.push(node(
        "imnetds",
        Some("conv10"),
        OpSpec::Identity {},
        CellSpec::IdentityCell {},
        gap_fc(classes),
        classes,
        false,
    ));
    let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
    let mut edges = chain(&names);
    if feedback {
        for (f, t) in [
            ("conv8", "conv5"),
            ("conv9", "conv6"),
            ("conv10", "conv7"),
            ("conv7", "conv6"),
            ("conv10", "conv9"),
        ] {
            edges.push(EdgeSpec {
                from: f.into(),
                to: t.into(),
            });
        }
    }
    let mut areas = BTreeMap::new();
    areas.insert(
        "V4".to_string(),
        vec!["conv5".to_string(), "conv6".to_string()],
    );
    areas.insert(
        "IT".to_string(),
        (7..=10).map(|i| format!("conv{i}")).collect(),
    );
    ConvRnnConfig {
        nodes,
        edges,
        input_nodes: vec!["conv1".into()],
        output_node: "imnetds".into(),
        input_shape: [3, image, image],
        num_timesteps: steps,
        movie: Movie {
            image_off,
            blank_value: 0.5,
        },
        decoder: Decoder::default(),
        harbor_order: HarborOrder::FeedforwardFirst,
        brain_areas: areas,
        ff_order: None,
    }
}

/// The convrnns zoo's model JSON files (neuroailab/convrnns, MIT; `zoo/convrnns/NOTICE.md`),
/// embedded: the full-size presets are these architectures, read by [`super::tf_json`].
pub const ZOO: [(&str, &str); 16] = [
    (
        "timedecay_shallow",
        include_str!("../../zoo/convrnns/timedecay_shallow.json"),
    ),
    (
        "simplernn_shallow",
        include_str!("../../zoo/convrnns/simplernn_shallow.json"),
    ),
    (
        "gru_shallow",
        include_str!("../../zoo/convrnns/gru_shallow.json"),
    ),
    (
        "lstm_shallow",
        include_str!("../../zoo/convrnns/lstm_shallow.json"),
    ),
    (
        "ugrnn_shallow",
        include_str!("../../zoo/convrnns/ugrnn_shallow.json"),
    ),
    (
        "intersectionrnn_shallow",
        include_str!("../../zoo/convrnns/intersectionrnn_shallow.json"),
    ),
    (
        "rgc_shallow",
        include_str!("../../zoo/convrnns/rgc_shallow.json"),
    ),
    (
        "timedecay_intermediate",
        include_str!("../../zoo/convrnns/timedecay_intermediate.json"),
    ),
    (
        "simplernn_intermediate",
        include_str!("../../zoo/convrnns/simplernn_intermediate.json"),
    ),
    (
        "gru_intermediate",
        include_str!("../../zoo/convrnns/gru_intermediate.json"),
    ),
    (
        "lstm_intermediate",
        include_str!("../../zoo/convrnns/lstm_intermediate.json"),
    ),
    (
        "ugrnn_intermediate",
        include_str!("../../zoo/convrnns/ugrnn_intermediate.json"),
    ),
    (
        "ugrnn_intermediate_t30",
        include_str!("../../zoo/convrnns/ugrnn_intermediate_t30.json"),
    ),
    (
        "intersectionrnn_intermediate",
        include_str!("../../zoo/convrnns/intersectionrnn_intermediate.json"),
    ),
    (
        "rgc_intermediate",
        include_str!("../../zoo/convrnns/rgc_intermediate.json"),
    ),
    (
        "rgc_intermediate_t22",
        include_str!("../../zoo/convrnns/rgc_intermediate_t22.json"),
    ),
];

/// ImageNet top-1 of the zoo's pretrained checkpoints (convrnns README), where it lists one.
fn zoo_top1(name: &str) -> Option<&'static str> {
    Some(match name {
        "timedecay_shallow" => "50.06",
        "simplernn_shallow" => "61.11",
        "gru_shallow" => "62.16",
        "lstm_shallow" => "63.43",
        "ugrnn_shallow" => "60.82",
        "intersectionrnn_shallow" => "65.42",
        "rgc_shallow" => "66.97",
        "rgc_intermediate" => "73.0",
        _ => return None,
    })
}

/// A zoo architecture, translated (the embedded files are tested to translate).
pub fn zoo(name: &str) -> Option<ConvRnnConfig> {
    let (_, text) = ZOO.iter().find(|(n, _)| *n == name)?;
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    super::tf_json::translate(&v, &format!("{name}.json")).ok()
}

/// The feedforward control of a zoo backbone: `timedecay_*` with every time-decay memory
/// replaced by the identity (the same convolutions, no recurrence).
fn zoo_feedforward(backbone: &str) -> ConvRnnConfig {
    let mut c = zoo(&format!("timedecay_{backbone}")).expect("the embedded zoo translates");
    for n in &mut c.nodes {
        if matches!(n.recurrent_cell, CellSpec::TimeDecayRecurrentCell { .. }) {
            n.recurrent_cell = CellSpec::IdentityCell {};
        }
    }
    c
}

/// The ConvRNN entries (built once: their names are generated).
pub fn entries() -> Vec<Entry> {
    static ENTRIES: std::sync::OnceLock<Vec<Entry>> = std::sync::OnceLock::new();
    ENTRIES.get_or_init(build_entries).clone()
}

fn build_entries() -> Vec<Entry> {
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let mut v = Vec::new();
    for backbone in ["shallow", "intermediate"] {
        v.push(Entry {
            name: leak(format!("ff_{backbone}")),
            description: leak(format!(
                "feedforward control of the convrnns {backbone} backbone (timedecay_{backbone}.json without its time constants), 224 px"
            )),
            config: ModelConfig::ConvRnn(zoo_feedforward(backbone)),
        });
    }
    for (name, _) in ZOO {
        let c = zoo(name).expect("the embedded zoo translates");
        let top1 = zoo_top1(name)
            .map(|a| format!(", ImageNet top-1 {a}% in the original"))
            .unwrap_or_default();
        let off = c
            .movie
            .image_off
            .map_or("the image throughout".to_string(), |o| {
                format!("image off at {o}")
            });
        v.push(Entry {
            name,
            description: leak(format!(
                "convrnns zoo {name}.json (Nayebi et al. 2018/2022; TensorFlow semantics): {} nodes, 224 px, {} steps, {off}, 1000 classes{top1}",
                c.nodes.len(),
                c.num_timesteps
            )),
            config: ModelConfig::ConvRnn(c),
        });
    }
    // The published decoder variants (convrnns `utils/loader.py::MODEL_TO_KWARGS`): a
    // temporal decoder over steps 11 … T − 1 (`model_func`'s decoder_start = the number of
    // layers) — max_conf with a trained softmax temperature, or the fixed 0.9 threshold.
    for (name, base, kind, trainable) in [
        (
            "rgc_intermediate_tmaxconf",
            "rgc_intermediate",
            DecoderKind::MaxConf,
            true,
        ),
        (
            "rgc_intermediate_t22_tmaxconf",
            "rgc_intermediate_t22",
            DecoderKind::MaxConf,
            true,
        ),
        (
            "rgc_intermediate_dthresh",
            "rgc_intermediate",
            DecoderKind::Thresh,
            false,
        ),
        (
            "ugrnn_intermediate_t30_tmaxconf",
            "ugrnn_intermediate_t30",
            DecoderKind::MaxConf,
            true,
        ),
        (
            "ugrnn_intermediate_t30_dthresh",
            "ugrnn_intermediate_t30",
            DecoderKind::Thresh,
            false,
        ),
    ] {
        let mut c = zoo(base).expect("the embedded zoo translates");
        c.decoder = Decoder {
            kind,
            start: c.nodes.len(),
            trainable,
            ..Decoder::default()
        };
        let how = if trainable {
            "max_conf decoder (trained softmax temperature)".to_string()
        } else {
            format!("threshold decoder ({})", c.decoder.threshold)
        };
        v.push(Entry {
            name,
            description: leak(format!(
                "convrnns zoo {base}.json with the {how} over steps {} … {} (a published checkpoint), 224 px, 1000 classes",
                c.decoder.start,
                c.num_timesteps - 1
            )),
            config: ModelConfig::ConvRnn(c),
        });
    }
    for kind in CellKind::ALL {
        let p = kind.prefix();
        v.push(Entry {
            name: leak(format!("{p}_shallow_cpu")),
            description: leak(format!(
                "CPU-sized shallow ConvRNN ({p} cells): 64 px, channels 16/32/32/32/64, 8 steps (image off at 6), 8 classes of the embedded stimuli"
            )),
            config: ModelConfig::ConvRnn(shallow(kind, [16, 32, 32, 32, 64], 64, 8, 8, Some(6), true)),
        });
    }
    v.push(Entry {
        name: "rgc_intermediate_cpu",
        description: "CPU-sized rgc_intermediate: median cell, long-range feedback, 64 px, channels 16/32/32/64, 17 steps (image off at 12, the original presentation), 8 classes",
        config: ModelConfig::ConvRnn(intermediate(CellKind::Rgc, [16, 32, 32, 64], 64, 8, 17, Some(12), true)),
    });
    v
}
