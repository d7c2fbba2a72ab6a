//! The models as burn-train sees them: one training and one inference step per task.

use burn::module::Module;
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::Tensor;
use burn::train::metric::{Adaptor, ItemLazy, LossInput};
use burn::train::{ClassificationOutput, InferenceStep, TrainOutput, TrainStep};
use vit_data::ImageBatch;
use vit_model::{Labels, ViTForImageClassification, ViTForMaskedImageModeling, ViTForwardOptions};

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
}

impl ClassifierStep {
    fn forward(&self, batch: ImageBatch) -> ClassificationOutput {
        let options =
            ViTForwardOptions { interpolate_pos_encoding: self.interpolate_pos_encoding, ..Default::default() };
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
        let out =
            self.model.forward_with(batch.pixel_values, options).expect("batch shapes are checked when the run starts");
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
            let step = guard.clock.micro_batch();
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
