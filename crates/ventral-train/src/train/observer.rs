//! Observers of the training loop: metrics, progress and the SGD-dynamics tracker are peers.
//!
//! The loop calls every observer, in order, at fixed points of a run:
//!
//! | call | when | sees |
//! |---|---|---|
//! | [`Observer::start`] | once, before the first step of this process | the run and the state the observer saved in the resume point being continued (`None` for a fresh run) |
//! | [`Observer::before_update`] | each step, after forward, loss, backward, clipping and the NaN guard, **before** the optimiser step | θ_k, the batch's losses, the gradient norm, the learning rate |
//! | [`Observer::after_update`] | right after the optimiser step | θ_{k+1} and the optimiser state after the step |
//! | [`Observer::epoch_end`] | after validation | per-step train and validation loss and accuracy |
//! | [`Observer::checkpoint`] | before every resume point is committed | returns the state to keep in that point |
//! | [`Observer::finish`] | after the last epoch, before `DONE` | – |
//!
//! An observer's files in the run directory must be written atomically and be a function of
//! its saved state, so that a run killed at any moment and resumed ends with the same bytes as
//! an uninterrupted one.

use std::path::Path;

use ventral_models::Model;

use crate::error::Result;
use crate::optim::Optimizer;

/// The run, as observers see it at start.
#[derive(Debug)]
pub struct RunInfo<'a> {
    /// Run directory.
    pub dir: &'a Path,
    pub epochs: usize,
    pub batches_per_epoch: usize,
    pub timesteps: usize,
    /// `(epoch, batch)` the run continues from; `None` for a fresh run.
    pub resumed_at: Option<(usize, usize)>,
    /// Optimiser steps already taken.
    pub global_step: usize,
    /// The parameters the run continues from.
    pub model: &'a Model,
}

/// One optimiser step. In [`Observer::before_update`] `model` holds θ_k (the parameters the
/// gradient was taken at) and `opt` the state before the step; in [`Observer::after_update`]
/// `model` holds θ_{k+1} and `opt` the state after it.
#[derive(Debug)]
pub struct StepInfo<'a> {
    pub epoch: usize,
    /// Batch index within the epoch.
    pub batch: usize,
    pub batches_per_epoch: usize,
    /// k: optimiser steps taken before this one (0-based index of this step).
    pub step: usize,
    /// Images in the batch.
    pub images: usize,
    /// Mean NLL of the batch per time step.
    pub nll: &'a [f64],
    /// Correct images per time step.
    pub correct: &'a [u64],
    /// The weighted loss that was differentiated (Σₜ wₜ·NLLₜ).
    pub loss: f64,
    /// Global L2 norm of the gradient before clipping.
    pub grad_norm: f64,
    /// Learning rate of this step.
    pub lr: f64,
    pub model: &'a Model,
    pub opt: &'a Optimizer,
}

/// Metrics of a finished epoch (per time step).
#[derive(Debug)]
pub struct EpochInfo<'a> {
    pub epoch: usize,
    pub train_loss: &'a [f64],
    pub train_acc: &'a [f64],
    pub val_loss: &'a [f64],
    pub val_acc: &'a [f64],
    /// Validation (loss, accuracy) at the model's temporal decoder, when it has one.
    pub val_decoder: Option<(f64, f64)>,
    pub model: &'a Model,
}

/// A peer of the training loop (see the module docs for when each method is called).
pub trait Observer {
    /// Unique name; the saved state lives in `observers/<name>.json` of each resume point.
    fn name(&self) -> &'static str;
    /// Before the first step of this process; `saved` is what [`Self::checkpoint`] returned
    /// for the resume point the run continues from (`None`: fresh run, or no state saved).
    fn start(&mut self, run: &RunInfo<'_>, saved: Option<&[u8]>) -> Result<()> {
        let _ = (run, saved);
        Ok(())
    }
    fn before_update(&mut self, s: &StepInfo<'_>) -> Result<()> {
        let _ = s;
        Ok(())
    }
    fn after_update(&mut self, s: &StepInfo<'_>) -> Result<()> {
        let _ = s;
        Ok(())
    }
    fn epoch_end(&mut self, e: &EpochInfo<'_>) -> Result<()> {
        let _ = e;
        Ok(())
    }
    /// Write this observer's files for the resume point after `global_step` steps and return
    /// the state to save in it (empty: nothing to save).
    fn checkpoint(&mut self, dir: &Path, global_step: usize) -> Result<Vec<u8>> {
        let _ = (dir, global_step);
        Ok(Vec::new())
    }
    fn finish(&mut self, dir: &Path) -> Result<()> {
        let _ = dir;
        Ok(())
    }
}
