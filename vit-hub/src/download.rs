//! Downloading one blob into the cache: into `blobs/{etag}.incomplete`, resumed with an HTTP `Range`
//! request after a dropped connection (or in a later run, for LFS blobs whose sha256 proves the bytes),
//! checked against the announced size and the sha256 of an LFS etag, then renamed to `blobs/{etag}`.
//! A blob therefore exists only when it is complete and correct.

use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

use crate::HubError;
use crate::cache::is_sha256;
use crate::http::{FileMeta, Hub, header};

/// Consecutive failed attempts (no byte received) before giving up, as `huggingface_hub`'s `http_get`.
const MAX_FAILURES: u32 = 5;
const CHUNK: usize = 1 << 16;

/// Downloads the blob `meta` describes to `blob` (the caller holds the blob's lock). `filename` and `label`
/// name it in errors and on the progress bar.
pub(crate) fn download_blob(
    hub: &Hub,
    meta: &FileMeta,
    blob: &Path,
    filename: &str,
    label: &str,
) -> Result<(), HubError> {
    let incomplete = PathBuf::from(format!("{}.incomplete", blob.display()));
    let lfs = is_sha256(&meta.etag);
    let fail = |message: String| HubError::Download { file: filename.into(), url: meta.url.clone(), message };
    let bar = progress_bar(hub.options().progress, meta.size, label);

    // A partial file from an earlier run is resumed only when the sha256 will vouch for it.
    let mut resumable = lfs;
    let result = loop {
        let mut partial = Partial::open(&incomplete, resumable, meta.size)?;
        let resumed = partial.len > 0;
        bar.set_position(partial.len);
        let outcome = fetch(hub, meta, &mut partial, &bar, &fail);
        let digest = match outcome {
            Ok(()) => partial.finish(&incomplete)?,
            Err(e) => {
                if !lfs {
                    let _ = std::fs::remove_file(&incomplete);
                }
                break Err(e);
            }
        };
        if lfs && !digest.eq_ignore_ascii_case(&meta.etag) {
            let _ = std::fs::remove_file(&incomplete);
            if resumed && resumable {
                resumable = false;
                continue;
            }
            break Err(fail(format!("the sha256 of the bytes received is {digest}, the Hub announced {}", meta.etag)));
        }
        break std::fs::rename(&incomplete, blob).map_err(|e| HubError::io("rename into place", blob, e));
    };
    bar.finish_and_clear();
    if let Some(dir) = blob.parent() {
        vit_io::sync_dir(dir);
    }
    result
}

/// The `.incomplete` file being written and what is known of its contents.
struct Partial {
    file: File,
    len: u64,
    hasher: Sha256,
    expected: Option<u64>,
}

impl Partial {
    /// Opens `path`, keeping its bytes if `keep` (and hashing them), else truncating it.
    fn open(path: &Path, keep: bool, expected: Option<u64>) -> Result<Self, HubError> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| HubError::io("create", path, e))?;
        let on_disk = file.metadata().map_err(|e| HubError::io("read", path, e))?.len();
        let mut partial = Self { file, len: 0, hasher: Sha256::new(), expected };
        if keep && expected.is_none_or(|n| on_disk <= n) {
            let mut buf = vec![0u8; CHUNK];
            loop {
                let n = partial.file.read(&mut buf).map_err(|e| HubError::io("read", path, e))?;
                if n == 0 {
                    break;
                }
                partial.hasher.update(&buf[..n]);
                partial.len += n as u64;
            }
        } else {
            partial.restart().map_err(|e| HubError::io("truncate", path, e))?;
        }
        Ok(partial)
    }

    /// Drops everything received: the server sent the whole file again.
    fn restart(&mut self) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.file.seek(SeekFrom::Start(0))?;
        self.len = 0;
        self.hasher = Sha256::new();
        Ok(())
    }

    fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.file.seek(SeekFrom::Start(self.len))?;
        self.file.write_all(bytes)?;
        self.hasher.update(bytes);
        self.len += bytes.len() as u64;
        Ok(())
    }

    fn complete(&self) -> bool {
        self.expected.is_some_and(|n| self.len == n)
    }

    /// Flushes the file to disk and returns the sha256 of its contents.
    fn finish(self, path: &Path) -> Result<String, HubError> {
        self.file.sync_all().map_err(|e| HubError::io("write", path, e))?;
        Ok(self.hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
    }
}

