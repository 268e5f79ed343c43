//! NumPy `.npy` and `.npz` reading and writing.
//!
//! Supports the dtypes the PyTorch/NumPy stack writes for images, labels, activations and
//! identifiers: bool, (u)int8/16/32/64, float32/64 (either byte order), fixed-width bytes `S`
//! and fixed-width unicode `U`. Fortran-ordered arrays are converted to C order on read.
//! Pickled object arrays cannot be read (NumPy's `allow_pickle`); the error says so.
//!
//! `.npz` files are ZIP archives of `.npy` members; [`NpzWriter`] can stream an array of known
//! shape chunk by chunk so large recordings never sit in memory.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Errors reading or writing npy/npz data. Every variant names the file (and member).
#[derive(Debug, Error)]
pub enum NpyError {
    #[error("{path}: {error}")]
    Io {
        path: String,
        /// The I/O error, in the message (not a separate `source`, so error chains print it once).
        error: io::Error,
    },
    #[error("{path}: not a valid .npy array: {msg}")]
    Format { path: String, msg: String },
    #[error("{path}: not a valid .npz archive: {msg}")]
    Zip { path: String, msg: String },
    #[error("{path}: no array named '{name}' (found: {found})")]
    Missing {
        path: String,
        name: String,
        found: String,
    },
}

/// Element type of an array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    Bool,
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    U64,
    I64,
    F32,
    F64,
    /// Fixed-width bytes (`|S<n>`).
    Bytes(usize),
    /// Fixed-width UTF-32 (`<U<n>`).
    Unicode(usize),
}

impl DType {
    /// Size of one element in bytes.
    pub fn size(self) -> usize {
        match self {
            DType::Bool | DType::U8 | DType::I8 => 1,
            DType::U16 | DType::I16 => 2,
            DType::U32 | DType::I32 | DType::F32 => 4,
            DType::U64 | DType::I64 | DType::F64 => 8,
            DType::Bytes(n) => n,
            DType::Unicode(n) => 4 * n,
        }
    }

    /// The little-endian numpy descr string.
    pub fn descr(self) -> String {
        match self {
            DType::Bool => "|b1".into(),
            DType::U8 => "|u1".into(),
            DType::I8 => "|i1".into(),
            DType::U16 => "<u2".into(),
            DType::I16 => "<i2".into(),
            DType::U32 => "<u4".into(),
            DType::I32 => "<i4".into(),
            DType::U64 => "<u8".into(),
            DType::I64 => "<i8".into(),
            DType::F32 => "<f4".into(),
            DType::F64 => "<f8".into(),
            DType::Bytes(n) => format!("|S{n}"),
            DType::Unicode(n) => format!("<U{n}"),
        }
    }

    /// Parse a numpy descr; returns the dtype and whether the data are big-endian.
    fn parse(descr: &str) -> Result<(DType, bool), String> {
        let (order, rest) = match descr.chars().next() {
            Some(c @ ('<' | '>' | '|' | '=')) => (c, &descr[1..]),
            _ => ('=', descr),
        };
        let big = order == '>';
        // The kind is one character (which may be any UTF-8 character in a corrupt header).
        let (kind, width) = rest.split_at(rest.chars().next().map_or(0, char::len_utf8));
        if kind == "O" {
            return Err(
                "dtype=object (pickled) arrays cannot be read; save numeric or fixed-width string arrays".into(),
            );
        }
        let n: usize = width
            .parse()
            .map_err(|_| format!("unsupported dtype '{descr}'"))?;
        let dt = match (kind, n) {
            ("b", 1) => DType::Bool,
            ("u", 1) => DType::U8,
            ("i", 1) => DType::I8,
            ("u", 2) => DType::U16,
            ("i", 2) => DType::I16,
            ("u", 4) => DType::U32,
            ("i", 4) => DType::I32,
            ("u", 8) => DType::U64,
            ("i", 8) => DType::I64,
            ("f", 4) => DType::F32,
            ("f", 8) => DType::F64,
            ("S", n) => DType::Bytes(n),
            ("U", n) => DType::Unicode(n),
            _ => return Err(format!("unsupported dtype '{descr}'")),
        };
        Ok((dt, big))
    }
}

/// Array data, in C order.
#[derive(Debug, Clone, PartialEq)]
pub enum NpyData {
    Bool(Vec<bool>),
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    /// Fixed-width byte strings, trailing NULs stripped.
    Bytes {
        width: usize,
        values: Vec<Vec<u8>>,
    },
    /// Fixed-width unicode strings, trailing NULs stripped.
    Unicode {
        width: usize,
        values: Vec<String>,
    },
}

/// An n-dimensional array read from or written to `.npy`.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    pub shape: Vec<usize>,
    pub data: NpyData,
}

macro_rules! numeric_conv {
    ($self:ident, $t:ty) => {
        match &$self.data {
            NpyData::Bool(v) => Some(v.iter().map(|&x| (x as u8) as $t).collect()),
            NpyData::U8(v) => Some(v.iter().map(|&x| x as $t).collect()),
            NpyData::I8(v) => Some(v.iter().map(|&x| x as $t).collect()),
            NpyData::U16(v) => Some(v.iter().map(|&x| x as $t).collect()),
            NpyData::I16(v) => Some(v.iter().map(|&x| x as $t).collect()),
            NpyData::U32(v) => Some(v.iter().map(|&x| x as $t).collect()),
            NpyData::I32(v) => Some(v.iter().map(|&x| x as $t).collect()),
            NpyData::U64(v) => Some(v.iter().map(|&x| x as $t).collect()),
            NpyData::I64(v) => Some(v.iter().map(|&x| x as $t).collect()),
            NpyData::F32(v) => Some(v.iter().map(|&x| x as $t).collect()),
            NpyData::F64(v) => Some(v.iter().map(|&x| x as $t).collect()),
            NpyData::Bytes { .. } | NpyData::Unicode { .. } => None,
        }
    };
}

