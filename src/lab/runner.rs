//! The session runner: the engine plus the session being recorded. Every front end (the
//! workbench's engine thread, the REPL, `replay --execute`) runs commands through it, so each
//! command is recorded with its results, appended to the journal after each one, and the
//! session commands (`save session`, `load session`, `mark`) work the same everywhere.

use super::command::{self, Command, EngineCommand, SessionCommand, Work};
use super::engine::{DIAGNOSE_N, Engine, default_settings};
use super::journal::Journal;
use super::live::Shared;
use super::scope::FileScope;
use super::session::{self, Entry, FileRef, Outcome, Session};
use super::snapshot::compare::{self, Comparison, Tolerances};
use super::snapshot::{LogLevel, SampleView};
use crate::checkpoint;
use crate::text::count;
use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::Instant;

/// What a front end sends the engine thread.
#[derive(Clone, Debug, PartialEq)]
pub enum Job {
    /// A line as typed, and the work it parsed to.
    Run { line: String, work: Work },
    /// The front end raised the cancel flag: lower it once the work in flight has stopped, so
    /// the next command runs (the commands queued before this one are skipped).
    Stop,
}

pub struct Runner {
    engine: Engine,
    shared: Arc<Shared>,
    session: Session,
    started: Instant,
    /// Appended to after every command, so a crash loses at most the command in flight.
    journal: Option<Journal>,
    /// Whether the journal is the autosave (moved aside at a clean exit) rather than a
    /// recording the user asked for (kept).
    autosave: bool,
    /// The journal an earlier run left unfinished, for `recover`.
    unfinished: Option<PathBuf>,
    /// Where `save session NAME` and `load session NAME` look.
    sessions_dir: PathBuf,
    /// How far re-executed results may differ from a loaded session's recording.
    tolerances: Tolerances,
    /// The sample view recorded last, so an unchanged one is not stored again.
    last_sample: Option<SampleView>,
}

/// How a re-executed session compared with its recording.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReplayReport {
    pub commands: usize,
    pub markers: usize,
    /// The largest raw difference over every compared number (0: bit-identical).
    pub max_difference: f64,
    /// (entry index, the line, what differed) of the first divergence. A replay goes on after
    /// it (so the tallies cover the whole session) unless the session cannot be followed: other
    /// starting settings, a changed input file, or a stop.
    pub divergence: Option<(usize, String, String)>,
    /// Commands with at least one value beyond its tolerance.
    pub differing_commands: usize,
    /// Every compared field over the whole replay.
    pub comparison: Comparison,
}

impl ReplayReport {
    pub fn summary(&self, tolerances: &Tolerances) -> String {
        let mut text = self.verdict(tolerances);
        for note in &self.comparison.notes {
            text += &format!("\n  note: {note}");
        }
        text
    }

    /// The summary's first lines: where it diverged and what, or how close it came.
    fn verdict(&self, tolerances: &Tolerances) -> String {
        match &self.divergence {
            Some((i, line, what)) => {
                let mut text = format!("diverged at entry {} (`{line}`): {what}", i + 1);
                if self.commands > 0 {
                    text += &format!(
                        "\n{} of {} differ beyond the tolerances ({tolerances})",
                        self.differing_commands,
                        count(self.commands, "command", "commands")
                    );
                }
                for line in self.comparison.mismatch_lines() {
                    text += &format!("\n  {line}");
                }
                text
            }
            None if self.max_difference == 0.0 => format!(
                "{} and {} re-ran: every result bit-identical to the recording",
                count(self.commands, "command", "commands"),
                count(self.markers, "marker", "markers")
            ),
            None => {
                let largest: Vec<String> = self
                    .comparison
                    .max_by_kind()
                    .into_iter()
                    .filter(|(kind, _)| *kind != compare::Kind::Exact)
                    .map(|(kind, max)| format!("{} {}", kind.name(), compare::short(max)))
                    .collect();
                format!(
                    "{} and {} re-ran: every result within the tolerances ({tolerances}); \
                     largest differences: {}",
                    count(self.commands, "command", "commands"),
                    count(self.markers, "marker", "markers"),
                    largest.join(", ")
                )
            }
        }
    }
}

