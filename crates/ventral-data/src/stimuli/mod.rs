//! The embedded synthetic stimulus set: "objects in clutter" in the spirit of the HvM stimuli
//! (Majaj et al. 2015), rendered procedurally, never downloaded.
//!
//! Eight categories × several distinct 3-D objects each ([`sdf`]), ray-marched with shading on
//! textured, cluttered backgrounds, with per-image variation of 3-D pose, position, scale,
//! lighting, clutter and occluders at three variation levels ([`render::Level`]).
//!
//! Within every split, image `j` shows category `j % K` at level `(j / K) % 3` and object
//! `(j / 3K) % O`, so splits are balanced; everything else is drawn from the named stream
//! `("stimulus", [split, j])` of the root seed, so the output is identical for a seed whatever
//! the number of threads.

pub mod render;
pub mod sdf;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use rayon::prelude::*;
use ventral_core::AtomicDir;
use ventral_core::rng::stream;

use crate::error::{DataError, Result, io_at};
use crate::image_ops::encode_png;
use crate::packed::{Manifest, Normalization, PackWriter};
use render::{Level, Scene};
use sdf::CATEGORIES;

/// Parameters of the generated set.
#[derive(Debug, Clone)]
pub struct StimulusConfig {
    /// Images over all splits.
    pub num_images: usize,
    /// Side length in pixels.
    pub image_size: usize,
    /// Number of categories (at most [`CATEGORIES`]`.len()`).
    pub num_classes: usize,
    /// Distinct objects per category.
    pub objects_per_category: usize,
    /// Root seed.
    pub seed: u64,
    /// Fractions of the images in val and test (the rest is train).
    pub val_fraction: f64,
    pub test_fraction: f64,
    /// Also write the BrainIO stimulus-set form (CSV + ZIP of PNGs).
    pub stimulus_set: bool,
    /// Replace an existing output directory.
    pub overwrite: bool,
}

impl Default for StimulusConfig {
    fn default() -> Self {
        Self {
            num_images: 10_000,
            image_size: 64,
            num_classes: 8,
            objects_per_category: 4,
            seed: 0,
            val_fraction: 0.1,
            test_fraction: 0.1,
            stimulus_set: true,
            overwrite: false,
        }
    }
}

/// Metadata columns of the packed splits (after `index, label, class_name`).
pub const META_COLUMNS: [&str; 16] = [
    "stimulus_id",
    "object_id",
    "object_name",
    "variation",
    "rxy",
    "rxz",
    "ryz",
    "pos_x",
    "pos_y",
    "scale",
    "light_azimuth",
    "light_elevation",
    "occluded_fraction",
    "clutter_items",
    "clutter_fraction",
    "object_area_fraction",
];

/// One rendered image.
#[derive(Debug, Clone)]
pub struct Stimulus {
    pub pixels: Vec<u8>,
    pub label: usize,
    pub meta: Vec<String>,
}

/// Render image `j` of split `split_id` (0 train, 1 val, 2 test).
pub fn render_one(cfg: &StimulusConfig, split_id: u64, j: usize) -> Stimulus {
    let k = cfg.num_classes;
    let category = j % k;
    let level = Level::ALL[(j / k) % 3];
    let object_id = (j / (3 * k)) % cfg.objects_per_category;
    let obj = sdf::object(category, object_id);
    let mut rng = stream(cfg.seed, "stimulus", &[split_id, j as u64]);
    let scene = Scene::draw(level, &mut rng);
    let (pixels, m) = render::render(&obj, &scene, cfg.image_size, &mut rng);
    let id = blake3::hash(&pixels).to_hex()[..32].to_string();
    let f = |v: f32| format!("{v:.4}");
    let meta = vec![
        id,
        object_id.to_string(),
        obj.name.clone(),
        level.name().to_string(),
        f(scene.rxy),
        f(scene.rxz),
        f(scene.ryz),
        f(scene.pos_x),
        f(scene.pos_y),
        f(scene.scale),
        f(scene.light_azimuth),
        f(scene.light_elevation),
        f(m.occluded_fraction),
        scene.clutter_items.to_string(),
        f(m.clutter_fraction),
        f(m.object_area_fraction),
    ];
    Stimulus {
        pixels,
        label: category,
        meta,
    }
}

