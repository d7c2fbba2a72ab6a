//! Stochastic depth (Huang et al., 2016), "drop path" in timm and DeiT: while training, each
//! residual branch of a block (attention, MLP) is dropped for a whole sample with some
//! probability, and kept branches are scaled by `1 / keep` (timm's `DropPath` with
//! `scale_by_keep`). The rate rises linearly over the layers from 0 to `rate` (timm's
//! `torch.linspace(0, drop_path_rate, depth)`). It has no weights: models with and without it
//! have the same checkpoint, and `transformers`' ViT (which has no drop path) loads it.
//!
//! The per-sample draws come from `seed` (one per training step), not from the backend's
//! random generator, so a resumed run draws exactly what the uninterrupted one did.

use burn::tensor::{Device, Tensor, TensorData};

/// Stochastic depth of one training forward pass.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StochasticDepth {
    /// The drop probability of the last layer's branches (timm's `drop_path_rate`).
    pub rate: f64,
    /// The key of this pass's draws (e.g. derived from the run seed and the step).
    pub seed: u64,
    /// The position of the batch's first sample among the pass's draws: a device training share
    /// `d` of a micro-batch draws what those samples draw on one device (0 on one device).
    pub first_sample: usize,
}

/// Which residual branch of a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Branch {
    /// `h + attention(layernorm_before(h))`.
    Attention = 0,
    /// `h + mlp(layernorm_after(h))`.
    Mlp = 1,
}

/// A stateless 64-bit mix (SplitMix64's finaliser).
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl StochasticDepth {
    /// The drop probability of layer `layer` (0-based) of `layers`.
    pub fn layer_rate(&self, layer: usize, layers: usize) -> f64 {
        if layers <= 1 { 0.0 } else { self.rate * layer as f64 / (layers - 1) as f64 }
    }

    /// Whether sample `sample` keeps `branch` of layer `layer`, for a drop probability `p`.
    pub fn keeps(&self, layer: usize, branch: Branch, sample: usize, p: f64) -> bool {
        let sample = (sample + self.first_sample) as u64;
        let key = mix(mix(mix(self.seed ^ ((layer as u64) << 8) ^ branch as u64)) ^ sample);
        let uniform = (key >> 11) as f64 / (1u64 << 53) as f64;
        uniform >= p
    }

    /// The `[batch, 1, 1]` factors of `branch` in layer `layer` of `layers`: `1 / keep` for the
    /// samples that keep it, 0 for the others; `None` where the layer drops nothing.
    pub fn branch_scale(
        &self,
        layer: usize,
        layers: usize,
        branch: Branch,
        batch: usize,
        device: &Device,
    ) -> Option<Tensor<3>> {
        let p = self.layer_rate(layer, layers);
        if p <= 0.0 {
            return None;
        }
        let keep = 1.0 - p;
        let scale = if keep > 0.0 { (1.0 / keep) as f32 } else { 0.0 };
        let values: Vec<f32> = (0..batch).map(|i| if self.keeps(layer, branch, i, p) { scale } else { 0.0 }).collect();
        Some(Tensor::from_data(TensorData::new(values, [batch, 1, 1]), device))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_rise_linearly_as_timm() {
        let sd = StochasticDepth { rate: 0.3, seed: 1, first_sample: 0 };
        let rates: Vec<f64> = (0..4).map(|i| sd.layer_rate(i, 4)).collect();
        for (got, want) in rates.iter().zip([0.0, 0.1, 0.2, 0.3]) {
            assert!((got - want).abs() < 1e-12, "{rates:?}");
        }
        assert_eq!(sd.layer_rate(0, 1), 0.0, "one layer: linspace(0, r, 1) = [0]");
        assert!(sd.branch_scale(0, 4, Branch::Attention, 8, &Device::flex()).is_none());
    }

    #[test]
    fn a_share_of_a_micro_batch_draws_what_its_samples_draw_on_one_device() {
        let whole = StochasticDepth { rate: 0.5, seed: 5, first_sample: 0 };
        let share = StochasticDepth { first_sample: 8, ..whole };
        for sample in 0..8 {
            for layer in 0..4 {
                assert_eq!(
                    share.keeps(layer, Branch::Mlp, sample, 0.5),
                    whole.keeps(layer, Branch::Mlp, sample + 8, 0.5)
                );
            }
        }
    }

    #[test]
    fn draws_are_seeded_independent_and_at_the_rate() {
        let device = Device::flex();
        let sd = StochasticDepth { rate: 0.5, seed: 42, first_sample: 0 };
        let values = |sd: &StochasticDepth, branch| -> Vec<f32> {
            sd.branch_scale(1, 2, branch, 4000, &device).unwrap().into_data().try_to_vec().unwrap()
        };
        let a = values(&sd, Branch::Attention);
        assert_eq!(a, values(&sd, Branch::Attention), "same seed, same draws");
        assert_ne!(a, values(&sd, Branch::Mlp), "branches draw independently");
        assert_ne!(a, values(&StochasticDepth { seed: 43, ..sd }, Branch::Attention), "seeds differ");
        assert!(a.iter().all(|&v| v == 0.0 || v == 2.0), "kept samples are scaled by 1 / keep");
        let dropped = a.iter().filter(|&&v| v == 0.0).count() as f64 / a.len() as f64;
        assert!((dropped - 0.5).abs() < 0.03, "dropped share {dropped}");
        let mean = a.iter().map(|&v| v as f64).sum::<f64>() / a.len() as f64;
        assert!((mean - 1.0).abs() < 0.06, "the expectation is kept: {mean}");
    }

    #[test]
    fn a_fully_dropped_layer_is_skipped_and_rate_zero_changes_nothing() {
        use crate::{ViTConfig, ViTForwardOptions, ViTModel};
        let device = Device::flex();
        let config = ViTConfig {
            hidden_size: 16,
            num_hidden_layers: 2,
            num_attention_heads: 2,
            intermediate_size: 32,
            image_size: 8,
            patch_size: 4,
            ..Default::default()
        };
        let model = ViTModel::new(&config, false, false, &device);
        let pixels = Tensor::<4>::random([3, 3, 8, 8], burn::tensor::Distribution::Default, &device);
        let run = |model: &ViTModel, sd: Option<StochasticDepth>| -> Vec<f32> {
            let options = ViTForwardOptions { stochastic_depth: sd, ..Default::default() };
            model.forward_with(pixels.clone(), options).unwrap().last_hidden_state.into_data().try_to_vec().unwrap()
        };
        let plain = run(&model, None);
        assert_eq!(run(&model, Some(StochasticDepth { rate: 0.0, seed: 9, first_sample: 0 })), plain);
        // Rate 1: layer 0 drops nothing (rate 0), layer 1 drops both branches of every sample, so
        // the output is that of the first layer alone.
        let mut first_only = model.clone();
        first_only.encoder.layer.truncate(1);
        let dropped = run(&model, Some(StochasticDepth { rate: 1.0, seed: 9, first_sample: 0 }));
        let expected = run(&first_only, None);
        assert!(dropped.iter().zip(&expected).all(|(a, b)| (a - b).abs() < 1e-6));
        assert!(plain.iter().zip(&expected).any(|(a, b)| (a - b).abs() > 1e-3), "layer 1 matters without it");
    }
}
