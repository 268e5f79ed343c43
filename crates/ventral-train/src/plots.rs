//! Training-curve plots from `metrics.csv` rows (PNG + SVG in `RUN/plots/`).

use std::path::Path;

use ventral_report::{LinePlot, Series, Style, line_plot};

use crate::error::{Result, file_err};
use crate::train::MetricRow;

/// Accuracy and loss per epoch (one line per time step, validation), and accuracy per time
/// step after the last epoch (train and validation).
pub fn write_training_plots(dir: &Path, rows: &[MetricRow]) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| file_err(dir.display(), e))?;
    let steps = rows.iter().map(|r| r.timestep).max().map_or(0, |m| m + 1);
    let last_epoch = rows.iter().map(|r| r.epoch).max().unwrap_or(0);
    let by_epoch = |metric: &dyn Fn(&MetricRow) -> f64| -> Vec<Series> {
        (0..steps)
            .map(|t| Series {
                name: format!("val, time step {t}"),
                points: rows
                    .iter()
                    .filter(|r| r.split == "val" && r.timestep == t)
                    .map(|r| (r.epoch as f64, metric(r)))
                    .collect(),
                band: None,
                style: Style::Line,
            })
            .collect()
    };
    let plots = [
        (
            "accuracy_by_epoch",
            LinePlot {
                title: "Validation accuracy during training".into(),
                x_label: "epoch".into(),
                y_label: "accuracy (fraction correct)".into(),
                series: by_epoch(&|r| r.accuracy),
                y_range: Some((0.0, 1.0)),
            },
        ),
        (
            "loss_by_epoch",
            LinePlot {
                title: "Validation loss during training".into(),
                x_label: "epoch".into(),
                y_label: "NLL loss (nats)".into(),
                series: by_epoch(&|r| r.loss),
                y_range: None,
            },
        ),
        (
            "accuracy_by_timestep",
            LinePlot {
                title: format!("Accuracy per time step after epoch {last_epoch}"),
                x_label: "time step (0-based)".into(),
                y_label: "accuracy (fraction correct)".into(),
                series: ["train", "val"]
                    .iter()
                    .map(|split| Series {
                        name: split.to_string(),
                        points: rows
                            .iter()
                            .filter(|r| r.split == *split && r.epoch == last_epoch)
                            .map(|r| (r.timestep as f64, r.accuracy))
                            .collect(),
                        band: None,
                        style: Style::Line,
                    })
                    .collect(),
                y_range: Some((0.0, 1.0)),
            },
        ),
    ];
    for (name, p) in plots {
        line_plot(&dir.join(name), &p).map_err(|e| file_err(&e.path, &e.msg))?;
    }
    Ok(())
}
