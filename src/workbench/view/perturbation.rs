//! The Perturbation panel: the natural image, the adversarial one and the δ/ε heatmap side
//! by side, two pixels per terminal cell ('▀': foreground = upper pixel, background = lower),
//! scaled by nearest neighbour, with captions above (what the image is) and below (what the
//! models predict on it).

use super::{diverging, draw_panel, hint, text};
use crate::lab::snapshot::SampleView;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};

/// Columns between two images.
const GAP: u16 = 1;

/// Where the three images go inside the panel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// Natural, adversarial, heatmap: all the same size.
    pub images: [Rect; 3],
    /// The column band of each image (captions are centred in it).
    pub slots: [Rect; 3],
    /// Caption rows above and below the images, when there is room.
    pub caption_top: Option<u16>,
    pub caption_bottom: Option<u16>,
}

/// Panel width (borders included) that shows the three images as large as a panel of
/// `height` rows allows them, at most at native size.
pub fn wanted_width(sample: &SampleView, height: u16) -> u16 {
    let native = sample.width.min(u16::MAX as usize / 4) as u16;
    let wide = Rect::new(0, 0, 3 * native + 2 * GAP, height.saturating_sub(2));
    placement(wide, sample).map_or(0, |p| 3 * p.images[0].width + 2 * GAP + 2)
}

/// Panel height (borders and captions included) that shows the images at native size.
pub fn native_height(sample: &SampleView) -> u16 {
    let h = sample.height.min(u16::MAX as usize / 2) as u16;
    h.div_ceil(2) + 4
}

/// Lays the images out in `inner`: the largest nearest-neighbour scale that fits all three
/// side by side (integer factors only when enlarging), centred. None when nothing fits.
pub fn placement(inner: Rect, sample: &SampleView) -> Option<Placement> {
    let (w, h) = (sample.width, sample.height);
    if w == 0 || h == 0 || inner.is_empty() {
        return None;
    }
    let captions = match inner.height {
        0..=2 => 0,
        3..=4 => 1,
        _ => 2,
    };
    let rows_free = inner.height - captions;
    let slot_w = inner.width.saturating_sub(2 * GAP) / 3;
    if slot_w == 0 || rows_free == 0 {
        return None;
    }
    let scale = (slot_w as f64 / w as f64).min(2.0 * rows_free as f64 / h as f64);
    let scale = if scale >= 1.0 { scale.floor() } else { scale };
    let cols = ((w as f64 * scale).round() as u16).clamp(1, slot_w);
    let rows = ((h as f64 * scale / 2.0).ceil() as u16).clamp(1, rows_free);

    let block_h = rows + captions;
    let top = inner.y + (inner.height - block_h) / 2;
    let image_y = top + u16::from(captions >= 1);
    let x0 = inner.x + (inner.width - (3 * slot_w + 2 * GAP)) / 2;
    let slots = [0, 1, 2].map(|i| Rect::new(x0 + i * (slot_w + GAP), top, slot_w, block_h));
    let images = slots.map(|s| Rect::new(s.x + (slot_w - cols) / 2, image_y, cols, rows));
    Some(Placement {
        images,
        slots,
        caption_top: (captions >= 1).then_some(top),
        caption_bottom: (captions >= 2).then_some(image_y + rows),
    })
}

pub fn render(
    buf: &mut Buffer,
    area: Rect,
    sample: Option<&SampleView>,
    focused: bool,
    empty_hint: &str,
) {
    let title = match sample {
        Some(s) if !s.attack.is_empty() => {
            format!("Perturbation · {} · ε {:.3}", s.attack, s.epsilon)
        }
        Some(s) => format!("Perturbation · ε {:.3}", s.epsilon),
        None => "Perturbation".to_string(),
    };
    let inner = draw_panel(buf, area, title, focused);
    let Some(sample) = sample else {
        hint(buf, inner, empty_hint);
        return;
    };
    let Some(place) = placement(inner, sample) else {
        return;
    };
    let plane = sample.width * sample.height;
    let complete = |v: &[f32]| v.len() >= sample.channels.max(1) * plane;
    // scaled_delta indexes both images fully: only call it on complete data.
    let delta = if complete(&sample.natural) && complete(&sample.adversarial) {
        sample.scaled_delta()
    } else {
        vec![0.0; plane]
    };
    draw_pixels(buf, place.images[0], sample, |x, y| {
        pixel(sample, &sample.natural, x, y)
    });
    draw_pixels(buf, place.images[1], sample, |x, y| {
        pixel(sample, &sample.adversarial, x, y)
    });
    draw_pixels(buf, place.images[2], sample, |x, y| {
        diverging(delta.get(y * sample.width + x).copied().unwrap_or(0.0))
    });
    if let Some(y) = place.caption_top {
        top_captions(buf, &place, y, sample);
    }
    if let Some(y) = place.caption_bottom {
        bottom_captions(buf, &place, y, sample);
    }
}

