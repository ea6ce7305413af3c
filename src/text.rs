//! Small helpers for the words the program writes.

/// "1 batch", "5 batches": a count with the word that agrees with it.
pub fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// `s` safe to print on a terminal: every control character (C0 such as ESC and BEL, DEL,
/// C1 such as CSI) is dropped except newline and tab, so a string from a file (a session's
/// title, a mark, a command line, a file name) cannot move the cursor, retitle the window or
/// write the clipboard (OSC 52). The terminal UI and playback draw through ratatui, which
/// drops control characters itself; everything printed as plain text goes through here.
pub fn scrub(s: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() && c != '\n' && c != '\t';
    if s.chars().any(unsafe_char) {
        s.chars()
            .filter(|&c| !unsafe_char(c))
            .collect::<String>()
            .into()
    } else {
        s.into()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn control_characters_are_scrubbed_but_newlines_and_tabs_stay() {
        let hostile = "a\u{1b}]0;TITLE\u{7}b\u{1b}]52;c;aGk=\u{1b}\\c\u{9b}2Jd\u{7f}\r\n\te";
        assert_eq!(super::scrub(hostile), "a]0;TITLEb]52;c;aGk=\\c2Jd\n\te");
        assert!(matches!(
            super::scrub("plain ε"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn counts_agree_with_their_word() {
        assert_eq!(super::count(1, "batch", "batches"), "1 batch");
        assert_eq!(super::count(0, "epoch", "epochs"), "0 epochs");
        assert_eq!(super::count(5, "batch", "batches"), "5 batches");
    }
}

/// Display width of a string in terminal columns.
pub fn width(s: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(s)
}

fn char_width(c: char) -> usize {
    unicode_width::UnicodeWidthChar::width(c).unwrap_or(0)
}

/// `s` wrapped to `max` columns at word boundaries: each source line (`\n`) starts a new row,
/// continuation rows keep the line's leading spaces, runs of spaces where a row breaks are
/// dropped, and only a word longer than a whole row is broken inside. Nothing is left out.
pub fn wrap(s: &str, max: usize) -> Vec<String> {
    wrap_hanging(s, max, 0)
}

/// [`wrap`] with continuation rows indented `extra` columns more than their line.
pub fn wrap_hanging(s: &str, max: usize, extra: usize) -> Vec<String> {
    let max = max.max(1);
    let mut rows = Vec::new();
    for line in s.split('\n') {
        let line = line.trim_end();
        let body = line.trim_start_matches(' ');
        let lead = line.len() - body.len();
        // Indents never take more than half a row.
        let indent = " ".repeat((lead + extra).min(max / 2));
        let mut row = " ".repeat(lead.min(max / 2));
        let mut row_width = width(&row);
        let mut fresh = true; // nothing but indentation on the row yet
        let mut rest = body;
        while !rest.is_empty() {
            let spaces = rest.len() - rest.trim_start_matches(' ').len();
            let after = &rest[spaces..];
            let word_end = after.find(' ').unwrap_or(after.len());
            let word = &after[..word_end];
            rest = &after[word_end..];
            let gap = if fresh { 0 } else { spaces };
            let word_width = width(word);
            if row_width + gap + word_width <= max {
                row.push_str(&" ".repeat(gap));
                row.push_str(word);
                row_width += gap + word_width;
                fresh = false;
                continue;
            }
            if !fresh {
                rows.push(std::mem::take(&mut row));
                row = indent.clone();
                row_width = width(&row);
            }
            // A word wider than a row: broken into pieces that fill rows.
            for c in word.chars() {
                let w = char_width(c);
                if row_width + w > max && row_width > width(&indent) {
                    rows.push(std::mem::take(&mut row));
                    row = indent.clone();
                    row_width = width(&row);
                }
                row.push(c);
                row_width += w;
            }
            fresh = false;
        }
        rows.push(row.trim_end().to_string());
    }
    rows
}

/// One row of a two-column table ("  usage   summary") wrapped so that continuation rows
/// start under the second column (when it starts in the row's first half), so a wrapped
/// entry still reads as one; other lines wrap as [`wrap`].
pub fn wrap_table_row(line: &str, max: usize) -> Vec<String> {
    let lead = line.len() - line.trim_start_matches(' ').len();
    let column = line[lead..].find("  ").map(|gap| {
        let after = lead + gap;
        after + (line[after..].len() - line[after..].trim_start_matches(' ').len())
    });
    match column {
        Some(column) if width(&line[..column]) <= max / 2 => {
            wrap_hanging(line, max, width(&line[..column]) - lead)
        }
        _ => wrap(line, max),
    }
}

#[cfg(test)]
mod wrap_tests {
    use super::{wrap, wrap_table_row};

    #[test]
    fn short_lines_stay_whole() {
        assert_eq!(wrap("step [N]  train", 40), ["step [N]  train"]);
    }

    #[test]
    fn table_rows_wrap_under_their_second_column_at_word_boundaries() {
        let rows = wrap_table_row(
            "  eps VALUE    attack radius ε in L∞ for training and attacks (e.g. 0.3)",
            40,
        );
        assert_eq!(
            rows,
            [
                "  eps VALUE    attack radius ε in L∞ for",
                "               training and attacks",
                "               (e.g. 0.3)"
            ]
        );
    }

    #[test]
    fn long_words_are_cut_and_nothing_is_lost() {
        let long = wrap(&"x".repeat(30), 12);
        assert!(long.iter().all(|r| r.chars().count() <= 12), "{long:?}");
        assert_eq!(long.concat().matches('x').count(), 30);
    }
}
