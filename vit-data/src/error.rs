//! The error type of `vit-data`: every variant names the file, field or setting at fault and says
//! what to do about it.

use std::path::PathBuf;

/// Everything that can go wrong while reading, decoding, downloading or preparing data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file or directory could not be read or written.
    #[error("{action} `{path}`: {source}")]
    Io {
        /// What was being done (e.g. "cannot read").
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating-system error.
        #[source]
        source: std::io::Error,
    },

    /// A file that should exist is missing.
    #[error("`{path}` does not exist: {hint}")]
    NotFound {
        /// The missing file or directory.
        path: PathBuf,
        /// What to do about it.
        hint: String,
    },

    /// A JSON configuration file is not valid JSON.
    #[error("`{path}` is not valid JSON ({source}); fix or delete the file")]
    Json {
        /// The configuration file.
        path: PathBuf,
        /// The parser error (with line and column).
        #[source]
        source: serde_json::Error,
    },

    /// A field of a configuration file has the wrong type or an invalid value.
    #[error("`{path}`: field `{field}` {message}")]
    ConfigField {
        /// The configuration file (or a description of where the settings came from).
        path: PathBuf,
        /// The field name as written in the file.
        field: String,
        /// What is wrong and what is expected.
        message: String,
    },

    /// A setting passed in code (or from the command line) is invalid.
    #[error("invalid setting `{name}`: {message}")]
    InvalidSetting {
        /// The setting, e.g. `mask_patch_size`.
        name: String,
        /// What is wrong and what would be accepted.
        message: String,
    },

    /// A file is not a readable image (unknown format, corrupt, truncated or empty).
    #[error(
        "`{path}` is not a readable image: {reason}; replace or delete the file, \
         or enable skip_corrupt to skip unreadable images"
    )]
    Decode {
        /// The image file.
        path: PathBuf,
        /// The decoder's explanation.
        reason: String,
    },

    /// An image is larger than the configured decoding limits (decompression-bomb protection).
    #[error(
        "`{path}` is too large to decode safely ({reason}); limits are {max_width}x{max_height} \
         pixels and {max_alloc} bytes: shrink the image or raise the decode limits"
    )]
    TooLarge {
        /// The image file.
        path: PathBuf,
        /// The decoder's explanation (size from the header where known).
        reason: String,
        /// Configured maximum width.
        max_width: u32,
        /// Configured maximum height.
        max_height: u32,
        /// Configured maximum allocation in bytes.
        max_alloc: u64,
    },

    /// A dataset folder has an unusable layout (no classes, an empty class, ...).
    #[error("dataset `{path}`: {message}")]
    Layout {
        /// The dataset root or class folder.
        path: PathBuf,
        /// What is wrong and the expected layout.
        message: String,
    },

    /// A binary dataset file has a size that is not a whole number of records.
    #[error(
        "`{path}` is truncated or not a {format} file: {size} bytes is not a multiple of the \
         {record}-byte record size; download the dataset again"
    )]
    Truncated {
        /// The data file.
        path: PathBuf,
        /// The expected format, e.g. "CIFAR-10 binary".
        format: &'static str,
        /// The file size in bytes.
        size: u64,
        /// The record size in bytes.
        record: usize,
    },

    /// A data file of an official dataset release does not have the release's exact size.
    #[error("`{path}` is {size} bytes, but this {format} file is {expected} bytes in the official release; {hint}")]
    WrongSize {
        /// The data file.
        path: PathBuf,
        /// The format, e.g. "CIFAR-10 binary".
        format: &'static str,
        /// The file size in bytes.
        size: u64,
        /// The official size in bytes.
        expected: u64,
        /// What the official file holds and what to do.
        hint: String,
    },

    /// A download failed (network error, HTTP status, interrupted transfer).
    #[error("download of {url} failed: {message}")]
    Download {
        /// The URL.
        url: String,
        /// What went wrong and what to do.
        message: String,
    },

    /// A downloaded file does not have the expected MD5 checksum.
    #[error(
        "download of {url} is corrupt: MD5 is {actual}, expected {expected}; nothing was \
         written, try again (or check the URL and checksum)"
    )]
    Checksum {
        /// The URL.
        url: String,
        /// The expected MD5 (hex).
        expected: String,
        /// The MD5 of what was received (hex).
        actual: String,
    },

    /// An archive could not be extracted.
    #[error("cannot extract `{path}`: {message}")]
    Archive {
        /// The archive (or its URL).
        path: String,
        /// What went wrong.
        message: String,
    },

    /// Image resizing failed (e.g. an image with a zero dimension).
    #[error("cannot resize a {width}x{height} image to {to_width}x{to_height}: {message}")]
    Resize {
        /// Source width.
        width: u32,
        /// Source height.
        height: u32,
        /// Target width.
        to_width: u32,
        /// Target height.
        to_height: u32,
        /// The resizer's explanation.
        message: String,
    },
}

impl DataError {
    /// An I/O error on `path` while doing `action`.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io { action, path: path.into(), source }
    }

    /// An invalid setting `name` with an explanation.
    pub fn setting(name: impl Into<String>, message: impl Into<String>) -> Self {
        DataError::InvalidSetting { name: name.into(), message: message.into() }
    }
}

/// `Result` with [`DataError`].
pub type Result<T, E = DataError> = std::result::Result<T, E>;
