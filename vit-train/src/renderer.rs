//! Progress display and `metrics.csv` logging for Burn's training loop.
//!
//! [`ProgressRenderer`] implements burn-train's [`MetricsRenderer`], so it is handed to
//! `SupervisedTraining::renderer(Box::new(..))` in place of Burn's default renderer (the ratatui
//! TUI needs the `tui` feature; the fallback CLI renderer prints no metric values).
//!
//! How Burn drives a renderer (burn-train 0.22, `metric/processor/full.rs`): for every batch it
//! calls `update_train` / `update_valid` once per registered metric with
//! `MetricState::Numeric(entry, Some(NumericEntry::Aggregated { aggregated_value, count }))`
//! (the batch value and the batch's sample count), then `update_split(items_processed)`; at the
//! end of a split it sends each metric's epoch value as `NumericEntry::Final(v)` and calls
//! `end_split()`. Metric entries carry a `MetricId` (equal to the metric's name); names come
//! from `register_metric`: "Loss", "Accuracy", "Top-K Accuracy @ TopK(5)", "Learning Rate".
//!
//! - On a terminal (stderr), an `indicatif` bar per epoch (or segment, see [`crate::segments`])
//!   and split shows micro-batches, running loss / accuracy, the current lr, images/s and the
//!   ETA; a summary line stays after each split.
//! - Otherwise, plain lines go to stderr every `log_every` optimizer steps, at the end of each
//!   training segment and at the end of each validation pass.
//! - `output_dir/metrics.csv` ([`metrics_csv`] owns its format and resume handling) gets one row
//!   per training log interval (averages over the interval, weighted by batch sample counts; lr is
//!   the value at the row's step) and one per validation pass (Burn's aggregate over the pass).
//!   `step` is the run's optimizer-step count and `epoch` the real epochs done at that step,
//!   fractional (steps / steps per epoch).

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use burn::train::LearnerSummary;
use burn::train::logger::{EvaluationProgressLogger, TrainingProgressLogger};
use burn::train::metric::{MetricDefinition, MetricEntry, MetricId, NumericEntry};
use burn::train::renderer::{
    EvaluationName, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::metrics_csv;
use crate::segments::Segments;

/// Which CSV column a Burn metric feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Loss,
    Accuracy,
    Top5,
    Lr,
}

/// Maps a Burn metric name to a column: `LossMetric` is "Loss", `AccuracyMetric` "Accuracy",
/// `TopKAccuracyMetric::new(5)` "Top-K Accuracy @ TopK(5)", `LearningRateMetric` "Learning Rate".
/// Other metrics (other k, CPU use, ...) are not logged.
fn classify(name: &str) -> Option<Slot> {
    let n = name.trim().to_ascii_lowercase();
    match n.as_str() {
        "loss" => Some(Slot::Loss),
        "accuracy" | "top-1 accuracy" => Some(Slot::Accuracy),
        "learning rate" | "lr" => Some(Slot::Lr),
        "top-5 accuracy" | "top5" | "top-5" => Some(Slot::Top5),
        _ if n.starts_with("top-k accuracy") && n.replace(' ', "").ends_with("topk(5)") => {
            Some(Slot::Top5)
        }
        _ => None,
    }
}

/// Running mean weighted by sample counts; falls back to a plain mean when every update has a
/// zero count. NaN values propagate (a NaN loss should show up as NaN, not vanish).
#[derive(Debug, Default, Clone, Copy)]
struct Mean {
    weighted_sum: f64,
    weight: f64,
    plain_sum: f64,
    n: usize,
}

impl Mean {
    fn add(&mut self, value: f64, count: usize) {
        if count > 0 {
            self.weighted_sum += value * count as f64;
            self.weight += count as f64;
        }
        self.plain_sum += value;
        self.n += 1;
    }

    fn get(&self) -> Option<f64> {
        if self.weight > 0.0 {
            Some(self.weighted_sum / self.weight)
        } else if self.n > 0 {
            Some(self.plain_sum / self.n as f64)
        } else {
            None
        }
    }
}

/// Per-batch values of the four logged metrics.
#[derive(Debug, Default, Clone, Copy)]
struct Means {
    loss: Mean,
    accuracy: Mean,
    top5: Mean,
    /// The latest lr, not a mean: the rate in effect at the row's step.
    lr: Option<f64>,
}

impl Means {
    fn add(&mut self, slot: Slot, value: f64, count: usize) {
        match slot {
            Slot::Loss => self.loss.add(value, count),
            Slot::Accuracy => self.accuracy.add(value, count),
            Slot::Top5 => self.top5.add(value, count),
            Slot::Lr => self.lr = Some(value),
        }
    }

    fn values(&self) -> Values {
        Values {
            loss: self.loss.get(),
            accuracy: self.accuracy.get(),
            top5: self.top5.get(),
            lr: self.lr,
        }
    }
}

/// One set of metric values for a row or a line; `None` = unknown.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Values {
    loss: Option<f64>,
    accuracy: Option<f64>,
    top5: Option<f64>,
    lr: Option<f64>,
}

