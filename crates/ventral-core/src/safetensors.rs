//! The safetensors format (Hugging Face): an 8-byte little-endian header length, a JSON header
//! `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {..}}`, then raw
//! little-endian data. Used to exchange weights with PyTorch.
//!
//! Reading validates the header against the file (bounds, sizes) and names the file in every
//! error. Writing is deterministic (tensors sorted by name, no timestamps) and atomic.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Errors reading or writing safetensors files.
#[derive(Debug, Error)]
pub enum SafetensorsError {
    #[error("{}: {error}", path.display())]
    Io {
        path: PathBuf,
        /// The I/O error, in the message (not a separate `source`, so error chains print it once).
        error: std::io::Error,
    },
    #[error("{}: not a valid safetensors file: {msg}", path.display())]
    Format { path: PathBuf, msg: String },
    #[error("{}: {msg}", path.display())]
    Tensor { path: PathBuf, msg: String },
    #[error("{}: not a PyTorch state dict ventral can read: {msg}", path.display())]
    Pth { path: PathBuf, msg: String },
    #[error("{}: not a TensorFlow checkpoint ventral can read: {msg}", path.display())]
    Tf { path: PathBuf, msg: String },
}

/// Element types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    F32,
    F64,
    F16,
    BF16,
    I64,
    I32,
    U8,
    Bool,
}

impl Dtype {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "F32" => Self::F32,
            "F64" => Self::F64,
            "F16" => Self::F16,
            "BF16" => Self::BF16,
            "I64" => Self::I64,
            "I32" => Self::I32,
            "U8" => Self::U8,
            "BOOL" => Self::Bool,
            _ => return None,
        })
    }
    /// The header name.
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "F32",
            Self::F64 => "F64",
            Self::F16 => "F16",
            Self::BF16 => "BF16",
            Self::I64 => "I64",
            Self::I32 => "I32",
            Self::U8 => "U8",
            Self::Bool => "BOOL",
        }
    }
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Self::F64 | Self::I64 => 8,
            Self::F32 | Self::I32 => 4,
            Self::F16 | Self::BF16 => 2,
            Self::U8 | Self::Bool => 1,
        }
    }
}

/// One tensor's header entry.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    /// Byte range in the data section.
    pub start: usize,
    pub end: usize,
}

/// A safetensors file read into memory.
#[derive(Debug)]
pub struct SafeTensors {
    path: PathBuf,
    bytes: Vec<u8>,
    data_start: usize,
    tensors: BTreeMap<String, TensorInfo>,
    metadata: BTreeMap<String, String>,
}

fn half_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as i32;
    let mant = (h & 0x3ff) as u32;
    let bits = if exp == 0 {
        if mant == 0 {
            sign
        } else {
            // subnormal
            let mut e = -14i32;
            let mut m = mant;
            while m & 0x400 == 0 {
                m <<= 1;
                e -= 1;
            }
            sign | (((e + 127) as u32) << 23) | ((m & 0x3ff) << 13)
        }
    } else if exp == 31 {
        sign | 0x7f80_0000 | (mant << 13)
    } else {
        sign | (((exp - 15 + 127) as u32) << 23) | (mant << 13)
    };
    f32::from_bits(bits)
}

impl SafeTensors {
    /// Read and validate `path`: a safetensors file, a PyTorch checkpoint written by
    /// `torch.save` (a zip archive: its state dict, read by [`crate::pth`]), told apart by the
    /// file's first bytes before the rest is read, or a TensorFlow checkpoint named by its
    /// prefix, `.index` or a data shard ([`crate::tf_checkpoint`], under TensorFlow's names).
    pub fn read(path: &Path) -> Result<Self, SafetensorsError> {
        if crate::tf_checkpoint::prefix_of(path).is_some() {
            return crate::tf_checkpoint::read(path);
        }
        let io = |error| SafetensorsError::Io {
            path: path.to_path_buf(),
            error,
        };
        let mut f = std::fs::File::open(path).map_err(io)?;
        let mut bytes = Vec::new();
        (&mut f)
            .take(crate::pth::LEGACY_MAGIC.len() as u64)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        if bytes.starts_with(crate::pth::ZIP_MAGIC) {
            return crate::pth::read(path);
        }
        if bytes.starts_with(crate::pth::LEGACY_MAGIC) {
            return Err(SafetensorsError::Pth {
                path: path.to_path_buf(),
                msg: "PyTorch's legacy serialisation (before 1.6), which is not read: load it \
                      in PyTorch and save it again with torch.save (the zip format), or as \
                      safetensors"
                    .into(),
            });
        }
        f.read_to_end(&mut bytes).map_err(io)?;
        Self::parse(bytes, path)
    }

