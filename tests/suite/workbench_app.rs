//! The workbench's key handling, driven with key events and no terminal: focus, editing,
//! completion, history, help, quitting and stopping.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use rslad_tui::lab::command::{EngineCommand, Work};
use rslad_tui::lab::history::History;
use rslad_tui::lab::live::Shared;
use rslad_tui::lab::runner::Job;
use rslad_tui::lab::snapshot::LogLevel;
use rslad_tui::workbench::app::App;
use rslad_tui::workbench::view::{Overlay, Panel};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver};

fn app_with(history: History) -> (App, Arc<Shared>, Receiver<Job>) {
    let shared = Arc::new(Shared::default());
    let (sender, receiver) = mpsc::channel();
    (
        App::new(Arc::clone(&shared), sender, history),
        shared,
        receiver,
    )
}

fn app() -> (App, Arc<Shared>, Receiver<Job>) {
    app_with(History::open(None))
}

/// The next job sent, if any.
fn sent(jobs: &Receiver<Job>) -> Option<Job> {
    jobs.try_recv().ok()
}

/// A job running an engine command, as the key or line that sent it.
fn engine_job(line: &str, command: EngineCommand) -> Option<Job> {
    Some(Job::Run {
        line: line.to_string(),
        work: Work::Engine(command),
    })
}

fn key(app: &mut App, code: KeyCode) {
    app.handle_key(KeyEvent::from(code));
}

fn ctrl(app: &mut App, c: char) {
    app.handle_key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL));
}

fn type_text(app: &mut App, text: &str) {
    text.chars().for_each(|c| key(app, KeyCode::Char(c)));
}

#[test]
fn tab_moves_focus_when_the_prompt_is_empty_and_completes_otherwise() {
    let (mut app, _, _) = app();
    assert_eq!(app.ui.focus, Panel::Prompt);
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.ui.focus, Panel::Curves);
    key(&mut app, KeyCode::BackTab);
    assert_eq!(app.ui.focus, Panel::Prompt);
    type_text(&mut app, "ste");
    assert_eq!(
        app.ui.hint.as_deref(),
        Some("p"),
        "the rest of the only match"
    );
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.ui.prompt, "step ");
    assert_eq!(app.ui.focus, Panel::Prompt);
    assert!(
        app.ui.hint.as_deref().unwrap().contains("step batch"),
        "usage hint"
    );
    key(&mut app, KeyCode::Esc);
    type_text(&mut app, "s");
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.ui.completions.len(), 6, "{:?}", app.ui.completions);
    type_text(&mut app, "tu");
    assert!(app.ui.completions.is_empty());
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.ui.prompt, "student ");
}

#[test]
fn enter_sends_commands_and_explains_bad_ones() {
    let (mut app, shared, commands) = app();
    type_text(&mut app, "step batch 2");
    key(&mut app, KeyCode::Enter);
    assert_eq!(
        sent(&commands),
        engine_job("step batch 2", EngineCommand::StepBatches { batches: 2 })
    );
    assert!(shared.busy());
    assert_eq!(app.ui.prompt, "");
    type_text(&mut app, "step zero");
    key(&mut app, KeyCode::Enter);
    assert!(commands.try_recv().is_err(), "nothing sent for a bad line");
    let log = shared.snapshot().log;
    let error = log.iter().find(|l| l.level == LogLevel::Error).unwrap();
    assert!(error.text.contains("usage: step [N]"), "{}", error.text);
    assert!(
        log.iter()
            .any(|l| l.level == LogLevel::Command && l.text == "step zero")
    );
}

#[test]
fn ctrl_c_stops_running_work_and_otherwise_clears_the_line() {
    let (mut app, shared, commands) = app();
    type_text(&mut app, "half typed");
    ctrl(&mut app, 'c');
    assert_eq!(app.ui.prompt, "");
    assert!(!shared.cancel.load(Ordering::Relaxed));
    assert!(commands.try_recv().is_err());
    type_text(&mut app, "step 5");
    key(&mut app, KeyCode::Enter);
    commands.try_recv().unwrap();
    ctrl(&mut app, 'c');
    assert!(
        shared.cancel.load(Ordering::Relaxed),
        "the engine is asked to stop"
    );
    assert_eq!(sent(&commands), Some(Job::Stop));
    assert!(!app.quit, "Ctrl-C never quits");
}

