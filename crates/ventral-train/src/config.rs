//! The training configuration file: `[model]`, `[data]`, `[train]`, with `--set key=value`
//! overrides applied to the TOML tree before it is checked.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use ventral_data::augment::AugmentConfig;
use ventral_models::ModelConfig;

use crate::error::{Result, TrainError, file_err};

/// A whole training configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainFile {
    pub model: ModelConfig,
    pub data: DataConfig,
    pub train: TrainConfig,
}

/// `[data]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// A packed dataset root holding the training and validation splits.
    pub path: PathBuf,
    /// Split names.
    #[serde(default = "default_train")]
    pub train_split: String,
    #[serde(default = "default_val")]
    pub val_split: String,
    /// Training augmentations (none when absent).
    #[serde(default)]
    pub augment: Option<AugmentConfig>,
}

fn default_train() -> String {
    "train".into()
}
fn default_val() -> String {
    "val".into()
}

/// The optimiser, with PyTorch's semantics and defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum OptimizerConfig {
    /// `torch.optim.Adam` (L2 weight decay added to the gradient) or, with `decoupled`,
    /// `torch.optim.AdamW`.
    Adam {
        #[serde(default = "lr_adam")]
        lr: f64,
        #[serde(default = "betas")]
        betas: [f64; 2],
        #[serde(default = "eps")]
        eps: f64,
        #[serde(default)]
        weight_decay: f64,
        #[serde(default)]
        decoupled: bool,
    },
    /// `torch.optim.SGD` with momentum, dampening, Nesterov and L2 weight decay.
    Sgd {
        lr: f64,
        #[serde(default)]
        momentum: f64,
        #[serde(default)]
        dampening: f64,
        #[serde(default)]
        nesterov: bool,
        #[serde(default)]
        weight_decay: f64,
    },
}

fn lr_adam() -> f64 {
    1e-3
}
fn betas() -> [f64; 2] {
    [0.9, 0.999]
}
fn eps() -> f64 {
    1e-8
}

impl Default for OptimizerConfig {
    /// The reference: Adam, lr 1e-3, PyTorch's eps 1e-8, no weight decay.
    fn default() -> Self {
        OptimizerConfig::Adam {
            lr: lr_adam(),
            betas: betas(),
            eps: eps(),
            weight_decay: 0.0,
            decoupled: false,
        }
    }
}

impl OptimizerConfig {
    /// Base learning rate.
    pub fn lr(&self) -> f64 {
        match self {
            OptimizerConfig::Adam { lr, .. } | OptimizerConfig::Sgd { lr, .. } => *lr,
        }
    }
}

/// Learning-rate schedule, evaluated per optimisation step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// `constant`, `step` (× `gamma` every `step_epochs`) or `cosine` (to `min_lr` at the end).
    #[serde(default = "constant")]
    pub kind: String,
    /// Linear warm-up from 0 over this many optimisation steps.
    #[serde(default)]
    pub warmup_steps: usize,
    #[serde(default = "one")]
    pub step_epochs: usize,
    #[serde(default = "gamma")]
    pub gamma: f64,
    #[serde(default)]
    pub min_lr: f64,
}

fn constant() -> String {
    "constant".into()
}
fn one() -> usize {
    1
}
fn gamma() -> f64 {
    0.1
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self {
            kind: constant(),
            warmup_steps: 0,
            step_epochs: 1,
            gamma: gamma(),
            min_lr: 0.0,
        }
    }
}

impl ScheduleConfig {
    /// Learning rate at optimisation step `step` (0-based) of `total` in epoch `epoch`.
    pub fn lr(&self, base: f64, step: usize, total: usize, epoch: usize) -> f64 {
        let lr = match self.kind.as_str() {
            "step" => base * self.gamma.powi((epoch / self.step_epochs.max(1)) as i32),
            "cosine" => {
                let t = step as f64 / total.max(1) as f64;
                self.min_lr + 0.5 * (base - self.min_lr) * (1.0 + (std::f64::consts::PI * t).cos())
            }
            _ => base,
        };
        if step < self.warmup_steps {
            lr * (step + 1) as f64 / self.warmup_steps as f64
        } else {
            lr
        }
    }
}

