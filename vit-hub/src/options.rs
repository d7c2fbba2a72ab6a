//! Where and how to reach the Hub: endpoint, cache directory, token, offline mode, progress bars,
//! read from the same environment variables as Python's `huggingface_hub`.

use std::path::PathBuf;

/// The default Hub endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// How [`resolve_model`](crate::resolve_model) reaches the Hub and where it caches files.
#[derive(Clone, PartialEq, Eq)]
pub struct HubOptions {
    /// Base URL of the Hub, without a trailing `/` (`HF_ENDPOINT`, default `https://huggingface.co`).
    pub endpoint: String,
    /// The hub cache directory holding `models--owner--name` folders (`HF_HUB_CACHE`, else `$HF_HOME/hub`).
    pub cache_dir: PathBuf,
    /// The access token sent as `Authorization: Bearer` (`HF_TOKEN`, else the token file).
    pub token: Option<String>,
    /// No network: resolve only from the cache (`HF_HUB_OFFLINE=1`).
    pub offline: bool,
    /// Show download progress bars (on a terminal only; off with `HF_HUB_DISABLE_PROGRESS_BARS=1`).
    pub progress: bool,
}

impl std::fmt::Debug for HubOptions {
    /// Like the derived one, but never prints the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubOptions")
            .field("endpoint", &self.endpoint)
            .field("cache_dir", &self.cache_dir)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("offline", &self.offline)
            .field("progress", &self.progress)
            .finish()
    }
}

impl HubOptions {
    /// Options for `endpoint` and `cache_dir`: no token, online, no progress bars.
    pub fn new(endpoint: impl Into<String>, cache_dir: impl Into<PathBuf>) -> Self {
        let endpoint = endpoint.into().trim_end_matches('/').to_string();
        Self { endpoint, cache_dir: cache_dir.into(), token: None, offline: false, progress: false }
    }

    /// The options `huggingface_hub` would use in this process' environment; see [`HubOptions::from_vars`].
    pub fn from_env() -> Self {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// The options `huggingface_hub` derives from the variables `var` returns (its `constants.py` and
    /// `utils/_auth.py`):
    /// - endpoint: `HF_ENDPOINT` (trailing `/` removed), default `https://huggingface.co`;
    /// - cache: `HF_HUB_CACHE`, else `HUGGINGFACE_HUB_CACHE`, else `$HF_HOME/hub` with `HF_HOME` defaulting to
    ///   `$XDG_CACHE_HOME/huggingface`, then `~/.cache/huggingface` (`~` and `$VAR` expanded);
    /// - token: `HF_TOKEN`, else `HUGGING_FACE_HUB_TOKEN`, else the file `HF_TOKEN_PATH` (default
    ///   `$HF_HOME/token`), blank values ignored; none when `HF_HUB_DISABLE_IMPLICIT_TOKEN` is true;
    /// - offline: `HF_HUB_OFFLINE` (or `TRANSFORMERS_OFFLINE`) is `1`, `ON`, `YES` or `TRUE`;
    /// - progress: unless `HF_HUB_DISABLE_PROGRESS_BARS` is true.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        let home = || var("HOME").map(PathBuf::from).or_else(std::env::home_dir);
        let expand = |s: &str| expand_path(s, &var, home());
        let set = |name: &str| var(name).filter(|v| !v.is_empty());

        let endpoint = set("HF_ENDPOINT").unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
        let hf_home = match var("HF_HOME") {
            Some(h) => expand(&h),
            None => {
                let xdg = var("XDG_CACHE_HOME")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| home().unwrap_or_else(|| PathBuf::from("~")).join(".cache"));
                expand(&xdg.join("huggingface").to_string_lossy())
            }
        };
        let cache_dir = match var("HF_HUB_CACHE").or_else(|| var("HUGGINGFACE_HUB_CACHE")) {
            Some(c) => expand(&c),
            None => hf_home.join("hub"),
        };
        let token = if is_true(var("HF_HUB_DISABLE_IMPLICIT_TOKEN").as_deref()) {
            None
        } else {
            clean_token(set("HF_TOKEN").or_else(|| set("HUGGING_FACE_HUB_TOKEN"))).or_else(|| {
                let path = var("HF_TOKEN_PATH").map(|p| expand(&p)).unwrap_or_else(|| hf_home.join("token"));
                clean_token(std::fs::read_to_string(path).ok())
            })
        };
        let offline = is_true(set("HF_HUB_OFFLINE").or_else(|| var("TRANSFORMERS_OFFLINE")).as_deref());
        let progress = !is_true(var("HF_HUB_DISABLE_PROGRESS_BARS").as_deref());
        Self { token, offline, progress, ..Self::new(endpoint, cache_dir) }
    }
}

