//! Automatic augmentation policies on 8-bit RGB images, each with its own library's defaults:
//!
//! * timm's RandAugment (`rand-m9-mstd0.5-inc1`, ...: [`RandAugmentConfig`]), as
//!   `timm.data.auto_augment.rand_augment_transform` builds it, with timm's `hparams`
//!   ([`TimmHparams`]: the fill colour and the interpolation of the geometric ops);
//! * torchvision's `TrivialAugmentWide` (`trivialaugment`) and `AutoAugment` with the
//!   `IMAGENET`, `CIFAR10` and `SVHN` policies (`autoaugment-imagenet`, ...: [`AutoAugmentPolicy`]),
//!   with torchvision's defaults (nearest neighbour, black fill).
//!
//! Both libraries run these ops on PIL images, so [`ops`] reproduces Pillow's arithmetic. The
//! randomness comes only from the generator passed in (the per-sample augmentation stream), so the
//! draws are not Python's; their distributions are the libraries'.
//!
//! Settings spell a policy as one string ([`AutoAugment`]'s `FromStr`, `Display` and serde): `none`,
//! a timm `rand-...` string, `trivialaugment`, `autoaugment-imagenet`, `autoaugment-cifar10` or
//! `autoaugment-svhn`.

mod auto_augment_policy;
pub mod ops;
mod parse;
mod rand_augment;
mod torchvision;
mod trivial_augment;

use std::fmt;
use std::str::FromStr;

use image::RgbImage;
use rand::Rng;

use crate::error::{DataError, Result};
use crate::spelling::spelled_enum;

pub use auto_augment_policy::AutoAugmentPolicy;
pub use ops::Filter;
pub use rand_augment::{LEVEL_DENOM, RandAugmentConfig, RandAugmentStep, TimmOp};
pub use torchvision::{TorchvisionOp, linspace_f32};
pub use trivial_augment::TrivialAugmentWide;

/// An automatic augmentation policy, applied to the 8-bit image after the crop and flip and
/// before normalisation (timm's `transforms_imagenet_train` order).
///
/// Spelled (`FromStr`, `Display`, serde) as `none`, a timm RandAugment string such as
/// `rand-m9-mstd0.5-inc1` (grammar at [`RandAugmentConfig`]), `trivialaugment`,
/// `autoaugment-imagenet`, `autoaugment-cifar10` or `autoaugment-svhn`. `Display` writes the
/// canonical spelling, which parses back to the same value.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum AutoAugment {
    /// `none`: no automatic augmentation.
    #[default]
    None,
    /// `rand-...`: timm's RandAugment.
    RandAugment(RandAugmentConfig),
    /// `trivialaugment`: torchvision's `TrivialAugmentWide()` (31 magnitude bins, nearest, black
    /// fill).
    TrivialAugmentWide,
    /// `autoaugment-<policy>`: torchvision's `AutoAugment(policy)` (nearest, black fill).
    Policy(AutoAugmentPolicy),
}

impl AutoAugment {
    /// One example of each accepted form, used in error messages.
    pub const EXAMPLES: &'static [&'static str] = &[
        "none",
        "rand-m9-mstd0.5-inc1",
        "trivialaugment",
        "autoaugment-imagenet",
        "autoaugment-cifar10",
        "autoaugment-svhn",
    ];

    /// Parses a spelling (see the type's documentation); errors are
    /// [`DataError::InvalidSetting`] for `auto_augment`, with a suggestion or the grammar.
    pub fn parse(text: &str) -> Result<Self> {
        parse::parse(text)
    }

    /// Whether this is [`AutoAugment::None`].
    pub fn is_none(&self) -> bool {
        matches!(self, AutoAugment::None)
    }

    /// Checks the RandAugment numbers (the other forms have nothing to check).
    pub fn validate(&self) -> Result<()> {
        match self {
            AutoAugment::RandAugment(config) => config.validate(),
            _ => Ok(()),
        }
    }

    /// Applies the policy with timm's default `hparams` for `rand-` strings (fill 128 gray,
    /// bilinear or bicubic at random) and torchvision's defaults for the others.
    pub fn apply<R: Rng + ?Sized>(&self, img: &RgbImage, rng: &mut R) -> RgbImage {
        self.apply_with(img, &TimmHparams::default(), rng)
    }

    /// Applies the policy; `hparams` is used by the timm family only (the torchvision families
    /// always use their library's defaults: nearest neighbour and black fill).
    pub fn apply_with<R: Rng + ?Sized>(&self, img: &RgbImage, hparams: &TimmHparams, rng: &mut R) -> RgbImage {
        match self {
            AutoAugment::None => img.clone(),
            AutoAugment::RandAugment(config) => config.apply(img, hparams, rng),
            AutoAugment::TrivialAugmentWide => TrivialAugmentWide.apply(img, rng),
            AutoAugment::Policy(policy) => policy.apply(img, rng),
        }
    }
}

