//! Hugging Face model directories (`config.json` + `model.safetensors`) ⇄ modules.
//!
//! Loading follows `transformers`' `from_pretrained`: keys are matched by their Hub names, the
//! `vit.` base-model prefix is added or stripped so that a `ViTModel` checkpoint loads into a
//! head model and back, missing weights keep their fresh initialisation, and the report lists
//! missing, unexpected and (with `ignore_mismatched_sizes`) mismatched keys.

pub mod keys;
pub mod safetensors_file;

use crate::precision::Precision;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use burn::store::{ModuleSnapshot, bridge};
use burn::tensor::{Device, TensorData};

use crate::architecture::Architecture;
use crate::architecture::ModelKind;
use crate::config::ViTConfig;
use crate::error::{Result, ViTError};
use crate::heads::classification::ViTForImageClassification;
use crate::heads::mim::ViTForMaskedImageModeling;
use crate::model::ViTModel;
use crate::size::DEFAULT_MAX_WEIGHT_BYTES;
pub use safetensors_file::HfTensor;

pub use crate::architecture::BASE_MODEL_PREFIX;

/// Choices made when loading a checkpoint.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Re-initialise weights whose shape differs from the checkpoint's (HF's
    /// `ignore_mismatched_sizes`) instead of failing, e.g. a 1000-class head into a 10-class model.
    pub ignore_mismatched_sizes: bool,
    /// Replace the checkpoint's labels (and so the classifier's size) with these.
    pub labels: Option<Vec<String>>,
    /// `ViTModel` only: build a pooler. `None`: when the checkpoint has pooler weights.
    pub add_pooling_layer: Option<bool>,
    /// `ViTModel` only: build a mask token. `None`: when the checkpoint has one.
    pub use_mask_token: Option<bool>,
    /// The most bytes of f32 weights the model may have: a config describing a larger model is
    /// refused ([`ViTError::ModelTooLarge`]) before anything is allocated. Default
    /// [`DEFAULT_MAX_WEIGHT_BYTES`] (16 GiB).
    pub max_weight_bytes: u64,
    /// Accept checkpoint tensors holding NaN or infinite values, which are otherwise refused
    /// ([`ViTError::NonFiniteWeights`]). Default false.
    pub allow_non_finite: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            ignore_mismatched_sizes: false,
            labels: None,
            add_pooling_layer: None,
            use_mask_token: None,
            max_weight_bytes: DEFAULT_MAX_WEIGHT_BYTES,
            allow_non_finite: false,
        }
    }
}

/// What loading did, in the terms `transformers` reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadReport {
    /// Where the weights came from.
    pub source: PathBuf,
    /// The model class loaded into.
    pub model_class: String,
    /// Model weights absent from the checkpoint, freshly initialised.
    pub missing_keys: Vec<String>,
    /// Checkpoint weights the model has no place for, dropped.
    pub unexpected_keys: Vec<String>,
    /// Weights re-initialised because their shapes differ: (key, checkpoint shape, model shape).
    pub mismatched_keys: Vec<(String, Vec<usize>, Vec<usize>)>,
}

impl LoadReport {
    /// Whether every weight was loaded and every checkpoint tensor used.
    pub fn is_exact(&self) -> bool {
        self.missing_keys.is_empty() && self.unexpected_keys.is_empty() && self.mismatched_keys.is_empty()
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (src, class) = (self.source.display(), &self.model_class);
        if self.is_exact() {
            return write!(f, "All weights of {class} were initialized from the model checkpoint at {src}.");
        }
        if !self.unexpected_keys.is_empty() {
            writeln!(
                f,
                "Some weights of the model checkpoint at {src} were not used when initializing {class}: {:?}",
                self.unexpected_keys
            )?;
        }
        if !self.missing_keys.is_empty() {
            writeln!(
                f,
                "Some weights of {class} were not initialized from the model checkpoint at {src} and are newly \
                 initialized: {:?}",
                self.missing_keys
            )?;
        }
        if !self.mismatched_keys.is_empty() {
            writeln!(
                f,
                "Some weights of {class} were not initialized from the model checkpoint at {src} and are newly \
                 initialized because the shapes did not match:"
            )?;
            for (key, found, expected) in &self.mismatched_keys {
                writeln!(
                    f,
                    "- {key}: found shape {found:?} in the checkpoint and {expected:?} in the model instantiated"
                )?;
            }
        }
        if !self.missing_keys.is_empty() || !self.mismatched_keys.is_empty() {
            write!(
                f,
                "You should probably TRAIN this model on a down-stream task to be able to use it for predictions and inference."
            )?;
        }
        Ok(())
    }
}

/// A ViT class that loads from and saves to an HF model directory.
pub trait PretrainedViT: ModuleSnapshot + Sized {
    /// The class, whose name is written to `architectures` in `config.json`.
    const ARCHITECTURE: Architecture;

