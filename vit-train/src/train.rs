//! A training run: output directory, data, model, optimizer, burn-train's `Learner`, resume,
//! and the exported best model.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use burn::data::dataloader::DataLoader;
use burn::store::ModuleRecord;
use burn::tensor::Device;
use burn::train::checkpoint::{
    Checkpointer, ComposedCheckpointingStrategy, KeepLastNCheckpoints, MetricCheckpointingStrategy,
};
use burn::train::metric::store::{Aggregate, Direction, Split};
use burn::train::metric::{AccuracyMetric, LearningRateMetric, LossMetric, TopKAccuracyMetric};
use burn::train::{
    ExecutionStrategy, InferenceStep, Learner, LearnerModel, MetricEarlyStoppingStrategy, MultiDeviceOptim,
    TrainStep, TrainingStrategy, StoppingCondition, SupervisedTraining,
};
use vit_data::{ImageBatch, ImageProcessor};
use vit_model::{
    LoadOptions, PretrainedViT, ViTConfig, ViTForImageClassification, ViTForMaskedImageModeling,
};

use crate::checkpoint::{AtomicFileCheckpointer, latest_complete_epoch};
use crate::data_setup::{batchers, open_datasets, processor};
use crate::device::parse_device;
use crate::loader::EpochLoader;
use crate::metrics_csv;
use crate::optim::{build_optimizer, build_schedule};
use crate::renderer::ProgressRenderer;
use crate::run_config::{RunConfig, Task};
use crate::samples::SampleWriter;
use crate::segments::Segments;
use crate::steps::{ClassifierStep, NonFinitePolicy, SimMimStep, StepGuard};

/// Options of `vit-train train` beyond the config file.
#[derive(Clone, Debug, Default)]
pub struct TrainOptions {
    /// Continue from the output directory's last checkpoint (also done automatically when the
    /// directory holds a run of the same config).
    pub resume: bool,
    /// Replace a different run in the output directory.
    pub overwrite: bool,
    /// Skip optimizer steps whose loss is NaN or infinite instead of stopping.
    pub skip_nonfinite: bool,
}

/// What a finished run reports.
#[derive(Debug)]
pub struct TrainSummary {
    /// The output directory.
    pub output_dir: PathBuf,
    /// The exported HF model directory.
    pub exported: PathBuf,
}

const CONFIG_FILE: &str = "run_config.toml";
/// The model's HF `config.json`, kept in the run directory under this name.
pub const MODEL_CONFIG_FILE: &str = "model_config.json";

/// The checkpoint directory of a run.
pub fn checkpoint_dir(output_dir: &Path) -> PathBuf {
    output_dir.join("checkpoint")
}

/// Prepares the output directory and decides whether to resume (the checkpoint to resume from).
/// Refuses to mix runs, and fails before any training when the directory cannot be written.
fn prepare_output_dir(config: &RunConfig, options: &TrainOptions) -> Result<Option<usize>> {
    let dir = &config.run.output_dir;
    let resume = resume_point(config, options)?;
    let refuse = |what: &str, e: &dyn std::fmt::Display| {
        anyhow::anyhow!(
            "{what} the output directory {} ({e}); choose another run.output_dir, or make it writable",
            dir.display()
        )
    };
    std::fs::create_dir_all(dir).map_err(|e| refuse("cannot create", &e))?;
    // Writing the config (atomically, as every file of the run) is the probe: a read-only or
    // full directory fails here rather than at the first checkpoint.
    vit_model::checkpoint::write_atomic(&dir.join(CONFIG_FILE), config.to_toml().as_bytes())
        .map_err(|e| refuse("cannot write into", &e))?;
    Ok(resume)
}