impl Runner {
    /// The workbench's default session (shipped teacher, fresh micro-cnn, RSLAD, embedded
    /// MNIST) with `seed`.
    pub fn new(shared: Arc<Shared>, seed: u64) -> Result<Runner> {
        let engine = default_engine(&shared, seed)?;
        let mut session = Session::new(seed);
        session.settings = engine.settings_summary();
        Ok(Runner {
            engine,
            shared,
            session,
            started: Instant::now(),
            journal: None,
            autosave: false,
            unfinished: None,
            sessions_dir: PathBuf::from("sessions"),
            tolerances: Tolerances::default(),
            last_sample: None,
        })
    }

    /// Keeps the session in `path` as it grows, after every command (a recording the user
    /// asked for: kept at exit).
    pub fn set_journal(&mut self, path: Option<PathBuf>) {
        self.journal = path.map(Journal::new);
        self.autosave = false;
    }

    /// Autosaves to the journal at `path`. A journal already there means an earlier run did
    /// not end cleanly: it is moved to `journal-unfinished.ron` for `recover`, and a line
    /// describing it is returned for the front end to show.
    pub fn start_journal(&mut self, path: PathBuf) -> Option<String> {
        let notice = if path.exists() {
            let unfinished = path.with_file_name("journal-unfinished.ron");
            match std::fs::rename(&path, &unfinished) {
                Ok(()) => {
                    let described = match session::load(&unfinished) {
                        Ok(session) => {
                            let commands = session
                                .entries
                                .iter()
                                .filter(|e| matches!(e, Entry::Command { .. }))
                                .count();
                            let last = session.entries.iter().rev().find_map(|e| match e {
                                Entry::Command { line, .. } => Some(line.clone()),
                                Entry::Mark { .. } => None,
                            });
                            format!(
                                "The last session did not end cleanly ({}{}). `recover` re-runs \
                                 it (the command in flight then is lost); anything else starts \
                                 afresh.",
                                count(commands, "command", "commands"),
                                last.map_or(String::new(), |l| format!(", the last `{l}`"))
                            )
                        }
                        Err(e) => format!(
                            "The last session did not end cleanly, but its journal cannot be read \
                             ({e}); it is kept at {}.",
                            unfinished.display()
                        ),
                    };
                    self.unfinished = Some(unfinished);
                    Some(described)
                }
                Err(e) => Some(format!(
                    "An unfinished journal at {} cannot be moved aside ({e}); it will be \
                     overwritten.",
                    path.display()
                )),
            }
        } else {
            None
        };
        self.journal = Some(Journal::new(path));
        self.autosave = true;
        notice
    }

    /// A clean exit: the autosaved journal is moved to `journal-last.ron` (so the next start
    /// finds nothing unfinished, and the session can still be saved from there). Returns where
    /// the session's journal is now, if it was autosaved.
    pub fn finish(&mut self) -> Option<PathBuf> {
        if self.autosave
            && let Some(journal) = self.journal.take()
        {
            let path = journal.path();
            let last = path.with_file_name("journal-last.ron");
            return std::fs::rename(path, &last).is_ok().then_some(last);
        }
        None
    }

    /// Whether an unfinished session can be recovered.
    pub fn can_recover(&self) -> bool {
        self.unfinished.is_some()
    }

    /// Where `save session NAME` and `load session NAME` look (default `sessions`).
    pub fn set_sessions_dir(&mut self, folder: &Path) {
        self.sessions_dir = folder.to_path_buf();
    }

    /// Confines every file path to `folder` (for sessions from elsewhere): checkpoints and
    /// sessions are read and written there only, judged by where paths resolve.
    pub fn confine_to(&mut self, folder: &Path) {
        self.engine.set_scope(FileScope::confined_to(folder));
        self.sessions_dir = folder.to_path_buf();
    }

