//! The models a run trains and a command runs: built from the plan's resolved configuration (fresh,
//! or with a pretrained model's weights), or loaded from an HF model directory for inference.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::tensor::Device;
use vit_data::{ImageProcessor, PREPROCESSOR_CONFIG};
use vit_model::{LoadOptions, PretrainedViT, ViTConfig, ViTForImageClassification, ViTForMaskedImageModeling};

use super::plan::RunPlan;

/// The run's model of class `M` on `device`: the pretrained weights loaded into the plan's
/// configuration, or a fresh HF-initialised model.
/// A model reference (`model.pretrained`, `--model`) as a local directory: a directory is taken as
/// it is; a Hub id `owner/name[@revision]` is fetched into Hugging Face's cache (shared with
/// Python's `huggingface_hub`; `HF_HOME`, `HF_ENDPOINT`, `HF_TOKEN` and `HF_HUB_OFFLINE` are
/// honoured) and its snapshot directory returned.
pub fn resolve_reference(reference: &Path, setting: &str) -> Result<PathBuf> {
    let text = reference.to_str().with_context(|| format!("{setting}: {} is not valid UTF-8", reference.display()))?;
    let resolved = vit_hub::resolve_model(text, &vit_hub::HubOptions::from_env()).context(setting.to_string())?;
    if let (Some(repo), Some(commit)) = (&resolved.repo, &resolved.commit) {
        eprintln!("{setting}: {repo} at commit {commit} ({})", resolved.dir.display());
    }
    Ok(resolved.dir)
}

fn build<M: PretrainedViT>(
    plan: &RunPlan,
    device: &Device,
    options: LoadOptions,
    fresh: impl FnOnce(&ViTConfig) -> Result<M>,
) -> Result<M> {
    match &plan.pretrained_dir {
        Some(dir) => {
            let (model, report) = M::from_pretrained_config(dir, &plan.vit_config, &options, device)
                .with_context(|| format!("model.pretrained: cannot load {}", dir.display()))?;
            eprintln!("{report}");
            Ok(model)
        }
        None => fresh(&plan.vit_config).context("model"),
    }
}

/// The classifier a run trains.
pub fn classifier(plan: &RunPlan, device: &Device) -> Result<ViTForImageClassification> {
    let max = plan.config.model.max_weight_bytes();
    let options = LoadOptions {
        ignore_mismatched_sizes: plan.config.model.ignore_mismatched_sizes,
        labels: Some(plan.vit_config.labels()),
        max_weight_bytes: max,
        ..LoadOptions::default()
    };
    build(plan, device, options, |c| Ok(ViTForImageClassification::try_new(c, max, device)?))
}

/// The SimMIM model a run pretrains.
pub fn simmim(plan: &RunPlan, device: &Device) -> Result<ViTForMaskedImageModeling> {
    let max = plan.config.model.max_weight_bytes();
    let options = LoadOptions { max_weight_bytes: max, ..LoadOptions::default() };
    build(plan, device, options, |c| Ok(ViTForMaskedImageModeling::try_new(c, max, device)?))
}

/// Loads a classifier from the HF model directory `dir` for inference, warning on stderr when
/// weights were missing or unused.
pub fn load_classifier(dir: &Path, device: &Device) -> Result<(ViTForImageClassification, ViTConfig)> {
    let (model, config, report) = ViTForImageClassification::from_pretrained(dir, &LoadOptions::default(), device)
        .map_err(|e| anyhow::anyhow!("cannot load the model directory {}: {e}", dir.display()))?;
    if !report.is_exact() {
        eprintln!("warning: {report}");
    }
    Ok((model, config))
}

/// The model directory's image processor, or `ViTImageProcessor`'s defaults at the model's image
/// size when it has no `preprocessor_config.json` (with a note on stderr).
pub fn model_processor(dir: &Path, config: &ViTConfig) -> Result<ImageProcessor> {
    if dir.join(PREPROCESSOR_CONFIG).exists() {
        return ImageProcessor::load(dir, config.num_channels).map_err(|e| anyhow::anyhow!("{e}"));
    }
    let size = config.image_size as u32;
    eprintln!(
        "note: {} has no {PREPROCESSOR_CONFIG}; using ViTImageProcessor's defaults \
         ({size}x{size}, bilinear, mean = std = 0.5)",
        dir.display()
    );
    Ok(ImageProcessor::new(size, size).with_num_channels(config.num_channels))
}
