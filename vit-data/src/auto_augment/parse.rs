//! The `auto_augment` setting's grammar: `none`, timm's `rand-<sections>`, `trivialaugment`,
//! `autoaugment-<policy>`.

use super::{AutoAugment, AutoAugmentPolicy, RandAugmentConfig};
use crate::error::{DataError, Result};
use crate::spelling::{closest, one_of};

/// The RandAugment grammar, for error messages.
const RAND_GRAMMAR: &str = "rand-m<int>[-n<int>][-mstd<float>][-mmax<int>][-inc<0|1>][-p<float>], e.g. \
                            rand-m9-mstd0.5-inc1";

/// The keys of the RandAugment sections.
const RAND_KEYS: &[&str] = &["m", "n", "mstd", "mmax", "inc", "p"];

fn invalid(message: impl Into<String>) -> DataError {
    DataError::setting("auto_augment", message)
}

/// What every accepted form looks like.
fn expected() -> String {
    format!(
        "expected none, {RAND_GRAMMAR}, trivialaugment, {}",
        one_of(&["autoaugment-imagenet", "autoaugment-cifar10", "autoaugment-svhn"])
    )
}

pub(super) fn parse(text: &str) -> Result<AutoAugment> {
    match text {
        "none" => return Ok(AutoAugment::None),
        "trivialaugment" => return Ok(AutoAugment::TrivialAugmentWide),
        _ => {}
    }
    if text == "rand" || text.starts_with("rand-") {
        return parse_rand(text).map(AutoAugment::RandAugment);
    }
    if let Some(policy) = text.strip_prefix("autoaugment-") {
        return policy.parse::<AutoAugmentPolicy>().map(AutoAugment::Policy).map_err(|e| {
            let hint = e.suggestion().map(|s| format!("did you mean \"autoaugment-{s}\"? ")).unwrap_or_default();
            invalid(format!(
                "unknown AutoAugment policy {policy:?} in {text:?}; {hint}(expected autoaugment- followed by {})",
                one_of(AutoAugmentPolicy::VARIANTS)
            ))
        });
    }
    let lower = text.trim().to_ascii_lowercase();
    if lower.starts_with("augmix") {
        return Err(invalid(format!("{text:?}: timm's AugMix is not implemented ({})", expected())));
    }
    if ["v0", "v0r", "original", "originalr"].iter().any(|p| lower == *p || lower.starts_with(&format!("{p}-"))) {
        return Err(invalid(format!(
            "{text:?}: timm's own AutoAugment policies (v0, v0r, original, originalr) are not implemented; \
             autoaugment-imagenet is torchvision's ImageNet policy ({})",
            expected()
        )));
    }
    if ["autoaugment", "auto-augment", "auto_augment", "aa"].contains(&lower.as_str()) {
        return Err(invalid(format!(
            "unknown auto-augmentation {text:?}; did you mean \"autoaugment-imagenet\"? (torchvision's default \
             policy; {})",
            expected()
        )));
    }
    if lower.starts_with("rand") {
        return Err(invalid(format!(
            "{text:?}: RandAugment strings are written {RAND_GRAMMAR} (sections separated by '-')"
        )));
    }
    let hint = closest(text, AutoAugment::EXAMPLES).map(|s| format!("; did you mean {s:?}?")).unwrap_or_default();
    Err(invalid(format!("unknown auto-augmentation {text:?}{hint} ({})", expected())))
}

/// Parses timm's `rand-...` config string (see [`RandAugmentConfig`]), then validates it.
fn parse_rand(text: &str) -> Result<RandAugmentConfig> {
    let mut config = RandAugmentConfig::default();
    let mut seen: Vec<&str> = Vec::new();
    for section in text.split('-').skip(1) {
        let fail = |what: String| invalid(format!("RandAugment {text:?}: {what} (expected {RAND_GRAMMAR})"));
        if section.is_empty() {
            return Err(fail("empty section (two '-' in a row, or a trailing '-')".into()));
        }
        let Some(digit) = section.find(|c: char| c.is_ascii_digit()) else {
            if section.starts_with('t') {
                return Err(fail(format!(
                    "section `{section}`: timm's transform-set sections (`t<name>`: weights, 3a, 3aw) are not \
                     supported"
                )));
            }
            return Err(fail(format!("section `{section}` has no number")));
        };
        let (key, value) = section.split_at(digit);
        if !RAND_KEYS.contains(&key) {
            let hint = closest(key, RAND_KEYS).map(|k| format!("; did you mean `{k}`?")).unwrap_or_default();
            return Err(fail(format!("unknown section key `{key}` in `{section}`{hint}")));
        }
        if seen.contains(&key) {
            return Err(fail(format!("`{key}` is given twice")));
        }
        seen.push(key);
        let int = || value.parse::<u32>().map_err(|_| fail(format!("`{section}`: `{value}` is not a whole number")));
        let float = || {
            value
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| fail(format!("`{section}`: `{value}` is not a number")))
        };
        match key {
            "m" => config.magnitude = int()?,
            "n" => config.num_layers = int()?,
            "mstd" => config.magnitude_std = float()?,
            "mmax" => config.magnitude_max = Some(int()?),
            "inc" => {
                config.increasing = match int()? {
                    0 => false,
                    1 => true,
                    _ => return Err(fail(format!("`{section}`: inc must be 0 or 1"))),
                }
            }
            _ => config.prob = float()?,
        }
    }
    config.validate().map_err(|e| match e {
        DataError::InvalidSetting { message, .. } => invalid(format!("{message} (in {text:?})")),
        other => other,
    })?;
    Ok(config)
}
