//! `ImageProcessor`: Hugging Face's `ViTImageProcessor` (resize, rescale, normalise, channels
//! first), read from and written to a model directory's `preprocessor_config.json`.

use std::path::{Path, PathBuf};

use image::{DynamicImage, RgbImage};
use serde_json::{Value, json};

use crate::error::{DataError, Result};
use crate::resize::{Resample, resize_rgb};

mod fields;
mod normalize;

use fields::{Fields, field_error};
pub use normalize::{
    IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, IMAGENET_STANDARD_MEAN, IMAGENET_STANDARD_STD, Normalization,
    Normalizer,
};

/// File name of the processor settings inside a Hugging Face model directory.
pub const PREPROCESSOR_CONFIG: &str = "preprocessor_config.json";

/// Largest accepted output height and width (`size`), as [`crate::DecodeLimits`]' default largest
/// input: beyond it the resize buffers' sizes overflow or cannot be allocated.
pub const MAX_SIZE: u32 = 16384;

/// Output size of the resize step (`size` in `preprocessor_config.json`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageSize {
    /// Height in pixels.
    pub height: u32,
    /// Width in pixels.
    pub width: u32,
}

/// Hugging Face's `ViTImageProcessor`: optional resize to `size` (ignoring the aspect ratio),
/// rescale by `rescale_factor`, normalise by `image_mean`/`image_std`, channels first.
///
/// The fields mirror `preprocessor_config.json`; `num_channels` comes from the model's
/// `config.json` (1 or 3) and is not stored in the processor file.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageProcessor {
    /// Resize to `size` first.
    pub do_resize: bool,
    /// The resize target.
    pub size: ImageSize,
    /// The resize filter (Pillow code in the JSON; default bilinear = 2).
    pub resample: Resample,
    /// Multiply pixel values by `rescale_factor`.
    pub do_rescale: bool,
    /// The rescale factor (default 1/255).
    pub rescale_factor: f64,
    /// Normalise with `image_mean` and `image_std`.
    pub do_normalize: bool,
    /// Per-channel mean (default 0.5 each).
    pub image_mean: Vec<f32>,
    /// Per-channel standard deviation (default 0.5 each).
    pub image_std: Vec<f32>,
    /// Number of output channels: 3 (RGB) or 1 (Pillow's `L`).
    pub num_channels: usize,
}

impl Default for ImageProcessor {
    fn default() -> Self {
        Self::new(224, 224)
    }
}

impl ImageProcessor {
    /// `ViTImageProcessor`'s defaults with output size `height`x`width` and 3 channels.
    pub fn new(height: u32, width: u32) -> Self {
        ImageProcessor {
            do_resize: true,
            size: ImageSize { height, width },
            resample: Resample::Bilinear,
            do_rescale: true,
            rescale_factor: 1.0 / 255.0,
            do_normalize: true,
            image_mean: IMAGENET_STANDARD_MEAN.to_vec(),
            image_std: IMAGENET_STANDARD_STD.to_vec(),
            num_channels: 3,
        }
    }

    /// Sets the number of channels (1 or 3); a mean/std of the wrong length is replaced by its
    /// first value repeated (a 3-channel default becomes 1-channel).
    pub fn with_num_channels(mut self, num_channels: usize) -> Self {
        self.num_channels = num_channels;
        for stats in [&mut self.image_mean, &mut self.image_std] {
            if stats.len() != num_channels && !stats.is_empty() {
                *stats = vec![stats[0]; num_channels];
            }
        }
        self
    }

    /// Sets `image_mean` and `image_std` to the preset `normalization` (its first value repeated
    /// for a 1-channel processor).
    pub fn with_normalization(mut self, normalization: Normalization) -> Self {
        self.image_mean = normalization.mean().to_vec();
        self.image_std = normalization.std().to_vec();
        let num_channels = self.num_channels;
        self.with_num_channels(num_channels)
    }

    /// Reads `<model_dir>/preprocessor_config.json` (unknown fields are ignored, missing ones
    /// take `ViTImageProcessor`'s defaults) for a model with `num_channels` channels.
    pub fn load(model_dir: &Path, num_channels: usize) -> Result<Self> {
        Self::from_file(&model_dir.join(PREPROCESSOR_CONFIG), num_channels)
    }

