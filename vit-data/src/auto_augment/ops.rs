//! Pillow's image operations on 8-bit RGB, as timm's `auto_augment.py` and torchvision's
//! `autoaugment.py` call them: ports of Pillow 13's C code (`libImaging/Geometry.c` for
//! `Image.transform(AFFINE)` and `Image.rotate`, `Blend.c` for `ImageEnhance`, `Filter.c` for the
//! `SMOOTH` kernel) and Python code (`ImageOps`, `ImageEnhance`, `Image.rotate`), with the same
//! float widths (`f32` where Pillow computes in C `float`, `f64` where it uses `double` or Python
//! floats), the same evaluation order and the same truncations, so that the results are Pillow's
//! byte for byte (checked against Pillow in `tests/auto_augment.rs`).
//!
//! One deliberate difference: Pillow 13's `ImageOps.posterize` refuses `bits = 0` (older Pillow
//! returned black), which timm's RandAugment can ask for; [`posterize`] keeps the old meaning.

use image::{Rgb, RgbImage};

use crate::convert::pil_luma;

/// The resampling filter of the geometric ops: the three `Image.transform` and `Image.rotate`
/// accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Filter {
    /// `Image.NEAREST` (torchvision's default for its auto-augmentations).
    Nearest,
    /// `Image.BILINEAR`: 2x2 linear interpolation.
    Bilinear,
    /// `Image.BICUBIC`: 4x4 cubic convolution (a = -0.5).
    Bicubic,
}

/// C's `(int)v` of Pillow's `COORD` macro: -1 for negative values, else truncation.
#[inline]
fn coord(v: f64) -> i64 {
    if v < 0.0 { -1 } else { v as i64 }
}

/// Pillow's `FLOOR` macro.
#[inline]
fn floor_c(v: f64) -> i64 {
    if v < 0.0 { v.floor() as i64 } else { v as i64 }
}

/// `Image.transform(img.size, Image.AFFINE, a, filter, fillcolor=fill)`: output pixel
/// `(x, y)` samples the input at `(a0*x + a1*y + a2, a3*x + a4*y + a5)` (pixel centres at `+0.5`);
/// what falls outside the input keeps `fill`. Pillow's engines are reproduced: the scale-only
/// nearest path (`ImagingScaleAffine`), the 16.16 fixed-point nearest path (`affine_fixed`) and
/// the generic float path with the bilinear and bicubic filters.
pub fn affine(img: &RgbImage, a: [f64; 6], filter: Filter, fill: [u8; 3]) -> RgbImage {
    let (w, h) = img.dimensions();
    let mut out = RgbImage::from_pixel(w, h, Rgb(fill));
    if w == 0 || h == 0 {
        return out;
    }
    match filter {
        Filter::Nearest => {
            if a[1] == 0.0 && a[3] == 0.0 {
                scale_affine(img, &mut out, &a);
            } else {
                let check = |x: f64, y: f64| {
                    (x * a[0] + y * a[1] + a[2]).abs() < 32768.0 && (x * a[3] + y * a[4] + a[5]).abs() < 32768.0
                };
                let (fw, fh) = (w as f64, h as f64);
                if check(0.0, 0.0) && check(fw, fh) && check(0.0, fh) && check(fw, 0.0) {
                    affine_fixed(img, &mut out, &a);
                } else {
                    affine_float(img, &mut out, &a);
                }
            }
        }
        Filter::Bilinear | Filter::Bicubic => generic(img, &mut out, &a, filter),
    }
    out
}

