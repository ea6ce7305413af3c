//! The Attacks panel: the results board, every attack table of the session side by side (one
//! line per attack: method, training done, attack, clean and robust accuracy; what every line
//! shares, such as the model, ε and the number of images, goes into the title), the newest
//! table in bold with its warnings below. A table recorded without its context (an older
//! session) is drawn on its own as before: attack, robust accuracy, detail.

use super::{draw_panel, hint, text};
use crate::lab::snapshot::AttackTable;
use crate::lab::snapshot::results::{self, ResultLine};
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Row, Table, Widget};

/// The tables to draw: the board, or the last table alone when there is no board.
fn tables<'a>(board: &'a [AttackTable], last: Option<&'a AttackTable>) -> Vec<&'a AttackTable> {
    if board.is_empty() {
        last.into_iter().collect()
    } else {
        board.iter().collect()
    }
}

/// Whether the tables are drawn as a board (they know what they measured).
fn is_board(tables: &[&AttackTable]) -> bool {
    tables.last().is_some_and(|t| t.context.is_some())
}

/// Rows the panel needs (borders included): a header, a line per attack (and the clean row
/// of a table drawn alone), and one per warning of the newest table.
pub fn wanted_height(board: &[AttackTable], last: Option<&AttackTable>) -> u16 {
    let tables = tables(board, last);
    let Some(newest) = tables.last() else {
        return 3;
    };
    let lines: usize = if is_board(&tables) {
        tables.iter().map(|t| t.rows.len()).sum()
    } else {
        1 + newest.rows.len()
    };
    (3 + lines + newest.flags.len()).min(u16::MAX as usize) as u16
}

pub fn render(
    buf: &mut Buffer,
    area: Rect,
    board: &[AttackTable],
    last: Option<&AttackTable>,
    focused: bool,
    empty_hint: &str,
) {
    let tables = tables(board, last);
    let Some(newest) = tables.last().copied() else {
        let inner = draw_panel(buf, area, "Attacks", focused);
        hint(buf, inner, empty_hint);
        return;
    };
    if !is_board(&tables) {
        render_single(buf, area, newest, focused);
        return;
    }
    let lines = results::lines(tables.iter().copied());
    let newest_lines = newest.rows.len();
    let layout = Layout::fit(&lines, area.width.saturating_sub(2) as usize);
    let title = layout.title(area.width.saturating_sub(2) as usize);
    let inner = draw_panel(buf, area, title, focused);
    if inner.is_empty() {
        return;
    }
    let flag_rows = flag_rows(newest, inner.height, 1 + lines.len());
    let table_area = Rect::new(inner.x, inner.y, inner.width, inner.height - flag_rows);
    // The newest lines that fit under the header; the hidden ones are counted in the border.
    let room = table_area.height.saturating_sub(1) as usize;
    let hidden = lines.len().saturating_sub(room);
    if hidden > 0 && area.height > 0 {
        let note = format!(" ↑ {hidden} more ");
        let w = text::width(&note) as u16;
        if w + 4 <= area.width {
            let at = Rect::new(area.right() - w - 2, area.bottom() - 1, w, 1);
            text::put_line(
                buf,
                at,
                &Line::styled(note, Style::new().fg(Color::DarkGray)),
            );
        }
    }
    let first_newest = lines.len() - newest_lines;
    let rows: Vec<Row> = lines
        .iter()
        .enumerate()
        .skip(hidden)
        .map(|(i, line)| {
            // The first line shown of a table names what the table shares.
            let continues = i > hidden && lines[i - 1].table == line.table;
            let row = Row::new(layout.cells(line, continues));
            if i >= first_newest {
                row.style(Style::new().add_modifier(Modifier::BOLD))
            } else {
                row
            }
        })
        .collect();
    let header = Row::new(layout.headers())
        .style(Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED));
    Table::new(rows, layout.constraints(table_area.width as usize))
        .header(header)
        .column_spacing(layout.gap)
        .render(table_area, buf);
    render_flags(buf, inner, table_area.bottom(), newest, flag_rows);
}

/// Rows for the newest table's warnings: those the lines leave, and one anyway from 3 rows
/// up (a warning is worth more than the oldest line).
fn flag_rows(table: &AttackTable, height: u16, lines: usize) -> u16 {
    let lines = lines.min(u16::MAX as usize) as u16;
    let at_least = u16::from(height >= 3);
    (table.flags.len().min(u16::MAX as usize) as u16)
        .min(height.saturating_sub(lines).max(at_least))
}

