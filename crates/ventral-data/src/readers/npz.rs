//! NumPy `.npz` archives with an image array and a label array.
//!
//! Images: `[N, H, W, C]` or `[N, C, H, W]` (C ∈ {1, 3, 4}; a 4th alpha channel is dropped) or
//! `[N, H, W]` (grey); when both 4-D readings fit, an axis of length 3 is taken as the channel
//! axis, else NHWC (`--layout` overrides the guess); uint8 or any numeric type. Float images whose maximum is ≤ 1 are taken to
//! be on the 0–1 scale and multiplied by 255; others are taken as 0–255. Values outside the
//! inferred scale (negative, above 255, or floats between 1 and 2 where the scale is ambiguous)
//! are an error naming the range found; in-range values are rounded. Labels: `[N]` integers
//! (floats holding whole numbers are accepted). Class names: an optional string array
//! (`class_names` by default).

use std::collections::BTreeMap;
use std::path::Path;

use ventral_core::npy::NpzReader;

use crate::error::{Result, invalid};
use crate::pack::{Item, Layout, Outcome, PackOptions, SourceSet, SplitSource, numbered_classes};

/// The single split of an npz file, held in memory.
#[derive(Debug)]
pub struct NpzSplit {
    name: String,
    n: usize,
    h: usize,
    w: usize,
    c: usize,
    /// NHWC u8.
    pixels: Vec<u8>,
    labels: Vec<i64>,
}

/// Open an npz file.
pub fn open(path: &Path, opts: &PackOptions) -> Result<SourceSet<NpzSplit>> {
    let mut z = NpzReader::open(path)?;
    let imgs = z.read(&opts.images_key)?;
    let labs = z.read(&opts.labels_key)?;
    let key = &opts.images_key;
    let s = imgs.shape.clone();
    // Layout → (n, h, w, c_in, channels_last)
    let bad = || {
        invalid(
            path,
            format!(
                "array '{key}' has shape {s:?}; expected [N, H, W, C], [N, C, H, W] (C = 1, 3 or 4) or [N, H, W]"
            ),
        )
    };
    let chan = |d: usize| matches!(d, 1 | 3 | 4);
    let (n, h, w, cin, last) = match (s.len(), opts.layout) {
        (3, _) => (s[0], s[1], s[2], 1, true),
        (4, Some(Layout::Nhwc)) if chan(s[3]) => (s[0], s[1], s[2], s[3], true),
        (4, Some(Layout::Nchw)) if chan(s[1]) => (s[0], s[2], s[3], s[1], false),
        // Guess: both readings possible (e.g. [N, 3, H, 4]): an axis of length 3 is the
        // channel axis; otherwise NHWC, numpy's and HDF5's usual layout.
        (4, None) if chan(s[3]) && !(s[1] == 3 && s[3] != 3) => (s[0], s[1], s[2], s[3], true),
        (4, None) if chan(s[1]) => (s[0], s[2], s[3], s[1], false),
        _ => return Err(bad()),
    };
    if n == 0 || h == 0 || w == 0 {
        return Err(invalid(
            path,
            format!("array '{key}' is empty: shape {s:?}"),
        ));
    }
    let values = imgs
        .to_f64()
        .ok_or_else(|| invalid(path, format!("array '{key}' is not numeric")))?;
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(invalid(
            path,
            format!("array '{key}' holds a non-finite value at flat index {i}"),
        ));
    }
    // The scale is inferred, and values outside it are an error rather than clamped: a
    // normalised (mean-subtracted) array or int16 data would otherwise pack as garbage.
    let (lo, hi) = values
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    let scale = if imgs.is_float() && hi <= 1.0 {
        255.0
    } else {
        1.0
    };
    if lo < 0.0 || hi * scale > 255.0 + 1e-9 {
        return Err(invalid(
            path,
            format!(
                "array '{key}' holds values in [{lo}, {hi}]; images must be 0–1 floats or 0–255 numbers (normalised or wider data would be clamped: rescale it first)"
            ),
        ));
    }
    if imgs.is_float() && hi > 1.0 && hi < 2.0 {
        return Err(invalid(
            path,
            format!(
                "array '{key}' holds floats in [{lo}, {hi}]: 0–1 images with values above 1, or 0–255 images that are nearly black? Clip or rescale to one of the two scales"
            ),
        ));
    }
    let c = if cin == 4 { 3 } else { cin };
    let mut pixels = vec![0u8; n * h * w * c];
    for i in 0..n {
        for y in 0..h {
            for x in 0..w {
                for k in 0..c {
                    let src = if last {
                        ((i * h + y) * w + x) * cin + k
                    } else {
                        ((i * cin + k) * h + y) * w + x
                    };
                    let v = (values[src] * scale).round().clamp(0.0, 255.0);
                    pixels[((i * h + y) * w + x) * c + k] = v as u8;
                }
            }
        }
    }
    let lkey = &opts.labels_key;
    if labs.shape != vec![n] {
        return Err(invalid(
            path,
            format!(
                "array '{lkey}' has shape {:?}, expected [{n}] (one label per image)",
                labs.shape
            ),
        ));
    }
    let labels = labs
        .to_i64()
        .ok_or_else(|| invalid(path, format!("array '{lkey}' must hold integer class ids")))?;
    if let Some((i, l)) = labels.iter().enumerate().find(|(_, l)| **l < 0) {
        return Err(invalid(path, format!("{lkey}[{i}] = {l} is negative")));
    }
    let k = labels.iter().copied().max().unwrap_or(0) as usize + 1;
    let class_names = if z.contains(&opts.class_names_key) {
        let names = z.read(&opts.class_names_key)?.to_strings().ok_or_else(|| {
            invalid(
                path,
                format!("array '{}' must hold strings", opts.class_names_key),
            )
        })?;
        if names.len() < k {
            return Err(invalid(
                path,
                format!(
                    "array '{}' has {} names but labels go up to {}",
                    opts.class_names_key,
                    names.len(),
                    k - 1
                ),
            ));
        }
        names
    } else {
        numbered_classes(k, path)?
    };
    let mut source = BTreeMap::new();
    source.insert("format".into(), "npz".into());
    source.insert("path".into(), path.display().to_string());
    Ok(SourceSet {
        splits: vec![NpzSplit {
            name: opts.split.clone().unwrap_or_else(|| "train".into()),
            n,
            h,
            w,
            c,
            pixels,
            labels,
        }],
        class_names,
        normalization: None,
        source,
    })
}

impl SplitSource for NpzSplit {
    fn name(&self) -> &str {
        &self.name
    }
    fn len(&self) -> usize {
        self.n
    }
    fn channels(&self) -> usize {
        self.c
    }
    fn native_size(&self) -> Option<(usize, usize)> {
        Some((self.h, self.w))
    }
    fn meta_columns(&self) -> Vec<String> {
        vec!["source_index".into()]
    }
    fn read(&mut self, start: usize, end: usize) -> Result<Vec<Outcome>> {
        let sz = self.h * self.w * self.c;
        Ok((start..end)
            .map(|i| {
                Outcome::Ok(Item {
                    height: self.h,
                    width: self.w,
                    pixels: self.pixels[i * sz..(i + 1) * sz].to_vec(),
                    label: self.labels[i],
                    meta: vec![i.to_string()],
                })
            })
            .collect())
    }
}
