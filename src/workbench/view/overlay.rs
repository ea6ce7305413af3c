//! Windows drawn over the panels (help, quit confirmation) and the "too small" notice.

use super::text;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Widget, Wrap};

/// The help text in a centred window (80% of the terminal, at least 40×10 when there is
/// room), wrapped at word boundaries (continuation rows of indented lines indented more),
/// scrolled so that source
/// line `scroll` is at the top (at most the last line, so every row can be reached).
pub fn help(buf: &mut Buffer, area: Rect, text: &str, scroll: usize) {
    let width = (area.width as u32 * 4 / 5).max(40).min(area.width as u32) as u16;
    let height = (area.height as u32 * 4 / 5).max(10).min(area.height as u32) as u16;
    let popup = area.centered(Constraint::Length(width), Constraint::Length(height));
    let style = Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD);
    let block = Block::bordered()
        .border_style(style)
        .title(Span::styled("Help", style))
        .title_bottom(Line::styled(
            " ↑↓ scroll · Esc close ",
            Style::new().fg(Color::DarkGray),
        ));
    Clear.render(popup, buf);
    let inner = block.inner(popup);
    block.render(popup, buf);
    let lines: Vec<&str> = text.lines().collect();
    let first = scroll.min(lines.len().saturating_sub(1));
    let mut y = inner.y;
    for line in lines.iter().skip(first) {
        // Table rows (indented) wrap under their second column; prose does not hang.
        for row in text::wrap_table_row(line, inner.width as usize) {
            if y >= inner.bottom() {
                return;
            }
            text::put_line(buf, Rect::new(inner.x, y, inner.width, 1), &Line::raw(row));
            y += 1;
        }
    }
}

/// "Unsaved work: quit anyway? (y/n)" in a small centred window.
pub fn confirm_quit(buf: &mut Buffer, area: Rect) {
    let popup = area.centered(Constraint::Length(38), Constraint::Length(3));
    let style = Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD);
    let block = Block::bordered()
        .border_style(style)
        .title(Span::styled("Quit", style));
    Clear.render(popup, buf);
    let inner = block.inner(popup);
    block.render(popup, buf);
    text::put_centered(
        buf,
        inner,
        &Span::styled("Unsaved work: quit anyway? (y/n)", style),
    );
}

/// The notice drawn instead of the workbench below the minimum size.
pub fn too_small(frame: &mut ratatui::Frame, area: Rect) {
    if area.is_empty() {
        return;
    }
    let message = format!(
        "terminal too small: {}x{}, need at least {}x{}",
        area.width,
        area.height,
        super::MIN_WIDTH,
        super::MIN_HEIGHT
    );
    let paragraph = Paragraph::new(message.clone())
        .style(Style::new().fg(Color::Yellow))
        .centered()
        .wrap(Wrap { trim: true });
    // Word wrapping may need a line more than the character count says.
    let chars = text::width(&message).div_ceil(area.width as usize);
    let lines = if chars > 1 { chars + 1 } else { chars };
    let top = (area.height as usize).saturating_sub(lines) / 2;
    let rows = Rect::new(
        area.x,
        area.y + top as u16,
        area.width,
        area.height - top as u16,
    );
    frame.render_widget(paragraph, rows);
}
