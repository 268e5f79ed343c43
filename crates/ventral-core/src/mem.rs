//! How much memory this process may use, so that a size declared by a file or a configuration is
//! checked before it is allocated (an abort on a failed allocation cannot be reported well).

/// Bytes of memory available to this process: `VENTRAL_MAX_MEMORY` (bytes, or with a K, M, G
/// or T suffix) when set, else `MemAvailable` of `/proc/meminfo`; `Ok(None)` when neither is
/// known. `Err` names the malformed variable.
pub fn available() -> Result<Option<u64>, String> {
    if let Ok(v) = std::env::var("VENTRAL_MAX_MEMORY") {
        return parse_size(&v)
            .map(Some)
            .map_err(|e| format!("VENTRAL_MAX_MEMORY={v}: {e}"));
    }
    let Ok(text) = std::fs::read_to_string("/proc/meminfo") else {
        return Ok(None);
    };
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|r| r.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024))
}

/// Whether `need` bytes fit what [`available`] reports: `Ok(None)` when they do (or when
/// nothing is known), `Ok(Some(text))` with "N, more than the M available (MemAvailable, or
/// VENTRAL_MAX_MEMORY)" for the caller's message when they do not; `Err` names a malformed
/// `VENTRAL_MAX_MEMORY`.
pub fn exceeds(need: u64) -> Result<Option<String>, String> {
    Ok(available()?.filter(|&avail| need > avail).map(|avail| {
        format!(
            "{}, more than the {} available (MemAvailable, or VENTRAL_MAX_MEMORY)",
            human(need),
            human(avail)
        )
    }))
}

/// [`exceeds`] for a size computed in saturating `u128` arithmetic (anything past `u64::MAX`
/// is more than any machine has).
pub fn exceeds_u128(need: u128) -> Result<Option<String>, String> {
    exceeds(saturate(need))
}

/// `need` as a `u64`, `u64::MAX` past it.
fn saturate(need: u128) -> u64 {
    u64::try_from(need).unwrap_or(u64::MAX)
}

/// A byte count: a number with an optional K, M, G or T suffix (powers of 1024), e.g. `8G`.
pub fn parse_size(v: &str) -> Result<u64, String> {
    let t = v.trim();
    let (num, mult) = match t.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&t[..t.len() - 1], 1u64 << 10),
        Some('M') => (&t[..t.len() - 1], 1 << 20),
        Some('G') => (&t[..t.len() - 1], 1 << 30),
        Some('T') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| "expected a number of bytes, optionally with K, M, G or T".to_string())?;
    if !n.is_finite() || n < 0.0 {
        return Err("expected a non-negative number of bytes".into());
    }
    Ok((n * mult as f64) as u64)
}

/// Human form of a byte count (`1.5 GiB`; up to PiB).
pub fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= (1u64 << 50) as f64 {
        format!("{:.1} PiB", b / (1u64 << 50) as f64)
    } else if b >= (1u64 << 40) as f64 {
        format!("{:.1} TiB", b / (1u64 << 40) as f64)
    } else if b >= (1u64 << 30) as f64 {
        format!("{:.1} GiB", b / (1u64 << 30) as f64)
    } else if b >= (1u64 << 20) as f64 {
        format!("{:.1} MiB", b / (1u64 << 20) as f64)
    } else {
        format!("{bytes} bytes")
    }
}

/// Bytes free to an unprivileged writer on the file system that holds `path` (`statvfs`'s
/// `f_bavail · f_frsize`), asked of `path`'s nearest existing ancestor (an output directory
/// about to be made), with that ancestor; `None` when the file system cannot say.
pub fn disk_free(path: &std::path::Path) -> Option<(u64, std::path::PathBuf)> {
    let abs = std::path::absolute(path).ok()?;
    let dir = abs.ancestors().find(|a| a.exists())?.to_path_buf();
    let s = rustix::fs::statvfs(&dir).ok()?;
    Some((s.f_bavail.saturating_mul(s.f_frsize), dir))
}

/// Whether `need` bytes fit the disk free at `path` ([`disk_free`]): `None` when they do (or
/// when the file system cannot say), else "N, more than the M free on the file system of DIR"
/// for the caller's message.
pub fn exceeds_disk(need: u128, path: &std::path::Path) -> Option<String> {
    let (free, dir) = disk_free(path)?;
    (need > free as u128).then(|| {
        format!(
            "{}, more than the {} free on the file system of {}",
            human(saturate(need)),
            human(free),
            dir.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_free_is_asked_of_the_nearest_existing_ancestor() {
        let d = tempfile::tempdir().expect("tempdir");
        let (free, dir) = disk_free(&d.path().join("not/yet/made")).expect("statvfs");
        assert!(free > 0);
        assert_eq!(dir, std::path::absolute(d.path()).expect("absolute"));
        assert!(exceeds_disk(1, d.path()).is_none());
        let msg = exceeds_disk(u128::MAX, d.path()).expect("more than any disk");
        assert!(msg.contains("free on the file system of"), "{msg}");
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(512), "512 bytes");
        assert_eq!(human(3 << 20), "3.0 MiB");
        assert_eq!(human(3 << 30), "3.0 GiB");
        assert_eq!(human(3 << 40), "3.0 TiB");
        assert_eq!(human(u64::MAX), "16384.0 PiB");
        assert_eq!(parse_size("1.5K"), Ok(1536));
        assert!(parse_size("-1").is_err());
    }
}
