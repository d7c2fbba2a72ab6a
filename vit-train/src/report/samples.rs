//! SimMIM reconstruction grids: for a few images of a batch, the input, the input with its masked
//! patches greyed out, and the model's reconstruction, side by side in one PNG under column titles.
//! Small images (CIFAR's 32 px) are enlarged (nearest neighbour) so the tiles can be read.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use anyhow::{Context, Result};
use burn::tensor::{Bool, Tensor};
use image::{Rgb, RgbImage};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::png::{FONT, register_fonts, write_png};

/// Tiles are enlarged by a whole factor until they are at least this many pixels high.
const MIN_TILE: usize = 128;
/// Height of the strip holding the column titles.
const TITLE_HEIGHT: usize = 24;
/// Pixels between tiles.
const GAP: usize = 2;
/// The columns, left to right.
const COLUMNS: [&str; 3] = ["input", "masked", "reconstruction"];

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
    /// Grids being written in the background.
    pub pending: Arc<Mutex<Vec<JoinHandle<()>>>>,
    /// The latest micro-batch whose grid was claimed (several devices train shares of one).
    claimed: Arc<AtomicUsize>,
}

fn values(tensor: Tensor<4>, what: &str) -> Result<Vec<f32>> {
    tensor
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("{e:?}"))
        .context(what.to_string())
}

impl SampleWriter {
    /// A writer of a grid of `rows` images into `dir` every `every` micro-batches.
    pub fn new(dir: PathBuf, every: usize, mean: Vec<f32>, std: Vec<f32>, rows: usize) -> Self {
        Self { dir, every, mean, std, rows, pending: Arc::default(), claimed: Arc::default() }
    }

    /// Writes the grid of `step` on a thread of its own (reading the tensors back there), so that
    /// the training step does not wait for it; [`wait`](Self::wait) joins them.
    pub fn write_in_background(
        &self,
        step: usize,
        pixels: Tensor<4>,
        mask: Tensor<2, Bool>,
        reconstruction: Tensor<4>,
    ) {
        let writer = self.clone();
        let handle = std::thread::spawn(move || {
            if let Err(e) = writer.write(step, &pixels, &mask, &reconstruction) {
                eprintln!("warning: cannot write the reconstruction grid of step {step}: {e:#}");
            }
        });
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).push(handle);
    }

    /// Waits for every grid being written.
    pub fn wait(&self) {
        let handles = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        for handle in handles {
            let _ = handle.join();
        }
    }

    /// Whether micro-batch `step` gets a grid.
    pub fn due(&self, step: usize) -> bool {
        self.every > 0 && step.is_multiple_of(self.every)
    }

    /// Whether the caller is to draw micro-batch `step`'s grid: when it is due and no other
    /// device's share of it was claimed first.
    pub fn claim(&self, step: usize) -> bool {
        self.due(step) && self.claimed.fetch_max(step, Ordering::SeqCst) < step
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
        let x = values(pixels.clone(), "pixels")?;
        let r = values(reconstruction.clone(), "reconstruction")?;
        let m: Vec<bool> =
            mask.clone().into_data().try_to_vec::<bool>().map_err(|e| anyhow::anyhow!("{e:?}")).context("mask")?;
        let scale = MIN_TILE.div_ceil(h.max(1)).max(1);
        let (th, tw) = (h * scale, w * scale);
        let width = COLUMNS.len() * tw + (COLUMNS.len() - 1) * GAP;
        let height = TITLE_HEIGHT + rows * th + rows.saturating_sub(1) * GAP;
        let mut out = RgbImage::from_pixel(width as u32, height as u32, Rgb([255, 255, 255]));
        let value = |data: &[f32], i: usize, ch: usize, y: usize, xx: usize| {
            let ch_in = ch.min(c - 1);
            let v = data[((i * c + ch_in) * h + y) * w + xx];
            let mean = self.mean.get(ch_in).copied().unwrap_or(0.5);
            let std = self.std.get(ch_in).copied().unwrap_or(0.5);
            ((v * std + mean) * 255.0).round().clamp(0.0, 255.0) as u8
        };
        for i in 0..rows {
            for y in 0..th {
                for xx in 0..tw {
                    let (sy, sx) = (y / scale, xx / scale);
                    let masked =
                        m[i * patches + (sy / ph.max(1)).min(grid - 1) * grid + (sx / pw.max(1)).min(grid - 1)];
                    let px = |d: &[f32]| Rgb([value(d, i, 0, sy, sx), value(d, i, 1, sy, sx), value(d, i, 2, sy, sx)]);
                    let oy = (TITLE_HEIGHT + i * (th + GAP) + y) as u32;
                    out.put_pixel(xx as u32, oy, px(&x));
                    out.put_pixel((tw + GAP + xx) as u32, oy, if masked { Rgb([128, 128, 128]) } else { px(&x) });
                    out.put_pixel((2 * (tw + GAP) + xx) as u32, oy, px(&r));
                }
            }
        }
        draw_titles(&mut out, tw)?;
        std::fs::create_dir_all(&self.dir).with_context(|| format!("cannot create {}", self.dir.display()))?;
        let path = self.dir.join(format!("step-{step:07}.png"));
        write_png(&out, &path)?;
        Ok(path)
    }
}