/// Whether the run in the output directory is continued (from which checkpoint) or a new one starts;
/// clears a different run when `--overwrite` is given.
fn resume_point(config: &RunConfig, options: &TrainOptions) -> Result<Option<usize>> {
    let dir = &config.run.output_dir;
    let saved = dir.join(CONFIG_FILE);
    if !saved.is_file() {
        if options.resume {
            bail!("--resume: {} holds no run to resume ({CONFIG_FILE} is missing)", dir.display());
        }
        return Ok(None);
    }
    let previous = std::fs::read_to_string(&saved).with_context(|| format!("cannot read {}", saved.display()))?;
    let latest = latest_complete_epoch(&checkpoint_dir(dir));
    if previous == config.to_toml() {
        if latest.is_none() && options.resume {
            eprintln!("note: --resume given but {} holds no complete checkpoint; starting fresh", dir.display());
        }
        return Ok(latest);
    }
    if options.resume
        && !options.overwrite
        && let Some(epoch) = latest
    {
        eprintln!(
            "note: the config differs from the one {} was started with; resuming from checkpoint {epoch} with the new one",
            dir.display()
        );
        return Ok(Some(epoch));
    }
    if !options.overwrite {
        bail!(
            "the output directory {} already holds a different run (its {CONFIG_FILE} differs from this \
             config). Choose another run.output_dir, or pass --overwrite to replace it",
            dir.display()
        );
    }
    for sub in ["checkpoint", "train", "valid", "best", "samples"] {
        let _ = std::fs::remove_dir_all(dir.join(sub));
    }
    for file in [metrics_csv::FILE, "curves.png", "experiment.log", MODEL_CONFIG_FILE, "preprocessor_config.json"] {
        let _ = std::fs::remove_file(dir.join(file));
    }
    Ok(None)
}

/// The model configuration of a run from scratch.
pub fn preset_config(config: &RunConfig, classes: &[String]) -> Result<ViTConfig> {
    let m = &config.model;
    let mut c = match m.preset.as_deref() {
        Some("vit-tiny") => ViTConfig::tiny(),
        Some("vit-small") => ViTConfig::small(),
        Some("vit-large") => ViTConfig::large(),
        _ => ViTConfig::base(),
    };
    c.image_size = m.image_size.unwrap_or(config.data.image_size);
    c.patch_size = m.patch_size.unwrap_or(c.patch_size);
    c.encoder_stride = m.encoder_stride.unwrap_or(c.patch_size);
    macro_rules! set {
        ($($field:ident),*) => { $(if let Some(v) = m.$field.clone() { c.$field = v; })* };
    }
    set!(hidden_size, num_hidden_layers, num_attention_heads, intermediate_size, hidden_dropout_prob,
         attention_probs_dropout_prob, qkv_bias, initializer_range, layer_norm_eps);
    if let Some(act) = &m.hidden_act {
        c.hidden_act = vit_model::HiddenAct::from_name(act)
            .with_context(|| format!("model.hidden_act: unknown activation \"{act}\""))?;
    }
    c = match m.num_labels {
        Some(n) if n != classes.len() => bail!(
            "model.num_labels is {n} but the dataset has {} classes; remove num_labels to take them from the data",
            classes.len()
        ),
        _ => c.with_labels(classes.to_vec()),
    };
    c.validate().context("model")?;
    Ok(c)
}

fn load_classifier(config: &RunConfig, classes: &[String], device: &Device) -> Result<(ViTForImageClassification, ViTConfig)> {
    match &config.model.pretrained {
        Some(dir) => {
            let options = LoadOptions {
                ignore_mismatched_sizes: config.model.ignore_mismatched_sizes,
                labels: Some(classes.to_vec()),
                ..LoadOptions::default()
            };
            let (model, vit_config, report) = ViTForImageClassification::from_pretrained(dir, &options, device)
                .with_context(|| format!("model.pretrained: cannot load {}", dir.display()))?;
            eprintln!("{report}");
            Ok((model, vit_config))
        }
        None => {
            let c = preset_config(config, classes)?;
            Ok((ViTForImageClassification::new(&c, device), c))
        }
    }
}

fn load_simmim(config: &RunConfig, classes: &[String], device: &Device) -> Result<(ViTForMaskedImageModeling, ViTConfig)> {
    match &config.model.pretrained {
        Some(dir) => {
            let (model, c, report) = ViTForMaskedImageModeling::from_pretrained(dir, &LoadOptions::default(), device)
                .with_context(|| format!("model.pretrained: cannot load {}", dir.display()))?;
            eprintln!("{report}");
            Ok((model, c))
        }
        None => {
            let c = preset_config(config, classes)?;
            Ok((ViTForMaskedImageModeling::new(&c, device).context("model")?, c))
        }
    }
}