impl Values {
    fn set(&mut self, slot: Slot, value: f64) {
        match slot {
            Slot::Loss => self.loss = Some(value),
            Slot::Accuracy => self.accuracy = Some(value),
            Slot::Top5 => self.top5 = Some(value),
            Slot::Lr => self.lr = Some(value),
        }
    }

    /// `self`, with the gaps filled from `other`.
    fn or(self, other: Values) -> Values {
        Values {
            loss: self.loss.or(other.loss),
            accuracy: self.accuracy.or(other.accuracy),
            top5: self.top5.or(other.top5),
            lr: self.lr.or(other.lr),
        }
    }

    /// "loss 1.2345 acc 56.20% top5 80.00%"; unknown values are left out.
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(v) = self.loss {
            parts.push(format!("loss {v:.4}"));
        }
        if let Some(v) = self.accuracy {
            parts.push(format!("acc {v:.2}%"));
        }
        if let Some(v) = self.top5 {
            parts.push(format!("top5 {v:.2}%"));
        }
        if parts.is_empty() {
            "(no metrics)".to_string()
        } else {
            parts.join(" ")
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Idle,
    Train,
    Valid,
    Other(String),
}

/// Where progress goes.
enum Display {
    /// Interactive: progress bars on stderr.
    Bar(Option<ProgressBar>),
    /// Plain log lines (stderr unless a test substitutes a buffer).
    Log(Box<dyn Write + Send + Sync>),
}

/// Burn `MetricsRenderer` with an indicatif progress bar or plain log lines, writing
/// `metrics.csv`. See the module documentation.
pub struct ProgressRenderer {
    csv_path: PathBuf,
    csv: Option<BufWriter<File>>,
    csv_error_reported: bool,
    display: Display,
    batch_size: usize,
    log_every: usize,
    slots: HashMap<MetricId, Slot>,

    label: String,
    /// The run's optimizer steps and segments (burn-train's epochs).
    segments: Segments,
    total_epochs: usize,
    /// burn-train's epoch: the segment (1-based).
    epoch: usize,
    /// Optimizer steps of the run so far.
    step: u64,
    /// Micro-batches of the run so far.
    micro: usize,

    phase: Phase,
    split_total_items: usize,
    split_iters: usize,
    split_images: usize,
    split_last_items: usize,
    split_start: Instant,
    /// Batch values over the current split, for the bar and as a fallback epoch aggregate.
    split_means: Means,
    /// Epoch aggregates Burn sent (`NumericEntry::Final`) for the current split.
    split_finals: Values,

    interval_iters: usize,
    interval_steps: usize,
    interval_images: usize,
    interval_start: Instant,
    interval_means: Means,
    /// The last lr seen in training; carried into log lines when an interval reported none.
    last_lr: Option<f64>,

    test: TestState,
}

#[derive(Default)]
struct TestState {
    total_tests: usize,
    current: usize,
    name: String,
    items: usize,
    means: HashMap<String, Means>,
}

impl ProgressRenderer {
    /// Creates the renderer and opens `output_dir/metrics.csv` (the directory is created).
    ///
    /// `resume` is the checkpoint (segment) a resumed run starts from: the file keeps its rows up
    /// to that checkpoint's step and the step counter continues from there (see
    /// [`metrics_csv::open`]); otherwise the file is created fresh. A bar is drawn when stderr is
    /// a terminal, plain lines are logged otherwise.
    pub fn new(
        output_dir: &Path,
        batch_size: usize,
        log_every: usize,
        segments: Segments,
        resume: Option<usize>,
    ) -> Result<Self> {
        let display = if std::io::stderr().is_terminal() {
            Display::Bar(None)
        } else {
            Display::Log(Box::new(std::io::stderr()))
        };
        Self::with_display(output_dir, batch_size, log_every, segments, resume, display)
    }

    fn with_display(
        output_dir: &Path,
        batch_size: usize,
        log_every: usize,
        segments: Segments,
        resume: Option<usize>,
        display: Display,
    ) -> Result<Self> {
        fs::create_dir_all(output_dir)
            .with_context(|| format!("cannot create output directory {}", output_dir.display()))?;
        let csv_path = output_dir.join(metrics_csv::FILE);
        let step = segments.steps_after(resume.unwrap_or(0));
        let file = metrics_csv::open(&csv_path, resume.map(|_| step as u64))?;
        let now = Instant::now();
        Ok(Self {
            step: step as u64,
            micro: segments.micro_batches_before(step),
            segments,
            csv_path,
            csv: Some(BufWriter::new(file)),
            csv_error_reported: false,
            display,
            batch_size,
            log_every: log_every.max(1),
            slots: HashMap::new(),
            label: "training".to_string(),
            total_epochs: 0,
            epoch: 1,
            phase: Phase::Idle,
            split_total_items: 0,
            split_iters: 0,
            split_images: 0,
            split_last_items: 0,
            split_start: now,
            split_means: Means::default(),
            split_finals: Values::default(),
            interval_iters: 0,
            interval_steps: 0,
            interval_images: 0,
            interval_start: now,
            interval_means: Means::default(),
            last_lr: None,
            test: TestState::default(),
        })
    }

