//! Downloading dataset archives: HTTP(S) with a progress bar, MD5 check, `.tar.gz` extraction
//! into a temporary folder next to the target, then an atomic rename, so an interrupted or
//! corrupt download leaves nothing behind.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use md5::{Digest, Md5};

pub use crate::cifar::kind::{CIFAR10_MD5, CIFAR10_URL, CIFAR100_MD5, CIFAR100_URL};
use crate::cifar::kind::{CifarKind, CifarSplit};
use crate::error::{DataError, Result};

/// Downloads the `.tar.gz` archive at `url`, checks its MD5 (hex, when given) and extracts it
/// as `dest`: if the archive holds a single top-level folder, that folder becomes `dest`,
/// otherwise everything in it does. `dest` must not exist yet. Everything happens in a
/// temporary folder in `dest`'s parent that is removed on failure.
pub fn download_archive(url: &str, md5: Option<&str>, dest: &Path, show_progress: bool) -> Result<PathBuf> {
    if dest.exists() {
        return Err(DataError::Download {
            url: url.into(),
            message: format!("`{}` already exists; delete it to download again", dest.display()),
        });
    }
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| DataError::io("cannot create", &parent, e))?;
    let tmp = tempfile::Builder::new()
        .prefix(".vit-data-download-")
        .tempdir_in(&parent)
        .map_err(|e| DataError::io("cannot create a temporary folder in", &parent, e))?;

    let archive = tmp.path().join("archive.tar.gz");
    let actual = fetch_to_file(url, &archive, show_progress)?;
    if let Some(expected) = md5
        && !actual.eq_ignore_ascii_case(expected.trim())
    {
        return Err(DataError::Checksum { url: url.into(), expected: expected.trim().into(), actual });
    }

    let extracted = tmp.path().join("extracted");
    extract_tar_gz(&archive, &extracted, url)?;
    let content = single_folder(&extracted)?.unwrap_or(extracted);
    std::fs::rename(&content, dest).map_err(|e| DataError::io("cannot move the extracted archive to", dest, e))?;
    // Make the rename durable: a crash now leaves `dest` complete, not missing.
    vit_io::sync_dir(&parent);
    Ok(dest.to_path_buf())
}

/// Makes sure CIFAR (`kind`) is under `root`: returns the data folder if it is already there,
/// otherwise downloads the archive (`url`/`md5`, the official ones when `None`) and extracts it
/// to `root/<archive folder>`.
pub fn download_cifar(
    kind: CifarKind,
    root: &Path,
    url: Option<&str>,
    md5: Option<&str>,
    show_progress: bool,
) -> Result<PathBuf> {
    if let Ok(folder) = kind.locate(root) {
        return Ok(folder);
    }
    let url = url.unwrap_or(kind.url());
    let md5 = md5.or(Some(kind.md5()));
    let dest = root.join(kind.archive_folder());
    let manual = || {
        let mut files = kind.data_files(CifarSplit::Train);
        files.extend(kind.data_files(CifarSplit::Test));
        files.push(kind.names_file());
        format!(
            "without network access, download {url} elsewhere and extract it so that `{}` holds {}",
            dest.display(),
            files.join(", ")
        )
    };
    let folder = download_archive(url, md5, &dest, show_progress).map_err(|e| match e {
        DataError::Download { url, message } => {
            DataError::Download { url, message: format!("{message}; {}", manual()) }
        }
        other => other,
    })?;
    kind.locate(&folder).map_err(|_| DataError::Archive {
        path: url.into(),
        message: format!(
            "the archive does not contain the {} files ({}); check the URL",
            kind.archive_folder(),
            kind.data_files(CifarSplit::Test).join(", ")
        ),
    })
}

/// Streams `url` into `path`, returning the MD5 (hex) of the bytes.
fn fetch_to_file(url: &str, path: &Path, show_progress: bool) -> Result<String> {
    let fail = |message: String| DataError::Download { url: url.into(), message };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .build()
        .into();
    let response = agent.get(url).call().map_err(|e| fail(e.to_string()))?;
    let (_, body) = response.into_parts();
    let total = body.content_length();
    let mut reader = body.into_reader();

    let bar = if show_progress { ProgressBar::new(total.unwrap_or(0)) } else { ProgressBar::hidden() };
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(url.rsplit('/').next().unwrap_or(url).to_string());

    let file = File::create(path).map_err(|e| DataError::io("cannot create", path, e))?;
    let mut out = BufWriter::new(file);
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut received = 0u64;
    loop {
        let n = reader.read(&mut buf).map_err(|e| fail(format!("interrupted after {received} bytes: {e}")))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(|e| DataError::io("cannot write", path, e))?;
        received += n as u64;
        bar.set_position(received);
    }
    out.flush().map_err(|e| DataError::io("cannot write", path, e))?;
    bar.finish_and_clear();
    if let Some(total) = total
        && received != total
    {
        return Err(fail(format!("received {received} of {total} bytes")));
    }
    Ok(format!("{:x}", hasher.finalize()))
}

fn extract_tar_gz(archive: &Path, into: &Path, url: &str) -> Result<()> {
    let file = File::open(archive).map_err(|e| DataError::io("cannot open", archive, e))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(BufReader::new(file)));
    std::fs::create_dir_all(into).map_err(|e| DataError::io("cannot create", into, e))?;
    tar.unpack(into).map_err(|e| DataError::Archive {
        path: url.into(),
        message: format!("{e}; the download is not a valid .tar.gz archive"),
    })
}

/// The only entry of `dir` if it is a folder.
fn single_folder(dir: &Path) -> Result<Option<PathBuf>> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| DataError::io("cannot list", dir, e))? {
        entries.push(entry.map_err(|e| DataError::io("cannot list", dir, e))?.path());
    }
    Ok(match entries.as_slice() {
        [only] if only.is_dir() => Some(only.clone()),
        _ => None,
    })
}
