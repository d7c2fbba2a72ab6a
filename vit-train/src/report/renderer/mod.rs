//! [`ProgressRenderer`]: burn-train's [`MetricsRenderer`], handed to
//! `SupervisedTraining::renderer(Box::new(..))` in place of Burn's default renderer. It glues three
//! small pieces: metric aggregation ([`super::metrics`]), the display ([`super::display`]: a bar on
//! a terminal, plain lines otherwise) and the `metrics.csv` sink ([`super::metrics_sink`]); the
//! run's position (step, micro-batch, images delivered) comes from the [`RunClock`]'s ticks, one
//! per batch the loader handed over.
//!
//! How Burn drives a renderer (burn-train 0.22, `metric/processor/full.rs`): for every batch it
//! calls `update_train` / `update_valid` once per registered metric with
//! `MetricState::Numeric(entry, Some(NumericEntry::Aggregated { aggregated_value, count }))`
//! (the batch value and the batch's sample count), then `update_split(items_processed)`; at the
//! end of a split it sends each metric's epoch value as `NumericEntry::Final(v)` and calls
//! `end_split()`. Metric entries carry a `MetricId` (equal to the metric's name); names come
//! from `register_metric`: "Loss", "Accuracy", "Top-K Accuracy @ TopK(5)", "Learning Rate".
//!
//! Rows of `metrics.csv`: one per training log interval and one per validation pass (Burn's
//! aggregate over the pass). A training row covers every optimizer step since the previous row,
//! weighted by the images the loader delivered: rows fall every `log_every` steps, except that the
//! steps left before a segment's end (a checkpoint) that are fewer than `log_every` join the row
//! before them, so no row covers a lone short batch. Rows end at every segment end, so a resumed
//! run writes exactly the rows of an uninterrupted one. `step` is the run's optimizer-step count
//! and `epoch` the real epochs done at that step, fractional.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use burn::train::LearnerSummary;
use burn::train::logger::TrainingProgressLogger;
use burn::train::metric::{MetricDefinition, MetricEntry, MetricId, NumericEntry};
use burn::train::renderer::{MetricState, MetricsRenderer, MetricsRendererTraining};

use super::display::{ProgressDisplay, format_lr, rate};
use super::metrics::{Means, Slot, Values, classify};
use super::metrics_csv::Row;
use super::metrics_sink::MetricsSink;
use crate::run::clock::{RunClock, Tick};
use crate::run::ema::EmaValidation;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Idle,
    Train,
    Valid,
    Other(String),
}

/// Counters of one split (a training segment or a validation pass).
struct SplitState {
    total_items: usize,
    iters: usize,
    images: usize,
    start: Instant,
    /// Batch values over the split, for the bar and as a fallback epoch aggregate.
    means: Means,
    /// Epoch aggregates Burn sent (`NumericEntry::Final`).
    finals: Values,
}

impl SplitState {
    fn new(total_items: usize) -> Self {
        Self {
            total_items,
            iters: 0,
            images: 0,
            start: Instant::now(),
            means: Means::default(),
            finals: Values::default(),
        }
    }
}

/// The training steps since the last row.
struct Interval {
    /// The step of the last row (or where this process started).
    from_step: usize,
    images: usize,
    start: Instant,
    means: Means,
}

impl Interval {
    fn at(step: usize) -> Self {
        Self { from_step: step, images: 0, start: Instant::now(), means: Means::default() }
    }
}

#[derive(Default)]
struct TestState {
    total_tests: usize,
    current: usize,
    name: String,
    items: usize,
    means: HashMap<String, Means>,
}

