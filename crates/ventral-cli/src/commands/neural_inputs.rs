//! Inputs and small output helpers shared by the analysis commands (`neural-fit`, `rsa`,
//! `ost`, `dynamics`).

use std::path::{Path, PathBuf};

use anyhow::Result;
use ventral_neural::Assembly;
use ventral_neural::features::Features;
use ventral_neural::recordings::Recordings;

/// Recordings from a BrainIO `.nc` or a `.toml` naming the axes of `.npz` arrays.
pub fn read_recordings(path: &Path) -> Result<Recordings> {
    let label = path.display().to_string();
    Ok(Recordings::from_assembly(
        &Assembly::read_any(path)?,
        &label,
    )?)
}

/// Features from a `--features` value, `PATH` or `NAME=PATH` (NAME labels the model; without
/// it the file stem does), aligned to `stimulus_ids`.
pub fn load_features(
    spec: &str,
    stimulus_ids: &[String],
    ids_from: &str,
    layers: &[String],
) -> Result<(Features, PathBuf)> {
    let (mut feats, path) = open_features(spec, stimulus_ids, ids_from, layers)?;
    feats.load_all()?;
    Ok((feats, path))
}

/// [`load_features`] without reading the feature data ([`Features::open`]): the fits stream it
/// one (layer, step) at a time.
pub fn open_features(
    spec: &str,
    stimulus_ids: &[String],
    ids_from: &str,
    layers: &[String],
) -> Result<(Features, PathBuf)> {
    let (name, path) = named_path(spec);
    let mut feats = Features::open(&path, stimulus_ids, ids_from, layers)?;
    if let Some(n) = name {
        feats.model = n;
    }
    Ok((feats, path))
}

/// A `PATH` or `NAME=PATH` argument as (NAME, PATH); a `=` after a `/` belongs to the path.
pub fn named_path(spec: &str) -> (Option<String>, PathBuf) {
    match spec.split_once('=') {
        Some((n, p)) if !n.is_empty() && !n.contains('/') => {
            (Some(n.to_string()), PathBuf::from(p))
        }
        _ => (None, PathBuf::from(spec)),
    }
}

/// Writes `dir/run.json` atomically ([`ventral_neural::tables::write_run_json`]): `fields`
/// plus this binary's code version and the command line.
pub fn write_run_json(dir: &Path, fields: serde_json::Value) -> Result<()> {
    let command: Vec<String> = std::env::args().collect();
    Ok(ventral_neural::tables::write_run_json(
        dir,
        fields,
        &crate::code_version(),
        &command,
    )?)
}

/// The `run.json` record of one input file ([`ventral_neural::tables::input_record`]).
pub fn input_record(model: &str, path: &Path) -> Result<serde_json::Value> {
    Ok(ventral_neural::tables::input_record(model, path)?)
}
