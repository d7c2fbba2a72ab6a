//! Fused kernels for the CPU backend, registered as a Burn backend extension.
//!
//! On Burn's `flex` backend a ViT training step spent a third of its time in GELU (a scalar erf
//! on one thread) and more in the allocations, copies and single-threaded bias additions around
//! each matmul. [`gelu`] and [`linear`] run our kernels ([`simd_math`], [`linear_math`]) on flex
//! float32 tensors — each with its own backward pass under autodiff — and Burn's own ops
//! everywhere else (GPU backends, other dtypes), so callers need not care.

mod autodiff;
mod flex;
pub mod linear_math;
pub mod simd_math;

use burn::backend::{Backend, Dispatch, DispatchDevice, backend_extension, tensor::FloatTensor};
use burn::nn::Linear;
use burn::tensor::{DType, Tensor, activation};

/// Operations with a faster implementation than Burn's on some backends.
#[backend_extension(Flex, Autodiff)]
pub trait FusedOps: Backend {
    /// GELU (erf form) of every element.
    fn fused_gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::gelu(x)
    }

    /// `grad · gelu'(x)`.
    fn fused_gelu_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::gelu_backward(x, grad)
    }

    /// `x·W + b` over the last dimension of `x` (`W` is `[d_in, d_out]`, Burn's layout).
    fn fused_linear(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::linear(x, weight, Some(bias))
    }

    /// `∂L/∂x` of [`FusedOps::fused_linear`] given `∂L/∂y`.
    fn fused_linear_backward_input(
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::linear_x_backward(weight, grad)
    }

    /// `∂L/∂W` of [`FusedOps::fused_linear`].
    fn fused_linear_backward_weight(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::linear_weight_backward(x, grad)
    }

    /// `∂L/∂b` of [`FusedOps::fused_linear`].
    fn fused_linear_backward_bias(grad: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::linear_bias_backward(grad)
    }
}

/// Whether `tensor` lives where our kernels run: float32 on the flex backend (with or without
/// autodiff).
fn runs_fused<const D: usize>(tensor: &Tensor<D>) -> bool {
    tensor.dtype() == DType::F32
        && matches!(
            tensor.device().inner().as_dispatch(),
            DispatchDevice::Flex(_)
        )
}

/// The exact (erf) GELU, equal to `burn::tensor::activation::gelu` within float rounding.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if runs_fused(&x) {
        Tensor::from_dispatch(<Dispatch as FusedOps>::fused_gelu(x.into_dispatch()))
    } else {
        activation::gelu(x)
    }
}

/// `linear.forward(x)`, through [`linear_math`] where it runs.
pub fn linear<const D: usize>(linear: &Linear, x: Tensor<D>) -> Tensor<D> {
    let weight = linear.weight.val();
    match &linear.bias {
        Some(bias) if runs_fused(&x) && weight.dtype() == DType::F32 && D >= 2 => {
            Tensor::from_dispatch(<Dispatch as FusedOps>::fused_linear(
                x.into_dispatch(),
                weight.into_dispatch(),
                bias.val().into_dispatch(),
            ))
        }
        _ => linear.forward(x),
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Distribution, Tensor, activation};

    #[test]
    fn gelu_and_its_gradient_equal_burns() {
        let device = Device::flex().autodiff();
        let x = Tensor::<3>::random([4, 33, 257], Distribution::Normal(0.0, 3.0), &device)
            .require_grad();
        let weights = Tensor::<3>::random([4, 33, 257], Distribution::Default, &device);

        let ours = super::gelu(x.clone());
        let grads = (ours.clone() * weights.clone()).sum().backward();
        let ours_grad = x.grad(&grads).unwrap();

        let reference = activation::gelu(x.clone());
        let grads = (reference.clone() * weights).sum().backward();
        let reference_grad = x.grad(&grads).unwrap();

        ours.into_data().assert_approx_eq::<f32>(
            &reference.into_data(),
            burn::tensor::Tolerance::absolute(2e-6),
        );
        ours_grad.into_data().assert_approx_eq::<f32>(
            &reference_grad.into_data(),
            burn::tensor::Tolerance::absolute(2e-6),
        );
    }

    #[test]
    fn linear_and_its_gradients_equal_burns() {
        use burn::nn::LinearConfig;
        let device = Device::flex().autodiff();
        let layer = LinearConfig::new(48, 40).init(&device);
        let x = Tensor::<3>::random([3, 17, 48], Distribution::Normal(0.0, 1.0), &device)
            .require_grad();
        let weights = Tensor::<3>::random([3, 17, 40], Distribution::Default, &device);

        let run = |fused: bool| {
            let y = if fused {
                super::linear(&layer, x.clone())
            } else {
                layer.forward(x.clone())
            };
            let grads = (y.clone() * weights.clone()).sum().backward();
            let gw = layer.weight.grad(&grads).unwrap();
            let gb = layer.bias.as_ref().unwrap().grad(&grads).unwrap();
            (y, x.grad(&grads).unwrap(), gw, gb)
        };
        let (y, gx, gw, gb) = run(true);
        let (ry, rgx, rgw, rgb) = run(false);
        let tol = burn::tensor::Tolerance::absolute(1e-5);
        y.into_data().assert_approx_eq::<f32>(&ry.into_data(), tol);
        gx.into_data()
            .assert_approx_eq::<f32>(&rgx.into_data(), tol);
        gw.into_data()
            .assert_approx_eq::<f32>(&rgw.into_data(), tol);
        gb.into_data()
            .assert_approx_eq::<f32>(&rgb.into_data(), tol);
    }

    #[test]
    fn non_contiguous_input_is_handled() {
        let device = Device::flex();
        let x = Tensor::<2>::random([64, 48], Distribution::Normal(0.0, 2.0), &device);
        let t = x.clone().swap_dims(0, 1);
        let ours = super::gelu(t.clone());
        ours.into_data().assert_approx_eq::<f32>(
            &activation::gelu(t).into_data(),
            burn::tensor::Tolerance::absolute(2e-6),
        );
    }
}
