//! `[optimizer]`: AdamW, its schedule, clipping and label smoothing.

use serde::{Deserialize, Serialize};

use crate::run::schedule::Decay;

/// `[optimizer]`: AdamW as HF's Trainer sets it up.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimizerSection {
    /// Peak learning rate.
    pub lr: f64,
    /// Adam beta1.
    pub beta1: f64,
    /// Adam beta2.
    pub beta2: f64,
    /// Adam epsilon.
    pub eps: f64,
    /// Decoupled weight decay (not applied to biases, LayerNorm, position and CLS embeddings).
    pub weight_decay: f64,
    /// Clip gradients by their global norm over all parameters (0 = no clipping).
    pub max_grad_norm: f64,
    /// Micro-batches per optimizer step.
    pub grad_accumulation: usize,
    /// Warmup steps (overrides `warmup_ratio` when set).
    pub warmup_steps: Option<usize>,
    /// Warmup as a share of all steps.
    pub warmup_ratio: f64,
    /// After warmup: `cosine`, `linear` or `constant`.
    pub schedule: Decay,
    /// The learning rate the decay ends at (timm's `min_lr`; 0 as HF).
    pub min_lr: f64,
    /// The learning rate the warmup starts from (timm's `warmup_lr`; 0 as HF).
    pub warmup_lr: f64,
    /// Label smoothing of the classification loss.
    pub label_smoothing: f64,
    /// Layer-wise lr decay for fine-tuning (1 = none): layer i gets lr · decay^(L − i).
    pub layer_decay: f64,
}

impl Default for OptimizerSection {
    fn default() -> Self {
        Self {
            lr: 5e-5,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            max_grad_norm: 1.0,
            grad_accumulation: 1,
            warmup_steps: None,
            warmup_ratio: 0.0,
            schedule: Decay::Linear,
            min_lr: 0.0,
            warmup_lr: 0.0,
            label_smoothing: 0.0,
            layer_decay: 1.0,
        }
    }
}
