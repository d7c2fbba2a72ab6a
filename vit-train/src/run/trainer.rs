//! The training loop: the plan's data, model, optimizer and checkpoints handed to burn-train's
//! `Learner`, and the best model exported at the end.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use anyhow::{Context, Result, bail};
use burn::data::dataloader::DataLoader;
use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::distributed::{DistributedConfig, ReduceOperation};
use burn::train::checkpoint::{
    Checkpointer, ComposedCheckpointingStrategy, KeepLastNCheckpoints, MetricCheckpointingStrategy,
};
use burn::train::metric::store::{Aggregate, Direction, Split};
use burn::train::metric::{AccuracyMetric, LearningRateMetric, LossMetric, TopKAccuracyMetric};
use burn::train::{
    ExecutionStrategy, InferenceStep, Interrupter, Learner, LearnerModel, MetricEarlyStoppingStrategy,
    MultiDeviceOptim, StoppingCondition, SupervisedTraining, TrainStep, TrainingStrategy,
};
use vit_data::ImageBatch;
use vit_model::{Precision, PretrainedViT, ViTForImageClassification};

use super::checkpoint_sets::{CheckpointSets, latest_intact, read_manifest, remove_stale_temporaries};
use super::checkpointer::{SaveGate, SetCheckpointer};
use super::clock::RunClock;
use super::config::Task;
use super::data::batchers;
use super::ema::{EmaRun, EmaSchedule, EmaValidation};
use super::evaluation::evaluate_classifier;
use super::guard::{NonFinitePolicy, StepGuard};
use super::loader::EpochLoader;
use super::loss_scale::LossScaler;
use super::model;
use super::optim::{build_optimizer, build_schedule};
use super::parallel::Parallelism;
use super::plan::{RunPlan, Start};
use super::steps::{ClassifierStep, DropPathSchedule, SimMimStep};
use crate::report::curves::write_curves;
use crate::report::metrics_csv;
use crate::report::model_card::{CardInput, write_card_files};
use crate::report::renderer::ProgressRenderer;
use crate::report::samples::SampleWriter;

/// What a finished run reports.
#[derive(Debug)]
pub struct TrainSummary {
    /// The output directory.
    pub output_dir: PathBuf,
    /// The exported HF model directory.
    pub exported: PathBuf,
}

/// The run's guard, made once burn-train's interrupter exists, after the checkpointers that ask it.
type GuardSlot = Arc<OnceLock<StepGuard>>;

/// The checkpointers' gate: closed once the guard has met a non-finite value.
fn gate(slot: &GuardSlot) -> SaveGate {
    let slot = slot.clone();
    Arc::new(move || slot.get().is_none_or(StepGuard::may_save))
}

/// A planned run with its loaders and clock, ready to launch.
struct Launch {
    plan: RunPlan,
    /// The previous run moved aside by `--overwrite`.
    retired: Option<PathBuf>,
    clock: RunClock,
    train: Arc<dyn DataLoader<ImageBatch>>,
    valid: Arc<dyn DataLoader<ImageBatch>>,
}

