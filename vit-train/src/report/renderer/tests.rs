//! The renderer driven as burn-train drives it, rows and log lines checked.

use super::*;
use crate::report::metrics_csv;
use crate::run::segments::Segments;
use burn::train::logger::EvaluationProgressLogger;
use burn::train::metric::{MetricAttributes, SerializedEntry};
use burn::train::renderer::{EvaluationName, MetricsRendererEvaluation};
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
    let r =
        ProgressRenderer::with_display(&csv, log_every, clock, resume, ProgressDisplay::Log(Box::new(sink.clone())))
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
    r.update_train(MetricState::Numeric(MetricEntry::new(id(TOP5), SerializedEntry::not_available(Some("%"))), None));
    r.update_train(MetricState::Generic(MetricEntry::new(id(LR), SerializedEntry::new("x".into(), "garbage".into()))));
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
