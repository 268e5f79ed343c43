//! Tidy CSV tables, PNG + SVG plots and the self-contained `report.html` of the dynamics
//! analysis. Time steps are 0-based.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use ventral_core::atomic::write_bytes_atomic;
use ventral_core::npy::{NpyArray, NpyData, write_npz};
use ventral_report::{
    Dendrogram, LinePlot, Section, Series, Style, dendrogram, html_report, line_plot, y_extent,
};

use crate::activations::Activations;
use crate::dynamics::{Category, Dynamics, PairRow, Stat, StepChange, compare_networks};
use crate::error::{AnalysisError, Result, file_err};
use crate::pca::principal_axes;

/// A text field for CSV: quoted (inner quotes doubled) when it holds a comma, quote or newline.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A number for CSV (empty when not finite).
pub fn num(v: f64) -> String {
    if v.is_finite() {
        v.to_string()
    } else {
        String::new()
    }
}

/// A number for CSV that may be tiny (a p-value): exponent notation below 1e-4, so that
/// 2.2e-26 is not written out as 26 zeros (empty when not finite).
pub fn num_sci(v: f64) -> String {
    if v.is_finite() && v != 0.0 && v.abs() < 1e-4 {
        format!("{v:e}")
    } else {
        num(v)
    }
}

fn stat_cols(s: &Stat) -> String {
    format!(
        "{},{},{},{}",
        num(s.mean),
        num(s.ci_low),
        num(s.ci_high),
        s.n
    )
}

fn write(dir: &Path, name: &str, text: &str) -> Result<()> {
    let p = dir.join(name);
    write_bytes_atomic(&p, text.as_bytes()).map_err(|e| file_err(p.display(), e))
}

