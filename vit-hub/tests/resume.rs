//! Broken downloads: a connection closed mid-body is resumed with a `Range` request, a partial file of an
//! earlier run is resumed (or discarded when its bytes are wrong), and a download that keeps failing leaves
//! no blob and no snapshot link behind.

mod common;

use std::path::{Path, PathBuf};

use common::{CONFIG, FakeHub, RepoSetup, options, safetensors, sha256_hex};
use vit_hub::{HubError, resolve_model};

const REPO: &str = "org/resume";

fn repo(hub: &FakeHub) -> (String, Vec<u8>) {
    let weights = safetensors("w", 2048, 7);
    hub.add_repo(REPO, RepoSetup::default());
    let commit = hub.commit(REPO, "main", &[("config.json", CONFIG), ("model.safetensors", &weights)]);
    (commit, weights)
}

fn blobs(cache: &Path) -> PathBuf {
    cache.join("models--org--resume/blobs")
}

fn blob_names(cache: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(blobs(cache))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn cdn_ranges(hub: &FakeHub) -> Vec<Option<String>> {
    hub.log().into_iter().filter(|r| r.server == "cdn").map(|r| r.range).collect()
}

#[test]
fn a_connection_closed_mid_body_is_resumed_with_a_range_request() {
    let hub = FakeHub::start();
    let (_, weights) = repo(&hub);
    let sha = sha256_hex(&weights);
    let half = weights.len() / 2;
    hub.break_downloads(&sha, 1, half);
    let cache = tempfile::tempdir().unwrap();

    let model = resolve_model(REPO, &options(&hub, cache.path())).unwrap();

    assert_eq!(std::fs::read(model.dir.join("model.safetensors")).unwrap(), weights);
    assert_eq!(cdn_ranges(&hub), [None, Some(format!("bytes={half}-"))]);
    assert!(!blob_names(cache.path()).iter().any(|n| n.ends_with(".incomplete")), "no partial file is left");
}

#[test]
fn a_partial_file_of_an_earlier_run_is_resumed() {
    let hub = FakeHub::start();
    let (_, weights) = repo(&hub);
    let sha = sha256_hex(&weights);
    let cache = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(blobs(cache.path())).unwrap();
    std::fs::write(blobs(cache.path()).join(format!("{sha}.incomplete")), &weights[..1000]).unwrap();

    let model = resolve_model(REPO, &options(&hub, cache.path())).unwrap();

    assert_eq!(std::fs::read(model.dir.join("model.safetensors")).unwrap(), weights);
    assert_eq!(cdn_ranges(&hub), [Some("bytes=1000-".to_string())]);
    assert!(blobs(cache.path()).join(&sha).is_file());
}

#[test]
fn a_corrupt_partial_file_is_discarded_by_the_sha256_check() {
    let hub = FakeHub::start();
    let (_, weights) = repo(&hub);
    let sha = sha256_hex(&weights);
    let cache = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(blobs(cache.path())).unwrap();
    std::fs::write(blobs(cache.path()).join(format!("{sha}.incomplete")), vec![0xAB; 1000]).unwrap();

    let model = resolve_model(REPO, &options(&hub, cache.path())).unwrap();

    assert_eq!(std::fs::read(model.dir.join("model.safetensors")).unwrap(), weights);
    assert_eq!(cdn_ranges(&hub), [Some("bytes=1000-".to_string()), None], "resumed, found wrong, fetched whole");
    assert!(!blob_names(cache.path()).iter().any(|n| n.ends_with(".incomplete")));
}

#[test]
fn a_download_that_keeps_failing_leaves_no_blob_and_no_link() {
    let hub = FakeHub::start();
    let (commit, weights) = repo(&hub);
    let sha = sha256_hex(&weights);
    hub.break_downloads(&sha, 100, 0);
    let cache = tempfile::tempdir().unwrap();
    let opts = options(&hub, cache.path());

    let err = resolve_model(REPO, &opts).unwrap_err();
    assert!(matches!(err, HubError::Download { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("model.safetensors") && message.contains("attempts") && message.contains("run again"));
    assert!(!blobs(cache.path()).join(&sha).exists(), "no blob");
    let link = cache.path().join("models--org--resume/snapshots").join(&commit).join("model.safetensors");
    assert!(link.symlink_metadata().is_err(), "no snapshot link");
    let offline = vit_hub::HubOptions { offline: true, ..opts.clone() };
    assert!(matches!(resolve_model(REPO, &offline), Err(HubError::NotCached { .. })), "not usable offline");

    hub.break_downloads(&sha, 0, 0);
    let model = resolve_model(REPO, &opts).unwrap();
    assert_eq!(std::fs::read(model.dir.join("model.safetensors")).unwrap(), weights, "a later run completes it");
}
