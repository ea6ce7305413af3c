//! A journaled AutoAttack evaluation cut into N shards that run as separate processes (a
//! cluster's job array, GNU parallel, background jobs) sharing nothing but a folder.
//!
//! Shard `I` of `N` owns the blocks `b` with `b % N == I` (interleaved, so every shard gets a
//! share of the early and the late images) and journals them in its own part,
//! `J.part-I-of-N` next to the journal `J`. Each block keeps the seed of its index in the whole
//! evaluation, so the merged journal is exactly the one an uninterrupted single run writes:
//! the same counts, and the sanity flags decided on all the images by
//! [`AutoAttackReport::merge`](crate::attack::autoattack::AutoAttackReport::merge).

use super::journal::{self, Journal, JournalKey};
use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Shard `index` of `count` (0-based, as Slurm's `SLURM_ARRAY_TASK_ID` counts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// Whether block `block` of the evaluation is this shard's.
    pub fn owns(&self, block: usize) -> bool {
        block % self.count == self.index
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;

    /// `I/N` with `0 <= I < N`.
    fn from_str(text: &str) -> Result<Shard, String> {
        let bad = || format!("'{text}' is not a shard: write I/N with 0 <= I < N, e.g. 0/4");
        let (index, count) = text.split_once('/').ok_or_else(bad)?;
        let index: usize = index.trim().parse().map_err(|_| bad())?;
        let count: usize = count.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

/// Where shard `shard` of the journal `journal` keeps its part: `J.part-I-of-N`.
pub fn part_path(journal: &Path, shard: Shard) -> PathBuf {
    let mut name = journal.as_os_str().to_owned();
    name.push(format!(".part-{}-of-{}", shard.index, shard.count));
    PathBuf::from(name)
}

/// The parts of `journal` present in its folder, with the shard each file name gives, in
/// order of (count, index). Other files (the atomic writer's `.partial` ones among them) are
/// not parts.
pub fn find_parts(journal: &Path) -> Result<Vec<(PathBuf, Shard)>> {
    let folder = match journal.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let Some(stem) = journal.file_name().and_then(|n| n.to_str()) else {
        bail!("{} is not a journal file name", journal.display());
    };
    let prefix = format!("{stem}.part-");
    let entries = match std::fs::read_dir(folder) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => bail!("cannot list {}: {e}", folder.display()),
    };
    let mut parts = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(shard) = name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .and_then(parse_part_suffix)
        else {
            continue;
        };
        // Named as the journal was (relative paths stay relative).
        parts.push((journal.with_file_name(name), shard));
    }
    parts.sort_by_key(|(_, shard)| (shard.count, shard.index));
    Ok(parts)
}

/// `I-of-N` (what follows `.part-`) as a shard.
fn parse_part_suffix(suffix: &str) -> Option<Shard> {
    let (index, count) = suffix.split_once("-of-")?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(index) || !digits(count) {
        return None;
    }
    format!("{index}/{count}").parse().ok()
}

/// The whole journal of the evaluation `key`, assembled from the parts of `journal`. Refused,
/// naming the files, unless there is exactly one finished part of this evaluation for every
/// shard of one shard count.
pub fn merge_parts(journal: &Path, key: &JournalKey) -> Result<Journal> {
    let parts = find_parts(journal)?;
    let Some(&(_, first)) = parts.first() else {
        bail!(
            "no parts of {0} to merge: the shards write {0}.part-I-of-N (eval --shard I/N)",
            journal.display()
        );
    };
    let counts: std::collections::BTreeSet<usize> = parts.iter().map(|(_, s)| s.count).collect();
    if counts.len() > 1 {
        let names: Vec<String> = parts.iter().map(|(p, _)| p.display().to_string()).collect();
        bail!(
            "the parts of {} come from different shard counts ({}); keep those of one run and \
             move the others away",
            journal.display(),
            names.join(", ")
        );
    }
    let count = first.count;
    let mut problems = Vec::new();
    let mut by_index: Vec<Option<Journal>> = vec![None; count];
    for (path, named) in &parts {
        let Some(part) = journal::read(path)? else {
            // Removed while we listed the folder: reported below as missing.
            continue;
        };
        journal::check_continues(&part, key, path)?;
        match part.shard {
            Some(shard) if shard == *named => {}
            Some(shard) => {
                problems.push(format!(
                    "{} holds shard {shard}, not {named} (a copied or renamed part: shard {shard} \
                     is duplicated)",
                    path.display()
                ));
                continue;
            }
            None => {
                problems.push(format!(
                    "{} is a whole evaluation's journal, not a shard's part",
                    path.display()
                ));
                continue;
            }
        }
        if !part.is_complete() {
            problems.push(format!(
                "{} has {} of its {} blocks: run shard {named} again to finish it",
                path.display(),
                part.blocks.len(),
                part.block_indices().len()
            ));
        }
        by_index[named.index] = Some(part);
    }
    let missing: Vec<String> = (0..count)
        .map(|index| Shard { index, count })
        .filter(|shard| by_index[shard.index].is_none())
        .map(|shard| format!("{shard} ({})", part_path(journal, shard).display()))
        .collect();
    if !missing.is_empty() {
        problems.push(format!(
            "shard{} missing: {}",
            if missing.len() == 1 { " is" } else { "s are" },
            missing.join(", ")
        ));
    }
    if !problems.is_empty() {
        bail!(
            "cannot merge the parts of {}: {}",
            journal.display(),
            problems.join("; ")
        );
    }
    Ok(interleave(key, by_index.into_iter().flatten().collect()))
}

/// The whole journal from the finished parts of every shard, in shard order: block `b` is the
/// `b / N`-th block of shard `b % N`.
fn interleave(key: &JournalKey, parts: Vec<Journal>) -> Journal {
    let count = parts.len();
    let mut shards: Vec<_> = parts.into_iter().map(|p| p.blocks.into_iter()).collect();
    let blocks = (0..key.blocks())
        .map(|b| {
            shards[b % count]
                .next()
                .expect("a finished part has all its blocks")
        })
        .collect();
    Journal {
        format: journal::JOURNAL_FORMAT,
        key: key.clone(),
        shard: None,
        blocks,
    }
}

/// Writes the merged `whole` journal to `path`, which must not exist yet (a journal there is
/// never replaced).
pub fn save_merged(path: &Path, whole: &Journal) -> Result<()> {
    if path.exists() {
        bail!("{} exists already; move it away to merge", path.display());
    }
    journal::write(path, whole)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_written_i_of_n_from_zero() {
        assert_eq!("3/4".parse(), Ok(Shard { index: 3, count: 4 }));
        for bad in ["4/4", "0/0", "1", "-1/4", "a/4", "1/4/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn interleaved_shards_cover_every_block_once() {
        let count = 3;
        for block in 0..10 {
            let owners = (0..count)
                .filter(|&index| Shard { index, count }.owns(block))
                .count();
            assert_eq!(owners, 1, "block {block}");
        }
    }

    #[test]
    fn part_names_round_trip_and_other_files_are_not_parts() {
        let shard = Shard { index: 2, count: 5 };
        let path = part_path(Path::new("runs/aa.ron"), shard);
        assert_eq!(path, Path::new("runs/aa.ron.part-2-of-5"));
        assert_eq!(parse_part_suffix("2-of-5"), Some(shard));
        // The atomic writer's temporary file, and names that only look like parts.
        for other in ["2-of-5.partial", "2-of-", "x-of-5", "5-of-5", "+2-of-5"] {
            assert_eq!(parse_part_suffix(other), None, "{other}");
        }
    }
}
