//! Contact sheets: a grid of images, one row per class, for looking at a dataset.

use std::path::Path;

use anyhow::{Context, Result};
use ventral_data::PackedDataset;
use ventral_data::image_ops::encode_png;

/// Write a PNG with up to `per_class` images of each class in a row (first images in order).
pub fn write_contact_sheet(ds: &PackedDataset, path: &Path, per_class: usize) -> Result<()> {
    let [h, w, c] = ds.image_shape();
    let k = ds.manifest().num_classes.min(64);
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); k];
    for (i, &l) in ds.labels().iter().enumerate() {
        let l = l as usize;
        if l < k && rows[l].len() < per_class {
            rows[l].push(i);
        }
    }
    let gap = 2;
    let (sh, sw) = (k * (h + gap) + gap, per_class * (w + gap) + gap);
    let mut px = vec![255u8; sh * sw * 3];
    for (r, idx) in rows.iter().enumerate() {
        for (col, &i) in idx.iter().enumerate() {
            let img = ds.image(i);
            for y in 0..h {
                for x in 0..w {
                    let dst = ((gap + r * (h + gap) + y) * sw + gap + col * (w + gap) + x) * 3;
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
