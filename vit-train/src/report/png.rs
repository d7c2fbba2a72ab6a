//! What the report images share: the embedded font plotters draws text with, and PNG files written
//! atomically.
//!
//! Rendering is pure Rust: plotters' bitmap backend rasterises text with `ab_glyph`, using the
//! DejaVu Sans font embedded from the `dejavu` crate, so no system fonts or fontconfig are needed.

use std::path::Path;
use std::sync::Once;

use anyhow::{Context, Result};
use plotters::style::FontStyle;

/// The font family the report images use.
pub const FONT: &str = "sans-serif";

/// Registers the embedded DejaVu Sans with plotters (once per process).
pub fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for family in ["sans-serif", "serif", "monospace"] {
            // Both are valid TrueType files shipped inside the `dejavu` crate; a failure would only
            // mean plotters reports FontUnavailable when drawing text, which is returned as an error.
            let _ = plotters::style::register_font(family, FontStyle::Normal, dejavu::sans::regular());
            let _ = plotters::style::register_font(family, FontStyle::Bold, dejavu::sans::bold());
        }
    });
}

/// Encodes `img` as PNG and writes it to `out` atomically (see [`vit_io::write_atomic`]).
pub fn write_png(img: &image::RgbImage, out: &Path) -> Result<()> {
    let mut bytes = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png).context("PNG encoding failed")?;
    vit_io::write_atomic(out, &bytes).with_context(|| format!("cannot write {}", out.display()))
}
