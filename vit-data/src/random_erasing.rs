//! timm's `RandomErasing` (`timm.data.random_erasing`), applied to one normalised image
//! (channels first, `f32`) after normalisation, as timm's `transforms_imagenet_train` does.
//!
//! Randomness comes only from the generator passed in (the batcher uses the sample's
//! [`crate::rng::RngStream::Erase`] stream), so the draws are not Python's; their distributions
//! are timm's.

use rand::Rng;

use crate::auto_augment::{gauss, unit};
use crate::error::{DataError, Result};
use crate::resize::CropBox;
use crate::spelling::spelled_enum;

/// What erased pixels become, spelled `const`, `rand` or `pixel` (timm's `mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum EraseMode {
    /// `const`: zeros (the mean colour, after normalisation).
    #[default]
    Const,
    /// `rand`: one standard-normal value per channel for the whole box.
    Rand,
    /// `pixel`: a standard-normal value per pixel and channel.
    Pixel,
}

spelled_enum!(EraseMode, "random erasing mode", [
    Const => "const",
    Rand => "rand",
    Pixel => "pixel",
]);

/// timm's `RandomErasing(probability, mode, max_count)` with timm's defaults for the rest: with
/// probability `probability`, erase `count` boxes (uniform in `min_count..=max_count`), each of
/// area `uniform(min_area, max_area) * area / count` and aspect ratio (height / width)
/// log-uniform in `[min_aspect, max_aspect]`, up to 10 tries per box to fit strictly inside
/// the image. `num_splits` (keeping part of the batch clean) is not supported.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RandomErasing {
    /// Probability of erasing an image (0 disables erasing).
    pub probability: f64,
    /// What the erased pixels become.
    pub mode: EraseMode,
    /// Minimum box area as a fraction of the image (timm: 0.02).
    pub min_area: f64,
    /// Maximum box area as a fraction of the image (timm: 1/3).
    pub max_area: f64,
    /// Minimum aspect ratio (timm: 0.3).
    pub min_aspect: f64,
    /// Maximum aspect ratio (timm: `1 / min_aspect`).
    pub max_aspect: f64,
    /// Minimum number of boxes (timm: 1).
    pub min_count: u32,
    /// Maximum number of boxes (timm's `max_count`, `re_count`: 1).
    pub max_count: u32,
}

impl Default for RandomErasing {
    /// Disabled (probability 0), with timm's other defaults.
    fn default() -> Self {
        RandomErasing::new(0.0, EraseMode::Const)
    }
}

fn invalid(field: &str, message: String) -> DataError {
    DataError::setting(format!("random_erasing.{field}"), message)
}

impl RandomErasing {
    /// timm's defaults with the given probability and mode.
    pub fn new(probability: f64, mode: EraseMode) -> Self {
        RandomErasing {
            probability,
            mode,
            min_area: 0.02,
            max_area: 1.0 / 3.0,
            min_aspect: 0.3,
            max_aspect: 1.0 / 0.3,
            min_count: 1,
            max_count: 1,
        }
    }

    /// Up to `max_count` boxes per image (timm's `re_count`; the count is uniform in
    /// `1..=max_count`).
    pub fn with_max_count(mut self, max_count: u32) -> Self {
        self.max_count = max_count;
        self
    }

    /// Whether it can erase anything (probability above 0).
    pub fn is_active(&self) -> bool {
        self.probability > 0.0
    }

    /// Checks every setting, naming the field at fault.
    pub fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.probability) {
            return Err(invalid("probability", format!("must be in [0, 1], got {}", self.probability)));
        }
        if !(self.min_area > 0.0 && self.min_area <= self.max_area && self.max_area <= 1.0) {
            return Err(invalid(
                "min_area",
                format!(
                    "the area range must satisfy 0 < min_area <= max_area <= 1, got {}..{}",
                    self.min_area, self.max_area
                ),
            ));
        }
        if !(self.min_aspect > 0.0 && self.min_aspect <= self.max_aspect && self.max_aspect.is_finite()) {
            return Err(invalid(
                "min_aspect",
                format!(
                    "the aspect range must satisfy 0 < min_aspect <= max_aspect < inf, got {}..{}",
                    self.min_aspect, self.max_aspect
                ),
            ));
        }
        if !(1 <= self.min_count && self.min_count <= self.max_count && self.max_count <= 100) {
            return Err(invalid(
                "max_count",
                format!(
                    "the box count range must satisfy 1 <= min_count <= max_count <= 100, got {}..={}",
                    self.min_count, self.max_count
                ),
            ));
        }
        Ok(())
    }

    /// Erases boxes of `pixels` (one image, `[channels, height, width]`, normalised) as timm's
    /// `RandomErasing._erase`; returns the erased boxes (empty when the probability draw says
    /// no or no try fits). Draws nothing when the probability is 0.
    ///
    /// # Panics
    /// If `pixels.len() != channels * height * width`.
    pub fn apply<R: Rng + ?Sized>(
        &self,
        pixels: &mut [f32],
        channels: usize,
        height: usize,
        width: usize,
        rng: &mut R,
    ) -> Vec<CropBox> {
        assert_eq!(pixels.len(), channels * height * width, "RandomErasing::apply: buffer length");
        let mut boxes = Vec::new();
        if !self.is_active() || unit(rng) > self.probability {
            return boxes;
        }
        let area = (height * width) as f64;
        let count = if self.min_count >= self.max_count {
            self.min_count
        } else {
            rng.random_range(self.min_count..=self.max_count)
        };
        let (log_lo, log_hi) = (self.min_aspect.ln(), self.max_aspect.ln());
        let uniform = |rng: &mut R, lo: f64, hi: f64| lo + (hi - lo) * unit(rng);
        for _ in 0..count {
            for _ in 0..10 {
                let target_area = uniform(rng, self.min_area, self.max_area) * area / count as f64;
                let aspect = uniform(rng, log_lo, log_hi).exp();
                let h = (target_area * aspect).sqrt().round_ties_even() as usize;
                let w = (target_area / aspect).sqrt().round_ties_even() as usize;
                if w < width && h < height {
                    let top = rng.random_range(0..=height - h);
                    let left = rng.random_range(0..=width - w);
                    self.fill(pixels, channels, height, width, (top, left, h, w), rng);
                    boxes.push(CropBox { left: left as u32, top: top as u32, width: w as u32, height: h as u32 });
                    break;
                }
            }
        }
        boxes
    }

    /// Writes the erase values into the box `(top, left, h, w)` of every channel.
    fn fill<R: Rng + ?Sized>(
        &self,
        pixels: &mut [f32],
        channels: usize,
        height: usize,
        width: usize,
        (top, left, h, w): (usize, usize, usize, usize),
        rng: &mut R,
    ) {
        let plane = height * width;
        for c in 0..channels {
            // One value for the whole box (const, rand) or one per pixel (pixel).
            let colour = match self.mode {
                EraseMode::Const => Some(0.0),
                EraseMode::Rand => Some(gauss(rng, 0.0, 1.0) as f32),
                EraseMode::Pixel => None,
            };
            for y in top..top + h {
                let start = c * plane + y * width + left;
                let row = &mut pixels[start..start + w];
                match colour {
                    Some(v) => row.fill(v),
                    None => row.iter_mut().for_each(|v| *v = gauss(rng, 0.0, 1.0) as f32),
                }
            }
        }
    }
}
