//! AutoAttack over many images as a series of blocks, each written to a journal file as soon as
//! it finishes, so an evaluation of hours survives Ctrl-C, a closed laptop or a time limit:
//! running the same command again skips the blocks already in the journal.
//!
//! Each block is a complete AutoAttack run on consecutive images with its own seed (derived
//! from the user's seed and the block's index), so the result does not depend on where the run
//! was interrupted. AutoAttack decides every image on its own (the model is in evaluation
//! mode), so the merged report is a standard AutoAttack evaluation of all the images; only the
//! random starts differ from a single unblocked run with the same seed.
//!
//! A journal can also be one shard's part of an evaluation run as several processes
//! (`super::shard`): it then holds only that shard's blocks.

use super::autoattack_cancellable;
use super::shard::Shard;
use crate::attack::autoattack::{AutoAttackConfig, AutoAttackReport, Version};
use crate::data::ImageSet;
use crate::progress::Progress;
use crate::zoo::Model;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::atomic::AtomicBool;

/// Version of the journal's layout; a journal of another version is refused, not guessed at.
pub const JOURNAL_FORMAT: u32 = 1;

/// Everything a block's result depends on: a journal only continues the same evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JournalKey {
    /// SHA-256 of the model's weights file (the checkpoint card's `weights_sha256`).
    pub weights_sha256: String,
    /// [`image_set_digest`] of the evaluated images.
    pub test_sha256: String,
    pub images: usize,
    pub block_size: usize,
    pub config: AutoAttackConfig,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Journal {
    pub format: u32,
    pub key: JournalKey,
    /// Set in a shard's part (`eval --shard`): the journal holds only that shard's blocks.
    /// Absent from a whole evaluation's journal, so those keep the layout of format 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// The finished blocks in order of [`Journal::block_indices`]: block `i` covers images
    /// `i * block_size ..`.
    pub blocks: Vec<AutoAttackReport>,
}

/// What the caller hears after each block.
pub struct BlockDone<'a> {
    /// 0-based index of the block.
    pub index: usize,
    pub blocks: usize,
    /// Index of its first image.
    pub first_image: usize,
    pub report: &'a AutoAttackReport,
    /// Images finished so far, this block included.
    pub images_done: usize,
    /// Of those, the ones still robust.
    pub robust_done: usize,
}

/// SHA-256 of a set's shape, pixels and labels (the evaluated images of a journal, the training
/// set of the trainer's kept teacher logits).
pub fn image_set_digest(set: &ImageSet) -> String {
    let mut hasher = Sha256::new();
    for dimension in [
        set.channels,
        set.height,
        set.width,
        set.num_classes,
        set.len(),
    ] {
        hasher.update((dimension as u64).to_le_bytes());
    }
    hasher.update(&set.pixels);
    hasher.update(&set.labels);
    format!("{:x}", hasher.finalize())
}

