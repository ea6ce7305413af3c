//! The status line: what is loaded, where training stands, and whether the engine is busy.
//! Fields are dropped least important first until the line fits; it never wraps.

use super::text;
use crate::lab::snapshot::Status;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};

/// Where a field goes: the left group reads left to right, the right group is flush right.
#[derive(Clone, Copy, PartialEq)]
enum Side {
    Left,
    Right,
}

struct Field {
    /// Position on the line, left to right.
    order: usize,
    side: Side,
    text: String,
    style: Style,
    /// May be cut with '…' (down to a few columns) instead of dropped.
    truncatable: bool,
}

const SEPARATOR: &str = " │ ";

pub fn render(buf: &mut Buffer, area: Rect, status: &Status) {
    if area.is_empty() {
        return;
    }
    let all = fields_by_priority(status);
    let every_field_whole = line_width(&all, None);
    let room = area.width as usize;
    let mut fields = fit_fields(all, room);
    // The device comes last: shown only where every other field fits whole (then `fields`
    // holds them all) with a column to spare.
    let device = Field {
        order: 8,
        side: Side::Right,
        text: status.device.clone(),
        style: Style::new().fg(Color::Cyan),
        truncatable: false,
    };
    if !device.text.is_empty() && every_field_whole + 1 + text::width(&device.text) <= room {
        fields.push(device);
        fields.sort_by_key(|f| f.order);
    }
    let (left, right): (Vec<&Field>, Vec<&Field>) =
        fields.iter().partition(|f| f.side == Side::Left);
    let dim = Style::new().fg(Color::DarkGray);
    let mut spans = Vec::new();
    for (i, f) in left.iter().enumerate() {
        if i > 0 {
            spans.push(Span::styled(SEPARATOR, dim));
        }
        spans.push(Span::styled(f.text.clone(), f.style));
    }
    text::put_line(buf, area, &Line::from(spans));

    let right_line = Line::from(
        right
            .iter()
            .enumerate()
            .flat_map(|(i, f)| {
                let gap = (i > 0).then(|| Span::raw(" "));
                gap.into_iter()
                    .chain([Span::styled(f.text.clone(), f.style)])
            })
            .collect::<Vec<_>>(),
    );
    let w = (text::line_width(&right_line) as u16).min(area.width);
    let x = area.x + area.width - w;
    text::put_line(buf, Rect::new(x, area.y, w, 1), &right_line);
}

/// The fields, most important first.
fn fields_by_priority(s: &Status) -> Vec<Field> {
    let plain = Style::new();
    let bold = Style::new().add_modifier(Modifier::BOLD);
    let field = |order, side, text: String, style, truncatable| Field {
        order,
        side,
        text,
        style,
        truncatable,
    };
    // The epoch under way, numbered as the log numbers it (from 1).
    let progress = match (s.epoch, s.batch) {
        (epoch, batch) if batch > 0 => {
            format!("epoch {} batch {batch}/{}", epoch + 1, s.batches)
        }
        (0, _) => "not trained yet".to_string(),
        (epoch, _) => format!("epoch {epoch} done"),
    };
    let mut fields = Vec::new();
    if s.unsaved {
        let style = Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD);
        fields.push(field(10, Side::Right, "●unsaved".into(), style, false));
    }
    fields.push(field(4, Side::Left, progress, bold, false));
    if let Some(busy) = &s.busy {
        let style = Style::new().fg(Color::Yellow);
        fields.push(field(9, Side::Right, format!("⟳ {busy}"), style, true));
    }
    fields.push(field(2, Side::Left, s.student.clone(), bold, true));
    fields.push(field(3, Side::Left, s.method.clone(), plain, true));
    fields.push(field(
        5,
        Side::Left,
        format!("ε {:.3}", s.epsilon),
        plain,
        false,
    ));
    fields.push(field(
        7,
        Side::Left,
        text::elapsed(s.elapsed_seconds),
        plain,
        false,
    ));
    fields.push(field(0, Side::Left, s.dataset.clone(), plain, true));
    if !s.teacher.is_empty() {
        let teacher = format!("teacher {}", s.teacher);
        fields.push(field(1, Side::Left, teacher, plain, true));
    }
    fields.push(field(
        6,
        Side::Left,
        format!("seed {}", s.seed),
        plain,
        false,
    ));
    fields.retain(|f| !f.text.is_empty());
    fields
}

/// Keeps the fields (in priority order) that fit in `width` columns whole; then cuts the
/// truncatable ones left out into what room remains (when that is at least 8 columns).
/// Returns them in display order.
fn fit_fields(by_priority: Vec<Field>, width: usize) -> Vec<Field> {
    let mut kept: Vec<Field> = Vec::new();
    let mut dropped = Vec::new();
    for f in by_priority {
        if line_width(&kept, Some(&f)) <= width {
            kept.push(f);
        } else {
            dropped.push(f);
        }
    }
    for mut f in dropped.into_iter().filter(|f| f.truncatable) {
        let room = width.saturating_sub(line_width(&kept, Some(&f)) - text::width(&f.text));
        if room >= 8 {
            f.text = text::fit(&f.text, room);
            kept.push(f);
        }
    }
    kept.sort_by_key(|f| f.order);
    kept
}

/// The width of the line holding `kept` plus `extra`.
fn line_width(kept: &[Field], extra: Option<&Field>) -> usize {
    let all: Vec<&Field> = kept.iter().chain(extra).collect();
    let group = |side| {
        let widths: Vec<usize> = all
            .iter()
            .filter(|f| f.side == side)
            .map(|f| text::width(&f.text))
            .collect();
        let gap = if side == Side::Left {
            SEPARATOR.chars().count()
        } else {
            1
        };
        widths.iter().sum::<usize>() + gap * widths.len().saturating_sub(1)
    };
    let (left, right) = (group(Side::Left), group(Side::Right));
    // Two spaces between the groups.
    left + right + if left > 0 && right > 0 { 2 } else { 0 }
}
