//! `ViTConfig`: the Hugging Face `ViTConfig`, read from and written to `config.json`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::activation::HiddenAct;
use crate::architecture::ModelKind;
use crate::error::{Result, ViTError};

/// The largest `num_labels` a `config.json` may give (ImageNet-21k has 21843).
pub const MAX_NUM_LABELS: usize = 1 << 20;

/// How the classification loss is computed, as Hugging Face's `problem_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemType {
    /// Mean squared error on the logits.
    Regression,
    /// Cross-entropy over class indices.
    SingleLabelClassification,
    /// Binary cross-entropy with logits on multi-hot targets.
    MultiLabelClassification,
}

/// The configuration of a Vision Transformer, field for field Hugging Face's `ViTConfig`.
///
/// Defaults are HF's (ViT-B/16 at 224 pixels). Fields of `config.json` that this struct does not
/// know are kept in [`ViTConfig::extra`] and written back unchanged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ViTConfig {
    /// Width of the token embeddings. Default 768.
    pub hidden_size: usize,
    /// Number of encoder layers. Default 12.
    pub num_hidden_layers: usize,
    /// Number of attention heads per layer. Default 12.
    pub num_attention_heads: usize,
    /// Width of the MLP inside each layer. Default 3072.
    pub intermediate_size: usize,
    /// Activation of the MLP. Default "gelu" (the erf form).
    pub hidden_act: HiddenAct,
    /// Dropout after the embeddings and each dense output. Default 0.0.
    pub hidden_dropout_prob: f64,
    /// Dropout on the attention probabilities. Default 0.0.
    pub attention_probs_dropout_prob: f64,
    /// Standard deviation of the truncated-normal weight initialisation. Default 0.02.
    pub initializer_range: f64,
    /// Epsilon of every LayerNorm. Default 1e-12.
    pub layer_norm_eps: f64,
    /// Side of the (square) training image in pixels. Default 224.
    pub image_size: usize,
    /// Side of a patch in pixels. Default 16.
    pub patch_size: usize,
    /// Number of image channels. Default 3.
    pub num_channels: usize,
    /// Whether query, key and value projections have a bias. Default true.
    pub qkv_bias: bool,
    /// Upsampling factor of the SimMIM decoder. Default 16.
    pub encoder_stride: usize,
    /// Width of the pooler output; `None` means `hidden_size`.
    pub pooler_output_size: Option<usize>,
    /// Activation of the pooler. Default "tanh".
    pub pooler_act: HiddenAct,
    /// Class index → label name. Its length is the number of labels.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub id2label: BTreeMap<usize, String>,
    /// Label name → class index.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub label2id: BTreeMap<String, usize>,
    /// How the classification loss is computed; inferred from labels when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem_type: Option<ProblemType>,
    /// Model classes this checkpoint was saved from, e.g. `["ViTForImageClassification"]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub architectures: Option<Vec<String>>,
    /// Always "vit".
    pub model_type: String,
    /// Every other field of `config.json`, kept as it was.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Default for ViTConfig {
    fn default() -> Self {
        Self {
            hidden_size: 768,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            intermediate_size: 3072,
            hidden_act: HiddenAct::Gelu,
            hidden_dropout_prob: 0.0,
            attention_probs_dropout_prob: 0.0,
            initializer_range: 0.02,
            layer_norm_eps: 1e-12,
            image_size: 224,
            patch_size: 16,
            num_channels: 3,
            qkv_bias: true,
            encoder_stride: 16,
            pooler_output_size: None,
            pooler_act: HiddenAct::Tanh,
            id2label: BTreeMap::new(),
            label2id: BTreeMap::new(),
            problem_type: None,
            architectures: None,
            model_type: "vit".to_string(),
            extra: Map::new(),
        }
    }
}

impl ViTConfig {
    /// ViT-Ti/16 (hidden 192, 12 layers, 3 heads, MLP 768).
    pub fn tiny() -> Self {
        Self { hidden_size: 192, num_attention_heads: 3, intermediate_size: 768, ..Self::default() }
    }

    /// ViT-S/16 (hidden 384, 12 layers, 6 heads, MLP 1536).
    pub fn small() -> Self {
        Self { hidden_size: 384, num_attention_heads: 6, intermediate_size: 1536, ..Self::default() }
    }

    /// ViT-B/16 (hidden 768, 12 layers, 12 heads, MLP 3072): HF's default.
    pub fn base() -> Self {
        Self::default()
    }