/// Receives the rest of the blob into `partial`, resuming with `Range` after a dropped connection.
fn fetch(
    hub: &Hub,
    meta: &FileMeta,
    partial: &mut Partial,
    bar: &ProgressBar,
    fail: &impl Fn(String) -> HubError,
) -> Result<(), HubError> {
    let mut failures = 0;
    let mut last_error = String::new();
    loop {
        if partial.complete() {
            return Ok(());
        }
        if failures >= MAX_FAILURES {
            return Err(fail(format!("{MAX_FAILURES} attempts in a row failed, the last with: {last_error}")));
        }
        if failures > 0 {
            std::thread::sleep(Duration::from_millis(250 << failures.min(3)));
        }
        let before = partial.len;
        match receive(hub, meta, partial, bar, fail) {
            Ok(()) if partial.expected.is_none() => return Ok(()),
            Ok(()) => {
                last_error = format!("the connection ended after {} of {:?} bytes", partial.len, partial.expected)
            }
            Err(Attempt::Fatal(e)) => return Err(e),
            Err(Attempt::Retry(message)) => last_error = message,
        }
        failures = if partial.len > before { 1 } else { failures + 1 };
    }
}

enum Attempt {
    /// Worth another request (a dropped connection, a short body).
    Retry(String),
    /// Not worth retrying.
    Fatal(HubError),
}

/// One GET from `partial.len` on.
fn receive(
    hub: &Hub,
    meta: &FileMeta,
    partial: &mut Partial,
    bar: &ProgressBar,
    fail: &impl Fn(String) -> HubError,
) -> Result<(), Attempt> {
    let io = |action, e| Attempt::Fatal(HubError::io(action, PathBuf::from(format!("{}.incomplete", meta.etag)), e));
    let (url, response) = hub.get(&meta.url, partial.len).map_err(|e| match e {
        HubError::Network { message, .. } => Attempt::Retry(message),
        other => Attempt::Fatal(other),
    })?;
    let status = response.status().as_u16();
    let headers = response.headers();
    let total = match status {
        206 => {
            let range = header(headers, "content-range").unwrap_or_default();
            let start = range.strip_prefix("bytes ").and_then(|r| r.split('-').next()).and_then(|s| s.parse().ok());
            if start != Some(partial.len) {
                partial.restart().map_err(|e| io("truncate", e))?;
                return Err(Attempt::Retry(format!("the server sent range `{range}` instead of {}-", partial.len)));
            }
            range.rsplit_once('/').and_then(|(_, n)| n.parse::<u64>().ok())
        }
        200 => {
            if partial.len > 0 {
                partial.restart().map_err(|e| io("truncate", e))?;
                bar.set_position(0);
            }
            let encoded = header(headers, "content-encoding").is_some_and(|e| !e.eq_ignore_ascii_case("identity"));
            header(headers, "content-length").and_then(|n| n.parse().ok()).filter(|_| !encoded)
        }
        416 if partial.expected.is_none_or(|n| partial.len >= n) => {
            return Err(Attempt::Fatal(fail(
                "the server refused to resume: the partial file is larger than the file".into(),
            )));
        }
        416 => {
            partial.restart().map_err(|e| io("truncate", e))?;
            return Err(Attempt::Retry("the server refused the range request".into()));
        }
        _ => {
            let message = header(headers, "x-error-message").map(|m| format!(": {m}")).unwrap_or_default();
            let error = format!("{url} answered HTTP {status}{message}");
            return Err(if status == 429 || status >= 500 {
                Attempt::Retry(error)
            } else {
                Attempt::Fatal(fail(error))
            });
        }
    };
    match (partial.expected, total) {
        (Some(expected), Some(total)) if expected != total => {
            return Err(Attempt::Fatal(fail(format!(
                "the Hub announced {expected} bytes but the download has {total}"
            ))));
        }
        (None, Some(total)) => {
            partial.expected = Some(total);
            bar.set_length(total);
        }
        _ => {}
    }
    let mut reader = response.into_body().into_reader();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) => return Err(Attempt::Retry(format!("interrupted after {} bytes: {e}", partial.len))),
        };
        if partial.expected.is_some_and(|expected| partial.len + n as u64 > expected) {
            partial.restart().map_err(|e| io("truncate", e))?;
            return Err(Attempt::Retry("the server sent more bytes than announced".into()));
        }
        partial.append(&buf[..n]).map_err(|e| io("write", e))?;
        bar.set_position(partial.len);
    }
}

/// A byte progress bar on stderr, hidden when `show` is off or stderr is not a terminal.
fn progress_bar(show: bool, size: Option<u64>, label: &str) -> ProgressBar {
    if !show || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(size.unwrap_or(0));
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(label.to_string());
    bar
}
