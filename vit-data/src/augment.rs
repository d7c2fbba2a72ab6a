//! Seeded image augmentations on 8-bit RGB images (before normalisation), following
//! torchvision's algorithms as used by Hugging Face's `run_image_classification.py`.
//!
//! Randomness comes only from the generator passed in; the batcher makes it from
//! `(seed, epoch, index)` with [`crate::rng::sample_rng`].

use image::{RgbImage, imageops};
use rand::Rng;

use crate::auto_augment::{AutoAugment, TimmHparams};
use crate::error::{DataError, Result};
use crate::processor::{ImageProcessor, ImageSize};
use crate::random_erasing::RandomErasing;
use crate::resize::{CropBox, Resample, resize_rgb};
use crate::spelling::spelled_enum;

/// Padding on each side, in pixels, of [`Augmentation::PadCropFlip`] (torchvision's CIFAR
/// recipe `RandomCrop(32, padding=4)`).
pub const PAD_CROP_PADDING: u32 = 4;

/// Training-time augmentation pipelines, spelled `none`, `random-resized-crop` and
/// `pad-crop-flip` (see [`Augmentation::VARIANTS`]) in settings files and on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Augmentation {
    /// `none`: no augmentation, resize to the model's input size (as the evaluation pipeline).
    None,
    /// `random-resized-crop`: `RandomResizedCrop(size, scale, ratio)` then
    /// `RandomHorizontalFlip(0.5)`, as Hugging Face's `run_image_classification.py` (torchvision
    /// defaults: scale 0.08–1, ratio 3/4–4/3).
    #[default]
    RandomResizedCropFlip,
    /// `pad-crop-flip`: for small images trained from scratch (CIFAR): resize to the input size if
    /// needed, zero-pad [`PAD_CROP_PADDING`] pixels on each side, random crop back to the input
    /// size, horizontal flip (0.5).
    PadCropFlip,
}

spelled_enum!(Augmentation, "augmentation", [
    None => "none",
    RandomResizedCropFlip => "random-resized-crop",
    PadCropFlip => "pad-crop-flip",
]);

impl Augmentation {
    /// Parses one of [`VARIANTS`](Self::VARIANTS) (exactly; a thin wrapper over `FromStr` that
    /// returns [`DataError::InvalidSetting`] for `augmentation`).
    pub fn parse(text: &str) -> Result<Self> {
        text.parse().map_err(|e: crate::spelling::UnknownSpelling| DataError::setting("augmentation", e.to_string()))
    }
}

/// The evaluation resize.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EvalResize {
    /// Resize to exactly the input size, ignoring the aspect ratio: what `ViTImageProcessor` and
    /// `run_image_classification.py` (whose `size` is `(height, width)` for ViT) do.
    #[default]
    Exact,
    /// `Resize(shortest_edge)` then `CenterCrop(size)` (torchvision), the usual ImageNet recipe
    /// (e.g. shortest edge 256 for a 224 crop).
    ShortestEdgeCenterCrop {
        /// The length the shorter side is resized to.
        shortest_edge: u32,
    },
}

/// torchvision `RandomResizedCrop` parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RandomResizedCrop {
    /// Range of the crop area as a fraction of the image area.
    pub scale: (f64, f64),
    /// Range of the crop aspect ratio (width / height), sampled log-uniformly.
    pub ratio: (f64, f64),
}

impl Default for RandomResizedCrop {
    fn default() -> Self {
        RandomResizedCrop { scale: (0.08, 1.0), ratio: (3.0 / 4.0, 4.0 / 3.0) }
    }
}

impl RandomResizedCrop {
    /// torchvision's `RandomResizedCrop.get_params`: up to 10 draws of an area fraction
    /// (uniform in `scale`) and an aspect ratio (log-uniform in `ratio`); the first crop that fits
    /// is placed uniformly at random; otherwise a centred crop clamped to `ratio`.
    pub fn params<R: Rng + ?Sized>(&self, width: u32, height: u32, rng: &mut R) -> CropBox {
        let (w_img, h_img) = (width as f64, height as f64);
        let area = w_img * h_img;
        let (log_lo, log_hi) = (self.ratio.0.ln(), self.ratio.1.ln());
        for _ in 0..10 {
            let target_area = area * uniform(rng, self.scale.0, self.scale.1);
            let aspect = uniform(rng, log_lo, log_hi).exp();
            let w = (target_area * aspect).sqrt().round_ties_even();
            let h = (target_area / aspect).sqrt().round_ties_even();
            if w > 0.0 && w <= w_img && h > 0.0 && h <= h_img {
                let (w, h) = (w as u32, h as u32);
                let top = rng.random_range(0..=height - h);
                let left = rng.random_range(0..=width - w);
                return CropBox { left, top, width: w, height: h };
            }
        }
        let in_ratio = w_img / h_img;
        let (min_r, max_r) = (self.ratio.0.min(self.ratio.1), self.ratio.0.max(self.ratio.1));
        let (w, h) = if in_ratio < min_r {
            (width, ((w_img / min_r).round_ties_even() as u32).clamp(1, height))
        } else if in_ratio > max_r {
            (((h_img * max_r).round_ties_even() as u32).clamp(1, width), height)
        } else {
            (width, height)
        };
        CropBox { left: (width - w) / 2, top: (height - h) / 2, width: w, height: h }
    }

