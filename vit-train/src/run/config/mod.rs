//! The run configuration: one TOML file (plus `--set section.key=value` overrides, see
//! [`super::overrides`]), typed field by field and validated with errors that name the field.
//! One file per section.

mod data_section;
mod model_section;
mod optimizer_section;
mod run_section;

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::device::DeviceSpec;
pub use data_section::{DataSection, DatasetKind, ValidationSource};
pub use model_section::{ModelSection, Preset};
pub use optimizer_section::OptimizerSection;
pub use run_section::RunSection;

/// What a run trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// Supervised image classification (`ViTForImageClassification`).
    Classification,
    /// SimMIM masked-image-modelling pretraining (`ViTForMaskedImageModeling`).
    Simmim,
}

/// A whole run: task, model, data, optimizer and run settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// `classification` or `simmim`.
    pub task: Task,
    /// Where the model comes from.
    pub model: ModelSection,
    /// The dataset and its preprocessing.
    pub data: DataSection,
    /// AdamW, schedule, clipping.
    #[serde(default)]
    pub optimizer: OptimizerSection,
    /// Length, checkpoints, output.
    #[serde(default)]
    pub run: RunSection,
}

impl RunConfig {
    /// Reads `path`, applies `overrides` (`section.key=value`, the value in TOML syntax or a bare
    /// string) and validates.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read the config file {}", path.display()))?;
        Self::parse(&text, overrides).with_context(|| format!("in {}", path.display()))
    }

    /// Parses a config text with overrides.
    pub fn parse(text: &str, overrides: &[String]) -> Result<Self> {
        let config: RunConfig = super::overrides::deserialize_with_overrides(text, overrides)?;
        config.validate()?;
        Ok(config)
    }

    /// The config as TOML, as saved in the output directory.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// The device the run trains on (the first of `run.devices`, else `run.device`).
    pub fn main_device(&self) -> &DeviceSpec {
        self.run.devices.first().unwrap_or(&self.run.device)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use vit_data::Augmentation;

    use super::*;

    const MINIMAL: &str = r#"
task = "classification"
[model]
preset = "vit-tiny"
[data]
dataset = "cifar10"
path = "data/cifar10"
image_size = 32
"#;

    #[test]
    fn minimal_config_gets_defaults() {
        let c = RunConfig::parse(MINIMAL, &[]).unwrap();
        assert_eq!(c.optimizer.grad_accumulation, 1);
        assert_eq!(c.data.batch_size, 64);
        assert_eq!(c.run.device, DeviceSpec::Cpu);
    }

    #[test]
    fn misspelled_key_suggests_the_right_one() {
        let text = MINIMAL.replace("image_size = 32", "image_size = 32\nbatch_sise = 8");
        let err = format!("{:#}", RunConfig::parse(&text, &[]).unwrap_err());
        assert!(err.contains("batch_sise") && err.contains("did you mean `batch_size`"), "{err}");
    }

    #[test]
    fn wrong_type_names_the_field() {
        let text = MINIMAL.replace("image_size = 32", "image_size = \"big\"");
        let err = format!("{:#}", RunConfig::parse(&text, &[]).unwrap_err());
        assert!(err.contains("image_size"), "{err}");
    }

    #[test]
    fn overrides_apply_and_are_validated() {
        let c = RunConfig::parse(MINIMAL, &["optimizer.lr=0.01".into(), "run.output_dir=out/x".into()]).unwrap();
        assert_eq!(c.optimizer.lr, 0.01);
        assert_eq!(c.run.output_dir, PathBuf::from("out/x"));
        let err = format!("{:#}", RunConfig::parse(MINIMAL, &["optimizer.schedule=wavy".into()]).unwrap_err());
        assert!(err.contains("optimizer.schedule"), "{err}");
        let err = format!("{:#}", RunConfig::parse(MINIMAL, &["optimizer.lrr=1".into()]).unwrap_err());
        assert!(err.contains("did you mean `lr`"), "{err}");
    }

    #[test]
    fn typed_settings_name_the_field_and_suggest_the_spelling() {
        let cases = [
            ("data.augmentation=random-resize-crop", ["data.augmentation", "random-resized-crop"]),
            ("data.normalize=imagenette", ["data.normalize", "imagenet"]),
            ("data.resample=bicubc", ["data.resample", "bicubic"]),
            ("data.dataset=cifar-10", ["data.dataset", "cifar10"]),
            ("model.preset=vit-tinny", ["model.preset", "vit-tiny"]),
            ("optimizer.schedule=cosin", ["optimizer.schedule", "cosine"]),
            ("task=classify", ["task", "classification"]),
            ("run.device=gpu:0", ["run.device", "cuda:N"]),
        ];
        for (set, expected) in cases {
            let err = format!("{:#}", RunConfig::parse(MINIMAL, &[set.to_string()]).unwrap_err());
            for e in expected {
                assert!(err.contains(e), "--set {set}: expected `{e}` in: {err}");
            }
        }
        // The old aliases are gone: one list of spellings, shared with vit-data.
        assert!(RunConfig::parse(MINIMAL, &["data.augmentation=pad-crop:2".into()]).is_err());
        let c =
            RunConfig::parse(MINIMAL, &["data.augmentation=pad-crop-flip".into(), "run.device=wgpu:1".into()]).unwrap();
        assert_eq!(c.data.augmentation, Augmentation::PadCropFlip);
        assert_eq!(RunConfig::parse(&c.to_toml(), &[]).unwrap().run.device.to_string(), "wgpu:discrete:1");
    }

    #[test]
    fn needs_exactly_one_model_source() {
        let text = MINIMAL.replace("preset = \"vit-tiny\"", "");
        let err = format!("{:#}", RunConfig::parse(&text, &[]).unwrap_err());
        assert!(err.contains("pretrained") && err.contains("preset"), "{err}");
    }
}
