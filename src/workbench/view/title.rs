//! The title screen of lecture mode: the session's title, its introduction, its sections (the
//! markers' titles) and where the recording comes from, centred. What does not fit is
//! shortened with a line saying so: the sections list first, then the introduction (`?` shows
//! it whole).

use super::{Lecture, text};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;

/// The widest the text column gets (easier to read than a full-width line).
const MAX_COLUMN: u16 = 76;

pub fn render(buf: &mut Buffer, area: Rect, lecture: &Lecture) {
    if area.is_empty() {
        return;
    }
    let width = area.width.saturating_sub(4).clamp(1, MAX_COLUMN);
    let w = width as usize;
    let title_style = Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD);
    let bold = Style::new().add_modifier(Modifier::BOLD);
    let dim = Style::new().fg(Color::DarkGray);

    let title: Vec<String> = text::wrap(&lecture.title, w);
    let mut intro: Vec<String> = text::wrap(&lecture.intro, w);
    if lecture.intro.trim().is_empty() {
        intro.clear();
    }
    let wrapped: Vec<Vec<String>> = lecture
        .sections
        .iter()
        .map(|s| text::wrap_hanging(&format!("  {s}"), w, 2))
        .collect();
    let mut sections: Vec<String> = wrapped.iter().flatten().cloned().collect();
    let mut about = text::wrap(&lecture.about, w);

    // Rows: title, blank, intro, blank, "Sections", list, blank, about.
    let height = |intro: &[String], sections: &[String], about: &[String]| {
        let block = |rows: usize| if rows > 0 { rows + 1 } else { 0 };
        title.len() + 1 + block(intro.len()) + block(sections.len() + 1) + about.len()
    };
    let room = area.height as usize;
    // Too tall: where the recording comes from goes first, then sections, then the intro.
    if height(&intro, &sections, &about) > room {
        about.clear();
    }
    if height(&intro, &sections, &about) > room && wrapped.len() > 1 {
        // Whole sections while they fit, then a line counting the others.
        let over = height(&intro, &sections, &about) - room;
        let more =
            |n: usize| text::wrap_hanging(&format!("  … and {n} more (] [ jump to them)"), w, 2);
        let budget = sections.len().saturating_sub(over + more(1).len()).max(1);
        let mut kept = Vec::new();
        let mut shown = 0;
        for section in &wrapped {
            if kept.len() + section.len() > budget && shown > 0 {
                break;
            }
            kept.extend(section.iter().cloned());
            shown += 1;
        }
        if shown < wrapped.len() {
            kept.extend(more(wrapped.len() - shown));
        }
        sections = kept;
    }
    if height(&intro, &sections, &about) > room && intro.len() > 1 {
        let over = height(&intro, &sections, &about) - room;
        let keep = intro.len().saturating_sub(over + 1).max(1);
        intro.truncate(keep);
        intro.push("… (? shows the whole introduction)".into());
    }

    let mut rows: Vec<(String, Style, bool)> = Vec::new();
    rows.extend(title.into_iter().map(|r| (r, title_style, true)));
    rows.push((String::new(), dim, false));
    if !intro.is_empty() {
        rows.extend(intro.into_iter().map(|r| (r, Style::new(), false)));
        rows.push((String::new(), dim, false));
    }
    if !lecture.sections.is_empty() {
        rows.push(("Sections".into(), bold, false));
        rows.extend(sections.into_iter().map(|r| (r, Style::new(), false)));
        rows.push((String::new(), dim, false));
    }
    rows.extend(about.into_iter().map(|r| (r, dim, false)));

    let top = area.y + (area.height as usize).saturating_sub(rows.len()) as u16 / 2;
    let x = area.x + (area.width - width) / 2;
    for (i, (row, style, centred)) in rows.into_iter().enumerate() {
        let y = top + i as u16;
        if y >= area.bottom() {
            break;
        }
        let rect = Rect::new(x, y, width, 1);
        let line = Line::styled(row, style);
        if centred {
            text::put_line_centered(buf, rect, &line);
        } else {
            text::put_line(buf, rect, &line);
        }
    }
}
