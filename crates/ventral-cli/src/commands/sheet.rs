//! Contact sheets: a grid of images, one row per class, for looking at a dataset.

use std::path::Path;

use anyhow::{Context, Result};
use ventral_data::PackedDataset;
use ventral_data::image_ops::encode_png;

/// Write a PNG with up to `per_class` images of each class in a row (first images in order),
/// each row labelled with its class index and name on the left.
pub fn write_contact_sheet(ds: &PackedDataset, path: &Path, per_class: usize) -> Result<()> {
    let [h, w, c] = ds.image_shape();
    let names = &ds.manifest().class_names;
    let k = ds.manifest().num_classes.min(64);
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); k];
    for (i, &l) in ds.labels().iter().enumerate() {
        let l = l as usize;
        if l < k && rows[l].len() < per_class {
            rows[l].push(i);
        }
    }
    let gap = 2;
    // Label text: at least 10 px, at most the row height; the column fits the longest label.
    let size = (h as f64 * 0.45).clamp(10.0, 16.0);
    let labels: Vec<String> = (0..k)
        .map(|r| {
            let name = names.get(r).map(String::as_str).unwrap_or("");
            let name: String = name.chars().take(24).collect();
            format!("{r} {name}")
        })
        .collect();
    let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let label_w = (longest as f64 * size * 0.62).ceil() as usize + 2 * gap;
    let (sh, sw) = (k * (h + gap) + gap, label_w + per_class * (w + gap) + gap);
    let mut px = vec![255u8; sh * sw * 3];
    for (r, idx) in rows.iter().enumerate() {
        let top = gap + r * (h + gap);
        let y = top as i32 + ((h as f64 - size) / 2.0).max(0.0) as i32;
        ventral_report::draw_text_rgb(
            &mut px,
            sw,
            sh,
            (gap as i32, y),
            size,
            &labels[r],
            [0, 0, 0],
        )
        .map_err(anyhow::Error::msg)?;
        for (col, &i) in idx.iter().enumerate() {
            let img = ds.image(i);
            for y in 0..h {
                for x in 0..w {
                    let dst = ((top + y) * sw + label_w + gap + col * (w + gap) + x) * 3;
                    for ch in 0..3 {
                        px[dst + ch] = img[(y * w + x) * c + ch.min(c - 1)];
                    }
                }
            }
        }
    }
    let png = encode_png(sh, sw, 3, &px).map_err(anyhow::Error::msg)?;
    ventral_core::write_bytes_atomic(path, &png)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
