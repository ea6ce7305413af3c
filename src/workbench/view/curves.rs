//! The Curves panel: clean and robust accuracy per epoch (with the teacher's as dotted
//! reference lines), a one-line legend, and the current epoch's batch losses as a sparkline.

use super::{draw_panel, hint, text};
use crate::lab::snapshot::Curves;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, Sparkline, Widget};

const CLEAN: Color = Color::Green;
const ROBUST: Color = Color::Red;
/// Columns left of the sparkline for its label.
const SPARK_LABEL: u16 = 6;

pub fn render(buf: &mut Buffer, area: Rect, curves: &Curves, focused: bool, empty_hint: &str) {
    let inner = draw_panel(buf, area, title(curves), focused);
    if inner.is_empty() {
        return;
    }
    let spark_rows = match (curves.batch_losses.is_empty(), inner.height) {
        (true, _) => 0,
        (false, h) if h >= 14 => 3,
        (false, h) if h >= 7 => 2,
        (false, h) if h >= 3 => 1,
        _ => 0,
    };
    let chart_area = Rect::new(inner.x, inner.y, inner.width, inner.height - spark_rows);
    let spark_area = Rect::new(inner.x, chart_area.bottom(), inner.width, spark_rows);
    if curves.epochs.is_empty() {
        hint(buf, chart_area, empty_hint);
    } else {
        render_chart(buf, chart_area, curves);
    }
    render_losses(buf, spark_area, &curves.batch_losses);
}

/// "Curves · epoch 3 · loss 0.4123" (the last finished epoch's loss).
fn title(curves: &Curves) -> String {
    match curves.epochs.last() {
        Some(p) => format!("Curves · epoch {} · loss {:.4}", p.epoch, p.loss),
        None => "Curves".to_string(),
    }
}

/// The accuracy chart with its legend on the last row (when there are at least 4 rows).
fn render_chart(buf: &mut Buffer, area: Rect, curves: &Curves) {
    let (plot, legend) = if area.height >= 4 {
        let plot = Rect::new(area.x, area.y, area.width, area.height - 1);
        (plot, Some(Rect::new(area.x, plot.bottom(), area.width, 1)))
    } else {
        (area, None)
    };
    let clean: Vec<(f64, f64)> = curves
        .epochs
        .iter()
        .map(|p| (p.epoch as f64, p.clean))
        .collect();
    let robust: Vec<(f64, f64)> = curves
        .epochs
        .iter()
        .filter_map(|p| p.robust.map(|r| (p.epoch as f64, r)))
        .collect();
    let (x0, x1) = x_bounds(curves);
    // The y labels and the axis take about 5 columns; one dot per remaining column.
    let columns = plot.width.saturating_sub(5).max(1) as usize;
    let teacher_clean = curves.teacher_clean.map(|y| dotted(y, x0, x1, columns));
    let teacher_robust = curves.teacher_robust.map(|y| dotted(y, x0, x1, columns));

    let mut datasets = Vec::new();
    let dim = |c: Color| Style::new().fg(c).add_modifier(Modifier::DIM);
    for (points, color) in [(&teacher_clean, CLEAN), (&teacher_robust, ROBUST)] {
        if let Some(points) = points {
            datasets.push(
                Dataset::default()
                    .marker(Marker::Braille)
                    .graph_type(GraphType::Scatter)
                    .style(dim(color))
                    .data(points),
            );
        }
    }
    // A single epoch has no segment to draw: show it as a point.
    let graph = if curves.epochs.len() > 1 {
        GraphType::Line
    } else {
        GraphType::Scatter
    };
    for (points, color) in [(&clean, CLEAN), (&robust, ROBUST)] {
        datasets.push(
            Dataset::default()
                .marker(Marker::Braille)
                .graph_type(graph)
                .style(Style::new().fg(color))
                .data(points),
        );
    }
    let axis_style = Style::new().fg(Color::DarkGray);
    let chart = Chart::new(datasets)
        .legend_position(None)
        .x_axis(
            Axis::default()
                .bounds([x0, x1])
                .style(axis_style)
                // Epoch labels only when the plot can spare their row.
                .labels(if plot.height >= 8 {
                    vec![format!("{x0}"), format!("{x1}")]
                } else {
                    Vec::new()
                }),
        )
        .y_axis(
            Axis::default()
                .bounds([0.0, 100.0])
                .style(axis_style)
                .labels(["0", "50", "100"]),
        );
    chart.render(plot, buf);
    if let Some(row) = legend {
        text::put_line(buf, row, &legend_line(curves, row.width as usize));
    }
}

/// Epoch range on the x axis: first to last epoch, widened to one unit for a single point.
fn x_bounds(curves: &Curves) -> (f64, f64) {
    let first = curves.epochs.first().map_or(1, |p| p.epoch) as f64;
    let last = curves.epochs.last().map_or(1, |p| p.epoch) as f64;
    if last > first {
        (first, last)
    } else {
        (first - 1.0, first + 1.0)
    }
}

/// A horizontal dotted line at `y`: one point every other braille column, `columns` cells
/// wide, so it reads as a dim dotted reference rather than a curve.
fn dotted(y: f64, x0: f64, x1: f64, columns: usize) -> Vec<(f64, f64)> {
    (0..columns)
        .map(|i| (x0 + (x1 - x0) * (i as f64 + 0.25) / columns as f64, y))
        .collect()
}

