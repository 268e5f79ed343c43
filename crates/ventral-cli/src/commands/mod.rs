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
