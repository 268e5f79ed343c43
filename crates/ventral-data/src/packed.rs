//! The packed dataset format: what every reader converts into and what training reads.
//!
//! A packed split is a directory:
//!
//! | file | content |
//! |---|---|
//! | `manifest.json` | format name and version, N, H, W, C, class names, per-channel mean/std, normalisation statistics, BLAKE3 of the data, source |
//! | `images.npy` | `uint8` `[N, H, W, C]` (NHWC), C-order, read through a memory map (`np.load(..., mmap_mode="r")` works too) |
//! | `labels.npy` | `int64` `[N]`, class indices into `class_names` |
//! | `metadata.csv` | one row per image: `index`, `label`, `class_name`, then source-specific columns |
//!
//! A dataset root holds one packed split per sub-directory (`train`, `val`, `test`, ...).
//!
//! The `blake3` field is the BLAKE3 hash of the raw image bytes (N·H·W·C, NHWC order) followed by
//! the labels as little-endian int64, so it does not depend on how the `.npy` headers are
//! formatted.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use ventral_core::npy::{self, DType};
use ventral_core::{NpyArray, NpyData, write_atomic};

use crate::error::{DataError, Result, invalid, io_at};

/// Name of the packed format in manifests.
pub const FORMAT: &str = "ventral-packed";
/// Current format version.
pub const VERSION: u32 = 1;
/// Header bytes reserved at the start of `images.npy`, rewritten once N is known.
const IMAGES_HEADER_LEN: usize = 128;
/// The split names a dataset root is expected to hold, in canonical order.
pub const SPLIT_ORDER: [&str; 4] = ["train", "val", "test", "testplus"];

/// Whether `name` can name a split directory inside a dataset root
/// ([`ventral_core::atomic::check_plain_name`]). A split name comes from `--split` or from the
/// input itself (an HDF5 group, an image folder's subdirectory), and `pack` writes to
/// `OUT/<split>`: `--split ../x` used to write outside `OUT`.
pub fn check_split_name(name: &str) -> std::result::Result<(), String> {
    ventral_core::atomic::check_plain_name(name)
        .map_err(|why| format!("split name {name:?} cannot be used: {why}"))
}

/// Statistics batches are normalised with: `(x / 255 - mean) / std` per channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Normalization {
    /// Per-channel mean on the 0–1 scale.
    pub mean: Vec<f64>,
    /// Per-channel standard deviation on the 0–1 scale.
    pub std: Vec<f64>,
    /// Where the statistics come from, e.g. `"this split"`, `"train split"`,
    /// `"hdf5 /train_img_mean_channels"`.
    pub source: String,
}

impl Normalization {
    /// Mean and standard deviation per channel as float32, as the loader applies them.
    pub fn f32(&self) -> (Vec<f32>, Vec<f32>) {
        (
            self.mean.iter().map(|&v| v as f32).collect(),
            self.std.iter().map(|&v| v as f32).collect(),
        )
    }
}

/// `manifest.json` of a packed split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// Format version ([`VERSION`]).
    pub version: u32,
    pub num_images: usize,
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    pub num_classes: usize,
    /// Class names, indexed by label.
    pub class_names: Vec<String>,
    /// Per-channel pixel mean of this split, 0–1 scale.
    pub mean: Vec<f64>,
    /// Per-channel pixel standard deviation of this split (population, ddof = 0), 0–1 scale.
    pub std: Vec<f64>,
    /// Statistics the loader normalises with (the training split's where known).
    pub normalization: Normalization,
    /// Images file name (`images.npy`).
    pub images_file: String,
    /// Labels file name (`labels.npy`).
    pub labels_file: String,
    /// Per-image metadata (`metadata.csv`).
    pub metadata_file: String,
    /// BLAKE3 of the image bytes followed by the labels as little-endian int64.
    pub blake3: String,
    /// Where the data came from (format, path, split, generator parameters...).
    pub source: BTreeMap<String, String>,
    /// The program that wrote the split.
    pub created_by: String,
}

