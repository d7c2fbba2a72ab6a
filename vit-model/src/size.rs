//! The size of the model a [`ViTConfig`] describes, computed from the config alone: parameter
//! counts, the weight shapes under their Hugging Face keys, f32 weight and activation bytes, and
//! the check every loading path makes before it allocates a model.
//!
//! All arithmetic is checked: a count that does not fit in a `u64` is `None`, never a wrapped
//! value.

use std::collections::BTreeMap;

use crate::architecture::ModelKind;
use crate::config::ViTConfig;
use crate::error::{Result, ViTError};

/// The default limit on a model's f32 weights: 16 GiB (ViT-H/14, the largest ViT on the Hub,
/// has 2.5 GiB).
pub const DEFAULT_MAX_WEIGHT_BYTES: u64 = 16 << 30;

/// Bytes of one f32 value.
const F32_BYTES: u64 = 4;

/// One part of a model, for size reports: its name, parameter count and the fields that make it.
struct Part {
    name: &'static str,
    params: Option<u64>,
    fields: String,
}

fn mul(factors: &[usize]) -> Option<u64> {
    factors.iter().try_fold(1u64, |acc, &x| acc.checked_mul(x as u64))
}

fn sum(terms: &[Option<u64>]) -> Option<u64> {
    terms.iter().try_fold(0u64, |acc, &t| acc.checked_add(t?))
}

fn gib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}

impl ViTConfig {
    /// Parameters of one encoder layer: `4·D² + 2·D·M + M + 6·D (+ 3·D with qkv_bias)`.
    fn layer_parameter_count(&self) -> Option<u64> {
        let (d, m) = (self.hidden_size, self.intermediate_size);
        sum(&[
            mul(&[4, d, d]),                       // query, key, value, attention output
            mul(&[2, d, m]),                       // intermediate and output dense
            mul(&[m]),                             // intermediate bias
            mul(&[6, d]),                          // attention output and output biases, two LayerNorms
            mul(&[3 * self.qkv_bias as usize, d]), // query, key, value biases
        ])
    }

    /// The parts of the model of `kind`, in the order of the encoder.
    fn parts(&self, kind: ModelKind) -> Vec<Part> {
        let (d, c, p) = (self.hidden_size, self.num_channels, self.patch_size);
        let tokens = mul(&[self.grid_size(), self.grid_size()]).and_then(|n| n.checked_add(1));
        let mut parts = vec![
            Part {
                name: "patch embedding",
                params: sum(&[mul(&[d, c, p, p]), mul(&[d])]),
                fields: format!("num_channels = {c}, patch_size = {p}, hidden_size = {d}"),
            },
            Part {
                name: "CLS and mask tokens, position embeddings",
                params: sum(&[
                    mul(&[d]),
                    mul(&[kind.has_mask_token() as usize, d]),
                    tokens.and_then(|t| t.checked_mul(d as u64)),
                ]),
                fields: format!("image_size = {}, patch_size = {p}, hidden_size = {d}", self.image_size),
            },
            Part {
                name: "encoder layers",
                params: self.layer_parameter_count().and_then(|n| n.checked_mul(self.num_hidden_layers as u64)),
                fields: format!(
                    "num_hidden_layers = {}, hidden_size = {d}, intermediate_size = {}",
                    self.num_hidden_layers, self.intermediate_size
                ),
            },
            Part { name: "final LayerNorm", params: mul(&[2, d]), fields: format!("hidden_size = {d}") },
        ];
        if kind.has_pooler() {
            let out = self.pooler_output_size();
            parts.push(Part {
                name: "pooler",
                params: sum(&[mul(&[d, out]), mul(&[out])]),
                fields: format!("hidden_size = {d}, pooler_output_size = {out}"),
            });
        }
        match kind {
            ModelKind::ImageClassification => {
                let labels = self.num_labels();
                parts.push(Part {
                    name: "classifier",
                    params: sum(&[mul(&[d, labels]), mul(&[labels])]),
                    fields: format!("hidden_size = {d}, num_labels = {labels}"),
                });
            }
            ModelKind::MaskedImageModeling => {
                let s = self.encoder_stride;
                parts.push(Part {
                    name: "SimMIM decoder",
                    params: sum(&[mul(&[d, s, s, c]), mul(&[s, s, c])]),
                    fields: format!("encoder_stride = {s}, num_channels = {c}, hidden_size = {d}"),
                });
            }
            ModelKind::Base { .. } => {}
        }
        parts
    }

