//! [`StepGuard`]: what every training step does around the model — the loss checked for NaN/inf
//! and scaled for gradient accumulation, the gradients' global norm checked and clipped as
//! `torch.nn.utils.clip_grad_norm_`, and the optimizer step skipped or the run stopped on a
//! non-finite loss or norm (with `--skip-nonfinite`, stopped after too many skips in a row).
//!
//! Reading a value back to the host drains a GPU's queue, so by default (stop on a non-finite
//! value) the step reads nothing: the clip factor `min(1, max_norm / (norm + 1e-6))` is computed
//! and applied on the device, and each micro-batch's loss and norm are kept, as device tensors,
//! until a flush reads them all back at once — every `flush_every` optimizer steps (the run's
//! `log_every`), at each segment's last step (before validation and the checkpoint), and before a
//! checkpoint is written ([`StepGuard::checkpoint_gate`]). A non-finite value found then stops the
//! run with the micro-batch it came from; the steps run since (fewer than `flush_every`) are not
//! saved. `--skip-nonfinite` has to decide before each optimizer step whether to apply it, so it
//! reads the loss and the norm at every step.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::Tensor;
use burn::train::Interrupter;

use super::clock::RunClock;
#[cfg(test)]
use super::loss_scale::INITIAL_SCALE;
use super::loss_scale::{LossScaler, MAX_OVERFLOWS_IN_A_ROW, ScaledStep};

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

/// Host reads of training values the guard has made in this process (for tests and benchmarks:
/// a step that reads nothing leaves it unchanged).
static HOST_READS: AtomicUsize = AtomicUsize::new(0);

/// The guard's host reads so far in this process.
pub fn host_reads() -> usize {
    HOST_READS.load(Ordering::SeqCst)
}

/// Reads one-element tensors back to the host in one transfer (one counted read).
fn read_values(values: Vec<Tensor<1>>) -> Vec<f64> {
    if values.is_empty() {
        return Vec::new();
    }
    HOST_READS.fetch_add(1, Ordering::SeqCst);
    let n = values.len();
    // With several devices the values live on each; one transfer from the first.
    let device = values[0].device();
    let values: Vec<Tensor<1>> = values.into_iter().map(|v| v.to_device(&device)).collect();
    let data = Tensor::cat(values, 0).into_data().convert::<f32>();
    match data.try_into_vec::<f32>() {
        Ok(v) => v.into_iter().map(f64::from).collect(),
        Err(_) => vec![f64::NAN; n],
    }
}

/// A value kept on the device until the next flush.
#[derive(Debug)]
struct Pending {
    micro_batch: usize,
    what: &'static str,
    value: Tensor<1>,
}

#[derive(Debug, Default)]
struct Record {
    /// Values not yet read back (stop policy).
    pending: Vec<Pending>,
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
    /// Deferred values are read back every this many optimizer steps (and at segment ends).
    pub flush_every: usize,
    /// Dynamic loss scaling (float16 training).
    scaler: Option<Arc<Mutex<ScalerState>>>,
}

