//! Burn parameter paths ⇄ Hugging Face checkpoint keys.
//!
//! The module fields mirror HF's names, so only three things differ: LayerNorm parameters are
//! `gamma`/`beta` in Burn and `weight`/`bias` in PyTorch, the SimMIM decoder convolution is
//! `decoder` here and `decoder.0` in HF's `nn.Sequential`, and dense weights are stored
//! `[in, out]` by Burn and `[out, in]` by PyTorch.

/// The HF key of a Burn parameter path.
pub fn burn_to_hf(path: &str) -> String {
    let key =
        if let Some(rest) = path.strip_prefix("decoder.") { format!("decoder.0.{rest}") } else { path.to_string() };
    if let Some(stem) = key.strip_suffix(".gamma") {
        format!("{stem}.weight")
    } else if let Some(stem) = key.strip_suffix(".beta") {
        format!("{stem}.bias")
    } else {
        key
    }
}

/// The Burn parameter path of an HF key.
pub fn hf_to_burn(key: &str) -> String {
    let path =
        if let Some(rest) = key.strip_prefix("decoder.0.") { format!("decoder.{rest}") } else { key.to_string() };
    let is_norm = path.rsplit('.').nth(1).is_some_and(|module| module.starts_with("layernorm"));
    match (is_norm, path.rsplit_once('.')) {
        (true, Some((stem, "weight"))) => format!("{stem}.gamma"),
        (true, Some((stem, "bias"))) => format!("{stem}.beta"),
        _ => path,
    }
}

/// Whether a parameter is a dense-layer weight, stored transposed by PyTorch.
pub fn is_dense_weight(path: &str, rank: usize) -> bool {
    rank == 2 && path.ends_with(".weight")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for (burn, hf) in [
            ("vit.encoder.layer.3.layernorm_before.gamma", "vit.encoder.layer.3.layernorm_before.weight"),
            ("vit.layernorm.beta", "vit.layernorm.bias"),
            ("layernorm.gamma", "layernorm.weight"),
            ("decoder.weight", "decoder.0.weight"),
            (
                "vit.encoder.layer.0.attention.attention.query.weight",
                "vit.encoder.layer.0.attention.attention.query.weight",
            ),
            ("classifier.bias", "classifier.bias"),
            ("vit.embeddings.cls_token", "vit.embeddings.cls_token"),
        ] {
            assert_eq!(burn_to_hf(burn), hf);
            assert_eq!(hf_to_burn(hf), burn);
        }
    }
}