impl NpyArray {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// True when the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        match &self.data {
            NpyData::Bool(_) => DType::Bool,
            NpyData::U8(_) => DType::U8,
            NpyData::I8(_) => DType::I8,
            NpyData::U16(_) => DType::U16,
            NpyData::I16(_) => DType::I16,
            NpyData::U32(_) => DType::U32,
            NpyData::I32(_) => DType::I32,
            NpyData::U64(_) => DType::U64,
            NpyData::I64(_) => DType::I64,
            NpyData::F32(_) => DType::F32,
            NpyData::F64(_) => DType::F64,
            NpyData::Bytes { width, .. } => DType::Bytes(*width),
            NpyData::Unicode { width, .. } => DType::Unicode(*width),
        }
    }

    /// True for float dtypes.
    pub fn is_float(&self) -> bool {
        matches!(self.dtype(), DType::F32 | DType::F64)
    }

    /// Values converted to f64 (None for string arrays).
    pub fn to_f64(&self) -> Option<Vec<f64>> {
        numeric_conv!(self, f64)
    }

    /// Values converted to f32 (None for string arrays).
    pub fn to_f32(&self) -> Option<Vec<f32>> {
        numeric_conv!(self, f32)
    }

    /// Values as f32, moving the buffer when the array already is float32 (no copy).
    pub fn into_f32(self) -> Option<Vec<f32>> {
        match self.data {
            NpyData::F32(v) => Some(v),
            _ => self.to_f32(),
        }
    }

    /// Integer values as i64; None for strings, or for floats that are not whole numbers.
    pub fn to_i64(&self) -> Option<Vec<i64>> {
        match &self.data {
            NpyData::F32(v) => v
                .iter()
                .map(|&x| (x.fract() == 0.0 && x.is_finite()).then_some(x as i64))
                .collect(),
            NpyData::F64(v) => v
                .iter()
                .map(|&x| (x.fract() == 0.0 && x.is_finite()).then_some(x as i64))
                .collect(),
            _ => numeric_conv!(self, i64),
        }
    }

    /// String values (for `S` and `U` arrays).
    pub fn to_strings(&self) -> Option<Vec<String>> {
        match &self.data {
            NpyData::Bytes { values, .. } => Some(
                values
                    .iter()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .collect(),
            ),
            NpyData::Unicode { values, .. } => Some(values.clone()),
            _ => None,
        }
    }

    /// A 1-D fixed-width byte-string array (`|S<width>`, width = the longest string, at
    /// least 1), the form NumPy gives `np.array(ids, dtype=bytes)`.
    pub fn from_strings(values: &[String]) -> Self {
        let width = values.iter().map(String::len).max().unwrap_or(0).max(1);
        NpyArray {
            shape: vec![values.len()],
            data: NpyData::Bytes {
                width,
                values: values.iter().map(|s| s.as_bytes().to_vec()).collect(),
            },
        }
    }

    /// Construct from a shape and data; fails when the sizes disagree.
    pub fn new(shape: Vec<usize>, data: NpyData) -> Result<Self, String> {
        let a = NpyArray { shape, data };
        let n = match &a.data {
            NpyData::Bool(v) => v.len(),
            NpyData::U8(v) => v.len(),
            NpyData::I8(v) => v.len(),
            NpyData::U16(v) => v.len(),
            NpyData::I16(v) => v.len(),
            NpyData::U32(v) => v.len(),
            NpyData::I32(v) => v.len(),
            NpyData::U64(v) => v.len(),
            NpyData::I64(v) => v.len(),
            NpyData::F32(v) => v.len(),
            NpyData::F64(v) => v.len(),
            NpyData::Bytes { values, .. } => values.len(),
            NpyData::Unicode { values, .. } => values.len(),
        };
        if n != a.len() {
            return Err(format!(
                "shape {:?} holds {} elements but {} were given",
                a.shape,
                a.len(),
                n
            ));
        }
        Ok(a)
    }

    /// Serialise to `.npy` bytes (format 1.0, or 2.0 for very long headers).
    pub fn write_to<W: Write>(&self, w: &mut W) -> io::Result<()> {
        write_header(w, self.dtype(), &self.shape)?;
        write_data(w, &self.data)
    }

    /// Serialise to a byte vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        // Writing to a Vec cannot fail.
        let _ = self.write_to(&mut v);
        v
    }
}