/// Fills `area` with '▀' cells: cell (cx, cy) shows source column `cx * width / cols` and
/// source rows `(2cy) * height / (2 rows)` (upper half) and `(2cy + 1) * height / (2 rows)`
/// (lower half).
fn draw_pixels(
    buf: &mut Buffer,
    area: Rect,
    sample: &SampleView,
    color: impl Fn(usize, usize) -> Color,
) {
    let (w, h) = (sample.width, sample.height);
    let (cols, px_rows) = (area.width as usize, 2 * area.height as usize);
    for cy in 0..area.height {
        let upper = (2 * cy as usize) * h / px_rows;
        let lower = (2 * cy as usize + 1) * h / px_rows;
        for cx in 0..area.width {
            let sx = cx as usize * w / cols;
            if let Some(cell) = buf.cell_mut((area.x + cx, area.y + cy)) {
                cell.set_symbol("▀")
                    .set_fg(color(sx, upper))
                    .set_bg(color(sx, lower));
            }
        }
    }
}

/// An image pixel's colour: RGB for 3 channels, otherwise the mean of the channels as grey.
/// Values are clamped to [0, 1]; missing or NaN values are black.
fn pixel(sample: &SampleView, values: &[f32], x: usize, y: usize) -> Color {
    let plane = sample.width * sample.height;
    let at = |c: usize| {
        let v = values
            .get(c * plane + y * sample.width + x)
            .copied()
            .unwrap_or(0.0);
        if v.is_nan() { 0.0 } else { v.clamp(0.0, 1.0) }
    };
    let byte = |v: f32| (v * 255.0).round() as u8;
    if sample.channels == 3 {
        Color::Rgb(byte(at(0)), byte(at(1)), byte(at(2)))
    } else {
        let n = sample.channels.max(1);
        let v = byte((0..n).map(at).sum::<f32>() / n as f32);
        Color::Rgb(v, v, v)
    }
}

/// The predicted class on a distribution, as its name.
fn predicted(sample: &SampleView, probs: Option<&Vec<f32>>) -> Option<String> {
    probs
        .and_then(|p| text::argmax(p))
        .map(|c| text::class_name(&sample.class_names, c))
}

/// Green when the prediction is right, red when wrong.
fn verdict_style(sample: &SampleView, probs: &[f32]) -> Style {
    match text::argmax(probs) {
        Some(c) if c == sample.true_class => Style::new().fg(Color::Green),
        Some(_) => Style::new().fg(Color::Red),
        None => Style::new(),
    }
}

fn top_captions(buf: &mut Buffer, place: &Placement, y: u16, sample: &SampleView) {
    let truth = text::class_name(&sample.class_names, sample.true_class);
    let student = predicted(sample, Some(&sample.student_adversarial)).unwrap_or("?".into());
    let attack = if sample.attack.is_empty() {
        "adv".to_string()
    } else {
        sample.attack.clone()
    };
    let captions = [
        (
            vec![
                format!("natural: true {truth}"),
                format!("true {truth}"),
                truth,
            ],
            Style::new().add_modifier(Modifier::BOLD),
        ),
        (
            vec![
                format!("adv ({attack}): student {student}"),
                format!("adv: student {student}"),
                format!("student {student}"),
                format!("S {student}"),
            ],
            verdict_style(sample, &sample.student_adversarial).add_modifier(Modifier::BOLD),
        ),
        (
            vec![
                format!("δ/ε (ε = {:.3})", sample.epsilon),
                "δ/ε".to_string(),
            ],
            Style::new().add_modifier(Modifier::BOLD),
        ),
    ];
    for (slot, (candidates, style)) in place.slots.iter().zip(captions) {
        let row = Rect::new(slot.x, y, slot.width, 1);
        let caption = text::first_fitting(&candidates, caption_width(slot));
        text::put_centered(buf, row, &Span::styled(caption, style));
    }
}

fn bottom_captions(buf: &mut Buffer, place: &Placement, y: u16, sample: &SampleView) {
    let groups = [
        (sample.teacher_natural.as_ref(), &sample.student_natural),
        (
            sample.teacher_adversarial.as_ref(),
            &sample.student_adversarial,
        ),
    ];
    for (slot, (teacher, student)) in place.slots.iter().zip(groups) {
        let row = Rect::new(slot.x, y, slot.width, 1);
        let s = predicted(sample, Some(student)).unwrap_or("?".into());
        let candidates = match predicted(sample, teacher) {
            Some(t) => vec![
                format!("teacher {t} · student {s}"),
                format!("T {t} · S {s}"),
                format!("T{t} S{s}"),
            ],
            None => vec![format!("student {s}"), format!("S {s}")],
        };
        let caption = text::first_fitting(&candidates, caption_width(slot));
        text::put_centered(
            buf,
            row,
            &Span::styled(caption, Style::new().fg(Color::Gray)),
        );
    }
    colour_scale(buf, Rect::new(place.slots[2].x, y, place.slots[2].width, 1));
}

/// Room for a caption: the slot less a column each side, so neighbours never touch.
fn caption_width(slot: &Rect) -> usize {
    slot.width.saturating_sub(2).max(1) as usize
}

/// "-1 ████████ +1" with the heatmap's colours from -1 to +1.
fn colour_scale(buf: &mut Buffer, row: Rect) {
    if row.width < 7 {
        return;
    }
    let cells = (row.width - 6).min(21);
    let mut spans = vec![Span::raw("-1 ")];
    for i in 0..cells {
        let v = if cells == 1 {
            0.0
        } else {
            -1.0 + 2.0 * i as f32 / (cells - 1) as f32
        };
        spans.push(Span::styled("█", Style::new().fg(diverging(v))));
    }
    spans.push(Span::raw(" +1"));
    text::put_line_centered(buf, row, &Line::from(spans));
}