    /// Reads a `preprocessor_config.json` file.
    pub fn from_file(path: &Path, num_channels: usize) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => DataError::NotFound {
                path: path.to_path_buf(),
                hint: "a Hugging Face model directory has a preprocessor_config.json; \
                       create one (ImageProcessor::save) or pass the image size explicitly"
                    .into(),
            },
            _ => DataError::io("cannot read", path, e),
        })?;
        Self::from_json_str(&text, path, num_channels)
    }

    /// Parses the JSON text of a `preprocessor_config.json`; `origin` names it in errors.
    pub fn from_json_str(text: &str, origin: &Path, num_channels: usize) -> Result<Self> {
        let value: Value =
            serde_json::from_str(text).map_err(|source| DataError::Json { path: origin.to_path_buf(), source })?;
        let Value::Object(map) = value else {
            return Err(field_error(origin, "(top level)", "must be a JSON object"));
        };
        let fields = Fields { map: &map, path: origin };
        let defaults = Self::new(224, 224).with_num_channels(num_channels);
        let mean = fields.stats("image_mean", num_channels)?.unwrap_or(defaults.image_mean);
        let std = fields.stats("image_std", num_channels)?.unwrap_or(defaults.image_std);
        let processor = ImageProcessor {
            do_resize: fields.bool("do_resize")?.unwrap_or(true),
            size: fields.size()?.unwrap_or(defaults.size),
            resample: fields.resample()?.unwrap_or(Resample::Bilinear),
            do_rescale: fields.bool("do_rescale")?.unwrap_or(true),
            rescale_factor: fields.number("rescale_factor")?.unwrap_or(1.0 / 255.0),
            do_normalize: fields.bool("do_normalize")?.unwrap_or(true),
            image_mean: mean,
            image_std: std,
            num_channels,
        };
        if let Err(DataError::InvalidSetting { name, message }) = processor.validate() {
            return Err(DataError::ConfigField { path: origin.to_path_buf(), field: name, message });
        }
        Ok(processor)
    }

    /// The settings as Hugging Face writes them (`image_processor_type: "ViTImageProcessor"`).
    pub fn to_json(&self) -> Value {
        json!({
            "do_normalize": self.do_normalize,
            "do_rescale": self.do_rescale,
            "do_resize": self.do_resize,
            "image_mean": self.image_mean,
            "image_processor_type": "ViTImageProcessor",
            "image_std": self.image_std,
            "resample": self.resample.pil_code(),
            "rescale_factor": self.rescale_factor,
            "size": { "height": self.size.height, "width": self.size.width },
        })
    }

    /// Writes `<model_dir>/preprocessor_config.json` atomically (a crash leaves the old file or the
    /// new one, never a mix; see [`vit_io::write_atomic`]).
    pub fn save(&self, model_dir: &Path) -> Result<PathBuf> {
        let path = model_dir.join(PREPROCESSOR_CONFIG);
        let mut text = serde_json::to_string_pretty(&self.to_json())
            .map_err(|source| DataError::Json { path: path.clone(), source })?;
        text.push('\n');
        vit_io::write_atomic(&path, text.as_bytes()).map_err(|e| DataError::io("cannot write", &path, e))?;
        Ok(path)
    }

    /// Checks the settings: 1 or 3 channels, positive size, mean/std of `num_channels` entries,
    /// non-zero finite std.
    pub fn validate(&self) -> Result<()> {
        if self.num_channels != 1 && self.num_channels != 3 {
            return Err(DataError::setting(
                "num_channels",
                format!("is {}; only 1 (grayscale) or 3 (RGB) are supported", self.num_channels),
            ));
        }
        if self.size.height == 0 || self.size.width == 0 {
            return Err(DataError::setting("size", "height and width must be positive"));
        }
        if self.size.height > MAX_SIZE || self.size.width > MAX_SIZE {
            return Err(DataError::setting(
                "size",
                format!("is {}x{}; height and width must be at most {MAX_SIZE}", self.size.height, self.size.width),
            ));
        }
        if !self.rescale_factor.is_finite() {
            return Err(DataError::setting("rescale_factor", "must be a finite number"));
        }
        for (name, stats) in [("image_mean", &self.image_mean), ("image_std", &self.image_std)] {
            if stats.len() != self.num_channels {
                return Err(DataError::setting(
                    name,
                    format!(
                        "has {} values but the model has {} channels; give one value per channel",
                        stats.len(),
                        self.num_channels
                    ),
                ));
            }
            if stats.iter().any(|v| !v.is_finite()) {
                return Err(DataError::setting(name, "values must be finite numbers"));
            }
        }
        if self.image_std.contains(&0.0) {
            return Err(DataError::setting("image_std", "values must not be zero"));
        }
        Ok(())
    }

    /// Preprocesses a decoded image: convert to RGB (see [`crate::convert::to_rgb8`]) or L,
    /// resize if `do_resize`, rescale,
    /// normalise; returns `num_channels x H x W` values, channels first.
    pub fn process(&self, image: &DynamicImage) -> Result<Vec<f32>> {
        match image {
            DynamicImage::ImageRgb8(rgb) => self.process_rgb(rgb),
            other => self.process_rgb(&other.to_rgb8()),
        }
    }

    /// [`process`](Self::process) for an RGB image. With one channel the image is first converted
    /// as Pillow's `convert("L")`, before the resize.
    pub fn process_rgb(&self, image: &RgbImage) -> Result<Vec<f32>> {
        self.validate()?;
        let gray;
        let image = if self.num_channels == 1 {
            gray = crate::convert::to_gray_rgb(image);
            &gray
        } else {
            image
        };
        let resized;
        let image = if self.do_resize {
            resized = resize_rgb(image, None, self.size.width, self.size.height, self.resample)?;
            &resized
        } else {
            image
        };
        let mut out = vec![0.0; self.num_channels * image.width() as usize * image.height() as usize];
        self.normalizer()?.apply(image, &mut out);
        Ok(out)
    }

    /// The rescale + normalise step alone, as a lookup table (see [`Normalizer`]).
    pub fn normalizer(&self) -> Result<Normalizer> {
        self.validate()?;
        let tables = (0..self.num_channels)
            .map(|c| {
                let mut table = [0f32; 256];
                for (v, entry) in table.iter_mut().enumerate() {
                    // As transformers: rescale in float64 then cast, normalise in float32.
                    let mut x = if self.do_rescale { (v as f64 * self.rescale_factor) as f32 } else { v as f32 };
                    if self.do_normalize {
                        x = (x - self.image_mean[c]) / self.image_std[c];
                    }
                    *entry = x;
                }
                table
            })
            .collect();
        Ok(Normalizer { tables })
    }
}