/// `ImagingScaleAffine`: nearest neighbour for matrices without rotation or shear.
fn scale_affine(img: &RgbImage, out: &mut RgbImage, a: &[f64; 6]) {
    let (w, h) = (out.width() as usize, out.height() as usize);
    let (in_w, in_h) = (img.width() as i64, img.height() as i64);
    let mut xintab = vec![0usize; w];
    let mut xo = a[2] + a[0] * 0.5;
    let mut yo = a[5] + a[4] * 0.5;
    let (mut xmin, mut xmax) = (w, 0usize);
    for (x, slot) in xintab.iter_mut().enumerate() {
        let xin = coord(xo);
        if xin >= 0 && xin < in_w {
            xmax = x + 1;
            xmin = xmin.min(x);
            *slot = xin as usize;
        }
        xo += a[0];
    }
    let src = img.as_raw();
    let stride = img.width() as usize * 3;
    for y in 0..h {
        let yi = coord(yo);
        if yi >= 0 && yi < in_h {
            let row = &src[yi as usize * stride..];
            let dst = &mut out.as_mut()[y * w * 3..(y + 1) * w * 3];
            for x in xmin..xmax {
                let sx = xintab[x] * 3;
                dst[x * 3..x * 3 + 3].copy_from_slice(&row[sx..sx + 3]);
            }
        }
        yo += a[4];
    }
}

/// `affine_fixed`: nearest neighbour in 16.16 fixed point.
fn affine_fixed(img: &RgbImage, out: &mut RgbImage, a: &[f64; 6]) {
    let fix = |v: f64| floor_c(v * 65536.0 + 0.5) as i32;
    let (a0, a1, a3, a4) = (fix(a[0]), fix(a[1]), fix(a[3]), fix(a[4]));
    let mut a2 = fix(a[2] + a[0] * 0.5 + a[1] * 0.5);
    let mut a5 = fix(a[5] + a[3] * 0.5 + a[4] * 0.5);
    let (w, h) = (out.width() as usize, out.height() as usize);
    let (in_w, in_h) = (img.width() as i32, img.height() as i32);
    let src = img.as_raw();
    let stride = img.width() as usize * 3;
    let dst = out.as_mut();
    for y in 0..h {
        let (mut xx, mut yy) = (a2, a5);
        for x in 0..w {
            let xin = xx >> 16;
            if xin >= 0 && xin < in_w {
                let yin = yy >> 16;
                if yin >= 0 && yin < in_h {
                    let s = yin as usize * stride + xin as usize * 3;
                    let d = (y * w + x) * 3;
                    dst[d..d + 3].copy_from_slice(&src[s..s + 3]);
                }
            }
            xx = xx.wrapping_add(a0);
            yy = yy.wrapping_add(a3);
        }
        a2 = a2.wrapping_add(a1);
        a5 = a5.wrapping_add(a4);
    }
}

/// The float nearest-neighbour fallback of `ImagingTransformAffine` (coordinates beyond the
/// fixed-point range).
fn affine_float(img: &RgbImage, out: &mut RgbImage, a: &[f64; 6]) {
    let (w, h) = (out.width() as usize, out.height() as usize);
    let (in_w, in_h) = (img.width() as i64, img.height() as i64);
    let mut xo = a[2] + a[1] * 0.5 + a[0] * 0.5;
    let mut yo = a[5] + a[4] * 0.5 + a[3] * 0.5;
    let src = img.as_raw();
    let stride = img.width() as usize * 3;
    let dst = out.as_mut();
    for y in 0..h {
        let (mut xx, mut yy) = (xo, yo);
        for x in 0..w {
            let xin = coord(xx);
            if xin >= 0 && xin < in_w {
                let yin = coord(yy);
                if yin >= 0 && yin < in_h {
                    let s = yin as usize * stride + xin as usize * 3;
                    let d = (y * w + x) * 3;
                    dst[d..d + 3].copy_from_slice(&src[s..s + 3]);
                }
            }
            xx += a[0];
            yy += a[3];
        }
        xo += a[1];
        yo += a[4];
    }
}

