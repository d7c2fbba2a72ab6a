//! The run configuration: one TOML file (plus `--set section.key=value` overrides, see
//! [`super::overrides`]), typed field by field and validated with errors that name the field.

use std::path::{Path, PathBuf};
use vit_model::Precision;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use vit_data::{Augmentation, AutoAugment, EraseMode, MixupMode, Normalization, Resample};
use vit_model::ViTConfig;

use super::schedule::Decay;
use crate::device::DeviceSpec;

/// What a run trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// Supervised image classification (`ViTForImageClassification`).
    Classification,
    /// SimMIM masked-image-modelling pretraining (`ViTForMaskedImageModeling`).
    Simmim,
}

/// An architecture to train from scratch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Preset {
    /// ViT-Ti/16: width 192, 12 layers, 3 heads.
    #[serde(rename = "vit-tiny")]
    Tiny,
    /// ViT-S/16: width 384, 12 layers, 6 heads.
    #[serde(rename = "vit-small")]
    Small,
    /// ViT-B/16: width 768, 12 layers, 12 heads.
    #[serde(rename = "vit-base")]
    Base,
    /// ViT-L/16: width 1024, 24 layers, 16 heads.
    #[serde(rename = "vit-large")]
    Large,
}

impl Preset {
    /// The preset's HF configuration (224 px, patch 16).
    pub fn config(self) -> ViTConfig {
        match self {
            Preset::Tiny => ViTConfig::tiny(),
            Preset::Small => ViTConfig::small(),
            Preset::Base => ViTConfig::base(),
            Preset::Large => ViTConfig::large(),
        }
    }
}

/// Where the images come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatasetKind {
    /// The CIFAR-10 binary release.
    Cifar10,
    /// The CIFAR-100 binary release (fine labels).
    Cifar100,
    /// One sub-directory of images per class.
    Imagefolder,
}

impl DatasetKind {
    /// The name as written in a config.
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Cifar10 => "cifar10",
            DatasetKind::Cifar100 => "cifar100",
            DatasetKind::Imagefolder => "imagefolder",
        }
    }
}

/// Which images pick the best checkpoint and early stopping (`data.validation`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValidationSource {
    /// A seeded `data.validation_split` of the training images (or `data.validation_dir`).
    #[default]
    Split,
    /// The test set itself (CIFAR's test batch, or `data.test_dir`): the model is then chosen on
    /// the images it is reported on, so its test accuracy is optimistic. Only when spelled out.
    Test,
}

/// A whole run: task, model, data, optimizer and run settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// `classification` or `simmim`.
    pub task: Task,
    /// Where the model comes from.
    pub model: ModelSection,
    /// The dataset and its preprocessing.
    pub data: DataSection,
    /// AdamW, schedule, clipping.
    #[serde(default)]
    pub optimizer: OptimizerSection,
    /// Length, checkpoints, output.
    #[serde(default)]
    pub run: RunSection,
}

