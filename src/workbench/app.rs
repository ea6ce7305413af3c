//! The workbench's front end: keys in, commands out to the engine thread, and the view
//! redrawn from the engine's snapshots at most [`FRAME`] apart.
//!
//! [`App`] holds the key handling and knows nothing of terminals, so tests drive it with
//! key events; [`run`] owns the terminal (raw mode and the alternate screen, restored on
//! exit and on panic) and the event loop.

use super::help_keys;
use super::view::{self, Areas, HistorySearch, Overlay, Panel, UiState};
use crate::lab::command::{self, Command, EngineCommand, UiCommand, Work};
use crate::lab::history::{self, History};
use crate::lab::live::Shared;
use crate::lab::runner::{Job, Runner};
use crate::lab::snapshot::{LogLevel, results};
use anyhow::{Context, Result};
use ratatui::crossterm::event::{
    self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent,
    MouseEventKind,
};
use ratatui::layout::Position;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Sender};
use std::time::{Duration, Instant};

/// The workbench's keys, under the commands in the help window.
const KEYS: &str = "Keys: Tab moves between panels when the prompt is empty (a click does too); \
    ← → select samples in the soft-label and perturbation panels; ↑ ↓ recall history at the \
    prompt and scroll the log (the wheel too); Ctrl-R searches the history; ? help; q quits from \
    a panel, Ctrl-D from an empty prompt; z (from a panel) zooms it to the whole screen; Ctrl-C \
    stops the running work at the next batch; \
    Ctrl-A/E/U/W edit the line.";

/// The shortest time between two redraws (about 10 a second).
pub const FRAME: Duration = Duration::from_millis(100);
/// The engine thread's name; its panics are logged, not fatal.
const ENGINE_THREAD: &str = "engine";

/// The front end's state between keys.
pub struct App {
    pub ui: UiState,
    history: History,
    shared: Arc<Shared>,
    commands: Sender<Job>,
    /// Set when the user has confirmed leaving.
    pub quit: bool,
    /// A history write error is reported once, not on every command.
    history_error_shown: bool,
}

impl App {
    pub fn new(shared: Arc<Shared>, commands: Sender<Job>, history: History) -> App {
        App {
            ui: UiState::default(),
            history,
            shared,
            commands,
            quit: false,
            history_error_shown: false,
        }
    }

