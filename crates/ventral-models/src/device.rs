//! Runtime device selection: `cpu` (burn's pure-Rust flex backend), `cuda:N`, `wgpu`.

use burn::tensor::Device;

use crate::error::{ModelError, Result};

/// Parse a device name. CUDA and wgpu need the `cuda` / `wgpu` cargo features.
pub fn parse_device(name: &str) -> Result<Device> {
    match name {
        "cpu" | "flex" => Ok(Device::flex()),
        #[cfg(feature = "cuda")]
        s if s == "cuda" || s.starts_with("cuda:") => {
            let idx: usize = s
                .strip_prefix("cuda:")
                .map(|i| i.parse().map_err(|_| ModelError::Device(s.to_string())))
                .transpose()?
                .unwrap_or(0);
            Ok(Device::cuda(idx))
        }
        #[cfg(feature = "wgpu")]
        "wgpu" => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
        #[cfg(feature = "wgpu")]
        s if s.starts_with("wgpu:") => {
            let idx: usize = s["wgpu:".len()..]
                .parse()
                .map_err(|_| ModelError::Device(s.to_string()))?;
            Ok(Device::wgpu(burn::tensor::DeviceKind::DiscreteGpu(idx)))
        }
        other => Err(ModelError::Device(other.to_string())),
    }
}
