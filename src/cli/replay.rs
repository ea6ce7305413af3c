//! `rslad-tui replay FILE [--marker N|TITLE] [--execute]`: play a recorded session back in
//! lecture mode (from its title screen, or from a marker), or re-run it from its seed and
//! check every result against the recording.

use crate::lab::live::Shared;
use crate::lab::runner::Runner;
use crate::lab::session;
use crate::lab::snapshot::compare::Tolerances;
use crate::text::scrub;
use crate::workbench::playback;
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
    /// How far re-executed results may differ from the recording, per kind of quantity:
    /// `exact`, `default`, or KIND=VALUE,... overriding the defaults (accuracy=5 points,
    /// loss=0.05 relative to max(1, loss), image-loss=0.1 for one image's loss (the diagnosis's
    /// loss profile), probability=0.05, pixel=0.02 for pixel values and the
    /// size of a perturbation, pixels-reversed=0.03: the share of an adversarial image's pixels
    /// pushed the other way). On the kernels that recorded it the results are bit-identical;
    /// elsewhere floats round differently (docs/replay.md).
    #[arg(long, default_value = "default", value_parser = Tolerances::parse)]
    pub tolerance: Tolerances,
    /// Re-run only the first N commands (a quick check of a long session).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Open the playback at a marker instead of the title screen: its number (1 for the
    /// first) or the start of its title, e.g. `--marker 3` or `--marker "AutoAttack"`.
    #[arg(long, value_name = "N|TITLE", conflicts_with = "execute")]
    pub marker: Option<String>,
}

pub fn run(args: &ReplayArgs) -> Result<()> {
    let session = session::load(&args.file)?;
    if !args.execute {
        use std::io::IsTerminal;
        let name = args.file.file_stem().map_or_else(
            || args.file.display().to_string(),
            |s| s.to_string_lossy().into(),
        );
        let playback = playback::open(session, &name, args.marker.as_deref())?;
        if !std::io::stdout().is_terminal() {
            bail!("playback needs a terminal; use --execute to re-run the session headless");
        }
        return playback::run(playback);
    }
    if !crate::device::is_selected() {
        super::announce_device(crate::device::select(session.device));
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
    runner.set_tolerances(args.tolerance);
    shared.stop_on_ctrl_c();
    // Every string from the file is scrubbed of terminal escapes before it is printed.
    println!(
        "re-running {} ({} entries, seed {}, recorded by {} on {})",
        scrub(&args.file.display().to_string()),
        session.entries.len(),
        session.seed,
        scrub(&session.created_by),
        scrub(&session.backend)
    );
    if session.backend != crate::device::backend_id() {
        println!(
            "this machine is {}: results may differ within the tolerances ({})",
            crate::device::backend_id(),
            args.tolerance
        );
    }
    let mark = shared.logged();
    let limit = args.limit.unwrap_or(usize::MAX);
    let report = super::repl::with_progress(&shared, || runner.replay_first(&session, limit))?;
    for line in shared.log_since(mark) {
        super::repl::print_log(&line);
    }
    let summary = report.summary(&args.tolerance);
    if report.divergence.is_some() {
        bail!("{}: {summary}", args.file.display());
    }
    println!("{}", scrub(&summary));
    Ok(())
}
