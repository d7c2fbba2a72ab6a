//! timm's RandAugment (`timm.data.auto_augment.rand_augment_transform`): its op sets, its
//! level-to-argument functions, magnitude noise and per-op probability.

use std::fmt;

use image::RgbImage;
use rand::Rng;

use super::ops::{self, Filter};
use super::{TimmHparams, gauss, unit};
use crate::error::{DataError, Result};

/// timm's `_LEVEL_DENOM`: magnitude 10 is the strongest level of the default scale.
pub const LEVEL_DENOM: f64 = 10.0;

/// The ops of timm's RandAugment sets, named as in timm (`TimmOp::name`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimmOp {
    /// `AutoContrast`: `ImageOps.autocontrast`.
    AutoContrast,
    /// `Equalize`: `ImageOps.equalize`.
    Equalize,
    /// `Invert`: `ImageOps.invert`.
    Invert,
    /// `Rotate`: up to ±30° (random sign).
    Rotate,
    /// `Posterize`: keep `int(level / 10 * 4)` bits (0 to 4; stronger at low levels).
    Posterize,
    /// `PosterizeIncreasing`: keep `4 - int(level / 10 * 4)` bits.
    PosterizeIncreasing,
    /// `Solarize`: threshold `min(256, int(level / 10 * 256))`.
    Solarize,
    /// `SolarizeIncreasing`: threshold `256 - min(256, int(level / 10 * 256))`.
    SolarizeIncreasing,
    /// `SolarizeAdd`: add `min(128, int(level / 10 * 110))` below 128.
    SolarizeAdd,
    /// `Color`: factor `level / 10 * 1.8 + 0.1`.
    Color,
    /// `ColorIncreasing`: factor `max(0.1, 1 ± level / 10 * 0.9)`.
    ColorIncreasing,
    /// `Contrast`: as `Color`.
    Contrast,
    /// `ContrastIncreasing`: as `ColorIncreasing`.
    ContrastIncreasing,
    /// `Brightness`: as `Color`.
    Brightness,
    /// `BrightnessIncreasing`: as `ColorIncreasing`.
    BrightnessIncreasing,
    /// `Sharpness`: as `Color`.
    Sharpness,
    /// `SharpnessIncreasing`: as `ColorIncreasing`.
    SharpnessIncreasing,
    /// `ShearX`: factor up to ±0.3.
    ShearX,
    /// `ShearY`: factor up to ±0.3.
    ShearY,
    /// `TranslateXRel`: up to ±45% of the width.
    TranslateXRel,
    /// `TranslateYRel`: up to ±45% of the height.
    TranslateYRel,
}

impl TimmOp {
    /// timm's `_RAND_TRANSFORMS` (the default set), in timm's order.
    pub const RAND_TRANSFORMS: [TimmOp; 15] = [
        TimmOp::AutoContrast,
        TimmOp::Equalize,
        TimmOp::Invert,
        TimmOp::Rotate,
        TimmOp::Posterize,
        TimmOp::Solarize,
        TimmOp::SolarizeAdd,
        TimmOp::Color,
        TimmOp::Contrast,
        TimmOp::Brightness,
        TimmOp::Sharpness,
        TimmOp::ShearX,
        TimmOp::ShearY,
        TimmOp::TranslateXRel,
        TimmOp::TranslateYRel,
    ];

    /// timm's `_RAND_INCREASING_TRANSFORMS` (`inc1`), in timm's order.
    pub const RAND_INCREASING_TRANSFORMS: [TimmOp; 15] = [
        TimmOp::AutoContrast,
        TimmOp::Equalize,
        TimmOp::Invert,
        TimmOp::Rotate,
        TimmOp::PosterizeIncreasing,
        TimmOp::SolarizeIncreasing,
        TimmOp::SolarizeAdd,
        TimmOp::ColorIncreasing,
        TimmOp::ContrastIncreasing,
        TimmOp::BrightnessIncreasing,
        TimmOp::SharpnessIncreasing,
        TimmOp::ShearX,
        TimmOp::ShearY,
        TimmOp::TranslateXRel,
        TimmOp::TranslateYRel,
    ];