/// The `.npy` header for an array of `dtype` and `shape`.
pub fn header_bytes(dtype: DType, shape: &[usize]) -> Vec<u8> {
    let shape_str = match shape.len() {
        1 => format!("({},)", shape[0]),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
        dtype.descr(),
        shape_str
    );
    // Pad with spaces so that magic + len + dict + '\n' is a multiple of 64.
    let (version, len_bytes) = if dict.len() + 11 < 65535 {
        (1u8, 2usize)
    } else {
        (2u8, 4usize)
    };
    let pre = 6 + 2 + len_bytes;
    let total = (pre + dict.len() + 1).div_ceil(64) * 64;
    let hlen = total - pre;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(b"\x93NUMPY");
    out.push(version);
    out.push(0);
    if len_bytes == 2 {
        out.extend_from_slice(&(hlen as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(hlen as u32).to_le_bytes());
    }
    out.extend_from_slice(dict.as_bytes());
    out.resize(total - 1, b' ');
    out.push(b'\n');
    out
}

/// The `.npy` header padded to exactly `total` bytes (for headers rewritten in place once the
/// final shape is known). None when the header does not fit or `total` is not a multiple of 64.
pub fn header_bytes_padded(dtype: DType, shape: &[usize], total: usize) -> Option<Vec<u8>> {
    let h = header_bytes(dtype, shape);
    if h.len() > total || !total.is_multiple_of(64) || total - 10 > u16::MAX as usize || h[6] != 1 {
        return None;
    }
    let mut out = h[..h.len() - 1].to_vec();
    out.resize(total - 1, b' ');
    out.push(b'\n');
    let hlen = (total - 10) as u16;
    out[8..10].copy_from_slice(&hlen.to_le_bytes());
    Some(out)
}

fn write_header<W: Write>(w: &mut W, dtype: DType, shape: &[usize]) -> io::Result<()> {
    w.write_all(&header_bytes(dtype, shape))
}

/// Elements that can be written as raw little-endian npy data.
pub trait Element: Copy {
    const DTYPE: DType;
    fn write_slice<W: Write>(v: &[Self], w: &mut W) -> io::Result<()>;
}

macro_rules! element {
    ($t:ty, $d:expr) => {
        impl Element for $t {
            const DTYPE: DType = $d;
            fn write_slice<W: Write>(v: &[Self], w: &mut W) -> io::Result<()> {
                let mut buf = Vec::with_capacity(v.len().min(1 << 16) * std::mem::size_of::<$t>());
                for chunk in v.chunks(1 << 16) {
                    buf.clear();
                    for x in chunk {
                        buf.extend_from_slice(&x.to_le_bytes());
                    }
                    w.write_all(&buf)?;
                }
                Ok(())
            }
        }
    };
}
element!(u8, DType::U8);
element!(i8, DType::I8);
element!(u16, DType::U16);
element!(i16, DType::I16);
element!(u32, DType::U32);
element!(i32, DType::I32);
element!(u64, DType::U64);
element!(i64, DType::I64);
element!(f32, DType::F32);
element!(f64, DType::F64);

fn write_data<W: Write>(w: &mut W, data: &NpyData) -> io::Result<()> {
    match data {
        NpyData::Bool(v) => w.write_all(&v.iter().map(|&b| b as u8).collect::<Vec<_>>()),
        NpyData::U8(v) => w.write_all(v),
        NpyData::I8(v) => i8::write_slice(v, w),
        NpyData::U16(v) => u16::write_slice(v, w),
        NpyData::I16(v) => i16::write_slice(v, w),
        NpyData::U32(v) => u32::write_slice(v, w),
        NpyData::I32(v) => i32::write_slice(v, w),
        NpyData::U64(v) => u64::write_slice(v, w),
        NpyData::I64(v) => i64::write_slice(v, w),
        NpyData::F32(v) => f32::write_slice(v, w),
        NpyData::F64(v) => f64::write_slice(v, w),
        NpyData::Bytes { width, values } => {
            for s in values {
                let mut b = s.clone();
                b.resize(*width, 0);
                w.write_all(&b)?;
            }
            Ok(())
        }
        NpyData::Unicode { width, values } => {
            for s in values {
                let mut n = 0;
                for c in s.chars().take(*width) {
                    w.write_all(&(c as u32).to_le_bytes())?;
                    n += 1;
                }
                for _ in n..*width {
                    w.write_all(&[0u8; 4])?;
                }
            }
            Ok(())
        }
    }
}

/// Parsed `.npy` header.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyHeader {
    pub dtype: DType,
    pub big_endian: bool,
    pub fortran_order: bool,
    pub shape: Vec<usize>,
    /// Byte offset of the data from the start of the file.
    pub data_offset: usize,
}

impl NpyHeader {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// True when the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of data the header promises.
    pub fn data_len(&self) -> Option<usize> {
        self.shape
            .iter()
            .try_fold(self.dtype.size(), |acc, &d| acc.checked_mul(d))
    }
}

/// Parse an npy header from the start of `bytes` (which must hold at least the header).
pub fn parse_header(bytes: &[u8]) -> Result<NpyHeader, String> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("missing the \\x93NUMPY magic".into());
    }
    let major = bytes[6];
    let (hlen, start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err("truncated header".into());
            }
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            )
        }
        v => return Err(format!("unsupported npy format version {v}")),
    };
    if bytes.len() < start + hlen {
        return Err(format!(
            "truncated header: expected {} header bytes, found {}",
            hlen,
            bytes.len().saturating_sub(start)
        ));
    }
    let dict = std::str::from_utf8(&bytes[start..start + hlen])
        .map_err(|_| "header is not text".to_string())?;
    let descr = dict_value(dict, "descr").ok_or("header has no 'descr'")?;
    let descr = descr.trim().trim_matches(|c| c == '\'' || c == '"');
    let (dtype, big_endian) = DType::parse(descr)?;
    let fortran = dict_value(dict, "fortran_order").ok_or("header has no 'fortran_order'")?;
    let fortran_order = fortran.trim().starts_with("True");
    let shape_s = dict_value(dict, "shape").ok_or("header has no 'shape'")?;
    let inner = shape_s
        .trim()
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .ok_or("malformed 'shape'")?;
    let mut shape = Vec::new();
    for part in inner.split(',') {
        let p = part.trim();
        if p.is_empty() {
            continue;
        }
        let p = p.trim_end_matches('L');
        shape.push(
            p.parse::<usize>()
                .map_err(|_| format!("malformed dimension '{p}' in shape"))?,
        );
    }
    Ok(NpyHeader {
        dtype,
        big_endian,
        fortran_order,
        shape,
        data_offset: start + hlen,
    })
}

/// The text after `'key':` in a python dict literal, up to the next top-level comma.
fn dict_value<'a>(dict: &'a str, key: &str) -> Option<&'a str> {
    let pat1 = format!("'{key}':");
    let pat2 = format!("\"{key}\":");
    let pos = dict
        .find(&pat1)
        .map(|p| p + pat1.len())
        .or_else(|| dict.find(&pat2).map(|p| p + pat2.len()))?;
    let rest = &dict[pos..];
    let mut depth = 0i32;
    for (i, c) in rest.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            ',' | '}' if depth == 0 => return Some(&rest[..i]),
            _ => {}
        }
    }
    Some(rest)
}