    /// Handles one key press.
    pub fn handle_key(&mut self, key: KeyEvent) {
        if key.kind == KeyEventKind::Release {
            return;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && key.code == KeyCode::Char('c') {
            self.ui.search = None;
            self.interrupt();
            return;
        }
        if self.ui.search.is_some() {
            self.search_key(key, ctrl);
            return;
        }
        if ctrl && self.ui.overlay.is_none() {
            self.control_key(key.code);
            return;
        }
        // Alt-chords are not commands; ignore them rather than type their letter.
        if key.modifiers.contains(KeyModifiers::ALT) {
            return;
        }
        match self.ui.overlay.clone() {
            Some(Overlay::Help { .. }) => help_keys::help_key(&mut self.ui, key.code),
            Some(Overlay::ConfirmQuit) => self.confirm_key(key),
            None if self.ui.focus == Panel::Prompt => self.prompt_key(key),
            None => self.panel_key(key),
        }
    }

    /// Ctrl-C: stop the running work, or clear the line when nothing runs.
    fn interrupt(&mut self) {
        if self.shared.busy() {
            self.send_stop();
        } else {
            self.ui.prompt.clear();
            self.ui.cursor = 0;
            self.ui.completions.clear();
            self.ui.hint = Some("  (nothing running; `quit` or q leaves)".into());
        }
    }

    /// Line editing with Ctrl: A/E start/end, U clears, W deletes a word, L redraws; R searches
    /// the history; D on an empty line leaves (asking first if the student is unsaved).
    fn control_key(&mut self, code: KeyCode) {
        self.ui.focus = Panel::Prompt;
        match code {
            KeyCode::Char('r') => {
                self.ui.search = Some(HistorySearch::default());
                self.update_search();
            }
            KeyCode::Char('d') if self.ui.prompt.is_empty() => self.request_quit(),
            KeyCode::Char('a') => self.ui.cursor = 0,
            KeyCode::Char('e') => self.ui.cursor = self.ui.prompt.chars().count(),
            KeyCode::Char('u') => self.set_prompt(String::new()),
            KeyCode::Char('w') => {
                let at = self.byte_index(self.ui.cursor);
                let kept = self.ui.prompt[..at].trim_end();
                let start = kept.rfind(' ').map_or(0, |i| i + 1);
                let line = format!("{}{}", &kept[..start], &self.ui.prompt[at..]);
                self.ui.cursor = kept[..start].chars().count();
                self.ui.prompt = line;
            }
            _ => {}
        }
        self.ui.completions.clear();
        self.update_hint();
    }

    /// Keys while Ctrl-R's search is open: typing narrows it, Ctrl-R goes to an older match,
    /// Enter (or an arrow) takes the match into the prompt, Esc leaves the prompt as it was.
    fn search_key(&mut self, key: KeyEvent, ctrl: bool) {
        let Some(search) = self.ui.search.as_mut() else {
            return;
        };
        match key.code {
            KeyCode::Char('r') if ctrl => {
                search.skip += 1;
                self.update_search();
            }
            KeyCode::Char('g') if ctrl => self.ui.search = None,
            KeyCode::Esc => self.ui.search = None,
            KeyCode::Char(c) if !ctrl => {
                search.query.push(c);
                search.skip = 0;
                self.update_search();
            }
            KeyCode::Backspace => {
                search.query.pop();
                search.skip = 0;
                self.update_search();
            }
            KeyCode::Enter | KeyCode::Left | KeyCode::Right | KeyCode::Up | KeyCode::Down => {
                if let Some(found) = self.ui.search.take().and_then(|s| s.found) {
                    self.set_prompt(found);
                    self.update_hint();
                }
            }
            _ => {}
        }
    }

    /// Finds the match for the search as it stands (keeping the last one when an older match
    /// runs out).
    fn update_search(&mut self) {
        let Some(search) = self.ui.search.as_mut() else {
            return;
        };
        match self.history.search(&search.query, search.skip) {
            Some(found) => search.found = Some(found),
            None if search.skip > 0 => search.skip -= 1,
            None => search.found = None,
        }
    }

    /// A mouse event at a position of the screen laid out as `areas`: a click focuses the panel
    /// under it, the wheel scrolls the log (or the help), and over a sample panel picks the
    /// previous or next test image.
    pub fn handle_mouse(&mut self, event: MouseEvent, areas: Option<&Areas>) {
        let at = Position::new(event.column, event.row);
        let up = match event.kind {
            MouseEventKind::ScrollUp => true,
            MouseEventKind::ScrollDown => false,
            MouseEventKind::Down(MouseButton::Left) => {
                if self.ui.overlay.is_none()
                    && let Some(panel) = areas.and_then(|a| panel_at(a, at))
                {
                    self.ui.focus = panel;
                    self.ui.completions.clear();
                }
                return;
            }
            _ => return,
        };
        if let Some(Overlay::Help { .. }) = self.ui.overlay {
            help_keys::scroll_help(&mut self.ui, if up { -3 } else { 3 });
            return;
        }
        match areas.and_then(|a| panel_at(a, at)) {
            Some(Panel::SoftLabels | Panel::Perturbation) if up => {
                self.send("prev", Work::Engine(EngineCommand::Prev))
            }
            Some(Panel::SoftLabels | Panel::Perturbation) => {
                self.send("next", Work::Engine(EngineCommand::Next))
            }
            _ if up => self.ui.log_scroll += 3,
            _ => self.ui.log_scroll = self.ui.log_scroll.saturating_sub(3),
        }
    }

    fn confirm_key(&mut self, key: KeyEvent) {
        match key.code {
            KeyCode::Char('y') | KeyCode::Char('Y') => self.quit = true,
            _ => self.ui.overlay = None,
        }
    }

    fn panel_key(&mut self, key: KeyEvent) {
        match key.code {
            KeyCode::Tab => self.ui.focus = self.ui.focus.next(),
            KeyCode::BackTab => self.ui.focus = self.ui.focus.previous(),
            // z zooms the focused panel to the whole screen (for a projector); z or Esc returns.
            KeyCode::Char('z') => self.ui.zoomed = !self.ui.zoomed,
            KeyCode::Esc if self.ui.zoomed => self.ui.zoomed = false,
            KeyCode::Esc | KeyCode::Enter => self.ui.focus = Panel::Prompt,
            KeyCode::Char('q') => self.request_quit(),
            KeyCode::Char('?') => self.open_help(),
            KeyCode::Left if self.sample_panel() => {
                self.send("prev", Work::Engine(EngineCommand::Prev))
            }
            KeyCode::Right if self.sample_panel() => {
                self.send("next", Work::Engine(EngineCommand::Next))
            }
            KeyCode::Up if self.ui.focus == Panel::Log => self.ui.log_scroll += 1,
            KeyCode::Down if self.ui.focus == Panel::Log => {
                self.ui.log_scroll = self.ui.log_scroll.saturating_sub(1)
            }
            KeyCode::PageUp if self.ui.focus == Panel::Log => self.ui.log_scroll += 10,
            KeyCode::PageDown if self.ui.focus == Panel::Log => {
                self.ui.log_scroll = self.ui.log_scroll.saturating_sub(10)
            }
            // Typing from a panel goes to the prompt.
            KeyCode::Char(c) => {
                self.ui.focus = Panel::Prompt;
                self.insert(c);
            }
            _ => {}
        }
        if self.ui.focus == Panel::Prompt {
            self.ui.zoomed = false;
        }
    }

    fn sample_panel(&self) -> bool {
        matches!(self.ui.focus, Panel::SoftLabels | Panel::Perturbation)
    }

    fn prompt_key(&mut self, key: KeyEvent) {
        let empty = self.ui.prompt.is_empty();
        if key.code != KeyCode::Tab {
            self.ui.completions.clear();
        }
        match key.code {
            KeyCode::Tab if empty => self.ui.focus = self.ui.focus.next(),
            KeyCode::Tab => self.complete(),
            KeyCode::BackTab => self.ui.focus = self.ui.focus.previous(),
            KeyCode::Char('?') if empty => self.open_help(),
            KeyCode::Char(c) => self.insert(c),
            KeyCode::Enter => self.submit(),
            KeyCode::Backspace if self.ui.cursor > 0 => {
                self.ui.cursor -= 1;
                let at = self.byte_index(self.ui.cursor);
                self.ui.prompt.remove(at);
            }
            KeyCode::Delete if self.ui.cursor < self.ui.prompt.chars().count() => {
                let at = self.byte_index(self.ui.cursor);
                self.ui.prompt.remove(at);
            }
            KeyCode::Left => self.ui.cursor = self.ui.cursor.saturating_sub(1),
            KeyCode::Right => {
                self.ui.cursor = (self.ui.cursor + 1).min(self.ui.prompt.chars().count())
            }
            KeyCode::Home => self.ui.cursor = 0,
            KeyCode::End => self.ui.cursor = self.ui.prompt.chars().count(),
            KeyCode::Up => {
                if let Some(line) = self.history.older(&self.ui.prompt) {
                    self.set_prompt(line);
                }
            }
            KeyCode::Down => {
                if let Some(line) = self.history.newer() {
                    self.set_prompt(line);
                }
            }
            KeyCode::Esc => self.set_prompt(String::new()),
            _ => {}
        }
        self.update_hint();
    }

    fn byte_index(&self, chars: usize) -> usize {
        self.ui
            .prompt
            .char_indices()
            .nth(chars)
            .map_or(self.ui.prompt.len(), |(i, _)| i)
    }

    fn insert(&mut self, c: char) {
        let at = self.byte_index(self.ui.cursor);
        self.ui.prompt.insert(at, c);
        self.ui.cursor += 1;
        self.update_hint();
    }

    fn set_prompt(&mut self, line: String) {
        self.ui.cursor = line.chars().count();
        self.ui.prompt = line;
    }

    /// The greyed hint after the text: the rest of the only matching command name, or the
    /// usage once the command name is typed.
    fn update_hint(&mut self) {
        let line = &self.ui.prompt;
        self.ui.hint = if line.is_empty() {
            None
        } else if !line.contains(' ') {
            match command::complete(line).as_slice() {
                [only] if only != line => Some(only[line.len()..].to_string()),
                _ => command::hint(line),
            }
        } else {
            command::hint(line)
        };
    }

    /// Tab: completes the word before the cursor, or lists the candidates.
    fn complete(&mut self) {
        let at = self.byte_index(self.ui.cursor);
        let before = self.ui.prompt[..at].to_string();
        let after = self.ui.prompt[at..].to_string();
        let candidates = command::complete(&before);
        let word_start = command::word_start(&before);
        let replacement = match candidates.as_slice() {
            [] => return,
            [only] => command::finish_word(only),
            many => {
                self.ui.completions = many.to_vec();
                command::common_prefix(many)
            }
        };
        if replacement.len() < before.len() - word_start {
            return;
        }
        let line = format!("{}{replacement}{after}", &before[..word_start]);
        self.ui.cursor = before[..word_start].chars().count() + replacement.chars().count();
        self.ui.prompt = line;
    }

    fn open_help(&mut self) {
        self.ui.overlay = Some(Overlay::Help {
            text: format!("{}\n{KEYS}", command::help()),
            scroll: 0,
        });
    }

    fn request_quit(&mut self) {
        if self.shared.snapshot().status.unsaved {
            self.ui.overlay = Some(Overlay::ConfirmQuit);
        } else {
            self.quit = true;
        }
    }

    /// Enter: records the line, parses it, and acts or sends it to the engine.
    fn submit(&mut self) {
        let line = self.ui.prompt.trim().to_string();
        self.set_prompt(String::new());
        self.ui.hint = None;
        if line.is_empty() {
            return;
        }
        if let Err(error) = self.history.add(&line)
            && !self.history_error_shown
        {
            self.history_error_shown = true;
            self.shared.log(
                LogLevel::Warning,
                format!("the command history cannot be saved: {error}"),
            );
        }
        self.shared.log(LogLevel::Command, line.clone());
        self.ui.log_scroll = 0;
        match command::parse(&line) {
            Err(error) => self.shared.log(LogLevel::Error, error.to_string()),
            Ok(Command::Ui(UiCommand::Help(None))) => self.open_help(),
            Ok(Command::Ui(UiCommand::Help(Some(name)))) => {
                let text = command::help_for(&name).unwrap_or_default();
                self.shared.log(LogLevel::Info, text);
            }
            Ok(Command::Ui(UiCommand::Results { markdown })) => {
                let board = self.shared.snapshot().results;
                self.shared
                    .log(LogLevel::Info, results::text(&board, markdown));
            }
            Ok(Command::Ui(UiCommand::Quit)) => self.request_quit(),
            Ok(Command::Ui(UiCommand::Stop)) => self.send_stop(),
            Ok(Command::Run(work)) => {
                if self.shared.busy() {
                    self.shared
                        .log(LogLevel::Info, "queued: it runs when the current work ends");
                }
                self.send(&line, work);
            }
        }
    }

    fn send_stop(&mut self) {
        if self.shared.busy() {
            self.shared.cancel.store(true, Ordering::Relaxed);
            self.shared
                .log(LogLevel::Warning, "stopping at the next batch boundary…");
        }
        self.post(Job::Stop);
    }

    fn send(&mut self, line: &str, work: Work) {
        self.post(Job::Run {
            line: line.to_string(),
            work,
        });
    }

    fn post(&mut self, job: Job) {
        self.shared.command_sent();
        if self.commands.send(job).is_err() {
            self.shared.command_done();
            self.shared.log(
                LogLevel::Error,
                "the engine has stopped; save what you can and quit",
            );
        }
    }
}

/// The panel under `at`, if any.
fn panel_at(areas: &Areas, at: Position) -> Option<Panel> {
    [
        (areas.curves, Panel::Curves),
        (areas.soft_labels, Panel::SoftLabels),
        (areas.perturbation, Panel::Perturbation),
        (areas.attacks, Panel::Attacks),
        (areas.log, Panel::Log),
        (areas.prompt, Panel::Prompt),
    ]
    .into_iter()
    .find(|(rect, _)| rect.contains(at))
    .map(|(_, panel)| panel)
}

/// Opens the workbench on the default session (shipped teacher, fresh micro-cnn student,
/// embedded MNIST) and runs it until the user quits.
pub fn run() -> Result<()> {
    let shared = Arc::new(Shared::default());
    let (sender, receiver) = mpsc::channel();
    let (started, start) = mpsc::channel();
    let engine_shared = Arc::clone(&shared);
    // The engine thread issues all the work, so it joins rayon's pool before anything builds
    // it, the other workers kept awake while it lives (`pool::compute_on_this_thread`), then
    // loads the engine: before the screen switches, so a failure prints like any error.
    let worker = std::thread::Builder::new()
        .name(ENGINE_THREAD.into())
        .spawn(move || {
            let _awake_workers = crate::pool::compute_on_this_thread();
            let mut runner = match Runner::new(engine_shared, 0) {
                Ok(runner) => runner,
                Err(error) => {
                    let _ = started.send(Err(error));
                    return;
                }
            };
            let recovery =
                crate::lab::session::journal_path().and_then(|path| runner.start_journal(path));
            let summary = runner.engine().settings_summary();
            if started.send(Ok((summary, recovery))).is_ok() {
                runner.serve(receiver);
            }
        })
        .context("cannot start the engine thread")?;
    let (summary, recovery) = start
        .recv()
        .context("the engine thread stopped while starting")??;
    shared.log(
        LogLevel::Info,
        "Welcome. RSLAD distils the shipped robust teacher into a fresh micro-cnn student.\n\
         `step` trains an epoch, `step batch 5` five batches; `attack pgd`, `show misclassified`;\n\
         `help` or ? lists every command; Tab completes; q (from a panel) or `quit` leaves.",
    );
    shared.log(LogLevel::Info, format!("Settings: {summary}"));
    if let Some(notice) = recovery {
        shared.log(LogLevel::Warning, notice);
    }
    let history = History::open(history::default_path());
    let mut app = App::new(Arc::clone(&shared), sender, history);

    let mut terminal = ratatui::try_init().context("cannot set up the terminal")?;
    install_panic_hook();
    set_mouse_capture(true);
    let result = event_loop(&mut terminal, &mut app, &shared);
    set_mouse_capture(false);
    ratatui::restore();

    // Stop the work in flight; do not wait long for it (one batch of an attack can be slow).
    shared.cancel.store(true, Ordering::Relaxed);
    drop(app);
    let deadline = Instant::now() + Duration::from_secs(3);
    while !worker.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    result
}

/// ratatui's hook restores the terminal on a panic; a panic on the engine thread, or in a
/// piece of its work that a pool thread ran (the engine catches it when it joins), is caught
/// and logged there instead, so it must not tear the screen down. The interface thread is not
/// in the pool.
fn install_panic_hook() {
    let restore_and_report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let engine_work = std::thread::current().name() == Some(ENGINE_THREAD)
            || rayon::current_thread_index().is_some();
        if engine_work {
            return;
        }
        set_mouse_capture(false);
        restore_and_report(info);
    }));
}

