//! Small parsers the command rows share: words, counts, `key=value` pairs, lists.

use crate::settings::values::{Count, number};

/// The words after the command name.
pub(super) fn words(rest: &str) -> Vec<&str> {
    rest.split_whitespace().collect()
}

/// No arguments, or an error naming the command.
pub(super) fn none(name: &str, rest: &str) -> Result<(), String> {
    if rest.trim().is_empty() {
        Ok(())
    } else {
        Err(format!("`{name}` takes no arguments"))
    }
}

/// Exactly one word.
pub(super) fn one(rest: &str, missing: &str) -> Result<String, String> {
    match words(rest).as_slice() {
        [value] => Ok(value.to_string()),
        [] => Err(missing.to_string()),
        _ => Err("too many arguments (paths cannot contain spaces here)".into()),
    }
}

/// A positive whole number of epochs, batches or images.
pub(super) fn count(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("expected a whole number ≥ 1, got `{text}`")),
    }
}

/// An index into the test set.
pub(super) fn index(text: &str) -> Result<usize, String> {
    text.parse::<usize>()
        .map_err(|_| format!("expected a sample index ≥ 0, got `{text}`"))
}

/// A `key=value` pair whose key is one of `keys`; the value stays text.
pub(super) fn key_text<'a>(pair: &'a str, keys: &[&str]) -> Result<(&'a str, &'a str), String> {
    let Some((key, value)) = pair.split_once('=') else {
        return Err(format!("expected key=value, got `{pair}`"));
    };
    if !keys.contains(&key) {
        return Err(format!("unknown key `{key}`; keys: {}", keys.join(" ")));
    }
    Ok((key, value))
}

/// A `key=value` pair with a number (decimal or fraction) as its value.
pub(super) fn key_value<'a>(pair: &'a str, keys: &[&str]) -> Result<(&'a str, f64), String> {
    let (key, value) = key_text(pair, keys)?;
    Ok((key, number(value)?))
}

/// A whole number ≥ 1 given as `key=N`.
pub(super) fn key_count(key: &str, value: f64) -> Result<usize, String> {
    Count::from_number(value)
        .map(Count::get)
        .map_err(|e| e.named(key))
}

/// "215,260,285" as epoch numbers; "" or "none" for no milestones.
pub(super) fn epoch_list(text: &str) -> Result<Vec<usize>, String> {
    if text.is_empty() || text == "none" {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|e| match e {
            "" => Err(
                "milestones: write the epochs with commas and no spaces, e.g. \
                       milestones=215,260,285"
                    .to_string(),
            ),
            _ => e
                .parse::<usize>()
                .map_err(|_| format!("milestones: `{e}` is not an epoch number")),
        })
        .collect()
}

/// A session name: letters, digits, `-`, `_` and `.`, not starting with `.`, so it can only
/// name a file inside the sessions folder.
pub fn session_name(name: &str) -> Result<String, String> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(name.trim_end_matches(".ron").to_string())
    } else {
        Err(format!(
            "`{name}` is not a session name: use letters, digits, - _ and . (no folders)"
        ))
    }
}
