//! BLAKE3 helpers.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// Hex BLAKE3 of a file's bytes, streamed.
pub fn file_blake3(path: &Path) -> io::Result<String> {
    let mut hasher = blake3::Hasher::new();
    update_from_file(&mut hasher, path)?;
    Ok(hasher.finalize().to_hex().to_string())
}

/// Feed a file's bytes into `hasher`, streamed in 1 MiB blocks.
pub fn update_from_file(hasher: &mut blake3::Hasher, path: &Path) -> io::Result<()> {
    let mut f = File::open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot open {}: {e}", path.display())))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(())
}

/// Hex BLAKE3 of bytes.
pub fn blake3_hex(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}
