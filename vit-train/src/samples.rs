//! SimMIM reconstruction grids: for a few images of a batch, the input, the input with its masked
//! patches greyed out, and the model's reconstruction, side by side in one PNG.

use std::path::PathBuf;

use anyhow::{Context, Result};
use burn::tensor::{Bool, Tensor};
use image::{Rgb, RgbImage};

/// Writes `samples/step-<n>.png` grids.
#[derive(Clone, Debug)]
pub struct SampleWriter {
    /// Output folder.
    pub dir: PathBuf,
    /// Every how many micro-batches (0: never).
    pub every: usize,
    /// Normalisation mean per channel.
    pub mean: Vec<f32>,
    /// Normalisation std per channel.
    pub std: Vec<f32>,
    /// Images per grid.
    pub rows: usize,
}

impl SampleWriter {
    /// Whether micro-batch `step` gets a grid.
    pub fn due(&self, step: usize) -> bool {
        self.every > 0 && step.is_multiple_of(self.every)
    }

    /// Writes the grid of `step`.
    pub fn write(
        &self,
        step: usize,
        pixels: &Tensor<4>,
        mask: &Tensor<2, Bool>,
        reconstruction: &Tensor<4>,
    ) -> Result<PathBuf> {
        let [b, c, h, w] = pixels.dims();
        let rows = b.min(self.rows);
        let [_, patches] = mask.dims();
        let grid = ((patches as f64).sqrt().round() as usize).max(1);
        let (ph, pw) = (h / grid, w / grid);
        let x: Vec<f32> = pixels.clone().into_data().convert::<f32>().try_to_vec::<f32>().map_err(|e| anyhow::anyhow!("{e:?}")).context("pixels")?;
        let r: Vec<f32> = reconstruction.clone().into_data().convert::<f32>().try_to_vec::<f32>().map_err(|e| anyhow::anyhow!("{e:?}")).context("reconstruction")?;
        let m: Vec<bool> = mask.clone().into_data().try_to_vec::<bool>().map_err(|e| anyhow::anyhow!("{e:?}")).context("mask")?;
        let mut out = RgbImage::new((3 * w + 2) as u32, (rows * (h + 1)) as u32);
        let value = |data: &[f32], i: usize, ch: usize, y: usize, xx: usize| {
            let ch_in = ch.min(c - 1);
            let v = data[((i * c + ch_in) * h + y) * w + xx];
            let mean = self.mean.get(ch_in).copied().unwrap_or(0.5);
            let std = self.std.get(ch_in).copied().unwrap_or(0.5);
            ((v * std + mean) * 255.0).round().clamp(0.0, 255.0) as u8
        };
        for i in 0..rows {
            for y in 0..h {
                for xx in 0..w {
                    let masked = m[i * patches + (y / ph.max(1)).min(grid - 1) * grid + (xx / pw.max(1)).min(grid - 1)];
                    let px = |d: &[f32]| Rgb([value(d, i, 0, y, xx), value(d, i, 1, y, xx), value(d, i, 2, y, xx)]);
                    let oy = (i * (h + 1) + y) as u32;
                    out.put_pixel(xx as u32, oy, px(&x));
                    out.put_pixel((w + 1 + xx) as u32, oy, if masked { Rgb([128, 128, 128]) } else { px(&x) });
                    out.put_pixel((2 * w + 2 + xx) as u32, oy, px(&r));
                }
            }
        }
        std::fs::create_dir_all(&self.dir).with_context(|| format!("cannot create {}", self.dir.display()))?;
        let path = self.dir.join(format!("step-{step:07}.png"));
        let mut bytes = Vec::new();
        out.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)?;
        vit_model::checkpoint::write_atomic(&path, &bytes)?;
        Ok(path)
    }
}
