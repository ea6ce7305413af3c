//! Drawing the workbench: one module per panel, all from a [`Snapshot`] and the UI's own
//! state (focus, prompt, overlays). Nothing here computes anything.
//!
//! Layout, top to bottom: the status line; two columns (Curves over Attacks on the left, Soft
//! labels over Perturbation on the right; after a `diagnose`, the Curves panel shares its
//! space with the loss around the diagnosed image when both fit); the Log; the completions
//! line (only while there are candidates); the prompt; and a one-line key help when the
//! terminal is tall enough.
//! Every size is handled: below [`MIN_WIDTH`]×[`MIN_HEIGHT`] only a notice is drawn.
//!
//! `z` on a focused panel zooms it to the whole space between the status line and the prompt
//! (for a projector). Lecture mode (the playback of a recorded session, [`draw_lecture`]) uses
//! the same panels with a Notes panel beside the Log, a title screen, and its own status and
//! key lines ([`lecture`]).

mod attacks;
mod curves;
mod lecture;
mod log;
mod loss_profile;
mod notes;
mod overlay;
mod perturbation;
mod prompt;
mod soft_labels;
mod status;
pub mod text;
mod title;

pub use lecture::{Lecture, LectureAreas, LecturePanels, draw_lecture, lecture_areas};
pub use notes::max_scroll as notes_max_scroll;

use crate::lab::snapshot::Snapshot;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Block;

/// Below this size the workbench shows a "terminal too small" notice instead of panels.
pub const MIN_WIDTH: u16 = 40;
pub const MIN_HEIGHT: u16 = 12;

/// The key help drawn at the very bottom (or as the prompt's hint when there is no room).
pub const KEY_HELP: &str = "Tab focus/complete · ↑↓ history/select · Ctrl-R search · ? help · \
     q quit (from a panel) · Ctrl-C stop";

/// The panels, in the order Tab visits them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Panel {
    Curves,
    SoftLabels,
    Perturbation,
    Attacks,
    Log,
    #[default]
    Prompt,
    /// The current marker's note (lecture mode only).
    Notes,
}

impl Panel {
    pub const CYCLE: [Panel; 6] = [
        Panel::Prompt,
        Panel::Curves,
        Panel::SoftLabels,
        Panel::Perturbation,
        Panel::Attacks,
        Panel::Log,
    ];

    /// The panels Tab visits in lecture mode (there is no prompt).
    pub const LECTURE_CYCLE: [Panel; 6] = [
        Panel::Log,
        Panel::Notes,
        Panel::Curves,
        Panel::SoftLabels,
        Panel::Perturbation,
        Panel::Attacks,
    ];

    /// The panel Tab moves to.
    pub fn next(self) -> Panel {
        self.step(&Panel::CYCLE, 1)
    }

    /// The panel Shift-Tab moves to.
    pub fn previous(self) -> Panel {
        self.step(&Panel::CYCLE, Panel::CYCLE.len() - 1)
    }

    /// The panel `by` steps further in `cycle` (from its first when `self` is not in it).
    pub fn step(self, cycle: &[Panel], by: usize) -> Panel {
        let i = cycle.iter().position(|p| *p == self).unwrap_or(0);
        cycle[(i + by) % cycle.len()]
    }
}

/// A window drawn over the panels.
#[derive(Clone, Debug, PartialEq)]
pub enum Overlay {
    /// The help text (the command table), scrollable.
    Help { text: String, scroll: usize },
    /// "Quit with unsaved work? y/n".
    ConfirmQuit,
}

/// The UI's own state: what is not part of the engine's snapshot.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UiState {
    pub focus: Panel,
    /// The text being typed, and the cursor position in characters.
    pub prompt: String,
    pub cursor: usize,
    /// Greyed text drawn after the prompt's text: the rest of a unique completion, or the
    /// command's usage.
    pub hint: Option<String>,
    /// Candidates shown when Tab finds several.
    pub completions: Vec<String>,
    /// Log rows scrolled up from the newest.
    pub log_scroll: usize,
    pub overlay: Option<Overlay>,
    /// Ctrl-R's search through the history, while it is open.
    pub search: Option<HistorySearch>,
    /// The focused panel fills the screen (`z`).
    pub zoomed: bool,
    /// Rows of the note scrolled past (lecture mode).
    pub notes_scroll: usize,
}

/// A reverse search through the history: what was typed, how many older matches were skipped
/// (each Ctrl-R skips one more), and the match shown.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistorySearch {
    pub query: String,
    pub skip: usize,
    pub found: Option<String>,
}

