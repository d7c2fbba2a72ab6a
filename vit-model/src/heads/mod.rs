//! Task heads on top of [`crate::ViTModel`].

pub mod classification;
pub mod mim;
