//! The fused kernels against Burn's own ops, values and gradients.

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
    ours_grad.into_data().assert_approx_eq::<f32>(&reference_grad.into_data(), burn::tensor::Tolerance::absolute(2e-6));
}

#[test]
fn linear_and_its_gradients_equal_burns() {
    use burn::nn::LinearConfig;
    let device = Device::flex().autodiff();
    let layer = LinearConfig::new(48, 40).init(&device);
    let x = Tensor::<3>::random([3, 17, 48], Distribution::Normal(0.0, 1.0), &device).require_grad();
    let weights = Tensor::<3>::random([3, 17, 40], Distribution::Default, &device);

    let run = |fused: bool| {
        let y =
            if fused { crate::FusedLinear::from(layer.clone()).forward(x.clone()) } else { layer.forward(x.clone()) };
        let grads = (y.clone() * weights.clone()).sum().backward();
        let gw = layer.weight.grad(&grads).unwrap();
        let gb = layer.bias.as_ref().unwrap().grad(&grads).unwrap();
        (y, x.grad(&grads).unwrap(), gw, gb)
    };
    let (y, gx, gw, gb) = run(true);
    let (ry, rgx, rgw, rgb) = run(false);
    let tol = burn::tensor::Tolerance::absolute(1e-5);
    y.into_data().assert_approx_eq::<f32>(&ry.into_data(), tol);
    gx.into_data().assert_approx_eq::<f32>(&rgx.into_data(), tol);
    gw.into_data().assert_approx_eq::<f32>(&rgw.into_data(), tol);
    gb.into_data().assert_approx_eq::<f32>(&rgb.into_data(), tol);
}

#[test]
fn layer_norm_and_its_gradients_equal_burns() {
    use burn::nn::LayerNormConfig;
    let device = Device::flex().autodiff();
    let eps = 1e-12;
    let mut ln = LayerNormConfig::new(40).with_epsilon(eps).init(&device);
    ln.gamma = burn::module::Param::from_tensor(Tensor::random([40], Distribution::Default, &device) + 0.5);
    ln.beta = Some(burn::module::Param::from_tensor(Tensor::random([40], Distribution::Default, &device)));
    let x = Tensor::<3>::random([3, 17, 40], Distribution::Normal(0.5, 2.0), &device).require_grad();
    let weights = Tensor::<3>::random([3, 17, 40], Distribution::Default, &device);

    let run = |fused: bool| {
        let y = if fused {
            crate::FusedLayerNorm { gamma: ln.gamma.clone(), beta: ln.beta.clone(), epsilon: eps }.forward(x.clone())
        } else {
            ln.forward(x.clone())
        };
        let grads = (y.clone() * weights.clone()).sum().backward();
        let gg = ln.gamma.grad(&grads).unwrap();
        let gb = ln.beta.as_ref().unwrap().grad(&grads).unwrap();
        (y, x.grad(&grads).unwrap(), gg, gb)
    };
    let (y, gx, gg, gb) = run(true);
    let (ry, rgx, rgg, rgb) = run(false);
    let tol = burn::tensor::Tolerance::absolute(1e-5);
    y.into_data().assert_approx_eq::<f32>(&ry.into_data(), tol);
    gx.into_data().assert_approx_eq::<f32>(&rgx.into_data(), tol);
    gg.into_data().assert_approx_eq::<f32>(&rgg.into_data(), tol);
    gb.into_data().assert_approx_eq::<f32>(&rgb.into_data(), tol);
}

