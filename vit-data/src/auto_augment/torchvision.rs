//! torchvision's `_apply_op` on PIL images and the magnitude bins of its `_augmentation_space`s.

use image::RgbImage;

use super::ops::{self, Filter, degrees};

/// The ops of torchvision's `autoaugment.py` (`_apply_op`'s names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TorchvisionOp {
    /// `Identity`.
    Identity,
    /// `ShearX`: `F.affine` with shear `degrees(atan(m))` about the top-left corner.
    ShearX,
    /// `ShearY`: as `ShearX`, vertically.
    ShearY,
    /// `TranslateX`: `F.affine` translating by `int(m)` pixels (to the right for positive `m`).
    TranslateX,
    /// `TranslateY`: `int(m)` pixels down.
    TranslateY,
    /// `Rotate`: `F.rotate(m)` (`Image.rotate`).
    Rotate,
    /// `Brightness`: `ImageEnhance.Brightness` with factor `1 + m`.
    Brightness,
    /// `Color`: `ImageEnhance.Color` (`adjust_saturation`) with factor `1 + m`.
    Color,
    /// `Contrast`: `ImageEnhance.Contrast` with factor `1 + m`.
    Contrast,
    /// `Sharpness`: `ImageEnhance.Sharpness` with factor `1 + m`.
    Sharpness,
    /// `Posterize`: `ImageOps.posterize(int(m))`.
    Posterize,
    /// `Solarize`: `ImageOps.solarize(m)`.
    Solarize,
    /// `AutoContrast`: `ImageOps.autocontrast`.
    AutoContrast,
    /// `Equalize`: `ImageOps.equalize`.
    Equalize,
    /// `Invert`: `ImageOps.invert`.
    Invert,
}

/// Which `_augmentation_space` the bins come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Space {
    /// `AutoAugment` (and torchvision's `RandAugment`): shear 0.3, translate 150/331 of the
    /// size, rotate 30, enhance 0.9, posterize 8..4.
    AutoAugment,
    /// `TrivialAugmentWide`: shear 0.99, translate 32, rotate 135, enhance 0.99, posterize 8..2.
    TrivialAugmentWide,
}

