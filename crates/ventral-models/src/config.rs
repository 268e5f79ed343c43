//! Model configurations: `ModelConfig` (`kind = "..."`) over the families, and the size guard
//! every configuration passes before anything is allocated. Each family's own configuration
//! lives in its folder (`blt/config.rs`, `rcnn_sat/config.rs`) and is re-exported here.

use serde::{Deserialize, Serialize};

pub use crate::blt::config::{BltConfig, Interaction, LtPosition, NormKind, default_channels};
use crate::error::{ModelError, Result};
pub use crate::rcnn_sat::config::{RcnnSatConfig, RcnnVariant};

/// A model of any registered kind (`kind = "..."`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModelConfig {
    /// The BLT family (Thorat et al. 2023).
    Blt(BltConfig),
    /// The rcnn-sat BL network and feedforward controls (Spoerer et al. 2020).
    RcnnSat(crate::rcnn_sat::RcnnSatConfig),
    /// ConvRNNs (Nayebi et al. 2018/2022): PyTorchTNN's graph schema.
    #[serde(rename = "convrnn")]
    ConvRnn(crate::convrnn::ConvRnnConfig),
}

impl ModelConfig {
    /// Check the configuration.
    pub fn validate(&self) -> Result<()> {
        match self {
            ModelConfig::Blt(c) => c.validate()?,
            ModelConfig::RcnnSat(c) => c.validate()?,
            ModelConfig::ConvRnn(c) => c.validate()?,
        }
        self.check_size()
    }

    /// Parameters, units per step (Σ C·H·W over layers) and units computed once (BLT's
    /// retina), estimated from the configuration alone in saturating arithmetic — before
    /// anything is allocated.
    pub fn estimated_size(&self) -> (u128, u128, u128) {
        match self {
            ModelConfig::Blt(c) => c.estimated_size(),
            ModelConfig::RcnnSat(c) => c.estimated_size(),
            ModelConfig::ConvRnn(c) => c.estimated_size(),
        }
    }

    /// Activation memory of a training batch of `batch` images, estimated from the
    /// configuration alone before anything is allocated: the native engine keeps about 4
    /// float32 values per unit and step for the backward pass (measured on BLT_net_64); 6 are
    /// counted, and 2 per unit computed once. Saturating.
    pub fn training_bytes(&self, batch: usize) -> u128 {
        self.activation_bytes(batch, 6, 2)
    }

    /// Memory of one inference pass over `batch` images (what `record` holds per batch),
    /// estimated like [`training_bytes`](Self::training_bytes): 3 float32 values per unit and
    /// step and 2 per unit computed once. Measured with `record` (peak RSS between two batch
    /// sizes, per image): on the quickstart's `tiny` BLT (2 000 against 64) 1.5 per unit-step
    /// recording the outputs, 2.3 with every area; on BLT_net_64 (64 against 1, 492 032 units
    /// per step, T = 4) 1.45 and 2.5. Saturating.
    pub fn inference_bytes(&self, batch: usize) -> u128 {
        self.activation_bytes(batch, 3, 2)
    }

    /// Memory of a training step over `batch` images: the activations of one pass
    /// ([`training_bytes`](Self::training_bytes); with `native`, a BLT batch runs on the CPU
    /// engine in passes of at most `fast::CHUNK` images) plus the batch's own arrays
    /// ([`batch_bytes`](Self::batch_bytes)). Returns (images per pass, bytes), saturating.
    pub fn training_step_bytes(&self, batch: usize, native: bool) -> (usize, u128) {
        let pass = if native && matches!(self, ModelConfig::Blt(_)) {
            batch.min(crate::fast::CHUNK)
        } else {
            batch
        };
        let bytes = self
            .training_bytes(pass)
            .saturating_add(self.batch_bytes(batch));
        (pass, bytes)
    }

    /// Memory of a batch's own arrays, beside the activations of the passes it runs in (the
    /// native engine runs at most `fast::CHUNK` images per pass, so for a large batch these
    /// dominate): its images and its per-step log-probabilities and representations, float32,
    /// counted twice (the loader's or caller's copy and the engine's). Saturating.
    pub fn batch_bytes(&self, batch: usize) -> u128 {
        let s = self.image_size() as u128;
        let per_image = (3 * s * s).saturating_add(
            (self.timesteps() as u128)
                .saturating_mul((self.num_classes() + self.feature_dim()) as u128),
        );
        per_image
            .saturating_mul(2 * 4)
            .saturating_mul(batch as u128)
    }

