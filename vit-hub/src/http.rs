//! Talking to the Hub: the `resolve` URL of a file, its metadata from a HEAD request (commit, etag, size,
//! where to download it), and the Hub's HTTP errors turned into [`HubError`]s.

use std::time::Duration;

use ureq::Body;
use ureq::http::{HeaderMap, Response};

use crate::reference::HubRef;
use crate::{HubError, HubOptions};

/// Redirects followed before giving up (the Hub needs one or two).
const MAX_REDIRECTS: usize = 10;
/// Attempts of a request that fails in transit or with 429/5xx.
const ATTEMPTS: u32 = 3;

/// A file's metadata, as `huggingface_hub`'s `get_hf_file_metadata` reads it.
#[derive(Debug, Clone)]
pub(crate) struct FileMeta {
    /// `X-Repo-Commit`: the commit the revision points at.
    pub commit: String,
    /// `X-Linked-Etag`, else `ETag`, without `W/` and quotes: the blob's name in the cache.
    pub etag: String,
    /// `X-Linked-Size`, else the `Content-Length` of a non-redirect answer.
    pub size: Option<u64>,
    /// Where to GET the contents: the CDN URL of a redirect, or the resolve URL.
    pub url: String,
}

/// What a HEAD of a file found.
pub(crate) enum Head {
    /// The file exists.
    Found(FileMeta),
    /// The repo and revision exist but the file does not (`commit` if the Hub said which).
    Missing { commit: Option<String> },
}

/// A file of a repository, for requests and error messages.
pub(crate) struct FileRef<'a> {
    pub repo: &'a HubRef,
    /// The revision the request names (the user's, or the commit once known).
    pub revision: &'a str,
    pub filename: &'a str,
    /// Whether an earlier request showed the repo and revision exist: a bare 404 then means "no such file".
    pub confirmed: bool,
}

/// An HTTP client for one Hub endpoint.
pub(crate) struct Hub<'a> {
    agent: ureq::Agent,
    opts: &'a HubOptions,
}