/// The seed of block `index`: the user's seed for block 0, a different one for each other.
/// Components then draw their streams from it (`rng::seeded`); two blocks sharing a stream by
/// coincidence would still attack different images, so no result depends on it.
pub fn block_seed(seed: u64, index: usize) -> u64 {
    seed.wrapping_add((index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Number of blocks of `block_size` images that cover `images`.
fn block_count(images: usize, block_size: usize) -> usize {
    images.div_ceil(block_size)
}

impl JournalKey {
    /// The key of an evaluation of `test` with `config` in blocks of `block_size` images.
    pub fn new(
        weights_sha256: &str,
        test: &ImageSet,
        config: &AutoAttackConfig,
        block_size: usize,
    ) -> Result<JournalKey> {
        if block_size == 0 {
            bail!("the AutoAttack block size must be at least 1 image");
        }
        Ok(JournalKey {
            weights_sha256: weights_sha256.to_string(),
            test_sha256: image_set_digest(test),
            images: test.len(),
            block_size,
            config: config.clone(),
        })
    }

    /// Number of blocks of the evaluation.
    pub fn blocks(&self) -> usize {
        block_count(self.images, self.block_size)
    }

    /// Number of images in block `index`: `block_size`, fewer for the last one.
    pub fn block_images(&self, index: usize) -> usize {
        self.block_size.min(self.images - index * self.block_size)
    }
}

impl Journal {
    /// The indices of the blocks this journal covers, in order: every block of the
    /// evaluation, or those of its shard.
    pub fn block_indices(&self) -> Vec<usize> {
        let all = 0..self.key.blocks();
        match self.shard {
            None => all.collect(),
            Some(shard) => all.filter(|&b| shard.owns(b)).collect(),
        }
    }

    /// Whether every block this journal covers is done.
    pub fn is_complete(&self) -> bool {
        self.blocks.len() == self.block_indices().len()
    }
}

/// The journal at `path` if it continues the evaluation `key` (refused, naming what differs,
/// if it belongs to another), or a new empty one written there now, so that an unwritable
/// path fails before any work.
pub fn open(path: &Path, key: JournalKey) -> Result<Journal> {
    open_part(path, key, None)
}

/// [`open`] for the part of `shard` (`None`: the whole evaluation); a journal of another
/// shard, or a part where a whole journal is expected, is refused.
pub fn open_part(path: &Path, key: JournalKey, shard: Option<Shard>) -> Result<Journal> {
    match read(path)? {
        Some(journal) => {
            check_continues(&journal, &key, path)?;
            check_shard(&journal, shard, path)?;
            Ok(journal)
        }
        None => {
            let journal = Journal {
                format: JOURNAL_FORMAT,
                key,
                shard,
                blocks: Vec::new(),
            };
            write(path, &journal)?;
            Ok(journal)
        }
    }
}

/// Lets the journal at `path`, an evaluation of the first images of `test`, continue as the
/// evaluation `key` of all of `test` (`eval --resume --extend`): its finished blocks are the
/// first blocks of the larger evaluation (the same images with the same seeds), so they count
/// as they are. Refused, saying why and writing nothing, unless everything but the number of
/// images matches, the journal's images are the first of `test` and fill whole blocks.
/// Returns the number of images the journal had if it was extended; `None` if there was
/// nothing to extend (no journal yet, or it already has `key`'s images).
pub fn extend(path: &Path, key: &JournalKey, test: &ImageSet) -> Result<Option<usize>> {
    let Some(mut journal) = read(path)? else {
        return Ok(None);
    };
    let before = journal.key.images;
    if before == key.images {
        return Ok(None);
    }
    let refuse = |why: String| {
        anyhow::anyhow!(
            "--extend cannot continue {} on {} images: {why}",
            path.display(),
            key.images
        )
    };
    if journal.shard.is_some() {
        return Err(refuse(
            "it is one shard's part; extend the whole journal, then shard again".into(),
        ));
    }
    if before > key.images {
        return Err(refuse(format!(
            "it holds {before} images, more than that (--extend only adds images)"
        )));
    }
    if before % journal.key.block_size != 0 {
        return Err(refuse(format!(
            "its {before} images end in a partial block of {} (--block), which the larger \
             evaluation would cut differently",
            journal.key.block_size
        )));
    }
    if image_set_digest(&test.take(before)) != journal.key.test_sha256 {
        return Err(refuse(format!(
            "its {before} images are not the first {before} of these (another dataset or \
             order)"
        )));
    }
    if key.test_sha256 != image_set_digest(test) {
        bail!("the evaluation to extend to was not made for these test images");
    }
    journal.key.images = key.images;
    journal.key.test_sha256 = key.test_sha256.clone();
    // Every other setting must still be the journal's, as for a plain continuation.
    check_continues(&journal, key, path)?;
    write(path, &journal)?;
    Ok(Some(before))
}

/// Runs AutoAttack on the blocks of `test` that `journal` (opened with [`open`] at `path` for
/// this `test`) does not have yet, writing it after every block, and returns the report of all
/// the images it covers (a shard's part: the images of its blocks only). `Ok(None)` if
/// `cancel` was raised; the blocks finished until then stay in the journal.
pub fn autoattack_in_blocks(
    model: &Model,
    test: &ImageSet,
    journal: &mut Journal,
    path: &Path,
    progress: &dyn Progress,
    cancel: &AtomicBool,
    on_block: &mut dyn FnMut(BlockDone),
) -> Result<Option<AutoAttackReport>> {
    if journal.key.test_sha256 != image_set_digest(test) {
        bail!("the journal was opened for another test set");
    }
    let block_size = journal.key.block_size;
    let blocks = journal.key.blocks();
    if blocks == 0 {
        // No images: the empty report, as AutoAttack gives it without blocks.
        return Ok(autoattack_cancellable(
            model,
            test,
            &journal.key.config,
            progress,
            cancel,
        )?);
    }
    let to_do: Vec<usize> = journal
        .block_indices()
        .into_iter()
        .skip(journal.blocks.len())
        .collect();
    for index in to_do {
        // Checked here too: a block whose points are all misclassified has no batch to attack.
        if cancel.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(None);
        }
        let first_image = index * block_size;
        let images = test.slice(first_image, first_image + block_size);
        let block_config = AutoAttackConfig {
            seed: block_seed(journal.key.config.seed, index),
            ..journal.key.config.clone()
        };
        let Some(report) = autoattack_cancellable(model, &images, &block_config, progress, cancel)?
        else {
            return Ok(None);
        };
        journal.blocks.push(report);
        write(path, journal)?;
        on_block(BlockDone {
            index,
            blocks,
            first_image,
            report: journal.blocks.last().expect("just pushed"),
            images_done: journal.blocks.iter().map(|b| b.images).sum(),
            robust_done: journal
                .blocks
                .iter()
                .flat_map(|b| &b.robust)
                .filter(|&&r| r)
                .count(),
        });
    }
    Ok(Some(AutoAttackReport::merge(&journal.blocks)?))
}

/// The journal at `path`, or None if there is no file there.
pub fn read(path: &Path) -> Result<Option<Journal>> {
    use crate::bounded_read::{JOURNAL, ReadError};
    let bytes = match crate::bounded_read::read(path, JOURNAL) {
        Ok(bytes) => bytes,
        Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read the journal {}", path.display()));
        }
    };
    let not_a_journal = || {
        format!(
            "{} is not an AutoAttack journal (or it is damaged); move it away to start over",
            path.display()
        )
    };
    let text = String::from_utf8(bytes).ok().with_context(not_a_journal)?;
    // The format first, so a journal of another layout is named as such, not as damaged.
    let header: Header = ron::from_str(&text).with_context(not_a_journal)?;
    if header.format != JOURNAL_FORMAT {
        bail!(
            "{} has journal format {}, this program reads format {JOURNAL_FORMAT}; \
             move it away to start over",
            path.display(),
            header.format
        );
    }
    let journal: Journal = ron::from_str(&text).with_context(not_a_journal)?;
    Ok(Some(journal))
}

/// The part of a journal every format shares.
#[derive(Deserialize)]
struct Header {
    format: u32,
}

/// Writes `journal` to `path` atomically (a reader sees the old file or the new one).
pub(super) fn write(path: &Path, journal: &Journal) -> Result<()> {
    let text = ron::ser::to_string_pretty(journal, ron::ser::PrettyConfig::default())
        .context("cannot encode the AutoAttack journal")?;
    crate::atomic::write(path, text.as_bytes())
        .with_context(|| format!("cannot write the journal {}", path.display()))
}

/// Refuses a part of another shard, a part where the whole journal is expected and the
/// other way round: their blocks are different images.
fn check_shard(journal: &Journal, shard: Option<Shard>, path: &Path) -> Result<()> {
    let name = |shard: Option<Shard>| match shard {
        Some(shard) => format!("the part of shard {shard}"),
        None => "a whole evaluation's journal".to_string(),
    };
    if journal.shard != shard {
        bail!(
            "{} is {}, not {}; use another file or move it away",
            path.display(),
            name(journal.shard),
            name(shard)
        );
    }
    Ok(())
}

/// Refuses a journal of another evaluation, or whose blocks do not fit its own key, naming
/// what differs.
pub(super) fn check_continues(journal: &Journal, key: &JournalKey, path: &Path) -> Result<()> {
    let stored = &journal.key;
    let mut differences = Vec::new();
    if stored.weights_sha256 != key.weights_sha256 {
        differences.push("the model's weights differ".to_string());
    }
    if stored.test_sha256 != key.test_sha256 || stored.images != key.images {
        let hint = if stored.images < key.images {
            "; --extend continues it on more images"
        } else {
            ""
        };
        differences.push(format!(
            "the test images differ ({} in the journal, {} now; dataset or --n{hint})",
            stored.images, key.images
        ));
    }
    let mut differ = |what: &str, then: String, now: String| {
        if then != now {
            differences.push(format!("{what} {then} in the journal, {now} now"));
        }
    };
    differ(
        "--block",
        stored.block_size.to_string(),
        key.block_size.to_string(),
    );
    let (then, now) = (&stored.config, &key.config);
    differ("ε", then.epsilon.to_string(), now.epsilon.to_string());
    differ(
        "components",
        component_names(&then.version),
        component_names(&now.version),
    );
    differ("--seed", then.seed.to_string(), now.seed.to_string());
    differ(
        "batch size",
        then.batch_size.to_string(),
        now.batch_size.to_string(),
    );
    if !differences.is_empty() {
        bail!(
            "{} belongs to another evaluation: {}; use another file or move it away",
            path.display(),
            differences.join("; ")
        );
    }
    if let Some(shard) = journal.shard
        && (shard.count == 0 || shard.index >= shard.count)
    {
        bail!("{} is inconsistent: it names shard {shard}", path.display());
    }
    let indices = journal.block_indices();
    if journal.blocks.len() > indices.len() {
        bail!(
            "{} is inconsistent: it has {} blocks, the evaluation has {}; move it away \
             to start over",
            path.display(),
            journal.blocks.len(),
            indices.len()
        );
    }
    let components = now.version.components();
    for (&index, block) in indices.iter().zip(&journal.blocks) {
        let expected = key.block_images(index);
        let fits = block.images == expected
            && block.robust.len() == expected
            && block.epsilon == now.epsilon
            && block.version == now.version.name()
            && block
                .components
                .iter()
                .map(|c| c.component)
                .eq(components.iter().copied());
        if !fits {
            bail!(
                "{} is inconsistent: block {} is not an evaluation of {expected} images with \
                 the journal's settings; move it away to start over",
                path.display(),
                index + 1
            );
        }
    }
    Ok(())
}

fn component_names(version: &Version) -> String {
    let names: Vec<&str> = version.components().iter().map(|c| c.name()).collect();
    format!("{} ({})", version.name(), names.join(","))
}
