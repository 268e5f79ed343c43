//! `ventral`: build, train and dissect recurrent convolutional models of primate object
//! recognition. Every command reads files and writes files; see `ventral --help`.

mod commands;
mod progress;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Code version saved beside artefacts: crate version and git commit.
pub fn code_version() -> String {
    format!(
        "ventral {} ({})",
        env!("CARGO_PKG_VERSION"),
        env!("VENTRAL_GIT_COMMIT")
    )
}

#[derive(Debug, Parser)]
#[command(name = "ventral", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate the embedded synthetic "objects in clutter" stimulus set.
    Stimuli(commands::stimuli::Args),
    /// Import an image dataset (ImageFolder, MiniEcoset HDF5, CIFAR binary, npz) into the
    /// packed format.
    Pack(commands::pack::Args),
    /// Print the summary of a packed dataset (one split or a root of splits).
    Inspect(commands::inspect::Args),
    /// List the registered models with their sizes.
    Models(commands::models::ModelsArgs),
    /// Parameters by connection type, units and FLOPs of a model.
    Size(commands::models::SizeArgs),
    /// Train a model from a configuration (resumable).
    Train(commands::train::Args),
    /// Record a model's outputs and representations on an image array.
    Record(commands::record::Args),
    /// Time training and inference (and single operations) of BLT networks.
    Bench(commands::bench::Args),
    /// Fit model features to neural recordings per time bin (PLS/ridge, cross-validated,
    /// split-half ceilings, noise-corrected consistency).
    NeuralFit(commands::neural_fit::Args),
    /// Synthetic neural recordings with known ground truth from the embedded stimuli.
    NeuralSynth(commands::neural_synth::Args),
    /// Representational similarity: model-time × neural-time RDM comparisons.
    Rsa(commands::rsa::Args),
    /// Object solution times (Kar2019): per-bin decoders, per-image i1 d′, Spearman with
    /// target OSTs.
    Ost(commands::ost::Args),
    /// Behavioural consistency (Rajalingham 2018; Brain-Score i1n/i2n) per layer and step
    /// against two-alternative trials: decoder accuracy and ceiled consistency over time.
    Behaviour(commands::behaviour::Args),
    /// Representation dynamics (Thorat et al. 2023): accuracy over steps (Wilson intervals,
    /// step against step by exact McNemar tests), stability categories, signatures of
    /// stability, readout zones; tables, plots and report.html.
    Dynamics(commands::dynamics::Args),
    /// Limiting dynamics of SGD (Kunin et al. 2021): diffusion exponent, rolling exponent and
    /// local displacement against theory, from runs with [train.sgd_dynamics] or any
    /// trajectory CSV.
    Diffusion(commands::diffusion::Args),
    /// Accuracy against network size over finished runs (Nayebi et al. 2022, Fig. 2):
    /// parameters, units, FLOPs, the Pareto frontiers; pareto.csv and plots.
    Pareto(commands::pareto::Args),
    /// Hyperparameter sweeps: plan (SPEC --out DIR), run a shard (Slurm array, Kubernetes
    /// Indexed Job, or local processes), status, aggregate.
    Sweep(commands::sweep::Args),
    /// Leading eigenpairs of the training loss's Hessian at a run's checkpoint (Lanczos or
    /// power iteration on finite-difference Hessian-vector products; BLT networks).
    Hessian(commands::hessian::Args),
    /// The whole pipeline offline on CPU in minutes: stimuli, a tiny BLT and its B control,
    /// recordings and the representation-dynamics report.
    Quickstart(commands::quickstart::Args),
}

/// A closed stdout (`ventral models | head -1`) ends the command quietly with exit 0, as `cat`
/// and `rg` do, instead of the "failed printing to stdout: Broken pipe" panic (exit 101).
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let p = info.payload();
        let msg = p
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| p.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info)
    }));
}

/// The error and its causes joined with ": ", skipping a cause whose text the message already
/// holds (errors that print their source, like `path: No such file…`, would otherwise repeat it).
fn error_chain(e: &anyhow::Error) -> String {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg.push_str(": ");
            msg.push_str(&c);
        }
    }
    msg
}

/// Freed blocks of 32 MiB and more kept for reuse (see `ventral_engine::memory`).
#[global_allocator]
static ALLOC: ventral_engine::memory::KeepLargeBlocks = ventral_engine::memory::KeepLargeBlocks;

fn main() -> ExitCode {
    quiet_on_broken_pipe();
    ventral_engine::memory::keep_freed_memory();
    let cli = Cli::parse();
    // A misspelt cap on the vector instructions would silently run the default kernels.
    if let Err(e) = ventral_engine::simd::level_from_env() {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let result = match cli.command {
        Command::Stimuli(a) => commands::stimuli::run(a),
        Command::Pack(a) => commands::pack::run(a),
        Command::Inspect(a) => commands::inspect::run(a),
        Command::Models(a) => commands::models::run_models(a),
        Command::Size(a) => commands::models::run_size(a),
        Command::Train(a) => commands::train::run(a),
        Command::Record(a) => commands::record::run(a),
        Command::Bench(a) => commands::bench::run(a),
        Command::NeuralFit(a) => commands::neural_fit::run(a),
        Command::NeuralSynth(a) => commands::neural_synth::run(a),
        Command::Rsa(a) => commands::rsa::run(a),
        Command::Ost(a) => commands::ost::run(a),
        Command::Behaviour(a) => commands::behaviour::run(a),
        Command::Dynamics(a) => commands::dynamics::run(a),
        Command::Diffusion(a) => commands::diffusion::run(a),
        Command::Pareto(a) => commands::pareto::run(a),
        Command::Sweep(a) => commands::sweep::run(a),
        Command::Hessian(a) => commands::hessian::run(a),
        Command::Quickstart(a) => commands::quickstart::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            let code = match e.downcast_ref::<ventral_train::TrainError>() {
                Some(ventral_train::TrainError::Interrupted(_)) => {
                    commands::train::EXIT_INTERRUPTED
                }
                Some(ventral_train::TrainError::Diverged(_)) => commands::train::EXIT_DIVERGED,
                _ => 2,
            };
            ExitCode::from(code)
        }
    }
}
