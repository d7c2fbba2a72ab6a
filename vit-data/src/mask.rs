//! SimMIM random masks, as `MaskGenerator` in Hugging Face's `run_mim.py`.

use rand::seq::SliceRandom;

use crate::error::{DataError, Result};
use crate::rng::{RngStream, sample_rng};

/// SimMIM mask generator: the image is divided into `(input_size / mask_patch_size)²` cells, a
/// random `ceil(cells * mask_ratio)` of them are masked, and each cell is expanded to
/// `(mask_patch_size / model_patch_size)²` model patches. The result, flattened row-major, is
/// `bool_masked_pos` of length `(input_size / model_patch_size)²`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MaskGenerator {
    input_size: u32,
    mask_patch_size: u32,
    model_patch_size: u32,
    mask_ratio: f64,
    rand_size: usize,
    scale: usize,
    mask_count: usize,
}

impl MaskGenerator {
    /// Checks the sizes (`input_size` divisible by `mask_patch_size`, which is divisible by
    /// `model_patch_size`) and that the ratio masks at least one cell but not all of them.
    /// `run_mim.py` defaults: 192, 32, 4 (the model's patch size), 0.6.
    pub fn new(input_size: u32, mask_patch_size: u32, model_patch_size: u32, mask_ratio: f64) -> Result<Self> {
        for (name, v) in
            [("image_size", input_size), ("mask_patch_size", mask_patch_size), ("patch_size", model_patch_size)]
        {
            if v == 0 {
                return Err(DataError::setting(name, "must be positive"));
            }
        }
        if !input_size.is_multiple_of(mask_patch_size) {
            return Err(DataError::setting(
                "mask_patch_size",
                format!(
                    "the image size {input_size} is not divisible by the mask patch size \
                     {mask_patch_size}; choose a mask patch size that divides it"
                ),
            ));
        }
        if !mask_patch_size.is_multiple_of(model_patch_size) {
            return Err(DataError::setting(
                "mask_patch_size",
                format!(
                    "{mask_patch_size} is not divisible by the model's patch size \
                     {model_patch_size}; use a multiple of {model_patch_size}"
                ),
            ));
        }
        if !(mask_ratio.is_finite() && mask_ratio > 0.0 && mask_ratio < 1.0) {
            return Err(DataError::setting(
                "mask_ratio",
                format!("is {mask_ratio}; it must be strictly between 0 and 1 (SimMIM uses 0.6)"),
            ));
        }
        let rand_size = (input_size / mask_patch_size) as usize;
        let cells = rand_size * rand_size;
        // As numpy: int(np.ceil(token_count * mask_ratio)) in float64.
        let mask_count = (cells as f64 * mask_ratio).ceil() as usize;
        if mask_count == 0 || mask_count >= cells {
            return Err(DataError::setting(
                "mask_ratio",
                format!(
                    "masks {mask_count} of {cells} mask cells ({input_size}px image, \
                     {mask_patch_size}px mask patches, ratio {mask_ratio}): {}; use a smaller \
                     mask_patch_size (more cells) or another ratio",
                    if mask_count == 0 {
                        "nothing would be masked"
                    } else {
                        "everything would be masked, leaving nothing visible"
                    }
                ),
            ));
        }
        Ok(MaskGenerator {
            input_size,
            mask_patch_size,
            model_patch_size,
            mask_ratio,
            rand_size,
            scale: (mask_patch_size / model_patch_size) as usize,
            mask_count,
        })
    }

    /// Number of model patches (length of the mask).
    pub fn num_patches(&self) -> usize {
        let side = self.rand_size * self.scale;
        side * side
    }

    /// Number of masked mask cells per image.
    pub fn mask_count(&self) -> usize {
        self.mask_count
    }

    /// Number of masked model patches per image (`mask_count * scale²`).
    pub fn masked_patches(&self) -> usize {
        self.mask_count * self.scale * self.scale
    }

    /// The settings: `(input_size, mask_patch_size, model_patch_size, mask_ratio)`.
    pub fn settings(&self) -> (u32, u32, u32, f64) {
        (self.input_size, self.mask_patch_size, self.model_patch_size, self.mask_ratio)
    }

    /// The mask of sample `index` in `epoch` for run `seed` (true = masked), row-major over the
    /// model's patch grid. Depends on these three numbers only.
    pub fn generate(&self, seed: u64, epoch: u64, index: u64) -> Vec<bool> {
        let mut rng = sample_rng(seed, epoch, index, RngStream::Mask);
        let cells = self.rand_size * self.rand_size;
        let mut order: Vec<usize> = (0..cells).collect();
        order.shuffle(&mut rng);
        let mut cell_mask = vec![false; cells];
        for &c in &order[..self.mask_count] {
            cell_mask[c] = true;
        }
        let side = self.rand_size * self.scale;
        let mut mask = Vec::with_capacity(side * side);
        for row in 0..side {
            let cell_row = &cell_mask[(row / self.scale) * self.rand_size..][..self.rand_size];
            for col in 0..side {
                mask.push(cell_row[col / self.scale]);
            }
        }
        mask
    }
}