/// Everything `launch` needs besides the model.
struct Launch {
    config: RunConfig,
    vit_config: ViTConfig,
    processor: ImageProcessor,
    train: Arc<dyn DataLoader<ImageBatch>>,
    valid: Arc<dyn DataLoader<ImageBatch>>,
    segments: Segments,
    /// The checkpoint (segment) the run resumes from.
    resume_epoch: Option<usize>,
    options: TrainOptions,
}

impl Launch {
    fn training<M>(&self) -> Result<SupervisedTraining<M>>
    where
        M: LearnerModel + TrainStep<Input = ImageBatch> + InferenceStep<Input = ImageBatch>,
    {
        let dir = &self.config.run.output_dir;
        let ckpt = checkpoint_dir(dir);
        let (batch_size, log_every) = (self.config.data.batch_size, self.config.run.log_every);
        let renderer = ProgressRenderer::new(dir, batch_size, log_every, self.segments, self.resume_epoch)
            .context("cannot set up progress output")?;
        let strategy = ComposedCheckpointingStrategy::builder()
            .add(KeepLastNCheckpoints::new(self.config.run.keep_last.max(1)))
            .add(MetricCheckpointingStrategy::new(&LossMetric::new(), Aggregate::Mean, Direction::Lowest, Split::Valid))
            .build();
        let mut training = SupervisedTraining::new(dir, self.train.clone(), self.valid.clone())
            .with_custom_checkpointers(
                AtomicFileCheckpointer::new(&ckpt, "model"),
                AtomicFileCheckpointer::new(&ckpt, "optim"),
                AtomicFileCheckpointer::new(&ckpt, "scheduler"),
            )
            .with_checkpointing_strategy(strategy)
            .renderer(Box::new(renderer))
            .num_epochs(self.segments.count());
        if let Some(epoch) = self.resume_epoch {
            training = training.checkpoint(epoch);
        }
        if self.config.optimizer.grad_accumulation > 1 {
            // burn-train sums the gradients of this many micro-batches (the guard divides each
            // loss by it) and steps the optimizer and the schedule once; an epoch's last, shorter
            // group is stepped at its end.
            training = training.grads_accumulation(self.config.optimizer.grad_accumulation);
        }
        if self.config.run.devices.len() > 1 {
            let devices = self
                .config
                .run
                .devices
                .iter()
                .map(|d| parse_device(d).map(|d| d.autodiff()))
                .collect::<Result<Vec<_>>>()?;
            training = training.with_training_strategy(TrainingStrategy::Default(ExecutionStrategy::multi(
                devices,
                MultiDeviceOptim::OptimMainDevice,
            )));
        }
        if let Some(patience) = self.config.run.early_stopping_patience {
            training = training.early_stopping(MetricEarlyStoppingStrategy::new(
                &LossMetric::new(),
                Aggregate::Mean,
                Direction::Lowest,
                Split::Valid,
                StoppingCondition::NoImprovementSince { n_epochs: patience },
            ));
        }
        Ok(training)
    }

    fn guard(&self, interrupter: burn::train::Interrupter) -> StepGuard {
        let policy = if self.options.skip_nonfinite { NonFinitePolicy::Skip } else { NonFinitePolicy::Stop };
        let done = self.segments.micro_batches_before(self.segments.steps_after(self.resume_epoch.unwrap_or(0)));
        StepGuard::new(policy, interrupter, self.config.optimizer.max_grad_norm, self.config.optimizer.grad_accumulation, done)
    }

    fn check_guard(&self, guard: &StepGuard) -> Result<()> {
        let bad = guard.non_finite.lock().expect("guard lock").clone();
        if let Some((step, value)) = bad.first()
            && !self.options.skip_nonfinite
        {
            bail!(
                "training stopped: the loss became {value} at micro-batch {step}. The last good checkpoint in {} \
                 is intact; lower optimizer.lr, set optimizer.max_grad_norm, or pass --skip-nonfinite to skip such steps",
                checkpoint_dir(&self.config.run.output_dir).display()
            );
        }
        if !bad.is_empty() {
            eprintln!("warning: skipped {} optimizer steps with a non-finite loss (first at micro-batch {})", bad.len(), bad[0].0);
        }
        Ok(())
    }