/// Accumulates a packed split image by image, then writes labels, metadata and manifest.
///
/// The caller owns the directory (normally inside a [`ventral_core::AtomicDir`]).
#[derive(Debug)]
pub struct PackWriter {
    dir: PathBuf,
    images: BufWriter<File>,
    height: usize,
    width: usize,
    channels: usize,
    class_names: Vec<String>,
    labels: Vec<i64>,
    meta_columns: Vec<String>,
    meta_rows: Vec<Vec<String>>,
    sum: Vec<u64>,
    sumsq: Vec<u64>,
    hasher: blake3::Hasher,
}

impl PackWriter {
    /// Start a split in `dir` (created if needed) for images of `height`×`width`×`channels`.
    /// `meta_columns` names the extra metadata columns given to [`Self::push`].
    pub fn create(
        dir: &Path,
        height: usize,
        width: usize,
        channels: usize,
        class_names: Vec<String>,
        meta_columns: Vec<String>,
    ) -> Result<Self> {
        if height == 0 || width == 0 || !(1..=4).contains(&channels) {
            return Err(DataError::Usage(format!(
                "cannot pack images of {height}×{width}×{channels}"
            )));
        }
        fs::create_dir_all(dir).map_err(io_at(dir))?;
        let path = dir.join("images.npy");
        let f = File::create(&path).map_err(io_at(&path))?;
        let mut images = BufWriter::with_capacity(4 << 20, f);
        images
            .write_all(&[0u8; IMAGES_HEADER_LEN])
            .map_err(io_at(&path))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            images,
            height,
            width,
            channels,
            class_names,
            labels: Vec::new(),
            meta_columns,
            meta_rows: Vec::new(),
            sum: vec![0; channels],
            sumsq: vec![0; channels],
            hasher: blake3::Hasher::new(),
        })
    }

    /// Images written so far.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when no image was written yet.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Append one image (`height·width·channels` bytes, HWC) with its label and metadata values.
    pub fn push(&mut self, pixels: &[u8], label: i64, meta: Vec<String>) -> Result<()> {
        let expected = self.height * self.width * self.channels;
        if pixels.len() != expected {
            return Err(DataError::Usage(format!(
                "image {} has {} bytes, expected {expected} ({}×{}×{})",
                self.labels.len(),
                pixels.len(),
                self.height,
                self.width,
                self.channels
            )));
        }
        if label < 0 || label as usize >= self.class_names.len() {
            return Err(DataError::Usage(format!(
                "image {} has label {label}, outside 0..{}",
                self.labels.len(),
                self.class_names.len()
            )));
        }
        if meta.len() != self.meta_columns.len() {
            return Err(DataError::Usage(format!(
                "image {}: {} metadata values for {} columns",
                self.labels.len(),
                meta.len(),
                self.meta_columns.len()
            )));
        }
        let c = self.channels;
        for px in pixels.chunks_exact(c) {
            for (k, &v) in px.iter().enumerate() {
                self.sum[k] += v as u64;
                self.sumsq[k] += (v as u64) * (v as u64);
            }
        }
        self.hasher.update(pixels);
        let path = self.dir.join("images.npy");
        self.images.write_all(pixels).map_err(io_at(&path))?;
        self.labels.push(label);
        self.meta_rows.push(meta);
        Ok(())
    }

    /// Per-channel (mean, std) of the pixels so far, on the 0–1 scale.
    pub fn stats(&self) -> (Vec<f64>, Vec<f64>) {
        let n = (self.labels.len() * self.height * self.width).max(1) as u128;
        let nf = n as f64;
        let mean: Vec<f64> = self.sum.iter().map(|&s| s as f64 / nf / 255.0).collect();
        // n²·var = n·Σx² − (Σx)², exact in integers (no cancellation error).
        let std = self
            .sumsq
            .iter()
            .zip(&self.sum)
            .map(|(&s2, &s)| {
                let num = n * s2 as u128 - (s as u128) * (s as u128);
                (num as f64).sqrt() / nf / 255.0
            })
            .collect();
        (mean, std)
    }

    /// Write the header, labels, metadata and manifest. `normalization` defaults to this split's
    /// own statistics.
    pub fn finish(
        mut self,
        normalization: Option<Normalization>,
        source: BTreeMap<String, String>,
    ) -> Result<Manifest> {
        let n = self.labels.len();
        if n == 0 {
            return Err(DataError::Usage(format!(
                "no images to pack into {}",
                self.dir.display()
            )));
        }
        let (mean, std) = self.stats();
        let images_path = self.dir.join("images.npy");
        let header = npy::header_bytes_padded(
            DType::U8,
            &[n, self.height, self.width, self.channels],
            IMAGES_HEADER_LEN,
        )
        .ok_or_else(|| DataError::Usage("images.npy header does not fit".into()))?;
        self.images.flush().map_err(io_at(&images_path))?;
        let mut f = self
            .images
            .into_inner()
            .map_err(|e| io_at(&images_path)(e.into_error()))?;
        f.seek(SeekFrom::Start(0)).map_err(io_at(&images_path))?;
        f.write_all(&header).map_err(io_at(&images_path))?;
        f.sync_all().map_err(io_at(&images_path))?;

        for l in &self.labels {
            self.hasher.update(&l.to_le_bytes());
        }
        let labels =
            NpyArray::new(vec![n], NpyData::I64(self.labels.clone())).map_err(DataError::Usage)?;
        npy::write_npy(&self.dir.join("labels.npy"), &labels)?;

        let meta_path = self.dir.join("metadata.csv");
        write_atomic(&meta_path, |w| {
            let mut cw = csv::Writer::from_writer(w);
            let mut head = vec!["index".to_string(), "label".into(), "class_name".into()];
            head.extend(self.meta_columns.iter().cloned());
            cw.write_record(&head)?;
            for (i, (row, &l)) in self.meta_rows.iter().zip(&self.labels).enumerate() {
                let mut rec = vec![
                    i.to_string(),
                    l.to_string(),
                    self.class_names[l as usize].clone(),
                ];
                rec.extend(row.iter().cloned());
                cw.write_record(&rec)?;
            }
            cw.flush()?;
            Ok(())
        })
        .map_err(io_at(&meta_path))?;

        let normalization = normalization.unwrap_or_else(|| {
            // A constant channel has std 0; normalising by it would divide by zero, so such a
            // channel is only centred (std 1), and the source says so.
            let constant = std.contains(&0.0);
            Normalization {
                mean: mean.clone(),
                std: std.iter().map(|&s| if s > 0.0 { s } else { 1.0 }).collect(),
                source: if constant {
                    "this split (constant channels: std set to 1)".into()
                } else {
                    "this split".into()
                },
            }
        });
        let manifest = Manifest {
            format: FORMAT.into(),
            version: VERSION,
            num_images: n,
            height: self.height,
            width: self.width,
            channels: self.channels,
            num_classes: self.class_names.len(),
            class_names: self.class_names,
            mean,
            std,
            normalization,
            images_file: "images.npy".into(),
            labels_file: "labels.npy".into(),
            metadata_file: "metadata.csv".into(),
            blake3: self.hasher.finalize().to_hex().to_string(),
            source,
            created_by: format!("ventral {}", env!("CARGO_PKG_VERSION")),
        };
        write_manifest(&self.dir, &manifest)?;
        Ok(manifest)
    }
}

