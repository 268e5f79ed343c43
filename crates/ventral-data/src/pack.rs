//! `pack`: import the image datasets users have into the packed format.
//!
//! Every format goes through one driver: the reader yields chunks of decoded images in a fixed
//! order; the driver resizes them in parallel, streams them into a [`PackWriter`] and counts
//! rejects. Each split is built in a temporary directory and all splits are renamed into place
//! together at the end, so a failure leaves nothing that looks complete.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use ventral_core::AtomicDir;

use crate::error::{DataError, Result, io_at};
use crate::image_ops::resize_center_crop;
use crate::packed::{Manifest, Normalization, PackWriter, SPLIT_ORDER};
use crate::readers;

/// Input formats `pack` understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// `class/*.jpg|jpeg|png` trees (ecoset's `NNNN_name` folders give class `name`), optionally
    /// under `train/`, `val/`, `test/` split folders.
    ImageFolder,
    /// The Kietzmann-lab MiniEcoset HDF5 layout.
    Hdf5,
    /// CIFAR-10/100 binary batches.
    Cifar,
    /// NumPy `.npz` with an image and a label array.
    Npz,
}

impl std::str::FromStr for InputFormat {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "imagefolder" => Ok(Self::ImageFolder),
            "hdf5" | "h5" => Ok(Self::Hdf5),
            "cifar" => Ok(Self::Cifar),
            "npz" => Ok(Self::Npz),
            _ => Err(format!(
                "unknown format '{s}' (expected imagefolder, hdf5, cifar or npz)"
            )),
        }
    }
}

/// Options of `pack`.
#[derive(Debug, Clone)]
pub struct PackOptions {
    /// Output side length; `None` keeps the source size (required for ImageFolder: default 64).
    pub image_size: Option<usize>,
    /// Pack only this split, or name the single split of a one-split input (default `train`).
    pub split: Option<String>,
    /// Fail when more than this fraction of a split's images cannot be decoded.
    pub max_reject_fraction: f64,
    /// Replace existing splits in the output directory.
    pub overwrite: bool,
    /// npz: name of the image array.
    pub images_key: String,
    /// npz: name of the label array.
    pub labels_key: String,
    /// npz: name of the optional class-name array.
    pub class_names_key: String,
    /// npz: axis order of 4-D image arrays; `None` guesses (see [`crate::readers::npz`]).
    pub layout: Option<Layout>,
}

/// Axis order of 4-D image arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Nhwc,
    Nchw,
}

impl std::str::FromStr for Layout {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "nhwc" => Ok(Self::Nhwc),
            "nchw" => Ok(Self::Nchw),
            _ => Err(format!("unknown layout '{s}' (expected nhwc or nchw)")),
        }
    }
}

impl Default for PackOptions {
    fn default() -> Self {
        Self {
            image_size: None,
            split: None,
            max_reject_fraction: 0.01,
            overwrite: false,
            images_key: "images".into(),
            labels_key: "labels".into(),
            class_names_key: "class_names".into(),
            layout: None,
        }
    }
}

/// One decoded image from a reader, at its source size.
#[derive(Debug)]
pub struct Item {
    pub height: usize,
    pub width: usize,
    /// HWC bytes with the split's channel count.
    pub pixels: Vec<u8>,
    pub label: i64,
    pub meta: Vec<String>,
}

/// What a reader yields per source image.
#[derive(Debug)]
pub enum Outcome {
    Ok(Item),
    /// The image could not be decoded: (what, reason), listed in `rejected.csv`.
    Rejected(String, String),
}

/// A split as a reader presents it.
pub trait SplitSource {
    /// Split name.
    fn name(&self) -> &str;
    /// Number of source images.
    fn len(&self) -> usize;
    /// True when the split has no images.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Channels of the yielded pixels.
    fn channels(&self) -> usize;
    /// Source size when all images share one (used when no `--image-size` is given).
    fn native_size(&self) -> Option<(usize, usize)>;
    /// Extra metadata columns.
    fn meta_columns(&self) -> Vec<String>;
    /// Images `start..end`, in order.
    fn read(&mut self, start: usize, end: usize) -> Result<Vec<Outcome>>;
}

