//! Data for vit-burn: Hugging Face-equal preprocessing (`ViTImageProcessor`), seeded
//! augmentations, SimMIM masks, ImageFolder and CIFAR datasets (with download), and a Burn
//! batcher.
//!
//! Typical use: open a source ([`ImageFolder`], [`Cifar`]) → [`ImageDataset`] (optionally
//! [`ImageDataset::split`]) → Burn `DataLoaderBuilder::new(ImageBatcher::new(..)).build(dataset)`.

pub mod augment;
pub mod auto_augment;
pub mod batcher;
pub mod cifar;
pub mod convert;
pub mod dataset;
pub mod decode;
pub mod download;
pub mod error;
pub mod imagefolder;
pub mod mask;
pub mod mixup;
pub mod processor;
pub mod random_erasing;
pub mod resize;
pub mod rng;
pub mod spelling;

pub use augment::TrainAugmentation;
pub use augment::{Augmentation, EvalResize, PAD_CROP_PADDING, RandomResizedCrop, Transform, TransformKind};
pub use auto_augment::{
    AugmentInterpolation, AutoAugment, AutoAugmentPolicy, RandAugmentConfig, TimmHparams, TrivialAugmentWide,
};
pub use batcher::{HostBatch, ImageBatch, ImageBatcher};
pub use cifar::{CIFAR_IMAGE_BYTES, Cifar, CifarKind, CifarLoadOptions, CifarSplit, load_cifar};
pub use dataset::{DEFAULT_VALIDATION_SHARE, ImageDataset, ImageSample, ImageSource, SplitMode};
pub use decode::DecodeLimits;
pub use download::{download_archive, download_cifar};
pub use error::{DataError, Result};
pub use imagefolder::{ImageFolder, ImageFolderOptions, SkippedImage, SkippedLink, open_image_folders};
pub use mask::MaskGenerator;
pub use mixup::{MixDecision, MixDecisions, Mixed, Mixup, MixupConfig, MixupMode};
pub use processor::{
    IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, IMAGENET_STANDARD_MEAN, IMAGENET_STANDARD_STD, ImageProcessor,
    ImageSize, Normalization, Normalizer, PREPROCESSOR_CONFIG,
};
pub use random_erasing::{EraseMode, RandomErasing};
pub use resize::{CropBox, Resample, resize_rgb};
pub use rng::SplitMix64;
pub use spelling::UnknownSpelling;