#[test]
fn attention_and_its_gradients_equal_burns() {
    let device = Device::flex().autodiff();
    let (b, s, h, dh) = (2, 13, 3, 8);
    // Heads as a view of a [b, s, h·dh] projection, as the model makes them.
    let heads = |t: Tensor<3>| t.reshape([b, s, h, dh]).swap_dims(1, 2);
    let x = |seed: f64| Tensor::<3>::random([b, s, h * dh], Distribution::Normal(seed, 1.0), &device).require_grad();
    let (xq, xk, xv) = (x(0.0), x(0.1), x(-0.1));
    let weights = Tensor::<4>::random([b, h, s, dh], Distribution::Default, &device);
    let scale = (dh as f64).powf(-0.5);

    let run = |fused: bool| {
        let (q, k, v) = (heads(xq.clone()), heads(xk.clone()), heads(xv.clone()));
        let out = if fused {
            super::attention(q, k, v, scale)
        } else {
            activation::softmax(q.matmul(k.swap_dims(2, 3)).mul_scalar(scale), 3).matmul(v)
        };
        let grads = (out.clone() * weights.clone()).sum().backward();
        (out, xq.grad(&grads).unwrap(), xk.grad(&grads).unwrap(), xv.grad(&grads).unwrap())
    };
    let (o, gq, gk, gv) = run(true);
    let (ro, rgq, rgk, rgv) = run(false);
    let tol = burn::tensor::Tolerance::absolute(2e-6);
    o.into_data().assert_approx_eq::<f32>(&ro.into_data(), tol);
    gq.into_data().assert_approx_eq::<f32>(&rgq.into_data(), tol);
    gk.into_data().assert_approx_eq::<f32>(&rgk.into_data(), tol);
    gv.into_data().assert_approx_eq::<f32>(&rgv.into_data(), tol);
}

#[test]
fn non_contiguous_input_is_handled() {
    let device = Device::flex();
    let x = Tensor::<2>::random([64, 48], Distribution::Normal(0.0, 2.0), &device);
    let t = x.clone().swap_dims(0, 1);
    let ours = super::gelu(t.clone());
    ours.into_data().assert_approx_eq::<f32>(&activation::gelu(t).into_data(), burn::tensor::Tolerance::absolute(2e-6));
}

#[test]
fn fused_softmax_propagates_nan_and_infinities_as_burn() {
    use burn::tensor::TensorData;
    let (nan, inf) = (f32::NAN, f32::INFINITY);
    // Rows long enough for the vector paths, with the special values at various places.
    let n = 37;
    let specials: [&[(usize, f32)]; 9] = [
        &[],
        &[(3, nan)],
        &[(36, nan), (0, -inf)],
        &[(17, inf)],
        &[(1, inf), (20, inf)],
        &[(5, -inf), (30, -inf)],
        &[(2, inf), (4, nan), (6, -inf)],
        &[(0, 1e30), (1, -1e30)],
        &[],
    ];
    let mut data: Vec<f32> = Vec::new();
    for (r, row_specials) in specials.iter().enumerate() {
        let mut row: Vec<f32> = (0..n).map(|i| ((i * 31 + r * 7) % 17) as f32 / 3.0 - 2.0).collect();
        for &(i, v) in row_specials.iter() {
            row[i] = v;
        }
        data.extend(row);
    }
    // The last row: every entry −∞.
    let last = data.len() - n;
    data[last..].fill(-inf);

    let reference = activation::softmax(
        Tensor::<2>::from_data(TensorData::new(data.clone(), [specials.len(), n]), &Device::flex()),
        1,
    )
    .into_data()
    .try_to_vec::<f32>()
    .unwrap();
    let mut ours = data.clone();
    super::simd_math::softmax_rows(&mut ours, n);
    for (i, (a, b)) in ours.iter().zip(&reference).enumerate() {
        let (row, col) = (i / n, i % n);
        assert_eq!(a.is_nan(), b.is_nan(), "row {row} col {col}: fused {a}, burn {b}");
        if !a.is_nan() {
            assert!((a - b).abs() <= 1e-6, "row {row} col {col}: fused {a}, burn {b}");
        }
    }
    // As torch.softmax: NaN or +∞ anywhere, or only −∞, makes the whole row NaN; −∞ alone gives 0.
    let row = |r: usize| &ours[r * n..(r + 1) * n];
    for r in [1, 2, 3, 4, 6, 8] {
        assert!(row(r).iter().all(|v| v.is_nan()), "row {r}: {:?}", row(r));
    }
    for r in [0, 5, 7] {
        assert!(row(r).iter().all(|v| v.is_finite()), "row {r}: {:?}", row(r));
    }
    assert_eq!((row(5)[5], row(5)[30]), (0.0, 0.0));
    assert_eq!((row(7)[0], row(7)[1]), (1.0, 0.0));
}

