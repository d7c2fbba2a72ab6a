//! The models as burn-train sees them: one training and one inference step per task, global
//! gradient-norm clipping as `torch.nn.utils.clip_grad_norm_`, and a guard against non-finite
//! losses.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::tensor::Tensor;
use burn::train::metric::{Adaptor, ItemLazy, LossInput};
use burn::train::{ClassificationOutput, InferenceStep, Interrupter, TrainOutput, TrainStep};
use vit_data::ImageBatch;

use crate::samples::SampleWriter;
use vit_model::{Labels, ViTForImageClassification, ViTForMaskedImageModeling, ViTForwardOptions};

/// What happens on a NaN or infinite loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NonFinitePolicy {
    /// Stop the run, keeping the last good checkpoint.
    Stop,
    /// Skip the optimizer step and go on.
    Skip,
}

/// State shared by the steps of a run and the code that launched it.
#[derive(Clone)]
pub struct StepGuard {
    /// Micro-batches of the run so far, those before a resume included.
    pub micro_steps: Arc<AtomicUsize>,
    /// Micro-batch numbers whose loss was not finite.
    pub non_finite: Arc<Mutex<Vec<(usize, f32)>>>,
    /// Whether the micro-batch being optimised had a non-finite loss.
    skip_update: Arc<AtomicUsize>,
    /// What to do about it.
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
            .field("micro_steps", &self.micro_steps)
            .field("policy", &self.policy)
            .field("max_grad_norm", &self.max_grad_norm)
            .finish()
    }
}

impl StepGuard {
    /// A guard for a run that has trained `done` micro-batches before this process.
    pub fn new(policy: NonFinitePolicy, interrupter: Interrupter, max_grad_norm: f64, accumulation: usize, done: usize) -> Self {
        Self {
            micro_steps: Arc::new(AtomicUsize::new(done)),
            non_finite: Arc::new(Mutex::new(Vec::new())),
            skip_update: Arc::new(AtomicUsize::new(0)),
            policy,
            interrupter,
            max_grad_norm,
            loss_scale: 1.0 / accumulation.max(1) as f64,
        }
    }

    /// Checks a loss; on a non-finite value records it and applies the policy.
    fn check(&self, loss: &Tensor<1>) {
        let step = self.micro_steps.fetch_add(1, Ordering::SeqCst) + 1;
        let value = loss.clone().into_scalar::<f32>();
        if !value.is_finite() {
            self.non_finite.lock().expect("guard lock").push((step, value));
            self.skip_update.fetch_add(1, Ordering::SeqCst);
            if self.policy == NonFinitePolicy::Stop {
                self.interrupter.stop(Some(&format!("non-finite loss ({value}) at micro-batch {step}")));
            }
        }
    }

    fn take_skip(&self) -> bool {
        self.skip_update.swap(0, Ordering::SeqCst) > 0
    }

    /// Clips `grads` to the global norm and applies the step, unless a non-finite loss went in.
    fn optimize<M: Module>(&self, model: M, optim: &mut ModuleOptimizer, lr: ModuleLearningRate, mut grads: GradientsParams) -> M {
        if self.take_skip() {
            return model;
        }
        if self.max_grad_norm > 0.0 {
            clip_global_norm(&model, &mut grads, self.max_grad_norm);
        }
        optim.step(lr, model, grads)
    }
}

/// Checks `loss` with the guard (when there is one) and back-propagates it, scaled for gradient
/// accumulation.
fn guarded_backward(guard: Option<&StepGuard>, loss: &Tensor<1>) -> burn::tensor::Gradients {
    let scale = guard.map_or(1.0, |g| {
        g.check(loss);
        g.loss_scale
    });
    loss.clone().mul_scalar(scale).backward()
}