    /// The parts this class is built with to load a checkpoint holding these tensors (HF key →
    /// shape): for `ViTModel`, a pooler and a mask token when the checkpoint has them (or as
    /// `options` say); the head classes are always the same kind.
    fn kind_for(checkpoint: &BTreeMap<String, Vec<usize>>, options: &LoadOptions) -> ModelKind;

    /// A freshly initialised model of `kind` (as [`PretrainedViT::kind_for`] gives it) for
    /// `config`, after validating `config` and checking that its weights take at most
    /// `max_weight_bytes` ([`ViTConfig::check_size_of`]).
    fn init_checked(config: &ViTConfig, kind: ModelKind, max_weight_bytes: u64, device: &Device) -> Result<Self>;

    /// Loads `dir` (`config.json` and the safetensors weights).
    fn from_pretrained(
        dir: impl AsRef<Path>,
        options: &LoadOptions,
        device: &Device,
    ) -> Result<(Self, ViTConfig, LoadReport)> {
        let dir = dir.as_ref();
        let mut config = ViTConfig::load(dir.join("config.json"))?;
        if let Some(labels) = &options.labels {
            config = config.with_labels(labels.clone());
        }
        let (model, report) = Self::from_pretrained_config(dir, &config, options, device)?;
        Ok((model, config, report))
    }

    /// Loads the weights of `dir` into a model built for `config` rather than the directory's own
    /// `config.json` (the same architecture; labels or dropout may differ, as with
    /// `from_pretrained(..., hidden_dropout_prob=0.1)` in `transformers`).
    ///
    /// Nothing large is allocated before the checks pass: the config is validated, the model's
    /// size checked against `options.max_weight_bytes`, and the shape of every checkpoint tensor
    /// (read from the safetensors headers alone) compared with the shape the config implies;
    /// only then are the weights read and the model initialised.
    fn from_pretrained_config(
        dir: impl AsRef<Path>,
        config: &ViTConfig,
        options: &LoadOptions,
        device: &Device,
    ) -> Result<(Self, LoadReport)> {
        let dir = dir.as_ref();
        config.validate()?;
        let (origin, shapes) = safetensors_file::read_dir_shapes(dir)?;
        let kind = Self::kind_for(&shapes, options);
        config.check_size_of(kind, options.max_weight_bytes)?;
        check_shapes(&config.parameter_shapes(kind), shapes, &origin, options)?;
        let (origin, checkpoint) = safetensors_file::read_dir(dir)?;
        let mut model = Self::init_checked(config, kind, options.max_weight_bytes, device)?;
        let report = load_weights(&mut model, Self::ARCHITECTURE.as_str(), checkpoint, &origin, options)?;
        Ok((model, report))
    }

    /// The weights under their HF keys, in PyTorch layout.
    fn to_hf_tensors(&self) -> Result<BTreeMap<String, HfTensor>> {
        let mut out = BTreeMap::new();
        for snapshot in self.collect(None, None, true) {
            let path = snapshot.name.clone();
            let data = bridge::into_data(snapshot).map_err(|e| ViTError::Safetensors {
                path: PathBuf::from(&path),
                message: format!("cannot read parameter: {e:?}"),
            })?;
            out.insert(keys::burn_to_hf(&path), to_hf_layout(&path, data)?);
        }
        Ok(out)
    }

    /// Writes `config.json` (with `architectures`) and `model.safetensors` into `dir`, each through
    /// a temporary file and a rename. `transformers`' `from_pretrained` loads the result.
    fn save_pretrained(&self, config: &ViTConfig, dir: impl AsRef<Path>) -> Result<()> {
        self.save_pretrained_in(config, dir, Precision::F32)
    }

    /// [`PretrainedViT::save_pretrained`] with the weights stored as `precision` (float32, or
    /// bfloat16/float16 rounded to nearest even: half the size; `transformers` loads them).
    fn save_pretrained_in(&self, config: &ViTConfig, dir: impl AsRef<Path>, precision: Precision) -> Result<()> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| ViTError::io("cannot create directory", dir, e))?;
        let bytes = safetensors_file::to_bytes_in(&self.to_hf_tensors()?, precision, &[("format", "pt")])?;
        let weights = dir.join("model.safetensors");
        vit_io::write_atomic(&weights, &bytes).map_err(|e| ViTError::io("cannot write", &weights, e))?;
        let mut config = config.clone();
        config.architectures = Some(vec![Self::ARCHITECTURE.as_str().to_string()]);
        config.save(dir.join("config.json"))
    }
}

