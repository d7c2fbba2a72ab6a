//! AdamW as HF's Trainer builds it: no weight decay on biases, LayerNorm, position, CLS and mask
//! embeddings; warmup + decay schedule; optional layer-wise lr decay for fine-tuning.

use anyhow::{Result, anyhow};
use burn::module::ParamGroup;
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::optim::{AdamWConfig, ModuleOptimizer};

use super::config::OptimizerSection;
use super::schedule::WarmupSchedule;

/// Parameter paths that get no weight decay.
pub const NO_DECAY_PATTERNS: [&str; 5] =
    [r"\.bias$", r"layernorm[^.]*\.(gamma|beta)$", r"position_embeddings$", r"cls_token$", r"mask_token$"];

fn adamw(o: &OptimizerSection, weight_decay: f64) -> AdamWConfig {
    AdamWConfig::new()
        .with_beta_1(o.beta1 as f32)
        .with_beta_2(o.beta2 as f32)
        .with_epsilon(o.eps as f32)
        .with_weight_decay(weight_decay as f32)
}

/// AdamW with a no-decay group. Gradient clipping is global and done by the model step.
pub fn build_optimizer(o: &OptimizerSection) -> Result<ModuleOptimizer> {
    let no_decay = ParamGroup::from_any_regexes(NO_DECAY_PATTERNS.to_vec())
        .map_err(|e| anyhow!("no-decay parameter group: {e:?}"))?;
    Ok(adamw(o, o.weight_decay).init().with_group(no_decay, adamw(o, 0.0).build(), None))
}

/// The schedule for `total_steps` optimizer steps; with `layer_decay < 1` and `num_layers`
/// encoder layers, layer i (0-based) runs at `decay^(L - i)` of the peak, the embeddings at
/// `decay^(L + 1)`, and the heads and final LayerNorm at the peak (BEiT/MAE-style fine-tuning).
pub fn build_schedule(o: &OptimizerSection, total_steps: usize, num_layers: usize) -> Result<ModuleLrScheduler> {
    let decay = o.schedule;
    let warmup_steps = o.warmup_steps.unwrap_or_else(|| (o.warmup_ratio * total_steps as f64).ceil() as usize);
    let (warmup_start, floor) = (o.warmup_lr / o.lr, o.min_lr / o.lr);
    let make = |scale: f64| WarmupSchedule {
        peak: o.lr * scale,
        warmup_steps,
        total_steps,
        decay,
        warmup_start,
        floor,
        step: 0,
    };
    let mut scheduler = ModuleLrScheduler::new(make(1.0));
    if o.layer_decay < 1.0 {
        let group =
            |pattern: String| ParamGroup::from_regex(pattern).map_err(|e| anyhow!("layer-wise lr group: {e:?}"));
        let depth = num_layers as i32;
        scheduler = scheduler.with_group(group(r"\.embeddings\.".into())?, make(o.layer_decay.powi(depth + 1)));
        for i in 0..num_layers {
            let pattern = format!(r"\.encoder\.layer\.{i}\.");
            scheduler = scheduler.with_group(group(pattern)?, make(o.layer_decay.powi(depth - i as i32)));
        }
    }
    Ok(scheduler)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::{Module, ModuleVisitor, Param};
    use burn::optim::GradientsParams;
    use burn::tensor::{Device, Tensor};
    use vit_model::{ViTConfig, ViTForImageClassification};

    use crate::run::steps::ClassifierStep;

    /// Gradients of `value` for every parameter.
    struct Constant<'a>(&'a mut GradientsParams, f32);
    impl ModuleVisitor for Constant<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let g = Tensor::<D>::ones(param.val().shape(), &param.val().device()).mul_scalar(self.1);
            self.0.register(param.id, g.inner());
        }
    }

    fn model() -> ClassifierStep {
        let config = ViTConfig {
            hidden_size: 8,
            num_hidden_layers: 3,
            num_attention_heads: 2,
            intermediate_size: 16,
            image_size: 8,
            patch_size: 4,
            ..ViTConfig::default()
        }
        .with_num_labels(3);
        let device = Device::flex().autodiff();
        ClassifierStep {
            model: ViTForImageClassification::new(&config, &device),
            interpolate_pos_encoding: false,
            guard: None,
            drop_path: Default::default(),
            ema: None,
            ema_run: None,
            precision: Default::default(),
        }
    }

    fn grads(m: &ClassifierStep, value: f32) -> GradientsParams {
        let mut g = GradientsParams::new();
        m.visit(&mut Constant(&mut g, value));
        g
    }

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().convert::<f32>().try_into_vec::<f32>().unwrap()
    }

    fn max_change<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
        values(a).iter().zip(values(b)).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
    }

    #[test]
    fn weight_decay_spares_biases_norms_and_embeddings() {
        let o = OptimizerSection { lr: 0.1, weight_decay: 0.5, ..OptimizerSection::default() };
        let mut optim = build_optimizer(&o).unwrap();
        let before = model();
        let g = grads(&before, 0.0);
        let after = optim.step(0.1, before.clone(), g);
        let (b, a) = (&before.model, &after.model);
        let layer = |m: &ViTForImageClassification| m.vit.encoder.layer[0].attention.attention.query.clone();
        assert!(max_change(layer(b).weight.val(), layer(a).weight.val()) > 0.0, "weights must decay");
        assert_eq!(max_change(layer(b).bias.unwrap().val(), layer(a).bias.unwrap().val()), 0.0);
        let ln = |m: &ViTForImageClassification| m.vit.encoder.layer[1].layernorm_before.clone();
        assert_eq!(max_change(ln(b).gamma.val(), ln(a).gamma.val()), 0.0);
        assert_eq!(
            max_change(b.vit.embeddings.position_embeddings.val(), a.vit.embeddings.position_embeddings.val()),
            0.0
        );
        assert_eq!(max_change(b.vit.embeddings.cls_token.val(), a.vit.embeddings.cls_token.val()), 0.0);
        assert!(max_change(b.classifier.weight.val(), a.classifier.weight.val()) > 0.0);
    }

    #[test]
    fn layer_decay_scales_each_layer() {
        let o = OptimizerSection { lr: 1e-2, layer_decay: 0.5, weight_decay: 0.0, ..OptimizerSection::default() };
        let mut optim = build_optimizer(&o).unwrap();
        let mut scheduler = build_schedule(&o, 100, 3).unwrap();
        let lr = scheduler.step();
        let before = model();
        let after = optim.step(lr, before.clone(), grads(&before, 1.0));
        // Adam's first step moves every parameter by about its learning rate.
        let moved = |i: usize| {
            let q = |m: &ClassifierStep| m.model.vit.encoder.layer[i].output.dense.weight.val();
            max_change(q(&before), q(&after))
        };
        let head = max_change(before.model.classifier.weight.val(), after.model.classifier.weight.val());
        let embed = max_change(before.model.vit.embeddings.cls_token.val(), after.model.vit.embeddings.cls_token.val());
        let close = |a: f32, b: f64| (a as f64 - b).abs() < 1e-4 * b.max(1e-3) + 1e-6;
        assert!(close(head, 1e-2), "head {head}");
        assert!(close(moved(2), 1e-2 * 0.5), "layer 2 {}", moved(2));
        assert!(close(moved(0), 1e-2 * 0.125), "layer 0 {}", moved(0));
        assert!(close(embed, 1e-2 * 0.0625), "embeddings {embed}");
    }
}