/// Decode raw data bytes of `header` into an array (C order).
pub fn decode(header: &NpyHeader, raw: &[u8]) -> Result<NpyArray, String> {
    let need = header
        .data_len()
        .ok_or("shape overflows the address space")?;
    if raw.len() < need {
        return Err(format!(
            "truncated data: shape {:?} of {} needs {} bytes, found {}",
            header.shape,
            header.dtype.descr(),
            need,
            raw.len()
        ));
    }
    if raw.len() > need {
        return Err(format!(
            "{} trailing bytes after the data of shape {:?}",
            raw.len() - need,
            header.shape
        ));
    }
    macro_rules! num {
        ($t:ty, $n:literal, $v:ident) => {{
            NpyData::$v(
                raw.chunks_exact($n)
                    .map(|c| {
                        let mut a = [0u8; $n];
                        a.copy_from_slice(c);
                        if header.big_endian {
                            <$t>::from_be_bytes(a)
                        } else {
                            <$t>::from_le_bytes(a)
                        }
                    })
                    .collect(),
            )
        }};
    }
    let data = match header.dtype {
        DType::Bool => NpyData::Bool(raw.iter().map(|&b| b != 0).collect()),
        DType::U8 => NpyData::U8(raw.to_vec()),
        DType::I8 => NpyData::I8(raw.iter().map(|&b| b as i8).collect()),
        DType::U16 => num!(u16, 2, U16),
        DType::I16 => num!(i16, 2, I16),
        DType::U32 => num!(u32, 4, U32),
        DType::I32 => num!(i32, 4, I32),
        DType::U64 => num!(u64, 8, U64),
        DType::I64 => num!(i64, 8, I64),
        DType::F32 => num!(f32, 4, F32),
        DType::F64 => num!(f64, 8, F64),
        DType::Bytes(w) => NpyData::Bytes {
            width: w,
            values: if w == 0 {
                vec![Vec::new(); header.len()]
            } else {
                raw.chunks_exact(w)
                    .map(|c| {
                        let end = c.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
                        c[..end].to_vec()
                    })
                    .collect()
            },
        },
        DType::Unicode(w) => NpyData::Unicode {
            width: w,
            values: if w == 0 {
                vec![String::new(); header.len()]
            } else {
                raw.chunks_exact(4 * w)
                    .map(|c| {
                        c.chunks_exact(4)
                            .map(|b| {
                                let a = [b[0], b[1], b[2], b[3]];
                                if header.big_endian {
                                    u32::from_be_bytes(a)
                                } else {
                                    u32::from_le_bytes(a)
                                }
                            })
                            .take_while(|&u| u != 0)
                            .map(|u| char::from_u32(u).unwrap_or('\u{fffd}'))
                            .collect()
                    })
                    .collect()
            },
        },
    };
    let mut arr = NpyArray {
        shape: header.shape.clone(),
        data,
    };
    if header.fortran_order && arr.shape.len() > 1 {
        arr = fortran_to_c(arr);
    }
    Ok(arr)
}

/// Reorder a Fortran-ordered array into C order.
fn fortran_to_c(a: NpyArray) -> NpyArray {
    let shape = a.shape.clone();
    let n = a.len();
    // Index map: C-order linear index -> Fortran-order linear index.
    let nd = shape.len();
    let mut fstride = vec![1usize; nd];
    for i in 1..nd {
        fstride[i] = fstride[i - 1] * shape[i - 1];
    }
    let map: Vec<usize> = (0..n)
        .map(|mut lin| {
            let mut f = 0;
            for d in (0..nd).rev() {
                let idx = lin % shape[d];
                lin /= shape[d];
                f += idx * fstride[d];
            }
            f
        })
        .collect();
    fn perm<T: Clone>(v: &[T], map: &[usize]) -> Vec<T> {
        map.iter().map(|&i| v[i].clone()).collect()
    }
    let data = match &a.data {
        NpyData::Bool(v) => NpyData::Bool(perm(v, &map)),
        NpyData::U8(v) => NpyData::U8(perm(v, &map)),
        NpyData::I8(v) => NpyData::I8(perm(v, &map)),
        NpyData::U16(v) => NpyData::U16(perm(v, &map)),
        NpyData::I16(v) => NpyData::I16(perm(v, &map)),
        NpyData::U32(v) => NpyData::U32(perm(v, &map)),
        NpyData::I32(v) => NpyData::I32(perm(v, &map)),
        NpyData::U64(v) => NpyData::U64(perm(v, &map)),
        NpyData::I64(v) => NpyData::I64(perm(v, &map)),
        NpyData::F32(v) => NpyData::F32(perm(v, &map)),
        NpyData::F64(v) => NpyData::F64(perm(v, &map)),
        NpyData::Bytes { width, values } => NpyData::Bytes {
            width: *width,
            values: perm(values, &map),
        },
        NpyData::Unicode { width, values } => NpyData::Unicode {
            width: *width,
            values: perm(values, &map),
        },
    };
    NpyArray { shape, data }
}

fn io_err(path: &Path, e: io::Error) -> NpyError {
    NpyError::Io {
        path: path.display().to_string(),
        error: e,
    }
}

/// Parse a whole `.npy` file held in memory; `name` labels errors.
pub fn parse_npy(bytes: &[u8], name: &str) -> Result<NpyArray, NpyError> {
    let fmt = |msg: String| NpyError::Format {
        path: name.to_string(),
        msg,
    };
    let h = parse_header(bytes).map_err(fmt)?;
    decode(&h, &bytes[h.data_offset..]).map_err(fmt)
}

/// Read a `.npy` file.
pub fn read_npy(path: &Path) -> Result<NpyArray, NpyError> {
    let bytes = std::fs::read(path).map_err(|e| io_err(path, e))?;
    parse_npy(&bytes, &path.display().to_string())
}

/// Read only the header of a `.npy` file.
pub fn read_npy_header(path: &Path) -> Result<NpyHeader, NpyError> {
    let mut f = File::open(path).map_err(|e| io_err(path, e))?;
    let mut buf = Vec::new();
    (&mut f)
        .take(1 << 20)
        .read_to_end(&mut buf)
        .map_err(|e| io_err(path, e))?;
    parse_header(&buf).map_err(|msg| NpyError::Format {
        path: path.display().to_string(),
        msg,
    })
}

/// Write a `.npy` file atomically.
pub fn write_npy(path: &Path, a: &NpyArray) -> Result<(), NpyError> {
    crate::atomic::write_atomic(path, |w| a.write_to(w)).map_err(|e| io_err(path, e))
}

