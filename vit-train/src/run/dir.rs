//! [`RunDir`]: the output directory of a run. It owns every file name in it and every write and
//! delete; all writes are atomic ([`vit_io::write_atomic`]).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The run's config as it was started (TOML).
const RUN_CONFIG: &str = "run_config.toml";
/// The model's HF `config.json`, so that `export` can rebuild the model without the data.
const MODEL_CONFIG: &str = "model_config.json";
/// One row per training log interval and per validation.
const METRICS_CSV: &str = "metrics.csv";
/// Loss, accuracy and lr curves drawn from `metrics.csv`.
const CURVES_PNG: &str = "curves.png";
/// Training checkpoints (`model-N.bpk`, `optim-N.bpk`, `scheduler-N.bpk`).
const CHECKPOINT_DIR: &str = "checkpoint";
/// The exported best model (an HF model directory).
const BEST_DIR: &str = "best";
/// SimMIM reconstruction grids.
const SAMPLES_DIR: &str = "samples";

/// A run's output directory.
#[derive(Clone, Debug)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    /// The run directory at `root` (nothing is created).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `run_config.toml`.
    pub fn run_config(&self) -> PathBuf {
        self.root.join(RUN_CONFIG)
    }

    /// `model_config.json`.
    pub fn model_config(&self) -> PathBuf {
        self.root.join(MODEL_CONFIG)
    }

    /// The folder holding `preprocessor_config.json` (the directory itself).
    pub fn processor_dir(&self) -> &Path {
        &self.root
    }

    /// `metrics.csv`.
    pub fn metrics_csv(&self) -> PathBuf {
        self.root.join(METRICS_CSV)
    }

    /// `curves.png`.
    pub fn curves_png(&self) -> PathBuf {
        self.root.join(CURVES_PNG)
    }

    /// `checkpoint/`.
    pub fn checkpoint_dir(&self) -> PathBuf {
        self.root.join(CHECKPOINT_DIR)
    }

    /// `best/`.
    pub fn best_dir(&self) -> PathBuf {
        self.root.join(BEST_DIR)
    }

    /// `samples/`.
    pub fn samples_dir(&self) -> PathBuf {
        self.root.join(SAMPLES_DIR)
    }

    /// The saved `run_config.toml`, if the directory holds a run.
    pub fn saved_config(&self) -> Result<Option<String>> {
        let path = self.run_config();
        if !path.is_file() {
            return Ok(None);
        }
        std::fs::read_to_string(&path).map(Some).with_context(|| format!("cannot read {}", path.display()))
    }

    /// Whether `path` lies inside this directory (compared as canonical paths where they exist).
    pub fn contains(&self, path: &Path) -> bool {
        let canonical = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
        canonical(path).starts_with(canonical(&self.root))
    }

    /// Creates the directory and writes the run's config into it: the probe that the directory is
    /// writable, done before any training.
    pub fn start(&self, config_toml: &str) -> Result<()> {
        let refuse = |what: &str, e: &dyn std::fmt::Display| {
            anyhow::anyhow!(
                "{what} the output directory {} ({e}); choose another run.output_dir, or make it writable",
                self.root.display()
            )
        };
        std::fs::create_dir_all(&self.root).map_err(|e| refuse("cannot create", &e))?;
        self.write(&self.run_config(), config_toml.as_bytes()).map_err(|e| refuse("cannot write into", &e))
    }

    /// Writes `bytes` to `path` (a path of this directory) atomically.
    pub fn write(&self, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        vit_io::write_atomic(path, bytes)
    }

    /// Moves the previous run aside (for `--overwrite`) to a sibling `NAME.old-<unix time>`,
    /// returned; the caller deletes it once the new run has a complete checkpoint.
    pub fn retire(&self) -> Result<PathBuf> {
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let name = self.root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "run".into());
        let aside = self.root.with_file_name(format!("{name}.old-{stamp}"));
        std::fs::rename(&self.root, &aside).with_context(|| {
            format!("--overwrite: cannot move the previous run {} aside to {}", self.root.display(), aside.display())
        })?;
        Ok(aside)
    }
}