/// `ImagingGenericTransform` with `affine_transform` and the bilinear or bicubic filter.
fn generic(img: &RgbImage, out: &mut RgbImage, a: &[f64; 6], filter: Filter) {
    let (w, h) = (out.width() as usize, out.height() as usize);
    let dst = out.as_mut();
    for y in 0..h {
        for x in 0..w {
            let xin = x as f64 + 0.5;
            let yin = y as f64 + 0.5;
            let xx = a[0] * xin + a[1] * yin + a[2];
            let yy = a[3] * xin + a[4] * yin + a[5];
            let px = match filter {
                Filter::Bilinear => bilinear(img, xx, yy),
                _ => bicubic(img, xx, yy),
            };
            if let Some(px) = px {
                let d = (y * w + x) * 3;
                dst[d..d + 3].copy_from_slice(&px);
            }
        }
    }
}

/// Pillow's `bilinear_filter32RGB` at input coordinates `(xin, yin)`.
fn bilinear(img: &RgbImage, xin: f64, yin: f64) -> Option<[u8; 3]> {
    let (xsize, ysize) = (img.width() as i64, img.height() as i64);
    if xin < 0.0 || xin >= xsize as f64 || yin < 0.0 || yin >= ysize as f64 {
        return None;
    }
    let (xin, yin) = (xin - 0.5, yin - 0.5);
    let (x, y) = (floor_c(xin), floor_c(yin));
    let (dx, dy) = (xin - x as f64, yin - y as f64);
    let xclip = |v: i64| v.clamp(0, xsize - 1) as usize;
    let (x0, x1) = (xclip(x), xclip(x + 1));
    let src = img.as_raw();
    let stride = xsize as usize * 3;
    let lerp = |a: u8, b: u8, d: f64| a as f64 + (b as i32 - a as i32) as f64 * d;
    let mut px = [0u8; 3];
    for (b, p) in px.iter_mut().enumerate() {
        let row = &src[y.clamp(0, ysize - 1) as usize * stride..];
        let mut v1 = lerp(row[x0 * 3 + b], row[x1 * 3 + b], dx);
        let v2 = if y + 1 >= 0 && y + 1 < ysize {
            let row = &src[(y + 1) as usize * stride..];
            lerp(row[x0 * 3 + b], row[x1 * 3 + b], dx)
        } else {
            v1
        };
        v1 += (v2 - v1) * dy;
        *p = v1 as u8;
    }
    Some(px)
}

/// Pillow's `BICUBIC` macro.
#[inline]
fn cubic(v1: f64, v2: f64, v3: f64, v4: f64, d: f64) -> f64 {
    let p1 = v2;
    let p2 = -v1 + v3;
    let p3 = 2.0 * (v1 - v2) + v3 - v4;
    let p4 = -v1 + v2 - v3 + v4;
    p1 + d * (p2 + d * (p3 + d * p4))
}

/// Pillow's `bicubic_filter32RGB` at input coordinates `(xin, yin)`.
fn bicubic(img: &RgbImage, xin: f64, yin: f64) -> Option<[u8; 3]> {
    let (xsize, ysize) = (img.width() as i64, img.height() as i64);
    if xin < 0.0 || xin >= xsize as f64 || yin < 0.0 || yin >= ysize as f64 {
        return None;
    }
    let (xin, yin) = (xin - 0.5, yin - 0.5);
    let (x, y) = (floor_c(xin), floor_c(yin));
    let (dx, dy) = (xin - x as f64, yin - y as f64);
    let (x, y) = (x - 1, y - 1);
    let xclip = |v: i64| v.clamp(0, xsize - 1) as usize * 3;
    let xs = [xclip(x), xclip(x + 1), xclip(x + 2), xclip(x + 3)];
    let src = img.as_raw();
    let stride = xsize as usize * 3;
    let mut px = [0u8; 3];
    for (b, p) in px.iter_mut().enumerate() {
        let row_value = |row: i64| {
            let r = &src[row as usize * stride + b..];
            cubic(r[xs[0]] as f64, r[xs[1]] as f64, r[xs[2]] as f64, r[xs[3]] as f64, dx)
        };
        let inside = |row: i64| row >= 0 && row < ysize;
        let v1 = row_value(y.clamp(0, ysize - 1));
        let v2 = if inside(y + 1) { row_value(y + 1) } else { v1 };
        let v3 = if inside(y + 2) { row_value(y + 2) } else { v2 };
        let v4 = if inside(y + 3) { row_value(y + 3) } else { v3 };
        let v = cubic(v1, v2, v3, v4, dy);
        *p = if v <= 0.0 {
            0
        } else if v >= 255.0 {
            255
        } else {
            v as u8
        };
    }
    Some(px)
}

