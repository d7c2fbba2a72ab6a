//! The model classes a checkpoint can hold, named as `transformers` names them in `architectures`.

use std::fmt;

/// One of the ViT model classes, by its `transformers` class name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Architecture {
    /// The bare encoder (HF `ViTModel`), optionally with a pooler.
    ViTModel,
    /// The encoder with a linear classifier on the CLS token (HF `ViTForImageClassification`).
    ViTForImageClassification,
    /// The encoder with the SimMIM pixel decoder (HF `ViTForMaskedImageModeling`).
    ViTForMaskedImageModeling,
}

impl Architecture {
    /// Every architecture, in a fixed order.
    pub const ALL: [Architecture; 3] =
        [Architecture::ViTModel, Architecture::ViTForImageClassification, Architecture::ViTForMaskedImageModeling];

    /// The class name written to `architectures` in `config.json`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Architecture::ViTModel => "ViTModel",
            Architecture::ViTForImageClassification => "ViTForImageClassification",
            Architecture::ViTForMaskedImageModeling => "ViTForMaskedImageModeling",
        }
    }

    /// The architecture of a class name, exactly as `transformers` spells it.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }

    /// The known class names, for messages: `A, B or C`.
    pub fn expected_names() -> String {
        let names: Vec<&str> = Self::ALL.iter().map(|a| a.as_str()).collect();
        format!("{} or {}", names[..names.len() - 1].join(", "), names[names.len() - 1])
    }
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `base_model_prefix` of HF's ViT classes: the encoder's keys start with it in the head
/// classes.
pub const BASE_MODEL_PREFIX: &str = "vit.";

/// A model class with its optional parts: with a config, it fixes every weight's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ModelKind {
    /// The bare encoder (`ViTModel`).
    Base {
        /// Whether it has a pooler (`add_pooling_layer`).
        add_pooling_layer: bool,
        /// Whether it has a mask token (`use_mask_token`).
        use_mask_token: bool,
    },
    /// `ViTForImageClassification`: the encoder (no pooler, no mask token) and a classifier.
    ImageClassification,
    /// `ViTForMaskedImageModeling`: the encoder (no pooler, with a mask token) and the decoder.
    MaskedImageModeling,
}

impl ModelKind {
    /// Every kind, with and without the optional parts.
    pub const ALL: [ModelKind; 6] = [
        ModelKind::Base { add_pooling_layer: false, use_mask_token: false },
        ModelKind::Base { add_pooling_layer: true, use_mask_token: false },
        ModelKind::Base { add_pooling_layer: false, use_mask_token: true },
        ModelKind::Base { add_pooling_layer: true, use_mask_token: true },
        ModelKind::ImageClassification,
        ModelKind::MaskedImageModeling,
    ];

    /// The model class.
    pub fn architecture(self) -> Architecture {
        match self {
            ModelKind::Base { .. } => Architecture::ViTModel,
            ModelKind::ImageClassification => Architecture::ViTForImageClassification,
            ModelKind::MaskedImageModeling => Architecture::ViTForMaskedImageModeling,
        }
    }

    /// Whether the encoder has a pooler.
    pub fn has_pooler(self) -> bool {
        matches!(self, ModelKind::Base { add_pooling_layer: true, .. })
    }

    /// Whether the embeddings have a mask token.
    pub fn has_mask_token(self) -> bool {
        matches!(self, ModelKind::Base { use_mask_token: true, .. } | ModelKind::MaskedImageModeling)
    }

    /// The prefix of the encoder's keys: `vit.` in the head classes, none in `ViTModel`.
    pub(crate) fn prefix(self) -> &'static str {
        match self {
            ModelKind::Base { .. } => "",
            _ => BASE_MODEL_PREFIX,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for a in Architecture::ALL {
            assert_eq!(Architecture::from_name(a.as_str()), Some(a));
            assert_eq!(a.to_string(), a.as_str());
        }
        assert_eq!(Architecture::from_name("vitmodel"), None);
        assert_eq!(Architecture::expected_names(), "ViTModel, ViTForImageClassification or ViTForMaskedImageModeling");
    }
}