    /// timm's name of the op (`NAME_TO_OP` key).
    pub fn name(self) -> &'static str {
        match self {
            TimmOp::AutoContrast => "AutoContrast",
            TimmOp::Equalize => "Equalize",
            TimmOp::Invert => "Invert",
            TimmOp::Rotate => "Rotate",
            TimmOp::Posterize => "Posterize",
            TimmOp::PosterizeIncreasing => "PosterizeIncreasing",
            TimmOp::Solarize => "Solarize",
            TimmOp::SolarizeIncreasing => "SolarizeIncreasing",
            TimmOp::SolarizeAdd => "SolarizeAdd",
            TimmOp::Color => "Color",
            TimmOp::ColorIncreasing => "ColorIncreasing",
            TimmOp::Contrast => "Contrast",
            TimmOp::ContrastIncreasing => "ContrastIncreasing",
            TimmOp::Brightness => "Brightness",
            TimmOp::BrightnessIncreasing => "BrightnessIncreasing",
            TimmOp::Sharpness => "Sharpness",
            TimmOp::SharpnessIncreasing => "SharpnessIncreasing",
            TimmOp::ShearX => "ShearX",
            TimmOp::ShearY => "ShearY",
            TimmOp::TranslateXRel => "TranslateXRel",
            TimmOp::TranslateYRel => "TranslateYRel",
        }
    }

    /// Whether the op resamples (and so draws an interpolation when it is random, and fills).
    pub fn is_geometric(self) -> bool {
        matches!(self, TimmOp::Rotate | TimmOp::ShearX | TimmOp::ShearY | TimmOp::TranslateXRel | TimmOp::TranslateYRel)
    }

    /// Whether the level function draws a random sign (`_randomly_negate`).
    pub fn draws_sign(self) -> bool {
        matches!(
            self,
            TimmOp::Rotate
                | TimmOp::ShearX
                | TimmOp::ShearY
                | TimmOp::TranslateXRel
                | TimmOp::TranslateYRel
                | TimmOp::ColorIncreasing
                | TimmOp::ContrastIncreasing
                | TimmOp::BrightnessIncreasing
                | TimmOp::SharpnessIncreasing
        )
    }

    /// timm's `LEVEL_TO_ARG[name](level)` with the random sign given (`negate` is ignored by ops
    /// that draw none): degrees for `Rotate`, bits for `Posterize*`, the threshold for
    /// `Solarize*`, the addend for `SolarizeAdd`, the enhancement factor, the shear factor, the
    /// translation as a fraction of the size; 0 for the ops without argument.
    pub fn level_to_arg(self, level: f64, negate: bool) -> f64 {
        let sign = |v: f64| if negate { -v } else { v };
        let frac = level / LEVEL_DENOM;
        let enhance_increasing = || (1.0 + sign(frac * 0.9)).max(0.1);
        match self {
            TimmOp::AutoContrast | TimmOp::Equalize | TimmOp::Invert => 0.0,
            TimmOp::Rotate => sign(frac * 30.0),
            TimmOp::Posterize => (frac * 4.0).trunc(),
            TimmOp::PosterizeIncreasing => 4.0 - (frac * 4.0).trunc(),
            TimmOp::Solarize => (frac * 256.0).trunc().min(256.0),
            TimmOp::SolarizeIncreasing => 256.0 - (frac * 256.0).trunc().min(256.0),
            TimmOp::SolarizeAdd => (frac * 110.0).trunc().min(128.0),
            TimmOp::Color | TimmOp::Contrast | TimmOp::Brightness | TimmOp::Sharpness => frac * 1.8 + 0.1,
            TimmOp::ColorIncreasing
            | TimmOp::ContrastIncreasing
            | TimmOp::BrightnessIncreasing
            | TimmOp::SharpnessIncreasing => enhance_increasing(),
            TimmOp::ShearX | TimmOp::ShearY => sign(frac * 0.3),
            TimmOp::TranslateXRel | TimmOp::TranslateYRel => sign(frac * 0.45),
        }
    }

    /// timm's op function (`NAME_TO_OP[name]`) with argument `arg` (as [`level_to_arg`] returns
    /// it); `filter` and `fill` are used by the geometric ops only.
    ///
    /// [`level_to_arg`]: TimmOp::level_to_arg
    pub fn apply(self, img: &RgbImage, arg: f64, filter: Filter, fill: [u8; 3]) -> RgbImage {
        match self {
            TimmOp::AutoContrast => ops::autocontrast(img),
            TimmOp::Equalize => ops::equalize(img),
            TimmOp::Invert => ops::invert(img),
            TimmOp::Rotate => ops::rotate(img, arg, filter, fill),
            TimmOp::Posterize | TimmOp::PosterizeIncreasing => ops::posterize(img, arg.clamp(0.0, 8.0) as u8),
            TimmOp::Solarize | TimmOp::SolarizeIncreasing => ops::solarize(img, arg),
            TimmOp::SolarizeAdd => ops::solarize_add(img, arg as i64, 128),
            TimmOp::Color | TimmOp::ColorIncreasing => ops::color(img, arg),
            TimmOp::Contrast | TimmOp::ContrastIncreasing => ops::contrast(img, arg),
            TimmOp::Brightness | TimmOp::BrightnessIncreasing => ops::brightness(img, arg),
            TimmOp::Sharpness | TimmOp::SharpnessIncreasing => ops::sharpness(img, arg),
            TimmOp::ShearX => ops::shear_x(img, arg, filter, fill),
            TimmOp::ShearY => ops::shear_y(img, arg, filter, fill),
            TimmOp::TranslateXRel => ops::translate_x(img, arg * img.width() as f64, filter, fill),
            TimmOp::TranslateYRel => ops::translate_y(img, arg * img.height() as f64, filter, fill),
        }
    }
}