/// `[train]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    /// Root seed of every random stream (init, shuffle, augment).
    pub seed: u64,
    #[serde(default)]
    pub optimizer: OptimizerConfig,
    #[serde(default)]
    pub schedule: ScheduleConfig,
    /// Weight of each time step's loss (default 1 for every step, as the reference).
    #[serde(default)]
    pub loss_weights: Option<Vec<f64>>,
    /// Clip the global gradient L2 norm to this value.
    #[serde(default)]
    pub grad_clip: Option<f64>,
    /// Keep a checkpoint every this many epochs (0: only init and last).
    #[serde(default)]
    pub checkpoint_every: usize,
    /// Also checkpoint every this many optimisation steps within an epoch (0: never).
    #[serde(default)]
    pub checkpoint_steps: usize,
    /// `cpu`, `cuda:N` or `wgpu`.
    #[serde(default = "cpu")]
    pub device: String,
    /// Leave out each epoch's last, smaller training batch (PyTorch's `DataLoader(drop_last=
    /// True)`); validation still sees every image. Off by default. On a GPU each new batch
    /// shape compiles and autotunes burn's kernels afresh (measured on an H200: a ragged last
    /// batch of BLT_net_64 cost 73 s once per process, as long as training 45 000 images there),
    /// which this avoids.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drop_last: bool,
    /// Batch size for validation.
    #[serde(default = "eval_bs")]
    pub eval_batch_size: usize,
    /// Which engine computes forward and backward: `auto` (ventral's native CPU engine for BLT
    /// networks on `cpu`, burn's autodiff otherwise), `native` (require the native engine) or
    /// `burn`. Both give the same mathematics; see docs/performance.md.
    #[serde(default = "auto")]
    pub engine: String,
    /// On the native engine, compute the 3 × 3 stride-1 convolutions' forwards, input
    /// gradients and (on maps up to 64 px) weight gradients by Winograd F(4 × 4, 3 × 3)
    /// (`ventral_engine::winograd`): fewer multiply-adds, another float32 rounding (held to
    /// the float32 parity bounds against PyTorch in `tests/parity.rs`). Validation stays
    /// exact. Off by default.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub winograd: bool,
    /// Arithmetic on burn's engine: `f32` (default) or `bf16` — PyTorch-autocast-style mixed
    /// precision: convolutions and linear layers in bfloat16, everything else and the
    /// parameters, gradients and optimiser state in float32 (`ventral_models::precision`).
    /// For GPUs (tensor cores), and for the native CPU engine (a BLT on `cpu`), which runs
    /// its convolutions and linear layers on AMX tiles where the CPU has them (Intel Xeon 4th
    /// generation and later; `ventral_engine::bf16`) — elsewhere on the native engine the
    /// rounded operands go through the float32 kernels (the same arithmetic, no faster), and
    /// on burn's CPU engine (`engine = "burn"`) bf16 is emulated and slower. Validation runs
    /// in the same precision; `ventral record` always in float32.
    #[serde(default = "f32_name", skip_serializing_if = "is_f32")]
    pub precision: String,
    /// The SGD limiting-dynamics tracker (`crate::sgd_dynamics`); off when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sgd_dynamics: Option<crate::sgd_dynamics::SgdDynamicsConfig>,
}

fn auto() -> String {
    "auto".into()
}

fn f32_name() -> String {
    "f32".into()
}

fn is_f32(p: &str) -> bool {
    p == "f32"
}

fn cpu() -> String {
    "cpu".into()
}
fn eval_bs() -> usize {
    250
}

