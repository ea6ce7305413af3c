//! The Log panel: the newest rows that fit, scrolled up by `log_scroll` rows; commands echoed
//! with "> ", warnings yellow, errors red. Long lines wrap at word boundaries (continuation
//! rows indented), and every line of a multi-line message is shown.

use super::{draw_panel, text};
use crate::lab::snapshot::{LogLevel, LogLine};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;

/// The rows of the log at `width` columns, oldest first, each with its style.
pub fn rows(log: &[LogLine], width: usize) -> Vec<(String, Style)> {
    let mut rows = Vec::new();
    for line in log {
        let (prefix, style) = match line.level {
            LogLevel::Info => ("", Style::new()),
            LogLevel::Command => (
                "> ",
                Style::new()
                    .fg(Color::LightBlue)
                    .add_modifier(Modifier::BOLD),
            ),
            LogLevel::Warning => ("", Style::new().fg(Color::Yellow)),
            LogLevel::Error => ("", Style::new().fg(Color::Red)),
        };
        for (i, part) in line.text.lines().enumerate() {
            let lead = if i == 0 { prefix } else { "" };
            for row in crate::text::wrap(&format!("{lead}{part}"), width) {
                rows.push((text::fit(&row, width), style));
            }
        }
    }
    rows
}

pub fn render(buf: &mut Buffer, area: Rect, log: &[LogLine], scroll: usize, focused: bool) {
    let width = area.width.saturating_sub(2) as usize;
    let visible_rows = area.height.saturating_sub(2) as usize;
    let rows = rows(log, width);
    // Never scroll past the oldest row: the window stays full when there are enough rows.
    let scroll = scroll.min(rows.len().saturating_sub(visible_rows));
    let title = if scroll > 0 {
        format!("Log · scrolled up {scroll} (newest below)")
    } else {
        "Log".to_string()
    };
    let inner = draw_panel(buf, area, title, focused);
    if inner.is_empty() {
        return;
    }
    let end = rows.len() - scroll;
    let start = end.saturating_sub(inner.height as usize);
    for (i, (content, style)) in rows[start..end].iter().enumerate() {
        let row = Rect::new(inner.x, inner.y + i as u16, inner.width, 1);
        text::put_line(buf, row, &Line::styled(content.as_str(), *style));
    }
}
