//! `rslad-tui replay FILE [--execute]`: play a recorded session back in the workbench, or
//! re-run it from its seed and check every result against the recording.

use super::compare::DEFAULT_TOLERANCE;
use super::runner::Runner;
use crate::workbench::live::Shared;
use anyhow::{Result, bail};
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Args, Debug, Clone)]
pub struct ReplayArgs {
    /// The session file (RON).
    pub file: PathBuf,
    /// Re-run every command from the recorded seed and check each result against the
    /// recording, instead of playing it back.
    #[arg(long)]
    pub execute: bool,
    /// How far re-executed numbers (accuracies in %, losses, probabilities) may differ from the
    /// recording; on the machine and backend that recorded it they are bit-identical.
    #[arg(long, default_value_t = DEFAULT_TOLERANCE)]
    pub tolerance: f64,
    /// Re-run only the first N commands (a quick check of a long session).
    #[arg(long)]
    pub limit: Option<usize>,
}

pub fn run(args: &ReplayArgs) -> Result<()> {
    let session = super::load(&args.file)?;
    if !args.execute {
        use std::io::IsTerminal;
        if !std::io::stdout().is_terminal() {
            bail!("playback needs a terminal; use --execute to re-run the session headless");
        }
        return super::playback::run(session);
    }
    if !(args.tolerance >= 0.0 && args.tolerance.is_finite()) {
        bail!("--tolerance must be a number ≥ 0");
    }
    if !crate::device::is_selected() {
        crate::cli::announce_device(crate::device::select(session.device));
    }
    let shared = Arc::new(Shared::default());
    let mut runner = Runner::new(Arc::clone(&shared), session.seed)?;
    // A session from elsewhere reads and writes only beside itself.
    let folder = args
        .file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), PathBuf::from);
    runner.confine_to(&folder);
    runner.set_tolerance(args.tolerance);
    shared.stop_on_ctrl_c();
    println!(
        "re-running {} ({} entries, seed {}, recorded by {} on {})",
        args.file.display(),
        session.entries.len(),
        session.seed,
        session.created_by,
        session.backend
    );
    if session.backend != super::backend_id() {
        println!(
            "this machine is {}: results may differ within the tolerance ({:e})",
            super::backend_id(),
            args.tolerance
        );
    }
    let mark = shared.logged();
    let limit = args.limit.unwrap_or(usize::MAX);
    let report = crate::repl::with_progress(&shared, || runner.replay_first(&session, limit))?;
    for line in shared.log_since(mark) {
        crate::repl::print_log(&line);
    }
    let summary = report.summary(args.tolerance);
    if report.divergence.is_some() {
        bail!("{}: {summary}", args.file.display());
    }
    println!("{summary}");
    Ok(())
}
