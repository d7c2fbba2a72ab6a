//! `vit-train eval`: accuracy, top-5 accuracy, per-class accuracy and the confusion matrix of an
//! HF model directory on the test or validation split named by a run config's `[data]` section
//! (with the evaluation transform used during training).

use std::path::{Path, PathBuf};
use vit_model::{Precision, autocast};

use anyhow::{Context, Result, bail};
use clap::Args;
use vit_data::{ImageProcessor, PREPROCESSOR_CONFIG};
use vit_model::ViTConfig;

use crate::run::config::RunConfig;
use crate::run::data::{batchers, open_datasets, processor};
use crate::run::evaluation::{EvalCounts, evaluate_classifier};
use crate::run::loader::EpochLoader;
use crate::run::model::{load_classifier, resolve_reference};
use crate::run::plan::check_image_size;

/// Arguments of `vit-train eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// An HF model directory or a Hub id `owner/name[@revision]`.
    #[arg(long)]
    pub model: PathBuf,
    /// A run config whose [data] section names the dataset.
    #[arg(long)]
    pub config: PathBuf,
    /// `valid` (the run's validation images) or `test` (CIFAR's test batch, `data.test_dir`);
    /// default: `test` when the dataset has a test set, else `valid`.
    #[arg(long, value_parser = ["valid", "test"])]
    pub split: Option<String>,
    /// Config overrides, as for training.
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Precision of the matrix products: f32, bf16 or f16; default: the config's `run.precision`.
    #[arg(long)]
    pub precision: Option<Precision>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// An error unless the model's labels are the dataset's classes, in the same order.
pub fn check_labels(model_dir: &Path, model_labels: &[String], classes: &[String]) -> Result<()> {
    if model_labels == classes {
        return Ok(());
    }
    let what = if model_labels.len() != classes.len() {
        format!("the model has {} labels but the dataset has {} classes", model_labels.len(), classes.len())
    } else {
        let first = (0..classes.len()).find(|&i| model_labels[i] != classes[i]).unwrap_or(0);
        format!("class {first} is \"{}\" in the model but \"{}\" in the dataset", model_labels[first], classes[first])
    };
    bail!(
        "the labels of {} do not match the dataset's classes: {what}\n  model labels (config.json id2label): {:?}\n  \
         dataset classes:                     {:?}\nevaluate with the dataset the model was trained on, or fix id2label",
        model_dir.display(),
        model_labels,
        classes
    )
}

/// Warns when the model directory's own normalisation differs from the config's.
fn check_normalisation(model_dir: &Path, model_config: &ViTConfig, used: &ImageProcessor, normalize: &str) {
    if !model_dir.join(PREPROCESSOR_CONFIG).exists() {
        return;
    }
    if let Ok(own) = ImageProcessor::load(model_dir, model_config.num_channels)
        && (own.image_mean != used.image_mean
            || own.image_std != used.image_std
            || own.do_normalize != used.do_normalize)
    {
        eprintln!(
            "warning: {} normalises with mean {:?} / std {:?}, but the config's data.normalize = \"{}\" gives mean \
             {:?} / std {:?}; the accuracy may be too low (set data.normalize to match)",
            model_dir.join(PREPROCESSOR_CONFIG).display(),
            own.image_mean,
            own.image_std,
            normalize,
            used.image_mean,
            used.image_std
        );
    }
}

/// Runs the model over the chosen split and counts.
pub fn evaluate(args: &EvalArgs) -> Result<(EvalCounts, String)> {
    let config = RunConfig::load(&args.config, &args.overrides)?;
    let _autocast = autocast(args.precision.unwrap_or(config.run.precision));
    let device = config.run.device.device()?;
    let precision = args.precision.unwrap_or(config.run.precision);
    vit_model::precision::check_supported(precision, &device).map_err(|e| anyhow::anyhow!("precision: {e}"))?;
    let model_dir = resolve_reference(&args.model, "--model")?;
    let (model, model_config) = load_classifier(&model_dir, &device)?;
    let data = open_datasets(&config.data, config.run.seed)?;
    check_labels(&model_dir, &model_config.labels(), &data.classes)?;
    if model.num_labels() != data.classes.len() {
        bail!(
            "{}: the classifier has {} outputs but config.json lists {} labels",
            args.model.display(),
            model.num_labels(),
            data.classes.len()
        );
    }
    let interpolate =
        check_image_size(config.data.image_size, model_config.image_size, config.model.interpolate_pos_encoding)
            .context("data.image_size")?;
    let processor = processor(&config.data, model_config.num_channels)?;
    check_normalisation(&model_dir, &model_config, &processor, &config.data.normalize.to_string());
    let (_, eval_batcher) = batchers(&config.data, &processor, config.run.seed, None, None)?;
    let batch_size = config.data.eval_batch_size();
    let (split, images) = match (args.split.as_deref(), data.test) {
        (Some("valid"), _) | (None, None) => ("valid", data.valid),
        (_, Some(test)) => ("test", test),
        (Some(_), None) => bail!(
            "--split test: {} has no test set here (set data.test_dir for an ImageFolder; with data.validation = \
             \"test\" the test set is the validation split: use --split valid)",
            config.data.path.display()
        ),
    };
    let loader = EpochLoader::evaluation(images, eval_batcher, batch_size, device);
    let counts = evaluate_classifier(&model, &loader, interpolate, data.classes, true)?;
    let description = format!("{} {} ({split} split)", config.data.dataset.name(), config.data.path.display());
    Ok((counts, description))
}

/// `vit-train eval`.
pub fn run(args: EvalArgs) -> Result<()> {
    let (counts, data) = evaluate(&args)?;
    if args.json {
        println!("{}", counts.to_json(&args.model, &data));
    } else {
        print!("{}", counts.to_text(&args.model, &data));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn label_mismatch_lists_both() {
        let err = check_labels(Path::new("m"), &names(&["a", "b"]), &names(&["a", "c"])).unwrap_err().to_string();
        assert!(err.contains("\"b\"") && err.contains("\"c\""), "{err}");
        let err = check_labels(Path::new("m"), &names(&["a"]), &names(&["a", "c"])).unwrap_err().to_string();
        assert!(err.contains("1 labels") && err.contains("2 classes"), "{err}");
        assert!(check_labels(Path::new("m"), &names(&["a"]), &names(&["a"])).is_ok());
    }
}