/// Write `manifest.json` atomically.
pub fn write_manifest(dir: &Path, m: &Manifest) -> Result<()> {
    let path = dir.join("manifest.json");
    let mut text = serde_json::to_string_pretty(m)
        .map_err(|e| DataError::Usage(format!("cannot serialise manifest: {e}")))?;
    text.push('\n');
    ventral_core::write_bytes_atomic(&path, text.as_bytes()).map_err(io_at(&path))
}

/// Read and check `dir/manifest.json`.
pub fn read_manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join("manifest.json");
    let text = fs::read_to_string(&path).map_err(io_at(&path))?;
    let m: Manifest = serde_json::from_str(&text)
        .map_err(|e| invalid(&path, format!("not a valid manifest: {e}")))?;
    if m.format != FORMAT {
        return Err(invalid(
            &path,
            format!("format is '{}', expected '{FORMAT}'", m.format),
        ));
    }
    if m.version != VERSION {
        return Err(invalid(
            &path,
            format!(
                "format version {} is not supported (this ventral reads version {VERSION})",
                m.version
            ),
        ));
    }
    if m.class_names.len() != m.num_classes {
        return Err(invalid(
            &path,
            format!(
                "num_classes is {} but {} class names are listed",
                m.num_classes,
                m.class_names.len()
            ),
        ));
    }
    for (what, v) in [
        ("mean", &m.mean),
        ("std", &m.std),
        ("normalization.mean", &m.normalization.mean),
        ("normalization.std", &m.normalization.std),
    ] {
        if v.len() != m.channels {
            return Err(invalid(
                &path,
                format!(
                    "{what} has {} values, expected one per channel ({})",
                    v.len(),
                    m.channels
                ),
            ));
        }
    }
    if m.normalization
        .std
        .iter()
        .any(|&s| !(s > 0.0 && s.is_finite()))
    {
        return Err(invalid(
            &path,
            "normalization.std must be positive and finite",
        ));
    }
    for f in [&m.images_file, &m.labels_file, &m.metadata_file] {
        if f.contains('/') || f.contains('\\') || f.starts_with('.') {
            return Err(invalid(
                &path,
                format!("file name '{f}' must be a plain name"),
            ));
        }
    }
    Ok(m)
}

