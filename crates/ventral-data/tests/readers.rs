//! Readers on small files: the checked-in HDF5/npz fixtures (made by
//! `scripts/make_data_fixtures.py` with h5py/numpy) and files made here.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};

use ventral_data::pack::{InputFormat, PackOptions, pack};
use ventral_data::packed::PackedDataset;

fn fixtures() -> PathBuf {
    ventral_core::fixtures::crate_dir(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/data")
}

/// The fixture pixel formula of make_data_fixtures.py.
fn px(i: usize, y: usize, x: usize, c: usize) -> u8 {
    ((7 * i + 3 * y + 5 * x + 11 * c) % 256) as u8
}

fn quiet(_: &str, _: usize, _: usize) {}

#[test]
fn miniecoset_hdf5_all_splits() {
    let out = tempfile::tempdir().unwrap();
    let splits = pack(
        InputFormat::Hdf5,
        &fixtures().join("miniecoset_8px.h5"),
        out.path(),
        &PackOptions::default(),
        &quiet,
    )
    .unwrap();
    let names: Vec<_> = splits.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["train", "val", "test", "testplus"]);
    let mut offset = 0;
    for (name, n) in [("train", 12), ("val", 4), ("test", 4), ("testplus", 6)] {
        let ds = PackedDataset::open(&out.path().join(name)).unwrap();
        ds.verify().unwrap();
        let m = ds.manifest();
        assert_eq!((m.num_images, m.height, m.width, m.channels), (n, 8, 8, 3));
        assert_eq!(m.class_names, ["cat", "dog", "ice_cream"]);
        // Every split is normalised with the file's train statistics (÷255).
        assert!((m.normalization.mean[1] - 120.5 / 255.0).abs() < 1e-12);
        assert!((m.normalization.std[2] - 62.0 / 255.0).abs() < 1e-12);
        for i in 0..n {
            assert_eq!(ds.labels()[i], (i % 3) as i64);
            let img = ds.image(i);
            for y in 0..8 {
                for x in 0..8 {
                    for c in 0..3 {
                        assert_eq!(img[(y * 8 + x) * 3 + c], px(offset + i, y, x, c));
                    }
                }
            }
        }
        offset += n;
    }
}

#[test]
fn hdf5_single_split_and_resize() {
    let out = tempfile::tempdir().unwrap();
    let opts = PackOptions {
        split: Some("val".into()),
        image_size: Some(4),
        ..Default::default()
    };
    let s = pack(
        InputFormat::Hdf5,
        &fixtures().join("miniecoset_8px.h5"),
        out.path(),
        &opts,
        &quiet,
    )
    .unwrap();
    assert_eq!(s.len(), 1);
    let ds = PackedDataset::open(&out.path().join("val")).unwrap();
    assert_eq!(ds.image_shape(), [4, 4, 3]);
    assert!(!out.path().join("train").exists());
}

#[test]
fn hdf5_missing_labels_names_file_and_dataset_and_writes_nothing() {
    let out = tempfile::tempdir().unwrap();
    let dst = out.path().join("ds");
    let e = pack(
        InputFormat::Hdf5,
        &fixtures().join("miniecoset_missing_labels.h5"),
        &dst,
        &PackOptions::default(),
        &quiet,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("miniecoset_missing_labels.h5"), "{e}");
    assert!(e.contains("/val/labels"), "{e}");
    // No split (not even train, which was fine) was committed.
    assert!(!dst.join("train").exists());
    let leftovers: Vec<_> = fs::read_dir(&dst).map(|r| r.count()).into_iter().collect();
    assert!(leftovers.iter().all(|&n| n == 0), "{leftovers:?}");
}

