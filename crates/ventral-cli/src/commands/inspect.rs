//! `ventral inspect`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::json;
use ventral_data::packed::{Manifest, PackedDataset, find_splits};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A packed split (holding manifest.json) or a dataset root holding splits; or a weights
    /// file — safetensors, a PyTorch checkpoint (`torch.save` of a state dict) or a
    /// TensorFlow checkpoint (its prefix `model.ckpt`, its `.index` or a data shard) — whose
    /// tensors are listed (name, dtype, shape) under the names the file uses.
    dir: PathBuf,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    /// Re-hash the data and fail on a mismatch with the manifest.
    #[arg(long)]
    verify: bool,
    /// Also write a contact sheet (PNG: a row of images per class) of each split here.
    #[arg(long)]
    contact_sheet: Option<PathBuf>,
}

/// Print a human-readable summary of one split.
pub fn print_summary(name: &str, m: &Manifest) {
    println!(
        "{name}: {} images, {}×{}×{} (H×W×C), {} classes [{}], blake3 {}",
        m.num_images,
        m.height,
        m.width,
        m.channels,
        m.num_classes,
        abbreviate(&m.class_names),
        m.blake3
    );
}

fn abbreviate(names: &[String]) -> String {
    if names.len() <= 10 {
        names.join(", ")
    } else {
        format!(
            "{}, … , {}",
            names[..5].join(", "),
            names[names.len() - 2..].join(", ")
        )
    }
}

fn split_json(name: &str, dir: &Path, m: &Manifest, verified: Option<bool>) -> serde_json::Value {
    let mut v = json!({
        "split": name,
        "path": dir.display().to_string(),
        "num_images": m.num_images,
        "height": m.height,
        "width": m.width,
        "channels": m.channels,
        "num_classes": m.num_classes,
        "class_names": m.class_names,
        "mean": m.mean,
        "std": m.std,
        "normalization": m.normalization,
        "blake3": m.blake3,
        "source": m.source,
    });
    if let Some(ok) = verified {
        v["verified"] = json!(ok);
    }
    v
}

/// Lists the tensors of a weights file.
fn inspect_weights(a: &Args) -> Result<()> {
    if a.verify || a.contact_sheet.is_some() {
        anyhow::bail!(
            "{}: --verify and --contact-sheet are for packed datasets; this is a weights file",
            a.dir.display()
        );
    }
    let st = ventral_core::safetensors::SafeTensors::read(&a.dir)?;
    let format = if ventral_core::tf_checkpoint::prefix_of(&a.dir).is_some() {
        "TensorFlow checkpoint"
    } else if ventral_core::safetensors::SafeTensors::head(&a.dir, 4)?
        == ventral_core::pth::ZIP_MAGIC
    {
        "PyTorch checkpoint"
    } else {
        "safetensors"
    };
    let rows: Vec<(&str, &ventral_core::safetensors::TensorInfo)> = st
        .names()
        .filter_map(|n| st.info(n).map(|i| (n, i)))
        .collect();
    let numel = |i: &ventral_core::safetensors::TensorInfo| i.shape.iter().product::<usize>();
    let total: usize = rows.iter().map(|(_, i)| numel(i)).sum();
    if a.json {
        let v = json!({
            "path": a.dir.display().to_string(),
            "format": format,
            "num_tensors": rows.len(),
            "num_values": total,
            "tensors": rows.iter().map(|(n, i)| json!({
                "name": n, "dtype": i.dtype.name(), "shape": i.shape,
            })).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!(
        "{} ({format}): {} tensors, {total} values",
        a.dir.display(),
        rows.len()
    );
    let width = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    for (n, i) in &rows {
        println!("  {n:width$}  {:4}  {:?}", i.dtype.name(), i.shape);
    }
    Ok(())
}

pub fn run(a: Args) -> Result<()> {
    if a.dir.is_file() || ventral_core::tf_checkpoint::prefix_of(&a.dir).is_some() {
        return inspect_weights(&a);
    }
    let splits = find_splits(&a.dir)?;
    let mut opened = Vec::new();
    for (name, dir) in &splits {
        let ds = PackedDataset::open(dir).with_context(|| format!("opening split '{name}'"))?;
        if a.verify {
            ds.verify()?;
        }
        opened.push((name.clone(), dir.clone(), ds));
    }
    if let Some(sheet) = &a.contact_sheet {
        // A directory (existing, or written with a trailing slash) gets one `<split>.png` per
        // split; a file name gets `<stem>_<split>.png` when there are several splits.
        let is_dir = sheet.is_dir() || sheet.to_string_lossy().ends_with(std::path::MAIN_SEPARATOR);
        for (name, _, ds) in &opened {
            let path = if is_dir {
                sheet.join(format!("{name}.png"))
            } else if opened.len() == 1 {
                sheet.clone()
            } else {
                sheet.with_file_name(format!(
                    "{}_{name}.png",
                    sheet.file_stem().unwrap_or_default().to_string_lossy()
                ))
            };
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            crate::commands::sheet::write_contact_sheet(ds, &path, 10)?;
            if !a.json {
                println!("contact sheet of '{name}': {}", path.display());
            }
        }
    }
    let verified = a.verify.then_some(true);
    if a.json {
        let v = if opened.len() == 1 && a.dir.join("manifest.json").is_file() {
            let (name, dir, ds) = &opened[0];
            split_json(name, dir, ds.manifest(), verified)
        } else {
            let first = opened[0].2.manifest();
            let total: usize = opened.iter().map(|o| o.2.manifest().num_images).sum();
            let mut h = blake3::Hasher::new();
            for (_, _, ds) in &opened {
                h.update(ds.manifest().blake3.as_bytes());
            }
            json!({
                "path": a.dir.display().to_string(),
                "num_images": total,
                "height": first.height,
                "width": first.width,
                "channels": first.channels,
                "num_classes": first.num_classes,
                "class_names": first.class_names,
                "blake3": h.finalize().to_hex().to_string(),
                "splits": opened.iter().map(|(n, d, ds)| split_json(n, d, ds.manifest(), verified)).collect::<Vec<_>>(),
            })
        };
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        for (name, _, ds) in &opened {
            print_summary(name, ds.manifest());
        }
        if a.verify {
            println!("verified: data hashes match the manifests");
        }
    }
    Ok(())
}
