//! Runtime device selection: `cpu` (burn's pure-Rust flex backend), `cuda:N`, `wgpu`.

use burn::tensor::Device;

use crate::error::{ModelError, Result};

/// Whether a device name means the CPU (`cpu`, or burn's backend name `flex`), where
/// ventral's native engine runs.
pub fn is_cpu(name: &str) -> bool {
    matches!(name, "cpu" | "flex")
}

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
            probe(
                Device::cuda(idx),
                s,
                "is an NVIDIA driver (libcuda.so.1) installed and the GPU visible?",
            )
        }
        #[cfg(feature = "wgpu")]
        "wgpu" => probe(
            Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
            "wgpu",
            "is a Vulkan/Metal driver installed (libvulkan1 plus e.g. mesa-vulkan-drivers)?",
        ),
        #[cfg(feature = "wgpu")]
        s if s.starts_with("wgpu:") => {
            let idx: usize = s["wgpu:".len()..]
                .parse()
                .map_err(|_| ModelError::Device(s.to_string()))?;
            probe(
                Device::wgpu(burn::tensor::DeviceKind::DiscreteGpu(idx)),
                s,
                "is there a discrete GPU with that index and a Vulkan/Metal driver?",
            )
        }
        #[cfg(not(feature = "cuda"))]
        s if s == "cuda" || s.starts_with("cuda:") => Err(ModelError::DeviceUnavailable {
            name: s.into(),
            msg: "this binary was built without the `cuda` feature (cargo build --release \
                  --features cuda, after scripts/setup_gpu_build.sh; see the README, GPUs)"
                .into(),
        }),
        #[cfg(not(feature = "wgpu"))]
        s if s == "wgpu" || s.starts_with("wgpu:") => Err(ModelError::DeviceUnavailable {
            name: s.into(),
            msg: "this binary was built without the `wgpu` feature (cargo build --release \
                  --features wgpu; see the README, GPUs)"
                .into(),
        }),
        other => Err(ModelError::Device(other.to_string())),
    }
}

/// Run one tiny operation on a GPU device so that a missing driver or device is an error here,
/// with the device's name and a hint, instead of a panic deep inside the first training step.
#[cfg(any(feature = "cuda", feature = "wgpu"))]
fn probe(device: Device, name: &str, hint: &str) -> Result<Device> {
    use burn::tensor::Tensor;
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let d = device.clone();
    let result = std::panic::catch_unwind(move || {
        Tensor::<1>::ones([4], &d)
            .sum()
            .into_data()
            .try_to_vec::<f32>()
            .ok()
    });
    std::panic::set_hook(previous);
    match result {
        Ok(Some(v)) if v.first() == Some(&4.0) => Ok(device),
        Ok(_) => Err(ModelError::DeviceUnavailable {
            name: name.into(),
            msg: format!("a test sum returned a wrong value; {hint}"),
        }),
        Err(panic) => {
            let why = panic_text(panic.as_ref()).unwrap_or_else(|| "the backend panicked".into());
            Err(ModelError::DeviceUnavailable {
                name: name.into(),
                msg: format!("{why}; {hint}"),
            })
        }
    }
}

/// The message of a caught panic (`String` or `&str` payload), e.g. a backend's kernel or
/// driver failure caught with `catch_unwind`.
pub fn panic_text(payload: &(dyn std::any::Any + Send)) -> Option<String> {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
}
