//! CIFAR-10 and CIFAR-100 binary batches.
//!
//! CIFAR-10 records are 1 label byte + 3072 pixel bytes (1024 R, 1024 G, 1024 B planes of a
//! 32×32 image, row-major); a batch file holds 10 000 records (30 730 000 bytes). CIFAR-100
//! records start with two label bytes (coarse, fine); the fine label is the class.
//!
//! INPUT may be the extracted folder (`cifar-10-batches-bin`: `data_batch_1..5.bin` → train,
//! `test_batch.bin` → test, class names from `batches.meta.txt`; `cifar-100-binary`:
//! `train.bin`, `test.bin`, `fine_label_names.txt`) or a single batch file.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Result, invalid, io_at};
use crate::pack::{Item, Outcome, SourceSet, SplitSource, numbered_classes};

const PIXELS: usize = 3072;

/// Which CIFAR variant a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Cifar10,
    Cifar100,
}

impl Variant {
    fn record(self) -> usize {
        match self {
            Variant::Cifar10 => 1 + PIXELS,
            Variant::Cifar100 => 2 + PIXELS,
        }
    }
    fn classes(self) -> usize {
        match self {
            Variant::Cifar10 => 10,
            Variant::Cifar100 => 100,
        }
    }
}

/// A record: (file, record index in the file, record bytes).
type Record = (PathBuf, usize, Vec<u8>);

/// One split: one or more batch files read fully into memory (CIFAR is small).
#[derive(Debug)]
pub struct CifarSplit {
    name: String,
    variant: Variant,
    /// (file, record index in file, record bytes)
    records: Vec<Record>,
}

