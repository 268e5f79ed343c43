//! Stimulus sets: ventral's own generated set reads back; missing files and duplicate ids are
//! named.

#![allow(clippy::unwrap_used)]

use std::io::Write;

use ventral_neural::StimulusSet;

fn make(
    dir: &std::path::Path,
    rows: &[(&str, &str)],
    files: &[&str],
) -> (std::path::PathBuf, std::path::PathBuf) {
    let csv = dir.join("set.csv");
    let mut text = String::from("stimulus_id,filename,object_name\n");
    for (id, f) in rows {
        text.push_str(&format!("{id},{f},obj\n"));
    }
    std::fs::write(&csv, text).unwrap();
    let zp = dir.join("set.zip");
    let mut z = zip::ZipWriter::new(std::fs::File::create(&zp).unwrap());
    for f in files {
        z.start_file(*f, zip::write::SimpleFileOptions::default())
            .unwrap();
        z.write_all(f.as_bytes()).unwrap();
    }
    z.finish().unwrap();
    (csv, zp)
}

#[test]
fn reads_and_validates() {
    let d = tempfile::tempdir().unwrap();
    let (csv, zp) = make(
        d.path(),
        &[("a1", "a1.png"), ("b2", "b2.png")],
        &["a1.png", "b2.png"],
    );
    let s = StimulusSet::read(&csv, Some(&zp)).unwrap();
    assert_eq!(s.ids, ["a1", "b2"]);
    assert_eq!(s.rows[1]["object_name"], "obj");
    assert_eq!(s.file_bytes("b2").unwrap(), b"b2.png");

    let (csv, zp) = make(d.path(), &[("a1", "a1.png"), ("b2", "b2.png")], &["a1.png"]);
    let e = StimulusSet::read(&csv, Some(&zp)).unwrap_err().to_string();
    assert!(e.contains("set.zip") && e.contains("b2.png"), "{e}");

    let (csv, _) = make(d.path(), &[("a1", "a1.png"), ("a1", "b.png")], &[]);
    let e = StimulusSet::read(&csv, None).unwrap_err().to_string();
    assert!(e.contains("set.csv") && e.contains("twice"), "{e}");
}

/// Issue 13's unbounded read: a small ZIP whose member inflates past the per-file limit is
/// refused at the limit (the old reader inflated all of it into memory first) — both when the
/// archive declares the true size and when it lies (sizes patched to 1 000 bytes in the local
/// and central headers: the zip crate then stops at the declared size, so it is caught too).
#[test]
fn a_member_inflating_past_the_limit_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let csv = d.path().join("set.csv");
    std::fs::write(&csv, "stimulus_id,filename\nbomb,bomb.png\n").unwrap();
    let zp = d.path().join("set.zip");
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    z.start_file(
        "bomb.png",
        zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated),
    )
    .unwrap();
    let block = vec![0u8; 1 << 20];
    let limit = ventral_neural::stimulus_set::MAX_MEMBER_BYTES;
    for _ in 0..(limit >> 20) + 2 {
        z.write_all(&block).unwrap();
    }
    let honest = z.finish().unwrap().into_inner();
    assert!(honest.len() < 2 << 20, "the bomb is small on disk");
    // Local header: uncompressed size at offset 22; central header at offset 24.
    let mut lying = honest.clone();
    let put = |b: &mut Vec<u8>, at: usize| b[at..at + 4].copy_from_slice(&1000u32.to_le_bytes());
    put(&mut lying, 22);
    let central = (0..lying.len() - 4)
        .rev()
        .find(|&i| lying[i..i + 4] == [0x50, 0x4b, 0x01, 0x02])
        .unwrap();
    put(&mut lying, central + 24);
    for bytes in [honest, lying] {
        std::fs::write(&zp, &bytes).unwrap();
        let set = StimulusSet::read(&csv, Some(&zp)).unwrap();
        let e = set.file_bytes("bomb").unwrap_err().to_string();
        assert!(
            e.contains("set.zip")
                && e.contains("bomb.png")
                && (e.contains("limit") || e.contains("larger than its declared")),
            "{e}"
        );
    }
}
