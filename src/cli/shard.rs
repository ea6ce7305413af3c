//! `eval --resume J --shard I/N` and `eval --resume J --merge`: an AutoAttack evaluation run
//! as N independent processes (docs/scale.md), each journaling its blocks in its own part, and
//! merged into the journal one uninterrupted run would have written.

use super::eval::resume_autoattack;
use crate::data::ImageSet;
use crate::eval::journal::{self, JournalKey};
use crate::eval::shard::{self, Shard};
use crate::progress::Progress;
use crate::zoo::Model;
use anyhow::{Result, bail};
use serde::Serialize;
use std::path::Path;

/// What `eval --shard --json` prints: how far this shard got.
#[derive(Serialize)]
struct ShardOutput {
    shard: String,
    part: String,
    blocks: Vec<usize>,
    images: usize,
    robust: usize,
}

/// Runs the blocks of `shard` that its part of `journal` lacks and says what it holds.
pub fn run_shard(
    model: &Model,
    test: &ImageSet,
    key: JournalKey,
    journal: &Path,
    shard: Shard,
    json: bool,
    progress: &dyn Progress,
) -> Result<()> {
    let blocks = key.blocks();
    if shard.count > blocks {
        bail!(
            "--shard {shard}: the evaluation has only {blocks} blocks of --block {} images; use \
             at most {blocks} shards or a smaller --block",
            key.block_size
        );
    }
    let path = shard::part_path(journal, shard);
    let mut part = journal::open_part(&path, key, Some(shard))?;
    if part.blocks.is_empty() {
        eprintln!(
            "{}: shard {shard}, blocks {}",
            path.display(),
            one_based(&part.block_indices())
        );
    } else if part.is_complete() {
        eprintln!("{}: all blocks of shard {shard} done", path.display());
    }
    let report = resume_autoattack(
        model,
        test,
        &mut part,
        &path,
        progress,
        "run the same command to continue",
    )?;
    let output = ShardOutput {
        shard: shard.to_string(),
        part: path.display().to_string(),
        blocks: part.block_indices(),
        images: report.images,
        robust: report.robust.iter().filter(|&&r| r).count(),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&output)?);
    } else {
        println!(
            "shard {shard} done: {} images, {} robust, in {}; once all {} shards are done, run \
             the same command with --merge instead of --shard",
            output.images, output.robust, output.part, shard.count
        );
    }
    Ok(())
}

/// Before `eval --resume` opens `journal`: with `merge`, writes it from the shards' parts (if
/// it is not there yet); without, refuses to start the evaluation afresh next to parts of it,
/// which would redo their work.
pub fn merge_or_refuse_parts(key: &JournalKey, journal: &Path, merge: bool) -> Result<()> {
    if journal.exists() {
        if merge {
            // Merged before (or run whole): it must be the finished evaluation.
            let whole = journal::open(journal, key.clone())?;
            if !whole.is_complete() {
                bail!(
                    "{} is an unfinished single-process journal; move it away to merge the \
                     shards' parts into it",
                    journal.display()
                );
            }
            eprintln!("{}: merged already", journal.display());
        }
        return Ok(());
    }
    if merge {
        let whole = shard::merge_parts(journal, key)?;
        shard::save_merged(journal, &whole)?;
        eprintln!(
            "{}: merged {} blocks from the shards' parts (they can be removed now)",
            journal.display(),
            whole.blocks.len()
        );
        return Ok(());
    }
    let parts = shard::find_parts(journal)?;
    if !parts.is_empty() {
        let names: Vec<String> = parts.iter().map(|(p, _)| p.display().to_string()).collect();
        bail!(
            "{} does not exist but shard parts of it do ({}): add --merge to merge them, or \
             move them away to run the evaluation in one process",
            journal.display(),
            names.join(", ")
        );
    }
    Ok(())
}

/// Block indices as the per-block lines count them (from 1).
fn one_based(indices: &[usize]) -> String {
    let shown: Vec<String> = indices.iter().map(|i| (i + 1).to_string()).collect();
    shown.join(", ")
}
