//! Safe image decoding: format from the content, size limits against decompression bombs,
//! errors that name the file.

use std::io::ErrorKind;
use std::path::Path;

use image::error::{ImageError, LimitErrorKind};
use image::{DynamicImage, ImageReader, Limits, RgbImage};

use crate::convert::to_rgb8;
use crate::error::{DataError, Result};

/// File extensions (lower case) read as images: png, jpg/jpeg, bmp, webp, gif (first frame),
/// tif/tiff.
pub const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "bmp", "webp", "gif", "tif", "tiff"];

/// Whether `path` has one of [`IMAGE_EXTENSIONS`] (case-insensitive).
pub fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// Limits applied before and while decoding an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest accepted width in pixels (default 16384).
    pub max_width: u32,
    /// Largest accepted height in pixels (default 16384).
    pub max_height: u32,
    /// Largest allocation the decoder may make, in bytes (default 1 GiB).
    pub max_alloc: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits { max_width: 16384, max_height: 16384, max_alloc: 1 << 30 }
    }
}

impl DecodeLimits {
    fn to_image_limits(self) -> Limits {
        let mut limits = Limits::default();
        limits.max_image_width = Some(self.max_width);
        limits.max_image_height = Some(self.max_height);
        limits.max_alloc = Some(self.max_alloc);
        limits
    }

    fn error(&self, path: &Path, err: ImageError) -> DataError {
        match err {
            ImageError::Limits(ref e)
                if matches!(e.kind(), LimitErrorKind::DimensionError | LimitErrorKind::InsufficientMemory) =>
            {
                // The header alone is safe to read without limits: report what it claims.
                let claimed =
                    ImageReader::open(path).ok().and_then(|r| r.with_guessed_format().ok()).and_then(|mut r| {
                        r.no_limits();
                        r.into_dimensions().ok()
                    });
                let reason = match claimed {
                    Some((w, h)) => format!("its header says {w}x{h} pixels"),
                    None => err.to_string(),
                };
                DataError::TooLarge {
                    path: path.to_path_buf(),
                    reason,
                    max_width: self.max_width,
                    max_height: self.max_height,
                    max_alloc: self.max_alloc,
                }
            }
            ImageError::IoError(e) if e.kind() != ErrorKind::UnexpectedEof => {
                DataError::io("cannot read image", path, e)
            }
            ImageError::IoError(e) => DataError::Decode {
                path: path.to_path_buf(),
                reason: format!("the file ends too early (truncated?): {e}"),
            },
            other => DataError::Decode { path: path.to_path_buf(), reason: other.to_string() },
        }
    }

    fn reader(&self, path: &Path) -> Result<ImageReader<std::io::BufReader<std::fs::File>>> {
        let meta = std::fs::metadata(path).map_err(|e| DataError::io("cannot read image", path, e))?;
        if meta.len() == 0 {
            return Err(DataError::Decode { path: path.to_path_buf(), reason: "the file is empty (0 bytes)".into() });
        }
        let mut reader = ImageReader::open(path)
            .map_err(|e| DataError::io("cannot open image", path, e))?
            .with_guessed_format()
            .map_err(|e| DataError::io("cannot read image", path, e))?;
        reader.limits(self.to_image_limits());
        Ok(reader)
    }

    /// Reads only the header of the image at `path`: its `(width, height)`, checked against the
    /// limits. Catches empty files, non-images and oversized images without decoding.
    pub fn dimensions(&self, path: &Path) -> Result<(u32, u32)> {
        let (w, h) = self.reader(path)?.into_dimensions().map_err(|e| self.error(path, e))?;
        if w == 0 || h == 0 {
            return Err(DataError::Decode { path: path.to_path_buf(), reason: format!("the image is {w}x{h}") });
        }
        Ok((w, h))
    }

    /// Decodes the image at `path` (the first frame of an animation) within the limits.
    pub fn decode(&self, path: &Path) -> Result<DynamicImage> {
        let image = self.reader(path)?.decode().map_err(|e| self.error(path, e))?;
        if image.width() == 0 || image.height() == 0 {
            return Err(DataError::Decode {
                path: path.to_path_buf(),
                reason: format!("the image is {}x{}", image.width(), image.height()),
            });
        }
        Ok(image)
    }

    /// Decodes the image at `path` and converts it to 8-bit RGB (see [`to_rgb8`]).
    pub fn decode_rgb(&self, path: &Path) -> Result<RgbImage> {
        self.decode(path).map(to_rgb8)
    }
}
