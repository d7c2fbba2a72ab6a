//! Resolves a model reference with the environment's Hub settings (HF_ENDPOINT, HF_HOME, HF_HUB_CACHE,
//! HF_TOKEN, HF_HUB_OFFLINE) and prints the directory, repo, revision and commit, one per line.
//!
//! `cargo run -p vit-hub --example resolve -- google/vit-base-patch16-224`

fn main() {
    let Some(reference) = std::env::args().nth(1) else {
        eprintln!("usage: resolve <directory | owner/name[@revision]>");
        std::process::exit(2);
    };
    match vit_hub::resolve_model(&reference, &vit_hub::HubOptions::from_env()) {
        Ok(model) => {
            println!("dir={}", model.dir.display());
            println!("repo={}", model.repo.unwrap_or_default());
            println!("revision={}", model.revision.unwrap_or_default());
            println!("commit={}", model.commit.unwrap_or_default());
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
