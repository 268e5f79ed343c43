//! `ventral models` and `ventral size`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use burn::tensor::Device;
use serde::Deserialize;
use ventral_models::config::ModelConfig;
use ventral_models::{Model, params, registry, size};

#[derive(Debug, clap::Args)]
pub struct ModelsArgs {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct SizeArgs {
    /// A model TOML (a `[model]` table; other tables are ignored) or a registered model name.
    model: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Also list every parameter: its PyTorch-style name, shape and number of values (what a
    /// weights file must hold; `ventral inspect FILE` lists a file's).
    #[arg(long)]
    params: bool,
}

#[derive(Deserialize)]
struct ModelTable {
    model: toml::Value,
}

/// A model configuration from a TOML file with a `[model]` table, or a registry name.
pub fn load_model_config(spec: &str) -> Result<ModelConfig> {
    if let Some(e) = registry::get(spec) {
        return Ok(e.config);
    }
    let path = PathBuf::from(spec);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!("{spec} is neither a registered model (see `ventral models`) nor a readable file")
    })?;
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    {
        // A PyTorchTNN graph JSON or an original convrnns model JSON.
        let c = ModelConfig::ConvRnn(ventral_models::convrnn::ConvRnnConfig::from_json(
            &text,
            &path.display().to_string(),
        )?);
        // The size limits too, before anything is built.
        c.validate()
            .with_context(|| format!("{}", path.display()))?;
        return Ok(c);
    }
    let t: ModelTable = toml::from_str(&text)
        .with_context(|| format!("{}: invalid [model] table", path.display()))?;
    let json = serde_json::to_value(&t.model)?;
    let base = path.parent().unwrap_or(std::path::Path::new("."));
    ventral_models::config::resolve_model(json, base).with_context(|| format!("{}", path.display()))
}

pub fn run_models(a: ModelsArgs) -> Result<()> {
    let device = Device::flex();
    let mut rows = Vec::new();
    for e in registry::entries() {
        let r = if let ModelConfig::ConvRnn(_) = &e.config {
            // Exact from the description (tested), without building 10⁷-parameter networks.
            let (p, units, _) = e.config.estimated_size();
            size::SizeReport {
                params_by_type: Default::default(),
                params_total: p as usize,
                unused: Vec::new(),
                units_per_step: units as usize,
                units_once: 0,
                flops_step0: 0,
                flops_per_step: 0,
                flops_per_image: 0,
            }
        } else {
            let m = Model::init(&e.config, &device)?;
            size::model_size(&e.config, &params::list(&m))
        };
        rows.push((e, r));
    }
    if a.json {
        let v: Vec<_> = rows
            .iter()
            .map(|(e, r)| serde_json::json!({"name": e.name, "description": e.description, "config": e.config, "parameters": r.params_total, "units_per_step": r.units_per_step}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    // The name column as wide as the longest name, so the numbers stay aligned.
    let w = rows
        .iter()
        .map(|(e, _)| e.name.len())
        .max()
        .unwrap_or(0)
        .max(4);
    println!(
        "{:<w$} {:>12} {:>12}  description",
        "name", "parameters", "units/step"
    );
    for (e, r) in rows {
        println!(
            "{:<w$} {:>12} {:>12}  {}",
            e.name, r.params_total, r.units_per_step, e.description
        );
    }
    Ok(())
}

pub fn run_size(a: SizeArgs) -> Result<()> {
    let cfg = load_model_config(&a.model)?;
    let m = Model::init(&cfg, &Device::flex())?;
    let list = params::list(&m);
    let r = size::model_size(&cfg, &list);
    let numel = |p: &params::ParamInfo| p.shape.iter().product::<usize>();
    // A ConvRNN's presentation: the step at which the image first reaches the output node
    // (every edge delays one step), or why no step's output depends on it.
    let arrival = match &cfg {
        ModelConfig::ConvRnn(c) => Some((c, c.output_sees_image())),
        _ => None,
    };
    if a.json {
        let mut v = serde_json::to_value(&r)?;
        if let Some((_, arr)) = &arrival {
            v["image_reaches_output_at_step"] = serde_json::json!(arr.as_ref().ok());
        }
        if a.params {
            v["params"] = serde_json::json!(list
                .iter()
                .map(|p| serde_json::json!({"name": p.name, "shape": p.shape, "values": numel(p)}))
                .collect::<Vec<_>>());
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    if a.params {
        let width = list.iter().map(|p| p.name.len()).max().unwrap_or(0);
        println!("parameters:");
        for p in &list {
            println!("  {:width$}  {:>10}  {:?}", p.name, numel(p), p.shape);
        }
    }
    println!("parameters by connection type:");
    for (k, v) in &r.params_by_type {
        println!("  {k:<10} {v:>12}");
    }
    println!("  {:<10} {:>12}", "total", r.params_total);
    for (name, n, why) in &r.unused {
        println!("  unused: {name} ({n} parameters): {why}");
    }
    println!(
        "units per step: {} (Σ C·H·W over the recurrent layers, + GAP for BLT); computed once (BLT retina): {}",
        r.units_per_step, r.units_once
    );
    println!(
        "FLOPs: step 0 {:.3e}, later steps {:.3e} each, per image over {} steps {:.3e}",
        r.flops_step0 as f64,
        r.flops_per_step as f64,
        cfg.timesteps(),
        r.flops_per_image as f64
    );
    match &arrival {
        Some((c, Ok(d))) => println!(
            "presentation: the image reaches output node '{}' at step {d} of {} (steps 0–{}; \
             every edge delays one step)",
            c.output_node,
            c.num_timesteps,
            c.num_timesteps - 1
        ),
        Some((_, Err(m))) => println!("warning: {m}"),
        None => {}
    }
    Ok(())
}
