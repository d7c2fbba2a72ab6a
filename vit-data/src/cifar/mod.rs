//! CIFAR-10 and CIFAR-100 in the official binary format, held in memory as uint8.
//!
//! CIFAR-10 (`cifar-10-binary.tar.gz` → `cifar-10-batches-bin/`): `data_batch_1.bin` …
//! `data_batch_5.bin`, `test_batch.bin`, `batches.meta.txt`; each record is 1 label byte and
//! 3072 pixel bytes (the red plane, then green, then blue, 32x32 row-major).
//! CIFAR-100 (`cifar-100-binary.tar.gz` → `cifar-100-binary/`): `train.bin`, `test.bin`,
//! `fine_label_names.txt`, `coarse_label_names.txt`; records have 2 label bytes (coarse, fine).

use std::path::Path;

use crate::dataset::ImageDataset;
use crate::error::Result;

pub(crate) mod kind;
mod reader;

pub use kind::{CIFAR_IMAGE_BYTES, CIFAR10_MD5, CIFAR10_URL, CIFAR100_MD5, CIFAR100_URL, CifarKind, CifarSplit};
pub use reader::{Cifar, CifarLoadOptions};

/// The training and test datasets of CIFAR `kind` under `root` (the extracted folder or its
/// parent), downloading the official archive first when `download` is set and the files are
/// missing. Every data file must have its exact official size (see [`Cifar::load`]).
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