/// Writes the tables of one network into `dir`.
pub fn write_tables(dir: &Path, a: &Activations, d: &Dynamics) -> Result<()> {
    // gained / lost / p_mcnemar: against the previous step, on the same images (empty at t = 0).
    let mut s = String::from("timestep,accuracy,correct,n,ci_low,ci_high,gained,lost,p_mcnemar\n");
    for (t, v) in d.accuracy.iter().enumerate() {
        let (lo, hi) = d.accuracy_ci[t];
        let _ = write!(
            s,
            "{t},{v},{},{},{},{}",
            d.correct[t],
            d.n,
            num(lo),
            num(hi)
        );
        match t.checked_sub(1).map(|p| d.step_changes[p]) {
            Some(c) => writeln!(s, ",{},{},{}", c.gained, c.lost, num_sci(c.p)),
            None => writeln!(s, ",,,"),
        }
        .ok();
    }
    write(dir, "accuracy.csv", &s)?;
    let mut s = String::from("category,count,fraction\n");
    for (c, k) in d.category_counts() {
        let _ = writeln!(s, "{},{k},{}", c.name(), k as f64 / d.n as f64);
    }
    write(dir, "stability.csv", &s)?;
    let mut s = String::from("t_stable,count\n");
    for (t, k) in d.t_stable_hist.iter().enumerate() {
        let _ = writeln!(s, "{t},{k}");
    }
    write(dir, "t_stable_hist.csv", &s)?;
    let mut s = String::from("network,t_stable,timestep,mean,ci_low,ci_high,n\n");
    for r in &d.change {
        let _ = writeln!(
            s,
            "{},{},{},{}",
            r.network,
            r.t_stable,
            r.timestep,
            stat_cols(&r.stat)
        );
    }
    write(dir, "representation_change.csv", &s)?;
    for (name, rows) in [
        ("signatures.csv", &d.signatures),
        ("margins.csv", &d.margins),
    ] {
        let mut s = String::from("timestep,group,metric,mean,ci_low,ci_high,n\n");
        for r in rows {
            let _ = writeln!(
                s,
                "{},{},{},{}",
                r.timestep,
                r.group,
                r.metric,
                stat_cols(&r.stat)
            );
        }
        write(dir, name, &s)?;
    }
    let mut s = String::from("timestep,from,to,count,fraction\n");
    for r in &d.transitions {
        let _ = writeln!(
            s,
            "{},{},{},{},{}",
            r.timestep,
            r.from,
            r.to,
            r.count,
            num(r.fraction)
        );
    }
    write(dir, "zone_transitions.csv", &s)?;
    let mut s = String::from(
        "timestep,misclassified,enter_correct_later,fraction_later,correct_at_last,fraction_at_last\n",
    );
    for r in &d.entry {
        let f = |k: usize| num(k as f64 / r.misclassified as f64);
        let _ = writeln!(
            s,
            "{},{},{},{},{},{}",
            r.timestep,
            r.misclassified,
            r.enter_correct_later,
            f(r.enter_correct_later),
            r.correct_at_last,
            f(r.correct_at_last)
        );
    }
    write(dir, "zone_entry.csv", &s)?;
    if !d.by_metadata.is_empty() {
        let mut s = String::from("column,level,timestep,metric,mean,ci_low,ci_high,n\n");
        for r in &d.by_metadata {
            let _ = writeln!(
                s,
                "{},\"{}\",{},{},{}",
                r.column,
                r.level.replace('"', "\"\""),
                r.timestep,
                r.metric,
                stat_cols(&r.stat)
            );
        }
        write(dir, "by_metadata.csv", &s)?;
    }
    let mut s =
        String::from("image,stimulus_id,label,category,t_stable,final_class,t_first_correct\n");
    let opt = |v: Option<usize>| v.map(|x| x.to_string()).unwrap_or_default();
    for (i, im) in d.images.iter().enumerate() {
        let id = a
            .stimulus_ids
            .as_ref()
            .map(|v| v[i].clone())
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "{i},{id},{},{},{},{},{}",
            a.labels[i],
            im.category.name(),
            opt(im.t_stable),
            opt(im.final_class),
            opt(im.t_first_correct)
        );
    }
    write(dir, "per_image.csv", &s)?;
    let mut s = String::from("cluster_a,cluster_b,distance,size\n");
    for r in &d.linkage {
        let _ = writeln!(s, "{},{},{},{}", r[0], r[1], r[2], r[3]);
    }
    write(dir, "readout_linkage.csv", &s)?;
    let m: Vec<u64> = d.transition_matrix.iter().flatten().copied().collect();
    let arr = NpyArray::new(vec![d.transition_matrix.len(), d.c, d.c], NpyData::U64(m))
        .map_err(AnalysisError::Invalid)?;
    let p = dir.join("zone_transitions.npz");
    write_npz(&p, &[("counts", &arr)], true).map_err(|e| file_err(p.display(), e))?;
    Ok(())
}

/// One network for the plots and the report.
#[derive(Debug)]
pub struct Net<'a> {
    pub name: String,
    pub acts: &'a Activations,
    pub dynamics: &'a Dynamics,
    /// Class names (index = class), when known.
    pub class_names: Option<Vec<String>>,
}

fn plot(dir: &Path, stem: &str, p: &LinePlot) -> Result<PathBuf> {
    let s = dir.join(stem);
    line_plot(&s, p).map_err(|e| file_err(&e.path, e.msg))?;
    Ok(s.with_extension("svg"))
}

/// A series of means with their interval band; points without a mean and band points without
/// an interval (fewer than two values) are left out.
fn stat_series(name: String, pts: Vec<(f64, Stat)>, style: Style) -> Series {
    Series {
        name,
        points: pts
            .iter()
            .filter(|(_, s)| s.mean.is_finite())
            .map(|(x, s)| (*x, s.mean))
            .collect(),
        band: Some(
            pts.iter()
                .filter(|(_, s)| s.ci_low.is_finite() && s.ci_high.is_finite())
                .map(|(x, s)| (*x, s.ci_low, s.ci_high))
                .collect(),
        ),
        style,
    }
}

/// A step-to-step change as the report and the CLI show it: "-1.1 points (51 gained, 72 lost,
/// p = 0.071)", or "no change" when no image changed.
pub fn change_cell(c: &StepChange, n: usize) -> String {
    if c.gained == 0 && c.lost == 0 {
        return "no change".into();
    }
    let diff = (c.gained as f64 - c.lost as f64) / n.max(1) as f64;
    format!(
        "{} ({} gained, {} lost, {})",
        points(diff),
        c.gained,
        c.lost,
        p_text(c.p)
    )
}

