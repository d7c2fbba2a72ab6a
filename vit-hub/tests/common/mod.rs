//! A fake Hugging Face Hub on 127.0.0.1 for the tests: the Hub's `/{owner}/{name}/resolve/{revision}/{file}`
//! layout with its headers (`X-Repo-Commit`, `ETag`, `X-Linked-Etag`, `X-Linked-Size`, `X-Error-Code`), a
//! 302 to a second "CDN" server for LFS files (`*.safetensors`, `*.bin`), `Range` support on the CDN, and
//! downloads that can be made to break mid-body. Every request is logged.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

/// A request the fake Hub received.
#[derive(Debug, Clone)]
pub struct Logged {
    /// `hub` or `cdn`.
    pub server: &'static str,
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub range: Option<String>,
}

/// How a repository answers.
#[derive(Default, Clone)]
pub struct RepoSetup {
    /// A token the repo requires (gated): none sent → 401, another sent → 403 `GatedRepo`.
    pub token: Option<String>,
    /// Errors without `X-Error-Code` nor `X-Repo-Commit` (a bare mirror).
    pub bare_errors: bool,
    /// Answers without `X-Repo-Commit` (not a Hub).
    pub no_commit_header: bool,
}

#[derive(Default)]
struct Repo {
    setup: RepoSetup,
    branches: HashMap<String, String>,
    commits: HashMap<String, BTreeMap<String, Vec<u8>>>,
}

#[derive(Default)]
struct State {
    repos: HashMap<String, Repo>,
    log: Vec<Logged>,
    /// sha256 → (failures left, bytes sent before closing).
    breaks: HashMap<String, (u32, usize)>,
    commits_made: u64,
    /// The CDN's base URL.
    cdn: String,
}

/// The fake Hub: `endpoint` is its base URL.
pub struct FakeHub {
    pub endpoint: String,
    state: Arc<Mutex<State>>,
}

/// Hex of sha256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The etag the fake Hub gives a non-LFS file (40 hex, like a git blob id).
pub fn git_oid(bytes: &[u8]) -> String {
    let mut prefixed = format!("blob {}\0", bytes.len()).into_bytes();
    prefixed.extend_from_slice(bytes);
    sha256_hex(&prefixed)[..40].to_string()
}

fn is_lfs(path: &str) -> bool {
    path.ends_with(".safetensors") || path.ends_with(".bin")
}

impl FakeHub {
    /// Starts the Hub and its CDN on two loopback ports.
    pub fn start() -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        state.lock().unwrap().cdn = serve(state.clone(), "cdn");
        let endpoint = serve(state.clone(), "hub");
        Self { endpoint, state }
    }

    /// Declares repository `id` (`owner/name`).
    pub fn add_repo(&self, id: &str, setup: RepoSetup) {
        self.state.lock().unwrap().repos.insert(id.into(), Repo { setup, ..Repo::default() });
    }

    /// Makes a commit with exactly `files` on `branch` of repo `id`; returns its sha.
    pub fn commit(&self, id: &str, branch: &str, files: &[(&str, &[u8])]) -> String {
        let mut state = self.state.lock().unwrap();
        state.commits_made += 1;
        let sha = sha256_hex(format!("{id}/{branch}/{}", state.commits_made).as_bytes())[..40].to_string();
        let repo = state.repos.get_mut(id).expect("add_repo first");
        repo.commits.insert(sha.clone(), files.iter().map(|(p, b)| (p.to_string(), b.to_vec())).collect());
        repo.branches.insert(branch.into(), sha.clone());
        sha
    }

    /// Points `branch` (or a tag) of repo `id` at `commit`.
    pub fn tag(&self, id: &str, branch: &str, commit: &str) {
        let mut state = self.state.lock().unwrap();
        state.repos.get_mut(id).unwrap().branches.insert(branch.into(), commit.into());
    }

    /// The next `times` CDN downloads of the blob with sha256 `sha` send `keep` bytes of the body (whose
    /// full length the headers announce) and then close the connection.
    pub fn break_downloads(&self, sha: &str, times: u32, keep: usize) {
        self.state.lock().unwrap().breaks.insert(sha.into(), (times, keep));
    }

    /// The requests received so far.
    pub fn log(&self) -> Vec<Logged> {
        self.state.lock().unwrap().log.clone()
    }

    /// Forgets the requests received so far.
    pub fn clear_log(&self) {
        self.state.lock().unwrap().log.clear();
    }
}

/// Accepts connections on a new loopback port in a thread; returns `http://127.0.0.1:PORT`.
fn serve(state: Arc<Mutex<State>>, server: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let state = state.clone();
            std::thread::spawn(move || {
                let _ = handle(stream, &state, server);
            });
        }
    });
    base
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Send only this many body bytes, then close.
    cut: Option<usize>,
}

impl Answer {
    fn new(status: u16) -> Self {
        Self { status, headers: Vec::new(), body: Vec::new(), cut: None }
    }

    fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    fn error(status: u16, code: Option<&str>, bare: bool) -> Self {
        let answer = Self::new(status);
        match code {
            Some(code) if !bare => {
                answer.header("X-Error-Code", code).header("X-Error-Message", format!("{code} (fake hub)"))
            }
            _ => answer,
        }
    }
}

fn handle(stream: TcpStream, state: &Mutex<State>, server: &'static str) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let logged = Logged {
        server,
        method: method.clone(),
        path: path.clone(),
        authorization: headers.get("authorization").cloned(),
        range: headers.get("range").cloned(),
    };
    let answer = {
        let mut state = state.lock().unwrap();
        state.log.push(logged.clone());
        match server {
            "cdn" => cdn_answer(&mut state, &logged),
            _ => hub_answer(&state, &logged),
        }
    };
    write_answer(stream, &method, answer)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// `/{owner}/{name}/resolve/{revision}/{file}` as the Hub answers it.
