//! Resolving a Hub model: `config.json`, the optional `preprocessor_config.json` and the safetensors
//! weights (one file, or an index and its shards) into a snapshot folder of the cache, online or offline.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::cache::{RepoCache, check_relative_filename, is_commit_hash};
use crate::download::download_blob;
use crate::http::{FileRef, Head, Hub};
use crate::reference::{HubRef, ModelRef};
use crate::{HubError, HubOptions};

const CONFIG: &str = "config.json";
const PREPROCESSOR: &str = "preprocessor_config.json";
const WEIGHTS: &str = "model.safetensors";
const INDEX: &str = "model.safetensors.index.json";
const PICKLES: [&str; 2] = ["pytorch_model.bin", "pytorch_model.bin.index.json"];

/// A model reference resolved to a local directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedModel {
    /// The directory holding `config.json` and the weights: the path given, or the cache's
    /// `snapshots/{commit}` folder.
    pub dir: PathBuf,
    /// `owner/name` for a Hub model.
    pub repo: Option<String>,
    /// The revision asked for (`main` when none was) for a Hub model.
    pub revision: Option<String>,
    /// The commit sha the revision resolved to, for a Hub model.
    pub commit: Option<String>,
}

/// Resolves `reference` to a local model directory.
///
/// An existing path (or one that looks like a path) is returned unchanged (`~` expanded). Otherwise
/// `reference` is a Hub id `owner/name[@revision]`: `config.json`, `preprocessor_config.json` (if the repo has
/// one) and the weights (`model.safetensors`, else `model.safetensors.index.json` and every shard it lists)
/// are downloaded into the Hugging Face cache at `opts.cache_dir`, shared with Python's `huggingface_hub`,
/// and the snapshot folder is returned. Files already in the cache are not downloaded again; with
/// `opts.offline` nothing touches the network. If the Hub cannot be reached, a complete cached snapshot
/// of the revision is used instead, as `huggingface_hub` does.
pub fn resolve_model(reference: &str, opts: &HubOptions) -> Result<ResolvedModel, HubError> {
    match ModelRef::parse(reference)? {
        ModelRef::Local(dir) => Ok(ResolvedModel { dir, repo: None, revision: None, commit: None }),
        ModelRef::Hub(repo) => resolve_hub(&repo, opts),
    }
}

fn resolve_hub(repo: &HubRef, opts: &HubOptions) -> Result<ResolvedModel, HubError> {
    let cache = RepoCache::new(&opts.cache_dir, repo);
    if opts.offline {
        return resolve_cached(repo, &cache);
    }
    let hub = Hub::new(opts);
    let fetcher = Fetcher { hub: &hub, cache: &cache, repo };
    let commit = match fetcher.fetch(repo.revision(), CONFIG, false, CONFIG) {
        Ok(Fetched::Found { commit }) => commit,
        Ok(Fetched::Missing) => return Err(missing_file(repo, CONFIG)),
        // The Hub is unreachable or down: a complete cached snapshot will do, as in `huggingface_hub`.
        Err(e @ (HubError::Network { .. } | HubError::Http { status: 500.., .. })) => {
            return resolve_cached(repo, &cache).map_err(|_| e);
        }
        Err(e) => return Err(e),
    };
    // Every other file comes from the same commit, even if the branch moves meanwhile.
    fetcher.fetch(&commit, PREPROCESSOR, true, PREPROCESSOR)?;
    if let Fetched::Missing = fetcher.fetch(&commit, WEIGHTS, true, WEIGHTS)? {
        let Fetched::Found { .. } = fetcher.fetch(&commit, INDEX, true, INDEX)? else {
            return Err(no_weights(&fetcher, &commit)?);
        };
        let shards = read_index(&cache.pointer_path(&commit, INDEX))?;
        for (i, shard) in shards.iter().enumerate() {
            let label = format!("{shard} ({}/{})", i + 1, shards.len());
            if let Fetched::Missing = fetcher.fetch(&commit, shard, true, &label)? {
                return Err(missing_file(repo, shard));
            }
        }
    }
    Ok(resolved(repo, &cache, commit))
}

/// The error for a repo without safetensors weights: [`HubError::PickleOnly`] if it has pickle ones.
fn no_weights(fetcher: &Fetcher, commit: &str) -> Result<HubError, HubError> {
    let repo = fetcher.repo;
    for file in PICKLES {
        let request = FileRef { repo, revision: commit, filename: file, confirmed: true };
        if let Head::Found(_) = fetcher.hub.head(&request)? {
            return Ok(HubError::PickleOnly {
                repo: repo.repo_id(),
                revision: repo.revision().into(),
                file: file.into(),
            });
        }
    }
    Ok(HubError::NoWeights { repo: repo.repo_id(), revision: repo.revision().into() })
}

