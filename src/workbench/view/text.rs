//! Small text helpers shared by the panels: display widths, truncation with an ellipsis, and
//! writing clipped to a rectangle (nothing here writes outside the rectangle it is given).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

/// Display width of a string in terminal columns.
pub fn width(s: &str) -> usize {
    Span::raw(s).width()
}

/// Display width of one character.
fn char_width(c: char) -> usize {
    let mut utf8 = [0u8; 4];
    width(c.encode_utf8(&mut utf8))
}

/// `s` cut to at most `max` columns, ending in '…' when something was cut.
pub fn fit(s: &str, max: usize) -> String {
    if width(s) <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = char_width(c);
        if used + w > max - 1 {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

/// Total display width of a line.
pub fn line_width(line: &Line) -> usize {
    line.width()
}

/// Writes `line` on the first row of `area`, left-aligned, clipped to the area's width.
pub fn put_line(buf: &mut Buffer, area: Rect, line: &Line) {
    if area.is_empty() {
        return;
    }
    buf.set_line(area.x, area.y, line, area.width);
}

/// Writes `span` centred on the first row of `area`, truncated with '…' when too wide.
pub fn put_centered(buf: &mut Buffer, area: Rect, span: &Span) {
    if area.is_empty() {
        return;
    }
    let content = fit(&span.content, area.width as usize);
    let w = width(&content) as u16;
    let x = area.x + (area.width - w.min(area.width)) / 2;
    buf.set_stringn(x, area.y, &content, area.width as usize, span.style);
}

/// Like [`put_centered`] for a line of several spans; falls back to left-aligned clipping
/// when the line is wider than the area.
pub fn put_line_centered(buf: &mut Buffer, area: Rect, line: &Line) {
    if area.is_empty() {
        return;
    }
    let w = line_width(line).min(area.width as usize) as u16;
    let x = area.x + (area.width - w) / 2;
    buf.set_line(x, area.y, line, area.width - (x - area.x));
}

/// Picks the first candidate that fits in `max` columns, or the last one cut to fit.
pub fn first_fitting(candidates: &[String], max: usize) -> String {
    candidates
        .iter()
        .find(|c| width(c) <= max)
        .cloned()
        .unwrap_or_else(|| fit(candidates.last().map_or("", String::as_str), max))
}

/// Legend items on one line, two spaces apart.
pub fn legend(items: Vec<Vec<Span<'static>>>) -> Line<'static> {
    let mut spans = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            spans.push(Span::raw("  "));
        }
        spans.extend(item);
    }
    Line::from(spans)
}

/// The first line that fits in `max` columns, or the last one (the shortest variant).
pub fn first_fitting_line(lines: Vec<Line<'static>>, max: usize) -> Line<'static> {
    let index = lines
        .iter()
        .position(|l| line_width(l) <= max)
        .unwrap_or(lines.len().saturating_sub(1));
    lines.into_iter().nth(index).unwrap_or_default()
}

/// Elapsed time as m:ss below an hour, h:mm:ss from there; negative or NaN as 0:00.
pub fn elapsed(seconds: f64) -> String {
    let total = if seconds.is_finite() && seconds > 0.0 {
        seconds as u64
    } else {
        0
    };
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// The index of the largest finite probability (first on ties), None when there is none.
pub fn argmax(values: &[f32]) -> Option<usize> {
    let mut best: Option<(usize, f32)> = None;
    for (i, &v) in values.iter().enumerate() {
        if v.is_finite() && best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    }
    best.map(|(i, _)| i)
}

/// A class's display name: its entry in `names`, or its index.
pub fn class_name(names: &[String], class: usize) -> String {
    names
        .get(class)
        .cloned()
        .unwrap_or_else(|| class.to_string())
}

pub use crate::text::{wrap, wrap_hanging, wrap_table_row};
