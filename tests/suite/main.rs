//! The test suite in one binary: one link instead of one per file (the cost that dominated
//! a warm `cargo test`). Two kinds of test keep a process of their own: tests/gpu.rs (the
//! device is chosen once per process) and tests/soak.rs (it measures the process's memory),
//! and tests/lessons.rs, which CI builds a second time for gemm's AVX2 kernels.

#[path = "../common/mod.rs"]
mod common;

mod apgd;
mod architecture;
mod atomic_saves;
mod attacks;
mod autoattack;
mod autoattack_journal;
mod checkpoints;
mod cifar_recipe;
mod cli;
mod data_readers;
mod diagnose;
mod fab;
mod interop;
mod losses;
mod no_overwrite;
mod objectives;
mod pytorch_import;
mod recalibrate;
mod recovery;
mod repl;
mod resume;
mod scale;
mod sessions;
mod square;
mod teacher;
mod teaching_tty;
mod tmux;
mod training;
mod untrusted_files;
mod workbench_app;
mod workbench_commands;
mod workbench_engine;
mod workbench_tty;
mod workbench_view;
mod zoo;
mod zoo_cifar;