/// `[model]`: an HF model directory to start from, or an architecture.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// An HF model to fine-tune: a directory (`config.json` + `model.safetensors`) or a Hub id
    /// `owner/name[@revision]`, fetched into Hugging Face's cache.
    pub pretrained: Option<PathBuf>,
    /// An architecture to train from scratch: `vit-tiny`, `vit-small`, `vit-base`, `vit-large`.
    pub preset: Option<Preset>,
    /// Image side the model is made for (default: the data's image size).
    pub image_size: Option<usize>,
    /// Patch side (default 16).
    pub patch_size: Option<usize>,
    /// Image channels: 1 (grayscale) or 3 (RGB, the default). A pretrained model's comes from its
    /// `config.json`. With 1, colour images are converted as Pillow's `convert("L")`.
    pub num_channels: Option<usize>,
    /// Overrides of the preset's width.
    pub hidden_size: Option<usize>,
    /// Overrides of the preset's depth.
    pub num_hidden_layers: Option<usize>,
    /// Overrides of the preset's heads.
    pub num_attention_heads: Option<usize>,
    /// Overrides of the preset's MLP width.
    pub intermediate_size: Option<usize>,
    /// Overrides of the preset's activation.
    pub hidden_act: Option<String>,
    /// Dropout after embeddings and dense outputs.
    pub hidden_dropout_prob: Option<f64>,
    /// Dropout on attention probabilities.
    pub attention_probs_dropout_prob: Option<f64>,
    /// Stochastic depth (timm's `drop_path_rate`): the last layer's residual branches are dropped
    /// per sample with this probability, earlier layers linearly less; training only, no weights.
    #[serde(default)]
    pub drop_path_rate: f64,
    /// Whether q, k, v have biases.
    pub qkv_bias: Option<bool>,
    /// Initialisation std.
    pub initializer_range: Option<f64>,
    /// LayerNorm epsilon.
    pub layer_norm_eps: Option<f64>,
    /// SimMIM decoder stride (default: the patch size).
    pub encoder_stride: Option<usize>,
    /// Number of labels (default: the dataset's classes).
    pub num_labels: Option<usize>,
    /// Re-initialise checkpoint weights whose shapes differ (e.g. another number of classes).
    #[serde(default)]
    pub ignore_mismatched_sizes: bool,
    /// Resize position embeddings when the data's image size differs from the model's.
    #[serde(default)]
    pub interpolate_pos_encoding: bool,
    /// The largest model (float32 weights, GiB) a run may build or load; a config beyond it is an
    /// error with the estimate, before anything is allocated.
    #[serde(default = "default_max_weight_gib")]
    pub max_weight_gib: f64,
}

fn default_max_weight_gib() -> f64 {
    (vit_model::DEFAULT_MAX_WEIGHT_BYTES >> 30) as f64
}

impl ModelSection {
    /// `max_weight_gib` in bytes.
    pub fn max_weight_bytes(&self) -> u64 {
        (self.max_weight_gib * (1u64 << 30) as f64) as u64
    }

    /// The architecture fields that are set: they shape a model from scratch and cannot apply to
    /// a pretrained one.
    pub fn architecture_fields_set(&self) -> Vec<&'static str> {
        let set = [
            ("image_size", self.image_size.is_some()),
            ("patch_size", self.patch_size.is_some()),
            ("num_channels", self.num_channels.is_some()),
            ("hidden_size", self.hidden_size.is_some()),
            ("num_hidden_layers", self.num_hidden_layers.is_some()),
            ("num_attention_heads", self.num_attention_heads.is_some()),
            ("intermediate_size", self.intermediate_size.is_some()),
            ("hidden_act", self.hidden_act.is_some()),
            ("qkv_bias", self.qkv_bias.is_some()),
            ("initializer_range", self.initializer_range.is_some()),
            ("layer_norm_eps", self.layer_norm_eps.is_some()),
            ("encoder_stride", self.encoder_stride.is_some()),
        ];
        set.into_iter().filter(|(_, on)| *on).map(|(name, _)| name).collect()
    }
}

