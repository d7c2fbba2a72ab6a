//! AdamW as HF's Trainer builds it: no weight decay on biases, LayerNorm, position, CLS and mask
//! embeddings; warmup + decay schedule; optional layer-wise lr decay for fine-tuning.

use anyhow::{Result, anyhow};
use burn::module::ParamGroup;
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::optim::{AdamWConfig, ModuleOptimizer};

use crate::run_config::OptimizerSection;
use crate::schedule::{Decay, WarmupSchedule};

/// Parameter paths that get no weight decay.
pub const NO_DECAY_PATTERNS: [&str; 5] = [
    r"\.bias$",
    r"layernorm[^.]*\.(gamma|beta)$",
    r"position_embeddings$",
    r"cls_token$",
    r"mask_token$",
];

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
pub fn build_schedule(
    o: &OptimizerSection,
    total_steps: usize,
    num_layers: usize,
) -> Result<ModuleLrScheduler> {
    let decay = Decay::parse(&o.schedule).ok_or_else(|| anyhow!("optimizer.schedule: unknown `{}`", o.schedule))?;
    let warmup_steps = o
        .warmup_steps
        .unwrap_or_else(|| (o.warmup_ratio * total_steps as f64).ceil() as usize);
    let make = |scale: f64| WarmupSchedule { peak: o.lr * scale, warmup_steps, total_steps, decay, step: 0 };
    let mut scheduler = ModuleLrScheduler::new(make(1.0));
    if o.layer_decay < 1.0 {
        let group = |pattern: String| {
            ParamGroup::from_regex(pattern).map_err(|e| anyhow!("layer-wise lr group: {e:?}"))
        };
        let depth = num_layers as i32;
        scheduler = scheduler.with_group(group(r"\.embeddings\.".into())?, make(o.layer_decay.powi(depth + 1)));
        for i in 0..num_layers {
            let pattern = format!(r"\.encoder\.layer\.{i}\.");
            scheduler = scheduler.with_group(group(pattern)?, make(o.layer_decay.powi(depth - i as i32)));
        }
    }
    Ok(scheduler)
}

/// Optimizer steps the schedule spans: `max_steps` when set, else micro-batches per epoch /
/// accumulation, times epochs.
pub fn total_steps(batches_per_epoch: usize, accumulation: usize, epochs: usize, max_steps: Option<usize>) -> usize {
    max_steps.unwrap_or(batches_per_epoch.div_ceil(accumulation.max(1)) * epochs)
}