fn hub_answer(state: &State, req: &Logged) -> Answer {
    let segments: Vec<&str> = req.path.trim_start_matches('/').splitn(5, '/').collect();
    let [owner, name, "resolve", revision, file] = segments[..] else {
        return Answer::new(400);
    };
    let (revision, file) = (percent_decode(revision), percent_decode(file));
    let Some(repo) = state.repos.get(&format!("{owner}/{name}")) else {
        return Answer::error(401, Some("RepoNotFound"), false);
    };
    let bare = repo.setup.bare_errors;
    if let Some(token) = &repo.setup.token {
        match req.authorization.as_deref() {
            None => return Answer::new(401),
            Some(sent) if sent != format!("Bearer {token}") => return Answer::error(403, Some("GatedRepo"), bare),
            Some(_) => {}
        }
    }
    let commit = match repo.branches.get(&revision) {
        Some(commit) => commit.clone(),
        None if repo.commits.contains_key(&revision) => revision.clone(),
        None => return Answer::error(404, Some("RevisionNotFound"), bare),
    };
    let with_commit =
        |a: Answer| if repo.setup.no_commit_header { a } else { a.header("X-Repo-Commit", commit.clone()) };
    let Some(bytes) = repo.commits[&commit].get(&file) else {
        let missing = Answer::error(404, Some("EntryNotFound"), bare);
        return if bare { missing } else { with_commit(missing) };
    };
    if is_lfs(&file) {
        let sha = sha256_hex(bytes);
        with_commit(Answer::new(302))
            .header("Location", format!("{}/cdn/{sha}", state.cdn))
            .header("X-Linked-Etag", format!("\"{sha}\""))
            .header("X-Linked-Size", bytes.len().to_string())
            .header("ETag", format!("W/\"{}\"", git_oid(bytes)))
            .header("Content-Length", "0")
    } else {
        let mut answer = with_commit(Answer::new(200)).header("ETag", format!("\"{}\"", git_oid(bytes)));
        answer.body = bytes.clone();
        answer
    }
}

/// `/cdn/{sha256}`, with `Range: bytes=N-` and the breaks asked for.
fn cdn_answer(state: &mut State, req: &Logged) -> Answer {
    let sha = req.path.trim_start_matches("/cdn/").to_string();
    let found =
        state.repos.values().flat_map(|r| r.commits.values()).flat_map(|c| c.values()).find(|b| sha256_hex(b) == sha);
    let Some(bytes) = found.cloned() else {
        return Answer::new(404);
    };
    let from: usize =
        req.range.as_deref().and_then(|r| r.strip_prefix("bytes=")?.strip_suffix('-')?.parse().ok()).unwrap_or(0);
    let mut answer = if from == 0 {
        Answer::new(200)
    } else if from >= bytes.len() {
        return Answer::new(416).header("Content-Range", format!("bytes */{}", bytes.len()));
    } else {
        Answer::new(206).header("Content-Range", format!("bytes {from}-{}/{}", bytes.len() - 1, bytes.len()))
    };
    answer.body = bytes[from..].to_vec();
    if let Some((times, keep)) = state.breaks.get_mut(&sha)
        && *times > 0
    {
        *times -= 1;
        answer.cut = Some(*keep);
    }
    answer
}

fn write_answer(mut stream: TcpStream, method: &str, answer: Answer) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {} X\r\nConnection: close\r\n", answer.status);
    let has_length = answer.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-length"));
    for (k, v) in &answer.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !has_length {
        head.push_str(&format!("Content-Length: {}\r\n", answer.body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    if method != "HEAD" {
        let n = answer.cut.unwrap_or(answer.body.len()).min(answer.body.len());
        stream.write_all(&answer.body[..n])?;
    }
    stream.flush()?;
    let _ = stream.shutdown(Shutdown::Both);
    Ok(())
}

/// A small `config.json` of a ViT.
pub const CONFIG: &[u8] = br#"{
  "architectures": ["ViTForImageClassification"],
  "model_type": "vit",
  "hidden_size": 32,
  "num_hidden_layers": 2,
  "num_attention_heads": 2,
  "intermediate_size": 64,
  "image_size": 32,
  "patch_size": 8,
  "num_channels": 3
}
"#;

/// A small `preprocessor_config.json`.
pub const PREPROCESSOR: &[u8] = br#"{"image_processor_type": "ViTImageProcessor", "size": {"height": 32, "width": 32}}
"#;

/// A valid safetensors file holding one F32 tensor `name` of `n` values derived from `seed`.
pub fn safetensors(name: &str, n: usize, seed: u32) -> Vec<u8> {
    let header = format!(r#"{{"{name}":{{"dtype":"F32","shape":[{n}],"data_offsets":[0,{}]}}}}"#, 4 * n);
    let mut header = header.into_bytes();
    while header.len() % 8 != 0 {
        header.push(b' ');
    }
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&header);
    for i in 0..n {
        out.extend_from_slice(&((i as u32).wrapping_mul(2654435761).wrapping_add(seed) as f32 / 1e9).to_le_bytes());
    }
    out
}

/// Options for `hub` with the cache at `cache`, no token, online, no progress bars.
pub fn options(hub: &FakeHub, cache: &std::path::Path) -> vit_hub::HubOptions {
    vit_hub::HubOptions::new(&hub.endpoint, cache)
}