    /// The first `n` bytes of the file at `path` (fewer when it is shorter): what a reader of
    /// weights tells the formats apart by.
    pub fn head(path: &Path, n: usize) -> Result<Vec<u8>, SafetensorsError> {
        let mut bytes = Vec::with_capacity(n);
        std::fs::File::open(path)
            .and_then(|f| f.take(n as u64).read_to_end(&mut bytes))
            .map_err(|error| SafetensorsError::Io {
                path: path.to_path_buf(),
                error,
            })?;
        Ok(bytes)
    }

    /// Parse bytes; `path` labels errors.
    pub fn parse(bytes: Vec<u8>, path: &Path) -> Result<Self, SafetensorsError> {
        let fmt = |msg: String| SafetensorsError::Format {
            path: path.to_path_buf(),
            msg,
        };
        if bytes.len() < 8 {
            return Err(fmt(format!(
                "{} bytes is shorter than the 8-byte header length",
                bytes.len()
            )));
        }
        let hlen = u64::from_le_bytes(bytes[..8].try_into().unwrap_or([0; 8])) as usize;
        if hlen > bytes.len() - 8 {
            return Err(fmt(format!(
                "header claims {hlen} bytes but the file has only {} after the length field (truncated?)",
                bytes.len() - 8
            )));
        }
        let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + hlen])
            .map_err(|e| fmt(format!("header is not JSON: {e}")))?;
        let obj = header
            .as_object()
            .ok_or_else(|| fmt("header is not a JSON object".into()))?;
        let data_start = 8 + hlen;
        let data_len = bytes.len() - data_start;
        let mut tensors = BTreeMap::new();
        let mut metadata = BTreeMap::new();
        for (name, v) in obj {
            if name == "__metadata__" {
                if let Some(m) = v.as_object() {
                    for (k, val) in m {
                        metadata.insert(k.clone(), val.as_str().unwrap_or_default().to_string());
                    }
                }
                continue;
            }
            let bad = |what: &str| fmt(format!("tensor '{name}': {what}"));
            let dtype_s = v["dtype"].as_str().ok_or_else(|| bad("no dtype"))?;
            let dtype = Dtype::parse(dtype_s)
                .ok_or_else(|| bad(&format!("unsupported dtype {dtype_s}")))?;
            let shape: Vec<usize> = v["shape"]
                .as_array()
                .ok_or_else(|| bad("no shape"))?
                .iter()
                .map(|d| d.as_u64().map(|d| d as usize))
                .collect::<Option<_>>()
                .ok_or_else(|| bad("shape is not a list of integers"))?;
            let offs = v["data_offsets"]
                .as_array()
                .ok_or_else(|| bad("no data_offsets"))?;
            let (start, end) = match (
                offs.first().and_then(|x| x.as_u64()),
                offs.get(1).and_then(|x| x.as_u64()),
            ) {
                (Some(a), Some(b)) if offs.len() == 2 => (a as usize, b as usize),
                _ => return Err(bad("data_offsets must be [begin, end]")),
            };
            let n = shape
                .iter()
                .try_fold(dtype.size(), |a, &d| a.checked_mul(d))
                .ok_or_else(|| bad("shape overflows"))?;
            if end < start || end - start != n {
                return Err(bad(&format!(
                    "shape {shape:?} of {dtype_s} needs {n} bytes but data_offsets span {}",
                    end.saturating_sub(start)
                )));
            }
            if end > data_len {
                return Err(bad(&format!(
                    "data ends at byte {end} but the data section has {data_len} bytes (truncated?)"
                )));
            }
            tensors.insert(
                name.clone(),
                TensorInfo {
                    dtype,
                    shape,
                    start,
                    end,
                },
            );
        }
        Ok(Self {
            path: path.to_path_buf(),
            bytes,
            data_start,
            tensors,
            metadata,
        })
    }

    /// The file read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Tensor names (sorted).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// Header entry of `name`.
    pub fn info(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.get(name)
    }

    /// `__metadata__` entries.
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    fn raw(&self, name: &str) -> Result<(&TensorInfo, &[u8]), SafetensorsError> {
        let info = self
            .tensors
            .get(name)
            .ok_or_else(|| SafetensorsError::Tensor {
                path: self.path.clone(),
                msg: format!("no tensor named '{name}'"),
            })?;
        Ok((
            info,
            &self.bytes[self.data_start + info.start..self.data_start + info.end],
        ))
    }

    /// Tensor `name` as f32 (floats converted; integers cast), with its shape.
    pub fn f32(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>), SafetensorsError> {
        let (info, raw) = self.raw(name)?;
        let v: Vec<f32> = match info.dtype {
            Dtype::F32 => raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Dtype::F64 => raw
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32)
                .collect(),
            Dtype::F16 => raw
                .chunks_exact(2)
                .map(|c| half_to_f32(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
            Dtype::BF16 => raw
                .chunks_exact(2)
                .map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16))
                .collect(),
            Dtype::I64 => raw
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32)
                .collect(),
            Dtype::I32 => raw
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32)
                .collect(),
            Dtype::U8 | Dtype::Bool => raw.iter().map(|&b| b as f32).collect(),
        };
        Ok((info.shape.clone(), v))
    }

    /// Integer tensor `name` as i64.
    pub fn i64(&self, name: &str) -> Result<(Vec<usize>, Vec<i64>), SafetensorsError> {
        let (info, raw) = self.raw(name)?;
        let v: Vec<i64> = match info.dtype {
            Dtype::I64 => raw
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect(),
            Dtype::I32 => raw
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64)
                .collect(),
            Dtype::U8 | Dtype::Bool => raw.iter().map(|&b| b as i64).collect(),
            d => {
                return Err(SafetensorsError::Tensor {
                    path: self.path.clone(),
                    msg: format!("tensor '{name}' is {}, expected an integer type", d.name()),
                });
            }
        };
        Ok((info.shape.clone(), v))
    }
}

