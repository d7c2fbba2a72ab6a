//! Typed reading of the fields of a `preprocessor_config.json` object.

use std::path::Path;

use serde_json::{Map, Value};

use super::ImageSize;
use crate::error::{DataError, Result};
use crate::resize::Resample;

/// A [`DataError::ConfigField`] for `field` of the file `path`.
pub(super) fn field_error(path: &Path, field: &str, message: impl Into<String>) -> DataError {
    DataError::ConfigField { path: path.to_path_buf(), field: field.into(), message: message.into() }
}

/// Typed access to the fields of a `preprocessor_config.json` object, with errors naming the
/// file and the field.
pub(super) struct Fields<'a> {
    pub(super) map: &'a Map<String, Value>,
    pub(super) path: &'a Path,
}

impl Fields<'_> {
    fn get(&self, name: &str) -> Option<&Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }

    fn err(&self, field: &str, message: impl Into<String>) -> DataError {
        field_error(self.path, field, message)
    }

    pub(super) fn bool(&self, name: &str) -> Result<Option<bool>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(self.err(name, format!("must be true or false, found {other}"))),
        }
    }

    pub(super) fn number(&self, name: &str) -> Result<Option<f64>> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v.as_f64().map(Some).ok_or_else(|| self.err(name, format!("must be a number, found {v}"))),
        }
    }

    pub(super) fn resample(&self) -> Result<Option<Resample>> {
        let Some(v) = self.get("resample") else {
            return Ok(None);
        };
        let code =
            v.as_i64().ok_or_else(|| self.err("resample", format!("must be a Pillow filter code (0-5), found {v}")))?;
        Resample::from_pil(code).map(Some).ok_or_else(|| {
            self.err("resample", format!("{code} is not a Pillow filter: use 0 nearest, 2 bilinear or 3 bicubic"))
        })
    }

    pub(super) fn stats(&self, name: &str, num_channels: usize) -> Result<Option<Vec<f32>>> {
        let Some(v) = self.get(name) else {
            return Ok(None);
        };
        if let Some(x) = v.as_f64() {
            return Ok(Some(vec![x as f32; num_channels]));
        }
        let list = v
            .as_array()
            .ok_or_else(|| self.err(name, format!("must be a list of {num_channels} numbers, found {v}")))?;
        list.iter()
            .map(|x| {
                x.as_f64()
                    .map(|x| x as f32)
                    .ok_or_else(|| self.err(name, format!("must be a list of numbers, found element {x}")))
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    pub(super) fn size(&self) -> Result<Option<ImageSize>> {
        let Some(v) = self.get("size") else {
            return Ok(None);
        };
        let dim = |x: &Value, what: &str| -> Result<u32> {
            x.as_u64()
                .filter(|&n| n > 0 && n <= u32::MAX as u64)
                .map(|n| n as u32)
                .ok_or_else(|| self.err("size", format!("{what} must be a positive integer, found {x}")))
        };
        match v {
            Value::Number(_) => {
                let n = dim(v, "size")?;
                Ok(Some(ImageSize { height: n, width: n }))
            }
            Value::Object(obj) => {
                if let (Some(h), Some(w)) = (obj.get("height"), obj.get("width")) {
                    Ok(Some(ImageSize { height: dim(h, "height")?, width: dim(w, "width")? }))
                } else if let Some(s) = obj.get("shortest_edge") {
                    let n = dim(s, "shortest_edge")?;
                    Ok(Some(ImageSize { height: n, width: n }))
                } else {
                    Err(self.err("size", "must be {\"height\": H, \"width\": W} or an integer"))
                }
            }
            other => {
                Err(self.err("size", format!("must be {{\"height\": H, \"width\": W}} or an integer, found {other}")))
            }
        }
    }
}
