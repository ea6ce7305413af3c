//! The Log panel: the newest lines that fit, scrolled up by `log_scroll`; commands echoed
//! with "> ", warnings yellow, errors red. Lines are cut, never wrapped.

use super::{draw_panel, text};
use crate::lab::snapshot::{LogLevel, LogLine};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;

pub fn render(buf: &mut Buffer, area: Rect, log: &[LogLine], scroll: usize, focused: bool) {
    let visible_rows = area.height.saturating_sub(2) as usize;
    // Never scroll past the oldest line: the window stays full when there are enough lines.
    let scroll = scroll.min(log.len().saturating_sub(visible_rows));
    let title = if scroll > 0 {
        format!("Log · scrolled up {scroll} (newest below)")
    } else {
        "Log".to_string()
    };
    let inner = draw_panel(buf, area, title, focused);
    if inner.is_empty() {
        return;
    }
    let end = log.len() - scroll;
    let start = end.saturating_sub(inner.height as usize);
    for (i, line) in log[start..end].iter().enumerate() {
        let row = Rect::new(inner.x, inner.y + i as u16, inner.width, 1);
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
        // Only the first line of a multi-line message fits a row.
        let first = line.text.lines().next().unwrap_or("");
        let content = text::fit(&format!("{prefix}{first}"), inner.width as usize);
        text::put_line(buf, row, &Line::styled(content, style));
    }
}
