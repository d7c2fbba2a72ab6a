//! What CIFAR-10 and CIFAR-100 are: kinds and splits, file names, record sizes, the official
//! archives' URLs and MD5s. Both the reader and the downloader take these from here.

use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};

/// Official CIFAR-10 binary archive.
pub const CIFAR10_URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
/// MD5 of [`CIFAR10_URL`].
pub const CIFAR10_MD5: &str = "c32a1d4ab5d03f1284b67883e8d87530";
/// Official CIFAR-100 binary archive.
pub const CIFAR100_URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz";
/// MD5 of [`CIFAR100_URL`].
pub const CIFAR100_MD5: &str = "03b5dce01913d631647c71ecec9e9cb8";

/// Pixels per CIFAR image (3 planes of 32x32).
pub const CIFAR_IMAGE_BYTES: usize = 3 * 32 * 32;

/// Which CIFAR dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CifarKind {
    /// CIFAR-10 (10 classes).
    Cifar10,
    /// CIFAR-100 with its 100 fine labels.
    Cifar100Fine,
    /// CIFAR-100 with its 20 coarse labels (superclasses).
    Cifar100Coarse,
}

/// Training or test part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CifarSplit {
    /// The 50000 training images.
    Train,
    /// The 10000 test images.
    Test,
}

impl CifarKind {
    /// The folder the official archive extracts to.
    pub fn archive_folder(self) -> &'static str {
        match self {
            CifarKind::Cifar10 => "cifar-10-batches-bin",
            _ => "cifar-100-binary",
        }
    }

    /// The official archive URL.
    pub fn url(self) -> &'static str {
        match self {
            CifarKind::Cifar10 => CIFAR10_URL,
            _ => CIFAR100_URL,
        }
    }

    /// The official archive MD5.
    pub fn md5(self) -> &'static str {
        match self {
            CifarKind::Cifar10 => CIFAR10_MD5,
            _ => CIFAR100_MD5,
        }
    }

    /// The data files of `split`.
    pub fn data_files(self, split: CifarSplit) -> Vec<&'static str> {
        match (self, split) {
            (CifarKind::Cifar10, CifarSplit::Train) => {
                vec!["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"]
            }
            (CifarKind::Cifar10, CifarSplit::Test) => vec!["test_batch.bin"],
            (_, CifarSplit::Train) => vec!["train.bin"],
            (_, CifarSplit::Test) => vec!["test.bin"],
        }
    }

    /// Records in each data file of `split` in the official release: CIFAR-10 has five training
    /// files and one test file of 10000 records each; CIFAR-100 one training file of 50000 and
    /// one test file of 10000.
    pub fn official_records_per_file(self, split: CifarSplit) -> usize {
        match (self, split) {
            (CifarKind::Cifar10, _) | (_, CifarSplit::Test) => 10_000,
            (_, CifarSplit::Train) => 50_000,
        }
    }

    /// Exact size in bytes of each data file of `split` in the official release (CIFAR-10:
    /// 30,730,000; CIFAR-100: 153,700,000 for `train.bin`, 30,740,000 for `test.bin`).
    pub fn official_file_bytes(self, split: CifarSplit) -> u64 {
        (self.official_records_per_file(split) * self.record_bytes()) as u64
    }

    /// The class-names file.
    pub fn names_file(self) -> &'static str {
        match self {
            CifarKind::Cifar10 => "batches.meta.txt",
            CifarKind::Cifar100Fine => "fine_label_names.txt",
            CifarKind::Cifar100Coarse => "coarse_label_names.txt",
        }
    }

    /// Number of classes.
    pub fn num_classes(self) -> usize {
        match self {
            CifarKind::Cifar10 => 10,
            CifarKind::Cifar100Fine => 100,
            CifarKind::Cifar100Coarse => 20,
        }
    }

    /// Label bytes at the start of each record (CIFAR-100 stores coarse then fine).
    pub(crate) fn label_bytes(self) -> usize {
        match self {
            CifarKind::Cifar10 => 1,
            _ => 2,
        }
    }

    /// Bytes per record (labels + pixels).
    pub fn record_bytes(self) -> usize {
        self.label_bytes() + CIFAR_IMAGE_BYTES
    }

    /// Offset of this kind's label within a record's label bytes.
    pub(crate) fn label_offset(self) -> usize {
        match self {
            CifarKind::Cifar100Fine => 1,
            _ => 0,
        }
    }

    /// The format named in errors.
    pub(crate) fn format_name(self) -> &'static str {
        match self {
            CifarKind::Cifar10 => "CIFAR-10 binary",
            _ => "CIFAR-100 binary",
        }
    }

    /// Finds the folder holding the files under `dir`: `dir` itself or
    /// `dir/<archive folder>`. Errors (with the download instructions) when neither has them.
    pub fn locate(self, dir: &Path) -> Result<PathBuf> {
        let probe = self.data_files(CifarSplit::Test)[0];
        for candidate in [dir.join(self.archive_folder()), dir.to_path_buf()] {
            if candidate.join(probe).is_file() {
                return Ok(candidate);
            }
        }
        Err(self.missing(&dir.join(self.archive_folder()), probe))
    }

    /// The error for a data file `path` of `split` (in `folder`) whose size is `size` instead of
    /// the official one.
    pub(crate) fn wrong_size(self, folder: &Path, path: &Path, split: CifarSplit, size: u64) -> DataError {
        DataError::WrongSize {
            path: path.to_path_buf(),
            format: self.format_name(),
            size,
            expected: self.official_file_bytes(split),
            hint: format!(
                "the official file holds {} records of {} bytes; the copy is truncated, padded or not \
                 from the official release: download the dataset again (delete `{}` and set \
                 data.download = true, or call download_cifar)",
                self.official_records_per_file(split),
                self.record_bytes(),
                folder.display()
            ),
        }
    }

    /// The error for a missing `file` of `folder`, with download instructions.
    pub(crate) fn missing(self, folder: &Path, file: &str) -> DataError {
        let mut files = self.data_files(CifarSplit::Train);
        files.extend(self.data_files(CifarSplit::Test));
        files.push(self.names_file());
        if self != CifarKind::Cifar10 {
            files.push(if self == CifarKind::Cifar100Fine { "coarse_label_names.txt" } else { "fine_label_names.txt" });
        }
        DataError::NotFound {
            path: folder.join(file),
            hint: format!(
                "download {} (MD5 {}) and extract it so that `{}` holds {}; or let vit-data \
                 download it (download_cifar / --download)",
                self.url(),
                self.md5(),
                folder.display(),
                files.join(", ")
            ),
        }
    }
}