    /// The exact number of parameters of `ViTForImageClassification` for this config (HF's
    /// `sum(p.numel() for p in model.parameters())`); `None` when it does not fit in a `u64`.
    pub fn parameter_count(&self) -> Option<u64> {
        self.parameter_count_of(ModelKind::ImageClassification)
    }

    /// The exact number of parameters of the model of `kind` for this config; `None` when it
    /// does not fit in a `u64`.
    pub fn parameter_count_of(&self, kind: ModelKind) -> Option<u64> {
        self.parts(kind).iter().try_fold(0u64, |acc, part| acc.checked_add(part.params?))
    }

    /// Bytes of the f32 weights of `ViTForImageClassification`: `4 · parameter_count()`.
    pub fn weight_bytes(&self) -> Option<u64> {
        self.weight_bytes_of(ModelKind::ImageClassification)
    }

    /// Bytes of the f32 weights of the model of `kind`: `4 · parameter_count_of(kind)`.
    pub fn weight_bytes_of(&self, kind: ModelKind) -> Option<u64> {
        self.parameter_count_of(kind)?.checked_mul(F32_BYTES)
    }

    /// An estimate of the f32 activation memory of a training forward pass over `batch` images
    /// at `image_size`: what the pass keeps for the backward pass. With `B = batch`,
    /// `C = num_channels`, `I = image_size`, `S = (I / patch_size)² + 1` tokens, `D = hidden_size`,
    /// `M = intermediate_size`, `H = num_attention_heads` and `L = num_hidden_layers`:
    ///
    /// `4 · B · (C·I² + 4·S·D + L·(S·(10·D + 2·M) + 2·H·S²))` bytes
    ///
    /// — the input; the patch embeddings, the tokens with CLS, their sum with the position
    /// embeddings and the final LayerNorm (`4·S·D`); and per layer the two LayerNorm outputs,
    /// query, key, value, the attention context and output, the output dense and the two
    /// residual sums (`10·S·D`), the intermediate dense before and after its activation
    /// (`2·S·M`), and the attention scores and probabilities (`2·H·S²`). Weights, gradients and
    /// optimiser state are not included (see [`ViTConfig::weight_bytes`]); inference without
    /// gradients holds about one layer's share at a time, so this bounds it from above. `None`
    /// when it does not fit in a `u64`.
    pub fn activation_bytes(&self, batch: usize) -> Option<u64> {
        let (d, m, h, l) = (self.hidden_size, self.intermediate_size, self.num_attention_heads, self.num_hidden_layers);
        let s = usize::try_from(mul(&[self.grid_size(), self.grid_size()])?.checked_add(1)?).ok()?;
        let per_layer = sum(&[mul(&[s, 10, d]), mul(&[s, 2, m]), mul(&[2, h, s, s])])?;
        let per_image = sum(&[
            mul(&[self.num_channels, self.image_size, self.image_size]),
            mul(&[4, s, d]),
            per_layer.checked_mul(l as u64),
        ])?;
        per_image.checked_mul(batch as u64)?.checked_mul(F32_BYTES)
    }

