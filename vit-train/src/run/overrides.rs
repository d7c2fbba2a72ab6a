//! `--set section.key=value` overrides, and config errors that name the field and suggest the
//! right spelling.

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;

/// Parses `text` as TOML, applies `overrides` and deserializes; errors name the field
/// (`data.augmentation: ...`) and suggest the closest known key or value.
pub fn deserialize_with_overrides<T: DeserializeOwned>(text: &str, overrides: &[String]) -> Result<T> {
    let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| anyhow::anyhow!("{e}"))?;
    for item in overrides {
        apply_override(&mut table, item)?;
    }
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        let explained = explain(&message);
        if path.is_empty() || path == "." { explained } else { anyhow::anyhow!("{path}: {explained:#}") }
    })
}

/// `section.key=value` into the table; the value is TOML (`3`, `1e-4`, `true`, `"x"`) or a bare string.
fn apply_override(table: &mut toml::Table, item: &str) -> Result<()> {
    let (path, raw) = item.split_once('=').with_context(|| format!("--set {item}: expected section.key=value"))?;
    let value: toml::Value = match format!("v = {raw}").parse::<toml::Table>() {
        Ok(mut t) => t.remove("v").unwrap_or(toml::Value::String(raw.to_string())),
        Err(_) => toml::Value::String(raw.to_string()),
    };
    let keys: Vec<&str> = path.trim().split('.').collect();
    let (last, sections) = keys.split_last().context("--set: empty key")?;
    let mut current = table;
    for section in sections {
        current = current
            .entry(section.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .with_context(|| format!("--set {item}: `{section}` is not a section"))?;
    }
    current.insert(last.to_string(), value);
    Ok(())
}

/// Adds a did-you-mean suggestion to serde's "unknown field `x`, expected one of ..." and
/// "unknown variant `x`, expected one of ...".
fn explain(message: &str) -> anyhow::Error {
    for (marker, what) in [("unknown field `", "key"), ("unknown variant `", "value")] {
        if let Some(rest) = message.split(marker).nth(1)
            && let Some((unknown, tail)) = rest.split_once('`')
        {
            let expected: Vec<&str> = tail.split('`').skip(1).step_by(2).collect();
            let best =
                expected.iter().map(|k| (strsim::jaro_winkler(unknown, k), *k)).max_by(|a, b| a.0.total_cmp(&b.0));
            let hint = match best {
                Some((score, key)) if score > 0.7 => format!("did you mean `{key}`?"),
                _ => format!("expected one of: {}", expected.join(", ")),
            };
            return anyhow::anyhow!("{}\nunknown {what} `{unknown}`: {hint}", message.trim());
        }
    }
    anyhow::anyhow!("{}", message.trim())
}