    /// Writes the model's `config.json` and `preprocessor_config.json` into the run directory
    /// (as `model_config.json` and `preprocessor_config.json`), so that `vit-train export` can
    /// rebuild the model from a checkpoint without the data.
    fn save_model_files(&self) -> Result<()> {
        let dir = &self.config.run.output_dir;
        self.vit_config.save(dir.join(MODEL_CONFIG_FILE)).context("cannot write the model config")?;
        self.processor.save(dir).context("cannot write preprocessor_config.json")?;
        Ok(())
    }

    /// The best kept checkpoint (lowest validation loss): its number, validation row and model
    /// record.
    fn best_record(&self) -> Option<(usize, metrics_csv::Row, ModuleRecord)> {
        let dir = &self.config.run.output_dir;
        let mut rows: Vec<(metrics_csv::Row, f64)> = metrics_csv::read(&dir.join(metrics_csv::FILE))
            .ok()?
            .into_iter()
            .filter(|r| r.split == "valid")
            .filter_map(|r| r.loss.map(|loss| (r, loss)))
            .collect();
        rows.sort_by(|a, b| a.1.total_cmp(&b.1));
        let checkpointer = AtomicFileCheckpointer::new(&checkpoint_dir(dir), "model");
        rows.into_iter().find_map(|(row, _)| {
            let checkpoint = self.segments.segment_ending_at(row.step as usize);
            let record = Checkpointer::<ModuleRecord>::restore(&checkpointer, checkpoint).ok()?;
            Some((checkpoint, row, record))
        })
    }

    /// Exports the best kept checkpoint (else the final model) of the wrapped `step` model as an HF
    /// directory, with its preprocessing, and draws the curves.
    fn finish<W: burn::module::Module, M: PretrainedViT>(&self, step: W, inner: impl Fn(W) -> M) -> Result<PathBuf> {
        let dir = &self.config.run.output_dir;
        let best = dir.join("best");
        let step = match self.best_record() {
            Some((checkpoint, row, record)) => match step.clone().try_load_record(record) {
                Ok(loaded) => {
                    eprintln!(
                        "exporting the best checkpoint ({checkpoint}: step {}, epoch {}) to {}",
                        row.step,
                        metrics_csv::cell(Some(row.epoch)),
                        best.display()
                    );
                    loaded
                }
                Err(e) => {
                    eprintln!("warning: cannot reload checkpoint {checkpoint} ({e:?}); exporting the final model");
                    step
                }
            },
            None => step,
        };
        let model = inner(step);
        model.save_pretrained(&self.vit_config, &best).context("cannot export the model")?;
        self.processor.save(&best).context("cannot write preprocessor_config.json")?;
        if let Err(e) = crate::curves::write_curves(&dir.join(metrics_csv::FILE), &dir.join("curves.png")) {
            eprintln!("warning: no curves.png: {e:#}");
        }
        Ok(best)
    }
}

/// The model configuration a run will use (read from `model.pretrained`, or the preset).
fn model_config(config: &RunConfig, classes: &[String]) -> Result<ViTConfig> {
    match &config.model.pretrained {
        Some(dir) => ViTConfig::load(dir).with_context(|| format!("model.pretrained: {}", dir.display())),
        None => preset_config(config, classes),
    }
}

