//! The brain-comparison commands' figures (PNG and SVG through `ventral-report`), so that the
//! CLI only parses arguments: per-region predictivity over time bins (`neural-fit`), RSA heat
//! maps (`rsa`), i1 over time and OST scatter plots (`ost`), accuracy and behavioural
//! consistency over steps (`behaviour`).

use std::path::Path;

use ventral_report::{HeatMap, LinePlot, Series, Style, heat_map, line_plot, sanitize};

use crate::behaviour::{LayerScores, Metric};
use crate::error::{Result, file_err};
use crate::ost::{DecodedLayer, OstTargets, ost_score};
use crate::predictivity::Row;
use crate::rsa::RsaCell;

/// One plot per region and metric: value vs time bin, one line per (model, layer[, step]),
/// the ceiling as its own line.
pub fn predictivity_plots(rows: &[Row], dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| file_err(dir.display(), e))?;
    let mut regions: Vec<&str> = rows.iter().map(|r| r.region.as_str()).collect();
    regions.dedup();
    regions.sort_unstable();
    regions.dedup();
    // Several steps fitted to one bin (all-steps mapping): label lines by step too.
    let mut step_of = std::collections::HashMap::new();
    let all_steps = rows.iter().any(|r| {
        let key = (
            &r.metric,
            &r.model,
            &r.layer,
            &r.region,
            r.time_bin_start.to_bits(),
        );
        *step_of.entry(key).or_insert(r.timestep) != r.timestep
    });
    for region in regions {
        for metric in ["r", "ceiled", "consistency", "r_shared"] {
            let mut series: Vec<Series> = Vec::new();
            for r in rows
                .iter()
                .filter(|r| r.region == region && r.metric == metric)
            {
                let name = if all_steps {
                    format!("{} {} t={}", r.model, r.layer, r.timestep.unwrap_or(0))
                } else {
                    format!("{} {}", r.model, r.layer)
                };
                let x = 0.5 * (r.time_bin_start + r.time_bin_end);
                let s = match series.iter_mut().position(|s| s.name == name) {
                    Some(i) => &mut series[i],
                    None => {
                        series.push(Series {
                            name,
                            points: Vec::new(),
                            band: Some(Vec::new()),
                            style: Style::Line,
                        });
                        series.last_mut().expect("just pushed")
                    }
                };
                s.points.push((x, r.value));
                if let Some(b) = s.band.as_mut()
                    && r.ci_low.is_finite()
                {
                    b.push((x, r.ci_low, r.ci_high));
                }
            }
            if series.is_empty() {
                continue;
            }
            if metric == "r" {
                let ceil: Vec<&Row> = rows
                    .iter()
                    .filter(|r| r.region == region && r.metric == "ceiling")
                    .collect();
                if !ceil.is_empty() {
                    let x = |r: &Row| 0.5 * (r.time_bin_start + r.time_bin_end);
                    series.truncate(6);
                    series.push(Series {
                        name: "noise ceiling (split-half, SB)".into(),
                        points: ceil.iter().map(|r| (x(r), r.value)).collect(),
                        band: None,
                        style: Style::Dashed,
                    });
                    // A perfect model's r with the trial average is √reliability.
                    series.push(Series {
                        name: "√ceiling (perfect model's r)".into(),
                        points: ceil
                            .iter()
                            .map(|r| (x(r), r.value.max(0.0).sqrt()))
                            .collect(),
                        band: None,
                        style: Style::Dashed,
                    });
                }
            }
            series.truncate(8);
            let y_label = match metric {
                "r" | "r_shared" => "median Pearson r (held-out stimuli)",
                "ceiled" => "ceiled predictivity (r / ceiling)",
                _ => "noise-corrected consistency",
            };
            let plot = LinePlot {
                title: format!("{region}: {metric} per time bin"),
                x_label: "time bin centre (ms after stimulus onset)".into(),
                y_label: y_label.into(),
                series,
                y_range: None,
            };
            let stem = dir.join(format!("{}_{metric}", sanitize(region)));
            line_plot(&stem, &plot)?;
        }
    }
    Ok(())
}

/// `plots/behaviour_{model}`, per model: accuracy and the ceiled consistency of every metric over steps, one line per
/// layer with more than one step (single-step layers as points).
pub fn behaviour_plots(
    scored: &[LayerScores],
    metrics: &[Metric],
    time_ms: &dyn Fn(usize) -> f64,
    dir: &Path,
) -> Result<()> {
    let mut models: Vec<&str> = scored.iter().map(|l| l.model.as_str()).collect();
    models.dedup();
    for model in models {
        let mut series = Vec::new();
        for l in scored.iter().filter(|l| l.model == model) {
            let style = if l.steps.len() > 1 {
                Style::default()
            } else {
                Style::Points
            };
            series.push(Series {
                name: format!("{} accuracy", l.layer),
                points: l
                    .steps
                    .iter()
                    .map(|s| (time_ms(s.step), s.accuracy))
                    .collect(),
                style: Style::Dashed,
                ..Series::default()
            });
            for (mi, m) in metrics.iter().enumerate() {
                series.push(Series {
                    name: format!("{} {}", l.layer, m.name()),
                    points: l
                        .steps
                        .iter()
                        .map(|s| (time_ms(s.step), s.consistency[mi].center_error().0))
                        .collect(),
                    style,
                    ..Series::default()
                });
            }
        }
        line_plot(
            &dir.join("plots")
                .join(format!("behaviour_{}", sanitize(model))),
            &LinePlot {
                title: format!("{model}: decoder accuracy and ceiled behavioural consistency"),
                x_label: "time (ms after stimulus onset)".into(),
                y_label: "accuracy / consistency".into(),
                series,
                y_range: None,
            },
        )?;
    }
    Ok(())
}

