//! The normalisation step: the usual mean/std presets ([`Normalization`]) and the rescale +
//! normalise lookup table ([`Normalizer`]).

use image::RgbImage;

use crate::convert::pil_luma;
use crate::spelling::spelled_enum;

/// ImageNet mean (`IMAGENET_DEFAULT_MEAN` in `transformers`), used by many ImageNet checkpoints.
pub const IMAGENET_DEFAULT_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet standard deviation (`IMAGENET_DEFAULT_STD` in `transformers`).
pub const IMAGENET_DEFAULT_STD: [f32; 3] = [0.229, 0.224, 0.225];
/// `ViTImageProcessor`'s default mean (`IMAGENET_STANDARD_MEAN`): 0.5 per channel.
pub const IMAGENET_STANDARD_MEAN: [f32; 3] = [0.5, 0.5, 0.5];
/// `ViTImageProcessor`'s default standard deviation (`IMAGENET_STANDARD_STD`): 0.5 per channel.
pub const IMAGENET_STANDARD_STD: [f32; 3] = [0.5, 0.5, 0.5];

/// A named mean/std preset, spelled `half` or `imagenet` ([`Normalization::VARIANTS`]) in
/// settings files and on the command line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Normalization {
    /// `half`: mean and std 0.5 per channel (`IMAGENET_STANDARD_*`), `ViTImageProcessor`'s
    /// default.
    #[default]
    Half,
    /// `imagenet`: [`IMAGENET_DEFAULT_MEAN`] and [`IMAGENET_DEFAULT_STD`], used by many ImageNet
    /// checkpoints.
    Imagenet,
}

spelled_enum!(Normalization, "normalization", [
    Half => "half",
    Imagenet => "imagenet",
]);

impl Normalization {
    /// The per-channel (RGB) mean.
    pub const fn mean(self) -> [f32; 3] {
        match self {
            Normalization::Half => IMAGENET_STANDARD_MEAN,
            Normalization::Imagenet => IMAGENET_DEFAULT_MEAN,
        }
    }

    /// The per-channel (RGB) standard deviation.
    pub const fn std(self) -> [f32; 3] {
        match self {
            Normalization::Half => IMAGENET_STANDARD_STD,
            Normalization::Imagenet => IMAGENET_DEFAULT_STD,
        }
    }
}

/// Rescale + normalise as one table per channel (each output depends only on the uint8 value
/// and the channel), writing channels-first `f32`.
#[derive(Clone, Debug)]
pub struct Normalizer {
    pub(super) tables: Vec<[f32; 256]>,
}

impl Normalizer {
    /// Number of output channels (1 or 3).
    pub fn num_channels(&self) -> usize {
        self.tables.len()
    }

    /// Writes `image` into `out` (length `num_channels * height * width`), channels first;
    /// with one channel the RGB pixels are first converted to Pillow's `L`.
    ///
    /// # Panics
    /// If `out` has the wrong length (a programming error, not reachable from user data).
    pub fn apply(&self, image: &RgbImage, out: &mut [f32]) {
        let plane = image.width() as usize * image.height() as usize;
        assert_eq!(out.len(), plane * self.tables.len(), "Normalizer::apply: output length");
        if self.tables.len() == 1 {
            let table = &self.tables[0];
            for (dst, px) in out.iter_mut().zip(image.pixels()) {
                *dst = table[pil_luma(px.0) as usize];
            }
            return;
        }
        let (r, rest) = out.split_at_mut(plane);
        let (g, b) = rest.split_at_mut(plane);
        let [tr, tg, tb] = [&self.tables[0], &self.tables[1], &self.tables[2]];
        for (i, px) in image.as_raw().chunks_exact(3).enumerate() {
            r[i] = tr[px[0] as usize];
            g[i] = tg[px[1] as usize];
            b[i] = tb[px[2] as usize];
        }
    }
}
