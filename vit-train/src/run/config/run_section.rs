//! `[run]`: length, seed, checkpoints, devices, precision, logging and EMA.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use vit_model::Precision;

use crate::device::DeviceSpec;

/// `[run]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunSection {
    /// Passes over the training data.
    pub epochs: usize,
    /// Train exactly this many optimizer steps (overrides `epochs`).
    pub max_steps: Option<usize>,
    /// Validate and checkpoint every N optimizer steps (and after the last); unset: at the end
    /// of every epoch.
    pub eval_every: Option<usize>,
    /// Seed of initialisation, data order, augmentation, masks and dropout.
    pub seed: u64,
    /// Checkpoints kept besides the best (a checkpoint per evaluation).
    pub keep_last: usize,
    /// Stop when the validation loss has not improved for this many evaluations.
    pub early_stopping_patience: Option<usize>,
    /// Where the run writes everything.
    pub output_dir: PathBuf,
    /// `cpu`, `cuda:0`, `wgpu`, `wgpu:discrete:0`, `vulkan:0`, ...
    pub device: DeviceSpec,
    /// Synchronous data-parallel training on several devices, e.g. `["cuda:0", "cuda:1"]`: each
    /// trains a `data.batch_size` share of every micro-batch; empty: `device` alone.
    pub devices: Vec<DeviceSpec>,
    /// Mixed precision of the matrix products (`f32`, `bf16`, `f16`), as PyTorch's autocast:
    /// float32 weights, optimizer state, LayerNorm, softmax and losses; `f16` with dynamic loss
    /// scaling. Checkpoints and exports stay float32.
    pub precision: Precision,
    /// A metrics.csv row (and, when not on a terminal, a log line) every N optimizer steps.
    pub log_every: usize,
    /// SimMIM: write a reconstruction grid (samples/step-N.png) every N micro-batches (0: never).
    pub sample_every: usize,
    /// Classification: keep an exponential moving average of the weights with this decay (timm's
    /// `ModelEmaV3`; 0 = off), validated as `valid_ema` rows and checkpointed with the run.
    pub ema_decay: f64,
    /// timm's EMA warmup: the decay grows as `1 − (1 + n)^(−2/3)` up to `ema_decay`.
    pub ema_warmup: bool,
    /// Export the moving average (the checkpoint with the lowest `valid_ema` loss) instead of the
    /// trained weights.
    pub export_ema: bool,
}

impl Default for RunSection {
    fn default() -> Self {
        Self {
            epochs: 3,
            max_steps: None,
            eval_every: None,
            seed: 42,
            keep_last: 2,
            early_stopping_patience: None,
            output_dir: PathBuf::from("runs/default"),
            device: DeviceSpec::Cpu,
            devices: Vec::new(),
            precision: Precision::F32,
            log_every: 50,
            sample_every: 500,
            ema_decay: 0.0,
            ema_warmup: false,
            export_ema: false,
        }
    }
}
