//! The robust MNIST teachers shipped with the program. `--teacher embedded` is the TRADES
//! authors' published SmallCNN (the stronger one); `embedded-sat` is the small-cnn this
//! project trained with SAT on the embedded subset, the teacher of the first lessons. Their
//! cards, with provenance, commands and measured accuracy, are `assets/teachers/README.md`.

use crate::checkpoint::{self, CheckpointCard};
use crate::error::CheckpointError;
use crate::zoo::Model;
use burn::prelude::*;

/// The word that selects the default shipped teacher in place of a checkpoint path.
pub const EMBEDDED: &str = "embedded";
/// The project's own SAT teacher, shipped too.
pub const EMBEDDED_SAT: &str = "embedded-sat";
/// Every shipped teacher's name, the default first.
pub const SHIPPED: [&str; 2] = [EMBEDDED, EMBEDDED_SAT];

const TRADES_CARD: &[u8] = include_bytes!("../assets/teachers/small-cnn-trades.ron");
const TRADES_WEIGHTS: &[u8] = include_bytes!("../assets/teachers/small-cnn-trades.safetensors");
const SAT_CARD: &[u8] = include_bytes!("../assets/teachers/small-cnn-sat.ron");
const SAT_WEIGHTS: &[u8] = include_bytes!("../assets/teachers/small-cnn-sat.safetensors");

/// How the shipped teacher `name` was trained, for labels (the imported TRADES model's card
/// records no training of ours).
pub fn shipped_method(name: &str) -> Option<&'static str> {
    match name {
        EMBEDDED => Some("TRADES"),
        EMBEDDED_SAT => Some("SAT"),
        _ => None,
    }
}

/// Whether `name` names a shipped teacher rather than a file.
pub fn is_shipped(name: &str) -> bool {
    SHIPPED.contains(&name)
}

/// The default shipped teacher, checked against its card like any checkpoint.
pub fn embedded(device: &Device) -> Result<(Model, CheckpointCard), CheckpointError> {
    shipped(EMBEDDED, device).expect("the default teacher is shipped")
}

/// The shipped teacher called `name`, or `None` if no shipped teacher has that name.
pub fn shipped(
    name: &str,
    device: &Device,
) -> Option<Result<(Model, CheckpointCard), CheckpointError>> {
    let (card, weights, label) = match name {
        EMBEDDED => (TRADES_CARD, TRADES_WEIGHTS, "embedded:small-cnn-trades"),
        EMBEDDED_SAT => (SAT_CARD, SAT_WEIGHTS, "embedded:small-cnn-sat"),
        _ => return None,
    };
    Some(checkpoint::load_bytes(card, weights, label, None, device))
}

/// The shipped teacher `path` names, else the checkpoint at `path` (required to be `expected`
/// when given), on `device`.
pub fn shipped_or_checkpoint(
    path: &std::path::Path,
    expected: Option<crate::zoo::Arch>,
    device: &Device,
) -> Result<(Model, CheckpointCard), CheckpointError> {
    match path.to_str().and_then(|name| shipped(name, device)) {
        Some(teacher) => teacher,
        None => checkpoint::load(path, expected, device),
    }
}

/// A teacher on the autodiff device: a checkpoint path, or a shipped teacher's name.
pub fn load(path: &std::path::Path) -> anyhow::Result<(Model, CheckpointCard)> {
    use anyhow::Context;
    shipped_or_checkpoint(path, None, &crate::device::autodiff_device())
        .with_context(|| format!("cannot load the teacher {}", path.display()))
}
