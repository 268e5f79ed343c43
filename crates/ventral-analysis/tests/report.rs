//! The HTML report: figures per network, and a sentence instead of empty axes where a network
//! has nothing to show.

#![allow(clippy::unwrap_used)]

use ventral_analysis::output::{Net, write_report};
use ventral_analysis::{Activations, analyse};

#[test]
fn a_network_without_stable_later_images_gets_text_not_empty_plots() {
    let fx = ventral_core::fixtures::crate_dir(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let a = Activations::read(&fx.join("small.npz")).unwrap();
    // The same network frozen at its first step: predictions never change, horizon 1.
    let mut frozen = a.clone();
    let (rep0, lp0) = (a.n * a.d, a.n * a.c);
    for t in 1..a.t {
        frozen.reps.copy_within(0..rep0, t * rep0);
        frozen.log_probs.copy_within(0..lp0, t * lp0);
    }
    let da = analyse(&a, None, None, &[]).unwrap();
    let df = analyse(&frozen, None, None, &[]).unwrap();
    assert!(da.signatures.iter().any(|r| r.stat.n > 0));
    assert_eq!(df.horizon, 1);
    let dir = tempfile::tempdir().unwrap();
    let nets = [
        Net {
            name: "moving".into(),
            acts: &a,
            dynamics: &da,
            class_names: None,
        },
        Net {
            name: "frozen".into(),
            acts: &frozen,
            dynamics: &df,
            class_names: None,
        },
    ];
    let report = write_report(dir.path(), &nets).unwrap().path;
    let plots = dir.path().join("plots");
    for m in ["norm", "cos_current", "cos_future"] {
        assert!(
            plots.join(format!("moving_signature_{m}.svg")).is_file(),
            "{m}"
        );
        assert!(
            plots.join(format!("moving_signature_{m}.png")).is_file(),
            "{m}"
        );
        assert!(
            !plots.join(format!("frozen_signature_{m}.svg")).exists(),
            "{m}"
        );
    }
    for f in [
        "accuracy.svg",
        "moving_representation_change_trained.svg",
        "frozen_readout_dendrogram.svg",
        "frozen_zone_norm.svg",
    ] {
        assert!(plots.join(f).is_file(), "missing {f}");
    }
    let html = std::fs::read_to_string(report).unwrap();
    assert!(
        html.contains("frozen: no signatures. The analysis horizon is 1"),
        "report text"
    );
    assert!(!html.contains("moving: no signatures"));
}
