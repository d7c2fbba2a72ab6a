//! `[data]`: the dataset, its split, preprocessing and training augmentation.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use vit_data::{Augmentation, AutoAugment, EraseMode, MixupMode, Normalization, Resample};

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
    crate::run::loader::DEFAULT_PREFETCH
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