/// A packed split opened for reading; images are memory-mapped.
#[derive(Debug)]
pub struct PackedDataset {
    dir: PathBuf,
    manifest: Manifest,
    mmap: memmap2::Mmap,
    data_offset: usize,
    labels: Vec<i64>,
}

impl PackedDataset {
    /// Open and validate a packed split: the manifest, the images header and exact file size, the
    /// labels' length and range. The data hash is checked by [`Self::verify`].
    pub fn open(dir: &Path) -> Result<Self> {
        let manifest = read_manifest(dir)?;
        let m = &manifest;
        let img_path = dir.join(&m.images_file);
        let file = File::open(&img_path).map_err(io_at(&img_path))?;
        let file_len = file.metadata().map_err(io_at(&img_path))?.len() as usize;
        let mut head = Vec::new();
        (&file)
            .take(4096)
            .read_to_end(&mut head)
            .map_err(io_at(&img_path))?;
        let h = npy::parse_header(&head).map_err(|msg| invalid(&img_path, msg))?;
        let want = vec![m.num_images, m.height, m.width, m.channels];
        if h.dtype != DType::U8 || h.fortran_order {
            return Err(invalid(
                &img_path,
                format!("expected C-ordered uint8 images, found {}", h.dtype.descr()),
            ));
        }
        if h.shape != want {
            return Err(invalid(
                &img_path,
                format!(
                    "shape {:?} does not match the manifest's [N, H, W, C] = {want:?}",
                    h.shape
                ),
            ));
        }
        let data_len = h
            .data_len()
            .ok_or_else(|| invalid(&img_path, format!("shape {:?} overflows", h.shape)))?;
        if file_len != h.data_offset + data_len {
            return Err(invalid(
                &img_path,
                format!(
                    "file is {file_len} bytes, expected {} ({} header + {data_len} data): truncated or padded",
                    h.data_offset + data_len,
                    h.data_offset
                ),
            ));
        }
        // SAFETY: the file is opened read-only and packed datasets are never modified in place
        // (writers build a new directory and rename it), so the mapping stays valid.
        #[allow(unsafe_code)]
        let mmap = unsafe { memmap2::Mmap::map(&file) }.map_err(io_at(&img_path))?;

        let lab_path = dir.join(&m.labels_file);
        let la = npy::read_npy(&lab_path)?;
        let labels = la
            .to_i64()
            .filter(|_| !la.is_float())
            .ok_or_else(|| invalid(&lab_path, "labels must be integers"))?;
        if la.shape != vec![m.num_images] {
            return Err(invalid(
                &lab_path,
                format!("shape {:?}, expected [{}]", la.shape, m.num_images),
            ));
        }
        if let Some((i, l)) = labels
            .iter()
            .enumerate()
            .find(|(_, l)| **l < 0 || **l as usize >= m.num_classes)
        {
            return Err(invalid(
                &lab_path,
                format!("label {l} of image {i} is outside 0..{}", m.num_classes),
            ));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            data_offset: h.data_offset,
            manifest,
            mmap,
            labels,
        })
    }

    /// The split's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the split is empty (never for a valid split).
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// `[H, W, C]`.
    pub fn image_shape(&self) -> [usize; 3] {
        [
            self.manifest.height,
            self.manifest.width,
            self.manifest.channels,
        ]
    }

    /// Bytes of image `i` (HWC). Panics if `i >= len()` (an index bug, not a data error).
    pub fn image(&self, i: usize) -> &[u8] {
        let [h, w, c] = self.image_shape();
        let sz = h * w * c;
        let start = self.data_offset + i * sz;
        &self.mmap[start..start + sz]
    }

    /// All image bytes (NHWC).
    pub fn images(&self) -> &[u8] {
        &self.mmap[self.data_offset..]
    }

    /// Labels.
    pub fn labels(&self) -> &[i64] {
        &self.labels
    }

    /// Recompute the BLAKE3 of images and labels.
    pub fn compute_hash(&self) -> String {
        let mut h = blake3::Hasher::new();
        h.update_rayon(self.images());
        for l in &self.labels {
            h.update(&l.to_le_bytes());
        }
        h.finalize().to_hex().to_string()
    }

    /// Re-hash the data and compare with the manifest.
    pub fn verify(&self) -> Result<()> {
        let got = self.compute_hash();
        if got != self.manifest.blake3 {
            return Err(invalid(
                self.dir.join("manifest.json"),
                format!(
                    "data hash mismatch: manifest says {}, the data hash to {got} (images.npy or labels.npy changed or is corrupted)",
                    self.manifest.blake3
                ),
            ));
        }
        Ok(())
    }

    /// The metadata table: (header, rows).
    pub fn metadata(&self) -> Result<(Vec<String>, Vec<Vec<String>>)> {
        read_csv(&self.dir.join(&self.manifest.metadata_file))
    }
}

