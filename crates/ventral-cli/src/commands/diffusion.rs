//! `ventral diffusion`: limiting dynamics of SGD (Kunin et al. 2021) from training runs with
//! the tracker on (`[train.sgd_dynamics]`) or from any trajectory CSV.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use ventral_analysis::diffusion::{
    FitOptions, Hyper, Options, Trajectory, analyse, read_csv, write,
};
use ventral_core::atomic::AtomicDir;
use ventral_train::config::{OptimizerConfig, TrainFile};

use crate::commands::neural_inputs::{input_record, named_path, write_run_json};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run directories trained with [train.sgd_dynamics] (their sgd_dynamics.csv; learning
    /// rate, batch size and momentum from their config.toml).
    pub runs: Vec<PathBuf>,
    /// A trajectory CSV instead (`[NAME=]PATH`, repeatable): columns `step` or `k` and
    /// `dist_sq`, optionally `local_sq`, `vel_norm`, `lr` — e.g. a PyTorch user's own log.
    #[arg(long)]
    pub trajectory: Vec<String>,
    /// Learning rate, batch size and momentum of the --trajectory files (for the theory
    /// level η²/(S(1 − β²))); a `lr` column overrides --lr.
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f64>,
    #[arg(long, allow_negative_numbers = true)]
    pub batch_size: Option<f64>,
    #[arg(long, allow_negative_numbers = true)]
    pub momentum: Option<f64>,
    /// Rows skipped before fitting (the anchor's sweeps: 1, its Fig. 1: the first epoch).
    #[arg(long, default_value_t = 1)]
    pub skip_first: usize,
    /// Fit the last fraction of the remaining points (the anchor's Fig. 1: 0.6667).
    #[arg(long, allow_negative_numbers = true, default_value_t = 1.0)]
    pub fit_last: f64,
    /// Width of the rolling-exponent windows in decades of k (windows of equal log width, so
    /// late ones are as informative as early ones).
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.5)]
    pub window_decades: f64,
    /// Rolling windows starting per decade of k (at most 1 000).
    #[arg(long, default_value_t = 10)]
    pub windows_per_decade: usize,
    /// Moving-average width of the local displacement (the anchor's 15).
    #[arg(long, default_value_t = 15)]
    pub ma_width: usize,
    /// Output directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace an existing output directory.
    #[arg(long)]
    pub overwrite: bool,
}

/// Most rolling windows starting per decade of k (each is one pass over the points).
const MAX_WINDOWS_PER_DECADE: usize = 1_000;

fn run_hyper(dir: &std::path::Path) -> Result<Hyper> {
    let cfg_path = dir.join("config.toml");
    let text = std::fs::read_to_string(&cfg_path)
        .with_context(|| format!("{}: not a ventral run (no config.toml)", dir.display()))?;
    let cfg = TrainFile::parse(&text, &[], &cfg_path.display().to_string())?;
    let momentum = match cfg.train.optimizer {
        OptimizerConfig::Sgd { momentum, .. } => momentum,
        // Adam has no momentum buffer: the SGD theory level does not apply.
        OptimizerConfig::Adam { .. } => f64::NAN,
    };
    Ok(Hyper {
        lr: cfg.train.optimizer.lr(),
        batch_size: cfg.train.batch_size as f64,
        momentum,
    })
}

/// The learning rate actually used at the end of the trajectory (its `lr` column).
fn last_lr(t: &Trajectory) -> Option<f64> {
    t.lr.as_ref()?.iter().rev().find(|v| v.is_finite()).copied()
}

