//! The `[data]` section turned into datasets, preprocessing and batchers.

use anyhow::{Context, Result, bail};
use vit_data::{AugmentInterpolation, RandomErasing, TimmHparams, TrainAugmentation};
use vit_data::{
    Cifar, CifarKind, CifarSplit, EvalResize, ImageBatcher, ImageDataset, ImageFolder, ImageFolderOptions,
    ImageProcessor, ImageSize, MaskGenerator, Mixup, MixupConfig, SplitMode, Transform, download_cifar,
};

use super::config::{DataSection, DatasetKind, ValidationSource};

/// Training, validation and test data of a run.
pub struct RunData {
    /// Training images.
    pub train: ImageDataset,
    /// Validation images: what picks the best checkpoint and stops early.
    pub valid: ImageDataset,
    /// Held-out test images (CIFAR's test batch, or `data.test_dir`), evaluated once at the end;
    /// `None` without a test set or when validation runs on it (`data.validation = "test"`).
    pub test: Option<ImageDataset>,
    /// Class names (the model's `id2label`).
    pub classes: Vec<String>,
}

fn cifar_kind(dataset: DatasetKind) -> Option<CifarKind> {
    match dataset {
        DatasetKind::Cifar10 => Some(CifarKind::Cifar10),
        DatasetKind::Cifar100 => Some(CifarKind::Cifar100Fine),
        DatasetKind::Imagefolder => None,
    }
}

/// Opens the datasets named by `data` (downloading CIFAR when asked); `seed` draws the held-out
/// validation share of the training images.
pub fn open_datasets(data: &DataSection, seed: u64) -> Result<RunData> {
    let options = ImageFolderOptions { skip_corrupt: data.skip_corrupt, ..ImageFolderOptions::default() };
    let (all_train, test, classes) = if let Some(kind) = cifar_kind(data.dataset) {
        if data.download {
            download_cifar(kind, &data.path, None, None, true).with_context(|| {
                format!("data.download: cannot fetch {} into {}", data.dataset.name(), data.path.display())
            })?;
        }
        let train = Cifar::load(&data.path, kind, CifarSplit::Train).context("data.path")?.into_dataset();
        let test = Cifar::load(&data.path, kind, CifarSplit::Test).context("data.path")?.into_dataset();
        let classes = train.class_names().to_vec();
        (train, Some(test), classes)
    } else {
        let train = ImageFolder::open(&data.path, &options).context("data.path")?.into_dataset();
        let classes = train.class_names().to_vec();
        let test = match &data.test_dir {
            Some(dir) => Some(ImageFolder::open_with_classes(dir, &classes, &options).context("data.test_dir")?),
            None => None,
        };
        (train, test.map(ImageFolder::into_dataset), classes)
    };
    let (train, valid, test) = match (data.validation, &data.validation_dir) {
        (ValidationSource::Test, _) => {
            let test = test.context("data.validation = \"test\": this dataset has no test set")?;
            (all_train, test, None)
        }
        (ValidationSource::Split, Some(dir)) => {
            let valid = ImageFolder::open_with_classes(dir, &classes, &options).context("data.validation_dir")?;
            (all_train, valid.into_dataset(), test)
        }
        (ValidationSource::Split, None) => {
            let (train, valid) = all_train
                .split(data.validation_share(), seed, SplitMode::Stratified)
                .context("data.validation_split")?;
            (train, valid, test)
        }
    };
    if burn::data::dataset::Dataset::len(&train) == 0 {
        bail!("data: the training split of {} is empty", data.path.display());
    }
    if burn::data::dataset::Dataset::len(&valid) == 0 {
        bail!(
            "data: the validation split of {} is empty; set data.validation_split or data.validation_dir",
            data.path.display()
        );
    }
    Ok(RunData { train, valid, test, classes })
}

/// The `ViTImageProcessor` settings of a run (written next to the exported model).
pub fn processor(data: &DataSection, num_channels: usize) -> Result<ImageProcessor> {
    let size = data.image_size as u32;
    let mut p = ImageProcessor::new(size, size);
    p.resample = data.resample;
    p.image_mean = data.normalize.mean().to_vec();
    p.image_std = data.normalize.std().to_vec();
    Ok(p.with_num_channels(num_channels))
}

/// The training augmentation of `data`: crop and flip, automatic augmentation (timm's fill is the
/// normalisation mean; its interpolation is random per op, timm's default), random erasing.
pub fn train_augmentation(data: &DataSection, processor: &ImageProcessor) -> TrainAugmentation {
    let [s0, s1] = data.crop_scale;
    let [r0, r1] = data.crop_ratio;
    TrainAugmentation {
        augmentation: data.augmentation,
        crop_scale: (s0, s1),
        crop_ratio: (r0, r1),
        hflip: data.hflip,
        auto_augment: data.auto_augment,
        timm_hparams: TimmHparams::from_mean(&processor.image_mean, AugmentInterpolation::Random),
        random_erasing: RandomErasing::new(data.random_erasing, data.random_erasing_mode)
            .with_max_count(data.random_erasing_count.min(u32::MAX as usize) as u32),
    }
}

/// Training and evaluation batchers; with `mask = Some((mask_patch, model_patch))` both also make
/// SimMIM masks. `mixing` (a classification run's label smoothing and class count) adds the
/// data section's Mixup/CutMix to the training batcher when they are on.
pub fn batchers(
    data: &DataSection,
    processor: &ImageProcessor,
    seed: u64,
    mask: Option<(usize, usize)>,
    mixing: Option<(f64, usize)>,
) -> Result<(ImageBatcher, ImageBatcher)> {
    let size = ImageSize { height: data.image_size as u32, width: data.image_size as u32 };
    let augment = train_augmentation(data, processor);
    let transform = Transform::train_with(size, processor.resample, augment)?;
    let mut train = ImageBatcher::new(transform, processor, seed)?;
    if let Some((label_smoothing, num_classes)) = mixing
        && data.mixes()
    {
        let mixup = Mixup::new(MixupConfig {
            mixup_alpha: data.mixup_alpha,
            cutmix_alpha: data.cutmix_alpha,
            cutmix_minmax: data.cutmix_minmax,
            prob: data.mixup_prob,
            switch_prob: data.mixup_switch_prob,
            mode: data.mixup_mode,
            correct_lam: true,
            label_smoothing,
            num_classes,
        })
        .context("data.mixup_alpha / data.cutmix_alpha")?;
        train = train.with_mixup(mixup).context("data.cutmix_minmax")?;
    }
    let eval = ImageBatcher::new(Transform::eval(size, processor.resample, EvalResize::Exact), processor, seed)?;
    Ok(match mask {
        Some((mask_patch, model_patch)) => {
            let generator =
                MaskGenerator::new(data.image_size as u32, mask_patch as u32, model_patch as u32, data.mask_ratio)
                    .context("data.mask_patch_size / data.mask_ratio")?;
            (train.with_masks(generator)?, eval.with_masks(generator)?)
        }
        None => (train, eval),
    })
}
