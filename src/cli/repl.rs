//! `rslad-tui repl`: the workbench's command language as a plain line-oriented REPL.
//!
//! Interactive (a terminal on standard input): rustyline with the workbench's history file,
//! completion and hints; Ctrl-C cancels the line, or the running work at the next batch;
//! Ctrl-D on an empty line saves unsaved work and quits. Piped (`rslad-tui repl < script`):
//! each line is echoed and run, `#` starts a comment, and the first failed command ends the
//! run with a non-zero exit status. Results print as plain text either way.

use crate::lab::command::{self, Command, EngineCommand, UiCommand, Work};
use crate::lab::history;
use crate::lab::live::Shared;
use crate::lab::runner::Runner;
use crate::lab::session::journal_path;
use crate::lab::snapshot::{LogLevel, LogLine, results};
use crate::text::scrub;
use anyhow::{Result, bail};
use clap::Args;
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{Context, Editor, Helper};
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

#[derive(Args, Debug, Clone)]
pub struct ReplArgs {
    /// Also write the session (commands, markers, results) to this file as it goes.
    #[arg(long)]
    pub record: Option<PathBuf>,
    /// The seed the session starts from.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

pub fn run(args: &ReplArgs) -> Result<()> {
    let shared = Arc::new(Shared::default());
    let mut runner = Runner::new(Arc::clone(&shared), args.seed)?;
    let recovery = match &args.record {
        Some(path) => {
            runner.set_journal(Some(path.clone()));
            None
        }
        None => journal_path().and_then(|path| runner.start_journal(path)),
    };
    let result = if std::io::stdin().is_terminal() {
        interactive(&mut runner, &shared, recovery)
    } else {
        if let Some(notice) = recovery {
            eprintln!("note: {}", scrub(&notice));
        }
        shared.stop_on_ctrl_c();
        piped(&mut runner, &shared)
    };
    let journal = runner.finish();
    if let Some(path) = journal.filter(|_| std::io::stdin().is_terminal()) {
        println!("session journal: {}", path.display());
    }
    result
}

/// Runs commands from standard input, one per line, stopping at the first failure.
fn piped(runner: &mut Runner, shared: &Shared) -> Result<()> {
    let stdin = std::io::stdin();
    for (number, line) in stdin.lock().lines().enumerate() {
        let line = line?;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        println!("> {}", scrub(line));
        match step(runner, shared, line)? {
            Flow::Continue => {}
            Flow::Quit => return Ok(()),
            Flow::Failed(error) => bail!("line {}: `{line}` failed: {error}", number + 1),
        }
    }
    Ok(())
}

fn interactive(runner: &mut Runner, shared: &Arc<Shared>, recovery: Option<String>) -> Result<()> {
    // Tab lists the candidates (as the workbench does) and completes their common prefix.
    let config = rustyline::Config::builder()
        .completion_type(rustyline::CompletionType::List)
        .build();
    let mut editor: Editor<ReplHelper, DefaultHistory> = Editor::with_config(config)?;
    // rustyline takes SIGINT for itself when the editor is made (and keeps it until the editor
    // goes): only a handler installed after it sees Ctrl-C while a command runs, when the
    // terminal is in its normal mode. At the prompt rustyline reads Ctrl-C as a key instead.
    shared.stop_on_ctrl_c();
    editor.set_helper(Some(ReplHelper));
    let history_path = history::default_path();
    if let Some(path) = &history_path {
        let _ = editor.load_history(path);
    }
    println!(
        "rslad-tui REPL: RSLAD from the shipped teacher into a fresh micro-cnn on the embedded \
         MNIST subset.\nSettings: {}\n`help` lists the commands; Tab completes; Ctrl-D saves \
         and quits.",
        runner.engine().settings_summary()
    );
    if let Some(notice) = recovery {
        println!("{}", scrub(&notice));
        if runner.can_recover()
            && confirm(&mut editor, "recover it now? [y/N] ")
            && let Flow::Failed(error) = step(runner, shared, "recover")?
        {
            eprintln!("error: {}", scrub(&error));
        }
    }
    loop {
        match editor.readline("rslad> ") {
            Ok(line) => {
                let line = line.trim().to_string();
                if line.is_empty() {
                    continue;
                }
                let _ = editor.add_history_entry(line.as_str());
                if let Some(path) = &history_path {
                    save_history(&mut editor, path);
                }
                match step(runner, shared, &line)? {
                    Flow::Continue => {}
                    Flow::Failed(error) => eprintln!("error: {}", scrub(&error)),
                    Flow::Quit => {
                        if !shared.snapshot().status.unsaved
                            || confirm(&mut editor, "the student is unsaved; quit anyway? [y/N] ")
                        {
                            return Ok(());
                        }
                    }
                }
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => return save_and_quit(runner, shared),
            Err(error) => return Err(error.into()),
        }
    }
}

fn save_history(editor: &mut Editor<ReplHelper, DefaultHistory>, path: &std::path::Path) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Err(error) = editor.save_history(path) {
        eprintln!("warning: the history cannot be saved: {error}");
    }
}

fn confirm(editor: &mut Editor<ReplHelper, DefaultHistory>, question: &str) -> bool {
    matches!(editor.readline(question), Ok(answer) if answer.trim().eq_ignore_ascii_case("y"))
}

/// Ctrl-D: saves the student if it has unsaved training (under a name no checkpoint has yet:
/// `save` never overwrites an earlier save), then leaves.
fn save_and_quit(runner: &mut Runner, shared: &Shared) -> Result<()> {
    if shared.snapshot().status.unsaved
        && let Flow::Failed(error) = step(runner, shared, "save")?
    {
        eprintln!("error: {}; the student is not saved", scrub(&error));
    }
    Ok(())
}

enum Flow {
    Continue,
    Quit,
    Failed(String),
}

/// Runs one line and prints what it produced; a failure is returned, not printed (the
/// interactive loop prints it, a piped script ends with it).
fn step(runner: &mut Runner, shared: &Shared, line: &str) -> Result<Flow> {
    let command = match command::parse(line) {
        Ok(command) => command,
        Err(error) => return Ok(Flow::Failed(error.to_string())),
    };
    let work = match command {
        Command::Run(work) => work,
        Command::Ui(UiCommand::Quit) => return Ok(Flow::Quit),
        Command::Ui(UiCommand::Help(None)) => {
            print_wrapped(&command::help());
            println!(
                "Ctrl-C stops a running command at the next batch; Ctrl-D saves unsaved work \
                 and quits; ↑↓ recall history; Tab lists and completes."
            );
            return Ok(Flow::Continue);
        }
        Command::Ui(UiCommand::Help(Some(name))) => {
            println!("{}", command::help_for(&name).unwrap_or_default());
            return Ok(Flow::Continue);
        }
        Command::Ui(UiCommand::Results { markdown }) => {
            print!(
                "{}",
                scrub(&results::text(&shared.snapshot().results, markdown))
            );
            return Ok(Flow::Continue);
        }
        Command::Ui(UiCommand::Stop) => {
            println!("nothing is running (Ctrl-C stops a command while it runs)");
            return Ok(Flow::Continue);
        }
    };
    // The commands that choose a sample print it: the panels a terminal UI would show.
    let shows_sample = matches!(
        work,
        Work::Engine(
            EngineCommand::ShowSample(_)
                | EngineCommand::Next
                | EngineCommand::Prev
                | EngineCommand::ShowMisclassified
        )
    );
    let mark = shared.logged();
    let table_before = shared.snapshot().attack;
    // A stop raised at the prompt (a signal from elsewhere) is not this command's.
    shared.cancel.store(false, Ordering::Relaxed);
    let result = with_progress(shared, || runner.run(line, work));
    let stopped = shared.cancel.swap(false, Ordering::Relaxed);
    for entry in shared.log_since(mark) {
        print_log(&entry);
    }
    let after = shared.snapshot();
    if after.attack != table_before
        && let Some(table) = &after.attack
    {
        print!("{}", scrub(&super::plain::attack_table(table)));
    }
    if shows_sample && let Some(view) = &after.sample {
        print!("{}", super::plain::sample(view));
    }
    let _ = std::io::stdout().flush();
    match result {
        Ok(()) if stopped => Ok(Flow::Failed("stopped by Ctrl-C".into())),
        Ok(()) => Ok(Flow::Continue),
        Err(error) => Ok(Flow::Failed(format!("{error:#}"))),
    }
}

/// Runs `work` while a thread shows what the engine is doing on standard error (only when it
/// is a terminal): the work under way, its pace, and this command's time. Keys typed
/// meanwhile are not echoed into that line (they wait for the next prompt); the line is
/// cleared at the end.
pub(crate) fn with_progress<T>(shared: &Shared, work: impl FnOnce() -> T) -> T {
    if !std::io::stderr().is_terminal() {
        return work();
    }
    let _quiet = EchoOff::new();
    let started = std::time::Instant::now();
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut shown = false;
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(200));
                if let Some(busy) = shared.snapshot().status.busy {
                    eprint!(
                        "\r\x1b[K  {busy}  ({})",
                        crate::lab::live::duration(started.elapsed().as_secs_f64())
                    );
                    shown = true;
                }
            }
            if shown {
                eprint!("\r\x1b[K");
            }
        });
        let result = work();
        done.store(true, Ordering::Relaxed);
        result
    })
}

