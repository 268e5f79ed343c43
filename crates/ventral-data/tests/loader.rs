//! pack → load round trip (property test) and loader determinism.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;
use ventral_core::npy::NpzWriter;
use ventral_core::{NpyArray, NpyData};
use ventral_data::augment::AugmentConfig;
use ventral_data::pack::{InputFormat, Layout, PackOptions, pack};
use ventral_data::packed::{PackWriter, PackedDataset};
use ventral_data::{Loader, LoaderConfig};

fn write_npz(
    path: &std::path::Path,
    n: usize,
    h: usize,
    w: usize,
    c: usize,
    pixels: &[u8],
    labels: &[i64],
) {
    let f = std::fs::File::create(path).unwrap();
    let mut z = NpzWriter::new(f, false);
    z.add(
        "images",
        &NpyArray::new(vec![n, h, w, c], NpyData::U8(pixels.to_vec())).unwrap(),
    )
    .unwrap();
    z.add(
        "labels",
        &NpyArray::new(vec![n], NpyData::I64(labels.to_vec())).unwrap(),
    )
    .unwrap();
    z.finish().unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    /// Any images and labels written as npz come back from the packed split and the loader
    /// exactly (pixels byte-identical, labels identical, batches = (x/255 - mean)/std).
    #[test]
    fn pack_then_load_round_trips(
        n in 1usize..20,
        h in 1usize..9,
        w in 1usize..9,
        grey in any::<bool>(),
        seed in any::<u64>(),
        batch in 1usize..7,
    ) {
        let c = if grey { 1 } else { 3 };
        let mut rng = ventral_core::rng::stream(seed, "test", &[]);
        use rand::Rng;
        let pixels: Vec<u8> = (0..n * h * w * c).map(|_| rng.next_u32() as u8).collect();
        let labels: Vec<i64> = (0..n).map(|_| (rng.next_u32() % 5) as i64).collect();
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("in.npz");
        write_npz(&src, n, h, w, c, &pixels, &labels);
        let out = dir.path().join("packed");
        let opts = PackOptions { layout: Some(Layout::Nhwc), ..Default::default() };
        pack(InputFormat::Npz, &src, &out, &opts, &|_, _, _| {}).unwrap();
        let ds = Arc::new(PackedDataset::open(&out.join("train")).unwrap());
        ds.verify().unwrap();
        prop_assert_eq!(ds.images(), &pixels[..]);
        prop_assert_eq!(ds.labels(), &labels[..]);

        let cfg = LoaderConfig { batch_size: batch, shuffle: true, seed, ..Default::default() };
        let loader = Loader::new(ds.clone(), cfg);
        let m = ds.manifest().normalization.clone();
        let mut seen = vec![0usize; n];
        for b in loader.epoch(0, 0) {
            for (k, &i) in b.indices.iter().enumerate() {
                seen[i] += 1;
                prop_assert_eq!(b.labels[k], labels[i]);
                for ch in 0..c {
                    for p in 0..h * w {
                        let want = (pixels[(i * h * w + p) * c + ch] as f32 / 255.0 - m.mean[ch] as f32) / m.std[ch] as f32;
                        let got = b.images[(k * c + ch) * h * w + p];
                        prop_assert!((got - want).abs() <= 1e-6 * want.abs().max(1.0), "got {} want {} m {:?}", got, want, m);
                    }
                }
            }
        }
        prop_assert!(seen.iter().all(|&s| s == 1));
    }
}

fn small_dataset(dir: &std::path::Path, n: usize) -> Arc<PackedDataset> {
    let mut w = PackWriter::create(dir, 8, 8, 3, vec!["a".into(), "b".into()], vec![]).unwrap();
    for i in 0..n {
        let px: Vec<u8> = (0..8 * 8 * 3)
            .map(|k| ((i * 31 + k * 7) % 256) as u8)
            .collect();
        w.push(&px, (i % 2) as i64, vec![]).unwrap();
    }
    w.finish(None, BTreeMap::new()).unwrap();
    Arc::new(PackedDataset::open(dir).unwrap())
}

#[test]
fn batches_are_a_pure_function_of_seed_epoch_and_index() {
    let dir = tempfile::tempdir().unwrap();
    let ds = small_dataset(dir.path(), 23);
    let cfg = LoaderConfig {
        batch_size: 5,
        seed: 9,
        augment: Some(AugmentConfig {
            random_resized_crop: true,
            hflip: true,
            trivial_augment: true,
            ..Default::default()
        }),
        ..Default::default()
    };
    let loader = Loader::new(ds.clone(), cfg.clone());
    assert_eq!(loader.num_batches(), 5);
    let all: Vec<_> = loader.epoch(1, 0).collect();
    assert_eq!(all.len(), 5);
    assert_eq!(all[4].shape, [3, 3, 8, 8]);
    // Resuming mid-epoch gives the same batches; a fresh loader too.
    let resumed: Vec<_> = Loader::new(ds.clone(), cfg.clone()).epoch(1, 2).collect();
    assert_eq!(&all[2..], &resumed[..]);
    assert_eq!(loader.batch(1, 3), all[3]);
    // Another epoch gives another order.
    assert_ne!(loader.order(1), loader.order(2));
    // drop_last
    let dl = Loader::new(
        ds,
        LoaderConfig {
            batch_size: 5,
            drop_last: true,
            ..cfg
        },
    );
    assert_eq!(dl.num_batches(), 4);
    // Dropping an iterator early does not hang.
    let mut it = dl.epoch(0, 0);
    assert!(it.next().is_some());
    drop(it);
}
