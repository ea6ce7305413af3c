//! The robust MNIST teacher shipped with the program (`--teacher embedded`): small-cnn trained
//! with SAT at ε = 0.3 by this project's own code. Its card, with the command that reproduces
//! it and its measured accuracy, is `assets/teachers/README.md`.

use crate::checkpoint::{self, CheckpointCard};
use crate::error::CheckpointError;
use crate::zoo::Model;
use burn::prelude::*;

/// The word that selects the shipped teacher in place of a checkpoint path.
pub const EMBEDDED: &str = "embedded";

const CARD: &[u8] = include_bytes!("../assets/teachers/small-cnn-sat.ron");
const WEIGHTS: &[u8] = include_bytes!("../assets/teachers/small-cnn-sat.safetensors");

/// The shipped teacher, checked against its card like any checkpoint.
pub fn embedded(device: &Device) -> Result<(Model, CheckpointCard), CheckpointError> {
    checkpoint::load_bytes(CARD, WEIGHTS, "embedded:small-cnn-sat", None, device)
}

/// A teacher on the autodiff device: a checkpoint path, or [`EMBEDDED`] for the shipped one.
pub fn load(path: &std::path::Path) -> anyhow::Result<(Model, CheckpointCard)> {
    use anyhow::Context;
    let device = crate::device::autodiff_device();
    if path.as_os_str() == EMBEDDED {
        Ok(embedded(&device)?)
    } else {
        checkpoint::load(path, None, &device)
            .with_context(|| format!("cannot load the teacher {}", path.display()))
    }
}
