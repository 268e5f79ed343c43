//! Golden test: ventral's dynamics analysis equals a NumPy transcription of the reference
//! notebook's definitions on small reference-format `.npz` files.
//!
//! Fixtures and expected values were generated with (development only):
//!   python scripts/dynamics_reference.py fixtures crates/ventral-analysis/tests/fixtures
//! whose `analyse` is, in short:
//!   pred = outputs_all.argmax(2); acc = (pred == labels).mean(1)
//!   categorise(pred[:, i], y): stable iff pred[-1] == pred[-2] and the final class does not
//!     occur before its final run (t_stable = start of the run); else unstable (correct iff y
//!     occurs); hist over stable-correct t_stable; horizon = first t with hist[t] < hist[0]/100
//!   change: ‖R[t+1,i] − R[t,i]‖ per t_stable group (< horizon), trained and untrained
//!   signatures (t = 1..horizon−1, stable-correct, now: t_stable ≤ t, later: t_stable > t):
//!     norm, cos(R[t,i], W[pred]) ; later: cos(R[t,i], W[y_i]) and, per i, the mean over the
//!     other later images j with pred[t,j] == pred[t,i] and y_j ≠ y_i of cos(R[t,i], W[y_j])
//!   margins per t and correct/misclassified: norm, min_k≠p (lp_p − lp_k),
//!     degrees(arcsin(min_k≠p r·(W_p − W_k) / (‖W_p − W_k‖ ‖r‖)))
//!   zone entry: misclassified at t, correct at some later step, correct at the last step
//!   linkage(squareform((1 − cos(W_i, W_j))/2), method='ward')
//!   every mean with stats.t.interval(0.95, n − 1, loc=mean, scale=stats.sem(x))

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use serde_json::Value;
use ventral_analysis::dynamics::Stat;
use ventral_analysis::linkage::{readout_distances, ward};
use ventral_analysis::{Activations, analyse};

