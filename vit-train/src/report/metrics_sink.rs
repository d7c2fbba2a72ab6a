//! [`MetricsSink`]: appends rows to `metrics.csv` as they are logged, flushed row by row.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::metrics_csv::{self, Row};

/// The open `metrics.csv` of a run.
pub struct MetricsSink {
    path: PathBuf,
    writer: BufWriter<File>,
    error_reported: bool,
}

impl MetricsSink {
    /// Opens `path`: a fresh file, or for a run resumed at optimizer step `resume` the rows up to
    /// that step (see [`metrics_csv::open`]).
    pub fn open(path: &Path, resume: Option<u64>) -> Result<Self> {
        let file = metrics_csv::open(path, resume)?;
        Ok(Self { path: path.to_path_buf(), writer: BufWriter::new(file), error_reported: false })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `row`. The first failure returns a warning to show; later ones are silent (the run
    /// goes on: its checkpoints matter more than its log).
    pub fn write(&mut self, row: &Row) -> Option<String> {
        let result = writeln!(self.writer, "{}", row.to_line()).and_then(|_| self.writer.flush());
        match result {
            Err(e) if !self.error_reported => {
                self.error_reported = true;
                Some(format!("warning: cannot write {}: {e}", self.path.display()))
            }
            _ => None,
        }
    }
}

impl Drop for MetricsSink {
    fn drop(&mut self) {
        let _ = self.writer.flush();
    }
}
