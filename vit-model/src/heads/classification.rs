//! Image classification (HF `ViTForImageClassification`): a linear classifier on the CLS token.

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};

use crate::architecture::ModelKind;
use crate::config::{ProblemType, ViTConfig};
use crate::error::{Result, ViTError};
use crate::fused_layers::FusedLinear;
use crate::init;
use crate::loss;
use crate::model::{ViTForwardOptions, ViTModel};

/// Training targets of a classifier.
#[derive(Debug, Clone)]
pub enum Labels {
    /// One class index per image, `[B]` (single-label classification).
    Classes(Tensor<1, Int>),
    /// One row of float targets per image, `[B, num_labels]` (multi-label or regression).
    Targets(Tensor<2>),
}

/// What [`ViTForImageClassification::forward_with`] returns.
#[derive(Debug, Clone)]
pub struct ImageClassifierOutput {
    /// Classifier outputs, `[B, num_labels]`.
    pub logits: Tensor<2>,
    /// The loss, `[1]`, when labels were given.
    pub loss: Option<Tensor<1>>,
    /// The embeddings and every layer's output, when asked for.
    pub hidden_states: Option<Vec<Tensor<3>>>,
    /// Every layer's attention probabilities, when asked for.
    pub attentions: Option<Vec<Tensor<4>>>,
    /// The encoder's final-LayerNorm output, always computed on the way.
    pub last_hidden_state: Tensor<3>,
}

/// A ViT encoder (no pooler) with a linear classifier on the final CLS token.
#[derive(Module, Debug)]
pub struct ViTForImageClassification {
    /// The encoder.
    pub vit: ViTModel,
    /// `hidden_size` → `num_labels`.
    pub classifier: FusedLinear,
    /// The loss used when `problem_type` is not set: inferred from the labels, as HF does.
    #[module(skip)]
    pub problem_type: Option<ProblemType>,
    /// Label smoothing of the single-label loss (0 = none, HF's model default).
    #[module(skip)]
    pub label_smoothing: f32,
}

impl ViTForImageClassification {
    /// Creates a freshly initialised classifier for `config.num_labels()` classes. Nothing is
    /// checked first: for a config from outside the program, use
    /// [`ViTForImageClassification::try_new`].
    pub fn new(config: &ViTConfig, device: &Device) -> Self {
        Self {
            vit: ViTModel::new(config, false, false, device),
            classifier: Self::new_classifier(config, device),
            problem_type: config.problem_type,
            label_smoothing: 0.0,
        }
    }

    /// [`ViTForImageClassification::new`] after validating `config` and checking that the
    /// model's f32 weights take at most `max_weight_bytes` (e.g.
    /// [`crate::size::DEFAULT_MAX_WEIGHT_BYTES`]), so that an absurd config is an error rather
    /// than an allocation failure.
    pub fn try_new(config: &ViTConfig, max_weight_bytes: u64, device: &Device) -> Result<Self> {
        config.validate()?;
        config.check_size_of(ModelKind::ImageClassification, max_weight_bytes)?;
        Ok(Self::new(config, device))
    }

    /// A freshly initialised classifier layer for `config`.
    pub fn new_classifier(config: &ViTConfig, device: &Device) -> FusedLinear {
        init::linear(config.hidden_size, config.num_labels(), true, config.initializer_range, device)
    }

    /// Number of output classes.
    pub fn num_labels(&self) -> usize {
        self.classifier.weight.dims()[1]
    }

    /// Logits of `pixel_values` `[B, C, H, W]`.
    pub fn forward(&self, pixel_values: Tensor<4>) -> Result<Tensor<2>> {
        Ok(self.forward_with(pixel_values, None, ViTForwardOptions::default())?.logits)
    }

    /// Logits, the loss when `labels` are given, and the requested extras.
    pub fn forward_with(
        &self,
        pixel_values: Tensor<4>,
        labels: Option<Labels>,
        options: ViTForwardOptions,
    ) -> Result<ImageClassifierOutput> {
        let out = self.vit.forward_with(pixel_values, options)?;
        let cls = out.last_hidden_state.clone().narrow(1, 0, 1).squeeze_dim::<2>(1);
        let logits = self.classifier.forward(cls);
        let loss = labels.map(|labels| self.loss(logits.clone(), labels)).transpose()?;
        Ok(ImageClassifierOutput {
            logits,
            loss,
            hidden_states: out.hidden_states,
            attentions: out.attentions,
            last_hidden_state: out.last_hidden_state,
        })
    }

    /// The loss of `logits` against `labels`, by `problem_type` (inferred as HF does when unset:
    /// one label → regression; class indices → single-label; float targets → multi-label).
    pub fn loss(&self, logits: Tensor<2>, labels: Labels) -> Result<Tensor<1>> {
        let [batch, num_labels] = logits.dims();
        let problem = match (self.problem_type, &labels) {
            (Some(p), _) => p,
            (None, _) if num_labels == 1 => ProblemType::Regression,
            (None, Labels::Classes(_)) => ProblemType::SingleLabelClassification,
            (None, Labels::Targets(_)) => ProblemType::MultiLabelClassification,
        };
        let bad = |m: String| Err(ViTError::InvalidInput(m));
        match (problem, labels) {
            (ProblemType::SingleLabelClassification, Labels::Classes(classes)) => {
                if classes.dims() != [batch] {
                    return bad(format!("labels have shape {:?}, expected [{batch}]", classes.dims()));
                }
                Ok(loss::cross_entropy(logits, classes, self.label_smoothing))
            }
            (ProblemType::Regression, Labels::Targets(targets))
            | (ProblemType::MultiLabelClassification, Labels::Targets(targets)) => {
                if targets.dims() != [batch, num_labels] {
                    return bad(format!("labels have shape {:?}, expected [{batch}, {num_labels}]", targets.dims()));
                }
                Ok(if problem == ProblemType::Regression {
                    loss::mse(logits, targets)
                } else {
                    loss::binary_cross_entropy_with_logits(logits, targets)
                })
            }
            (ProblemType::Regression, Labels::Classes(values)) if num_labels == 1 => {
                let targets = values.float().reshape([batch, 1]);
                Ok(loss::mse(logits, targets))
            }
            (problem, _) => bad(format!(
                "labels of this kind do not fit problem_type {problem:?}: single-label classification \
                 takes class indices, regression and multi-label classification take float targets"
            )),
        }
    }
}