/// Runs the training described by `config`.
pub fn train(config: RunConfig, options: TrainOptions) -> Result<TrainSummary> {
    let device = match config.run.devices.first() {
        Some(first) => parse_device(first)?,
        None => parse_device(&config.run.device)?,
    };
    device.seed(config.run.seed);
    if config.data.workers > 0 {
        // The data threads (rayon) also run flex's kernels; set once per process.
        let _ = rayon::ThreadPoolBuilder::new().num_threads(config.data.workers).build_global();
    }
    let train_device = device.clone().autodiff();
    let resume_epoch = prepare_output_dir(&config, &options)?;
    if let Some(checkpoint) = resume_epoch {
        eprintln!("resuming {} from checkpoint {checkpoint}", config.run.output_dir.display());
    }

    let data = open_datasets(&config.data, config.run.seed)?;
    let seed = config.run.seed;
    let planned = model_config(&config, &data.classes)?;
    let processor = processor(&config.data, planned.num_channels)?;
    let mask = (config.task == Task::Simmim).then_some((config.data.mask_patch_size, planned.patch_size));
    let (train_batcher, eval_batcher) = batchers(&config.data, &processor, seed, mask)?;
    let eval_batch = config.data.eval_batch_size.unwrap_or(config.data.batch_size);
    let classes = data.classes.clone();
    let r = &config.run;
    let batches_per_epoch = burn::data::dataset::Dataset::len(&data.train).div_ceil(config.data.batch_size);
    let segments =
        Segments::new(batches_per_epoch, config.optimizer.grad_accumulation, r.epochs, r.max_steps, r.eval_every);
    let train_loader = EpochLoader::training(
        data.train,
        train_batcher,
        config.data.batch_size,
        seed,
        segments,
        resume_epoch.unwrap_or(0),
        train_device.clone(),
    );
    let valid_loader = EpochLoader::evaluation(data.valid, eval_batcher, eval_batch, train_device.clone());
    let optimizer = build_optimizer(&config.optimizer)?;
    let scheduler = build_schedule(&config.optimizer, segments.total_steps, planned.num_hidden_layers)?;
    let mut launch = Launch {
        config: config.clone(),
        vit_config: planned,
        processor,
        train: Arc::new(train_loader),
        valid: Arc::new(valid_loader),
        segments,
        resume_epoch,
        options,
    };

    let exported = match config.task {
        Task::Classification => {
            let (mut model, vit_config) = load_classifier(&config, &classes, &train_device)?;
            launch.vit_config = vit_config;
            launch.save_model_files()?;
            model.label_smoothing = config.optimizer.label_smoothing as f32;
            let mut training = launch
                .training::<ClassifierStep>()?
                .metrics((AccuracyMetric::new(), LossMetric::new()))
                .metric_train_numeric(LearningRateMetric::new());
            if classes.len() > 5 {
                training = training
                    .metric_train_numeric(TopKAccuracyMetric::new(5))
                    .metric_valid_numeric(TopKAccuracyMetric::new(5));
            }
            let guard = launch.guard(training.interrupter());
            let step = ClassifierStep {
                model,
                interpolate_pos_encoding: config.model.interpolate_pos_encoding,
                guard: Some(guard.clone()),
            };
            let result = training.launch(Learner::new(step, optimizer, scheduler));
            launch.check_guard(&guard)?;
            if let Some(error) = result.error {
                bail!("training failed: {error}");
            }
            launch.finish(result.model, |s: ClassifierStep| s.model)?
        }
        Task::Simmim => {
            let (model, vit_config) = load_simmim(&config, &classes, &train_device)?;
            launch.vit_config = vit_config;
            launch.save_model_files()?;
            let training = launch
                .training::<SimMimStep>()?
                .metrics((LossMetric::new(),))
                .metric_train_numeric(LearningRateMetric::new());
            let guard = launch.guard(training.interrupter());
            let samples = SampleWriter {
                dir: config.run.output_dir.join("samples"),
                every: config.run.sample_every,
                mean: launch.processor.image_mean.clone(),
                std: launch.processor.image_std.clone(),
                rows: 8,
            };
            let step = SimMimStep { model, guard: Some(guard.clone()), samples: Some(samples) };
            let result = training.launch(Learner::new(step, optimizer, scheduler));
            launch.check_guard(&guard)?;
            if let Some(error) = result.error {
                bail!("training failed: {error}");
            }
            launch.finish(result.model, |s: SimMimStep| s.model)?
        }
    };
    Ok(TrainSummary { output_dir: config.run.output_dir.clone(), exported })
}
