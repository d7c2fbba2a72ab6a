//! burn-train's `Checkpointer` over [`CheckpointSets`]: one per record (model, optimizer,
//! scheduler), each record a burnpack file `<dir>/<record>-<N>.bpk` written atomically, the three
//! committed together as a set.

use std::sync::Arc;

use burn::tensor::Bytes;
use burn::train::checkpoint::{Checkpoint, Checkpointer, CheckpointerError};

use super::checkpoint_sets::{CheckpointSets, record_path};

/// Says whether the run's state may be saved now (false after a non-finite loss or norm).
pub type SaveGate = Arc<dyn Fn() -> bool + Send + Sync>;

/// The checkpointer of one record of a run's checkpoint sets.
pub struct SetCheckpointer {
    sets: CheckpointSets,
    name: &'static str,
    gate: Option<SaveGate>,
}

impl SetCheckpointer {
    /// Checkpoints of record `name` (`model`, `optim` or `scheduler`) in `sets`.
    pub fn new(sets: &CheckpointSets, name: &'static str) -> Self {
        Self { sets: sets.clone(), name, gate: None }
    }

    /// Saves and deletes nothing while `gate` says no: a run that met a non-finite value keeps
    /// its last good checkpoints as they are.
    pub fn gated(mut self, gate: SaveGate) -> Self {
        self.gate = Some(gate);
        self
    }

    fn open(&self) -> bool {
        self.gate.as_ref().is_none_or(|gate| gate())
    }
}

impl<R: Checkpoint> Checkpointer<R> for SetCheckpointer {
    fn save(&self, epoch: usize, record: R) -> Result<(), CheckpointerError> {
        if !self.open() {
            return Ok(());
        }
        let bytes = record.checkpoint_into_bytes().map_err(CheckpointerError::Record)?;
        self.sets.save(self.name, epoch, &bytes).map_err(|e| CheckpointerError::Unknown(e.to_string()))
    }

    fn delete(&self, epoch: usize) -> Result<(), CheckpointerError> {
        if !self.open() {
            return Ok(());
        }
        self.sets.delete(self.name, epoch).map_err(CheckpointerError::IOError)
    }

    fn restore(&self, epoch: usize) -> Result<R, CheckpointerError> {
        let path = record_path(self.sets.directory(), self.name, epoch);
        let bytes = std::fs::read(&path).map_err(CheckpointerError::IOError)?;
        R::checkpoint_from_bytes(Bytes::from_bytes_vec(bytes)).map_err(CheckpointerError::Record)
    }
}