    /// The shape of every weight of the model of `kind`, in PyTorch layout, under its Hugging
    /// Face key — what `save_pretrained` writes and `from_pretrained` expects. Makes one entry
    /// per weight (16 per layer): check the size ([`ViTConfig::check_size_of`]) first.
    pub fn parameter_shapes(&self, kind: ModelKind) -> BTreeMap<String, Vec<usize>> {
        let (d, m, c, p) = (self.hidden_size, self.intermediate_size, self.num_channels, self.patch_size);
        let prefix = kind.prefix();
        let mut shapes = BTreeMap::new();
        let mut add = |key: String, shape: Vec<usize>| {
            shapes.insert(key, shape);
        };
        let e = format!("{prefix}embeddings");
        add(format!("{e}.cls_token"), vec![1, 1, d]);
        if kind.has_mask_token() {
            add(format!("{e}.mask_token"), vec![1, 1, d]);
        }
        add(format!("{e}.position_embeddings"), vec![1, self.num_patches().saturating_add(1), d]);
        add(format!("{e}.patch_embeddings.projection.weight"), vec![d, c, p, p]);
        add(format!("{e}.patch_embeddings.projection.bias"), vec![d]);
        for i in 0..self.num_hidden_layers {
            let layer = format!("{prefix}encoder.layer.{i}");
            for proj in ["query", "key", "value"] {
                add(format!("{layer}.attention.attention.{proj}.weight"), vec![d, d]);
                if self.qkv_bias {
                    add(format!("{layer}.attention.attention.{proj}.bias"), vec![d]);
                }
            }
            add(format!("{layer}.attention.output.dense.weight"), vec![d, d]);
            add(format!("{layer}.attention.output.dense.bias"), vec![d]);
            add(format!("{layer}.intermediate.dense.weight"), vec![m, d]);
            add(format!("{layer}.intermediate.dense.bias"), vec![m]);
            add(format!("{layer}.output.dense.weight"), vec![d, m]);
            add(format!("{layer}.output.dense.bias"), vec![d]);
            for norm in ["layernorm_before", "layernorm_after"] {
                add(format!("{layer}.{norm}.weight"), vec![d]);
                add(format!("{layer}.{norm}.bias"), vec![d]);
            }
        }
        add(format!("{prefix}layernorm.weight"), vec![d]);
        add(format!("{prefix}layernorm.bias"), vec![d]);
        if kind.has_pooler() {
            let out = self.pooler_output_size();
            add(format!("{prefix}pooler.dense.weight"), vec![out, d]);
            add(format!("{prefix}pooler.dense.bias"), vec![out]);
        }
        match kind {
            ModelKind::ImageClassification => {
                add("classifier.weight".into(), vec![self.num_labels(), d]);
                add("classifier.bias".into(), vec![self.num_labels()]);
            }
            ModelKind::MaskedImageModeling => {
                let out = self.encoder_stride.saturating_mul(self.encoder_stride).saturating_mul(c);
                add("decoder.0.weight".into(), vec![out, d, 1, 1]);
                add("decoder.0.bias".into(), vec![out]);
            }
            ModelKind::Base { .. } => {}
        }
        shapes
    }

    /// Checks that every model class this config can build (the largest of them) has at most
    /// `max_weight_bytes` of f32 weights, before anything is allocated; see
    /// [`ViTConfig::check_size_of`].
    pub fn check_size(&self, max_weight_bytes: u64) -> Result<()> {
        let largest = ModelKind::ALL
            .into_iter()
            .max_by_key(|&kind| self.parameter_count_of(kind).map_or(u128::MAX, u128::from))
            .expect("ModelKind::ALL is not empty");
        self.check_size_of(largest, max_weight_bytes)
    }

