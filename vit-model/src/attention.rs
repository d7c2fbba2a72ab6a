//! Multi-head self-attention (HF `ViTSelfAttention`, `ViTSelfOutput`, `ViTAttention`).

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor};

use crate::config::ViTConfig;
use crate::fused_layers::FusedLinear;
use crate::init;
use crate::{kernels, precision};

/// Scaled dot-product self-attention over all tokens, with separate q, k, v projections.
#[derive(Module, Debug)]
pub struct ViTSelfAttention {
    /// Query projection.
    pub query: FusedLinear,
    /// Key projection.
    pub key: FusedLinear,
    /// Value projection.
    pub value: FusedLinear,
    /// Dropout on the attention probabilities.
    pub dropout: Dropout,
    /// Number of heads.
    pub num_heads: usize,
    /// Width of one head.
    pub head_dim: usize,
}

impl ViTSelfAttention {
    /// Creates the projections of `config`.
    pub fn new(config: &ViTConfig, device: &Device) -> Self {
        let d = config.hidden_size;
        let std = config.initializer_range;
        Self {
            query: init::linear(d, d, config.qkv_bias, std, device),
            key: init::linear(d, d, config.qkv_bias, std, device),
            value: init::linear(d, d, config.qkv_bias, std, device),
            dropout: DropoutConfig::new(config.attention_probs_dropout_prob).init(),
            num_heads: config.num_attention_heads,
            head_dim: config.head_dim(),
        }
    }

    /// `[B, S, D]` → (`[B, S, D]`, the probabilities `[B, H, S, S]` when `output_attentions`).
    ///
    /// `head_mask` (`[H]`) multiplies each head's probabilities after the softmax. Without a head
    /// mask, returned probabilities or attention dropout, the backend's fused attention is used.
    pub fn forward(
        &self,
        hidden: Tensor<3>,
        head_mask: Option<Tensor<1>>,
        output_attentions: bool,
    ) -> (Tensor<3>, Option<Tensor<4>>) {
        let [b, s, d] = hidden.dims();
        let heads = |t: Tensor<3>| t.reshape([b, s, self.num_heads, self.head_dim]).swap_dims(1, 2);
        let q = heads(self.query.forward(hidden.clone()));
        let k = heads(self.key.forward(hidden.clone()));
        let v = heads(self.value.forward(hidden));
        let scale = (self.head_dim as f64).powf(-0.5);

        let eager = output_attentions || head_mask.is_some() || self.dropout.prob > 0.0;
        let (context, probs) = if eager {
            let scores = precision::matmul(q, k.swap_dims(2, 3)).mul_scalar(scale);
            let mut probs = self.dropout.forward(softmax(scores, 3));
            if let Some(mask) = head_mask {
                probs = probs * mask.reshape([1, self.num_heads, 1, 1]);
            }
            (precision::matmul(probs.clone(), v), output_attentions.then_some(probs))
        } else {
            (kernels::attention(q, k, v, scale), None)
        };
        (context.swap_dims(1, 2).reshape([b, s, d]), probs)
    }
}

/// The output projection of the attention block (the residual is added by the layer).
#[derive(Module, Debug)]
pub struct ViTSelfOutput {
    /// Output projection.
    pub dense: FusedLinear,
    /// Dropout after the projection.
    pub dropout: Dropout,
}

impl ViTSelfOutput {
    /// Creates the output projection of `config`.
    pub fn new(config: &ViTConfig, device: &Device) -> Self {
        let d = config.hidden_size;
        Self {
            dense: init::linear(d, d, true, config.initializer_range, device),
            dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
        }
    }

    /// `[B, S, D]` → `[B, S, D]`: projection and dropout, no residual.
    pub fn forward(&self, hidden: Tensor<3>) -> Tensor<3> {
        self.dropout.forward(self.dense.forward(hidden))
    }
}

/// Self-attention followed by its output projection; field names mirror HF's keys
/// (`attention.attention.query`, `attention.output.dense`).
#[derive(Module, Debug)]
pub struct ViTAttention {
    /// The self-attention.
    pub attention: ViTSelfAttention,
    /// The output projection.
    pub output: ViTSelfOutput,
}

impl ViTAttention {
    /// Creates the attention block of `config`.
    pub fn new(config: &ViTConfig, device: &Device) -> Self {
        Self { attention: ViTSelfAttention::new(config, device), output: ViTSelfOutput::new(config, device) }
    }

    /// `[B, S, D]` → (`[B, S, D]`, optional probabilities).
    pub fn forward(
        &self,
        hidden: Tensor<3>,
        head_mask: Option<Tensor<1>>,
        output_attentions: bool,
    ) -> (Tensor<3>, Option<Tensor<4>>) {
        let (context, probs) = self.attention.forward(hidden, head_mask, output_attentions);
        (self.output.forward(context), probs)
    }
}
