//! `[model]`: an HF model to start from, or an architecture to train from scratch.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use vit_model::ViTConfig;

/// An architecture to train from scratch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Preset {
    /// ViT-Ti/16: width 192, 12 layers, 3 heads.
    #[serde(rename = "vit-tiny")]
    Tiny,
    /// ViT-S/16: width 384, 12 layers, 6 heads.
    #[serde(rename = "vit-small")]
    Small,
    /// ViT-B/16: width 768, 12 layers, 12 heads.
    #[serde(rename = "vit-base")]
    Base,
    /// ViT-L/16: width 1024, 24 layers, 16 heads.
    #[serde(rename = "vit-large")]
    Large,
}

impl Preset {
    /// The preset's HF configuration (224 px, patch 16).
    pub fn config(self) -> ViTConfig {
        match self {
            Preset::Tiny => ViTConfig::tiny(),
            Preset::Small => ViTConfig::small(),
            Preset::Base => ViTConfig::base(),
            Preset::Large => ViTConfig::large(),
        }
    }
}

/// `[model]`: an HF model directory to start from, or an architecture.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// An HF model to fine-tune: a directory (`config.json` + `model.safetensors`) or a Hub id
    /// `owner/name[@revision]`, fetched into Hugging Face's cache.
    pub pretrained: Option<PathBuf>,
    /// An architecture to train from scratch: `vit-tiny`, `vit-small`, `vit-base`, `vit-large`.
    pub preset: Option<Preset>,
    /// Image side the model is made for (default: the data's image size).
    pub image_size: Option<usize>,
    /// Patch side (default 16).
    pub patch_size: Option<usize>,
    /// Image channels: 1 (grayscale) or 3 (RGB, the default). A pretrained model's comes from its
    /// `config.json`. With 1, colour images are converted as Pillow's `convert("L")`.
    pub num_channels: Option<usize>,
    /// Overrides of the preset's width.
    pub hidden_size: Option<usize>,
    /// Overrides of the preset's depth.
    pub num_hidden_layers: Option<usize>,
    /// Overrides of the preset's heads.
    pub num_attention_heads: Option<usize>,
    /// Overrides of the preset's MLP width.
    pub intermediate_size: Option<usize>,
    /// Overrides of the preset's activation.
    pub hidden_act: Option<String>,
    /// Dropout after embeddings and dense outputs.
    pub hidden_dropout_prob: Option<f64>,
    /// Dropout on attention probabilities.
    pub attention_probs_dropout_prob: Option<f64>,
    /// Stochastic depth (timm's `drop_path_rate`): the last layer's residual branches are dropped
    /// per sample with this probability, earlier layers linearly less; training only, no weights.
    #[serde(default)]
    pub drop_path_rate: f64,
    /// Whether q, k, v have biases.
    pub qkv_bias: Option<bool>,
    /// Initialisation std.
    pub initializer_range: Option<f64>,
    /// LayerNorm epsilon.
    pub layer_norm_eps: Option<f64>,
    /// SimMIM decoder stride (default: the patch size).
    pub encoder_stride: Option<usize>,
    /// Number of labels (default: the dataset's classes).
    pub num_labels: Option<usize>,
    /// Re-initialise checkpoint weights whose shapes differ (e.g. another number of classes).
    #[serde(default)]
    pub ignore_mismatched_sizes: bool,
    /// Resize position embeddings when the data's image size differs from the model's.
    #[serde(default)]
    pub interpolate_pos_encoding: bool,
    /// The largest model (float32 weights, GiB) a run may build or load; a config beyond it is an
    /// error with the estimate, before anything is allocated.
    #[serde(default = "default_max_weight_gib")]
    pub max_weight_gib: f64,
}

fn default_max_weight_gib() -> f64 {
    (vit_model::DEFAULT_MAX_WEIGHT_BYTES >> 30) as f64
}

impl ModelSection {
    /// `max_weight_gib` in bytes.
    pub fn max_weight_bytes(&self) -> u64 {
        (self.max_weight_gib * (1u64 << 30) as f64) as u64
    }

    /// The architecture fields that are set: they shape a model from scratch and cannot apply to
    /// a pretrained one.
    pub fn architecture_fields_set(&self) -> Vec<&'static str> {
        let set = [
            ("image_size", self.image_size.is_some()),
            ("patch_size", self.patch_size.is_some()),
            ("num_channels", self.num_channels.is_some()),
            ("hidden_size", self.hidden_size.is_some()),
            ("num_hidden_layers", self.num_hidden_layers.is_some()),
            ("num_attention_heads", self.num_attention_heads.is_some()),
            ("intermediate_size", self.intermediate_size.is_some()),
            ("hidden_act", self.hidden_act.is_some()),
            ("qkv_bias", self.qkv_bias.is_some()),
            ("initializer_range", self.initializer_range.is_some()),
            ("layer_norm_eps", self.layer_norm_eps.is_some()),
            ("encoder_stride", self.encoder_stride.is_some()),
        ];
        set.into_iter().filter(|(_, on)| *on).map(|(name, _)| name).collect()
    }
}