#[test]
fn hdf5_truncated_at_several_offsets() {
    let bytes = fs::read(fixtures().join("miniecoset_8px.h5")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for cut in [0, 7, 100, 1000, bytes.len() / 2, bytes.len() - 1] {
        let p = dir.path().join(format!("cut{cut}.h5"));
        fs::write(&p, &bytes[..cut]).unwrap();
        let out = dir.path().join(format!("out{cut}"));
        let r = pack(InputFormat::Hdf5, &p, &out, &PackOptions::default(), &quiet);
        let e = r.expect_err(&format!("cut at {cut} must fail")).to_string();
        assert!(e.contains(&format!("cut{cut}.h5")), "{e}");
        assert!(!out.join("train").exists(), "cut {cut}");
    }
}

#[test]
fn npz_nchw_u8_as_numpy_writes_it() {
    let out = tempfile::tempdir().unwrap();
    pack(
        InputFormat::Npz,
        &fixtures().join("nchw_u8.npz"),
        out.path(),
        &PackOptions::default(),
        &quiet,
    )
    .unwrap();
    let ds = PackedDataset::open(&out.path().join("train")).unwrap();
    assert_eq!(ds.image_shape(), [6, 4, 3]);
    assert_eq!(ds.manifest().class_names, ["zero", "one"]);
    assert_eq!(ds.labels(), [0, 1, 1, 0, 1]);
    for i in 0..5 {
        for y in 0..6 {
            for x in 0..4 {
                for c in 0..3 {
                    assert_eq!(ds.image(i)[(y * 4 + x) * 3 + c], px(i, y, x, c));
                }
            }
        }
    }
}

#[test]
fn npz_float_nhwc_with_other_keys() {
    let out = tempfile::tempdir().unwrap();
    let opts = PackOptions {
        images_key: "x".into(),
        labels_key: "y".into(),
        split: Some("test".into()),
        ..Default::default()
    };
    pack(
        InputFormat::Npz,
        &fixtures().join("nhwc_f32.npz"),
        out.path(),
        &opts,
        &quiet,
    )
    .unwrap();
    let ds = PackedDataset::open(&out.path().join("test")).unwrap();
    assert_eq!(ds.labels(), [2, 0, 1, 2, 0]);
    assert_eq!(ds.manifest().class_names, ["0", "1", "2"]);
    // 0–1 floats are scaled back exactly.
    assert_eq!(ds.image(3)[5], px(3, 0, 1, 2));
    // Wrong key: the error names the file and lists the arrays found.
    let e = pack(
        InputFormat::Npz,
        &fixtures().join("nhwc_f32.npz"),
        &out.path().join("other"),
        &PackOptions::default(),
        &quiet,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("nhwc_f32.npz") && e.contains("'images'") && e.contains("x, y"),
        "{e}"
    );
    // Normalised floats, int16 beyond 255 and ambiguous 1–2 floats are refused, not clamped.
    use ventral_core::npy::{NpyArray, NpyData, write_npz};
    let labels = NpyArray::new(vec![2], NpyData::I64(vec![0, 1])).unwrap();
    for (name, data, want) in [
        (
            "normalised.npz",
            NpyData::F32(vec![-0.5; 2 * 4 * 4 * 3]),
            "[-0.5, -0.5]",
        ),
        (
            "wide.npz",
            NpyData::I16(vec![1000; 2 * 4 * 4 * 3]),
            "[1000, 1000]",
        ),
        (
            "ambiguous.npz",
            NpyData::F32(vec![1.5; 2 * 4 * 4 * 3]),
            "ambiguous",
        ),
    ] {
        let f = out.path().join(name);
        let imgs = NpyArray::new(vec![2, 4, 4, 3], data).unwrap();
        write_npz(&f, &[("images", &imgs), ("labels", &labels)], false).unwrap();
        let e = pack(
            InputFormat::Npz,
            &f,
            &out.path().join(format!("o_{name}")),
            &PackOptions::default(),
            &quiet,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains(name), "{e}");
        if want != "ambiguous" {
            assert!(e.contains(want), "{name}: {e}");
        } else {
            assert!(
                e.contains("1–2") || e.contains("nearly black"),
                "{name}: {e}"
            );
        }
    }
}

fn cifar_record(label: u8, coarse: Option<u8>, seed: usize) -> Vec<u8> {
    let mut r = Vec::new();
    if let Some(c) = coarse {
        r.push(c);
    }
    r.push(label);
    r.extend((0..3072).map(|k| ((k * 13 + seed * 31) % 256) as u8));
    r
}

#[test]
fn cifar10_folder_and_planes_to_hwc() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cifar-10-batches-bin");
    fs::create_dir(&root).unwrap();
    let mut b1 = Vec::new();
    for i in 0..3 {
        b1.extend(cifar_record(i as u8, None, i));
    }
    fs::write(root.join("data_batch_1.bin"), &b1).unwrap();
    fs::write(root.join("test_batch.bin"), cifar_record(9, None, 7)).unwrap();
    let names: String = (0..10).map(|i| format!("class{i}\n")).collect();
    fs::write(root.join("batches.meta.txt"), names + "\n").unwrap();
    let out = dir.path().join("packed");
    // A partial download (data_batch_2..5 missing) is refused, naming what is missing.
    let e = pack(
        InputFormat::Cifar,
        &root,
        &out,
        &PackOptions::default(),
        &quiet,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("data_batch_2.bin") && e.contains("data_batch_5.bin") && e.contains("1 of 5"),
        "{e}"
    );
    assert!(!out.exists());
    for b in 2..=5 {
        fs::write(
            root.join(format!("data_batch_{b}.bin")),
            cifar_record(b as u8 + 1, None, b + 10),
        )
        .unwrap();
    }
    pack(
        InputFormat::Cifar,
        &root,
        &out,
        &PackOptions::default(),
        &quiet,
    )
    .unwrap();
    let train = PackedDataset::open(&out.join("train")).unwrap();
    let test = PackedDataset::open(&out.join("test")).unwrap();
    assert_eq!(train.labels(), [0, 1, 2, 3, 4, 5, 6]);
    assert_eq!(test.labels(), [9]);
    assert_eq!(train.manifest().class_names[9], "class9");
    // pixel (y=1, x=2) channel G = plane 1 offset 1*32+2
    let rec = cifar_record(1, None, 1);
    assert_eq!(train.image(1)[(32 + 2) * 3 + 1], rec[1 + 1024 + 34]);
    // test split normalised with the train split's statistics
    assert_eq!(test.manifest().normalization.mean, train.manifest().mean);
}