/// Python's `x % y` for floats (the result has the sign of `y`).
fn py_mod(x: f64, y: f64) -> f64 {
    let m = x % y;
    if m != 0.0 { if (y < 0.0) != (m < 0.0) { m + y } else { m } } else { 0.0f64.copysign(y) }
}

/// Python's `round(x, 15)` (correctly rounded through the decimal string, as CPython does).
fn py_round15(x: f64) -> f64 {
    format!("{x:.15}").parse().unwrap_or(x)
}

/// CPython's `math.radians`.
pub(crate) fn radians(deg: f64) -> f64 {
    deg * (std::f64::consts::PI / 180.0)
}

/// CPython's `math.degrees`.
pub(crate) fn degrees(rad: f64) -> f64 {
    rad * (180.0 / std::f64::consts::PI)
}

/// `Image.rotate(degrees, filter, fillcolor=fill)`: counter-clockwise about the centre, same
/// size. Like Pillow, 0° is a copy, 180° (and 90°/270° on square images) a transpose; otherwise
/// the matrix entries are rounded to 15 decimals and the image goes through [`affine`].
pub fn rotate(img: &RgbImage, degrees: f64, filter: Filter, fill: [u8; 3]) -> RgbImage {
    let angle = py_mod(degrees, 360.0);
    let (w, h) = img.dimensions();
    if angle == 0.0 {
        return img.clone();
    }
    if angle == 180.0 {
        return RgbImage::from_fn(w, h, |x, y| *img.get_pixel(w - 1 - x, h - 1 - y));
    }
    if (angle == 90.0 || angle == 270.0) && w == h {
        return if angle == 90.0 {
            // Transpose.ROTATE_90 (counter-clockwise).
            RgbImage::from_fn(h, w, |x, y| *img.get_pixel(w - 1 - y, x))
        } else {
            RgbImage::from_fn(h, w, |x, y| *img.get_pixel(y, h - 1 - x))
        };
    }
    let (cx, cy) = (w as f64 / 2.0, h as f64 / 2.0);
    let r = -radians(angle);
    let mut m = [py_round15(r.cos()), py_round15(r.sin()), 0.0, py_round15(-r.sin()), py_round15(r.cos()), 0.0];
    // Pillow's `transform(-cx, -cy, matrix)`: `a * x + b * y + c` with `c` = 0.
    let (x, y) = (-cx, -cy);
    m[2] += m[0] * x + m[1] * y;
    m[5] += m[3] * x + m[4] * y;
    m[2] += cx;
    m[5] += cy;
    affine(img, m, filter, fill)
}

/// timm's `shear_x`: `Image.transform(AFFINE, (1, factor, 0, 0, 1, 0))`.
pub fn shear_x(img: &RgbImage, factor: f64, filter: Filter, fill: [u8; 3]) -> RgbImage {
    affine(img, [1.0, factor, 0.0, 0.0, 1.0, 0.0], filter, fill)
}

/// timm's `shear_y`: `Image.transform(AFFINE, (1, 0, 0, factor, 1, 0))`.
pub fn shear_y(img: &RgbImage, factor: f64, filter: Filter, fill: [u8; 3]) -> RgbImage {
    affine(img, [1.0, 0.0, 0.0, factor, 1.0, 0.0], filter, fill)
}

/// timm's `translate_x_abs`: `Image.transform(AFFINE, (1, 0, pixels, 0, 1, 0))`; the content
/// moves left by `pixels` (timm's `translate_x_rel` passes `pct * width`).
pub fn translate_x(img: &RgbImage, pixels: f64, filter: Filter, fill: [u8; 3]) -> RgbImage {
    affine(img, [1.0, 0.0, pixels, 0.0, 1.0, 0.0], filter, fill)
}

