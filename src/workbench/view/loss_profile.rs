//! The loss around one test image, from the last `diagnose`: cross-entropy along the sign of
//! the input gradient and along random sign directions (their highest and their mean), at
//! offsets from 0 to ε. Drawn beside the training curves in the Curves panel when it has the
//! room. A gradient that does its job raises the loss fastest; a random direction above it
//! means the gradient points the wrong way there (a sign of gradient masking).
//!
//! The title says which student it was computed on, trained how far, and says "stale" once
//! the student has trained since.

use super::{draw_panel, hint, text};
use crate::lab::snapshot::{DiagnosisView, Status};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, Widget};

const GRADIENT: Color = Color::Red;
const RANDOM: Color = Color::Cyan;

/// The smallest plot worth drawing, borders included.
const MIN_WIDTH: u16 = 30;
const MIN_HEIGHT: u16 = 8;

/// Where the training curves and the loss plot go in the Curves panel's `area`: side by
/// side when both get [`MIN_WIDTH`] columns, one over the other when both get [`MIN_HEIGHT`]
/// rows, otherwise None (the curves alone).
pub fn split(area: Rect) -> Option<(Rect, Rect)> {
    if area.width >= 2 * MIN_WIDTH && area.height >= MIN_HEIGHT {
        let right = area.width / 2;
        let left = area.width - right;
        Some((
            Rect::new(area.x, area.y, left, area.height),
            Rect::new(area.x + left, area.y, right, area.height),
        ))
    } else if area.height >= 2 * MIN_HEIGHT && area.width >= MIN_WIDTH {
        let bottom = area.height / 2;
        let top = area.height - bottom;
        Some((
            Rect::new(area.x, area.y, area.width, top),
            Rect::new(area.x, area.y + top, area.width, bottom),
        ))
    } else {
        None
    }
}

pub fn render(
    buf: &mut Buffer,
    area: Rect,
    diagnosis: &DiagnosisView,
    status: &Status,
    focused: bool,
) {
    let width = area.width.saturating_sub(2) as usize;
    let inner = draw_panel(buf, area, title(diagnosis, status, width), focused);
    if inner.is_empty() {
        return;
    }
    let mut rows = inner;
    if rows.height >= 5 {
        text::put_line(buf, rows, &verdict_line(diagnosis, rows.width as usize));
        rows.y += 1;
        rows.height -= 1;
    }
    if diagnosis.offsets.is_empty() {
        hint(buf, rows, "no image classified correctly");
        return;
    }
    let (plot, legend) = if rows.height >= 4 {
        let plot = Rect::new(rows.x, rows.y, rows.width, rows.height - 1);
        (plot, Some(Rect::new(rows.x, plot.bottom(), rows.width, 1)))
    } else {
        (rows, None)
    };
    render_chart(buf, plot, diagnosis);
    if let Some(row) = legend {
        text::put_line(buf, row, &legend_line(diagnosis, row.width as usize));
    }
}

/// The most detailed title that fits `width`: which image, after how much training, and
/// "stale" when the student has trained since (e.g. "Loss around test image 7 · after 3
/// epochs + 12 batches · stale: trained since"). Shorter variants keep the training and
/// "stale" and cut the words around them.
fn title(d: &DiagnosisView, status: &Status, width: usize) -> String {
    let trained = if d.epochs == 0 && d.batches == 0 {
        "before training".to_string()
    } else {
        let epochs = crate::text::count(d.epochs, "epoch", "epochs");
        match d.batches {
            0 => format!("after {epochs}"),
            b => format!(
                "after {epochs} + {}",
                crate::text::count(b, "batch", "batches")
            ),
        }
    };
    let short = match d.batches {
        0 => format!("{} ep", d.epochs),
        b => format!("{} ep + {b} b", d.epochs),
    };
    let (stale_long, stale_short) = if d.is_stale(status) {
        (" · stale: trained since", " · stale")
    } else {
        ("", "")
    };
    let (head_long, head_short) = match d.image {
        Some(i) => (
            format!("Loss around test image {i}"),
            format!("Loss · image {i}"),
        ),
        None => ("Loss profile".to_string(), "Loss".to_string()),
    };
    text::first_fitting(
        &[
            format!("{head_long} · {trained}{stale_long}"),
            format!("{head_short} · {trained}{stale_long}"),
            format!("{head_short} · {trained}{stale_short}"),
            format!("{head_short} · {short}{stale_short}"),
            format!("Loss · {short}{stale_short}"),
        ],
        width,
    )
}

