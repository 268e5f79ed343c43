//! BrainIO stimulus sets: a CSV with a header (`stimulus_id` — legacy `image_id` — and
//! `filename`, other columns are metadata) and a ZIP holding the files.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{Result, file_err};

/// The largest a stimulus file may inflate to (declared or actual), so that a small ZIP whose
/// member decompresses to gigabytes fails before it is read whole. A 4096 × 4096 RGBA PNG is
/// 64 MiB raw; compressed stimulus images are far smaller.
pub const MAX_MEMBER_BYTES: u64 = 256 << 20;

/// Read one ZIP member, refusing it when its declared size or the bytes actually inflated
/// exceed [`MAX_MEMBER_BYTES`] (a lying header does not help: the read stops at the limit).
fn read_member<R: std::io::Read + std::io::Seek>(
    archive: &mut zip::ZipArchive<R>,
    name: &str,
    label: &str,
) -> Result<Vec<u8>> {
    let member = archive.by_name(name).map_err(|e| file_err(label, e))?;
    let too_big = |n: u64| {
        file_err(
            label,
            format!(
                "member '{name}' inflates to {n} bytes or more, over the limit of {} MiB \
                 for one stimulus file (a ZIP bomb or not a stimulus set)",
                MAX_MEMBER_BYTES >> 20
            ),
        )
    };
    if member.size() > MAX_MEMBER_BYTES {
        return Err(too_big(member.size()));
    }
    let mut bytes = Vec::with_capacity(member.size() as usize);
    member
        .take(MAX_MEMBER_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| file_err(label, format!("member '{name}': {e}")))?;
    if bytes.len() as u64 > MAX_MEMBER_BYTES {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

/// A stimulus set's table, and where its files are.
#[derive(Debug, Clone)]
pub struct StimulusSet {
    pub csv: PathBuf,
    pub zip: Option<PathBuf>,
    /// Column names in file order.
    pub columns: Vec<String>,
    /// Stimulus ids in row order.
    pub ids: Vec<String>,
    /// Rows by column name.
    pub rows: Vec<BTreeMap<String, String>>,
}

impl StimulusSet {
    /// Read the CSV (and check the ZIP, when given, holds every file named).
    pub fn read(csv_path: &Path, zip_path: Option<&Path>) -> Result<Self> {
        let label = csv_path.display().to_string();
        let mut r = csv::Reader::from_path(csv_path).map_err(|e| file_err(&label, e))?;
        let columns: Vec<String> = r
            .headers()
            .map_err(|e| file_err(&label, e))?
            .iter()
            .map(String::from)
            .collect();
        let id_col = ["stimulus_id", "image_id"]
            .into_iter()
            .find(|c| columns.iter().any(|h| h == c))
            .ok_or_else(|| {
                file_err(
                    &label,
                    format!(
                        "no 'stimulus_id' (or legacy 'image_id') column; columns: {}",
                        columns.join(", ")
                    ),
                )
            })?;
        if !columns.iter().any(|h| h == "filename") {
            return Err(file_err(&label, "no 'filename' column"));
        }
        let mut rows = Vec::new();
        let mut ids = Vec::new();
        let mut seen = HashSet::new();
        for (i, rec) in r.records().enumerate() {
            let rec = rec.map_err(|e| file_err(&label, e))?;
            let row: BTreeMap<String, String> = columns
                .iter()
                .cloned()
                .zip(rec.iter().map(String::from))
                .collect();
            let id = row.get(id_col).cloned().unwrap_or_default();
            if id.is_empty() {
                return Err(file_err(
                    &label,
                    format!("row {} has an empty {id_col}", i + 2),
                ));
            }
            if !seen.insert(id.clone()) {
                return Err(file_err(
                    &label,
                    format!("{id_col} '{id}' appears twice (row {})", i + 2),
                ));
            }
            ids.push(id);
            rows.push(row);
        }
        if let Some(z) = zip_path {
            let zl = z.display().to_string();
            let f = std::fs::File::open(z).map_err(|e| file_err(&zl, e))?;
            let archive = zip::ZipArchive::new(f).map_err(|e| file_err(&zl, e))?;
            let names: HashSet<String> = archive
                .file_names()
                .filter_map(|n| n.ok())
                .map(|n| n.rsplit('/').next().unwrap_or(&n).to_string())
                .collect();
            for row in &rows {
                let f = row.get("filename").map(String::as_str).unwrap_or_default();
                let base = f.rsplit('/').next().unwrap_or(f);
                if !names.contains(base) {
                    return Err(file_err(
                        &zl,
                        format!("has no file '{f}' (listed in {label})"),
                    ));
                }
            }
        }
        Ok(Self {
            csv: csv_path.to_path_buf(),
            zip: zip_path.map(Path::to_path_buf),
            columns,
            ids,
            rows,
        })
    }

    /// Bytes of the file of stimulus `id` from the ZIP.
    pub fn file_bytes(&self, id: &str) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.for_each_file(&[id.to_string()], |_, _, bytes| {
            out = bytes;
            Ok(())
        })?;
        Ok(out)
    }

    /// Calls `f(index, filename, bytes)` for the file of each of `ids`, in order, opening the
    /// ZIP once.
    pub fn for_each_file(
        &self,
        ids: &[String],
        mut f: impl FnMut(usize, &str, Vec<u8>) -> Result<()>,
    ) -> Result<()> {
        let z = self
            .zip
            .as_ref()
            .ok_or_else(|| file_err(self.csv.display(), "no ZIP given for this stimulus set"))?;
        let zl = z.display().to_string();
        let file = std::fs::File::open(z).map_err(|e| file_err(&zl, e))?;
        let mut archive = zip::ZipArchive::new(file).map_err(|e| file_err(&zl, e))?;
        let by_base: std::collections::HashMap<String, String> = archive
            .file_names()
            .filter_map(|n| n.ok())
            .map(|n| {
                (
                    n.rsplit('/').next().unwrap_or(&n).to_string(),
                    n.to_string(),
                )
            })
            .collect();
        let row_of: std::collections::HashMap<&str, usize> = self
            .ids
            .iter()
            .enumerate()
            .map(|(i, s)| (s.as_str(), i))
            .collect();
        for (k, id) in ids.iter().enumerate() {
            let i = *row_of
                .get(id.as_str())
                .ok_or_else(|| file_err(self.csv.display(), format!("no stimulus '{id}'")))?;
            let fname = self.rows[i].get("filename").cloned().unwrap_or_default();
            let base = fname.rsplit('/').next().unwrap_or(&fname);
            let name = by_base
                .get(base)
                .ok_or_else(|| file_err(&zl, format!("has no file '{fname}'")))?;
            let bytes = read_member(&mut archive, name, &zl)?;
            f(k, &fname, bytes)?;
        }
        Ok(())
    }
}
