//! Patch, CLS, mask-token and position embeddings (HF `ViTEmbeddings`, `ViTPatchEmbeddings`).

use burn::module::{Module, Param};
use burn::nn::conv::Conv2d;
use burn::nn::{Dropout, DropoutConfig};
use burn::tensor::{Bool, Device, Tensor};

use crate::config::ViTConfig;
use crate::error::{Result, ViTError};
use crate::init;
use crate::pos_interp::resize_bicubic;

/// Splits an image into patches and projects each to `hidden_size` (a conv with stride = patch).
#[derive(Module, Debug)]
pub struct ViTPatchEmbeddings {
    /// The patch projection, `[hidden, channels, patch, patch]`.
    pub projection: Conv2d,
    /// Patch side in pixels.
    pub patch_size: usize,
    /// Expected number of input channels.
    pub num_channels: usize,
    /// Side of the image the model was made for.
    pub image_size: usize,
}

impl ViTPatchEmbeddings {
    /// Creates the patch projection of `config`.
    pub fn new(config: &ViTConfig, device: &Device) -> Self {
        Self {
            projection: init::conv2d(
                config.num_channels,
                config.hidden_size,
                config.patch_size,
                config.initializer_range,
                device,
            ),
            patch_size: config.patch_size,
            num_channels: config.num_channels,
            image_size: config.image_size,
        }
    }

    /// `[B, C, H, W]` → `[B, (H/p)·(W/p), hidden]`.
    pub fn forward(&self, pixel_values: Tensor<4>, interpolate_pos_encoding: bool) -> Result<Tensor<3>> {
        let [batch, channels, height, width] = pixel_values.dims();
        if batch == 0 {
            return Err(ViTError::InvalidInput(format!(
                "pixel_values has shape {:?}: a batch of 0 images; expected at least 1",
                pixel_values.dims()
            )));
        }
        if channels != self.num_channels {
            return Err(ViTError::InvalidInput(format!(
                "pixel_values has {channels} channels but the model expects num_channels = {}",
                self.num_channels
            )));
        }
        let p = self.patch_size;
        if !interpolate_pos_encoding && (height != self.image_size || width != self.image_size) {
            return Err(ViTError::InvalidInput(format!(
                "input image size ({height}x{width}) doesn't match the model ({0}x{0}); \
                 pass interpolate_pos_encoding to run at another resolution",
                self.image_size
            )));
        }
        if height % p != 0 || width % p != 0 || height == 0 || width == 0 {
            return Err(ViTError::InvalidInput(format!(
                "input image size ({height}x{width}) must be a non-zero multiple of patch_size ({p})"
            )));
        }
        let x = self.projection.forward(pixel_values);
        Ok(x.flatten::<3>(2, 3).swap_dims(1, 2))
    }
}

/// The token sequence fed to the encoder: `[CLS] + patches` plus position embeddings.
#[derive(Module, Debug)]
pub struct ViTEmbeddings {
    /// The learned CLS token, `[1, 1, hidden]`.
    pub cls_token: Param<Tensor<3>>,
    /// The learned token put in place of masked patches, `[1, 1, hidden]` (SimMIM, `use_mask_token`).
    pub mask_token: Option<Param<Tensor<3>>>,
    /// The patch projection.
    pub patch_embeddings: ViTPatchEmbeddings,
    /// Position embeddings for CLS and every patch of the training grid, `[1, 1 + N, hidden]`.
    pub position_embeddings: Param<Tensor<3>>,
    /// Dropout after the sum.
    pub dropout: Dropout,
}

impl ViTEmbeddings {
    /// Creates the embeddings of `config`, with a mask token when `use_mask_token`.
    pub fn new(config: &ViTConfig, use_mask_token: bool, device: &Device) -> Self {
        let d = config.hidden_size;
        let std = config.initializer_range;
        Self {
            cls_token: init::trunc_normal_param([1, 1, d], std, device),
            // HF zero-initialises the mask token.
            mask_token: use_mask_token.then(|| Param::from_tensor(Tensor::zeros([1, 1, d], device))),
            patch_embeddings: ViTPatchEmbeddings::new(config, device),
            position_embeddings: init::trunc_normal_param([1, config.num_patches() + 1, d], std, device),
            dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
        }
    }

    /// The position embeddings for an `height`×`width` input: the patch-grid part resized
    /// bicubically to `(height/p, width/p)`, the CLS part kept.
    pub fn interpolate_pos_encoding(&self, height: usize, width: usize) -> Tensor<3> {
        let pos = self.position_embeddings.val();
        let [_, n, d] = pos.dims();
        let p = self.patch_embeddings.patch_size;
        let (new_h, new_w) = (height / p, width / p);
        let grid = self.patch_embeddings.image_size / p;
        if n - 1 == new_h * new_w && new_h == grid && new_w == grid {
            return pos;
        }
        let cls_pos = pos.clone().narrow(1, 0, 1);
        let patch_pos = pos.narrow(1, 1, n - 1).reshape([grid, grid, d]).permute([2, 0, 1]);
        let resized = resize_bicubic(patch_pos, new_h, new_w).permute([1, 2, 0]).reshape([1, new_h * new_w, d]);
        Tensor::cat(vec![cls_pos, resized], 1)
    }

    /// `[B, C, H, W]` → `[B, 1 + patches, hidden]`.
    pub fn forward(
        &self,
        pixel_values: Tensor<4>,
        bool_masked_pos: Option<Tensor<2, Bool>>,
        interpolate_pos_encoding: bool,
    ) -> Result<Tensor<3>> {
        let [batch, _, height, width] = pixel_values.dims();
        let mut x = self.patch_embeddings.forward(pixel_values, interpolate_pos_encoding)?;
        let [_, seq, d] = x.dims();

        if let Some(mask) = bool_masked_pos {
            let mask_token = self.mask_token.as_ref().ok_or_else(|| {
                ViTError::InvalidInput(
                    "bool_masked_pos was given but the model has no mask token (use_mask_token)".into(),
                )
            })?;
            if mask.dims() != [batch, seq] {
                return Err(ViTError::InvalidInput(format!(
                    "bool_masked_pos has shape {:?} but the input has {batch} images of {seq} patches",
                    mask.dims()
                )));
            }
            let mask = mask.unsqueeze_dim::<3>(2).expand([batch, seq, d]);
            x = x.mask_where(mask, mask_token.val().expand([batch, seq, d]));
        }

        let cls = self.cls_token.val().expand([batch, 1, d]);
        let x = Tensor::cat(vec![cls, x], 1);
        let pos = if interpolate_pos_encoding {
            self.interpolate_pos_encoding(height, width)
        } else {
            self.position_embeddings.val()
        };
        Ok(self.dropout.forward(x + pos))
    }
}
