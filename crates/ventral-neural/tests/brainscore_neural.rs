//! Per-split predictivity and ceilings equal to Brain-Score's own neural code, split by split.
//!
//! Fixture: `scripts/make_neural_fixtures.py`, run with brainscore-vision 2.4.2 (recipe in the
//! script). A BrainIO recording (80 stimuli of 4 objects × 6 repetitions, 10 IT + 6 V4 sites,
//! two bins) and two layers (60 features: primal PLS; 150 features: ventral's dual form). Per
//! region and bin, in short:
//! ```python
//! metric = CrossRegressedCorrelation(regression=pls_regression(), correlation=pearsonr_correlation(),
//!                                    crossvalidation_kwargs=dict(stratification_coord="object_name"))
//! score = metric(source, average_repetition(region_bin_assembly))
//! fit["per_split"] = score.raw.median("neuroid"); fit["per_site"] = score.raw.mean("split")
//! ceiling = InternalConsistency()(region_bin_assembly)
//! ceil["per_split"] = ceiling.raw.median("neuroid"); ceil["value"] = float(ceiling)
//! ```
//! ventral runs with `--splits brainscore` (StratifiedShuffleSplit / ShuffleSplit draws of
//! NumPy's `RandomState(1)`), PLS(25), 10 splits, train 0.9, 10 ceiling halvings.

#![allow(clippy::unwrap_used)]

use serde_json::Value;
use ventral_neural::Assembly;
use ventral_neural::features::Features;
use ventral_neural::predictivity::{
    FeedforwardMapping, FitOptions, SplitProcedure, ceilings, fit_predictivity, split_scores_csv,
};
use ventral_neural::recordings::Recordings;

fn fixtures() -> std::path::PathBuf {
    ventral_core::fixtures::crate_dir(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

#[test]
fn per_split_r_and_ceilings_equal_brainscore() {
    let dir = fixtures();
    let want: Value =
        serde_json::from_slice(&std::fs::read(dir.join("brainscore_neural.json")).unwrap())
            .unwrap();
    let nc = dir.join("brainscore_neural.nc");
    let rec = Recordings::from_assembly(&Assembly::read(&nc).unwrap(), "fixture").unwrap();
    let feats = Features::read(
        &dir.join("brainscore_neural_features.npz"),
        &rec.stimulus_ids,
        "the fixture recordings",
        &[],
    )
    .unwrap();
    let opts = FitOptions {
        procedure: SplitProcedure::BrainScore,
        feedforward: FeedforwardMapping::Uniform,
        consistency_bootstraps: 0,
        ..FitOptions::default()
    };
    let regions: Vec<String> = rec.region_sites().into_iter().map(|(r, _)| r).collect();
    let ceil = ceilings(&rec, &opts).unwrap().unwrap();
    let mut worst_ceiling = 0.0f64;
    for c in want["ceilings"].as_array().unwrap() {
        let ri = regions
            .iter()
            .position(|r| r == c["region"].as_str().unwrap())
            .unwrap();
        let got = &ceil[ri][c["bin"].as_u64().unwrap() as usize];
        let per: Vec<f64> = c["per_split"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(got.per_halving.len(), per.len());
        for (g, w) in got.per_halving.iter().zip(&per) {
            worst_ceiling = worst_ceiling.max((g - w).abs());
        }
        worst_ceiling = worst_ceiling.max((got.value - c["value"].as_f64().unwrap()).abs());
    }
    // Brain-Score averages the float32 trials in float32 (xarray keeps the dtype); ventral
    // in float64: equal to float32 rounding.
    eprintln!("max |Δ| vs Brain-Score: ceiling {worst_ceiling:e}");
    assert!(
        worst_ceiling < 1e-6,
        "ceilings differ from Brain-Score's by {worst_ceiling:e}"
    );

    let res = fit_predictivity(&feats, &rec, Some(&ceil), &opts).unwrap();
    let mut worst_split = 0.0f64;
    let mut worst_site = 0.0f64;
    let fits = want["fits"].as_array().unwrap();
    assert_eq!(fits.len(), 2 * 2 * 2);
    for f in fits {
        let (layer, region) = (f["layer"].as_str().unwrap(), f["region"].as_str().unwrap());
        let bin = f["bin"].as_u64().unwrap() as usize;
        let got: Vec<f64> = res
            .per_split
            .iter()
            .filter(|s| {
                s.layer == layer && s.region == region && s.time_bin_start == rec.bins[bin].0
            })
            .map(|s| s.r)
            .collect();
        let per = f["per_split"].as_array().unwrap();
        assert_eq!(got.len(), per.len(), "{layer} {region} bin {bin}");
        for (g, w) in got.iter().zip(per) {
            worst_split = worst_split.max((g - w.as_f64().unwrap()).abs());
        }
        let mean = got.iter().sum::<f64>() / got.len() as f64;
        worst_split = worst_split.max((mean - f["value"].as_f64().unwrap()).abs());
        for (nid, w) in f["per_site"].as_object().unwrap() {
            let g = res
                .sites
                .iter()
                .find(|s| s.0 == layer && s.2 == region && s.3 == bin && &s.4 == nid)
                .unwrap();
            worst_site = worst_site.max((g.5 - w.as_f64().unwrap()).abs());
        }
    }
    eprintln!(
        "max |Δ| vs Brain-Score: ceiling {worst_ceiling:e}, per-split r {worst_split:e}, per-site r {worst_site:e}"
    );
    // PLS is NIPALS with tol 1e-6 in scikit-learn; ventral runs the same iteration.
    assert!(worst_split < 1e-6, "per-split r differs by {worst_split:e}");
    assert!(worst_site < 1e-6, "per-site r differs by {worst_site:e}");

    let csv = split_scores_csv(&res.per_split).unwrap();
    assert_eq!(csv.lines().count(), 1 + 2 * 2 * 2 * 10);
    assert!(
        csv.starts_with("model,layer,timestep,region,time_bin_start,time_bin_end,metric,split,r\n")
    );
}