fn missing_file(repo: &HubRef, file: &str) -> HubError {
    HubError::MissingFile { repo: repo.repo_id(), revision: repo.revision().into(), file: file.into() }
}

fn resolved(repo: &HubRef, cache: &RepoCache, commit: String) -> ResolvedModel {
    ResolvedModel {
        dir: cache.snapshot_dir(&commit),
        repo: Some(repo.repo_id()),
        revision: Some(repo.revision().into()),
        commit: Some(commit),
    }
}

/// The model from the cache alone: the revision's snapshot must hold `config.json` and complete weights.
fn resolve_cached(repo: &HubRef, cache: &RepoCache) -> Result<ResolvedModel, HubError> {
    let not_cached = |missing: String| HubError::NotCached {
        repo: repo.repo_id(),
        revision: repo.revision().into(),
        cache_dir: cache.cache_dir().to_path_buf(),
        missing,
    };
    let revision = repo.revision();
    let commit = cache.commit_for(revision).ok_or_else(|| not_cached(format!("no refs/{revision}")))?;
    let has = |file: &str| cache.cached_file(&commit, file).is_some();
    if !has(CONFIG) {
        return Err(not_cached(format!("no snapshots/{commit}/{CONFIG}")));
    }
    if !has(WEIGHTS) {
        if !has(INDEX) {
            return Err(not_cached(format!("no snapshots/{commit}/{WEIGHTS} nor {INDEX}")));
        }
        let shards = read_index(&cache.pointer_path(&commit, INDEX))?;
        if let Some(shard) = shards.iter().find(|s| !has(s)) {
            return Err(not_cached(format!("no snapshots/{commit}/{shard}")));
        }
    }
    Ok(resolved(repo, cache, commit))
}

/// The shard files a `model.safetensors.index.json` lists in its `weight_map`, sorted, each once.
fn read_index(path: &Path) -> Result<Vec<String>, HubError> {
    let invalid = |message: String| HubError::InvalidIndex { path: path.into(), message };
    let text = std::fs::read_to_string(path).map_err(|e| HubError::io("read", path, e))?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    let map =
        json.get("weight_map").and_then(|m| m.as_object()).ok_or_else(|| invalid("no `weight_map` object".into()))?;
    let mut shards = BTreeSet::new();
    for (tensor, file) in map {
        let file = file.as_str().ok_or_else(|| invalid(format!("the shard of `{tensor}` is not a string")))?;
        check_relative_filename(file).map_err(invalid)?;
        shards.insert(file.to_string());
    }
    if shards.is_empty() {
        return Err(invalid("the `weight_map` is empty".into()));
    }
    Ok(shards.into_iter().collect())
}

/// What fetching a file gave.
enum Fetched {
    /// The file is in `snapshots/{commit}`.
    Found { commit: String },
    /// The repo has no such file.
    Missing,
}

/// Fetches files of one repository into the cache, as `hf_hub_download` does.
struct Fetcher<'a> {
    hub: &'a Hub<'a>,
    cache: &'a RepoCache,
    repo: &'a HubRef,
}

impl Fetcher<'_> {
    /// Makes `snapshots/{commit}/{filename}` of `revision` present, downloading its blob if needed.
    /// `confirmed`: the repo and revision are known to exist (a bare 404 then means "no such file").
    fn fetch(&self, revision: &str, filename: &str, confirmed: bool, label: &str) -> Result<Fetched, HubError> {
        let cache = self.cache;
        if is_commit_hash(revision) {
            if cache.cached_file(revision, filename).is_some() {
                return Ok(Fetched::Found { commit: revision.into() });
            }
            if cache.known_missing(revision, filename) {
                return Ok(Fetched::Missing);
            }
        }
        let request = FileRef { repo: self.repo, revision, filename, confirmed };
        let meta = match self.hub.head(&request)? {
            Head::Found(meta) => meta,
            Head::Missing { commit } => {
                if let Some(commit) = commit {
                    cache.mark_missing(&commit, filename);
                    let _ = cache.write_ref(revision, &commit);
                }
                return Ok(Fetched::Missing);
            }
        };
        let commit = meta.commit.clone();
        if cache.cached_file(&commit, filename).is_some() {
            let _ = cache.write_ref(revision, &commit);
            return Ok(Fetched::Found { commit });
        }
        cache.prepare(&commit, filename)?;
        cache.write_ref(revision, &commit)?;
        let _lock = cache.lock(&meta.etag)?;
        let blob = cache.blob_path(&meta.etag);
        if !blob.is_file() {
            download_blob(self.hub, &meta, &blob, filename, label)?;
        }
        if cache.cached_file(&commit, filename).is_none() {
            cache.link(&commit, filename, &meta.etag)?;
        }
        Ok(Fetched::Found { commit })
    }
}