/// `plots/i1` (mean i1 over time of every source, the threshold when shared) and per model
/// layer `plots/ost_{model}_{layer}` (model against target OSTs, with the identity).
pub fn ost_plots(
    decoded: &[DecodedLayer],
    models: &[&DecodedLayer],
    targets: &OstTargets,
    dir: &Path,
) -> Result<()> {
    // Mean i1 over time for every source.
    let mut series: Vec<Series> = decoded
        .iter()
        .map(|d| {
            let curve = || d.times.iter().zip(&d.mean_i1);
            Series {
                name: format!("{} {}", d.model, d.layer),
                points: curve().map(|(&t, c)| (t, c.0)).collect(),
                band: Some(curve().map(|(&t, c)| (t, c.1, c.2)).collect()),
                ..Series::default()
            }
        })
        .collect();
    let th = &targets.thresholds;
    if th.iter().all(|&v| v == th[0]) {
        let ts = decoded.iter().flat_map(|d| d.times.iter().copied());
        let (t0, t1) = ts.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), t| {
            (a.min(t), b.max(t))
        });
        series.push(Series {
            name: "threshold (all images)".into(),
            points: vec![(t0, th[0]), (t1, th[0])],
            style: Style::Dashed,
            ..Series::default()
        });
    }
    line_plot(
        &dir.join("plots").join("i1"),
        &LinePlot {
            title: "Per-image i1 over time (mean, 95% CI)".into(),
            x_label: "time (ms after stimulus onset)".into(),
            y_label: "i1 d′".into(),
            series,
            y_range: None,
        },
    )?;
    for d in models {
        // Brain-Score's procedure: one point per split and test image.
        let pts: Vec<(f64, f64)> = match &d.per_split {
            Some(bs) => bs
                .splits
                .iter()
                .flat_map(|sp| {
                    sp.test
                        .iter()
                        .zip(&sp.ost)
                        .map(|(&i, &o)| (targets.ost_ms[i], o))
                })
                .collect(),
            None => targets
                .ost_ms
                .iter()
                .copied()
                .zip(d.st.ost.clone())
                .collect(),
        };
        let finite: Vec<f64> = pts
            .iter()
            .flat_map(|p| [p.0, p.1])
            .filter(|v| v.is_finite())
            .collect();
        let lo = finite.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mut series = vec![Series {
            name: "image".into(),
            points: pts,
            style: Style::Points,
            ..Series::default()
        }];
        if lo < hi {
            series.push(Series {
                name: "identity".into(),
                points: vec![(lo, lo), (hi, hi)],
                style: Style::Dashed,
                ..Series::default()
            });
        }
        let title = match &d.per_split {
            Some(bs) => format!(
                "{} {}: OST Spearman {:.2} ± {:.2} (mean over {} splits)",
                d.model,
                d.layer,
                bs.score,
                bs.error,
                bs.splits.len()
            ),
            None => {
                let (r, n, _) = ost_score(&d.st.ost, &targets.ost_ms);
                format!("{} {}: OST Spearman {r:.2} (n = {n})", d.model, d.layer)
            }
        };
        line_plot(
            &dir.join("plots")
                .join(format!("ost_{}_{}", sanitize(&d.model), sanitize(&d.layer))),
            &LinePlot {
                title,
                x_label: "target OST (ms)".into(),
                y_label: "model OST (ms)".into(),
                series,
                y_range: None,
            },
        )?;
    }
    Ok(())
}

/// `{model}_{layer}_{region}` heat maps (model step × neural bin) of one model's RSA cells
/// (`cells` in (layer, step, region, bin) order); `layers` gives each layer's name and step
/// count, `bin_starts` each bin's start in ms.
#[allow(clippy::too_many_arguments)]
pub fn rsa_heat_maps(
    model: &str,
    layers: &[(String, usize)],
    regions: &[String],
    bin_starts: &[f64],
    cells: &[RsaCell],
    rdm: &str,
    compare: &str,
    dir: &Path,
) -> Result<()> {
    let value: std::collections::HashMap<(usize, usize, usize, usize), f64> = cells
        .iter()
        .map(|c| ((c.layer, c.timestep, c.region, c.bin), c.value))
        .collect();
    let nb = bin_starts.len();
    for (l, (layer, steps)) in layers.iter().enumerate() {
        for (r, region) in regions.iter().enumerate() {
            let values: Vec<Vec<f64>> = (0..*steps)
                .map(|t| {
                    (0..nb)
                        .map(|b| value.get(&(l, t, r, b)).copied().unwrap_or(f64::NAN))
                        .collect()
                })
                .collect();
            let hm = HeatMap {
                title: format!("{model} {layer} vs {region} ({rdm} RDM)"),
                x_label: "neural time bin start (ms after onset)".into(),
                y_label: "model time step".into(),
                x_ticks: bin_starts.iter().map(|b| format!("{b}")).collect(),
                y_ticks: (0..*steps).map(|t| t.to_string()).collect(),
                values,
                scale_label: format!("RDM similarity ({compare})"),
            };
            let stem = dir.join(format!(
                "{}_{}_{}",
                sanitize(model),
                sanitize(layer),
                sanitize(region)
            ));
            heat_map(&stem, &hm)?;
        }
    }
    Ok(())
}