impl TrainFile {
    /// Read `path`, apply `key=value` overrides, check.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| file_err(path.display(), e))?;
        Self::parse(&text, overrides, &path.display().to_string())
    }

    /// Parse TOML text with overrides; `name` labels errors.
    pub fn parse(text: &str, overrides: &[String], name: &str) -> Result<Self> {
        let mut v: toml::Table = toml::from_str(text).map_err(|e| file_err(name, e))?;
        for o in overrides {
            set(&mut v, o).map_err(|e| TrainError::Config(format!("--set {o}: {e}")))?;
        }
        // `[model] preset = …` / `graph = …` expand to the full configuration here, so the
        // run's saved config.toml is self-contained.
        if let Some(m) = v.get("model").cloned() {
            let json = serde_json::to_value(&m).map_err(|e| file_err(name, e))?;
            let base = Path::new(name).parent().unwrap_or(Path::new("."));
            let cfg = ventral_models::config::resolve_model(json, base)
                .map_err(|e| TrainError::Config(format!("{name}: {e}")))?;
            let t = toml::Value::try_from(&cfg).map_err(|e| file_err(name, e))?;
            v.insert("model".into(), t);
        }
        let f: TrainFile = toml::Value::Table(v)
            .try_into()
            .map_err(|e: toml::de::Error| {
                // A value that came from `--set` is named as such, not as the file's.
                let text = e.to_string();
                match overrides.iter().find(|o| {
                    o.split_once('=')
                        .is_some_and(|(k, _)| text.contains(&format!("in `{}`", k.trim())))
                }) {
                    Some(o) => file_err(format!("{name} with --set {o}"), e),
                    None => file_err(name, e),
                }
            })?;
        f.check()
            .map_err(|e| TrainError::Config(format!("{name}: {e}")))?;
        Ok(f)
    }

    /// What only training needs of the configuration, beyond [`Self::parse`]'s checks (which
    /// reading an existing run's configuration, e.g. to record it, re-runs): a ConvRNN's output
    /// node must see the image within the run, and step loss weights must not all be zero from
    /// the step it does.
    pub fn check_for_training(&self) -> std::result::Result<(), String> {
        let t = &self.train;
        if let ModelConfig::ConvRnn(c) = &self.model {
            // A ConvRNN whose output never sees the image would fit the same logits to every
            // image (a presentation too short for the graph's depth).
            let first = c
                .output_sees_image()
                .map_err(|e| format!("model: {e}; training it would fit constant logits"))?;
            let at_decoder = c.decoder.loss == "decoder";
            if let Some(w) = t.loss_weights.as_ref().filter(|_| !at_decoder)
                && w.iter().skip(first).all(|v| *v == 0.0)
            {
                return Err(format!(
                    "train.loss_weights are zero from step {first} on, where the image first \
                     reaches the model's output node '{}': the loss would not depend on the image",
                    c.output_node
                ));
            }
        }
        Ok(())
    }

    fn check(&self) -> std::result::Result<(), String> {
        self.model.validate().map_err(|e| e.to_string())?;
        let timesteps = self.model.timesteps();
        let t = &self.train;
        if t.epochs == 0 || t.batch_size == 0 || t.eval_batch_size == 0 {
            return Err(
                "train.epochs, train.batch_size and train.eval_batch_size must be positive".into(),
            );
        }
        if let Some(w) = &t.loss_weights {
            if w.len() != timesteps {
                return Err(format!(
                    "train.loss_weights has {} values for {} time steps",
                    w.len(),
                    timesteps
                ));
            }
            if let Some(v) = w.iter().find(|v| !v.is_finite() || **v < 0.0) {
                return Err(format!(
                    "train.loss_weights must be finite and >= 0, got {v}"
                ));
            }
            if w.iter().all(|v| *v == 0.0) {
                return Err("train.loss_weights are all zero: nothing would be trained".into());
            }
        }
        check_optimizer(&t.optimizer)?;
        let sc = &t.schedule;
        positive("train.schedule.gamma", sc.gamma)?;
        at_least_zero("train.schedule.min_lr", sc.min_lr)?;
        if sc.kind == "step" && sc.step_epochs == 0 {
            return Err("train.schedule.step_epochs must be >= 1".into());
        }
        if let Some(a) = &self.data.augment {
            let [lo, hi] = a.crop_scale;
            if !(lo.is_finite() && hi.is_finite() && 0.0 < lo && lo <= hi && hi <= 1.0) {
                return Err(format!(
                    "data.augment.crop_scale must satisfy 0 < low <= high <= 1, got [{lo}, {hi}]"
                ));
            }
            let [lo, hi] = a.crop_ratio;
            if !(lo.is_finite() && hi.is_finite() && 0.0 < lo && lo <= hi) {
                return Err(format!(
                    "data.augment.crop_ratio must satisfy 0 < low <= high, got [{lo}, {hi}]"
                ));
            }
        }
        if !["constant", "step", "cosine"].contains(&t.schedule.kind.as_str()) {
            return Err(format!(
                "train.schedule.kind '{}' is not constant, step or cosine",
                t.schedule.kind
            ));
        }
        match t.engine.as_str() {
            "auto" | "burn" => {}
            "native" => {
                if !self.native_engine() {
                    return Err(
                        "train.engine = \"native\" needs a BLT model (kind = \"blt\") on device \"cpu\""
                            .into(),
                    );
                }
            }
            other => {
                return Err(format!(
                    "train.engine '{other}' is not auto, native or burn"
                ));
            }
        }
        if t.winograd && !self.native_engine() {
            return Err(
                "train.winograd = true needs the native engine (a BLT model on device \"cpu\", engine auto or native)"
                    .into(),
            );
        }
        match ventral_models::Precision::parse(&t.precision) {
            Err(e) => return Err(format!("train.precision: {e}")),
            Ok(ventral_models::Precision::Bf16) if t.winograd => {
                return Err(
                    "train.precision = \"bf16\" and train.winograd = true exclude each other (Winograd's transformed tiles would be rounded to bf16): pick one"
                        .into(),
                );
            }
            Ok(_) => {}
        }
        if let Some(d) = &t.sgd_dynamics {
            if d.every == 0 {
                return Err("train.sgd_dynamics.every must be >= 1".into());
            }
            // Kunin et al.'s limiting dynamics are those of SGD at one learning rate: the
            // diffusion exponent and `ventral diffusion`'s C·η²/(S(1−β²)) assume it. A decaying
            // schedule (tiny.toml's cosine, inherited through `--set`) would make the tracked
            // distance plateau for another reason.
            if d.enabled && t.schedule.kind != "constant" {
                return Err(format!(
                    "train.sgd_dynamics tracks the limiting dynamics of SGD at a constant learning rate (Kunin et al. 2021; `ventral diffusion` fits and predicts from one η), but train.schedule.kind = \"{}\": set train.schedule.kind = \"constant\" (--set train.schedule.kind=constant)",
                    t.schedule.kind
                ));
            }
            if d.enabled && d.start_epoch >= t.epochs {
                return Err(format!(
                    "train.sgd_dynamics.start_epoch = {} but training has {} epochs (0-based: at most {})",
                    d.start_epoch,
                    t.epochs,
                    t.epochs - 1
                ));
            }
        }
        if t.grad_clip.is_some_and(|c| c.is_nan() || c <= 0.0) {
            return Err("train.grad_clip must be positive".into());
        }
        Ok(())
    }

    /// Whether training runs on the native CPU engine (`ventral_models::fast`).
    pub fn native_engine(&self) -> bool {
        self.train.engine != "burn"
            && matches!(self.model, ModelConfig::Blt(_))
            && ventral_models::device::is_cpu(&self.train.device)
    }

    /// The resolved configuration as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }
}