impl UiState {
    /// The panel drawn alone, when one is zoomed.
    pub fn zoomed_panel(&self) -> Option<Panel> {
        (self.zoomed && self.focus != Panel::Prompt).then_some(self.focus)
    }
}

/// What the panels say when they have nothing to show: the workbench names the command that
/// fills them; lecture mode only says what is missing.
#[derive(Clone, Copy, Debug)]
pub struct Hints {
    pub curves: &'static str,
    pub attacks: &'static str,
    pub sample: &'static str,
}

impl Hints {
    pub const WORKBENCH: Hints = Hints {
        curves: "no epochs yet: type `step`",
        attacks: "no attack yet: `attack pgd` or `eval`",
        sample: "no sample yet: load data",
    };
    pub const LECTURE: Hints = Hints {
        curves: "no epoch finished yet",
        attacks: "no attack yet",
        sample: "no sample yet",
    };
}

/// Where each part of the workbench goes in a frame (outer rectangles, borders included).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Areas {
    pub status: Rect,
    pub curves: Rect,
    pub attacks: Rect,
    pub soft_labels: Rect,
    pub perturbation: Rect,
    pub log: Rect,
    /// Only while `ui.completions` is non-empty.
    pub completions: Option<Rect>,
    pub prompt: Rect,
    /// Only when the terminal is tall enough; otherwise the key help becomes the prompt's hint.
    pub keys: Option<Rect>,
}

/// Terminal height from which the key help gets its own line.
const KEYS_MIN_HEIGHT: u16 = 28;

/// Splits `area` into the workbench's parts; None when it is below the minimum size.
pub fn areas(area: Rect, snapshot: &Snapshot, ui: &UiState) -> Option<Areas> {
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        return None;
    }
    let mut rows = Rows::new(area);
    let status = rows.take_top(1);
    let keys = (area.height >= KEYS_MIN_HEIGHT).then(|| rows.take_bottom(1));
    let prompt = rows.take_bottom(1);
    let completions = (!ui.completions.is_empty()).then(|| rows.take_bottom(1));
    // About a fifth of the height for the log: 3 lines at 24 rows, 8 at 48.
    let log_height = (area.height / 5 + 1).clamp(3, 14);
    let log = rows.take_bottom(log_height);
    let middle = rows.rest();

    let (left, right) = split_columns(middle, snapshot);
    let (curves, attacks) = split_left(left, snapshot);
    let (soft_labels, perturbation) = split_right(right, snapshot);
    Some(Areas {
        status,
        curves,
        attacks,
        soft_labels,
        perturbation,
        log,
        completions,
        prompt,
        keys,
    })
}

/// The rectangle the δ/ε heatmap is drawn in, one terminal cell per two vertical pixels
/// (upper pixel = foreground of '▀', lower = background), or None when nothing is drawn.
///
/// Pixels are picked by nearest neighbour: the cell at column `x`, row `y` of the rectangle
/// shows source pixel column `x * width / rect.width` and source rows
/// `(2y) * height / (2 * rect.height)` (upper) and `(2y + 1) * height / (2 * rect.height)`
/// (lower), integer division. The same rectangle size and mapping serve the natural and
/// adversarial images, drawn to its left.
pub fn heatmap_area(area: Rect, snapshot: &Snapshot, ui: &UiState) -> Option<Rect> {
    let areas = areas(area, snapshot, ui)?;
    let sample = snapshot.sample.as_ref()?;
    let inner = panel_block("", false).inner(areas.perturbation);
    perturbation::placement(inner, sample).map(|p| p.images[2])
}

