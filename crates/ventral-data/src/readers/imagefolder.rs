//! ImageFolder trees: `ROOT/<class>/**/*.{jpg,jpeg,png}` (extensions case-insensitive), classes
//! in lexicographic order as torchvision does. Ecoset-style class folders `NNNN_name` give the
//! class name `name`. A root holding `train/`, `val/`, `test/` (or `testplus/`) folders of class
//! folders is read as a split tree; the class list is the union over splits so labels agree.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::error::{Result, invalid, io_at};
use crate::image_ops::decode_rgb;
use crate::pack::{Item, Outcome, SourceSet, SplitSource};
use crate::packed::SPLIT_ORDER;

/// One split of an ImageFolder tree.
#[derive(Debug)]
pub struct FolderSplit {
    name: String,
    root: PathBuf,
    files: Vec<(PathBuf, i64)>,
}

fn is_image(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .map(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png"))
        .unwrap_or(false)
}

fn subdirs(p: &Path) -> Result<Vec<String>> {
    let mut v = Vec::new();
    for e in fs::read_dir(p).map_err(io_at(p))? {
        let e = e.map_err(io_at(p))?;
        if e.file_type().map_err(io_at(e.path()))?.is_dir() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') {
                v.push(name);
            }
        }
    }
    v.sort();
    Ok(v)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .map_err(io_at(dir))?
        .collect::<std::result::Result<_, _>>()
        .map_err(io_at(dir))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        let ft = e.file_type().map_err(io_at(&p))?;
        if ft.is_dir() {
            walk(&p, out)?;
        } else if is_image(&p) {
            out.push(p);
        }
    }
    Ok(())
}

/// The class name of a class folder: ecoset's `0001_cat` gives `cat`.
pub fn class_name(folder: &str) -> String {
    match folder.split_once('_') {
        Some((num, rest))
            if !num.is_empty() && num.bytes().all(|b| b.is_ascii_digit()) && !rest.is_empty() =>
        {
            rest.to_string()
        }
        _ => folder.to_string(),
    }
}

/// Open an ImageFolder tree.
pub fn open(root: &Path, split: Option<&str>) -> Result<SourceSet<FolderSplit>> {
    let top = subdirs(root)?;
    let split_dirs: Vec<String> = top
        .iter()
        .filter(|d| SPLIT_ORDER.contains(&d.as_str()))
        .cloned()
        .collect();
    let is_tree = !split_dirs.is_empty()
        && split_dirs.iter().all(|d| {
            subdirs(&root.join(d))
                .map(|s| !s.is_empty())
                .unwrap_or(false)
        });
    let layout: Vec<(String, PathBuf)> = if is_tree {
        let chosen: Vec<String> = match split {
            Some(s) if split_dirs.iter().any(|d| d == s) => vec![s.to_string()],
            Some(s) => {
                return Err(invalid(
                    root,
                    format!("no split folder '{s}' (found: {})", split_dirs.join(", ")),
                ));
            }
            None => split_dirs,
        };
        chosen
            .into_iter()
            .map(|s| (s.clone(), root.join(s)))
            .collect()
    } else {
        vec![(split.unwrap_or("train").to_string(), root.to_path_buf())]
    };
    // Class folders: union over splits, sorted.
    let mut folders = BTreeSet::new();
    for (_, dir) in &layout {
        folders.extend(subdirs(dir)?);
    }
    if folders.is_empty() {
        return Err(invalid(
            root,
            "no class folders found (expected ROOT/<class>/<image>.jpg)",
        ));
    }
    let folders: Vec<String> = folders.into_iter().collect();
    let class_names: Vec<String> = folders.iter().map(|f| class_name(f)).collect();
    let mut splits = Vec::new();
    for (name, dir) in layout {
        let mut files = Vec::new();
        for (k, f) in folders.iter().enumerate() {
            let cdir = dir.join(f);
            if !cdir.is_dir() {
                continue;
            }
            let mut found = Vec::new();
            walk(&cdir, &mut found)?;
            files.extend(found.into_iter().map(|p| (p, k as i64)));
        }
        if files.is_empty() {
            return Err(invalid(
                &dir,
                "no .jpg, .jpeg or .png files in any class folder",
            ));
        }
        splits.push(FolderSplit {
            name,
            root: dir,
            files,
        });
    }
    let mut source = BTreeMap::new();
    source.insert("format".into(), "imagefolder".into());
    source.insert("path".into(), root.display().to_string());
    Ok(SourceSet {
        splits,
        class_names,
        normalization: None,
        source,
    })
}

impl SplitSource for FolderSplit {
    fn name(&self) -> &str {
        &self.name
    }
    fn len(&self) -> usize {
        self.files.len()
    }
    fn channels(&self) -> usize {
        3
    }
    fn native_size(&self) -> Option<(usize, usize)> {
        None
    }
    fn meta_columns(&self) -> Vec<String> {
        vec![
            "source_path".into(),
            "original_height".into(),
            "original_width".into(),
        ]
    }
    fn read(&mut self, start: usize, end: usize) -> Result<Vec<Outcome>> {
        let root = &self.root;
        Ok(self.files[start..end]
            .par_iter()
            .map(|(p, label)| {
                let rel = p.strip_prefix(root).unwrap_or(p).display().to_string();
                let bytes = match fs::read(p) {
                    Ok(b) => b,
                    Err(e) => return Outcome::Rejected(p.display().to_string(), e.to_string()),
                };
                match decode_rgb(&bytes) {
                    Ok((h, w, pixels)) => Outcome::Ok(Item {
                        height: h,
                        width: w,
                        pixels,
                        label: *label,
                        meta: vec![rel, h.to_string(), w.to_string()],
                    }),
                    Err(e) => Outcome::Rejected(p.display().to_string(), e),
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::class_name;

    #[test]
    fn ecoset_folder_names() {
        assert_eq!(class_name("0001_cat"), "cat");
        assert_eq!(class_name("0420_ice_cream"), "ice_cream");
        assert_eq!(class_name("cat"), "cat");
        assert_eq!(class_name("n01_x"), "n01_x");
        assert_eq!(class_name("12_"), "12_");
    }
}