/// timm's RandAugment settings, written as a config string of `-`-separated sections after
/// `rand` (any order, each at most once):
///
/// | section | meaning | default | accepted |
/// | --- | --- | --- | --- |
/// | `m<int>` | magnitude | 10 | 0..=100, at most the ceiling (10, or `mmax`) |
/// | `n<int>` | ops per image (drawn with replacement) | 2 | 1..=15 |
/// | `mstd<float>` | std of the gaussian magnitude noise; above 100: uniform in `[0, m]` | 0 | >= 0 |
/// | `mmax<int>` | magnitude ceiling instead of 10 | 10 | 1..=100 |
/// | `inc<0\|1>` | use `_RAND_INCREASING_TRANSFORMS` | 0 | 0 or 1 |
/// | `p<float>` | probability of applying each chosen op | 0.5 | 0..=1 |
///
/// e.g. `rand-m9-mstd0.5-inc1` (DeiT), `rand-m9-mstd0.5` (ViT), `rand-m7-n2`,
/// `rand-m9-n3-mstd0.5-mmax10-p0.5`. timm's `t<name>` transform-set sections are not supported.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RandAugmentConfig {
    /// `m`: the magnitude (level) of every op.
    pub magnitude: u32,
    /// `n`: ops applied per image, chosen uniformly with replacement.
    pub num_layers: u32,
    /// `mstd`: standard deviation of the gaussian noise added to the magnitude per op (0 = none;
    /// above 100 = uniform in `[0, magnitude]`).
    pub magnitude_std: f64,
    /// `mmax`: the magnitude is clipped to `[0, mmax]` (default `[0, 10]`).
    pub magnitude_max: Option<u32>,
    /// `inc`: the "increasing" op set, whose severity grows with the magnitude.
    pub increasing: bool,
    /// `p`: probability of applying each chosen op.
    pub prob: f64,
}

impl Default for RandAugmentConfig {
    fn default() -> Self {
        RandAugmentConfig {
            magnitude: 10,
            num_layers: 2,
            magnitude_std: 0.0,
            magnitude_max: None,
            increasing: false,
            prob: 0.5,
        }
    }
}

fn invalid(message: String) -> DataError {
    DataError::setting("auto_augment", message)
}