/// Two networks at one step each, as the report and the CLI show it: "BLT t=3 vs B t=3: +3.1
/// points (BLT alone right on 312 images, B alone on 250, p = 0.013)".
pub fn pair_text(r: &PairRow) -> String {
    format!(
        "{} t={} vs {} t={}: {} ({} alone right on {} images, {} alone on {}, {})",
        r.a,
        r.step_a,
        r.b,
        r.step_b,
        points(r.accuracy_a - r.accuracy_b),
        r.a,
        r.only_a,
        r.b,
        r.only_b,
        p_text(r.p)
    )
}

/// The networks recorded on the same images, compared ([`compare_networks`]), written as
/// `networks_compared.csv` in `dir` (nothing when no pair qualifies).
fn write_comparison(dir: &Path, nets: &[Net<'_>]) -> Result<Vec<PairRow>> {
    let v: Vec<(&str, &Activations, &Dynamics)> = nets
        .iter()
        .map(|n| (n.name.as_str(), n.acts, n.dynamics))
        .collect();
    let rows = compare_networks(&v);
    if rows.is_empty() {
        return Ok(rows);
    }
    let mut s = String::from("a,b,step_a,step_b,accuracy_a,accuracy_b,only_a,only_b,p_mcnemar\n");
    for r in &rows {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{}",
            csv_field(&r.a),
            csv_field(&r.b),
            r.step_a,
            r.step_b,
            r.accuracy_a,
            r.accuracy_b,
            r.only_a,
            r.only_b,
            num_sci(r.p)
        );
    }
    write(dir, "networks_compared.csv", &s)?;
    Ok(rows)
}

/// A difference of accuracies (fractions) in percentage points: "+3.1 points".
fn points(diff: f64) -> String {
    format!("{:+.1} points", diff * 100.0)
}

/// A p-value as text: "p < 0.001" below one in a thousand, else "p = 0.071".
pub fn p_text(p: f64) -> String {
    if p < 0.001 {
        "p < 0.001".into()
    } else {
        format!("p = {p:.3}")
    }
}

fn label(net: &Net<'_>, k: usize) -> String {
    net.class_names
        .as_ref()
        .and_then(|v| v.get(k).cloned())
        .unwrap_or_else(|| format!("class {k}"))
}

/// What [`write_report`] wrote: the report's path, and the networks it compared on the same
/// images (the rows of `networks_compared.csv`; none for one network).
#[derive(Debug)]
pub struct Report {
    pub path: PathBuf,
    pub pairs: Vec<PairRow>,
}