/// Turns the terminal's echo off (standard input a terminal, Unix) until dropped; Ctrl-C
/// still sends its signal.
struct EchoOff {
    #[cfg(unix)]
    saved: Option<libc::termios>,
}

impl EchoOff {
    fn new() -> EchoOff {
        #[cfg(unix)]
        {
            if !std::io::stdin().is_terminal() {
                return EchoOff { saved: None };
            }
            // SAFETY: tcgetattr fills the struct it is given; tcsetattr reads one.
            unsafe {
                let mut termios: libc::termios = std::mem::zeroed();
                if libc::tcgetattr(libc::STDIN_FILENO, &mut termios) != 0 {
                    return EchoOff { saved: None };
                }
                let saved = termios;
                termios.c_lflag &= !libc::ECHO;
                libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &termios);
                EchoOff { saved: Some(saved) }
            }
        }
        #[cfg(not(unix))]
        EchoOff {}
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(saved) = &self.saved {
            // SAFETY: restores the settings read in `new`.
            unsafe {
                libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, saved);
            }
        }
    }
}

/// The terminal's width, or 100 columns when output is not a terminal.
fn terminal_width() -> usize {
    if std::io::stdout().is_terminal()
        && let Ok((width, _)) = ratatui::crossterm::terminal::size()
    {
        return usize::from(width).max(20);
    }
    100
}

