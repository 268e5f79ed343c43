//! TensorFlow checkpoints — the V2 "tensor bundle" that `tf.compat.v1.train.Saver` (TF 1.x code
//! such as neuroailab/convrnns: `model.ckpt.index` + `model.ckpt.data-00000-of-00001`) and
//! `tf.train.Checkpoint` write — read without TensorFlow.
//!
//! A checkpoint is a prefix `P` and files beside it: `P.index`, a LevelDB-format table (sorted
//! keys in prefix-compressed blocks, each with a masked CRC-32C, a footer with a magic number)
//! whose empty key holds a `BundleHeaderProto` (number of shards, endianness) and whose other
//! keys are the tensors' names, each holding a `BundleEntryProto` (dtype, shape, shard, offset,
//! size, masked CRC-32C of the bytes); and `P.data-SSSSS-of-NNNNN`, the shards with each
//! tensor's raw bytes in row-major order. TensorFlow writes the index uncompressed.
//!
//! The result is a [`SafeTensors`] in memory under TensorFlow's own names (`conv1/weights`,
//! `model/kernel/.ATTRIBUTES/VARIABLE_VALUE`) and layouts (a convolution's kernel is
//! `[kh, kw, in, out]`); what maps those names onto a model is the model's business. Every
//! block and every tensor is checked against its CRC-32C. String tensors (TF 2's
//! `_CHECKPOINTABLE_OBJECT_GRAPH`, saved iterators) are not weights and are skipped; tensors
//! saved in slices (partitioned variables) and dtypes other than float32/64/16, bfloat16,
//! int64/32, uint8 and bool are refused with their name. Every error names the file.
//!
//! [`SafeTensors::read`] reads a checkpoint when given its prefix, its `.index` or one of its
//! data shards ([`prefix_of`]).

use std::path::{Path, PathBuf};

use crate::safetensors::{Dtype, SafeTensors, SafetensorsError};

/// The table footer's magic number (LevelDB's), little-endian in the last 8 bytes.
const TABLE_MAGIC: u64 = 0xdb47_7524_8b80_fb57;
/// Footer: two block handles (varints, padded to 40 bytes) and the magic.
const FOOTER_LEN: usize = 48;
/// Each block is followed by its compression type (1 byte) and a masked CRC-32C (4 bytes).
const TRAILER_LEN: usize = 5;

/// The checkpoint prefix of `path` when `path` names a TensorFlow checkpoint: the prefix
/// itself (with `PREFIX.index` beside it), `PREFIX.index`, or a data shard
/// `PREFIX.data-SSSSS-of-NNNNN`.
pub fn prefix_of(path: &Path) -> Option<PathBuf> {
    let s = path.to_str()?;
    if let Some(p) = s.strip_suffix(".index") {
        return Some(PathBuf::from(p));
    }
    if let Some((p, shard)) = s.rsplit_once(".data-")
        && let Some((a, b)) = shard.split_once("-of-")
        && a.len() == 5
        && b.len() == 5
        && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit())
    {
        return Some(PathBuf::from(p));
    }
    (!path.exists() && index_path(path).is_file()).then(|| path.to_path_buf())
}

fn index_path(prefix: &Path) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(".index");
    PathBuf::from(s)
}

fn shard_path(prefix: &Path, shard: u64, shards: u64) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(format!(".data-{shard:05}-of-{shards:05}"));
    PathBuf::from(s)
}

/// A tensor the index lists.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub name: String,
    /// `None`: a dtype that holds no weights (strings, resources, variants), skipped.
    pub dtype: Option<Dtype>,
    /// TensorFlow's `DataType` number.
    pub tf_dtype: u64,
    pub shape: Vec<usize>,
    pub shard: u64,
    pub offset: u64,
    pub size: u64,
    /// Masked CRC-32C of the tensor's bytes.
    pub crc32c: u32,
    /// Saved in slices (a partitioned variable).
    pub sliced: bool,
}

/// What an index holds: the number of data shards, and its tensors in key order.
#[derive(Debug, Clone, PartialEq)]
pub struct Index {
    pub shards: u64,
    pub entries: Vec<Entry>,
}

