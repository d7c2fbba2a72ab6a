//! Mutations: generic byte edits ([`bytes`]), and format-aware ones for JSON ([`json`]), safetensors
//! ([`safetensors`]), images ([`image`]), CIFAR records ([`cifar`]) and the run-config TOML with
//! its `--set` overrides ([`toml`]), one file per format.

mod bytes;
mod cifar;
mod image;
mod json;
mod safetensors;
mod toml;

pub use self::bytes::{EXTREME_LITERALS, INTERESTING_U64, MAX_INPUT, bytes, stacked};
pub use self::cifar::cifar;
pub use self::image::{crc32, image};
pub use self::json::{KNOWN_KEYS, json, json_literal, json_value};
pub use self::safetensors::{dtype_size, join_safetensors, safetensors, split_safetensors};
pub use self::toml::{RUN_CONFIG_KEYS, SECTIONS, SET_LINE, SET_MORE, join_toml, split_toml, toml};