/// Writes the column titles centred over tiles `tile_width` pixels wide.
fn draw_titles(img: &mut RgbImage, tile_width: usize) -> Result<()> {
    register_fonts();
    let (width, height) = img.dimensions();
    let buf: &mut [u8] = img;
    let root = BitMapBackend::with_buffer(buf, (width, height)).into_drawing_area();
    let style = TextStyle::from((FONT, 16.0).into_font()).pos(Pos::new(HPos::Center, VPos::Center));
    for (k, title) in COLUMNS.iter().enumerate() {
        let centre = (k * (tile_width + GAP) + tile_width / 2) as i32;
        root.draw(&Text::new(*title, (centre, (TITLE_HEIGHT / 2) as i32), style.clone()))
            .map_err(|e| anyhow::anyhow!("cannot draw the sample titles: {e}"))?;
    }
    root.present().map_err(|e| anyhow::anyhow!("cannot draw the sample titles: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn small_images_are_enlarged_under_titled_columns() {
        let tmp = tempfile::tempdir().unwrap();
        let device = Device::flex();
        let writer = SampleWriter::new(tmp.path().to_path_buf(), 1, vec![0.5; 3], vec![0.5; 3], 2);
        let pixels = Tensor::<4>::from_data(TensorData::new(vec![1.0f32; 2 * 3 * 32 * 32], [2, 3, 32, 32]), &device);
        let mask = Tensor::<2, Bool>::from_data(
            TensorData::new(vec![true, false, false, true, true, false, false, true], [2, 4]),
            &device,
        );
        let path = writer.write(3, &pixels, &mask, &pixels).unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        // 32 px tiles enlarged 4x to 128, three columns with two gaps; titles on top.
        assert_eq!(img.dimensions(), (3 * 128 + 2 * GAP as u32, TITLE_HEIGHT as u32 + 2 * 128 + GAP as u32));
        let dark_in_titles = (0..img.width())
            .flat_map(|x| (0..TITLE_HEIGHT as u32).map(move |y| (x, y)))
            .filter(|&(x, y)| img.get_pixel(x, y).0[0] < 128)
            .count();
        assert!(dark_in_titles > 50, "the column titles are drawn ({dark_in_titles} dark pixels)");
        // The first image's top-left patch is masked (grey) in the middle column, white elsewhere.
        let y0 = TITLE_HEIGHT as u32 + 10;
        assert_eq!(img.get_pixel(10, y0).0, [255, 255, 255]);
        assert_eq!(img.get_pixel(128 + GAP as u32 + 10, y0).0, [128, 128, 128]);
        assert_eq!(img.get_pixel(128 + GAP as u32 + 100, y0).0, [255, 255, 255]);
    }
}
