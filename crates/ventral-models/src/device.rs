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

/// A float tensor's values on the host, converted to f32 whatever its dtype; `what` names the
/// tensor in the error. burn's `into_data` panics when the backend reports a failure (a failed
/// kernel or exhausted memory on a GPU surfaces at the next read): this returns it instead.
pub fn read_f32<const D: usize>(t: &burn::tensor::Tensor<D>, what: &str) -> Result<Vec<f32>> {
    t.try_to_vec_as::<f32>().map_err(read_error(what))
}

/// The [`ModelError::Read`] of a failed read of `what`.
fn read_error<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> ModelError {
    move |e| ModelError::Read {
        what: what.into(),
        msg: e.to_string(),
    }
}

/// An integer tensor's values on the host as i64 ([`read_f32`] for `Int` tensors).
pub fn read_i64<const D: usize>(
    t: &burn::tensor::Tensor<D, burn::tensor::Int>,
    what: &str,
) -> Result<Vec<i64>> {
    t.try_to_vec_as::<i64>().map_err(read_error(what))
}

/// The one value of a single-element float tensor (a loss), as f32.
pub fn read_scalar(t: &burn::tensor::Tensor<1>, what: &str) -> Result<f32> {
    let v = read_f32(t, what)?;
    match v.as_slice() {
        [x] => Ok(*x),
        _ => Err(ModelError::Read {
            what: what.into(),
            msg: format!("expected one value, got {}", v.len()),
        }),
    }
}

/// What a training run on a GPU spends before its first steps, for `ventral train` to say at
/// its start (`None` on the CPU, where nothing compiles): burn compiles and autotunes each
/// kernel when a process first meets it, and again for each new batch shape. Measured on an
/// H200 (docs/performance.md): about 2 minutes before BLT_net_64's first batches, 73 s for a
/// ragged last batch of 16.
pub fn compile_note(name: &str) -> Option<String> {
    (!is_cpu(name)).then(|| {
        format!(
            "on {name} the first batches compile and autotune burn's kernels (about 2 min for \
             BLT_net_64 on an H200), and each new batch shape compiles again; CubeCL keeps \
             its tuning results for later runs on this machine, and the compiled kernels too \
             with `[compilation] cache = true` in a cubecl.toml in the working directory or \
             above (in target/environment of the Cargo workspace above the working \
             directory, else ~/.cache/cubecl)"
        )
    })
}

/// The note for an epoch whose last batch is smaller than the others on a GPU (see
/// [`compile_note`]): `None` on the CPU, with `drop_last`, or when the batches come out even.
pub fn ragged_batch_note(
    name: &str,
    images: usize,
    batch_size: usize,
    drop_last: bool,
) -> Option<String> {
    let last = images % batch_size.max(1);
    (!is_cpu(name) && !drop_last && last != 0 && images > batch_size).then(|| {
        format!(
            "each epoch ends with a batch of {last} images ({images} training images in \
             batches of {batch_size}): on {name} that shape compiles burn's kernels again in \
             the first epoch (73 s on an H200 for BLT_net_64); train.drop_last = true leaves \
             it out, as PyTorch's drop_last"
        )
    })
}

/// Reads inside a burn `ModuleVisitor`, whose methods cannot return an error: the first failed
/// read is kept (later reads are skipped) and returned by [`Self::into_result`] after the visit.
#[derive(Debug, Default)]
pub struct FirstError(Option<ModelError>);

impl FirstError {
    /// `read()`'s value, or `None` once a read has failed (this one or an earlier one).
    pub fn read<T>(&mut self, read: impl FnOnce() -> Result<T>) -> Option<T> {
        if self.0.is_some() {
            return None;
        }
        read().map_err(|e| self.0 = Some(e)).ok()
    }

    /// `value`, or the first failure.
    pub fn into_result<T>(self, value: T) -> Result<T> {
        match self.0 {
            Some(e) => Err(e),
            None => Ok(value),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use burn::tensor::{Int, Tensor, TensorData};

    use super::*;

    #[test]
    fn reads_come_back_as_values_or_errors_that_name_the_tensor() {
        let d = parse_device("cpu").unwrap();
        let t = Tensor::<2>::from_data(TensorData::new(vec![1.5f32, -2.0, 0.25, 4.0], [2, 2]), &d);
        assert_eq!(read_f32(&t, "t").unwrap(), vec![1.5, -2.0, 0.25, 4.0]);
        let i = Tensor::<1, Int>::from_data(TensorData::new(vec![3i64, -1], [2]), &d);
        assert_eq!(read_i64(&i, "i").unwrap(), vec![3, -1]);
        let one = Tensor::<1>::from_data(TensorData::new(vec![0.5f32], [1]), &d);
        assert_eq!(read_scalar(&one, "loss").unwrap(), 0.5);
        let two = Tensor::<1>::from_data(TensorData::new(vec![0.5f32, 1.0], [2]), &d);
        let e = read_scalar(&two, "the loss").unwrap_err().to_string();
        assert!(
            e.contains("the loss") && e.contains("expected one value, got 2"),
            "{e}"
        );
    }

    /// The GPU notes of `ventral train`: none on the CPU; the ragged-batch note only where
    /// the last batch is smaller and kept.
    #[test]
    fn gpu_notes_appear_off_the_cpu_only() {
        assert_eq!(compile_note("cpu"), None);
        assert!(compile_note("cuda:0").unwrap().contains("on cuda:0"));
        assert!(compile_note("wgpu").is_some());
        let n = ragged_batch_note("cuda:0", 10_000, 256, false).unwrap();
        assert!(
            n.contains("batch of 16 images") && n.contains("drop_last"),
            "{n}"
        );
        assert_eq!(ragged_batch_note("cuda:0", 10_000, 256, true), None);
        assert_eq!(ragged_batch_note("cuda:0", 10_240, 256, false), None);
        assert_eq!(ragged_batch_note("cuda:0", 100, 256, false), None);
        assert_eq!(ragged_batch_note("cpu", 10_000, 256, false), None);
    }

    /// A visitor's reads: values until the first failure, which is kept; later reads are
    /// not even attempted.
    #[test]
    fn first_error_keeps_the_first_failure_and_skips_later_reads() {
        let fail = |w: &str| -> Result<u8> { Err(ModelError::Config(w.into())) };
        let mut e = FirstError::default();
        assert_eq!(e.read(|| Ok(1u8)), Some(1));
        assert_eq!(e.read(|| fail("first")), None);
        assert_eq!(
            e.read(|| -> Result<u8> { panic!("read after a failure") }),
            None
        );
        assert_eq!(e.read(|| fail("second")), None);
        let msg = e.into_result(()).unwrap_err().to_string();
        assert!(msg.contains("first"), "{msg}");
        assert_eq!(FirstError::default().into_result(3).unwrap(), 3);
    }
}
