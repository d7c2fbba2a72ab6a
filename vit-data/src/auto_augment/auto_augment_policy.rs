//! torchvision's `AutoAugment` with its learned policies.

use image::RgbImage;
use rand::Rng;

use super::ops::Filter;
use super::torchvision::{Space, TorchvisionOp};
use crate::spelling::spelled_enum;

/// The policies of torchvision's `AutoAugmentPolicy`, spelled `imagenet`, `cifar10` and `svhn`
/// (after `autoaugment-` in an [`super::AutoAugment`] string).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AutoAugmentPolicy {
    /// `AutoAugmentPolicy.IMAGENET`.
    Imagenet,
    /// `AutoAugmentPolicy.CIFAR10`.
    Cifar10,
    /// `AutoAugmentPolicy.SVHN`.
    Svhn,
}

spelled_enum!(AutoAugmentPolicy, "auto-augment policy", [
    Imagenet => "imagenet",
    Cifar10 => "cifar10",
    Svhn => "svhn",
]);

/// One op of a sub-policy: op, probability, magnitude bin (`None` for ops without magnitude).
pub type PolicyOp = (TorchvisionOp, f64, Option<usize>);

use TorchvisionOp::{
    AutoContrast as AC, Brightness as Br, Color as Co, Contrast as Ct, Equalize as Equ, Invert as Inv, Posterize as Po,
    Rotate as Ro, Sharpness as Sh, ShearX as SX, ShearY as SY, Solarize as So, TranslateX as TX, TranslateY as TY,
};

const IMAGENET: [[PolicyOp; 2]; 25] = [
    [(Po, 0.4, Some(8)), (Ro, 0.6, Some(9))],
    [(So, 0.6, Some(5)), (AC, 0.6, None)],
    [(Equ, 0.8, None), (Equ, 0.6, None)],
    [(Po, 0.6, Some(7)), (Po, 0.6, Some(6))],
    [(Equ, 0.4, None), (So, 0.2, Some(4))],
    [(Equ, 0.4, None), (Ro, 0.8, Some(8))],
    [(So, 0.6, Some(3)), (Equ, 0.6, None)],
    [(Po, 0.8, Some(5)), (Equ, 1.0, None)],
    [(Ro, 0.2, Some(3)), (So, 0.6, Some(8))],
    [(Equ, 0.6, None), (Po, 0.4, Some(6))],
    [(Ro, 0.8, Some(8)), (Co, 0.4, Some(0))],
    [(Ro, 0.4, Some(9)), (Equ, 0.6, None)],
    [(Equ, 0.0, None), (Equ, 0.8, None)],
    [(Inv, 0.6, None), (Equ, 1.0, None)],
    [(Co, 0.6, Some(4)), (Ct, 1.0, Some(8))],
    [(Ro, 0.8, Some(8)), (Co, 1.0, Some(2))],
    [(Co, 0.8, Some(8)), (So, 0.8, Some(7))],
    [(Sh, 0.4, Some(7)), (Inv, 0.6, None)],
    [(SX, 0.6, Some(5)), (Equ, 1.0, None)],
    [(Co, 0.4, Some(0)), (Equ, 0.6, None)],
    [(Equ, 0.4, None), (So, 0.2, Some(4))],
    [(So, 0.6, Some(5)), (AC, 0.6, None)],
    [(Inv, 0.6, None), (Equ, 1.0, None)],
    [(Co, 0.6, Some(4)), (Ct, 1.0, Some(8))],
    [(Equ, 0.8, None), (Equ, 0.6, None)],
];

const CIFAR10: [[PolicyOp; 2]; 25] = [
    [(Inv, 0.1, None), (Ct, 0.2, Some(6))],
    [(Ro, 0.7, Some(2)), (TX, 0.3, Some(9))],
    [(Sh, 0.8, Some(1)), (Sh, 0.9, Some(3))],
    [(SY, 0.5, Some(8)), (TY, 0.7, Some(9))],
    [(AC, 0.5, None), (Equ, 0.9, None)],
    [(SY, 0.2, Some(7)), (Po, 0.3, Some(7))],
    [(Co, 0.4, Some(3)), (Br, 0.6, Some(7))],
    [(Sh, 0.3, Some(9)), (Br, 0.7, Some(9))],
    [(Equ, 0.6, None), (Equ, 0.5, None)],
    [(Ct, 0.6, Some(7)), (Sh, 0.6, Some(5))],
    [(Co, 0.7, Some(7)), (TX, 0.5, Some(8))],
    [(Equ, 0.3, None), (AC, 0.4, None)],
    [(TY, 0.4, Some(3)), (Sh, 0.2, Some(6))],
    [(Br, 0.9, Some(6)), (Co, 0.2, Some(8))],
    [(So, 0.5, Some(2)), (Inv, 0.0, None)],
    [(Equ, 0.2, None), (AC, 0.6, None)],
    [(Equ, 0.2, None), (Equ, 0.6, None)],
    [(Co, 0.9, Some(9)), (Equ, 0.6, None)],
    [(AC, 0.8, None), (So, 0.2, Some(8))],
    [(Br, 0.1, Some(3)), (Co, 0.7, Some(0))],
    [(So, 0.4, Some(5)), (AC, 0.9, None)],
    [(TY, 0.9, Some(9)), (TY, 0.7, Some(9))],
    [(AC, 0.9, None), (So, 0.8, Some(3))],
    [(Equ, 0.8, None), (Inv, 0.1, None)],
    [(TY, 0.7, Some(9)), (AC, 0.9, None)],
];

