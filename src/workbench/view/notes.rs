//! The Notes panel (lecture mode): the current marker's note in full, wrapped at word
//! boundaries and scrollable, titled with the section; before the first marker, the session's
//! introduction. While the playback waits at a marker the border is yellow and says that
//! space continues.

use super::{FOCUS, Lecture, hint, panel_block, text};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::Widget;

/// Rows of the note at `width` columns.
pub fn rows(lecture: &Lecture, width: u16) -> Vec<String> {
    text::wrap(lecture.notes_text(), width as usize)
}

/// The furthest the note scrolls in a panel of `area` (its last row at the bottom).
pub fn max_scroll(lecture: &Lecture, area: Rect) -> usize {
    let inner_rows = area.height.saturating_sub(2) as usize;
    rows(lecture, area.width.saturating_sub(2))
        .len()
        .saturating_sub(inner_rows)
}

pub fn render(buf: &mut Buffer, area: Rect, lecture: &Lecture, scroll: usize, focused: bool) {
    let title = match lecture.section {
        Some(i) => format!(
            "■ {} · section {} of {}",
            lecture.sections.get(i).map_or("", String::as_str),
            i + 1,
            lecture.sections.len()
        ),
        None if !lecture.intro.is_empty() => "Introduction".to_string(),
        None => "Notes".to_string(),
    };
    let waiting = lecture.at_marker && !lecture.playing;
    let mut block = panel_block(title, focused);
    if waiting && !focused {
        let attention = Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD);
        block = block.border_style(attention).title_style(attention);
    }
    let inner = block.inner(area);
    block.render(area, buf);
    if inner.is_empty() {
        return;
    }
    let rows = rows(lecture, inner.width);
    if lecture.notes_text().trim().is_empty() {
        let message = match lecture.section {
            Some(_) => "this section has no note",
            None => "no section yet: ] jumps to the first",
        };
        hint(buf, inner, message);
        return;
    }
    let scroll = scroll.min(rows.len().saturating_sub(inner.height as usize));
    for (i, row) in rows
        .iter()
        .skip(scroll)
        .take(inner.height as usize)
        .enumerate()
    {
        let at = Rect::new(inner.x, inner.y + i as u16, inner.width, 1);
        text::put_line(buf, at, &Line::raw(row.as_str()));
    }
    let below = rows.len().saturating_sub(scroll + inner.height as usize);
    let dim = Style::new().fg(Color::DarkGray);
    let mut footer = Vec::new();
    if waiting {
        footer.push((" space continues ".to_string(), FOCUS));
    }
    if scroll > 0 {
        footer.push((format!(" ↑ {scroll} above "), dim));
    }
    if below > 0 {
        footer.push((format!(" ↓ {below} more · ? shows it all "), dim));
    }
    let mut x = area.x + 1;
    for (label, style) in footer {
        let w = text::width(&label) as u16;
        if x + w >= area.right() {
            break;
        }
        text::put_line(
            buf,
            Rect::new(x, area.bottom() - 1, w, 1),
            &Line::styled(label, style),
        );
        x += w;
    }
}
