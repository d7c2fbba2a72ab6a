//! Training checkpoints that are never half-written: each record is written to a temporary file,
//! flushed and renamed; an epoch counts as saved only when model, optimizer and scheduler all are.

use std::path::{Path, PathBuf};

use burn::tensor::Bytes;
use burn::train::checkpoint::{Checkpoint, Checkpointer, CheckpointerError};
use vit_model::checkpoint::write_atomic;

/// The three records burn-train saves per epoch.
pub const RECORDS: [&str; 3] = ["model", "optim", "scheduler"];

/// A burnpack file per epoch, `<dir>/<name>-<epoch>.bpk`, written atomically.
pub struct AtomicFileCheckpointer {
    directory: PathBuf,
    name: &'static str,
}

impl AtomicFileCheckpointer {
    /// Checkpoints of record `name` in `directory`.
    pub fn new(directory: &Path, name: &'static str) -> Self {
        Self { directory: directory.to_path_buf(), name }
    }

    fn path(&self, epoch: usize) -> PathBuf {
        record_path(&self.directory, self.name, epoch)
    }
}

/// Where record `name` of `epoch` lives.
pub fn record_path(directory: &Path, name: &str, epoch: usize) -> PathBuf {
    directory.join(format!("{name}-{epoch}.bpk"))
}

impl<R: Checkpoint> Checkpointer<R> for AtomicFileCheckpointer {
    fn save(&self, epoch: usize, record: R) -> Result<(), CheckpointerError> {
        std::fs::create_dir_all(&self.directory).map_err(CheckpointerError::IOError)?;
        let bytes = record.checkpoint_into_bytes().map_err(CheckpointerError::Record)?;
        write_atomic(&self.path(epoch), &bytes).map_err(|e| CheckpointerError::Unknown(e.to_string()))
    }

    fn delete(&self, epoch: usize) -> Result<(), CheckpointerError> {
        let path = self.path(epoch);
        if path.exists() {
            std::fs::remove_file(path).map_err(CheckpointerError::IOError)?;
        }
        Ok(())
    }

    fn restore(&self, epoch: usize) -> Result<R, CheckpointerError> {
        let path = self.path(epoch);
        let bytes = std::fs::read(&path).map_err(CheckpointerError::IOError)?;
        R::checkpoint_from_bytes(Bytes::from_bytes_vec(bytes)).map_err(CheckpointerError::Record)
    }
}

/// The latest epoch whose three records are all present in `directory`.
pub fn latest_complete_epoch(directory: &Path) -> Option<usize> {
    let entries = std::fs::read_dir(directory).ok()?;
    let mut epochs: Vec<usize> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_prefix("model-")?.strip_suffix(".bpk")?.parse().ok()
        })
        .filter(|&epoch| RECORDS.iter().all(|r| record_path(directory, r, epoch).is_file()))
        .collect();
    epochs.sort_unstable();
    epochs.pop()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_epoch_needs_all_three_records() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        assert_eq!(latest_complete_epoch(d), None);
        for r in RECORDS {
            std::fs::write(record_path(d, r, 1), b"x").unwrap();
        }
        std::fs::write(record_path(d, "model", 2), b"x").unwrap();
        std::fs::write(record_path(d, "optim", 2), b"x").unwrap();
        assert_eq!(latest_complete_epoch(d), Some(1));
    }
}