/// Text wrapped at word boundaries to the terminal's width.
fn print_wrapped(text: &str) {
    let width = terminal_width();
    for line in text.lines() {
        for row in crate::text::wrap_table_row(line, width) {
            println!("{row}");
        }
    }
}

pub(crate) fn print_log(line: &LogLine) {
    match line.level {
        LogLevel::Info | LogLevel::Command => println!("{}", scrub(&line.text)),
        LogLevel::Warning => println!("warning: {}", scrub(&line.text)),
        // Errors are printed once, from the command's result.
        LogLevel::Error => {}
    }
}

/// Completion and hints from the command table.
struct ReplHelper;

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        let start = command::word_start(before);
        let candidates = command::complete(before);
        let unique = candidates.len() == 1;
        let pairs = candidates
            .into_iter()
            .map(|c| Pair {
                replacement: if unique {
                    command::finish_word(&c)
                } else {
                    c.clone()
                },
                display: c,
            })
            .collect();
        Ok((start, pairs))
    }
}

impl Hinter for ReplHelper {
    type Hint = String;

    fn hint(&self, line: &str, pos: usize, _: &Context<'_>) -> Option<String> {
        (pos == line.len()).then(|| command::hint(line)).flatten()
    }
}

impl Highlighter for ReplHelper {}
impl Validator for ReplHelper {}
impl Helper for ReplHelper {}
