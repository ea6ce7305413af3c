//! The interactive workbench: a live terminal UI over the engine.

pub mod snapshot;
pub mod view;
