//! PyTorch checkpoints written by `torch.save` (the zip format of PyTorch 1.6 and later): the
//! state dicts the reference code saves — `torch.save(net.state_dict(), 'BLT_net….pth')` in
//! `KietzmannLab/BLT-pytorch-CCN23`, one at initialisation (`_epoch_-1.pth`), every 30 epochs
//! and at the end — read without Python.
//!
//! A `.pth` file is a zip archive: `<name>/data.pkl`, a pickle (protocol 2) of the object, and
//! `<name>/data/<key>`, the raw little-endian bytes of each storage (`<name>/byteorder` says
//! `little`, or `big` on big-endian writers). The pickle of a state dict is a small program:
//! an `OrderedDict` filled with tensors, each rebuilt by `torch._utils._rebuild_tensor_v2`
//! from a persistent storage id `('storage', torch.FloatStorage, key, location, numel)`, an
//! offset, a size and a stride.
//!
//! This reader runs that program on a restricted machine that knows only what state dicts
//! hold — ordered dicts, tensors rebuilt from storages, parameters, numbers, strings, tuples,
//! lists, dicts — and refuses every other object (`torch.save(model)` pickles the model's
//! classes, which only their Python code can rebuild): nothing in the file is ever executed.
//! Sizes and nesting are bounded before anything is allocated, and every error names the
//! file.
//!
//! The result is a [`SafeTensors`] in memory (each tensor made contiguous, its dtype kept), so
//! everything that reads weights reads `.pth` files too ([`SafeTensors::read`] looks at the
//! file's first bytes). A dict that wraps the state dict under `state_dict`, `model_state_dict`,
//! `model` or `net` is unwrapped; a `module.` prefix on every name (`nn.DataParallel`) is
//! dropped.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use crate::safetensors::{Dtype, SafeTensors, SafetensorsError};

/// The first bytes of a zip archive (a local file header).
pub const ZIP_MAGIC: &[u8] = b"PK\x03\x04";

/// The first bytes of PyTorch's legacy (before 1.6) serialisation: pickle protocol 2, then the
/// magic number 0x1950a86a20f9469cfc6c as a LONG1.
pub const LEGACY_MAGIC: &[u8] = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19";

/// Containers nested deeper than this are refused (a state dict nests three deep).
const MAX_DEPTH: u32 = 64;

/// Keys under which checkpoints commonly wrap their state dict.
const WRAPPERS: [&str; 4] = ["state_dict", "model_state_dict", "model", "net"];

/// Reads the state dict of the PyTorch checkpoint at `path` as safetensors (in memory).
pub fn read(path: &Path) -> Result<SafeTensors, SafetensorsError> {
    let err = |msg: String| SafetensorsError::Pth {
        path: path.to_path_buf(),
        msg,
    };
    let f = std::fs::File::open(path).map_err(|error| SafetensorsError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(f))
        .map_err(|e| err(format!("not a readable zip archive: {e}")))?;
    let pkl = zip
        .file_names()
        .filter_map(|n| n.ok())
        .find(|n| *n == "data.pkl" || n.ends_with("/data.pkl"))
        .map(|n| n.to_string())
        .ok_or_else(|| {
            err("no data.pkl in the archive (not a torch.save checkpoint)".to_string())
        })?;
    let prefix = pkl.strip_suffix("data.pkl").unwrap_or("").to_string();
    let program = member(&mut zip, &pkl, None).map_err(&err)?;
    let big_endian = match member(&mut zip, &format!("{prefix}byteorder"), Some(16)) {
        Ok(b) => match String::from_utf8_lossy(&b).trim() {
            "little" => false,
            "big" => true,
            other => return Err(err(format!("byteorder '{other}' (expected little or big)"))),
        },
        // Written by every PyTorch since 1.10; older files are little-endian.
        Err(_) => false,
    };
    let top = Machine::new(&program)
        .run()
        .map_err(|m| err(format!("{pkl}: {m}")))?;
    let entries = state_dict(top).map_err(&err)?;
    // Storages, each read once.
    let mut storages: HashMap<String, Vec<u8>> = HashMap::new();
    let mut need = 0u128;
    for (_, t) in &entries {
        need += t.bytes() as u128;
    }
    if let Some(m) = crate::mem::exceeds_u128(need).map_err(&err)? {
        return Err(err(format!("its tensors need {m}")));
    }
    let mut out: Vec<Loaded> = Vec::with_capacity(entries.len());
    for (name, t) in entries {
        if !storages.contains_key(&t.key) {
            let want = t.numel.checked_mul(t.dtype.size()).ok_or_else(|| {
                err(format!(
                    "storage '{}' of {} elements overflows",
                    t.key, t.numel
                ))
            })?;
            let path_in = format!("{prefix}data/{}", t.key);
            let bytes = member(&mut zip, &path_in, Some(want)).map_err(&err)?;
            if bytes.len() < want {
                return Err(err(format!(
                    "storage {path_in} holds {} bytes, its {} {} elements need {want}",
                    bytes.len(),
                    t.numel,
                    t.dtype.name()
                )));
            }
            storages.insert(t.key.clone(), bytes);
        }
        let data = t
            .gather(&storages[&t.key], big_endian)
            .map_err(|m| err(format!("tensor '{name}': {m}")))?;
        out.push(Loaded {
            name,
            dtype: t.dtype,
            shape: t.size,
            data,
        });
    }
    let bytes = to_safetensors(&out);
    SafeTensors::parse(bytes, path)
}

