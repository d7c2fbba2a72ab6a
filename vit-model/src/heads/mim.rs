//! SimMIM masked image modelling (HF `ViTForMaskedImageModeling`): a 1x1 convolution to
//! `encoder_stride² · num_channels` channels and a pixel shuffle rebuild the pixels, and the loss
//! is the L1 error over the masked patches.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::{PixelShuffle, PixelShuffleConfig};
use burn::tensor::{Bool, Device, Tensor};

use crate::architecture::ModelKind;
use crate::config::ViTConfig;
use crate::error::{Result, ViTError};
use crate::init;
use crate::model::{ViTForwardOptions, ViTModel};
use crate::size::DEFAULT_MAX_WEIGHT_BYTES;

/// What [`ViTForMaskedImageModeling::forward_with`] returns.
#[derive(Debug, Clone)]
pub struct MaskedImageModelingOutput {
    /// The rebuilt image, `[B, C, H, W]`.
    pub reconstruction: Tensor<4>,
    /// The masked L1 loss, `[1]`, when `bool_masked_pos` was given.
    pub loss: Option<Tensor<1>>,
    /// The encoder's final-LayerNorm output.
    pub last_hidden_state: Tensor<3>,
    /// The embeddings and every layer's output, when asked for.
    pub hidden_states: Option<Vec<Tensor<3>>>,
    /// Every layer's attention probabilities, when asked for.
    pub attentions: Option<Vec<Tensor<4>>>,
}

/// A ViT encoder with a mask token and a pixel decoder.
#[derive(Module, Debug)]
pub struct ViTForMaskedImageModeling {
    /// The encoder (no pooler, with a mask token).
    pub vit: ViTModel,
    /// The 1x1 convolution to `encoder_stride² · num_channels` channels (HF key `decoder.0`).
    pub decoder: Conv2d,
    /// Rearranges channels into `encoder_stride`×`encoder_stride` pixel blocks (HF `decoder.1`).
    pub pixel_shuffle: PixelShuffle,
    /// Patch side in pixels.
    pub patch_size: usize,
    /// Number of image channels.
    pub num_channels: usize,
}

impl ViTForMaskedImageModeling {
    /// Creates a freshly initialised model. `patch_size` must equal `encoder_stride`, otherwise the
    /// reconstruction would not have the input's size. The config is validated and the model's
    /// f32 weights limited to [`DEFAULT_MAX_WEIGHT_BYTES`] first, as by
    /// [`ViTForMaskedImageModeling::try_new`].
    pub fn new(config: &ViTConfig, device: &Device) -> Result<Self> {
        Self::try_new(config, DEFAULT_MAX_WEIGHT_BYTES, device)
    }

    /// Creates a freshly initialised model after validating `config` and checking that its f32
    /// weights take at most `max_weight_bytes`, so that an absurd config is an error rather than
    /// an allocation failure.
    pub fn try_new(config: &ViTConfig, max_weight_bytes: u64, device: &Device) -> Result<Self> {
        config.validate()?;
        if config.patch_size != config.encoder_stride {
            return Err(ViTError::InvalidConfig(format!(
                "masked image modelling needs patch_size ({}) == encoder_stride ({}): the decoder \
                 upsamples each patch token by encoder_stride",
                config.patch_size, config.encoder_stride
            )));
        }
        config.check_size_of(ModelKind::MaskedImageModeling, max_weight_bytes)?;
        let out_channels = config.encoder_stride * config.encoder_stride * config.num_channels;
        Ok(Self {
            vit: ViTModel::new(config, false, true, device),
            decoder: init::conv2d(config.hidden_size, out_channels, 1, config.initializer_range, device),
            pixel_shuffle: PixelShuffleConfig::new(config.encoder_stride).init(),
            patch_size: config.patch_size,
            num_channels: config.num_channels,
        })
    }

    /// Reconstruction and (with `options.bool_masked_pos`) the masked L1 loss.
    pub fn forward_with(
        &self,
        pixel_values: Tensor<4>,
        options: ViTForwardOptions,
    ) -> Result<MaskedImageModelingOutput> {
        let [_, _, height, width] = pixel_values.dims();
        let bool_masked_pos = options.bool_masked_pos.clone();
        let out = self.vit.forward_with(pixel_values.clone(), options)?;
        let (grid_h, grid_w) = (height / self.patch_size, width / self.patch_size);
        let [_, seq, _] = out.last_hidden_state.dims();
        if seq != grid_h * grid_w + 1 {
            return Err(ViTError::InvalidInput(format!(
                "the encoder returned {} patch tokens, which do not form the {grid_h}x{grid_w} grid of a \
                 {height}x{width} input",
                seq - 1
            )));
        }
        let tokens = out.last_hidden_state.clone().narrow(1, 1, seq - 1);
        let reconstruction = self.pixel_shuffle.forward(self.decode(tokens, grid_h, grid_w));
        let loss =
            bool_masked_pos.map(|mask| self.masked_l1(pixel_values, reconstruction.clone(), mask, grid_h, grid_w));
        Ok(MaskedImageModelingOutput {
            reconstruction,
            loss,
            last_hidden_state: out.last_hidden_state,
            hidden_states: out.hidden_states,
            attentions: out.attentions,
        })
    }

    /// The decoder's 1x1 convolution applied to the patch tokens `[B, gh·gw, D]`, as the matmul
    /// it is (on the tokens as they lie, with no transposed copy to an image layout first):
    /// `[B, encoder_stride²·C, gh, gw]`. (Burn's wgpu convolution also got this wrong on a
    /// transposed input.)
    fn decode(&self, tokens: Tensor<3>, grid_h: usize, grid_w: usize) -> Tensor<4> {
        let [batch, _, d] = tokens.dims();
        let [out_channels, ..] = self.decoder.weight.dims();
        let weight = self.decoder.weight.val().reshape([out_channels, d]).transpose();
        let mut pixels = tokens.matmul(weight.unsqueeze());
        if let Some(bias) = &self.decoder.bias {
            pixels = pixels + bias.val().reshape([1, 1, out_channels]);
        }
        pixels.reshape([batch, grid_h, grid_w, out_channels]).permute([0, 3, 1, 2])
    }

    /// `Σ_masked |x − x̂| / (masked pixel positions + 1e-5) / num_channels`.
    fn masked_l1(
        &self,
        pixel_values: Tensor<4>,
        reconstruction: Tensor<4>,
        bool_masked_pos: Tensor<2, Bool>,
        grid_h: usize,
        grid_w: usize,
    ) -> Tensor<1> {
        let [batch, channels, _, _] = pixel_values.dims();
        let p = self.patch_size;
        // The error summed per patch, [B, gh, gw], weighted by the patch mask; each masked patch
        // covers p² pixel positions. (Not an upsampled pixel mask: summing that expanded view
        // gave a wrong loss on the wgpu backend.)
        let per_patch = (pixel_values - reconstruction)
            .abs()
            .reshape([batch, channels, grid_h, p, grid_w, p])
            .sum_dim(5)
            .sum_dim(3)
            .sum_dim(1)
            .reshape([batch, grid_h, grid_w]);
        let mask = bool_masked_pos.float().reshape([batch, grid_h, grid_w]);
        (per_patch * mask.clone())
            .sum()
            .div(mask.sum().mul_scalar((p * p) as f64).add_scalar(1e-5))
            .div_scalar(self.num_channels as f64)
    }
}