/// Split sizes (train, val, test).
pub fn split_sizes(cfg: &StimulusConfig) -> [usize; 3] {
    let n = cfg.num_images;
    let val = (n as f64 * cfg.val_fraction).round() as usize;
    let test = (n as f64 * cfg.test_fraction).round() as usize;
    [n - val - test, val, test]
}

/// Bytes a set takes on disk, a slight underestimate: the packed pixels (3·s² per image), the
/// metadata rows (about 300 bytes per image in the pack's and the stimulus set's CSV) and, for
/// the stimulus set, its PNGs at half the raw size (measured: 58 % at 64 px). Checked against
/// the free disk before anything is written, so that `--num-images 10000000000` is refused at
/// once instead of filling the disk for hours. Saturating.
pub fn disk_estimate(cfg: &StimulusConfig) -> u128 {
    let raw = 3 * (cfg.image_size as u128).saturating_mul(cfg.image_size as u128);
    let png = if cfg.stimulus_set { raw / 2 } else { 0 };
    (cfg.num_images as u128).saturating_mul(raw + png + 300)
}

/// Summary of a generated set.
#[derive(Debug)]
pub struct Generated {
    pub splits: Vec<(String, Manifest)>,
    pub seconds: f64,
}

/// Generate the set into `out` (`out/train`, `out/val`, `out/test`, `out/stimulus_set`).
/// `progress(done, total)` is called as images are rendered.
pub fn generate(
    cfg: &StimulusConfig,
    out: &Path,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Generated> {
    let start = std::time::Instant::now();
    if cfg.num_classes == 0 || cfg.num_classes > CATEGORIES.len() {
        return Err(DataError::Usage(format!(
            "--num-classes must be between 1 and {} (the categories: {})",
            CATEGORIES.len(),
            CATEGORIES.join(", ")
        )));
    }
    if cfg.image_size < 8 || cfg.image_size > 1024 {
        return Err(DataError::Usage(
            "--image-size must be between 8 and 1024".into(),
        ));
    }
    if cfg.objects_per_category == 0 {
        return Err(DataError::Usage(
            "--objects-per-category must be positive".into(),
        ));
    }
    if !(0.0..1.0).contains(&(cfg.val_fraction + cfg.test_fraction)) {
        return Err(DataError::Usage(
            "val and test fractions must sum to less than 1".into(),
        ));
    }
    let sizes = split_sizes(cfg);
    if sizes.contains(&0) {
        return Err(DataError::Usage(format!(
            "--num-images {} leaves an empty split (train/val/test = {sizes:?})",
            cfg.num_images
        )));
    }
    if let Some(more) = ventral_core::mem::exceeds_disk(disk_estimate(cfg), out) {
        return Err(DataError::Usage(format!(
            "--num-images {} at {s}×{s} px needs about {more}",
            cfg.num_images,
            s = cfg.image_size
        )));
    }
    let dir = AtomicDir::create(out, cfg.overwrite).map_err(io_at(out))?;
    let class_names: Vec<String> = CATEGORIES[..cfg.num_classes]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let columns: Vec<String> = META_COLUMNS.iter().map(|s| s.to_string()).collect();
    let mut source = BTreeMap::new();
    source.insert("format".into(), "ventral-stimuli".into());
    source.insert("generator".into(), "objects-in-clutter v1".into());
    source.insert("seed".into(), cfg.seed.to_string());
    source.insert("num_images".into(), cfg.num_images.to_string());
    source.insert("image_size".into(), cfg.image_size.to_string());
    source.insert("num_classes".into(), cfg.num_classes.to_string());
    source.insert(
        "objects_per_category".into(),
        cfg.objects_per_category.to_string(),
    );

    let total = cfg.num_images;
    let done = std::sync::atomic::AtomicUsize::new(0);
    let mut norm: Option<Normalization> = None;
    let mut manifests = Vec::new();
    // Stimulus-set rows and PNGs are gathered while packing.
    let mut set_rows: Vec<Vec<String>> = Vec::new();
    let zip_path = dir.path().join("stimulus_set").join("stimulus_set.zip");
    let mut zip = if cfg.stimulus_set {
        std::fs::create_dir_all(dir.path().join("stimulus_set"))
            .map_err(io_at(dir.path().join("stimulus_set")))?;
        let f = std::fs::File::create(&zip_path).map_err(io_at(&zip_path))?;
        // Latched: a failed write must not make the zip crate's Drop print (see LatchWriter).
        Some(zip::ZipWriter::new(ventral_core::atomic::LatchWriter::new(
            std::io::BufWriter::new(f),
        )))
    } else {
        None
    };
    let zopts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .last_modified_time(zip::DateTime::default());
    for (sid, (name, n)) in ["train", "val", "test"].iter().zip(sizes).enumerate() {
        let mut w = PackWriter::create(
            &dir.path().join(name),
            cfg.image_size,
            cfg.image_size,
            3,
            class_names.clone(),
            columns.clone(),
        )?;
        const CHUNK: usize = 1024;
        for c0 in (0..n).step_by(CHUNK) {
            let c1 = (c0 + CHUNK).min(n);
            let chunk: Vec<(Stimulus, Option<Vec<u8>>)> = (c0..c1)
                .into_par_iter()
                .map(|j| {
                    let s = render_one(cfg, sid as u64, j);
                    let png = cfg
                        .stimulus_set
                        .then(|| encode_png(cfg.image_size, cfg.image_size, 3, &s.pixels));
                    let d = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                    if d.is_multiple_of(256) || d == total {
                        progress(d, total);
                    }
                    (s, png.map(|r| r.unwrap_or_default()))
                })
                .collect();
            for (j, (s, png)) in (c0..c1).zip(chunk) {
                if let (Some(z), Some(png)) = (zip.as_mut(), png) {
                    let fname = format!("{}.png", s.meta[0]);
                    z.start_file(fname.as_str(), zopts)
                        .and_then(|_| z.write_all(&png).map_err(Into::into))
                        .map_err(|e| io_at(&zip_path)(std::io::Error::other(e.to_string())))?;
                    let mut row = vec![
                        s.meta[0].clone(),
                        fname,
                        name.to_string(),
                        j.to_string(),
                        class_names[s.label].clone(),
                        s.label.to_string(),
                    ];
                    row.extend(s.meta[1..].iter().cloned());
                    set_rows.push(row);
                }
                w.push(&s.pixels, s.label as i64, s.meta)?;
            }
        }
        let m = w.finish(norm.clone(), {
            let mut src = source.clone();
            src.insert("split".into(), name.to_string());
            src
        })?;
        if norm.is_none() {
            norm = Some(Normalization {
                source: "train split".into(),
                ..m.normalization.clone()
            });
        }
        manifests.push((name.to_string(), m));
    }
    if let Some(z) = zip {
        let mut inner = z
            .finish()
            .map_err(|e| io_at(&zip_path)(std::io::Error::other(e.to_string())))?
            .into_inner()
            .map_err(io_at(&zip_path))?;
        inner.flush().map_err(io_at(&zip_path))?;
        let csv_path = dir.path().join("stimulus_set").join("stimulus_set.csv");
        ventral_core::write_atomic(&csv_path, |w| {
            let mut cw = csv::Writer::from_writer(w);
            let mut head: Vec<String> = vec![
                "stimulus_id".into(),
                "filename".into(),
                "split".into(),
                "split_index".into(),
                "category_name".into(),
                "label".into(),
            ];
            head.extend(META_COLUMNS[1..].iter().map(|s| s.to_string()));
            cw.write_record(&head)?;
            for r in &set_rows {
                cw.write_record(r)?;
            }
            cw.flush()
        })
        .map_err(io_at(&csv_path))?;
    }
    dir.commit().map_err(io_at(out))?;
    Ok(Generated {
        splits: manifests,
        seconds: start.elapsed().as_secs_f64(),
    })
}