/// Burn `MetricsRenderer` with an indicatif progress bar or plain log lines, writing
/// `metrics.csv`. See the module documentation.
pub struct ProgressRenderer {
    sink: MetricsSink,
    display: ProgressDisplay,
    clock: RunClock,
    log_every: usize,
    slots: HashMap<MetricId, Slot>,
    label: String,
    total_epochs: usize,
    phase: Phase,
    split: SplitState,
    /// The segment burn-train is in (0-based; its epoch minus one).
    segment: usize,
    /// The run's position at the last training batch reported (from its tick).
    position: Tick,
    interval: Interval,
    /// The last lr seen in training; carried into log lines when an interval reported none.
    last_lr: Option<f64>,
    test: TestState,
    /// The weight average's validation counts (`run.ema_decay`), written as `valid_ema` rows.
    ema: Option<EmaValidation>,
}

impl ProgressRenderer {
    /// Creates the renderer and opens `metrics_csv`. `resume` is the checkpoint (segment) a
    /// resumed run starts from: the file keeps its rows up to that checkpoint's step (see
    /// [`super::metrics_csv::open`]); otherwise the file is created fresh. A bar is drawn when
    /// stderr is a terminal, plain lines are logged otherwise.
    pub fn new(metrics_csv: &Path, log_every: usize, clock: RunClock, resume: Option<usize>) -> Result<Self> {
        Self::with_display(metrics_csv, log_every, clock, resume, ProgressDisplay::for_stderr())
    }

    fn with_display(
        metrics_csv: &Path,
        log_every: usize,
        clock: RunClock,
        resume: Option<usize>,
        display: ProgressDisplay,
    ) -> Result<Self> {
        let step = clock.segments().steps_after(resume.unwrap_or(0));
        let sink = MetricsSink::open(metrics_csv, resume.map(|_| step as u64))?;
        Ok(Self {
            sink,
            display,
            log_every: log_every.max(1),
            slots: HashMap::new(),
            label: "training".to_string(),
            total_epochs: 0,
            phase: Phase::Idle,
            split: SplitState::new(0),
            segment: resume.unwrap_or(0),
            position: Tick {
                segment: resume.unwrap_or(0),
                micro_batch: clock.micro_batch(),
                step,
                images: 0,
                last_share: true,
            },
            interval: Interval::at(step),
            last_lr: None,
            test: TestState::default(),
            ema: None,
            clock,
        })
    }

    /// Also writes a `valid_ema` row after each validation pass, from the counts the weight
    /// average's validation leaves in `ema`.
    pub fn with_ema(mut self, ema: EmaValidation) -> Self {
        self.ema = Some(ema);
        self
    }

    /// The `valid_ema` row and line of the pass that just ended, when the average ran.
    fn write_ema_row(&mut self, label: &str) {
        let Some(counts) = self.ema.as_ref().and_then(|e| e.take(self.position.step)) else { return };
        let total = counts.total().max(1) as f64;
        let values = Values {
            loss: Some(counts.loss_sum / total),
            accuracy: counts.accuracy().map(|a| 100.0 * a),
            top5: counts.has_top5().then(|| 100.0 * counts.top5_correct as f64 / total),
            lr: None,
        };
        self.write_row("valid_ema", values, None);
        self.display.line(&format!("{label} valid_ema | {}", values.describe()));
    }

