//! Burn batching: augmentation, normalisation and SimMIM masks of a batch (in parallel with
//! rayon, inside Burn's loader workers), then tensors on the target device.

use burn::data::dataloader::batcher::Batcher;
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use image::RgbImage;
use rayon::prelude::*;

use crate::augment::Transform;
use crate::dataset::ImageSample;
use crate::error::{DataError, Result};
use crate::mask::MaskGenerator;
use crate::mixup::{Mixed, Mixup};
use crate::processor::{ImageProcessor, Normalizer};
use crate::rng::{RngStream, sample_rng};

/// A batch on a device.
#[derive(Clone, Debug)]
pub struct ImageBatch {
    /// Normalised images, `[batch, channels, height, width]`.
    pub pixel_values: Tensor<4>,
    /// Class ids, `[batch]`.
    pub labels: Tensor<1, Int>,
    /// SimMIM masks, `[batch, num_patches]` (true = masked), when the batcher makes masks.
    pub bool_masked_pos: Option<Tensor<2, Bool>>,
    /// Mixup/CutMix soft targets, `[batch, num_classes]`, when the batcher mixes
    /// ([`ImageBatcher::with_mixup`]): train on them with a soft-target cross-entropy (label
    /// smoothing is already in them) instead of on `labels`.
    pub targets: Option<Tensor<2>>,
    /// The dominant label of each mixed sample, `[batch]`, when the batcher mixes: its own label
    /// when its lam >= 0.5, else its partner's ([`crate::mixup::dominant_labels`]); for training
    /// accuracy. `labels` keeps the original labels.
    pub dominant_labels: Option<Tensor<1, Int>>,
    /// The position of the first sample within the run's micro-batch (0 unless the micro-batch
    /// is shared by several devices: then device `d`'s share starts at `d x` its size).
    pub first_sample: usize,
}

/// A batch in host memory (what [`ImageBatch`] is made from).
#[derive(Clone, Debug, PartialEq)]
pub struct HostBatch {
    /// Normalised images, channels first, `shape` = `[batch, channels, height, width]`.
    pub pixel_values: Vec<f32>,
    /// Shape of `pixel_values`.
    pub shape: [usize; 4],
    /// Class ids.
    pub labels: Vec<i64>,
    /// Masks, `batch * num_patches` booleans, when the batcher makes masks.
    pub masks: Option<Vec<bool>>,
    /// Patches per mask.
    pub num_patches: usize,
    /// Mixup/CutMix soft targets, `batch * num_classes` values (`[batch, num_classes]`
    /// row-major), when the batcher mixes.
    pub targets: Option<Vec<f32>>,
    /// Width of a `targets` row (0 without mixing).
    pub num_classes: usize,
    /// The dominant label of each mixed sample (own label when its lam >= 0.5, else its
    /// partner's), when the batcher mixes; `labels` keeps the original labels.
    pub dominant_labels: Option<Vec<i64>>,
    /// The position of the first sample within the run's micro-batch (0 unless the micro-batch
    /// is shared by several devices).
    pub first_sample: usize,
}

impl HostBatch {
    /// Copies the batch to `device`.
    pub fn to_device(self, device: &Device) -> ImageBatch {
        let batch = self.shape[0];
        let pixel_values = Tensor::<4>::from_data(TensorData::new(self.pixel_values, self.shape), device);
        let labels = Tensor::<1, Int>::from_data(TensorData::new(self.labels, [batch]), device);
        let bool_masked_pos =
            self.masks.map(|m| Tensor::<2, Bool>::from_data(TensorData::new(m, [batch, self.num_patches]), device));
        let targets =
            self.targets.map(|t| Tensor::<2>::from_data(TensorData::new(t, [batch, self.num_classes]), device));
        let dominant_labels =
            self.dominant_labels.map(|l| Tensor::<1, Int>::from_data(TensorData::new(l, [batch]), device));
        ImageBatch { pixel_values, labels, bool_masked_pos, targets, dominant_labels, first_sample: self.first_sample }
    }
}

/// Turns [`ImageSample`]s into [`ImageBatch`]es: each sample is transformed with its own
/// generator from `(seed, epoch, index)`, so results do not depend on the worker count or batch
/// composition; then normalised like the processor; plus a SimMIM mask if configured; then
/// Mixup/CutMix across the batch if configured.
#[derive(Clone, Debug)]
pub struct ImageBatcher {
    transform: Transform,
    normalizer: Normalizer,
    masks: Option<MaskGenerator>,
    mixup: Option<Mixup>,
    seed: u64,
}

impl ImageBatcher {
    /// A batcher applying `transform` then `processor`'s rescale/normalisation (its resize
    /// settings are ignored: `transform` decides the size), with run seed `seed`.
    pub fn new(transform: Transform, processor: &ImageProcessor, seed: u64) -> Result<Self> {
        if transform.size.width == 0 || transform.size.height == 0 {
            return Err(DataError::setting("image_size", "must be positive"));
        }
        Ok(ImageBatcher { transform, normalizer: processor.normalizer()?, masks: None, mixup: None, seed })
    }

