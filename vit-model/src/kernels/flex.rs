//! The flex (CPU) implementation of [`FusedOps`].

use burn::backend::flex::{Flex, FlexTensor, Layout};
use burn::backend::ops::ActivationOps;
use burn::tensor::{Bytes, DType, Shape};

use super::FusedOps;
use super::simd_math;

/// A contiguous float32 view of `tensor`, copying only when its layout is not contiguous.
fn contiguous_f32(tensor: FlexTensor) -> FlexTensor {
    if tensor.as_slice::<f32>().is_some() { tensor } else { tensor.to_contiguous() }
}

fn from_vec(values: Vec<f32>, shape: Shape) -> FlexTensor {
    FlexTensor::new(Bytes::from_elems(values), Layout::contiguous(shape), DType::F32)
}

impl FusedOps for Flex {
    fn fused_gelu(x: FlexTensor) -> FlexTensor {
        if x.dtype() != DType::F32 {
            return <Flex as ActivationOps<Flex>>::gelu(x);
        }
        let x = contiguous_f32(x);
        let shape = x.layout().shape().clone();
        let values = simd_math::gelu(x.as_slice::<f32>().expect("contiguous float32"));
        from_vec(values, shape)
    }

    fn fused_gelu_backward(x: FlexTensor, grad: FlexTensor) -> FlexTensor {
        if x.dtype() != DType::F32 || grad.dtype() != DType::F32 || x.layout().shape() != grad.layout().shape() {
            return <Flex as ActivationOps<Flex>>::gelu_backward(x, grad);
        }
        let x = contiguous_f32(x);
        let grad = contiguous_f32(grad);
        let shape = x.layout().shape().clone();
        let values = simd_math::gelu_backward(
            x.as_slice::<f32>().expect("contiguous float32"),
            grad.as_slice::<f32>().expect("contiguous float32"),
        );
        from_vec(values, shape)
    }
}
