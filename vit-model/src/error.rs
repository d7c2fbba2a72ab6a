//! The error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong while configuring, loading, saving or running a ViT.
///
/// Every variant names the file, key or field concerned and says what was expected.
#[derive(Debug, thiserror::Error)]
pub enum ViTError {
    /// A configuration value is invalid.
    #[error("invalid ViT config: {0}")]
    InvalidConfig(String),

    /// A file could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What we tried to do ("cannot read", "cannot write", ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A JSON file (config.json, an index) is malformed or has a field of the wrong type.
    #[error("{path}: {message}")]
    Json {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the field.
        message: String,
    },

    /// A safetensors file is malformed or holds something unexpected.
    #[error("{path}: {message}")]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },

    /// A checkpoint tensor does not fit the model.
    #[error(
        "{path}: tensor '{key}' has shape {found:?} in the checkpoint but the model expects {expected:?}. \
         If the checkpoint is for another number of labels or another head, load with \
         `ignore_mismatched_sizes` to re-initialise the mismatched weights."
    )]
    ShapeMismatch {
        /// The checkpoint file or directory.
        path: PathBuf,
        /// The Hugging Face key of the tensor.
        key: String,
        /// Shape in the checkpoint.
        found: Vec<usize>,
        /// Shape the model expects.
        expected: Vec<usize>,
    },

    /// The inputs given to a forward pass do not fit the model.
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// The model a config describes is larger than the limit it is built under (checked before
    /// anything is allocated); the message gives the estimate and the fields responsible.
    #[error("model too large: {0}")]
    ModelTooLarge(String),

    /// A checkpoint tensor holds NaN or infinite values (refused unless `allow_non_finite`).
    #[error(
        "{path}: tensor '{key}' has {count} non-finite values (the first, {first}, at flat index {index}). \
         The checkpoint is corrupt or was saved from a diverged run; load with `allow_non_finite` to accept it."
    )]
    NonFiniteWeights {
        /// The checkpoint file or directory.
        path: PathBuf,
        /// The Hugging Face key of the tensor, as stored in the checkpoint.
        key: String,
        /// How many of its values are NaN or infinite.
        count: usize,
        /// The first such value.
        first: f32,
        /// Its index in the row-major values.
        index: usize,
    },

    /// A file that would be overwritten is not one this crate wrote for the same purpose.
    #[error("{path}: {message}")]
    WouldOverwrite {
        /// The existing file.
        path: PathBuf,
        /// Why it is kept, and how to replace it anyway.
        message: String,
    },
}

impl ViTError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { action, path: path.into(), source }
    }
}

/// Result with [`ViTError`].
pub type Result<T> = std::result::Result<T, ViTError>;