/// timm's `translate_y_abs`: `Image.transform(AFFINE, (1, 0, 0, 0, 1, pixels))`; the content
/// moves up by `pixels` (timm's `translate_y_rel` passes `pct * height`).
pub fn translate_y(img: &RgbImage, pixels: f64, filter: Filter, fill: [u8; 3]) -> RgbImage {
    affine(img, [1.0, 0.0, 0.0, 0.0, 1.0, pixels], filter, fill)
}

/// torchvision's `_get_inverse_affine_matrix` (PIL branch of `F.affine`): the `Image.transform`
/// matrix of a rotation by `angle` degrees, translation, scale and shear (degrees) about
/// `center` (pixel coordinates).
pub fn torchvision_affine_matrix(
    center: (f64, f64),
    angle: f64,
    translate: (f64, f64),
    scale: f64,
    shear: (f64, f64),
) -> [f64; 6] {
    let rot = radians(angle);
    let (sx, sy) = (radians(shear.0), radians(shear.1));
    let (cx, cy) = center;
    let (tx, ty) = translate;
    let a = (rot - sy).cos() / sy.cos();
    let b = -(rot - sy).cos() * sx.tan() / sy.cos() - rot.sin();
    let c = (rot - sy).sin() / sy.cos();
    let d = -(rot - sy).sin() * sx.tan() / sy.cos() + rot.cos();
    let mut m = [d, -b, 0.0, -c, a, 0.0].map(|v| v / scale);
    m[2] += m[0] * (-cx - tx) + m[1] * (-cy - ty);
    m[5] += m[3] * (-cx - tx) + m[4] * (-cy - ty);
    m[2] += cx;
    m[5] += cy;
    m
}

/// Applies the same 256-entry table to the three channels (`Image.point`).
pub fn apply_lut(img: &RgbImage, lut: &[u8; 256]) -> RgbImage {
    let data = img.as_raw().iter().map(|&v| lut[v as usize]).collect();
    RgbImage::from_raw(img.width(), img.height(), data).expect("same size")
}

/// Applies one table per channel.
fn apply_luts(img: &RgbImage, luts: &[[u8; 256]; 3]) -> RgbImage {
    let mut out = img.clone();
    for px in out.as_mut().chunks_exact_mut(3) {
        for (c, v) in px.iter_mut().enumerate() {
            *v = luts[c][*v as usize];
        }
    }
    out
}

/// The 256 entries `f(0..256)` clipped to 0..=255 (Pillow's `CLIP8` of a `point` table).
fn lut_from(f: impl Fn(i64) -> i64) -> [u8; 256] {
    std::array::from_fn(|i| f(i as i64).clamp(0, 255) as u8)
}

/// `ImageOps.posterize(img, bits)`: keeps the `bits` most significant bits; 8 or more is the
/// identity (timm's `posterize` returns the image), 0 gives black (Pillow < 13; Pillow 13 raises).
pub fn posterize(img: &RgbImage, bits: u8) -> RgbImage {
    if bits >= 8 {
        return img.clone();
    }
    let mask = !((1i64 << (8 - bits)) - 1);
    apply_lut(img, &lut_from(|i| i & mask))
}

/// `ImageOps.solarize(img, threshold)`: values `>= threshold` are inverted (a float threshold
/// as torchvision passes it; 256 or more is the identity).
pub fn solarize(img: &RgbImage, threshold: f64) -> RgbImage {
    apply_lut(img, &lut_from(|i| if (i as f64) < threshold { i } else { 255 - i }))
}

/// timm's `solarize_add(img, add, thresh)`: values below `threshold` get `add` added (clipped
/// at 255).
pub fn solarize_add(img: &RgbImage, add: i64, threshold: i64) -> RgbImage {
    apply_lut(img, &lut_from(|i| if i < threshold { (i + add).min(255) } else { i }))
}

