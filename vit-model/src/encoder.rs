//! The stack of transformer layers (HF `ViTEncoder`).

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::config::ViTConfig;
use crate::drop_path::{Branch, StochasticDepth};
use crate::layer::ViTLayer;

/// What the encoder returns: the last hidden state and, when asked for, every intermediate one.
#[derive(Debug, Clone)]
pub struct EncoderOutput {
    /// Output of the last layer, `[B, S, D]` (before the final LayerNorm).
    pub last_hidden_state: Tensor<3>,
    /// The embeddings and the output of every layer (`num_hidden_layers + 1` tensors).
    pub hidden_states: Option<Vec<Tensor<3>>>,
    /// The attention probabilities of every layer, `[B, H, S, S]`.
    pub attentions: Option<Vec<Tensor<4>>>,
}

/// `num_hidden_layers` pre-LayerNorm blocks; the field name mirrors HF's `encoder.layer.{i}`.
#[derive(Module, Debug)]
pub struct ViTEncoder {
    /// The layers, in order.
    pub layer: Vec<ViTLayer>,
}

impl ViTEncoder {
    /// Creates the layers of `config`.
    pub fn new(config: &ViTConfig, device: &Device) -> Self {
        Self { layer: (0..config.num_hidden_layers).map(|_| ViTLayer::new(config, device)).collect() }
    }

    /// Runs every layer; `head_mask` is `[layers, heads]`; `stochastic_depth` drops residual
    /// branches per sample (training only).
    pub fn forward(
        &self,
        mut hidden: Tensor<3>,
        head_mask: Option<Tensor<2>>,
        output_attentions: bool,
        output_hidden_states: bool,
        stochastic_depth: Option<&StochasticDepth>,
    ) -> EncoderOutput {
        let layers = self.layer.len();
        let batch = hidden.dims()[0];
        let device = hidden.device();
        let mut hidden_states = output_hidden_states.then(Vec::new);
        let mut attentions = output_attentions.then(Vec::new);
        for (i, layer) in self.layer.iter().enumerate() {
            if let Some(states) = hidden_states.as_mut() {
                states.push(hidden.clone());
            }
            let layer_mask = head_mask.as_ref().map(|m| m.clone().narrow(0, i, 1).squeeze_dim::<1>(0));
            let scales = [Branch::Attention, Branch::Mlp]
                .map(|branch| stochastic_depth.and_then(|sd| sd.branch_scale(i, layers, branch, batch, &device)));
            let (out, probs) = layer.forward(hidden, layer_mask, output_attentions, scales);
            hidden = out;
            if let (Some(all), Some(p)) = (attentions.as_mut(), probs) {
                all.push(p);
            }
        }
        if let Some(states) = hidden_states.as_mut() {
            states.push(hidden.clone());
        }
        EncoderOutput { last_hidden_state: hidden, hidden_states, attentions }
    }
}