fn render_flags(buf: &mut Buffer, inner: Rect, top: u16, table: &AttackTable, rows: u16) {
    let warn = Style::new().fg(Color::Yellow);
    for (i, flag) in table.flags.iter().take(rows as usize).enumerate() {
        let row = Rect::new(inner.x, top + i as u16, inner.width, 1);
        let line = text::fit(&format!("⚠ {flag}"), inner.width as usize);
        text::put_line(buf, row, &Line::styled(line, warn));
    }
}

/// The board's columns, as many as fit: what every line shares moves to the title, then
/// columns get shorter or go, least important first.
struct Layout {
    /// Parts of the title (the attack, model, dataset, ε, images every line shares), most
    /// important first, each with its place in reading order.
    shared: Vec<(usize, String)>,
    columns: Vec<Column>,
    /// Each column's width: its widest cell or header (set once the columns are chosen).
    widths: Vec<usize>,
    gap: u16,
}

/// Reads one field of a line.
type Field = fn(&ResultLine) -> &String;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Column {
    Data,
    Model,
    Method,
    MethodName,
    Training,
    TrainingShort,
    Attack,
    Epsilon,
    Images,
    Clean,
    Robust,
    Detail,
}

impl Column {
    fn header(self) -> &'static str {
        match self {
            Column::Data => "data",
            Column::Model => "model",
            Column::Method | Column::MethodName => "method",
            Column::Training | Column::TrainingShort => "trained",
            Column::Attack => "attack",
            Column::Epsilon => "ε",
            Column::Images => "images",
            Column::Clean => "clean",
            Column::Robust => "robust",
            Column::Detail => "detail",
        }
    }

    /// The cell; `continues`: the line belongs to the same table as the one above, so what
    /// the table shares is not repeated.
    fn cell(self, line: &ResultLine, continues: bool) -> String {
        let once = |s: String| if continues { String::new() } else { s };
        match self {
            Column::Data => once(line.dataset.clone()),
            Column::Model => once(line.model.clone()),
            Column::Method => once(line.method.clone()),
            Column::MethodName => once(
                line.method
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_string(),
            ),
            Column::Training => once(line.training.clone()),
            Column::TrainingShort => once(line.training_short.clone()),
            Column::Attack => line.attack.clone(),
            Column::Epsilon => once(line.epsilon.clone()),
            Column::Images => once(line.images.clone()),
            Column::Clean => once(format!("{:.1}", line.clean)),
            Column::Robust => format!("{:.1}", line.robust),
            Column::Detail => line.detail.clone(),
        }
    }

    fn right(self) -> bool {
        matches!(
            self,
            Column::Epsilon | Column::Images | Column::Clean | Column::Robust
        )
    }
}

impl Layout {
    fn fit(lines: &[ResultLine], width: usize) -> Layout {
        let same = |f: Field| lines.iter().all(|l| f(l) == f(&lines[0]));
        let mut shared = Vec::new();
        let mut columns = Vec::new();
        // What every line shares goes to the title, the rest are columns. In the order of
        // importance (a narrow title keeps the first); the number is the reading order.
        let candidates: [(Column, usize, Field); 5] = [
            (Column::Attack, 0, |l| &l.attack),
            (Column::Model, 1, |l| &l.model),
            (Column::Epsilon, 3, |l| &l.epsilon),
            (Column::Images, 4, |l| &l.images),
            (Column::Data, 2, |l| &l.dataset),
        ];
        for (column, order, get) in candidates {
            if same(get) {
                let value = get(&lines[0]);
                if !value.is_empty() {
                    shared.push((
                        order,
                        match column {
                            Column::Epsilon => format!("ε {value}"),
                            Column::Images => format!("{value} images"),
                            _ => value.clone(),
                        },
                    ));
                }
            } else {
                columns.push(column);
            }
        }
        let mut all = vec![Column::Method, Column::Training];
        // The varying ones in reading order: attack, model, data, ε, images.
        for c in [
            Column::Attack,
            Column::Model,
            Column::Data,
            Column::Epsilon,
            Column::Images,
        ] {
            if columns.contains(&c) {
                all.push(c);
            }
        }
        all.extend([Column::Clean, Column::Robust, Column::Detail]);
        let mut layout = Layout {
            shared,
            columns: all,
            widths: Vec::new(),
            gap: 2,
        };
        // Each step makes the table narrower; stop at the first that fits.
        let steps: [fn(&mut Layout); 10] = [
            |l| l.drop(Column::Detail),
            |l| l.gap = 1,
            |l| l.replace(Column::Training, Column::TrainingShort),
            |l| l.replace(Column::Method, Column::MethodName),
            |l| l.drop(Column::Images),
            |l| l.drop(Column::Epsilon),
            |l| l.drop(Column::Data),
            |l| l.drop(Column::Model),
            |l| l.drop(Column::Clean),
            |l| l.drop(Column::TrainingShort),
        ];
        for step in steps {
            if layout.width(lines) <= width {
                break;
            }
            step(&mut layout);
        }
        layout.widths = layout
            .columns
            .iter()
            .map(|c| Self::column_width(*c, lines))
            .collect();
        layout
    }