fn fixtures() -> PathBuf {
    ventral_core::fixtures::crate_dir(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn close(a: f64, b: &Value, what: &str) {
    match b.as_f64() {
        Some(b) => assert!(
            (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
            "{what}: ventral {a} vs numpy {b}"
        ),
        None => assert!(!a.is_finite(), "{what}: ventral {a} vs numpy null"),
    }
}

fn check_stat(s: &Stat, row: &[Value], what: &str) {
    close(s.mean, &row[0], &format!("{what} mean"));
    close(s.ci_low, &row[1], &format!("{what} ci_low"));
    close(s.ci_high, &row[2], &format!("{what} ci_high"));
    assert_eq!(s.n as u64, row[3].as_u64().unwrap(), "{what} n");
}

#[test]
fn dynamics_equal_the_numpy_reference() {
    let a = Activations::read(&fixtures().join("small.npz")).unwrap();
    let u = Activations::read(&fixtures().join("small_untrained.npz")).unwrap();
    let exp: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("small_expected.json")).unwrap(),
    )
    .unwrap();
    let d = analyse(&a, Some(&u), None, &[]).unwrap();
    for (t, v) in exp["accuracy"].as_array().unwrap().iter().enumerate() {
        close(d.accuracy[t], v, &format!("accuracy[{t}]"));
    }
    assert_eq!(d.best_step as u64, exp["best_step"].as_u64().unwrap());
    for (cat, count) in d.category_counts() {
        assert_eq!(
            count as u64,
            exp["categories"][cat.name()].as_u64().unwrap(),
            "{cat:?}"
        );
    }
    let hist: Vec<usize> = exp["t_stable_hist"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    assert_eq!(d.t_stable_hist, hist);
    assert_eq!(d.horizon as u64, exp["horizon"].as_u64().unwrap());

    let change = exp["representation_change"].as_array().unwrap();
    assert_eq!(d.change.len(), change.len());
    for (r, e) in d.change.iter().zip(change) {
        let e = e.as_array().unwrap();
        assert_eq!(r.network, e[0].as_str().unwrap());
        assert_eq!(r.t_stable as u64, e[1].as_u64().unwrap());
        assert_eq!(r.timestep as u64, e[2].as_u64().unwrap());
        check_stat(
            &r.stat,
            &e[3..],
            &format!("change {} g{} t{}", r.network, r.t_stable, r.timestep),
        );
    }
    for (name, rows) in [("signatures", &d.signatures), ("margins", &d.margins)] {
        let e = exp[name].as_array().unwrap();
        assert_eq!(rows.len(), e.len(), "{name} rows");
        for (r, e) in rows.iter().zip(e) {
            let e = e.as_array().unwrap();
            assert_eq!(r.timestep as u64, e[0].as_u64().unwrap());
            assert_eq!(r.group, e[1].as_str().unwrap());
            assert_eq!(r.metric, e[2].as_str().unwrap());
            check_stat(
                &r.stat,
                &e[3..],
                &format!("{name} t{} {} {}", r.timestep, r.group, r.metric),
            );
        }
    }
    for (r, e) in d.entry.iter().zip(exp["zone_entry"].as_array().unwrap()) {
        let e: Vec<u64> = e
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(
            [
                r.timestep,
                r.misclassified,
                r.enter_correct_later,
                r.correct_at_last
            ]
            .map(|v| v as u64),
            [e[0], e[1], e[2], e[3]]
        );
    }
    let z = ward(&readout_distances(&a.readout_weight, a.c, a.d), a.c);
    for (r, e) in z.iter().zip(exp["linkage"].as_array().unwrap()) {
        for q in 0..4 {
            close(r[q], &e[q], &format!("linkage {r:?}"));
        }
    }
}

/// Proportions split by metadata carry Wilson intervals (statsmodels), on `small.npz` with a
/// made-up column `grp` = "abc"[i % 3]:
/// ```python
/// from statsmodels.stats.proportion import proportion_confint
/// c = pred == y; later[t] = later[t + 1] | c[t + 1]   # correct at some later step
/// m = grp == g; k = c[t][m].sum(); proportion_confint(k, m.sum(), method="wilson")
/// mis = m & ~c[t]; proportion_confint(later[t][mis].sum(), mis.sum(), method="wilson")
/// ```
/// (t, level, correct, images, low, high, entering later, misclassified, low, high).
#[test]
fn proportions_by_metadata_carry_wilson_intervals() {
    type Row = (
        usize,
        &'static str,
        usize,
        usize,
        f64,
        f64,
        usize,
        usize,
        f64,
        f64,
    );
    #[rustfmt::skip]
    let golden: [Row; 15] = [
        (0, "a", 9, 27, 0.18643261498715644, 0.5217523949267993, 4, 18, 0.09000928108601691, 0.45214584316212625),
        (0, "b", 11, 27, 0.24514757074395555, 0.5927329903193531, 9, 16, 0.331785563988119, 0.7690134759450765),
        (0, "c", 11, 26, 0.2554444331365656, 0.6105138625340829, 6, 15, 0.19824496141341577, 0.642531698793754),
        (1, "a", 11, 27, 0.24514757074395555, 0.5927329903193531, 2, 16, 0.03497748774324044, 0.36022827265758695),
        (1, "b", 16, 27, 0.4072670096806468, 0.7548524292560443, 4, 11, 0.1516647109536757, 0.6461988254921511),
        (1, "c", 14, 26, 0.3545793874685879, 0.7124414646960879, 3, 12, 0.08894166839405476, 0.5323053349335658),
        (2, "a", 12, 27, 0.27585858177023004, 0.6268697548677552, 1, 15, 0.011866895493268553, 0.2981652987378003),
        (2, "b", 20, 27, 0.5532142868544692, 0.8682962543809281, 0, 7, 2.7755575615628914e-17, 0.3543304350666875),
        (2, "c", 15, 26, 0.389486137465917, 0.7445555668634344, 2, 11, 0.051367689746085105, 0.47698056196084426),
        (3, "a", 13, 27, 0.30743226976218463, 0.6601438424504772, 0, 14, 2.7755575615628914e-17, 0.21531080273763586),
        (3, "b", 20, 27, 0.5532142868544692, 0.8682962543809281, 0, 7, 2.7755575615628914e-17, 0.3543304350666875),
        (3, "c", 16, 26, 0.4253485008511553, 0.7757140556428721, 1, 10, 0.017876213095072924, 0.40415002679523854),
        (4, "a", 13, 27, 0.30743226976218463, 0.6601438424504772, 0, 14, 2.7755575615628914e-17, 0.21531080273763586),
        (4, "b", 20, 27, 0.5532142868544692, 0.8682962543809281, 0, 7, 2.7755575615628914e-17, 0.3543304350666875),
        (4, "c", 16, 26, 0.4253485008511553, 0.7757140556428721, 0, 10, 0.0, 0.27753279986288926),
    ];
    let a = Activations::read(&fixtures().join("small.npz")).unwrap();
    let meta = ventral_analysis::Metadata {
        source: "made up".into(),
        columns: vec!["grp".into()],
        rows: (0..a.n)
            .map(|i| vec![["a", "b", "c"][i % 3].to_string()])
            .collect(),
    };
    let d = analyse(&a, None, Some(&meta), &["grp".to_string()]).unwrap();
    let find = |t: usize, level: &str, metric: &str| {
        d.by_metadata
            .iter()
            .find(|r| {
                r.column == "grp" && r.timestep == t && r.level == level && r.metric == metric
            })
            .unwrap_or_else(|| panic!("no row t={t} {level} {metric}"))
            .stat
    };
    let near = |x: f64, y: f64| (x - y).abs() < 1e-14;
    for (t, level, k, n, lo, hi, ke, ne, le, he) in golden {
        for (metric, k, n, lo, hi) in [
            ("accuracy", k, n, lo, hi),
            ("enter_correct_later", ke, ne, le, he),
        ] {
            let s = find(t, level, metric);
            assert_eq!(s.n, n, "t={t} {level} {metric}");
            assert!(
                near(s.mean, k as f64 / n as f64) && near(s.ci_low, lo) && near(s.ci_high, hi),
                "t={t} {level} {metric}: {s:?}"
            );
        }
    }
}

/// Two networks on the same images compared step by step (paired: images only one gets right,
/// exact McNemar), here the trained and untrained fixtures:
/// ```python
/// from statsmodels.stats.contingency_tables import mcnemar
/// ca = a["outputs_all"].argmax(-1) == y; cb = b["outputs_all"].argmax(-1) == y
/// oa = (ca[t] & ~cb[t]).sum(); ob = (~ca[t] & cb[t]).sum()
/// mcnemar([[0, oa], [ob, 0]], exact=True).pvalue
/// ```
#[test]
fn networks_on_the_same_images_are_compared_pairwise() {
    use ventral_analysis::dynamics::compare_networks;
    let golden = [
        (0.3875, 0.15, 23, 4, 0.000310748815536499),
        (0.5125, 0.1875, 32, 6, 2.4342560209333897e-05),
        (0.5875, 0.2125, 33, 3, 2.2721360437572002e-07),
        (0.6125, 0.2125, 34, 2, 1.941225491464138e-08),
        (0.6125, 0.15, 40, 3, 3.0213413992896676e-09),
    ];
    let a = Activations::read(&fixtures().join("small.npz")).unwrap();
    let b = Activations::read(&fixtures().join("small_untrained.npz")).unwrap();
    let (da, db) = (
        analyse(&a, None, None, &[]).unwrap(),
        analyse(&b, None, None, &[]).unwrap(),
    );
    let rows = compare_networks(&[("trained", &a, &da), ("untrained", &b, &db)]);
    assert_eq!(rows.len(), golden.len());
    for (t, (r, (acc_a, acc_b, only_a, only_b, p))) in rows.iter().zip(golden).enumerate() {
        assert_eq!((r.a.as_str(), r.b.as_str()), ("trained", "untrained"));
        assert_eq!(
            (r.step_a, r.step_b, r.only_a, r.only_b),
            (t, t, only_a, only_b)
        );
        assert!((r.accuracy_a - acc_a).abs() < 1e-12 && (r.accuracy_b - acc_b).abs() < 1e-12);
        assert!((r.p - p).abs() <= 1e-12 * p, "t={t}: {} vs {p}", r.p);
    }
    // Fewer steps in one network: the shared steps, then last against last.
    let mut short = b.clone();
    short.t = 3;
    short.log_probs.truncate(3 * short.n * short.c);
    short.reps.truncate(3 * short.n * short.d);
    let ds = analyse(&short, None, None, &[]).unwrap();
    let rows = compare_networks(&[("trained", &a, &da), ("short", &short, &ds)]);
    let steps: Vec<(usize, usize)> = rows.iter().map(|r| (r.step_a, r.step_b)).collect();
    assert_eq!(steps, [(0, 0), (1, 1), (2, 2), (4, 2)]);
    // Other images (a label changed): not compared.
    let mut other = b.clone();
    other.labels[0] = (other.labels[0] + 1) % other.c;
    let dother = analyse(&other, None, None, &[]).unwrap();
    assert!(compare_networks(&[("trained", &a, &da), ("other", &other, &dother)]).is_empty());
}
