//! The flex (CPU) implementation of [`FusedOps`].

use burn::backend::flex::{Flex, FlexTensor, Layout};
use burn::backend::ops::{ActivationOps, ModuleOps};
use burn::tensor::{Bytes, DType, Shape};

use super::FusedOps;
use super::attention_math::{self, Dims, HeadsView};
use super::bf16_tiles::active_bf16_kernel;
use super::linear_math::Products;
use super::low_precision::rounded;
use super::{layer_norm_math, linear_math, simd_math};
use crate::precision::{self, Precision};

/// A contiguous float32 view of `tensor`, copying only when its layout is not contiguous.
fn contiguous_f32(tensor: FlexTensor) -> FlexTensor {
    if tensor.as_slice::<f32>().is_some() { tensor } else { tensor.to_contiguous() }
}

fn is_f32(tensors: &[&FlexTensor]) -> bool {
    tensors.iter().all(|t| t.dtype() == DType::F32)
}

/// `(rows, features)` of a tensor seen as rows of its last dimension.
fn rows_of(tensor: &FlexTensor) -> (usize, usize) {
    let shape = tensor.layout().shape();
    let last = shape[shape.num_dims() - 1];
    (shape.num_elements().checked_div(last).unwrap_or(0), last)
}

fn slice(tensor: &FlexTensor) -> &[f32] {
    tensor.as_slice::<f32>().expect("a contiguous float32 tensor")
}

/// A `[batch, heads, seq, head_dim]` float32 view of `tensor`, or `None` when it is not one or
/// its strides are not all positive (then a contiguous copy is viewable).
fn heads_view(tensor: &FlexTensor) -> Option<HeadsView<'_>> {
    let layout = tensor.layout();
    let shape = layout.shape();
    if tensor.dtype() != DType::F32 || shape.num_dims() != 4 || !layout.has_positive_strides() {
        return None;
    }
    let st = layout.strides();
    let strides = [st[0] as usize, st[1] as usize, st[2] as usize, st[3] as usize];
    let dims = Dims::new(shape[0], shape[1], shape[2], shape[3]);
    HeadsView::new(tensor.storage::<f32>(), layout.start_offset(), strides, dims)
}

/// A strided view of `tensor`, or of a contiguous copy of it.
fn viewable(tensor: FlexTensor) -> FlexTensor {
    if heads_view(&tensor).is_some() { tensor } else { tensor.to_contiguous() }
}

/// A `[batch, heads, seq, head_dim]` tensor over a buffer in `[batch, seq, heads, head_dim]` order.
fn from_merged(values: Vec<f32>, dims: Dims) -> FlexTensor {
    let shape = Shape::new([dims.batch(), dims.heads(), dims.seq(), dims.head_dim()]);
    let strides = dims.merged_strides().iter().map(|&s| s as isize).collect();
    FlexTensor::new(Bytes::from_elems(values), Layout::new(shape, strides, 0), DType::F32)
}

fn from_vec(values: Vec<f32>, shape: Shape) -> FlexTensor {
    FlexTensor::new(Bytes::from_elems(values), Layout::contiguous(shape), DType::F32)
}

/// A matrix-product operand as this thread's [`precision`] sees it: float32 unchanged, else a
/// contiguous copy rounded to bfloat16 or float16 values.
fn operand(tensor: FlexTensor, precision: Precision) -> FlexTensor {
    if !precision.is_reduced() {
        return tensor;
    }
    let tensor = contiguous_f32(tensor);
    let shape = tensor.layout().shape().clone();
    from_vec(rounded(slice(&tensor), precision).into_owned(), shape)
}

/// The kernels of a dense layer's products in `precision`, and the precision their operands are
/// rounded to beforehand: bfloat16 tiles round while packing, the float32 kernels need rounded
/// copies.
fn linear_products(precision: Precision) -> (Products, Precision) {
    match (precision, active_bf16_kernel().tile_unit()) {
        (Precision::Bf16, Some(unit)) => (Products::Bf16Tiles(unit), Precision::F32),
        _ => (Products::F32, precision),
    }
}