impl Launch {
    fn training<M>(&self, ema: Option<EmaValidation>, guard: &GuardSlot) -> Result<SupervisedTraining<M>>
    where
        M: LearnerModel + TrainStep<Input = ImageBatch> + InferenceStep<Input = ImageBatch>,
    {
        let (config, dir) = (&self.plan.config, &self.plan.dir);
        let resume = self.plan.start.checkpoint();
        let mut renderer = ProgressRenderer::new(&dir.metrics_csv(), config.run.log_every, self.clock.clone(), resume)
            .context("cannot set up progress output")?;
        if let Some(ema) = ema {
            renderer = renderer.with_ema(ema);
        }
        let strategy = ComposedCheckpointingStrategy::builder()
            .add(KeepLastNCheckpoints::new(config.run.keep_last.max(1)))
            .add(MetricCheckpointingStrategy::new(&LossMetric::new(), Aggregate::Mean, Direction::Lowest, Split::Valid))
            .build();
        let mut sets = CheckpointSets::new(&dir.checkpoint_dir()).retiring(self.retired.clone());
        if config.run.precision == Precision::F16 {
            let slot = guard.clone();
            sets = sets.with_loss_scaler(Arc::new(move |n| slot.get()?.loss_scaler_at_checkpoint(n)));
        }
        let mut training = SupervisedTraining::new(dir.root(), self.train.clone(), self.valid.clone())
            .with_custom_checkpointers(
                SetCheckpointer::new(&sets, "model").gated(gate(guard)),
                SetCheckpointer::new(&sets, "optim").gated(gate(guard)),
                SetCheckpointer::new(&sets, "scheduler").gated(gate(guard)),
            )
            .with_checkpointing_strategy(strategy)
            .renderer(Box::new(renderer))
            .num_epochs(self.plan.segments.count());
        if let Some(epoch) = resume {
            training = training.checkpoint(epoch);
        }
        if config.optimizer.grad_accumulation > 1 {
            // burn-train sums the gradients of this many micro-batches (the guard divides each
            // loss by it) and steps the optimizer and the schedule once; an epoch's last, shorter
            // group is stepped at its end.
            training = training.grads_accumulation(config.optimizer.grad_accumulation);
        }
        if config.run.devices.len() > 1 {
            let devices = config.run.devices.iter().map(|d| d.device().map(|d| d.autodiff())).collect::<Result<_>>()?;
            let strategy = match self.parallelism() {
                Parallelism::Ddp { .. } => {
                    ExecutionStrategy::ddp(devices, DistributedConfig { all_reduce_op: ReduceOperation::Mean })
                }
                _ => ExecutionStrategy::multi(devices, MultiDeviceOptim::OptimMainDevice),
            };
            training = training.with_training_strategy(TrainingStrategy::Default(strategy));
        }
        if let Some(patience) = config.run.early_stopping_patience {
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

    /// How the run's devices train together.
    fn parallelism(&self) -> Parallelism {
        Parallelism::of(&self.plan.config.run.devices)
    }

    fn guard(&self, interrupter: Interrupter) -> StepGuard {
        let options = &self.plan.options;
        let policy = match options.skip_nonfinite {
            true => NonFinitePolicy::Skip { max_consecutive: options.max_skips },
            false => NonFinitePolicy::Stop,
        };
        let o = &self.plan.config.optimizer;
        // Each loss is scaled so that the gradients burn-train adds up are the mean over the
        // run's micro-batch: its accumulation group, and its devices unless DDP averages them.
        let summed = o.grad_accumulation.max(1) * self.parallelism().summed_shares();
        let guard = StepGuard::new(policy, interrupter, o.max_grad_norm, summed, self.clock.clone())
            .flushing_every(self.plan.config.run.log_every);
        match self.plan.config.run.precision {
            Precision::F16 => guard.with_loss_scaling(self.resumed_loss_scaler()),
            _ => guard,
        }
    }

    /// The float16 loss scaler as the checkpoint this run resumes from left it (GradScaler's
    /// initial state for a fresh run, or a checkpoint that did not record one).
    fn resumed_loss_scaler(&self) -> LossScaler {
        let Some(n) = self.plan.start.checkpoint() else { return LossScaler::default() };
        match read_manifest(&self.plan.dir.checkpoint_dir(), n).map(|m| m.loss_scaler) {
            Ok(Some(scaler)) => scaler,
            _ => {
                eprintln!(
                    "note: checkpoint {n} records no float16 loss scale (it was not trained in float16, or by an \
                     older vit-train); the loss scale restarts at {}",
                    LossScaler::default().scale
                );
                LossScaler::default()
            }
        }
    }

    /// What is left of the run to fall back on, for messages.
    fn checkpoint_note(&self) -> String {
        let dir = self.plan.dir.checkpoint_dir();
        match latest_intact(&dir) {
            Ok(Some(n)) => format!("The last good checkpoint ({n}) in {} is intact", dir.display()),
            _ => "No checkpoint had been saved yet".to_string(),
        }
    }

    fn check_guard(&self, guard: &StepGuard) -> Result<()> {
        guard.flush();
        if let Some(scaler) = guard.loss_scaler() {
            eprintln!(
                "float16 loss scaling: {} optimizer steps skipped for overflowing gradients; final scale {}",
                scaler.skipped, scaler.scale
            );
        }
        let events = guard.events();
        let Some(first) = events.first() else { return Ok(()) };
        if !self.plan.options.skip_nonfinite {
            bail!(
                "training stopped: the {} became {} at micro-batch {}. {}; lower optimizer.lr, set \
                 optimizer.max_grad_norm, or pass --skip-nonfinite to skip such steps",
                first.what,
                first.value,
                first.micro_batch,
                self.checkpoint_note()
            );
        }
        let last = events.last().unwrap_or(first);
        if guard.gave_up() {
            bail!(
                "training stopped: more than {} optimizer steps in a row had a non-finite loss or gradient norm (the \
                 last at micro-batch {}: {} = {}); the weights are likely no longer finite. {}; lower optimizer.lr \
                 or raise --max-skips",
                self.plan.options.max_skips,
                last.micro_batch,
                last.what,
                last.value,
                self.checkpoint_note()
            );
        }
        eprintln!(
            "warning: skipped {} optimizer steps with a non-finite loss or gradient norm (first at micro-batch {})",
            events.len(),
            first.micro_batch
        );
        Ok(())
    }

    /// The run's stochastic depth.
    fn drop_path(&self) -> DropPathSchedule {
        DropPathSchedule { rate: self.plan.config.model.drop_path_rate, seed: self.plan.config.run.seed }
    }

    /// Writes the model's `config.json` and `preprocessor_config.json` into the run directory, so
    /// that `vit-train export` can rebuild the model from a checkpoint without the data.
    fn save_model_files(&self) -> Result<()> {
        let (plan, dir) = (&self.plan, &self.plan.dir);
        plan.vit_config.save(dir.model_config()).context("cannot write the model config")?;
        plan.processor.save(dir.processor_dir()).context("cannot write preprocessor_config.json")?;
        Ok(())
    }

    /// The best kept checkpoint (lowest validation loss): its number, validation row and record.
    fn best_record(&self) -> Option<(usize, metrics_csv::Row, ModuleRecord)> {
        let dir = &self.plan.dir;
        let best_split = if self.plan.config.run.export_ema { "valid_ema" } else { "valid" };
        let mut rows: Vec<(metrics_csv::Row, f64)> = metrics_csv::read(&dir.metrics_csv())
            .ok()?
            .into_iter()
            .filter(|r| r.split == best_split)
            .filter_map(|r| r.loss.map(|loss| (r, loss)))
            .collect();
        rows.sort_by(|a, b| a.1.total_cmp(&b.1));
        let checkpointer = SetCheckpointer::new(&CheckpointSets::new(&dir.checkpoint_dir()), "model");
        rows.into_iter().find_map(|(row, _)| {
            let checkpoint = self.clock.checkpoint_at_step(row.step as usize);
            let record = Checkpointer::<ModuleRecord>::restore(&checkpointer, checkpoint).ok()?;
            Some((checkpoint, row, record))
        })
    }

    /// Exports the best kept checkpoint (else the final model) of the wrapped `step` model as an HF
    /// directory, with its preprocessing, and draws the curves.
    /// Returns the exported directory and, when it is a kept checkpoint, its validation row.
    fn finish<W: Module, M: PretrainedViT>(
        &self,
        step: W,
        inner: impl Fn(W) -> M,
    ) -> Result<(PathBuf, Option<metrics_csv::Row>)> {
        let dir = &self.plan.dir;
        let best = dir.best_dir();
        let mut exported_row = None;
        let step = match self.best_record() {
            Some((checkpoint, row, record)) => match step.clone().try_load_record(record) {
                Ok(loaded) => {
                    eprintln!(
                        "exporting the best checkpoint ({checkpoint}: step {}, epoch {}) to {}",
                        row.step,
                        metrics_csv::cell(Some(row.epoch)),
                        best.display()
                    );
                    exported_row = Some(row);
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
        ensure_finite(&model).context("the model is not exported")?;
        vit_io::replace_dir::<anyhow::Error>(&best, |tmp| {
            model.save_pretrained(&self.plan.vit_config, tmp).context("cannot export the model")?;
            self.plan.processor.save(tmp).context("cannot write preprocessor_config.json")?;
            let rows = metrics_csv::read(&dir.metrics_csv()).unwrap_or_default();
            let name = dir.root().file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let step = exported_row.as_ref().map(|r| r.step);
            let card = CardInput { config: &self.plan.config, name: &name, rows: &rows, step };
            write_card_files(tmp, &card).context("cannot write the model card")?;
            Ok(())
        })?;
        if let Err(e) = write_curves(&dir.metrics_csv(), &dir.curves_png()) {
            eprintln!("warning: no curves.png: {e:#}");
        }
        Ok((best, exported_row))
    }

    /// Evaluates the exported classifier once on the held-out test set (when there is one) and
    /// appends a `test` row, at the exported checkpoint's step, to metrics.csv.
    fn test_exported(&self, exported: &Path, exported_row: Option<metrics_csv::Row>) -> Result<()> {
        let (plan, config) = (&self.plan, &self.plan.config);
        let Some(test) = plan.data.test.clone() else {
            return Ok(());
        };
        let _autocast = vit_model::autocast(config.run.precision);
        let (model, _) = model::load_classifier(exported, &plan.device)?;
        let (_, eval_batcher) = batchers(&config.data, &plan.processor, config.run.seed, None, None)?;
        let loader = EpochLoader::evaluation(test, eval_batcher, config.data.eval_batch_size(), plan.device.clone());
        let counts =
            evaluate_classifier(&model, &loader, plan.interpolate_pos_encoding, plan.data.classes.clone(), false)
                .context("cannot evaluate the exported model on the test set")?;
        let metrics = plan.dir.metrics_csv();
        let last = || metrics_csv::read(&metrics).ok().and_then(|rows| rows.into_iter().last());
        let at = exported_row.or_else(last).unwrap_or_default();
        let total = counts.total().max(1) as f64;
        let row = metrics_csv::Row {
            step: at.step,
            epoch: at.epoch,
            split: "test".into(),
            loss: Some(counts.loss_sum / total),
            accuracy: counts.accuracy().map(|a| 100.0 * a),
            top5: counts.has_top5().then(|| 100.0 * counts.top5_correct as f64 / total),
            lr: None,
            images_per_sec: None,
        };
        metrics_csv::append(&metrics, &row)?;
        eprintln!(
            "test: accuracy {}% on {} held-out images (the exported model, step {}; metrics.csv `test` row)",
            metrics_csv::cell(row.accuracy),
            counts.total(),
            row.step
        );
        Ok(())
    }
}

/// An error naming the first weight tensor holding NaN or ±inf.
fn ensure_finite<M: PretrainedViT>(model: &M) -> Result<()> {
    for (key, tensor) in model.to_hf_tensors()? {
        if let Some(v) = tensor.data.iter().find(|v| !v.is_finite()) {
            bail!("its weight `{key}` holds {v}");
        }
    }
    Ok(())
}

/// Runs the training a plan describes: writes the run directory (replacing a previous run when
/// asked), trains under burn-train and exports the best model.
pub fn train(plan: RunPlan) -> Result<TrainSummary> {
    let config = plan.config.clone();
    plan.device.seed(config.run.seed);
    if config.data.workers > 0 {
        // The data threads (rayon) also run flex's kernels; set once per process.
        let _ = rayon::ThreadPoolBuilder::new().num_threads(config.data.workers).build_global();
    }
    let retired = match plan.start {
        Start::Replace => {
            let aside = plan.dir.retire()?;
            eprintln!(
                "--overwrite: the previous run is now {}; it is deleted once this run's first checkpoint is complete",
                aside.display()
            );
            Some(aside)
        }
        _ => None,
    };
    plan.dir.start(&config.to_toml())?;
    remove_stale_temporaries(plan.dir.root());
    remove_stale_temporaries(&plan.dir.checkpoint_dir());
    if let Some(checkpoint) = plan.start.checkpoint() {
        eprintln!("resuming {} from checkpoint {checkpoint}", plan.dir.root().display());
    }
    match config.run.precision {
        Precision::F32 => {}
        Precision::Bf16 => {
            eprintln!("mixed precision: matrix products in bfloat16, float32 weights and reductions");
            if vit_model::kernels::is_cpu_backend(&plan.device) {
                eprintln!("mixed precision: {}", vit_model::kernels::bf16_tiles::bf16_kernel_report());
            }
        }
        Precision::F16 => eprintln!(
            "mixed precision: matrix products in float16 with dynamic loss scaling, float32 weights and reductions"
        ),
    }
    if let Some(parallel) = Parallelism::of(&config.run.devices).describe() {
        let global = config.data.batch_size * config.run.devices.len() * config.optimizer.grad_accumulation.max(1);
        eprintln!("training on {parallel}; {global} images per optimizer step");
    }
    let train_device = plan.device.clone().autodiff();
    let mask = (config.task == Task::Simmim).then_some((config.data.mask_patch_size, plan.vit_config.patch_size));
    let mixing =
        (config.task == Task::Classification).then_some((config.optimizer.label_smoothing, plan.data.classes.len()));
    let (train_batcher, eval_batcher) = batchers(&config.data, &plan.processor, config.run.seed, mask, mixing)?;
    let clock = RunClock::new(plan.segments, plan.start.checkpoint().unwrap_or(0)).shared_by(config.run.devices.len());
    let (train_data, valid_data) = (plan.data.train.clone(), plan.data.valid.clone());
    let train_loader = EpochLoader::training(
        train_data,
        train_batcher,
        config.data.batch_size,
        config.run.seed,
        clock.clone(),
        train_device.clone(),
    )
    .with_prefetch(config.data.prefetch)
    .across_devices(config.run.devices.len());
    let valid_loader =
        EpochLoader::evaluation(valid_data, eval_batcher, config.data.eval_batch_size(), train_device.clone())
            .with_prefetch(config.data.prefetch);
    let optimizer = build_optimizer(&config.optimizer)?;
    let scheduler = build_schedule(&config.optimizer, plan.segments.total_steps, plan.vit_config.num_hidden_layers)?;
    let launch = Launch { plan, retired, clock, train: Arc::new(train_loader), valid: Arc::new(valid_loader) };

    let slot = GuardSlot::default();
    let exported = match config.task {
        Task::Classification => {
            let mut model = model::classifier(&launch.plan, &train_device)?;
            launch.save_model_files()?;
            model.label_smoothing = config.optimizer.label_smoothing as f32;
            let ema_run = (config.run.ema_decay > 0.0).then(|| EmaRun {
                schedule: EmaSchedule { decay: config.run.ema_decay, warmup: config.run.ema_warmup },
                validation: EmaValidation::default(),
                classes: launch.plan.data.classes.clone(),
            });
            let ema = ema_run.as_ref().map(|_| ViTForImageClassification::new(&launch.plan.vit_config, &train_device));
            let mut training = launch
                .training::<ClassifierStep>(ema_run.as_ref().map(|r| r.validation.clone()), &slot)?
                .metrics((AccuracyMetric::new(), LossMetric::new()))
                .metric_train_numeric(LearningRateMetric::new());
            if launch.plan.data.classes.len() > 5 {
                training = training
                    .metric_train_numeric(TopKAccuracyMetric::new(5))
                    .metric_valid_numeric(TopKAccuracyMetric::new(5));
            }
            let guard = launch.guard(training.interrupter());
            let _ = slot.set(guard.clone());
            let step = ClassifierStep {
                model,
                interpolate_pos_encoding: launch.plan.interpolate_pos_encoding,
                guard: Some(guard.clone()),
                drop_path: launch.drop_path(),
                ema,
                ema_run,
                precision: config.run.precision,
            };
            let result = training.launch(Learner::new(step, optimizer, scheduler));
            launch.check_guard(&guard)?;
            if let Some(error) = result.error {
                bail!("training failed: {error}");
            }
            let export_ema = config.run.export_ema;
            let pick = |s: ClassifierStep| match (export_ema, s.ema) {
                (true, Some(ema)) => ema,
                _ => s.model,
            };
            let (exported, row) = launch.finish(result.model, pick)?;
            launch.test_exported(&exported, row)?;
            exported
        }
        Task::Simmim => {
            let model = model::simmim(&launch.plan, &train_device)?;
            launch.save_model_files()?;
            let training = launch
                .training::<SimMimStep>(None, &slot)?
                .metrics((LossMetric::new(),))
                .metric_train_numeric(LearningRateMetric::new());
            let guard = launch.guard(training.interrupter());
            let _ = slot.set(guard.clone());
            let samples = SampleWriter::new(
                launch.plan.dir.samples_dir(),
                config.run.sample_every,
                launch.plan.processor.image_mean.clone(),
                launch.plan.processor.image_std.clone(),
                8,
            );
            let step = SimMimStep {
                model,
                guard: Some(guard.clone()),
                samples: Some(samples.clone()),
                drop_path: launch.drop_path(),
                precision: config.run.precision,
            };
            let result = training.launch(Learner::new(step, optimizer, scheduler));
            samples.wait();
            launch.check_guard(&guard)?;
            if let Some(error) = result.error {
                bail!("training failed: {error}");
            }
            launch.finish(result.model, |s: SimMimStep| s.model)?.0
        }
    };
    Ok(TrainSummary { output_dir: config.run.output_dir.clone(), exported })
}
