//! `vit-train export`: a training checkpoint → an HF model directory.

use std::path::{Path, PathBuf};
use vit_model::Precision;

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::Device;
use burn::train::checkpoint::Checkpointer;
use clap::Args;
use vit_data::ImageProcessor;
use vit_model::{PretrainedViT, ViTConfig, ViTForImageClassification, ViTForMaskedImageModeling};

use crate::report::metrics_csv;
use crate::report::model_card::{CardInput, write_card_files};
use crate::run::checkpoint_sets::{CheckpointSets, latest_intact, verify};
use crate::run::checkpointer::SetCheckpointer;
use crate::run::config::{RunConfig, Task};
use crate::run::dir::RunDir;
use crate::run::steps::{ClassifierStep, SimMimStep};

/// Arguments of `vit-train export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The run's output directory.
    #[arg(long)]
    pub run: PathBuf,
    /// The checkpoint to export: an epoch, or with `run.eval_every` an evaluation (default: the
    /// latest complete one).
    #[arg(long)]
    pub epoch: Option<usize>,
    /// Where to write the HF model directory.
    #[arg(long)]
    pub output: PathBuf,
    /// Replace `--output` when it is a directory that is not empty.
    #[arg(long)]
    pub overwrite: bool,
    /// `trained` weights or the weight `average` (runs with `run.ema_decay`); default: what the
    /// run exports (`run.export_ema`).
    #[arg(long, value_parser = ["trained", "average"])]
    pub weights: Option<String>,
    /// The dtype of the exported weights: f32 (as trained), or bf16/f16 (half the size;
    /// `transformers` loads them).
    #[arg(long, default_value_t = Precision::F32)]
    pub dtype: Precision,
}

/// Runs `vit-train export`.
pub fn run(args: ExportArgs) -> Result<()> {
    let average = args.weights.as_deref().map(|w| w == "average");
    let epoch = export(&args.run, args.epoch, &args.output, args.overwrite, average, args.dtype)?;
    println!("exported epoch {epoch} of {} to {}", args.run.display(), args.output.display());
    Ok(())
}

/// Exports checkpoint `epoch` (default: the latest complete one) of the run in `run` to `output`,
/// which must not be a non-empty directory unless `overwrite`: the weight average
/// (`Some(true)`), the trained weights (`Some(false)`) or what the run exports (`None`).
pub fn export(
    run: &Path,
    epoch: Option<usize>,
    output: &Path,
    overwrite: bool,
    average: Option<bool>,
    dtype: Precision,
) -> Result<usize> {
    let dir = RunDir::new(run);
    let config = RunConfig::load(&dir.run_config(), &[])
        .with_context(|| format!("{} is not a vit-train run directory", run.display()))?;
    let average = average.unwrap_or(config.run.export_ema);
    if average && config.run.ema_decay == 0.0 {
        bail!("--weights average: {} kept no weight average (its run.ema_decay is 0)", run.display());
    }
    let vit_config = ViTConfig::load(dir.model_config())?;
    let processor = ImageProcessor::load(dir.processor_dir(), vit_config.num_channels)?;
    let ckpt = dir.checkpoint_dir();
    let epoch = match epoch {
        Some(e) => {
            verify(&ckpt, e).with_context(|| format!("no intact checkpoint of epoch {e} in {}", ckpt.display()))?;
            e
        }
        None => match latest_intact(&ckpt)? {
            Some(e) => e,
            None => bail!("{} holds no complete checkpoint", ckpt.display()),
        },
    };
    if output.is_file() {
        bail!("--output {} is a file; give a directory", output.display());
    }
    if vit_io::is_non_empty_dir(output) && !overwrite {
        bail!(
            "--output {} is not empty; pass --overwrite to replace it, or choose another directory",
            output.display()
        );
    }
    let sets = CheckpointSets::new(&ckpt);
    let record: ModuleRecord = Checkpointer::<ModuleRecord>::restore(&SetCheckpointer::new(&sets, "model"), epoch)
        .map_err(|e| anyhow::anyhow!("cannot read the model checkpoint of epoch {epoch} in {}: {e}", ckpt.display()))?;
    let device = Device::flex();
    let bad = |e| anyhow::anyhow!("the checkpoint of epoch {epoch} does not fit the run's model: {e:?}");
    vit_io::replace_dir::<anyhow::Error>(output, |tmp| {
        match config.task {
            Task::Classification => {
                let with_ema = config.run.ema_decay > 0.0;
                let step = ClassifierStep {
                    model: ViTForImageClassification::new(&vit_config, &device),
                    interpolate_pos_encoding: false,
                    guard: None,
                    drop_path: Default::default(),
                    ema: with_ema.then(|| ViTForImageClassification::new(&vit_config, &device)),
                    ema_run: None,
                    precision: Default::default(),
                };
                let step = step.try_load_record(record).map_err(bad)?;
                let model = match (average, step.ema) {
                    (true, Some(ema)) => ema,
                    _ => step.model,
                };
                model.save_pretrained_in(&vit_config, tmp, dtype)?;
            }
            Task::Simmim => {
                let model = ViTForMaskedImageModeling::new(&vit_config, &device)?;
                let step = SimMimStep {
                    model,
                    guard: None,
                    samples: None,
                    drop_path: Default::default(),
                    precision: Default::default(),
                };
                step.try_load_record(record).map_err(bad)?.model.save_pretrained_in(&vit_config, tmp, dtype)?;
            }
        }
        processor.save(tmp)?;
        let rows = metrics_csv::read(&dir.metrics_csv()).unwrap_or_default();
        // Checkpoint N was saved after the N-th validation.
        let step = rows.iter().filter(|r| r.split == "valid").nth(epoch.saturating_sub(1)).map(|r| r.step);
        let name = run.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        write_card_files(tmp, &CardInput { config: &config, name: &name, rows: &rows, step })?;
        Ok(())
    })?;
    Ok(epoch)
}