    /// Path of the CSV file being written.
    #[allow(dead_code)]
    pub fn csv_path(&self) -> &Path {
        &self.csv_path
    }

    /// The global step (optimizer steps so far, including those of a resumed run).
    #[allow(dead_code)]
    pub fn step(&self) -> u64 {
        self.step
    }

    fn slot_of(&self, id: &MetricId) -> Option<Slot> {
        if let Some(slot) = self.slots.get(id) {
            return Some(*slot);
        }
        // Not registered (Burn registers every metric before the first update, so this is only
        // a safety net): Burn's ids are the metric names, so compare with the known names.
        const KNOWN: [(&str, Slot); 4] = [
            ("Loss", Slot::Loss),
            ("Accuracy", Slot::Accuracy),
            ("Top-K Accuracy @ TopK(5)", Slot::Top5),
            ("Learning Rate", Slot::Lr),
        ];
        KNOWN
            .iter()
            .find(|(name, _)| *id == MetricId::new(Arc::new(name.to_string())))
            .map(|(_, slot)| *slot)
    }

    /// Extracts (slot, numeric entry) from a metric state; generic entries are parsed from
    /// their serialized form, which Burn writes the same way.
    fn decode(&self, state: &MetricState) -> Option<(Slot, NumericEntry)> {
        let (entry, numeric): (&MetricEntry, Option<NumericEntry>) = match state {
            MetricState::Numeric(entry, numeric) => (entry, numeric.clone()),
            MetricState::Generic(entry) => (entry, None),
        };
        let slot = self.slot_of(&entry.metric_id)?;
        let numeric = match numeric {
            Some(n) => n,
            None => NumericEntry::deserialize(entry.serialized_entry.serialized.trim()).ok()?,
        };
        Some((slot, numeric))
    }

    fn record(&mut self, split: Phase, state: MetricState) {
        let Some((slot, numeric)) = self.decode(&state) else {
            return;
        };
        match numeric {
            NumericEntry::Final(v) => self.split_finals.set(slot, v),
            NumericEntry::Aggregated {
                aggregated_value,
                count,
            } => self.batch_value(&split, slot, aggregated_value, count),
            NumericEntry::Value(v) => self.batch_value(&split, slot, v, 0),
        }
    }

    fn batch_value(&mut self, split: &Phase, slot: Slot, value: f64, count: usize) {
        self.split_means.add(slot, value, count);
        if *split == Phase::Train {
            self.interval_means.add(slot, value, count);
            if slot == Slot::Lr {
                self.last_lr = Some(value);
            }
        }
    }

    /// Iterations (micro-batches) of the current split, when known.
    fn steps_in_split(&self) -> Option<usize> {
        if self.phase == Phase::Train {
            let segment = self.epoch.saturating_sub(1);
            return Some(self.segments.pieces(segment).iter().map(|p| p.batches.len()).sum());
        }
        (self.batch_size > 0 && self.split_total_items > 0)
            .then(|| self.split_total_items.div_ceil(self.batch_size))
    }

    /// "epoch 2/3" when evaluating per epoch, else the segment's optimizer steps: "steps 5-8/27".
    fn epoch_label(&self) -> String {
        if !self.segments.per_epoch() {
            let steps = self.segments.steps(self.epoch.saturating_sub(1));
            format!("steps {}-{}/{}", steps.start + 1, steps.end, self.segments.total_steps)
        } else if self.total_epochs > 0 {
            format!("epoch {}/{}", self.epoch, self.total_epochs)
        } else {
            format!("epoch {}", self.epoch)
        }
    }

    fn step_label(&self) -> String {
        match self.steps_in_split() {
            Some(total) => format!("step {}/{}", self.split_iters, total),
            None => format!("step {}", self.split_iters),
        }
    }

    // ---- output ----------------------------------------------------------------------------

    fn line(&mut self, text: &str) {
        match &mut self.display {
            Display::Bar(Some(bar)) => bar.println(text),
            Display::Bar(None) => eprintln!("{text}"),
            Display::Log(out) => {
                let _ = writeln!(out, "{text}");
                let _ = out.flush();
            }
        }
    }

    fn start_bar(&mut self, prefix: String, len: Option<usize>) {
        let Display::Bar(slot) = &mut self.display else {
            return;
        };
        if let Some(old) = slot.take() {
            old.finish_and_clear();
        }
        let bar = match len {
            Some(n) => ProgressBar::with_draw_target(Some(n as u64), ProgressDrawTarget::stderr()),
            None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
        };
        let template = if len.is_some() {
            "{prefix} [{bar:30.cyan/blue}] {pos}/{len} {msg} [{elapsed_precise}, ETA {eta_precise}]"
        } else {
            "{prefix} {spinner} {pos} {msg} [{elapsed_precise}]"
        };
        let style = ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(prefix);
        *slot = Some(bar);
    }

    fn update_bar(&mut self) {
        let Display::Bar(Some(bar)) = &self.display else {
            return;
        };
        let mut msg = self.split_means.values().describe();
        if self.phase == Phase::Train
            && let Some(lr) = self.last_lr
        {
            msg += &format!(" lr {}", format_lr(lr));
        }
        if let Some(ips) = rate(self.split_images, self.split_start.elapsed()) {
            msg += &format!(" {ips:.0} img/s");
        }
        bar.set_position(self.split_iters as u64);
        bar.set_message(msg);
    }

