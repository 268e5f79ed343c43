//! ConvRNNs (Nayebi et al. 2018, 2022): a graph of areas whose every edge costs one time step
//! (biological unrolling), local recurrent cells (time decay, SimpleRNN, GRU, LSTM, UGRNN,
//! IntersectionRNN, the reciprocal gated cell), long-range feedback, movie inputs and temporal
//! decoders. Graphs are PyTorchTNN's JSON (`nodes`, `edges`, `input_nodes`, `output_node`,
//! `input_shape`, `num_timesteps`) read as they are, or the same keys in TOML; parameters carry
//! PyTorchTNN's state-dict names. The original convrnns (TensorFlow) model JSON files are read
//! too ([`tf_json`]). See `docs/convrnn.md`.

pub mod cells;
pub mod config;
pub mod init;
mod network;
pub mod ops;
pub mod registry;
pub mod size;
pub mod spec;
pub mod tf_json;
pub mod tf_weights;

pub use config::{ConvRnnConfig, Decoder, DecoderKind, HarborOrder, Movie};
pub use network::*;
