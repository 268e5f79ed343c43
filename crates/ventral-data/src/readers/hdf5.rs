//! The Kietzmann-lab MiniEcoset HDF5 layout (`miniecoset_{64,128}px.h5`), read with the
//! pure-Rust `hdf5-reader`:
//!
//! - `/{train,val,test,testplus}/data`: uint8 `[N, H, W, 3]` (NHWC);
//! - `/{split}/labels`: integer class ids `[N]`;
//! - `/categories`: class names as byte or unicode strings (optional; numbers otherwise);
//! - `/train_img_mean_channels`, `/train_img_std_channels`: per-channel statistics on the 0–255
//!   scale (optional); when present every split is normalised with them, as the reference does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hdf5_reader::{Dataset, Datatype, Hdf5File, SliceInfo, SliceInfoElem};

use crate::error::{Result, invalid};
use crate::pack::{Item, Outcome, SourceSet, SplitSource, numbered_classes};
use crate::packed::{Normalization, SPLIT_ORDER};

/// One split group of the file.
pub struct H5Split {
    name: String,
    path: PathBuf,
    data: Dataset,
    n: usize,
    h: usize,
    w: usize,
    c: usize,
    labels: Vec<i64>,
}

impl std::fmt::Debug for H5Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H5Split")
            .field("name", &self.name)
            .field("path", &self.path)
            .field("shape", &[self.n, self.h, self.w, self.c])
            .finish()
    }
}

fn h5err(path: &Path, what: &str, e: hdf5_reader::error::Error) -> crate::error::DataError {
    invalid(path, format!("{what}: {e}"))
}

/// Read an integer or float dataset as f64 whatever its stored type.
fn read_numeric(path: &Path, ds: &Dataset, what: &str) -> Result<Vec<f64>> {
    let e = |err| h5err(path, what, err);
    let v: Vec<f64> = match ds.dtype() {
        Datatype::FixedPoint { size, signed, .. } => match (size, signed) {
            (1, false) => ds
                .read_array::<u8>()
                .map_err(e)?
                .iter()
                .map(|&x| x as f64)
                .collect(),
            (1, true) => ds
                .read_array::<i8>()
                .map_err(e)?
                .iter()
                .map(|&x| x as f64)
                .collect(),
            (2, false) => ds
                .read_array::<u16>()
                .map_err(e)?
                .iter()
                .map(|&x| x as f64)
                .collect(),
            (2, true) => ds
                .read_array::<i16>()
                .map_err(e)?
                .iter()
                .map(|&x| x as f64)
                .collect(),
            (4, false) => ds
                .read_array::<u32>()
                .map_err(e)?
                .iter()
                .map(|&x| x as f64)
                .collect(),
            (4, true) => ds
                .read_array::<i32>()
                .map_err(e)?
                .iter()
                .map(|&x| x as f64)
                .collect(),
            (8, false) => ds
                .read_array::<u64>()
                .map_err(e)?
                .iter()
                .map(|&x| x as f64)
                .collect(),
            (8, true) => ds
                .read_array::<i64>()
                .map_err(e)?
                .iter()
                .map(|&x| x as f64)
                .collect(),
            _ => {
                return Err(invalid(
                    path,
                    format!("{what}: unsupported integer size {size}"),
                ));
            }
        },
        Datatype::FloatingPoint { size: 4, .. } => ds
            .read_array::<f32>()
            .map_err(e)?
            .iter()
            .map(|&x| x as f64)
            .collect(),
        Datatype::FloatingPoint { size: 8, .. } => {
            ds.read_array::<f64>().map_err(e)?.iter().copied().collect()
        }
        other => {
            return Err(invalid(
                path,
                format!("{what}: expected a numeric dataset, found {other:?}"),
            ));
        }
    };
    Ok(v)
}