impl<'a> Hub<'a> {
    /// A client for `opts.endpoint`, sending `opts.token` to Hub hosts only.
    pub(crate) fn new(opts: &'a HubOptions) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .accept_encoding("identity")
            .user_agent(concat!("vit-hub/", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_per_read(Some(Duration::from_secs(30)))
            .build()
            .into();
        Self { agent, opts }
    }

    /// The options this client was made with.
    pub(crate) fn options(&self) -> &HubOptions {
        self.opts
    }

    /// `{endpoint}/{owner}/{name}/resolve/{revision}/{filename}`, percent-encoded as `hf_hub_url` does.
    pub(crate) fn file_url(&self, file: &FileRef) -> String {
        format!(
            "{}/{}/resolve/{}/{}",
            self.opts.endpoint,
            file.repo.repo_id(),
            percent_encode(file.revision, ""),
            percent_encode(file.filename, "/")
        )
    }

    /// HEADs the file's resolve URL, following redirects that stay on a Hub host (a renamed repo) and
    /// stopping at one that leaves it (the CDN): that answer carries the metadata.
    pub(crate) fn head(&self, file: &FileRef) -> Result<Head, HubError> {
        let mut url = self.file_url(file);
        for _ in 0..MAX_REDIRECTS {
            let response = self.send("HEAD", &url, None)?;
            let status = response.status().as_u16();
            let headers = response.headers();
            if (300..400).contains(&status)
                && let Some(location) = header(headers, "location")
            {
                let target = join_url(&url, location);
                if self.is_hub_host(&url, &target) {
                    url = target;
                    continue;
                }
                return self.meta(&url, headers, Some(target)).map(Head::Found);
            }
            if (200..300).contains(&status) {
                return self.meta(&url, headers, None).map(Head::Found);
            }
            return match self.classify(status, headers, file) {
                Failure::Missing { commit } => Ok(Head::Missing { commit }),
                Failure::Error(e) => Err(e),
            };
        }
        Err(too_many_redirects(url))
    }

    fn meta(&self, url: &str, headers: &HeaderMap, redirect: Option<String>) -> Result<FileMeta, HubError> {
        let not_a_hub = |header| HubError::NotAHub { url: url.into(), header, endpoint: self.opts.endpoint.clone() };
        let commit = header(headers, "x-repo-commit").ok_or_else(|| not_a_hub("X-Repo-Commit"))?.to_string();
        let etag = header(headers, "x-linked-etag")
            .or_else(|| header(headers, "etag"))
            .map(normalize_etag)
            .filter(|e| !e.is_empty())
            .ok_or_else(|| not_a_hub("ETag"))?;
        let linked_size = header(headers, "x-linked-size").and_then(|s| s.parse().ok());
        let plain_size =
            || header(headers, "content-length").filter(|_| redirect.is_none()).and_then(|s| s.parse().ok());
        let size = linked_size.or_else(plain_size);
        Ok(FileMeta { commit, etag, size, url: redirect.unwrap_or_else(|| url.to_string()) })
    }

    /// GETs `url` (from byte `from` on, with a `Range` header when `from > 0`), following redirects; the
    /// token goes only to Hub hosts, never to a CDN.
    pub(crate) fn get(&self, url: &str, from: u64) -> Result<(String, Response<Body>), HubError> {
        let range = (from > 0).then(|| format!("bytes={from}-"));
        let mut url = url.to_string();
        for _ in 0..MAX_REDIRECTS {
            let response = self.send("GET", &url, range.as_deref())?;
            let status = response.status().as_u16();
            match header(response.headers(), "location").filter(|_| (300..400).contains(&status)) {
                Some(location) => url = join_url(&url, location),
                None => return Ok((url, response)),
            }
        }
        Err(too_many_redirects(url))
    }

    /// One request, retried on transport errors and 429/5xx answers.
    fn send(&self, method: &str, url: &str, range: Option<&str>) -> Result<Response<Body>, HubError> {
        let token = self.opts.token.as_deref().filter(|_| self.is_hub_host(&self.opts.endpoint, url));
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = match method {
                "HEAD" => self.agent.head(url),
                _ => self.agent.get(url),
            };
            if let Some(token) = token {
                request = request.header("Authorization", format!("Bearer {token}"));
            }
            if let Some(range) = range {
                request = request.header("Range", range);
            }
            match request.call() {
                Ok(response) => {
                    let status = response.status().as_u16();
                    if (status != 429 && status < 500) || attempt >= ATTEMPTS {
                        return Ok(response);
                    }
                }
                Err(e) if attempt >= ATTEMPTS => {
                    return Err(HubError::Network { url: url.into(), message: e.to_string() });
                }
                Err(_) => {}
            }
            std::thread::sleep(Duration::from_millis(250 * u64::from(attempt)));
        }
    }

    /// Whether `target` may receive the token: the same origin as `from`, or a Hub origin
    /// (huggingface.co, its staging host, the configured endpoint), as `huggingface_hub` decides.
    fn is_hub_host(&self, from: &str, target: &str) -> bool {
        let hubs = [from, "https://huggingface.co", "https://hub-ci.huggingface.co", &self.opts.endpoint];
        origin(target).is_some_and(|t| hubs.iter().any(|h| origin(h).as_deref() == Some(t.as_str())))
    }

    /// The error (or "file missing") an HTTP error answer means, from the Hub's `X-Error-Code` first.
    fn classify(&self, status: u16, headers: &HeaderMap, file: &FileRef) -> Failure {
        let repo = file.repo.repo_id();
        let revision = file.revision.to_string();
        let commit = header(headers, "x-repo-commit").map(str::to_string);
        let error = match header(headers, "x-error-code") {
            Some("EntryNotFound") => return Failure::Missing { commit },
            Some("RevisionNotFound") => HubError::RevisionNotFound { repo, revision },
            Some("GatedRepo") => HubError::AccessDenied { repo, status, token_sent: self.opts.token.is_some() },
            Some("RepoNotFound") => HubError::RepoNotFound { repo, endpoint: self.opts.endpoint.clone(), status },
            _ if status == 401 || status == 403 => {
                HubError::AccessDenied { repo, status, token_sent: self.opts.token.is_some() }
            }
            _ if status == 404 && (commit.is_some() || file.confirmed) => return Failure::Missing { commit },
            _ if status == 404 => HubError::RepoOrRevisionNotFound {
                repo,
                revision,
                endpoint: self.opts.endpoint.clone(),
                file: file.filename.into(),
            },
            _ => HubError::Http {
                url: self.file_url(file),
                status,
                message: header(headers, "x-error-message").map(str::to_string),
            },
        };
        Failure::Error(error)
    }
}

fn too_many_redirects(url: String) -> HubError {
    HubError::Network { url, message: format!("more than {MAX_REDIRECTS} redirects") }
}

enum Failure {
    Missing { commit: Option<String> },
    Error(HubError),
}

/// A header's value as text, if present and readable.
pub(crate) fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `huggingface_hub`'s `_normalize_etag`: drops a leading `W/` and the quotes.
pub(crate) fn normalize_etag(etag: &str) -> String {
    let etag = etag.trim();
    etag.strip_prefix("W/").unwrap_or(etag).trim_matches('"').to_string()
}

/// Python's `urllib.parse.quote(s, safe)`: everything but ASCII letters, digits, `_.-~` and `safe` is
/// `%XX`-encoded (UTF-8 bytes).
pub(crate) fn percent_encode(s: &str, safe: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"_.-~".contains(&b) || safe.as_bytes().contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `scheme://host[:port]` of an absolute URL, lower-cased, default ports dropped.
pub(crate) fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, host)| host).to_ascii_lowercase();
    let scheme = scheme.to_ascii_lowercase();
    let authority = match (scheme.as_str(), authority.rsplit_once(':')) {
        ("https", Some((host, "443"))) | ("http", Some((host, "80"))) => host.to_string(),
        _ => authority,
    };
    Some(format!("{scheme}://{authority}"))
}