/// The optimizer step of a model with an optional guard.
fn guarded_optimize<M: Module>(
    guard: Option<StepGuard>,
    model: M,
    optim: &mut ModuleOptimizer,
    lr: ModuleLearningRate,
    grads: GradientsParams,
) -> M {
    match guard {
        Some(guard) => guard.optimize(model, optim, lr, grads),
        None => optim.step(lr, model, grads),
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

/// Scales every gradient by `max_norm / (norm + 1e-6)` when the global L2 norm over all of
/// them exceeds `max_norm`, as `clip_grad_norm_`. Returns the norm before clipping.
pub fn clip_global_norm<M: Module>(model: &M, grads: &mut GradientsParams, max_norm: f64) -> f64 {
    let mut visitor = SquaredNorm { grads, total: None };
    model.visit(&mut visitor);
    let Some(total) = visitor.total else { return 0.0 };
    let norm = (total.into_scalar::<f32>() as f64).sqrt();
    let factor = max_norm / (norm + 1e-6);
    if factor < 1.0 {
        model.visit(&mut Scale { grads, factor });
    }
    norm
}

/// `ViTForImageClassification` under burn-train.
#[derive(Module, Debug)]
pub struct ClassifierStep {
    /// The model.
    pub model: ViTForImageClassification,
    /// Run at the data's resolution with resized position embeddings.
    #[module(skip)]
    pub interpolate_pos_encoding: bool,
    /// The run's guard.
    #[module(skip)]
    pub guard: Option<StepGuard>,
}

impl ClassifierStep {
    fn forward(&self, batch: ImageBatch) -> ClassificationOutput {
        let options = ViTForwardOptions { interpolate_pos_encoding: self.interpolate_pos_encoding, ..Default::default() };
        let labels = batch.labels.clone();
        let out = self
            .model
            .forward_with(batch.pixel_values, Some(Labels::Classes(labels.clone())), options)
            .expect("batch shapes are checked when the run starts");
        let loss = out.loss.expect("labels were given");
        ClassificationOutput { loss, output: out.logits, targets: labels }
    }
}

impl TrainStep for ClassifierStep {
    type Input = ImageBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: ImageBatch) -> TrainOutput<ClassificationOutput> {
        let item = self.forward(batch);
        let grads = guarded_backward(self.guard.as_ref(), &item.loss);
        TrainOutput::new(self, grads, item)
    }

    fn optimize(self, optim: &mut ModuleOptimizer, lr: ModuleLearningRate, grads: GradientsParams) -> Self {
        guarded_optimize(self.guard.clone(), self, optim, lr, grads)
    }
}

impl InferenceStep for ClassifierStep {
    type Input = ImageBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: ImageBatch) -> ClassificationOutput {
        self.forward(batch)
    }
}

/// The loss of a SimMIM step, for burn-train's loss metric.
#[derive(Debug, Clone)]
pub struct SimMimOutput {
    /// The masked L1 loss.
    pub loss: Tensor<1>,
}

impl ItemLazy for SimMimOutput {
    fn sync(self) -> Result<Self, burn::tensor::ExecutionError> {
        self.loss.device().flush()?;
        Ok(Self { loss: self.loss.without_autodiff() })
    }
}

impl Adaptor<LossInput> for SimMimOutput {
    fn adapt(&self) -> LossInput {
        LossInput::new(self.loss.clone())
    }
}

/// `ViTForMaskedImageModeling` under burn-train.
#[derive(Module, Debug)]
pub struct SimMimStep {
    /// The model.
    pub model: ViTForMaskedImageModeling,
    /// The run's guard.
    #[module(skip)]
    pub guard: Option<StepGuard>,
    /// Writes reconstruction grids now and then during training.
    #[module(skip)]
    pub samples: Option<SampleWriter>,
}

impl SimMimStep {
    fn forward(&self, batch: ImageBatch) -> (SimMimOutput, Tensor<4>) {
        let options = ViTForwardOptions { bool_masked_pos: batch.bool_masked_pos, ..Default::default() };
        let out = self.model.forward_with(batch.pixel_values, options).expect("batch shapes are checked when the run starts");
        (SimMimOutput { loss: out.loss.expect("the SimMIM batcher makes masks") }, out.reconstruction)
    }
}

impl TrainStep for SimMimStep {
    type Input = ImageBatch;
    type Output = SimMimOutput;

    fn step(&self, batch: ImageBatch) -> TrainOutput<SimMimOutput> {
        let (pixels, mask) = (batch.pixel_values.clone(), batch.bool_masked_pos.clone());
        let (item, reconstruction) = self.forward(batch);
        let grads = guarded_backward(self.guard.as_ref(), &item.loss);
        if let (Some(writer), Some(guard), Some(mask)) = (&self.samples, &self.guard, &mask) {
            let step = guard.micro_steps.load(Ordering::SeqCst);
            if writer.due(step)
                && let Err(e) = writer.write(step, &pixels, mask, &reconstruction)
            {
                eprintln!("warning: cannot write the reconstruction grid of step {step}: {e:#}");
            }
        }
        TrainOutput::new(self, grads, item)
    }

    fn optimize(self, optim: &mut ModuleOptimizer, lr: ModuleLearningRate, grads: GradientsParams) -> Self {
        guarded_optimize(self.guard.clone(), self, optim, lr, grads)
    }
}

impl InferenceStep for SimMimStep {
    type Input = ImageBatch;
    type Output = SimMimOutput;

    fn step(&self, batch: ImageBatch) -> SimMimOutput {
        self.forward(batch).0
    }
}
