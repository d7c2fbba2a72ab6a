//! The renderer's side of burn-train's evaluation (test) passes: a bar per test set and a summary
//! line of its metrics.

use std::time::Instant;

use burn::train::LearnerSummary;
use burn::train::logger::EvaluationProgressLogger;
use burn::train::metric::NumericEntry;
use burn::train::renderer::{EvaluationName, MetricState, MetricsRendererEvaluation};

use super::ProgressRenderer;
use crate::report::display::rate;

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
