//! One module per subcommand: its clap arguments and its `run`.
// The arguments' doc comments are the `--help` texts (clap prints them verbatim), written for
// the terminal: `[N]`, `<split>` and `[model]` there are shapes and TOML tables, not rustdoc
// links or HTML.
#![allow(rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags)]

pub mod behaviour;
pub mod bench;
pub mod diffusion;
pub mod dynamics;
pub mod hessian;
pub mod inspect;
pub mod models;
pub mod neural_fit;
pub mod neural_inputs;
pub mod neural_synth;
pub mod ost;
pub mod pack;
pub mod pareto;
pub mod quickstart;
pub mod record;
pub mod rsa;
pub mod sheet;
pub mod stimuli;
pub mod sweep;
pub mod train;

/// Most cross-validation splits, ceiling splits, halvings or folds a command takes (Brain-Score
/// uses 10 splits and 2 halvings): each keeps index vectors over the stimuli or trials and
/// its results, so 2⁶⁴ − 1 of them used to fail allocating (a panic) or run without end.
/// Measured (`neural-fit`, 300 stimuli × 80 sites × 19 bins, release build): 100 splits took
/// 400 s and 134 MiB, so 1 000 is already hours and over a GiB; this is a guard against
/// typos, not a memory plan.
pub const MAX_SPLITS: usize = 1_000;

/// Most bootstrap resamples a command takes (Brain-Score: 1 000).
pub const MAX_BOOTSTRAPS: usize = 100_000;

/// Refuse a repetition count above `max`, naming the option.
pub fn check_count(flag: &str, n: usize, max: usize) -> anyhow::Result<()> {
    if n > max {
        anyhow::bail!("{flag} {n}: at most {max}");
    }
    Ok(())
}

/// Most timed or warm-up iterations `bench` takes, and decoder epochs `ost` trains (guards
/// against typos: 2⁶⁴ − 1 ran until stopped).
pub const MAX_ITERS: usize = 100_000;

/// clap value parser of a count that must be at least 1 (a batch size, time steps, iterations,
/// epochs, components): 0 is refused when the arguments are parsed, before any work, instead
/// of being clamped to 1 silently or failing deep inside a run.
pub fn positive(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!(
            "{e} (expected a whole number from 1 to {})",
            usize::MAX
        )),
    }
}