/// Clicks and the wheel come to the workbench while it runs (a terminal without mouse
/// reporting ignores the request); the terminal gets them back on exit and on a panic.
fn set_mouse_capture(on: bool) {
    use ratatui::crossterm::event::{DisableMouseCapture, EnableMouseCapture};
    let mut out = std::io::stdout();
    let _ = if on {
        ratatui::crossterm::execute!(out, EnableMouseCapture)
    } else {
        ratatui::crossterm::execute!(out, DisableMouseCapture)
    };
}

fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    app: &mut App,
    shared: &Shared,
) -> Result<()> {
    let mut drawn_version = None;
    let mut dirty = true;
    let mut last_draw = Instant::now() - FRAME;
    while !app.quit {
        if event::poll(Duration::from_millis(25))? {
            // Take every waiting event before drawing, so a burst of keys costs one frame.
            loop {
                match event::read()? {
                    Event::Key(key) => app.handle_key(key),
                    Event::Mouse(mouse) => {
                        let size = terminal.size()?;
                        let areas = view::areas(
                            ratatui::layout::Rect::new(0, 0, size.width, size.height),
                            &shared.snapshot(),
                            &app.ui,
                        );
                        app.handle_mouse(mouse, areas.as_ref());
                    }
                    Event::Paste(text) => text
                        .chars()
                        .filter(|c| !c.is_control())
                        .for_each(|c| app.handle_key(KeyEvent::from(KeyCode::Char(c)))),
                    _ => {}
                }
                dirty = true;
                if app.quit || !event::poll(Duration::ZERO)? {
                    break;
                }
            }
        }
        let version = shared.version();
        if (dirty || drawn_version != Some(version)) && last_draw.elapsed() >= FRAME {
            let snapshot = shared.snapshot();
            terminal.draw(|frame| view::draw(frame, &snapshot, &app.ui))?;
            drawn_version = Some(version);
            dirty = false;
            last_draw = Instant::now();
        }
    }
    Ok(())
}