#[test]
fn cifar100_two_label_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("train.bin");
    let mut b = cifar_record(57, Some(3), 0);
    b.extend(cifar_record(99, Some(19), 1));
    fs::write(&p, b).unwrap();
    let out = dir.path().join("packed");
    pack(
        InputFormat::Cifar,
        &p,
        &out,
        &PackOptions::default(),
        &quiet,
    )
    .unwrap();
    let ds = PackedDataset::open(&out.join("train")).unwrap();
    assert_eq!(ds.labels(), [57, 99]);
    assert_eq!(ds.manifest().num_classes, 100);
    let (head, rows) = ds.metadata().unwrap();
    assert_eq!(head.last().unwrap(), "coarse_label");
    assert_eq!(rows[1].last().unwrap(), "19");
}

#[test]
fn cifar_wrong_lengths_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let rec = cifar_record(1, None, 0);
    for cut in [1, 3072, 3074, 2 * 3073 - 5] {
        let p = dir.path().join("data_batch_1.bin");
        let mut b = rec.clone();
        b.extend(&rec);
        b.truncate(cut.min(b.len()));
        if cut == 3074 {
            b = rec.clone();
            b.push(0);
        }
        fs::write(&p, &b).unwrap();
        let e = pack(
            InputFormat::Cifar,
            &p,
            &dir.path().join("o"),
            &PackOptions::default(),
            &quiet,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("data_batch_1.bin") && e.contains("3073"), "{e}");
    }
    // A label byte out of range (misaligned file).
    let p = dir.path().join("data_batch_2.bin");
    fs::write(&p, cifar_record(200, None, 0)).unwrap();
    let e = pack(
        InputFormat::Cifar,
        &p,
        &dir.path().join("o"),
        &PackOptions::default(),
        &quiet,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("label 200"), "{e}");
    assert!(!dir.path().join("o").join("train").exists());
}

fn write_png(path: &Path, w: u32, h: u32, v: u8) {
    let img =
        image::RgbImage::from_fn(w, h, |x, y| image::Rgb([v, (x * 10) as u8, (y * 10) as u8]));
    img.save_with_format(path, image::ImageFormat::Png).unwrap();
}

