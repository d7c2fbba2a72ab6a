//! The compute device a run or command names (`run.device`, `--device`): parsed once into a
//! [`DeviceSpec`] when the config is read, turned into a Burn [`Device`] against the backends this
//! binary was compiled with.

use std::fmt;
use std::str::FromStr;

use anyhow::{Result, bail};
use burn::tensor::{Device, DeviceKind};
use serde::{Deserialize, Serialize};

/// Backends compiled into this binary, by cargo feature.
pub fn compiled_backends() -> Vec<&'static str> {
    let mut out = vec!["cpu (flex)"];
    for (on, name) in [
        (cfg!(feature = "wgpu"), "wgpu"),
        (cfg!(feature = "vulkan"), "vulkan"),
        (cfg!(feature = "metal"), "metal"),
        (cfg!(feature = "cuda"), "cuda"),
        (cfg!(feature = "rocm"), "rocm"),
    ] {
        if on {
            out.push(name);
        }
    }
    out
}

/// The graphics APIs of Burn's CubeCL wgpu backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GpuApi {
    /// Whatever wgpu picks (`wgpu`).
    Wgpu,
    /// Vulkan (`vulkan`).
    Vulkan,
    /// Metal (`metal`).
    Metal,
}

impl GpuApi {
    fn name(self) -> &'static str {
        match self {
            GpuApi::Wgpu => "wgpu",
            GpuApi::Vulkan => "vulkan",
            GpuApi::Metal => "metal",
        }
    }
}

/// A device, as written in a config or on the command line: `cpu`, `cuda:N`, `rocm:N`,
/// `wgpu[:discrete|integrated|virtual[:N]|:cpu|:N]`, `vulkan[...]`, `metal[...]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum DeviceSpec {
    /// Burn's CPU backend (flex); `flex` is accepted as a synonym.
    Cpu,
    /// An NVIDIA GPU by index.
    Cuda(usize),
    /// An AMD GPU (HIP) by index.
    Rocm(usize),
    /// A GPU through wgpu.
    Gpu(GpuApi, DeviceKind),
}

/// The accepted spellings, for error messages.
const EXPECTED: &str = "cpu, cuda:N, rocm:N, wgpu, wgpu:discrete:N, wgpu:integrated:N, vulkan:N or metal";

fn index(spec: &str, rest: Option<&str>) -> Result<usize> {
    match rest {
        None | Some("") => Ok(0),
        Some(i) => i.parse().map_err(|_| anyhow::anyhow!("device \"{spec}\": `{i}` is not a device index")),
    }
}

fn gpu_kind(spec: &str, rest: Option<&str>) -> Result<DeviceKind> {
    let Some(rest) = rest else { return Ok(DeviceKind::DefaultDevice) };
    let (what, idx) = match rest.split_once(':') {
        Some((w, i)) => (w, Some(i)),
        None => (rest, None),
    };
    Ok(match what {
        "discrete" => DeviceKind::DiscreteGpu(index(spec, idx)?),
        "integrated" => DeviceKind::IntegratedGpu(index(spec, idx)?),
        "virtual" => DeviceKind::VirtualGpu(index(spec, idx)?),
        "cpu" => DeviceKind::Cpu,
        "default" => DeviceKind::DefaultDevice,
        n if n.parse::<usize>().is_ok() => DeviceKind::DiscreteGpu(index(spec, Some(n))?),
        other => bail!(
            "device \"{spec}\": unknown GPU kind `{other}`; expected discrete, integrated, virtual, cpu or an index"
        ),
    })
}

impl FromStr for DeviceSpec {
    type Err = anyhow::Error;

