//! Every error `resolve_model` gives, and what its message says.

mod common;

use common::{CONFIG, FakeHub, RepoSetup, options, safetensors};
use vit_hub::{HubError, HubOptions, resolve_model};

fn message_of(reference: &str, opts: &HubOptions) -> (HubError, String) {
    let err = resolve_model(reference, opts).unwrap_err();
    let message = err.to_string();
    (err, message)
}

fn assert_contains(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(message.contains(part), "`{part}` missing from: {message}");
    }
}

fn hub_with(repo: &str, setup: RepoSetup, files: &[(&str, &[u8])]) -> FakeHub {
    let hub = FakeHub::start();
    hub.add_repo(repo, setup);
    hub.commit(repo, "main", files);
    hub
}

#[test]
fn a_missing_path_is_named() {
    let opts = HubOptions::new("http://127.0.0.1:9", "/nonexistent-cache");
    for path in ["./no-such-model", "/no/such/model", "runs/a/b"] {
        let (err, message) = message_of(path, &opts);
        assert!(matches!(err, HubError::PathNotFound { .. }), "{path}: {err:?}");
        assert_contains(&message, &[path, "does not exist", "owner/name"]);
    }
}

#[test]
fn an_invalid_hub_id_says_what_is_wrong() {
    let opts = HubOptions::new("http://127.0.0.1:9", "/nonexistent-cache");
    for (reference, reason) in [
        ("vit-base", "no `/`"),
        ("owner/", "name is empty"),
        ("owner/na me", "' '"),
        ("owner/name@", "revision after `@` is empty"),
        ("owner/na--me", "`--`"),
    ] {
        let (err, message) = message_of(reference, &opts);
        assert!(matches!(err, HubError::InvalidReference { .. }), "{reference}: {err:?}");
        assert_contains(&message, &[reference, reason, "owner/name@revision"]);
    }
}

#[test]
fn an_unknown_repo_or_revision_is_named() {
    let hub = hub_with("org/m", RepoSetup::default(), &[("config.json", CONFIG)]);
    let cache = tempfile::tempdir().unwrap();
    let opts = options(&hub, cache.path());

    let (err, message) = message_of("org/nope", &opts);
    assert!(matches!(err, HubError::RepoNotFound { status: 401, .. }), "{err:?}");
    assert_contains(&message, &["`org/nope`", "not found", &hub.endpoint, "HF_TOKEN"]);

    let (err, message) = message_of("org/m@v9", &opts);
    assert!(matches!(err, HubError::RevisionNotFound { .. }), "{err:?}");
    assert_contains(&message, &["revision `v9`", "`org/m`", "branch, tag or commit"]);

    let bare =
        hub_with("org/bare", RepoSetup { bare_errors: true, ..RepoSetup::default() }, &[("config.json", CONFIG)]);
    let (err, message) = message_of("org/bare@v9", &options(&bare, cache.path()));
    assert!(matches!(err, HubError::RepoOrRevisionNotFound { .. }), "{err:?}");
    assert_contains(&message, &["`org/bare`", "revision `v9`", "not found", "HF_TOKEN"]);
}

#[test]
fn a_gated_repo_asks_for_hf_token() {
    let weights = safetensors("w", 16, 1);
    let setup = RepoSetup { token: Some("hf_good".into()), ..RepoSetup::default() };
    let hub = hub_with("org/gated", setup, &[("config.json", CONFIG), ("model.safetensors", &weights)]);
    let cache = tempfile::tempdir().unwrap();

    let (err, message) = message_of("org/gated", &options(&hub, cache.path()));
    assert!(matches!(err, HubError::AccessDenied { status: 401, token_sent: false, .. }), "{err:?}");
    assert_contains(&message, &["`org/gated`", "HTTP 401", "gated or private", "No token was sent", "HF_TOKEN"]);

    let wrong = HubOptions { token: Some("hf_bad".into()), ..options(&hub, cache.path()) };
    let (err, message) = message_of("org/gated", &wrong);
    assert!(matches!(err, HubError::AccessDenied { status: 403, token_sent: true, .. }), "{err:?}");
    assert_contains(&message, &["HTTP 403", "gated or private", "has no access", "accept the model's terms"]);
}