/// Draws every figure into `dir/plots`, writes `dir/networks_compared.csv` (networks recorded
/// on the same images, pairwise) and `dir/report.html`.
pub fn write_report(dir: &Path, nets: &[Net<'_>]) -> Result<Report> {
    let pd = dir.join("plots");
    std::fs::create_dir_all(&pd).map_err(|e| file_err(pd.display(), e))?;
    let multi = nets.len() > 1;
    let tag = |n: &Net<'_>, s: &str| {
        if multi {
            format!("{} {s}", n.name)
        } else {
            s.to_string()
        }
    };
    let stem = |n: &Net<'_>, s: &str| {
        if multi {
            format!("{}_{s}", sanitize(&n.name))
        } else {
            s.to_string()
        }
    };
    let mut sections = Vec::new();

    // Accuracy.
    let mut series: Vec<Series> = nets
        .iter()
        .map(|n| Series {
            name: n.name.clone(),
            points: n
                .dynamics
                .accuracy
                .iter()
                .enumerate()
                .map(|(t, &a)| (t as f64, a))
                .collect(),
            band: Some(
                n.dynamics
                    .accuracy_ci
                    .iter()
                    .enumerate()
                    .filter(|(_, (lo, hi))| lo.is_finite() && hi.is_finite())
                    .map(|(t, &(lo, hi))| (t as f64, lo, hi))
                    .collect(),
            ),
            ..Series::default()
        })
        .collect();
    if let Some(n) = nets.first() {
        let chance = 1.0 / n.dynamics.c as f64;
        series.push(Series {
            name: "chance".into(),
            points: vec![(0.0, chance), ((n.dynamics.t - 1).max(1) as f64, chance)],
            style: Style::Dashed,
            ..Series::default()
        });
    }
    let acc_fig = plot(
        &pd,
        "accuracy",
        &LinePlot {
            title: "Accuracy over time steps".into(),
            x_label: "time step".into(),
            y_label: "accuracy (fraction correct)".into(),
            series,
            y_range: Some((0.0, 1.0)),
        },
    )?;
    let mut acc_rows = Vec::new();
    for n in nets {
        let d = n.dynamics;
        acc_rows.push(
            std::iter::once(n.name.clone())
                .chain(d.accuracy.iter().map(|a| format!("{a:.3}")))
                .chain(std::iter::once(d.best_step.to_string()))
                .collect(),
        );
    }
    let t_max = nets.iter().map(|n| n.dynamics.t).max().unwrap_or(0);
    let change_rows = nets
        .iter()
        .map(|n| {
            let d = n.dynamics;
            std::iter::once(n.name.clone())
                .chain((1..t_max).map(|t| {
                    d.step_changes
                        .get(t - 1)
                        .map_or(String::new(), |c| change_cell(c, d.n))
                }))
                .collect()
        })
        .collect();
    sections.push(Section {
        heading: "Accuracy over time".into(),
        text: vec![
            format!(
                "Fraction of the {} images whose predicted class (argmax of the readout) is correct at each time step; shaded: its 95 % Wilson interval over images.",
                nets.first().map_or(0, |n| n.dynamics.n)
            ),
            "The second table compares each step with the one before on the same images: the change in accuracy (points), the images that turned correct (gained) and incorrect (lost), and the exact McNemar test of that change — p above 0.05 means these images do not tell the two steps apart.".into(),
        ],
        figures: vec![acc_fig],
        tables: vec![
            (
                "Accuracy per time step".into(),
                std::iter::once("network".to_string())
                    .chain((0..t_max).map(|t| format!("t={t}")))
                    .chain(std::iter::once("best step".into()))
                    .collect(),
                acc_rows,
            ),
            (
                "Change from the previous step (paired over images; exact McNemar test)".into(),
                std::iter::once("network".to_string())
                    .chain((1..t_max).map(|t| format!("t={}→{t}", t - 1)))
                    .collect(),
                change_rows,
            ),
        ],
    });
    let pairs = write_comparison(dir, nets)?;
    if !pairs.is_empty() {
        sections.push(Section {
            heading: "Networks compared on the same images".into(),
            text: vec!["Each pair of networks recorded on the same images, at each step both have (and last step against last step when their step counts differ): the accuracies, the images only one of the two classifies correctly, and the exact McNemar test of the difference — p above 0.05 means these images do not tell the two networks apart at those steps. Table: networks_compared.csv.".into()],
            figures: Vec::new(),
            tables: vec![(
                "Paired comparison (exact McNemar test)".into(),
                [
                    "networks", "steps", "accuracy", "difference", "correct only in one", "McNemar",
                ]
                .iter()
                .map(|h| h.to_string())
                .collect(),
                pairs
                    .iter()
                    .map(|r| {
                        vec![
                            format!("{} vs {}", r.a, r.b),
                            format!("t={} vs t={}", r.step_a, r.step_b),
                            format!("{:.3} vs {:.3}", r.accuracy_a, r.accuracy_b),
                            points(r.accuracy_a - r.accuracy_b),
                            format!("{} / {}", r.only_a, r.only_b),
                            p_text(r.p),
                        ]
                    })
                    .collect(),
            )],
        });
    }

    // Stability categories and t_stable.
    let mut figs = Vec::new();
    let hist_series: Vec<Series> = nets
        .iter()
        .map(|n| Series {
            name: n.name.clone(),
            points: n
                .dynamics
                .t_stable_hist
                .iter()
                .enumerate()
                .map(|(t, &c)| (t as f64, c as f64))
                .collect(),
            ..Series::default()
        })
        .collect();
    figs.push(plot(
        &pd,
        "t_stable_hist",
        &LinePlot {
            title: "Stable-correct images by the step they stabilise".into(),
            x_label: "t_stable (time step)".into(),
            y_label: "number of images".into(),
            series: hist_series,
            y_range: None,
        },
    )?);
    let cat_rows = nets
        .iter()
        .map(|n| {
            let d = n.dynamics;
            std::iter::once(n.name.clone())
                .chain(
                    d.category_counts()
                        .iter()
                        .map(|(_, k)| format!("{k} ({:.1}%)", 100.0 * *k as f64 / d.n as f64)),
                )
                .chain(std::iter::once(d.horizon.to_string()))
                .collect()
        })
        .collect();
    sections.push(Section {
        heading: "Classification dynamics".into(),
        text: vec!["Stable images keep one class from t_stable to the last step, and that class does not occur before t_stable; all others are unstable. The analysis horizon is the first t_stable whose count is below 1% of the count at t_stable = 0; only groups below it are analysed.".into()],
        figures: figs,
        tables: vec![(
            "Categories".into(),
            std::iter::once("network".to_string())
                .chain(Category::ALL.iter().map(|c| c.name().to_string()))
                .chain(std::iter::once("horizon".into()))
                .collect(),
            cat_rows,
        )],
    });

    // Representation change: one panel per network variant (trained, untrained) on one y
    // range, a line per t_stable group.
    let mut figs = Vec::new();
    for n in nets {
        let d = n.dynamics;
        let panels: Vec<(&str, Vec<Series>)> = ["trained", "untrained"]
            .into_iter()
            .map(|network| {
                let series = (0..d.horizon)
                    .filter_map(|g| {
                        let pts: Vec<(f64, Stat)> = d
                            .change
                            .iter()
                            .filter(|r| r.network == network && r.t_stable == g && r.stat.n > 0)
                            .map(|r| (r.timestep as f64 + 0.5, r.stat))
                            .collect();
                        (!pts.is_empty())
                            .then(|| stat_series(format!("t_stable = {g}"), pts, Style::Line))
                    })
                    .collect();
                (network, series)
            })
            .filter(|(_, series): &(&str, Vec<Series>)| !series.is_empty())
            .collect();
        let y_range = y_extent(panels.iter().flat_map(|(_, series)| series));
        for (network, series) in panels {
            figs.push(plot(
                &pd,
                &stem(n, &format!("representation_change_{network}")),
                &LinePlot {
                    title: tag(
                        n,
                        &format!("Representation change ‖r(t+1) − r(t)‖, {network} network"),
                    ),
                    x_label: "time step (each point between t and t+1)".into(),
                    y_label: "L2 distance (activation units)".into(),
                    series,
                    y_range: Some(y_range),
                },
            )?);
        }
    }
    sections.push(Section {
        heading: "Representations keep moving after correct classification".into(),
        text: vec!["Mean step size of stable-correct images per t_stable group (images that reach their final, correct class at t_stable and keep it), with 95% t-intervals; the second panel passes the same images through the untrained network (same y axis).".into()],
        figures: figs,
        tables: Vec::new(),
    });

    // Signatures of stability: one figure per metric, networks side by side; a network without
    // stable-later images gets a sentence instead of empty axes.
    let mut figs = Vec::new();
    let mut sig_text = vec!["Over stable-correct images inside the horizon, at each t ≥ 1: stable-now images (t_stable ≤ t, already in their final correct zone) against stable-later images (t_stable > t, currently in another zone). Means with 95% t-intervals.".to_string()];
    let has_sig = |n: &Net<'_>| n.dynamics.signatures.iter().any(|r| r.stat.n > 0);
    for n in nets.iter().filter(|n| !has_sig(n)) {
        let d = n.dynamics;
        sig_text.push(if d.horizon <= 1 {
            format!(
                "{}: no signatures. The analysis horizon is {}: (almost) every stable-correct image is already in its final zone at t = 0, so there is no stable-later group — as for a network whose prediction does not change over steps.",
                n.name, d.horizon
            )
        } else {
            format!(
                "{}: no signatures: no stable-correct image becomes stable inside the horizon ({}).",
                n.name, d.horizon
            )
        });
    }
    let sig_nets: Vec<&Net<'_>> = nets.iter().filter(|n| has_sig(n)).collect();
    for (metric, ylab, title) in [
        (
            "norm",
            "L2 norm of r(t)",
            "Norm: stable-now vs stable-later",
        ),
        (
            "cos_current",
            "cos(r(t), readout of the current class)",
            "Peripherality: cosine with the current readout vector",
        ),
    ] {
        for &n in &sig_nets {
            let d = n.dynamics;
            let series: Vec<Series> = ["stable_now", "stable_later"]
                .iter()
                .map(|g| {
                    stat_series(
                        g.replace('_', "-"),
                        d.signatures
                            .iter()
                            .filter(|r| r.group == *g && r.metric == metric)
                            .map(|r| (r.timestep as f64, r.stat))
                            .collect(),
                        Style::Line,
                    )
                })
                .collect();
            figs.push(plot(
                &pd,
                &stem(n, &format!("signature_{metric}")),
                &LinePlot {
                    title: tag(n, title),
                    x_label: "time step".into(),
                    y_label: ylab.into(),
                    series,
                    y_range: None,
                },
            )?);
        }
    }
    for &n in &sig_nets {
        let d = n.dynamics;
        let series: Vec<Series> = [
            ("cos_future", "future (correct) class"),
            ("cos_other", "other stable-later images' classes"),
        ]
        .iter()
        .map(|(m, name)| {
            stat_series(
                (*name).into(),
                d.signatures
                    .iter()
                    .filter(|r| r.metric == *m)
                    .map(|r| (r.timestep as f64, r.stat))
                    .collect(),
                Style::Line,
            )
        })
        .collect();
        figs.push(plot(
            &pd,
            &stem(n, "signature_cos_future"),
            &LinePlot {
                title: tag(n, "Stable-later images lean towards their future class"),
                x_label: "time step".into(),
                y_label: "cos(r(t), readout vector)".into(),
                series,
                y_range: None,
            },
        )?);
    }
    sections.push(Section {
        heading: "Signatures of stability".into(),
        text: sig_text,
        figures: figs,
        tables: Vec::new(),
    });

    // Readout zones.
    let mut figs = Vec::new();
    for (metric, ylab, title) in [
        ("norm", "L2 norm of r(t)", "Norm: correct vs misclassified"),
        (
            "angular_margin_deg",
            "angle to the nearest zone boundary (degrees)",
            "Angular margin inside the current readout zone",
        ),
    ] {
        for n in nets {
            let series: Vec<Series> = ["correct", "misclassified"]
                .iter()
                .map(|g| {
                    stat_series(
                        (*g).into(),
                        n.dynamics
                            .margins
                            .iter()
                            .filter(|r| r.group == *g && r.metric == metric && r.stat.n > 0)
                            .map(|r| (r.timestep as f64, r.stat))
                            .collect(),
                        Style::Line,
                    )
                })
                .collect();
            figs.push(plot(
                &pd,
                &stem(n, &format!("zone_{metric}")),
                &LinePlot {
                    title: tag(n, title),
                    x_label: "time step".into(),
                    y_label: ylab.into(),
                    series,
                    y_range: None,
                },
            )?);
        }
    }
    let entry_series: Vec<Series> = nets
        .iter()
        .map(|n| Series {
            name: n.name.clone(),
            points: n
                .dynamics
                .entry
                .iter()
                .filter(|r| r.misclassified > 0 && r.timestep + 1 < n.dynamics.t)
                .map(|r| {
                    (
                        r.timestep as f64,
                        r.enter_correct_later as f64 / r.misclassified as f64,
                    )
                })
                .collect(),
            ..Series::default()
        })
        .collect();
    figs.push(plot(
        &pd,
        "zone_entry",
        &LinePlot {
            title: "Misclassified images that later enter the correct zone".into(),
            x_label: "time step of misclassification".into(),
            y_label: "fraction correct at a later step".into(),
            series: entry_series,
            y_range: Some((0.0, 1.0)),
        },
    )?);
    sections.push(Section {
        heading: "Readout zones".into(),
        text: vec!["Zone c is the set of representations the readout assigns to class c (a cone with its apex at the origin when the readout has no bias). Misclassified representations are expected to be low-norm and near a zone boundary (small angular margin), and then to move into the correct zone. Transitions between consecutive steps are in zone_transitions.csv.".into()],
        figures: figs,
        tables: Vec::new(),
    });

    // Dendrogram and trajectories.
    let mut figs = Vec::new();
    for n in nets {
        let a = n.acts;
        let s = pd.join(stem(n, "readout_dendrogram"));
        dendrogram(
            &s,
            &Dendrogram {
                title: tag(n, "Readout vectors (Ward linkage on (1 − cos)/2)"),
                labels: (0..a.c).map(|k| label(n, k)).collect(),
                linkage: n.dynamics.linkage.clone(),
                y_label: "Ward distance".into(),
            },
        )
        .map_err(|e| file_err(&e.path, e.msg))?;
        figs.push(s.with_extension("svg"));
        figs.extend(trajectory_plots(&pd, n, &stem(n, ""), &tag(n, ""))?);
    }
    sections.push(Section {
        heading: "Readout hierarchy and trajectories".into(),
        text: vec!["Trajectories: class-mean representations over time projected on the first two principal components of all representations, and individual stable-later images projected on the unit readout vectors of the zone they start in and the zone they end in (dashed: the boundary between the two zones when the readout has no bias).".into()],
        figures: figs,
        tables: Vec::new(),
    });

    let intro = vec![format!(
        "Representation dynamics as defined by Thorat, Doerig & Kietzmann (2023), computed by ventral {} from {}. Time steps are 0-based; intervals are 95% t-intervals across images for means and 95% Wilson intervals for proportions (accuracy). Tables: the CSV files beside this report.",
        env!("CARGO_PKG_VERSION"),
        nets.iter()
            .map(|n| format!("{} ({})", n.name, n.acts.source))
            .collect::<Vec<_>>()
            .join(", ")
    )];
    let path = dir.join("report.html");
    html_report(&path, "Representation dynamics", &intro, &sections)
        .map_err(|e| file_err(&e.path, e.msg))?;
    Ok(Report { path, pairs })
}