/// "⚠ 2 of 8 checks suggest masking · micro-cnn rslad α=0.833 · 200 images, ε 0.300", or
/// "✓ no sign of gradient masking · …", cut to what fits.
fn verdict_line(d: &DiagnosisView, width: usize) -> Line<'static> {
    let (mark, words, style) = if d.flagged == 0 {
        (
            "✓",
            "no sign of gradient masking".to_string(),
            Style::new().fg(Color::Green),
        )
    } else {
        (
            "⚠",
            format!("{} of {} checks suggest masking", d.flagged, d.checks),
            Style::new().fg(Color::Yellow),
        )
    };
    let details = [
        format!(
            " · {} {} · {} images, ε {:.3}",
            d.model, d.method, d.images, d.epsilon
        ),
        format!(" · {} images, ε {:.3}", d.images, d.epsilon),
        format!(" · ε {:.3}", d.epsilon),
        String::new(),
    ];
    let head = format!("{mark} {words}");
    let rest = width.saturating_sub(text::width(&head));
    let detail = details
        .iter()
        .find(|t| text::width(t) <= rest)
        .cloned()
        .unwrap_or_default();
    Line::from(vec![
        Span::styled(text::fit(&head, width), style),
        Span::styled(detail, Style::new().fg(Color::DarkGray)),
    ])
}

/// (offset, loss) points, leaving out non-finite losses.
fn points(offsets: &[f32], losses: &[f32]) -> Vec<(f64, f64)> {
    offsets
        .iter()
        .zip(losses)
        .map(|(&t, &l)| (f64::from(t), f64::from(l)))
        .filter(|(t, l)| t.is_finite() && l.is_finite())
        .collect()
}

fn render_chart(buf: &mut Buffer, area: Rect, d: &DiagnosisView) {
    if area.is_empty() {
        return;
    }
    let gradient = points(&d.offsets, &d.along_gradient);
    let highest = points(&d.offsets, &d.random_max);
    let mean = points(&d.offsets, &d.random_mean);
    let all = || gradient.iter().chain(&highest).chain(&mean);
    let top = all().map(|p| p.1).fold(0.0f64, f64::max);
    let top = if top > 0.0 { top * 1.05 } else { 1.0 };
    let (x0, x1) = all().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
        (lo.min(p.0), hi.max(p.0))
    });
    let (x0, x1) = if x1 > x0 { (x0, x1) } else { (0.0, 1.0) };
    // A single offset has no segment to draw: show it as a point.
    let graph = if d.offsets.len() > 1 {
        GraphType::Line
    } else {
        GraphType::Scatter
    };
    let datasets = vec![
        Dataset::default()
            .marker(Marker::Braille)
            .graph_type(graph)
            .style(Style::new().fg(RANDOM).add_modifier(Modifier::DIM))
            .data(&mean),
        Dataset::default()
            .marker(Marker::Braille)
            .graph_type(graph)
            .style(Style::new().fg(RANDOM))
            .data(&highest),
        // Drawn last: on top where the lines cross.
        Dataset::default()
            .marker(Marker::Braille)
            .graph_type(graph)
            .style(Style::new().fg(GRADIENT))
            .data(&gradient),
    ];
    let axis_style = Style::new().fg(Color::DarkGray);
    let multiple = |t: f64| {
        if t == 0.0 {
            "0".to_string()
        } else if t == 1.0 {
            "ε".to_string()
        } else {
            format!("{t}ε")
        }
    };
    let chart =
        Chart::new(datasets)
            .legend_position(None)
            .x_axis(Axis::default().bounds([x0, x1]).style(axis_style).labels(
                if area.height >= 6 {
                    vec![multiple(x0), multiple(x1)]
                } else {
                    Vec::new()
                },
            ))
            .y_axis(
                Axis::default()
                    .bounds([0.0, top])
                    .style(axis_style)
                    .labels(["0".to_string(), format!("{top:.2}")]),
            );
    chart.render(area, buf);
}

/// The legend, the most detailed variant that fits: "━ along sign(∇) 2.31  ━ random,
/// highest 0.51  ━ mean 0.30" (the losses at the largest offset), then without the mean,
/// then with short names, then without numbers.
fn legend_line(d: &DiagnosisView, width: usize) -> Line<'static> {
    let at_end = |v: &[f32]| v.last().map_or(String::new(), |l| format!(" {l:.2}"));
    let item = |style: Style, label: String| vec![Span::styled("━ ", style), Span::raw(label)];
    let gradient = Style::new().fg(GRADIENT);
    let random = Style::new().fg(RANDOM);
    let mean = Style::new().fg(RANDOM).add_modifier(Modifier::DIM);
    let variant = |numbers: bool, with_mean: bool, long: bool| {
        let value = |v: &[f32]| if numbers { at_end(v) } else { String::new() };
        let (g, r, m) = if long {
            ("along sign(∇)", "random, highest", "mean")
        } else {
            ("sign(∇)", "random max", "mean")
        };
        let mut items = vec![
            item(gradient, format!("{g}{}", value(&d.along_gradient))),
            item(random, format!("{r}{}", value(&d.random_max))),
        ];
        if with_mean {
            items.push(item(mean, format!("{m}{}", value(&d.random_mean))));
        }
        text::legend(items)
    };
    let lines = vec![
        variant(true, true, true),
        variant(true, false, true),
        variant(true, true, false),
        variant(true, false, false),
        variant(false, false, false),
    ];
    text::first_fitting_line(lines, width)
}