impl RandAugmentConfig {
    /// The op set: [`TimmOp::RAND_INCREASING_TRANSFORMS`] with `inc1`, else
    /// [`TimmOp::RAND_TRANSFORMS`].
    pub fn ops(&self) -> &'static [TimmOp; 15] {
        if self.increasing { &TimmOp::RAND_INCREASING_TRANSFORMS } else { &TimmOp::RAND_TRANSFORMS }
    }

    /// The magnitude ceiling: `mmax`, or 10.
    pub fn ceiling(&self) -> f64 {
        self.magnitude_max.map_or(LEVEL_DENOM, |m| m as f64)
    }

    /// Checks every number against the ranges of the type's table.
    pub fn validate(&self) -> Result<()> {
        let c = self;
        if let Some(max) = c.magnitude_max
            && !(1..=100).contains(&max)
        {
            return Err(invalid(format!("RandAugment `mmax{max}`: the magnitude ceiling must be in 1..=100")));
        }
        if c.magnitude > 100 {
            return Err(invalid(format!("RandAugment `m{}`: the magnitude must be in 0..=100", c.magnitude)));
        }
        if c.magnitude as f64 > c.ceiling() {
            return Err(invalid(format!(
                "RandAugment `m{m}` is above the magnitude ceiling {ceil} (timm would clip it to {ceil}); \
                 lower m, or add `mmax{m}` to raise the ceiling",
                m = c.magnitude,
                ceil = c.ceiling()
            )));
        }
        if !(1..=15).contains(&c.num_layers) {
            return Err(invalid(format!(
                "RandAugment `n{}`: the number of ops per image must be in 1..=15 (use `none` for no \
                 augmentation)",
                c.num_layers
            )));
        }
        if !(c.magnitude_std.is_finite() && c.magnitude_std >= 0.0) {
            return Err(invalid(format!(
                "RandAugment `mstd{}`: the magnitude noise must be a finite number >= 0 (above 100 means \
                 uniform)",
                c.magnitude_std
            )));
        }
        if !(0.0..=1.0).contains(&c.prob) {
            return Err(invalid(format!("RandAugment `p{}`: the probability must be in [0, 1]", c.prob)));
        }
        Ok(())
    }

    /// One magnitude as timm's `AugmentOp` draws it: `m`, plus gaussian noise of std `mstd`
    /// (or uniform in `[0, m]` when `mstd > 100`), clipped to `[0, ceiling]`.
    pub fn sample_magnitude<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        let mut m = self.magnitude as f64;
        if self.magnitude_std > 100.0 {
            m *= unit(rng);
        } else if self.magnitude_std > 0.0 {
            m = gauss(rng, m, self.magnitude_std);
        }
        m.min(self.ceiling()).max(0.0)
    }

    /// The random part of timm's `RandAugment.__call__`, drawn in timm's order: `n` ops chosen
    /// uniformly with replacement; for each, the probability draw (skipped ops are left out of
    /// the result), the magnitude ([`sample_magnitude`](Self::sample_magnitude)), the sign where
    /// timm draws one, and for the geometric ops the filter from `hparams`' interpolation.
    pub fn sample<R: Rng + ?Sized>(&self, hparams: &TimmHparams, rng: &mut R) -> Vec<RandAugmentStep> {
        let ops = self.ops();
        let chosen: Vec<TimmOp> = (0..self.num_layers).map(|_| ops[rng.random_range(0..ops.len())]).collect();
        let mut steps = Vec::with_capacity(chosen.len());
        for op in chosen {
            if self.prob < 1.0 && unit(rng) > self.prob {
                continue;
            }
            let magnitude = self.sample_magnitude(rng);
            let negated = op.draws_sign() && unit(rng) > 0.5;
            let arg = op.level_to_arg(magnitude, negated);
            let filter = if op.is_geometric() { hparams.interpolation.pick(rng) } else { Filter::Nearest };
            steps.push(RandAugmentStep { op, magnitude, negated, arg, filter });
        }
        steps
    }

    /// Applies RandAugment: the steps of [`sample`](Self::sample), in order, with `hparams`'
    /// fill for the geometric ops.
    pub fn apply<R: Rng + ?Sized>(&self, img: &RgbImage, hparams: &TimmHparams, rng: &mut R) -> RgbImage {
        let mut out = img.clone();
        for step in self.sample(hparams, rng) {
            out = step.op.apply(&out, step.arg, step.filter, hparams.fill);
        }
        out
    }
}

/// One op RandAugment applies to an image ([`RandAugmentConfig::sample`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RandAugmentStep {
    /// The op.
    pub op: TimmOp,
    /// The magnitude after noise and clipping.
    pub magnitude: f64,
    /// Whether the random sign came out negative (always false for ops that draw none).
    pub negated: bool,
    /// The op's argument ([`TimmOp::level_to_arg`]).
    pub arg: f64,
    /// The resampling filter (meaningful for the geometric ops only).
    pub filter: Filter,
}

impl fmt::Display for RandAugmentConfig {
    /// The canonical string: `rand-m<m>`, then only the sections that differ from the defaults
    /// (`n`, `mstd`, `mmax`, `inc`, `p`, in that order).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = RandAugmentConfig::default();
        write!(f, "rand-m{}", self.magnitude)?;
        if self.num_layers != d.num_layers {
            write!(f, "-n{}", self.num_layers)?;
        }
        if self.magnitude_std != 0.0 {
            write!(f, "-mstd{}", self.magnitude_std)?;
        }
        if let Some(max) = self.magnitude_max {
            write!(f, "-mmax{max}")?;
        }
        if self.increasing {
            f.write_str("-inc1")?;
        }
        if self.prob != d.prob {
            write!(f, "-p{}", self.prob)?;
        }
        Ok(())
    }
}
