//! Small helpers for the words the program writes.

/// "1 batch", "5 batches": a count with the word that agrees with it.
pub fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_agree_with_their_word() {
        assert_eq!(super::count(1, "batch", "batches"), "1 batch");
        assert_eq!(super::count(0, "epoch", "epochs"), "0 epochs");
        assert_eq!(super::count(5, "batch", "batches"), "5 batches");
    }
}

/// `line` wrapped at spaces to rows of at most `width` characters, never cutting a word that
/// fits a row. Continuation rows are indented to where the line's second column starts (after
/// its first run of two or more spaces, as in help tables), or else to its own indentation
/// plus two, so a wrapped entry still reads as one.
pub fn wrap(line: &str, width: usize) -> Vec<String> {
    let width = width.max(8);
    if line.chars().count() <= width {
        return vec![line.to_string()];
    }
    let indent = line.len() - line.trim_start().len();
    let column = line[indent..]
        .find("  ")
        .map(|i| {
            let after = indent + i;
            after + (line.len() - after - line[after..].trim_start().len())
        })
        .filter(|&c| line[..c].chars().count() <= width / 2);
    let hang = column
        .map_or(indent + 2, |c| line[..c].chars().count())
        .min(width / 2);
    let (mut row, rest) = match column {
        Some(c) => (line[..c].to_string(), &line[c..]),
        None => (line[..indent].to_string(), &line[indent..]),
    };
    let mut rows = Vec::new();
    let mut row_has_word = false;
    for word in rest.split(' ').filter(|w| !w.is_empty()) {
        let len = word.chars().count();
        let used = row.chars().count();
        let gap = usize::from(row_has_word);
        if row_has_word && used + gap + len > width {
            rows.push(std::mem::replace(&mut row, " ".repeat(hang)));
            row_has_word = false;
        }
        if row_has_word {
            row.push(' ');
        }
        // A word longer than a row is cut into pieces that fit.
        let mut chars: Vec<char> = word.chars().collect();
        while row.chars().count() + chars.len() > width {
            let room = width - row.chars().count();
            if room == 0 {
                rows.push(std::mem::replace(&mut row, " ".repeat(hang)));
                continue;
            }
            row.extend(chars.drain(..room));
            rows.push(std::mem::replace(&mut row, " ".repeat(hang)));
        }
        row.extend(chars);
        row_has_word = true;
    }
    if row_has_word || rows.is_empty() {
        rows.push(row);
    }
    rows
}

#[cfg(test)]
mod wrap_tests {
    use super::wrap;

    #[test]
    fn short_lines_stay_whole() {
        assert_eq!(wrap("step [N]  train", 40), ["step [N]  train"]);
    }

    #[test]
    fn help_rows_wrap_under_their_second_column_at_word_boundaries() {
        let rows = wrap(
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
        assert!(rows.iter().all(|r| r.chars().count() <= 40));
    }

    #[test]
    fn plain_text_hangs_by_two_and_long_words_are_cut() {
        let rows = wrap("The last session did not end cleanly (3 commands)", 20);
        assert!(rows.iter().all(|r| r.chars().count() <= 20), "{rows:?}");
        assert_eq!(rows[0], "The last session did");
        assert!(rows[1].starts_with("  not"));
        let long = wrap(&"x".repeat(30), 12);
        assert!(long.iter().all(|r| r.chars().count() <= 12), "{long:?}");
        assert_eq!(long.concat().matches('x').count(), 30);
    }
}