fn to_hf_layout(path: &str, data: TensorData) -> Result<HfTensor> {
    let mut shape = data.shape().to_vec();
    let mut values: Vec<f32> = data.convert::<f32>().try_into_vec::<f32>().map_err(|e| ViTError::Safetensors {
        path: PathBuf::from(path),
        message: format!("cannot read parameter as f32: {e:?}"),
    })?;
    if keys::is_dense_weight(path, shape.len()) {
        values = transpose(&values, shape[0], shape[1]);
        shape.swap(0, 1);
    }
    Ok(HfTensor { shape, data: values })
}

fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    out
}

/// The checkpoint's tensors under the keys the model uses: the `vit.` base-model prefix added
/// when the model expects it and the checkpoint lacks it, stripped in the opposite case, as
/// `transformers` does. Each value keeps the key it has in the checkpoint.
fn align_prefix<T>(expects_prefix: bool, checkpoint: BTreeMap<String, T>) -> BTreeMap<String, (String, T)> {
    let has_prefix = checkpoint.keys().any(|k| k.starts_with(BASE_MODEL_PREFIX));
    checkpoint
        .into_iter()
        .map(|(k, t)| {
            let key = match (expects_prefix, has_prefix) {
                (true, false) => format!("{BASE_MODEL_PREFIX}{k}"),
                (false, true) => k.strip_prefix(BASE_MODEL_PREFIX).map(str::to_string).unwrap_or_else(|| k.clone()),
                _ => k.clone(),
            };
            (key, (k, t))
        })
        .collect()
}

/// The model's weights: HF key → (Burn path, shape in PyTorch layout).
fn model_weights<M: ModuleSnapshot>(model: &M) -> BTreeMap<String, (String, Vec<usize>)> {
    let mut expected = BTreeMap::new();
    for snapshot in model.collect(None, None, true) {
        let mut shape = snapshot.shape.to_vec();
        if keys::is_dense_weight(&snapshot.name, shape.len()) {
            shape.swap(0, 1);
        }
        expected.insert(keys::burn_to_hf(&snapshot.name), (snapshot.name, shape));
    }
    expected
}

/// The error for the first weight, in key order, whose checkpoint shape differs from the
/// model's, unless `ignore_mismatched_sizes` — the error [`load_weights`] would give, found from
/// shapes alone.
fn check_shapes(
    expected: &BTreeMap<String, Vec<usize>>,
    checkpoint: BTreeMap<String, Vec<usize>>,
    origin: &Path,
    options: &LoadOptions,
) -> Result<()> {
    if options.ignore_mismatched_sizes {
        return Ok(());
    }
    let expects_prefix = expected.keys().any(|k| k.starts_with(BASE_MODEL_PREFIX));
    let checkpoint = align_prefix(expects_prefix, checkpoint);
    for (key, shape) in expected {
        if let Some((_, found)) = checkpoint.get(key)
            && found != shape
        {
            return Err(ViTError::ShapeMismatch {
                path: origin.to_path_buf(),
                key: key.clone(),
                found: found.clone(),
                expected: shape.clone(),
            });
        }
    }
    Ok(())
}

/// The first NaN or infinite value of `tensor`, as the error naming it.
fn check_finite(tensor: &HfTensor, key: &str, origin: &Path) -> Result<()> {
    let Some(index) = tensor.data.iter().position(|v| !v.is_finite()) else {
        return Ok(());
    };
    Err(ViTError::NonFiniteWeights {
        path: origin.to_path_buf(),
        key: key.to_string(),
        count: tensor.data[index..].iter().filter(|v| !v.is_finite()).count(),
        first: tensor.data[index],
        index,
    })
}

/// Loads `checkpoint` (HF keys, PyTorch layout) into `model` as `from_pretrained` does. A tensor
/// holding NaN or infinite values is an error unless `options.allow_non_finite`.
pub fn load_weights<M: ModuleSnapshot>(
    model: &mut M,
    model_class: &str,
    checkpoint: BTreeMap<String, HfTensor>,
    origin: &Path,
    options: &LoadOptions,
) -> Result<LoadReport> {
    // Expected keys: HF key → (Burn path, shape in PyTorch layout).
    let expected = model_weights(model);
    let expects_prefix = expected.keys().any(|k| k.starts_with(BASE_MODEL_PREFIX));
    let checkpoint = align_prefix(expects_prefix, checkpoint);

    let mut report =
        LoadReport { source: origin.to_path_buf(), model_class: model_class.to_string(), ..LoadReport::default() };
    let mut snapshots = Vec::new();
    let used: BTreeSet<&String> = checkpoint.keys().filter(|k| expected.contains_key(*k)).collect();
    report.unexpected_keys = checkpoint.keys().filter(|k| !used.contains(k)).cloned().collect();
    for (key, (path, shape)) in &expected {
        let Some((stored_key, tensor)) = checkpoint.get(key) else {
            report.missing_keys.push(key.clone());
            continue;
        };
        if &tensor.shape != shape {
            if options.ignore_mismatched_sizes {
                report.mismatched_keys.push((key.clone(), tensor.shape.clone(), shape.clone()));
                continue;
            }
            return Err(ViTError::ShapeMismatch {
                path: origin.to_path_buf(),
                key: key.clone(),
                found: tensor.shape.clone(),
                expected: shape.clone(),
            });
        }
        if !options.allow_non_finite {
            check_finite(tensor, stored_key, origin)?;
        }
        let (values, burn_shape) = if keys::is_dense_weight(path, shape.len()) {
            (transpose(&tensor.data, shape[0], shape[1]), vec![shape[1], shape[0]])
        } else {
            (tensor.data.clone(), shape.clone())
        };
        let data = TensorData::new(values, burn_shape);
        snapshots.push(bridge::from_data(data, path.clone(), None));
    }

    let applied = model.apply(snapshots, None, None, true);
    if let Some(error) = applied.errors.first() {
        return Err(ViTError::Safetensors {
            path: origin.to_path_buf(),
            message: format!("cannot load into {model_class}: {error}"),
        });
    }
    Ok(report)
}

