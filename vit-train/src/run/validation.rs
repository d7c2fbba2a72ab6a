//! The checks of a run config that its types alone cannot make: ranges, finiteness, and which
//! fields go together. Each error names the field.

use anyhow::{Result, bail};

use super::config::{DatasetKind, RunConfig, Task, ValidationSource};

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
        check_range("data.validation_split", d.validation_share(), 0.0..1.0)?;
        match d.validation {
            ValidationSource::Split if d.validation_share() == 0.0 && d.validation_dir.is_none() => bail!(
                "data.validation_split: 0 leaves no validation images; hold some out (e.g. 0.1), or validate on the \
                 test set with `data.validation = \"test\"` (the test accuracy is then not held out)"
            ),
            ValidationSource::Test if d.dataset == DatasetKind::Imagefolder && d.test_dir.is_none() => bail!(
                "data.validation = \"test\" needs a test set: set data.test_dir (an ImageFolder root with the same \
                 classes)"
            ),
            ValidationSource::Test if d.validation_split.is_some_and(|v| v > 0.0) => bail!(
                "data.validation_split has no effect with data.validation = \"test\" (all training images are \
                 trained on); remove one of them"
            ),
            ValidationSource::Test if d.validation_dir.is_some() => {
                bail!("data.validation = \"test\" and data.validation_dir contradict each other; remove one")
            }
            _ => {}
        }
        if d.test_dir.is_some() && d.dataset != DatasetKind::Imagefolder {
            bail!("data.test_dir: only for an ImageFolder dataset; CIFAR's test set is its test batch");
        }
        check_range("data.mask_ratio", d.mask_ratio, 0.0..=1.0)?;
        let [scale_lo, scale_hi] = d.crop_scale;
        if !(scale_lo.is_finite() && scale_hi.is_finite() && 0.0 < scale_lo && scale_lo <= scale_hi && scale_hi <= 1.0)
        {
            bail!("data.crop_scale: must be [min, max] with 0 < min <= max <= 1, got [{scale_lo}, {scale_hi}]");
        }
        let [ratio_lo, ratio_hi] = d.crop_ratio;
        if !(ratio_lo.is_finite() && ratio_hi.is_finite() && 0.0 < ratio_lo && ratio_lo <= ratio_hi) {
            bail!("data.crop_ratio: must be [min, max] with 0 < min <= max, got [{ratio_lo}, {ratio_hi}]");
        }
        check_range("data.hflip", d.hflip, 0.0..=1.0)?;
        check_range("data.random_erasing", d.random_erasing, 0.0..=1.0)?;
        if !(1..=64).contains(&d.prefetch) {
            bail!("data.prefetch: must be between 1 and 64 batches, got {}", d.prefetch);
        }
        if !(1..=64).contains(&d.random_erasing_count) {
            bail!("data.random_erasing_count: must be between 1 and 64, got {}", d.random_erasing_count);
        }
        check_range("data.mixup_alpha", d.mixup_alpha, 0.0..)?;
        check_range("data.cutmix_alpha", d.cutmix_alpha, 0.0..)?;
        check_range("data.mixup_prob", d.mixup_prob, 0.0..=1.0)?;
        check_range("data.mixup_switch_prob", d.mixup_switch_prob, 0.0..=1.0)?;
        if let Some([lo, hi]) = d.cutmix_minmax
            && !(lo.is_finite() && hi.is_finite() && 0.0 <= lo && lo < hi && hi <= 1.0)
        {
            bail!("data.cutmix_minmax: must be [min, max] with 0 <= min < max <= 1, got [{lo}, {hi}]");
        }
        if d.mixes() && self.task != Task::Classification {
            bail!("data.mixup_alpha / data.cutmix_alpha: Mixup and CutMix are for classification; remove them");
        }
        let m = &self.model;
        if m.pretrained.is_some() == m.preset.is_some() {
            bail!(
                "model: set exactly one of `pretrained` (an HF model directory) or `preset` (vit-tiny, vit-small, \
                 vit-base, vit-large)"
            );
        }
        if let Some(n) = m.num_channels
            && n != 1
            && n != 3
        {
            bail!("model.num_channels: must be 1 (grayscale) or 3 (RGB), got {n}");
        }
        check_range("model.drop_path_rate", m.drop_path_rate, 0.0..1.0)?;
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
        let run = &self.run;
        check_range("run.ema_decay", run.ema_decay, 0.0..1.0)?;
        if run.ema_decay > 0.0 && self.task != Task::Classification {
            bail!("run.ema_decay: the weight average is for classification runs; set it to 0 for SimMIM");
        }
        if run.export_ema && run.ema_decay == 0.0 {
            bail!("run.export_ema needs a weight average: set run.ema_decay (e.g. 0.9998)");
        }
        let o = &self.optimizer;
        if !(o.lr > 0.0 && o.lr.is_finite()) {
            bail!("optimizer.lr: must be positive, got {}", o.lr);
        }
        check_range("optimizer.min_lr", o.min_lr, 0.0..=o.lr)?;
        check_range("optimizer.warmup_lr", o.warmup_lr, 0.0..=o.lr)?;
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