/// The loss scaler, and its state as each checkpoint's last optimizer step left it (checkpoints
/// are written in the background while training goes on, so the state is kept by checkpoint).
#[derive(Debug)]
struct ScalerState {
    scaler: LossScaler,
    at_checkpoint: BTreeMap<usize, LossScaler>,
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
            flush_every: 1,
            scaler: None,
        }
    }

    /// Scales the loss dynamically (float16 training, see [`LossScaler`]): each optimizer step
    /// then reads its gradient norm back to decide whether it overflowed.
    pub fn with_loss_scaling(mut self, scaler: LossScaler) -> Self {
        self.scaler = Some(Arc::new(Mutex::new(ScalerState { scaler, at_checkpoint: BTreeMap::new() })));
        self
    }

    fn scaler_state(&self) -> Option<std::sync::MutexGuard<'_, ScalerState>> {
        self.scaler.as_ref().map(|s| s.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The loss scaler's state, when the loss is scaled.
    pub fn loss_scaler(&self) -> Option<LossScaler> {
        self.scaler_state().map(|s| s.scaler.clone())
    }

    /// The loss scaler's state after the last optimizer step of checkpoint `n` (what a run resumed
    /// from it starts with), once that step has run; older checkpoints' states are then dropped.
    pub fn loss_scaler_at_checkpoint(&self, n: usize) -> Option<LossScaler> {
        let mut state = self.scaler_state()?;
        state.at_checkpoint.retain(|&k, _| k >= n);
        state.at_checkpoint.get(&n).cloned()
    }

    /// The current dynamic loss scale (1 without scaling).
    fn dynamic_scale(&self) -> f64 {
        self.scaler_state().map_or(1.0, |s| s.scaler.scale)
    }

    /// Reads deferred values back every `steps` optimizer steps (at least 1).
    pub fn flushing_every(mut self, steps: usize) -> Self {
        self.flush_every = steps.max(1);
        self
    }

    /// Reads back every deferred loss and norm (one host read) and applies the policy to the
    /// first non-finite one; returns whether all were finite.
    pub fn flush(&self) -> bool {
        self.read_pending() && self.lock().events.is_empty()
    }

    /// Reads back the deferred values (one host read) and reports the first non-finite one;
    /// returns whether all were finite.
    fn read_pending(&self) -> bool {
        self.read_pending_and(Vec::new()).0
    }

    /// [`read_pending`](Self::read_pending), reading `extra` values in the same transfer.
    fn read_pending_and(&self, extra: Vec<Tensor<1>>) -> (bool, Vec<f64>) {
        let pending = std::mem::take(&mut self.lock().pending);
        let (meta, mut tensors): (Vec<_>, Vec<_>) =
            pending.into_iter().map(|p| ((p.micro_batch, p.what), p.value)).unzip();
        let deferred = tensors.len();
        tensors.extend(extra);
        let mut values = read_values(tensors);
        let extra = values.split_off(deferred);
        let failed = meta.into_iter().zip(values).find(|(_, v)| !v.is_finite());
        if let Some(((micro_batch, what), value)) = failed {
            self.report_at(micro_batch, what, value);
        }
        (failed.is_none(), extra)
    }

    /// The checkpointer's question: flushes, and says whether the run's state may be saved (no
    /// non-finite value met so far, under the stop policy).
    pub fn may_save(&self) -> bool {
        self.flush() || self.policy != NonFinitePolicy::Stop
    }

    fn defer(&self, what: &'static str, value: Tensor<1>) {
        let micro_batch = self.clock.micro_batch();
        self.lock().pending.push(Pending { micro_batch, what, value: value.without_autodiff() });
    }

    /// Whether the optimizer step just taken ends a flush interval or a segment.
    fn flush_due(&self) -> bool {
        let step = self.clock.step();
        let segment_end = self.clock.segments().steps(self.clock.segment()).end;
        step.is_multiple_of(self.flush_every) || step >= segment_end
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
        self.report_at(self.clock.micro_batch(), what, value);
    }

    /// [`report`](Self::report) for micro-batch `micro_batch`.
    fn report_at(&self, micro_batch: usize, what: &'static str, value: f64) {
        let mut record = self.lock();
        record.events.push(NonFinite { micro_batch, what, value });
        record.skip_next_update = true;
        if self.policy == NonFinitePolicy::Stop {
            self.interrupter.stop(Some(&format!("non-finite {what} ({value}) at micro-batch {micro_batch}")));
        }
    }

    /// Checks a loss: now under `--skip-nonfinite`, at the next flush otherwise.
    fn check(&self, loss: &Tensor<1>) {
        if self.policy == NonFinitePolicy::Stop {
            self.defer("loss", loss.clone());
            return;
        }
        let value = read_values(vec![loss.clone().without_autodiff()])[0];
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
        if let Some(scaler) = &self.scaler {
            return self.optimize_scaled(scaler, model, optim, lr, grads);
        }
        if self.policy == NonFinitePolicy::Stop {
            // Nothing is read: the norm and the clip factor stay on the device.
            if let Some(norm) = global_norm_tensor(&model, &grads) {
                if self.max_grad_norm > 0.0 {
                    clip_by(&model, &mut grads, clip_factor(norm.clone(), self.max_grad_norm));
                }
                self.defer("gradient norm", norm);
            }
            let model = optim.step(lr, model, grads);
            if self.flush_due() {
                self.flush();
            }
            return (model, true);
        }
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

impl StepGuard {
    /// [`StepGuard::optimize`] under loss scaling: unscales the gradients, reads their norm back,
    /// and skips the step (halving the scale) when they overflowed, as `GradScaler` does. A loss
    /// that is not finite is reported under the run's policy as without scaling; overflowing
    /// gradients are expected and only counted, unless they persist (divergence).
    fn optimize_scaled<M: Module>(
        &self,
        scaler: &Mutex<ScalerState>,
        model: M,
        optim: &mut ModuleOptimizer,
        lr: ModuleLearningRate,
        mut grads: GradientsParams,
    ) -> (M, bool) {
        let scale = self.dynamic_scale();
        let Some(norm) = global_norm_tensor(&model, &grads) else {
            return (optim.step(lr, model, grads), true);
        };
        // The deferred losses and the norm in one read; the unscaled norm: ‖g/S‖ = ‖g‖/S.
        let (losses_finite, norm) = self.read_pending_and(vec![norm]);
        let norm = norm[0] / scale;
        let loss_failed = !losses_finite || std::mem::take(&mut self.lock().skip_next_update);
        let outcome = {
            let mut state = scaler.lock().unwrap_or_else(|p| p.into_inner());
            let outcome = state.scaler.update(norm);
            let (step, segments) = (self.clock.step(), self.clock.segments());
            let checkpoint = segments.segment_ending_at(step);
            if checkpoint > 0 && segments.steps(checkpoint - 1).end == step {
                let snapshot = state.scaler.clone();
                state.at_checkpoint.insert(checkpoint, snapshot);
            }
            outcome
        };
        if loss_failed {
            self.skipped();
            return (model, false);
        }
        match outcome {
            ScaledStep::Apply => {
                self.lock().consecutive_skips = 0;
                model.visit(&mut Scale { grads: &mut grads, factor: 1.0 / scale });
                if self.max_grad_norm > 0.0 {
                    clip_to(&model, &mut grads, norm, self.max_grad_norm);
                }
                (optim.step(lr, model, grads), true)
            }
            ScaledStep::Skip => (model, false),
            ScaledStep::Diverged => {
                let scale = self.dynamic_scale();
                self.report("gradient norm under loss scaling", norm);
                self.interrupter.stop(Some(&format!(
                    "the float16 gradients overflowed {MAX_OVERFLOWS_IN_A_ROW} steps in a row (loss scale down to {scale:e})"
                )));
                (model, false)
            }
        }
    }
}

/// Checks `loss` with the guard (when there is one) and back-propagates it, scaled for gradient
/// accumulation (and by the dynamic loss scale under float16).
pub fn guarded_backward(guard: Option<&StepGuard>, loss: &Tensor<1>) -> burn::tensor::Gradients {
    let scale = guard.map_or(1.0, |g| {
        g.check(loss);
        g.loss_scale * g.dynamic_scale()
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

/// The global L2 norm over every gradient of `model` (0 when there are none), read back.
pub fn global_norm<M: Module>(model: &M, grads: &GradientsParams) -> f64 {
    global_norm_tensor(model, grads).map_or(0.0, |norm| read_values(vec![norm])[0])
}

/// The global L2 norm over every gradient of `model`, on the device (`None` without gradients).
pub fn global_norm_tensor<M: Module>(model: &M, grads: &GradientsParams) -> Option<Tensor<1>> {
    let mut visitor = SquaredNorm { grads, total: None };
    model.visit(&mut visitor);
    visitor.total.map(|total| total.sqrt())
}

/// `min(1, max_norm / (norm + 1e-6))`, as `clip_grad_norm_` computes it, on the device.
pub fn clip_factor(norm: Tensor<1>, max_norm: f64) -> Tensor<1> {
    norm.add_scalar(1e-6).recip().mul_scalar(max_norm).clamp_max(1.0)
}

struct ScaleBy<'a> {
    grads: &'a mut GradientsParams,
    factor: Tensor<1>,
}

impl ModuleVisitor for ScaleBy<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.remove::<D>(param.id) {
            let factor = self.factor.clone().reshape([1usize; D]);
            self.grads.register(param.id, g * factor);
        }
    }
}

/// Multiplies every gradient by the one-element `factor`, on the device.
pub fn clip_by<M: Module>(model: &M, grads: &mut GradientsParams, factor: Tensor<1>) {
    model.visit(&mut ScaleBy { grads, factor });
}

/// Scales every gradient by `max_norm / (norm + 1e-6)` when `norm`, their global L2 norm, exceeds
/// `max_norm`, as `clip_grad_norm_`.
pub fn clip_to<M: Module>(model: &M, grads: &mut GradientsParams, norm: f64, max_norm: f64) {
    let factor = max_norm / (norm + 1e-6);
    if factor < 1.0 {
        model.visit(&mut Scale { grads, factor });
    }
}

#[cfg(test)]
mod tests {
    use burn::optim::AdamWConfig;
    use burn::tensor::{Device, Distribution, Int, TensorData};
    use burn::train::Interrupter;
    use vit_model::{Labels, ViTConfig, ViTForImageClassification, ViTForwardOptions};

    use super::*;
    use crate::run::segments::Segments;

    /// The host reads counter is process-wide: these tests take turns.
    static SERIAL: Mutex<()> = Mutex::new(());

    /// A one-layer, 8-wide classifier of 8x8 images on the autodiff CPU device, and a batch of 4.
    fn tiny_classifier_and_batch() -> (ViTForImageClassification, Tensor<4>, Tensor<1, Int>) {
        let device = Device::flex().autodiff();
        let config = ViTConfig {
            hidden_size: 8,
            num_hidden_layers: 1,
            num_attention_heads: 2,
            intermediate_size: 16,
            image_size: 8,
            patch_size: 4,
            ..ViTConfig::default()
        }
        .with_num_labels(3);
        let pixels = Tensor::<4>::random([4, 3, 8, 8], Distribution::Default, &device);
        let labels = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 1, 2, 0], [4]), &device);
        (ViTForImageClassification::new(&config, &device), pixels, labels)
    }

    /// Trains a tiny classifier for `micro_batches` under a guard with `policy` (flushing every 4
    /// steps of 10-step segments), the loss multiplied by NaN at micro-batch `poison`; returns the
    /// guard and the host reads the steps made.
    /// The caller holds [`SERIAL`] for its whole test: the read counter is the process's.
    fn train(policy: NonFinitePolicy, micro_batches: usize, poison: Option<usize>) -> (StepGuard, usize) {
        let (mut model, pixels, labels) = tiny_classifier_and_batch();
        let mut optim: ModuleOptimizer = AdamWConfig::new().init();
        let clock = RunClock::new(Segments::new(10, 1, 3, None, None), 0);
        let guard = StepGuard::new(policy, Interrupter::new(), 1.0, 1, clock.clone()).flushing_every(4);
        let before = host_reads();
        clock.begin_next_segment();
        for micro in 1..=micro_batches {
            if micro > 10 && (micro - 1) % 10 == 0 {
                clock.begin_next_segment();
            }
            clock.deliver(4);
            let out = model
                .forward_with(pixels.clone(), Some(Labels::Classes(labels.clone())), ViTForwardOptions::default())
                .unwrap();
            let mut loss = out.loss.unwrap();
            if poison == Some(micro) {
                loss = loss.mul_scalar(f32::NAN);
            }
            let grads = GradientsParams::from_grads(guarded_backward(Some(&guard), &loss), &model);
            model = guarded_optimize(Some(guard.clone()), model, &mut optim, 1e-3.into(), grads).0;
        }
        (guard.clone(), host_reads() - before)
    }

    #[test]
    fn the_default_step_reads_nothing_back_between_flushes() {
        let _turn = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        // 12 steps over two 10-step segments, flushed every 4 steps: after steps 4, 8 and 10
        // (segment end) and 12, i.e. 4 reads for 12 steps instead of 24.
        let (guard, reads) = train(NonFinitePolicy::Stop, 12, None);
        assert_eq!(reads, 4);
        assert!(guard.events().is_empty() && guard.flush());
        // Nothing pending, nothing read.
        let idle = host_reads();
        assert!(guard.may_save());
        assert_eq!(host_reads(), idle);
    }

    #[test]
    fn a_deferred_non_finite_loss_is_found_at_the_next_flush_with_its_micro_batch() {
        let _turn = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let (guard, _) = train(NonFinitePolicy::Stop, 3, Some(2));
        assert!(guard.events().is_empty(), "not read yet: no flush before step 4");
        assert!(!guard.may_save(), "the checkpointer's flush finds it");
        let events = guard.events();
        assert_eq!((events[0].micro_batch, events[0].what), (2, "loss"), "{events:?}");
        assert!(guard.interrupter.should_stop());
    }

    #[test]
    fn skipping_reads_the_loss_and_the_norm_at_every_step() {
        let _turn = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let (guard, reads) = train(NonFinitePolicy::Skip { max_consecutive: 3 }, 5, Some(3));
        // Loss and norm of each step, the norm of the skipped step not computed.
        assert_eq!(reads, 2 * 5 - 1);
        assert_eq!(guard.events().len(), 1);
        assert!(!guard.gave_up());
    }

    #[test]
    fn float16_loss_scaling_skips_overflowing_steps_and_lowers_the_scale_until_they_fit() {
        let _turn = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let _f16 = vit_model::autocast(vit_model::Precision::F16);
        let (mut model, pixels, labels) = tiny_classifier_and_batch();
        let mut optim: ModuleOptimizer = AdamWConfig::new().init();
        let clock = RunClock::new(Segments::new(10, 1, 3, None, None), 0);
        let guard = StepGuard::new(NonFinitePolicy::Stop, Interrupter::new(), 1.0, 1, clock.clone())
            .with_loss_scaling(LossScaler::default());
        clock.begin_next_segment();
        let mut applied = 0;
        let reads_before = host_reads();
        for _ in 0..30 {
            clock.deliver(4);
            let out = model
                .forward_with(pixels.clone(), Some(Labels::Classes(labels.clone())), ViTForwardOptions::default())
                .unwrap();
            // A loss this large times 2^16 overflows float16 in the backward pass.
            let loss = out.loss.unwrap().mul_scalar(1e3);
            let grads = GradientsParams::from_grads(guarded_backward(Some(&guard), &loss), &model);
            let (next, stepped) = guarded_optimize(Some(guard.clone()), model, &mut optim, 1e-3.into(), grads);
            model = next;
            applied += usize::from(stepped);
        }
        assert_eq!(host_reads() - reads_before, 30, "one read per step: the losses and the norm together");
        let scaler = guard.loss_scaler().unwrap();
        assert!(scaler.skipped > 0 && scaler.scale < INITIAL_SCALE, "{scaler:?}");
        // The state at each checkpoint's last step (10 steps a segment), for its manifest.
        assert_eq!(guard.loss_scaler_at_checkpoint(3), Some(scaler.clone()));
        assert_eq!(guard.loss_scaler_at_checkpoint(2), None, "older states are dropped");
        assert_eq!(applied + scaler.skipped, 30);
        assert!(applied > 0, "no step fitted float16: {scaler:?}");
        assert!(guard.events().is_empty(), "overflows are not errors");
        assert!(!guard.interrupter.should_stop());
        ensure_finite_weights(&model);
    }

    fn ensure_finite_weights(model: &ViTForImageClassification) {
        let w = model.vit.embeddings.patch_embeddings.projection.weight.val().into_data();
        assert!(w.convert::<f32>().iter::<f32>().all(f32::is_finite));
    }
}
