//! The Attacks panel: the last attack's robust accuracies as a table, with its flags.

use super::{draw_panel, hint, text};
use crate::lab::snapshot::AttackTable;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Row, Table, Widget};

/// Rows the panel needs (borders included): header, clean row, one per attack and per flag.
pub fn wanted_height(table: Option<&AttackTable>) -> u16 {
    table.map_or(3, |t| {
        (4 + t.rows.len() + t.flags.len()).min(u16::MAX as usize) as u16
    })
}

pub fn render(buf: &mut Buffer, area: Rect, table: Option<&AttackTable>, focused: bool) {
    let title = match table {
        Some(t) if !t.title.is_empty() => format!("Attacks · {}", t.title),
        _ => "Attacks".to_string(),
    };
    let inner = draw_panel(buf, area, title, focused);
    let Some(table) = table else {
        hint(buf, inner, "no attack yet: `attack pgd` or `eval`");
        return;
    };
    if inner.is_empty() {
        return;
    }
    // Flags get the rows the table leaves, and one row anyway from 3 rows up (flags are
    // warnings worth more than the last attack row).
    let table_rows = 2 + table.rows.len().min(u16::MAX as usize - 2) as u16;
    let at_least = u16::from(inner.height >= 3);
    let flag_rows = (table.flags.len().min(u16::MAX as usize) as u16)
        .min(inner.height.saturating_sub(table_rows).max(at_least));
    let table_area = Rect::new(inner.x, inner.y, inner.width, inner.height - flag_rows);
    render_table(buf, table_area, table);
    let warn = Style::new().fg(Color::Yellow);
    for (i, flag) in table.flags.iter().take(flag_rows as usize).enumerate() {
        let row = Rect::new(inner.x, table_area.bottom() + i as u16, inner.width, 1);
        let line = text::fit(&format!("⚠ {flag}"), inner.width as usize);
        text::put_line(buf, row, &Line::styled(line, warn));
    }
}

fn render_table(buf: &mut Buffer, area: Rect, table: &AttackTable) {
    let name_w = table
        .rows
        .iter()
        .map(|r| text::width(&r.name))
        .chain([text::width("attack")])
        .max()
        .unwrap_or(6)
        .min(16) as u16;
    let percent = |v: f64| format!("{v:>8.2}");
    // What the detail column gets: the rest after the name, the number and two gaps of 2.
    let detail_w = area.width.saturating_sub(name_w + 8 + 4) as usize;
    let mut rows = vec![Row::new(vec![
        "clean".to_string(),
        percent(table.clean),
        String::new(),
    ])];
    rows.extend(table.rows.iter().map(|r| {
        Row::new(vec![
            text::fit(&r.name, name_w as usize),
            percent(r.robust),
            text::fit(&r.detail, detail_w),
        ])
    }));
    let header = Row::new(vec!["attack", "robust %", "detail"])
        .style(Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED));
    Table::new(
        rows,
        [
            Constraint::Length(name_w),
            Constraint::Length(8),
            Constraint::Fill(1),
        ],
    )
    .header(header)
    .column_spacing(2)
    .render(area, buf);
}
