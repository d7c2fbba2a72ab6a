//! [`RunPlan`]: everything a training run needs, resolved and validated once, before any file of
//! the run directory is written or deleted — the model's `ViTConfig`, the labels, the
//! preprocessing, the image-size check, the segments of optimizer steps and where to resume.
//! Train, resume and export read the plan; nothing re-derives it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::data::dataset::Dataset;
use burn::tensor::Device;
use vit_data::{ImageProcessor, MaskGenerator};
use vit_model::{HiddenAct, ViTConfig};

use super::checkpoint_sets::latest_intact;
use super::config::{ModelSection, RunConfig, Task};
use super::data::{RunData, open_datasets, processor};
use super::dir::RunDir;
use super::loader::EpochLoader;
use super::model::resolve_reference;
use super::parallel::Parallelism;
use super::segments::Segments;

/// Options of a training run beyond its config file.
#[derive(Clone, Debug, Default)]
pub struct TrainOptions {
    /// Continue from the output directory's last checkpoint (also done automatically when the
    /// directory holds a run of the same config).
    pub resume: bool,
    /// Replace the run in the output directory with a fresh one.
    pub overwrite: bool,
    /// Skip optimizer steps whose loss or gradient norm is NaN or infinite instead of stopping.
    pub skip_nonfinite: bool,
    /// With `skip_nonfinite`: the most optimizer steps skipped in a row before the run stops.
    pub max_skips: usize,
}

/// How the run starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// A new run in a new (or empty) directory.
    Fresh,
    /// A new run replacing the previous one in the directory (`--overwrite`).
    Replace,
    /// Continue from checkpoint N (a segment number, 1-based).
    Resume(usize),
}

impl Start {
    /// The checkpoint the run resumes from.
    pub fn checkpoint(self) -> Option<usize> {
        match self {
            Start::Resume(k) => Some(k),
            _ => None,
        }
    }
}

/// A training run, resolved.
pub struct RunPlan {
    /// The config as given (with overrides).
    pub config: RunConfig,
    /// The output directory.
    pub dir: RunDir,
    /// The device training runs on (without autodiff).
    pub device: Device,
    /// `model.pretrained` as a local directory (a Hub id is fetched into Hugging Face's cache).
    pub pretrained_dir: Option<PathBuf>,
    /// The model's configuration: from the preset with the `[model]` fields, or the pretrained
    /// model's own (with the dataset's labels for classification).
    pub vit_config: ViTConfig,
    /// The training and validation data.
    pub data: RunData,
    /// The preprocessing (written next to the exported model).
    pub processor: ImageProcessor,
    /// Whether the model runs at the data's image size with resized position embeddings.
    pub interpolate_pos_encoding: bool,
    /// How the run's optimizer steps are cut into evaluations.
    pub segments: Segments,
    /// Fresh, replacing, or resuming from a checkpoint.
    pub start: Start,
    /// The options the run was started with.
    pub options: TrainOptions,
}

