//! The Hugging Face cache layout, exactly as Python's `huggingface_hub` writes it, so that each reuses the
//! other's files:
//!
//! ```text
//! {cache}/CACHEDIR.TAG
//! {cache}/.locks/models--{owner}--{name}/{etag}.lock
//! {cache}/models--{owner}--{name}/blobs/{etag}                        file contents, named by etag
//! {cache}/models--{owner}--{name}/refs/{revision}                     the commit sha, no newline
//! {cache}/models--{owner}--{name}/snapshots/{commit}/{file}           -> ../../blobs/{etag} (relative)
//! {cache}/models--{owner}--{name}/.no_exist/{commit}/{file}           empty: the file is not in the repo
//! ```

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::HubError;
use crate::reference::HubRef;

/// `huggingface_hub`'s `CACHEDIR_TAG_CONTENT`, byte for byte.
const CACHEDIR_TAG: &str = "Signature: 8a477f597d28d172789f06886806bc55\n\
# This file is a cache directory tag created by huggingface_hub.\n\
# For information about cache directory tags, see:\n\
#\thttps://bford.info/cachedir/\n";

/// Whether `revision` is a full commit sha (`[0-9a-f]{40}`), which needs no `refs/` entry.
pub(crate) fn is_commit_hash(revision: &str) -> bool {
    revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Whether `etag` is an LFS etag, i.e. the sha256 of the contents in hex.
pub(crate) fn is_sha256(etag: &str) -> bool {
    etag.len() == 64 && etag.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Checks that a file name from the Hub (e.g. a shard in an index) stays inside the snapshot folder.
pub(crate) fn check_relative_filename(name: &str) -> Result<(), String> {
    let bad = name.is_empty()
        || name.starts_with('/')
        || name.contains('\\')
        || name.split('/').any(|c| c.is_empty() || c == "." || c == "..");
    if bad { Err(format!("`{name}` is not a relative file name inside the repository")) } else { Ok(()) }
}

/// One repository's folder in the cache.
pub(crate) struct RepoCache {
    cache_dir: PathBuf,
    folder: String,
}

impl RepoCache {
    /// The folder of `repo` under `cache_dir` (`models--{owner}--{name}`).
    pub(crate) fn new(cache_dir: &Path, repo: &HubRef) -> Self {
        Self { cache_dir: cache_dir.to_path_buf(), folder: format!("models--{}--{}", repo.owner, repo.name) }
    }

    /// The hub cache directory this repository lives in.
    pub(crate) fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    fn root(&self) -> PathBuf {
        self.cache_dir.join(&self.folder)
    }

    /// `snapshots/{commit}`.
    pub(crate) fn snapshot_dir(&self, commit: &str) -> PathBuf {
        self.root().join("snapshots").join(commit)
    }

    /// `snapshots/{commit}/{filename}`.
    pub(crate) fn pointer_path(&self, commit: &str, filename: &str) -> PathBuf {
        filename.split('/').fold(self.snapshot_dir(commit), |p, c| p.join(c))
    }

    /// `blobs/{etag}`.
    pub(crate) fn blob_path(&self, etag: &str) -> PathBuf {
        self.root().join("blobs").join(etag)
    }

    /// The snapshot file `filename` of `commit`, if present (a dangling link counts as absent).
    pub(crate) fn cached_file(&self, commit: &str, filename: &str) -> Option<PathBuf> {
        Some(self.pointer_path(commit, filename)).filter(|p| p.is_file())
    }

    /// Whether `.no_exist/{commit}/{filename}` records that the repo has no such file at that commit.
    pub(crate) fn known_missing(&self, commit: &str, filename: &str) -> bool {
        self.no_exist_path(commit, filename).is_file()
    }

    fn no_exist_path(&self, commit: &str, filename: &str) -> PathBuf {
        filename.split('/').fold(self.root().join(".no_exist").join(commit), |p, c| p.join(c))
    }

    /// Records that the repo has no `filename` at `commit` (best effort, like `huggingface_hub`).
    pub(crate) fn mark_missing(&self, commit: &str, filename: &str) {
        let path = self.no_exist_path(commit, filename);
        if let Some(parent) = path.parent()
            && std::fs::create_dir_all(parent).is_ok()
        {
            let _ = OpenOptions::new().create(true).append(true).open(&path);
        }
    }

    /// The commit `revision` stands for in the cache: itself if it is a full sha, else `refs/{revision}`.
    pub(crate) fn commit_for(&self, revision: &str) -> Option<String> {
        if is_commit_hash(revision) {
            return Some(revision.to_string());
        }
        let text = std::fs::read_to_string(self.ref_path(revision)).ok()?;
        Some(text.trim().to_string()).filter(|c| !c.is_empty())
    }

    fn ref_path(&self, revision: &str) -> PathBuf {
        revision.split('/').fold(self.root().join("refs"), |p, c| p.join(c))
    }

    /// Writes `refs/{revision}` = `commit` (atomically, no newline) unless `revision` is that commit or the
    /// ref already says so.
    pub(crate) fn write_ref(&self, revision: &str, commit: &str) -> Result<(), HubError> {
        if revision == commit || self.commit_for(revision).as_deref() == Some(commit) {
            return Ok(());
        }
        let path = self.ref_path(revision);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| HubError::io("create", parent, e))?;
        }
        vit_io::write_atomic(&path, commit.as_bytes()).map_err(|e| HubError::io("write", path, e))
    }

    /// Creates the repository's `blobs/` and `snapshots/{commit}/` folders and the cache's `CACHEDIR.TAG`.
    pub(crate) fn prepare(&self, commit: &str, filename: &str) -> Result<(), HubError> {
        let blobs = self.root().join("blobs");
        let pointer_dir = self.pointer_path(commit, filename).parent().map(Path::to_path_buf).unwrap_or_default();
        for dir in [&blobs, &pointer_dir] {
            std::fs::create_dir_all(dir).map_err(|e| HubError::io("create", dir, e))?;
        }
        let tag = self.cache_dir.join("CACHEDIR.TAG");
        if !tag.exists() {
            let _ = vit_io::write_atomic(&tag, CACHEDIR_TAG.as_bytes());
        }
        Ok(())
    }

    /// Takes the inter-process lock `huggingface_hub` takes before writing blob `etag`
    /// (`.locks/models--{owner}--{name}/{etag}.lock`, an `flock`); released when the file is dropped.
    pub(crate) fn lock(&self, etag: &str) -> Result<File, HubError> {
        let dir = self.cache_dir.join(".locks").join(&self.folder);
        std::fs::create_dir_all(&dir).map_err(|e| HubError::io("create", &dir, e))?;
        let path = dir.join(format!("{etag}.lock"));
        let mut options = OpenOptions::new();
        options.create(true).truncate(false).read(true).write(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o664);
        let file = options.open(&path).map_err(|e| HubError::io("open the lock file", &path, e))?;
        file.lock().map_err(|e| HubError::io("lock", &path, e))?;
        Ok(file)
    }

    /// Points `snapshots/{commit}/{filename}` at `blobs/{etag}` with a relative symlink
    /// (`../../blobs/{etag}`, one more `../` per folder in `filename`), replacing what was there in one
    /// rename so that the link is never missing or half-made.
    pub(crate) fn link(&self, commit: &str, filename: &str, etag: &str) -> Result<(), HubError> {
        let pointer = self.pointer_path(commit, filename);
        let depth = filename.split('/').count() + 1;
        let target: PathBuf = std::iter::repeat_n("..", depth).chain(["blobs", etag]).collect();
        let tmp = vit_io::temp_sibling(&pointer);
        let _ = std::fs::remove_file(&tmp);
        make_link(&target, &self.blob_path(etag), &tmp).map_err(|e| HubError::io("create the link", &tmp, e))?;
        std::fs::rename(&tmp, &pointer).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            HubError::io("create the link", &pointer, e)
        })?;
        if let Some(dir) = pointer.parent() {
            vit_io::sync_dir(dir);
        }
        Ok(())
    }
}