/// `[data]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    /// `cifar10`, `cifar100` or `imagefolder`.
    pub dataset: DatasetKind,
    /// CIFAR: the directory holding (or to receive) the binary release. ImageFolder: the root
    /// with one sub-directory per class (split by `validation_split` unless `validation_dir`).
    pub path: PathBuf,
    /// ImageFolder: a separate validation root with the same classes.
    pub validation_dir: Option<PathBuf>,
    /// CIFAR: download the official archive when absent.
    #[serde(default)]
    pub download: bool,
    /// Side of the images fed to the model.
    pub image_size: usize,
    /// Training augmentation: `none`, `random-resized-crop` (RandomResizedCrop + flip, HF's
    /// run_image_classification), `pad-crop-flip` (pad 4 + random crop + flip, for small images).
    #[serde(default = "default_augmentation")]
    pub augmentation: Augmentation,
    /// Share of the training images held out for validation, seeded by `run.seed` (default 0.15
    /// for an ImageFolder as HF, 0.1 for CIFAR; 0 only with `validation = "test"`).
    pub validation_split: Option<f64>,
    /// What validation runs on: `split` (the held-out share or `validation_dir`, the default) or
    /// `test` (the test set; then the test numbers are not held out).
    #[serde(default)]
    pub validation: ValidationSource,
    /// ImageFolder: a test root with the same classes, evaluated once at the end of training
    /// (`test` rows in metrics.csv) and by `vit-train eval --split test`.
    pub test_dir: Option<PathBuf>,
    /// Images per optimizer micro-batch.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Images per evaluation batch (default: `batch_size`).
    pub eval_batch_size: Option<usize>,
    /// Threads decoding and augmenting (0: all cores).
    #[serde(default)]
    pub workers: usize,
    /// Batches prepared ahead of the model on the loader's thread.
    #[serde(default = "default_prefetch")]
    pub prefetch: usize,
    /// Normalisation: `half` (mean = std = 0.5, HF's default) or `imagenet`.
    #[serde(default = "default_normalize")]
    pub normalize: Normalization,
    /// Resampling filter: `bilinear` (default), `bicubic`, `nearest`.
    #[serde(default = "default_resample")]
    pub resample: Resample,
    /// SimMIM: side of a masked cell in pixels (run_mim.py default 32).
    #[serde(default = "default_mask_patch_size")]
    pub mask_patch_size: usize,
    /// SimMIM: share of cells masked (run_mim.py default 0.6).
    #[serde(default = "default_mask_ratio")]
    pub mask_ratio: f64,
    /// ImageFolder: skip unreadable images with a warning instead of stopping.
    #[serde(default)]
    pub skip_corrupt: bool,
    /// Classification: Mixup's Beta(α, α) (timm's `mixup`; 0 = off; DeiT 0.8).
    #[serde(default)]
    pub mixup_alpha: f64,
    /// Classification: CutMix's Beta(α, α) (timm's `cutmix`; 0 = off; DeiT 1.0).
    #[serde(default)]
    pub cutmix_alpha: f64,
    /// CutMix box size as `[min, max]` shares of the image side (timm's `cutmix_minmax`); sets
    /// `cutmix_alpha` to 1 as timm does.
    pub cutmix_minmax: Option<[f64; 2]>,
    /// RandomResizedCrop's range of crop areas, as shares of the image (torchvision's `scale`).
    #[serde(default = "default_crop_scale")]
    pub crop_scale: [f64; 2],
    /// RandomResizedCrop's range of aspect ratios (torchvision's `ratio`).
    #[serde(default = "default_crop_ratio")]
    pub crop_ratio: [f64; 2],
    /// Probability of a horizontal flip in the training augmentation (timm's `hflip`).
    #[serde(default = "default_half")]
    pub hflip: f64,
    /// Automatic augmentation after crop and flip: `none`, a timm RandAugment string
    /// (`rand-m9-mstd0.5-inc1`), `trivialaugment`, `autoaugment-cifar10`, `autoaugment-imagenet`,
    /// `autoaugment-svhn`.
    #[serde(default)]
    pub auto_augment: AutoAugment,
    /// Probability of timm's RandomErasing on each normalised training image (timm's `reprob`).
    #[serde(default)]
    pub random_erasing: f64,
    /// What erased pixels become: `const` (zeros), `rand` (per channel) or `pixel` (timm's `remode`).
    #[serde(default)]
    pub random_erasing_mode: EraseMode,
    /// Most boxes erased per image (timm's `recount`).
    #[serde(default = "default_one_count")]
    pub random_erasing_count: usize,
    /// Probability of mixing a batch (or pair, or sample) at all (timm's `mixup_prob`).
    #[serde(default = "default_one")]
    pub mixup_prob: f64,
    /// Probability of CutMix rather than Mixup when both are on (timm's `mixup_switch_prob`).
    #[serde(default = "default_half")]
    pub mixup_switch_prob: f64,
    /// `batch` (one draw per batch), `pair` or `elem` (timm's `mixup_mode`).
    #[serde(default)]
    pub mixup_mode: MixupMode,
}

