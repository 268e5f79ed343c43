//! PyTorch checkpoints written by PyTorch itself (`scripts/make_pth_fixtures.py`, PyTorch 2.15)
//! read as safetensors: every dtype, views with strides and offsets into shared storages,
//! parameters, wrapped and `nn.DataParallel` state dicts; whole pickled models and the legacy
//! format refused with a message naming the file; truncated files refused, never a panic.
//!
//! The expected values (`*.expected.npz`) are PyTorch's tensors made contiguous:
//!   for k, v in sd.items(): expected[k] = (v.double() if float else v.long()).contiguous()

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use ventral_core::npy::NpzReader;
use ventral_core::safetensors::{Dtype, SafeTensors};

fn fixture(name: &str) -> PathBuf {
    ventral_core::fixtures::crate_dir(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/pth")
        .join(name)
}

#[test]
fn every_dtype_and_view_reads_as_pytorch_wrote_it() {
    let st = SafeTensors::read(&fixture("dtypes.pth")).unwrap();
    let mut want = NpzReader::open(&fixture("dtypes.expected.npz")).unwrap();
    let mut names: Vec<&str> = st.names().collect();
    names.sort_unstable();
    let mut expected = want.names();
    expected.sort_unstable();
    assert_eq!(names, expected);
    let dtypes = [
        ("conv.weight", Dtype::F32),
        ("half", Dtype::F16),
        ("bf", Dtype::BF16),
        ("double", Dtype::F64),
        ("count", Dtype::I64),
        ("int32", Dtype::I32),
        ("u8", Dtype::U8),
        ("mask", Dtype::Bool),
        ("transposed", Dtype::F32),
        ("row", Dtype::F32),
        ("empty", Dtype::F32),
        ("param", Dtype::F32),
    ];
    for (name, dtype) in dtypes {
        let info = st.info(name).unwrap();
        assert_eq!(info.dtype, dtype, "{name}");
        let e = want.read(name).unwrap();
        assert_eq!(info.shape, e.shape, "{name}");
        if e.is_float() {
            let (_, got) = st.f32(name).unwrap();
            let w: Vec<f32> = e.to_f64().unwrap().iter().map(|&v| v as f32).collect();
            assert_eq!(got, w, "{name}");
        } else {
            let (_, got) = st.i64(name).unwrap();
            assert_eq!(got, e.to_i64().unwrap(), "{name}");
        }
    }
    // The transposed view is not its storage's order: (0,1) of the 4 × 3 view is base[1][0].
    let (shape, t) = st.f32("transposed").unwrap();
    assert_eq!(shape, vec![4, 3]);
    assert_eq!(t[1], 4.0 / 8.0 - 0.7);
    assert_eq!(st.i64("count").unwrap(), (vec![], vec![123_456_789_012]));
}

#[test]
fn wrapped_and_data_parallel_state_dicts_are_unwrapped() {
    let st = SafeTensors::read(&fixture("wrapped.pth")).unwrap();
    let mut names: Vec<&str> = st.names().collect();
    names.sort_unstable();
    assert_eq!(names, vec!["a.weight", "b"]);
    assert_eq!(st.f32("b").unwrap(), (vec![2], vec![1.5, -2.0]));
    assert_eq!(st.f32("a.weight").unwrap().0, vec![3, 2]);
}

#[test]
fn whole_models_and_the_legacy_format_are_refused_with_the_way_out() {
    let p = fixture("whole_model.pth");
    let e = SafeTensors::read(&p).unwrap_err().to_string();
    assert!(e.contains(&p.display().to_string()), "{e}");
    assert!(e.contains("torch.nn.modules.linear.Linear"), "{e}");
    assert!(e.contains("state_dict()"), "{e}");
    let p = fixture("legacy.pth");
    let e = SafeTensors::read(&p).unwrap_err().to_string();
    assert!(
        e.contains(&p.display().to_string()) && e.contains("legacy"),
        "{e}"
    );
}

#[test]
fn damaged_checkpoints_give_errors_naming_the_file() {
    let bytes = std::fs::read(fixture("dtypes.pth")).unwrap();
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("damaged.pth");
    // Cut anywhere: the zip's directory is at the end, so every cut is refused.
    for cut in (4..bytes.len()).step_by(97).chain([bytes.len() - 1]) {
        std::fs::write(&p, &bytes[..cut]).unwrap();
        let e = SafeTensors::read(&p).unwrap_err().to_string();
        assert!(e.contains("damaged.pth"), "cut at {cut}: {e}");
    }
    // Every byte of the pickle and the storages flipped in turn (stored members: the zip's
    // CRC catches some; whatever the reader sees must give a result or an error, no panic).
    let pkl = bytes.windows(8).position(|w| w == b"data.pkl").unwrap();
    for at in (pkl..bytes.len().min(pkl + 1200)).step_by(3) {
        let mut b = bytes.clone();
        b[at] ^= 0x5a;
        std::fs::write(&p, &b).unwrap();
        if let Err(e) = SafeTensors::read(&p) {
            assert!(e.to_string().contains("damaged.pth"), "flip at {at}: {e}");
        }
    }
}
