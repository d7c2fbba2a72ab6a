//! The checks of a run config that its types alone cannot make: ranges, finiteness, and which
//! fields go together. Each error names the field.

use anyhow::{Result, bail};

use super::config::RunConfig;

/// An error unless `value` is finite and within `range` (`field` names it).
fn check_range(field: &str, value: f64, range: impl std::ops::RangeBounds<f64> + std::fmt::Debug) -> Result<()> {
    if !value.is_finite() || !range.contains(&value) {
        bail!("{field}: must be a finite number in {range:?}, got {value}");
    }
    Ok(())
}

impl RunConfig {
    /// Checks values that the types alone cannot.
    pub fn validate(&self) -> Result<()> {
        let d = &self.data;
        if d.image_size == 0 || d.image_size > 16384 {
            bail!("data.image_size: must be between 1 and 16384, got {}", d.image_size);
        }
        if d.batch_size == 0 {
            bail!("data.batch_size: must be at least 1");
        }
        if d.eval_batch_size == Some(0) {
            bail!("data.eval_batch_size: must be at least 1");
        }
        check_range("data.validation_split", d.validation_split, 0.0..1.0)?;
        check_range("data.mask_ratio", d.mask_ratio, 0.0..=1.0)?;
        let m = &self.model;
        if m.pretrained.is_some() == m.preset.is_some() {
            bail!(
                "model: set exactly one of `pretrained` (an HF model directory) or `preset` (vit-tiny, vit-small, \
                 vit-base, vit-large)"
            );
        }
        for (field, value) in [
            ("model.hidden_dropout_prob", m.hidden_dropout_prob),
            ("model.attention_probs_dropout_prob", m.attention_probs_dropout_prob),
        ] {
            if let Some(p) = value {
                check_range(field, p, 0.0..1.0)?;
            }
        }
        for (field, value) in
            [("model.initializer_range", m.initializer_range), ("model.layer_norm_eps", m.layer_norm_eps)]
        {
            if let Some(v) = value {
                check_range(field, v, 0.0..)?;
            }
        }
        let o = &self.optimizer;
        if !(o.lr > 0.0 && o.lr.is_finite()) {
            bail!("optimizer.lr: must be positive, got {}", o.lr);
        }
        check_range("optimizer.beta1", o.beta1, 0.0..1.0)?;
        check_range("optimizer.beta2", o.beta2, 0.0..1.0)?;
        check_range("optimizer.eps", o.eps, 0.0..)?;
        check_range("optimizer.weight_decay", o.weight_decay, 0.0..)?;
        check_range("optimizer.max_grad_norm", o.max_grad_norm, 0.0..)?;
        if o.grad_accumulation == 0 {
            bail!("optimizer.grad_accumulation: must be at least 1");
        }
        check_range("optimizer.warmup_ratio", o.warmup_ratio, 0.0..1.0)?;
        check_range("optimizer.label_smoothing", o.label_smoothing, 0.0..1.0)?;
        if !(o.layer_decay > 0.0 && o.layer_decay <= 1.0) {
            bail!("optimizer.layer_decay: must be in (0, 1], got {}", o.layer_decay);
        }
        let r = &self.run;
        if r.epochs == 0 && r.max_steps.is_none() {
            bail!("run.epochs: must be at least 1 (or set run.max_steps)");
        }
        if r.max_steps == Some(0) {
            bail!("run.max_steps: must be at least 1");
        }
        if r.eval_every == Some(0) {
            bail!(
                "run.eval_every: must be at least 1 (optimizer steps); leave it out to evaluate at the end of every \
                 epoch"
            );
        }
        if r.log_every == 0 {
            bail!("run.log_every: must be at least 1");
        }
        Ok(())
    }
}
