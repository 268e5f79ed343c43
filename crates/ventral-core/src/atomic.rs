//! Atomic writes: a reader sees either the old file (or nothing) or the complete new one.
//!
//! Files are written to a temporary sibling, flushed and fsynced, renamed over the target and the
//! parent directory is fsynced. Directories of several files ([`AtomicDir`]) are built under a
//! temporary sibling name and renamed into place once complete.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A unique temporary sibling of `path`: `.<name>.<pid>-<n>.tmp` in the same directory.
fn temp_sibling(path: &Path) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let tmp = format!(".{name}.{}-{n}.tmp", std::process::id());
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.join(tmp),
        _ => PathBuf::from(tmp),
    }
}

/// The owner's pid of a ventral temporary name (`.<name>.<pid>-<n>.tmp`), if it is one.
fn temp_owner(name: &str) -> Option<u32> {
    let stem = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (_, tail) = stem.rsplit_once('.')?;
    let (pid, n) = tail.split_once('-')?;
    n.parse::<u64>().ok()?;
    pid.parse().ok()
}

/// Whether process `pid` runs on this machine (`/proc/<pid>`); `true` where that cannot be
/// told, so nothing of a live process is ever removed.
fn alive(pid: u32) -> bool {
    if !Path::new("/proc/self").exists() {
        return true;
    }
    pid == std::process::id() || Path::new("/proc").join(pid.to_string()).exists()
}

/// Remove the temporaries that killed ventral processes left in `dir` (`.<name>.<pid>-<n>.tmp`
/// files and directories whose pid no longer runs here and that were last modified more than
/// a minute ago — the age spares a writer on another machine sharing the directory). Returns
/// what was removed. Every atomic write calls this on its directory, so a rerun of any command
/// cleans up after a `kill -9`.
pub fn remove_orphans(dir: &Path) -> Vec<PathBuf> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let mut removed = Vec::new();
    let Ok(rd) = fs::read_dir(dir) else {
        return removed;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = temp_owner(&name) else {
            continue;
        };
        if alive(pid) {
            continue;
        }
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age.as_secs() >= 60);
        if !old {
            continue;
        }
        let p = e.path();
        let ok = if p.is_dir() {
            fs::remove_dir_all(&p).is_ok()
        } else {
            fs::remove_file(&p).is_ok()
        };
        if ok {
            removed.push(p);
        }
    }
    removed
}

/// A unique temporary sibling of `path` (see `temp_sibling`), after removing orphans of
/// dead processes from its directory.
pub fn temp_path(path: &Path) -> PathBuf {
    let t = temp_sibling(path);
    remove_orphans(t.parent().unwrap_or(Path::new(".")));
    t
}

/// fsync a directory so that a rename inside it is durable (no-op where unsupported).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    match File::open(dir) {
        Ok(f) => match f.sync_all() {
            Ok(()) => Ok(()),
            // Some filesystems refuse fsync on directories; the rename is still atomic.
            Err(e) if e.kind() == io::ErrorKind::InvalidInput => Ok(()),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    }
}

fn with_path(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

/// Write a file atomically through a buffered writer given to `fill`.
///
/// If `fill` fails, the temporary file is removed and an existing file at `path` is untouched.
pub fn write_atomic<F>(path: &Path, fill: F) -> io::Result<()>
where
    F: FnOnce(&mut BufWriter<File>) -> io::Result<()>,
{
    let tmp = temp_path(path);
    let result = (|| {
        let file = File::create(&tmp).map_err(|e| with_path(e, "cannot create", &tmp))?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        fill(&mut w)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path).map_err(|e| with_path(e, "cannot rename onto", path))?;
        sync_dir(path.parent().unwrap_or(Path::new(".")))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Write `bytes` to `path` atomically.
pub fn write_bytes_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic(path, |w| w.write_all(bytes))
}

/// Whether `name` can name one entry inside an output directory that ventral writes (a split
/// of a dataset root, a sweep's run): one plain path component — no `/` or `\\`, not `.` or
/// `..`, no NUL — not hidden (a leading `.` is how ventral names its temporary directories
/// and locks), at most 255 bytes. `Err` says why not, for the caller's message.
pub fn check_plain_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        Err("it is empty")
    } else if name == "." || name == ".." {
        Err("it names a directory")
    } else if name.contains(['/', '\\', '\0']) {
        Err("it contains a path separator or NUL")
    } else if name.starts_with('.') {
        Err("it starts with '.' (hidden names are ventral's temporary directories)")
    } else if name.len() > 255 {
        Err("it is longer than 255 bytes")
    } else {
        Ok(())
    }
}