impl RunPlan {
    /// Resolves and checks everything; reads files but writes and deletes none.
    pub fn new(config: RunConfig, options: TrainOptions) -> Result<Self> {
        let device = config.main_device().device().context("run.device")?;
        for spec in &config.run.devices {
            spec.device().context("run.devices")?;
        }
        let precision = config.run.precision;
        for device in std::iter::once(Ok(device.clone())).chain(config.run.devices.iter().map(|d| d.device())) {
            vit_model::precision::check_supported(precision, &device?)
                .map_err(|e| anyhow::anyhow!("run.precision: {e}"))?;
        }
        let dir = RunDir::new(&config.run.output_dir);
        for (field, path) in
            [("model.pretrained", config.model.pretrained.as_ref()), ("data.path", Some(&config.data.path))]
        {
            if let Some(path) = path
                && options.overwrite
                && dir.contains(path)
            {
                bail!(
                    "{field} ({}) lies inside run.output_dir ({}), which --overwrite would delete; copy it out \
                     first or choose another run.output_dir",
                    path.display(),
                    dir.root().display()
                );
            }
        }
        let start = start_of(&config, &options, &dir)?;
        let data = open_datasets(&config.data, config.run.seed)?;
        let pretrained_dir =
            config.model.pretrained.as_deref().map(|r| resolve_reference(r, "model.pretrained")).transpose()?;
        let vit_config = model_config(&config, pretrained_dir.as_deref(), &data.classes)?;
        vit_config
            .check_size(config.model.max_weight_bytes())
            .context("model (raise model.max_weight_gib to allow it)")?;
        let interpolate_pos_encoding =
            check_image_size(config.data.image_size, vit_config.image_size, config.model.interpolate_pos_encoding)
                .context("data.image_size")?;
        if config.task == Task::Simmim {
            let d = &config.data;
            MaskGenerator::new(
                d.image_size as u32,
                d.mask_patch_size as u32,
                vit_config.patch_size as u32,
                d.mask_ratio,
            )
            .context("data.mask_patch_size / data.mask_ratio")?;
        }
        if start.checkpoint().is_some() {
            check_same_model(&dir, &vit_config)?;
        }
        let processor = processor(&config.data, vit_config.num_channels)?;
        if matches!(Parallelism::of(&config.run.devices), Parallelism::Ddp { .. }) && options.skip_nonfinite {
            bail!(
                "--skip-nonfinite cannot be used with several CUDA devices: under DDP every device decides alone \
                 whether to skip, and one that skips while another steps would leave different weights; train \
                 without it (a non-finite value then stops the run, its last good checkpoint intact)"
            );
        }
        if matches!(Parallelism::of(&config.run.devices), Parallelism::Ddp { .. })
            && config.run.precision == vit_model::Precision::F16
        {
            bail!(
                "run.precision = \"f16\" cannot be used with several CUDA devices: its loss scale is one state per run \
                 and DDP steps each device alone; use run.precision = \"bf16\" (no loss scaling needed)"
            );
        }
        let devices = config.run.devices.len().max(1);
        if data.train.len() < devices {
            bail!(
                "run.devices: {devices} devices but only {} training images; every device needs at least one image \
                 of each micro-batch",
                data.train.len()
            );
        }
        // One micro-batch of the run is a share of `batch_size` on each device.
        let epoch_images = EpochLoader::epoch_images(data.train.len(), devices);
        let batches_per_epoch = epoch_images.div_ceil(config.data.batch_size * devices);
        let (o, r) = (&config.optimizer, &config.run);
        let segments = Segments::new(batches_per_epoch, o.grad_accumulation, r.epochs, r.max_steps, r.eval_every);
        Ok(Self {
            config,
            dir,
            device,
            pretrained_dir,
            vit_config,
            data,
            processor,
            interpolate_pos_encoding,
            segments,
            start,
            options,
        })
    }
}

/// Whether the model runs with resized position embeddings; an error when the data's image size
/// differs from the model's and `interpolate` (`model.interpolate_pos_encoding`) is off. The one
/// check of this kind, used by training and by `eval`.
pub fn check_image_size(data_size: usize, model_size: usize, interpolate: bool) -> Result<bool> {
    if data_size == model_size {
        return Ok(false);
    }
    if !interpolate {
        bail!(
            "the data's images are {data_size}x{data_size} but the model was made for {model_size}x{model_size}; \
             set `data.image_size = {model_size}`, or `model.interpolate_pos_encoding = true` to resize its \
             position embeddings"
        );
    }
    Ok(true)
}

/// `config.json` fields that change no weight shape or value: a resumed run may change them.
const WEIGHTLESS_FIELDS: [&str; 2] = ["hidden_dropout_prob", "attention_probs_dropout_prob"];

/// An error unless the model a resumed run would build is the one its checkpoints were saved from,
/// naming the fields that differ.
fn check_same_model(dir: &RunDir, planned: &ViTConfig) -> Result<()> {
    let path = dir.model_config();
    if !path.is_file() {
        return Ok(());
    }
    let saved =
        ViTConfig::load(&path).with_context(|| format!("cannot read the run's model config {}", path.display()))?;
    let (a, b) = (serde_json::to_value(&saved)?, serde_json::to_value(planned)?);
    let differing: Vec<String> = match (a.as_object(), b.as_object()) {
        (Some(a), Some(b)) => a
            .keys()
            .chain(b.keys().filter(|k| !a.contains_key(*k)))
            .filter(|k| !WEIGHTLESS_FIELDS.contains(&k.as_str()) && a.get(*k) != b.get(*k))
            .map(|k| {
                format!(
                    "{k}: {} → {}",
                    a.get(k).unwrap_or(&serde_json::Value::Null),
                    b.get(k).unwrap_or(&serde_json::Value::Null)
                )
            })
            .collect(),
        _ => Vec::new(),
    };
    if !differing.is_empty() {
        bail!(
            "cannot resume {}: its checkpoints are of another model ({}); restore the config it was started with, \
             or pass --overwrite to start over",
            dir.root().display(),
            differing.join(", ")
        );
    }
    Ok(())
}

