//! Size of ConvRNNs as Nayebi et al. (2022) count it: parameters by kind (feedforward, cell,
//! feedback, readout, decoder, norm), units = Σ C·H·W over nodes (each node once, not once per
//! step), FLOPs per step (2 × multiply-adds of convolutions, counted at the node's cell
//! resolution, and of the fully connected readout).

use std::collections::BTreeMap;

use super::config::ConvRnnConfig;
use crate::params::{ParamInfo, ParamKind};
use crate::size::SizeReport;

/// The kind of a ConvRNN parameter, from its name and the graph.
pub fn param_kind(cfg: &ConvRnnConfig, name: &str) -> &'static str {
    let node = name.split('.').next().unwrap_or_default();
    if node == "decoder" {
        return "decoder";
    }
    if node == cfg.output_node {
        return "readout";
    }
    if name.contains(".ln") || name.contains(".bn") || name.contains(".bns.") {
        return "norm";
    }
    if name.contains("._recurrent_cell.feedback_conv.") {
        return "feedback";
    }
    if name.contains("._recurrent_cell.") {
        return "cell";
    }
    "feedforward"
}

/// Size of a ConvRNN. Pre-memory weights that read feedback inputs (edges other than the
/// node's feedforward one, for cells without a feedback entry) count as feedback.
pub fn convrnn_size(cfg: &ConvRnnConfig, params: &[ParamInfo]) -> SizeReport {
    let plans = cfg.plan().unwrap_or_default();
    let mut by_type = BTreeMap::new();
    for t in [
        "feedforward",
        "cell",
        "feedback",
        "readout",
        "decoder",
        "norm",
    ] {
        by_type.insert(t.to_string(), 0usize);
    }
    let mut total = 0usize;
    let mut flops: u64 = 0;
    for p in params.iter().filter(|p| p.kind != ParamKind::Buffer) {
        let n: usize = p.shape.iter().product();
        total += n;
        let kind = param_kind(cfg, &p.name);
        let node = p.name.split('.').next().unwrap_or_default();
        let plan = cfg
            .nodes
            .iter()
            .position(|m| m.name == node)
            .and_then(|i| plans.get(i));
        // The share of a pre-memory convolution that reads feedback channels.
        let mut fb_share = 0usize;
        if kind == "feedforward"
            && p.kind == ParamKind::ConvWeight
            && p.name.ends_with("._pre_memory.conv.weight")
            && let Some(plan) = plan
            && !plan.split_feedback
        {
            let i = cfg.nodes.iter().position(|m| m.name == node).unwrap_or(0);
            let ff_input = cfg.ff_input(i);
            let fb_channels: usize = plan
                .inputs
                .iter()
                .zip(&plan.input_channels)
                .filter(|(inp, _)| **inp != ff_input)
                .map(|(_, c)| *c)
                .sum();
            if p.shape.len() == 4 && p.shape[1] > 0 {
                fb_share = n / p.shape[1] * fb_channels.min(p.shape[1]);
            }
        }
        *by_type.entry(kind.to_string()).or_default() += n - fb_share;
        *by_type.entry("feedback".to_string()).or_default() += fb_share;
        match p.kind {
            ParamKind::ConvWeight => {
                let area = plan.map(|p| p.cell_hw[0] * p.cell_hw[1]).unwrap_or(1);
                flops += 2 * (n * area) as u64;
            }
            ParamKind::LinearWeight => flops += 2 * n as u64,
            _ => {}
        }
    }
    let units: usize = plans
        .iter()
        .map(|p| p.out[0] * p.out[1].max(1) * p.out[2].max(1))
        .sum();
    // Parameters that exist (PyTorchTNN has them) but are not trained.
    let mut unused = Vec::new();
    for n in &cfg.nodes {
        if let super::spec::CellSpec::TimeDecayRecurrentCell {
            trainable: false, ..
        } = n.recurrent_cell
        {
            unused.push((
                format!("{}._recurrent_cell.tau", n.name),
                1,
                "τ fixed (trainable = false)".to_string(),
            ));
        }
    }
    if params.iter().any(|p| p.name == "decoder.beta") {
        use super::DecoderKind;
        if !cfg.decoder.trainable {
            unused.push((
                "decoder.beta".to_string(),
                1,
                "decoder β fixed (decoder.trainable = false)".to_string(),
            ));
        } else if matches!(
            cfg.decoder.kind,
            DecoderKind::MaxConf | DecoderKind::Thresh | DecoderKind::TimeMax
        ) {
            // It only chooses steps (an argmax), as in convrnns, where such a β, though
            // `trainable`, gets no gradient either: its checkpoints keep their value.
            unused.push((
                "decoder.beta".to_string(),
                1,
                "decoder β only chooses steps (no gradient through the argmax)".to_string(),
            ));
        }
    }
    let t = cfg.num_timesteps as u64;
    SizeReport {
        params_by_type: by_type,
        params_total: total,
        unused,
        units_per_step: units,
        units_once: 0,
        flops_step0: flops,
        flops_per_step: flops,
        flops_per_image: flops * t,
    }
}
