//! Checkpoint sets committed as a unit. burn-train saves a checkpoint as three records (model,
//! optimizer, scheduler) from separate threads and deletes old ones the same way; here a set `N`
//! counts only once its three files are durable and a manifest `manifest-N.json` (names, sizes,
//! MD5s) has been written after them, atomically. Deleting an old set is deferred until a newer
//! manifest exists, so a crash at any point leaves at least one complete set once one was made.
//! Resume verifies the manifest of the newest set and falls back to an older one if it is damaged.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use super::loss_scale::LossScaler;

/// The three records burn-train saves per checkpoint.
pub const RECORDS: [&str; 3] = ["model", "optim", "scheduler"];

/// Where record `name` of checkpoint `n` lives.
pub fn record_path(directory: &Path, name: &str, n: usize) -> PathBuf {
    directory.join(format!("{name}-{n}.bpk"))
}

/// Where the manifest of checkpoint `n` lives.
pub fn manifest_path(directory: &Path, n: usize) -> PathBuf {
    directory.join(format!("manifest-{n}.json"))
}

/// One file of a set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// The file name inside the checkpoint directory.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// The MD5 of its bytes, hex.
    pub md5: String,
}

/// What a committed set holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The checkpoint number.
    pub checkpoint: usize,
    /// Its files.
    pub files: Vec<ManifestFile>,
    /// The float16 loss scaler's state at the checkpoint (float16 runs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_scaler: Option<LossScaler>,
}

/// Gives the loss scaler's state at checkpoint `n`, for its manifest.
pub type ScalerAt = Arc<dyn Fn(usize) -> Option<LossScaler> + Send + Sync>;

fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Default)]
struct State {
    /// Records written per checkpoint, not yet committed.
    written: BTreeMap<usize, BTreeMap<&'static str, ManifestFile>>,
    /// Deletions asked for before a newer set was committed.
    pending: BTreeSet<(usize, &'static str)>,
    /// The newest committed checkpoint.
    newest: Option<usize>,
    /// A previous run moved aside by `--overwrite`, deleted once this run commits a set.
    retired: Option<PathBuf>,
}

/// The sets of one checkpoint directory, shared by the three record checkpointers.
#[derive(Clone)]
pub struct CheckpointSets {
    directory: PathBuf,
    state: Arc<Mutex<State>>,
    scaler_at: Option<ScalerAt>,
}

impl CheckpointSets {
    /// The sets in `directory`; the newest committed one is read from its manifests.
    pub fn new(directory: &Path) -> Self {
        let newest = committed(directory).into_iter().max();
        let state = State { newest, ..State::default() };
        Self { directory: directory.to_path_buf(), state: Arc::new(Mutex::new(state)), scaler_at: None }
    }

    /// Records the loss scaler's state at each checkpoint in its manifest.
    pub fn with_loss_scaler(mut self, scaler_at: ScalerAt) -> Self {
        self.scaler_at = Some(scaler_at);
        self
    }

    /// Deletes `previous_run` (a run directory moved aside) once the first set is committed.
    pub fn retiring(self, previous_run: Option<PathBuf>) -> Self {
        self.lock().retired = previous_run;
        self
    }

