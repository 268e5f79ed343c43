//! `ventral-fuzz`: fuzz ventral's parsers (see the crate docs and `scripts/fuzz.sh`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use ventral_fuzz::{Config, TARGETS, fuzz, peak_rss, quiet_panics, read_inputs, target};

#[derive(Parser, Debug)]
#[command(about = "Fuzz ventral's file parsers and configuration readers")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Write the seed corpus (one folder per target) from ventral's own writers.
    Seed {
        #[arg(long, default_value = "fuzz/corpus")]
        out: PathBuf,
        /// Repository root (configs, fixtures).
        #[arg(long, default_value = ".")]
        repo: PathBuf,
    },
    /// List the targets.
    List,
    /// Fuzz targets: replay the corpus and regressions, then mutate.
    Run {
        /// Targets (all when none).
        #[arg(long = "target")]
        targets: Vec<String>,
        /// Executions per target (after the replay).
        #[arg(long, default_value_t = 1_000_000)]
        execs: u64,
        /// Time limit per target, seconds.
        #[arg(long, default_value_t = 600.0)]
        seconds: f64,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long, default_value = "fuzz/corpus")]
        corpus: PathBuf,
        #[arg(long, default_value = "fuzz/regressions")]
        regressions: PathBuf,
        /// Where panicking or slow inputs are saved.
        #[arg(long, default_value = "target/fuzz-findings")]
        findings: PathBuf,
        /// Work directory (inputs are written here; tmpfs is fastest).
        #[arg(long)]
        work: Option<PathBuf>,
        /// Append one CSV row per target here.
        #[arg(long)]
        report: Option<PathBuf>,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::List => {
            for t in TARGETS {
                println!("{:<14} {}  (files: {})", t.name, t.what, t.files.join(", "));
            }
        }
        Cmd::Seed { out, repo } => {
            let scratch = tempfile::tempdir()?;
            let seeds = ventral_fuzz::seeds::make(&repo, scratch.path())?;
            for (name, inputs) in seeds {
                let d = out.join(name);
                std::fs::create_dir_all(&d)?;
                for (i, b) in inputs.iter().enumerate() {
                    std::fs::write(d.join(format!("seed-{i:02}")), b)?;
                }
                println!("{name}: {} seeds", inputs.len());
            }
        }
        Cmd::Run {
            targets,
            execs,
            seconds,
            seed,
            corpus,
            regressions,
            findings,
            work,
            report,
        } => {
            let chosen: Vec<_> = if targets.is_empty() {
                TARGETS.iter().collect()
            } else {
                targets
                    .iter()
                    .map(|n| {
                        target(n).with_context(|| {
                            format!(
                                "no target `{n}`; targets: {}",
                                TARGETS
                                    .iter()
                                    .map(|t| t.name)
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        })
                    })
                    .collect::<Result<_>>()?
            };
            quiet_panics();
            let mut total_findings = 0;
            println!(
                "{:<14} {:>10} {:>9} {:>9} {:>9} {:>7} {:>7} {:>9} {:>9} {:>9}",
                "target",
                "execs",
                "execs/s",
                "accepted",
                "rejected",
                "errors",
                "corpus",
                "slowest",
                "findings",
                "peak_rss"
            );
            for t in chosen {
                let mut inputs: Vec<Vec<u8>> = read_inputs(&corpus.join(t.name))?
                    .into_iter()
                    .map(|x| x.1)
                    .collect();
                if inputs.is_empty() {
                    bail!(
                        "no seed corpus in {} (run `ventral-fuzz seed`)",
                        corpus.join(t.name).display()
                    );
                }
                inputs.extend(
                    read_inputs(&regressions.join(t.name))?
                        .into_iter()
                        .map(|x| x.1),
                );
                let base = match &work {
                    Some(w) => w.clone(),
                    None if std::path::Path::new("/dev/shm").is_dir() => PathBuf::from("/dev/shm"),
                    None => std::env::temp_dir(),
                };
                let dir = base.join(format!("ventral-fuzz-{}-{}", t.name, std::process::id()));
                std::fs::create_dir_all(&dir)?;
                let cfg = Config {
                    seed,
                    max_execs: execs + inputs.len() as u64,
                    max_time: Duration::from_secs_f64(seconds),
                    ..Config::default()
                };
                let stats = fuzz(t, &inputs, &dir, &cfg)?;
                std::fs::remove_dir_all(&dir).ok();
                let rss = peak_rss().unwrap_or(0);
                println!(
                    "{:<14} {:>10} {:>9.0} {:>9} {:>9} {:>7} {:>7} {:>7.1}ms {:>9} {:>7}MiB",
                    t.name,
                    stats.execs,
                    stats.execs as f64 / stats.seconds.max(1e-9),
                    stats.accepted,
                    stats.rejected,
                    stats.distinct_errors,
                    stats.corpus,
                    stats.slowest.as_secs_f64() * 1e3,
                    stats.findings.len(),
                    rss >> 20
                );
                if !stats.findings.is_empty() {
                    let fd = findings.join(t.name);
                    std::fs::create_dir_all(&fd)?;
                    let mut seen = std::collections::HashSet::new();
                    for f in &stats.findings {
                        let h = ventral_core::hash::blake3_hex(&f.input);
                        let p = fd.join(format!("{}-{}", f.kind, &h[..16]));
                        std::fs::write(&p, &f.input)?;
                        if seen.insert(f.message.clone()) {
                            println!("  {} {}: {}", f.kind, p.display(), f.message);
                        }
                    }
                }
                total_findings += stats.findings.len();
                if let Some(r) = &report {
                    use std::io::Write;
                    let new = !r.exists();
                    let mut f = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(r)?;
                    if new {
                        writeln!(
                            f,
                            "target,execs,seconds,execs_per_s,accepted,rejected,distinct_errors,corpus,slowest_ms,findings,peak_rss_mib"
                        )?;
                    }
                    writeln!(
                        f,
                        "{},{},{:.1},{:.0},{},{},{},{},{:.2},{},{}",
                        t.name,
                        stats.execs,
                        stats.seconds,
                        stats.execs as f64 / stats.seconds.max(1e-9),
                        stats.accepted,
                        stats.rejected,
                        stats.distinct_errors,
                        stats.corpus,
                        stats.slowest.as_secs_f64() * 1e3,
                        stats.findings.len(),
                        rss >> 20
                    )?;
                }
            }
            if total_findings > 0 {
                bail!(
                    "{total_findings} finding(s); inputs saved under {}",
                    findings.display()
                );
            }
        }
    }
    Ok(())
}