/// Reads the checkpoint named by `path` (see [`prefix_of`]) as safetensors in memory.
pub fn read(path: &Path) -> Result<SafeTensors, SafetensorsError> {
    let prefix = prefix_of(path).unwrap_or_else(|| path.to_path_buf());
    let ipath = index_path(&prefix);
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |error| SafetensorsError::Io { path: p, error }
    };
    let bytes = std::fs::read(&ipath).map_err(io(&ipath))?;
    let err = |msg: String| SafetensorsError::Tf {
        path: ipath.clone(),
        msg,
    };
    let index = parse_index(&bytes).map_err(&err)?;
    let mut need = 0u128;
    for e in &index.entries {
        if e.sliced {
            return Err(err(format!(
                "tensor '{}' is saved in slices (a partitioned variable), which is not read: \
                 restore it in TensorFlow and save it unpartitioned",
                e.name
            )));
        }
        if e.dtype.is_some() {
            need += e.size as u128;
        }
    }
    if let Some(m) = crate::mem::exceeds_u128(need).map_err(&err)? {
        return Err(err(format!("its tensors need {m}")));
    }
    // Shards opened as tensors name them (the header's count is the file's claim: nothing
    // is allocated by it).
    let mut shards: std::collections::HashMap<u64, std::fs::File> = Default::default();
    let mut out = Vec::new();
    for e in index.entries {
        let Some(dtype) = e.dtype else { continue };
        let numel = e
            .shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| {
                err(format!(
                    "tensor '{}': shape {:?} overflows",
                    e.name, e.shape
                ))
            })?;
        if numel.checked_mul(dtype.size()) != Some(e.size as usize) {
            return Err(err(format!(
                "tensor '{}': {} bytes for shape {:?} of {}",
                e.name,
                e.size,
                e.shape,
                dtype.name()
            )));
        }
        let spath = shard_path(&prefix, e.shard, index.shards);
        // `parse_index` checked that the shard is one of the header's.
        let file = match shards.entry(e.shard) {
            std::collections::hash_map::Entry::Occupied(f) => f.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(std::fs::File::open(&spath).map_err(io(&spath))?)
            }
        };
        let data = read_at(file, e.offset, e.size).map_err(|m| SafetensorsError::Tf {
            path: spath.clone(),
            msg: format!("tensor '{}': {m}", e.name),
        })?;
        if mask(crc32c(&data)) != e.crc32c {
            return Err(SafetensorsError::Tf {
                path: spath.clone(),
                msg: format!(
                    "tensor '{}': the bytes at offset {} do not match their checksum (corrupt \
                     or from another checkpoint)",
                    e.name, e.offset
                ),
            });
        }
        out.push(crate::pth::Loaded {
            name: e.name,
            dtype,
            shape: e.shape,
            data,
        });
    }
    SafeTensors::parse(crate::pth::to_safetensors(&out), path)
}

fn read_at(f: &mut std::fs::File, offset: u64, size: u64) -> Result<Vec<u8>, String> {
    use std::io::{Read, Seek, SeekFrom};
    let len = f.metadata().map_err(|e| e.to_string())?.len();
    if offset.checked_add(size).is_none_or(|end| end > len) {
        return Err(format!(
            "{size} bytes at offset {offset} lie past the shard's end ({len} bytes; truncated?)"
        ));
    }
    let mut data = vec![0u8; size as usize];
    f.seek(SeekFrom::Start(offset))
        .and_then(|_| f.read_exact(&mut data))
        .map_err(|e| e.to_string())?;
    Ok(data)
}

