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
use burn::train::logger::{EvaluationProgressLogger, TrainingProgressLogger};
use burn::train::metric::{MetricDefinition, MetricEntry, MetricId, NumericEntry};
use burn::train::renderer::{
    EvaluationName, MetricState, MetricsRenderer, MetricsRendererEvaluation, MetricsRendererTraining,
};

use super::display::{ProgressDisplay, format_lr, rate};
use super::metrics::{Means, Slot, Values, classify};
use super::metrics_csv::Row;
use super::metrics_sink::MetricsSink;
use crate::run::clock::{RunClock, Tick};

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
            position: Tick { segment: resume.unwrap_or(0), micro_batch: clock.micro_batch(), step, images: 0 },
            interval: Interval::at(step),
            last_lr: None,
            test: TestState::default(),
            clock,
        })
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
        self.split.iters += 1;
        if self.phase == Phase::Train {
            let Some(tick) = self.clock.next_tick() else {
                self.update_bar();
                return;
            };
            self.position = tick;
            self.split.images += tick.images;
            self.interval.images += tick.images;
            if self.clock.segments().ends_step(tick.micro_batch) && self.row_due() {
                self.flush_train_interval();
            }
        } else {
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

impl MetricsRendererEvaluation for ProgressRenderer {
    fn update_test(&mut self, name: EvaluationName, state: MetricState) {
        let Some((slot, numeric)) = self.decode(&state) else {
            return;
        };
        let means = self.test.means.entry(name.as_str().to_string()).or_default();
        match numeric {
            NumericEntry::Aggregated { aggregated_value, count } => means.add(slot, aggregated_value, count),
            NumericEntry::Value(v) | NumericEntry::Final(v) => means.add(slot, v, 0),
        }
    }

    fn on_test_end(&mut self, summary: Option<LearnerSummary>) -> std::result::Result<(), Box<dyn core::error::Error>> {
        self.display.finish_bar();
        if let Some(summary) = summary {
            self.display.line(&summary.to_string());
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
        self.split.start = Instant::now();
        let prefix = format!("test {}/{} {name}", self.test.current, self.test.total_tests);
        self.display.start_bar(prefix, (total_items > 0).then_some(total_items));
    }

    fn update_test_progress(&mut self, items_processed: usize) {
        self.test.items = items_processed;
        let msg = self.test.means.get(&self.test.name).map(|m| m.values().describe()).unwrap_or_default();
        self.display.update_bar(items_processed, msg);
    }

    fn end_test(&mut self) {
        self.display.finish_bar();
        let values = self.test.means.get(&self.test.name).map(|m| m.values()).unwrap_or_default();
        let mut text = format!("test {} | {}", self.test.name, values.describe());
        if let Some(ips) = rate(self.test.items, self.split.start.elapsed()) {
            text += &format!(" | {ips:.0} img/s");
        }
        self.display.line(&text);
    }

    fn end_global_progress(&mut self) {
        self.display.finish_bar();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::metrics_csv;
    use crate::run::segments::Segments;
    use burn::train::metric::{MetricAttributes, SerializedEntry};
    use std::io::Write;
    use std::sync::Mutex;
    use std::{fs, path::Path};

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
        let numeric = NumericEntry::Aggregated { aggregated_value: value, count };
        let entry = MetricEntry::new(id(name), SerializedEntry::new(format!("batch {value}"), numeric.serialize()));
        MetricState::Numeric(entry, Some(numeric))
    }

    /// The end-of-split state Burn sends: the epoch aggregate.
    fn final_value(name: &str, value: f64) -> MetricState {
        let numeric = NumericEntry::Final(value);
        let entry = MetricEntry::new(id(name), SerializedEntry::new(format!("epoch {value}"), numeric.serialize()));
        MetricState::Numeric(entry, Some(numeric))
    }

    /// A renderer writing `dir/metrics.csv`, its clock at the start of checkpoint `resume`; the
    /// `_batch` argument (the old images-per-iteration guess) is gone: images come from the clock.
    fn renderer(
        dir: &Path,
        _batch: usize,
        log_every: usize,
        segments: Segments,
        resume: Option<usize>,
    ) -> (ProgressRenderer, Sink) {
        let sink = Sink::default();
        let clock = RunClock::new(segments, resume.unwrap_or(0));
        let csv = dir.join("metrics.csv");
        let r = ProgressRenderer::with_display(
            &csv,
            log_every,
            clock,
            resume,
            ProgressDisplay::Log(Box::new(sink.clone())),
        )
        .unwrap();
        (r, sink)
    }

    /// What the training loader does when burn-train asks for the next segment, then Burn's call.
    fn begin_train(r: &mut ProgressRenderer, total_items: usize) {
        r.clock.begin_next_segment();
        r.start_split("train", total_items);
    }

    /// A training batch of `images` handed over by the loader, then Burn's progress update.
    fn train_batch(r: &mut ProgressRenderer, images: usize, done: usize) {
        r.clock.deliver(images);
        r.update_split(done);
    }

    fn register_all(r: &mut ProgressRenderer) {
        for name in [LOSS, ACC, TOP5, LR, "Iteration Speed"] {
            r.register_metric(definition(name));
        }
    }

    /// One training epoch of `iters` batches of `batch` images (the last one may be short):
    /// loss of batch i is `loss0 + i`, accuracy `10 * i`, lr `1e-3 * i`; then Burn's finals.
    fn train_epoch(r: &mut ProgressRenderer, total_items: usize, batch: usize, loss0: f64) {
        begin_train(r, total_items);
        let mut done = 0;
        let mut i = 0;
        while done < total_items {
            i += 1;
            let n = batch.min(total_items - done);
            done += n;
            r.update_train(batch_state(LOSS, loss0 + i as f64, n));
            r.update_train(batch_state(ACC, 10.0 * i as f64, n));
            r.update_train(batch_state(LR, 1e-3 * i as f64, 1));
            train_batch(r, n, done);
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
        lines.map(|l| l.split(',').map(str::to_string).collect()).collect()
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

        let rows = rows(&dir.path().join("metrics.csv"));
        assert_eq!(
            fixed(&rows),
            vec![
                // iterations 1-2: loss (2+3)/2, acc (10+20)/2, lr at step 2; 2/5 of an epoch
                "2,0.4,train,2.5,15,,0.002",
                // steps 3-5: one step would be left after step 4, so it joins this row: loss
                // (4·4 + 5·4 + 6·2) / 10 images, acc (30·4 + 40·4 + 50·2) / 10
                "5,1,train,4.8,38,,0.005",
                // Burn's epoch aggregates for validation; no lr
                "5,1,valid,0.5,60,90,",
                "7,1.4,train,3.5,15,,0.002",
                "10,2,train,5.8,38,,0.005",
            ]
        );
        for row in &rows {
            let ips: f64 = row[7].parse().expect("images_per_sec is a number");
            assert!(ips > 0.0);
        }

        let log = sink.text();
        assert!(log.contains("epoch 1/2 step 2/5 | train loss 2.5000 acc 15.00% | lr 2.0e-3 | "), "{log}");
        assert!(log.contains("epoch 1/2 step 5/5 | train loss 4.8000 acc 38.00% | lr 5.0e-3"), "{log}");
        assert!(log.contains("epoch 1/2 train done | loss 99.0000 acc 77.00%"), "{log}");
        assert!(log.contains("epoch 1/2 valid | loss 0.5000 acc 60.00% top5 90.00% | "), "{log}");
        assert!(log.contains("epoch 2/2 step 2/5 | train loss 3.5000"), "{log}");
    }

    #[test]
    fn weights_interval_means_by_batch_size() {
        let dir = tempfile::tempdir().unwrap();
        let (mut r, _) = renderer(dir.path(), 4, 2, Segments::new(2, 1, 1, None, None), None);
        register_all(&mut r);
        r.start(1, 1, None, None);
        begin_train(&mut r, 6);
        r.update_train(batch(LOSS, 1.0, 4));
        train_batch(&mut r, 4, 4);
        r.update_train(batch(LOSS, 4.0, 2));
        train_batch(&mut r, 2, 6);
        r.end_split();
        drop(r);
        assert_eq!(fixed(&rows(&dir.path().join("metrics.csv"))), vec!["2,1,train,2,,,"]);
    }

    #[test]
    fn appends_on_resume_and_continues_the_step() {
        let dir = tempfile::tempdir().unwrap();
        let segments = Segments::new(4, 1, 3, None, None);
        let csv = dir.path().join("metrics.csv");
        {
            let (mut r, _) = renderer(dir.path(), 4, 2, segments, None);
            register_all(&mut r);
            r.start(3, 1, None, None);
            train_epoch(&mut r, 16, 4, 1.0);
            valid_epoch(&mut r, 0.5, 60.0, 90.0);
            r.update_epoch(1);
            // Epoch 2 crashes after one interval, with a half-written row.
            begin_train(&mut r, 16);
            for i in 1..=2 {
                r.update_train(batch(LOSS, 5.0, 4));
                train_batch(&mut r, 4, 4 * i);
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
        train_batch(&mut r, 4, 2);
        r.update_train(MetricState::Generic(MetricEntry::new(
            id(LR),
            SerializedEntry::new("x".into(), NumericEntry::Value(3e-4).serialize()),
        )));
        train_batch(&mut r, 2, 1); // items going backwards
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

        let rows = rows(&dir.path().join("metrics.csv"));
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
        begin_train(&mut r, 12);
        for done in [4, 8, 12] {
            r.update_train(batch(LOSS, 1.0, 4));
            train_batch(&mut r, 4, done);
        }
        r.end_split();
        valid_epoch(&mut r, 0.5, 60.0, 90.0);
        r.update_epoch(1);
        // Steps 4-6: the end of epoch 0 (4 + 2 images), then epoch 1, whose item count the
        // loader restarts.
        begin_train(&mut r, 6);
        for (images, done) in [(4, 4), (2, 6), (4, 4)] {
            r.update_train(batch(LOSS, 2.0, 4));
            train_batch(&mut r, images, done);
        }
        assert_eq!(r.split.images, 10);
        r.end_split();
        valid_epoch(&mut r, 0.25, 70.0, 95.0);
        drop(r);

        assert_eq!(
            fixed(&rows(&dir.path().join("metrics.csv"))),
            vec![
                // a row at step 2 would leave one step: steps 1-3 are one row
                "3,0.6,train,1,,,",
                "3,0.6,valid,0.5,60,90,",
                "6,1.2,train,2,,,",
                "6,1.2,valid,0.25,70,95,",
            ]
        );
        let log = sink.text();
        assert!(log.contains("10 steps, evaluated every 3"), "{log}");
        assert!(log.contains("steps 1-3/10 valid | loss 0.5000"), "{log}");
        assert!(log.contains("steps 4-6/10 step 3/3 | train loss 2.0000"), "{log}");
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
            fixed(&rows(&dir.path().join("metrics.csv"))),
            vec!["1,0.333333,train,2.5,15,,0.002", "2,0.666667,train,4.5,35,,0.004", "3,1,train,6,50,,0.005"]
        );
    }
}
