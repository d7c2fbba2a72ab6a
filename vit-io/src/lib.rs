//! Atomic writes: every file vit-burn writes goes through [`write_atomic`], so that a crash, a full
//! disk or a kill leaves either the previous contents or the new ones, never a mix.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The directory `path` lives in (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// The temporary sibling `write_atomic` writes `path` through: `.NAME.tmp-PID` in the same
/// directory (so the rename never crosses a file system).
pub fn temp_sibling(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    parent_dir(path).join(format!(".{name}.tmp-{}", std::process::id()))
}

/// Whether `name` is a temporary file left by [`write_atomic`] (of this or another process).
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.rsplit_once(".tmp-").is_some_and(|(_, pid)| pid.parse::<u32>().is_ok())
}

/// Flushes a directory's entries to disk (after a rename or removal in it). Errors are ignored:
/// some file systems cannot open or sync a directory.
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory: written, fsynced,
/// renamed over `path`, then the directory fsynced. On error the temporary file is removed and
/// `path` keeps its previous contents.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = temp_sibling(path);
    let write = || -> io::Result<()> {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        sync_dir(parent_dir(path));
        Ok(())
    };
    write().inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Writes a whole directory at `target` as one unit: `fill` writes it into a temporary sibling
/// (`.NAME.tmp-PID`), which then takes the place of `target`. An existing `target` is first renamed
/// to `.NAME.old-PID` and removed after the swap, so at every moment either the old or the new
/// directory is complete under one of those names; on error the temporary one is removed and
/// `target` is left as it was.
pub fn replace_dir<E: From<io::Error>>(target: &Path, fill: impl FnOnce(&Path) -> Result<(), E>) -> Result<(), E> {
    let parent = parent_dir(target);
    std::fs::create_dir_all(parent)?;
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    let old = parent.join(format!(".{name}.old-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    if let Err(e) = fill(&tmp) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    sync_dir(&tmp);
    let swap = || -> io::Result<()> {
        if target.exists() {
            let _ = std::fs::remove_dir_all(&old);
            std::fs::rename(target, &old)?;
        }
        std::fs::rename(&tmp, target)?;
        sync_dir(parent);
        Ok(())
    };
    if let Err(e) = swap() {
        if !target.exists() && old.exists() {
            let _ = std::fs::rename(&old, target);
        }
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e.into());
    }
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

/// Whether `path` is a directory holding at least one entry.
pub fn is_non_empty_dir(path: &Path) -> bool {
    std::fs::read_dir(path).map(|mut entries| entries.next().is_some()).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        write_atomic(&path, b"old").unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.json")]);
    }

    #[test]
    fn a_failed_write_keeps_the_old_contents() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        write_atomic(&path, b"old").unwrap();
        // A directory in the way of the rename: the write fails, the temporary goes.
        let blocked = dir.path().join("sub");
        std::fs::create_dir_all(blocked.join("x")).unwrap();
        assert!(write_atomic(&blocked, b"new").is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert!(!temp_sibling(&blocked).exists());
    }

    #[test]
    fn a_directory_is_replaced_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("best");
        replace_dir::<io::Error>(&target, |d| write_atomic(&d.join("a"), b"1")).unwrap();
        replace_dir::<io::Error>(&target, |d| write_atomic(&d.join("b"), b"2")).unwrap();
        let names: Vec<_> = std::fs::read_dir(&target).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("b")], "the old directory's files are gone");
        let failed = replace_dir::<io::Error>(&target, |d| {
            write_atomic(&d.join("c"), b"3")?;
            Err(io::Error::other("disk full"))
        });
        assert!(failed.is_err());
        assert!(target.join("b").is_file() && !target.join("c").exists(), "a failed write leaves the old one");
        let siblings: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(siblings, vec![std::ffi::OsString::from("best")], "no temporary is left");
        assert!(is_non_empty_dir(&target) && !is_non_empty_dir(&dir.path().join("none")));
    }

    #[test]
    fn temp_names_are_recognised() {
        let tmp = temp_sibling(Path::new("dir/model-3.bpk"));
        let name = tmp.file_name().unwrap().to_str().unwrap();
        assert!(is_temp_name(name), "{name}");
        assert!(!is_temp_name("model-3.bpk"));
        assert!(!is_temp_name(".hidden"));
        assert!(!is_temp_name(".x.tmp-abc"));
    }
}