/// A whole input as a reader presents it.
#[derive(Debug)]
pub struct SourceSet<S> {
    pub splits: Vec<S>,
    pub class_names: Vec<String>,
    /// Normalisation statistics stored in the source (MiniEcoset HDF5), if any.
    pub normalization: Option<Normalization>,
    /// Description of the source for the manifest.
    pub source: BTreeMap<String, String>,
}

/// What `pack` produced for one split.
#[derive(Debug)]
pub struct PackedSplit {
    pub name: String,
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub rejected: Vec<(String, String)>,
}

const CHUNK: usize = 512;

/// Largest `--image-size` accepted (pixels per side).
pub const MAX_IMAGE_SIZE: usize = 4096;

/// Pack `input` of `format` into `out/<split>` for each split. `progress(split, done, total)` is
/// called after every chunk.
pub fn pack(
    format: InputFormat,
    input: &Path,
    out: &Path,
    opts: &PackOptions,
    progress: &(dyn Fn(&str, usize, usize) + Sync),
) -> Result<Vec<PackedSplit>> {
    if !input.exists() {
        return Err(io_at(input)(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "input does not exist",
        )));
    }
    if !(0.0..=1.0).contains(&opts.max_reject_fraction) {
        return Err(DataError::Usage(
            "--max-reject-fraction must be between 0 and 1".into(),
        ));
    }
    if opts.image_size == Some(0) {
        return Err(DataError::Usage("--image-size must be positive".into()));
    }
    if let Some(n) = opts.image_size
        && n > MAX_IMAGE_SIZE
    {
        return Err(DataError::Usage(format!(
            "--image-size {n} exceeds the limit of {MAX_IMAGE_SIZE} pixels per side (each image would take {:.1} GB)",
            (n as f64) * (n as f64) * 3.0 * 1e-9
        )));
    }
    if let Some(s) = &opts.split {
        crate::packed::check_split_name(s)
            .map_err(|e| DataError::Usage(format!("--split: {e}")))?;
    }
    match format {
        InputFormat::ImageFolder => {
            let mut o = opts.clone();
            o.image_size = Some(opts.image_size.unwrap_or(64));
            let set = readers::imagefolder::open(input, opts.split.as_deref())?;
            pack_set(set, out, &o, progress)
        }
        InputFormat::Hdf5 => pack_set(
            readers::hdf5::open(input, opts.split.as_deref())?,
            out,
            opts,
            progress,
        ),
        InputFormat::Cifar => pack_set(
            readers::cifar::open(input, opts.split.as_deref())?,
            out,
            opts,
            progress,
        ),
        InputFormat::Npz => pack_set(readers::npz::open(input, opts)?, out, opts, progress),
    }
}

/// Pack every split of a source set (training split first, so the others can be normalised
/// with its statistics) and commit them together.
pub fn pack_set<S: SplitSource>(
    mut set: SourceSet<S>,
    out: &Path,
    opts: &PackOptions,
    progress: &(dyn Fn(&str, usize, usize) + Sync),
) -> Result<Vec<PackedSplit>> {
    // Every name is checked before anything is made: each becomes a directory inside `out`.
    for split in &set.splits {
        crate::packed::check_split_name(split.name()).map_err(DataError::Usage)?;
    }
    set.splits.sort_by_key(|s| {
        SPLIT_ORDER
            .iter()
            .position(|n| *n == s.name())
            .unwrap_or(SPLIT_ORDER.len())
    });
    // A new root is staged whole beside `out` and renamed into place at the end, so a failed or
    // killed pack leaves no directory behind; into an existing root, each split is committed
    // on its own.
    let root = if out.exists() {
        None
    } else {
        if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io_at(parent))?;
        }
        Some(AtomicDir::create(out, false).map_err(io_at(out))?)
    };
    let base = root.as_ref().map_or(out, |r| r.path()).to_path_buf();
    let mut norm = set.normalization.clone();
    let mut staged = Vec::new();
    for split in set.splits.iter_mut() {
        let target = base.join(split.name());
        let dir = AtomicDir::create(&target, opts.overwrite).map_err(io_at(&target))?;
        let mut source = set.source.clone();
        source.insert("split".into(), split.name().to_string());
        let (manifest, rejected) = pack_split(
            split,
            dir.path(),
            &set.class_names,
            opts,
            norm.clone(),
            source,
            &out.join(split.name()),
            progress,
        )?;
        if norm.is_none() && split.name() == "train" {
            norm = Some(Normalization {
                source: "train split".into(),
                ..manifest.normalization.clone()
            });
        }
        staged.push((dir, manifest, rejected));
    }
    let mut done = Vec::new();
    for (dir, manifest, rejected) in staged {
        let name = dir
            .target()
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        dir.commit().map_err(io_at(out))?;
        done.push(PackedSplit {
            dir: out.join(&name),
            name,
            manifest,
            rejected,
        });
    }
    if let Some(root) = root {
        root.commit().map_err(io_at(out))?;
    }
    Ok(done)
}

