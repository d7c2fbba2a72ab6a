//! The compute device named in the config (`run.device`), checked against the backends this
//! binary was compiled with.

use anyhow::{Result, bail};
use burn::tensor::Device;

/// Backends compiled into this binary, by cargo feature.
pub fn compiled_backends() -> Vec<&'static str> {
    let mut out = vec!["cpu (flex)"];
    if cfg!(feature = "wgpu") {
        out.push("wgpu");
    }
    if cfg!(feature = "vulkan") {
        out.push("vulkan");
    }
    if cfg!(feature = "metal") {
        out.push("metal");
    }
    if cfg!(feature = "cuda") {
        out.push("cuda");
    }
    if cfg!(feature = "rocm") {
        out.push("rocm");
    }
    out
}

fn index(spec: &str, rest: Option<&str>) -> Result<usize> {
    match rest {
        None | Some("") => Ok(0),
        Some(i) => i.parse().map_err(|_| anyhow::anyhow!("run.device: \"{spec}\": `{i}` is not a device index")),
    }
}

fn not_compiled(spec: &str, feature: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "run.device = \"{spec}\" needs the `{feature}` backend, which this binary was built without. \
         Rebuild with `cargo run --release -p vit-train --features {feature} -- ...` \
         (compiled in: {})",
        compiled_backends().join(", ")
    )
}

/// Parses `cpu`, `flex`, `cuda[:N]`, `rocm[:N]`, `wgpu[:discrete|integrated|cpu[:N]]`,
/// `vulkan[...]`, `metal[...]` into a device (without autodiff).
pub fn parse_device(spec: &str) -> Result<Device> {
    let spec = spec.trim();
    let (kind, rest) = match spec.split_once(':') {
        Some((k, r)) => (k, Some(r)),
        None => (spec, None),
    };
    match kind {
        "cpu" | "flex" => {
            if rest.is_some() {
                bail!("run.device: \"{spec}\": the CPU backend takes no index");
            }
            Ok(Device::flex())
        }
        "cuda" => {
            let _i = index(spec, rest)?;
            #[cfg(feature = "cuda")]
            return Ok(Device::cuda(_i));
            #[cfg(not(feature = "cuda"))]
            Err(not_compiled(spec, "cuda"))
        }
        "rocm" => {
            let _i = index(spec, rest)?;
            #[cfg(feature = "rocm")]
            return Ok(Device::rocm(_i));
            #[cfg(not(feature = "rocm"))]
            Err(not_compiled(spec, "rocm"))
        }
        "wgpu" | "vulkan" | "metal" => {
            let _kind = gpu_kind(spec, rest)?;
            match kind {
                #[cfg(feature = "wgpu")]
                "wgpu" => Ok(Device::wgpu(_kind)),
                #[cfg(feature = "vulkan")]
                "vulkan" => Ok(Device::vulkan(_kind)),
                #[cfg(feature = "metal")]
                "metal" => Ok(Device::metal(_kind)),
                other => Err(not_compiled(spec, other)),
            }
        }
        other => bail!(
            "run.device: unknown device \"{other}\"; expected cpu, cuda:N, rocm:N, wgpu, wgpu:discrete:N, \
             wgpu:integrated:N, vulkan:N or metal"
        ),
    }
}

fn gpu_kind(spec: &str, rest: Option<&str>) -> Result<burn::tensor::DeviceKind> {
    use burn::tensor::DeviceKind;
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
        other => bail!("run.device: \"{spec}\": unknown GPU kind `{other}`; expected discrete, integrated, virtual, cpu or an index"),
    })
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
}
