//! [`FusedLinear`]: `burn::nn::Linear` with the fused kernel on the CPU backend.

use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{DType, Device, Tensor, assert_shape};

use crate::{kernels, precision};

/// A dense layer `y = x·W + b`, field for field `burn::nn::Linear` (so records and checkpoint
/// keys are the same), whose forward pass runs the fused kernel on flex float32 tensors.
#[derive(Module, Debug)]
pub struct FusedLinear {
    /// The weight, `[d_input, d_output]` (Burn's layout; PyTorch stores it transposed).
    pub weight: Param<Tensor<2>>,
    /// The bias, `[d_output]`.
    pub bias: Option<Param<Tensor<1>>>,
}

impl FusedLinear {
    /// A layer initialised as `config` says.
    pub fn new(config: &LinearConfig, device: &Device) -> Self {
        config.init(device).into()
    }

    /// Input width.
    pub fn d_input(&self) -> usize {
        self.weight.dims()[0]
    }

    /// Output width.
    pub fn d_output(&self) -> usize {
        self.weight.dims()[1]
    }

    /// `x·W + b` over the last dimension of `x`, as `Linear::forward`; the product in this
    /// thread's [`precision`].
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let weight = self.weight.val();
        let [d_input, _] = weight.dims();
        let precision = precision::current();
        assert_shape!(x, [.., d_input]);
        match &self.bias {
            Some(bias) if D >= 2 && kernels::runs_fused(&x) && weight.dtype() == DType::F32 => {
                kernels::fused_linear(x, weight, bias.val())
            }
            _ if precision.is_reduced() && x.dtype() == DType::F32 && weight.dtype() == DType::F32 => {
                // Autocast with Burn's dtypes: the product in the low precision, the bias added in
                // float32.
                let dtype = precision.dtype();
                let y = burn::tensor::module::linear(x.cast(dtype), weight.cast(dtype), None).cast(DType::F32);
                match &self.bias {
                    Some(bias) => y + bias.val().unsqueeze(),
                    None => y,
                }
            }
            _ => burn::tensor::module::linear(x, weight, self.bias.as_ref().map(|b| b.val())),
        }
    }
}

impl From<Linear> for FusedLinear {
    fn from(linear: Linear) -> Self {
        Self { weight: linear.weight, bias: linear.bias }
    }
}

impl From<FusedLinear> for Linear {
    fn from(linear: FusedLinear) -> Self {
        Linear { weight: linear.weight, bias: linear.bias }
    }
}
