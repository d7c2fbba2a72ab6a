//! Colour conversions as Pillow's `Image.convert` does them.

use image::{DynamicImage, RgbImage};

/// Converts any decoded image to 8-bit RGB like Pillow's `convert("RGB")`: grayscale is
/// replicated, alpha is dropped (not composited), palettes are expanded by the decoder, and
/// 16-bit or float samples are scaled to 0..=255 (`v * 255 / 65535`, rounded).
pub fn to_rgb8(image: DynamicImage) -> RgbImage {
    match image {
        DynamicImage::ImageRgb8(rgb) => rgb,
        other => other.to_rgb8(),
    }
}

/// Pillow's RGB → L conversion (ITU-R 601-2 luma, `L = R*299/1000 + G*587/1000 + B*114/1000`,
/// in Pillow's fixed point). A gray pixel (`r == g == b`) maps to itself.
#[inline]
pub fn pil_luma(rgb: [u8; 3]) -> u8 {
    ((rgb[0] as u32 * 19595 + rgb[1] as u32 * 38470 + rgb[2] as u32 * 7471 + 0x8000) >> 16) as u8
}

/// Pillow's `convert("L")` of an RGB image, kept as three equal channels so that the RGB
/// augmentations apply unchanged (and [`pil_luma`] of each pixel gives back its gray level).
pub fn to_gray_rgb(image: &RgbImage) -> RgbImage {
    let mut out = image.clone();
    for px in out.pixels_mut() {
        let l = pil_luma(px.0);
        px.0 = [l, l, l];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageBuffer, Luma, LumaA, Rgba};

    #[test]
    fn gray_is_fixed_point_of_luma() {
        for v in 0..=255u8 {
            assert_eq!(pil_luma([v, v, v]), v);
        }
        // Pillow: Image.new("RGB", (1, 1), (255, 0, 0)).convert("L") == 76
        assert_eq!(pil_luma([255, 0, 0]), 76);
        assert_eq!(pil_luma([0, 255, 0]), 150);
        assert_eq!(pil_luma([0, 0, 255]), 29);
    }

    #[test]
    fn conversions_drop_alpha_and_scale_16_bit() {
        let rgba = ImageBuffer::from_pixel(2, 2, Rgba([10u8, 20, 30, 0]));
        assert_eq!(to_rgb8(DynamicImage::ImageRgba8(rgba)).get_pixel(1, 1).0, [10, 20, 30]);
        let la = ImageBuffer::from_pixel(1, 1, LumaA([7u8, 99]));
        assert_eq!(to_rgb8(DynamicImage::ImageLumaA8(la)).get_pixel(0, 0).0, [7, 7, 7]);
        let l16 = ImageBuffer::from_pixel(1, 1, Luma([65535u16]));
        assert_eq!(to_rgb8(DynamicImage::ImageLuma16(l16)).get_pixel(0, 0).0, [255, 255, 255]);
        let l16 = ImageBuffer::from_pixel(1, 1, Luma([257u16 * 100]));
        assert_eq!(to_rgb8(DynamicImage::ImageLuma16(l16)).get_pixel(0, 0).0, [100, 100, 100]);
    }
}
