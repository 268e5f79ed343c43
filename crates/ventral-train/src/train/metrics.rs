//! The metrics observers (`metrics.csv` and `plots/`; `decoder.csv` for models read out by a
//! temporal decoder) and the progress observer (events to the caller).

use std::path::Path;
use std::time::Instant;

use super::observer::{EpochInfo, Observer, RunInfo, StepInfo};
use super::{Event, MetricRow};
use crate::error::{Result, file_err};

fn write_metrics(path: &Path, rows: &[MetricRow]) -> Result<()> {
    ventral_core::write_atomic(path, |w| {
        let mut cw = csv::Writer::from_writer(w);
        cw.write_record(["epoch", "timestep", "split", "loss", "accuracy"])?;
        for r in rows {
            cw.write_record([
                r.epoch.to_string(),
                r.timestep.to_string(),
                r.split.clone(),
                format!("{}", r.loss),
                format!("{}", r.accuracy),
            ])?;
        }
        cw.flush()
    })
    .map_err(|e| file_err(path.display(), e))
}

/// Per-epoch, per-time-step loss and accuracy of both splits: `metrics.csv` and `plots/`,
/// rewritten after every epoch. Saved state: the rows so far.
#[derive(Debug, Default)]
pub struct Metrics {
    pub rows: Vec<MetricRow>,
    dir: std::path::PathBuf,
}

impl Metrics {
    /// Rows saved by a version that kept them in the loop state (resume of an older run).
    pub(super) fn with_rows(rows: Vec<MetricRow>) -> Self {
        Self {
            rows,
            dir: Default::default(),
        }
    }
}

impl Observer for Metrics {
    fn name(&self) -> &'static str {
        "metrics"
    }

    fn start(&mut self, run: &RunInfo<'_>, saved: Option<&[u8]>) -> Result<()> {
        self.dir = run.dir.to_path_buf();
        if let Some(b) = saved {
            self.rows = serde_json::from_slice(b).map_err(|e| {
                file_err(
                    run.dir.join("checkpoints").display(),
                    format!("saved metrics of the resume point: {e}"),
                )
            })?;
        }
        Ok(())
    }

    fn epoch_end(&mut self, e: &EpochInfo<'_>) -> Result<()> {
        for (split, loss, acc) in [
            ("train", e.train_loss, e.train_acc),
            ("val", e.val_loss, e.val_acc),
        ] {
            for (t, (l, a)) in loss.iter().zip(acc).enumerate() {
                self.rows.push(MetricRow {
                    epoch: e.epoch,
                    timestep: t,
                    split: split.into(),
                    loss: *l,
                    accuracy: *a,
                });
            }
        }
        // Written before the epoch's resume point, so a run resumed after that point finds
        // them complete.
        write_metrics(&self.dir.join("metrics.csv"), &self.rows)?;
        crate::plots::write_training_plots(&self.dir.join("plots"), &self.rows)
    }

    fn checkpoint(&mut self, _dir: &Path, _global_step: usize) -> Result<Vec<u8>> {
        Ok(serde_json::to_vec(&self.rows).unwrap_or_default())
    }
}

/// One row of `decoder.csv`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DecoderRow {
    pub epoch: usize,
    pub split: String,
    pub decoder: String,
    #[serde(with = "crate::exact")]
    pub loss: f64,
    #[serde(with = "crate::exact")]
    pub accuracy: f64,
}

/// Validation loss and accuracy at the model's temporal decoder (a ConvRNN's `max_conf`,
/// `thresh`, `w_avg`, … — the readout the model is scored by), per epoch: `decoder.csv`
/// (`epoch, split, decoder, loss, accuracy`), beside the per-step `metrics.csv`. Saved state:
/// the rows so far.
#[derive(Debug)]
pub struct DecoderMetrics {
    kind: String,
    rows: Vec<DecoderRow>,
    dir: std::path::PathBuf,
}

impl DecoderMetrics {
    /// For a decoder of `kind` (its name in `decoder.csv`).
    pub fn new(kind: String) -> Self {
        Self {
            kind,
            rows: Vec::new(),
            dir: Default::default(),
        }
    }
}