/// `ImageOps.invert`.
pub fn invert(img: &RgbImage) -> RgbImage {
    apply_lut(img, &lut_from(|i| 255 - i))
}

/// Per-channel histograms (`Image.histogram()` of an RGB image).
fn histograms(img: &RgbImage) -> [[u64; 256]; 3] {
    let mut h = [[0u64; 256]; 3];
    for px in img.as_raw().chunks_exact(3) {
        for c in 0..3 {
            h[c][px[c] as usize] += 1;
        }
    }
    h
}

/// `ImageOps.autocontrast(img)` (no cutoff): each channel is stretched linearly so that its
/// lowest value becomes 0 and its highest 255.
pub fn autocontrast(img: &RgbImage) -> RgbImage {
    let hist = histograms(img);
    let luts = hist.map(|h| {
        let lo = h.iter().position(|&n| n != 0);
        let hi = h.iter().rposition(|&n| n != 0);
        match (lo, hi) {
            (Some(lo), Some(hi)) if hi > lo => {
                let scale = 255.0 / (hi - lo) as f64;
                let offset = -(lo as f64) * scale;
                lut_from(|ix| (ix as f64 * scale + offset) as i64)
            }
            _ => lut_from(|i| i),
        }
    });
    apply_luts(img, &luts)
}

/// `ImageOps.equalize(img)`: per-channel histogram equalisation with Pillow's integer steps.
pub fn equalize(img: &RgbImage) -> RgbImage {
    let hist = histograms(img);
    let luts = hist.map(|h| {
        let used: Vec<u64> = h.iter().copied().filter(|&n| n != 0).collect();
        if used.len() <= 1 {
            return lut_from(|i| i);
        }
        let step = (used.iter().sum::<u64>() - used[used.len() - 1]) / 255;
        if step == 0 {
            return lut_from(|i| i);
        }
        let mut n = step / 2;
        let mut lut = [0u8; 256];
        for (i, slot) in lut.iter_mut().enumerate() {
            *slot = (n / step).min(255) as u8;
            n += h[i];
        }
        lut
    });
    apply_luts(img, &luts)
}

/// `Image.blend(degenerate, image, factor)` (`ImagingBlend`, `float` arithmetic): `factor` 0 is
/// `degenerate`, 1 is `image`, beyond [0, 1] extrapolates with clipping.
pub fn blend(degenerate: &RgbImage, image: &RgbImage, factor: f64) -> RgbImage {
    let alpha = factor as f32;
    if alpha == 0.0 {
        return degenerate.clone();
    }
    if alpha == 1.0 {
        return image.clone();
    }
    let interpolate = (0.0..=1.0).contains(&alpha);
    let data = degenerate
        .as_raw()
        .iter()
        .zip(image.as_raw())
        .map(|(&a, &b)| {
            let t = a as i32 as f32 + alpha * (b as i32 - a as i32) as f32;
            if interpolate {
                t as u8
            } else if t <= 0.0 {
                0
            } else if t >= 255.0 {
                255
            } else {
                t as u8
            }
        })
        .collect();
    RgbImage::from_raw(image.width(), image.height(), data).expect("same size")
}

/// `ImageEnhance.Color(img).enhance(factor)`: blend with the grayscale (`L`) image.
pub fn color(img: &RgbImage, factor: f64) -> RgbImage {
    let gray = RgbImage::from_fn(img.width(), img.height(), |x, y| {
        let l = pil_luma(img.get_pixel(x, y).0);
        Rgb([l, l, l])
    });
    blend(&gray, img, factor)
}

/// `ImageEnhance.Contrast(img).enhance(factor)`: blend with a flat gray image of the rounded
/// mean of the `L` image.
pub fn contrast(img: &RgbImage, factor: f64) -> RgbImage {
    let n = img.width() as u64 * img.height() as u64;
    let sum: u64 = img.pixels().map(|p| pil_luma(p.0) as u64).sum();
    let mean = if n == 0 { 0.0 } else { sum as f64 / n as f64 };
    let m = (mean + 0.5) as u8;
    blend(&RgbImage::from_pixel(img.width(), img.height(), Rgb([m; 3])), img, factor)
}

