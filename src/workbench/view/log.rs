//! The Log panel: the newest lines that fit, scrolled up by `log_scroll` lines; commands
//! echoed with "> ", warnings yellow, errors red. Long lines wrap at word boundaries, their
//! continuation rows indented by two columns.

use super::{draw_panel, text};
use crate::lab::snapshot::{LogLevel, LogLine};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;

/// Continuation rows of a wrapped line are indented this much.
const HANG: usize = 2;

pub fn render(buf: &mut Buffer, area: Rect, log: &[LogLine], scroll: usize, focused: bool) {
    let inner_width = area.width.saturating_sub(2) as usize;
    let visible_rows = area.height.saturating_sub(2) as usize;
    let rows_of = |line: &LogLine| wrapped(line, inner_width).len();
    // Never scroll past the oldest line: the window stays full when there are enough lines.
    let scroll = scroll.min(max_scroll(log, visible_rows, rows_of));
    let title = if scroll > 0 {
        format!("Log · scrolled up {scroll} (newest below)")
    } else {
        "Log".to_string()
    };
    let inner = draw_panel(buf, area, title, focused);
    if inner.is_empty() {
        return;
    }
    // From the newest shown line upwards, until the rows are full.
    let end = log.len() - scroll;
    let mut rows: Vec<(String, Style)> = Vec::new();
    for line in log[..end].iter().rev() {
        let style = style_of(line.level);
        let mut wrapped: Vec<(String, Style)> = wrapped(line, inner_width)
            .into_iter()
            .map(|row| (row, style))
            .collect();
        wrapped.extend(rows);
        rows = wrapped;
        if rows.len() >= inner.height as usize {
            break;
        }
    }
    let skip = rows.len().saturating_sub(inner.height as usize);
    for (i, (row, style)) in rows.into_iter().skip(skip).enumerate() {
        let rect = Rect::new(inner.x, inner.y + i as u16, inner.width, 1);
        text::put_line(buf, rect, &Line::styled(row, style));
    }
}

/// The scroll at which the oldest line is at the top of a full window.
fn max_scroll(log: &[LogLine], rows: usize, rows_of: impl Fn(&LogLine) -> usize) -> usize {
    let mut filled = 0;
    for (i, line) in log.iter().enumerate() {
        filled += rows_of(line);
        if filled >= rows {
            return log.len() - i - 1;
        }
    }
    0
}

/// A log line's rows at `width` columns.
fn wrapped(line: &LogLine, width: usize) -> Vec<String> {
    let prefix = if line.level == LogLevel::Command {
        "> "
    } else {
        ""
    };
    text::wrap_hanging(&format!("{prefix}{}", line.text), width, HANG)
}

fn style_of(level: LogLevel) -> Style {
    match level {
        LogLevel::Info => Style::new(),
        LogLevel::Command => Style::new()
            .fg(Color::LightBlue)
            .add_modifier(Modifier::BOLD),
        LogLevel::Warning => Style::new().fg(Color::Yellow),
        LogLevel::Error => Style::new().fg(Color::Red),
    }
}