pub fn run(a: Args) -> Result<()> {
    if a.runs.is_empty() && a.trajectory.is_empty() {
        bail!("give run directories or --trajectory CSV files");
    }
    if !(a.window_decades > 0.0 && a.window_decades.is_finite()) || a.windows_per_decade == 0 {
        bail!("--window-decades must be > 0 and --windows-per-decade >= 1");
    }
    // Each window is one pass over the points: 2⁶⁴ − 1 windows per decade ran until stopped.
    super::check_count(
        "--windows-per-decade",
        a.windows_per_decade,
        MAX_WINDOWS_PER_DECADE,
    )?;
    if a.ma_width == 0 {
        bail!("--ma-width must be at least 1");
    }
    // The theory level η²/(S(1 − β²)) needs a positive rate and batch and β in [0, 1): a NaN,
    // 0 or β = 1 used to give an empty, infinite or negative level without a word.
    if let Some(lr) = a.lr.filter(|v| !(v.is_finite() && *v > 0.0)) {
        bail!("--lr must be finite and > 0, got {lr}");
    }
    if let Some(b) = a.batch_size.filter(|v| !(v.is_finite() && *v >= 1.0)) {
        bail!("--batch-size must be finite and at least 1, got {b}");
    }
    if let Some(m) = a.momentum.filter(|v| !(0.0..1.0).contains(v)) {
        bail!("--momentum must be in [0, 1), got {m}");
    }
    if !(a.fit_last > 0.0 && a.fit_last <= 1.0) {
        bail!("--fit-last must be in (0, 1], got {}", a.fit_last);
    }
    let mut trajs = Vec::new();
    let mut inputs = Vec::new();
    for r in &a.runs {
        let csv = r.join(ventral_train::sgd_dynamics::CSV);
        if !csv.is_file() {
            bail!(
                "{}: no {} (train with [train.sgd_dynamics] to record it)",
                r.display(),
                ventral_train::sgd_dynamics::CSV
            );
        }
        let name = r
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| r.display().to_string());
        let t = read_csv(&csv, &name)?;
        let mut h = run_hyper(r)?;
        if let Some(lr) = last_lr(&t) {
            h.lr = lr;
        }
        inputs.push(input_record(&name, &csv)?);
        trajs.push((t, h));
    }
    for spec in &a.trajectory {
        let (n, p) = named_path(spec);
        let name = n.unwrap_or_else(|| {
            p.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "trajectory".into())
        });
        let t = read_csv(&p, &name)?;
        let h = Hyper {
            lr: last_lr(&t).or(a.lr).unwrap_or(f64::NAN),
            batch_size: a.batch_size.unwrap_or(f64::NAN),
            momentum: a.momentum.unwrap_or(f64::NAN),
        };
        inputs.push(input_record(&name, &p)?);
        trajs.push((t, h));
    }
    let mut names: Vec<&str> = trajs.iter().map(|(t, _)| t.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    if names.len() != trajs.len() {
        bail!("two inputs have the same name; label --trajectory files NAME=PATH");
    }
    let options = Options {
        fit: FitOptions {
            skip_first: a.skip_first,
            fit_last: a.fit_last,
        },
        window_decades: a.window_decades,
        windows_per_decade: a.windows_per_decade,
        ma_width: a.ma_width,
    };
    let analysis = analyse(trajs, options)?;
    let out = AtomicDir::create(&a.out, a.overwrite)?;
    write(out.path(), &analysis)?;
    write_run_json(
        out.path(),
        serde_json::json!({
            "inputs": inputs,
            "skip_first": a.skip_first,
            "fit_last": a.fit_last,
            "window_decades": a.window_decades,
            "windows_per_decade": a.windows_per_decade,
            "ma_width": a.ma_width,
            "theory_constant": analysis.theory_constant,
        }),
    )?;
    let dir = out.commit()?;
    for r in &analysis.runs {
        let f = &r.fit;
        println!(
            "{}: exponent c = {:.4} [{:.4}, {:.4}] (95 %), intercept {:.4}, {} points, k {}–{}{}",
            r.traj.name,
            f.exponent,
            f.ci_low,
            f.ci_high,
            f.intercept,
            f.n_points,
            f.k_first,
            f.k_last,
            if r.local_final.is_finite() {
                format!(", final ‖δ‖² {:.3e}", r.local_final)
            } else {
                String::new()
            }
        );
    }
    if let Some(c) = analysis.theory_constant {
        println!("theory constant C = {c:.4e} (‖δ‖² ≈ C·η²/(S(1 − β²)))");
    }
    println!("wrote {}", dir.display());
    Ok(())
}