const SVHN: [[PolicyOp; 2]; 25] = [
    [(SX, 0.9, Some(4)), (Inv, 0.2, None)],
    [(SY, 0.9, Some(8)), (Inv, 0.7, None)],
    [(Equ, 0.6, None), (So, 0.6, Some(6))],
    [(Inv, 0.9, None), (Equ, 0.6, None)],
    [(Equ, 0.6, None), (Ro, 0.9, Some(3))],
    [(SX, 0.9, Some(4)), (AC, 0.8, None)],
    [(SY, 0.9, Some(8)), (Inv, 0.4, None)],
    [(SY, 0.9, Some(5)), (So, 0.2, Some(6))],
    [(Inv, 0.9, None), (AC, 0.8, None)],
    [(Equ, 0.6, None), (Ro, 0.9, Some(3))],
    [(SX, 0.9, Some(4)), (So, 0.3, Some(3))],
    [(SY, 0.8, Some(8)), (Inv, 0.7, None)],
    [(Equ, 0.9, None), (TY, 0.6, Some(6))],
    [(Inv, 0.9, None), (Equ, 0.6, None)],
    [(Ct, 0.3, Some(3)), (Ro, 0.8, Some(4))],
    [(Inv, 0.8, None), (TY, 0.0, Some(2))],
    [(SY, 0.7, Some(6)), (So, 0.4, Some(8))],
    [(Inv, 0.6, None), (Ro, 0.8, Some(4))],
    [(SY, 0.3, Some(7)), (TX, 0.9, Some(3))],
    [(SX, 0.1, Some(6)), (Inv, 0.6, None)],
    [(So, 0.7, Some(2)), (TY, 0.6, Some(7))],
    [(SY, 0.8, Some(4)), (Inv, 0.8, None)],
    [(SX, 0.7, Some(9)), (TY, 0.8, Some(3))],
    [(SY, 0.8, Some(5)), (AC, 0.7, None)],
    [(SX, 0.7, Some(2)), (Inv, 0.1, None)],
];

impl AutoAugmentPolicy {
    /// The number of magnitude bins of torchvision's `AutoAugment`.
    pub const NUM_BINS: usize = 10;

    /// The 25 sub-policies of two ops each, as in torchvision's `_get_policies`.
    pub fn sub_policies(self) -> &'static [[PolicyOp; 2]; 25] {
        match self {
            AutoAugmentPolicy::Imagenet => &IMAGENET,
            AutoAugmentPolicy::Cifar10 => &CIFAR10,
            AutoAugmentPolicy::Svhn => &SVHN,
        }
    }

    /// The magnitude bins of `op` for a `height` x `width` image (float32, as torch's
    /// `linspace`), `None` for ops without magnitude.
    pub fn bins(op: TorchvisionOp, height: u32, width: u32) -> Option<Vec<f32>> {
        op.bins(Space::AutoAugment, Self::NUM_BINS, height, width)
    }

    /// Applies one random sub-policy as `AutoAugment.forward` (nearest neighbour, black fill):
    /// draws the sub-policy, two probabilities and two signs, then applies each op whose
    /// probability draw is `<=` its probability, at its bin's magnitude, negated where its sign
    /// draw is 0.
    pub fn apply<R: Rng + ?Sized>(self, img: &RgbImage, rng: &mut R) -> RgbImage {
        let policies = self.sub_policies();
        let id = rng.random_range(0..policies.len());
        let probs: [f32; 2] = [rng.random(), rng.random()];
        let signs: [u32; 2] = [rng.random_range(0..2), rng.random_range(0..2)];
        let (height, width) = (img.height(), img.width());
        let mut out = img.clone();
        for (i, &(op, p, bin)) in policies[id].iter().enumerate() {
            if probs[i] > p as f32 {
                continue;
            }
            let mut magnitude = match (bin, Self::bins(op, height, width)) {
                (Some(k), Some(bins)) => bins[k] as f64,
                _ => 0.0,
            };
            if op.signed() && signs[i] == 0 {
                magnitude = -magnitude;
            }
            out = op.apply(&out, magnitude, Filter::Nearest, [0; 3]);
        }
        out
    }
}