impl DataSection {
    /// Whether batches are mixed (timm's `mixup_active`).
    pub fn mixes(&self) -> bool {
        self.mixup_alpha > 0.0 || self.cutmix_alpha > 0.0 || self.cutmix_minmax.is_some()
    }

    /// The held-out share of the training images: `validation_split`, else 0.15 for an
    /// ImageFolder (HF's default) and 0.1 for CIFAR.
    pub fn validation_share(&self) -> f64 {
        self.validation_split.unwrap_or(match self.dataset {
            DatasetKind::Imagefolder => 0.15,
            DatasetKind::Cifar10 | DatasetKind::Cifar100 => 0.1,
        })
    }

    /// Images per evaluation batch.
    pub fn eval_batch_size(&self) -> usize {
        self.eval_batch_size.unwrap_or(self.batch_size)
    }
}

/// `[optimizer]`: AdamW as HF's Trainer sets it up.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimizerSection {
    /// Peak learning rate.
    pub lr: f64,
    /// Adam beta1.
    pub beta1: f64,
    /// Adam beta2.
    pub beta2: f64,
    /// Adam epsilon.
    pub eps: f64,
    /// Decoupled weight decay (not applied to biases, LayerNorm, position and CLS embeddings).
    pub weight_decay: f64,
    /// Clip gradients by their global norm over all parameters (0 = no clipping).
    pub max_grad_norm: f64,
    /// Micro-batches per optimizer step.
    pub grad_accumulation: usize,
    /// Warmup steps (overrides `warmup_ratio` when set).
    pub warmup_steps: Option<usize>,
    /// Warmup as a share of all steps.
    pub warmup_ratio: f64,
    /// After warmup: `cosine`, `linear` or `constant`.
    pub schedule: Decay,
    /// The learning rate the decay ends at (timm's `min_lr`; 0 as HF).
    pub min_lr: f64,
    /// The learning rate the warmup starts from (timm's `warmup_lr`; 0 as HF).
    pub warmup_lr: f64,
    /// Label smoothing of the classification loss.
    pub label_smoothing: f64,
    /// Layer-wise lr decay for fine-tuning (1 = none): layer i gets lr · decay^(L − i).
    pub layer_decay: f64,
}

impl Default for OptimizerSection {
    fn default() -> Self {
        Self {
            lr: 5e-5,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            max_grad_norm: 1.0,
            grad_accumulation: 1,
            warmup_steps: None,
            warmup_ratio: 0.0,
            schedule: Decay::Linear,
            min_lr: 0.0,
            warmup_lr: 0.0,
            label_smoothing: 0.0,
            layer_decay: 1.0,
        }
    }
}

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

fn default_augmentation() -> Augmentation {
    Augmentation::RandomResizedCropFlip
}
fn default_crop_scale() -> [f64; 2] {
    [0.08, 1.0]
}
fn default_crop_ratio() -> [f64; 2] {
    [3.0 / 4.0, 4.0 / 3.0]
}
fn default_prefetch() -> usize {
    super::loader::DEFAULT_PREFETCH
}
fn default_one_count() -> usize {
    1
}
fn default_one() -> f64 {
    1.0
}
fn default_half() -> f64 {
    0.5
}
fn default_batch_size() -> usize {
    64
}
fn default_normalize() -> Normalization {
    Normalization::Half
}
fn default_resample() -> Resample {
    Resample::Bilinear
}
fn default_mask_patch_size() -> usize {
    32
}
fn default_mask_ratio() -> f64 {
    0.6
}

