//! NaN and infinite attention scores propagate as in PyTorch on both attention paths: the fused
//! kernel (no attentions asked for) and Burn's ops (`output_attentions`) give NaN in the same
//! places and equal values elsewhere.

use burn::module::Param;
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use vit_model::{ViTConfig, ViTForwardOptions, ViTModel};

const HEADS: usize = 4;
const HIDDEN: usize = 32;

fn tiny_config() -> ViTConfig {
    ViTConfig {
        hidden_size: HIDDEN,
        num_hidden_layers: 2,
        num_attention_heads: HEADS,
        intermediate_size: 64,
        image_size: 16,
        patch_size: 4,
        encoder_stride: 4,
        ..ViTConfig::default()
    }
}

/// A `[HIDDEN]` bias whose entries for head `h` are `per_head[h]`.
fn head_bias(per_head: [f32; HEADS], device: &Device) -> Param<Tensor<1>> {
    let head_dim = HIDDEN / HEADS;
    let values: Vec<f32> = (0..HIDDEN).map(|i| per_head[i / head_dim]).collect();
    Param::from_tensor(Tensor::from_data(TensorData::new(values, [HIDDEN]), device))
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

/// Same NaN positions, and values within `1e-5` elsewhere.
fn assert_same_nans(what: &str, fused: &[f32], eager: &[f32]) {
    assert_eq!(fused.len(), eager.len());
    for (i, (a, b)) in fused.iter().zip(eager).enumerate() {
        assert_eq!(a.is_nan(), b.is_nan(), "{what}[{i}]: fused {a}, Burn {b}");
        assert!(a.is_nan() || (a - b).abs() <= 1e-5 * b.abs().max(1.0), "{what}[{i}]: fused {a}, Burn {b}");
    }
}

#[test]
fn overflowing_scores_give_nan_in_the_same_places_on_both_paths() {
    let device = Device::flex();
    device.seed(3);
    let mut model = ViTModel::new(&tiny_config(), false, false, &device);
    // Head 0: query and key ≈ +1e30, every score +∞ (∞ − ∞ = NaN in the softmax). Head 1: query
    // ≈ +1e30, key ≈ −1e30, every score −∞ (a row of only −∞ is NaN). Heads 2 and 3 are normal.
    let attention = &mut model.encoder.layer[0].attention.attention;
    attention.query.bias = Some(head_bias([1e30, 1e30, 0.0, 0.0], &device));
    attention.key.bias = Some(head_bias([1e30, -1e30, 0.0, 0.0], &device));

    let (batch, seq) = (2, 5);
    let hidden = Tensor::<3>::random([batch, seq, HIDDEN], Distribution::Normal(0.0, 1.0), &device);
    let (fused, none) = attention.forward(hidden.clone(), None, false);
    assert!(none.is_none());
    let (eager, probs) = attention.forward(hidden, None, true);
    let (fused, eager) = (values(fused), values(eager));
    assert_same_nans("context", &fused, &eager);
    let head_dim = HIDDEN / HEADS;
    for (i, v) in fused.iter().enumerate() {
        let head = (i % HIDDEN) / head_dim;
        assert_eq!(v.is_nan(), head < 2, "context[{i}] (head {head}) = {v}");
    }
    let probs = values(probs.expect("probabilities"));
    for (i, p) in probs.iter().enumerate() {
        let head = (i / (seq * seq)) % HEADS;
        assert_eq!(p.is_nan(), head < 2, "probs[{i}] (head {head}) = {p}");
    }

    // Through the whole model the NaN heads reach every feature via the output projection.
    let x = Tensor::<4>::random([batch, 3, 16, 16], Distribution::Normal(0.0, 1.0), &device);
    let fused = model.forward_with(x.clone(), ViTForwardOptions::default()).unwrap().last_hidden_state;
    let options = ViTForwardOptions { output_attentions: true, ..Default::default() };
    let eager = model.forward_with(x, options).unwrap().last_hidden_state;
    let (fused, eager) = (values(fused), values(eager));
    assert_same_nans("last_hidden_state", &fused, &eager);
    assert!(fused.iter().all(|v| v.is_nan()));
}

#[test]
fn finite_scores_agree_on_both_paths() {
    let device = Device::flex();
    device.seed(4);
    let model = ViTModel::new(&tiny_config(), false, false, &device);
    let x = Tensor::<4>::random([2, 3, 16, 16], Distribution::Normal(0.0, 1.0), &device);
    let fused = model.forward_with(x.clone(), ViTForwardOptions::default()).unwrap().last_hidden_state;
    let options = ViTForwardOptions { output_attentions: true, ..Default::default() };
    let eager = model.forward_with(x, options).unwrap().last_hidden_state;
    let (fused, eager) = (values(fused), values(eager));
    assert!(fused.iter().all(|v| v.is_finite()));
    assert_same_nans("last_hidden_state", &fused, &eager);
}