/// `key` must be finite and > 0.
fn positive(key: &str, v: f64) -> std::result::Result<(), String> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(format!("{key} must be finite and > 0, got {v}"))
    }
}

/// `key` must be finite and >= 0.
fn at_least_zero(key: &str, v: f64) -> std::result::Result<(), String> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(format!("{key} must be finite and >= 0, got {v}"))
    }
}

/// Every optimiser hyperparameter in the range PyTorch accepts (and finite).
fn check_optimizer(o: &OptimizerConfig) -> std::result::Result<(), String> {
    const K: &str = "train.optimizer";
    match o {
        OptimizerConfig::Adam {
            lr,
            betas,
            eps,
            weight_decay,
            ..
        } => {
            positive(&format!("{K}.lr"), *lr)?;
            positive(&format!("{K}.eps"), *eps)?;
            at_least_zero(&format!("{K}.weight_decay"), *weight_decay)?;
            for (i, b) in betas.iter().enumerate() {
                if !(b.is_finite() && (0.0..1.0).contains(b)) {
                    return Err(format!("{K}.betas[{i}] must be in [0, 1), got {b}"));
                }
            }
        }
        OptimizerConfig::Sgd {
            lr,
            momentum,
            dampening,
            nesterov,
            weight_decay,
        } => {
            positive(&format!("{K}.lr"), *lr)?;
            at_least_zero(&format!("{K}.momentum"), *momentum)?;
            at_least_zero(&format!("{K}.weight_decay"), *weight_decay)?;
            if !(dampening.is_finite() && (0.0..=1.0).contains(dampening)) {
                return Err(format!("{K}.dampening must be in [0, 1], got {dampening}"));
            }
            if *nesterov && (*momentum <= 0.0 || *dampening != 0.0) {
                return Err(format!(
                    "{K}.nesterov needs momentum > 0 and dampening = 0 (as in PyTorch)"
                ));
            }
        }
    }
    Ok(())
}

