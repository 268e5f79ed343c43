//! The fuzz targets in the test suite: every checked-in seed and every regression input (a
//! crash found by `scripts/fuzz.sh`, kept after the fix) is replayed, then a short seeded
//! mutation run per target. Any panic fails the test with the target and the message.

use ventral_fuzz::{Config, TARGETS, fuzz, quiet_panics, read_inputs};

#[test]
fn every_target_survives_its_corpus_regressions_and_a_short_mutation_run() {
    let repo = ventral_core::fixtures::crate_dir(env!("CARGO_MANIFEST_DIR")).join("../..");
    quiet_panics();
    let mut failures = Vec::new();
    for t in TARGETS {
        let seeds = read_inputs(&repo.join("fuzz/corpus").join(t.name)).unwrap();
        assert!(!seeds.is_empty(), "no seed corpus for {}", t.name);
        let regs = read_inputs(&repo.join("fuzz/regressions").join(t.name)).unwrap();
        let inputs: Vec<Vec<u8>> = seeds.iter().chain(&regs).map(|x| x.1.clone()).collect();
        let work = tempfile::tempdir().unwrap();
        let cfg = Config {
            max_execs: inputs.len() as u64 + 300,
            ..Config::default()
        };
        let stats = fuzz(t, &inputs, work.path(), &cfg).unwrap();
        // Every seed is valid input: the first replay of each is accepted.
        assert!(stats.accepted > 0, "{}: no input accepted", t.name);
        for f in stats.findings.iter().filter(|f| f.kind == "panic") {
            failures.push(format!("{}: {}", t.name, f.message));
        }
    }
    assert!(failures.is_empty(), "panics:\n{}", failures.join("\n"));
}
