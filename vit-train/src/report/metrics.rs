//! Aggregation of burn-train's metric values into the logged columns: which metric feeds which
//! column, and means weighted by the images each batch held.

/// Which CSV column a Burn metric feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    Loss,
    Accuracy,
    Top5,
    Lr,
}

/// Maps a Burn metric name to a column: `LossMetric` is "Loss", `AccuracyMetric` "Accuracy",
/// `TopKAccuracyMetric::new(5)` "Top-K Accuracy @ TopK(5)", `LearningRateMetric` "Learning Rate".
/// Other metrics (other k, CPU use, ...) are not logged.
pub fn classify(name: &str) -> Option<Slot> {
    let n = name.trim().to_ascii_lowercase();
    match n.as_str() {
        "loss" => Some(Slot::Loss),
        "accuracy" | "top-1 accuracy" => Some(Slot::Accuracy),
        "learning rate" | "lr" => Some(Slot::Lr),
        "top-5 accuracy" | "top5" | "top-5" => Some(Slot::Top5),
        _ if n.starts_with("top-k accuracy") && n.replace(' ', "").ends_with("topk(5)") => Some(Slot::Top5),
        _ => None,
    }
}

/// Running mean weighted by sample counts; falls back to a plain mean when every update has a
/// zero count. NaN values propagate (a NaN loss should show up as NaN, not vanish).
#[derive(Debug, Default, Clone, Copy)]
pub struct Mean {
    weighted_sum: f64,
    weight: f64,
    plain_sum: f64,
    n: usize,
}

impl Mean {
    pub fn add(&mut self, value: f64, count: usize) {
        if count > 0 {
            self.weighted_sum += value * count as f64;
            self.weight += count as f64;
        }
        self.plain_sum += value;
        self.n += 1;
    }

    pub fn get(&self) -> Option<f64> {
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
pub struct Means {
    pub loss: Mean,
    pub accuracy: Mean,
    pub top5: Mean,
    /// The latest lr, not a mean: the rate in effect at the row's step.
    pub lr: Option<f64>,
}

impl Means {
    pub fn add(&mut self, slot: Slot, value: f64, count: usize) {
        match slot {
            Slot::Loss => self.loss.add(value, count),
            Slot::Accuracy => self.accuracy.add(value, count),
            Slot::Top5 => self.top5.add(value, count),
            Slot::Lr => self.lr = Some(value),
        }
    }

    pub fn values(&self) -> Values {
        Values { loss: self.loss.get(), accuracy: self.accuracy.get(), top5: self.top5.get(), lr: self.lr }
    }
}

/// One set of metric values for a row or a line; `None` = unknown.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Values {
    pub loss: Option<f64>,
    pub accuracy: Option<f64>,
    pub top5: Option<f64>,
    pub lr: Option<f64>,
}

impl Values {
    pub fn set(&mut self, slot: Slot, value: f64) {
        match slot {
            Slot::Loss => self.loss = Some(value),
            Slot::Accuracy => self.accuracy = Some(value),
            Slot::Top5 => self.top5 = Some(value),
            Slot::Lr => self.lr = Some(value),
        }
    }

    /// `self`, with the gaps filled from `other`.
    pub fn or(self, other: Values) -> Values {
        Values {
            loss: self.loss.or(other.loss),
            accuracy: self.accuracy.or(other.accuracy),
            top5: self.top5.or(other.top5),
            lr: self.lr.or(other.lr),
        }
    }

    /// "loss 1.2345 acc 56.20% top5 80.00%"; unknown values are left out.
    pub fn describe(&self) -> String {
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
        if parts.is_empty() { "(no metrics)".to_string() } else { parts.join(" ") }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn means_are_weighted_by_images() {
        let mut m = Mean::default();
        m.add(1.0, 4);
        m.add(4.0, 2);
        assert_eq!(m.get(), Some(2.0));
    }
}
