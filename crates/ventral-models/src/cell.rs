//! The recurrent-cell contract: a local recurrent cell holds a state between time steps and
//! maps (input, optional feedback, state at t − 1) to (output, state at t). The ConvRNN graph
//! (Nayebi et al. 2018/2022) unrolls any cell through it — time-decay, SimpleRNN, GRU, LSTM,
//! UGRNN, IntersectionRNN, the reciprocal gated cell — so a new cell is one implementation,
//! not a change to the graph. States start at zero (`zero_state`).
//!
//! [`TimeDecay`] is the simplest cell (`s_t = τ·s_{t−1} + x_t`, the `memory` of
//! `neuroailab/convrnns`) and the contract's first implementation.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

/// A local recurrent cell (see the module docs).
pub trait RecurrentCell {
    /// What the cell carries from step to step (`h`, or `(h, c)` for an LSTM).
    type State: Clone;

    /// The state before the first step: zeros.
    ///
    /// # Shapes
    /// - state tensors: `[batch, channels, height, width]` (the cell's output shape).
    fn zero_state(&self, batch: usize, height: usize, width: usize, device: &Device)
    -> Self::State;

    /// Whether the cell has a feedback entry (long-range feedback routed to it by the graph's
    /// harbor); cells without one receive feedback concatenated into `input` instead.
    fn accepts_feedback(&self) -> bool {
        false
    }

    /// One time step: (output at t, state at t).
    ///
    /// # Shapes
    /// - `input.input`: `[batch, C_in, H, W]` (the node's pre-memory output at t);
    /// - `input.feedback`: `[batch, C_fb, H, W]` when [`Self::accepts_feedback`];
    /// - `input.residual`: the node's feedforward input before its pre-memory;
    /// - output: `[batch, C_out, H, W]`.
    fn step(&self, input: CellInput, state: Self::State) -> (Tensor<4>, Self::State);
}

/// What a cell receives at one step.
#[derive(Debug, Clone)]
pub struct CellInput {
    /// The pre-memory output.
    pub input: Tensor<4>,
    /// The feedback part of the harbor (cells with a feedback entry).
    pub feedback: Option<Tensor<4>>,
    /// The node's feedforward input before the pre-memory (the reciprocal gated cell's `res`).
    pub residual: Option<Tensor<4>>,
}

impl CellInput {
    /// Only a feedforward input.
    pub fn plain(input: Tensor<4>) -> Self {
        Self {
            input,
            feedback: None,
            residual: None,
        }
    }
}

/// Time decay: `s_t = τ · s_{t−1} + x_t`, output `s_t`; one scalar τ per layer, initialised
/// to 0 (then the cell is feedforward until τ is learned).
#[derive(Module, Debug)]
pub struct TimeDecay {
    pub tau: Param<Tensor<1>>,
    pub(crate) channels: usize,
}

impl TimeDecay {
    /// A cell for `channels` channels with τ = `tau`.
    pub fn new(channels: usize, tau: f32, device: &Device) -> Self {
        Self {
            tau: Param::from_tensor(Tensor::from_floats([tau], device)),
            channels,
        }
    }
}

impl RecurrentCell for TimeDecay {
    type State = Tensor<4>;

    fn zero_state(&self, batch: usize, height: usize, width: usize, device: &Device) -> Tensor<4> {
        Tensor::zeros([batch, self.channels, height, width], device)
    }

    fn step(&self, input: CellInput, state: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let tau = self.tau.val().reshape([1, 1, 1, 1]);
        let s = state * tau + input.input;
        (s.clone(), s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    #[test]
    fn time_decay_accumulates_geometrically_and_learns_tau() {
        let device = Device::flex().autodiff();
        let cell = TimeDecay::new(2, 0.5, &device);
        let mut s = cell.zero_state(1, 1, 1, &device);
        assert_eq!(s.dims(), [1, 2, 1, 1]);
        let x = Tensor::<4>::from_data(TensorData::new(vec![1.0f32, 2.0], [1, 2, 1, 1]), &device);
        let mut out = Vec::new();
        for _ in 0..3 {
            let (o, next) = cell.step(CellInput::plain(x.clone()), s);
            s = next;
            out.push(o);
        }
        // s_3 = x (1 + τ + τ²) = 1.75 x.
        let v: Vec<f32> = out[2].clone().into_data().try_to_vec::<f32>().unwrap();
        assert!(
            (v[0] - 1.75).abs() < 1e-6 && (v[1] - 3.5).abs() < 1e-6,
            "{v:?}"
        );
        // d(sum s_3)/dτ = sum x (1 + 2τ) = 3 · 2 = 6.
        let g = out[2].clone().sum().backward();
        let dtau: Vec<f32> = cell
            .tau
            .val()
            .grad(&g)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert!((dtau[0] - 6.0).abs() < 1e-5, "{dtau:?}");
        assert!(!cell.accepts_feedback());
    }
}
