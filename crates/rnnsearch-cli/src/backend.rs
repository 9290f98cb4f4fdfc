//! Choosing the compute backend at run time.

use anyhow::{bail, Result};
use burn::tensor::Device;
use clap::ValueEnum;

/// The tensor backends rnnsearch can be built with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// burn-flex: pure-Rust CPU backend (the default: faster than ndarray here).
    Flex,
    /// burn-ndarray: the original CPU backend (deprecated in burn 0.22).
    Ndarray,
    /// burn-wgpu: GPU through wgpu (Vulkan, Metal, DX12, OpenGL).
    Wgpu,
}

/// Shared backend flags.
#[derive(clap::Args, Debug, Clone)]
pub struct BackendArgs {
    /// Compute backend [default: flex]
    #[arg(long, value_enum, value_name = "NAME")]
    pub backend: Option<Backend>,
    /// CPU threads for the CPU backends [default: all cores]
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// GPU adapter index for --backend wgpu [default: the best adapter]
    #[arg(long, value_name = "N")]
    pub device: Option<usize>,
}

impl BackendArgs {
    /// Sets up threads and returns the (non-autodiff) device.
    pub fn device(&self) -> Result<Device> {
        if let Some(n) = self.threads {
            if n == 0 {
                bail!("--threads must be at least 1");
            }
            // ndarray's matrixmultiply reads this; flex and ndarray both use rayon's global pool.
            std::env::set_var("MATMUL_NUM_THREADS", n.to_string());
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build_global()
                .ok();
        }
        device_for(self.backend.unwrap_or(Backend::Flex), self.device)
    }
}

#[allow(unreachable_code, unused_variables)]
fn device_for(backend: Backend, index: Option<usize>) -> Result<Device> {
    match backend {
        Backend::Flex => {
            #[cfg(feature = "flex")]
            return Ok(Device::flex());
            bail!("backend `flex` is not compiled into this rnnsearch: build with `cargo build --release --features flex`")
        }
        Backend::Ndarray => {
            #[cfg(feature = "ndarray")]
            #[allow(deprecated)]
            return Ok(Device::ndarray());
            bail!("backend `ndarray` is not compiled into this rnnsearch: build with `cargo build --release --features ndarray`")
        }
        Backend::Wgpu => {
            #[cfg(feature = "wgpu")]
            return wgpu_device(index);
            bail!("backend `wgpu` is not compiled into this rnnsearch: build with `cargo build --release --features wgpu`")
        }
    }
}

#[cfg(feature = "wgpu")]
fn wgpu_device(index: Option<usize>) -> Result<Device> {
    use burn::tensor::DeviceKind;
    let kind = match index {
        Some(i) => DeviceKind::DiscreteGpu(i),
        None => DeviceKind::DefaultDevice,
    };
    Ok(Device::wgpu(kind))
}