/// `ImageEnhance.Brightness(img).enhance(factor)`: blend with black.
pub fn brightness(img: &RgbImage, factor: f64) -> RgbImage {
    blend(&RgbImage::new(img.width(), img.height()), img, factor)
}

/// `img.filter(ImageFilter.SMOOTH)`: the 3x3 kernel `[1 1 1; 1 5 1; 1 1 1] / 13` in `float`,
/// rounded by truncation after adding 0.5; the border rows and columns are copied unchanged, and
/// images smaller than 3x3 are returned as they are.
pub fn smooth(img: &RgbImage) -> RgbImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w < 3 || h < 3 {
        return img.clone();
    }
    let k1 = 1.0f32 / 13.0f32;
    let k5 = 5.0f32 / 13.0f32;
    let kernel = [k1, k1, k1, k1, k5, k1, k1, k1, k1];
    let src = img.as_raw();
    let mut out = img.clone();
    let dst = out.as_mut();
    let stride = w * 3;
    let row3 = |row: &[u8], x: usize, c: usize, k: &[f32]| {
        row[(x - 1) * 3 + c] as f32 * k[0] + row[x * 3 + c] as f32 * k[1] + row[(x + 1) * 3 + c] as f32 * k[2]
    };
    for y in 1..h - 1 {
        let above = &src[(y - 1) * stride..y * stride];
        let here = &src[y * stride..(y + 1) * stride];
        let below = &src[(y + 1) * stride..(y + 2) * stride];
        for x in 1..w - 1 {
            for c in 0..3 {
                let mut ss = 0.5f32;
                ss += row3(below, x, c, &kernel[0..3]);
                ss += row3(here, x, c, &kernel[3..6]);
                ss += row3(above, x, c, &kernel[6..9]);
                dst[y * stride + x * 3 + c] = ss.clamp(0.0, 255.0) as u8;
            }
        }
    }
    out
}

/// `ImageEnhance.Sharpness(img).enhance(factor)`: blend with the [`smooth`]ed image.
pub fn sharpness(img: &RgbImage, factor: f64) -> RgbImage {
    blend(&smooth(img), img, factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_float_helpers() {
        assert_eq!(py_mod(-30.0, 360.0), 330.0);
        assert_eq!(py_mod(390.0, 360.0), 30.0);
        assert_eq!(py_mod(-0.0, 360.0).to_bits(), 0.0f64.to_bits());
        assert_eq!(py_round15(0.123_456_789_012_345_67), 0.123456789012346);
        assert_eq!(py_round15(-2.0e-17), 0.0);
    }

    #[test]
    fn luts_on_a_ramp() {
        let ramp = RgbImage::from_fn(256, 1, |x, _| Rgb([x as u8, 255 - x as u8, (x / 2) as u8]));
        let p = posterize(&ramp, 2);
        assert_eq!(p.get_pixel(255, 0).0, [192, 0, 64]);
        assert_eq!(posterize(&ramp, 0).as_raw().iter().max(), Some(&0));
        assert_eq!(posterize(&ramp, 8), ramp);
        let s = solarize(&ramp, 128.0);
        assert_eq!(s.get_pixel(127, 0).0[0], 127);
        assert_eq!(s.get_pixel(128, 0).0[0], 127);
        assert_eq!(solarize(&ramp, 256.0), ramp);
        assert_eq!(solarize_add(&ramp, 110, 128).get_pixel(120, 0).0[0], 230);
        assert_eq!(solarize_add(&ramp, 110, 128).get_pixel(200, 0).0[0], 200);
        assert_eq!(invert(&invert(&ramp)), ramp);
        // A full ramp is already equalised and stretched.
        assert_eq!(autocontrast(&ramp).get_pixel(17, 0).0[0], 17);
    }
}