/// Read a CSV file into (header, rows), checking every row has the header's width.
pub fn read_csv(path: &Path) -> Result<(Vec<String>, Vec<Vec<String>>)> {
    let mut r = csv::Reader::from_path(path).map_err(|e| invalid(path, e.to_string()))?;
    let header: Vec<String> = r
        .headers()
        .map_err(|e| invalid(path, e.to_string()))?
        .iter()
        .map(String::from)
        .collect();
    let mut rows = Vec::new();
    for rec in r.records() {
        let rec = rec.map_err(|e| invalid(path, e.to_string()))?;
        rows.push(rec.iter().map(String::from).collect());
    }
    Ok((header, rows))
}

/// The packed splits under `root`: `root` itself when it holds a manifest, otherwise its
/// sub-directories that do, in canonical split order.
pub fn find_splits(root: &Path) -> Result<Vec<(String, PathBuf)>> {
    if root.join("manifest.json").is_file() {
        let name = root
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "split".into());
        return Ok(vec![(name, root.to_path_buf())]);
    }
    let entries = fs::read_dir(root).map_err(io_at(root))?;
    let mut found = Vec::new();
    for e in entries {
        let e = e.map_err(io_at(root))?;
        let p = e.path();
        if p.join("manifest.json").is_file() {
            found.push((e.file_name().to_string_lossy().into_owned(), p));
        }
    }
    if found.is_empty() {
        return Err(invalid(
            root,
            "not a packed dataset: no manifest.json here or in any sub-directory",
        ));
    }
    found.sort_by_key(|(name, _)| {
        (
            SPLIT_ORDER
                .iter()
                .position(|s| s == name)
                .unwrap_or(SPLIT_ORDER.len()),
            name.clone(),
        )
    });
    Ok(found)
}

#[cfg(test)]
mod split_name_tests {
    use super::check_split_name;

    #[test]
    fn split_names_are_single_plain_components() {
        for ok in ["train", "val", "test", "testplus", "fold-1", "Ünicode"] {
            assert!(check_split_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "../x", "a/b", "a\\b", ".hidden", "a\0b"] {
            assert!(check_split_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_split_name(&"x".repeat(256)).is_err());
    }
}
