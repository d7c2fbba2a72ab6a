//! Fused kernels for the CPU backend, registered as a Burn backend extension.
//!
//! On Burn's `flex` backend a ViT training step spent a third of its time in GELU (a scalar erf
//! on one thread) and more in the allocations, copies and single-threaded bias additions around
//! each matmul. [`gelu`], [`attention`] and the modules [`crate::FusedLinear`] and
//! [`crate::FusedLayerNorm`] run our kernels (`simd_math`, `linear_math`, `layer_norm_math`,
//! `attention_math`) on flex float32 tensors — each with its own backward pass under autodiff —
//! and Burn's own ops everywhere else (GPU backends, other dtypes), so callers need not care.
//! Under bf16 autocast the dense layers run on AMX tiles where the CPU has them ([`bf16_tiles`]),
//! otherwise on the float32 kernels with rounded operands ([`low_precision`]).

pub(crate) mod attention_math;
mod autodiff;
pub mod bf16_tiles;
mod checked;
mod flex;
pub(crate) mod layer_norm_math;
pub(crate) mod linear_math;
pub mod low_precision;
pub(crate) mod simd_math;
mod strided_gemm;
#[cfg(test)]
mod tests;
mod worker;

pub use strided_gemm::set_sliced_gemm;
pub use worker::on_kernel_threads;

use burn::backend::{Backend, Dispatch, DispatchDevice, backend_extension, tensor::FloatTensor};
use burn::tensor::{DType, Device, Tensor, activation};

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
    fn fused_linear(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::linear(x, weight, Some(bias))
    }

    /// `∂L/∂y` as the backward products of [`FusedOps::fused_linear`] take it: rounded once to
    /// the thread's [`crate::precision`] on the CPU backend (where the products below take it as
    /// given), unchanged elsewhere.
    fn fused_linear_grad_operand(grad: FloatTensor<Self>) -> FloatTensor<Self> {
        grad
    }

    /// `∂L/∂x` of [`FusedOps::fused_linear`] given `∂L/∂y` (from
    /// [`FusedOps::fused_linear_grad_operand`]).
    fn fused_linear_backward_input(weight: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::linear_x_backward(weight, grad)
    }

    /// `∂L/∂W` of [`FusedOps::fused_linear`] given `∂L/∂y` (from
    /// [`FusedOps::fused_linear_grad_operand`]).
    fn fused_linear_backward_weight(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::linear_weight_backward(x, grad)
    }

    /// `∂L/∂b` of [`FusedOps::fused_linear`].
    fn fused_linear_backward_bias(grad: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::linear_bias_backward(grad)
    }

    /// Scaled dot-product attention `softmax(Q·Kᵀ·scale)·V` over `[batch, heads, seq, head_dim]`.
    fn fused_attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        scale: f64,
    ) -> FloatTensor<Self> {
        Self::fused_attention_with_probs(q, k, v, scale).0
    }

    /// [`FusedOps::fused_attention`] and the attention probabilities `[batch, heads, seq, seq]`.
    fn fused_attention_with_probs(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        scale: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let scores = Self::float_mul_scalar(Self::float_matmul(q, Self::float_swap_dims(k, 2, 3)), scale.into());
        let max = Self::float_max_dim(scores.clone(), 3);
        let exp = Self::float_exp(Self::float_sub(scores, max));
        let probs = Self::float_div(exp.clone(), Self::float_sum_dim(exp, 3));
        (Self::float_matmul(probs.clone(), v), probs)
    }

    /// `(∂L/∂Q, ∂L/∂K, ∂L/∂V)` of [`FusedOps::fused_attention`] given its probabilities and `∂L/∂out`.
    fn fused_attention_backward(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        probs: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        scale: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let dv = Self::float_matmul(Self::float_swap_dims(probs.clone(), 2, 3), grad.clone());
        let dp = Self::float_matmul(grad, Self::float_swap_dims(v, 2, 3));
        let dot = Self::float_sum_dim(Self::float_mul(dp.clone(), probs.clone()), 3);
        let ds = Self::float_mul_scalar(Self::float_mul(probs, Self::float_sub(dp, dot)), scale.into());
        let dq = Self::float_matmul(ds.clone(), k);
        let dk = Self::float_matmul(Self::float_swap_dims(ds, 2, 3), q);
        (dq, dk, dv)
    }

    /// LayerNorm over the last dimension: `(x − mean)/√(var + eps)·gamma + beta`.
    fn fused_layer_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        eps: f64,
    ) -> FloatTensor<Self> {
        Self::layer_norm(x, gamma, Some(beta), eps)
    }

    /// `(∂L/∂x, ∂L/∂gamma, ∂L/∂beta)` of [`FusedOps::fused_layer_norm`] given `∂L/∂y`.
    fn fused_layer_norm_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        eps: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        use burn::backend::TensorMetadata;
        let shape = x.shape();
        let last = shape.num_dims() - 1;
        let d = shape[last];
        let rows = shape.num_elements() / d.max(1);
        let flat = |t: FloatTensor<Self>| Self::float_reshape(t, burn::tensor::Shape::new([rows, d]));
        let (x, grad) = (flat(x), flat(grad));
        let gamma = Self::float_reshape(gamma, burn::tensor::Shape::new([1, d]));
        let mean = Self::float_mean_dim(x.clone(), 1);
        let centered = Self::float_sub(x, mean);
        let var = Self::float_mean_dim(Self::float_mul(centered.clone(), centered.clone()), 1);
        let rstd = Self::float_recip(Self::float_sqrt(Self::float_add_scalar(var, eps.into())));
        let x_hat = Self::float_mul(centered, rstd.clone());
        let g_hat = Self::float_mul(grad.clone(), gamma);
        let mean_g = Self::float_mean_dim(g_hat.clone(), 1);
        let mean_gx = Self::float_mean_dim(Self::float_mul(g_hat.clone(), x_hat.clone()), 1);
        let dx = Self::float_mul(
            rstd,
            Self::float_sub(Self::float_sub(g_hat, mean_g), Self::float_mul(x_hat.clone(), mean_gx)),
        );
        let dgamma = Self::float_sum_dim(Self::float_mul(grad.clone(), x_hat), 0);
        let dbeta = Self::float_sum_dim(grad, 0);
        (
            Self::float_reshape(dx, shape),
            Self::float_reshape(dgamma, burn::tensor::Shape::new([d])),
            Self::float_reshape(dbeta, burn::tensor::Shape::new([d])),
        )
    }
}