    /// The directory.
    pub fn directory(&self) -> &Path {
        &self.directory
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Writes record `name` of checkpoint `n` atomically; the third record of a checkpoint commits
    /// the set (its manifest), then carries out the deletions that were waiting for it.
    pub fn save(&self, name: &'static str, n: usize, bytes: &[u8]) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.directory)?;
        let path = record_path(&self.directory, name, n);
        let cannot_write =
            |p: &Path, e: std::io::Error| std::io::Error::new(e.kind(), format!("cannot write {}: {e}", p.display()));
        vit_io::write_atomic(&path, bytes).map_err(|e| cannot_write(&path, e))?;
        let file = ManifestFile { name: file_name(&path), size: bytes.len() as u64, md5: md5_hex(bytes) };
        let mut state = self.lock();
        let written = state.written.entry(n).or_default();
        written.insert(name, file);
        if written.len() < RECORDS.len() {
            return Ok(());
        }
        let files = state.written.remove(&n).map(|w| w.into_values().collect()).unwrap_or_default();
        let loss_scaler = self.scaler_at.as_ref().and_then(|at| at(n));
        let manifest = Manifest { checkpoint: n, files, loss_scaler };
        let text = serde_json::to_string_pretty(&manifest).map_err(std::io::Error::other)?;
        let manifest_file = manifest_path(&self.directory, n);
        vit_io::write_atomic(&manifest_file, text.as_bytes()).map_err(|e| cannot_write(&manifest_file, e))?;
        state.newest = Some(state.newest.map_or(n, |m| m.max(n)));
        if let Some(previous) = state.retired.take() {
            let _ = std::fs::remove_dir_all(previous);
        }
        let newest = state.newest.unwrap_or(n);
        let due: Vec<(usize, &'static str)> = state.pending.iter().copied().filter(|(k, _)| *k < newest).collect();
        for (k, record) in due {
            state.pending.remove(&(k, record));
            self.remove(k, record)?;
        }
        Ok(())
    }

    /// Deletes record `name` of checkpoint `n` — at once when a newer set is committed, else as
    /// soon as one is. The set's manifest goes first, so no manifest names a missing file.
    pub fn delete(&self, name: &'static str, n: usize) -> std::io::Result<()> {
        let mut state = self.lock();
        if state.newest.is_some_and(|newest| newest > n) {
            drop(state);
            self.remove(n, name)
        } else {
            state.pending.insert((n, name));
            Ok(())
        }
    }

    fn remove(&self, n: usize, name: &str) -> std::io::Result<()> {
        for path in [manifest_path(&self.directory, n), record_path(&self.directory, name, n)] {
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        vit_io::sync_dir(&self.directory);
        Ok(())
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Checkpoint numbers with a manifest in `directory` (not verified).
pub fn committed(directory: &Path) -> Vec<usize> {
    let Ok(entries) = std::fs::read_dir(directory) else { return Vec::new() };
    let mut out: Vec<usize> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.strip_prefix("manifest-")?.strip_suffix(".json")?.parse().ok())
        .collect();
    out.sort_unstable();
    out
}

/// The manifest of set `n`.
pub fn read_manifest(directory: &Path, n: usize) -> Result<Manifest> {
    let path = manifest_path(directory, n);
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is damaged", path.display()))
}

/// Checks set `n` against its manifest: every file present with its size and MD5.
pub fn verify(directory: &Path, n: usize) -> Result<()> {
    let path = manifest_path(directory, n);
    let manifest = read_manifest(directory, n)?;
    let names: BTreeSet<String> = manifest.files.iter().map(|f| f.name.clone()).collect();
    for record in RECORDS {
        let expected = file_name(&record_path(directory, record, n));
        if !names.contains(&expected) {
            bail!("{} does not list {expected}", path.display());
        }
    }
    for file in &manifest.files {
        let path = directory.join(&file.name);
        let bytes = std::fs::read(&path).with_context(|| format!("{} is missing", path.display()))?;
        if bytes.len() as u64 != file.size {
            bail!("{} has {} bytes, its manifest says {}", path.display(), bytes.len(), file.size);
        }
        if md5_hex(&bytes) != file.md5 {
            bail!("{} does not match the MD5 in its manifest", path.display());
        }
    }
    Ok(())
}

/// The newest set of `directory` that verifies, warning on stderr about newer damaged ones. `None`
/// when there is no checkpoint at all; an error when checkpoints exist but none is intact.
pub fn latest_intact(directory: &Path) -> Result<Option<usize>> {
    let sets = committed(directory);
    let mut problems = Vec::new();
    for &n in sets.iter().rev() {
        match verify(directory, n) {
            Ok(()) => {
                for p in &problems {
                    eprintln!("warning: checkpoint set damaged, using checkpoint {n} instead: {p:#}");
                }
                return Ok(Some(n));
            }
            Err(e) => problems.push(e),
        }
    }
    if !problems.is_empty() {
        let detail = problems.iter().map(|p| format!("{p:#}")).collect::<Vec<_>>().join("; ");
        bail!(
            "{} holds no intact checkpoint set: {detail}; pass --overwrite to start the run over",
            directory.display()
        );
    }
    let stray = std::fs::read_dir(directory)
        .map(|entries| entries.filter_map(|e| e.ok()).any(|e| e.file_name().to_string_lossy().ends_with(".bpk")))
        .unwrap_or(false);
    if stray {
        eprintln!(
            "note: {} holds checkpoint files but no committed set (the first checkpoint was interrupted); \
             the run starts from the beginning",
            directory.display()
        );
    }
    Ok(None)
}

/// Removes the temporary files and directories interrupted writes left in `directory`.
pub fn remove_stale_temporaries(directory: &Path) {
    let Ok(entries) = std::fs::read_dir(directory) else { return };
    for entry in entries.filter_map(|e| e.ok()) {
        if entry.file_name().to_str().is_some_and(vit_io::is_temp_name) {
            let path = entry.path();
            let _ = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn save_set(sets: &CheckpointSets, n: usize) {
        for r in RECORDS {
            sets.save(r, n, format!("{r} {n}").as_bytes()).unwrap();
        }
    }

    #[test]
    fn a_set_counts_once_its_three_records_are_committed() {
        let tmp = tempfile::tempdir().unwrap();
        let sets = CheckpointSets::new(tmp.path());
        assert_eq!(latest_intact(tmp.path()).unwrap(), None);
        save_set(&sets, 1);
        sets.save("model", 2, b"model 2").unwrap();
        sets.save("optim", 2, b"optim 2").unwrap();
        assert_eq!(latest_intact(tmp.path()).unwrap(), Some(1));
        sets.save("scheduler", 2, b"scheduler 2").unwrap();
        assert_eq!(latest_intact(tmp.path()).unwrap(), Some(2));
    }

    #[test]
    fn old_sets_go_only_after_a_newer_one_is_committed() {
        let tmp = tempfile::tempdir().unwrap();
        let sets = CheckpointSets::new(tmp.path());
        save_set(&sets, 1);
        // burn-train rotates set 1 out while set 2 is still being written.
        sets.save("model", 2, b"model 2").unwrap();
        for r in RECORDS {
            sets.delete(r, 1).unwrap();
        }
        assert_eq!(latest_intact(tmp.path()).unwrap(), Some(1), "set 1 stays until set 2 is complete");
        sets.save("optim", 2, b"optim 2").unwrap();
        sets.save("scheduler", 2, b"scheduler 2").unwrap();
        assert_eq!(latest_intact(tmp.path()).unwrap(), Some(2));
        assert!(!record_path(tmp.path(), "model", 1).exists() && !manifest_path(tmp.path(), 1).exists());
    }

    #[test]
    fn a_damaged_newest_set_falls_back_to_the_previous_one() {
        let tmp = tempfile::tempdir().unwrap();
        let sets = CheckpointSets::new(tmp.path());
        save_set(&sets, 1);
        save_set(&sets, 2);
        // Truncated: a crash mid-copy, a full disk.
        std::fs::write(record_path(tmp.path(), "optim", 2), b"opt").unwrap();
        assert_eq!(latest_intact(tmp.path()).unwrap(), Some(1));
        // Same size, other bytes.
        std::fs::write(record_path(tmp.path(), "model", 1), b"MODEL 1").unwrap();
        let err = format!("{:#}", latest_intact(tmp.path()).unwrap_err());
        assert!(err.contains("model-1.bpk") && err.contains("--overwrite"), "{err}");
    }

    #[test]
    fn an_interrupted_first_checkpoint_is_no_checkpoint() {
        let tmp = tempfile::tempdir().unwrap();
        let sets = CheckpointSets::new(tmp.path());
        sets.save("model", 1, b"model 1").unwrap();
        assert_eq!(latest_intact(tmp.path()).unwrap(), None);
    }

    #[test]
    fn stale_temporaries_are_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let stale = tmp.path().join(".model-3.bpk.tmp-4242");
        std::fs::write(&stale, b"half").unwrap();
        std::fs::write(tmp.path().join("model-3.bpk"), b"whole").unwrap();
        remove_stale_temporaries(tmp.path());
        assert!(!stale.exists() && tmp.path().join("model-3.bpk").exists());
    }
}