    fn finish_bar(&mut self) {
        if let Display::Bar(slot) = &mut self.display
            && let Some(bar) = slot.take()
        {
            bar.finish_and_clear();
        }
    }

    fn write_row(&mut self, split: &str, values: Values, images_per_sec: Option<f64>) {
        let row = metrics_csv::Row {
            step: self.step,
            epoch: self.segments.epochs_at(self.step as usize),
            split: split.to_string(),
            loss: values.loss,
            accuracy: values.accuracy,
            top5: values.top5,
            lr: values.lr,
            images_per_sec,
        }
        .to_line();
        let Some(w) = self.csv.as_mut() else {
            return;
        };
        let result = writeln!(w, "{row}").and_then(|_| w.flush());
        if let Err(e) = result
            && !self.csv_error_reported
        {
            self.csv_error_reported = true;
            let msg = format!("warning: cannot write {}: {e}", self.csv_path.display());
            self.line(&msg);
        }
    }

    /// Writes the CSV row and (in log mode) the line for the current training interval.
    fn flush_train_interval(&mut self) {
        if self.interval_iters == 0 {
            return;
        }
        let values = self.interval_means.values();
        let ips = rate(self.interval_images, self.interval_start.elapsed());
        self.write_row("train", values, ips);
        if matches!(self.display, Display::Log(_)) {
            let mut text = format!(
                "{} {} | train {}",
                self.epoch_label(),
                self.step_label(),
                values.describe()
            );
            if let Some(lr) = values.lr.or(self.last_lr) {
                text += &format!(" | lr {}", format_lr(lr));
            }
            if let Some(ips) = ips {
                text += &format!(" | {ips:.0} img/s");
            }
            self.line(&text);
        }
        self.interval_iters = 0;
        self.interval_steps = 0;
        self.interval_images = 0;
        self.interval_means = Means::default();
        self.interval_start = Instant::now();
    }

    fn images_in_iteration(&mut self, items_processed: usize) -> usize {
        // The training loader counts items per real epoch, so the counter restarts when a
        // segment crosses into the next epoch.
        let delta = match items_processed.checked_sub(self.split_last_items) {
            Some(delta) => delta,
            None => items_processed,
        };
        self.split_last_items = items_processed;
        match self.batch_size {
            // The item counter is exact (the last batch can be short); trust it when it is
            // consistent with one batch, else count a full batch.
            0 => delta,
            b if delta > 0 && delta <= b => delta,
            b => b,
        }
    }
}

fn rate(images: usize, elapsed: Duration) -> Option<f64> {
    let secs = elapsed.as_secs_f64();
    (images > 0 && secs > 0.0).then(|| images as f64 / secs)
}

/// "4.5e-4"; "0" for zero.
fn format_lr(lr: f64) -> String {
    if lr == 0.0 {
        "0".to_string()
    } else {
        format!("{lr:.1e}")
    }
}

// ---- Burn traits ------------------------------------------------------------------------------

impl MetricsRendererTraining for ProgressRenderer {
    fn update_train(&mut self, state: MetricState) {
        self.record(Phase::Train, state);
    }

    fn update_valid(&mut self, state: MetricState) {
        self.record(Phase::Valid, state);
    }

    fn on_train_end(
        &mut self,
        summary: Option<LearnerSummary>,
    ) -> std::result::Result<(), Box<dyn core::error::Error>> {
        self.finish_bar();
        if let Some(summary) = summary {
            self.line(&summary.to_string());
        }
        Ok(())
    }
}

impl TrainingProgressLogger for ProgressRenderer {
    fn start(
        &mut self,
        total_epochs: usize,
        starting_epoch: usize,
        _total_items: Option<usize>,
        label: Option<&str>,
    ) {
        self.total_epochs = total_epochs;
        self.epoch = starting_epoch.max(1);
        if let Some(label) = label {
            self.label = label.to_string();
        }
        let step = self.segments.steps_after(self.epoch - 1);
        self.step = step as u64;
        self.micro = self.segments.micro_batches_before(step);
        let total = self.segments.total_steps;
        let plan = match self.segments.per_epoch() {
            true => format!("{total_epochs} epochs ({total} steps)"),
            false => format!("{total} steps, evaluated every {}", self.segments.segment_steps),
        };
        let text = match self.epoch > 1 {
            true => format!("{}: {plan}; resuming at step {step}; metrics in {}", self.label, self.csv_path.display()),
            false => format!("{}: {plan}; metrics in {}", self.label, self.csv_path.display()),
        };
        self.line(&text);
    }

    fn update_epoch(&mut self, epoch: usize) {
        self.epoch = epoch + 1;
    }