/// An advisory lock: an exclusive `flock` on a lock file holding its owner's description (a
/// pid, or `host:pid`). The kernel drops the lock when its process dies, so a killed writer
/// never blocks the next one; the file is removed on release. Output directories and files
/// are locked through [`OutputLock::acquire`] (`.<name>.lock` beside them); sweeps lock their
/// runs with [`OutputLock::try_at`].
#[derive(Debug)]
pub struct OutputLock {
    path: PathBuf,
    file: File,
}

impl OutputLock {
    /// Lock `target` for writing (lock file `.<name>.lock` beside it, holding the pid), or
    /// fail at once (`WouldBlock`) naming the holder's pid.
    pub fn acquire(target: &Path) -> io::Result<Self> {
        let name = target
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "out".into());
        let path = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => {
                fs::create_dir_all(p).map_err(|e| with_path(e, "cannot create", p))?;
                p.join(format!(".{name}.lock"))
            }
            _ => PathBuf::from(format!(".{name}.lock")),
        };
        match Self::try_at(&path, &std::process::id().to_string())? {
            Some(lock) => Ok(lock),
            None => {
                let holder = Self::holder(&path).unwrap_or_default();
                Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!(
                        "{} is being written by another process{}; wait for it to finish or choose another output",
                        target.display(),
                        if holder.is_empty() {
                            String::new()
                        } else {
                            format!(" (pid {holder})")
                        }
                    ),
                ))
            }
        }
    }

    /// Take the lock file `path`, writing `owner` into it; `Ok(None)` when another process
    /// (or another open of it in this one) holds it.
    pub fn try_at(path: &Path, owner: &str) -> io::Result<Option<Self>> {
        use std::os::unix::fs::MetadataExt as _;
        loop {
            let mut file = fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)
                .map_err(|e| with_path(e, "cannot create", path))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(fs::TryLockError::WouldBlock) => return Ok(None),
                Err(fs::TryLockError::Error(e)) => return Err(with_path(e, "cannot lock", path)),
            }
            // The previous holder may have removed the file between our open and our lock:
            // the lock counts only if the path still names the file we hold.
            let same = match (file.metadata(), fs::metadata(path)) {
                (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
                _ => false,
            };
            if !same {
                continue;
            }
            if let Err(e) = file
                .set_len(0)
                .and_then(|_| file.write_all(owner.as_bytes()))
                .and_then(|_| file.sync_all())
            {
                // We hold the lock, so the file is ours to remove (a full disk must not leave
                // an empty lock file behind).
                let _ = fs::remove_file(path);
                return Err(with_path(e, "cannot write", path));
            }
            return Ok(Some(Self {
                path: path.to_path_buf(),
                file,
            }));
        }
    }

    /// The owner written in lock file `path`, if a process holds it now.
    pub fn holder(path: &Path) -> Option<String> {
        let f = File::open(path).ok()?;
        match f.try_lock_shared() {
            Ok(()) => {
                let _ = f.unlock();
                None
            }
            Err(_) => Some(
                fs::read_to_string(path)
                    .map(|s| s.trim().to_string())
                    .unwrap_or_default(),
            ),
        }
    }
}

impl Drop for OutputLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

/// Whether `path` holds something an output would replace: a file, or a non-empty directory.
fn occupied(path: &Path) -> bool {
    path.exists()
        && !fs::read_dir(path)
            .map(|mut r| r.next().is_none())
            .unwrap_or(false)
}

/// A directory that becomes visible at its final path only when [`AtomicDir::commit`] is called.
///
/// Files are written into a temporary sibling directory. Dropping the value without committing
/// removes the temporary directory, so a failed command leaves nothing that looks complete.
#[derive(Debug)]
pub struct AtomicDir {
    tmp: PathBuf,
    target: PathBuf,
    committed: bool,
    overwrite: bool,
    /// Held from creation to commit or drop: a second writer of the same target fails at once.
    _lock: OutputLock,
}