    /// Crops with [`params`](Self::params) and resizes the crop to `size` with `resample`.
    pub fn apply<R: Rng + ?Sized>(
        &self,
        image: &RgbImage,
        size: ImageSize,
        resample: Resample,
        rng: &mut R,
    ) -> Result<RgbImage> {
        check_not_empty(image)?;
        let crop = self.params(image.width(), image.height(), rng);
        resize_rgb(image, Some(crop), size.width, size.height, resample)
    }
}

/// Uniform in `[lo, hi)` (or `lo` when the range is empty), like `torch.empty(1).uniform_`.
fn uniform<R: Rng + ?Sized>(rng: &mut R, lo: f64, hi: f64) -> f64 {
    if hi > lo { rng.random_range(lo..hi) } else { lo }
}

fn check_not_empty(image: &RgbImage) -> Result<()> {
    if image.width() == 0 || image.height() == 0 {
        return Err(DataError::setting(
            "image",
            format!("cannot augment a {}x{} image", image.width(), image.height()),
        ));
    }
    Ok(())
}

/// Flips `image` left-right in place with probability `p`.
pub fn random_hflip<R: Rng + ?Sized>(image: &mut RgbImage, p: f64, rng: &mut R) {
    if rng.random_bool(p.clamp(0.0, 1.0)) {
        imageops::flip_horizontal_in_place(image);
    }
}

/// torchvision `RandomCrop(size, padding)` with zero fill: pads each side by `padding`, then
/// takes a `size` crop at a uniformly random position.
pub fn pad_random_crop<R: Rng + ?Sized>(image: &RgbImage, size: ImageSize, padding: u32, rng: &mut R) -> RgbImage {
    let padded_w = image.width() + 2 * padding;
    let padded_h = image.height() + 2 * padding;
    // A padded image smaller than the crop is padded further (as `pad_if_needed`), centred.
    let top = rng.random_range(0..=padded_h.saturating_sub(size.height)) as i64
        - padding as i64
        - (size.height.saturating_sub(padded_h) / 2) as i64;
    let left = rng.random_range(0..=padded_w.saturating_sub(size.width)) as i64
        - padding as i64
        - (size.width.saturating_sub(padded_w) / 2) as i64;
    crop_with_zero_fill(image, left, top, size)
}

/// The `size` window of `image` whose top-left corner is at (`left`, `top`) (may be negative or
/// reach past the border); pixels outside the image are black.
pub fn crop_with_zero_fill(image: &RgbImage, left: i64, top: i64, size: ImageSize) -> RgbImage {
    let mut out = RgbImage::new(size.width, size.height);
    let (iw, ih) = (image.width() as i64, image.height() as i64);
    let x0 = left.max(0);
    let x1 = (left + size.width as i64).min(iw);
    if x1 <= x0 {
        return out;
    }
    let row_bytes = (x1 - x0) as usize * 3;
    for y in 0..size.height as i64 {
        let sy = top + y;
        if sy < 0 || sy >= ih {
            continue;
        }
        let src_start = (sy * iw + x0) as usize * 3;
        let dst_start = (y * size.width as i64 + (x0 - left)) as usize * 3;
        out.as_mut()[dst_start..dst_start + row_bytes]
            .copy_from_slice(&image.as_raw()[src_start..src_start + row_bytes]);
    }
    out
}

/// torchvision `CenterCrop(size)`: offsets `round((H - h) / 2)` (half to even, as Python); where
/// the image is smaller than the crop it is zero-padded by `(h - H) // 2` before and the rest after.
pub fn center_crop(image: &RgbImage, size: ImageSize) -> RgbImage {
    if image.width() == size.width && image.height() == size.height {
        return image.clone();
    }
    // torchvision pads `(crop - image) // 2` before (the rest after), then crops at
    // `round((image - crop) / 2)`.
    let offset = |image: u32, crop: u32| -> i64 {
        if image >= crop {
            ((image - crop) as f64 / 2.0).round_ties_even() as i64
        } else {
            -(((crop - image) / 2) as i64)
        }
    };
    let top = offset(image.height(), size.height);
    let left = offset(image.width(), size.width);
    crop_with_zero_fill(image, left, top, size)
}

