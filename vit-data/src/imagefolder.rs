//! ImageFolder datasets: `root/<class>/<image>` (torchvision's layout), with safe decoding,
//! corrupt-file handling and an in-memory cache of decoded images.

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use image::RgbImage;
use rayon::prelude::*;

use crate::dataset::{ImageDataset, ImageSource};
use crate::decode::{DecodeLimits, IMAGE_EXTENSIONS, has_image_extension};
use crate::error::{DataError, Result};

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

/// A symbolic link (or a folder) that the scan of an [`ImageFolder`] did not follow.
#[derive(Clone, Debug)]
pub struct SkippedLink {
    /// The link as found under the dataset root.
    pub path: PathBuf,
    /// Where it leads (its canonical path).
    pub target: PathBuf,
    /// Why it was not followed.
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

fn is_hidden(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'))
}

/// A directory entry: its path and type (the entry's own type: a symbolic link is not followed).
struct DirEntry {
    path: PathBuf,
    symlink: bool,
    dir: bool,
}

/// The non-hidden entries of `dir`, sorted by path.
fn read_dir_sorted(dir: &Path) -> Result<Vec<DirEntry>> {
    let entries = std::fs::read_dir(dir).map_err(|e| DataError::io("cannot list", dir, e))?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| DataError::io("cannot list", dir, e))?;
        let path = entry.path();
        if is_hidden(&path) {
            continue;
        }
        let file_type = entry.file_type().map_err(|e| DataError::io("cannot read the type of", &path, e))?;
        out.push(DirEntry { path, symlink: file_type.is_symlink(), dir: file_type.is_dir() });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// A class found by [`scan`].
struct ScannedClass {
    name: String,
    /// The class folder (or the link to it) under the root.
    dir: PathBuf,
    /// The image files, sorted.
    files: Vec<PathBuf>,
    /// Canonical paths of the images listed so far (no image twice in a class).
    seen: HashSet<PathBuf>,
}

/// What [`scan`] found: classes sorted by name, and the links it did not follow.
struct Scanned {
    classes: Vec<ScannedClass>,
    skipped_links: Vec<SkippedLink>,
}

/// Where a symbolic link leads.
enum Link {
    /// Nowhere (dangling, or a loop of links).
    Broken,
    /// A folder (canonical path).
    Dir(PathBuf),
    /// Something else (canonical path).
    File(PathBuf),
}

/// The state of a scan: the canonical root, the canonical folders scanned, what was skipped,
/// and the links still to follow, each with its class (`None`: a link at the root).
struct Scan {
    root: PathBuf,
    visited: HashSet<PathBuf>,
    skipped: Vec<SkippedLink>,
    classes: Vec<ScannedClass>,
    links: VecDeque<(Option<usize>, PathBuf)>,
}

impl Scan {
    fn skip(&mut self, path: &Path, target: PathBuf, reason: String) {
        eprintln!("warning: not following `{}` (leads to `{}`): {reason}", path.display(), target.display());
        self.skipped.push(SkippedLink { path: path.to_path_buf(), target, reason });
    }

    /// Where the symbolic link `link` leads.
    fn follow(link: &Path) -> Link {
        let Ok(target) = link.canonicalize() else { return Link::Broken };
        match std::fs::metadata(&target) {
            Ok(meta) if meta.is_dir() => Link::Dir(target),
            Ok(_) => Link::File(target),
            Err(_) => Link::Broken,
        }
    }

    /// Whether `target` (where `link` leads) is inside the root; `false` (skipped, with a
    /// warning) when it is not.
    fn inside(&mut self, link: &Path, target: &Path) -> bool {
        if target.starts_with(&self.root) {
            return true;
        }
        let reason = format!(
            "the symbolic link leads outside the dataset root `{}`; move or copy its target into the root",
            self.root.display()
        );
        self.skip(link, target.to_path_buf(), reason);
        false
    }

    /// Marks the folder `canonical` (reached as `path`) as scanned; `false` (skipped, with a
    /// warning) when it already was.
    fn visit(&mut self, path: &Path, canonical: &Path) -> bool {
        if self.visited.insert(canonical.to_path_buf()) {
            return true;
        }
        let reason = "the folder was already scanned (a symbolic-link loop, or a second way to the same folder): \
                      its images are listed once"
            .to_string();
        self.skip(path, canonical.to_path_buf(), reason);
        false
    }