impl TorchvisionOp {
    /// torchvision's name of the op.
    pub fn name(self) -> &'static str {
        match self {
            TorchvisionOp::Identity => "Identity",
            TorchvisionOp::ShearX => "ShearX",
            TorchvisionOp::ShearY => "ShearY",
            TorchvisionOp::TranslateX => "TranslateX",
            TorchvisionOp::TranslateY => "TranslateY",
            TorchvisionOp::Rotate => "Rotate",
            TorchvisionOp::Brightness => "Brightness",
            TorchvisionOp::Color => "Color",
            TorchvisionOp::Contrast => "Contrast",
            TorchvisionOp::Sharpness => "Sharpness",
            TorchvisionOp::Posterize => "Posterize",
            TorchvisionOp::Solarize => "Solarize",
            TorchvisionOp::AutoContrast => "AutoContrast",
            TorchvisionOp::Equalize => "Equalize",
            TorchvisionOp::Invert => "Invert",
        }
    }

    /// Whether the op's magnitude gets a random sign (the `signed` flag of the space).
    pub fn signed(self) -> bool {
        matches!(
            self,
            TorchvisionOp::ShearX
                | TorchvisionOp::ShearY
                | TorchvisionOp::TranslateX
                | TorchvisionOp::TranslateY
                | TorchvisionOp::Rotate
                | TorchvisionOp::Brightness
                | TorchvisionOp::Color
                | TorchvisionOp::Contrast
                | TorchvisionOp::Sharpness
        )
    }

    /// The op's magnitude bins in `space` (`num_bins` values, float32 as torch makes them), or
    /// `None` for the ops without magnitude.
    pub(crate) fn bins(self, space: Space, num_bins: usize, height: u32, width: u32) -> Option<Vec<f32>> {
        let wide = space == Space::TrivialAugmentWide;
        let (shear, enhance) = if wide { (0.99, 0.99) } else { (0.3, 0.9) };
        Some(match self {
            TorchvisionOp::ShearX | TorchvisionOp::ShearY => linspace_f32(0.0, shear, num_bins),
            TorchvisionOp::TranslateX if wide => linspace_f32(0.0, 32.0, num_bins),
            TorchvisionOp::TranslateY if wide => linspace_f32(0.0, 32.0, num_bins),
            TorchvisionOp::TranslateX => linspace_f32(0.0, 150.0 / 331.0 * width as f64, num_bins),
            TorchvisionOp::TranslateY => linspace_f32(0.0, 150.0 / 331.0 * height as f64, num_bins),
            TorchvisionOp::Rotate => linspace_f32(0.0, if wide { 135.0 } else { 30.0 }, num_bins),
            TorchvisionOp::Brightness | TorchvisionOp::Color | TorchvisionOp::Contrast | TorchvisionOp::Sharpness => {
                linspace_f32(0.0, enhance, num_bins)
            }
            TorchvisionOp::Posterize => {
                // 8 - (arange(n) / ((n - 1) / k)).round().int(), in float32.
                let div = ((num_bins as f64 - 1.0) / if wide { 6.0 } else { 4.0 }) as f32;
                (0..num_bins).map(|i| 8.0 - (i as f32 / div).round_ties_even()).collect()
            }
            TorchvisionOp::Solarize => linspace_f32(255.0, 0.0, num_bins),
            TorchvisionOp::Identity | TorchvisionOp::AutoContrast | TorchvisionOp::Equalize | TorchvisionOp::Invert => {
                return None;
            }
        })
    }

    /// torchvision's `_apply_op(img, name, magnitude, interpolation, fill)` on a PIL image.
    pub fn apply(self, img: &RgbImage, magnitude: f64, filter: Filter, fill: [u8; 3]) -> RgbImage {
        let (w, h) = (img.width() as f64, img.height() as f64);
        let affine = |center: (f64, f64), translate: (f64, f64), shear: (f64, f64)| {
            let m = ops::torchvision_affine_matrix(center, 0.0, translate, 1.0, shear);
            ops::affine(img, m, filter, fill)
        };
        match self {
            TorchvisionOp::Identity => img.clone(),
            TorchvisionOp::ShearX => affine((0.0, 0.0), (0.0, 0.0), (degrees(magnitude.atan()), 0.0)),
            TorchvisionOp::ShearY => affine((0.0, 0.0), (0.0, 0.0), (0.0, degrees(magnitude.atan()))),
            TorchvisionOp::TranslateX => affine((w * 0.5, h * 0.5), (magnitude.trunc(), 0.0), (0.0, 0.0)),
            TorchvisionOp::TranslateY => affine((w * 0.5, h * 0.5), (0.0, magnitude.trunc()), (0.0, 0.0)),
            TorchvisionOp::Rotate => ops::rotate(img, magnitude, filter, fill),
            TorchvisionOp::Brightness => ops::brightness(img, 1.0 + magnitude),
            TorchvisionOp::Color => ops::color(img, 1.0 + magnitude),
            TorchvisionOp::Contrast => ops::contrast(img, 1.0 + magnitude),
            TorchvisionOp::Sharpness => ops::sharpness(img, 1.0 + magnitude),
            TorchvisionOp::Posterize => ops::posterize(img, magnitude.trunc().clamp(0.0, 8.0) as u8),
            TorchvisionOp::Solarize => ops::solarize(img, magnitude),
            TorchvisionOp::AutoContrast => ops::autocontrast(img),
            TorchvisionOp::Equalize => ops::equalize(img),
            TorchvisionOp::Invert => ops::invert(img),
        }
    }
}

/// `torch.linspace(start, end, steps)` in float32 as torch computes it on CPU: the ends cast to
/// float32, `step = (end - start) / (steps - 1)`, then `start + step * i` for the first half and
/// `end - step * (steps - 1 - i)` for the second, each a fused multiply-add (torch's CPU
/// kernels are built with FMA for AVX2/AVX-512, where the compiler contracts these).
pub fn linspace_f32(start: f64, end: f64, steps: usize) -> Vec<f32> {
    let (start, end) = (start as f32, end as f32);
    match steps {
        0 => return Vec::new(),
        1 => return vec![start],
        _ => {}
    }
    let step = (end - start) / (steps - 1) as f32;
    let halfway = steps / 2;
    (0..steps)
        .map(|i| if i < halfway { step.mul_add(i as f32, start) } else { (-step).mul_add((steps - 1 - i) as f32, end) })
        .collect()
}