/// A tensor a state dict's pickle names (its storage not read).
#[derive(Debug, Clone, PartialEq)]
pub struct PickledTensor {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    /// The storage's member, `data/<storage>` in the archive.
    pub storage: String,
}

/// The tensors a state dict's pickle (`data.pkl`) names, in order, without reading any
/// storage — what [`read`] runs first, exposed for fuzzing.
pub fn read_pickle(program: &[u8]) -> Result<Vec<PickledTensor>, String> {
    let top = Machine::new(program).run()?;
    Ok(state_dict(top)?
        .into_iter()
        .map(|(name, t)| PickledTensor {
            name,
            dtype: t.dtype,
            shape: t.size,
            storage: t.key,
        })
        .collect())
}

/// A tensor read: name, dtype, shape and contiguous little-endian bytes.
pub(crate) struct Loaded {
    pub(crate) name: String,
    pub(crate) dtype: Dtype,
    pub(crate) shape: Vec<usize>,
    pub(crate) data: Vec<u8>,
}

/// The bytes of archive member `name`, refused past `limit` bytes when one is given (a
/// storage's declared size) and past the memory available in any case.
fn member<R: Read + std::io::Seek>(
    zip: &mut zip::ZipArchive<R>,
    name: &str,
    limit: Option<usize>,
) -> Result<Vec<u8>, String> {
    let mut f = zip
        .by_name(name)
        .map_err(|e| format!("member {name}: {e}"))?;
    let size = f.size();
    if let Some(l) = limit
        && size > l as u64
    {
        return Err(format!(
            "member {name} holds {size} bytes, more than the {l} declared"
        ));
    }
    if let Some(m) = crate::mem::exceeds(size)? {
        return Err(format!("member {name} holds {m}"));
    }
    let mut buf = Vec::with_capacity(size as usize);
    f.by_ref()
        .take(size)
        .read_to_end(&mut buf)
        .map_err(|e| format!("member {name}: {e}"))?;
    Ok(buf)
}

/// Safetensors bytes of `tensors` (in their order; the format's reader sorts names).
/// Tensors read into memory as one safetensors file's bytes (in this order).
pub(crate) fn to_safetensors(tensors: &[Loaded]) -> Vec<u8> {
    let entries = tensors
        .iter()
        .map(|t| (t.name.as_str(), t.dtype, &t.shape[..], t.data.len()));
    crate::safetensors::serialise(entries, &Default::default(), |out| {
        tensors.iter().for_each(|t| out.extend_from_slice(&t.data))
    })
}

/// A tensor of the pickle: a view (`offset`, `size`, `stride`, in elements) of storage `key`
/// (`numel` elements of `dtype`).
#[derive(Debug, Clone, PartialEq)]
struct TensorRef {
    key: String,
    dtype: Dtype,
    numel: usize,
    offset: usize,
    size: Vec<usize>,
    stride: Vec<usize>,
}

impl TensorRef {
    /// Bytes of the contiguous tensor (saturating: checked against memory first).
    fn bytes(&self) -> usize {
        self.size
            .iter()
            .try_fold(self.dtype.size(), |a, &s| a.checked_mul(s))
            .unwrap_or(usize::MAX)
    }