/// The longest npy header read (NumPy writes a few hundred bytes; version 2 allows 4 GiB).
pub const MAX_HEADER_BYTES: usize = 1 << 20;

/// A `.npz` archive opened for reading.
#[derive(Debug)]
pub struct NpzReader {
    path: PathBuf,
    zip: zip::ZipArchive<BufReader<File>>,
}

/// A member's header read on its own, or — for a member too short to have the header's length
/// field — the whole (tiny) member parsed.
enum MemberHeader {
    Parsed(Vec<u8>, NpyHeader),
    Whole(NpyArray),
}

/// Reads a member's npy header first (bounded by `MAX_HEADER_BYTES`), so that a member
/// inflating to gigabytes, or a header declaring an absurd shape, fails before anything large
/// is allocated or read.
fn read_member_header<R: Read>(f: &mut R, label: &str) -> Result<MemberHeader, NpyError> {
    let zip_err = |e: io::Error| NpyError::Zip {
        path: label.to_string(),
        msg: e.to_string(),
    };
    let mut bytes = Vec::new();
    f.by_ref()
        .take(12)
        .read_to_end(&mut bytes)
        .map_err(zip_err)?;
    let hlen = match bytes.get(6) {
        Some(1) if bytes.len() >= 10 => u16::from_le_bytes([bytes[8], bytes[9]]) as usize + 10,
        Some(2 | 3) if bytes.len() >= 12 => {
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize + 12
        }
        _ => return parse_npy(&bytes, label).map(MemberHeader::Whole),
    };
    let fmt = |msg: String| NpyError::Format {
        path: label.to_string(),
        msg,
    };
    if hlen > MAX_HEADER_BYTES {
        return Err(fmt(format!(
            "npy header of {hlen} bytes (at most {MAX_HEADER_BYTES} are read)"
        )));
    }
    f.by_ref()
        .take((hlen - bytes.len().min(hlen)) as u64)
        .read_to_end(&mut bytes)
        .map_err(zip_err)?;
    let h = parse_header(&bytes).map_err(fmt)?;
    Ok(MemberHeader::Parsed(bytes, h))
}

impl NpzReader {
    /// Open `path`.
    pub fn open(path: &Path) -> Result<Self, NpyError> {
        let f = File::open(path).map_err(|e| io_err(path, e))?;
        let zip = zip::ZipArchive::new(BufReader::new(f)).map_err(|e| NpyError::Zip {
            path: path.display().to_string(),
            msg: e.to_string(),
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            zip,
        })
    }

    /// Array names (member names without `.npy`), in archive order.
    pub fn names(&self) -> Vec<String> {
        self.zip
            .file_names()
            .filter_map(|n| n.ok())
            .map(|n| n.strip_suffix(".npy").unwrap_or(&n).to_string())
            .collect()
    }

    /// The member of array `name`, and the label errors about it carry.
    fn member(
        &mut self,
        name: &str,
    ) -> Result<(zip::read::ZipFile<'_, BufReader<File>>, String), NpyError> {
        let member = format!("{name}.npy");
        let found = self.names().join(", ");
        let label = format!("{} (array '{name}')", self.path.display());
        match self.zip.by_name(&member) {
            Ok(f) => Ok((f, label)),
            Err(zip::result::ZipError::FileNotFound) => Err(NpyError::Missing {
                path: self.path.display().to_string(),
                name: name.to_string(),
                found,
            }),
            Err(e) => Err(NpyError::Zip {
                path: label,
                msg: e.to_string(),
            }),
        }
    }

    /// The header of array `name` (dtype, shape), without reading its data.
    pub fn header(&mut self, name: &str) -> Result<NpyHeader, NpyError> {
        let (mut f, label) = self.member(name)?;
        match read_member_header(&mut f, &label)? {
            MemberHeader::Parsed(_, h) => Ok(h),
            MemberHeader::Whole(a) => Ok(NpyHeader {
                dtype: a.dtype(),
                big_endian: false,
                fortran_order: false,
                shape: a.shape.clone(),
                data_offset: 0,
            }),
        }
    }

    /// Read array `name`.
    pub fn read(&mut self, name: &str) -> Result<NpyArray, NpyError> {
        let (mut f, label) = self.member(name)?;
        let (mut bytes, h) = match read_member_header(&mut f, &label)? {
            MemberHeader::Parsed(b, h) => (b, h),
            MemberHeader::Whole(a) => return Ok(a),
        };
        let zip_err = |e: io::Error| NpyError::Zip {
            path: label.clone(),
            msg: e.to_string(),
        };
        let fmt = |msg: String| NpyError::Format {
            path: label.clone(),
            msg,
        };
        let need = h
            .data_len()
            .ok_or_else(|| fmt(format!("shape {:?} overflows", h.shape)))?;
        if let Ok(Some(avail)) = crate::mem::available()
            && need as u64 > avail
        {
            return Err(fmt(format!(
                "shape {:?} of {} needs {}, more than the {} available \
                 (MemAvailable, or VENTRAL_MAX_MEMORY)",
                h.shape,
                h.dtype.descr(),
                crate::mem::human(need as u64),
                crate::mem::human(avail)
            )));
        }
        // The declared member size may lie; `need` is checked above where memory is known.
        bytes.reserve_exact(need.min(f.size() as usize));
        (&mut f)
            .take(need as u64)
            .read_to_end(&mut bytes)
            .map_err(zip_err)?;
        decode(&h, &bytes[h.data_offset..]).map_err(fmt)
    }