impl Observer for DecoderMetrics {
    fn name(&self) -> &'static str {
        "decoder_metrics"
    }

    fn start(&mut self, run: &RunInfo<'_>, saved: Option<&[u8]>) -> Result<()> {
        self.dir = run.dir.to_path_buf();
        if let Some(b) = saved {
            self.rows = serde_json::from_slice(b).map_err(|e| {
                file_err(
                    run.dir.join("checkpoints").display(),
                    format!("saved decoder metrics of the resume point: {e}"),
                )
            })?;
        }
        Ok(())
    }

    fn epoch_end(&mut self, e: &EpochInfo<'_>) -> Result<()> {
        let Some((loss, accuracy)) = e.val_decoder else {
            return Ok(());
        };
        self.rows.push(DecoderRow {
            epoch: e.epoch,
            split: "val".into(),
            decoder: self.kind.clone(),
            loss,
            accuracy,
        });
        let path = self.dir.join("decoder.csv");
        ventral_core::write_atomic(&path, |w| {
            let mut cw = csv::Writer::from_writer(w);
            cw.write_record(["epoch", "split", "decoder", "loss", "accuracy"])?;
            for r in &self.rows {
                cw.write_record([
                    r.epoch.to_string(),
                    r.split.clone(),
                    r.decoder.clone(),
                    format!("{}", r.loss),
                    format!("{}", r.accuracy),
                ])?;
            }
            cw.flush()
        })
        .map_err(|e| file_err(path.display(), e))
    }

    fn checkpoint(&mut self, _dir: &Path, _global_step: usize) -> Result<Vec<u8>> {
        Ok(serde_json::to_vec(&self.rows).unwrap_or_default())
    }
}

/// Forwards the loop's progress to a callback as [`Event`]s. No saved state.
pub struct Progress<'a> {
    pub on: &'a dyn Fn(Event),
    started: Option<Instant>,
    images: usize,
}

impl std::fmt::Debug for Progress<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress")
            .field("images", &self.images)
            .finish_non_exhaustive()
    }
}

impl<'a> Progress<'a> {
    pub fn new(on: &'a dyn Fn(Event)) -> Self {
        Self {
            on,
            started: None,
            images: 0,
        }
    }
}

impl Observer for Progress<'_> {
    fn name(&self) -> &'static str {
        "progress"
    }

    fn start(&mut self, run: &RunInfo<'_>, _saved: Option<&[u8]>) -> Result<()> {
        self.started = Some(Instant::now());
        (self.on)(Event::Start {
            epochs: run.epochs,
            batches_per_epoch: run.batches_per_epoch,
            resumed_at: run.resumed_at,
        });
        Ok(())
    }

    fn after_update(&mut self, s: &StepInfo<'_>) -> Result<()> {
        let started = *self.started.get_or_insert_with(Instant::now);
        self.images += s.images;
        (self.on)(Event::Batch {
            epoch: s.epoch,
            batch: s.batch,
            batches: s.batches_per_epoch,
            loss: s.loss,
            loss_last: s.nll.last().copied().unwrap_or(f64::NAN),
            images_per_s: self.images as f64 / started.elapsed().as_secs_f64().max(1e-9),
        });
        Ok(())
    }

    fn epoch_end(&mut self, e: &EpochInfo<'_>) -> Result<()> {
        let last = |v: &[f64]| v.last().copied().unwrap_or(f64::NAN);
        (self.on)(Event::Epoch {
            epoch: e.epoch,
            train_loss_last: last(e.train_loss),
            train_acc_last: last(e.train_acc),
            val_loss_last: last(e.val_loss),
            val_acc_last: last(e.val_acc),
        });
        // The next epoch's rate counts from here (after validation).
        self.started = Some(Instant::now());
        self.images = 0;
        Ok(())
    }

    fn finish(&mut self, _dir: &Path) -> Result<()> {
        (self.on)(Event::Done);
        Ok(())
    }
}