/// Parses an index file's bytes.
pub fn parse_index(bytes: &[u8]) -> Result<Index, String> {
    if bytes.len() < FOOTER_LEN {
        return Err(format!(
            "{} bytes is shorter than a table's {FOOTER_LEN}-byte footer (truncated?)",
            bytes.len()
        ));
    }
    let footer = &bytes[bytes.len() - FOOTER_LEN..];
    let magic = u64::from_le_bytes(footer[40..].try_into().map_err(|_| "footer")?);
    if magic != TABLE_MAGIC {
        return Err("not a TensorFlow checkpoint index (no table magic at its end)".into());
    }
    let mut r = Reader::new(&footer[..40]);
    let _meta = (r.varint()?, r.varint()?);
    let index_block = block(bytes, r.varint()?, r.varint()?)?;
    let mut header = None;
    let mut entries: Vec<Entry> = Vec::new();
    for (_, handle) in block_entries(index_block)? {
        let mut h = Reader::new(handle);
        let data = block(bytes, h.varint()?, h.varint()?)?;
        for (key, value) in block_entries(data)? {
            if key.is_empty() {
                header = Some(parse_header(value)?);
                continue;
            }
            if key[0] == 0 {
                // A slice of a partitioned variable (TensorFlow's `EncodeTensorNameSlice`
                // keys begin with the ordered code of 0); the variable's own entry says so.
                continue;
            }
            let name =
                String::from_utf8(key).map_err(|_| "a tensor name is not UTF-8".to_string())?;
            if entries.last().is_some_and(|l| l.name >= name) {
                return Err(format!("keys out of order at '{name}'"));
            }
            let e =
                parse_entry(name.clone(), value).map_err(|m| format!("tensor '{name}': {m}"))?;
            entries.push(e);
        }
    }
    let shards = header.ok_or("no bundle header (the empty key) in the index")?;
    if let Some(e) = entries.iter().find(|e| e.shard >= shards) {
        return Err(format!(
            "tensor '{}' lies in shard {} of {shards}",
            e.name, e.shard
        ));
    }
    Ok(Index { shards, entries })
}

/// The contents of the block at `offset` (`size` bytes before its trailer), checked.
fn block(bytes: &[u8], offset: u64, size: u64) -> Result<&[u8], String> {
    let end = offset
        .checked_add(size)
        .and_then(|e| e.checked_add(TRAILER_LEN as u64))
        .filter(|&e| e <= bytes.len() as u64)
        .ok_or_else(|| {
            format!("a block of {size} bytes at {offset} lies past the end (truncated?)")
        })? as usize;
    let (offset, size) = (offset as usize, size as usize);
    let contents = &bytes[offset..offset + size];
    let kind = bytes[offset + size];
    let want = u32::from_le_bytes(bytes[end - 4..end].try_into().map_err(|_| "trailer")?);
    if mask(crc32c_extend(crc32c(contents), &[kind])) != want {
        return Err(format!(
            "the block at {offset} does not match its checksum (corrupt)"
        ));
    }
    match kind {
        0 => Ok(contents),
        k => Err(format!(
            "the block at {offset} is compressed (type {k}); TensorFlow writes checkpoint \
             indices uncompressed"
        )),
    }
}

/// A block's (key, value) pairs.
type Entries<'a> = Vec<(Vec<u8>, &'a [u8])>;

/// The (key, value) pairs of a block: prefix-compressed entries, then the restart offsets
/// (u32 each) and their count (u32).
fn block_entries(b: &[u8]) -> Result<Entries<'_>, String> {
    if b.len() < 4 {
        return Err("a block shorter than its restart count".into());
    }
    let restarts =
        u32::from_le_bytes(b[b.len() - 4..].try_into().map_err(|_| "restarts")?) as usize;
    let end = restarts
        .checked_mul(4)
        .and_then(|n| b.len().checked_sub(4 + n))
        .ok_or("a block's restart array is longer than the block")?;
    let mut r = Reader::new(&b[..end]);
    let mut key: Vec<u8> = Vec::new();
    let mut out = Vec::new();
    while !r.done() {
        let shared = r.varint()? as usize;
        let unshared = r.varint()? as usize;
        let vlen = r.varint()? as usize;
        if shared > key.len() {
            return Err(format!(
                "an entry shares {shared} bytes with a key of {}",
                key.len()
            ));
        }
        key.truncate(shared);
        key.extend_from_slice(r.take(unshared)?);
        out.push((key.clone(), r.take(vlen)?));
    }
    Ok(out)
}

/// `BundleHeaderProto`: num_shards (1), endianness (2: 0 little, 1 big), version (3).
fn parse_header(v: &[u8]) -> Result<u64, String> {
    let mut shards = 0;
    let mut r = Reader::new(v);
    while let Some((field, val)) = r.field()? {
        match (field, val) {
            (1, Value::Int(n)) => shards = n,
            (2, Value::Int(1)) => {
                return Err("written big-endian; only little-endian checkpoints are read".into());
            }
            _ => {}
        }
    }
    if shards == 0 {
        return Err("the bundle header says 0 shards".into());
    }
    Ok(shards)
}