    /// Adds the class folder `dir` (canonical path `canonical`, already visited) and scans it.
    fn add_class(&mut self, dir: PathBuf, canonical: &Path) -> Result<()> {
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| DataError::Layout {
                path: dir.clone(),
                message: "class folder name is not valid UTF-8; rename it".into(),
            })?
            .to_string();
        self.classes.push(ScannedClass { name, dir: dir.clone(), files: Vec::new(), seen: HashSet::new() });
        self.walk(self.classes.len() - 1, dir, canonical.to_path_buf())
    }

    /// Lists the images of the real tree under `dir` (canonical path `canonical`, already
    /// visited) into class `class`; symbolic links are queued.
    fn walk(&mut self, class: usize, dir: PathBuf, canonical: PathBuf) -> Result<()> {
        let mut stack = vec![(dir, canonical)];
        while let Some((dir, canonical)) = stack.pop() {
            for entry in read_dir_sorted(&dir)? {
                let Some(name) = entry.path.file_name() else { continue };
                let real = canonical.join(name);
                if entry.symlink {
                    self.links.push_back((Some(class), entry.path));
                } else if entry.dir {
                    if self.visit(&entry.path, &real) {
                        stack.push((entry.path, real));
                    }
                } else if has_image_extension(&entry.path) {
                    self.classes[class].seen.insert(real);
                    self.classes[class].files.push(entry.path);
                }
            }
        }
        Ok(())
    }

    /// Follows the queued links (links found on the way are queued behind).
    fn follow_links(&mut self) -> Result<()> {
        while let Some((class, link)) = self.links.pop_front() {
            match (Self::follow(&link), class) {
                (Link::Broken | Link::File(_), None) => {}
                (Link::Dir(target), None) => {
                    if self.inside(&link, &target) && self.visit(&link, &target) {
                        self.add_class(link, &target)?;
                    }
                }
                (Link::Dir(target), Some(class)) => {
                    if self.inside(&link, &target) && self.visit(&link, &target) {
                        self.walk(class, link, target)?;
                    }
                }
                // Reported as an unreadable image when opened.
                (Link::Broken, Some(class)) => {
                    if has_image_extension(&link) {
                        self.classes[class].files.push(link);
                    }
                }
                (Link::File(target), Some(class)) => {
                    if !has_image_extension(&link) || !self.inside(&link, &target) {
                        continue;
                    }
                    if self.classes[class].seen.insert(target.clone()) {
                        self.classes[class].files.push(link);
                    } else {
                        let reason = format!(
                            "the image is already listed in class `{}`: it is listed once",
                            self.classes[class].name
                        );
                        self.skip(&link, target, reason);
                    }
                }
            }
        }
        Ok(())
    }
}

/// Scans `root`: its class sub-folders and their images (see [`ImageFolder`] for the rules on
/// symbolic links).
fn scan(root: &Path) -> Result<Scanned> {
    if !root.exists() {
        return Err(DataError::NotFound {
            path: root.to_path_buf(),
            hint: "expected an image folder laid out as <root>/<class name>/<image files>".into(),
        });
    }
    if !root.is_dir() {
        return Err(DataError::Layout {
            path: root.to_path_buf(),
            message: "is not a directory; expected <root>/<class name>/<image files>".into(),
        });
    }
    let canonical_root = root.canonicalize().map_err(|e| DataError::io("cannot resolve", root, e))?;
    let mut scan = Scan {
        root: canonical_root.clone(),
        visited: HashSet::from([canonical_root.clone()]),
        skipped: Vec::new(),
        classes: Vec::new(),
        links: VecDeque::new(),
    };
    // The real tree first, then the links (those at the root first): a link never takes the
    // place of a real folder.
    for entry in read_dir_sorted(root)? {
        if entry.symlink {
            scan.links.push_back((None, entry.path));
        } else if entry.dir
            && let Some(name) = entry.path.file_name()
        {
            let canonical = canonical_root.join(name);
            if scan.visit(&entry.path, &canonical) {
                scan.add_class(entry.path, &canonical)?;
            }
        }
    }
    scan.follow_links()?;
    let Scan { mut classes, skipped, .. } = scan;
    classes.sort_by(|a, b| a.name.cmp(&b.name));
    for class in &mut classes {
        class.files.sort();
    }
    if classes.is_empty() {
        return Err(DataError::Layout {
            path: root.to_path_buf(),
            message: "has no class folders; expected <root>/<class name>/<image files> \
                      (one sub-folder per class)"
                .into(),
        });
    }
    if !skipped.is_empty() {
        eprintln!("warning: did not follow {} symbolic link(s) under `{}`", skipped.len(), root.display());
    }
    Ok(Scanned { classes, skipped_links: skipped })
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