#[test]
fn pickle_only_weights_are_refused_with_a_way_out() {
    let hub = hub_with("org/old", RepoSetup::default(), &[("config.json", CONFIG), ("pytorch_model.bin", b"pickle")]);
    let cache = tempfile::tempdir().unwrap();
    let (err, message) = message_of("org/old", &options(&hub, cache.path()));
    assert!(matches!(err, HubError::PickleOnly { .. }), "{err:?}");
    assert_contains(
        &message,
        &[
            "repo `org/old`",
            "has only PyTorch pickle weights (pytorch_model.bin)",
            "vit-burn reads safetensors only",
            "convert it with",
            "save_pretrained",
            "pick a repo with model.safetensors",
        ],
    );
}

#[test]
fn missing_weights_or_config_are_named() {
    let hub = hub_with("org/empty", RepoSetup::default(), &[("config.json", CONFIG), ("README.md", b"hi")]);
    let cache = tempfile::tempdir().unwrap();
    let (err, message) = message_of("org/empty", &options(&hub, cache.path()));
    assert!(matches!(err, HubError::NoWeights { .. }), "{err:?}");
    assert_contains(&message, &["`org/empty`", "model.safetensors", "model.safetensors.index.json"]);

    let hub = hub_with("org/noconf", RepoSetup::default(), &[("model.safetensors", &safetensors("w", 4, 0))]);
    let (err, message) = message_of("org/noconf", &options(&hub, cache.path()));
    assert!(matches!(err, HubError::MissingFile { .. }), "{err:?}");
    assert_contains(&message, &["`org/noconf`", "no `config.json`", "not a transformers model"]);

    let index = br#"{"weight_map": {"a": "../../escape.safetensors"}}"#;
    let hub = hub_with(
        "org/badindex",
        RepoSetup::default(),
        &[("config.json", CONFIG), ("model.safetensors.index.json", index)],
    );
    let (err, message) = message_of("org/badindex", &options(&hub, cache.path()));
    assert!(matches!(err, HubError::InvalidIndex { .. }), "{err:?}");
    assert_contains(&message, &["model.safetensors.index.json", "../../escape.safetensors", "weight_map"]);

    let index = br#"{"weight_map": {"a": "model-00001-of-00002.safetensors"}}"#;
    let hub = hub_with(
        "org/noshard",
        RepoSetup::default(),
        &[("config.json", CONFIG), ("model.safetensors.index.json", index)],
    );
    let (err, message) = message_of("org/noshard", &options(&hub, cache.path()));
    assert!(matches!(err, HubError::MissingFile { .. }), "{err:?}");
    assert_contains(&message, &["`org/noshard`", "model-00001-of-00002.safetensors"]);
}

#[test]
fn offline_without_the_model_in_the_cache() {
    let cache = tempfile::tempdir().unwrap();
    let opts = HubOptions { offline: true, ..HubOptions::new("http://127.0.0.1:9", cache.path()) };
    let (err, message) = message_of("org/m@v2", &opts);
    assert!(matches!(err, HubError::NotCached { .. }), "{err:?}");
    assert_contains(&message, &["`org/m@v2`", "no refs/v2", &cache.path().display().to_string(), "HF_HUB_OFFLINE"]);
}

#[test]
fn an_unreachable_hub_without_a_cached_copy() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let cache = tempfile::tempdir().unwrap();
    let (err, message) = message_of("org/m", &HubOptions::new(&dead, cache.path()));
    assert!(matches!(err, HubError::Network { .. }), "{err:?}");
    assert_contains(&message, &[&format!("{dead}/org/m/resolve/main/config.json"), "HF_ENDPOINT", "HF_HUB_OFFLINE=1"]);
}

#[test]
fn a_server_that_is_not_a_hub() {
    let setup = RepoSetup { no_commit_header: true, ..RepoSetup::default() };
    let hub = hub_with("org/m", setup, &[("config.json", CONFIG)]);
    let cache = tempfile::tempdir().unwrap();
    let (err, message) = message_of("org/m", &options(&hub, cache.path()));
    assert!(matches!(err, HubError::NotAHub { .. }), "{err:?}");
    assert_contains(&message, &["X-Repo-Commit", "HF_ENDPOINT", &hub.endpoint]);
}