/// `huggingface_hub`'s `_is_true`: `1`, `ON`, `YES`, `TRUE` in any case.
fn is_true(value: Option<&str>) -> bool {
    value.is_some_and(|v| ["1", "ON", "YES", "TRUE"].contains(&v.to_ascii_uppercase().as_str()))
}

/// A token with surrounding white space removed; none if blank.
fn clean_token(token: Option<String>) -> Option<String> {
    token.map(|t| t.trim().to_string()).filter(|t| !t.is_empty())
}

/// Python's `os.path.expandvars(os.path.expanduser(s))`: a leading `~` becomes `home`, then `$NAME` and
/// `${NAME}` become the variable's value (unknown variables are left as written).
pub(crate) fn expand_path(s: &str, var: &impl Fn(&str) -> Option<String>, home: Option<PathBuf>) -> PathBuf {
    let user_expanded = match (s.strip_prefix('~'), home) {
        (Some(rest), Some(home)) if rest.is_empty() || rest.starts_with('/') => {
            format!("{}{rest}", home.to_string_lossy())
        }
        _ => s.to_string(),
    };
    PathBuf::from(expand_vars(&user_expanded, var))
}

fn expand_vars(s: &str, var: &impl Fn(&str) -> Option<String>) -> String {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, consumed) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (&braced[..end], end + 2),
                None => ("", 0),
            }
        } else {
            let end = after.find(|c: char| !is_name(c)).unwrap_or(after.len());
            (&after[..end], end)
        };
        match var(name).filter(|_| !name.is_empty()) {
            Some(value) => out.push_str(&value),
            None => out.push_str(&rest[i..i + 1 + consumed]),
        }
        rest = &rest[i + 1 + consumed..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn opts(vars: &[(&str, &str)]) -> HubOptions {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        HubOptions::from_vars(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_follow_home() {
        let o = opts(&[("HOME", "/home/u")]);
        assert_eq!(o.endpoint, "https://huggingface.co");
        assert_eq!(o.cache_dir, PathBuf::from("/home/u/.cache/huggingface/hub"));
        assert_eq!(o.token, None);
        assert!(!o.offline && o.progress);
    }

    #[test]
    fn hf_home_xdg_and_hub_cache() {
        let o = opts(&[("HOME", "/h"), ("XDG_CACHE_HOME", "/x")]);
        assert_eq!(o.cache_dir, PathBuf::from("/x/huggingface/hub"));
        let o = opts(&[("HOME", "/h"), ("HF_HOME", "~/hf")]);
        assert_eq!(o.cache_dir, PathBuf::from("/h/hf/hub"));
        let o = opts(&[("HOME", "/h"), ("HF_HOME", "/a"), ("HUGGINGFACE_HUB_CACHE", "/legacy")]);
        assert_eq!(o.cache_dir, PathBuf::from("/legacy"));
        let o = opts(&[("HF_HOME", "/a"), ("HUGGINGFACE_HUB_CACHE", "/legacy"), ("HF_HUB_CACHE", "$R/c")]);
        assert_eq!(o.cache_dir, PathBuf::from("$R/c"), "unknown variables stay as written");
        let o = opts(&[("R", "/root"), ("HF_HUB_CACHE", "${R}/c")]);
        assert_eq!(o.cache_dir, PathBuf::from("/root/c"));
    }

    #[test]
    fn endpoint_offline_progress() {
        let o = opts(&[("HF_ENDPOINT", "http://mirror:8080/"), ("HF_HUB_OFFLINE", "yes")]);
        assert_eq!(o.endpoint, "http://mirror:8080");
        assert!(o.offline);
        assert!(opts(&[("TRANSFORMERS_OFFLINE", "1")]).offline);
        assert!(!opts(&[("HF_HUB_OFFLINE", "0")]).offline);
        assert!(!opts(&[("HF_HUB_DISABLE_PROGRESS_BARS", "True")]).progress);
    }

    #[test]
    fn token_from_env_then_file() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().to_str().unwrap();
        std::fs::write(dir.path().join("token"), "hf_file\n").unwrap();
        assert_eq!(opts(&[("HF_HOME", home)]).token.as_deref(), Some("hf_file"));
        assert_eq!(opts(&[("HF_HOME", home), ("HF_TOKEN", " hf_env ")]).token.as_deref(), Some("hf_env"));
        assert_eq!(opts(&[("HF_HOME", home), ("HF_TOKEN", "")]).token.as_deref(), Some("hf_file"));
        assert_eq!(opts(&[("HF_HOME", home), ("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")]).token, None);
        let other = dir.path().join("elsewhere");
        std::fs::write(&other, "hf_path").unwrap();
        let o = opts(&[("HF_HOME", home), ("HF_TOKEN_PATH", other.to_str().unwrap())]);
        assert_eq!(o.token.as_deref(), Some("hf_path"));
        assert!(!format!("{o:?}").contains("hf_path"), "Debug hides the token");
    }
}
