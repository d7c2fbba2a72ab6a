//! The models as burn-train sees them: one training and one inference step per task.

use burn::module::Module;
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::Tensor;
use burn::train::metric::{Adaptor, ItemLazy, LossInput};
use burn::train::{ClassificationOutput, InferenceStep, TrainOutput, TrainStep};
use vit_data::ImageBatch;
use vit_model::autocast;
use vit_model::loss::soft_target_cross_entropy;
use vit_model::{
    Labels, Precision, StochasticDepth, ViTForImageClassification, ViTForMaskedImageModeling, ViTForwardOptions,
};

use super::ema::{EmaRun, ema_update};
use super::guard::{StepGuard, guarded_backward, guarded_optimize};
use crate::report::samples::SampleWriter;

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
    /// Stochastic depth while training.
    #[module(skip)]
    pub drop_path: DropPathSchedule,
    /// The moving average of the weights (`run.ema_decay`), checkpointed with the model.
    pub ema: Option<ViTForImageClassification>,
    /// Its schedule and validation counts.
    #[module(skip)]
    pub ema_run: Option<EmaRun>,
    /// The precision of the matrix products (`run.precision`).
    #[module(skip)]
    pub precision: Precision,
}

/// `model.drop_path_rate` with the run seed: each training micro-batch gets its own draws, keyed
/// by the run's position, so a resumed run draws what the uninterrupted one did.
#[derive(Clone, Copy, Debug, Default)]
pub struct DropPathSchedule {
    /// The last layer's drop probability (0 = off).
    pub rate: f64,
    /// The run seed.
    pub seed: u64,
}

impl DropPathSchedule {
    /// The stochastic depth of the micro-batch the guard's clock is at, for the share of it
    /// starting at sample `first_sample` (`None` when off).
    fn at(&self, guard: Option<&StepGuard>, first_sample: usize) -> Option<StochasticDepth> {
        let micro_batch = guard.map_or(0, |g| g.clock.micro_batch()) as u64;
        (self.rate > 0.0).then(|| StochasticDepth {
            rate: self.rate,
            seed: self.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ micro_batch,
            first_sample,
        })
    }
}

impl ClassifierStep {
    fn forward(&self, batch: ImageBatch, stochastic_depth: Option<StochasticDepth>) -> ClassificationOutput {
        let options = ViTForwardOptions {
            interpolate_pos_encoding: self.interpolate_pos_encoding,
            stochastic_depth,
            ..Default::default()
        };
        if let Some(soft_targets) = batch.targets {
            // Mixup/CutMix: the soft targets carry the label smoothing; accuracy is reported
            // against each sample's dominant label.
            let out = self
                .model
                .forward_with(batch.pixel_values, None, options)
                .expect("batch shapes are checked when the run starts");
            let loss = soft_target_cross_entropy(out.logits.clone(), soft_targets);
            let targets = batch.dominant_labels.unwrap_or(batch.labels);
            return ClassificationOutput { loss, output: out.logits, targets };
        }
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
        let _autocast = autocast(self.precision);
        let depth = self.drop_path.at(self.guard.as_ref(), batch.first_sample);
        let item = self.forward(batch, depth);
        let grads = guarded_backward(self.guard.as_ref(), &item.loss);
        TrainOutput::new(self, grads, per_image(item))
    }

    fn optimize(self, optim: &mut ModuleOptimizer, lr: ModuleLearningRate, grads: GradientsParams) -> Self {
        let guard = self.guard.clone();
        let (mut next, stepped) = guarded_optimize(guard.clone(), self, optim, lr, grads);
        if stepped && let (Some(run), Some(ema)) = (&next.ema_run, next.ema.take()) {
            let update = guard.as_ref().map_or(1, |g| g.clock.step());
            next.ema = Some(ema_update(ema, &next.model, run.schedule.decay_at(update)));
        }
        next
    }
}