    /// The global step of the rows (optimizer steps so far, including those of a resumed run).
    pub fn step(&self) -> u64 {
        self.position.step as u64
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
        KNOWN.iter().find(|(name, _)| *id == MetricId::new(Arc::new(name.to_string()))).map(|(_, slot)| *slot)
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
            NumericEntry::Final(v) => self.split.finals.set(slot, v),
            NumericEntry::Aggregated { aggregated_value, count } => {
                self.batch_value(&split, slot, aggregated_value, count)
            }
            NumericEntry::Value(v) => self.batch_value(&split, slot, v, 0),
        }
    }

    fn batch_value(&mut self, split: &Phase, slot: Slot, value: f64, count: usize) {
        self.split.means.add(slot, value, count);
        if *split == Phase::Train {
            self.interval.means.add(slot, value, count);
            if slot == Slot::Lr {
                self.last_lr = Some(value);
            }
        }
    }

    /// The segment being trained or validated (0-based).
    fn segment(&self) -> usize {
        self.segment
    }

    /// Iterations (micro-batches) of the current split, when known.
    fn steps_in_split(&self) -> Option<usize> {
        if self.phase == Phase::Train {
            return Some(self.clock.segments().pieces(self.segment()).iter().map(|p| p.batches.len()).sum());
        }
        let batch = self.split.images.checked_div(self.split.iters).unwrap_or(0);
        (batch > 0 && self.split.total_items > 0).then(|| self.split.total_items.div_ceil(batch))
    }

    /// "epoch 2/3" when evaluating per epoch, else the segment's optimizer steps: "steps 5-8/27".
    fn epoch_label(&self) -> String {
        let segments = self.clock.segments();
        let epoch = self.segment() + 1;
        if !segments.per_epoch() {
            let steps = segments.steps(self.segment());
            format!("steps {}-{}/{}", steps.start + 1, steps.end, segments.total_steps)
        } else if self.total_epochs > 0 {
            format!("epoch {epoch}/{}", self.total_epochs)
        } else {
            format!("epoch {epoch}")
        }
    }

    fn step_label(&self) -> String {
        match self.steps_in_split() {
            Some(total) => format!("step {}/{}", self.split.iters, total),
            None => format!("step {}", self.split.iters),
        }
    }

    fn update_bar(&mut self) {
        if self.display.is_log() {
            return;
        }
        let mut msg = self.split.means.values().describe();
        if self.phase == Phase::Train
            && let Some(lr) = self.last_lr
        {
            msg += &format!(" lr {}", format_lr(lr));
        }
        if let Some(ips) = rate(self.split.images, self.split.start.elapsed()) {
            msg += &format!(" {ips:.0} img/s");
        }
        self.display.update_bar(self.split.iters, msg);
    }

    fn write_row(&mut self, split: &str, values: Values, images_per_sec: Option<f64>) {
        let step = self.position.step;
        let row = Row {
            step: step as u64,
            epoch: self.clock.segments().epochs_at(step),
            split: split.to_string(),
            loss: values.loss,
            accuracy: values.accuracy,
            top5: values.top5,
            lr: values.lr,
            images_per_sec,
        };
        if let Some(warning) = self.sink.write(&row) {
            self.display.line(&warning);
        }
    }

    /// Whether the training row is due after the step just completed: `log_every` steps since the
    /// last row, and at least `log_every` steps left in the segment (fewer join this row, which
    /// then ends with the segment).
    fn row_due(&self) -> bool {
        let step = self.position.step;
        let end = self.clock.segments().steps(self.segment()).end;
        step >= self.interval.from_step + self.log_every && end.saturating_sub(step) >= self.log_every
    }

    /// Writes the CSV row and (in log mode) the line for the current training interval.
    fn flush_train_interval(&mut self) {
        let step = self.position.step;
        if step <= self.interval.from_step && self.interval.images == 0 {
            return;
        }
        let values = self.interval.means.values();
        let ips = rate(self.interval.images, self.interval.start.elapsed());
        self.write_row("train", values, ips);
        if self.display.is_log() {
            let mut text = format!("{} {} | train {}", self.epoch_label(), self.step_label(), values.describe());
            if let Some(lr) = values.lr.or(self.last_lr) {
                text += &format!(" | lr {}", format_lr(lr));
            }
            if let Some(ips) = ips {
                text += &format!(" | {ips:.0} img/s");
            }
            self.display.line(&text);
        }
        self.interval = Interval::at(step);
    }
}

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
        self.display.finish_bar();
        if let Some(summary) = summary {
            self.display.line(&summary.to_string());
        }
        Ok(())
    }
}

