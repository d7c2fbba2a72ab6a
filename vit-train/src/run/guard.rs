//! [`StepGuard`]: what every training step does around the model — the loss checked for NaN/inf
//! and scaled for gradient accumulation, the gradients' global norm checked and clipped as
//! `torch.nn.utils.clip_grad_norm_`, and the optimizer step skipped or the run stopped on a
//! non-finite loss or norm (with `--skip-nonfinite`, stopped after too many skips in a row).

use std::sync::Arc;
use std::sync::Mutex;

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::Tensor;
use burn::train::Interrupter;

use super::clock::RunClock;

/// What happens on a NaN or infinite loss or gradient norm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NonFinitePolicy {
    /// Stop the run, keeping the last good checkpoint.
    Stop,
    /// Skip the optimizer step and go on, but stop after this many skipped steps in a row.
    Skip {
        /// The most consecutive skipped optimizer steps before the run stops.
        max_consecutive: usize,
    },
}

/// A non-finite value met during training.
#[derive(Clone, Debug, PartialEq)]
pub struct NonFinite {
    /// The run's micro-batch (1-based).
    pub micro_batch: usize,
    /// `loss` or `gradient norm`.
    pub what: &'static str,
    /// The value (NaN or ±inf).
    pub value: f64,
}

#[derive(Debug, Default)]
struct Record {
    /// Every non-finite value met.
    events: Vec<NonFinite>,
    /// Whether the micro-batches since the last optimizer step had a non-finite loss.
    skip_next_update: bool,
    /// Optimizer steps skipped in a row.
    consecutive_skips: usize,
    /// Set when the run was stopped for too many consecutive skips.
    gave_up: bool,
}

/// State shared by the steps of a run and the code that launched it.
#[derive(Clone)]
pub struct StepGuard {
    /// The run's position (the micro-batch being trained).
    pub clock: RunClock,
    record: Arc<Mutex<Record>>,
    /// What to do about a non-finite value.
    pub policy: NonFinitePolicy,
    /// Stops the learner.
    pub interrupter: Interrupter,
    /// Global gradient-norm limit (0 = none).
    pub max_grad_norm: f64,
    /// Loss multiplier (1 / gradient accumulation), as HF divides the loss.
    pub loss_scale: f64,
}

impl std::fmt::Debug for StepGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepGuard")
            .field("micro_batch", &self.clock.micro_batch())
            .field("policy", &self.policy)
            .field("max_grad_norm", &self.max_grad_norm)
            .finish()
    }
}

impl StepGuard {
    /// A guard for the run whose position `clock` keeps.
    pub fn new(
        policy: NonFinitePolicy,
        interrupter: Interrupter,
        max_grad_norm: f64,
        accumulation: usize,
        clock: RunClock,
    ) -> Self {
        Self {
            clock,
            record: Arc::new(Mutex::new(Record::default())),
            policy,
            interrupter,
            max_grad_norm,
            loss_scale: 1.0 / accumulation.max(1) as f64,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Record> {
        self.record.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The non-finite values met so far.
    pub fn events(&self) -> Vec<NonFinite> {
        self.lock().events.clone()
    }

    /// Whether the run was stopped because too many optimizer steps in a row were skipped.
    pub fn gave_up(&self) -> bool {
        self.lock().gave_up
    }

    /// Records a non-finite `value` of `what` and applies the policy to the coming update.
    fn report(&self, what: &'static str, value: f64) {
        let micro_batch = self.clock.micro_batch();
        let mut record = self.lock();
        record.events.push(NonFinite { micro_batch, what, value });
        record.skip_next_update = true;
        if self.policy == NonFinitePolicy::Stop {
            self.interrupter.stop(Some(&format!("non-finite {what} ({value}) at micro-batch {micro_batch}")));
        }
    }

    /// Checks a loss.
    fn check(&self, loss: &Tensor<1>) {
        let value = loss.clone().into_scalar::<f32>() as f64;
        if !value.is_finite() {
            self.report("loss", value);
        }
    }

    /// Counts a skipped update; past the limit, stops the run.
    fn skipped(&self) {
        let mut record = self.lock();
        record.skip_next_update = false;
        record.consecutive_skips += 1;
        if let NonFinitePolicy::Skip { max_consecutive } = self.policy
            && record.consecutive_skips > max_consecutive
            && !record.gave_up
        {
            record.gave_up = true;
            self.interrupter
                .stop(Some(&format!("{} optimizer steps in a row were not finite", record.consecutive_skips)));
        }
    }

    /// Checks the gradients' global norm, clips them to `max_grad_norm` and applies the step,
    /// unless a non-finite loss or norm went in; says whether it applied it.
    fn optimize<M: Module>(
        &self,
        model: M,
        optim: &mut ModuleOptimizer,
        lr: ModuleLearningRate,
        mut grads: GradientsParams,
    ) -> (M, bool) {
        if self.lock().skip_next_update {
            self.skipped();
            return (model, false);
        }
        let norm = global_norm(&model, &grads);
        if !norm.is_finite() {
            self.report("gradient norm", norm);
            self.skipped();
            return (model, false);
        }
        self.lock().consecutive_skips = 0;
        if self.max_grad_norm > 0.0 {
            clip_to(&model, &mut grads, norm, self.max_grad_norm);
        }
        (optim.step(lr, model, grads), true)
    }
}

/// Checks `loss` with the guard (when there is one) and back-propagates it, scaled for gradient
/// accumulation.
pub fn guarded_backward(guard: Option<&StepGuard>, loss: &Tensor<1>) -> burn::tensor::Gradients {
    let scale = guard.map_or(1.0, |g| {
        g.check(loss);
        g.loss_scale
    });
    loss.clone().mul_scalar(scale).backward()
}

/// The optimizer step of a model with an optional guard; says whether the step was applied.
pub fn guarded_optimize<M: Module>(
    guard: Option<StepGuard>,
    model: M,
    optim: &mut ModuleOptimizer,
    lr: ModuleLearningRate,
    grads: GradientsParams,
) -> (M, bool) {
    match guard {
        Some(guard) => guard.optimize(model, optim, lr, grads),
        None => (optim.step(lr, model, grads), true),
    }
}

struct SquaredNorm<'a> {
    grads: &'a GradientsParams,
    total: Option<Tensor<1>>,
}

impl ModuleVisitor for SquaredNorm<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            let s = g.square().sum();
            self.total = Some(match self.total.take() {
                Some(t) => t + s,
                None => s,
            });
        }
    }
}

struct Scale<'a> {
    grads: &'a mut GradientsParams,
    factor: f64,
}

impl ModuleVisitor for Scale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.remove::<D>(param.id) {
            self.grads.register(param.id, g.mul_scalar(self.factor));
        }
    }
}

/// The global L2 norm over every gradient of `model` (0 when there are none).
pub fn global_norm<M: Module>(model: &M, grads: &GradientsParams) -> f64 {
    let mut visitor = SquaredNorm { grads, total: None };
    model.visit(&mut visitor);
    visitor.total.map_or(0.0, |total| (total.into_scalar::<f32>() as f64).sqrt())
}

/// Scales every gradient by `max_norm / (norm + 1e-6)` when `norm`, their global L2 norm, exceeds
/// `max_norm`, as `clip_grad_norm_`.
pub fn clip_to<M: Module>(model: &M, grads: &mut GradientsParams, norm: f64, max_norm: f64) {
    let factor = max_norm / (norm + 1e-6);
    if factor < 1.0 {
        model.visit(&mut Scale { grads, factor });
    }
}