/// `BundleEntryProto`: dtype (1), shape (2: TensorShapeProto), shard_id (3), offset (4),
/// size (5), crc32c (6, fixed32), slices (7).
fn parse_entry(name: String, v: &[u8]) -> Result<Entry, String> {
    let mut e = Entry {
        name,
        dtype: None,
        tf_dtype: 0,
        shape: Vec::new(),
        shard: 0,
        offset: 0,
        size: 0,
        crc32c: 0,
        sliced: false,
    };
    let mut r = Reader::new(v);
    while let Some((field, val)) = r.field()? {
        match (field, val) {
            (1, Value::Int(d)) => e.tf_dtype = d,
            (2, Value::Bytes(s)) => e.shape = parse_shape(s)?,
            (3, Value::Int(n)) => e.shard = n,
            (4, Value::Int(n)) => e.offset = n,
            (5, Value::Int(n)) => e.size = n,
            (6, Value::Fixed32(c)) => e.crc32c = c,
            (7, _) => e.sliced = true,
            _ => {}
        }
    }
    e.dtype = match e.tf_dtype {
        1 => Some(Dtype::F32),
        2 => Some(Dtype::F64),
        3 => Some(Dtype::I32),
        4 => Some(Dtype::U8),
        9 => Some(Dtype::I64),
        10 => Some(Dtype::Bool),
        14 => Some(Dtype::BF16),
        19 => Some(Dtype::F16),
        // Strings, resources, variants: not weights.
        7 | 20 | 21 => None,
        d => return Err(format!("dtype {} is not read", tf_dtype_name(d))),
    };
    Ok(e)
}

fn tf_dtype_name(d: u64) -> String {
    let names = [
        "invalid",
        "float32",
        "float64",
        "int32",
        "uint8",
        "int16",
        "int8",
        "string",
        "complex64",
        "int64",
        "bool",
        "qint8",
        "quint8",
        "qint32",
        "bfloat16",
        "qint16",
        "quint16",
        "uint16",
        "complex128",
        "float16",
        "resource",
        "variant",
        "uint32",
        "uint64",
    ];
    names
        .get(d as usize)
        .map_or_else(|| format!("number {d}"), |n| (*n).to_string())
}

/// `TensorShapeProto`: dim (2, repeated: size (1), name (2)), unknown_rank (3).
fn parse_shape(v: &[u8]) -> Result<Vec<usize>, String> {
    let mut dims = Vec::new();
    let mut r = Reader::new(v);
    while let Some((field, val)) = r.field()? {
        match (field, val) {
            (2, Value::Bytes(d)) => {
                let mut size = 0u64;
                let mut dr = Reader::new(d);
                while let Some((f, v)) = dr.field()? {
                    if let (1, Value::Int(n)) = (f, v) {
                        size = n;
                    }
                }
                // int64 in the proto: a negative size (unknown) is a huge varint.
                if size > i64::MAX as u64 {
                    return Err("a dimension of unknown size".into());
                }
                dims.push(usize::try_from(size).map_err(|_| "a dimension overflows")?);
            }
            (3, Value::Int(1)) => return Err("a shape of unknown rank".into()),
            _ => {}
        }
    }
    Ok(dims)
}

enum Value<'a> {
    Int(u64),
    Fixed32(u32),
    Bytes(&'a [u8]),
}

/// A cursor over bytes: varints and protobuf fields.
struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(b: &'a [u8]) -> Self {
        Self { b, pos: 0 }
    }

    fn done(&self) -> bool {
        self.pos >= self.b.len()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or_else(|| format!("{n} bytes wanted where {} remain", self.b.len() - self.pos))?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for i in 0..10 {
            let byte = *self.b.get(self.pos).ok_or("a varint runs past the end")?;
            self.pos += 1;
            v |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("a varint longer than 10 bytes".into())
    }

    /// The next field (number, value), `None` at the end.
    fn field(&mut self) -> Result<Option<(u64, Value<'a>)>, String> {
        if self.done() {
            return Ok(None);
        }
        let tag = self.varint()?;
        let value = match tag & 7 {
            0 => Value::Int(self.varint()?),
            1 => Value::Bytes(self.take(8)?),
            2 => {
                let n = usize::try_from(self.varint()?).map_err(|_| "a length overflows")?;
                Value::Bytes(self.take(n)?)
            }
            5 => Value::Fixed32(u32::from_le_bytes(
                self.take(4)?.try_into().map_err(|_| "fixed32")?,
            )),
            w => return Err(format!("protobuf wire type {w} is not read")),
        };
        Ok(Some((tag >> 3, value)))
    }
}

