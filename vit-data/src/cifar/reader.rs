//! Reading CIFAR binary records into memory.

use std::path::Path;
use std::sync::Arc;

use image::RgbImage;

use super::kind::{CIFAR_IMAGE_BYTES, CifarKind, CifarSplit};
use crate::dataset::{ImageDataset, ImageSource};
use crate::error::{DataError, Result};

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
        f.debug_struct("Cifar").field("kind", &self.kind).field("images", &self.labels.len()).finish()
    }
}

/// How [`Cifar::load_with`] checks the data files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CifarLoadOptions {
    /// Require every data file to have exactly the size it has in the official release
    /// ([`CifarKind::official_file_bytes`]), so that a truncated copy that happens to end on a
    /// record boundary is an error instead of a silently smaller dataset. `true` by default and
    /// in [`Cifar::load`]; `false` accepts any positive whole number of records, and is meant only
    /// for synthetic data written in the official layout (tests, `scripts/make_synthetic_cifar.py`).
    pub exact_size: bool,
}

impl CifarLoadOptions {
    /// The official release: every data file must have its exact official size.
    pub const OFFICIAL: CifarLoadOptions = CifarLoadOptions { exact_size: true };
    /// Synthetic data in the official layout: data files of any positive whole number of records.
    pub const SYNTHETIC: CifarLoadOptions = CifarLoadOptions { exact_size: false };
}

impl Default for CifarLoadOptions {
    fn default() -> Self {
        CifarLoadOptions::OFFICIAL
    }
}

impl Cifar {
    /// Loads `split` of `kind` from `dir` (the extracted folder or its parent). Every data file
    /// must have its exact official size ([`CifarLoadOptions::OFFICIAL`]); an error names a file
    /// of another size and says to download the dataset again.
    pub fn load(dir: &Path, kind: CifarKind, split: CifarSplit) -> Result<Self> {
        Self::load_with(dir, kind, split, &CifarLoadOptions::OFFICIAL)
    }

    /// Like [`load`](Self::load), with the size check chosen by `options` (see
    /// [`CifarLoadOptions::SYNTHETIC`] for data that is not the official release).
    pub fn load_with(dir: &Path, kind: CifarKind, split: CifarSplit, options: &CifarLoadOptions) -> Result<Self> {
        let folder = kind.locate(dir)?;
        let names_path = folder.join(kind.names_file());
        let names = std::fs::read_to_string(&names_path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => kind.missing(&folder, kind.names_file()),
            _ => DataError::io("cannot read", &names_path, e),
        })?;
        let classes: Vec<String> = names.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect();
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
        let read_error = |file: &str, path: &Path, e: std::io::Error| match e.kind() {
            std::io::ErrorKind::NotFound => kind.missing(&folder, file),
            _ => DataError::io("cannot read", path, e),
        };
        if options.exact_size {
            // Every file's size first, so that a bad copy fails before anything is read.
            for file in kind.data_files(split) {
                let path = folder.join(file);
                let size = std::fs::metadata(&path).map_err(|e| read_error(file, &path, e))?.len();
                if size != kind.official_file_bytes(split) {
                    return Err(kind.wrong_size(&folder, &path, split, size));
                }
            }
        }
        let mut cifar = Cifar { kind, pixels: Vec::new(), labels: Vec::new(), classes };
        for file in kind.data_files(split) {
            let path = folder.join(file);
            let bytes = std::fs::read(&path).map_err(|e| read_error(file, &path, e))?;
            // Checked again on what was read: the file may have changed since.
            if options.exact_size && bytes.len() as u64 != kind.official_file_bytes(split) {
                return Err(kind.wrong_size(&folder, &path, split, bytes.len() as u64));
            }
            cifar.append_records(&bytes, &path)?;
        }
        Ok(cifar)
    }

    /// Parses records from `bytes` (the content of the file `origin`, named in errors) with
    /// the given class names. Any positive whole number of records is accepted: the official
    /// sizes are checked only by [`load`](Self::load).
    pub fn from_records(kind: CifarKind, bytes: &[u8], origin: &Path, classes: Vec<String>) -> Result<Self> {
        let mut cifar = Cifar { kind, pixels: Vec::new(), labels: Vec::new(), classes };
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
            self.pixels.extend_from_slice(&rec[self.kind.label_bytes()..]);
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
        let planes = self.pixels.get(start..start.checked_add(CIFAR_IMAGE_BYTES)?)?;
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

impl ImageSource for Cifar {
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn label(&self, index: usize) -> usize {
        self.labels.get(index).copied().unwrap_or(0) as usize
    }

    fn load(&self, index: usize) -> Result<Arc<RgbImage>> {
        self.image(index).map(Arc::new).ok_or_else(|| {
            DataError::setting("index", format!("image {index} is out of range ({} images)", self.labels.len()))
        })
    }

    fn class_names(&self) -> &[String] {
        &self.classes
    }
}
