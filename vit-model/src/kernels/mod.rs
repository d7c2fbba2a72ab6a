//! Fused kernels for the CPU backend, registered as a Burn backend extension.
//!
//! Burn's `flex` backend computes GELU with a scalar erf on one thread; in a ViT training step
//! that was a third of the time. [`gelu`] runs our vectorised, multi-threaded kernel
//! ([`simd_math`]) on flex float32 tensors — with its own backward pass under autodiff — and
//! Burn's own op everywhere else (GPU backends, other dtypes), so callers need not care.

mod autodiff;
mod flex;
pub mod simd_math;

use burn::backend::{Backend, Dispatch, DispatchDevice, backend_extension, tensor::FloatTensor};
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
}

/// Whether `tensor` lives where our kernels run: float32 on the flex backend (with or without
/// autodiff).
fn runs_fused<const D: usize>(tensor: &Tensor<D>) -> bool {
    tensor.dtype() == DType::F32 && matches!(tensor.device().inner().as_dispatch(), DispatchDevice::Flex(_))
}

/// The exact (erf) GELU, equal to `burn::tensor::activation::gelu` within float rounding.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if runs_fused(&x) {
        Tensor::from_dispatch(<Dispatch as FusedOps>::fused_gelu(x.into_dispatch()))
    } else {
        activation::gelu(x)
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Distribution, Tensor, activation};

    #[test]
    fn gelu_and_its_gradient_equal_burns() {
        let device = Device::flex().autodiff();
        let x = Tensor::<3>::random([4, 33, 257], Distribution::Normal(0.0, 3.0), &device).require_grad();
        let weights = Tensor::<3>::random([4, 33, 257], Distribution::Default, &device);

        let ours = super::gelu(x.clone());
        let grads = (ours.clone() * weights.clone()).sum().backward();
        let ours_grad = x.grad(&grads).unwrap();

        let reference = activation::gelu(x.clone());
        let grads = (reference.clone() * weights).sum().backward();
        let reference_grad = x.grad(&grads).unwrap();

        ours.into_data().assert_approx_eq::<f32>(&reference.into_data(), burn::tensor::Tolerance::absolute(2e-6));
        ours_grad
            .into_data()
            .assert_approx_eq::<f32>(&reference_grad.into_data(), burn::tensor::Tolerance::absolute(2e-6));
    }

    #[test]
    fn non_contiguous_input_is_handled() {
        let device = Device::flex();
        let x = Tensor::<2>::random([64, 48], Distribution::Normal(0.0, 2.0), &device);
        let t = x.clone().swap_dims(0, 1);
        let ours = super::gelu(t.clone());
        ours.into_data()
            .assert_approx_eq::<f32>(&activation::gelu(t).into_data(), burn::tensor::Tolerance::absolute(2e-6));
    }
}