/// torchvision `Resize(shortest_edge)`: the shorter side becomes `shortest_edge`, the longer one
/// `int(shortest_edge * long / short)`.
pub fn resize_shortest_edge(image: &RgbImage, shortest_edge: u32, resample: Resample) -> Result<RgbImage> {
    check_not_empty(image)?;
    let (w, h) = (image.width() as u64, image.height() as u64);
    let (nw, nh) = if w <= h {
        (shortest_edge as u64, shortest_edge as u64 * h / w)
    } else {
        (shortest_edge as u64 * w / h, shortest_edge as u64)
    };
    let (nw, nh) = (nw.clamp(1, u32::MAX as u64) as u32, nh.clamp(1, u32::MAX as u64) as u32);
    resize_rgb(image, None, nw, nh, resample)
}

/// The training side of a [`Transform`]: the base augmentation and its options, as timm's
/// `transforms_imagenet_train` orders them: random-resized-crop (or pad-crop), horizontal flip,
/// automatic augmentation (all on the 8-bit image, [`Transform::apply`]), then after
/// normalisation random erasing ([`crate::ImageBatcher`] applies it to each sample with its own
/// [`crate::rng::RngStream::Erase`] generator).
///
/// `Default` (and `From<Augmentation>`) is the previous behaviour exactly: scale 0.08–1, ratio
/// 3/4–4/3, flip probability 0.5, no automatic augmentation, no erasing. Build one with struct
/// update syntax (`TrainAugmentation { auto_augment, ..augmentation.into() }`) and check it with
/// [`TrainAugmentation::validate`] (or through [`Transform::train_with`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainAugmentation {
    /// The base pipeline (`none`, `random-resized-crop`, `pad-crop-flip`).
    pub augmentation: Augmentation,
    /// Random-resized-crop area range, as a fraction of the image (`0 < lo <= hi <= 1`);
    /// torchvision/timm default 0.08–1.
    pub crop_scale: (f64, f64),
    /// Random-resized-crop aspect-ratio range (width / height, `0 < lo <= hi`), sampled
    /// log-uniformly; default 3/4–4/3.
    pub crop_ratio: (f64, f64),
    /// Probability of the horizontal flip of `random-resized-crop` and `pad-crop-flip`, in [0, 1]
    /// (default 0.5; `none` never flips).
    pub hflip: f64,
    /// Automatic augmentation after the crop and flip (default none).
    pub auto_augment: AutoAugment,
    /// timm's `hparams` for a `rand-` auto-augmentation: fill colour and interpolation of its
    /// geometric ops (default timm's `_HPARAMS_DEFAULT`: 128 gray, random bilinear/bicubic; timm's
    /// training factory uses the dataset mean, [`TimmHparams::from_mean`]).
    pub timm_hparams: TimmHparams,
    /// Random erasing of the normalised image (default off: probability 0).
    pub random_erasing: RandomErasing,
}

impl Default for TrainAugmentation {
    fn default() -> Self {
        Augmentation::default().into()
    }
}

impl From<Augmentation> for TrainAugmentation {
    fn from(augmentation: Augmentation) -> Self {
        let rrc = RandomResizedCrop::default();
        TrainAugmentation {
            augmentation,
            crop_scale: rrc.scale,
            crop_ratio: rrc.ratio,
            hflip: 0.5,
            auto_augment: AutoAugment::None,
            timm_hparams: TimmHparams::default(),
            random_erasing: RandomErasing::default(),
        }
    }
}

impl TrainAugmentation {
    /// Checks every numeric setting; the error names the field (`crop_scale`, `crop_ratio`,
    /// `hflip`, `auto_augment`, `random_erasing.*`).
    pub fn validate(&self) -> Result<()> {
        let (lo, hi) = self.crop_scale;
        if !(lo > 0.0 && lo <= hi && hi <= 1.0) {
            return Err(DataError::setting(
                "crop_scale",
                format!("must satisfy 0 < lo <= hi <= 1 (a fraction of the image area), got ({lo}, {hi})"),
            ));
        }
        let (lo, hi) = self.crop_ratio;
        if !(lo > 0.0 && lo <= hi && hi.is_finite()) {
            return Err(DataError::setting(
                "crop_ratio",
                format!("must satisfy 0 < lo <= hi (width / height, finite), got ({lo}, {hi})"),
            ));
        }
        if !(0.0..=1.0).contains(&self.hflip) {
            return Err(DataError::setting("hflip", format!("must be a probability in [0, 1], got {}", self.hflip)));
        }
        self.auto_augment.validate()?;
        self.random_erasing.validate()
    }

