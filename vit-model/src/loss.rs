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
