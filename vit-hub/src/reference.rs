//! What a model reference names: a local path, or a Hub repository `owner/name[@revision]`.

use std::path::{Path, PathBuf};

use crate::HubError;

/// The branch a Hub id without `@revision` means.
pub const DEFAULT_REVISION: &str = "main";

/// The most characters the Hub allows in an owner or a repository name.
const MAX_PART_LEN: usize = 96;

/// A model reference, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelRef {
    /// A path that exists on disk (after `~` expansion).
    Local(PathBuf),
    /// A Hugging Face Hub repository.
    Hub(HubRef),
}

/// A Hub model repository and the revision asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubRef {
    /// The user or organisation.
    pub owner: String,
    /// The repository name.
    pub name: String,
    /// The branch, tag or commit sha after `@`; `None` means [`DEFAULT_REVISION`].
    pub revision: Option<String>,
}

impl ModelRef {
    /// Classifies `reference`: an existing path (`~` expanded) is [`ModelRef::Local`]; something that looks
    /// like a path (starts with `.`, `/` or `~`, holds a `\`, or more than one `/` before any `@`) but does not
    /// exist is [`HubError::PathNotFound`]; anything else must be a valid Hub id `owner/name[@revision]`.
    pub fn parse(reference: &str) -> Result<Self, HubError> {
        if reference.is_empty() {
            return Err(invalid(reference, "it is empty"));
        }
        let path = expand_home(reference);
        if path.exists() {
            return Ok(Self::Local(path));
        }
        if looks_like_path(reference) {
            return Err(HubError::PathNotFound { path });
        }
        HubRef::parse(reference).map(Self::Hub)
    }
}

impl HubRef {
    /// Parses and validates `owner/name[@revision]` with the Hub's rules: each part 1 to 96 ASCII letters,
    /// digits, `-`, `_` or `.`, neither starting nor ending with `-` or `.`; no `--` or `..`; no trailing
    /// `.git`. The revision must be a valid git ref name (no spaces, `..`, `~^:?*[\`, empty components).
    pub fn parse(reference: &str) -> Result<Self, HubError> {
        let (repo, revision) = match reference.split_once('@') {
            Some((repo, revision)) => (repo, Some(revision)),
            None => (reference, None),
        };
        let fail = |reason: String| invalid(reference, &reason);
        let slashes = repo.matches('/').count();
        let Some((owner, name)) = repo.split_once('/') else {
            return Err(fail("it has no `/` between the owner and the name".into()));
        };
        if slashes > 1 {
            return Err(fail(format!("it has {slashes} `/`, a Hub id has exactly one (`owner/name`)")));
        }
        check_part(owner, "owner").map_err(&fail)?;
        check_part(name, "name").map_err(&fail)?;
        if repo.contains("--") || repo.contains("..") {
            return Err(fail("`--` and `..` are not allowed in a Hub id".into()));
        }
        if repo.ends_with(".git") {
            return Err(fail("a Hub id cannot end with `.git`".into()));
        }
        if let Some(revision) = revision {
            check_revision(revision).map_err(&fail)?;
        }
        Ok(Self { owner: owner.into(), name: name.into(), revision: revision.map(str::to_string) })
    }

    /// `owner/name`.
    pub fn repo_id(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }

    /// The revision asked for, or [`DEFAULT_REVISION`].
    pub fn revision(&self) -> &str {
        self.revision.as_deref().unwrap_or(DEFAULT_REVISION)
    }
}

impl std::fmt::Display for HubRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)?;
        match &self.revision {
            Some(revision) => write!(f, "@{revision}"),
            None => Ok(()),
        }
    }
}

fn invalid(reference: &str, reason: &str) -> HubError {
    HubError::InvalidReference { reference: reference.into(), reason: reason.into() }
}

/// Whether `reference` is meant as a file-system path rather than a Hub id.
fn looks_like_path(reference: &str) -> bool {
    let repo = reference.split_once('@').map_or(reference, |(repo, _)| repo);
    reference.starts_with(['.', '/', '~']) || repo.contains('\\') || repo.matches('/').count() > 1
}

