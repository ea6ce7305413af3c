//! Lecture mode's keys and mouse: what each does to the playback and to the view's state.
//! [`Controls`] knows nothing of terminals, so tests drive it with events.

use super::Playback;
use crate::lab::snapshot::Snapshot;
use crate::workbench::help_keys;
use crate::workbench::view::{self, Lecture, Overlay, Panel, UiState};
use ratatui::crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::layout::Rect;

/// Every key of lecture mode, as `?` lists them.
pub const KEYS: &str = "\
Playback keys
  space          play / pause (playing stops at each section's marker: space continues)
  → ←  (n p)     the next / previous entry
  ] [            the next / previous section
  Home End       the start (title screen) / the end
  + −            faster / slower
  ↑ ↓ PgUp PgDn  scroll the log (the note when the Notes panel has the focus); the mouse wheel scrolls the panel under it
  Tab Shift-Tab  move the focus between panels (or click one)
  z              zoom the focused panel to the whole screen; z or Esc returns
  ?              this help with the current note; any other key closes it
  q              quit";

/// The playback and the view's state between events.
pub struct Controls {
    pub playback: Playback,
    pub ui: UiState,
    /// Set by q.
    pub quit: bool,
    /// The terminal's size at the last draw (for the mouse and the note's scrolling).
    pub area: Rect,
}

impl Controls {
    pub fn new(playback: Playback) -> Controls {
        Controls {
            playback,
            ui: UiState {
                focus: Panel::Log,
                ..UiState::default()
            },
            quit: false,
            area: Rect::new(0, 0, 80, 24),
        }
    }

    /// What to draw: the snapshot and lecture mode's own data.
    pub fn frame(&self) -> (Snapshot, Lecture) {
        (self.playback.snapshot(), self.playback.lecture())
    }

    /// Moves the playback; a new position shows its newest log lines and its note's top.
    fn moved(&mut self, section_before: Option<usize>) {
        self.ui.log_scroll = 0;
        if self.playback.lecture().section != section_before {
            self.ui.notes_scroll = 0;
        }
    }

    pub fn key(&mut self, key: KeyEvent) {
        if key.kind == KeyEventKind::Release {
            return;
        }
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            self.quit = true;
            return;
        }
        if let Some(Overlay::Help { .. }) = self.ui.overlay {
            help_keys::help_key(&mut self.ui, key.code);
            return;
        }
        let section = self.playback.lecture().section;
        let p = &mut self.playback;
        match key.code {
            KeyCode::Char('q') => self.quit = true,
            KeyCode::Esc if self.ui.zoomed => self.ui.zoomed = false,
            KeyCode::Esc => self.quit = true,
            KeyCode::Char(' ') => p.toggle(),
            KeyCode::Right | KeyCode::Char('n') => p.forward(),
            KeyCode::Left | KeyCode::Char('p') => p.back(),
            KeyCode::Char(']') => p.next_marker(),
            KeyCode::Char('[') => p.previous_marker(),
            KeyCode::Home => p.home(),
            KeyCode::End => p.end(),
            KeyCode::Char('+') | KeyCode::Char('=') => p.faster(),
            KeyCode::Char('-') => p.slower(),
            KeyCode::Up => self.scroll(-1),
            KeyCode::Down => self.scroll(1),
            KeyCode::PageUp => self.scroll(-10),
            KeyCode::PageDown => self.scroll(10),
            KeyCode::Tab => self.ui.focus = self.ui.focus.step(&Panel::LECTURE_CYCLE, 1),
            KeyCode::BackTab => {
                let back = Panel::LECTURE_CYCLE.len() - 1;
                self.ui.focus = self.ui.focus.step(&Panel::LECTURE_CYCLE, back)
            }
            KeyCode::Char('z') => self.ui.zoomed = !self.ui.zoomed,
            KeyCode::Char('?') => self.open_help(),
            _ => return,
        }
        if matches!(
            key.code,
            KeyCode::Right
                | KeyCode::Left
                | KeyCode::Char('n' | 'p' | ']' | '[')
                | KeyCode::Home
                | KeyCode::End
        ) {
            self.moved(section);
        }
    }

    /// Scrolls the Notes panel when it has the focus, else the log (`by` < 0: up, older).
    fn scroll(&mut self, by: isize) {
        if self.ui.focus == Panel::Notes {
            let most = self.notes_max_scroll();
            let now = self.ui.notes_scroll.min(most);
            self.ui.notes_scroll = now.saturating_add_signed(by).min(most);
        } else {
            // Log scroll counts lines up from the newest; the view keeps it in range.
            self.ui.log_scroll = self.ui.log_scroll.saturating_add_signed(-by);
        }
    }

    fn notes_max_scroll(&self) -> usize {
        let (snapshot, lecture) = self.frame();
        let rect = match view::lecture_areas(self.area, &snapshot, &lecture, &self.ui) {
            Some(a) if self.ui.zoomed_panel() == Some(Panel::Notes) => a.body,
            Some(a) => a.panels.map_or(Rect::default(), |p| p.notes),
            None => Rect::default(),
        };
        view::notes_max_scroll(&lecture, rect)
    }

    /// `?`: the keys, then the current note in full (the introduction on the title screen).
    fn open_help(&mut self) {
        let lecture = self.playback.lecture();
        let mut text = format!("{KEYS}\n");
        match lecture.section {
            Some(i) => {
                text += &format!(
                    "\n■ {} (section {} of {})\n\n{}\n",
                    lecture.sections[i],
                    i + 1,
                    lecture.sections.len(),
                    lecture.note
                );
            }
            None => {
                text += &format!("\n{}\n", lecture.title);
                if !lecture.intro.is_empty() {
                    text += &format!("\n{}\n", lecture.intro);
                }
                if !lecture.sections.is_empty() {
                    text += "\nSections:\n";
                    for title in &lecture.sections {
                        text += &format!("  {title}\n");
                    }
                }
            }
        }
        self.ui.overlay = Some(Overlay::Help { text, scroll: 0 });
    }

    /// The wheel scrolls the panel under the pointer (the note or the log); a click focuses
    /// the panel under it.
    pub fn mouse(&mut self, event: MouseEvent) {
        let (snapshot, lecture) = self.frame();
        let Some(areas) = view::lecture_areas(self.area, &snapshot, &lecture, &self.ui) else {
            return;
        };
        let under = areas.panel_at(event.column, event.row, &self.ui);
        match event.kind {
            MouseEventKind::ScrollUp | MouseEventKind::ScrollDown => {
                let by = if event.kind == MouseEventKind::ScrollUp {
                    -3
                } else {
                    3
                };
                let focus = self.ui.focus;
                if under == Some(Panel::Notes) {
                    self.ui.focus = Panel::Notes;
                    self.scroll(by);
                    self.ui.focus = focus;
                } else {
                    self.ui.focus = Panel::Log;
                    self.scroll(by);
                    self.ui.focus = focus;
                }
            }
            MouseEventKind::Down(MouseButton::Left) => {
                if let Some(panel) = under {
                    self.ui.focus = panel;
                }
            }
            _ => {}
        }
    }
}