    /// "Attacks · PGD-40 · micro-cnn · mnist · ε 0.3 · 200 images", without the least
    /// important parts when that is wider than `width`.
    fn title(&self, width: usize) -> String {
        for keep in (0..=self.shared.len()).rev() {
            let mut parts: Vec<&(usize, String)> = self.shared.iter().take(keep).collect();
            parts.sort_by_key(|(order, _)| *order);
            let title = std::iter::once("Attacks")
                .chain(parts.iter().map(|(_, p)| p.as_str()))
                .collect::<Vec<_>>()
                .join(" · ");
            if text::width(&title) <= width || keep == 0 {
                return text::fit(&title, width);
            }
        }
        "Attacks".into()
    }

    fn drop(&mut self, column: Column) {
        self.columns.retain(|c| *c != column);
    }

    fn replace(&mut self, from: Column, to: Column) {
        for c in &mut self.columns {
            if *c == from {
                *c = to;
            }
        }
    }

    fn column_width(column: Column, lines: &[ResultLine]) -> usize {
        lines
            .iter()
            .map(|l| text::width(&column.cell(l, false)))
            .chain([text::width(column.header())])
            .max()
            .unwrap_or(0)
    }

    fn width(&self, lines: &[ResultLine]) -> usize {
        let cells: usize = self
            .columns
            .iter()
            .map(|c| Self::column_width(*c, lines))
            .sum();
        cells + self.gap as usize * self.columns.len().saturating_sub(1)
    }

    fn headers(&self) -> Vec<String> {
        self.columns
            .iter()
            .zip(&self.widths)
            .map(|(c, &w)| align(*c, c.header(), w))
            .collect()
    }

    fn cells(&self, line: &ResultLine, continues: bool) -> Vec<String> {
        self.columns
            .iter()
            .zip(&self.widths)
            .map(|(c, &w)| align(*c, &c.cell(line, continues), w))
            .collect()
    }

    /// Each column as wide as its widest cell; when that is still too wide for `width`, the
    /// method column takes what is left (the table cuts its cells).
    fn constraints(&self, width: usize) -> Vec<Constraint> {
        let total: usize = self.widths.iter().sum::<usize>()
            + self.gap as usize * self.widths.len().saturating_sub(1);
        self.columns
            .iter()
            .zip(&self.widths)
            .map(|(c, &w)| match c {
                Column::Method | Column::MethodName if total > width => Constraint::Fill(1),
                _ => Constraint::Length(w as u16),
            })
            .collect()
    }
}

/// A cell padded on the left when its column is right-aligned.
fn align(column: Column, value: &str, width: usize) -> String {
    if column.right() {
        format!("{value:>width$}")
    } else {
        value.to_string()
    }
}

/// A table recorded without its context, on its own: the clean row, then each attack with
/// its robust accuracy and detail.
fn render_single(buf: &mut Buffer, area: Rect, table: &AttackTable, focused: bool) {
    let title = if table.title.is_empty() {
        "Attacks".to_string()
    } else {
        let room = area.width.saturating_sub(2) as usize;
        text::fit(&format!("Attacks · {}", table.title), room)
    };
    let inner = draw_panel(buf, area, title, focused);
    if inner.is_empty() {
        return;
    }
    let table_rows = 2 + table.rows.len().min(u16::MAX as usize - 2);
    let flag_rows = flag_rows(table, inner.height, table_rows);
    let table_area = Rect::new(inner.x, inner.y, inner.width, inner.height - flag_rows);
    render_table(buf, table_area, table);
    render_flags(buf, inner, table_area.bottom(), table, flag_rows);
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
