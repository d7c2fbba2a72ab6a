//! ImageFolder datasets: `root/<class>/<image>` (torchvision's layout), with safe decoding,
//! corrupt-file handling and an in-memory cache of decoded images.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use image::RgbImage;
use rayon::prelude::*;

mod scan;

use crate::dataset::{ImageDataset, ImageSource};
use crate::decode::{DecodeLimits, IMAGE_EXTENSIONS};
use crate::error::{DataError, Result};
pub use scan::SkippedLink;
use scan::{Scanned, ScannedClass, scan};

/// Options for [`ImageFolder::open`].
#[derive(Clone, Debug, PartialEq)]
pub struct ImageFolderOptions {
    /// Skip unreadable images (empty, corrupt, truncated, not an image, too large) with a warning
    /// instead of failing. Checked when the folder is opened: every file's header, and the whole
    /// image for cached files or with `verify`.
    pub skip_corrupt: bool,
    /// Decode every image when opening (slower start, but truncated files are found up front
    /// instead of in the middle of training).
    pub verify: bool,
    /// Memory budget in bytes for decoded images kept in memory (RGB, 3 bytes per pixel), so they
    /// are not read from disk every epoch. Images are cached in file order until the budget is
    /// used up; `0` disables the cache. Default 2 GiB.
    pub cache_bytes: u64,
    /// Decoding limits (decompression-bomb protection).
    pub limits: DecodeLimits,
}

impl Default for ImageFolderOptions {
    fn default() -> Self {
        ImageFolderOptions { skip_corrupt: false, verify: false, cache_bytes: 2 << 30, limits: DecodeLimits::default() }
    }
}

/// An image that was skipped because it could not be read.
#[derive(Clone, Debug)]
pub struct SkippedImage {
    /// The file.
    pub path: PathBuf,
    /// Why it was skipped.
    pub reason: String,
}

/// A folder of images sorted into one sub-folder per class, classes sorted by name (as
/// torchvision's `ImageFolder`); hidden files and folders (`.name`) and files without an image
/// extension ([`IMAGE_EXTENSIONS`], any case) are ignored; class folders are searched
/// recursively.
///
/// Symbolic links are followed only within the dataset root, and no folder is scanned twice,
/// so a link loop (`cat/loop -> .`) neither hangs the scan nor lists an image twice. The real
/// tree is scanned first, then the links: a link never takes a real folder's place.
/// Not followed, each with a warning and listed in [`skipped_links`](Self::skipped_links):
/// a link leading outside the root (canonical paths compared); a link to a folder already
/// scanned (a loop, a second link to a folder, a link to a class folder or its sub-folders);
/// a link to an image already listed in the same class. A link to an image of *another* class
/// is kept, as a copy of the file would be: that image is then listed once in each class. A
/// broken link is treated like an unreadable image.
pub struct ImageFolder {
    root: PathBuf,
    files: Vec<PathBuf>,
    labels: Vec<usize>,
    classes: Vec<String>,
    cache: Vec<Option<Arc<RgbImage>>>,
    cached_bytes: u64,
    skipped: Vec<SkippedImage>,
    skipped_links: Vec<SkippedLink>,
    limits: DecodeLimits,
}

impl std::fmt::Debug for ImageFolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageFolder")
            .field("root", &self.root)
            .field("images", &self.files.len())
            .field("classes", &self.classes)
            .field("cached_bytes", &self.cached_bytes)
            .field("skipped", &self.skipped.len())
            .field("skipped_links", &self.skipped_links.len())
            .finish()
    }
}

impl ImageFolder {
    /// Scans `root`, checks every image (see [`ImageFolderOptions`]) and fills the cache.
    /// Classes are the sub-folders of `root`, sorted by name.
    pub fn open(root: &Path, options: &ImageFolderOptions) -> Result<Self> {
        Self::open_inner(root, None, options)
    }

    /// Like [`open`](Self::open) but with the class list fixed to `classes` (for a validation
    /// folder, so its ids match the training folder's): every sub-folder must be one of them;
    /// classes without a folder simply have no images here.
    pub fn open_with_classes(root: &Path, classes: &[String], options: &ImageFolderOptions) -> Result<Self> {
        Self::open_inner(root, Some(classes), options)
    }

