//! The synthetic stimulus set: deterministic for a seed, and learnable.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use ventral_data::packed::PackedDataset;
use ventral_data::stimuli::{StimulusConfig, generate};

fn cfg(n: usize, seed: u64) -> StimulusConfig {
    StimulusConfig {
        num_images: n,
        image_size: 32,
        seed,
        ..Default::default()
    }
}

#[test]
fn same_seed_same_bytes_different_seed_different() {
    let d = tempfile::tempdir().unwrap();
    let a = generate(&cfg(120, 3), &d.path().join("a"), &|_, _| {}).unwrap();
    let b = generate(&cfg(120, 3), &d.path().join("b"), &|_, _| {}).unwrap();
    let c = generate(&cfg(120, 4), &d.path().join("c"), &|_, _| {}).unwrap();
    for i in 0..3 {
        assert_eq!(a.splits[i].1.blake3, b.splits[i].1.blake3);
        assert_ne!(a.splits[i].1.blake3, c.splits[i].1.blake3);
    }
    // The stimulus-set files are byte-identical too (fixed ZIP timestamps).
    for f in [
        "stimulus_set/stimulus_set.csv",
        "stimulus_set/stimulus_set.zip",
        "train/metadata.csv",
        "train/manifest.json",
    ] {
        assert_eq!(
            std::fs::read(d.path().join("a").join(f)).unwrap(),
            std::fs::read(d.path().join("b").join(f)).unwrap(),
            "{f}"
        );
    }
    // Splits are balanced over categories.
    let ds = PackedDataset::open(&d.path().join("a/train")).unwrap();
    let mut counts = [0; 8];
    for &l in ds.labels() {
        counts[l as usize] += 1;
    }
    assert_eq!(
        counts.iter().max().unwrap() - counts.iter().min().unwrap(),
        0,
        "{counts:?}"
    );
}

#[test]
fn metadata_and_stimulus_set_agree() {
    let d = tempfile::tempdir().unwrap();
    generate(&cfg(80, 1), d.path(), &|_, _| {}).unwrap();
    let ds = PackedDataset::open(&d.path().join("test")).unwrap();
    let (head, rows) = ds.metadata().unwrap();
    let col = |name: &str| head.iter().position(|h| h == name).unwrap();
    assert_eq!(rows.len(), ds.len());
    for r in &rows {
        let occ: f64 = r[col("occluded_fraction")].parse().unwrap();
        assert!((0.0..=1.0).contains(&occ));
        assert!(["low", "medium", "high"].contains(&r[col("variation")].as_str()));
    }
    // Low variation: canonical pose, no occluders.
    let low: Vec<_> = rows
        .iter()
        .filter(|r| r[col("variation")] == "low")
        .collect();
    assert!(!low.is_empty());
    assert!(
        low.iter()
            .all(|r| r[col("rxy")] == "0.0000" && r[col("occluded_fraction")] == "0.0000")
    );
    let text = std::fs::read_to_string(d.path().join("stimulus_set/stimulus_set.csv")).unwrap();
    assert!(text.starts_with("stimulus_id,filename,split,"));
    assert_eq!(text.lines().count(), 81);
    let zip = std::fs::File::open(d.path().join("stimulus_set/stimulus_set.zip")).unwrap();
    let mut z = zip::ZipArchive::new(zip).unwrap();
    assert_eq!(z.len(), 80);
    let id = &rows[0][col("stimulus_id")];
    let mut png = Vec::new();
    std::io::Read::read_to_end(&mut z.by_name(&format!("{id}.png")).unwrap(), &mut png).unwrap();
    let (h, w, pixels) = ventral_data::image_ops::decode_rgb(&png).unwrap();
    assert_eq!((h, w), (32, 32));
    assert_eq!(pixels, ds.image(0));
}