/// Fresh, replacing or resuming: decided from the directory's saved config and checkpoints.
fn start_of(config: &RunConfig, options: &TrainOptions, dir: &RunDir) -> Result<Start> {
    let Some(previous) = dir.saved_config()? else {
        if options.resume {
            bail!("--resume: {} holds no run to resume (run_config.toml is missing)", dir.root().display());
        }
        return Ok(Start::Fresh);
    };
    if options.overwrite {
        return Ok(Start::Replace);
    }
    let latest = latest_intact(&dir.checkpoint_dir())?;
    if previous == config.to_toml() {
        if latest.is_none() && options.resume {
            eprintln!("note: --resume given but {} holds no complete checkpoint; starting fresh", dir.root().display());
        }
        return Ok(latest.map_or(Start::Fresh, Start::Resume));
    }
    if options.resume
        && let Some(epoch) = latest
    {
        eprintln!(
            "note: the config differs from the one {} was started with; resuming from checkpoint {epoch} with the new one",
            dir.root().display()
        );
        return Ok(Start::Resume(epoch));
    }
    bail!(
        "the output directory {} already holds a different run (its run_config.toml differs from this config). \
         Choose another run.output_dir, or pass --overwrite to replace it",
        dir.root().display()
    )
}

/// The model configuration of a run.
fn model_config(config: &RunConfig, pretrained_dir: Option<&Path>, classes: &[String]) -> Result<ViTConfig> {
    let m = &config.model;
    let mut c = match (pretrained_dir, m.preset) {
        (Some(dir), _) => {
            let fields = m.architecture_fields_set();
            if !fields.is_empty() {
                bail!(
                    "model: {} cannot apply to the pretrained model {} (its architecture comes from its config.json); \
                     remove {} or train from a `preset`",
                    fields.iter().map(|f| format!("model.{f}")).collect::<Vec<_>>().join(", "),
                    dir.display(),
                    if fields.len() == 1 { "it" } else { "them" }
                );
            }
            ViTConfig::load(dir).with_context(|| format!("model.pretrained: {}", dir.display()))?
        }
        (None, Some(preset)) => from_preset(m, preset.config(), config.data.image_size)?,
        (None, None) => bail!("model: set `pretrained` or `preset`"),
    };
    if let Some(p) = m.hidden_dropout_prob {
        c.hidden_dropout_prob = p;
    }
    if let Some(p) = m.attention_probs_dropout_prob {
        c.attention_probs_dropout_prob = p;
    }
    if config.task == Task::Classification {
        if let Some(n) = m.num_labels
            && n != classes.len()
        {
            bail!(
                "model.num_labels is {n} but the dataset has {} classes; remove num_labels to take them from the data",
                classes.len()
            );
        }
        c = c.with_labels(classes.to_vec());
    } else if m.pretrained.is_none() {
        c = c.with_labels(classes.to_vec());
    }
    c.validate().context("model")?;
    Ok(c)
}

/// A preset with the `[model]` fields applied.
fn from_preset(m: &ModelSection, mut c: ViTConfig, data_image_size: usize) -> Result<ViTConfig> {
    c.image_size = m.image_size.unwrap_or(data_image_size);
    c.patch_size = m.patch_size.unwrap_or(c.patch_size);
    c.encoder_stride = m.encoder_stride.unwrap_or(c.patch_size);
    macro_rules! set {
        ($($field:ident),*) => { $(if let Some(v) = m.$field.clone() { c.$field = v; })* };
    }
    set!(
        num_channels,
        hidden_size,
        num_hidden_layers,
        num_attention_heads,
        intermediate_size,
        qkv_bias,
        initializer_range,
        layer_norm_eps
    );
    if let Some(act) = &m.hidden_act {
        c.hidden_act =
            HiddenAct::from_name(act).with_context(|| format!("model.hidden_act: unknown activation \"{act}\""))?;
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_size_mismatch_names_both_sizes_and_the_setting() {
        assert!(!check_image_size(32, 32, false).unwrap());
        assert!(check_image_size(16, 32, true).unwrap());
        let err = check_image_size(16, 32, false).unwrap_err().to_string();
        assert!(
            err.contains("16x16") && err.contains("32x32") && err.contains("model.interpolate_pos_encoding"),
            "{err}"
        );
    }
}