    /// The random-resized-crop parameters.
    pub fn random_resized_crop(&self) -> RandomResizedCrop {
        RandomResizedCrop { scale: self.crop_scale, ratio: self.crop_ratio }
    }

    /// Whether [`Transform::apply`]'s output depends on the generator (the crops, or an
    /// automatic augmentation; random erasing happens later, in the batcher).
    pub fn is_random(&self) -> bool {
        !matches!(self.augmentation, Augmentation::None) || !self.auto_augment.is_none()
    }
}

/// A complete image transform (training augmentation or evaluation resize) to the model's
/// input size, on 8-bit RGB.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Transform {
    /// The model's input size.
    pub size: ImageSize,
    /// Resize filter (the processor's `resample`).
    pub resample: Resample,
    /// What to do.
    pub kind: TransformKind,
}

/// Training or evaluation pipeline.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TransformKind {
    /// A random training augmentation with its options.
    Train(TrainAugmentation),
    /// The deterministic evaluation resize.
    Eval(EvalResize),
}

impl Transform {
    /// A training transform with the default options ([`TrainAugmentation::from`]).
    pub fn train(size: ImageSize, resample: Resample, augmentation: Augmentation) -> Self {
        Transform { size, resample, kind: TransformKind::Train(augmentation.into()) }
    }

    /// A training transform with all options, validated ([`TrainAugmentation::validate`]).
    pub fn train_with(size: ImageSize, resample: Resample, options: TrainAugmentation) -> Result<Self> {
        options.validate()?;
        Ok(Transform { size, resample, kind: TransformKind::Train(options) })
    }

    /// An evaluation transform.
    pub fn eval(size: ImageSize, resample: Resample, resize: EvalResize) -> Self {
        Transform { size, resample, kind: TransformKind::Eval(resize) }
    }

    /// A training transform to `processor`'s size with its resample filter.
    pub fn train_for(processor: &ImageProcessor, augmentation: Augmentation) -> Self {
        Self::train(processor.size, processor.resample, augmentation)
    }

    /// An evaluation transform to `processor`'s size with its resample filter
    /// (`EvalResize::Exact` is exactly `processor.process`).
    pub fn eval_for(processor: &ImageProcessor, resize: EvalResize) -> Self {
        Self::eval(processor.size, processor.resample, resize)
    }

    /// The training options, `None` for an evaluation transform.
    pub fn train_options(&self) -> Option<&TrainAugmentation> {
        match &self.kind {
            TransformKind::Train(options) => Some(options),
            TransformKind::Eval(_) => None,
        }
    }

    /// The random erasing to apply to the normalised image: `Some` only for a training
    /// transform whose erasing probability is above 0.
    pub fn random_erasing(&self) -> Option<&RandomErasing> {
        self.train_options().map(|t| &t.random_erasing).filter(|e| e.is_active())
    }

    /// Whether the output of [`apply`](Self::apply) depends on the random generator.
    pub fn is_random(&self) -> bool {
        self.train_options().is_some_and(TrainAugmentation::is_random)
    }

    /// Applies the transform; the result is `size`. A training transform crops and flips, then
    /// applies its automatic augmentation, drawing everything from `rng` in that order.
    pub fn apply<R: Rng + ?Sized>(&self, image: &RgbImage, rng: &mut R) -> Result<RgbImage> {
        check_not_empty(image)?;
        let exact = |img: &RgbImage| resize_rgb(img, None, self.size.width, self.size.height, self.resample);
        let train = match &self.kind {
            TransformKind::Eval(EvalResize::Exact) => return exact(image),
            TransformKind::Eval(EvalResize::ShortestEdgeCenterCrop { shortest_edge }) => {
                return Ok(center_crop(&resize_shortest_edge(image, *shortest_edge, self.resample)?, self.size));
            }
            TransformKind::Train(train) => train,
        };
        let out = match train.augmentation {
            Augmentation::None => exact(image)?,
            Augmentation::RandomResizedCropFlip => {
                let mut out = train.random_resized_crop().apply(image, self.size, self.resample, rng)?;
                random_hflip(&mut out, train.hflip, rng);
                out
            }
            Augmentation::PadCropFlip => {
                let resized;
                let base = if image.width() == self.size.width && image.height() == self.size.height {
                    image
                } else {
                    resized = exact(image)?;
                    &resized
                };
                let mut out = pad_random_crop(base, self.size, PAD_CROP_PADDING, rng);
                random_hflip(&mut out, train.hflip, rng);
                out
            }
        };
        if train.auto_augment.is_none() {
            return Ok(out);
        }
        Ok(train.auto_augment.apply_with(&out, &train.timm_hparams, rng))
    }
}
