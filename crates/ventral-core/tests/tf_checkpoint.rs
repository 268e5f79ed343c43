//! TensorFlow checkpoints written by TensorFlow itself (`scripts/make_tf_checkpoint_fixtures.py`,
//! tensorflow-cpu 2.15; the tensor-bundle format is TF 1.x's too) read as safetensors under
//! TensorFlow's names: every dtype, variable scopes, hundreds of entries, two shards, TF 2's
//! object-based names with the object graph skipped; partitioned variables refused; damaged
//! files refused naming the file, never a panic.
//!
//! The expected values (`*.expected.npz`, keys with '/' written as '|') are TensorFlow's:
//!   values = {v.op.name: sess.run(v) for v in variables}          # Saver checkpoints
//!   values = {n: tf.train.load_variable(path, n) for n, _ in tf.train.list_variables(path)}
//!   expected[k.replace("/", "|")] = v.astype(float64 if float else int64)

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use ventral_core::npy::NpzReader;
use ventral_core::safetensors::{Dtype, SafeTensors};

fn fixture(name: &str) -> PathBuf {
    ventral_core::fixtures::crate_dir(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tf_checkpoint")
        .join(name)
}

/// Every tensor of `st` equals TensorFlow's, and they are the same set.
fn assert_as_tensorflow_wrote(st: &SafeTensors, expected: &Path) {
    let mut want = NpzReader::open(expected).unwrap();
    let mut names: Vec<String> = st.names().map(|n| n.replace('/', "|")).collect();
    names.sort_unstable();
    let mut expected_names = want.names();
    expected_names.sort_unstable();
    assert_eq!(names, expected_names);
    for key in expected_names {
        let name = key.replace('|', "/");
        let info = st.info(&name).unwrap();
        let e = want.read(&key).unwrap();
        assert_eq!(info.shape, e.shape, "{name}");
        if e.is_float() {
            let (_, got) = st.f32(&name).unwrap();
            let w: Vec<f32> = e.to_f64().unwrap().iter().map(|&v| v as f32).collect();
            assert_eq!(got, w, "{name}");
        } else {
            let (_, got) = st.i64(&name).unwrap();
            assert_eq!(got, e.to_i64().unwrap(), "{name}");
        }
    }
}

#[test]
fn every_dtype_and_hundreds_of_names_read_as_tensorflow_wrote_them() {
    // The prefix, the index and the data shard all name the checkpoint.
    for given in ["dtypes", "dtypes.index", "dtypes.data-00000-of-00001"] {
        let st = SafeTensors::read(&fixture(given)).unwrap();
        assert_as_tensorflow_wrote(&st, &fixture("dtypes.expected.npz"));
    }
    let st = SafeTensors::read(&fixture("dtypes")).unwrap();
    for (name, dtype) in [
        ("conv1/weights", Dtype::F32),
        ("double", Dtype::F64),
        ("half", Dtype::F16),
        ("bf", Dtype::BF16),
        ("global_step", Dtype::I64),
        ("int32", Dtype::I32),
        ("u8", Dtype::U8),
        ("mask", Dtype::Bool),
        ("empty", Dtype::F32),
    ] {
        assert_eq!(st.info(name).unwrap().dtype, dtype, "{name}");
    }
    // TensorFlow's layout: a convolution's kernel is [kh, kw, in, out].
    assert_eq!(st.info("conv1/weights").unwrap().shape, vec![3, 3, 3, 4]);
    assert_eq!(
        st.i64("global_step").unwrap(),
        (vec![], vec![123_456_789_012])
    );
    assert_eq!(st.names().filter(|n| n.starts_with("many/")).count(), 300);
}

#[test]
fn shards_and_object_based_checkpoints_read() {
    let st = SafeTensors::read(&fixture("sharded")).unwrap();
    assert_as_tensorflow_wrote(&st, &fixture("sharded.expected.npz"));
    let st = SafeTensors::read(&fixture("object.index")).unwrap();
    // `_CHECKPOINTABLE_OBJECT_GRAPH` (a string) is not a weight.
    assert!(st.info("_CHECKPOINTABLE_OBJECT_GRAPH").is_none());
    assert!(st.info("model/kernel/.ATTRIBUTES/VARIABLE_VALUE").is_some());
    assert_as_tensorflow_wrote(&st, &fixture("object.expected.npz"));
}

#[test]
fn partitioned_variables_are_refused_with_their_name() {
    let e = SafeTensors::read(&fixture("partitioned"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("partitioned.index"), "{e}");
    assert!(e.contains("'part'") && e.contains("slices"), "{e}");
}

#[test]
fn damaged_checkpoints_give_errors_naming_the_file() {
    let index = std::fs::read(fixture("dtypes.index")).unwrap();
    let data = std::fs::read(fixture("dtypes.data-00000-of-00001")).unwrap();
    let d = tempfile::tempdir().unwrap();
    let prefix = d.path().join("damaged");
    let (ip, dp) = (
        d.path().join("damaged.index"),
        d.path().join("damaged.data-00000-of-00001"),
    );
    std::fs::write(&dp, &data).unwrap();
    // The index cut anywhere: the footer is at the end, so every cut is refused.
    for cut in (0..index.len()).step_by(61).chain([index.len() - 1]) {
        std::fs::write(&ip, &index[..cut]).unwrap();
        let e = SafeTensors::read(&prefix).unwrap_err().to_string();
        assert!(e.contains("damaged.index"), "cut at {cut}: {e}");
    }
    // Any flipped byte of the index: its blocks' checksums catch it, or the footer's handles
    // point elsewhere — an error, never a panic.
    for at in (0..index.len()).step_by(7) {
        let mut b = index.clone();
        b[at] ^= 0x5a;
        std::fs::write(&ip, &b).unwrap();
        if let Err(e) = SafeTensors::read(&prefix) {
            assert!(e.to_string().contains("damaged."), "flip at {at}: {e}");
        }
    }
    // The data: a flipped byte fails the tensor's checksum; a cut shard is named.
    std::fs::write(&ip, &index).unwrap();
    let mut b = data.clone();
    b[data.len() / 2] ^= 1;
    std::fs::write(&dp, &b).unwrap();
    let e = SafeTensors::read(&prefix).unwrap_err().to_string();
    assert!(
        e.contains("damaged.data-00000-of-00001") && e.contains("checksum"),
        "{e}"
    );
    std::fs::write(&dp, &data[..data.len() - 3]).unwrap();
    let e = SafeTensors::read(&prefix).unwrap_err().to_string();
    assert!(
        e.contains("damaged.data-00000-of-00001") && e.contains("truncated"),
        "{e}"
    );
    std::fs::remove_file(&dp).unwrap();
    let e = SafeTensors::read(&prefix).unwrap_err().to_string();
    assert!(e.contains("damaged.data-00000-of-00001"), "{e}");
}
