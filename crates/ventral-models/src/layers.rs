//! Layers the reference uses that burn lacks under the reference's parameter names.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

/// PyTorch `nn.LayerNorm([C, H, W])`: normalise each sample over (C, H, W) jointly (biased
/// variance, eps 1e-5), then an elementwise affine of shape (C, H, W).
#[derive(Module, Debug)]
pub struct LayerNormChw {
    /// γ, `[C, H, W]`.
    pub weight: Param<Tensor<3>>,
    /// β, `[C, H, W]`.
    pub bias: Param<Tensor<3>>,
    #[module(skip)]
    pub eps: f64,
}

impl LayerNormChw {
    /// γ = 1, β = 0.
    pub fn new(shape: [usize; 3], device: &Device) -> Self {
        Self {
            weight: Param::from_tensor(Tensor::ones(shape, device)),
            bias: Param::from_tensor(Tensor::zeros(shape, device)),
            eps: 1e-5,
        }
    }

    /// # Shapes
    /// - input `[batch, C, H, W]`, output the same.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        // Statistics as nested means over W, H, then C (short reductions).
        let stat = |t: Tensor<4>| t.mean_dim(3).mean_dim(2).mean_dim(1); // [batch, 1, 1, 1]
        let mean = stat(x.clone());
        let centred = x - mean;
        let var = stat(centred.clone().powi_scalar(2));
        let normed = centred / (var + self.eps).sqrt();
        normed * self.weight.val().unsqueeze::<4>() + self.bias.val().unsqueeze::<4>()
    }
}

/// PyTorch `nn.LayerNorm(D)` with parameters named `weight` and `bias`.
#[derive(Module, Debug)]
pub struct LayerNorm1d {
    pub weight: Param<Tensor<1>>,
    pub bias: Param<Tensor<1>>,
    #[module(skip)]
    pub eps: f64,
}

impl LayerNorm1d {
    /// γ = 1, β = 0.
    pub fn new(d: usize, device: &Device) -> Self {
        Self {
            weight: Param::from_tensor(Tensor::ones([d], device)),
            bias: Param::from_tensor(Tensor::zeros([d], device)),
            eps: 1e-5,
        }
    }

    /// # Shapes
    /// - input `[batch, D]`, output the same.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let mean = x.clone().mean_dim(1);
        let centred = x - mean;
        let var = centred.clone().powi_scalar(2).mean_dim(1);
        let normed = centred / (var + self.eps).sqrt();
        normed * self.weight.val().unsqueeze::<2>() + self.bias.val().unsqueeze::<2>()
    }
}