impl AtomicDir {
    /// Start building `target`. Fails if `target` already exists (other than as an empty
    /// directory) unless `overwrite` is set, in which case the old directory is replaced only at
    /// commit time.
    pub fn create(target: &Path, overwrite: bool) -> io::Result<Self> {
        let lock = OutputLock::acquire(target)?;
        if occupied(target) && !overwrite {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} already exists (pass --overwrite to replace it)",
                    target.display()
                ),
            ));
        }
        if let Some(parent) = target.parent()
            && !parent.as_os_str().is_empty()
        {
            fs::create_dir_all(parent).map_err(|e| with_path(e, "cannot create", parent))?;
        }
        let tmp = temp_path(target);
        fs::create_dir(&tmp).map_err(|e| with_path(e, "cannot create", &tmp))?;
        Ok(Self {
            tmp,
            target: target.to_path_buf(),
            committed: false,
            overwrite,
            _lock: lock,
        })
    }

    /// The temporary directory to write into.
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// The final path.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Move the finished directory into place (replacing an old one when allowed at creation).
    pub fn commit(mut self) -> io::Result<PathBuf> {
        sync_dir(&self.tmp)?;
        if occupied(&self.target) && !self.overwrite {
            // Something else (not a ventral writer: they lock) made it meanwhile: keep it.
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} appeared while this command was writing it; nothing was replaced",
                    self.target.display()
                ),
            ));
        }
        if self.target.exists() {
            // Move the old directory aside first, so a crash leaves either the old or the new.
            let old = temp_sibling(&self.target);
            fs::rename(&self.target, &old)
                .map_err(|e| with_path(e, "cannot move", &self.target))?;
            fs::rename(&self.tmp, &self.target)
                .map_err(|e| with_path(e, "cannot rename onto", &self.target))?;
            let _ = fs::remove_dir_all(&old);
        } else {
            fs::rename(&self.tmp, &self.target)
                .map_err(|e| with_path(e, "cannot rename onto", &self.target))?;
        }
        sync_dir(self.target.parent().unwrap_or(Path::new(".")))?;
        self.committed = true;
        Ok(self.target.clone())
    }
}

impl Drop for AtomicDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.tmp);
        }
    }
}

#[cfg(test)]
mod lock_tests {
    use super::*;

    #[test]
    fn a_second_writer_of_the_same_output_fails_at_once() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("out");
        let a = AtomicDir::create(&target, false).unwrap();
        let e = AtomicDir::create(&target, false).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        assert!(
            e.to_string()
                .contains(&format!("pid {}", std::process::id())),
            "{e}"
        );
        fs::write(a.path().join("f"), b"x").unwrap();
        a.commit().unwrap();
        assert!(!d.path().join(".out.lock").exists(), "lock file removed");
        // Released: the next writer gets the ordinary "already exists".
        let e = AtomicDir::create(&target, false).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert!(AtomicDir::create(&target, true).is_ok());
    }

    #[test]
    fn an_output_made_meanwhile_is_not_replaced() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("out");
        let a = AtomicDir::create(&target, false).unwrap();
        fs::create_dir(&target).unwrap();
        fs::write(target.join("theirs"), b"keep").unwrap();
        let e = a.commit().unwrap_err();
        assert!(e.to_string().contains("appeared"), "{e}");
        assert_eq!(fs::read(target.join("theirs")).unwrap(), b"keep");
    }
}

#[cfg(test)]
mod orphan_tests {
    use super::*;