fn variant_of(path: &Path, len: usize) -> Result<Variant> {
    let name = path
        .file_name()
        .map(|s| s.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let by_name = if name.starts_with("data_batch") || name.starts_with("test_batch") {
        Some(Variant::Cifar10)
    } else if name == "train.bin" || name == "test.bin" {
        Some(Variant::Cifar100)
    } else {
        None
    };
    let v = match by_name {
        Some(v) => v,
        None => match (
            len.is_multiple_of(Variant::Cifar10.record()),
            len.is_multiple_of(Variant::Cifar100.record()),
        ) {
            (true, false) => Variant::Cifar10,
            (false, true) => Variant::Cifar100,
            _ => {
                return Err(invalid(
                    path,
                    format!(
                        "{len} bytes is not a whole number of CIFAR-10 (3073-byte) or CIFAR-100 (3074-byte) records, or is both; name the file data_batch_N.bin / test_batch.bin (CIFAR-10) or train.bin / test.bin (CIFAR-100)"
                    ),
                ));
            }
        },
    };
    if len == 0 || !len.is_multiple_of(v.record()) {
        let expect = match (v, name.as_str()) {
            (Variant::Cifar10, _) => " (a CIFAR-10 batch is 30730000 bytes)".to_string(),
            (Variant::Cifar100, "train.bin") => " (CIFAR-100 train.bin is 153700000 bytes)".into(),
            (Variant::Cifar100, _) => " (CIFAR-100 test.bin is 30740000 bytes)".into(),
        };
        return Err(invalid(
            path,
            format!(
                "{len} bytes is not a whole number of {}-byte {} records{expect}: truncated or not a CIFAR batch",
                v.record(),
                if v == Variant::Cifar10 {
                    "CIFAR-10"
                } else {
                    "CIFAR-100"
                }
            ),
        ));
    }
    Ok(v)
}

fn load_file(path: &Path) -> Result<(Variant, Vec<Record>)> {
    let bytes = fs::read(path).map_err(io_at(path))?;
    let v = variant_of(path, bytes.len())?;
    let recs = bytes
        .chunks_exact(v.record())
        .enumerate()
        .map(|(i, r)| (path.to_path_buf(), i, r.to_vec()))
        .collect::<Vec<_>>();
    for (_, i, r) in &recs {
        let (lab, max) = match v {
            Variant::Cifar10 => (r[0] as usize, 10),
            Variant::Cifar100 => {
                if r[0] >= 20 {
                    return Err(invalid(
                        path,
                        format!("record {i}: coarse label {} is outside 0..20", r[0]),
                    ));
                }
                (r[1] as usize, 100)
            }
        };
        if lab >= max {
            return Err(invalid(
                path,
                format!(
                    "record {i}: label {lab} is outside 0..{max}: not a CIFAR batch or misaligned"
                ),
            ));
        }
    }
    Ok((v, recs))
}

fn read_names(path: &Path, k: usize) -> Result<Option<Vec<String>>> {
    if !path.is_file() {
        return Ok(None);
    }
    let text = fs::read_to_string(path).map_err(io_at(path))?;
    let names: Vec<String> = text
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    if names.len() != k {
        return Err(invalid(
            path,
            format!("lists {} class names, expected {k}", names.len()),
        ));
    }
    Ok(Some(names))
}

/// Open a CIFAR folder or batch file.
pub fn open(input: &Path, split: Option<&str>) -> Result<SourceSet<CifarSplit>> {
    let mut groups: Vec<(String, Vec<PathBuf>)> = Vec::new();
    let meta_dir: PathBuf;
    if input.is_dir() {
        meta_dir = input.to_path_buf();
        let c10: Vec<PathBuf> = (1..=5)
            .map(|i| input.join(format!("data_batch_{i}.bin")))
            .filter(|p| p.is_file())
            .collect();
        if !c10.is_empty() {
            if c10.len() < 5 {
                // A partial download would pack fewer training images without a word.
                let missing: Vec<String> = (1..=5)
                    .map(|i| format!("data_batch_{i}.bin"))
                    .filter(|n| !input.join(n).is_file())
                    .collect();
                return Err(invalid(
                    input,
                    format!(
                        "CIFAR-10 training batches missing: {} (have {} of 5); pack single batch files by naming them",
                        missing.join(", "),
                        c10.len()
                    ),
                ));
            }
            groups.push(("train".into(), c10));
        } else if input.join("train.bin").is_file() {
            groups.push(("train".into(), vec![input.join("train.bin")]));
        }
        for t in ["test_batch.bin", "test.bin"] {
            if input.join(t).is_file() {
                groups.push(("test".into(), vec![input.join(t)]));
                break;
            }
        }
        if groups.is_empty() {
            return Err(invalid(
                input,
                "no CIFAR batch files (data_batch_1..5.bin, test_batch.bin, train.bin, test.bin)",
            ));
        }
        if let Some(s) = split {
            let found: Vec<String> = groups.iter().map(|g| g.0.clone()).collect();
            groups.retain(|g| g.0 == s);
            if groups.is_empty() {
                return Err(invalid(
                    input,
                    format!("no '{s}' split here (found: {})", found.join(", ")),
                ));
            }
        }
    } else {
        meta_dir = input.parent().map(Path::to_path_buf).unwrap_or_default();
        groups.push((
            split.unwrap_or("train").to_string(),
            vec![input.to_path_buf()],
        ));
    }
    let mut splits = Vec::new();
    let mut variant = None;
    for (name, files) in groups {
        let mut records = Vec::new();
        for f in files {
            let (v, r) = load_file(&f)?;
            if variant.is_some_and(|old| old != v) {
                return Err(invalid(&f, "mixes CIFAR-10 and CIFAR-100 batches"));
            }
            variant = Some(v);
            records.extend(r);
        }
        splits.push(CifarSplit {
            name,
            variant: variant.unwrap_or(Variant::Cifar10),
            records,
        });
    }
    let v = variant.unwrap_or(Variant::Cifar10);
    let names_file = match v {
        Variant::Cifar10 => meta_dir.join("batches.meta.txt"),
        Variant::Cifar100 => meta_dir.join("fine_label_names.txt"),
    };
    let class_names = match read_names(&names_file, v.classes())? {
        Some(n) => n,
        None => numbered_classes(v.classes(), &names_file)?,
    };
    let mut source = BTreeMap::new();
    source.insert(
        "format".into(),
        match v {
            Variant::Cifar10 => "cifar10".into(),
            Variant::Cifar100 => "cifar100".into(),
        },
    );
    source.insert("path".into(), input.display().to_string());
    Ok(SourceSet {
        splits,
        class_names,
        normalization: None,
        source,
    })
}

impl SplitSource for CifarSplit {
    fn name(&self) -> &str {
        &self.name
    }
    fn len(&self) -> usize {
        self.records.len()
    }
    fn channels(&self) -> usize {
        3
    }
    fn native_size(&self) -> Option<(usize, usize)> {
        Some((32, 32))
    }
    fn meta_columns(&self) -> Vec<String> {
        let mut v = vec!["source_file".to_string(), "source_index".into()];
        if self.variant == Variant::Cifar100 {
            v.push("coarse_label".into());
        }
        v
    }
    fn read(&mut self, start: usize, end: usize) -> Result<Vec<Outcome>> {
        let off = match self.variant {
            Variant::Cifar10 => 1,
            Variant::Cifar100 => 2,
        };
        Ok(self.records[start..end]
            .iter()
            .map(|(file, i, r)| {
                let planes = &r[off..];
                let mut px = vec![0u8; PIXELS];
                for p in 0..1024 {
                    for ch in 0..3 {
                        px[p * 3 + ch] = planes[ch * 1024 + p];
                    }
                }
                let mut meta = vec![
                    file.file_name()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    i.to_string(),
                ];
                if self.variant == Variant::Cifar100 {
                    meta.push(r[0].to_string());
                }
                Outcome::Ok(Item {
                    height: 32,
                    width: 32,
                    pixels: px,
                    label: r[off - 1] as i64,
                    meta,
                })
            })
            .collect())
    }
}