/// A tensor to write: f32 or i64 data with a shape.
#[derive(Debug, Clone)]
pub enum TensorOut<'a> {
    F32(&'a [usize], &'a [f32]),
    I64(&'a [usize], &'a [i64]),
}

/// Serialise tensors (sorted by name) and metadata; deterministic bytes.
pub fn to_bytes(
    tensors: &BTreeMap<String, TensorOut<'_>>,
    metadata: &BTreeMap<String, String>,
) -> Vec<u8> {
    let entries = tensors.iter().map(|(name, t)| match t {
        TensorOut::F32(s, d) => (name.as_str(), Dtype::F32, *s, d.len() * 4),
        TensorOut::I64(s, d) => (name.as_str(), Dtype::I64, *s, d.len() * 8),
    });
    serialise(entries, metadata, |out| {
        for t in tensors.values() {
            match t {
                TensorOut::F32(_, d) => d
                    .iter()
                    .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
                TensorOut::I64(_, d) => d
                    .iter()
                    .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            }
        }
    })
}

/// The file's bytes: the header of `entries` (name, dtype, shape, data bytes; the data laid
/// out in this order) and `metadata`, padded to 8 bytes, then what `data` appends.
pub(crate) fn serialise<'a>(
    entries: impl Iterator<Item = (&'a str, Dtype, &'a [usize], usize)>,
    metadata: &BTreeMap<String, String>,
    data: impl FnOnce(&mut Vec<u8>),
) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    if !metadata.is_empty() {
        header.insert("__metadata__".into(), serde_json::json!(metadata));
    }
    let mut offset = 0usize;
    for (name, dtype, shape, n) in entries {
        header.insert(
            name.to_string(),
            serde_json::json!({"dtype": dtype.name(), "shape": shape, "data_offsets": [offset, offset + n]}),
        );
        offset += n;
    }
    let mut h = serde_json::to_vec(&serde_json::Value::Object(header)).unwrap_or_default();
    while !(8 + h.len()).is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + h.len() + offset);
    out.extend_from_slice(&(h.len() as u64).to_le_bytes());
    out.extend_from_slice(&h);
    data(&mut out);
    out
}

/// Write tensors atomically.
pub fn write(
    path: &Path,
    tensors: &BTreeMap<String, TensorOut<'_>>,
    metadata: &BTreeMap<String, String>,
) -> Result<(), SafetensorsError> {
    let bytes = to_bytes(tensors, metadata);
    crate::atomic::write_atomic(path, |w| w.write_all(&bytes)).map_err(|error| {
        SafetensorsError::Io {
            path: path.to_path_buf(),
            error,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_truncation() {
        let w = [1.0f32, -2.5, 3.0, 4.0, 5.0, 6.0];
        let l = [7i64, -1];
        let mut t = BTreeMap::new();
        t.insert("layer.weight".to_string(), TensorOut::F32(&[2, 3], &w));
        t.insert("labels".to_string(), TensorOut::I64(&[2], &l));
        let mut m = BTreeMap::new();
        m.insert("k".to_string(), "v".to_string());
        let bytes = to_bytes(&t, &m);
        assert_eq!(
            (8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize) % 8,
            0
        );
        let st = SafeTensors::parse(bytes.clone(), Path::new("w.safetensors")).unwrap();
        assert_eq!(st.f32("layer.weight").unwrap(), (vec![2, 3], w.to_vec()));
        assert_eq!(st.i64("labels").unwrap(), (vec![2], l.to_vec()));
        assert_eq!(st.metadata()["k"], "v");
        let e = st.f32("nope").unwrap_err().to_string();
        assert!(e.contains("w.safetensors") && e.contains("nope"), "{e}");
        for cut in [0, 5, 8, 20, bytes.len() - 1] {
            let e = SafeTensors::parse(bytes[..cut].to_vec(), Path::new("w.safetensors"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("w.safetensors"), "{e}");
        }
    }

    #[test]
    fn half_floats() {
        assert_eq!(half_to_f32(0x3c00), 1.0);
        assert_eq!(half_to_f32(0xc000), -2.0);
        assert_eq!(half_to_f32(0x0001), 5.960_464_5e-8);
    }
}