    fn open_inner(root: &Path, fixed: Option<&[String]>, options: &ImageFolderOptions) -> Result<Self> {
        let Scanned { classes: scanned, skipped_links } = scan(root)?;
        let classes: Vec<String> = match fixed {
            Some(fixed) => {
                for ScannedClass { name, dir, .. } in &scanned {
                    if !fixed.contains(name) {
                        return Err(DataError::Layout {
                            path: dir.clone(),
                            message: format!(
                                "class folder `{name}` is not one of the training classes ({}); \
                                 rename or remove it",
                                fixed.join(", ")
                            ),
                        });
                    }
                }
                fixed.to_vec()
            }
            None => scanned.iter().map(|c| c.name.clone()).collect(),
        };

        let mut files = Vec::new();
        let mut labels = Vec::new();
        let mut class_dirs = Vec::with_capacity(scanned.len());
        for ScannedClass { name, dir, files: found, .. } in scanned {
            if found.is_empty() {
                return Err(empty_class(&dir, &name));
            }
            let label = classes.iter().position(|c| *c == name).unwrap_or(0);
            labels.extend(std::iter::repeat_n(label, found.len()));
            files.extend(found);
            class_dirs.push((name, dir));
        }

        // Pass 1: headers (cheap), in parallel.
        let limits = options.limits;
        let headers: Vec<Result<(u32, u32)>> = files.par_iter().map(|p| limits.dimensions(p)).collect();
        // Decide what to cache, in file order.
        let mut budget = options.cache_bytes;
        let plan: Vec<bool> = headers
            .iter()
            .map(|h| match h {
                Ok((w, hgt)) => {
                    let bytes = *w as u64 * *hgt as u64 * 3;
                    if bytes <= budget {
                        budget -= bytes;
                        true
                    } else {
                        false
                    }
                }
                Err(_) => false,
            })
            .collect();
        // Pass 2: full decode of cached images (and all others with `verify`), in parallel.
        let decoded: Vec<Result<Option<Arc<RgbImage>>>> = files
            .par_iter()
            .zip(headers.into_par_iter())
            .zip(plan.par_iter())
            .map(|((path, header), &cache)| {
                header?;
                if cache || options.verify {
                    let img = limits.decode_rgb(path)?;
                    Ok(cache.then(|| Arc::new(img)))
                } else {
                    Ok(None)
                }
            })
            .collect();

        let mut kept_files = Vec::with_capacity(files.len());
        let mut kept_labels = Vec::with_capacity(files.len());
        let mut cache = Vec::with_capacity(files.len());
        let mut cached_bytes = 0;
        let mut skipped = Vec::new();
        for ((path, label), result) in files.into_iter().zip(labels).zip(decoded) {
            match result {
                Ok(img) => {
                    if let Some(img) = &img {
                        cached_bytes += img.as_raw().len() as u64;
                    }
                    kept_files.push(path);
                    kept_labels.push(label);
                    cache.push(img);
                }
                Err(err) if options.skip_corrupt => {
                    eprintln!("warning: skipping unreadable image: {err}");
                    skipped.push(SkippedImage { path, reason: err.to_string() });
                }
                Err(err) => return Err(err),
            }
        }
        for (label, (name, dir)) in class_dirs.iter().enumerate() {
            let label = classes.iter().position(|c| c == name).unwrap_or(label);
            if !kept_labels.contains(&label) {
                return Err(empty_class(dir, name));
            }
        }
        if !skipped.is_empty() {
            eprintln!("warning: skipped {} unreadable image(s) under `{}`", skipped.len(), root.display());
        }
        Ok(ImageFolder {
            root: root.to_path_buf(),
            files: kept_files,
            labels: kept_labels,
            classes,
            cache,
            cached_bytes,
            skipped,
            skipped_links,
            limits,
        })
    }

    /// The dataset root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The image files, class by class.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Images skipped as unreadable (with `skip_corrupt`).
    pub fn skipped(&self) -> &[SkippedImage] {
        &self.skipped
    }

    /// Symbolic links the scan did not follow (see [`ImageFolder`]).
    pub fn skipped_links(&self) -> &[SkippedLink] {
        &self.skipped_links
    }

    /// Bytes of decoded images held in memory.
    pub fn cached_bytes(&self) -> u64 {
        self.cached_bytes
    }

    /// Number of images held in memory.
    pub fn cached_images(&self) -> usize {
        self.cache.iter().filter(|c| c.is_some()).count()
    }

    /// Wraps the folder as a Burn dataset of all its images.
    pub fn into_dataset(self) -> ImageDataset {
        ImageDataset::new(Arc::new(self))
    }
}

impl ImageSource for ImageFolder {
    fn len(&self) -> usize {
        self.files.len()
    }

    fn label(&self, index: usize) -> usize {
        self.labels.get(index).copied().unwrap_or(0)
    }

    fn load(&self, index: usize) -> Result<Arc<RgbImage>> {
        if let Some(Some(img)) = self.cache.get(index) {
            return Ok(img.clone());
        }
        let path = self.files.get(index).ok_or_else(|| {
            DataError::setting("index", format!("image {index} is out of range ({} images)", self.files.len()))
        })?;
        self.limits.decode_rgb(path).map(Arc::new)
    }

    fn class_names(&self) -> &[String] {
        &self.classes
    }
}

fn empty_class(dir: &Path, name: &str) -> DataError {
    DataError::Layout {
        path: dir.to_path_buf(),
        message: format!(
            "class folder `{name}` has no readable images (extensions: {}); add images or remove the folder",
            IMAGE_EXTENSIONS.join(", ")
        ),
    }
}

/// Opens the training and validation data of an ImageFolder dataset: `train_root` and
/// `valid_root` when a separate validation folder is given (its classes must be among the
/// training classes), otherwise a seeded split of `train_root` with `validation_share`.
/// Returns `(train, validation)`; the class names are `train.class_names()`.
pub fn open_image_folders(
    train_root: &Path,
    valid_root: Option<&Path>,
    validation_share: f64,
    split_seed: u64,
    mode: crate::dataset::SplitMode,
    options: &ImageFolderOptions,
) -> Result<(ImageDataset, ImageDataset)> {
    let train = ImageFolder::open(train_root, options)?;
    match valid_root {
        Some(valid_root) => {
            let valid = ImageFolder::open_with_classes(valid_root, &train.classes, options)?;
            Ok((train.into_dataset(), valid.into_dataset()))
        }
        None => train.into_dataset().split(validation_share, split_seed, mode),
    }
}
