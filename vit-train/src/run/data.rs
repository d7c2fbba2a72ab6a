//! The `[data]` section turned into datasets, preprocessing and batchers.

use anyhow::{Context, Result, bail};
use vit_data::{
    Cifar, CifarKind, CifarSplit, EvalResize, ImageBatcher, ImageDataset, ImageFolderOptions, ImageProcessor,
    ImageSize, MaskGenerator, SplitMode, Transform, download_cifar, open_image_folders,
};

use super::config::{DataSection, DatasetKind};

/// Training and validation data of a run.
pub struct RunData {
    /// Training images.
    pub train: ImageDataset,
    /// Validation images.
    pub valid: ImageDataset,
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

/// Opens the datasets named by `data` (downloading CIFAR when asked); `seed` splits an
/// ImageFolder root.
pub fn open_datasets(data: &DataSection, seed: u64) -> Result<RunData> {
    let (train, valid) = if let Some(kind) = cifar_kind(data.dataset) {
        if data.download {
            download_cifar(kind, &data.path, None, None, true).with_context(|| {
                format!("data.download: cannot fetch {} into {}", data.dataset.name(), data.path.display())
            })?;
        }
        let train = Cifar::load(&data.path, kind, CifarSplit::Train).context("data.path")?;
        let valid = Cifar::load(&data.path, kind, CifarSplit::Test).context("data.path")?;
        (train.into_dataset(), valid.into_dataset())
    } else {
        let options = ImageFolderOptions { skip_corrupt: data.skip_corrupt, ..ImageFolderOptions::default() };
        open_image_folders(
            &data.path,
            data.validation_dir.as_deref(),
            data.validation_split,
            seed,
            SplitMode::Stratified,
            &options,
        )
        .context("data.path")?
    };
    let classes = train.class_names().to_vec();
    if burn::data::dataset::Dataset::len(&train) == 0 {
        bail!("data: the training split of {} is empty", data.path.display());
    }
    if burn::data::dataset::Dataset::len(&valid) == 0 {
        bail!(
            "data: the validation split of {} is empty; set data.validation_split or data.validation_dir",
            data.path.display()
        );
    }
    Ok(RunData { train, valid, classes })
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

/// Training and evaluation batchers; with `mask = Some((mask_patch, model_patch))` both also make
/// SimMIM masks.
pub fn batchers(
    data: &DataSection,
    processor: &ImageProcessor,
    seed: u64,
    mask: Option<(usize, usize)>,
) -> Result<(ImageBatcher, ImageBatcher)> {
    let size = ImageSize { height: data.image_size as u32, width: data.image_size as u32 };
    let train = ImageBatcher::new(Transform::train(size, processor.resample, data.augmentation), processor, seed)?;
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
