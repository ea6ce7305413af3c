//! Lecture mode: a recorded session played back for a class. The workbench's panels, with a
//! Notes panel (the current marker's note, wrapped) beside the Log, a title screen before the
//! first entry, a status line that says where the playback stands (never a spinner or
//! "unsaved": nothing runs and nothing is unsaved), and a key line for playback's keys.

use super::{
    FOCUS, Hints, MIN_HEIGHT, MIN_WIDTH, Overlay, Panel, Rows, UiState, draw_panel_in, notes,
    overlay, split_columns, split_left, split_right, split_rows, status, text, title,
};
use crate::lab::snapshot::Snapshot;
use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};

/// What lecture mode shows besides the snapshot; the playback fills it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Lecture {
    /// The session's title (its file name when it has none).
    pub title: String,
    pub intro: String,
    /// Every marker's title, in order.
    pub sections: Vec<String>,
    /// The marker the playback is past (index into `sections`), None before the first.
    pub section: Option<usize>,
    /// That marker's note.
    pub note: String,
    /// Entries shown, of how many.
    pub position: usize,
    pub len: usize,
    pub playing: bool,
    pub speed: f64,
    /// Paused on reaching a marker: space continues.
    pub at_marker: bool,
    /// Whether a command has been shown (before, the status line has nothing recorded).
    pub started: bool,
    /// Where the recording comes from, in a line (program, backend, seed, commands).
    pub about: String,
}

impl Lecture {
    /// The title screen is shown before the first entry.
    pub fn title_screen(&self) -> bool {
        self.position == 0
    }

    /// What the Notes panel shows: the current marker's note, or the introduction before the
    /// first marker.
    pub fn notes_text(&self) -> &str {
        if self.section.is_some() {
            &self.note
        } else {
            &self.intro
        }
    }

    /// "▶ playback 3/17 · 1×" (⏸ when paused).
    pub fn position_label(&self) -> String {
        format!(
            "{} playback {}/{} · {}×",
            if self.playing { "▶" } else { "⏸" },
            self.position,
            self.len,
            self.speed
        )
    }
}

/// Where each part of lecture mode goes (outer rectangles, borders included).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LectureAreas {
    pub status: Rect,
    /// The key line at the bottom.
    pub keys: Rect,
    /// Between the two: the title screen, a zoomed panel, or the panels.
    pub body: Rect,
    /// The panels' places; None on the title screen and while a panel is zoomed.
    pub panels: Option<LecturePanels>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LecturePanels {
    pub curves: Rect,
    pub attacks: Rect,
    pub soft_labels: Rect,
    pub perturbation: Rect,
    pub notes: Rect,
    pub log: Rect,
}

impl LecturePanels {
    /// Every panel with its place, in drawing order.
    pub fn all(&self) -> [(Panel, Rect); 6] {
        [
            (Panel::Curves, self.curves),
            (Panel::Attacks, self.attacks),
            (Panel::SoftLabels, self.soft_labels),
            (Panel::Perturbation, self.perturbation),
            (Panel::Notes, self.notes),
            (Panel::Log, self.log),
        ]
    }
}

impl LectureAreas {
    /// The panel drawn at a cell (for the mouse), with the zoomed one filling the body.
    pub fn panel_at(&self, x: u16, y: u16, ui: &UiState) -> Option<Panel> {
        let inside = |r: Rect| x >= r.x && x < r.right() && y >= r.y && y < r.bottom();
        if let Some(panel) = ui.zoomed_panel() {
            return inside(self.body).then_some(panel);
        }
        self.panels?
            .all()
            .into_iter()
            .find(|(_, r)| inside(*r))
            .map(|(panel, _)| panel)
    }
}

/// Splits `area` for lecture mode; None below the minimum size.
pub fn lecture_areas(
    area: Rect,
    snapshot: &Snapshot,
    lecture: &Lecture,
    ui: &UiState,
) -> Option<LectureAreas> {
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        return None;
    }
    let mut rows = Rows::new(area);
    let status = rows.take_top(1);
    let keys = rows.take_bottom(1);
    let body = rows.rest();
    let panels = (!lecture.title_screen() && ui.zoomed_panel().is_none())
        .then(|| panels(body, snapshot, lecture));
    Some(LectureAreas {
        status,
        keys,
        body,
        panels,
    })
}

/// The four panels above a band of Notes (left, three fifths) and Log (right). The band is
/// a third of the body, and grows to two fifths when the note needs the rows.
fn panels(body: Rect, snapshot: &Snapshot, lecture: &Lecture) -> LecturePanels {
    let notes_width = body.width * 3 / 5;
    let note_rows = text::wrap(lecture.notes_text(), notes_width.saturating_sub(2) as usize)
        .len()
        .min(u16::MAX as usize) as u16;
    let base = (body.height / 3).clamp(4, 14);
    let most = (body.height * 2 / 5).max(base);
    let band_height = note_rows.saturating_add(2).clamp(base, most);
    let (middle, band) = split_rows(body, body.height.saturating_sub(band_height));
    let notes = Rect::new(band.x, band.y, notes_width, band.height);
    let log = Rect::new(
        band.x + notes_width,
        band.y,
        band.width - notes_width,
        band.height,
    );
    let (left, right) = split_columns(middle, snapshot);
    let (curves, attacks) = split_left(left, snapshot);
    let (soft_labels, perturbation) = split_right(right, snapshot);
    LecturePanels {
        curves,
        attacks,
        soft_labels,
        perturbation,
        notes,
        log,
    }
}