    /// `batch` images × (`per_step` float32 per unit and step + `per_once` per unit computed
    /// once), in bytes, saturating.
    fn activation_bytes(&self, batch: usize, per_step: u128, per_once: u128) -> u128 {
        let (_, units, once) = self.estimated_size();
        units
            .saturating_mul(self.timesteps() as u128)
            .saturating_mul(per_step)
            .saturating_add(once.saturating_mul(per_once))
            .saturating_mul(4)
            .saturating_mul(batch as u128)
    }

    fn check_size(&self) -> Result<()> {
        let (params, units, once) = self.estimated_size();
        if params > MAX_PARAMS {
            return Err(ModelError::Config(format!(
                "these widths (channels, num_classes) give about {params} parameters ({:.1} GB of float32); the limit is {MAX_PARAMS}",
                params as f64 * 4e-9
            )));
        }
        let per_image = units
            .saturating_mul(self.timesteps() as u128)
            .saturating_add(once);
        if per_image > MAX_UNITS_PER_IMAGE {
            return Err(ModelError::Config(format!(
                "these widths and image_size give about {units} units per step × {} steps + {once} computed once = {per_image} activations per image ({:.1} GB of float32); the limit is {MAX_UNITS_PER_IMAGE}",
                self.timesteps(),
                per_image as f64 * 4e-9
            )));
        }
        Ok(())
    }
    /// The temporal decoder the model is read out with, when it is not simply the last step
    /// (a ConvRNN's `decoder.kind` other than `last`), or when the loss is taken there:
    /// `(kind, loss at the decoder)`.
    pub fn decoder(&self) -> Option<(String, bool)> {
        match self {
            ModelConfig::ConvRnn(c)
                if c.decoder.kind != crate::convrnn::DecoderKind::Last
                    || c.decoder.loss == "decoder" =>
            {
                Some((format!("{:?}", c.decoder.kind), c.decoder.loss == "decoder"))
            }
            _ => None,
        }
    }

    /// Time steps.
    pub fn timesteps(&self) -> usize {
        match self {
            ModelConfig::Blt(c) => c.timesteps,
            ModelConfig::RcnnSat(c) => c.timesteps,
            ModelConfig::ConvRnn(c) => c.num_timesteps,
        }
    }
    /// Classes of the readout.
    pub fn num_classes(&self) -> usize {
        match self {
            ModelConfig::Blt(c) => c.num_classes,
            ModelConfig::RcnnSat(c) => c.num_classes,
            ModelConfig::ConvRnn(c) => c.num_classes(),
        }
    }
    /// Input side length.
    pub fn image_size(&self) -> usize {
        match self {
            ModelConfig::Blt(c) => c.image_size,
            ModelConfig::RcnnSat(c) => c.image_size,
            ModelConfig::ConvRnn(c) => c.image_size(),
        }
    }
    /// Names of the areas a forward pass can record, in order (BLT: `v1`, `v2`, `v4`, `it`;
    /// rcnn-sat: `layer_0` …).
    pub fn areas(&self) -> Vec<String> {
        match self {
            ModelConfig::Blt(_) => crate::blt::AREAS.iter().map(|s| s.to_string()).collect(),
            ModelConfig::RcnnSat(c) => c.areas(),
            ModelConfig::ConvRnn(c) => c.areas(),
        }
    }
    /// Width of the representation (GAP) layer.
    pub fn feature_dim(&self) -> usize {
        match self {
            ModelConfig::Blt(c) => c.channels[4],
            ModelConfig::RcnnSat(c) => c.layers().last().map_or(0, |l| l.0),
            ModelConfig::ConvRnn(c) => c
                .plan()
                .ok()
                .and_then(|p| {
                    let i = c.nodes.iter().position(|n| n.name == c.output_node)?;
                    Some(p[i].ff_channels)
                })
                .unwrap_or(0),
        }
    }
}

/// Largest model accepted: 2·10⁹ parameters (8 GB of float32; the largest published networks
/// of the field are below 10⁸).
pub const MAX_PARAMS: u128 = 2_000_000_000;
/// Largest activation count of one image over all steps accepted: 5·10⁸ (2 GB of float32).
pub const MAX_UNITS_PER_IMAGE: u128 = 500_000_000;