/// The legend, the most detailed variant that fits: "━ clean 97.4%  ━ PGD-20 84.9%
/// ┈ teacher clean 98.9%  ┈ teacher PGD-20 91.3%", then with the teacher's merged
/// ("┈ teacher 98.9/91.3%"), then without numbers, then without the teacher.
fn legend_line(curves: &Curves, width: usize) -> Line<'static> {
    let last = curves.epochs.last();
    let robust = if curves.robust_label.is_empty() {
        "robust"
    } else {
        &curves.robust_label
    };
    let percent = |v: Option<f64>| v.map_or(String::new(), |v| format!(" {v:.1}%"));
    let clean_now = percent(last.map(|p| p.clean));
    let robust_now = percent(last.and_then(|p| p.robust));
    let (tc, tr) = (curves.teacher_clean, curves.teacher_robust);
    let has_teacher = tc.is_some() || tr.is_some();
    let solid = |c: Color| Style::new().fg(c);
    let dotted = |c: Color| Style::new().fg(c).add_modifier(Modifier::DIM);
    let teacher_color = if tc.is_some() { CLEAN } else { ROBUST };

    let item = |mark: &str, style: Style, label: String| {
        vec![Span::styled(format!("{mark} "), style), Span::raw(label)]
    };
    let students = |numbers: bool| {
        let (c, r) = if numbers {
            (clean_now.as_str(), robust_now.as_str())
        } else {
            ("", "")
        };
        [
            item("━", solid(CLEAN), format!("clean{c}")),
            item("━", solid(ROBUST), format!("{robust}{r}")),
        ]
    };
    let teachers_full = || {
        let mut items = Vec::new();
        if let Some(v) = tc {
            items.push(item(
                "┈",
                dotted(CLEAN),
                format!("teacher clean{}", percent(Some(v))),
            ));
        }
        if let Some(v) = tr {
            items.push(item(
                "┈",
                dotted(ROBUST),
                format!("teacher {robust}{}", percent(Some(v))),
            ));
        }
        items
    };
    let teacher_merged = |numbers: bool| {
        let values = match (tc, tr) {
            (Some(c), Some(r)) if numbers => format!(" {c:.1}/{r:.1}%"),
            (Some(v), None) | (None, Some(v)) if numbers => format!(" {v:.1}%"),
            _ => String::new(),
        };
        item("┈", dotted(teacher_color), format!("teacher{values}"))
    };
    let mut variants: Vec<Vec<Vec<Span<'static>>>> = vec![
        students(true).into_iter().chain(teachers_full()).collect(),
        students(true)
            .into_iter()
            .chain(has_teacher.then(|| teacher_merged(true)))
            .collect(),
        students(false)
            .into_iter()
            .chain(has_teacher.then(|| teacher_merged(false)))
            .collect(),
    ];
    variants.push(students(false).into());
    let lines = variants.into_iter().map(text::legend).collect();
    text::first_fitting_line(lines, width)
}

/// The batch losses of the current epoch: a label column ("loss" and the last value) and a
/// sparkline, min-max normalised so the smallest loss is the lowest visible bar. With more
/// batches than columns, consecutive batches are averaged.
fn render_losses(buf: &mut Buffer, area: Rect, losses: &[f64]) {
    if area.is_empty() || losses.is_empty() {
        return;
    }
    let label_w = SPARK_LABEL.min(area.width);
    let last = losses.last().map_or(String::new(), |v| format!("{v:.3}"));
    let labels: Vec<&str> = match area.height {
        1 => vec![&last],
        2 => vec!["loss", &last],
        _ => vec!["batch", "loss", &last],
    };
    let top = area.y + area.height - labels.len() as u16;
    let style = Style::new().fg(Color::DarkGray);
    for (i, label) in labels.iter().enumerate() {
        let row = Rect::new(area.x, top + i as u16, label_w, 1);
        text::put_line(
            buf,
            row,
            &Line::styled(text::fit(label, label_w as usize - 1), style),
        );
    }
    let spark = Rect::new(area.x + label_w, area.y, area.width - label_w, area.height);
    if spark.is_empty() {
        return;
    }
    let bars = normalised(&resample(losses, spark.width as usize));
    Sparkline::default()
        .data(bars)
        .max(1000)
        .style(Style::new().fg(Color::Yellow))
        .render(spark, buf);
}

/// At most `n` values: bucket means when there are more.
fn resample(values: &[f64], n: usize) -> Vec<f64> {
    if values.len() <= n || n == 0 {
        return values.to_vec();
    }
    (0..n)
        .map(|i| {
            let (a, b) = (i * values.len() / n, (i + 1) * values.len() / n);
            values[a..b].iter().sum::<f64>() / (b - a) as f64
        })
        .collect()
}

/// Values mapped to 1..=1000 (min to max); non-finite values are left out as gaps.
fn normalised(values: &[f64]) -> Vec<Option<u64>> {
    let finite = values.iter().copied().filter(|v| v.is_finite());
    let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let span = hi - lo;
    values
        .iter()
        .map(|&v| {
            v.is_finite().then(|| {
                let t = if span > 0.0 { (v - lo) / span } else { 1.0 };
                1 + (t * 999.0).round() as u64
            })
        })
        .collect()
}
