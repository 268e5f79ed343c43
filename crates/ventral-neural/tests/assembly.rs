//! BrainIO assemblies: the three real files of brain-score/brainio (tests/files, in
//! ../shared/fixtures/brainio) read completely; what ventral writes reads back identically.
//!
//! Expected values were read with xarray at development time:
//!
//! ```python
//! import xarray as xr
//! ds = xr.open_dataset("assy_test_TestMe.nc")          # data (presentation: 6, neuroid: 3)
//! ds.stimulus_id.values  # ['n0' 'n1' 'n2' 'n3' 'n4' 'n5'] ... neuroid_id ['alpha' 'beta' 'gamma']
//! ds = xr.open_dataset("assy_test_package_assembly.nc")  # __xarray_dataarray_variable__ (6, 3, 1)
//! ds.image_id.values, ds.time_bin_start.values, ds.time_bin_end.values  # n0.., [0], [10]
//! ```

#![allow(clippy::unwrap_used)]

use ventral_core::fixtures::shared_fixture;
use ventral_neural::{Assembly, CoordValues};

fn fx(name: &str) -> Option<std::path::PathBuf> {
    shared_fixture(env!("CARGO_MANIFEST_DIR"), &format!("brainio/{name}"))
}

#[test]
fn reads_the_brainio_test_files() {
    let Some(p) = fx("assy_test_TestMe.nc") else {
        return;
    };
    let a = Assembly::read(&p).unwrap();
    println!("{a:?}");
    assert_eq!(a.dims, ["presentation", "neuroid"]);
    assert_eq!(a.shape, [6, 3]);
    assert_eq!(a.data.len(), 18);
    assert_eq!(a.stimulus_ids().unwrap()[0], "n0");
    assert_eq!(
        a.coord("neuroid_id").unwrap().values.to_strings()[0],
        "alpha"
    );
    assert!(matches!(
        a.coord("repetition").unwrap().values,
        CoordValues::Int(_)
    ));

    let Some(p) = fx("assy_test_package_assembly.nc") else {
        return;
    };
    let a = Assembly::read(&p).unwrap();
    println!("{a:?}");
    assert_eq!(a.dims, ["presentation", "neuroid", "time_bin"]);
    assert_eq!(a.shape, [6, 3, 1]);
    // Legacy image_id serves as the stimulus id.
    assert_eq!(a.stimulus_ids().unwrap().len(), 6);
    assert_eq!(
        a.coord("time_bin_start").unwrap().values,
        CoordValues::Int(vec![0])
    );
    assert_eq!(
        a.coord("time_bin_end").unwrap().values,
        CoordValues::Int(vec![10])
    );

    let Some(p) = fx("assy_test_package_assembly_extras.nc") else {
        return;
    };
    let a = Assembly::read(&p).unwrap();
    assert_eq!(a.dims, ["event"]);
    assert_eq!(a.shape, [1000]);
    assert_eq!(a.coord("region").unwrap().values.to_strings()[0], "V4");
    assert!((a.data[0] - 67.78308398662739).abs() < 1e-12);
}

#[test]
fn write_then_read_round_trips() {
    let Some(p) = fx("assy_test_package_assembly.nc") else {
        return;
    };
    let mut a = Assembly::read(&p).unwrap();
    a.attrs.insert("identifier".into(), "ventral.test".into());
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out.nc");
    a.write(&out).unwrap();
    let b = Assembly::read(&out).unwrap();
    assert_eq!(a, b);
}

#[test]
fn not_netcdf_is_named() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("junk.nc");
    std::fs::write(&p, b"CDF\x01 truncated").unwrap();
    let e = Assembly::read(&p).unwrap_err().to_string();
    assert!(e.contains("junk.nc"), "{e}");
}

#[test]
fn written_groups_track_link_creation_order() {
    // netCDF-C opens a netCDF-4 file for writing only if its groups track link creation order
    // (vendor/README.md). HDF5 spec, Link Info message (type 0x02) in a v2 object header:
    // type, u16 size, message flags, then the payload: version 0, flags bit 0 (creation order
    // tracked) and an 8-byte maximum creation index — 26 bytes instead of 18.
    let a = Assembly::read(
        &ventral_core::fixtures::crate_dir(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/brainscore_neural.nc"),
    )
    .unwrap();
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out.nc");
    a.write(&out).unwrap();
    let bytes = std::fs::read(&out).unwrap();
    let tracked = [0x02u8, 26, 0, 0, 0, 0x01];
    let untracked = [0x02u8, 18, 0, 0, 0, 0x00];
    assert!(bytes.windows(6).any(|w| w == tracked));
    assert!(!bytes.windows(6).any(|w| w == untracked));
    assert_eq!(Assembly::read(&out).unwrap(), a);
}

#[test]
fn a_file_appended_by_netcdf_c_reads_back() {
    // scripts/make_netcdf_append_fixture.py: `ventral neural-synth` output (40 stimuli × 2
    // repetitions, 6 sites, 2 bins) opened with netCDF4.Dataset(path, "a"), a global attribute
    // and a variable added.
    let p = ventral_core::fixtures::crate_dir(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/ventral_then_netcdf_c.nc");
    let a = Assembly::read(&p).unwrap();
    assert_eq!(a.dims, ["presentation", "neuroid", "time_bin"]);
    assert_eq!(a.shape, [80, 6, 2]);
    assert!(
        a.attrs["appended_by"].starts_with("netCDF-C"),
        "{:?}",
        a.attrs
    );
    assert_eq!(a.stimulus_ids().unwrap().len(), 80);
}
