//! The one place that maps Cargo features to a concrete burn backend. Everything else is generic
//! over `B: Backend` / `AutodiffBackend`.
//!
//! * default: `Flex`, burn 0.21's pure-Rust multi-threaded SIMD CPU backend;
//! * `--features cuda`: `Cuda` (burn-cuda, NVIDIA GPUs; CUDA is loaded at run time);
//! * `--features wgpu`: `Wgpu` (burn-wgpu: Vulkan, Metal or DirectX 12 GPUs, or Mesa's software
//!   Vulkan driver lavapipe; the same burn-cubecl kernels as `cuda`);
//! * `--features tch`: `LibTorch` (burn-tch; needs a local libtorch through `LIBTORCH`).
//!
//! When several are enabled, `cuda` wins over `wgpu`, and both over `tch`.

use burn::tensor::Tensor;
use burn::tensor::backend::Backend as BackendTrait;

use crate::error::{Error, Result};

#[cfg(feature = "cuda")]
/// The backend chosen by the enabled features.
pub type Backend = burn_cuda::Cuda;
#[cfg(all(feature = "wgpu", not(feature = "cuda")))]
/// The backend chosen by the enabled features.
pub type Backend = burn_wgpu::Wgpu;
#[cfg(all(feature = "tch", not(any(feature = "cuda", feature = "wgpu"))))]
/// The backend chosen by the enabled features.
pub type Backend = burn_tch::LibTorch;
#[cfg(not(any(feature = "cuda", feature = "wgpu", feature = "tch")))]
/// The backend chosen by the enabled features.
pub type Backend = burn::backend::Flex;

/// The backend used for training (with automatic differentiation).
pub type TrainBackend = burn::backend::Autodiff<Backend>;

/// Human-readable name of the compiled-in backend.
pub fn name() -> &'static str {
    if cfg!(feature = "cuda") {
        "cuda (burn-cuda)"
    } else if cfg!(feature = "wgpu") {
        "wgpu (burn-wgpu)"
    } else if cfg!(feature = "tch") {
        "libtorch (burn-tch)"
    } else {
        "flex (burn CPU)"
    }
}

/// The default device of the compiled-in backend (wgpu: the best adapter it finds — a discrete
/// GPU before an integrated one, a software one such as lavapipe last; `CUBECL_WGPU_DEFAULT_DEVICE`
/// overrides the choice, e.g. `Cpu` or `DiscreteGpu(1)`).
pub fn device() -> burn::tensor::Device<Backend> {
    Default::default()
}

/// A description of the default device's hardware where the backend can tell (wgpu: the adapter
/// it picked, its driver and graphics API), `None` for the other backends. Initialises the
/// device's runtime, so call it before any tensor is made on the device.
#[cfg(all(feature = "wgpu", not(feature = "cuda")))]
pub fn adapter() -> Option<String> {
    let setup = burn_wgpu::init_setup::<burn_wgpu::graphics::AutoGraphicsApi>(
        &device(),
        Default::default(),
    );
    let info = setup.adapter.get_info();
    Some(format!(
        "{} ({:?}, {:?}; driver {} {})",
        info.name, info.device_type, info.backend, info.driver, info.driver_info
    ))
}

/// A description of the default device's hardware where the backend can tell (wgpu: the adapter
/// it picked, its driver and graphics API), `None` for the other backends.
#[cfg(not(all(feature = "wgpu", not(feature = "cuda"))))]
pub fn adapter() -> Option<String> {
    None
}

/// The devices named by `train.devices` (indices into the backend's devices; the first holds the
/// model and the optimiser). CUDA: GPU `i`. The other backends (wgpu included) are used with their
/// default device only: every index names it, so several indices run data-parallel workers that share the CPU (a check of the
/// multi-device code path, not a speed-up).
pub fn devices(indices: &[usize]) -> Result<Vec<burn::tensor::Device<Backend>>> {
    if indices.is_empty() {
        return Err(Error::Invalid(
            "train.devices is empty: name at least one device index, e.g. [0]".into(),
        ));
    }
    let mut seen = indices.to_vec();
    seen.sort_unstable();
    seen.dedup();
    if seen.len() != indices.len() && cfg!(feature = "cuda") {
        return Err(Error::Invalid(format!(
            "train.devices names a GPU twice: {indices:?}"
        )));
    }
    Ok(indices.iter().map(|&i| device_at(i)).collect())
}

#[cfg(feature = "cuda")]
fn device_at(index: usize) -> burn::tensor::Device<Backend> {
    burn_cuda::CudaDevice { index }
}

#[cfg(not(feature = "cuda"))]
fn device_at(_index: usize) -> burn::tensor::Device<Backend> {
    device()
}

/// Runs a small matrix product on `device` and checks it against the exact answer: a cheap proof
/// that the backend works on this machine.
pub fn self_check<B: BackendTrait>(device: &burn::tensor::Device<B>) -> Result<()> {
    let n = 64;
    // A = ones, B[i][j] = i: (A·B)[r][c] = Σ_i i = n(n-1)/2.
    let a = Tensor::<B, 2>::ones([n, n], device);
    let b = Tensor::<B, 1, burn::tensor::Int>::arange(0..n as i64, device)
        .float()
        .reshape([n, 1])
        .repeat_dim(1, n);
    let c: Vec<f32> = a
        .matmul(b)
        .into_data()
        .to_vec()
        .map_err(|e| Error::Backend(format!("{e:?}")))?;
    let want = (n * (n - 1) / 2) as f32;
    if c.iter().all(|&v| v == want) {
        Ok(())
    } else {
        Err(Error::Backend(format!(
            "self-check failed: expected {want}"
        )))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn default_backend_self_check() {
        super::self_check::<super::Backend>(&super::device()).unwrap();
    }
}