    /// ViT-L/16 (hidden 1024, 24 layers, 16 heads, MLP 4096).
    pub fn large() -> Self {
        Self {
            hidden_size: 1024,
            num_hidden_layers: 24,
            num_attention_heads: 16,
            intermediate_size: 4096,
            ..Self::default()
        }
    }

    /// Number of labels: the length of `id2label`, or 2 (HF's default) when there is none.
    pub fn num_labels(&self) -> usize {
        if self.id2label.is_empty() { 2 } else { self.id2label.len() }
    }

    /// Sets `num_labels` generic labels `LABEL_i`, as HF does.
    pub fn with_num_labels(mut self, num_labels: usize) -> Self {
        self.set_labels((0..num_labels).map(|i| format!("LABEL_{i}")).collect());
        self
    }

    /// Sets the label names; class `i` is `labels[i]`.
    pub fn with_labels(mut self, labels: Vec<String>) -> Self {
        self.set_labels(labels);
        self
    }

    fn set_labels(&mut self, labels: Vec<String>) {
        self.id2label = labels.iter().cloned().enumerate().collect();
        self.label2id = labels.into_iter().enumerate().map(|(i, l)| (l, i)).collect();
    }

    /// Label names in class order.
    pub fn labels(&self) -> Vec<String> {
        if self.id2label.is_empty() {
            (0..self.num_labels()).map(|i| format!("LABEL_{i}")).collect()
        } else {
            self.id2label.values().cloned().collect()
        }
    }

    /// Width of the pooler output.
    pub fn pooler_output_size(&self) -> usize {
        self.pooler_output_size.unwrap_or(self.hidden_size)
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads.max(1)
    }

    /// Number of patches along each side of a training image.
    pub fn grid_size(&self) -> usize {
        self.image_size / self.patch_size.max(1)
    }

    /// Number of patch tokens of a training image (without the CLS token).
    pub fn num_patches(&self) -> usize {
        self.grid_size() * self.grid_size()
    }