    fn start_split(&mut self, split: &str, total_items: usize) {
        self.phase = match split {
            "train" => Phase::Train,
            "valid" => Phase::Valid,
            other => Phase::Other(other.to_string()),
        };
        let now = Instant::now();
        self.split_total_items = total_items;
        self.split_iters = 0;
        self.split_images = 0;
        self.split_last_items = 0;
        self.split_start = now;
        self.split_means = Means::default();
        self.split_finals = Values::default();
        if self.phase == Phase::Train {
            self.interval_iters = 0;
            self.interval_steps = 0;
            self.interval_images = 0;
            self.interval_means = Means::default();
            self.interval_start = now;
        }
        let prefix = format!("{} {split}", self.epoch_label());
        let len = self.steps_in_split();
        self.start_bar(prefix, len);
    }

    fn update_split(&mut self, items_processed: usize) {
        let images = self.images_in_iteration(items_processed);
        self.split_iters += 1;
        self.split_images += images;
        if self.phase == Phase::Train {
            self.micro += 1;
            self.interval_iters += 1;
            self.interval_images += images;
            if self.segments.ends_step(self.micro) {
                self.step += 1;
                self.interval_steps += 1;
                if self.interval_steps >= self.log_every {
                    self.flush_train_interval();
                }
            }
        }
        self.update_bar();
    }

    fn end_split(&mut self) {
        let elapsed = self.split_start.elapsed();
        let ips = rate(self.split_images, elapsed);
        // Burn's epoch aggregates, else the mean of the batch values seen.
        let epoch_values = self.split_finals.or(self.split_means.values());
        self.finish_bar();
        match self.phase.clone() {
            Phase::Train => {
                self.flush_train_interval();
                let mut text = format!(
                    "{} train done | {}",
                    self.epoch_label(),
                    epoch_values.describe()
                );
                if let Some(ips) = ips {
                    text += &format!(" | {ips:.0} img/s");
                }
                text += &format!(" | {:.1} s", elapsed.as_secs_f64());
                self.line(&text);
            }
            Phase::Valid => {
                let values = Values {
                    lr: None,
                    ..epoch_values
                };
                self.write_row("valid", values, ips);
                let mut text = format!("{} valid | {}", self.epoch_label(), values.describe());
                if let Some(ips) = ips {
                    text += &format!(" | {ips:.0} img/s");
                }
                text += &format!(" | {:.1} s", elapsed.as_secs_f64());
                self.line(&text);
            }
            Phase::Other(name) => {
                let text = format!(
                    "{} {name} | {}",
                    self.epoch_label(),
                    epoch_values.describe()
                );
                self.line(&text);
            }
            Phase::Idle => {}
        }
        self.phase = Phase::Idle;
    }

    fn end(&mut self) {
        self.finish_bar();
        if let Some(w) = self.csv.as_mut() {
            let _ = w.flush();
        }
    }

    fn log_event_training(&mut self, _event: String) {}
}

impl MetricsRendererEvaluation for ProgressRenderer {
    fn update_test(&mut self, name: EvaluationName, state: MetricState) {
        let Some((slot, numeric)) = self.decode(&state) else {
            return;
        };
        let means = self
            .test
            .means
            .entry(name.as_str().to_string())
            .or_default();
        match numeric {
            NumericEntry::Aggregated {
                aggregated_value,
                count,
            } => means.add(slot, aggregated_value, count),
            NumericEntry::Value(v) | NumericEntry::Final(v) => means.add(slot, v, 0),
        }
    }

    fn on_test_end(
        &mut self,
        summary: Option<LearnerSummary>,
    ) -> std::result::Result<(), Box<dyn core::error::Error>> {
        self.finish_bar();
        if let Some(summary) = summary {
            self.line(&summary.to_string());
        }
        Ok(())
    }
}

impl EvaluationProgressLogger for ProgressRenderer {
    fn start_global_progress(&mut self, total_tests: usize) {
        self.test.total_tests = total_tests;
        self.test.current = 0;
    }

    fn start_test(&mut self, name: &str, total_items: usize) {
        self.test.current += 1;
        self.test.name = name.to_string();
        self.test.items = 0;
        self.split_start = Instant::now();
        let prefix = format!(
            "test {}/{} {name}",
            self.test.current, self.test.total_tests
        );
        self.start_bar(prefix, (total_items > 0).then_some(total_items));
    }

    fn update_test_progress(&mut self, items_processed: usize) {
        self.test.items = items_processed;
        if let Display::Bar(Some(bar)) = &self.display {
            let msg = self
                .test
                .means
                .get(&self.test.name)
                .map(|m| m.values().describe())
                .unwrap_or_default();
            bar.set_position(items_processed as u64);
            bar.set_message(msg);
        }
    }

    fn end_test(&mut self) {
        self.finish_bar();
        let values = self
            .test
            .means
            .get(&self.test.name)
            .map(|m| m.values())
            .unwrap_or_default();
        let elapsed = self.split_start.elapsed();
        let mut text = format!("test {} | {}", self.test.name, values.describe());
        if let Some(ips) = rate(self.test.items, elapsed) {
            text += &format!(" | {ips:.0} img/s");
        }
        self.line(&text);
    }

    fn end_global_progress(&mut self) {
        self.finish_bar();
    }