impl FusedOps for Flex {
    fn fused_gelu(x: FlexTensor) -> FlexTensor {
        if x.dtype() != DType::F32 {
            return <Flex as ActivationOps<Flex>>::gelu(x);
        }
        let x = contiguous_f32(x);
        let shape = x.layout().shape().clone();
        let values = simd_math::gelu(slice(&x));
        from_vec(values, shape)
    }

    fn fused_gelu_backward(x: FlexTensor, grad: FlexTensor) -> FlexTensor {
        if x.dtype() != DType::F32 || grad.dtype() != DType::F32 || x.layout().shape() != grad.layout().shape() {
            return <Flex as ActivationOps<Flex>>::gelu_backward(x, grad);
        }
        let x = contiguous_f32(x);
        let grad = contiguous_f32(grad);
        let shape = x.layout().shape().clone();
        let values = simd_math::gelu_backward(slice(&x), slice(&grad));
        from_vec(values, shape)
    }

    fn fused_linear(x: FlexTensor, weight: FlexTensor, bias: FlexTensor) -> FlexTensor {
        if !is_f32(&[&x, &weight, &bias]) || weight.layout().shape().num_dims() != 2 {
            return <Flex as ModuleOps<Flex>>::linear(x, weight, Some(bias));
        }
        let (products, p) = linear_products(precision::current());
        let (x, weight, bias) = (operand(x, p), operand(weight, p), contiguous_f32(bias));
        let (x, weight) = (contiguous_f32(x), contiguous_f32(weight));
        let (rows, d_in) = rows_of(&x);
        let d_out = weight.layout().shape()[1];
        let values = linear_math::forward(products, slice(&x), slice(&weight), slice(&bias), rows, d_in, d_out);
        let mut shape = x.layout().shape().clone();
        let last = shape.num_dims() - 1;
        shape[last] = d_out;
        from_vec(values, shape)
    }

    fn fused_linear_grad_operand(grad: FlexTensor) -> FlexTensor {
        if !is_f32(&[&grad]) {
            return grad;
        }
        operand(grad, linear_products(precision::current()).1)
    }

    fn fused_linear_backward_input(weight: FlexTensor, grad: FlexTensor) -> FlexTensor {
        if !is_f32(&[&weight, &grad]) {
            return <Flex as ModuleOps<Flex>>::linear_x_backward(weight, grad);
        }
        let (products, p) = linear_products(precision::current());
        let (weight, grad) = (contiguous_f32(operand(weight, p)), contiguous_f32(grad));
        let (rows, d_out) = rows_of(&grad);
        let d_in = weight.layout().shape()[0];
        let values = linear_math::backward_input(products, slice(&weight), slice(&grad), rows, d_in, d_out);
        let mut shape = grad.layout().shape().clone();
        let last = shape.num_dims() - 1;
        shape[last] = d_in;
        from_vec(values, shape)
    }

    fn fused_linear_backward_weight(x: FlexTensor, grad: FlexTensor) -> FlexTensor {
        if !is_f32(&[&x, &grad]) {
            return <Flex as ModuleOps<Flex>>::linear_weight_backward(x, grad);
        }
        let (products, p) = linear_products(precision::current());
        let (x, grad) = (contiguous_f32(operand(x, p)), contiguous_f32(grad));
        let (rows, d_in) = rows_of(&x);
        let (_, d_out) = rows_of(&grad);
        let values = linear_math::backward_weight(products, slice(&x), slice(&grad), rows, d_in, d_out);
        from_vec(values, Shape::new([d_in, d_out]))
    }

    fn fused_linear_backward_bias(grad: FlexTensor) -> FlexTensor {
        if !is_f32(&[&grad]) {
            return <Flex as ModuleOps<Flex>>::linear_bias_backward(grad);
        }
        let grad = contiguous_f32(grad);
        let (rows, d_out) = rows_of(&grad);
        from_vec(linear_math::backward_bias(slice(&grad), rows, d_out), Shape::new([d_out]))
    }

