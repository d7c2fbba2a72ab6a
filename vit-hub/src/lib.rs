//! Resolves a model reference — a local directory, or a Hugging Face Hub id `owner/name[@revision]` — to a
//! local directory holding `config.json` and safetensors weights, downloading into the same cache
//! (`~/.cache/huggingface/hub`, same layout, same environment variables) as Python's `huggingface_hub`, so
//! that each reuses the other's files.
//!
//! Not the `hf-hub` crate: its 1.0 ignores `HF_HUB_OFFLINE`, neither resumes nor verifies (size, sha256)
//! downloads, and pulls in tokio, reqwest and hf-xet; this is a small blocking client on `ureq`.
//!
//! ```no_run
//! let model = vit_hub::resolve_model("google/vit-base-patch16-224", &vit_hub::HubOptions::from_env())?;
//! println!("{}", model.dir.display());
//! # Ok::<(), vit_hub::HubError>(())
//! ```

mod cache;
mod download;
mod error;
mod http;
mod options;
mod reference;
mod resolve;

pub use error::HubError;
pub use options::{DEFAULT_ENDPOINT, HubOptions};
pub use reference::{DEFAULT_REVISION, HubRef, ModelRef};
pub use resolve::{ResolvedModel, resolve_model};