    /// Also makes a SimMIM mask per sample; its input size must be the transform's (square)
    /// size.
    pub fn with_masks(mut self, masks: MaskGenerator) -> Result<Self> {
        let (input, ..) = masks.settings();
        let size = self.transform.size;
        if size.width != input || size.height != input {
            return Err(DataError::setting(
                "image_size",
                format!(
                    "the mask generator is for {input}x{input} images but the transform makes \
                     {}x{}; SimMIM needs square images of the mask generator's size",
                    size.width, size.height
                ),
            ));
        }
        self.masks = Some(masks);
        Ok(self)
    }

    /// Also mixes every batch with `mixup` (timm's Mixup/CutMix) after the samples are
    /// augmented and normalised, and adds soft targets and dominant labels to the batch. The
    /// decisions of a batch are drawn from [`sample_rng`]`(seed, epoch, index, RngStream::Mixup)`
    /// with the epoch and index of the batch's first sample, so a batch mixes the same way
    /// whatever the worker count. Odd batches are accepted (the middle sample stays unmixed, see
    /// [`crate::mixup`]). Errors when `cutmix_minmax` leaves no box size for the transform's size.
    pub fn with_mixup(mut self, mixup: Mixup) -> Result<Self> {
        mixup.check_image_size(self.transform.size.height as usize, self.transform.size.width as usize)?;
        self.mixup = Some(mixup);
        Ok(self)
    }

    /// The Mixup/CutMix applied to batches, if any.
    pub fn mixup(&self) -> Option<&Mixup> {
        self.mixup.as_ref()
    }

    /// The transform.
    pub fn transform(&self) -> &Transform {
        &self.transform
    }

    /// Transformed 8-bit image of one sample (before normalisation), for inspection.
    pub fn augment(&self, sample: &ImageSample) -> Result<RgbImage> {
        let mut rng = sample_rng(self.seed, sample.epoch, sample.index, RngStream::Augment);
        if self.normalizer.num_channels() == 1 {
            // A grayscale model sees Pillow's `convert("L")` of the image, before any resize.
            return self.transform.apply(&crate::convert::to_gray_rgb(&sample.image), &mut rng);
        }
        self.transform.apply(&sample.image, &mut rng)
    }

    /// Prepares a batch in host memory (augment + normalise + masks, in parallel).
    ///
    /// A sample whose transform fails (only possible for an empty image, which the datasets
    /// never produce) is replaced by zeros with a warning, since a Burn batcher cannot fail.
    ///
    /// # Panics
    /// With mixup, when a label is not below the mixup's `num_classes` (a configuration error:
    /// `num_classes` must be the dataset's class count).
    pub fn prepare(&self, items: &[ImageSample]) -> HostBatch {
        let size = self.transform.size;
        let channels = self.normalizer.num_channels();
        let per_image = channels * size.width as usize * size.height as usize;
        let mut pixel_values = vec![0f32; items.len() * per_image];
        if per_image > 0 {
            pixel_values.par_chunks_mut(per_image).zip(items.par_iter()).for_each(|(out, sample)| {
                match self.augment(sample) {
                    Ok(img) => {
                        self.normalizer.apply(&img, out);
                        if let Some(erasing) = self.transform.random_erasing() {
                            let mut rng = sample_rng(self.seed, sample.epoch, sample.index, RngStream::Erase);
                            erasing.apply(out, channels, size.height as usize, size.width as usize, &mut rng);
                        }
                    }
                    Err(e) => eprintln!("warning: sample {} replaced by zeros: {e}", sample.index),
                }
            });
        }
        let masks = self
            .masks
            .as_ref()
            .map(|m| items.iter().flat_map(|s| m.generate(self.seed, s.epoch, s.index)).collect::<Vec<bool>>());
        let shape = [items.len(), channels, size.height as usize, size.width as usize];
        let labels: Vec<i64> = items.iter().map(|s| s.label as i64).collect();
        let mixed = self.mixup.as_ref().map(|m| self.mix(m, items, &mut pixel_values, shape, &labels));
        let (targets, num_classes, dominant_labels) = match mixed {
            Some(mixed) => {
                let dominant = mixed.dominant_labels(&labels);
                (Some(mixed.targets), mixed.num_classes, Some(dominant))
            }
            None => (None, 0, None),
        };
        HostBatch {
            pixel_values,
            shape,
            labels,
            masks,
            num_patches: self.masks.as_ref().map_or(0, |m| m.num_patches()),
            targets,
            num_classes,
            dominant_labels,
            first_sample: 0,
        }
    }

    /// Mixes the assembled batch with the generator of (seed, first sample's epoch and index).
    fn mix(
        &self,
        mixup: &Mixup,
        items: &[ImageSample],
        pixels: &mut [f32],
        shape: [usize; 4],
        labels: &[i64],
    ) -> Mixed {
        let (epoch, index) = items.first().map_or((0, 0), |s| (s.epoch, s.index));
        let mut rng = sample_rng(self.seed, epoch, index, RngStream::Mixup);
        mixup.apply(&mut rng, pixels, shape, labels).unwrap_or_else(|e| panic!("mixup of a batch failed: {e}"))
    }
}

impl Batcher<ImageSample, ImageBatch> for ImageBatcher {
    fn batch(&self, items: Vec<ImageSample>, device: &Device) -> ImageBatch {
        self.prepare(&items).to_device(device)
    }
}
