//! `ventral sweep`: plan a hyperparameter sweep, run shards of it (Slurm arrays, Kubernetes
//! Indexed Jobs, or processes on one machine), report its status, aggregate its results.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Result, bail};
use ventral_analysis::diffusion::{FitOptions, Options, analyse, read_csv};
use ventral_analysis::output::csv_field;
use ventral_train::config::TrainFile;
use ventral_train::sweep::{self, Manifest, RunEntry, RunState};
use ventral_train::train::{TrainOptions, train};

use crate::commands::train::{reporter, resolve_init_from};
use crate::progress::Progress;

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Args {
    #[command(subcommand)]
    pub cmd: Option<Cmd>,
    /// Sweep spec (TOML: base, set, init_from, [grid], [[runs]]; see docs/sweeps.md): plan
    /// the sweep into --out. Planning again with the same spec is a no-op.
    #[arg(required = true)]
    pub spec: Option<PathBuf>,
    /// Sweep directory.
    #[arg(long, required = true)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
pub enum Cmd {
    /// Run this worker's share of the sweep: every run i with i mod N = K that is not done
    /// and not held by another worker (finished runs are skipped, interrupted ones resume).
    Run {
        dir: PathBuf,
        /// K/N; default from SLURM_ARRAY_TASK_ID/COUNT, JOB_COMPLETION_INDEX + VENTRAL_SHARDS,
        /// else 0/1 (every run).
        #[arg(long, value_parser = sweep::parse_shard)]
        shard: Option<(usize, usize)>,
        /// Also retry runs that failed before (e.g. diverged).
        #[arg(long)]
        retry_failed: bool,
    },
    /// One line per run: name, parameters, state.
    Status { dir: PathBuf },
    /// One table of every run's parameters and results (aggregate.csv in DIR): last-epoch
    /// validation loss and accuracy at the last time step, and for runs with
    /// [train.sgd_dynamics] the diffusion exponent and final local displacement.
    Aggregate { dir: PathBuf },
}

pub fn run(a: Args) -> Result<()> {
    match a.cmd {
        Some(Cmd::Run {
            dir,
            shard,
            retry_failed,
        }) => run_shard(&dir, shard, retry_failed),
        Some(Cmd::Status { dir }) => status(&dir),
        Some(Cmd::Aggregate { dir }) => aggregate(&dir),
        None => {
            let (Some(spec), Some(out)) = (a.spec, a.out) else {
                bail!(
                    "usage: ventral sweep SPEC.toml --out DIR (or sweep run|status|aggregate DIR)"
                );
            };
            let m = sweep::expand(&spec)?;
            let fresh = sweep::plan(&m, &out)?;
            println!(
                "{} {} runs in {}",
                if fresh { "planned" } else { "already planned:" },
                m.runs.len(),
                out.display()
            );
            for e in &m.runs {
                println!("  {}  {}", e.name, params_text(e));
            }
            println!(
                "run with: ventral sweep run {} [--shard K/N]  (docs/sweeps.md: Slurm, Kubernetes)",
                out.display()
            );
            Ok(())
        }
    }
}

fn params_text(e: &RunEntry) -> String {
    e.params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn train_entry(
    m: &Manifest,
    e: &RunEntry,
    rd: &Path,
    stop: &Arc<AtomicBool>,
) -> ventral_train::Result<()> {
    let cfg = TrainFile::load(&m.base, &e.overrides)?;
    if ventral_core::hash::blake3_hex(cfg.to_toml().as_bytes()) != e.config_blake3 {
        return Err(ventral_train::TrainError::Config(format!(
            "{}: the base configuration changed since the sweep was planned (run {} no longer resolves to the planned config); plan a new sweep",
            m.base.display(),
            e.name
        )));
    }
    let init_from = match &m.init_from {
        Some(s) => Some(
            resolve_init_from(s).map_err(|x| ventral_train::TrainError::Config(x.to_string()))?,
        ),
        None => None,
    };
    let opts = TrainOptions {
        out: rd.to_path_buf(),
        resume: true,
        code_version: crate::code_version(),
        stop: stop.clone(),
        init_from,
    };
    eprintln!("== {} ({})", e.name, params_text(e));
    let bar = std::sync::Mutex::new(None::<Progress>);
    let on = reporter(rd, &bar);
    train(&cfg, &opts, &on).map(|_| ())
}

fn run_shard(dir: &Path, shard: Option<(usize, usize)>, retry_failed: bool) -> Result<()> {
    let m = sweep::read_manifest(dir)?;
    let (k, n) = sweep::resolve_shard(shard, &|v| std::env::var(v).ok())?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    eprintln!(
        "shard {k}/{n}: {} of {} runs",
        (0..m.runs.len()).filter(|i| i % n == k).count(),
        m.runs.len()
    );
    let rep = sweep::run_shard(dir, &m, (k, n), retry_failed, &mut |e, rd| {
        train_entry(&m, e, rd, &stop)
    })?;
    println!(
        "shard {k}/{n}: trained {}, already done {}, held by another worker {}, failed before {}, failed now {}",
        rep.trained.len(),
        rep.skipped_done.len(),
        rep.skipped_running.len(),
        rep.skipped_failed.len(),
        rep.failed.len()
    );
    for (name, msg) in &rep.failed {
        eprintln!("  {name}: {msg}");
    }
    if !rep.failed.is_empty() {
        bail!(
            "{} run(s) failed (see their FAILED files; `sweep run --retry-failed` tries again)",
            rep.failed.len()
        );
    }
    Ok(())
}

fn status(dir: &Path) -> Result<()> {
    let m = sweep::read_manifest(dir)?;
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for e in &m.runs {
        let st = sweep::state(dir, &e.name);
        *counts
            .entry(match st {
                RunState::Done => "done",
                RunState::Failed(_) => "failed",
                RunState::Running(_) => "running",
                RunState::Partial { .. } => "partial",
                RunState::Pending => "pending",
            })
            .or_default() += 1;
        println!("{}  {}  {}", e.name, params_text(e), st.label());
    }
    let c: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
    println!("{} runs: {}", m.runs.len(), c.join(", "));
    Ok(())
}

/// Last epoch's validation loss and accuracy at the last time step, from metrics.csv.
fn final_val(rd: &Path) -> Option<(usize, f64, f64)> {
    let mut r = csv::Reader::from_path(rd.join("metrics.csv")).ok()?;
    let mut best: Option<(usize, usize, f64, f64)> = None;
    for rec in r.records().flatten() {
        if rec.get(2) != Some("val") {
            continue;
        }
        let ep: usize = rec.get(0)?.parse().ok()?;
        let t: usize = rec.get(1)?.parse().ok()?;
        let loss: f64 = rec.get(3)?.parse().ok()?;
        let acc: f64 = rec.get(4)?.parse().ok()?;
        if best.is_none_or(|(e, s, ..)| (ep, t) >= (e, s)) {
            best = Some((ep, t, loss, acc));
        }
    }
    best.map(|(e, _, l, a)| (e, l, a))
}

fn aggregate(dir: &Path) -> Result<()> {
    let m = sweep::read_manifest(dir)?;
    let keys: BTreeSet<&String> = m.runs.iter().flat_map(|e| e.params.keys()).collect();
    let mut s = String::from("run");
    for k in &keys {
        let _ = write!(s, ",{}", csv_field(k));
    }
    s.push_str(",state,last_epoch,val_loss_last_step,val_accuracy_last_step,exponent,exponent_ci_low,exponent_ci_high,local_sq_final\n");
    for e in &m.runs {
        let rd = sweep::run_dir(dir, &e.name);
        let st = sweep::state(dir, &e.name);
        let _ = write!(s, "{}", e.name);
        for k in &keys {
            let v = e.params.get(*k).map(String::as_str).unwrap_or("");
            let _ = write!(s, ",{}", csv_field(v.trim_matches('"')));
        }
        let state = match &st {
            RunState::Failed(_) => "failed".to_string(),
            other => other.label(),
        };
        let _ = write!(s, ",{}", csv_field(&state));
        match final_val(&rd) {
            Some((ep, l, a)) => {
                let _ = write!(s, ",{ep},{l},{a}");
            }
            None => s.push_str(",,,"),
        }
        let traj = rd.join(ventral_train::sgd_dynamics::CSV);
        let diff = if st == RunState::Done && traj.is_file() {
            read_csv(&traj, &e.name).ok().and_then(|t| {
                analyse(
                    vec![(t, ventral_analysis::diffusion::Hyper::UNKNOWN)],
                    Options {
                        fit: FitOptions::default(),
                        ..Default::default()
                    },
                )
                .ok()
            })
        } else {
            None
        };
        match diff.as_ref().and_then(|d| d.runs.first()) {
            Some(r) => {
                let _ = writeln!(
                    s,
                    ",{},{},{},{}",
                    r.fit.exponent,
                    r.fit.ci_low,
                    r.fit.ci_high,
                    ventral_analysis::output::num(r.local_final)
                );
            }
            None => s.push_str(",,,,\n"),
        }
    }
    let p = dir.join("aggregate.csv");
    ventral_core::atomic::write_bytes_atomic(&p, s.as_bytes())?;
    print!("{s}");
    eprintln!("wrote {}", p.display());
    Ok(())
}
