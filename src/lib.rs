//! rslad-tui: a workbench for adversarial robustness distillation.
//!
//! Floors, each importing only those below it (docs/architecture.md): the core (zoo, data,
//! attacks, training, evaluation, checkpoints), typed [`settings`], the shared [`lab`]
//! (commands, engine, snapshots, sessions), the terminal UI ([`workbench`]), and the front
//! ends ([`cli`]: the clap commands, the REPL, replay, compare).

pub mod allocator;
pub mod atomic;
pub mod attack;
pub mod bench;
pub mod bounded_read;
pub mod checkpoint;
pub mod cli;
pub mod conv;
pub mod data;
pub mod device;
pub mod diagnose;
pub mod error;
pub mod eval;
pub mod interop;
pub mod interrupt;
pub mod lab;
pub mod loss;
pub mod pool;
pub mod progress;
pub mod resume;
pub mod rng;
pub mod settings;
pub mod teacher;
pub mod tensor_util;
pub mod text;
pub mod train;
pub mod workbench;
pub mod zoo;
