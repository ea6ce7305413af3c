//! The Soft labels panel: per class, the teacher's and the student's probabilities on the
//! natural image (left group) and on the adversarial one (right group), as horizontal bars.
//!
//! With fewer rows than classes it shows the top k classes by their largest probability in
//! any of the four distributions, in class order, always including the true class.

use super::{draw_panel, hint, panel_block, text};
use crate::lab::snapshot::SampleView;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

const TEACHER: Color = Color::Magenta;
const STUDENT: Color = Color::Cyan;
/// Longest class name shown (CIFAR-10's "automobile" is 10).
const MAX_NAME: usize = 10;
/// Bar cells per eighth: index = eighths of a cell covered.
const EIGHTHS: [&str; 8] = [" ", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];

pub fn render(
    buf: &mut Buffer,
    area: Rect,
    sample: Option<&SampleView>,
    focused: bool,
    empty_hint: &str,
) {
    let Some(sample) = sample else {
        let inner = draw_panel(buf, area, "Soft labels", focused);
        hint(buf, inner, empty_hint);
        return;
    };
    let title = format!("Soft labels · sample {}/{}", sample.index, sample.of);
    let block = panel_block(title, focused);
    let inner = block.inner(area);
    let header_rows = u16::from(inner.height >= 2);
    let classes = class_count(sample);
    let shown = shown_classes(sample, classes, (inner.height - header_rows) as usize);
    let block = block.title_bottom(footer(sample, shown.len(), classes));
    block.render(area, buf);
    if inner.is_empty() || shown.is_empty() {
        return;
    }
    let geometry = Geometry::new(sample, &shown, inner.width);
    if header_rows == 1 {
        render_header(buf, inner, &geometry);
    }
    for (i, &class) in shown.iter().enumerate() {
        let y = inner.y + header_rows + i as u16;
        render_class(
            buf,
            Rect::new(inner.x, y, inner.width, 1),
            sample,
            class,
            &geometry,
        );
    }
}

/// The number of classes: the longest of the names and the distributions.
fn class_count(sample: &SampleView) -> usize {
    [
        Some(sample.class_names.len()),
        Some(sample.student_natural.len()),
        Some(sample.student_adversarial.len()),
        sample.teacher_natural.as_ref().map(Vec::len),
        sample.teacher_adversarial.as_ref().map(Vec::len),
    ]
    .into_iter()
    .flatten()
    .max()
    .unwrap_or(0)
}

/// The classes shown in `rows` rows: all of them when they fit, otherwise the top `rows` by
/// largest probability over the four distributions (the true class always among them),
/// in class order.
fn shown_classes(sample: &SampleView, classes: usize, rows: usize) -> Vec<usize> {
    if classes <= rows {
        return (0..classes).collect();
    }
    if rows == 0 {
        return Vec::new();
    }
    let score = |c: usize| {
        distributions(sample)
            .iter()
            .map(|(_, _, d)| prob(d, c))
            .fold(0.0f32, f32::max)
    };
    let mut ranked: Vec<usize> = (0..classes).collect();
    ranked.sort_by(|&a, &b| score(b).total_cmp(&score(a)).then(a.cmp(&b)));
    ranked.truncate(rows);
    if sample.true_class < classes && !ranked.contains(&sample.true_class) {
        ranked[rows - 1] = sample.true_class;
    }
    ranked.sort_unstable();
    ranked
}

/// The distributions drawn, in column order: (group, is teacher, probabilities).
fn distributions(sample: &SampleView) -> Vec<(usize, bool, &[f32])> {
    let mut out = Vec::new();
    for (group, teacher, student) in [
        (0, &sample.teacher_natural, &sample.student_natural),
        (1, &sample.teacher_adversarial, &sample.student_adversarial),
    ] {
        if let Some(t) = teacher {
            out.push((group, true, t.as_slice()));
        }
        out.push((group, false, student.as_slice()));
    }
    out
}

/// A probability, 0 when missing or not finite, clamped to [0, 1].
fn prob(values: &[f32], class: usize) -> f32 {
    values
        .get(class)
        .copied()
        .filter(|v| v.is_finite())
        .map_or(0.0, |v| v.clamp(0.0, 1.0))
}

