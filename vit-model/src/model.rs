//! The bare ViT encoder with its optional pooler (HF `ViTModel`, `ViTPooler`).

use burn::module::Module;
use burn::tensor::{Bool, Device, Tensor};

use crate::activation::HiddenAct;
use crate::architecture::ModelKind;
use crate::config::ViTConfig;
use crate::drop_path::StochasticDepth;
use crate::embeddings::ViTEmbeddings;
use crate::encoder::ViTEncoder;
use crate::error::{Result, ViTError};
use crate::fused_layers::{FusedLayerNorm, FusedLinear};
use crate::init;

/// Optional inputs and requested extras of a forward pass. `Default` asks for nothing.
#[derive(Debug, Clone, Default)]
pub struct ViTForwardOptions {
    /// Which patches to replace by the mask token, `[B, patches]` (needs `use_mask_token`).
    pub bool_masked_pos: Option<Tensor<2, Bool>>,
    /// Multiplies the attention probabilities: `[heads]` for every layer, or `[layers, heads]`.
    pub head_mask: Option<HeadMask>,
    /// Return every layer's attention probabilities.
    pub output_attentions: bool,
    /// Return the embeddings and every layer's output.
    pub output_hidden_states: bool,
    /// Resize the position embeddings to the input's size (another resolution than `image_size`).
    pub interpolate_pos_encoding: bool,
    /// Stochastic depth over the encoder layers (training only; not part of HF's ViT).
    pub stochastic_depth: Option<StochasticDepth>,
}

/// A head mask as HF accepts it.
#[derive(Debug, Clone)]
pub enum HeadMask {
    /// The same `[heads]` mask for every layer.
    AllLayers(Tensor<1>),
    /// One `[layers, heads]` row per layer.
    PerLayer(Tensor<2>),
}

impl HeadMask {
    fn per_layer(self, layers: usize, heads: usize) -> Result<Tensor<2>> {
        let mask = match self {
            HeadMask::AllLayers(m) => {
                let [h] = m.dims();
                m.unsqueeze_dim::<2>(0).expand([layers, h])
            }
            HeadMask::PerLayer(m) => m,
        };
        if mask.dims() != [layers, heads] {
            return Err(ViTError::InvalidInput(format!(
                "head_mask must have shape [{heads}] or [{layers}, {heads}], got {:?}",
                mask.dims()
            )));
        }
        Ok(mask)
    }
}

/// Everything a ViT forward pass can return; extras are `Some` only when asked for.
#[derive(Debug, Clone)]
pub struct ViTModelOutput {
    /// The final-LayerNorm output, `[B, S, D]`.
    pub last_hidden_state: Tensor<3>,
    /// The pooler output, `[B, pooler_output_size]`, when the model has a pooler.
    pub pooler_output: Option<Tensor<2>>,
    /// The embeddings and every layer's output (before the final LayerNorm).
    pub hidden_states: Option<Vec<Tensor<3>>>,
    /// Every layer's attention probabilities, `[B, H, S, S]`, after the head mask.
    pub attentions: Option<Vec<Tensor<4>>>,
}

/// Dense + activation on the CLS token.
#[derive(Module, Debug)]
pub struct ViTPooler {
    /// `hidden_size` → `pooler_output_size`.
    pub dense: FusedLinear,
    /// The activation (`pooler_act`).
    #[module(skip)]
    pub act: HiddenAct,
}

impl ViTPooler {
    /// Creates the pooler of `config`.
    pub fn new(config: &ViTConfig, device: &Device) -> Self {
        Self {
            dense: init::linear(
                config.hidden_size,
                config.pooler_output_size(),
                true,
                config.initializer_range,
                device,
            ),
            act: config.pooler_act,
        }
    }

    /// `[B, S, D]` → `[B, pooler_output_size]`.
    pub fn forward(&self, hidden: Tensor<3>) -> Tensor<2> {
        let cls = hidden.narrow(1, 0, 1).squeeze_dim::<2>(1);
        self.act.forward(self.dense.forward(cls))
    }
}

/// The ViT encoder: embeddings → layers → final LayerNorm (→ pooler).
#[derive(Module, Debug)]
pub struct ViTModel {
    /// Patch, CLS, mask and position embeddings.
    pub embeddings: ViTEmbeddings,
    /// The transformer layers.
    pub encoder: ViTEncoder,
    /// The final LayerNorm.
    pub layernorm: FusedLayerNorm,
    /// The pooler, present when built with `add_pooling_layer`.
    pub pooler: Option<ViTPooler>,
}

impl ViTModel {
    /// Creates a freshly initialised model. Nothing is checked first: for a config from outside
    /// the program, use [`ViTModel::try_new`], which refuses invalid and oversized configs
    /// before allocating.
    pub fn new(config: &ViTConfig, add_pooling_layer: bool, use_mask_token: bool, device: &Device) -> Self {
        Self {
            embeddings: ViTEmbeddings::new(config, use_mask_token, device),
            encoder: ViTEncoder::new(config, device),
            layernorm: init::layer_norm(config.hidden_size, config.layer_norm_eps, device),
            pooler: add_pooling_layer.then(|| ViTPooler::new(config, device)),
        }
    }

    /// [`ViTModel::new`] after validating `config` and checking that the model's f32 weights take
    /// at most `max_weight_bytes` (e.g. [`crate::size::DEFAULT_MAX_WEIGHT_BYTES`]), so that an absurd config
    /// is an error rather than an allocation failure.
    pub fn try_new(
        config: &ViTConfig,
        add_pooling_layer: bool,
        use_mask_token: bool,
        max_weight_bytes: u64,
        device: &Device,
    ) -> Result<Self> {
        config.validate()?;
        config.check_size_of(ModelKind::Base { add_pooling_layer, use_mask_token }, max_weight_bytes)?;
        Ok(Self::new(config, add_pooling_layer, use_mask_token, device))
    }

    /// Number of layers.
    pub fn num_layers(&self) -> usize {
        self.encoder.layer.len()
    }

    /// Number of attention heads per layer.
    pub fn num_heads(&self) -> usize {
        self.encoder.layer.first().map_or(0, |l| l.attention.attention.num_heads)
    }

    /// The last hidden state of `pixel_values` `[B, C, H, W]`, nothing else computed.
    pub fn forward(&self, pixel_values: Tensor<4>) -> Result<Tensor<3>> {
        Ok(self.forward_with(pixel_values, ViTForwardOptions::default())?.last_hidden_state)
    }

    /// A forward pass with optional inputs and extras.
    pub fn forward_with(&self, pixel_values: Tensor<4>, options: ViTForwardOptions) -> Result<ViTModelOutput> {
        let head_mask = options.head_mask.map(|m| m.per_layer(self.num_layers(), self.num_heads())).transpose()?;
        let embeddings =
            self.embeddings.forward(pixel_values, options.bool_masked_pos, options.interpolate_pos_encoding)?;
        let encoded = self.encoder.forward(
            embeddings,
            head_mask,
            options.output_attentions,
            options.output_hidden_states,
            options.stochastic_depth.as_ref(),
        );
        let last_hidden_state = self.layernorm.forward(encoded.last_hidden_state);
        let pooler_output = self.pooler.as_ref().map(|p| p.forward(last_hidden_state.clone()));
        Ok(ViTModelOutput {
            last_hidden_state,
            pooler_output,
            hidden_states: encoded.hidden_states,
            attentions: encoded.attentions,
        })
    }
}
