//! One pre-LayerNorm transformer block (HF `ViTLayer`, `ViTIntermediate`, `ViTOutput`).

use crate::kernels::{layer_norm, linear};
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, LayerNorm, Linear};
use burn::tensor::{Device, Tensor};

use crate::activation::HiddenAct;
use crate::attention::ViTAttention;
use crate::config::ViTConfig;
use crate::init;

/// The first MLP projection and its activation.
#[derive(Module, Debug)]
pub struct ViTIntermediate {
    /// `hidden_size` → `intermediate_size`.
    pub dense: Linear,
    /// The activation (`hidden_act`).
    #[module(skip)]
    pub act: HiddenAct,
}

/// The second MLP projection (the residual is added by the layer).
#[derive(Module, Debug)]
pub struct ViTOutput {
    /// `intermediate_size` → `hidden_size`.
    pub dense: Linear,
    /// Dropout after the projection.
    pub dropout: Dropout,
}

/// `h = h + attention(layernorm_before(h)); h = h + mlp(layernorm_after(h))`.
#[derive(Module, Debug)]
pub struct ViTLayer {
    /// Self-attention and its output projection.
    pub attention: ViTAttention,
    /// MLP, first half.
    pub intermediate: ViTIntermediate,
    /// MLP, second half.
    pub output: ViTOutput,
    /// LayerNorm before attention.
    pub layernorm_before: LayerNorm,
    /// LayerNorm before the MLP.
    pub layernorm_after: LayerNorm,
    /// Both LayerNorms' epsilon (`layer_norm_eps`).
    #[module(skip)]
    pub layer_norm_eps: f64,
}

impl ViTLayer {
    /// Creates one layer of `config`.
    pub fn new(config: &ViTConfig, device: &Device) -> Self {
        let (d, m, std) = (
            config.hidden_size,
            config.intermediate_size,
            config.initializer_range,
        );
        Self {
            attention: ViTAttention::new(config, device),
            intermediate: ViTIntermediate {
                dense: init::linear(d, m, true, std, device),
                act: config.hidden_act,
            },
            output: ViTOutput {
                dense: init::linear(m, d, true, std, device),
                dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
            },
            layernorm_before: init::layer_norm(d, config.layer_norm_eps, device),
            layernorm_after: init::layer_norm(d, config.layer_norm_eps, device),
            layer_norm_eps: config.layer_norm_eps,
        }
    }

    /// `[B, S, D]` → (`[B, S, D]`, the attention probabilities when `output_attentions`).
    pub fn forward(
        &self,
        hidden: Tensor<3>,
        head_mask: Option<Tensor<1>>,
        output_attentions: bool,
    ) -> (Tensor<3>, Option<Tensor<4>>) {
        let (attn, probs) = self.attention.forward(
            layer_norm(&self.layernorm_before, self.layer_norm_eps, hidden.clone()),
            head_mask,
            output_attentions,
        );
        let hidden = attn + hidden;
        let mlp = self.intermediate.act.forward(linear(
            &self.intermediate.dense,
            layer_norm(&self.layernorm_after, self.layer_norm_eps, hidden.clone()),
        ));
        let out = self.output.dropout.forward(linear(&self.output.dense, mlp)) + hidden;
        (out, probs)
    }
}
