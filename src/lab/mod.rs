//! What every front end shares: the command language, the engine that runs it, the snapshot
//! the views draw, the session runner that records every command with its results, and the
//! session format. The terminal UI (`workbench`), the REPL and `replay` sit on top of this;
//! nothing here knows a terminal, and nothing below (the core) knows this.

pub mod command;
pub mod engine;
pub mod history;
pub mod journal;
pub mod live;
pub mod runner;
pub mod scope;
pub mod session;
pub mod snapshot;