/// `location` resolved against `base` (absolute, scheme-relative, absolute-path or relative).
pub(crate) fn join_url(base: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_string();
    }
    let scheme = base.split_once("://").map_or("https", |(s, _)| s);
    if let Some(rest) = location.strip_prefix("//") {
        return format!("{scheme}://{rest}");
    }
    let base_origin = origin(base).unwrap_or_default();
    if location.starts_with('/') {
        return format!("{base_origin}{location}");
    }
    let path = base.split(['?', '#']).next().unwrap_or(base);
    match path.rsplit_once('/') {
        Some((dir, _)) if dir.len() > base_origin.len() => format!("{dir}/{location}"),
        _ => format!("{base_origin}/{location}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_urls_and_origins() {
        assert_eq!(normalize_etag("W/\"abc\""), "abc");
        assert_eq!(normalize_etag("\"abc\""), "abc");
        assert_eq!(percent_encode("refs/pr/1", ""), "refs%2Fpr%2F1");
        assert_eq!(percent_encode("a b/c.json", "/"), "a%20b/c.json");
        assert_eq!(origin("HTTPS://HuggingFace.co:443/x?y").as_deref(), Some("https://huggingface.co"));
        assert_eq!(origin("http://127.0.0.1:8080").as_deref(), Some("http://127.0.0.1:8080"));
        assert_eq!(join_url("http://h:1/a/b", "/c"), "http://h:1/c");
        assert_eq!(join_url("http://h:1/a/b", "c"), "http://h:1/a/c");
        assert_eq!(join_url("https://h/a", "//cdn/x"), "https://cdn/x");
        assert_eq!(join_url("https://h/a", "http://cdn/x"), "http://cdn/x");
    }
}