/// CRC-32C (Castagnoli) lookup table, reflected polynomial 0x82f63b78.
const CRC_TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82f6_3b78
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// CRC-32C of `data`.
pub fn crc32c(data: &[u8]) -> u32 {
    crc32c_extend(0, data)
}

/// CRC-32C of the bytes whose CRC-32C is `crc` followed by `data`.
fn crc32c_extend(crc: u32, data: &[u8]) -> u32 {
    let mut c = !crc;
    for &b in data {
        c = CRC_TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

/// LevelDB's / TensorFlow's masked CRC (stored so that a CRC of data holding CRCs stays
/// informative).
fn mask(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        // The CRC-32C of "123456789" (RFC 3720, iSCSI) is 0xe3069283.
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(crc32c_extend(crc32c(b"1234"), b"56789"), 0xe306_9283);
    }

    #[test]
    fn prefixes_are_found_from_any_of_the_files() {
        let p = Path::new("/x/model.ckpt");
        assert_eq!(
            prefix_of(Path::new("/x/model.ckpt.index")).as_deref(),
            Some(p)
        );
        assert_eq!(
            prefix_of(Path::new("/x/model.ckpt.data-00000-of-00001")).as_deref(),
            Some(p)
        );
        assert_eq!(prefix_of(Path::new("/x/model.ckpt.data-0-of-1")), None);
        assert_eq!(
            prefix_of(Path::new("/nonexistent/weights.safetensors")),
            None
        );
    }

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    /// A table block of `entries` (no prefix sharing), with its trailer.
    fn block(entries: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut b = Vec::new();
        for (k, v) in entries {
            varint(0, &mut b);
            varint(k.len() as u64, &mut b);
            varint(v.len() as u64, &mut b);
            b.extend_from_slice(k);
            b.extend_from_slice(v);
        }
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        let crc = mask(crc32c_extend(crc32c(&b), &[0]));
        b.push(0);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }

    #[test]
    fn a_header_claiming_a_huge_number_of_shards_allocates_nothing_by_it() {
        // Header: num_shards = 2⁴⁰; one float32 [1] in shard 0.
        let mut header = vec![0x08];
        varint(1 << 40, &mut header);
        let data = 2.5f32.to_le_bytes();
        let mut entry = vec![
            0x08, 0x01, 0x12, 0x04, 0x12, 0x02, 0x08, 0x01, 0x28, 0x04, 0x35,
        ];
        entry.extend_from_slice(&mask(crc32c(&data)).to_le_bytes());
        let data_block = block(&[(b"", &header), (b"w", &entry)]);
        let mut handle = Vec::new();
        varint(0, &mut handle);
        varint((data_block.len() - TRAILER_LEN) as u64, &mut handle);
        let index_block = block(&[(b"w", &handle)]);
        let mut file = data_block.clone();
        let mut footer = Vec::new();
        varint(0, &mut footer);
        varint(0, &mut footer);
        varint(data_block.len() as u64, &mut footer);
        varint((index_block.len() - TRAILER_LEN) as u64, &mut footer);
        footer.resize(40, 0);
        footer.extend_from_slice(&TABLE_MAGIC.to_le_bytes());
        file.extend_from_slice(&index_block);
        file.extend_from_slice(&footer);
        let d = tempfile::tempdir().unwrap();
        let prefix = d.path().join("m");
        std::fs::write(d.path().join("m.index"), &file).unwrap();
        std::fs::write(shard_path(&prefix, 0, 1 << 40), data).unwrap();
        let st = read(&prefix).unwrap();
        assert_eq!(st.f32("w").unwrap(), (vec![1], vec![2.5]));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [&b""[..], &[0u8; 47], &[0xffu8; 200]] {
            assert!(parse_index(bytes).is_err());
        }
    }
}