/// Whether `device` is Burn's CPU backend (flex, with or without autodiff), where our kernels run.
pub fn is_cpu_backend(device: &Device) -> bool {
    matches!(device.clone().inner().as_dispatch(), DispatchDevice::Flex(_))
}

/// Whether `tensor` lives where our kernels run: float32 on the flex backend (with or without
/// autodiff).
pub(crate) fn runs_fused<const D: usize>(tensor: &Tensor<D>) -> bool {
    tensor.dtype() == DType::F32 && is_cpu_backend(&tensor.device())
}

/// The exact (erf) GELU, equal to `burn::tensor::activation::gelu` within float rounding.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if runs_fused(&x) {
        Tensor::from_dispatch(<Dispatch as FusedOps>::fused_gelu(x.into_dispatch()))
    } else {
        activation::gelu(x)
    }
}

/// `x·W + b` through `linear_math` when every operand runs fused (the caller checks
/// [`runs_fused`] and the dtypes).
pub(crate) fn fused_linear<const D: usize>(x: Tensor<D>, weight: Tensor<2>, bias: Tensor<1>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as FusedOps>::fused_linear(
        x.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
    ))
}

/// LayerNorm through `layer_norm_math` when every operand runs fused (the caller checks).
pub(crate) fn fused_layer_norm<const D: usize>(x: Tensor<D>, gamma: Tensor<1>, beta: Tensor<1>, eps: f64) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as FusedOps>::fused_layer_norm(
        x.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        eps,
    ))
}

/// Scaled dot-product attention without mask over `[batch, heads, seq, head_dim]` tensors,
/// through `attention_math` where it runs. NaN and infinite scores propagate as in
/// `torch.softmax`.
pub fn attention(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>, scale: f64) -> Tensor<4> {
    if runs_fused(&q) && k.dtype() == DType::F32 && v.dtype() == DType::F32 {
        Tensor::from_dispatch(<Dispatch as FusedOps>::fused_attention(
            q.into_dispatch(),
            k.into_dispatch(),
            v.into_dispatch(),
            scale,
        ))
    } else {
        let options = burn::tensor::ops::AttentionModuleOptions { scale: Some(scale), softcap: None, is_causal: false };
        let precision = crate::precision::current();
        if precision.is_reduced() && q.dtype() == DType::F32 {
            let dtype = precision.dtype();
            let out = burn::tensor::module::attention(q.cast(dtype), k.cast(dtype), v.cast(dtype), None, None, options);
            return out.cast(DType::F32);
        }
        burn::tensor::module::attention(q, k, v, None, None, options)
    }
}
