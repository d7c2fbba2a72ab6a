//! Helpers shared by the integration tests: hand-made PNG files and synthetic images.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;

use image::{Rgb, RgbImage};

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32(&body).to_be_bytes());
}

/// A PNG file built chunk by chunk: header claiming `width`x`height`, optional palette, and
/// `scanlines` (filter byte + pixels per row) compressed as IDAT.
pub fn raw_png(width: u32, height: u32, color_type: u8, palette: Option<&[u8]>, scanlines: &[u8]) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, color_type, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    if let Some(p) = palette {
        chunk(&mut out, b"PLTE", p);
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(scanlines).unwrap();
    chunk(&mut out, b"IDAT", &z.finish().unwrap());
    chunk(&mut out, b"IEND", &[]);
    out
}

/// A PNG whose header claims 100000x100000 RGB pixels (a decompression bomb's header).
pub fn bomb_png() -> Vec<u8> {
    raw_png(100_000, 100_000, 2, None, &[0, 1, 2, 3])
}

/// A deterministic colourful test image.
pub fn pattern(width: u32, height: u32, salt: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        Rgb([
            ((x * 7 + y * 3 + salt * 31) % 256) as u8,
            ((x * 2 + y * 11 + salt * 17) % 256) as u8,
            ((x ^ y).wrapping_add(salt * 5) % 256) as u8,
        ])
    })
}

/// Saves `pattern(width, height, salt)` as `path` (format from the extension).
pub fn write_image(path: &Path, width: u32, height: u32, salt: u32) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    pattern(width, height, salt).save(path).unwrap();
}