#[cfg(unix)]
fn make_link(target: &Path, _blob: &Path, link: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

/// Without symlinks, `huggingface_hub` copies the blob into the snapshot; so do we.
#[cfg(not(unix))]
fn make_link(_target: &Path, blob: &Path, link: &Path) -> std::io::Result<()> {
    std::fs::copy(blob, link).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> HubRef {
        HubRef::parse("org/tiny").unwrap()
    }

    #[test]
    fn recognises_commits_and_lfs_etags() {
        assert!(is_commit_hash(&"a1".repeat(20)));
        assert!(!is_commit_hash(&"A1".repeat(20)) && !is_commit_hash("main") && !is_commit_hash(&"a".repeat(39)));
        assert!(is_sha256(&"0f".repeat(32)) && !is_sha256(&"0f".repeat(20)));
        assert!(check_relative_filename("a/b.safetensors").is_ok());
        for bad in ["", "/etc/passwd", "../x", "a//b", "a\\b", "a/./b"] {
            assert!(check_relative_filename(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn refs_links_and_missing_marks() {
        let dir = tempfile::tempdir().unwrap();
        let cache = RepoCache::new(dir.path(), &repo());
        let commit = "c".repeat(40);
        assert_eq!(cache.commit_for("main"), None);
        cache.write_ref("refs/pr/1", &commit).unwrap();
        let ref_file = dir.path().join("models--org--tiny/refs/refs/pr/1");
        assert_eq!(std::fs::read_to_string(ref_file).unwrap(), commit, "no trailing newline");
        assert_eq!(cache.commit_for("refs/pr/1").as_deref(), Some(commit.as_str()));
        assert_eq!(cache.commit_for(&commit).as_deref(), Some(commit.as_str()));

        cache.prepare(&commit, "sub/w.safetensors").unwrap();
        std::fs::write(cache.blob_path("e1"), b"x").unwrap();
        cache.link(&commit, "sub/w.safetensors", "e1").unwrap();
        let link = cache.pointer_path(&commit, "sub/w.safetensors");
        assert_eq!(std::fs::read_link(&link).unwrap(), PathBuf::from("../../../blobs/e1"));
        assert_eq!(cache.cached_file(&commit, "sub/w.safetensors"), Some(link.clone()));
        cache.link(&commit, "sub/w.safetensors", "e1").unwrap();
        assert_eq!(std::fs::read(&link).unwrap(), b"x", "relinking replaces the link");
        assert!(dir.path().join("CACHEDIR.TAG").is_file());

        assert!(!cache.known_missing(&commit, "preprocessor_config.json"));
        cache.mark_missing(&commit, "preprocessor_config.json");
        assert!(cache.known_missing(&commit, "preprocessor_config.json"));
        drop(cache.lock("e1").unwrap());
        assert!(dir.path().join(".locks/models--org--tiny/e1.lock").is_file());
    }
}