impl ClassifierStep {
    /// Runs the moving average on a validation batch and leaves its counts for the renderer.
    fn validate_ema(&self, batch: &ImageBatch) {
        let (Some(ema), Some(run)) = (&self.ema, &self.ema_run) else { return };
        let options =
            ViTForwardOptions { interpolate_pos_encoding: self.interpolate_pos_encoding, ..Default::default() };
        let Ok(out) = ema.forward_with(batch.pixel_values.clone(), None, options) else { return };
        let logits = out.logits.into_data().convert::<f32>().try_into_vec::<f32>();
        let labels = batch.labels.clone().into_data().convert::<i64>().try_into_vec::<i64>();
        if let (Ok(logits), Ok(labels)) = (logits, labels) {
            let labels: Vec<usize> = labels.into_iter().map(|l| l.max(0) as usize).collect();
            let step = self.guard.as_ref().map_or(0, |g| g.clock.step());
            run.validation.add(step, &run.classes, &logits, &labels);
        }
    }
}

impl InferenceStep for ClassifierStep {
    type Input = ImageBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: ImageBatch) -> ClassificationOutput {
        let _autocast = autocast(self.precision);
        self.validate_ema(&batch);
        per_image(self.forward(batch, None))
    }
}

/// The item with its mean loss repeated once per image: burn-train's loss metric weighs each
/// batch by the loss tensor's length, so an epoch's loss is then the mean over its images (as
/// `transformers`' Trainer reports it), not over its batches, whatever the batch size.
fn per_image(mut item: ClassificationOutput) -> ClassificationOutput {
    let [images] = item.targets.dims();
    item.loss = item.loss.detach().expand([images]);
    item
}

/// The loss of a SimMIM step, for burn-train's loss metric.
#[derive(Debug, Clone)]
pub struct SimMimOutput {
    /// The masked L1 loss.
    pub loss: Tensor<1>,
    /// Images in the batch (the loss metric's weight: epoch losses are means over images).
    pub images: usize,
}

impl ItemLazy for SimMimOutput {
    fn sync(self) -> Result<Self, burn::tensor::ExecutionError> {
        self.loss.device().flush()?;
        Ok(Self { loss: self.loss.without_autodiff(), images: self.images })
    }
}

impl Adaptor<LossInput> for SimMimOutput {
    fn adapt(&self) -> LossInput {
        LossInput::new(self.loss.clone().expand([self.images.max(1)]))
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
    /// Stochastic depth while training.
    #[module(skip)]
    pub drop_path: DropPathSchedule,
    /// The precision of the matrix products (`run.precision`).
    #[module(skip)]
    pub precision: Precision,
}

impl SimMimStep {
    fn forward(&self, batch: ImageBatch, stochastic_depth: Option<StochasticDepth>) -> (SimMimOutput, Tensor<4>) {
        let options =
            ViTForwardOptions { bool_masked_pos: batch.bool_masked_pos, stochastic_depth, ..Default::default() };
        let images = batch.pixel_values.dims()[0];
        let out =
            self.model.forward_with(batch.pixel_values, options).expect("batch shapes are checked when the run starts");
        (SimMimOutput { loss: out.loss.expect("the SimMIM batcher makes masks"), images }, out.reconstruction)
    }
}

impl TrainStep for SimMimStep {
    type Input = ImageBatch;
    type Output = SimMimOutput;

    fn step(&self, batch: ImageBatch) -> TrainOutput<SimMimOutput> {
        let _autocast = autocast(self.precision);
        let (pixels, mask) = (batch.pixel_values.clone(), batch.bool_masked_pos.clone());
        let depth = self.drop_path.at(self.guard.as_ref(), batch.first_sample);
        let (item, reconstruction) = self.forward(batch, depth);
        let grads = guarded_backward(self.guard.as_ref(), &item.loss);
        if let (Some(writer), Some(guard), Some(mask)) = (&self.samples, &self.guard, mask) {
            let step = guard.clock.micro_batch();
            if writer.claim(step) {
                writer.write_in_background(step, pixels, mask, reconstruction.without_autodiff());
            }
        }
        TrainOutput::new(self, grads, item)
    }

    fn optimize(self, optim: &mut ModuleOptimizer, lr: ModuleLearningRate, grads: GradientsParams) -> Self {
        guarded_optimize(self.guard.clone(), self, optim, lr, grads).0
    }
}

impl InferenceStep for SimMimStep {
    type Input = ImageBatch;
    type Output = SimMimOutput;

    fn step(&self, batch: ImageBatch) -> SimMimOutput {
        let _autocast = autocast(self.precision);
        self.forward(batch, None).0
    }
}