#[test]
fn quitting_asks_first_when_the_student_is_unsaved() {
    let (mut app, shared, _) = app();
    shared.update(|s| s.status.unsaved = true);
    type_text(&mut app, "quit");
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.ui.overlay, Some(Overlay::ConfirmQuit));
    key(&mut app, KeyCode::Char('n'));
    assert_eq!(app.ui.overlay, None);
    assert!(!app.quit);
    key(&mut app, KeyCode::Tab); // to a panel, where q quits
    key(&mut app, KeyCode::Char('q'));
    assert_eq!(app.ui.overlay, Some(Overlay::ConfirmQuit));
    key(&mut app, KeyCode::Char('y'));
    assert!(app.quit);

    let (mut saved, _, _) = app_with(History::open(None));
    type_text(&mut saved, "quit");
    key(&mut saved, KeyCode::Enter);
    assert!(saved.quit, "nothing unsaved: no question");
}

#[test]
fn question_mark_opens_help_and_typing_from_a_panel_goes_to_the_prompt() {
    let (mut app, _, commands) = app();
    key(&mut app, KeyCode::Char('?'));
    let Some(Overlay::Help { text, .. }) = &app.ui.overlay else {
        panic!("no help");
    };
    assert!(text.contains("attack fgsm|pgd|cw|autoattack"));
    key(&mut app, KeyCode::Down);
    assert!(matches!(
        app.ui.overlay,
        Some(Overlay::Help { scroll: 1, .. })
    ));
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.ui.overlay, None);
    // In a sample panel, arrows select samples.
    key(&mut app, KeyCode::Tab);
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.ui.focus, Panel::SoftLabels);
    key(&mut app, KeyCode::Right);
    assert_eq!(sent(&commands), engine_job("next", EngineCommand::Next));
    key(&mut app, KeyCode::Left);
    assert_eq!(sent(&commands), engine_job("prev", EngineCommand::Prev));
    type_text(&mut app, "e");
    assert_eq!(app.ui.focus, Panel::Prompt);
    assert_eq!(app.ui.prompt, "e");
    // A '?' inside a line is text, not help.
    type_text(&mut app, "?");
    assert_eq!(app.ui.prompt, "e?");
    assert_eq!(app.ui.overlay, None);
}

#[test]
fn history_is_recalled_and_written_in_rustylines_format() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub").join("history");
    let (mut app, _, _) = app_with(History::open(Some(path.clone())));
    for line in ["step", "attack pgd n=5"] {
        type_text(&mut app, line);
        key(&mut app, KeyCode::Enter);
    }
    type_text(&mut app, "dra");
    key(&mut app, KeyCode::Up);
    assert_eq!(app.ui.prompt, "attack pgd n=5");
    key(&mut app, KeyCode::Up);
    assert_eq!(app.ui.prompt, "step");
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    assert_eq!(app.ui.prompt, "dra");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "#V2\nstep\nattack pgd n=5\n"
    );
    let reopened = History::open(Some(path));
    assert_eq!(reopened.entries(), ["step", "attack pgd n=5"]);
}

#[test]
fn line_editing_keys() {
    let (mut app, _, _) = app();
    type_text(&mut app, "attack pgd n=5");
    ctrl(&mut app, 'w');
    assert_eq!(app.ui.prompt, "attack pgd ");
    key(&mut app, KeyCode::Home);
    key(&mut app, KeyCode::Delete);
    assert_eq!(app.ui.prompt, "ttack pgd ");
    ctrl(&mut app, 'e');
    key(&mut app, KeyCode::Backspace);
    assert_eq!(app.ui.prompt, "ttack pgd");
    ctrl(&mut app, 'u');
    assert_eq!(app.ui.prompt, "");
    // Alt-chords type nothing.
    app.handle_key(KeyEvent::new(KeyCode::Char('x'), KeyModifiers::ALT));
    assert_eq!(app.ui.prompt, "");
}

