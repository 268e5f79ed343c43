//! The rcnn-sat networks of Spoerer, Kietzmann, Mehrer, Charest & Kriegeskorte (2020):
//! the recurrent BL network and its feedforward controls B, B-K (larger kernels), B-F (wider)
//! and B-D (deeper), as `cjspoerer/rcnn-sat` (`bl_net.py`, `b_net.py`) defines them.
//!
//! BL: seven recurrent convolutional layers (channels 96, 128, 192, 256, 512, 1024, 2048;
//! kernels 7, 5, 3, 3, 3, 3, 1; `same` padding, no bias), 2×2 max-pool on the bottom-up input of
//! layers 1..6, the image's bottom-up convolution computed once,
//! `h_t^n = ReLU(BN_{n,t}(W_b * pool(h_t^{n−1}) + W_l * h_{t−1}^n))` with **separate BatchNorm
//! parameters per layer and time step**, then global average pooling and a Dense readout (with
//! bias) shared over time; optionally a cumulative readout (logits summed over t' ≤ t).
//! The B controls are the same stacks without lateral connections (one time step; B-D has 14
//! layers, pooling every second one). BatchNorm uses Keras' defaults (ε = 1e-3, momentum 0.99,
//! i.e. 0.01 in PyTorch's convention).

pub mod config;
pub mod keras;
mod network;
pub mod registry;
pub mod size;

pub use config::{RcnnSatConfig, RcnnVariant};
pub use network::*;
