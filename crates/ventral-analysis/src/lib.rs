//! Representation dynamics of recurrent networks, as Thorat, Doerig & Kietzmann (2023) define
//! them, from activation files only (the reference's `.npz` dumps or `ventral record` output):
//!
//! - [`activations`]: reading `outputs_all [T, N, C]` (log-probabilities), `labels_all [N]`,
//!   `representations_all [T, N, D]`, `readout_weight [C, D]`, `readout_bias` and image
//!   metadata (`meta.<column>` arrays or a CSV).
//! - [`dynamics`]: accuracy per step, classification-dynamics categories and `t_stable`, the
//!   analysis horizon, representation change, signatures of stability, readout zones (logit and
//!   angular margins, zone transitions, entry into the correct zone), splits by metadata.
//! - [`diffusion`]: limiting dynamics of SGD (Kunin et al. 2021): diffusion exponent fits,
//!   rolling exponents, local displacement against the theory level.
//! - [`linkage`]: Ward linkage of readout vectors on (1 − cos)/2 (SciPy's `linkage`).
//! - [`pca`]: leading principal components for trajectory plots.
//! - [`output`]: tidy CSV tables, plots and the self-contained `report.html`.

pub mod activations;
pub mod diffusion;
pub mod dynamics;
pub mod error;
pub mod linkage;
pub mod output;
pub mod pareto;
pub mod pca;
pub mod spectral;

pub use activations::{Activations, Metadata};
pub use dynamics::{Dynamics, analyse};
pub use error::{AnalysisError, Result};