    fn from_str(spec: &str) -> Result<Self> {
        let spec = spec.trim();
        let (kind, rest) = match spec.split_once(':') {
            Some((k, r)) => (k, Some(r)),
            None => (spec, None),
        };
        Ok(match kind {
            "cpu" | "flex" => {
                if rest.is_some() {
                    bail!("device \"{spec}\": the CPU backend takes no index");
                }
                DeviceSpec::Cpu
            }
            "cuda" => DeviceSpec::Cuda(index(spec, rest)?),
            "rocm" => DeviceSpec::Rocm(index(spec, rest)?),
            "wgpu" => DeviceSpec::Gpu(GpuApi::Wgpu, gpu_kind(spec, rest)?),
            "vulkan" => DeviceSpec::Gpu(GpuApi::Vulkan, gpu_kind(spec, rest)?),
            "metal" => DeviceSpec::Gpu(GpuApi::Metal, gpu_kind(spec, rest)?),
            other => bail!("unknown device \"{other}\"; expected {EXPECTED}"),
        })
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Cpu => write!(f, "cpu"),
            DeviceSpec::Cuda(i) => write!(f, "cuda:{i}"),
            DeviceSpec::Rocm(i) => write!(f, "rocm:{i}"),
            DeviceSpec::Gpu(api, kind) => {
                let api = api.name();
                match kind {
                    DeviceKind::DefaultDevice => write!(f, "{api}"),
                    DeviceKind::DiscreteGpu(i) => write!(f, "{api}:discrete:{i}"),
                    DeviceKind::IntegratedGpu(i) => write!(f, "{api}:integrated:{i}"),
                    DeviceKind::VirtualGpu(i) => write!(f, "{api}:virtual:{i}"),
                    DeviceKind::Cpu => write!(f, "{api}:cpu"),
                    DeviceKind::Existing(id) => write!(f, "{api}:existing:{id}"),
                }
            }
        }
    }
}

impl TryFrom<String> for DeviceSpec {
    type Error = anyhow::Error;

    fn try_from(text: String) -> Result<Self> {
        text.parse()
    }
}

impl From<DeviceSpec> for String {
    fn from(spec: DeviceSpec) -> String {
        spec.to_string()
    }
}

// Unused when every backend is compiled in.
#[allow(dead_code)]
fn not_compiled(spec: &DeviceSpec, feature: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "device \"{spec}\" needs the `{feature}` backend, which this binary was built without. \
         Rebuild with `cargo run --release -p vit-train --features {feature} -- ...` (compiled in: {})",
        compiled_backends().join(", ")
    )
}

impl DeviceSpec {
    /// The Burn device (without autodiff); an error naming the cargo feature when its backend is
    /// not compiled in.
    pub fn device(&self) -> Result<Device> {
        match self {
            DeviceSpec::Cpu => Ok(Device::flex()),
            DeviceSpec::Cuda(_i) => {
                #[cfg(feature = "cuda")]
                return Ok(Device::cuda(*_i));
                #[cfg(not(feature = "cuda"))]
                Err(not_compiled(self, "cuda"))
            }
            DeviceSpec::Rocm(_i) => {
                #[cfg(feature = "rocm")]
                return Ok(Device::rocm(*_i));
                #[cfg(not(feature = "rocm"))]
                Err(not_compiled(self, "rocm"))
            }
            DeviceSpec::Gpu(api, _kind) => match *api {
                #[cfg(feature = "wgpu")]
                GpuApi::Wgpu => Ok(Device::wgpu(_kind.clone())),
                #[cfg(feature = "vulkan")]
                GpuApi::Vulkan => Ok(Device::vulkan(_kind.clone())),
                #[cfg(feature = "metal")]
                GpuApi::Metal => Ok(Device::metal(_kind.clone())),
                #[allow(unreachable_patterns)]
                other => Err(not_compiled(self, other.name())),
            },
        }
    }
}

/// Parses a device spec and makes the device (for `--device` of the commands).
pub fn parse_device(spec: &str) -> Result<Device> {
    spec.parse::<DeviceSpec>()?.device()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_parses_and_unknown_is_an_error() {
        assert!(parse_device("cpu").is_ok());
        let err = parse_device("tpu:0").unwrap_err().to_string();
        assert!(err.contains("tpu"), "{err}");
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn backend_not_compiled_names_the_feature() {
        let err = parse_device("cuda:0").unwrap_err().to_string();
        assert!(err.contains("--features cuda"), "{err}");
    }

    #[test]
    fn spellings_round_trip() {
        for spec in ["cpu", "cuda:1", "rocm:0", "wgpu", "wgpu:discrete:1", "vulkan:integrated:0", "metal:cpu"] {
            assert_eq!(spec.parse::<DeviceSpec>().unwrap().to_string(), spec);
        }
        assert_eq!("flex".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cpu);
        assert_eq!("wgpu:2".parse::<DeviceSpec>().unwrap().to_string(), "wgpu:discrete:2");
        assert!("cpu:0".parse::<DeviceSpec>().is_err());
    }
}
