//! The one place where the compute device is chosen.
//!
//! Every other module receives a `&Device` and never names a backend, so adding a GPU backend
//! later is a cargo feature plus a branch here.

use burn::tensor::Device;

/// The device for inference and attacks (no autodiff graph unless a tensor asks for one).
pub fn compute_device() -> Device {
    Device::flex()
}

/// The same device with autodiff enabled, for training and for input gradients.
pub fn autodiff_device() -> Device {
    compute_device().autodiff()
}

/// A short human-readable name of the backend, for reports and checkpoint cards.
pub fn backend_name() -> &'static str {
    "burn-flex (CPU)"
}