/// `t`'s values rounded to bfloat16, as a float32 tensor without autodiff history.
fn bf16_values<const D: usize>(t: &Tensor<D>) -> Tensor<D> {
    t.clone().detach().cast(burn::tensor::DType::BF16).cast(burn::tensor::DType::F32)
}

/// On every bfloat16 kernel (AMX only where the CPU has it; elsewhere that run repeats the
/// rounded float32 path).
#[test]
fn bf16_linear_multiplies_rounded_operands_forward_and_backward() {
    use super::bf16_tiles::{Bf16Kernel, use_bf16_kernel};
    use crate::precision::{Precision, autocast};
    use burn::nn::LinearConfig;
    let device = Device::flex().autodiff();
    let layer = crate::FusedLinear::from(LinearConfig::new(48, 40).init(&device));
    let x = Tensor::<3>::random([3, 17, 48], Distribution::Normal(0.0, 1.0), &device).require_grad();
    let g = Tensor::<3>::random([3, 17, 40], Distribution::Normal(0.0, 1.0), &device);
    // References in float32 from the rounded operands: y = r(x)·r(W) + b, ∂x = r(g)·r(W)ᵀ,
    // ∂W = r(x)ᵀ·r(g) (summed over the batch).
    let (rx, rw, rg) = (bf16_values(&x), bf16_values(&layer.weight.val()), bf16_values(&g));
    let b = layer.bias.as_ref().unwrap().val().detach();
    let ry = rx.clone().matmul(rw.clone().unsqueeze()) + b.unsqueeze();
    let rgx = rg.clone().matmul(rw.clone().transpose().unsqueeze());
    let rgw = rx.reshape([51, 48]).transpose().matmul(rg.reshape([51, 40]));
    let tol = burn::tensor::Tolerance::absolute(2e-5);
    for kernel in [Bf16Kernel::RoundedF32, Bf16Kernel::EmulatedTiles, Bf16Kernel::Amx] {
        let (y, gx, gw) = {
            let _kernel = use_bf16_kernel(kernel);
            let _bf16 = autocast(Precision::Bf16);
            let y = layer.forward(x.clone());
            let grads = (y.clone() * g.clone()).sum().backward();
            (y, x.grad(&grads).unwrap(), layer.weight.grad(&grads).unwrap())
        };
        y.clone().detach().into_data().assert_approx_eq::<f32>(&ry.clone().into_data(), tol);
        gx.into_data().assert_approx_eq::<f32>(&rgx.clone().into_data(), tol);
        gw.into_data().assert_approx_eq::<f32>(&rgw.clone().into_data(), tol);
        // And the rounding matters: float32 differs by more than the tolerance.
        let f32_y = layer.forward(x.clone()).detach();
        let diff = (f32_y - y.detach()).abs().max().into_scalar::<f32>();
        assert!(diff > 1e-4, "{kernel}: bf16 equals float32 ({diff})");
    }
}

#[test]
fn reduced_precision_attention_rounds_its_operands() {
    use crate::precision::{Precision, autocast};
    let device = Device::flex();
    let shape = [2, 3, 9, 8];
    let [q, k, v] = [0, 1, 2].map(|_| Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device));
    let out = {
        let _bf16 = autocast(Precision::Bf16);
        super::attention(q.clone(), k.clone(), v.clone(), 0.35)
    };
    let reference = super::attention(bf16_values(&q), bf16_values(&k), bf16_values(&v), 0.35);
    out.into_data().assert_approx_eq::<f32>(&reference.into_data(), burn::tensor::Tolerance::absolute(1e-5));
}
