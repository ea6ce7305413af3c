//! The interactive workbench: a command language, an engine thread that runs it, and a
//! terminal UI that draws the engine's snapshots.

pub mod app;
pub mod command;
pub mod engine;
pub mod history;
pub mod live;
pub mod snapshot;
pub mod view;
