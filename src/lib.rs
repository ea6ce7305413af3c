//! rslad-tui: a workbench for adversarial robustness distillation.
//!
//! The engine (zoo, data, attacks, training, evaluation) knows nothing about terminals; front
//! ends (the CLI, the workbench, the REPL, session replays) talk to it with plain data.

pub mod atomic;
pub mod attack;
pub mod bench;
pub mod checkpoint;
pub mod cli;
pub mod compare;
pub mod conv;
pub mod data;
pub mod device;
pub mod error;
pub mod eval;
pub mod interop;
pub mod interrupt;
pub mod loss;
pub mod progress;
pub mod repl;
pub mod rng;
pub mod session;
pub mod teacher;
pub mod tensor_util;
pub mod train;
pub mod workbench;
pub mod zoo;
