//! The scan of an ImageFolder root: class folders, then image files, without following symbolic
//! links out of the root or into a folder already scanned (canonical paths), so loops end and no
//! image is listed twice in a class.

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};

use crate::decode::has_image_extension;
use crate::error::{DataError, Result};

/// A symbolic link (or a folder) that the scan of an [`super::ImageFolder`] did not follow.
#[derive(Clone, Debug)]
pub struct SkippedLink {
    /// The link as found under the dataset root.
    pub path: PathBuf,
    /// Where it leads (its canonical path).
    pub target: PathBuf,
    /// Why it was not followed.
    pub reason: String,
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
pub(super) struct ScannedClass {
    pub(super) name: String,
    /// The class folder (or the link to it) under the root.
    pub(super) dir: PathBuf,
    /// The image files, sorted.
    pub(super) files: Vec<PathBuf>,
    /// Canonical paths of the images listed so far (no image twice in a class).
    pub(super) seen: HashSet<PathBuf>,
}

/// What [`scan`] found: classes sorted by name, and the links it did not follow.
pub(super) struct Scanned {
    pub(super) classes: Vec<ScannedClass>,
    pub(super) skipped_links: Vec<SkippedLink>,
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
pub(super) fn scan(root: &Path) -> Result<Scanned> {
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
