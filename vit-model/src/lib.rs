//! Vision Transformer modules equal to Hugging Face `transformers`' ViT, for Burn.
//!
//! The model reads like `modeling_vit.py`: [`embeddings`] → [`encoder`] layers ([`layer`],
//! [`attention`]) → final LayerNorm ([`model`]) → a head ([`heads`]). Field names mirror the Hub's
//! checkpoint keys, so [`checkpoint`] loads and saves HF model directories directly.
//! Every module runs on whichever Burn `Device` it is given; dense layers and LayerNorms are
//! [`FusedLinear`] and [`FusedLayerNorm`], which run the fused CPU [`kernels`] on flex and Burn's
//! ops elsewhere. [`Architecture`] names the model classes.

#![warn(missing_docs)]

pub mod activation;
pub mod architecture;
pub mod attention;
pub mod checkpoint;
pub mod config;
pub mod drop_path;
pub mod embeddings;
pub mod encoder;
pub mod error;
pub mod forward;
pub mod fused_layers;
pub mod heads;
pub mod init;
pub mod kernels;
pub mod layer;
pub mod loss;
pub mod model;
pub mod pos_interp;
pub mod precision;
pub mod size;

pub use activation::HiddenAct;
pub use architecture::{Architecture, ModelKind};
pub use checkpoint::{LoadOptions, LoadReport, PretrainedViT};
pub use config::{ProblemType, ViTConfig};
pub use drop_path::StochasticDepth;
pub use error::{Result, ViTError};
pub use fused_layers::{FusedLayerNorm, FusedLinear};
pub use heads::classification::{ImageClassifierOutput, Labels, ViTForImageClassification};
pub use heads::mim::{MaskedImageModelingOutput, ViTForMaskedImageModeling};
pub use model::{HeadMask, ViTForwardOptions, ViTModel, ViTModelOutput};
pub use precision::{Precision, autocast};
pub use size::DEFAULT_MAX_WEIGHT_BYTES;