    /// The view's elements in row-major order, little-endian.
    fn gather(&self, storage: &[u8], big_endian: bool) -> Result<Vec<u8>, String> {
        let es = self.dtype.size();
        let n: usize = self.size.iter().product();
        if n == 0 {
            return Ok(Vec::new());
        }
        // The last element the view reads.
        let mut last = self.offset as u128;
        for (&s, &st) in self.size.iter().zip(&self.stride) {
            last += (s as u128 - 1) * st as u128;
        }
        if last >= self.numel as u128 {
            return Err(format!(
                "its view (offset {}, size {:?}, stride {:?}) reads element {last} of a \
                 storage of {}",
                self.offset, self.size, self.stride, self.numel
            ));
        }
        let mut out = Vec::with_capacity(n * es);
        // Row-major strides (what state dicts nearly always hold): one copy.
        let mut contiguous = true;
        let mut want = 1usize;
        for (&s, &st) in self.size.iter().zip(&self.stride).rev() {
            contiguous &= s == 1 || st == want;
            want *= s;
        }
        if contiguous {
            let bytes = &storage[self.offset * es..(self.offset + n) * es];
            if big_endian {
                bytes
                    .chunks_exact(es)
                    .for_each(|e| out.extend(e.iter().rev()));
            } else {
                out.extend_from_slice(bytes);
            }
            return Ok(out);
        }
        let mut idx = vec![0usize; self.size.len()];
        for _ in 0..n {
            let at = self.offset
                + idx
                    .iter()
                    .zip(&self.stride)
                    .map(|(&i, &s)| i * s)
                    .sum::<usize>();
            let e = &storage[at * es..(at + 1) * es];
            if big_endian {
                out.extend(e.iter().rev());
            } else {
                out.extend_from_slice(e);
            }
            // Next index, last axis fastest.
            for d in (0..idx.len()).rev() {
                idx[d] += 1;
                if idx[d] < self.size[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
        Ok(out)
    }
}

/// A value of the restricted pickle machine.
#[derive(Debug, Clone, PartialEq)]
enum V {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// `module.name` of a GLOBAL.
    Global(String),
    Tuple(Box<Seq>),
    List(Box<Seq>),
    /// Dicts and ordered dicts: pairs in insertion order (a later equal key replaces).
    Dict(Box<Seq>),
    Storage {
        dtype: Dtype,
        key: String,
        numel: usize,
    },
    Tensor(Box<TensorRef>),
    Mark,
}

/// Items of a container (a dict's as key, value, key, value, …) and its nesting depth.
#[derive(Debug, Clone, PartialEq, Default)]
struct Seq {
    items: Vec<V>,
    depth: u32,
}

impl V {
    fn depth(&self) -> u32 {
        match self {
            V::Tuple(s) | V::List(s) | V::Dict(s) => s.depth,
            _ => 0,
        }
    }

    /// Values it holds, itself included (what a copy of it costs).
    fn nodes(&self) -> usize {
        match self {
            V::Tuple(s) | V::List(s) | V::Dict(s) => {
                1 + s.items.iter().map(V::nodes).sum::<usize>()
            }
            _ => 1,
        }
    }

    fn kind(&self) -> String {
        match self {
            V::None => "None".into(),
            V::Bool(_) => "a bool".into(),
            V::Int(_) => "an int".into(),
            V::Float(_) => "a float".into(),
            V::Str(_) => "a string".into(),
            V::Global(g) => format!("the global {g}"),
            V::Tuple(_) => "a tuple".into(),
            V::List(_) => "a list".into(),
            V::Dict(_) => "a dict".into(),
            V::Storage { .. } => "a storage".into(),
            V::Tensor(_) => "a tensor".into(),
            V::Mark => "a mark".into(),
        }
    }
}

/// A container of `items`, refused past [`MAX_DEPTH`].
fn seq(items: Vec<V>) -> Result<Box<Seq>, String> {
    let mut s = Box::new(Seq::default());
    extend(&mut s, items)?;
    Ok(s)
}

/// Adds `items` to container `c`, keeping its depth.
fn extend(c: &mut Seq, items: Vec<V>) -> Result<(), String> {
    let d = 1 + items.iter().map(V::depth).max().unwrap_or(0);
    if d > MAX_DEPTH {
        return Err(format!("containers nested more than {MAX_DEPTH} deep"));
    }
    c.depth = c.depth.max(d);
    c.items.extend(items);
    Ok(())
}

/// The pickle machine: a stack, the memo, and a budget of values (128 per byte of the
/// program) that every value made and every copy into or out of the memo draws on, so that a
/// few bytes cannot ask for exponentially many values or quadratic copying.
struct Machine<'a> {
    code: &'a [u8],
    pos: usize,
    stack: Vec<V>,
    memo: HashMap<u32, V>,
    budget: usize,
}

impl<'a> Machine<'a> {
    fn new(code: &'a [u8]) -> Self {
        Self {
            code,
            pos: 0,
            stack: Vec::new(),
            memo: HashMap::new(),
            budget: 128 * code.len() + 4096,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.code.len())
            .ok_or_else(|| format!("truncated at byte {} (needs {n} more)", self.pos))?;
        let s = &self.code[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn line(&mut self) -> Result<String, String> {
        let rest = &self.code[self.pos..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| format!("unterminated line at byte {}", self.pos))?;
        let s = String::from_utf8(rest[..n].to_vec())
            .map_err(|_| format!("a line that is not UTF-8 at byte {}", self.pos))?;
        self.pos += n + 1;
        Ok(s)
    }

    fn text(&mut self, n: usize) -> Result<String, String> {
        let at = self.pos;
        String::from_utf8(self.take(n)?.to_vec())
            .map_err(|_| format!("a string that is not UTF-8 at byte {at}"))
    }

    fn pop(&mut self) -> Result<V, String> {
        match self.stack.pop() {
            Some(V::Mark) | None => Err(format!("stack underflow at byte {}", self.pos)),
            Some(v) => Ok(v),
        }
    }

    /// The values above the topmost mark (the mark removed).
    fn pop_mark(&mut self) -> Result<Vec<V>, String> {
        let i = self
            .stack
            .iter()
            .rposition(|v| *v == V::Mark)
            .ok_or_else(|| format!("no mark on the stack at byte {}", self.pos))?;
        let items = self.stack.split_off(i + 1);
        self.stack.pop();
        Ok(items)
    }

    fn top(&mut self) -> Result<&mut V, String> {
        let at = self.pos;
        self.stack
            .last_mut()
            .filter(|v| **v != V::Mark)
            .ok_or_else(|| format!("stack underflow at byte {at}"))
    }

    fn push(&mut self, v: V) -> Result<(), String> {
        self.charge(1)?;
        self.stack.push(v);
        Ok(())
    }

    fn put(&mut self, i: u32) -> Result<(), String> {
        let n = self.top()?.nodes();
        self.charge(n)?;
        let v = self.top()?.clone();
        self.memo.insert(i, v);
        Ok(())
    }

    /// Draws `n` values from the budget.
    fn charge(&mut self, n: usize) -> Result<(), String> {
        self.budget = self
            .budget
            .checked_sub(n)
            .ok_or("more values than a state dict of this size holds")?;
        Ok(())
    }

    fn get(&mut self, i: u32) -> Result<(), String> {
        let v = self
            .memo
            .get(&i)
            .ok_or_else(|| format!("memo entry {i} read before it was written"))?;
        let (n, v) = (v.nodes(), v.clone());
        self.charge(n)?;
        self.stack.push(v);
        Ok(())
    }

    /// Runs the program to STOP; the object it built.
    fn run(mut self) -> Result<V, String> {
        loop {
            let at = self.pos;
            let op = self.u8()?;
            match op {
                0x80 => {
                    let p = self.u8()?;
                    if p > 5 {
                        return Err(format!("pickle protocol {p}"));
                    }
                }
                // FRAME (protocol 4): a length to skip.
                0x95 => {
                    self.take(8)?;
                }
                b'.' => {
                    let v = self.pop()?;
                    return Ok(v);
                }
                b'(' => self.stack.push(V::Mark),
                b'N' => self.push(V::None)?,
                0x88 => self.push(V::Bool(true))?,
                0x89 => self.push(V::Bool(false))?,
                b'J' => {
                    let v = self.u32()? as i32;
                    self.push(V::Int(v as i64))?
                }
                b'K' => {
                    let v = self.u8()?;
                    self.push(V::Int(v as i64))?
                }
                b'M' => {
                    let v = self.u16()?;
                    self.push(V::Int(v as i64))?
                }
                0x8a => {
                    let n = self.u8()? as usize;
                    let b = self.take(n)?;
                    if n > 8 {
                        return Err(format!("an integer of {n} bytes at byte {at}"));
                    }
                    let mut v: i64 = 0;
                    for (i, &x) in b.iter().enumerate() {
                        v |= (x as i64) << (8 * i);
                    }
                    // Sign-extend from n bytes.
                    if (1..8).contains(&n) && b[n - 1] & 0x80 != 0 {
                        v |= -1i64 << (8 * n);
                    }
                    self.push(V::Int(v))?
                }
                b'G' => {
                    let b = self.take(8)?;
                    let v = f64::from_be_bytes(b.try_into().unwrap_or([0; 8]));
                    self.push(V::Float(v))?
                }
                b'X' => {
                    let n = self.u32()? as usize;
                    let s = self.text(n)?;
                    self.push(V::Str(s))?
                }
                0x8c => {
                    let n = self.u8()? as usize;
                    let s = self.text(n)?;
                    self.push(V::Str(s))?
                }
                0x8d => {
                    let b = self.take(8)?;
                    let n = u64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
                    let n = usize::try_from(n).map_err(|_| "a string too long".to_string())?;
                    let s = self.text(n)?;
                    self.push(V::Str(s))?
                }
                // SHORT_BINSTRING / BINSTRING (protocol 2 bytes-as-str): kept as text.
                b'U' => {
                    let n = self.u8()? as usize;
                    let s = String::from_utf8_lossy(self.take(n)?).into_owned();
                    self.push(V::Str(s))?
                }
                b'T' => {
                    let n = self.u32()? as usize;
                    let s = String::from_utf8_lossy(self.take(n)?).into_owned();
                    self.push(V::Str(s))?
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.push(V::Global(format!("{module}.{name}")))?
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module, name) {
                        (V::Str(m), V::Str(n)) => self.push(V::Global(format!("{m}.{n}")))?,
                        _ => return Err(format!("STACK_GLOBAL without two strings at byte {at}")),
                    }
                }
                b')' => self.push(V::Tuple(seq(Vec::new())?))?,
                b']' => self.push(V::List(seq(Vec::new())?))?,
                b'}' => self.push(V::Dict(seq(Vec::new())?))?,
                b't' => {
                    let items = self.pop_mark()?;
                    self.push(V::Tuple(seq(items)?))?
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.push(V::Tuple(seq(items)?))?
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    self.push(V::List(seq(items)?))?
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    if items.len() % 2 != 0 {
                        return Err(format!("DICT with an odd number of items at byte {at}"));
                    }
                    self.push(V::Dict(seq(items)?))?
                }
                b'a' => {
                    let v = self.pop()?;
                    match self.top()? {
                        V::List(s) => extend(s, vec![v])?,
                        other => return Err(format!("APPEND to {} at byte {at}", other.kind())),
                    }
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    match self.top()? {
                        V::List(s) => extend(s, items)?,
                        other => return Err(format!("APPENDS to {} at byte {at}", other.kind())),
                    }
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    match self.top()? {
                        V::Dict(s) => extend(s, vec![k, v])?,
                        other => return Err(format!("SETITEM on {} at byte {at}", other.kind())),
                    }
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    if items.len() % 2 != 0 {
                        return Err(format!("SETITEMS with an odd number of items at byte {at}"));
                    }
                    match self.top()? {
                        V::Dict(s) => extend(s, items)?,
                        other => return Err(format!("SETITEMS on {} at byte {at}", other.kind())),
                    }
                }
                b'q' => {
                    let i = self.u8()? as u32;
                    self.put(i)?
                }
                b'r' => {
                    let i = self.u32()?;
                    self.put(i)?
                }
                0x94 => {
                    let i = self.memo.len() as u32;
                    self.put(i)?
                }
                b'h' => {
                    let i = self.u8()? as u32;
                    self.get(i)?
                }
                b'j' => {
                    let i = self.u32()?;
                    self.get(i)?
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let v = storage(pid).map_err(|m| format!("{m} (byte {at})"))?;
                    self.push(v)?
                }
                // REDUCE, and NEWOBJ (`cls.__new__(cls, *args)`): only the callables of
                // state dicts, anything else refused by name.
                b'R' | 0x81 => {
                    let args = self.pop()?;
                    let f = self.pop()?;
                    let v = reduce(f, args).map_err(|m| format!("{m} (byte {at})"))?;
                    self.push(v)?
                }
                // BUILD: an object's state — the `_metadata` of a state dict, a tensor's
                // hooks — which reading weights does not need.
                b'b' => {
                    self.pop()?;
                    self.top()?;
                }
                b'0' => {
                    self.pop()?;
                }
                b'2' => {
                    let v = self.top()?.clone();
                    self.push(v)?
                }
                b'1' => {
                    self.pop_mark()?;
                }
                _ => {
                    return Err(format!(
                        "opcode 0x{op:02x} at byte {at}, which state dicts do not use"
                    ));
                }
            }
        }
    }
}

/// A storage from its persistent id `('storage', torch.<Type>Storage, key, location, numel)`.
fn storage(pid: V) -> Result<V, String> {
    let V::Tuple(t) = pid else {
        return Err(format!("a persistent id that is {}", pid.kind()));
    };
    match &t.items[..] {
        [
            V::Str(tag),
            V::Global(ty),
            V::Str(key),
            V::Str(_location),
            V::Int(numel),
        ] if tag == "storage" => {
            let dtype = match ty.as_str() {
                "torch.FloatStorage" => Dtype::F32,
                "torch.DoubleStorage" => Dtype::F64,
                "torch.HalfStorage" => Dtype::F16,
                "torch.BFloat16Storage" => Dtype::BF16,
                "torch.LongStorage" => Dtype::I64,
                "torch.IntStorage" => Dtype::I32,
                "torch.ByteStorage" => Dtype::U8,
                "torch.BoolStorage" => Dtype::Bool,
                other => return Err(format!("storages of type {other} are not read")),
            };
            let numel =
                usize::try_from(*numel).map_err(|_| format!("a storage of {numel} elements"))?;
            if key.is_empty() || key.contains('/') || key.contains("..") {
                return Err(format!("a storage key '{key}'"));
            }
            Ok(V::Storage {
                dtype,
                key: key.clone(),
                numel,
            })
        }
        _ => Err("a persistent id that is not ('storage', type, key, location, numel)".into()),
    }
}

/// Non-negative integers of a tuple (a tensor's size or stride).
fn dims(v: &V, what: &str) -> Result<Vec<usize>, String> {
    let V::Tuple(t) = v else {
        return Err(format!("a tensor {what} that is {}", v.kind()));
    };
    t.items
        .iter()
        .map(|x| match x {
            V::Int(i) => usize::try_from(*i).map_err(|_| format!("a tensor {what} of {i}")),
            other => Err(format!("a tensor {what} holding {}", other.kind())),
        })
        .collect()
}

/// A REDUCE: the few callables state dicts use.
fn reduce(f: V, args: V) -> Result<V, String> {
    let V::Global(g) = &f else {
        return Err(format!("a call of {}", f.kind()));
    };
    let V::Tuple(a) = args else {
        return Err(format!("a call of {g} with {}", args.kind()));
    };
    let a = a.items;
    match g.as_str() {
        "collections.OrderedDict" if a.is_empty() => Ok(V::Dict(seq(Vec::new())?)),
        "torch._utils._rebuild_tensor_v2" | "torch._utils._rebuild_tensor" if a.len() >= 4 => {
            let V::Storage { dtype, key, numel } = &a[0] else {
                return Err(format!("{g} of {}", a[0].kind()));
            };
            let V::Int(offset) = a[1] else {
                return Err(format!("{g} with an offset that is {}", a[1].kind()));
            };
            let offset =
                usize::try_from(offset).map_err(|_| format!("a tensor offset of {offset}"))?;
            let (size, stride) = (dims(&a[2], "size")?, dims(&a[3], "stride")?);
            if size.len() != stride.len() {
                return Err(format!("a tensor of size {size:?} and stride {stride:?}"));
            }
            Ok(V::Tensor(Box::new(TensorRef {
                key: key.clone(),
                dtype: *dtype,
                numel: *numel,
                offset,
                size,
                stride,
            })))
        }
        "torch._utils._rebuild_parameter" | "torch._utils._rebuild_parameter_with_state"
            if !a.is_empty() =>
        {
            match &a[0] {
                V::Tensor(_) => Ok(a.into_iter().next().unwrap_or(V::None)),
                other => Err(format!("{g} of {}", other.kind())),
            }
        }
        _ => Err(format!(
            "the checkpoint holds a {g} object, which only Python code can rebuild; ventral \
             reads state dicts (tensors by name): save model.state_dict() with torch.save, or \
             the weights as safetensors"
        )),
    }
}

/// The named tensors of the pickled object: a dict of tensors, or one wrapped under a key of
/// [`WRAPPERS`]; entries that are not tensors are skipped, a common `module.` prefix dropped.
fn state_dict(top: V) -> Result<Vec<(String, TensorRef)>, String> {
    let V::Dict(d) = top else {
        return Err(format!(
            "the checkpoint holds {}, not a state dict (a dict of tensors)",
            top.kind()
        ));
    };
    // A dict's items as (key, value) pairs.
    let as_pairs = |items: &[V]| -> Vec<(V, V)> {
        items
            .chunks_exact(2)
            .map(|kv| (kv[0].clone(), kv[1].clone()))
            .collect()
    };
    let tensors = |pairs: &[(V, V)]| -> Vec<(String, TensorRef)> {
        let mut out: Vec<(String, TensorRef)> = Vec::new();
        let mut at: HashMap<&str, usize> = HashMap::new();
        for (k, v) in pairs {
            if let (V::Str(name), V::Tensor(t)) = (k, v) {
                // A later equal key replaces the earlier (Python dict semantics).
                match at.get(name.as_str()) {
                    Some(&i) => out[i].1 = (**t).clone(),
                    None => {
                        at.insert(name, out.len());
                        out.push((name.clone(), (**t).clone()));
                    }
                }
            }
        }
        out
    };
    let pairs = as_pairs(&d.items);
    let mut found = tensors(&pairs);
    if found.is_empty() {
        for w in WRAPPERS {
            let inner = pairs.iter().find_map(|(k, v)| match (k, v) {
                (V::Str(n), V::Dict(d)) if n == w => Some(d),
                _ => None,
            });
            if let Some(d) = inner {
                found = tensors(&as_pairs(&d.items));
                if !found.is_empty() {
                    break;
                }
            }
        }
    }
    if found.is_empty() {
        let keys: Vec<String> = pairs
            .iter()
            .take(12)
            .map(|(k, v)| match k {
                V::Str(s) => format!("'{s}' ({})", v.kind()),
                other => other.kind(),
            })
            .collect();
        return Err(format!(
            "no tensors in the checkpoint's dict (keys: {}{}); ventral reads state dicts, \
             also under {}",
            keys.join(", "),
            if pairs.len() > 12 { ", …" } else { "" },
            WRAPPERS.join(", ")
        ));
    }
    if found.iter().all(|(n, _)| n.starts_with("module.")) {
        for (n, _) in &mut found {
            n.drain(.."module.".len());
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pickle's bytes from opcodes and operands written out.
    fn run(code: &[u8]) -> Result<V, String> {
        Machine::new(code).run()
    }

    #[test]
    fn the_machine_builds_containers_and_numbers() {
        // (1, -2, 'ab', [True, None], {'k': 3.5})
        let mut c = vec![0x80, 2, b'('];
        c.extend([b'K', 1, b'J']);
        c.extend((-2i32).to_le_bytes());
        c.extend([
            0x8c, 2, b'a', b'b', b']', b'(', 0x88, b'N', b'e', b'}', 0x8c, 1, b'k', b'G',
        ]);
        c.extend(3.5f64.to_be_bytes());
        c.extend([b's', b't', b'.']);
        let v = run(&c).unwrap();
        let V::Tuple(t) = v else { panic!("{v:?}") };
        assert_eq!(t.items[0], V::Int(1));
        assert_eq!(t.items[1], V::Int(-2));
        assert_eq!(t.items[2], V::Str("ab".into()));
        let V::List(l) = &t.items[3] else { panic!() };
        assert_eq!(l.items, vec![V::Bool(true), V::None]);
        let V::Dict(d) = &t.items[4] else { panic!() };
        assert_eq!(d.items, vec![V::Str("k".into()), V::Float(3.5)]);
        assert_eq!(t.depth, 2);
    }

    #[test]
    fn long1_is_little_endian_twos_complement() {
        for (bytes, want) in [
            (vec![0x8a, 1, 0xff], -1i64),
            (vec![0x8a, 2, 0x00, 0x01], 256),
            (vec![0x8a, 0], 0),
            (vec![0x8a, 8, 0, 0, 0, 0, 0, 0, 0, 0x80], i64::MIN),
        ] {
            let mut c = bytes.clone();
            c.push(b'.');
            assert_eq!(run(&c).unwrap(), V::Int(want), "{bytes:?}");
        }
    }

    #[test]
    fn objects_other_than_a_state_dicts_are_refused() {
        // GLOBAL 'os system' called with ('echo',): never run, refused by name.
        let mut c = b"\x80\x02cos\nsystem\n".to_vec();
        c.extend([0x8c, 4]);
        c.extend(b"echo");
        c.extend([0x85, b'R', b'.']);
        let e = run(&c).unwrap_err();
        assert!(e.contains("os.system") && e.contains("state_dict"), "{e}");
        // An opcode state dicts never use (INST).
        let e = run(b"\x80\x02(i__main__\nX\n.").unwrap_err();
        assert!(e.contains("opcode 0x69"), "{e}");
    }

    #[test]
    fn nesting_and_copies_are_bounded() {
        // 100 nested empty lists: refused past MAX_DEPTH.
        let mut c = vec![0x80, 2];
        c.extend(std::iter::repeat_n(b'(', 100));
        c.push(b']');
        c.extend(std::iter::repeat_n(b'l', 99));
        c.push(b'.');
        // `(((...]` then `l`: each LIST takes the items above its mark.
        let e = run(&c).unwrap_err();
        assert!(e.contains("nested"), "{e}");
        // Doubling a list through the memo 40 times: refused by the budget, not allocated.
        let mut c = vec![0x80, 2, b']', b'q', 0];
        for _ in 0..40 {
            c.extend([b'h', 0, b'h', 0, 0x86, b'q', 0]);
        }
        c.push(b'.');
        let e = run(&c).unwrap_err();
        assert!(e.contains("more values"), "{e}");
        // Truncation and underflow name where.
        assert!(
            run(b"\x80\x02X\x05\x00\x00\x00ab")
                .unwrap_err()
                .contains("truncated")
        );
        assert!(run(b"\x80\x02t.").unwrap_err().contains("no mark"));
        assert!(run(b"\x80\x02R.").unwrap_err().contains("underflow"));
        assert!(run(b"\x80\x02h\x07.").unwrap_err().contains("memo entry 7"));
    }

    #[test]
    fn views_gather_in_row_major_order_and_stay_inside_their_storage() {
        // A 2 × 3 view with strides (1, 2) (a transposed 3 × 2) at offset 1 of 8 f32 values.
        let storage: Vec<u8> = (0..8u32).flat_map(|i| (i as f32).to_le_bytes()).collect();
        let t = TensorRef {
            key: "0".into(),
            dtype: Dtype::F32,
            numel: 8,
            offset: 1,
            size: vec![2, 3],
            stride: vec![1, 2],
        };
        let got: Vec<f32> = t
            .gather(&storage, false)
            .unwrap()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        assert_eq!(got, vec![1.0, 3.0, 5.0, 2.0, 4.0, 6.0]);
        // Big-endian storages are turned around per element.
        let be: Vec<u8> = (0..8u32).flat_map(|i| (i as f32).to_be_bytes()).collect();
        assert_eq!(
            t.gather(&be, true).unwrap(),
            t.gather(&storage, false).unwrap()
        );
        // One element past the storage: refused.
        let past = TensorRef {
            offset: 3,
            ..t.clone()
        };
        assert!(
            past.gather(&storage, false)
                .unwrap_err()
                .contains("reads element 8")
        );
        // Empty and scalar tensors.
        let empty = TensorRef {
            size: vec![0, 3],
            ..t.clone()
        };
        assert!(empty.gather(&storage, false).unwrap().is_empty());
        let scalar = TensorRef {
            size: vec![],
            stride: vec![],
            offset: 7,
            ..t
        };
        assert_eq!(
            scalar.gather(&storage, false).unwrap(),
            7.0f32.to_le_bytes()
        );
    }
}
