//! Performance against network size (Nayebi et al. 2022, Fig. 2): which runs are on the
//! Pareto frontier of accuracy against units and against parameters.

use std::path::Path;

use ventral_report::{LinePlot, Series, Style, line_plot};

use crate::error::{Result, file_err};
use crate::output::{csv_field, num};

/// One finished run.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub run: String,
    pub model: String,
    pub params: f64,
    pub units: f64,
    pub flops: f64,
    pub accuracy: f64,
    /// Where the accuracy is read out (`last step`, `decoder MaxConf`, …).
    pub accuracy_at: String,
}

/// Whether each point is on the frontier of (size ↓, accuracy ↑): no other point is at most as
/// large and at least as accurate, with one of the two strict. Points with a non-finite size
/// or accuracy are never on it.
pub fn frontier(points: &[(f64, f64)]) -> Vec<bool> {
    points
        .iter()
        .map(|&(s, a)| {
            s.is_finite()
                && a.is_finite()
                && !points.iter().any(|&(s2, a2)| {
                    s2.is_finite() && a2.is_finite() && s2 <= s && a2 >= a && (s2 < s || a2 > a)
                })
        })
        .collect()
}

/// The frontier as a staircase of points sorted by size (for plotting).
fn frontier_line(points: &[(f64, f64)], on: &[bool]) -> Vec<(f64, f64)> {
    let mut f: Vec<(f64, f64)> = points
        .iter()
        .zip(on)
        .filter(|(_, o)| **o)
        .map(|(p, _)| *p)
        .collect();
    f.sort_by(|a, b| a.0.total_cmp(&b.0));
    f
}

/// Write `pareto.csv` and `plots/accuracy_vs_units|params.{png,svg}` (log10 sizes) into `dir`.
pub fn write(dir: &Path, points: &[Point]) -> Result<()> {
    let by_units: Vec<(f64, f64)> = points.iter().map(|p| (p.units, p.accuracy)).collect();
    let by_params: Vec<(f64, f64)> = points.iter().map(|p| (p.params, p.accuracy)).collect();
    let on_u = frontier(&by_units);
    let on_p = frontier(&by_params);
    let mut csv = String::from(
        "run,model,params,units,flops,accuracy,on_frontier_units,on_frontier_params,accuracy_at\n",
    );
    for (i, p) in points.iter().enumerate() {
        csv.push_str(&format!(
            "{},{},{},{},{},{},{},{},{}\n",
            csv_field(&p.run),
            csv_field(&p.model),
            num(p.params),
            num(p.units),
            num(p.flops),
            num(p.accuracy),
            on_u[i],
            on_p[i],
            csv_field(&p.accuracy_at)
        ));
    }
    let path = dir.join("pareto.csv");
    ventral_core::atomic::write_bytes_atomic(&path, csv.as_bytes())
        .map_err(|e| file_err(path.display(), e))?;
    let plots = dir.join("plots");
    std::fs::create_dir_all(&plots).map_err(|e| file_err(plots.display(), e))?;
    for (name, label, pts, on) in [
        (
            "accuracy_vs_units",
            "units (Σ C·H·W), log10",
            &by_units,
            &on_u,
        ),
        ("accuracy_vs_params", "parameters, log10", &by_params, &on_p),
    ] {
        let log = |v: &[(f64, f64)]| -> Vec<(f64, f64)> {
            v.iter()
                .filter(|(s, _)| *s > 0.0)
                .map(|(s, a)| (s.log10(), *a))
                .collect()
        };
        let mut series: Vec<Series> = points
            .iter()
            .zip(pts.iter())
            .map(|(p, &pt)| Series {
                name: p.run.clone(),
                points: log(&[pt]),
                band: None,
                style: Style::Points,
            })
            .collect();
        series.push(Series {
            name: "Pareto frontier".into(),
            points: log(&frontier_line(pts, on)),
            band: None,
            style: Style::Dashed,
        });
        line_plot(
            &plots.join(name),
            &LinePlot {
                title: format!("accuracy against {}", label.split(' ').next().unwrap_or("")),
                x_label: label.into(),
                y_label: "accuracy (validation, at the decoder)".into(),
                series,
                y_range: None,
            },
        )
        .map_err(|e| file_err(plots.join(name).display(), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frontier_keeps_exactly_the_undominated_points() {
        // (size, accuracy): b dominates a (smaller, more accurate); c is larger and better;
        // d ties c in accuracy but is larger; e equals b (neither strictly dominates).
        let pts = [
            (10.0, 0.5),
            (5.0, 0.6),
            (20.0, 0.8),
            (30.0, 0.8),
            (5.0, 0.6),
            (f64::NAN, 0.9),
        ];
        assert_eq!(frontier(&pts), vec![false, true, true, false, true, false]);
    }
}