/// Draws lecture mode.
pub fn draw_lecture(frame: &mut Frame, snapshot: &Snapshot, lecture: &Lecture, ui: &UiState) {
    let area = frame.area();
    let Some(areas) = lecture_areas(area, snapshot, lecture, ui) else {
        overlay::too_small(frame, area);
        return;
    };
    let buf = frame.buffer_mut();
    status_line(buf, areas.status, snapshot, lecture);
    key_line(buf, areas.keys, lecture, ui);
    if lecture.title_screen() {
        title::render(buf, areas.body, lecture);
    } else if let Some(panel) = ui.zoomed_panel() {
        draw_one(buf, panel, areas.body, snapshot, lecture, ui);
    } else if let Some(p) = areas.panels {
        for (panel, rect) in p.all() {
            draw_one(buf, panel, rect, snapshot, lecture, ui);
        }
    }
    if let Some(Overlay::Help { text, scroll }) = &ui.overlay {
        overlay::help(frame.buffer_mut(), area, text, *scroll);
    }
}

fn draw_one(
    buf: &mut Buffer,
    panel: Panel,
    rect: Rect,
    snapshot: &Snapshot,
    lecture: &Lecture,
    ui: &UiState,
) {
    if panel == Panel::Notes {
        notes::render(
            buf,
            rect,
            lecture,
            ui.notes_scroll,
            ui.focus == Panel::Notes,
        );
        if ui.focus == Panel::Notes && rect.height >= 3 {
            super::zoom_hint(buf, rect, ui.zoomed);
        }
    } else {
        draw_panel_in(buf, panel, rect, snapshot, ui, &Hints::LECTURE);
    }
}

/// The recorded status line (once a command has been shown; the title before) with where the
/// playback stands on the right. The recording's "busy" and "unsaved" are left out.
fn status_line(buf: &mut Buffer, area: Rect, snapshot: &Snapshot, lecture: &Lecture) {
    if area.is_empty() {
        return;
    }
    let label = lecture.position_label();
    let label_width = (text::width(&label) as u16).min(area.width);
    let left = Rect::new(
        area.x,
        area.y,
        area.width.saturating_sub(label_width + 2),
        1,
    );
    if lecture.started {
        let mut shown = snapshot.status.clone();
        shown.busy = None;
        shown.unsaved = false;
        status::render(buf, left, &shown);
    } else {
        let title = text::fit(&lecture.title, left.width as usize);
        text::put_line(
            buf,
            left,
            &Line::styled(title, Style::new().add_modifier(Modifier::BOLD)),
        );
    }
    let style = if lecture.playing {
        Style::new().fg(Color::Green).add_modifier(Modifier::BOLD)
    } else {
        Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD)
    };
    let x = area.right() - label_width;
    text::put_line(
        buf,
        Rect::new(x, area.y, label_width, 1),
        &Line::styled(text::fit(&label, label_width as usize), style),
    );
}

/// The keys that work now, the most detailed variant that fits; the key that continues is
/// highlighted when the playback waits at a marker or on the title screen.
fn key_line(buf: &mut Buffer, area: Rect, lecture: &Lecture, ui: &UiState) {
    if area.is_empty() {
        return;
    }
    let (first, variants) = key_hints(lecture, ui);
    let dim = Style::new().fg(Color::DarkGray);
    let width = area.width as usize;
    let rest = variants
        .iter()
        .find(|v| text::width(&first) + 3 + text::width(v) <= width)
        .cloned();
    let line = match rest {
        Some(rest) => Line::from(vec![
            Span::styled(first, highlight(lecture)),
            Span::styled(format!(" · {rest}"), dim),
        ]),
        None => Line::styled(text::fit(&first, width), highlight(lecture)),
    };
    text::put_line(buf, area, &line);
}

fn highlight(lecture: &Lecture) -> Style {
    if !lecture.playing && (lecture.at_marker || lecture.title_screen()) {
        Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD)
    } else {
        FOCUS
    }
}

/// The first key (what space does now) and the rest, most detailed first.
fn key_hints(lecture: &Lecture, ui: &UiState) -> (String, Vec<String>) {
    let space = if lecture.title_screen() && !lecture.playing {
        "space start"
    } else if lecture.playing {
        "space pause"
    } else if lecture.at_marker {
        "space continue"
    } else if lecture.position >= lecture.len {
        "Home back to the start"
    } else {
        "space play"
    };
    let rest: &[&str] = if ui.zoomed_panel().is_some() {
        &[
            "z/Esc back · ← → step · ] [ section · ? keys and note · q quit",
            "z back · ? keys · q quit",
        ]
    } else if lecture.title_screen() {
        &[
            "] first section · → step · ? keys and introduction · q quit",
            "? keys · q quit",
        ]
    } else {
        &[
            "← → step · ] [ section · + − speed · ↑↓ PgUp PgDn scroll · Tab focus · z zoom · \
             ? keys and note · q quit",
            "← → step · ] [ section · ↑↓ scroll · Tab focus · z zoom · ? keys and note · q quit",
            "← → step · ] [ section · z zoom · ? keys · q quit",
            "? keys · q quit",
        ]
    };
    (
        space.to_string(),
        rest.iter().map(|s| s.to_string()).collect(),
    )
}