/// Merge `over` into `base`: objects key by key (recursively), anything else replaced.
fn merge(base: &mut serde_json::Value, over: serde_json::Value) {
    match (base, over) {
        (serde_json::Value::Object(b), serde_json::Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// A `[model]` table (as JSON) → a checked configuration. `preset = "name"` starts from a
/// registered model (`ventral models`), `graph = "file.json"` from a PyTorchTNN graph JSON or
/// an original convrnns model JSON (relative to `base_dir`); the table's other keys are merged over it, tables key by key
/// (`decoder = { kind = "max_conf" }` changes only the decoder's kind). Without either key
/// the table is the configuration itself.
pub fn resolve_model(v: serde_json::Value, base_dir: &std::path::Path) -> Result<ModelConfig> {
    let serde_json::Value::Object(mut table) = v else {
        return Err(ModelError::Config("[model] must be a table".into()));
    };
    let preset = table.remove("preset");
    let graph = table.remove("graph");
    let mut value = match (preset, graph) {
        (Some(_), Some(_)) => {
            return Err(ModelError::Config(
                "[model] takes either preset or graph, not both".into(),
            ));
        }
        (Some(p), None) => {
            let name = p.as_str().ok_or_else(|| {
                ModelError::Config(format!("model.preset must be a string, got {p}"))
            })?;
            let e = crate::registry::get(name).ok_or_else(|| {
                ModelError::Config(format!(
                    "model.preset = \"{name}\" is not a registered model (see `ventral models`)"
                ))
            })?;
            serde_json::to_value(&e.config).map_err(|e| ModelError::Config(e.to_string()))?
        }
        (None, Some(g)) => {
            let rel = g.as_str().ok_or_else(|| {
                ModelError::Config(format!("model.graph must be a path, got {g}"))
            })?;
            let path = base_dir.join(rel);
            let text = std::fs::read_to_string(&path).map_err(|e| {
                ModelError::Config(format!("model.graph: cannot read {}: {e}", path.display()))
            })?;
            let mut g: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| ModelError::Config(format!("{}: not JSON: {e}", path.display())))?;
            if crate::convrnn::tf_json::is_convrnns_json(&g) {
                // The original convrnns (TensorFlow) form, translated.
                let c = crate::convrnn::tf_json::translate(&g, &path.display().to_string())?;
                g = serde_json::to_value(&c).map_err(|e| ModelError::Config(e.to_string()))?;
            }
            if let serde_json::Value::Object(o) = &mut g {
                o.entry("kind")
                    .or_insert_with(|| serde_json::Value::String("convrnn".into()));
            }
            g
        }
        (None, None) => serde_json::Value::Object(serde_json::Map::new()),
    };
    merge(&mut value, serde_json::Value::Object(table));
    // A ConvRNN graph has no `num_classes` field: beside a preset or graph it resizes the
    // readout (ConvRnnConfig::set_num_classes).
    let classes = match &mut value {
        serde_json::Value::Object(o)
            if o.get("kind").and_then(|k| k.as_str()) == Some("convrnn") =>
        {
            o.remove("num_classes")
        }
        _ => None,
    };
    let mut cfg: ModelConfig =
        serde_json::from_value(value).map_err(|e| ModelError::Config(format!("[model]: {e}")))?;
    if let (Some(n), ModelConfig::ConvRnn(c)) = (classes, &mut cfg) {
        let n = n.as_u64().ok_or_else(|| {
            ModelError::Config(format!(
                "model.num_classes must be a positive integer, got {n}"
            ))
        })?;
        c.set_num_classes(n as usize)?;
    }
    cfg.validate()?;
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch's own arrays: images (3 × 64 × 64) and per-step log-probabilities (100) and
    /// representations (512) of BLT_net_64 at T = 4, float32, twice; saturating, not
    /// overflowing, for any batch.
    #[test]
    fn batch_bytes_counts_images_and_outputs() {
        let cfg = ModelConfig::Blt(BltConfig::reference64(4));
        assert_eq!(
            cfg.batch_bytes(3),
            3 * 2 * 4 * (3 * 64 * 64 + 4 * (100 + 512))
        );
        assert!(cfg.batch_bytes(usize::MAX) > u64::MAX as u128);
        // A training step: one pass of at most 64 images on the native engine, all of them
        // on burn's path; the batch's arrays either way.
        let (pass, bytes) = cfg.training_step_bytes(1000, true);
        assert_eq!(pass, crate::fast::CHUNK);
        assert_eq!(bytes, cfg.training_bytes(pass) + cfg.batch_bytes(1000));
        assert_eq!(
            cfg.training_step_bytes(1000, false),
            (1000, cfg.training_bytes(1000) + cfg.batch_bytes(1000))
        );
    }
}
