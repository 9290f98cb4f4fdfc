//! Choosing the compute backend at run time.

use anyhow::{bail, Result};
use burn::tensor::Device;
use clap::ValueEnum;
use rnnsearch_train::EngineChoice;

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

/// `--engine`: what computes the training gradients (the config key `train.engine`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum EngineArg {
    /// The fused CPU engine on a CPU backend, burn on a GPU.
    Auto,
    /// burn's autodiff.
    Burn,
    /// The fused CPU step (rnnsearch-fused).
    Fused,
}

impl From<EngineArg> for EngineChoice {
    fn from(e: EngineArg) -> Self {
        match e {
            EngineArg::Auto => EngineChoice::Auto,
            EngineArg::Burn => EngineChoice::Burn,
            EngineArg::Fused => EngineChoice::Fused,
        }
    }
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
    /// `engine` resolved against the backend: `auto` means burn's autodiff on a GPU, where the
    /// fused step (which runs on the host CPU) would leave the device idle.
    pub fn engine(&self, engine: impl Into<EngineChoice>) -> EngineChoice {
        match (engine.into(), self.backend) {
            (EngineChoice::Auto, Some(Backend::Wgpu)) => EngineChoice::Burn,
            (e, _) => e,
        }
    }

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

/// The wgpu adapter `--device` names (an index into wgpu's adapter list), or wgpu's pick of the
/// best one; opened with one small operation so that a broken driver is an error here rather
/// than a panic in the middle of a run.
#[cfg(feature = "wgpu")]
fn wgpu_device(index: Option<usize>) -> Result<Device> {
    use anyhow::anyhow;
    use burn::tensor::{DeviceKind, DeviceType, Tensor};

    let adapters = Device::enumerate(DeviceType::Wgpu).into_vec();
    if adapters.is_empty() {
        bail!(
            "--backend wgpu: wgpu finds no adapter. Install the GPU's Vulkan (or Metal/DX12) \
             driver; without a GPU, Mesa's lavapipe runs Vulkan on the CPU (Debian/Ubuntu: \
             `apt-get install mesa-vulkan-drivers`). Or use --backend flex."
        );
    }
    let device = match index {
        None => Device::wgpu(DeviceKind::DefaultDevice),
        Some(i) => adapters.get(i).cloned().ok_or_else(|| {
            let list: Vec<String> = adapters
                .iter()
                .enumerate()
                .map(|(n, d)| format!("{n}: {d:?}"))
                .collect();
            anyhow!(
                "--device {i}: there is no such wgpu adapter; the {} adapter(s) are\n  {}",
                adapters.len(),
                list.join("\n  ")
            )
        })?,
    };
    let probe = std::panic::AssertUnwindSafe(device.clone());
    // The whole wrapper is moved in (a field access alone would capture the bare Device).
    std::panic::catch_unwind(move || {
        let probe = probe;
        Tensor::<1>::ones([1], &probe.0).into_data()
    })
    .map_err(|_| {
        anyhow!("--backend wgpu: cannot run on the adapter {device:?} (see the message above)")
    })?;
    Ok(device)
}