    pub fn set_tolerances(&mut self, tolerances: Tolerances) {
        self.tolerances = tolerances;
    }

    pub fn session(&self) -> &Session {
        &self.session
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Parses and runs one line (scripts and tests); help, quit and stop are a front end's.
    pub fn run_line(&mut self, line: &str) -> Result<()> {
        match command::parse(line)? {
            Command::Run(work) => self.run(line, work),
            Command::Ui(_) => bail!("`{line}` is for a front end (help, quit, stop)"),
        }
    }

    /// Runs one command and records it with its results.
    pub fn run(&mut self, line: &str, work: Work) -> Result<()> {
        let result = match work {
            Work::Engine(command) => self.execute_and_record(line, command).1,
            Work::Session(SessionCommand::Mark { title, note }) => {
                self.mark(title, note);
                Ok(())
            }
            Work::Session(SessionCommand::Title { title, intro }) => {
                self.shared
                    .log(LogLevel::Info, format!("session title: {title}"));
                self.session.title = title;
                self.session.intro = intro;
                Ok(())
            }
            Work::Session(SessionCommand::SaveSession { name, overwrite }) => {
                self.save_session(&name, overwrite)
            }
            Work::Session(SessionCommand::LoadSession(name)) => self.load_session(&name),
            Work::Session(SessionCommand::Recover) => self.recover(),
        };
        self.write_journal();
        result
    }

    /// Runs commands from the front end until it hangs up; errors go to the log.
    pub fn serve(mut self, jobs: Receiver<Job>) {
        use std::sync::atomic::Ordering;
        while let Ok(job) = jobs.recv() {
            match job {
                Job::Stop => {
                    let stopped = self.shared.cancelled();
                    self.shared.cancel.store(false, Ordering::Relaxed);
                    if !stopped {
                        self.shared.log(LogLevel::Info, "nothing was running");
                    }
                }
                Job::Run { line, .. } if self.shared.cancelled() => {
                    self.shared
                        .log(LogLevel::Warning, format!("skipped `{line}`: stopped"));
                }
                Job::Run { line, work } => {
                    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        self.run(&line, work)
                    }));
                    match outcome {
                        Ok(Ok(())) => {}
                        Ok(Err(error)) => self.shared.log(LogLevel::Error, format!("{error:#}")),
                        Err(payload) => self.shared.log(
                            LogLevel::Error,
                            format!(
                                "internal error in `{line}`: {}; the student may be \
                                 inconsistent: `save` it under a new name or `reset`",
                                panic_message(&payload)
                            ),
                        ),
                    }
                }
            }
            self.shared.command_done();
        }
        self.finish();
    }

    fn at(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    fn mark(&mut self, title: String, note: String) {
        let text = if note.is_empty() {
            format!("■ {title}")
        } else {
            format!("■ {title}: {note}")
        };
        self.shared.log(LogLevel::Info, text);
        self.session.entries.push(Entry::Mark {
            title,
            note,
            at: self.at(),
        });
    }

    /// Runs an engine command and records it; returns the outcome and the result.
    fn execute_and_record(&mut self, line: &str, command: EngineCommand) -> (Outcome, Result<()>) {
        let mark = self.shared.logged();
        let files_read = self.files_read(&command);
        let file_written = match &command {
            EngineCommand::Save { path, .. } => Some(path.clone()),
            _ => None,
        };
        let result = self.engine.execute(command);
        let mut snapshot = self.shared.snapshot();
        snapshot.log.clear();
        // The board is rebuilt from each command's newest table, never recorded.
        snapshot.results.clear();
        let sample_unchanged = snapshot.sample.is_some() && snapshot.sample == self.last_sample;
        if sample_unchanged {
            snapshot.sample = None;
        } else {
            self.last_sample = snapshot.sample.clone();
        }
        let mut files = Vec::new();
        if result.is_ok() {
            files.extend(files_read);
            if let Some(path) = file_written
                .and_then(|path| path.or_else(|| self.engine.last_saved().map(str::to_string)))
                && let Some(file) = self.file_ref(&path)
            {
                files.push(file);
            }
        }
        let outcome = Outcome {
            error: result.as_ref().err().map(|e| format!("{e:#}")),
            log: self.shared.log_since(mark),
            snapshot,
            sample_unchanged,
            files,
        };
        self.session.entries.push(Entry::Command {
            line: line.to_string(),
            at: self.at(),
            outcome: Box::new(outcome.clone()),
        });
        (outcome, result)
    }

    /// The weight files a command reads, hashed before it runs.
    fn files_read(&self, command: &EngineCommand) -> Vec<FileRef> {
        let path = match command {
            EngineCommand::Load(path) => path,
            EngineCommand::Teacher(path) if !crate::teacher::is_shipped(path) && path != "none" => {
                path
            }
            _ => return Vec::new(),
        };
        self.file_ref(path).into_iter().collect()
    }

    fn file_ref(&self, path: &str) -> Option<FileRef> {
        let resolved = self.engine.scope().resolve_checkpoint(path).ok()?;
        let (weights, _) = checkpoint::paths(&resolved);
        let bytes = read_weights(&weights)?;
        Some(FileRef {
            path: path.to_string(),
            sha256: format!("{:x}", Sha256::digest(&bytes)),
        })
    }

    fn write_journal(&mut self) {
        let Some(journal) = &mut self.journal else {
            return;
        };
        if let Err(error) = journal.write(&self.session) {
            self.shared.log(
                LogLevel::Warning,
                format!("the session journal cannot be written ({error}); nothing else is lost"),
            );
            self.journal = None;
        }
    }

    fn save_session(&mut self, name: &str, overwrite: bool) -> Result<()> {
        let path = session::named_path(&self.sessions_dir, name);
        if std::fs::symlink_metadata(&path).is_ok() {
            if !overwrite {
                bail!(
                    "{} already exists: choose another name, or `save session {name} \
                     --overwrite` to replace it",
                    path.display()
                );
            }
            // Only a session is replaced, never another kind of file under its name.
            if session::load(&path).is_err() {
                bail!(
                    "{} already exists and is not a session; choose another name",
                    path.display()
                );
            }
        }
        session::save(&self.session, &path)?;
        self.shared.log(
            LogLevel::Info,
            format!(
                "session saved: {} ({} entries)",
                path.display(),
                self.session.entries.len()
            ),
        );
        Ok(())
    }

    fn recover(&mut self) -> Result<()> {
        let Some(path) = self.unfinished.clone() else {
            bail!("there is no unfinished session to recover");
        };
        let session = session::load(&path)?;
        let report = self.replay(&session)?;
        let summary = report.summary(&self.tolerances);
        if report.divergence.is_some() {
            bail!("recovery {summary}");
        }
        self.unfinished = None;
        self.shared
            .log(LogLevel::Info, format!("recovered: {summary}"));
        Ok(())
    }

    /// Starts over from the session's seed and re-runs its commands, checking each result.
    /// The session may come from anyone: while it runs, its commands read and write only in
    /// its own folder (as `replay --execute`); the user's own scope is back afterwards.
    fn load_session(&mut self, name: &str) -> Result<()> {
        let path = session::named_path(&self.sessions_dir, name);
        let session = session::load(&path)?;
        let own_scope = self.engine.scope().clone();
        self.engine
            .set_scope(FileScope::confined_to(&self.sessions_dir));
        let report = self.replay(&session);
        self.engine.set_scope(own_scope);
        let report = report?;
        let summary = report.summary(&self.tolerances);
        if report.divergence.is_some() {
            bail!("session {name}: {summary}");
        }
        self.shared
            .log(LogLevel::Info, format!("session {name}: {summary}"));
        Ok(())
    }

    /// Replaces the state with the default session at `recorded.seed`, then re-runs every
    /// command of `recorded`, comparing results; stops at the first divergence.
    pub fn replay(&mut self, recorded: &Session) -> Result<ReplayReport> {
        self.replay_first(recorded, usize::MAX)
    }

    /// [`Runner::replay`] of the first `limit` commands only (markers do not count).
    pub fn replay_first(&mut self, recorded: &Session, limit: usize) -> Result<ReplayReport> {
        let scope = self.engine.scope().clone();
        self.shared.start_over();
        self.engine = default_engine(&self.shared, recorded.seed)?;
        self.engine.set_scope(scope);
        self.session = Session::new(recorded.seed);
        if let Some(journal) = &mut self.journal {
            journal.restart();
        }
        self.session.settings = self.engine.settings_summary();
        self.session.title = recorded.title.clone();
        self.session.intro = recorded.intro.clone();
        self.started = Instant::now();
        self.last_sample = None;
        let mut report = ReplayReport::default();
        if !recorded.settings.is_empty() && recorded.settings != self.session.settings {
            report.divergence = Some((
                0,
                String::new(),
                format!(
                    "the session starts from `{}` but this program's default is `{}`",
                    recorded.settings, self.session.settings
                ),
            ));
            return Ok(report);
        }
        let mut seen_notes = std::collections::HashSet::new();
        for (i, entry) in recorded.entries.iter().enumerate() {
            if report.commands >= limit {
                break;
            }
            match entry {
                Entry::Mark { title, note, .. } => {
                    self.mark(title.clone(), note.clone());
                    report.markers += 1;
                }
                Entry::Command { line, outcome, .. } => {
                    if let Some(what) = self.changed_input(outcome) {
                        report.divergence = Some((i, line.clone(), what));
                        break;
                    }
                    let command = match command::parse(line) {
                        // A nested load would start over; saving is the replayer's choice; a
                        // mark is its own entry; help, quit and stop were a front end's.
                        Ok(Command::Run(Work::Session(_)) | Command::Ui(_)) => continue,
                        Ok(Command::Run(Work::Engine(command))) => command,
                        Err(e) => {
                            report
                                .divergence
                                .get_or_insert((i, line.clone(), e.to_string()));
                            continue;
                        }
                    };
                    if matches!(command, EngineCommand::Save { .. }) {
                        self.accept_recorded_outputs(outcome);
                    }
                    let command = with_recorded_profile_image(command, outcome);
                    let (got, _) = self.execute_and_record(line, command);
                    report.commands += 1;
                    let mut comparison = compare::compare(outcome, &got, &self.tolerances);
                    // A table or diagnosis stays in every later snapshot, and so would its
                    // note: each is kept once, at the entry that first raised it (a note
                    // names its table or image, so two tables' notes stay apart).
                    comparison
                        .notes
                        .retain(|note| seen_notes.insert(note.clone()));
                    for note in &mut comparison.notes {
                        *note = format!("entry {} (`{line}`): {note}", i + 1);
                    }
                    report.max_difference = report.max_difference.max(comparison.max_difference);
                    if let Some(what) = &comparison.divergence {
                        report.differing_commands += 1;
                        report.divergence.get_or_insert((
                            i,
                            line.clone(),
                            with_new_error(what, outcome, &got),
                        ));
                    }
                    report.comparison.merge(comparison);
                }
            }
            if self.shared.cancelled() {
                report.divergence = Some((i, String::new(), "stopped by the user".into()));
                break;
            }
        }
        self.write_journal();
        Ok(report)
    }

    /// A weight file the recording read that is not the same file now.
    fn changed_input(&self, recorded: &Outcome) -> Option<String> {
        for file in &recorded.files {
            let resolved = match self.engine.scope().resolve_checkpoint(&file.path) {
                Ok(resolved) => resolved,
                Err(refused) => return Some(refused.to_string()),
            };
            let (weights, _) = checkpoint::paths(&resolved);
            let Some(bytes) = read_weights(&weights) else {
                continue; // written by this command (save), not read
            };
            let now = format!("{:x}", Sha256::digest(&bytes));
            if now != file.sha256 && !self.written_by_session(&file.path) {
                return Some(format!(
                    "{} changed since the recording (SHA-256 {}… now, {}… recorded)",
                    file.path,
                    prefix(&now, 12),
                    prefix(&file.sha256, 12)
                ));
            }
        }
        None
    }

    /// Before a replayed `save`: a checkpoint already holding what the recording saved there
    /// (the same weights, by hash; typically an earlier replay's or the recording's own) may be
    /// written again. Anything else there stays refused.
    fn accept_recorded_outputs(&mut self, recorded: &Outcome) {
        for file in &recorded.files {
            let Ok(resolved) = self.engine.scope().resolve_checkpoint(&file.path) else {
                continue;
            };
            let (weights, _) = checkpoint::paths(&resolved);
            let same = read_weights(&weights)
                .is_some_and(|bytes| format!("{:x}", Sha256::digest(&bytes)) == file.sha256);
            if same && checkpoint::occupant(&resolved) == checkpoint::Occupant::Checkpoint {
                self.engine.accept_recorded_output(resolved);
            }
        }
    }

    /// Whether this replay has already saved `path` (so its contents are this run's own).
    fn written_by_session(&self, path: &str) -> bool {
        self.session.entries.iter().any(|e| match e {
            Entry::Command { line, .. } => matches!(
                command::parse(line),
                Ok(Command::Run(Work::Engine(EngineCommand::Save { path: Some(saved), .. })))
                    if saved == path
            ),
            Entry::Mark { .. } => false,
        })
    }
}