/// Draws the whole workbench.
pub fn draw(frame: &mut Frame, snapshot: &Snapshot, ui: &UiState) {
    let area = frame.area();
    let Some(areas) = areas(area, snapshot, ui) else {
        overlay::too_small(frame, area);
        return;
    };
    let buf = frame.buffer_mut();
    status::render(buf, areas.status, &snapshot.status);
    match ui.zoomed_panel() {
        Some(panel) => {
            // Everything from under the status line down to the completions or the prompt.
            let bottom = areas.completions.unwrap_or(areas.prompt).y;
            let top = areas.status.bottom();
            let full = Rect::new(area.x, top, area.width, bottom.saturating_sub(top));
            draw_panel_in(buf, panel, full, snapshot, ui, &Hints::WORKBENCH);
        }
        None => {
            let panels = [
                (Panel::Curves, areas.curves),
                (Panel::Attacks, areas.attacks),
                (Panel::SoftLabels, areas.soft_labels),
                (Panel::Perturbation, areas.perturbation),
                (Panel::Log, areas.log),
            ];
            for (panel, rect) in panels {
                draw_panel_in(buf, panel, rect, snapshot, ui, &Hints::WORKBENCH);
            }
        }
    }
    if let Some(row) = areas.completions {
        prompt::render_completions(buf, row, &ui.completions);
    }
    let cursor = prompt::render(buf, areas.prompt, ui, areas.keys.is_none());
    if let Some(row) = areas.keys {
        prompt::render_keys(buf, row);
    }
    match &ui.overlay {
        Some(Overlay::Help { text, scroll }) => {
            overlay::help(frame.buffer_mut(), area, text, *scroll)
        }
        Some(Overlay::ConfirmQuit) => overlay::confirm_quit(frame.buffer_mut(), area),
        None => {
            if let Some(position) = cursor {
                frame.set_cursor_position(position);
            }
        }
    }
}

/// Draws one panel (the Notes panel needs lecture mode's data: [`lecture`] draws it).
fn draw_panel_in(
    buf: &mut ratatui::buffer::Buffer,
    panel: Panel,
    rect: Rect,
    snapshot: &Snapshot,
    ui: &UiState,
    hints: &Hints,
) {
    let focused = ui.focus == panel;
    match panel {
        Panel::Curves => {
            // The last diagnosis's loss plot beside (or under) the curves, when both fit.
            let split = snapshot
                .diagnosis
                .as_ref()
                .and_then(|d| loss_profile::split(rect).map(|areas| (d, areas)));
            match split {
                Some((diagnosis, (curves_rect, profile_rect))) => {
                    curves::render(buf, curves_rect, &snapshot.curves, focused, hints.curves);
                    loss_profile::render(buf, profile_rect, diagnosis, &snapshot.status, focused);
                }
                None => curves::render(buf, rect, &snapshot.curves, focused, hints.curves),
            }
        }
        Panel::Attacks => attacks::render(
            buf,
            rect,
            &snapshot.results,
            snapshot.attack.as_ref(),
            focused,
            hints.attacks,
        ),
        Panel::SoftLabels => {
            soft_labels::render(buf, rect, snapshot.sample.as_ref(), focused, hints.sample)
        }
        Panel::Perturbation => {
            perturbation::render(buf, rect, snapshot.sample.as_ref(), focused, hints.sample)
        }
        Panel::Log => log::render(buf, rect, &snapshot.log, ui.log_scroll, focused),
        Panel::Notes | Panel::Prompt => {}
    }
    if focused && rect.height >= 3 {
        zoom_hint(buf, rect, ui.zoomed);
    }
}

/// " z zoom " (or " z back ") on the right of a focused panel's bottom border.
fn zoom_hint(buf: &mut ratatui::buffer::Buffer, rect: Rect, zoomed: bool) {
    let label = if zoomed { " z/Esc back " } else { " z zoom " };
    let w = text::width(label) as u16;
    if rect.width < w + 12 {
        return;
    }
    let (x, y) = (rect.right() - w - 1, rect.bottom() - 1);
    // Only over bare border: never over a footer the panel wrote there.
    let bare = (x..x + w).all(|x| buf.cell((x, y)).is_some_and(|c| c.symbol() == "─"));
    if bare {
        text::put_line(buf, Rect::new(x, y, w, 1), &Line::styled(label, FOCUS));
    }
}

/// The heatmap's diverging colour for δ/ε in [-1, 1].
///
/// The value is clamped to [-1, 1] (NaN counts as 0). With `t = |v|`, each channel is a
/// linear blend from the dark neutral `Rgb(24, 24, 24)` at `t = 0` to the end colour at
/// `t = 1`: strong red `Rgb(255, 48, 32)` for positive δ (the attack brightened the pixel),
/// strong blue `Rgb(32, 96, 255)` for negative δ (it darkened it). So brightness grows
/// monotonically with |δ|/ε and the hue tells the sign.
pub fn diverging(value: f32) -> Color {
    const NEUTRAL: [f32; 3] = [24.0, 24.0, 24.0];
    const RED: [f32; 3] = [255.0, 48.0, 32.0];
    const BLUE: [f32; 3] = [32.0, 96.0, 255.0];
    let v = if value.is_nan() {
        0.0
    } else {
        value.clamp(-1.0, 1.0)
    };
    let end = if v >= 0.0 { RED } else { BLUE };
    let t = v.abs();
    let channel = |i: usize| (NEUTRAL[i] + (end[i] - NEUTRAL[i]) * t).round() as u8;
    Color::Rgb(channel(0), channel(1), channel(2))
}