impl fmt::Display for AutoAugment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AutoAugment::None => f.write_str("none"),
            AutoAugment::RandAugment(config) => config.fmt(f),
            AutoAugment::TrivialAugmentWide => f.write_str("trivialaugment"),
            AutoAugment::Policy(policy) => write!(f, "autoaugment-{}", policy.as_str()),
        }
    }
}

impl FromStr for AutoAugment {
    type Err = DataError;

    fn from_str(text: &str) -> Result<Self> {
        parse::parse(text)
    }
}

impl serde::Serialize for AutoAugment {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for AutoAugment {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The interpolation of timm's geometric ops (`hparams['interpolation']`), spelled `random`,
/// `nearest`, `bilinear` or `bicubic`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum AugmentInterpolation {
    /// `random`: bilinear or bicubic with equal probability, drawn per op (timm's default, and
    /// what `transforms_imagenet_train` keeps for `interpolation='random'`).
    #[default]
    Random,
    /// `nearest`.
    Nearest,
    /// `bilinear`.
    Bilinear,
    /// `bicubic`.
    Bicubic,
}

spelled_enum!(AugmentInterpolation, "auto-augment interpolation", [
    Random => "random",
    Nearest => "nearest",
    Bilinear => "bilinear",
    Bicubic => "bicubic",
]);

impl AugmentInterpolation {
    /// The filter for one op (draws one number for `Random`, nothing otherwise).
    pub fn pick<R: Rng + ?Sized>(self, rng: &mut R) -> Filter {
        match self {
            AugmentInterpolation::Random => {
                if rng.random_bool(0.5) {
                    Filter::Bicubic
                } else {
                    Filter::Bilinear
                }
            }
            AugmentInterpolation::Nearest => Filter::Nearest,
            AugmentInterpolation::Bilinear => Filter::Bilinear,
            AugmentInterpolation::Bicubic => Filter::Bicubic,
        }
    }

    /// The fixed interpolation timm derives from a resize filter (`str_to_pil_interp`): nearest,
    /// bilinear and bicubic map to themselves, anything else (box, hamming, lanczos) is not a
    /// transform filter and maps to `Random` (timm would fail; random is its default).
    pub fn from_resample(resample: crate::resize::Resample) -> Self {
        use crate::resize::Resample;
        match resample {
            Resample::Nearest => AugmentInterpolation::Nearest,
            Resample::Bilinear => AugmentInterpolation::Bilinear,
            Resample::Bicubic => AugmentInterpolation::Bicubic,
            _ => AugmentInterpolation::Random,
        }
    }
}

/// timm's `hparams` of its auto-augmentations that matter here: the fill colour of the
/// geometric ops (`img_mean`) and their interpolation. `Default` is timm's `_HPARAMS_DEFAULT`
/// (128 gray, random bilinear/bicubic); `transforms_imagenet_train` sets the fill to the
/// dataset mean ([`TimmHparams::from_mean`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimmHparams {
    /// Fill colour of the area the geometric ops uncover.
    pub fill: [u8; 3],
    /// Interpolation of the geometric ops.
    pub interpolation: AugmentInterpolation,
}

impl Default for TimmHparams {
    fn default() -> Self {
        TimmHparams { fill: [128; 3], interpolation: AugmentInterpolation::Random }
    }
}

impl TimmHparams {
    /// As timm's `transforms_imagenet_train`: fill `min(255, round(255 * mean))` per channel
    /// (Python's half-to-even rounding; a one-channel mean is repeated), the given interpolation.
    pub fn from_mean(mean: &[f32], interpolation: AugmentInterpolation) -> Self {
        let channel = |i: usize| {
            let m = match mean.len() {
                0 => 128.0 / 255.0,
                1 => mean[0] as f64,
                _ => mean[i.min(mean.len() - 1)] as f64,
            };
            (255.0 * m).round_ties_even().clamp(0.0, 255.0) as u8
        };
        TimmHparams { fill: [channel(0), channel(1), channel(2)], interpolation }
    }
}

/// Uniform in `[0, 1)` (Python's `random.random()`).
pub(crate) fn unit<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    rng.random::<f64>()
}

/// A normal sample (Box-Muller), for Python's `random.gauss(mu, sigma)` and torch's `normal_()`.
pub(crate) fn gauss<R: Rng + ?Sized>(rng: &mut R, mu: f64, sigma: f64) -> f64 {
    let u1 = 1.0 - unit(rng); // (0, 1]
    let u2 = unit(rng);
    mu + sigma * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn gauss_has_the_right_moments() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let n = 20_000;
        let xs: Vec<f64> = (0..n).map(|_| gauss(&mut rng, 3.0, 2.0)).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!((mean - 3.0).abs() < 0.05, "{mean}");
        assert!((var.sqrt() - 2.0).abs() < 0.05, "{var}");
    }

    #[test]
    fn timm_fill_from_mean() {
        assert_eq!(
            TimmHparams::from_mean(&crate::IMAGENET_DEFAULT_MEAN, AugmentInterpolation::Random).fill,
            [124, 116, 104]
        );
        // round(127.5) = 128 (half to even)
        assert_eq!(TimmHparams::from_mean(&[0.5], AugmentInterpolation::Bilinear).fill, [128; 3]);
    }
}
