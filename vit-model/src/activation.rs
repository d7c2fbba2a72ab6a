//! Activation functions by their Hugging Face names (`hidden_act`, `pooler_act`).

use std::fmt;

use burn::tensor::Tensor;
use burn::tensor::activation;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An activation function named as in Hugging Face's `ACT2FN`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum HiddenAct {
    /// "gelu": the exact GELU, `x·Φ(x)` with erf.
    #[default]
    Gelu,
    /// "gelu_new", "gelu_pytorch_tanh", "gelu_fast": the tanh approximation of GELU.
    GeluTanh(&'static str),
    /// "quick_gelu": `x·σ(1.702·x)`.
    QuickGelu,
    /// "relu".
    Relu,
    /// "selu".
    Selu,
    /// "silu" or "swish": `x·σ(x)`.
    Silu(&'static str),
    /// "sigmoid".
    Sigmoid,
    /// "tanh".
    Tanh,
    /// "linear": the identity.
    Linear,
}

/// Every accepted activation name.
pub const ACTIVATION_NAMES: &[&str] = &[
    "gelu",
    "gelu_new",
    "gelu_pytorch_tanh",
    "gelu_fast",
    "quick_gelu",
    "relu",
    "selu",
    "silu",
    "swish",
    "sigmoid",
    "tanh",
    "linear",
];

impl HiddenAct {
    /// Looks an activation up by its Hugging Face name.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "gelu" => Self::Gelu,
            "gelu_new" => Self::GeluTanh("gelu_new"),
            "gelu_pytorch_tanh" => Self::GeluTanh("gelu_pytorch_tanh"),
            "gelu_fast" => Self::GeluTanh("gelu_fast"),
            "quick_gelu" => Self::QuickGelu,
            "relu" => Self::Relu,
            "selu" => Self::Selu,
            "silu" => Self::Silu("silu"),
            "swish" => Self::Silu("swish"),
            "sigmoid" => Self::Sigmoid,
            "tanh" => Self::Tanh,
            "linear" => Self::Linear,
            _ => return None,
        })
    }

    /// The Hugging Face name, as written to `config.json`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Gelu => "gelu",
            Self::GeluTanh(name) | Self::Silu(name) => name,
            Self::QuickGelu => "quick_gelu",
            Self::Relu => "relu",
            Self::Selu => "selu",
            Self::Sigmoid => "sigmoid",
            Self::Tanh => "tanh",
            Self::Linear => "linear",
        }
    }

    /// Applies the activation element-wise.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Self::Gelu => crate::kernels::gelu(x),
            Self::GeluTanh(_) => activation::gelu_approximate(x),
            Self::QuickGelu => x.clone() * activation::sigmoid(x * 1.702),
            Self::Relu => activation::relu(x),
            Self::Selu => activation::selu(x),
            Self::Silu(_) => activation::silu(x),
            Self::Sigmoid => activation::sigmoid(x),
            Self::Tanh => activation::tanh(x),
            Self::Linear => x,
        }
    }
}

impl fmt::Display for HiddenAct {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for HiddenAct {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for HiddenAct {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Self::from_name(&name).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown activation \"{name}\"; expected one of: {}",
                ACTIVATION_NAMES.join(", ")
            ))
        })
    }
}
