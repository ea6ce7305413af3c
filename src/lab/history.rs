//! The prompt's command history, kept in a file shared with the REPL. The file uses rustyline's
//! format (a `#V2` first line, then one entry per line with `\` and newlines escaped), so both
//! front ends read each other's entries.

use std::path::{Path, PathBuf};

/// Entries kept; older ones are dropped.
pub const HISTORY_LIMIT: usize = 1000;
const HEADER: &str = "#V2";

/// Where the history lives: `$RSLAD_TUI_HISTORY`, else `$XDG_DATA_HOME/rslad-tui/history`,
/// else `~/.local/share/rslad-tui/history`; None when none of these can be formed.
pub fn default_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("RSLAD_TUI_HISTORY") {
        return Some(PathBuf::from(path));
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))?;
    Some(data.join("rslad-tui").join("history"))
}

#[derive(Debug, Default)]
pub struct History {
    entries: Vec<String>,
    path: Option<PathBuf>,
    /// While browsing with ↑↓: the entry shown, counted from the newest (None: the line being
    /// typed, kept in `draft`).
    position: Option<usize>,
    draft: String,
}

impl History {
    /// Reads the history file; a missing or unreadable file gives an empty history (the
    /// prompt works without one).
    pub fn open(path: Option<PathBuf>) -> History {
        let entries = path
            .as_deref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .map(|text| parse(&text))
            .unwrap_or_default();
        History {
            entries,
            path,
            ..History::default()
        }
    }

    pub fn entries(&self) -> &[String] {
        &self.entries
    }

    /// Adds a line (not a repeat of the last one) and writes the file; a write error is
    /// returned but the entry stays in memory.
    /// The `skip`+1-th newest entry that contains `query` (Ctrl-R's reverse search).
    pub fn search(&self, query: &str, skip: usize) -> Option<String> {
        self.entries
            .iter()
            .rev()
            .filter(|entry| entry.contains(query))
            .nth(skip)
            .cloned()
    }

    pub fn add(&mut self, line: &str) -> std::io::Result<()> {
        self.position = None;
        let line = line.trim();
        if line.is_empty() || self.entries.last().is_some_and(|last| last == line) {
            return Ok(());
        }
        self.entries.push(line.to_string());
        let excess = self.entries.len().saturating_sub(HISTORY_LIMIT);
        self.entries.drain(..excess);
        match &self.path {
            Some(path) => write(path, &self.entries),
            None => Ok(()),
        }
    }

    /// ↑: the previous entry, remembering `current` as the draft on the first press.
    pub fn older(&mut self, current: &str) -> Option<String> {
        let next = match self.position {
            None => {
                self.draft = current.to_string();
                0
            }
            Some(p) => p + 1,
        };
        if next >= self.entries.len() {
            return None;
        }
        self.position = Some(next);
        Some(self.entries[self.entries.len() - 1 - next].clone())
    }

    /// ↓: the next newer entry, or the draft after the newest.
    pub fn newer(&mut self) -> Option<String> {
        match self.position? {
            0 => {
                self.position = None;
                Some(std::mem::take(&mut self.draft))
            }
            p => {
                self.position = Some(p - 1);
                Some(self.entries[self.entries.len() - p].clone())
            }
        }
    }
}

fn parse(text: &str) -> Vec<String> {
    let mut entries: Vec<String> = text
        .lines()
        .enumerate()
        .filter(|(i, line)| !(line.is_empty() || (*i == 0 && *line == HEADER)))
        .map(|(_, line)| unescape(line))
        .collect();
    let excess = entries.len().saturating_sub(HISTORY_LIMIT);
    entries.drain(..excess);
    entries
}

fn escape(entry: &str) -> String {
    entry.replace('\\', "\\\\").replace('\n', "\\n")
}

fn unescape(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// Writes the whole history to a temporary file and renames it over the old one.
fn write(path: &Path, entries: &[String]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut text = String::from(HEADER);
    text.push('\n');
    for entry in entries {
        text.push_str(&escape(entry));
        text.push('\n');
    }
    crate::atomic::write(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_round_trips() {
        for entry in ["step 3", "save a\\b", "two\nlines", "ends with \\"] {
            assert_eq!(unescape(&escape(entry)), entry);
        }
    }

    #[test]
    fn browsing_walks_back_and_returns_to_the_draft() {
        let mut h = History::open(None);
        h.add("step").unwrap();
        h.add("eval").unwrap();
        h.add("eval").unwrap();
        assert_eq!(h.entries(), ["step", "eval"]);
        assert_eq!(h.older("dra").as_deref(), Some("eval"));
        assert_eq!(h.older("eval").as_deref(), Some("step"));
        assert_eq!(h.older("step"), None);
        assert_eq!(h.newer().as_deref(), Some("eval"));
        assert_eq!(h.newer().as_deref(), Some("dra"));
        assert_eq!(h.newer(), None);
    }
}