    fn log_event_evaluation(&mut self, _event: String) {}
}

impl MetricsRenderer for ProgressRenderer {
    fn manual_close(&mut self) {}

    fn register_metric(&mut self, definition: MetricDefinition) {
        if let Some(slot) = classify(&definition.name) {
            self.slots.insert(definition.metric_id, slot);
        }
    }
}

impl Drop for ProgressRenderer {
    fn drop(&mut self) {
        if let Display::Bar(Some(bar)) = &self.display {
            bar.finish_and_clear();
        }
        if let Some(w) = self.csv.as_mut() {
            let _ = w.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::train::metric::{MetricAttributes, SerializedEntry};
    use std::sync::Mutex;

    /// A log sink the test can read back.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Sink {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    const LOSS: &str = "Loss";
    const ACC: &str = "Accuracy";
    const TOP5: &str = "Top-K Accuracy @ TopK(5)";
    const LR: &str = "Learning Rate";

    fn id(name: &str) -> MetricId {
        MetricId::new(Arc::new(name.to_string()))
    }

    fn definition(name: &str) -> MetricDefinition {
        MetricDefinition {
            metric_id: id(name),
            name: Arc::new(name.to_string()),
            description: None,
            attributes: MetricAttributes::None,
        }
    }

    /// The per-batch state Burn sends: the batch value and its sample count.
    fn batch(name: &str, value: f64, count: usize) -> MetricState {
        let numeric = NumericEntry::Aggregated {
            aggregated_value: value,
            count,
        };
        let entry = MetricEntry::new(
            id(name),
            SerializedEntry::new(format!("batch {value}"), numeric.serialize()),
        );
        MetricState::Numeric(entry, Some(numeric))
    }

    /// The end-of-split state Burn sends: the epoch aggregate.
    fn final_value(name: &str, value: f64) -> MetricState {
        let numeric = NumericEntry::Final(value);
        let entry = MetricEntry::new(
            id(name),
            SerializedEntry::new(format!("epoch {value}"), numeric.serialize()),
        );
        MetricState::Numeric(entry, Some(numeric))
    }

    fn renderer(
        dir: &Path,
        batch: usize,
        log_every: usize,
        segments: Segments,
        resume: Option<usize>,
    ) -> (ProgressRenderer, Sink) {
        let sink = Sink::default();
        let r = ProgressRenderer::with_display(
            dir,
            batch,
            log_every,
            segments,
            resume,
            Display::Log(Box::new(sink.clone())),
        )
        .unwrap();
        (r, sink)
    }

    fn register_all(r: &mut ProgressRenderer) {
        for name in [LOSS, ACC, TOP5, LR, "Iteration Speed"] {
            r.register_metric(definition(name));
        }
    }

    /// One training epoch of `iters` batches of `batch` images (the last one may be short):
    /// loss of batch i is `loss0 + i`, accuracy `10 * i`, lr `1e-3 * i`; then Burn's finals.
    fn train_epoch(r: &mut ProgressRenderer, total_items: usize, batch: usize, loss0: f64) {
        r.start_split("train", total_items);
        let mut done = 0;
        let mut i = 0;
        while done < total_items {
            i += 1;
            let n = batch.min(total_items - done);
            done += n;
            r.update_train(batch_state(LOSS, loss0 + i as f64, n));
            r.update_train(batch_state(ACC, 10.0 * i as f64, n));
            r.update_train(batch_state(LR, 1e-3 * i as f64, 1));
            r.update_split(done);
        }
        r.update_train(final_value(LOSS, 99.0));
        r.update_train(final_value(ACC, 77.0));
        r.end_split();
    }

    fn batch_state(name: &str, value: f64, count: usize) -> MetricState {
        batch(name, value, count)
    }

    fn valid_epoch(r: &mut ProgressRenderer, loss: f64, acc: f64, top5: f64) {
        r.start_split("valid", 6);
        for (i, done) in [(1, 4), (2, 6)] {
            r.update_valid(batch(LOSS, loss + i as f64, 4));
            r.update_valid(batch(ACC, acc, 4));
            r.update_valid(batch(TOP5, top5, 4));
            r.update_split(done);
        }
        r.update_valid(final_value(LOSS, loss));
        r.update_valid(final_value(ACC, acc));
        r.update_valid(final_value(TOP5, top5));
        r.end_split();
    }

    fn rows(path: &Path) -> Vec<Vec<String>> {
        let text = fs::read_to_string(path).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some(metrics_csv::HEADER));
        lines
            .map(|l| l.split(',').map(str::to_string).collect())
            .collect()
    }

    /// The columns other than images_per_sec (wall-clock dependent).
    fn fixed(rows: &[Vec<String>]) -> Vec<String> {
        rows.iter().map(|r| r[..7].join(",")).collect()
    }

    #[test]
    fn writes_interval_and_validation_rows() {
        let dir = tempfile::tempdir().unwrap();
        // 18 items in batches of 4: 5 iterations, the last one of 2 images.
        let (mut r, sink) = renderer(dir.path(), 4, 2, Segments::new(5, 1, 2, None, None), None);
        register_all(&mut r);
        r.start(2, 1, None, None);
        train_epoch(&mut r, 18, 4, 1.0);
        valid_epoch(&mut r, 0.5, 60.0, 90.0);
        r.update_epoch(1);
        assert_eq!(r.step(), 5);
        train_epoch(&mut r, 18, 4, 2.0);
        r.end();

        let rows = rows(&dir.path().join(metrics_csv::FILE));
        assert_eq!(
            fixed(&rows),
            vec![
                // iterations 1-2: loss (2+3)/2, acc (10+20)/2, lr at step 2; 2/5 of an epoch
                "2,0.4,train,2.5,15,,0.002",
                "4,0.8,train,4.5,35,,0.004",
                // the partial interval at the end of the epoch: iteration 5 alone
                "5,1,train,6,50,,0.005",
                // Burn's epoch aggregates for validation; no lr
                "5,1,valid,0.5,60,90,",
                "7,1.4,train,3.5,15,,0.002",
                "9,1.8,train,5.5,35,,0.004",
                "10,2,train,7,50,,0.005",
            ]
        );
        for row in &rows {
            let ips: f64 = row[7].parse().expect("images_per_sec is a number");
            assert!(ips > 0.0);
        }

        let log = sink.text();
        assert!(
            log.contains("epoch 1/2 step 2/5 | train loss 2.5000 acc 15.00% | lr 2.0e-3 | "),
            "{log}"
        );
        assert!(
            log.contains("epoch 1/2 step 5/5 | train loss 6.0000 acc 50.00% | lr 5.0e-3"),
            "{log}"
        );
        assert!(
            log.contains("epoch 1/2 train done | loss 99.0000 acc 77.00%"),
            "{log}"
        );
        assert!(
            log.contains("epoch 1/2 valid | loss 0.5000 acc 60.00% top5 90.00% | "),
            "{log}"
        );
        assert!(
            log.contains("epoch 2/2 step 4/5 | train loss 5.5000"),
            "{log}"
        );
    }

    #[test]
    fn weights_interval_means_by_batch_size() {
        let dir = tempfile::tempdir().unwrap();
        let (mut r, _) = renderer(dir.path(), 4, 2, Segments::new(2, 1, 1, None, None), None);
        register_all(&mut r);
        r.start(1, 1, None, None);
        r.start_split("train", 6);
        r.update_train(batch(LOSS, 1.0, 4));
        r.update_split(4);
        r.update_train(batch(LOSS, 4.0, 2));
        r.update_split(6);
        r.end_split();
        drop(r);
        assert_eq!(
            fixed(&rows(&dir.path().join(metrics_csv::FILE))),
            vec!["2,1,train,2,,,"]
        );
    }

    #[test]
    fn appends_on_resume_and_continues_the_step() {
        let dir = tempfile::tempdir().unwrap();
        let segments = Segments::new(4, 1, 3, None, None);
        let csv = dir.path().join(metrics_csv::FILE);
        {
            let (mut r, _) = renderer(dir.path(), 4, 2, segments, None);
            register_all(&mut r);
            r.start(3, 1, None, None);
            train_epoch(&mut r, 16, 4, 1.0);
            valid_epoch(&mut r, 0.5, 60.0, 90.0);
            r.update_epoch(1);
            // Epoch 2 crashes after one interval, with a half-written row.
            r.start_split("train", 16);
            for i in 1..=2 {
                r.update_train(batch(LOSS, 5.0, 4));
                r.update_split(4 * i);
            }
        }
        let mut f = fs::OpenOptions::new().append(true).open(&csv).unwrap();
        write!(f, "7,2,tra").unwrap();
        drop(f);

        // Resume from the checkpoint of epoch 1: epoch 2's rows and the cut-off line are
        // dropped, and epoch 2 starts over at step 4.
        let (mut r, _) = renderer(dir.path(), 4, 2, segments, Some(1));
        register_all(&mut r);
        assert_eq!(r.step(), 4);
        r.start(3, 2, None, None);
        train_epoch(&mut r, 16, 4, 1.0);
        drop(r);

        let text = fs::read_to_string(&csv).unwrap();
        assert_eq!(text.matches("step,epoch").count(), 1, "{text}");
        assert_eq!(
            fixed(&rows(&csv)),
            vec![
                "2,0.5,train,2.5,15,,0.002",
                "4,1,train,4.5,35,,0.004",
                "4,1,valid,0.5,60,90,",
                "6,1.5,train,2.5,15,,0.002",
                "8,2,train,4.5,35,,0.004",
            ]
        );
    }

    #[test]
    fn odd_input_does_not_panic() {
        let dir = tempfile::tempdir().unwrap();
        // batch_size 0 and log_every 0 are tolerated.
        let (mut r, sink) = renderer(dir.path(), 0, 0, Segments::new(2, 1, 1, None, None), None);
        // No metric registered; an unknown metric; NaN and infinite values; a None entry;
        // generic entries; calls out of order.
        r.update_split(3);
        r.end_split();
        r.update_epoch(0);
        r.start_split("train", 0);
        r.update_train(batch("Something Else", 1.0, 1));
        r.update_train(batch(LOSS, f64::NAN, 4));
        r.update_train(batch(ACC, f64::INFINITY, 0));
        r.update_train(MetricState::Numeric(
            MetricEntry::new(id(TOP5), SerializedEntry::not_available(Some("%"))),
            None,
        ));
        r.update_train(MetricState::Generic(MetricEntry::new(
            id(LR),
            SerializedEntry::new("x".into(), "garbage".into()),
        )));
        r.update_split(2);
        r.update_train(MetricState::Generic(MetricEntry::new(
            id(LR),
            SerializedEntry::new("x".into(), NumericEntry::Value(3e-4).serialize()),
        )));
        r.update_split(1); // items going backwards
        r.end_split();
        r.start_split("valid", 0);
        r.end_split();
        r.start_split("weird", 5);
        r.update_split(5);
        r.end_split();
        r.start_global_progress(1);
        r.start_test("cifar10", 0);
        r.update_test(EvaluationName::new("cifar10"), batch(ACC, 50.0, 4));
        r.update_test_progress(4);
        r.end_test();
        r.end_global_progress();
        r.end();
        let _ = r.on_train_end(None);
        drop(r);

        let rows = rows(&dir.path().join(metrics_csv::FILE));
        let fixed = fixed(&rows);
        // Unregistered ids fall back to Burn's metric names.
        assert_eq!(fixed[0], "1,0.5,train,NaN,inf,,", "{fixed:?}");
        assert_eq!(fixed[1], "2,1,train,,,,3e-4", "{fixed:?}");
        assert_eq!(fixed[2], "2,1,valid,,,,", "{fixed:?}");
        assert_eq!(fixed.len(), 3, "{fixed:?}");
        let log = sink.text();
        assert!(log.contains("test cifar10 | acc 50.00%"), "{log}");
    }

    #[test]
    fn segments_of_steps_span_epoch_ends() {
        let dir = tempfile::tempdir().unwrap();
        // 5 micro-batches of 4 (the last of 2) per epoch, 2 epochs, evaluated every 3 steps.
        let (mut r, sink) = renderer(dir.path(), 4, 2, Segments::new(5, 1, 2, None, Some(3)), None);
        register_all(&mut r);
        r.start(4, 1, None, None);
        r.start_split("train", 12);
        for done in [4, 8, 12] {
            r.update_train(batch(LOSS, 1.0, 4));
            r.update_split(done);
        }
        r.end_split();
        valid_epoch(&mut r, 0.5, 60.0, 90.0);
        r.update_epoch(1);
        // Steps 4-6: the end of epoch 0 (4 + 2 images), then epoch 1, whose item count the
        // loader restarts.
        r.start_split("train", 6);
        for done in [4, 6, 4] {
            r.update_train(batch(LOSS, 2.0, 4));
            r.update_split(done);
        }
        assert_eq!(r.split_images, 10);
        r.end_split();
        valid_epoch(&mut r, 0.25, 70.0, 95.0);
        drop(r);

        assert_eq!(
            fixed(&rows(&dir.path().join(metrics_csv::FILE))),
            vec![
                "2,0.4,train,1,,,",
                "3,0.6,train,1,,,",
                "3,0.6,valid,0.5,60,90,",
                "5,1,train,2,,,",
                "6,1.2,train,2,,,",
                "6,1.2,valid,0.25,70,95,",
            ]
        );
        let log = sink.text();
        assert!(log.contains("10 steps, evaluated every 3"), "{log}");
        assert!(log.contains("steps 1-3/10 valid | loss 0.5000"), "{log}");
        assert!(log.contains("steps 4-6/10 step 2/3 | train loss 2.0000"), "{log}");
    }

    #[test]
    fn accumulated_micro_batches_make_one_step() {
        let dir = tempfile::tempdir().unwrap();
        // 5 micro-batches per epoch in groups of 2: steps end after micro-batches 2, 4 and 5.
        let (mut r, _) = renderer(dir.path(), 4, 1, Segments::new(5, 2, 1, None, None), None);
        register_all(&mut r);
        r.start(1, 1, None, None);
        train_epoch(&mut r, 18, 4, 1.0);
        assert_eq!(r.step(), 3);
        drop(r);
        assert_eq!(
            fixed(&rows(&dir.path().join(metrics_csv::FILE))),
            vec!["1,0.333333,train,2.5,15,,0.002", "2,0.666667,train,4.5,35,,0.004", "3,1,train,6,50,,0.005"]
        );
    }

    #[test]
    fn metric_names_map_to_columns() {
        assert_eq!(classify("Loss"), Some(Slot::Loss));
        assert_eq!(classify("Accuracy"), Some(Slot::Accuracy));
        assert_eq!(classify("Top-K Accuracy @ TopK(5)"), Some(Slot::Top5));
        assert_eq!(classify("Top-K Accuracy @ TopK(3)"), None);
        assert_eq!(classify("Learning Rate"), Some(Slot::Lr));
        assert_eq!(classify("Iteration Speed"), None);
    }

    #[test]
    fn lr_in_log_lines() {
        assert_eq!(format_lr(4.5e-4), "4.5e-4");
        assert_eq!(format_lr(0.0), "0");
    }
}
