//! The one error type of the crate: each variant says what failed and what to do about it.

use std::path::PathBuf;

/// Why a model reference could not be resolved to a local directory.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The reference looks like a file-system path, but nothing is there.
    #[error(
        "model path `{}` does not exist: pass an existing model directory, or a Hugging Face Hub id `owner/name` \
         (optionally `owner/name@revision`)",
        path.display()
    )]
    PathNotFound {
        /// The path as given (after `~` expansion).
        path: PathBuf,
    },

    /// The reference is not a valid Hub id `owner/name[@revision]`.
    #[error(
        "`{reference}` is not a valid Hugging Face Hub model id: {reason}; expected `owner/name` or \
         `owner/name@revision` (names use letters, digits, `-`, `_`, `.`), or the path of an existing directory"
    )]
    InvalidReference {
        /// The reference as given.
        reference: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The Hub does not know the repository (or hides it: a private repo reads as missing without a token).
    #[error(
        "repository `{repo}` was not found on {endpoint} (HTTP {status}): check the id; if it is private, set \
         HF_TOKEN (or run `hf auth login`) to a token that can read it"
    )]
    RepoNotFound {
        /// `owner/name`.
        repo: String,
        /// The Hub endpoint asked.
        endpoint: String,
        /// The HTTP status the Hub answered.
        status: u16,
    },

    /// The repository exists but the branch, tag or commit does not.
    #[error(
        "revision `{revision}` was not found in repository `{repo}`: check the branch, tag or commit sha \
         (the default branch is `main`)"
    )]
    RevisionNotFound {
        /// `owner/name`.
        repo: String,
        /// The revision asked for.
        revision: String,
    },

    /// A 404 that does not say whether the repository or the revision is missing.
    #[error(
        "repository `{repo}` at revision `{revision}` was not found on {endpoint} (HTTP 404 for {file}): check the \
         id and the revision; a private repo also reads as missing without HF_TOKEN"
    )]
    RepoOrRevisionNotFound {
        /// `owner/name`.
        repo: String,
        /// The revision asked for.
        revision: String,
        /// The Hub endpoint asked.
        endpoint: String,
        /// The file whose request answered 404.
        file: String,
    },

    /// The Hub refused access (HTTP 401/403): the repository is gated or private.
    #[error(
        "access to repository `{repo}` was refused (HTTP {status}): it is gated or private. {}",
        if *token_sent {
            "The token sent (HF_TOKEN or the token file) has no access: accept the model's terms on its Hub page \
             and use a token with read access to it"
        } else {
            "No token was sent: accept the model's terms on its Hub page if it is gated, then set HF_TOKEN (or run \
             `hf auth login`) to a token with read access"
        }
    )]
    AccessDenied {
        /// `owner/name`.
        repo: String,
        /// 401 or 403.
        status: u16,
        /// Whether an `Authorization` header was sent.
        token_sent: bool,
    },

    /// A file every model needs (`config.json`) is not in the repository.
    #[error(
        "repository `{repo}` at revision `{revision}` has no `{file}`: it is not a transformers model repo; \
         pick a repo with a config.json and model.safetensors"
    )]
    MissingFile {
        /// `owner/name`.
        repo: String,
        /// The revision asked for.
        revision: String,
        /// The missing file.
        file: String,
    },

    /// The repository only has PyTorch pickle weights, which vit-burn does not read.
    #[error(
        "repo `{repo}` (revision `{revision}`) has only PyTorch pickle weights ({file}); vit-burn reads safetensors \
         only: convert it with `python -c \"from transformers import AutoModel; \
         AutoModel.from_pretrained('{repo}').save_pretrained('DIR', safe_serialization=True)\"` and pass DIR, or \
         open the conversion PR at https://huggingface.co/spaces/safetensors/convert and use `{repo}@refs/pr/N`, \
         or pick a repo with model.safetensors"
    )]
    PickleOnly {
        /// `owner/name`.
        repo: String,
        /// The revision asked for.
        revision: String,
        /// `pytorch_model.bin` or `pytorch_model.bin.index.json`.
        file: String,
    },

    /// The repository has no weights vit-burn can read, nor pickle ones.
    #[error(
        "repository `{repo}` at revision `{revision}` has no weights: neither model.safetensors nor \
         model.safetensors.index.json (nor pytorch_model.bin); pick a repo with model.safetensors"
    )]
    NoWeights {
        /// `owner/name`.
        repo: String,
        /// The revision asked for.
        revision: String,
    },

    /// Offline mode is on and the cache does not hold the model (or not all of it).
    #[error(
        "model `{repo}@{revision}` is not in the Hugging Face cache {} ({missing}) and offline mode is on \
         (HF_HUB_OFFLINE=1): unset HF_HUB_OFFLINE to download it, or point HF_HUB_CACHE / HF_HOME at a cache \
         that holds it",
        cache_dir.display()
    )]
    NotCached {
        /// `owner/name`.
        repo: String,
        /// The revision asked for.
        revision: String,
        /// The cache directory searched.
        cache_dir: PathBuf,
        /// What is missing, e.g. `no refs/main` or `snapshots/<sha>/config.json missing`.
        missing: String,
    },

    /// The Hub could not be reached, and the cache cannot stand in for it.
    #[error(
        "cannot reach {url}: {message}; check the network connection and HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to \
         use only the cache"
    )]
    Network {
        /// The URL asked.
        url: String,
        /// The transport error.
        message: String,
    },

    /// The server answered an HTTP error not covered above.
    #[error("{url} answered HTTP {status}{}; retry later, or check HF_ENDPOINT", message_suffix(message))]
    Http {
        /// The URL asked.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The server's `X-Error-Message`, if any.
        message: Option<String>,
    },

    /// The server answered without the headers every Hub sends: it is not a Hub.
    #[error(
        "the response from {url} has no {header} header, so it does not come from a Hugging Face Hub: check that \
         HF_ENDPOINT (now {endpoint}) points to a Hub or a Hub mirror, and your proxy settings"
    )]
    NotAHub {
        /// The URL asked.
        url: String,
        /// The missing header.
        header: &'static str,
        /// The Hub endpoint in use.
        endpoint: String,
    },

    /// A download kept failing or its bytes do not match what the Hub announced.
    #[error("download of `{file}` from {url} failed: {message}; run again to retry (a partial download resumes)")]
    Download {
        /// The file in the repository.
        file: String,
        /// The URL downloaded.
        url: String,
        /// What went wrong.
        message: String,
    },

    /// `model.safetensors.index.json` is not what transformers writes.
    #[error(
        "`{}` is not a valid safetensors index: {message}; it must be a JSON object with a `weight_map` of \
         tensor name to shard file name",
        path.display()
    )]
    InvalidIndex {
        /// The index file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },

    /// A file-system operation on the cache failed.
    #[error("cannot {action} `{}`: {source}; check the permissions and free space of the cache (HF_HUB_CACHE / HF_HOME)", path.display())]
    Io {
        /// What was being done, e.g. `create`.
        action: &'static str,
        /// The path acted on.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

fn message_suffix(message: &Option<String>) -> String {
    message.as_ref().map(|m| format!(" ({m})")).unwrap_or_default()
}

impl HubError {
    /// An [`HubError::Io`] for `action` on `path`.
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { action, path: path.into(), source }
    }
}
