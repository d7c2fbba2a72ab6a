//! An exponential moving average of the model's weights, as timm's `ModelEmaV3`: after every
//! optimizer step `ema ← ema + (1 − d)·(model − ema)`, with `d = 0` at the first update (the
//! average starts as a copy) and, with warmup, `d = min(decay, 1 − (1 + n)^(−2/3))` at update
//! `n + 1`. The average is a module of the run's model (so burn-train checkpoints and restores
//! it with the model, and a resumed run continues it exactly); each validation pass also runs it,
//! and [`EmaValidation`] hands its counts to the `valid_ema` row of metrics.csv.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::Tensor;

use super::evaluation::EvalCounts;

/// `run.ema_decay` and `run.ema_warmup`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EmaSchedule {
    /// The decay once warmed up (timm's `decay`).
    pub decay: f64,
    /// timm's `use_warmup` (`warmup_gamma` 1, `warmup_power` 2/3).
    pub warmup: bool,
}

impl EmaSchedule {
    /// The decay of update number `update` (1-based: the optimizer steps done, this one included),
    /// as timm's `ModelEmaV3.get_decay(step=num_updates)`.
    pub fn decay_at(&self, update: usize) -> f64 {
        let n = update.saturating_sub(1);
        if n == 0 {
            return 0.0;
        }
        if self.warmup {
            let warm = 1.0 - (1.0 + n as f64).powf(-2.0 / 3.0);
            warm.min(self.decay).max(0.0)
        } else {
            self.decay
        }
    }
}

/// Every float parameter of a module, flattened, in visit order.
struct Collect(Vec<Tensor<1>>);

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val().without_autodiff();
        let n = value.shape().num_elements();
        self.0.push(value.reshape([n]));
    }
}

/// Moves each parameter of the average towards the model's parameter at the same position.
struct Lerp {
    model: std::vec::IntoIter<Tensor<1>>,
    weight: f64,
    mismatch: bool,
}

impl ModuleMapper for Lerp {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(target) = self.model.next() else {
            self.mismatch = true;
            return param;
        };
        let weight = self.weight;
        let mismatch = &mut self.mismatch;
        param.map(|ema| {
            let autodiff = ema.is_autodiff();
            let shape = ema.shape();
            if target.shape().num_elements() != shape.num_elements() {
                *mismatch = true;
                return ema;
            }
            let ema_value = ema.without_autodiff();
            let target = target.reshape(shape);
            // timm: `ema.lerp_(model, 1 - decay)`, in torch's two forms (exact at both ends).
            let next = if weight < 0.5 {
                ema_value.clone() + (target - ema_value).mul_scalar(weight)
            } else {
                target.clone() - (target - ema_value).mul_scalar(1.0 - weight)
            };
            if autodiff { next.autodiff() } else { next }
        })
    }
}

/// `ema + (1 − decay)·(model − ema)` for every parameter; `ema` and `model` must be the same
/// architecture (parameters are paired in visit order). The average's parameters keep their own
/// ids, so the optimizer never mistakes them for the model's.
pub fn ema_update<M: Module>(ema: M, model: &M, decay: f64) -> M {
    let mut collect = Collect(Vec::new());
    model.visit(&mut collect);
    let mut lerp = Lerp { model: collect.0.into_iter(), weight: 1.0 - decay, mismatch: false };
    let out = ema.map(&mut lerp);
    assert!(
        !lerp.mismatch && lerp.model.next().is_none(),
        "ema_update: the average and the model have different parameters"
    );
    out
}

/// What a run's steps need of the average besides its weights.
#[derive(Clone, Debug)]
pub struct EmaRun {
    /// The decay per update.
    pub schedule: EmaSchedule,
    /// Where validation passes leave the average's counts.
    pub validation: EmaValidation,
    /// The dataset's classes.
    pub classes: Vec<String>,
}

/// The validation counts of the average, by the optimizer step the pass ran after; written by
/// the validation steps, taken by the renderer when it writes that pass's rows.
#[derive(Clone, Debug, Default)]
pub struct EmaValidation {
    passes: Arc<Mutex<BTreeMap<usize, EvalCounts>>>,
}

impl EmaValidation {
    /// Adds one batch of the pass after step `step`: logits row by row and the true labels.
    pub fn add(&self, step: usize, classes: &[String], logits: &[f32], labels: &[usize]) {
        let mut passes = self.passes.lock().unwrap_or_else(|p| p.into_inner());
        let counts = passes.entry(step).or_insert_with(|| EvalCounts::new(classes.to_vec()));
        let n = classes.len().max(1);
        for (row, &label) in logits.chunks(n).zip(labels) {
            if label < n {
                counts.add(row, label);
            }
        }
    }

    /// The counts of the pass after step `step`, removed.
    pub fn take(&self, step: usize) -> Option<EvalCounts> {
        self.passes.lock().unwrap_or_else(|p| p.into_inner()).remove(&step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;
    use vit_model::{ViTConfig, ViTForImageClassification};

    #[test]
    fn decay_follows_timm_model_ema_v3() {
        let plain = EmaSchedule { decay: 0.999, warmup: false };
        assert_eq!(plain.decay_at(1), 0.0, "the first update copies the model");
        assert_eq!(plain.decay_at(2), 0.999);
        let warm = EmaSchedule { decay: 0.999, warmup: true };
        // timm: 1 - (1 + step) ** (-2/3) with step = num_updates - 1.
        assert!((warm.decay_at(2) - (1.0 - 2f64.powf(-2.0 / 3.0))).abs() < 1e-12);
        assert!((warm.decay_at(11) - (1.0 - 11f64.powf(-2.0 / 3.0))).abs() < 1e-12);
        assert_eq!(warm.decay_at(10_000_000), 0.999, "capped at the decay");
    }

    fn values<M: Module>(m: &M) -> Vec<f32> {
        let mut c = Collect(Vec::new());
        m.visit(&mut c);
        c.0.into_iter().flat_map(|t| t.into_data().try_to_vec::<f32>().unwrap()).collect()
    }

    #[test]
    fn update_is_a_lerp_towards_the_model_and_keeps_its_own_ids() {
        let device = Device::flex();
        let config = ViTConfig {
            hidden_size: 8,
            num_hidden_layers: 1,
            num_attention_heads: 2,
            intermediate_size: 16,
            image_size: 8,
            patch_size: 4,
            ..Default::default()
        }
        .with_num_labels(3);
        let model = ViTForImageClassification::new(&config, &device);
        let fresh = ViTForImageClassification::new(&config, &device);
        let (m, f) = (values(&model), values(&fresh));
        assert_ne!(m, f);
        let copy = ema_update(fresh.clone(), &model, 0.0);
        assert_eq!(values(&copy), m, "decay 0 copies");
        let half = ema_update(fresh.clone(), &model, 0.75);
        for ((h, a), b) in values(&half).iter().zip(&f).zip(&m) {
            assert!((h - (a + 0.25 * (b - a))).abs() < 1e-6);
        }
        let ids = |m: &ViTForImageClassification| m.vit.embeddings.cls_token.id;
        assert_eq!(ids(&copy), ids(&fresh));
        assert_ne!(ids(&copy), ids(&model));
    }
}