/// Apply one `a.b.c=value` override; the value is parsed as TOML (number, bool, array...) and
/// otherwise taken as a string.
fn set(root: &mut toml::Table, assignment: &str) -> std::result::Result<(), String> {
    let (key, value) = assignment.split_once('=').ok_or("expected key=value")?;
    let value: toml::Value = match toml::from_str::<toml::Table>(&format!("v = {value}")) {
        Ok(mut t) => t.remove("v").unwrap_or(toml::Value::String(value.into())),
        // A whole number TOML cannot hold would otherwise become a string, and the config
        // check would report a string where a number was meant.
        Err(_) if value.trim().parse::<i128>().is_ok() => {
            return Err(format!(
                "{} is out of range: TOML integers lie between {} and {}",
                value.trim(),
                i64::MIN,
                i64::MAX
            ));
        }
        Err(_) => toml::Value::String(value.to_string()),
    };
    let parts: Vec<&str> = key.trim().split('.').collect();
    let mut table = root;
    for p in &parts[..parts.len() - 1] {
        table = table
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| format!("'{p}' is not a table"))?;
    }
    table.insert(parts[parts.len() - 1].to_string(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOML: &str = r#"
[model]
kind = "blt"
image_size = 64
num_classes = 8
timesteps = 3
lateral = true
topdown = true
interaction = "additive"
lt_position = "all"
classifier_bias = false
norm = "layer"
faithful_v1 = true
channels = [4, 4, 8, 8, 8]

[data]
path = "runs/stimuli"

[train]
epochs = 2
batch_size = 16
seed = 1
"#;

    #[test]
    fn overrides_and_defaults() {
        let f = TrainFile::parse(
            TOML,
            &[
                "data.path=/tmp/x".into(),
                "train.epochs=5".into(),
                "train.optimizer.kind=sgd".into(),
                "train.optimizer.lr=0.1".into(),
                "train.optimizer.momentum=0.9".into(),
            ],
            "t.toml",
        )
        .unwrap();
        assert_eq!(f.data.path, PathBuf::from("/tmp/x"));
        assert_eq!(f.train.epochs, 5);
        assert!(
            matches!(f.train.optimizer, OptimizerConfig::Sgd { momentum, .. } if momentum == 0.9)
        );
        let g = TrainFile::parse(TOML, &[], "t.toml").unwrap();
        assert_eq!(g.train.optimizer, OptimizerConfig::default());
        // Round trip through the resolved TOML.
        assert_eq!(TrainFile::parse(&g.to_toml(), &[], "r").unwrap(), g);
        let e = TrainFile::parse(TOML, &["train.bogus=1".into()], "t.toml").unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
        let e = TrainFile::parse(TOML, &["train.loss_weights=[1.0]".into()], "t.toml").unwrap_err();
        assert!(e.to_string().contains("loss_weights"), "{e}");
        // A whole number TOML cannot hold is named as out of range (it used to become the
        // string "99999999999999999999" and be reported as a string where a usize was meant),
        // and a wrong type that came from --set names the --set, not only the file.
        let e = TrainFile::parse(
            TOML,
            &["train.epochs=99999999999999999999".into()],
            "t.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("--set train.epochs=99999999999999999999") && e.contains("out of range"),
            "{e}"
        );
        let e = TrainFile::parse(TOML, &["train.epochs=-1".into()], "t.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("t.toml with --set train.epochs=-1"), "{e}");
        // An error that no --set caused names the file alone.
        let bad = TOML.replace("epochs = 2", "epochs = -2");
        let e = TrainFile::parse(&bad, &["train.seed=3".into()], "t.toml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("t.toml:") && !e.contains("--set"), "{e}");
    }

    /// The issue-13 examples: every numeric hyperparameter is range-checked at load, naming the
    /// key and the value.
    #[test]
    fn hyperparameters_are_range_checked() {
        let t = TrainFile::parse(TOML, &[], "t.toml")
            .unwrap()
            .model
            .timesteps();
        let w = |v: &str| format!("train.loss_weights=[{}]", vec![v; t].join(","));
        for (set, key) in [
            ("train.optimizer.lr=nan".to_string(), "train.optimizer.lr"),
            ("train.optimizer.lr=inf".to_string(), "train.optimizer.lr"),
            ("train.optimizer.lr=-1.0".to_string(), "train.optimizer.lr"),
            ("train.optimizer.eps=0.0".to_string(), "train.optimizer.eps"),
            (
                "train.optimizer.betas=[1.0, 1.0]".to_string(),
                "train.optimizer.betas[0]",
            ),
            (
                "train.optimizer.weight_decay=nan".to_string(),
                "train.optimizer.weight_decay",
            ),
            (
                "train.schedule.gamma=-1.0".to_string(),
                "train.schedule.gamma",
            ),
            (
                "data.augment.crop_scale=[2.0, 1.0]".to_string(),
                "data.augment.crop_scale",
            ),
            (w("-1.0"), "train.loss_weights"),
            (w("0.0"), "train.loss_weights"),
        ] {
            let sets = ["train.optimizer.kind=adam".to_string(), set.clone()];
            let e = TrainFile::parse(TOML, &sets, "t.toml")
                .unwrap_err()
                .to_string();
            assert!(e.contains(key) && e.contains("t.toml"), "{set}: {e}");
        }
        let sgd = |extra: &str| {
            let mut v = vec![
                "train.optimizer.kind=sgd".to_string(),
                "train.optimizer.lr=0.1".to_string(),
            ];
            v.push(extra.to_string());
            TrainFile::parse(TOML, &v, "t.toml").map_err(|e| e.to_string())
        };
        assert!(
            sgd("train.optimizer.momentum=-0.5")
                .unwrap_err()
                .contains("momentum")
        );
        assert!(
            sgd("train.optimizer.nesterov=true")
                .unwrap_err()
                .contains("nesterov")
        );
        assert!(sgd("train.optimizer.momentum=0.9").is_ok());
        // The limiting-dynamics tracker needs one learning rate.
        let e = sgd("train.schedule.kind=cosine");
        assert!(e.is_ok(), "{e:?}");
        let tracked = |kind: &str| {
            let sets = [
                "train.optimizer.kind=sgd".to_string(),
                "train.optimizer.lr=0.1".to_string(),
                "train.sgd_dynamics.every=1".to_string(),
                format!("train.schedule.kind={kind}"),
            ];
            TrainFile::parse(TOML, &sets, "t.toml").map_err(|e| e.to_string())
        };
        let e = tracked("cosine").unwrap_err();
        assert!(
            e.contains("train.schedule.kind") && e.contains("constant") && e.contains("t.toml"),
            "{e}"
        );
        assert!(tracked("step").is_err());
        assert!(tracked("constant").is_ok());
        // A warm-up on the constant schedule must end before the first tracked step
        // (start_epoch × batches per epoch; checked once the batches are known).
        let warm = |start: usize, warmup: usize, nb: usize| {
            let sets = [
                "train.optimizer.kind=sgd".to_string(),
                "train.optimizer.lr=0.1".to_string(),
                "train.sgd_dynamics.every=1".to_string(),
                format!("train.sgd_dynamics.start_epoch={start}"),
                format!("train.schedule.warmup_steps={warmup}"),
                "train.epochs=5".to_string(),
            ];
            let f = TrainFile::parse(TOML, &sets, "t.toml").unwrap();
            let split = std::path::Path::new("data/train");
            crate::train::check_warmup_before_tracking(&f.train, nb, split)
                .map_err(|e| e.to_string())
        };
        let e = warm(0, 10, 8).unwrap_err();
        assert!(
            e.starts_with("data/train: ")
                && e.contains("train.schedule.warmup_steps = 10")
                && e.contains("start_epoch to at least 2"),
            "{e}"
        );
        assert!(warm(1, 10, 8).is_err());
        assert!(warm(1, 10, 10).is_ok());
        assert!(warm(0, 0, 8).is_ok());
        assert!(warm(3, 10, 4).is_ok());
        // Valid non-default values still load.
        let ok = [
            w("0.5"),
            "train.optimizer.kind=adam".into(),
            "train.optimizer.lr=0.01".into(),
        ];
        if let Err(e) = TrainFile::parse(TOML, &ok, "t.toml") {
            panic!("{e}");
        }
    }

    /// A ConvRNN whose output the image never reaches within the run is refused (its logits
    /// are the same for every image), and so are step weights that are zero from the step
    /// the image reaches the output on.
    #[test]
    fn convrnn_output_must_see_the_image() {
        const CONVRNN: &str = "[model]\npreset = \"rgc_intermediate_cpu\"\n\n[data]\npath = \"x\"\n\n[train]\nepochs = 1\nbatch_size = 4\nseed = 0\n";
        let parse = |extra: &[&str]| {
            let v: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
            let f = TrainFile::parse(CONVRNN, &v, "c.toml").map_err(|e| e.to_string())?;
            f.check_for_training()
        };
        // Reading such a configuration (an existing run's, to record it) is not refused.
        TrainFile::parse(CONVRNN, &["model.num_timesteps=10".into()], "c.toml").unwrap();
        parse(&[]).unwrap();
        let e = parse(&["model.num_timesteps=10"]).unwrap_err();
        assert!(
            e.contains("at step 10") && e.contains("num_timesteps ≥ 11"),
            "{e}"
        );
        let w = |zeros_from: usize| {
            let v: Vec<&str> = (0..17)
                .map(|t| if t < zeros_from { "1.0" } else { "0.0" })
                .collect();
            format!("train.loss_weights=[{}]", v.join(","))
        };
        let steps = "model.decoder.loss=\"steps\"";
        let e = parse(&[steps, &w(10)]).unwrap_err();
        assert!(e.contains("zero from step 10 on"), "{e}");
        parse(&[steps, &w(11)]).unwrap();
        // At the decoder (the default) the step weights are not the loss.
        parse(&[&w(10)]).unwrap();
    }

    /// `train.winograd` loads on the native engine and is refused, naming the key, on burn.
    #[test]
    fn winograd_needs_the_native_engine() {
        let on = |extra: &str| {
            let v = vec!["train.winograd=true".to_string(), extra.to_string()];
            TrainFile::parse(TOML, &v, "t.toml").map_err(|e| e.to_string())
        };
        assert!(on("train.engine=auto").unwrap().train.winograd);
        let e = on("train.engine=burn").unwrap_err();
        assert!(e.contains("train.winograd") && e.contains("t.toml"), "{e}");
    }

    /// `train.precision`: `f32` by default and left out of the saved configuration; `bf16`
    /// loads on burn's engine and on the native engine (it used to be refused there), and is
    /// refused, naming the keys, with `train.winograd`; an unknown name is refused.
    #[test]
    fn precision_on_both_engines() {
        let on = |extra: &[&str]| {
            let v: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
            TrainFile::parse(TOML, &v, "t.toml").map_err(|e| e.to_string())
        };
        let f = on(&[]).unwrap();
        assert_eq!(f.train.precision, "f32");
        assert!(!f.to_toml().contains("precision"));
        let b = on(&["train.precision=bf16", "train.engine=burn"]).unwrap();
        assert!(b.to_toml().contains("precision = \"bf16\""));
        let n = on(&["train.precision=bf16"]).unwrap();
        assert!(n.native_engine() && n.to_toml().contains("precision = \"bf16\""));
        let e = on(&["train.precision=bf16", "train.winograd=true"]).unwrap_err();
        assert!(
            e.contains("train.precision") && e.contains("train.winograd") && e.contains("t.toml"),
            "{e}"
        );
        let e = on(&["train.precision=fp16", "train.engine=burn"]).unwrap_err();
        assert!(e.contains("fp16") && e.contains("t.toml"), "{e}");
    }

    #[test]
    fn schedules() {
        let s = ScheduleConfig {
            kind: "cosine".into(),
            warmup_steps: 2,
            ..Default::default()
        };
        assert!((s.lr(1.0, 0, 10, 0) - 0.5).abs() < 1e-12);
        assert!((s.lr(1.0, 5, 10, 0) - 0.5).abs() < 1e-12);
        assert!(s.lr(1.0, 10, 10, 0).abs() < 1e-12);
        let st = ScheduleConfig {
            kind: "step".into(),
            step_epochs: 2,
            gamma: 0.5,
            ..Default::default()
        };
        assert_eq!(st.lr(1.0, 0, 10, 3), 0.5);
    }
}