fn default_engine(shared: &Arc<Shared>, seed: u64) -> Result<Engine> {
    let mut settings = default_settings();
    settings.seed = seed;
    Engine::new(Arc::clone(shared), settings, Some(crate::teacher::EMBEDDED))
        .context("cannot open the default session")
}

/// A divergence, with the error of a command that failed now but not in the recording (a
/// refused path says why there).
fn with_new_error(what: &str, recorded: &Outcome, got: &Outcome) -> String {
    match (&recorded.error, &got.error) {
        (None, Some(error)) => format!("{what}; it failed: {error}"),
        _ => what.to_string(),
    }
}

/// The bytes of a weights file a command reads, as bounded as the checkpoint reader's (None:
/// absent or unreadable, which the command itself then reports).
fn read_weights(path: &Path) -> Option<Vec<u8>> {
    crate::bounded_read::read(path, crate::bounded_read::WEIGHTS).ok()
}

/// The first `chars` characters of `text` (a hash from a file may hold any characters, and
/// cutting at a byte index could split one).
fn prefix(text: &str, chars: usize) -> &str {
    text.char_indices()
        .nth(chars)
        .map_or(text, |(end, _)| &text[..end])
}

fn panic_message(payload: &Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// A replayed `diagnose` that chose its loss profile's image (the correctly classified one with
/// the highest loss) draws it around the recorded image instead: kernels that round otherwise
/// may rank a near tie, or an image at the boundary, the other way, and profiles around two
/// images cannot be compared. The comparison notes where the rankings differ. Only a
/// diagnosis of as many images as the command asks for is taken: after a `diagnose` that was
/// stopped the snapshot still holds an earlier one, perhaps of more images.
fn with_recorded_profile_image(command: EngineCommand, recorded: &Outcome) -> EngineCommand {
    match command {
        EngineCommand::Diagnose { n, image: None } if recorded.error.is_none() => {
            let asked = n.unwrap_or(DIAGNOSE_N);
            let image = recorded
                .snapshot
                .diagnosis
                .as_ref()
                .filter(|d| d.images == asked)
                .and_then(|d| d.image)
                .filter(|&image| image < asked);
            EngineCommand::Diagnose { n, image }
        }
        other => other,
    }
}
