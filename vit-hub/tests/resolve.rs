//! Resolving Hub models against the fake Hub: the cache layout, reuse of the cache (offline and online),
//! revisions, sharded checkpoints, the token.

mod common;

use std::path::{Path, PathBuf};

use common::{CONFIG, FakeHub, PREPROCESSOR, RepoSetup, git_oid, options, safetensors, sha256_hex};
use vit_hub::{HubOptions, resolve_model};

const REPO: &str = "test-org/tiny-vit";

fn tiny_repo(hub: &FakeHub) -> (String, Vec<u8>) {
    let weights = safetensors("w", 1024, 1);
    hub.add_repo(REPO, RepoSetup::default());
    let commit = hub.commit(
        REPO,
        "main",
        &[("config.json", CONFIG), ("preprocessor_config.json", PREPROCESSOR), ("model.safetensors", &weights)],
    );
    (commit, weights)
}

fn repo_dir(cache: &Path) -> PathBuf {
    cache.join("models--test-org--tiny-vit")
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[test]
fn downloads_into_the_huggingface_hub_cache_layout() {
    let hub = FakeHub::start();
    let (commit, weights) = tiny_repo(&hub);
    let cache = tempfile::tempdir().unwrap();

    let model = resolve_model(REPO, &options(&hub, cache.path())).unwrap();

    let root = repo_dir(cache.path());
    let snapshot = root.join("snapshots").join(&commit);
    assert_eq!(model.dir, snapshot);
    assert_eq!(model.repo.as_deref(), Some(REPO));
    assert_eq!(model.revision.as_deref(), Some("main"));
    assert_eq!(model.commit.as_deref(), Some(commit.as_str()));

    assert_eq!(std::fs::read_to_string(root.join("refs/main")).unwrap(), commit, "the sha, no newline");
    let (config_etag, weights_etag) = (git_oid(CONFIG), sha256_hex(&weights));
    let mut blobs = vec![config_etag.clone(), git_oid(PREPROCESSOR), weights_etag.clone()];
    blobs.sort();
    assert_eq!(names(&root.join("blobs")), blobs, "blobs named by etag (X-Linked-Etag for LFS), nothing else");
    assert_eq!(names(&snapshot), ["config.json", "model.safetensors", "preprocessor_config.json"]);
    for (file, etag, bytes) in
        [("config.json", &config_etag, CONFIG), ("model.safetensors", &weights_etag, weights.as_slice())]
    {
        let link = snapshot.join(file);
        assert_eq!(std::fs::read_link(&link).unwrap(), PathBuf::from(format!("../../blobs/{etag}")), "{file}");
        assert_eq!(std::fs::read(&link).unwrap(), bytes, "{file}");
    }
    assert!(cache.path().join("CACHEDIR.TAG").is_file());
    assert!(cache.path().join(".locks/models--test-org--tiny-vit").is_dir());

    let log = hub.log();
    let cdn: Vec<_> = log.iter().filter(|r| r.server == "cdn").collect();
    assert_eq!(cdn.len(), 1, "the LFS file comes from the CDN the Hub redirects to: {log:?}");
    assert_eq!(cdn[0].path, format!("/cdn/{weights_etag}"));
    assert!(log.iter().all(|r| r.authorization.is_none()), "no token, no Authorization header");
}

#[test]
fn a_second_resolve_is_served_from_the_cache() {
    let hub = FakeHub::start();
    let (commit, _) = tiny_repo(&hub);
    let cache = tempfile::tempdir().unwrap();
    let opts = options(&hub, cache.path());
    let first = resolve_model(REPO, &opts).unwrap();

    hub.clear_log();
    let offline = HubOptions { offline: true, ..opts.clone() };
    assert_eq!(resolve_model(REPO, &offline).unwrap(), first);
    assert_eq!(resolve_model(&format!("{REPO}@{commit}"), &offline).unwrap().dir, first.dir);
    assert!(hub.log().is_empty(), "offline: no request at all");

    let by_sha = resolve_model(&format!("{REPO}@{commit}"), &opts).unwrap();
    assert_eq!(by_sha.dir, first.dir);
    assert!(hub.log().is_empty(), "a cached commit needs no request: {:?}", hub.log());

    let again = resolve_model(REPO, &opts).unwrap();
    assert_eq!(again, first);
    let log = hub.log();
    assert_eq!(log.len(), 1, "a branch is checked with one HEAD, nothing downloaded: {log:?}");
    assert_eq!((log[0].method.as_str(), log[0].path.as_str()), ("HEAD", "/test-org/tiny-vit/resolve/main/config.json"));
}

#[test]
fn the_cache_stands_in_when_the_hub_is_unreachable() {
    let hub = FakeHub::start();
    tiny_repo(&hub);
    let cache = tempfile::tempdir().unwrap();
    let first = resolve_model(REPO, &options(&hub, cache.path())).unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    assert_eq!(resolve_model(REPO, &HubOptions::new(dead, cache.path())).unwrap(), first);
}

#[test]
fn revisions_by_branch_tag_and_commit() {
    let hub = FakeHub::start();
    let (old, old_weights) = tiny_repo(&hub);
    hub.tag(REPO, "v1.0", &old);
    let new_weights = safetensors("w", 512, 2);
    let new = hub.commit(REPO, "main", &[("config.json", CONFIG), ("model.safetensors", &new_weights)]);
    hub.tag(REPO, "refs/pr/1", &new);
    let cache = tempfile::tempdir().unwrap();
    let opts = options(&hub, cache.path());
    let root = repo_dir(cache.path());

    let main = resolve_model(REPO, &opts).unwrap();
    assert_eq!(main.commit.as_deref(), Some(new.as_str()));
    assert_eq!(std::fs::read(main.dir.join("model.safetensors")).unwrap(), new_weights);
    assert!(!main.dir.join("preprocessor_config.json").exists(), "optional and absent");
    assert!(root.join(".no_exist").join(&new).join("preprocessor_config.json").is_file(), "absence recorded");

    let tag = resolve_model(&format!("{REPO}@v1.0"), &opts).unwrap();
    assert_eq!(tag.revision.as_deref(), Some("v1.0"));
    assert_eq!(tag.commit.as_deref(), Some(old.as_str()));
    assert_eq!(std::fs::read(tag.dir.join("model.safetensors")).unwrap(), old_weights);
    assert_eq!(std::fs::read_to_string(root.join("refs/v1.0")).unwrap(), old);

    let pr = resolve_model(&format!("{REPO}@refs/pr/1"), &opts).unwrap();
    assert_eq!(pr.dir, main.dir);
    assert_eq!(std::fs::read_to_string(root.join("refs/refs/pr/1")).unwrap(), new);
    assert!(hub.log().iter().any(|r| r.path == "/test-org/tiny-vit/resolve/refs%2Fpr%2F1/config.json"));

    let cache2 = tempfile::tempdir().unwrap();
    let by_sha = resolve_model(&format!("{REPO}@{old}"), &options(&hub, cache2.path())).unwrap();
    assert_eq!(by_sha.commit.as_deref(), Some(old.as_str()));
    assert_eq!(by_sha.revision.as_deref(), Some(old.as_str()));
    assert!(!repo_dir(cache2.path()).join("refs").exists(), "a commit sha needs no ref");
    assert_eq!(names(&by_sha.dir), ["config.json", "model.safetensors", "preprocessor_config.json"]);
}

#[test]
fn a_sharded_checkpoint_is_fetched_shard_by_shard() {
    let hub = FakeHub::start();
    let (a, b) = (safetensors("a", 600, 3), safetensors("b", 700, 4));
    let index = br#"{"metadata": {"total_size": 5200}, "weight_map": {
        "a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}"#;
    hub.add_repo(REPO, RepoSetup::default());
    let commit = hub.commit(
        REPO,
        "main",
        &[
            ("config.json", CONFIG),
            ("model.safetensors.index.json", index),
            ("model-00001-of-00002.safetensors", &a),
            ("model-00002-of-00002.safetensors", &b),
        ],
    );
    let cache = tempfile::tempdir().unwrap();
    let opts = options(&hub, cache.path());

    let model = resolve_model(REPO, &opts).unwrap();
    assert_eq!(
        names(&model.dir),
        [
            "config.json",
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors",
            "model.safetensors.index.json"
        ]
    );
    assert_eq!(std::fs::read(model.dir.join("model-00002-of-00002.safetensors")).unwrap(), b);
    let no_exist = repo_dir(cache.path()).join(".no_exist").join(&commit);
    assert!(no_exist.join("model.safetensors").is_file(), "the 404 on model.safetensors is recorded");
    let cdn: Vec<_> = hub.log().into_iter().filter(|r| r.server == "cdn").map(|r| r.path).collect();
    assert_eq!(cdn, [format!("/cdn/{}", sha256_hex(&a)), format!("/cdn/{}", sha256_hex(&b))], "one by one, in order");

    hub.clear_log();
    let offline = HubOptions { offline: true, ..opts.clone() };
    assert_eq!(resolve_model(REPO, &offline).unwrap(), model);
    let pinned = resolve_model(&format!("{REPO}@{commit}"), &opts).unwrap();
    assert_eq!((&pinned.dir, &pinned.commit), (&model.dir, &model.commit));
    assert!(hub.log().is_empty(), "shards, index and the recorded 404s are all served from the cache");

    std::fs::remove_file(model.dir.join("model-00002-of-00002.safetensors")).unwrap();
    let err = resolve_model(REPO, &offline).unwrap_err().to_string();
    assert!(err.contains("model-00002-of-00002.safetensors") && err.contains("HF_HUB_OFFLINE"), "{err}");
    assert_eq!(resolve_model(REPO, &opts).unwrap(), model, "online, the missing shard is linked again");
}

#[test]
fn the_token_goes_to_the_hub_and_never_to_the_cdn() {
    let hub = FakeHub::start();
    hub.add_repo("org/gated", RepoSetup { token: Some("hf_secret".into()), ..RepoSetup::default() });
    let weights = safetensors("w", 256, 5);
    hub.commit("org/gated", "main", &[("config.json", CONFIG), ("model.safetensors", &weights)]);
    let cache = tempfile::tempdir().unwrap();
    let opts = HubOptions { token: Some("hf_secret".into()), ..options(&hub, cache.path()) };

    let model = resolve_model("org/gated", &opts).unwrap();
    assert_eq!(std::fs::read(model.dir.join("model.safetensors")).unwrap(), weights);
    let log = hub.log();
    assert!(log.iter().filter(|r| r.server == "hub").all(|r| r.authorization.as_deref() == Some("Bearer hf_secret")));
    assert!(log.iter().filter(|r| r.server == "cdn").all(|r| r.authorization.is_none()), "{log:?}");
    assert!(log.iter().any(|r| r.server == "cdn"));
}

#[test]
fn a_local_directory_is_returned_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let opts = HubOptions::new("http://127.0.0.1:9", dir.path().join("cache"));
    let path = dir.path().to_str().unwrap();
    let model = resolve_model(path, &opts).unwrap();
    assert_eq!(model, vit_hub::ResolvedModel { dir: dir.path().into(), repo: None, revision: None, commit: None });
    assert!(!dir.path().join("cache").exists(), "nothing is written for a local model");
}
