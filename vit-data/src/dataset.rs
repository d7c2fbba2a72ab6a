//! `ImageDataset`: a Burn [`Dataset`] of labelled images over any [`ImageSource`] (ImageFolder,
//! CIFAR), with train/validation splits and per-sample epoch counting.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use burn::data::dataset::{Dataset, DatasetError};
use image::RgbImage;
use rand::seq::SliceRandom;

use crate::error::{DataError, Result};
use crate::rng::{RngStream, sample_rng};

/// Hugging Face's default validation share when a dataset has no validation split
/// (`train_val_split` in `run_image_classification.py`).
pub const DEFAULT_VALIDATION_SHARE: f64 = 0.15;

/// A collection of labelled images that can be loaded by position.
pub trait ImageSource: Send + Sync {
    /// Number of images.
    fn len(&self) -> usize;
    /// Whether there are no images.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Class id of image `index` (an index into [`class_names`](Self::class_names)).
    fn label(&self, index: usize) -> usize;
    /// Image `index` as 8-bit RGB (decoded, or from the in-memory cache).
    fn load(&self, index: usize) -> Result<Arc<RgbImage>>;
    /// Class names by id (the model's `id2label`).
    fn class_names(&self) -> &[String];
}

/// One sample as the data loader hands it to [`crate::batcher::ImageBatcher`].
#[derive(Clone)]
pub struct ImageSample {
    /// The image, 8-bit RGB, before augmentation.
    pub image: Arc<RgbImage>,
    /// Class id.
    pub label: usize,
    /// Position of the image in its source: with `epoch` and the run's seed, the key of the
    /// sample's random augmentation and mask.
    pub index: u64,
    /// The epoch this sample is being drawn for (0-based).
    pub epoch: u64,
}

impl fmt::Debug for ImageSample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImageSample")
            .field("image", &format_args!("{}x{} RGB", self.image.width(), self.image.height()))
            .field("label", &self.label)
            .field("index", &self.index)
            .field("epoch", &self.epoch)
            .finish()
    }
}

/// How [`ImageDataset::split`] divides the images.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SplitMode {
    /// Shuffle all images and cut (Hugging Face `train_test_split`):
    /// `ceil(n * share)` validation images.
    Plain,
    /// Split each class separately (`round(n_class * share)` validation images per class,
    /// keeping at least one training image per class), so both sides keep the class balance.
    #[default]
    Stratified,
}

/// A Burn dataset of [`ImageSample`]s: a source plus the positions it uses (all of them, or one
/// side of a split).
///
/// Epochs are counted per sample: the n-th time a position is fetched it is tagged epoch
/// `start_epoch + n`. A data loader visits every position once per epoch, so this is the epoch
/// number whatever the number of workers and the order of visits. Use
/// [`with_start_epoch`](Self::with_start_epoch) when resuming training.
#[derive(Clone)]
pub struct ImageDataset {
    source: Arc<dyn ImageSource>,
    indices: Arc<[usize]>,
    visits: Arc<[AtomicU64]>,
    start_epoch: u64,
}

impl fmt::Debug for ImageDataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImageDataset")
            .field("len", &self.indices.len())
            .field("classes", &self.source.class_names().len())
            .field("start_epoch", &self.start_epoch)
            .finish()
    }
}

impl ImageDataset {
    /// All images of `source`.
    pub fn new(source: Arc<dyn ImageSource>) -> Self {
        let indices: Vec<usize> = (0..source.len()).collect();
        Self::from_indices(source, indices)
    }

    /// The images of `source` at `indices` (in that order).
    pub fn subset(source: Arc<dyn ImageSource>, indices: Vec<usize>) -> Result<Self> {
        if let Some(&bad) = indices.iter().find(|&&i| i >= source.len()) {
            return Err(DataError::setting(
                "indices",
                format!("index {bad} is out of range for a source of {} images", source.len()),
            ));
        }
        Ok(Self::from_indices(source, indices))
    }

    fn from_indices(source: Arc<dyn ImageSource>, indices: Vec<usize>) -> Self {
        let visits = (0..indices.len()).map(|_| AtomicU64::new(0)).collect();
        ImageDataset { source, indices: indices.into(), visits, start_epoch: 0 }
    }

