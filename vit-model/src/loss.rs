//! Losses of the heads, as PyTorch computes them (mean reduction).

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};

/// `torch.nn.functional.cross_entropy(logits, targets, label_smoothing=smoothing)`:
/// `[B, C]` logits and `[B]` class indices → a scalar `[1]`.
pub fn cross_entropy(logits: Tensor<2>, targets: Tensor<1, Int>, smoothing: f32) -> Tensor<1> {
    let [_, classes] = logits.dims();
    let log_probs = log_softmax(logits, 1);
    let nll = log_probs.clone().gather(1, targets.unsqueeze_dim::<2>(1)).neg().mean();
    if smoothing > 0.0 {
        let uniform = log_probs.neg().sum_dim(1).mean().div_scalar(classes as f64);
        nll.mul_scalar(1.0 - smoothing as f64) + uniform.mul_scalar(smoothing as f64)
    } else {
        nll
    }
}

/// `torch.nn.BCEWithLogitsLoss()`: element-wise binary cross-entropy on logits, averaged.
pub fn binary_cross_entropy_with_logits(logits: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
    // max(x, 0) - x·y + log(1 + exp(-|x|)), stable for large |x|.
    let positive = logits.clone().clamp_min(0.0);
    let log_term = logits.clone().abs().neg().exp().log1p();
    (positive - logits * targets + log_term).mean()
}

/// `torch.nn.MSELoss()`.
pub fn mse<const D: usize>(predictions: Tensor<D>, targets: Tensor<D>) -> Tensor<1> {
    (predictions - targets).square().mean()
}

/// timm's `SoftTargetCrossEntropy`: `mean over the batch of sum_c(-targets * log_softmax(logits))`,
/// for `[B, C]` logits and `[B, C]` soft targets (e.g. Mixup/CutMix targets, rows summing to 1)
/// → a scalar `[1]`. The log-softmax is Burn's stable one (max-shifted), as in [`cross_entropy`].
pub fn soft_target_cross_entropy(logits: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
    (log_softmax(logits, 1).neg() * targets).sum_dim(1).mean()
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Int, Tensor, TensorData};

    use super::*;

    fn scalar(t: Tensor<1>) -> f32 {
        t.into_scalar::<f32>()
    }

    fn matrix(values: Vec<f32>, shape: [usize; 2], device: &Device) -> Tensor<2> {
        Tensor::from_data(TensorData::new(values, shape), device)
    }

    #[test]
    fn soft_target_cross_entropy_by_hand() {
        let device = Device::flex();
        // Row 0: logits (0, 0) → log p = (-ln 2, -ln 2); targets (0.3, 0.7) → ln 2.
        // Row 1: logits (0, ln 3) → p = (1/4, 3/4); target (1, 0) → ln 4.
        // Row 2: logits (1000, 0), target (0, 1) → 1000 (no overflow).
        let logits = matrix(vec![0.0, 0.0, 0.0, 3f32.ln(), 1000.0, 0.0], [3, 2], &device);
        let targets = matrix(vec![0.3, 0.7, 1.0, 0.0, 0.0, 1.0], [3, 2], &device);
        let loss = soft_target_cross_entropy(logits, targets);
        assert_eq!(loss.dims(), [1]);
        let want = (2f64.ln() + 4f64.ln() + 1000.0) / 3.0;
        let got = scalar(loss);
        assert!((got as f64 - want).abs() < 1e-4, "{got} vs {want}");
    }

    #[test]
    fn soft_target_cross_entropy_matches_cross_entropy_on_one_hot_and_smoothed_targets() {
        let device = Device::flex();
        let (batch, classes) = (6, 5);
        // Deterministic logits spread over about [-5, 5].
        let values = (0..batch * classes).map(|i| ((i * 37 % 23) as f32 - 11.0) * 0.45).collect();
        let logits = matrix(values, [batch, classes], &device);
        let labels = [4i64, 0, 2, 2, 1, 3];
        let label_tensor = Tensor::<1, Int>::from_data(TensorData::new(labels.to_vec(), [batch]), &device);
        for smoothing in [0.0f32, 0.1, 0.3] {
            // timm's smoothed one-hot: off = s / C, on = 1 - s + off.
            let off = smoothing / classes as f32;
            let on = 1.0 - smoothing + off;
            let targets: Vec<f32> =
                labels.iter().flat_map(|&l| (0..classes).map(move |c| if c as i64 == l { on } else { off })).collect();
            let soft = scalar(soft_target_cross_entropy(logits.clone(), matrix(targets, [batch, classes], &device)));
            let hard = scalar(cross_entropy(logits.clone(), label_tensor.clone(), smoothing));
            assert!((soft - hard).abs() <= 1e-6, "smoothing {smoothing}: {soft} vs {hard}");
        }
        // And it is not trivially equal: other targets give another loss.
        let uniform = matrix(vec![1.0 / classes as f32; batch * classes], [batch, classes], &device);
        let soft = scalar(soft_target_cross_entropy(logits.clone(), uniform));
        let hard = scalar(cross_entropy(logits, label_tensor, 0.0));
        assert!((soft - hard).abs() > 1e-3, "{soft} vs {hard}");
    }
}