    /// Streams array `name` one leading-axis slice at a time: `f(i, slice)` gets slice `i`
    /// (shape `shape[1..]`, C order) as f32, read and decoded from the (possibly compressed)
    /// member without holding more than one slice — how `neural-fit` reads a [T, N, D] layer
    /// one time step at a time. Stops at the first error `f` returns. Fortran-ordered and
    /// non-float arrays are refused (their slices are not contiguous, or not features).
    pub fn for_each_slice<E: From<NpyError>>(
        &mut self,
        name: &str,
        mut f: impl FnMut(usize, &[f32]) -> Result<(), E>,
    ) -> Result<(), E> {
        let (mut m, label) = self.member(name)?;
        let fmt = |msg: String| NpyError::Format {
            path: label.clone(),
            msg,
        };
        let h = match read_member_header(&mut m, &label)? {
            MemberHeader::Parsed(_, h) => h,
            MemberHeader::Whole(a) => {
                // A member too short for a header's length field holds no slices worth streaming.
                let (n, rest) = match a.shape.split_first() {
                    Some((&n, rest)) => (n, rest.iter().product::<usize>()),
                    None => return Err(fmt("a 0-d array has no slices".into()).into()),
                };
                let v = a.to_f32().ok_or_else(|| fmt("not a float array".into()))?;
                for i in 0..n {
                    f(i, &v[i * rest..(i + 1) * rest])?;
                }
                return Ok(());
            }
        };
        if h.fortran_order {
            return Err(fmt("Fortran-ordered arrays cannot be read slice by slice".into()).into());
        }
        if !matches!(h.dtype, DType::F32 | DType::F64) {
            return Err(fmt(format!("{} is not a float dtype", h.dtype.descr())).into());
        }
        let Some((&n, rest)) = h.shape.split_first() else {
            return Err(fmt("a 0-d array has no slices".into()).into());
        };
        let slice = NpyHeader {
            shape: rest.to_vec(),
            data_offset: 0,
            ..h.clone()
        };
        let bytes = slice
            .data_len()
            .ok_or_else(|| fmt(format!("shape {:?} overflows", h.shape)))?;
        let mut raw = vec![0u8; bytes];
        for i in 0..n {
            m.read_exact(&mut raw).map_err(|e| {
                fmt(format!(
                    "truncated data: slice {i} of {n} of shape {:?} could not be read ({e})",
                    h.shape
                ))
            })?;
            let a = decode(&slice, &raw).map_err(&fmt)?;
            let v = a
                .into_f32()
                .ok_or_else(|| fmt("not a float array".into()))?;
            f(i, &v)?;
        }
        Ok(())
    }

    /// True when the archive has an array `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.zip.index_for_name(&format!("{name}.npy")).is_some()
    }
}

/// Writes a `.npz` archive; arrays may be added whole or streamed chunk by chunk.
#[derive(Debug)]
pub struct NpzWriter<W: Write + Seek> {
    // Latched: after a failed write the zip crate's Drop must not print (see LatchWriter).
    zip: zip::ZipWriter<crate::atomic::LatchWriter<W>>,
    options: zip::write::SimpleFileOptions,
    open: Option<(String, usize, usize)>,
}

fn zip_io(e: zip::result::ZipError) -> io::Error {
    io::Error::other(e.to_string())
}

impl<W: Write + Seek> NpzWriter<W> {
    /// A writer; `compress` uses deflate like `np.savez_compressed`.
    pub fn new(w: W, compress: bool) -> Self {
        let method = if compress {
            zip::CompressionMethod::Deflated
        } else {
            zip::CompressionMethod::Stored
        };
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(method)
            .large_file(true)
            // Fixed timestamp: identical inputs give identical bytes.
            .last_modified_time(zip::DateTime::default());
        Self {
            zip: zip::ZipWriter::new(crate::atomic::LatchWriter::new(w)),
            options,
            open: None,
        }
    }

    /// Add a whole array.
    pub fn add(&mut self, name: &str, a: &NpyArray) -> io::Result<()> {
        self.check_closed()?;
        self.zip
            .start_file(format!("{name}.npy"), self.options)
            .map_err(zip_io)?;
        a.write_to(&mut self.zip)
    }

    /// Start an array of known dtype and shape whose data follow in [`Self::write_chunk`] calls.
    pub fn begin(&mut self, name: &str, dtype: DType, shape: &[usize]) -> io::Result<()> {
        self.check_closed()?;
        self.zip
            .start_file(format!("{name}.npy"), self.options)
            .map_err(zip_io)?;
        write_header(&mut self.zip, dtype, shape)?;
        let total = shape.iter().product::<usize>() * dtype.size();
        self.open = Some((name.to_string(), total, 0));
        if total == 0 {
            self.open = None;
        }
        Ok(())
    }

    /// Append elements to the array started with [`Self::begin`].
    pub fn write_chunk<T: Element>(&mut self, values: &[T]) -> io::Result<()> {
        let Some((name, total, written)) = self.open.as_mut() else {
            return Err(io::Error::other("write_chunk without begin"));
        };
        let bytes = std::mem::size_of_val(values);
        if *written + bytes > *total {
            return Err(io::Error::other(format!(
                "array '{name}': more data than its shape holds"
            )));
        }
        T::write_slice(values, &mut self.zip)?;
        *written += bytes;
        if *written == *total {
            self.open = None;
        }
        Ok(())
    }

    fn check_closed(&self) -> io::Result<()> {
        match &self.open {
            Some((name, total, written)) => Err(io::Error::other(format!(
                "array '{name}' is incomplete: {written} of {total} bytes written"
            ))),
            None => Ok(()),
        }
    }

    /// Finish the archive and return the inner writer.
    pub fn finish(self) -> io::Result<W> {
        self.check_closed()?;
        self.zip.finish().map_err(zip_io)?.into_inner()
    }
}

