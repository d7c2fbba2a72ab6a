//! torchvision's `TrivialAugmentWide`.

use image::RgbImage;
use rand::Rng;

use super::ops::Filter;
use super::torchvision::{Space, TorchvisionOp};

/// torchvision's `TrivialAugmentWide()` with its defaults (31 magnitude bins, nearest neighbour,
/// black fill): one op drawn uniformly from [`TrivialAugmentWide::OPS`], one magnitude bin drawn
/// uniformly, a random sign for the signed ops.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrivialAugmentWide;

impl TrivialAugmentWide {
    /// The op set, in the order of torchvision's `_augmentation_space`.
    pub const OPS: [TorchvisionOp; 14] = [
        TorchvisionOp::Identity,
        TorchvisionOp::ShearX,
        TorchvisionOp::ShearY,
        TorchvisionOp::TranslateX,
        TorchvisionOp::TranslateY,
        TorchvisionOp::Rotate,
        TorchvisionOp::Brightness,
        TorchvisionOp::Color,
        TorchvisionOp::Contrast,
        TorchvisionOp::Sharpness,
        TorchvisionOp::Posterize,
        TorchvisionOp::Solarize,
        TorchvisionOp::AutoContrast,
        TorchvisionOp::Equalize,
    ];

    /// The number of magnitude bins (`num_magnitude_bins`).
    pub const NUM_BINS: usize = 31;

    /// The magnitude bins of `op` (float32, as torch's `linspace`), `None` for ops without
    /// magnitude.
    pub fn bins(op: TorchvisionOp) -> Option<Vec<f32>> {
        op.bins(Space::TrivialAugmentWide, Self::NUM_BINS, 0, 0)
    }

    /// The op, signed magnitude and result of one draw, as `TrivialAugmentWide.forward`.
    pub fn draw<R: Rng + ?Sized>(&self, rng: &mut R) -> (TorchvisionOp, f64) {
        let op = Self::OPS[rng.random_range(0..Self::OPS.len())];
        let mut magnitude = match Self::bins(op) {
            Some(bins) => bins[rng.random_range(0..bins.len())] as f64,
            None => 0.0,
        };
        if op.signed() && rng.random_bool(0.5) {
            magnitude = -magnitude;
        }
        (op, magnitude)
    }

    /// Applies one random op.
    pub fn apply<R: Rng + ?Sized>(&self, img: &RgbImage, rng: &mut R) -> RgbImage {
        let (op, magnitude) = self.draw(rng);
        op.apply(img, magnitude, Filter::Nearest, [0; 3])
    }
}
