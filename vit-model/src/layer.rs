//! One pre-LayerNorm transformer block (HF `ViTLayer`, `ViTIntermediate`, `ViTOutput`).

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig};
use burn::tensor::{Device, Tensor};

use crate::activation::HiddenAct;
use crate::attention::ViTAttention;
use crate::config::ViTConfig;
use crate::fused_layers::{FusedLayerNorm, FusedLinear};
use crate::init;

/// The first MLP projection and its activation.
#[derive(Module, Debug)]
pub struct ViTIntermediate {
    /// `hidden_size` → `intermediate_size`.
    pub dense: FusedLinear,
    /// The activation (`hidden_act`).
    #[module(skip)]
    pub act: HiddenAct,
}

impl ViTIntermediate {
    /// Creates the first MLP projection of `config`.
    pub fn new(config: &ViTConfig, device: &Device) -> Self {
        let (d, m) = (config.hidden_size, config.intermediate_size);
        Self { dense: init::linear(d, m, true, config.initializer_range, device), act: config.hidden_act }
    }

    /// `[B, S, hidden_size]` → `[B, S, intermediate_size]`.
    pub fn forward(&self, hidden: Tensor<3>) -> Tensor<3> {
        self.act.forward(self.dense.forward(hidden))
    }
}

/// The second MLP projection and the residual around the MLP.
#[derive(Module, Debug)]
pub struct ViTOutput {
    /// `intermediate_size` → `hidden_size`.
    pub dense: FusedLinear,
    /// Dropout after the projection.
    pub dropout: Dropout,
}

impl ViTOutput {
    /// Creates the second MLP projection of `config`.
    pub fn new(config: &ViTConfig, device: &Device) -> Self {
        let (d, m) = (config.hidden_size, config.intermediate_size);
        Self {
            dense: init::linear(m, d, true, config.initializer_range, device),
            dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
        }
    }

    /// `dropout(dense(hidden)) + input_tensor`.
    pub fn forward(&self, hidden: Tensor<3>, input_tensor: Tensor<3>) -> Tensor<3> {
        self.project(hidden) + input_tensor
    }

    /// `dropout(dense(hidden))`, the MLP branch before its residual sum.
    pub fn project(&self, hidden: Tensor<3>) -> Tensor<3> {
        self.dropout.forward(self.dense.forward(hidden))
    }
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
    pub layernorm_before: FusedLayerNorm,
    /// LayerNorm before the MLP.
    pub layernorm_after: FusedLayerNorm,
}

impl ViTLayer {
    /// Creates one layer of `config`.
    pub fn new(config: &ViTConfig, device: &Device) -> Self {
        let d = config.hidden_size;
        Self {
            attention: ViTAttention::new(config, device),
            intermediate: ViTIntermediate::new(config, device),
            output: ViTOutput::new(config, device),
            layernorm_before: init::layer_norm(d, config.layer_norm_eps, device),
            layernorm_after: init::layer_norm(d, config.layer_norm_eps, device),
        }
    }

    /// `[B, S, D]` → (`[B, S, D]`, the attention probabilities when `output_attentions`).
    /// `drop_path` holds the per-sample `[B, 1, 1]` factors of the attention and MLP branches
    /// under stochastic depth (training only; see [`crate::drop_path`]).
    pub fn forward(
        &self,
        hidden: Tensor<3>,
        head_mask: Option<Tensor<1>>,
        output_attentions: bool,
        drop_path: [Option<Tensor<3>>; 2],
    ) -> (Tensor<3>, Option<Tensor<4>>) {
        let [attn_scale, mlp_scale] = drop_path;
        let (attn, probs) =
            self.attention.forward(self.layernorm_before.forward(hidden.clone()), head_mask, output_attentions);
        let hidden = match attn_scale {
            Some(scale) => attn * scale + hidden,
            None => attn + hidden,
        };
        let mlp = self.intermediate.forward(self.layernorm_after.forward(hidden.clone()));
        let out = match mlp_scale {
            Some(scale) => self.output.project(mlp) * scale + hidden,
            None => self.output.forward(mlp, hidden),
        };
        (out, probs)
    }
}