    /// Checks that the configuration describes a buildable model.
    pub fn validate(&self) -> Result<()> {
        let err = |m: String| Err(ViTError::InvalidConfig(m));
        for (name, value) in [
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("image_size", self.image_size),
            ("patch_size", self.patch_size),
            ("num_channels", self.num_channels),
            ("encoder_stride", self.encoder_stride),
        ] {
            if value == 0 {
                return err(format!("`{name}` must be at least 1"));
            }
        }
        if self.pooler_output_size == Some(0) {
            return err("`pooler_output_size` must be at least 1".into());
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return err(format!(
                "`hidden_size` ({}) must be a multiple of `num_attention_heads` ({})",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if !self.image_size.is_multiple_of(self.patch_size) {
            return err(format!(
                "`image_size` ({}) must be a multiple of `patch_size` ({})",
                self.image_size, self.patch_size
            ));
        }
        for (name, p) in [
            ("hidden_dropout_prob", self.hidden_dropout_prob),
            ("attention_probs_dropout_prob", self.attention_probs_dropout_prob),
        ] {
            if !(0.0..1.0).contains(&p) {
                return err(format!("`{name}` must be in [0, 1), got {p}"));
            }
        }
        if self.layer_norm_eps.is_nan() || self.layer_norm_eps <= 0.0 {
            return err(format!("`layer_norm_eps` must be positive, got {}", self.layer_norm_eps));
        }
        if self.initializer_range.is_nan() || self.initializer_range < 0.0 {
            return err(format!("`initializer_range` must be non-negative, got {}", self.initializer_range));
        }
        if self.model_type != "vit" {
            return err(format!("`model_type` is \"{}\", this is a ViT (\"vit\")", self.model_type));
        }
        let n = self.id2label.len();
        if let Some(bad) = self.id2label.keys().find(|&&k| k >= n) {
            return err(format!("`id2label` has {n} labels but an index {bad}: indices must be 0..{n}"));
        }
        // The sizes multiply into weight shapes; refuse products that overflow (or whose f32
        // bytes do) before any shape arithmetic does.
        let (d, grid) = (self.hidden_size, self.grid_size());
        let patches = grid.checked_mul(grid).and_then(|p| p.checked_add(1)).unwrap_or(usize::MAX);
        for (what, dims) in [
            ("`image_size` / `patch_size` and `hidden_size` (position embeddings)", [patches, d, 1, 1]),
            (
                "`num_channels`, `patch_size` and `hidden_size` (patch embedding)",
                [self.num_channels, self.patch_size, self.patch_size, d],
            ),
            ("`hidden_size` and `intermediate_size`", [d, self.intermediate_size, 1, 1]),
            ("`hidden_size` and `pooler_output_size`", [d, self.pooler_output_size(), 1, 1]),
            (
                "`encoder_stride`, `num_channels` and `hidden_size` (SimMIM decoder)",
                [self.encoder_stride, self.encoder_stride, self.num_channels, d],
            ),
        ] {
            let bytes = dims.iter().try_fold(4usize, |acc, &x| acc.checked_mul(x));
            if bytes.is_none_or(|b| b > isize::MAX as usize) {
                return err(format!("{what} are too large: the weights they make cannot be addressed"));
            }
        }
        // The whole model's parameters must be countable (the model's size is then checked
        // against a limit before anything is allocated, see `check_size`).
        if let Some(kind) = ModelKind::ALL.into_iter().find(|&kind| self.parameter_count_of(kind).is_none()) {
            return err(format!(
                "the {} this config describes would have more than 2^64 parameters \
                 (num_hidden_layers = {}, hidden_size = {}, intermediate_size = {})",
                kind.architecture(),
                self.num_hidden_layers,
                self.hidden_size,
                self.intermediate_size
            ));
        }
        Ok(())
    }

    /// Parses a `config.json` text; `origin` names it in errors.
    pub fn from_json_str(text: &str, origin: &Path) -> Result<Self> {
        let json_err = |message: String| ViTError::Json { path: origin.to_path_buf(), message };
        let mut value: Value = serde_json::from_str(text).map_err(|e| json_err(format!("not valid JSON: {e}")))?;
        // HF accepts `num_labels` in place of `id2label`; `null` means "the default" everywhere.
        let mut num_labels = None;
        if let Value::Object(map) = &mut value {
            map.retain(|_, v| !v.is_null());
            if let Some(v) = map.remove("num_labels") {
                let n = v.as_u64().ok_or_else(|| {
                    json_err(format!("field `num_labels`: expected a non-negative integer, found {v}"))
                })?;
                // `num_labels` alone makes that many `LABEL_i` names: bound it before allocating.
                if n > MAX_NUM_LABELS as u64 {
                    return Err(json_err(format!(
                        "field `num_labels`: {n} is more than the {MAX_NUM_LABELS} labels supported"
                    )));
                }
                num_labels = Some(n as usize);
            }
            for key in ["torch_dtype", "dtype"] {
                if matches!(map.get(key), Some(Value::String(_))) {
                    continue;
                }
                map.remove(key);
            }
        } else {
            return Err(json_err("expected a JSON object".into()));
        }
        let mut config: ViTConfig = serde_path_to_error::deserialize(value)
            .map_err(|e| json_err(format!("field `{}`: {}", e.path(), e.inner())))?;
        if let Some(n) = num_labels
            && config.id2label.len() != n
        {
            if config.id2label.is_empty() {
                config = config.with_num_labels(n);
            } else {
                return Err(json_err(format!(
                    "`num_labels` is {n} but `id2label` has {} entries",
                    config.id2label.len()
                )));
            }
        }
        if config.label2id.is_empty() && !config.id2label.is_empty() {
            config.label2id = config.id2label.iter().map(|(i, l)| (l.clone(), *i)).collect();
        }
        config.validate().map_err(|e| json_err(e.to_string()))?;
        Ok(config)
    }

    /// Reads a `config.json` file (or the `config.json` inside a model directory).
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let mut path = path.as_ref().to_path_buf();
        if path.is_dir() {
            path = path.join("config.json");
        }
        let text = std::fs::read_to_string(&path).map_err(|e| ViTError::io("cannot read", &path, e))?;
        Self::from_json_str(&text, &path)
    }

    /// The `config.json` text, as HF writes it (two-space indentation, sorted keys).
    pub fn to_json_string(&self) -> String {
        let value = serde_json::to_value(self).expect("ViTConfig always serialises");
        let sorted = sort_keys(value);
        let mut text = serde_json::to_string_pretty(&sorted).expect("JSON values always serialise");
        text.push('\n');
        text
    }

    /// Writes `config.json` to `path` (a file, or a directory to put `config.json` in),
    /// through a temporary file and a rename.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let mut path = path.as_ref().to_path_buf();
        if path.is_dir() {
            path = path.join("config.json");
        }
        vit_io::write_atomic(&path, self.to_json_string().as_bytes())
            .map_err(|e| ViTError::io("cannot write", &path, e))
    }
}

fn sort_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sort_keys(v))).collect())
        }
        other => other,
    }
}