    /// Checks that the model of `kind` has at most `max_weight_bytes` of f32 weights, before
    /// anything is allocated. The error ([`ViTError::ModelTooLarge`]) gives the estimate in GiB
    /// and the largest parts with the config fields that make them.
    pub fn check_size_of(&self, kind: ModelKind, max_weight_bytes: u64) -> Result<()> {
        let params = self.parameter_count_of(kind);
        if params.and_then(|n| n.checked_mul(F32_BYTES)).is_some_and(|b| b <= max_weight_bytes) {
            return Ok(());
        }
        // GiB of f32 weights, in f64: the byte count itself may not fit in a u64.
        let gib_of = |n: u64| n as f64 * F32_BYTES as f64 / (1u64 << 30) as f64;
        let mut parts = self.parts(kind);
        parts.sort_by_key(|part| std::cmp::Reverse(part.params.map_or(u128::MAX, u128::from)));
        let total = params.map_or(f64::INFINITY, gib_of);
        let largest: Vec<String> = parts
            .iter()
            .filter(|part| part.params.is_none_or(|n| gib_of(n) >= total / 100.0))
            .map(|part| match part.params {
                Some(n) => format!("{} {:.2} GiB ({n} parameters: {})", part.name, gib_of(n), part.fields),
                None => format!("{} more than 2^64 parameters ({})", part.name, part.fields),
            })
            .collect();
        let size = match params {
            Some(n) => format!("{:.2} GiB of f32 weights ({n} parameters)", gib_of(n)),
            None => "more than 2^64 parameters".to_string(),
        };
        Err(ViTError::ModelTooLarge(format!(
            "{} for this config would have {size}, over the limit of {:.2} GiB ({max_weight_bytes} bytes; \
             raise `LoadOptions::max_weight_bytes` to allow it). Largest parts: {}",
            kind.architecture(),
            gib(max_weight_bytes),
            largest.join("; ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vit_base_counts_as_transformers() {
        let config = ViTConfig::base().with_num_labels(1000);
        assert_eq!(config.parameter_count(), Some(86_567_656));
        assert_eq!(config.weight_bytes(), Some(4 * 86_567_656));
        let shapes = config.parameter_shapes(ModelKind::ImageClassification);
        let from_shapes: u64 = shapes.values().map(|s| s.iter().product::<usize>() as u64).sum();
        assert_eq!(from_shapes, 86_567_656);
        assert_eq!(shapes.len(), 12 * 16 + 4 + 2 + 2);
    }

    #[test]
    fn counts_never_wrap() {
        let config = ViTConfig { num_hidden_layers: usize::MAX, ..ViTConfig::base() };
        assert_eq!(config.parameter_count(), None);
        assert_eq!(config.activation_bytes(1), None);
        let err = config.check_size(DEFAULT_MAX_WEIGHT_BYTES).unwrap_err().to_string();
        assert!(err.contains("more than 2^64") && err.contains("num_hidden_layers"), "{err}");
    }

    #[test]
    fn activation_estimate_follows_the_formula() {
        let config = ViTConfig::base();
        let (s, d, m, h, l) = (197u64, 768u64, 3072u64, 12u64, 12u64);
        let per_image = 3 * 224 * 224 + 4 * s * d + l * (s * (10 * d + 2 * m) + 2 * h * s * s);
        assert_eq!(config.activation_bytes(8), Some(4 * 8 * per_image));
        assert_eq!(config.activation_bytes(0), Some(0));
    }

    #[test]
    fn too_large_names_the_fields() {
        let config = ViTConfig { hidden_size: 1_000_000_000, num_attention_heads: 1, ..ViTConfig::base() };
        let err = config.check_size_of(ModelKind::ImageClassification, DEFAULT_MAX_WEIGHT_BYTES).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, ViTError::ModelTooLarge(_)), "{message}");
        assert!(message.contains("GiB") && message.contains("hidden_size = 1000000000"), "{message}");
        assert!(message.contains("encoder layers") && message.contains("16.00 GiB"), "{message}");

        let config = ViTConfig { num_hidden_layers: 1_000_000, ..ViTConfig::base() };
        let message = config.check_size(DEFAULT_MAX_WEIGHT_BYTES).unwrap_err().to_string();
        assert!(message.contains("num_hidden_layers = 1000000") && message.contains("26404"), "{message}");
        // A limit is a limit: ViT-B is 0.32 GiB.
        assert!(ViTConfig::base().check_size(1 << 30).is_ok());
        assert!(ViTConfig::base().check_size(1 << 20).is_err());
    }
}
