//! CIFAR-10 and CIFAR-100 in the official binary format, held in memory as uint8.
//!
//! CIFAR-10 (`cifar-10-binary.tar.gz` → `cifar-10-batches-bin/`): `data_batch_1.bin` …
//! `data_batch_5.bin`, `test_batch.bin`, `batches.meta.txt`; each record is 1 label byte and
//! 3072 pixel bytes (the red plane, then green, then blue, 32x32 row-major).
//! CIFAR-100 (`cifar-100-binary.tar.gz` → `cifar-100-binary/`): `train.bin`, `test.bin`,
//! `fine_label_names.txt`, `coarse_label_names.txt`; records have 2 label bytes (coarse, fine).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use image::RgbImage;

use crate::dataset::{ImageDataset, ImageSource};
use crate::download::{CIFAR10_MD5, CIFAR10_URL, CIFAR100_MD5, CIFAR100_URL};
use crate::error::{DataError, Result};

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
                vec![
                    "data_batch_1.bin",
                    "data_batch_2.bin",
                    "data_batch_3.bin",
                    "data_batch_4.bin",
                    "data_batch_5.bin",
                ]
            }
            (CifarKind::Cifar10, CifarSplit::Test) => vec!["test_batch.bin"],
            (_, CifarSplit::Train) => vec!["train.bin"],
            (_, CifarSplit::Test) => vec!["test.bin"],
        }
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

    fn label_bytes(self) -> usize {
        match self {
            CifarKind::Cifar10 => 1,
            _ => 2,
        }
    }

    /// Bytes per record (labels + pixels).
    pub fn record_bytes(self) -> usize {
        self.label_bytes() + CIFAR_IMAGE_BYTES
    }

    fn label_offset(self) -> usize {
        match self {
            CifarKind::Cifar100Fine => 1,
            _ => 0,
        }
    }

    fn format_name(self) -> &'static str {
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

    fn missing(self, folder: &Path, file: &str) -> DataError {
        let mut files = self.data_files(CifarSplit::Train);
        files.extend(self.data_files(CifarSplit::Test));
        files.push(self.names_file());
        if self != CifarKind::Cifar10 {
            files.push(if self == CifarKind::Cifar100Fine {
                "coarse_label_names.txt"
            } else {
                "fine_label_names.txt"
            });
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

/// A CIFAR split in memory: the pixel bytes as stored (planar RGB per image) and the labels.
#[derive(Clone)]
pub struct Cifar {
    kind: CifarKind,
    pixels: Vec<u8>,
    labels: Vec<u8>,
    classes: Vec<String>,
}

impl std::fmt::Debug for Cifar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cifar")
            .field("kind", &self.kind)
            .field("images", &self.labels.len())
            .finish()
    }
}

impl Cifar {
    /// Loads `split` of `kind` from `dir` (the extracted folder or its parent).
    pub fn load(dir: &Path, kind: CifarKind, split: CifarSplit) -> Result<Self> {
        let folder = kind.locate(dir)?;
        let names_path = folder.join(kind.names_file());
        let names = std::fs::read_to_string(&names_path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => kind.missing(&folder, kind.names_file()),
            _ => DataError::io("cannot read", &names_path, e),
        })?;
        let classes: Vec<String> = names
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        if classes.len() != kind.num_classes() {
            return Err(DataError::Layout {
                path: names_path,
                message: format!(
                    "lists {} class names, expected {}; download the dataset again",
                    classes.len(),
                    kind.num_classes()
                ),
            });
        }
        let mut cifar = Cifar {
            kind,
            pixels: Vec::new(),
            labels: Vec::new(),
            classes,
        };
        for file in kind.data_files(split) {
            let path = folder.join(file);
            let bytes = std::fs::read(&path).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => kind.missing(&folder, file),
                _ => DataError::io("cannot read", &path, e),
            })?;
            cifar.append_records(&bytes, &path)?;
        }
        Ok(cifar)
    }

    /// Parses records from `bytes` (the content of the file `origin`, named in errors) with
    /// the given class names.
    pub fn from_records(
        kind: CifarKind,
        bytes: &[u8],
        origin: &Path,
        classes: Vec<String>,
    ) -> Result<Self> {
        let mut cifar = Cifar {
            kind,
            pixels: Vec::new(),
            labels: Vec::new(),
            classes,
        };
        cifar.append_records(bytes, origin)?;
        Ok(cifar)
    }

    fn append_records(&mut self, bytes: &[u8], origin: &Path) -> Result<()> {
        let record = self.kind.record_bytes();
        if bytes.is_empty() || !bytes.len().is_multiple_of(record) {
            return Err(DataError::Truncated {
                path: origin.to_path_buf(),
                format: self.kind.format_name(),
                size: bytes.len() as u64,
                record,
            });
        }
        let n = bytes.len() / record;
        self.pixels.reserve(n * CIFAR_IMAGE_BYTES);
        self.labels.reserve(n);
        for (i, rec) in bytes.chunks_exact(record).enumerate() {
            let label = rec[self.kind.label_offset()];
            if label as usize >= self.kind.num_classes() {
                return Err(DataError::Layout {
                    path: origin.to_path_buf(),
                    message: format!(
                        "record {i} has label {label}, but {} has {} classes; the file is corrupt \
                         or of another dataset: download it again",
                        self.kind.format_name(),
                        self.kind.num_classes()
                    ),
                });
            }
            self.labels.push(label);
            self.pixels
                .extend_from_slice(&rec[self.kind.label_bytes()..]);
        }
        Ok(())
    }

    /// Which dataset this is.
    pub fn kind(&self) -> CifarKind {
        self.kind
    }

    /// Image `index` as a 32x32 RGB image (`None` when out of range).
    pub fn image(&self, index: usize) -> Option<RgbImage> {
        let start = index.checked_mul(CIFAR_IMAGE_BYTES)?;
        let planes = self
            .pixels
            .get(start..start.checked_add(CIFAR_IMAGE_BYTES)?)?;
        let (r, rest) = planes.split_at(1024);
        let (g, b) = rest.split_at(1024);
        let mut hwc = Vec::with_capacity(CIFAR_IMAGE_BYTES);
        for i in 0..1024 {
            hwc.extend_from_slice(&[r[i], g[i], b[i]]);
        }
        RgbImage::from_raw(32, 32, hwc)
    }

    /// All labels.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// Wraps as a Burn dataset of all images.
    pub fn into_dataset(self) -> ImageDataset {
        ImageDataset::new(Arc::new(self))
    }
}

/// The training and test datasets of CIFAR `kind` under `root` (the extracted folder or its
/// parent), downloading the official archive first when `download` is set and the files are
/// missing.
pub fn load_cifar(
    root: &Path,
    kind: CifarKind,
    download: bool,
    show_progress: bool,
) -> Result<(ImageDataset, ImageDataset)> {
    if download {
        crate::download::download_cifar(kind, root, None, None, show_progress)?;
    }
    Ok((
        Cifar::load(root, kind, CifarSplit::Train)?.into_dataset(),
        Cifar::load(root, kind, CifarSplit::Test)?.into_dataset(),
    ))
}

impl ImageSource for Cifar {
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn label(&self, index: usize) -> usize {
        self.labels.get(index).copied().unwrap_or(0) as usize
    }

    fn load(&self, index: usize) -> Result<Arc<RgbImage>> {
        self.image(index).map(Arc::new).ok_or_else(|| {
            DataError::setting(
                "index",
                format!(
                    "image {index} is out of range ({} images)",
                    self.labels.len()
                ),
            )
        })
    }

    fn class_names(&self) -> &[String] {
        &self.classes
    }
}
