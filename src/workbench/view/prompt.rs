//! The prompt line ("› " and the text, with the cursor), the completions line above it, and
//! the key help below it.

use super::{KEY_HELP, Panel, UiState, text};
use ratatui::buffer::Buffer;
use ratatui::layout::{Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};

const PROMPT: &str = "› ";

/// Draws the prompt; returns where the cursor goes when the prompt has the focus.
/// `key_help_as_hint`: with nothing typed and no hint, show the key help greyed instead
/// (when the terminal has no row for it).
pub fn render(
    buf: &mut Buffer,
    area: Rect,
    ui: &UiState,
    key_help_as_hint: bool,
) -> Option<Position> {
    if area.is_empty() {
        return None;
    }
    let focused = ui.focus == Panel::Prompt;
    if let Some(search) = &ui.search {
        let found = search.found.as_deref().unwrap_or("(no match)");
        let line = Line::from(vec![
            Span::styled(
                "history search ",
                Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
            ),
            Span::raw(format!("`{}`: ", search.query)),
            Span::styled(found.to_string(), Style::new().add_modifier(Modifier::BOLD)),
            Span::styled(
                "  (Ctrl-R older · Enter take · Esc cancel)",
                Style::new().fg(Color::DarkGray),
            ),
        ]);
        text::put_line(buf, area, &line);
        return None;
    }
    let marker_style = if focused {
        Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD)
    } else {
        Style::new().fg(Color::DarkGray)
    };
    let prefix_w = text::width(PROMPT) as u16;
    let room = area.width.saturating_sub(prefix_w) as usize;
    // Scroll the text left so the cursor stays visible.
    let chars: Vec<char> = ui.prompt.chars().collect();
    let cursor = ui.cursor.min(chars.len());
    let col_of = |n: usize| text::width(&chars[..n].iter().collect::<String>());
    let mut first = 0;
    while first < cursor && col_of(cursor) - col_of(first) >= room {
        first += 1;
    }
    let shown: String = chars[first..].iter().collect();
    let hint = match &ui.hint {
        Some(h) => h.clone(),
        None if key_help_as_hint && ui.prompt.is_empty() => format!("  {KEY_HELP}"),
        None => String::new(),
    };
    let hint = text::fit(&hint, room.saturating_sub(text::width(&shown)));
    let line = Line::from(vec![
        Span::styled(PROMPT, marker_style),
        Span::raw(shown),
        Span::styled(hint, Style::new().fg(Color::DarkGray)),
    ]);
    text::put_line(buf, area, &line);
    let x = area.x + prefix_w + (col_of(cursor) - col_of(first)) as u16;
    (focused && x < area.right()).then_some(Position::new(x, area.y))
}

/// The completion candidates on one line, with "+N" for those that do not fit.
pub fn render_completions(buf: &mut Buffer, area: Rect, completions: &[String]) {
    let width = area.width as usize;
    let mut shown = String::from("  ");
    let mut count = 0;
    for (i, c) in completions.iter().enumerate() {
        let rest = completions.len() - i - 1;
        let more = if rest > 0 {
            format!("  +{rest}")
        } else {
            String::new()
        };
        if text::width(&shown) + text::width(c) + text::width(&more) + 2 > width {
            break;
        }
        shown.push_str(c);
        shown.push_str("  ");
        count += 1;
    }
    if count < completions.len() {
        shown.push_str(&format!("+{}", completions.len() - count));
    }
    let style = Style::new().fg(Color::Yellow);
    text::put_line(
        buf,
        area,
        &Line::styled(text::fit(shown.trim_end(), width), style),
    );
}

pub fn render_keys(buf: &mut Buffer, area: Rect) {
    let content = text::fit(KEY_HELP, area.width as usize);
    text::put_line(
        buf,
        area,
        &Line::styled(content, Style::new().fg(Color::DarkGray)),
    );
}