/// Ctrl-R searches the history backwards (again for an older match), Enter takes the match
/// into the prompt without running it, Esc leaves the prompt as it was.
#[test]
fn ctrl_r_searches_the_history() {
    let (mut app, _, commands) = app();
    for line in ["attack pgd n=64", "step batch 2", "attack fgsm n=20"] {
        type_text(&mut app, line);
        key(&mut app, KeyCode::Enter);
    }
    while sent(&commands).is_some() {}
    ctrl(&mut app, 'r');
    type_text(&mut app, "att");
    let search = app.ui.search.clone().expect("searching");
    assert_eq!(search.found.as_deref(), Some("attack fgsm n=20"));
    ctrl(&mut app, 'r');
    assert_eq!(
        app.ui.search.as_ref().unwrap().found.as_deref(),
        Some("attack pgd n=64")
    );
    ctrl(&mut app, 'r');
    assert_eq!(
        app.ui.search.as_ref().unwrap().found.as_deref(),
        Some("attack pgd n=64"),
        "no older match: the oldest stays"
    );
    key(&mut app, KeyCode::Enter);
    assert!(app.ui.search.is_none());
    assert_eq!(app.ui.prompt, "attack pgd n=64");
    assert!(sent(&commands).is_none(), "taken, not run");

    key(&mut app, KeyCode::Esc);
    type_text(&mut app, "step");
    ctrl(&mut app, 'r');
    type_text(&mut app, "zzz");
    assert_eq!(app.ui.search.as_ref().unwrap().found, None);
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.ui.prompt, "step");
}

/// Ctrl-D on an empty prompt leaves, asking first when the student is unsaved; with text it
/// does not.
#[test]
fn ctrl_d_on_an_empty_prompt_quits() {
    let (mut app, shared, _) = app();
    type_text(&mut app, "st");
    ctrl(&mut app, 'd');
    assert!(!app.quit && app.ui.overlay.is_none());
    key(&mut app, KeyCode::Esc);
    shared.update(|s| s.status.unsaved = true);
    ctrl(&mut app, 'd');
    assert_eq!(app.ui.overlay, Some(Overlay::ConfirmQuit));
    key(&mut app, KeyCode::Char('y'));
    assert!(app.quit);
}

/// A click focuses the panel under it; the wheel scrolls the log, and over a sample panel
/// picks the previous or next test image.
#[test]
fn the_mouse_focuses_panels_scrolls_the_log_and_picks_samples() {
    use ratatui::crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
    use ratatui::layout::Rect;
    let (mut app, shared, commands) = app();
    let areas =
        rslad_tui::workbench::view::areas(Rect::new(0, 0, 120, 36), &shared.snapshot(), &app.ui)
            .unwrap();
    let at = |kind, rect: Rect| MouseEvent {
        kind,
        column: rect.x + rect.width / 2,
        row: rect.y + rect.height / 2,
        modifiers: KeyModifiers::NONE,
    };
    app.handle_mouse(
        at(MouseEventKind::Down(MouseButton::Left), areas.attacks),
        Some(&areas),
    );
    assert_eq!(app.ui.focus, Panel::Attacks);
    app.handle_mouse(at(MouseEventKind::ScrollUp, areas.log), Some(&areas));
    assert_eq!(app.ui.log_scroll, 3);
    app.handle_mouse(at(MouseEventKind::ScrollDown, areas.log), Some(&areas));
    assert_eq!(app.ui.log_scroll, 0);
    app.handle_mouse(
        at(MouseEventKind::ScrollDown, areas.soft_labels),
        Some(&areas),
    );
    assert_eq!(sent(&commands), engine_job("next", EngineCommand::Next));
    app.handle_mouse(
        at(MouseEventKind::ScrollUp, areas.perturbation),
        Some(&areas),
    );
    assert_eq!(sent(&commands), engine_job("prev", EngineCommand::Prev));
}
