//! Peak memory of an RSLAD epoch, measured in a child process so that nothing the parent
//! allocated before counts: the child reads its own high-water mark (VmHWM) from Linux's
//! /proc/self/status.

use super::workload::{ModelChoice, rslad_trainer};
use crate::data::{DataSource, DatasetKind, load};
use crate::progress::Silent;
use crate::zoo::Arch;
use anyhow::{Context, Result, bail};
use std::process::Command;
use std::sync::atomic::AtomicBool;

/// The child's part (`bench --memory-probe`): resident memory after loading, then the peak
/// over one RSLAD epoch of a micro-cnn student on the embedded subset.
pub fn run_probe() -> Result<()> {
    let data = load(DatasetKind::Mnist, &DataSource::Embedded)?;
    let model = ModelChoice::Zoo {
        arch: Arch::MicroCnn,
        width: 1,
    };
    let mut trainer = rslad_trainer(&model, 10, 128)?;
    trainer.config.eval_n = 100;
    let loaded = memory_probe("VmRSS")?;
    let never = AtomicBool::new(false);
    trainer
        .run_epoch(&data, &Silent, &never)
        .context("the epoch did not finish")?;
    println!(
        "after loading {:.1} MiB resident; peak over the epoch ({} training images) {:.1} MiB",
        loaded,
        data.train.len(),
        memory_probe("VmHWM")?
    );
    Ok(())
}

/// A memory figure of this process from /proc/self/status, in MiB.
pub fn memory_probe(field: &str) -> Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status")
        .context("memory figures need Linux's /proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))
        .with_context(|| format!("/proc/self/status has no {field}"))?;
    let kib: f64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("cannot read {line:?}"))?;
    Ok(kib / 1024.0)
}

/// Runs the probe in a child process of this binary and returns what it printed.
pub fn measure_in_child() -> Result<String> {
    let exe = std::env::current_exe().context("cannot find this program's own binary")?;
    let output = Command::new(exe)
        .args(["bench", "--memory-probe"])
        .output()
        .context("cannot start the memory probe")?;
    if !output.status.success() {
        bail!(
            "the memory probe failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}
