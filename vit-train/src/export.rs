//! `vit-train export`: a training checkpoint → an HF model directory.

use std::path::Path;

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::Device;
use burn::train::checkpoint::Checkpointer;
use vit_data::ImageProcessor;
use vit_model::{PretrainedViT, ViTConfig, ViTForImageClassification, ViTForMaskedImageModeling};

use crate::checkpoint::{AtomicFileCheckpointer, latest_complete_epoch};
use crate::run_config::{RunConfig, Task};
use crate::steps::{ClassifierStep, SimMimStep};
use crate::train::{MODEL_CONFIG_FILE, checkpoint_dir};

/// Exports epoch `epoch` (default: the latest complete one) of the run in `run` to `output`.
pub fn export(run: &Path, epoch: Option<usize>, output: &Path) -> Result<usize> {
    let config = RunConfig::load(&run.join("run_config.toml"), &[])
        .with_context(|| format!("{} is not a vit-train run directory", run.display()))?;
    let vit_config = ViTConfig::load(run.join(MODEL_CONFIG_FILE))?;
    let processor = ImageProcessor::load(run, vit_config.num_channels)?;
    let ckpt = checkpoint_dir(run);
    let epoch = match epoch.or_else(|| latest_complete_epoch(&ckpt)) {
        Some(e) => e,
        None => bail!("{} holds no complete checkpoint", ckpt.display()),
    };
    let record: ModuleRecord = Checkpointer::<ModuleRecord>::restore(&AtomicFileCheckpointer::new(&ckpt, "model"), epoch)
        .map_err(|e| anyhow::anyhow!("cannot read the model checkpoint of epoch {epoch} in {}: {e}", ckpt.display()))?;
    let device = Device::flex();
    let bad = |e| anyhow::anyhow!("the checkpoint of epoch {epoch} does not fit the run's model: {e:?}");
    match config.task {
        Task::Classification => {
            let step = ClassifierStep {
                model: ViTForImageClassification::new(&vit_config, &device),
                interpolate_pos_encoding: false,
                guard: None,
            };
            step.try_load_record(record).map_err(bad)?.model.save_pretrained(&vit_config, output)?;
        }
        Task::Simmim => {
            let step = SimMimStep { model: ViTForMaskedImageModeling::new(&vit_config, &device)?, guard: None, samples: None };
            step.try_load_record(record).map_err(bad)?.model.save_pretrained(&vit_config, output)?;
        }
    }
    processor.save(output)?;
    Ok(epoch)
}
