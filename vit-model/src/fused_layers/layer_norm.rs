//! [`FusedLayerNorm`]: `burn::nn::LayerNorm` with the fused kernel on the CPU backend.

use burn::module::{Module, Param};
use burn::nn::LayerNormConfig;
use burn::tensor::{DType, Device, FloatDType, Tensor, assert_shape};

use crate::kernels;

/// LayerNorm over the last dimension, field for field `burn::nn::LayerNorm` (`gamma`, `beta`, so
/// records and checkpoint keys are the same), whose forward pass runs the fused kernel on flex
/// float32 tensors. Unlike Burn's, its epsilon is readable.
#[derive(Module, Debug)]
pub struct FusedLayerNorm {
    /// The scale, `[d_model]` (PyTorch's `weight`).
    pub gamma: Param<Tensor<1>>,
    /// The shift, `[d_model]` (PyTorch's `bias`).
    pub beta: Option<Param<Tensor<1>>>,
    /// Added to the variance (`layer_norm_eps`).
    #[module(skip)]
    pub epsilon: f64,
}

impl FusedLayerNorm {
    /// A LayerNorm initialised as `config` says (scale 1, shift 0).
    pub fn new(config: &LayerNormConfig, device: &Device) -> Self {
        let norm = config.init(device);
        Self { gamma: norm.gamma, beta: norm.beta, epsilon: config.epsilon }
    }

    /// `(x − mean)/√(var + epsilon)·gamma + beta` over the last dimension, as `LayerNorm::forward`.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let gamma = self.gamma.val();
        let [d_model] = gamma.dims();
        assert_shape!(x, [.., d_model]);
        match &self.beta {
            Some(beta) if kernels::runs_fused(&x) && gamma.dtype() == DType::F32 => {
                kernels::fused_layer_norm(x, gamma, beta.val(), self.epsilon)
            }
            _ => {
                let beta = self.beta.as_ref().map(|b| b.val());
                // As Burn's LayerNorm: half-precision inputs are normalised in f32.
                if x.dtype() == DType::F16 {
                    let wide = FloatDType::F32;
                    burn::tensor::module::layer_norm(
                        x.cast(wide),
                        gamma.cast(wide),
                        beta.map(|b| b.cast(wide)),
                        self.epsilon,
                    )
                    .cast(FloatDType::F16)
                } else {
                    burn::tensor::module::layer_norm(x, gamma, beta, self.epsilon)
                }
            }
        }
    }
}