    fn fused_layer_norm(x: FlexTensor, gamma: FlexTensor, beta: FlexTensor, eps: f64) -> FlexTensor {
        if !is_f32(&[&x, &gamma, &beta]) {
            return <Flex as ModuleOps<Flex>>::layer_norm(x, gamma, Some(beta), eps);
        }
        let (x, gamma, beta) = (contiguous_f32(x), contiguous_f32(gamma), contiguous_f32(beta));
        let (_, d) = rows_of(&x);
        let values = layer_norm_math::forward(slice(&x), slice(&gamma), slice(&beta), d, eps as f32);
        from_vec(values, x.layout().shape().clone())
    }

    fn fused_layer_norm_backward(
        x: FlexTensor,
        gamma: FlexTensor,
        grad: FlexTensor,
        eps: f64,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let (x, gamma, grad) = (contiguous_f32(x), contiguous_f32(gamma), contiguous_f32(grad));
        let (_, d) = rows_of(&x);
        let (dx, dgamma, dbeta) = layer_norm_math::backward(slice(&x), slice(&gamma), slice(&grad), d, eps as f32);
        (from_vec(dx, x.layout().shape().clone()), from_vec(dgamma, Shape::new([d])), from_vec(dbeta, Shape::new([d])))
    }

    fn fused_attention(q: FlexTensor, k: FlexTensor, v: FlexTensor, scale: f64) -> FlexTensor {
        Self::fused_attention_with_probs(q, k, v, scale).0
    }

    fn fused_attention_with_probs(q: FlexTensor, k: FlexTensor, v: FlexTensor, scale: f64) -> (FlexTensor, FlexTensor) {
        let p = precision::current();
        let (q, k, v) = (viewable(operand(q, p)), viewable(operand(k, p)), viewable(operand(v, p)));
        let (Some(qv), Some(kv), Some(vv)) = (heads_view(&q), heads_view(&k), heads_view(&v)) else {
            panic!("fused_attention: query, key and value must be float32 [batch, heads, seq, head_dim] tensors");
        };
        let dims = qv.dims();
        assert!(
            dims == kv.dims() && dims == vv.dims(),
            "fused_attention: query {dims:?}, key {:?} and value {:?} differ in shape",
            kv.dims(),
            vv.dims()
        );
        let (out, probs) = attention_math::forward(qv, kv, vv, scale as f32);
        let probs_shape = Shape::new([dims.batch(), dims.heads(), dims.seq(), dims.seq()]);
        (from_merged(out, dims), from_vec(probs, probs_shape))
    }

    fn fused_attention_backward(
        q: FlexTensor,
        k: FlexTensor,
        v: FlexTensor,
        probs: FlexTensor,
        grad: FlexTensor,
        scale: f64,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let p = precision::current();
        let (q, k, v, grad) = (operand(q, p), operand(k, p), operand(v, p), operand(grad, p));
        let (q, k, v, grad) = (viewable(q), viewable(k), viewable(v), viewable(grad));
        let probs = contiguous_f32(probs);
        let (Some(qv), Some(kv), Some(vv), Some(gv)) =
            (heads_view(&q), heads_view(&k), heads_view(&v), heads_view(&grad))
        else {
            panic!("fused_attention backward: tensors must be float32 [batch, heads, seq, head_dim]");
        };
        let dims = qv.dims();
        let probs_shape = [dims.batch(), dims.heads(), dims.seq(), dims.seq()];
        assert!(
            probs.dtype() == DType::F32 && probs.layout().shape().as_slice() == probs_shape.as_slice(),
            "fused_attention backward: probabilities of shape {:?}, expected {probs_shape:?}",
            probs.layout().shape()
        );
        // `attention_math::backward` checks every extent (and the probabilities' length) again.
        let (dq, dk, dv) = attention_math::backward(qv, kv, vv, slice(&probs), gv, scale as f32);
        (from_merged(dq, dims), from_merged(dk, dims), from_merged(dv, dims))
    }
}