/// "■ teacher ■ student · top 5 of 10", or "■ student · no teacher".
fn footer(sample: &SampleView, shown: usize, classes: usize) -> Line<'static> {
    let mut spans = Vec::new();
    if sample.teacher_natural.is_some() || sample.teacher_adversarial.is_some() {
        spans.push(Span::styled("■", Style::new().fg(TEACHER)));
        spans.push(Span::raw(" teacher "));
    }
    spans.push(Span::styled("■", Style::new().fg(STUDENT)));
    spans.push(Span::raw(" student"));
    if sample.teacher_natural.is_none() && sample.teacher_adversarial.is_none() {
        spans.push(Span::raw(" · no teacher"));
    }
    if shown < classes {
        spans.push(Span::raw(format!(" · top {shown} of {classes}")));
    }
    Line::from(spans)
}

/// Column positions, relative to the panel's inner left edge.
struct Geometry {
    name_width: u16,
    /// Left edge of each group, and its width.
    groups: [(u16, u16); 2],
    /// Cells per bar column (bar plus number).
    bar_width: u16,
    /// Bars per group: 2 with a teacher, 1 without.
    bars: u16,
}

impl Geometry {
    fn new(sample: &SampleView, shown: &[usize], width: u16) -> Self {
        let name_width = shown
            .iter()
            .map(|&c| text::width(&text::class_name(&sample.class_names, c)))
            .max()
            .unwrap_or(1)
            .min(MAX_NAME) as u16;
        let label = (name_width + 2).min(width);
        // " │ " between the groups.
        let group = width.saturating_sub(label + 3) / 2;
        let has_teacher = sample.teacher_natural.is_some() || sample.teacher_adversarial.is_some();
        let bars = if has_teacher { 2 } else { 1 };
        let bar_width = group.saturating_sub(bars - 1) / bars;
        Self {
            name_width,
            groups: [(label, group), (label + group + 3, group)],
            bar_width,
            bars,
        }
    }
}

fn render_header(buf: &mut Buffer, inner: Rect, g: &Geometry) {
    let style = Style::new().fg(Color::Gray).add_modifier(Modifier::BOLD);
    for ((x, w), name) in g.groups.iter().zip(["natural", "adversarial"]) {
        let row = Rect::new(inner.x + x, inner.y, *w, 1).intersection(inner);
        text::put_centered(buf, row, &Span::styled(name, style));
    }
}

fn render_class(buf: &mut Buffer, row: Rect, sample: &SampleView, class: usize, g: &Geometry) {
    let is_true = class == sample.true_class;
    let name = text::fit(
        &text::class_name(&sample.class_names, class),
        g.name_width as usize,
    );
    let (marker, style) = if is_true {
        (
            "▶",
            Style::new().fg(Color::Green).add_modifier(Modifier::BOLD),
        )
    } else {
        (" ", Style::new())
    };
    let label = Line::from(vec![
        Span::styled(marker, style),
        Span::styled(format!("{name:>w$}", w = g.name_width as usize), style),
    ]);
    text::put_line(buf, row, &label);
    let separator_x = g.groups[1].0.saturating_sub(2);
    let sep = Rect::new(row.x + separator_x, row.y, 1, 1).intersection(row);
    text::put_line(
        buf,
        sep,
        &Line::styled("│", Style::new().fg(Color::DarkGray)),
    );
    let mut slot = [0u16; 2];
    for (group, teacher, probs) in distributions(sample) {
        let (gx, _) = g.groups[group];
        let x = gx + slot[group] * (g.bar_width + 1);
        slot[group] += 1;
        if slot[group] > g.bars {
            continue;
        }
        let color = if teacher { TEACHER } else { STUDENT };
        let cell = Rect::new(row.x + x, row.y, g.bar_width, 1).intersection(row);
        render_bar(buf, cell, prob(probs, class), color);
    }
}

/// A bar of `p` in [0, 1] over the area's width in eighths of a cell, followed by the
/// percentage (3 columns) when the area is at least 7 columns wide.
fn render_bar(buf: &mut Buffer, area: Rect, p: f32, color: Color) {
    if area.is_empty() {
        return;
    }
    let with_number = area.width >= 7;
    let bar_cells = if with_number {
        area.width - 4
    } else {
        area.width
    };
    let eighths = (p * bar_cells as f32 * 8.0).round() as usize;
    let mut bar = "█".repeat(eighths / 8);
    let partial = eighths % 8;
    if partial > 0 {
        bar.push_str(EIGHTHS[partial]);
    }
    let bar = format!("{bar:<w$}", w = bar_cells as usize);
    let mut spans = vec![Span::styled(bar, Style::new().fg(color))];
    if with_number {
        let percent = (p * 100.0).round() as u32;
        spans.push(Span::styled(
            format!(" {percent:>3}"),
            Style::new().fg(Color::Gray),
        ));
    }
    text::put_line(buf, area, &Line::from(spans));
}