    #[test]
    fn orphans_of_dead_processes_are_removed_live_ones_kept() {
        let d = tempfile::tempdir().unwrap();
        let dead = d.path().join(".weights.safetensors.999999999-0.tmp");
        let dead_dir = d.path().join(".out.999999999-3.tmp");
        let mine = d.path().join(format!(".x.{}-0.tmp", std::process::id()));
        let fresh = d.path().join(".y.999999998-0.tmp");
        let other = d.path().join(".not-ours.tmp");
        fs::write(&dead, b"x").unwrap();
        fs::create_dir(&dead_dir).unwrap();
        fs::write(dead_dir.join("f"), b"x").unwrap();
        fs::write(&mine, b"x").unwrap();
        fs::write(&fresh, b"x").unwrap();
        fs::write(&other, b"x").unwrap();
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        for p in [&dead, &dead_dir, &mine, &other] {
            File::options()
                .write(true)
                .open(p)
                .or_else(|_| File::open(p))
                .unwrap()
                .set_modified(old)
                .unwrap();
        }
        // A write into the directory cleans it up.
        write_bytes_atomic(&d.path().join("z"), b"z").unwrap();
        assert!(!dead.exists() && !dead_dir.exists(), "orphans removed");
        assert!(mine.exists(), "this process's temporary kept");
        assert!(
            fresh.exists(),
            "a recent one (maybe another machine's writer) kept"
        );
        assert!(other.exists(), "not a ventral temporary name");
        assert_eq!(temp_owner(".a.b.12-3.tmp"), Some(12));
        assert_eq!(temp_owner(".a.12.tmp"), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_write_keeps_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.txt");
        write_bytes_atomic(&p, b"old").unwrap();
        let r = write_atomic(&p, |w| {
            w.write_all(b"partial new content")?;
            Err(io::Error::other("injected failure"))
        });
        assert!(r.is_err());
        assert_eq!(fs::read(&p).unwrap(), b"old");
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn atomic_dir_is_invisible_until_commit() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        {
            let d = AtomicDir::create(&target, false).unwrap();
            fs::write(d.path().join("x"), b"1").unwrap();
            assert!(!target.exists());
            // dropped without commit
        }
        assert!(!target.exists());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
        let d = AtomicDir::create(&target, false).unwrap();
        fs::write(d.path().join("x"), b"2").unwrap();
        d.commit().unwrap();
        assert_eq!(fs::read(target.join("x")).unwrap(), b"2");
        assert!(AtomicDir::create(&target, false).is_err());
        // An existing empty directory is fine.
        let empty = dir.path().join("empty");
        fs::create_dir(&empty).unwrap();
        let d = AtomicDir::create(&empty, false).unwrap();
        fs::write(d.path().join("z"), b"4").unwrap();
        d.commit().unwrap();
        assert!(empty.join("z").exists());
        let d = AtomicDir::create(&target, true).unwrap();
        fs::write(d.path().join("y"), b"3").unwrap();
        d.commit().unwrap();
        assert!(!target.join("x").exists());
        assert_eq!(fs::read(target.join("y")).unwrap(), b"3");
    }
}

/// A writer that, after its first error, swallows every later write, flush and seek (keeping
/// track of where they would have gone, so a seeking writer above stays consistent).
///
/// The zip crate's `ZipWriter` finalises the archive in `Drop` when it was not finished and
/// prints to stderr when that fails — on a full disk, a stray `ZipWriter::drop: failed to
/// finalize archive` fused onto ventral's own error message. The first error still reaches the
/// caller (who discards the whole temporary file); only the writer's attempts after it are
/// silenced. [`Self::into_inner`] refuses to hand back a writer that failed.
#[derive(Debug)]
pub struct LatchWriter<W> {
    inner: W,
    failed: bool,
    pos: u64,
    end: u64,
}

impl<W> LatchWriter<W> {
    /// Wrap `inner`, which must be positioned at its start.
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            failed: false,
            pos: 0,
            end: 0,
        }
    }

    /// The inner writer, or an error when any operation failed.
    pub fn into_inner(self) -> io::Result<W> {
        if self.failed {
            return Err(io::Error::other("an earlier write failed"));
        }
        Ok(self.inner)
    }

    fn advance(&mut self, n: usize) {
        self.pos += n as u64;
        self.end = self.end.max(self.pos);
    }
}

impl<W: Write> Write for LatchWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.failed {
            self.advance(buf.len());
            return Ok(buf.len());
        }
        match self.inner.write(buf) {
            Ok(n) => {
                self.advance(n);
                Ok(n)
            }
            Err(e) => {
                self.failed = true;
                Err(e)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.failed {
            return Ok(());
        }
        let r = self.inner.flush();
        self.failed |= r.is_err();
        r
    }
}

impl<W: io::Seek> io::Seek for LatchWriter<W> {
    fn seek(&mut self, pos: io::SeekFrom) -> io::Result<u64> {
        if self.failed {
            let target = match pos {
                io::SeekFrom::Start(n) => Some(n),
                io::SeekFrom::Current(d) => self.pos.checked_add_signed(d),
                io::SeekFrom::End(d) => self.end.checked_add_signed(d),
            };
            self.pos = target.ok_or_else(|| io::Error::other("seek out of range"))?;
            return Ok(self.pos);
        }
        match self.inner.seek(pos) {
            Ok(p) => {
                self.pos = p;
                Ok(p)
            }
            Err(e) => {
                self.failed = true;
                Err(e)
            }
        }
    }
}