/// Write arrays to a `.npz` file atomically.
pub fn write_npz(
    path: &Path,
    arrays: &[(&str, &NpyArray)],
    compress: bool,
) -> Result<(), NpyError> {
    crate::atomic::write_atomic(path, |w| {
        let mut cursor = io::Cursor::new(Vec::new());
        {
            let mut z = NpzWriter::new(&mut cursor, compress);
            for (name, a) in arrays {
                z.add(name, a)?;
            }
            z.finish()?;
        }
        w.write_all(cursor.get_ref())
    })
    .map_err(|e| io_err(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Slices streamed from stored and compressed members, f32 and f64 (big-endian too), equal
    /// the whole array's; a Fortran-ordered or integer array is refused with the array named.
    #[test]
    fn slices_stream_like_the_whole_array() {
        let dir = tempfile::tempdir().unwrap();
        let v: Vec<f64> = (0..24).map(|i| i as f64 * 0.5 - 3.0).collect();
        let f64s = NpyArray::new(vec![4, 2, 3], NpyData::F64(v.clone())).unwrap();
        let f32s = NpyArray::new(
            vec![4, 6],
            NpyData::F32(v.iter().map(|x| *x as f32).collect()),
        )
        .unwrap();
        let ints = NpyArray::new(vec![4, 6], NpyData::I32((0..24).collect())).unwrap();
        for compress in [false, true] {
            let path = dir.path().join(format!("s{compress}.npz"));
            write_npz(&path, &[("a", &f64s), ("b", &f32s), ("i", &ints)], compress).unwrap();
            let mut z = NpzReader::open(&path).unwrap();
            for name in ["a", "b"] {
                let whole = z.read(name).unwrap().to_f32().unwrap();
                let mut got = Vec::new();
                z.for_each_slice(name, |i, s: &[f32]| -> Result<(), NpyError> {
                    assert_eq!(i, got.len() / 6);
                    got.extend_from_slice(s);
                    Ok(())
                })
                .unwrap();
                assert_eq!(got, whole, "{name} compress {compress}");
            }
            let err = z
                .for_each_slice("i", |_, _: &[f32]| -> Result<(), NpyError> { Ok(()) })
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("array 'i'") && err.contains("not a float"),
                "{err}"
            );
        }
        // Big-endian f64, Fortran order: hand-written members.
        for (descr, fortran, ok) in [(">f8", false, true), ("<f8", true, false)] {
            let mut bytes = Vec::new();
            let header = format!(
                "{{'descr': '{descr}', 'fortran_order': {}, 'shape': (2, 2), }}",
                if fortran { "True" } else { "False" }
            );
            let mut h = header.into_bytes();
            while (10 + h.len() + 1) % 64 != 0 {
                h.push(b' ');
            }
            h.push(b'\n');
            bytes.extend_from_slice(b"\x93NUMPY\x01\x00");
            bytes.extend_from_slice(&(h.len() as u16).to_le_bytes());
            bytes.extend_from_slice(&h);
            for x in [1.0f64, 2.0, 3.0, 4.0] {
                bytes.extend_from_slice(&if descr.starts_with('>') {
                    x.to_be_bytes()
                } else {
                    x.to_le_bytes()
                });
            }
            let path = dir.path().join(format!("h{fortran}.npz"));
            let mut w = std::io::Cursor::new(Vec::new());
            {
                let mut z = zip::ZipWriter::new(&mut w);
                z.start_file("x.npy", zip::write::SimpleFileOptions::default())
                    .unwrap();
                std::io::Write::write_all(&mut z, &bytes).unwrap();
                z.finish().unwrap();
            }
            std::fs::write(&path, w.into_inner()).unwrap();
            let mut z = NpzReader::open(&path).unwrap();
            let mut got = Vec::new();
            let r = z.for_each_slice("x", |_, s: &[f32]| -> Result<(), NpyError> {
                got.extend_from_slice(s);
                Ok(())
            });
            if ok {
                r.unwrap();
                assert_eq!(got, vec![1.0, 2.0, 3.0, 4.0]);
            } else {
                assert!(r.unwrap_err().to_string().contains("Fortran"));
            }
        }
    }

    #[test]
    fn header_is_64_aligned_and_parses() {
        let h = header_bytes(DType::F32, &[2, 3, 4]);
        assert_eq!(h.len() % 64, 0);
        let p = parse_header(&h).unwrap();
        assert_eq!(p.shape, vec![2, 3, 4]);
        assert_eq!(p.dtype, DType::F32);
        assert_eq!(p.data_offset, h.len());
    }

    #[test]
    fn padded_header_parses() {
        let h = header_bytes_padded(DType::U8, &[12345678, 64, 64, 3], 128).unwrap();
        assert_eq!(h.len(), 128);
        let p = parse_header(&h).unwrap();
        assert_eq!(p.shape, vec![12345678, 64, 64, 3]);
        assert_eq!(p.data_offset, 128);
    }

    #[test]
    fn numpy_written_header_parses() {
        // Header as written by numpy 1.26 for np.zeros((5,), '<i8') and for a 0-d array.
        let dict = b"{'descr': '<i8', 'fortran_order': False, 'shape': (5,), }";
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend_from_slice(&(dict.len() as u16).to_le_bytes());
        b.extend_from_slice(dict);
        let p = parse_header(&b).unwrap();
        assert_eq!(p.shape, vec![5]);
        assert_eq!(p.dtype, DType::I64);
        let dict0 = b"{'descr': '>f8', 'fortran_order': False, 'shape': (), }";
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend_from_slice(&(dict0.len() as u16).to_le_bytes());
        b.extend_from_slice(dict0);
        let mut data = b.clone();
        data.extend_from_slice(&1.5f64.to_be_bytes());
        let a = parse_npy(&data, "x").unwrap();
        assert_eq!(a.shape, Vec::<usize>::new());
        assert_eq!(a.to_f64().unwrap(), vec![1.5]);
    }

    #[test]
    fn roundtrip_all_dtypes() {
        let arrays = vec![
            NpyArray::new(vec![2, 2], NpyData::F32(vec![1.0, -2.0, 3.5, 4.0])).unwrap(),
            NpyArray::new(vec![3], NpyData::I64(vec![1, -2, 3])).unwrap(),
            NpyArray::new(vec![1, 2, 2], NpyData::U8(vec![0, 255, 7, 8])).unwrap(),
            NpyArray::new(vec![2], NpyData::Bool(vec![true, false])).unwrap(),
            NpyArray::new(
                vec![2],
                NpyData::Bytes {
                    width: 4,
                    values: vec![b"ab".to_vec(), b"abcd".to_vec()],
                },
            )
            .unwrap(),
            NpyArray::new(
                vec![2],
                NpyData::Unicode {
                    width: 3,
                    values: vec!["hé".into(), "xyz".into()],
                },
            )
            .unwrap(),
        ];
        for a in arrays {
            let b = a.to_bytes();
            assert_eq!(parse_npy(&b, "t").unwrap(), a);
        }
    }

    #[test]
    fn truncation_is_an_error_naming_the_file() {
        let a = NpyArray::new(vec![4], NpyData::F64(vec![1.0; 4])).unwrap();
        let b = a.to_bytes();
        for cut in [0, 5, 20, b.len() - 1] {
            let e = parse_npy(&b[..cut], "feat.npy").unwrap_err().to_string();
            assert!(e.contains("feat.npy"), "{e}");
        }
        let mut long = b.clone();
        long.push(0);
        assert!(parse_npy(&long, "f").is_err());
    }

    #[test]
    fn fortran_order_is_converted() {
        // np.asfortranarray(np.arange(6).reshape(2,3)) stores 0,3,1,4,2,5.
        let dict = b"{'descr': '<i4', 'fortran_order': True, 'shape': (2, 3), }";
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend_from_slice(&(dict.len() as u16).to_le_bytes());
        b.extend_from_slice(dict);
        for v in [0i32, 3, 1, 4, 2, 5] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        let a = parse_npy(&b, "f").unwrap();
        assert_eq!(a.data, NpyData::I32(vec![0, 1, 2, 3, 4, 5]));
    }

    #[test]
    fn object_arrays_are_refused_clearly() {
        let dict = b"{'descr': '|O', 'fortran_order': False, 'shape': (1,), }";
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend_from_slice(&(dict.len() as u16).to_le_bytes());
        b.extend_from_slice(dict);
        let e = parse_npy(&b, "o.npy").unwrap_err().to_string();
        assert!(e.contains("pickled"), "{e}");
    }

    #[test]
    fn npz_roundtrip_with_streaming() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npz");
        let labels = NpyArray::new(vec![3], NpyData::I64(vec![0, 1, 2])).unwrap();
        let f = File::create(&p).unwrap();
        let mut z = NpzWriter::new(f, true);
        z.add("labels", &labels).unwrap();
        z.begin("x", DType::F32, &[2, 3]).unwrap();
        z.write_chunk(&[1.0f32, 2.0, 3.0]).unwrap();
        assert!(z.add("y", &labels).is_err());
        z.write_chunk(&[4.0f32, 5.0, 6.0]).unwrap();
        assert!(z.write_chunk(&[7.0f32]).is_err());
        z.finish().unwrap();
        let mut r = NpzReader::open(&p).unwrap();
        assert_eq!(r.names(), vec!["labels", "x"]);
        assert_eq!(r.read("labels").unwrap(), labels);
        assert_eq!(
            r.read("x").unwrap().to_f32().unwrap(),
            vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
        );
        let e = r.read("nope").unwrap_err().to_string();
        assert!(e.contains("a.npz") && e.contains("labels"), "{e}");
    }

    /// A member whose header declares 4 TiB is refused from the header, before any read or
    /// allocation of that size (it would abort the process otherwise).
    #[test]
    fn npz_member_declaring_an_absurd_shape_is_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bomb.npz");
        let f = File::create(&p).unwrap();
        let mut z = zip::ZipWriter::new(f);
        z.start_file("x.npy", zip::write::SimpleFileOptions::default())
            .unwrap();
        z.write_all(&header_bytes(DType::F32, &[1 << 40])).unwrap();
        z.write_all(&[0u8; 64]).unwrap();
        z.finish().unwrap();
        let e = NpzReader::open(&p)
            .unwrap()
            .read("x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("bomb.npz") && e.contains("'x'"), "{e}");
        assert!(
            e.contains("available") || e.contains("truncated") || e.contains("expected"),
            "{e}"
        );
    }
}