/// The style of a focused panel's border and title.
const FOCUS: Style = Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD);
/// The style of the other panels' borders.
const UNFOCUSED: Style = Style::new().fg(Color::Gray);

/// A bordered panel with its title; the focused one is highlighted.
fn panel_block<'a>(title: impl Into<Line<'a>>, focused: bool) -> Block<'a> {
    let style = if focused { FOCUS } else { UNFOCUSED };
    Block::bordered()
        .border_style(style)
        .title(title)
        .title_style(if focused {
            FOCUS
        } else {
            Style::new().add_modifier(Modifier::BOLD)
        })
}

/// Draws a panel's border and title and returns the area inside it.
fn draw_panel<'a>(
    buf: &mut ratatui::buffer::Buffer,
    area: Rect,
    title: impl Into<Line<'a>>,
    focused: bool,
) -> Rect {
    use ratatui::widgets::Widget;
    let block = panel_block(title, focused);
    let inner = block.inner(area);
    block.render(area, buf);
    inner
}

/// A dim one-line hint centred in `area` (used by panels with nothing to show yet).
fn hint(buf: &mut ratatui::buffer::Buffer, area: Rect, message: &str) {
    if area.is_empty() {
        return;
    }
    let y = area.y + (area.height.saturating_sub(1)) / 2;
    let row = Rect::new(area.x, y, area.width, 1);
    text::put_centered(
        buf,
        row,
        &Span::styled(message, Style::new().fg(Color::DarkGray)),
    );
}

/// Cuts rows off the top and bottom of a rectangle.
struct Rows {
    area: Rect,
}

impl Rows {
    fn new(area: Rect) -> Self {
        Self { area }
    }

    fn take_top(&mut self, height: u16) -> Rect {
        let h = height.min(self.area.height);
        let top = Rect::new(self.area.x, self.area.y, self.area.width, h);
        self.area.y += h;
        self.area.height -= h;
        top
    }

    fn take_bottom(&mut self, height: u16) -> Rect {
        let h = height.min(self.area.height);
        self.area.height -= h;
        Rect::new(
            self.area.x,
            self.area.y + self.area.height,
            self.area.width,
            h,
        )
    }

    fn rest(self) -> Rect {
        self.area
    }
}

/// Left and right columns: the right one is as wide as the images need at the height they
/// get (native size when there is room), between half and 60% of the width.
fn split_columns(middle: Rect, snapshot: &Snapshot) -> (Rect, Rect) {
    let half = middle.width / 2;
    let most = (middle.width as u32 * 3 / 5) as u16;
    let wanted = snapshot.sample.as_ref().map_or(0, |s| {
        let (_, perturbation) = split_right(middle, snapshot);
        perturbation::wanted_width(s, perturbation.height)
    });
    let right = wanted.min(most).max(half);
    let left = middle.width - right;
    (
        Rect::new(middle.x, middle.y, left, middle.height),
        Rect::new(middle.x + left, middle.y, right, middle.height),
    )
}

/// Curves over Attacks: the table gets the rows it needs, up to half the column.
fn split_left(left: Rect, snapshot: &Snapshot) -> (Rect, Rect) {
    let wanted = attacks::wanted_height(&snapshot.results, snapshot.attack.as_ref());
    let most = left.height / 2;
    let attacks = wanted.min(most).max(left.height.min(3));
    split_rows(left, left.height - attacks)
}

/// Soft labels over Perturbation: the images get the rows for native size, up to half the
/// column (rounded up).
fn split_right(right: Rect, snapshot: &Snapshot) -> (Rect, Rect) {
    let half_up = right.height.div_ceil(2);
    let pert = snapshot.sample.as_ref().map_or(right.height / 2, |s| {
        perturbation::native_height(s).min(half_up)
    });
    split_rows(right, right.height - pert)
}

/// The first `top` rows, and the rest.
fn split_rows(area: Rect, top: u16) -> (Rect, Rect) {
    let top = top.min(area.height);
    (
        Rect::new(area.x, area.y, area.width, top),
        Rect::new(area.x, area.y + top, area.width, area.height - top),
    )
}
