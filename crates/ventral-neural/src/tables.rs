//! CSV tables of the brain-comparison commands, written with the csv crate (names that
//! contain a comma, quote or newline are quoted), so that every command's outputs come from
//! this crate and the CLI only parses arguments.

use crate::error::{NeuralError, Result, file_err};

/// A number as a CSV field: Rust's shortest round-trip form, empty when not finite.
pub fn csv_number(v: f64) -> String {
    if v.is_finite() {
        v.to_string()
    } else {
        String::new()
    }
}

/// A CSV table (header + rows) as text; `what` (the file name) names it in errors.
pub fn csv_table(
    what: &str,
    header: &[&str],
    rows: impl Iterator<Item = Vec<String>>,
) -> Result<String> {
    let err = |e: &dyn std::fmt::Display| NeuralError::Invalid(format!("writing {what}: {e}"));
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header).map_err(|e| err(&e))?;
    for row in rows {
        w.write_record(&row).map_err(|e| err(&e))?;
    }
    let bytes = w.into_inner().map_err(|e| err(&e))?;
    String::from_utf8(bytes).map_err(|e| err(&e))
}

/// The columns every per-fit table starts with: which model, layer, step, region and bin.
pub const FIT_KEY_COLUMNS: [&str; 6] = [
    "model",
    "layer",
    "timestep",
    "region",
    "time_bin_start",
    "time_bin_end",
];

/// A per-fit table's header: [`FIT_KEY_COLUMNS`], then `rest`.
pub fn fit_key_header<'a>(rest: &[&'a str]) -> Vec<&'a str> {
    FIT_KEY_COLUMNS.iter().chain(rest).copied().collect()
}

/// A per-fit table's row: the [`FIT_KEY_COLUMNS`] fields (`timestep` already formatted, empty
/// where a row has none), then `rest`.
pub fn fit_key_row(
    model: &str,
    layer: &str,
    timestep: String,
    region: &str,
    (start, end): (f64, f64),
    rest: impl IntoIterator<Item = String>,
) -> Vec<String> {
    [
        model.to_string(),
        layer.to_string(),
        timestep,
        region.to_string(),
        start.to_string(),
        end.to_string(),
    ]
    .into_iter()
    .chain(rest)
    .collect()
}

/// The `run.json` record of one input file: label, path and BLAKE3 of its bytes.
pub fn input_record(model: &str, path: &std::path::Path) -> Result<serde_json::Value> {
    let hash = ventral_core::hash::file_blake3(path).map_err(|e| file_err(path.display(), e))?;
    Ok(serde_json::json!({
        "model": model,
        "path": path.display().to_string(),
        "blake3": hash,
    }))
}

/// Writes `dir/run.json` atomically: `fields` (a JSON object: inputs, options, seeds) plus
/// `code_version` and the `command` line, beside every brain-comparison output.
pub fn write_run_json(
    dir: &std::path::Path,
    mut fields: serde_json::Value,
    code_version: &str,
    command: &[String],
) -> Result<()> {
    if let Some(m) = fields.as_object_mut() {
        m.insert("code_version".into(), code_version.into());
        m.insert("command".into(), command.to_vec().into());
    }
    let path = dir.join("run.json");
    let text = serde_json::to_string_pretty(&fields).map_err(|e| file_err(path.display(), e))?;
    ventral_core::atomic::write_bytes_atomic(&path, text.as_bytes())
        .map_err(|e| file_err(path.display(), e))
}