impl TrainingProgressLogger for ProgressRenderer {
    fn start(&mut self, total_epochs: usize, starting_epoch: usize, _total_items: Option<usize>, label: Option<&str>) {
        self.total_epochs = total_epochs;
        if let Some(label) = label {
            self.label = label.to_string();
        }
        let segments = *self.clock.segments();
        self.segment = starting_epoch.max(1) - 1;
        let step = segments.steps_after(self.segment);
        self.position.step = step;
        let total = segments.total_steps;
        let plan = match segments.per_epoch() {
            true => format!("{total_epochs} epochs ({total} steps)"),
            false => format!("{total} steps, evaluated every {}", segments.segment_steps),
        };
        let csv = self.sink.path().display().to_string();
        let text = match step > 0 {
            true => format!("{}: {plan}; resuming at step {step}; metrics in {csv}", self.label),
            false => format!("{}: {plan}; metrics in {csv}", self.label),
        };
        self.display.line(&text);
    }

    fn update_epoch(&mut self, epoch: usize) {
        self.segment = epoch;
    }

    fn start_split(&mut self, split: &str, total_items: usize) {
        self.phase = match split {
            "train" => Phase::Train,
            "valid" => Phase::Valid,
            other => Phase::Other(other.to_string()),
        };
        self.split = SplitState::new(total_items);
        if self.phase == Phase::Train {
            let step = self.clock.segments().steps_after(self.segment);
            self.position.step = step;
            self.interval = Interval::at(step);
        }
        let prefix = format!("{} {split}", self.epoch_label());
        let len = self.steps_in_split();
        self.display.start_bar(prefix, len);
    }

    fn update_split(&mut self, items_processed: usize) {
        if self.phase == Phase::Train {
            let Some(tick) = self.clock.next_tick() else {
                self.split.iters += 1;
                self.update_bar();
                return;
            };
            // With several devices burn-train reports each device's share of a micro-batch: the
            // micro-batch is done with its last share.
            self.split.iters += usize::from(tick.last_share);
            self.position = tick;
            self.split.images += tick.images;
            self.interval.images += tick.images;
            if tick.last_share && self.clock.segments().ends_step(tick.micro_batch) && self.row_due() {
                self.flush_train_interval();
            }
        } else {
            self.split.iters += 1;
            // Evaluation passes count their items from the start of the pass.
            self.split.images = self.split.images.max(items_processed);
        }
        self.update_bar();
    }

    fn end_split(&mut self) {
        let elapsed = self.split.start.elapsed();
        let ips = rate(self.split.images, elapsed);
        // Burn's epoch aggregates, else the mean of the batch values seen.
        let epoch_values = self.split.finals.or(self.split.means.values());
        self.display.finish_bar();
        let label = self.epoch_label();
        let timing = |text: &mut String| {
            if let Some(ips) = ips {
                *text += &format!(" | {ips:.0} img/s");
            }
            *text += &format!(" | {:.1} s", elapsed.as_secs_f64());
        };
        match self.phase.clone() {
            Phase::Train => {
                self.flush_train_interval();
                let mut text = format!("{label} train done | {}", epoch_values.describe());
                timing(&mut text);
                self.display.line(&text);
            }
            Phase::Valid => {
                let values = Values { lr: None, ..epoch_values };
                self.write_row("valid", values, ips);
                let mut text = format!("{label} valid | {}", values.describe());
                timing(&mut text);
                self.display.line(&text);
                self.write_ema_row(&label);
            }
            Phase::Other(name) => self.display.line(&format!("{label} {name} | {}", epoch_values.describe())),
            Phase::Idle => {}
        }
        self.phase = Phase::Idle;
    }

    fn end(&mut self) {
        self.display.finish_bar();
    }

    fn log_event_training(&mut self, _event: String) {}
}

impl MetricsRenderer for ProgressRenderer {
    fn manual_close(&mut self) {}

    fn register_metric(&mut self, definition: MetricDefinition) {
        if let Some(slot) = classify(&definition.name) {
            self.slots.insert(definition.metric_id, slot);
        }
    }
}

mod evaluation;

#[cfg(test)]
mod tests;