/// `~` or `~/…` with the home directory substituted; anything else unchanged.
fn expand_home(reference: &str) -> PathBuf {
    match (reference.strip_prefix('~'), std::env::home_dir()) {
        (Some(rest), Some(home)) if rest.is_empty() || rest.starts_with('/') => home.join(rest.trim_start_matches('/')),
        _ => Path::new(reference).to_path_buf(),
    }
}

fn check_part(part: &str, what: &str) -> Result<(), String> {
    if part.is_empty() {
        return Err(format!("the {what} is empty"));
    }
    if part.len() > MAX_PART_LEN {
        return Err(format!("the {what} is {} characters long, the most is {MAX_PART_LEN}", part.len()));
    }
    if let Some(c) = part.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))) {
        return Err(format!("the {what} `{part}` contains {c:?}"));
    }
    if part.starts_with(['-', '.']) || part.ends_with(['-', '.']) {
        return Err(format!("the {what} `{part}` starts or ends with `-` or `.`"));
    }
    Ok(())
}

/// Git's ref-name rules, which also keep `refs/{revision}` inside the cache folder.
fn check_revision(revision: &str) -> Result<(), String> {
    if revision.is_empty() {
        return Err("the revision after `@` is empty".into());
    }
    if let Some(c) = revision.chars().find(|c| c.is_control() || c.is_whitespace() || "~^:?*[\\".contains(*c)) {
        return Err(format!("the revision `{revision}` contains {c:?}"));
    }
    let bad_component =
        revision.split('/').any(|c| c.is_empty() || c == "." || c.starts_with('.') || c.ends_with(".lock"));
    if bad_component || revision.contains("..") || revision.contains("@{") || revision.ends_with('.') {
        return Err(format!("the revision `{revision}` is not a valid branch, tag or commit name"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(reference: &str) -> String {
        match HubRef::parse(reference) {
            Err(HubError::InvalidReference { reason, .. }) => reason,
            other => panic!("{reference}: {other:?}"),
        }
    }

    #[test]
    fn parses_ids_and_revisions() {
        let r = HubRef::parse("google/vit-base-patch16-224").unwrap();
        assert_eq!((r.owner.as_str(), r.name.as_str(), r.revision()), ("google", "vit-base-patch16-224", "main"));
        let r = HubRef::parse("a_b/C.d-1@refs/pr/3").unwrap();
        assert_eq!(r.revision.as_deref(), Some("refs/pr/3"));
        assert_eq!(r.to_string(), "a_b/C.d-1@refs/pr/3");
        assert_eq!(r.repo_id(), "a_b/C.d-1");
    }

    #[test]
    fn rejects_what_the_hub_rejects() {
        assert!(reason("a/b/c").contains("exactly one"));
        assert!(reason("vit").contains("no `/`"));
        assert!(reason("/b").contains("owner is empty"));
        assert!(reason("a/").contains("name is empty"));
        assert!(reason("a/b c").contains("' '"));
        assert!(reason("a/-b").contains("starts or ends"));
        assert!(reason("a/b--c").contains("`--`"));
        assert!(reason("a/b..c").contains("`..`"));
        assert!(reason("a/b.git").contains(".git"));
        assert!(reason(&format!("a/{}", "x".repeat(97))).contains("97 characters"));
        assert!(reason("a/b@").contains("revision after `@` is empty"));
        assert!(reason("a/b@x..y").contains("not a valid"));
        assert!(reason("a/b@../../etc").contains("not a valid"));
        assert!(reason("a/b@v 1").contains("' '"));
        assert!(reason("a/café").contains("'é'"));
    }

    #[test]
    fn classifies_paths() {
        let dir = tempfile::tempdir().unwrap();
        let existing = dir.path().to_str().unwrap();
        assert_eq!(ModelRef::parse(existing).unwrap(), ModelRef::Local(dir.path().into()));
        for missing in ["./nope", "/no/such/dir", "~/no-such-vit-dir", "a/b/c", "a\\b"] {
            assert!(matches!(ModelRef::parse(missing), Err(HubError::PathNotFound { .. })), "{missing}");
        }
        assert!(matches!(ModelRef::parse("owner/name@v1"), Ok(ModelRef::Hub(_))));
        assert!(matches!(ModelRef::parse(""), Err(HubError::InvalidReference { .. })));
    }
}