impl PretrainedViT for ViTModel {
    const ARCHITECTURE: Architecture = Architecture::ViTModel;

    fn kind_for(checkpoint: &BTreeMap<String, Vec<usize>>, options: &LoadOptions) -> ModelKind {
        let has = |suffix: &str| checkpoint.keys().any(|k| k.ends_with(suffix));
        ModelKind::Base {
            add_pooling_layer: options.add_pooling_layer.unwrap_or_else(|| has("pooler.dense.weight")),
            use_mask_token: options.use_mask_token.unwrap_or_else(|| has("embeddings.mask_token")),
        }
    }

    fn init_checked(config: &ViTConfig, kind: ModelKind, max_weight_bytes: u64, device: &Device) -> Result<Self> {
        ViTModel::try_new(config, kind.has_pooler(), kind.has_mask_token(), max_weight_bytes, device)
    }
}

impl PretrainedViT for ViTForImageClassification {
    const ARCHITECTURE: Architecture = Architecture::ViTForImageClassification;

    fn kind_for(_checkpoint: &BTreeMap<String, Vec<usize>>, _options: &LoadOptions) -> ModelKind {
        ModelKind::ImageClassification
    }

    fn init_checked(config: &ViTConfig, _kind: ModelKind, max_weight_bytes: u64, device: &Device) -> Result<Self> {
        ViTForImageClassification::try_new(config, max_weight_bytes, device)
    }
}

impl PretrainedViT for ViTForMaskedImageModeling {
    const ARCHITECTURE: Architecture = Architecture::ViTForMaskedImageModeling;

    fn kind_for(_checkpoint: &BTreeMap<String, Vec<usize>>, _options: &LoadOptions) -> ModelKind {
        ModelKind::MaskedImageModeling
    }

    fn init_checked(config: &ViTConfig, _kind: ModelKind, max_weight_bytes: u64, device: &Device) -> Result<Self> {
        ViTForMaskedImageModeling::try_new(config, max_weight_bytes, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shapes a config implies are exactly the model's, for every kind.
    #[test]
    fn config_shapes_are_the_models() {
        let device = Device::flex();
        let small = ViTConfig {
            hidden_size: 24,
            num_hidden_layers: 3,
            num_attention_heads: 4,
            intermediate_size: 40,
            image_size: 12,
            patch_size: 4,
            encoder_stride: 4,
            num_channels: 2,
            ..ViTConfig::default()
        }
        .with_num_labels(5);
        let other = ViTConfig { qkv_bias: false, pooler_output_size: Some(7), encoder_stride: 4, ..small.clone() };
        for config in [small, other] {
            for kind in ModelKind::ALL {
                let weights = match kind {
                    ModelKind::Base { .. } => {
                        let model = ViTModel::init_checked(&config, kind, u64::MAX, &device).unwrap();
                        model_weights(&model)
                    }
                    ModelKind::ImageClassification => model_weights(
                        &ViTForImageClassification::init_checked(&config, kind, u64::MAX, &device).unwrap(),
                    ),
                    ModelKind::MaskedImageModeling => model_weights(
                        &ViTForMaskedImageModeling::init_checked(&config, kind, u64::MAX, &device).unwrap(),
                    ),
                };
                let from_model: BTreeMap<String, Vec<usize>> = weights.into_iter().map(|(k, (_, s))| (k, s)).collect();
                assert_eq!(config.parameter_shapes(kind), from_model, "{kind:?}");
                let count: usize = from_model.values().map(|s| s.iter().product::<usize>()).sum();
                assert_eq!(config.parameter_count_of(kind), Some(count as u64), "{kind:?}");
            }
        }
    }
}