/// Reads rows (slices along the first axis) of a large `.npy` file without loading it whole.
#[derive(Debug)]
pub struct NpyRowReader {
    path: PathBuf,
    file: File,
    header: NpyHeader,
    row_elems: usize,
}

impl NpyRowReader {
    /// Open `path` and check that its size matches its header.
    pub fn open(path: &Path) -> Result<Self, NpyError> {
        let header = read_npy_header(path)?;
        let fmt = |msg: String| NpyError::Format {
            path: path.display().to_string(),
            msg,
        };
        if header.fortran_order && header.shape.len() > 1 {
            return Err(fmt(
                "Fortran-ordered arrays cannot be read by rows; save with np.ascontiguousarray"
                    .into(),
            ));
        }
        if header.shape.is_empty() {
            return Err(fmt("a 0-d array has no rows".into()));
        }
        let file = File::open(path).map_err(|e| io_err(path, e))?;
        let len = file.metadata().map_err(|e| io_err(path, e))?.len() as usize;
        let need = header
            .data_len()
            .ok_or_else(|| fmt("shape overflows".into()))?;
        if len != header.data_offset + need {
            return Err(fmt(format!(
                "file is {len} bytes but shape {:?} of {} needs {} (truncated or padded)",
                header.shape,
                header.dtype.descr(),
                header.data_offset + need
            )));
        }
        let row_elems = header.shape[1..].iter().product();
        Ok(Self {
            path: path.to_path_buf(),
            file,
            header,
            row_elems,
        })
    }

    /// The header.
    pub fn header(&self) -> &NpyHeader {
        &self.header
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.header.shape[0]
    }

    /// Rows `start..start + count` as an array.
    pub fn read_rows(&mut self, start: usize, count: usize) -> Result<NpyArray, NpyError> {
        let esz = self.header.dtype.size();
        let off = self.header.data_offset + start * self.row_elems * esz;
        let mut buf = vec![0u8; count * self.row_elems * esz];
        self.file
            .seek(io::SeekFrom::Start(off as u64))
            .and_then(|_| self.file.read_exact(&mut buf))
            .map_err(|e| io_err(&self.path, e))?;
        let mut h = self.header.clone();
        h.shape[0] = count;
        decode(&h, &buf).map_err(|msg| NpyError::Format {
            path: self.path.display().to_string(),
            msg,
        })
    }
}