/// Ridge regression one-vs-rest on 8×8-pooled pixels, solved by Cholesky.
fn ridge_accuracy(
    train: &PackedDataset,
    test: &PackedDataset,
    keep: &dyn Fn(&PackedDataset, usize) -> bool,
) -> f64 {
    let feat = |ds: &PackedDataset, i: usize| -> Vec<f64> {
        let [h, w, c] = ds.image_shape();
        let img = ds.image(i);
        let (ph, pw) = (h / 8, w / 8);
        let mut f = vec![0.0; 8 * 8 * c + 1];
        for y in 0..h {
            for x in 0..w {
                for k in 0..c {
                    f[((y / ph) * 8 + x / pw) * c + k] +=
                        img[(y * w + x) * c + k] as f64 / (255.0 * (ph * pw) as f64);
                }
            }
        }
        f[8 * 8 * c] = 1.0;
        f
    };
    let k = train.manifest().num_classes;
    let tr: Vec<usize> = (0..train.len()).filter(|&i| keep(train, i)).collect();
    let d = 8 * 8 * 3 + 1;
    let mut a = vec![0.0; d * d];
    let mut b = vec![0.0; d * k];
    for &i in &tr {
        let f = feat(train, i);
        for p in 0..d {
            for q in 0..d {
                a[p * d + q] += f[p] * f[q];
            }
            b[p * k + train.labels()[i] as usize] += f[p];
        }
    }
    for p in 0..d {
        a[p * d + p] += 1.0;
    }
    // Cholesky solve A W = B.
    let mut l = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..=i {
            let s: f64 = (0..j).map(|m| l[i * d + m] * l[j * d + m]).sum();
            l[i * d + j] = if i == j {
                (a[i * d + i] - s).sqrt()
            } else {
                (a[i * d + j] - s) / l[j * d + j]
            };
        }
    }
    let mut wts = vec![0.0; d * k];
    for c in 0..k {
        let mut y = vec![0.0; d];
        for i in 0..d {
            y[i] = (b[i * k + c] - (0..i).map(|m| l[i * d + m] * y[m]).sum::<f64>()) / l[i * d + i];
        }
        for i in (0..d).rev() {
            wts[i * k + c] = (y[i]
                - (i + 1..d)
                    .map(|m| l[m * d + i] * wts[m * k + c])
                    .sum::<f64>())
                / l[i * d + i];
        }
    }
    let te: Vec<usize> = (0..test.len()).filter(|&i| keep(test, i)).collect();
    let correct = te
        .iter()
        .filter(|&&i| {
            let f = feat(test, i);
            let scores: Vec<f64> = (0..k)
                .map(|c| (0..d).map(|p| f[p] * wts[p * k + c]).sum())
                .collect();
            let pred = (0..k)
                .max_by(|&x, &y| scores[x].total_cmp(&scores[y]))
                .unwrap();
            pred as i64 == test.labels()[i]
        })
        .count();
    correct as f64 / te.len() as f64
}

#[test]
fn categories_are_linearly_learnable_at_low_variation() {
    let d = tempfile::tempdir().unwrap();
    let c = StimulusConfig {
        num_images: 2400,
        image_size: 32,
        seed: 11,
        stimulus_set: false,
        val_fraction: 0.1,
        test_fraction: 0.25,
        ..Default::default()
    };
    generate(&c, d.path(), &|_, _| {}).unwrap();
    let train = Arc::new(PackedDataset::open(&d.path().join("train")).unwrap());
    let test = PackedDataset::open(&d.path().join("test")).unwrap();
    let (head, _) = train.metadata().unwrap();
    let vcol = head.iter().position(|h| h == "variation").unwrap();
    let levels = |ds: &PackedDataset| -> Vec<String> {
        ds.metadata()
            .unwrap()
            .1
            .into_iter()
            .map(|r| r[vcol].clone())
            .collect()
    };
    let (tr_lv, te_lv) = (levels(&train), levels(&test));
    let low = |ds: &PackedDataset, i: usize| {
        let lv = if ds.len() == train.len() {
            &tr_lv
        } else {
            &te_lv
        };
        lv[i] == "low"
    };
    let acc = ridge_accuracy(&train, &test, &low);
    println!("linear classifier on pooled pixels, low variation: accuracy {acc:.3} (chance 0.125)");
    assert!(
        acc > 0.35,
        "accuracy {acc} is not clearly above chance 0.125"
    );
}
