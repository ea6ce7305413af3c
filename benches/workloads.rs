//! The `rslad-tui bench` table under `cargo bench --bench workloads`: teacher forward pass, PGD
//! step and RSLAD step on micro-cnn, small-cnn and the shipped teacher, AutoAttack on 20 images
//! and the peak memory of an RSLAD epoch. For the PyTorch comparison and the scaling tables use
//! the binary: `rslad-tui bench --compare` / `--scaling` (docs/performance.md).

use rslad_tui::bench::{BenchArgs, run};

fn main() -> anyhow::Result<()> {
    let mut args = BenchArgs {
        batch: 128,
        seconds: 3.0,
        compare: false,
        python: None,
        autoattack_images: 20,
        only: None,
        model: None,
        scaling: false,
        layers: false,
        memory_probe: false,
    };
    // The memory figure comes from a child process of this same binary (see bench::memory).
    if std::env::args().any(|a| a == "--memory-probe") {
        args.memory_probe = true;
    }
    run(&args)
}