/// A file-name-safe version of a label (defined with the plots, shared by every output).
pub use ventral_report::sanitize;

/// Rings at the first point (t = 0) of every trajectory, so the direction of travel is seen.
fn start_marks(series: &[Series]) -> Series {
    Series {
        name: "t = 0".into(),
        points: series
            .iter()
            .filter_map(|s| s.points.first().copied())
            .collect(),
        style: Style::Start,
        ..Series::default()
    }
}

fn trajectory_plots(
    pd: &Path,
    n: &Net<'_>,
    stem_prefix: &str,
    title_prefix: &str,
) -> Result<Vec<PathBuf>> {
    let (a, d) = (n.acts, n.dynamics);
    let mut figs = Vec::new();
    // PCA on a subsample of images at every step.
    let m_img = a.n.min(1000);
    let stride = (a.n / m_img).max(1);
    let imgs: Vec<usize> = (0..a.n).step_by(stride).take(m_img).collect();
    let mut x = Vec::with_capacity(imgs.len() * a.t * a.d);
    for t in 0..a.t {
        for &i in &imgs {
            x.extend(a.rep(t, i).iter().map(|&v| f64::from(v)));
        }
    }
    let (mean, axes) = principal_axes(&x, imgs.len() * a.t, a.d, 2);
    if axes.len() == 2 {
        let proj = |r: &[f64]| -> (f64, f64) {
            let p = |ax: &Vec<f64>| {
                r.iter()
                    .zip(&mean)
                    .zip(ax)
                    .map(|((v, m), w)| (v - m) * w)
                    .sum()
            };
            (p(&axes[0]), p(&axes[1]))
        };
        // Class means, the most frequent classes first (at most 8).
        let mut counts = vec![0usize; a.c];
        a.labels.iter().for_each(|&y| counts[y] += 1);
        let mut classes: Vec<usize> = (0..a.c).filter(|&k| counts[k] > 0).collect();
        classes.sort_by_key(|&k| std::cmp::Reverse(counts[k]));
        classes.truncate(8);
        let series = classes
            .iter()
            .map(|&k| {
                let members: Vec<usize> = (0..a.n).filter(|&i| a.labels[i] == k).collect();
                let pts = (0..a.t)
                    .map(|t| {
                        let mut r = vec![0.0; a.d];
                        for &i in &members {
                            for (q, v) in a.rep(t, i).iter().enumerate() {
                                r[q] += f64::from(*v) / members.len() as f64;
                            }
                        }
                        proj(&r)
                    })
                    .collect();
                Series {
                    name: label(n, k),
                    points: pts,
                    ..Series::default()
                }
            })
            .collect::<Vec<Series>>();
        let mut series = series;
        series.push(start_marks(&series));
        figs.push(plot(
            pd,
            &format!("{stem_prefix}trajectories_pca"),
            &LinePlot {
                title: format!(
                    "{title_prefix}Class-mean trajectories (PCA, t = 0 … {})",
                    a.t - 1
                ),
                x_label: "PC 1".into(),
                y_label: "PC 2".into(),
                series,
                y_range: None,
            },
        )?);
    }
    // Readout-pair projection: the most common (start zone, final class) pair of stable-later
    // images.
    let preds = &d.predictions;
    let mut pairs = std::collections::BTreeMap::<(usize, usize), Vec<usize>>::new();
    for (i, im) in d.images.iter().enumerate() {
        if im.category == Category::StableCorrect && im.t_stable.is_some_and(|ts| ts >= 1) {
            let start = preds[0][i];
            if start != a.labels[i] {
                pairs.entry((start, a.labels[i])).or_default().push(i);
            }
        }
    }
    if let Some(((za, zb), imgs)) = pairs
        .into_iter()
        .max_by_key(|(k, v)| (v.len(), std::cmp::Reverse(*k)))
    {
        let unit = |k: usize| {
            let w = &a.readout_weight[k * a.d..(k + 1) * a.d];
            let nrm = w.iter().map(|v| v * v).sum::<f64>().sqrt();
            (w.iter().map(|v| v / nrm).collect::<Vec<f64>>(), nrm)
        };
        let ((ua, na), (ub, nb)) = (unit(za), unit(zb));
        let mut series: Vec<Series> = imgs
            .iter()
            .take(8)
            .map(|&i| Series {
                name: format!("image {i}"),
                points: (0..a.t)
                    .map(|t| {
                        let r = a.rep(t, i);
                        let dot = |u: &[f64]| {
                            r.iter().zip(u).map(|(v, w)| f64::from(*v) * w).sum::<f64>()
                        };
                        (dot(&ua), dot(&ub))
                    })
                    .collect(),
                ..Series::default()
            })
            .collect();
        let starts = start_marks(&series);
        series.push(starts);
        if a.readout_bias.is_none() {
            // Boundary w_a·r = w_b·r: ‖w_a‖ x = ‖w_b‖ y, drawn across the data's box (the
            // trajectories cross it: they start in zone a and end in zone b).
            let (mut x0, mut x1, mut y0, mut y1) = (
                f64::INFINITY,
                f64::NEG_INFINITY,
                f64::INFINITY,
                f64::NEG_INFINITY,
            );
            for p in series.iter().flat_map(|s| &s.points) {
                (x0, x1) = (x0.min(p.0), x1.max(p.0));
                (y0, y1) = (y0.min(p.1), y1.max(p.1));
            }
            let slope = na / nb;
            let (lo, hi) = (x0.max(y0 / slope), x1.min(y1 / slope));
            if lo < hi {
                series.push(Series {
                    name: "zone boundary".into(),
                    points: vec![(lo, lo * slope), (hi, hi * slope)],
                    style: Style::Dashed,
                    ..Series::default()
                });
            }
        }
        figs.push(plot(
            pd,
            &format!("{stem_prefix}trajectories_readout"),
            &LinePlot {
                title: format!(
                    "{title_prefix}From zone {} into zone {} (t = 0 … {})",
                    label(n, za),
                    label(n, zb),
                    a.t - 1
                ),
                x_label: format!("r · ŵ({}) (start zone)", label(n, za)),
                y_label: format!("r · ŵ({}) (correct zone)", label(n, zb)),
                series,
                y_range: None,
            },
        )?);
    }
    Ok(figs)
}