#[allow(clippy::type_complexity)]
fn pack_split<S: SplitSource>(
    split: &mut S,
    dir: &Path,
    class_names: &[String],
    opts: &PackOptions,
    norm: Option<Normalization>,
    source: BTreeMap<String, String>,
    target: &Path,
    progress: &(dyn Fn(&str, usize, usize) + Sync),
) -> Result<(Manifest, Vec<(String, String)>)> {
    let n = split.len();
    let c = split.channels();
    let (h, w) = match (opts.image_size, split.native_size()) {
        (Some(s), _) => (s, s),
        (None, Some(hw)) => hw,
        (None, None) => {
            return Err(DataError::Usage(format!(
                "split '{}' has images of different sizes: give --image-size",
                split.name()
            )));
        }
    };
    let mut writer = PackWriter::create(dir, h, w, c, class_names.to_vec(), split.meta_columns())?;
    let mut rejected = Vec::new();
    let max_rejects = (opts.max_reject_fraction * n as f64).floor() as usize;
    let name = split.name().to_string();
    let mut start = 0;
    while start < n {
        let end = (start + CHUNK).min(n);
        let outcomes = split.read(start, end)?;
        let resized: Vec<Outcome> = outcomes
            .into_par_iter()
            .map(|o| match o {
                Outcome::Ok(mut it) if it.height != h || it.width != w => {
                    if opts.image_size.is_none() {
                        return Outcome::Rejected(
                            format!("image of size {}×{}", it.height, it.width),
                            format!("differs from the split's {h}×{w}; give --image-size"),
                        );
                    }
                    it.pixels = resize_center_crop(it.height, it.width, c, &it.pixels, h);
                    it.height = h;
                    it.width = w;
                    Outcome::Ok(it)
                }
                o => o,
            })
            .collect();
        for o in resized {
            match o {
                Outcome::Ok(it) => writer.push(&it.pixels, it.label, it.meta)?,
                Outcome::Rejected(what, why) => rejected.push((what, why)),
            }
        }
        if rejected.len() > max_rejects {
            let (what, why) = &rejected[rejected.len() - 1];
            return Err(DataError::Usage(format!(
                "split '{name}': {} images could not be decoded, more than --max-reject-fraction {} of {n} allows; nothing was written to {} (last: {what}: {why})",
                rejected.len(),
                opts.max_reject_fraction,
                target.display(),
            )));
        }
        progress(&name, end, n);
        start = end;
    }
    let rej_path = dir.join("rejected.csv");
    ventral_core::write_atomic(&rej_path, |w| {
        let mut cw = csv::Writer::from_writer(w);
        cw.write_record(["item", "reason"])?;
        for (a, b) in &rejected {
            cw.write_record([a, b])?;
        }
        cw.flush()
    })
    .map_err(io_at(&rej_path))?;
    let manifest = writer.finish(norm, source)?;
    Ok((manifest, rejected))
}

/// Most classes a dataset may have (ImageNet-21k has 21 841, Ecoset 565): labels beyond it are
/// corrupt, and naming that many classes would exhaust memory.
pub const MAX_CLASSES: usize = 1_000_000;

/// Class names `"0".."k-1"` for a source without names; `path` is blamed when the labels imply
/// more than [`MAX_CLASSES`].
pub fn numbered_classes(k: usize, path: &Path) -> Result<Vec<String>> {
    if k > MAX_CLASSES {
        return Err(crate::error::invalid(
            path,
            format!(
                "labels go up to {} — more than {MAX_CLASSES} classes; the labels are corrupt",
                k - 1
            ),
        ));
    }
    Ok((0..k).map(|i| i.to_string()).collect())
}
