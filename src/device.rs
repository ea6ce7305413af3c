//! The one place where the compute device is chosen.
//!
//! Every other module receives a `&Device` and never names a backend, so adding a GPU backend
//! later is a cargo feature plus a branch here.
//!
//! The default is burn-flex, the pure-Rust CPU backend. Builds with the optional `ndarray` or
//! `tch` features can run on burn-ndarray or on LibTorch's CPU kernels instead, chosen with
//! `RSLAD_TUI_BACKEND=ndarray` or `=libtorch`: experiments for the performance comparison
//! (docs/performance.md), not supported modes. burn 0.22 deprecates both backends.

use burn::tensor::Device;

/// The backends this build can run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Flex,
    #[cfg(feature = "ndarray")]
    NdArray,
    #[cfg(feature = "tch")]
    LibTorch,
}

/// The backend named by `RSLAD_TUI_BACKEND`, read once; flex when unset or unknown.
fn backend() -> Backend {
    static CHOSEN: std::sync::OnceLock<Backend> = std::sync::OnceLock::new();
    *CHOSEN.get_or_init(|| match std::env::var("RSLAD_TUI_BACKEND").as_deref() {
        #[cfg(feature = "ndarray")]
        Ok("ndarray") => Backend::NdArray,
        #[cfg(feature = "tch")]
        Ok("libtorch") => Backend::LibTorch,
        Ok("flex") | Err(_) => Backend::Flex,
        Ok(other) => {
            eprintln!("RSLAD_TUI_BACKEND={other} is not available in this build; using flex");
            Backend::Flex
        }
    })
}

/// The device for inference and attacks (no autodiff graph unless a tensor asks for one).
pub fn compute_device() -> Device {
    match backend() {
        Backend::Flex => Device::flex(),
        #[cfg(feature = "ndarray")]
        #[allow(deprecated)]
        // burn 0.22 deprecates ndarray in favour of flex; kept to compare
        Backend::NdArray => Device::ndarray(),
        #[cfg(feature = "tch")]
        #[allow(deprecated)]
        Backend::LibTorch => Device::libtorch(),
    }
}

/// The same device with autodiff enabled, for training and for input gradients.
pub fn autodiff_device() -> Device {
    compute_device().autodiff()
}

/// A short human-readable name of the backend, for reports and checkpoint cards
/// ("burn-flex (CPU)").
pub fn backend_name() -> String {
    format!("{} (CPU)", backend_crate())
}

/// The backend's crate name alone ("burn-flex"), for session files' backend field.
pub fn backend_crate() -> &'static str {
    match backend() {
        Backend::Flex => "burn-flex",
        #[cfg(feature = "ndarray")]
        Backend::NdArray => "burn-ndarray",
        #[cfg(feature = "tch")]
        Backend::LibTorch => "burn-tch",
    }
}
