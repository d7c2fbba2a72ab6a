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
}

impl HostBatch {
    /// Copies the batch to `device`.
    pub fn to_device(self, device: &Device) -> ImageBatch {
        let batch = self.shape[0];
        let pixel_values = Tensor::<4>::from_data(TensorData::new(self.pixel_values, self.shape), device);
        let labels = Tensor::<1, Int>::from_data(TensorData::new(self.labels, [batch]), device);
        let bool_masked_pos =
            self.masks.map(|m| Tensor::<2, Bool>::from_data(TensorData::new(m, [batch, self.num_patches]), device));
        ImageBatch { pixel_values, labels, bool_masked_pos }
    }
}

/// Turns [`ImageSample`]s into [`ImageBatch`]es: each sample is transformed with its own
/// generator from `(seed, epoch, index)`, so results do not depend on the worker count or batch
/// composition; then normalised like the processor; plus a SimMIM mask if configured.
#[derive(Clone, Debug)]
pub struct ImageBatcher {
    transform: Transform,
    normalizer: Normalizer,
    masks: Option<MaskGenerator>,
    seed: u64,
}

impl ImageBatcher {
    /// A batcher applying `transform` then `processor`'s rescale/normalisation (its resize
    /// settings are ignored: `transform` decides the size), with run seed `seed`.
    pub fn new(transform: Transform, processor: &ImageProcessor, seed: u64) -> Result<Self> {
        if transform.size.width == 0 || transform.size.height == 0 {
            return Err(DataError::setting("image_size", "must be positive"));
        }
        Ok(ImageBatcher { transform, normalizer: processor.normalizer()?, masks: None, seed })
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

    /// The transform.
    pub fn transform(&self) -> &Transform {
        &self.transform
    }

    /// Transformed 8-bit image of one sample (before normalisation), for inspection.
    pub fn augment(&self, sample: &ImageSample) -> Result<RgbImage> {
        let mut rng = sample_rng(self.seed, sample.epoch, sample.index, RngStream::Augment);
        self.transform.apply(&sample.image, &mut rng)
    }

    /// Prepares a batch in host memory (augment + normalise + masks, in parallel).
    ///
    /// A sample whose transform fails (only possible for an empty image, which the datasets
    /// never produce) is replaced by zeros with a warning, since a Burn batcher cannot fail.
    pub fn prepare(&self, items: &[ImageSample]) -> HostBatch {
        let size = self.transform.size;
        let channels = self.normalizer.num_channels();
        let per_image = channels * size.width as usize * size.height as usize;
        let mut pixel_values = vec![0f32; items.len() * per_image];
        if per_image > 0 {
            pixel_values.par_chunks_mut(per_image).zip(items.par_iter()).for_each(|(out, sample)| {
                match self.augment(sample) {
                    Ok(img) => self.normalizer.apply(&img, out),
                    Err(e) => eprintln!("warning: sample {} replaced by zeros: {e}", sample.index),
                }
            });
        }
        let masks = self
            .masks
            .as_ref()
            .map(|m| items.iter().flat_map(|s| m.generate(self.seed, s.epoch, s.index)).collect::<Vec<bool>>());
        HostBatch {
            pixel_values,
            shape: [items.len(), channels, size.height as usize, size.width as usize],
            labels: items.iter().map(|s| s.label as i64).collect(),
            masks,
            num_patches: self.masks.as_ref().map_or(0, |m| m.num_patches()),
        }
    }
}

impl Batcher<ImageSample, ImageBatch> for ImageBatcher {
    fn batch(&self, items: Vec<ImageSample>, device: &Device) -> ImageBatch {
        self.prepare(&items).to_device(device)
    }
}