    /// Counts epochs from `epoch` (to resume a run with the augmentations it would have had);
    /// the visit counters restart at zero.
    pub fn with_start_epoch(self, epoch: u64) -> Self {
        let visits = (0..self.indices.len()).map(|_| AtomicU64::new(0)).collect();
        ImageDataset { visits, start_epoch: epoch, ..self }
    }

    /// Splits into `(train, validation)` with `validation_share` of the images in validation
    /// (Hugging Face's default is [`DEFAULT_VALIDATION_SHARE`]), reproducibly from `seed`.
    pub fn split(&self, validation_share: f64, seed: u64, mode: SplitMode) -> Result<(Self, Self)> {
        if !(validation_share > 0.0 && validation_share < 1.0) {
            return Err(DataError::setting(
                "validation_split",
                format!("is {validation_share}; it must be between 0 and 1 (e.g. 0.15)"),
            ));
        }
        let mut rng = sample_rng(seed, 0, 0, RngStream::Split);
        let mut train = Vec::new();
        let mut valid = Vec::new();
        match mode {
            SplitMode::Plain => {
                let mut all = self.indices.to_vec();
                all.shuffle(&mut rng);
                let n_valid = (all.len() as f64 * validation_share).ceil() as usize;
                valid.extend_from_slice(&all[..n_valid.min(all.len())]);
                train.extend_from_slice(&all[n_valid.min(all.len())..]);
            }
            SplitMode::Stratified => {
                let num_classes = self.source.class_names().len();
                let mut by_class = vec![Vec::new(); num_classes.max(1)];
                for &i in self.indices.iter() {
                    let label = self.source.label(i).min(by_class.len() - 1);
                    by_class[label].push(i);
                }
                for mut members in by_class {
                    members.shuffle(&mut rng);
                    let n = members.len();
                    let mut n_valid = (n as f64 * validation_share).round() as usize;
                    if n > 1 {
                        n_valid = n_valid.min(n - 1);
                    } else {
                        n_valid = 0;
                    }
                    valid.extend_from_slice(&members[..n_valid]);
                    train.extend_from_slice(&members[n_valid..]);
                }
                train.sort_unstable();
                valid.sort_unstable();
            }
        }
        if train.is_empty() || valid.is_empty() {
            return Err(DataError::setting(
                "validation_split",
                format!(
                    "splitting {} images with share {validation_share} leaves {} for training and \
                     {} for validation; use more images, another share, or a separate validation folder",
                    self.indices.len(),
                    train.len(),
                    valid.len()
                ),
            ));
        }
        Ok((Self::from_indices(self.source.clone(), train), Self::from_indices(self.source.clone(), valid)))
    }

    /// Class names by id (the model's `id2label`).
    pub fn class_names(&self) -> &[String] {
        self.source.class_names()
    }

    /// The class id of every sample, in dataset order.
    pub fn labels(&self) -> Vec<usize> {
        self.indices.iter().map(|&i| self.source.label(i)).collect()
    }

    /// The source positions of the samples, in dataset order.
    pub fn source_indices(&self) -> &[usize] {
        &self.indices
    }

    /// The underlying source.
    pub fn source(&self) -> &Arc<dyn ImageSource> {
        &self.source
    }

    /// Sample `position` tagged with an explicit `epoch`, without touching the epoch counters
    /// (for evaluation, prediction and benchmarks).
    pub fn sample(&self, position: usize, epoch: u64) -> Result<ImageSample> {
        let index = *self.indices.get(position).ok_or_else(|| {
            DataError::setting(
                "index",
                format!("sample {position} is out of range for a dataset of {} samples", self.indices.len()),
            )
        })?;
        Ok(ImageSample { image: self.source.load(index)?, label: self.source.label(index), index: index as u64, epoch })
    }
}

impl Dataset<ImageSample> for ImageDataset {
    fn get(&self, index: usize) -> Result<ImageSample, DatasetError> {
        let visit = self.visits.get(index).map(|v| v.fetch_add(1, Ordering::Relaxed)).unwrap_or(0);
        self.sample(index, self.start_epoch + visit).map_err(DatasetError::new)
    }

    fn len(&self) -> usize {
        self.indices.len()
    }
}
