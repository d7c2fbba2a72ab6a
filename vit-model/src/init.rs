//! Hugging Face's weight initialisation: truncated normal weights, zero biases, LayerNorm (1, 0).

use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, LayerNormConfig, LinearConfig};
use burn::tensor::{Device, Distribution, Shape, Tensor};

use crate::fused_layers::{FusedLayerNorm, FusedLinear};

/// A tensor drawn from N(0, std²) truncated to [-2, 2], as `torch.nn.init.trunc_normal_`
/// with its default bounds (absolute values, not multiples of `std`).
pub fn trunc_normal<const D: usize>(shape: impl Into<Shape>, std: f64, device: &Device) -> Tensor<D> {
    let shape: Shape = shape.into();
    let (lo, hi) = (-2.0, 2.0);
    let mut t = Tensor::<D>::random(shape.clone(), Distribution::Normal(0.0, std), device);
    // Redraw the rare values outside the bounds; after a few rounds, clamp what is left.
    for _ in 0..4 {
        let outside = t.clone().lower_elem(lo).bool_or(t.clone().greater_elem(hi));
        if !outside.clone().any().into_scalar::<bool>() {
            break;
        }
        let redraw = Tensor::<D>::random(shape.clone(), Distribution::Normal(0.0, std), device);
        t = t.mask_where(outside, redraw);
    }
    t.clamp(lo, hi)
}

/// A trainable parameter drawn by [`trunc_normal`].
pub fn trunc_normal_param<const D: usize>(shape: impl Into<Shape>, std: f64, device: &Device) -> Param<Tensor<D>> {
    Param::from_tensor(trunc_normal(shape, std, device))
}

/// A dense layer initialised as HF does: truncated-normal weight, zero bias.
pub fn linear(d_in: usize, d_out: usize, bias: bool, std: f64, device: &Device) -> FusedLinear {
    let config = LinearConfig::new(d_in, d_out).with_bias(bias).with_initializer(Initializer::Zeros);
    let mut layer = FusedLinear::new(&config, device);
    layer.weight = trunc_normal_param([d_in, d_out], std, device);
    layer
}

/// A convolution with kernel = stride = `kernel`, initialised as HF does.
pub fn conv2d(c_in: usize, c_out: usize, kernel: usize, std: f64, device: &Device) -> Conv2d {
    let mut conv = Conv2dConfig::new([c_in, c_out], [kernel, kernel])
        .with_stride([kernel, kernel])
        .with_initializer(Initializer::Zeros)
        .init(device);
    conv.weight = trunc_normal_param([c_out, c_in, kernel, kernel], std, device);
    conv
}

/// A LayerNorm with weight 1, bias 0 and the given epsilon.
pub fn layer_norm(d: usize, eps: f64, device: &Device) -> FusedLayerNorm {
    FusedLayerNorm::new(&LayerNormConfig::new(d).with_epsilon(eps), device)
}