#[test]
fn imagefolder_ecoset_tree_with_a_broken_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ecoset");
    for split in ["train", "val"] {
        for class in ["0002_dog", "0001_cat"] {
            let d = root.join(split).join(class);
            fs::create_dir_all(d.join("sub")).unwrap();
            for k in 0..3 {
                write_png(&d.join(format!("img{k}.PNG")), 20 + k, 10, k as u8 * 50);
            }
            // A JPEG named .jpeg in a nested folder, and a non-image that is ignored.
            let img = image::RgbImage::from_pixel(16, 16, image::Rgb([200, 10, 10]));
            img.save_with_format(d.join("sub").join("x.jpeg"), image::ImageFormat::Jpeg)
                .unwrap();
            fs::write(d.join("notes.txt"), "ignore me").unwrap();
        }
    }
    // A truncated file in train/cat: rejected, not fatal (1 of 8 = 12.5 %).
    fs::write(
        root.join("train/0001_cat/broken.jpg"),
        b"\xff\xd8\xff\xe0 truncated",
    )
    .unwrap();
    let out = dir.path().join("packed");
    let opts = PackOptions {
        image_size: Some(8),
        max_reject_fraction: 0.2,
        ..Default::default()
    };
    let splits = pack(InputFormat::ImageFolder, &root, &out, &opts, &quiet).unwrap();
    assert_eq!(splits.len(), 2);
    let train = PackedDataset::open(&out.join("train")).unwrap();
    assert_eq!(train.manifest().class_names, ["cat", "dog"]);
    assert_eq!(train.len(), 8);
    assert_eq!(train.image_shape(), [8, 8, 3]);
    assert_eq!(splits[0].rejected.len(), 1);
    let rej = fs::read_to_string(out.join("train/rejected.csv")).unwrap();
    assert!(rej.contains("broken.jpg"), "{rej}");
    // With the default 1 % limit the same tree fails and writes nothing.
    let out2 = dir.path().join("packed2");
    let e = pack(
        InputFormat::ImageFolder,
        &root,
        &out2,
        &PackOptions {
            image_size: Some(8),
            ..Default::default()
        },
        &quiet,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("could not be decoded") && e.contains("broken.jpg"),
        "{e}"
    );
    assert!(!out2.join("train").exists());
}

#[test]
fn existing_split_is_not_overwritten_without_flag() {
    let out = tempfile::tempdir().unwrap();
    let f = fixtures().join("nchw_u8.npz");
    pack(
        InputFormat::Npz,
        &f,
        out.path(),
        &PackOptions::default(),
        &quiet,
    )
    .unwrap();
    let before = fs::read(out.path().join("train/manifest.json")).unwrap();
    let e = pack(
        InputFormat::Npz,
        &f,
        out.path(),
        &PackOptions::default(),
        &quiet,
    )
    .unwrap_err();
    assert!(e.to_string().contains("already exists"), "{e}");
    assert_eq!(
        fs::read(out.path().join("train/manifest.json")).unwrap(),
        before
    );
    let opts = PackOptions {
        overwrite: true,
        ..Default::default()
    };
    pack(InputFormat::Npz, &f, out.path(), &opts, &quiet).unwrap();
}

#[test]
fn bad_manifest_and_hash_mismatch() {
    let out = tempfile::tempdir().unwrap();
    pack(
        InputFormat::Npz,
        &fixtures().join("nchw_u8.npz"),
        out.path(),
        &PackOptions::default(),
        &quiet,
    )
    .unwrap();
    let split = out.path().join("train");
    // Flip one pixel byte: opens (sizes agree) but verify fails naming the manifest.
    let img_path = split.join("images.npy");
    let mut bytes = fs::read(&img_path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&img_path, &bytes).unwrap();
    let ds = PackedDataset::open(&split).unwrap();
    let e = ds.verify().unwrap_err().to_string();
    assert!(
        e.contains("manifest.json") && e.contains("hash mismatch"),
        "{e}"
    );
    // Truncated images file.
    fs::write(&img_path, &bytes[..bytes.len() - 10]).unwrap();
    let e = PackedDataset::open(&split).unwrap_err().to_string();
    assert!(e.contains("images.npy") && e.contains("truncated"), "{e}");
    // Manifest with a wrong class count, then not JSON at all.
    let mpath = split.join("manifest.json");
    let text = fs::read_to_string(&mpath).unwrap();
    fs::write(
        &mpath,
        text.replace("\"num_classes\": 2", "\"num_classes\": 3"),
    )
    .unwrap();
    let e = PackedDataset::open(&split).unwrap_err().to_string();
    assert!(
        e.contains("manifest.json") && e.contains("num_classes"),
        "{e}"
    );
    fs::write(&mpath, "{ not json").unwrap();
    let e = PackedDataset::open(&split).unwrap_err().to_string();
    assert!(
        e.contains("manifest.json") && e.contains("not a valid manifest"),
        "{e}"
    );
}
