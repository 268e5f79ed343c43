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
