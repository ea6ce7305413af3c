//! Help, completion and hints, all read from the command table.

use super::table::{Arg, COMMANDS, spec};
use crate::settings::{AttackName, MethodName};
use crate::zoo::Arch;

/// The full help text: every command's usage and summary.
pub fn help() -> String {
    let width = COMMANDS
        .iter()
        .map(|c| c.usage.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::from("Commands (Tab completes, ↑↓ recall history):\n\n");
    for c in COMMANDS {
        out += &format!("  {:<width$}  {}\n", c.usage, c.summary);
    }
    out
}

/// One command's help.
pub fn help_for(name: &str) -> Option<String> {
    spec(name).map(|c| format!("{}: {}", c.usage, c.summary))
}

/// Completion of the last word of `line`: the candidates (whole words), sorted.
pub fn complete(line: &str) -> Vec<String> {
    let ends_in_space = line.is_empty() || line.ends_with(char::is_whitespace);
    let words: Vec<&str> = line.split_whitespace().collect();
    let (done, partial) = if ends_in_space {
        (&words[..], "")
    } else {
        (&words[..words.len() - 1], words[words.len() - 1])
    };
    let Some((command, args)) = done.split_first() else {
        return matching(COMMANDS.iter().map(|c| c.name.to_string()), partial);
    };
    let Some(spec) = spec(command) else {
        return Vec::new();
    };
    let Some(arg) = spec.args.get(args.len()).or(spec.args.last()) else {
        return Vec::new();
    };
    // `step batch N` and `show sample N`: only the first word completes.
    if matches!(arg, Arg::Number) {
        return Vec::new();
    }
    if matches!(arg, Arg::Words(_)) && !args.is_empty() {
        return Vec::new();
    }
    let candidates: Vec<String> = match arg {
        Arg::Words(words) => words.iter().map(|w| w.to_string()).collect(),
        Arg::Keys(keys) => keys
            .iter()
            .filter(|k| !args.iter().any(|a| a.starts_with(&format!("{k}="))))
            .map(|k| format!("{k}="))
            .collect(),
        Arg::Model => Arch::ALL.iter().map(|a| a.name().to_string()).collect(),
        Arg::Method => MethodName::ALL
            .iter()
            .map(|m| m.name().to_string())
            .collect(),
        Arg::Attack => AttackName::ALL
            .iter()
            .map(|a| a.name().to_string())
            .collect(),
        Arg::Command => COMMANDS.iter().map(|c| c.name.to_string()).collect(),
        Arg::Data => ["mnist", "fashion", "cifar10", "cifar100"]
            .iter()
            .map(|s| s.to_string())
            .chain(paths(partial))
            .collect(),
        Arg::Teacher => ["embedded", "embedded-sat", "none"]
            .iter()
            .map(|s| s.to_string())
            .chain(paths(partial))
            .collect(),
        Arg::Path => paths(partial),
        Arg::SaveTarget if args.is_empty() => ["session"]
            .iter()
            .map(|s| s.to_string())
            .chain(paths(partial))
            .collect(),
        Arg::SaveTarget if args == ["session"] => session_names(partial),
        Arg::SaveTarget | Arg::Number => Vec::new(),
    };
    matching(candidates.into_iter(), partial)
}

fn matching(candidates: impl Iterator<Item = String>, partial: &str) -> Vec<String> {
    let mut out: Vec<String> = candidates.filter(|c| c.starts_with(partial)).collect();
    out.sort();
    out.dedup();
    out
}

/// The names of the sessions in `sessions/` that start with `partial`.
fn session_names(partial: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("sessions") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let stem = name.strip_suffix(".ron")?;
            stem.starts_with(partial).then(|| stem.to_string())
        })
        .take(200)
        .collect()
}

/// Files and folders whose path starts with `partial` (folders end in `/`).
fn paths(partial: &str) -> Vec<String> {
    let (dir, prefix) = match partial.rfind('/') {
        Some(i) => (&partial[..=i], &partial[i + 1..]),
        None => ("", partial),
    };
    let Ok(entries) = std::fs::read_dir(if dir.is_empty() { "." } else { dir }) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            if !name.starts_with(prefix) || (name.starts_with('.') && !prefix.starts_with('.')) {
                return None;
            }
            let slash = if entry.path().is_dir() { "/" } else { "" };
            Some(format!("{dir}{name}{slash}"))
        })
        .take(200)
        .collect()
}

/// Where the word being completed starts in `line` (a byte index).
pub fn word_start(line: &str) -> usize {
    line.rfind(char::is_whitespace).map_or(0, |i| {
        i + line[i..].chars().next().map_or(1, char::len_utf8)
    })
}

/// The text that replaces the word when `candidate` is the only completion: a finished word
/// gets a space, a folder (`…/`) or a key (`…=`) does not, so typing goes on inside it.
pub fn finish_word(candidate: &str) -> String {
    if candidate.ends_with('/') || candidate.ends_with('=') {
        candidate.to_string()
    } else {
        format!("{candidate} ")
    }
}

/// The longest common prefix of the candidates.
pub fn common_prefix(candidates: &[String]) -> String {
    let Some(first) = candidates.first() else {
        return String::new();
    };
    let mut end = first.len();
    for c in &candidates[1..] {
        end = end.min(
            first
                .char_indices()
                .zip(c.chars())
                .take_while(|((_, a), b)| a == b)
                .last()
                .map_or(0, |((i, a), _)| i + a.len_utf8()),
        );
    }
    first[..end].to_string()
}

/// The inline hint for a partly typed line: the usage of its command once the name is typed.
pub fn hint(line: &str) -> Option<String> {
    let name = line.split_whitespace().next()?;
    let spec = spec(name)?;
    if line.trim_end() == name && !line.ends_with(' ') {
        return None;
    }
    Some(format!("   {}", spec.usage))
}
