//! Hugging Face model directories (`config.json` + `model.safetensors`) ⇄ modules.
//!
//! Loading follows `transformers`' `from_pretrained`: keys are matched by their Hub names, the
//! `vit.` base-model prefix is added or stripped so that a `ViTModel` checkpoint loads into a
//! head model and back, missing weights keep their fresh initialisation, and the report lists
//! missing, unexpected and (with `ignore_mismatched_sizes`) mismatched keys.

pub mod keys;
pub mod safetensors_file;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use burn::store::{ModuleSnapshot, bridge};
use burn::tensor::{Device, TensorData};

use crate::architecture::Architecture;
use crate::config::ViTConfig;
use crate::error::{Result, ViTError};
use crate::heads::classification::ViTForImageClassification;
use crate::heads::mim::ViTForMaskedImageModeling;
use crate::model::ViTModel;
pub use safetensors_file::HfTensor;

/// The `base_model_prefix` of HF's ViT classes.
pub const BASE_MODEL_PREFIX: &str = "vit.";

/// Choices made when loading a checkpoint.
#[derive(Debug, Clone, Default)]
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

    /// A freshly initialised model for `config`; `checkpoint` holds the weights about to be
    /// loaded, for classes whose structure depends on them.
    fn init_for(
        config: &ViTConfig,
        checkpoint: &BTreeMap<String, HfTensor>,
        options: &LoadOptions,
        device: &Device,
    ) -> Result<Self>;

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
    fn from_pretrained_config(
        dir: impl AsRef<Path>,
        config: &ViTConfig,
        options: &LoadOptions,
        device: &Device,
    ) -> Result<(Self, LoadReport)> {
        let (origin, checkpoint) = safetensors_file::read_dir(dir.as_ref())?;
        let mut model = Self::init_for(config, &checkpoint, options, device)?;
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
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| ViTError::io("cannot create directory", dir, e))?;
        let bytes = safetensors_file::to_bytes(&self.to_hf_tensors()?)?;
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

/// Loads `checkpoint` (HF keys, PyTorch layout) into `model` as `from_pretrained` does.
pub fn load_weights<M: ModuleSnapshot>(
    model: &mut M,
    model_class: &str,
    checkpoint: BTreeMap<String, HfTensor>,
    origin: &Path,
    options: &LoadOptions,
) -> Result<LoadReport> {
    // Expected keys: HF key → (Burn path, shape in PyTorch layout).
    let mut expected: BTreeMap<String, (String, Vec<usize>)> = BTreeMap::new();
    for snapshot in model.collect(None, None, true) {
        let mut shape = snapshot.shape.to_vec();
        if keys::is_dense_weight(&snapshot.name, shape.len()) {
            shape.swap(0, 1);
        }
        expected.insert(keys::burn_to_hf(&snapshot.name), (snapshot.name, shape));
    }

    let expects_prefix = expected.keys().any(|k| k.starts_with(BASE_MODEL_PREFIX));
    let has_prefix = checkpoint.keys().any(|k| k.starts_with(BASE_MODEL_PREFIX));
    let checkpoint: BTreeMap<String, HfTensor> = checkpoint
        .into_iter()
        .map(|(k, t)| {
            let key = match (expects_prefix, has_prefix) {
                (true, false) => format!("{BASE_MODEL_PREFIX}{k}"),
                (false, true) => k.strip_prefix(BASE_MODEL_PREFIX).map(str::to_string).unwrap_or(k),
                _ => k,
            };
            (key, t)
        })
        .collect();

    let mut report =
        LoadReport { source: origin.to_path_buf(), model_class: model_class.to_string(), ..LoadReport::default() };
    let mut snapshots = Vec::new();
    let used: BTreeSet<&String> = checkpoint.keys().filter(|k| expected.contains_key(*k)).collect();
    report.unexpected_keys = checkpoint.keys().filter(|k| !used.contains(k)).cloned().collect();
    for (key, (path, shape)) in &expected {
        let Some(tensor) = checkpoint.get(key) else {
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

    fn init_for(
        config: &ViTConfig,
        checkpoint: &BTreeMap<String, HfTensor>,
        options: &LoadOptions,
        device: &Device,
    ) -> Result<Self> {
        config.validate()?;
        let has = |suffix: &str| checkpoint.keys().any(|k| k.ends_with(suffix));
        let pooler = options.add_pooling_layer.unwrap_or_else(|| has("pooler.dense.weight"));
        let mask = options.use_mask_token.unwrap_or_else(|| has("embeddings.mask_token"));
        Ok(ViTModel::new(config, pooler, mask, device))
    }
}

impl PretrainedViT for ViTForImageClassification {
    const ARCHITECTURE: Architecture = Architecture::ViTForImageClassification;

    fn init_for(
        config: &ViTConfig,
        _checkpoint: &BTreeMap<String, HfTensor>,
        _options: &LoadOptions,
        device: &Device,
    ) -> Result<Self> {
        config.validate()?;
        Ok(ViTForImageClassification::new(config, device))
    }
}

impl PretrainedViT for ViTForMaskedImageModeling {
    const ARCHITECTURE: Architecture = Architecture::ViTForMaskedImageModeling;

    fn init_for(
        config: &ViTConfig,
        _checkpoint: &BTreeMap<String, HfTensor>,
        _options: &LoadOptions,
        device: &Device,
    ) -> Result<Self> {
        config.validate()?;
        ViTForMaskedImageModeling::new(config, device)
    }
}
