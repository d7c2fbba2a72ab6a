//! Evaluation of a classifier over a dataset: accuracy, top-5 accuracy, loss, per-class counts and
//! the confusion matrix; shared by `vit-train eval` and the test rows written at the end of a run.

use std::path::Path;

use anyhow::{Context, Result, bail};
use burn::data::dataloader::DataLoader;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use vit_model::kernels::on_kernel_threads;
use vit_model::{ViTForImageClassification, ViTForwardOptions};

use super::loader::EpochLoader;

/// Confusion matrices wider than this are left out of the text report (they are in `--json`).
const MAX_TEXT_MATRIX: usize = 30;

/// Counts gathered over an evaluation split.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalCounts {
    /// Class names, in class order.
    pub classes: Vec<String>,
    /// `confusion[true][predicted]`.
    pub confusion: Vec<Vec<usize>>,
    /// Images whose true class is among the 5 highest logits.
    pub top5_correct: usize,
    /// Sum of the per-image cross-entropy.
    pub loss_sum: f64,
}

impl EvalCounts {
    /// Empty counts for `classes`.
    pub fn new(classes: Vec<String>) -> Self {
        let n = classes.len();
        Self { classes, confusion: vec![vec![0; n]; n], top5_correct: 0, loss_sum: 0.0 }
    }

    /// Adds one image: its logits and true class.
    pub fn add(&mut self, logits: &[f32], label: usize) {
        let predicted = argmax(logits);
        self.confusion[label][predicted] += 1;
        let truth = logits[label];
        let above = logits.iter().filter(|&&v| v > truth).count();
        if above < 5 {
            self.top5_correct += 1;
        }
        let max = logits.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
        let log_sum = logits.iter().map(|&v| (v as f64 - max).exp()).sum::<f64>().ln() + max;
        self.loss_sum += log_sum - truth as f64;
    }

    /// Images counted.
    pub fn total(&self) -> usize {
        self.confusion.iter().map(|row| row.iter().sum::<usize>()).sum()
    }

    /// Images classified correctly.
    pub fn correct(&self) -> usize {
        (0..self.classes.len()).map(|i| self.confusion[i][i]).sum()
    }

    /// Whether top-5 accuracy is meaningful (more than 5 classes).
    pub fn has_top5(&self) -> bool {
        self.classes.len() > 5
    }

    fn ratio(a: usize, b: usize) -> Option<f64> {
        (b > 0).then(|| a as f64 / b as f64)
    }

    /// Accuracy over all images.
    pub fn accuracy(&self) -> Option<f64> {
        Self::ratio(self.correct(), self.total())
    }

    /// (correct, total) of class `i`.
    pub fn class_counts(&self, i: usize) -> (usize, usize) {
        (self.confusion[i][i], self.confusion[i].iter().sum())
    }

    /// The report as one JSON object.
    pub fn to_json(&self, model: &Path, data: &str) -> serde_json::Value {
        let total = self.total();
        let per_class: Vec<serde_json::Value> = (0..self.classes.len())
            .map(|i| {
                let (c, t) = self.class_counts(i);
                json!({ "label": self.classes[i], "index": i, "correct": c, "total": t, "accuracy": Self::ratio(c, t) })
            })
            .collect();
        json!({
            "model": model.to_string_lossy(),
            "dataset": data,
            "num_images": total,
            "correct": self.correct(),
            "accuracy": self.accuracy(),
            "top5_correct": self.has_top5().then_some(self.top5_correct),
            "top5_accuracy": if self.has_top5() { Self::ratio(self.top5_correct, total) } else { None },
            "loss": (total > 0).then(|| self.loss_sum / total as f64),
            "classes": self.classes,
            "per_class": per_class,
            "confusion_matrix": self.confusion,
        })
    }