/// Open a MiniEcoset-layout HDF5 file.
pub fn open(path: &Path, split: Option<&str>) -> Result<SourceSet<H5Split>> {
    let file = Hdf5File::open(path).map_err(|e| h5err(path, "cannot open as HDF5", e))?;
    let root = file
        .root_group()
        .map_err(|e| h5err(path, "cannot read the root group", e))?;
    let groups: Vec<String> = root
        .groups()
        .map_err(|e| h5err(path, "cannot list groups", e))?
        .iter()
        .map(|g| g.name().trim_start_matches('/').to_string())
        .collect();
    let present: Vec<String> = groups
        .iter()
        .filter(|g| {
            file.dataset(&format!("/{g}/data")).is_ok() || SPLIT_ORDER.contains(&g.as_str())
        })
        .cloned()
        .collect();
    let chosen: Vec<String> = match split {
        Some(s) if present.iter().any(|g| g == s) => vec![s.to_string()],
        Some(s) => {
            return Err(invalid(
                path,
                format!("no split group '/{s}' (found: {})", present.join(", ")),
            ));
        }
        None => present,
    };
    if chosen.is_empty() {
        return Err(invalid(
            path,
            "no split groups found (expected /train/data and /train/labels, MiniEcoset layout)",
        ));
    }
    let mut splits = Vec::new();
    let mut max_label = -1i64;
    for name in chosen {
        let dpath = format!("/{name}/data");
        let lpath = format!("/{name}/labels");
        let data = file
            .dataset(&dpath)
            .map_err(|e| h5err(path, &format!("missing dataset {dpath}"), e))?;
        let shape: Vec<usize> = data.shape().iter().map(|&d| d as usize).collect();
        if shape.len() != 4 || !matches!(shape[3], 1 | 3) || shape[1] == 0 || shape[2] == 0 {
            return Err(invalid(
                path,
                format!("{dpath} has shape {shape:?}, expected [N, H, W, 3] (NHWC, H and W > 0)"),
            ));
        }
        if !matches!(
            data.dtype(),
            Datatype::FixedPoint {
                size: 1,
                signed: false,
                ..
            }
        ) {
            return Err(invalid(
                path,
                format!("{dpath} has type {:?}, expected uint8", data.dtype()),
            ));
        }
        let lds = file
            .dataset(&lpath)
            .map_err(|e| h5err(path, &format!("missing dataset {lpath}"), e))?;
        let lab = read_numeric(path, &lds, &lpath)?;
        if lab.len() != shape[0] {
            return Err(invalid(
                path,
                format!(
                    "{lpath} has {} labels but {dpath} has {} images",
                    lab.len(),
                    shape[0]
                ),
            ));
        }
        let mut labels = Vec::with_capacity(lab.len());
        for (i, &l) in lab.iter().enumerate() {
            if l.fract() != 0.0 || l < 0.0 || !l.is_finite() {
                return Err(invalid(
                    path,
                    format!("{lpath}[{i}] = {l} is not a non-negative integer class id"),
                ));
            }
            labels.push(l as i64);
            max_label = max_label.max(l as i64);
        }
        splits.push(H5Split {
            name,
            path: path.to_path_buf(),
            data,
            n: shape[0],
            h: shape[1],
            w: shape[2],
            c: shape[3],
            labels,
        });
    }
    let class_names = match file.dataset("/categories") {
        Ok(ds) => {
            let names = ds
                .read_strings()
                .map_err(|e| h5err(path, "/categories is not a string dataset", e))?;
            if (names.len() as i64) <= max_label {
                return Err(invalid(
                    path,
                    format!(
                        "/categories lists {} names but labels go up to {max_label}",
                        names.len()
                    ),
                ));
            }
            names
        }
        Err(_) => numbered_classes(
            usize::try_from(max_label)
                .unwrap_or(usize::MAX)
                .saturating_add(1),
            path,
        )?,
    };
    let normalization = match (
        file.dataset("/train_img_mean_channels"),
        file.dataset("/train_img_std_channels"),
    ) {
        (Ok(m), Ok(s)) => {
            let mean = read_numeric(path, &m, "/train_img_mean_channels")?;
            let std = read_numeric(path, &s, "/train_img_std_channels")?;
            let c = splits[0].c;
            if mean.len() != c || std.len() != c || std.iter().any(|&v| v <= 0.0) {
                return Err(invalid(
                    path,
                    format!(
                        "/train_img_mean_channels and /train_img_std_channels must hold {c} values (std > 0), found {} and {}",
                        mean.len(),
                        std.len()
                    ),
                ));
            }
            Some(Normalization {
                mean: mean.iter().map(|v| v / 255.0).collect(),
                std: std.iter().map(|v| v / 255.0).collect(),
                source: "hdf5 /train_img_mean_channels, /train_img_std_channels (÷255)".into(),
            })
        }
        _ => None,
    };
    let mut source = BTreeMap::new();
    source.insert("format".into(), "hdf5".into());
    source.insert("path".into(), path.display().to_string());
    Ok(SourceSet {
        splits,
        class_names,
        normalization,
        source,
    })
}

impl SplitSource for H5Split {
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
        let all = |d: usize| SliceInfoElem::Slice {
            start: 0,
            end: d as u64,
            step: 1,
        };
        let sel = SliceInfo {
            selections: vec![
                SliceInfoElem::Slice {
                    start: start as u64,
                    end: end as u64,
                    step: 1,
                },
                all(self.h),
                all(self.w),
                all(self.c),
            ],
        };
        let arr = self.data.read_slice_parallel::<u8>(&sel).map_err(|e| {
            h5err(
                &self.path,
                &format!("cannot read /{}/data rows {start}..{end}", self.name),
                e,
            )
        })?;
        let flat: Vec<u8> = arr.iter().copied().collect();
        let sz = self.h * self.w * self.c;
        if flat.len() != (end - start) * sz {
            return Err(invalid(
                &self.path,
                format!(
                    "/{}/data rows {start}..{end}: read {} bytes, expected {}",
                    self.name,
                    flat.len(),
                    (end - start) * sz
                ),
            ));
        }
        Ok(flat
            .chunks_exact(sz)
            .enumerate()
            .map(|(k, px)| {
                Outcome::Ok(Item {
                    height: self.h,
                    width: self.w,
                    pixels: px.to_vec(),
                    label: self.labels[start + k],
                    meta: vec![(start + k).to_string()],
                })
            })
            .collect())
    }
}