impl RunConfig {
    /// Reads `path`, applies `overrides` (`section.key=value`, the value in TOML syntax or a bare
    /// string) and validates.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read the config file {}", path.display()))?;
        Self::parse(&text, overrides).with_context(|| format!("in {}", path.display()))
    }

    /// Parses a config text with overrides.
    pub fn parse(text: &str, overrides: &[String]) -> Result<Self> {
        let config: RunConfig = super::overrides::deserialize_with_overrides(text, overrides)?;
        config.validate()?;
        Ok(config)
    }

    /// The config as TOML, as saved in the output directory.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// The device the run trains on (the first of `run.devices`, else `run.device`).
    pub fn main_device(&self) -> &DeviceSpec {
        self.run.devices.first().unwrap_or(&self.run.device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
task = "classification"
[model]
preset = "vit-tiny"
[data]
dataset = "cifar10"
path = "data/cifar10"
image_size = 32
"#;

    #[test]
    fn minimal_config_gets_defaults() {
        let c = RunConfig::parse(MINIMAL, &[]).unwrap();
        assert_eq!(c.optimizer.grad_accumulation, 1);
        assert_eq!(c.data.batch_size, 64);
        assert_eq!(c.run.device, DeviceSpec::Cpu);
    }

    #[test]
    fn misspelled_key_suggests_the_right_one() {
        let text = MINIMAL.replace("image_size = 32", "image_size = 32\nbatch_sise = 8");
        let err = format!("{:#}", RunConfig::parse(&text, &[]).unwrap_err());
        assert!(err.contains("batch_sise") && err.contains("did you mean `batch_size`"), "{err}");
    }

    #[test]
    fn wrong_type_names_the_field() {
        let text = MINIMAL.replace("image_size = 32", "image_size = \"big\"");
        let err = format!("{:#}", RunConfig::parse(&text, &[]).unwrap_err());
        assert!(err.contains("image_size"), "{err}");
    }

    #[test]
    fn overrides_apply_and_are_validated() {
        let c = RunConfig::parse(MINIMAL, &["optimizer.lr=0.01".into(), "run.output_dir=out/x".into()]).unwrap();
        assert_eq!(c.optimizer.lr, 0.01);
        assert_eq!(c.run.output_dir, PathBuf::from("out/x"));
        let err = format!("{:#}", RunConfig::parse(MINIMAL, &["optimizer.schedule=wavy".into()]).unwrap_err());
        assert!(err.contains("optimizer.schedule"), "{err}");
        let err = format!("{:#}", RunConfig::parse(MINIMAL, &["optimizer.lrr=1".into()]).unwrap_err());
        assert!(err.contains("did you mean `lr`"), "{err}");
    }

    #[test]
    fn typed_settings_name_the_field_and_suggest_the_spelling() {
        let cases = [
            ("data.augmentation=random-resize-crop", ["data.augmentation", "random-resized-crop"]),
            ("data.normalize=imagenette", ["data.normalize", "imagenet"]),
            ("data.resample=bicubc", ["data.resample", "bicubic"]),
            ("data.dataset=cifar-10", ["data.dataset", "cifar10"]),
            ("model.preset=vit-tinny", ["model.preset", "vit-tiny"]),
            ("optimizer.schedule=cosin", ["optimizer.schedule", "cosine"]),
            ("task=classify", ["task", "classification"]),
            ("run.device=gpu:0", ["run.device", "cuda:N"]),
        ];
        for (set, expected) in cases {
            let err = format!("{:#}", RunConfig::parse(MINIMAL, &[set.to_string()]).unwrap_err());
            for e in expected {
                assert!(err.contains(e), "--set {set}: expected `{e}` in: {err}");
            }
        }
        // The old aliases are gone: one list of spellings, shared with vit-data.
        assert!(RunConfig::parse(MINIMAL, &["data.augmentation=pad-crop:2".into()]).is_err());
        let c =
            RunConfig::parse(MINIMAL, &["data.augmentation=pad-crop-flip".into(), "run.device=wgpu:1".into()]).unwrap();
        assert_eq!(c.data.augmentation, Augmentation::PadCropFlip);
        assert_eq!(RunConfig::parse(&c.to_toml(), &[]).unwrap().run.device.to_string(), "wgpu:discrete:1");
    }

    #[test]
    fn needs_exactly_one_model_source() {
        let text = MINIMAL.replace("preset = \"vit-tiny\"", "");
        let err = format!("{:#}", RunConfig::parse(&text, &[]).unwrap_err());
        assert!(err.contains("pretrained") && err.contains("preset"), "{err}");
    }
}