    /// The report as text tables.
    pub fn to_text(&self, model: &Path, data: &str) -> String {
        let pct = |r: Option<f64>| r.map_or("-".to_string(), |r| format!("{:.2}%", 100.0 * r));
        let total = self.total();
        let mut out = String::new();
        out.push_str(&format!("model       {}\n", model.display()));
        out.push_str(&format!("data        {data}: {total} images, {} classes\n", self.classes.len()));
        out.push_str(&format!("accuracy    {}  ({}/{total})\n", pct(self.accuracy()), self.correct()));
        if self.has_top5() {
            out.push_str(&format!(
                "top-5       {}  ({}/{total})\n",
                pct(Self::ratio(self.top5_correct, total)),
                self.top5_correct
            ));
        }
        if total > 0 {
            out.push_str(&format!("loss        {:.4}\n", self.loss_sum / total as f64));
        }

        let name_w = self.classes.iter().map(|c| c.chars().count()).max().unwrap_or(0).max(5);
        let counts: Vec<String> = (0..self.classes.len())
            .map(|i| {
                let (c, t) = self.class_counts(i);
                format!("{c}/{t}")
            })
            .collect();
        let count_w = counts.iter().map(String::len).max().unwrap_or(0).max("correct/total".len());
        out.push_str("\nper-class accuracy\n");
        out.push_str(&format!("  {:<name_w$}  {:>count_w$}  {:>8}\n", "class", "correct/total", "accuracy"));
        for (i, class) in self.classes.iter().enumerate() {
            let (c, t) = self.class_counts(i);
            out.push_str(&format!("  {class:<name_w$}  {:>count_w$}  {:>8}\n", counts[i], pct(Self::ratio(c, t))));
        }

        out.push_str("\nconfusion matrix (rows: true class, columns: predicted class)\n");
        if self.classes.len() > MAX_TEXT_MATRIX {
            out.push_str(&format!(
                "  ({} classes: too wide for text; run with --json for the matrix)\n",
                self.classes.len()
            ));
            return out;
        }
        let max_cell = self.confusion.iter().flatten().copied().max().unwrap_or(0);
        let cell_w = max_cell.to_string().len().max((self.classes.len().saturating_sub(1)).to_string().len());
        let idx_w = self.classes.len().saturating_sub(1).to_string().len();
        out.push_str(&format!("  {:>idx_w$} {:<name_w$} ", "", ""));
        for j in 0..self.classes.len() {
            out.push_str(&format!(" {j:>cell_w$}"));
        }
        out.push('\n');
        for (i, class) in self.classes.iter().enumerate() {
            out.push_str(&format!("  {i:>idx_w$} {class:<name_w$} "));
            for v in &self.confusion[i] {
                out.push_str(&format!(" {v:>cell_w$}"));
            }
            out.push('\n');
        }
        out
    }
}

fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if *v > values[best] || values[best].is_nan() {
            best = i;
        }
    }
    best
}

/// Runs `model` over every image of `loader` and counts; `classes` are the dataset's (in class
/// order); `progress` draws a bar on stderr.
pub fn evaluate_classifier(
    model: &ViTForImageClassification,
    loader: &EpochLoader,
    interpolate_pos_encoding: bool,
    classes: Vec<String>,
    progress: bool,
) -> Result<EvalCounts> {
    let expected = loader.num_items();
    let target = if progress { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
    let bar = ProgressBar::with_draw_target(Some(expected as u64), target);
    if let Ok(style) = ProgressStyle::with_template("eval {bar:30} {pos}/{len} images {elapsed}") {
        bar.set_style(style);
    }
    let mut counts = EvalCounts::new(classes);
    let num_classes = counts.classes.len();
    for batch in loader.iter() {
        let batch = batch.map_err(|e| anyhow::anyhow!("{e}")).context("cannot load an evaluation batch")?;
        let options = ViTForwardOptions { interpolate_pos_encoding, ..Default::default() };
        let device = batch.pixel_values.device();
        let logits: Vec<f32> = on_kernel_threads(&device, || -> Result<Vec<f32>> {
            let logits = model.forward_with(batch.pixel_values, None, options)?.logits;
            logits
                .into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .map_err(|e| anyhow::anyhow!("cannot read the logits: {e:?}"))
        })?;
        let labels: Vec<i64> = batch
            .labels
            .into_data()
            .convert::<i64>()
            .try_into_vec::<i64>()
            .map_err(|e| anyhow::anyhow!("cannot read the labels: {e:?}"))?;
        for (row, &label) in logits.chunks(num_classes).zip(&labels) {
            let label = usize::try_from(label)
                .ok()
                .filter(|&l| l < num_classes)
                .with_context(|| format!("the dataset gave label {label}, outside the {num_classes} classes"))?;
            counts.add(row, label);
        }
        bar.inc(labels.len() as u64);
    }
    bar.finish_and_clear();
    if counts.total() != expected {
        bail!("the loader stopped after {} of {expected} images", counts.total());
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_accuracy_top5_and_confusion() {
        let classes: Vec<String> = (0..6).map(|i| format!("c{i}")).collect();
        let mut c = EvalCounts::new(classes);
        c.add(&[5.0, 0.0, 0.0, 0.0, 0.0, 0.0], 0); // correct
        c.add(&[5.0, 4.0, 3.0, 2.0, 1.0, 0.0], 4); // wrong, in the top 5
        c.add(&[5.0, 4.0, 3.0, 2.0, 1.0, 0.0], 5); // wrong, outside the top 5
        assert_eq!(c.total(), 3);
        assert_eq!(c.correct(), 1);
        assert_eq!(c.top5_correct, 2);
        assert_eq!(c.confusion[4][0], 1);
        assert_eq!(c.class_counts(5), (0, 1));
        let j = c.to_json(Path::new("m"), "d");
        assert_eq!(j["confusion_matrix"][5][0], 1);
        assert!(c.to_text(Path::new("m"), "d").contains("top-5"));
    }
}
