//! Checkpoints: weights in safetensors plus a RON card beside them that says what they are.
//!
//! `runs/x.safetensors` holds the tensors, named by their module path (`conv1.weight`,
//! `bn1.running_mean`, ...); `runs/x.ron` holds the card: architecture and shapes, dataset,
//! training configuration, metrics, seed, and the SHA-256 of the weights file. Loading checks
//! the card against the weights and against what the caller asked for, and says exactly what
//! differs.
//!
//! A save has one commit point, the card (the protocol is [`save`]'s): a save stopped at any
//! moment leaves either the previous checkpoint or the new one, never new weights beside an old
//! card.

use crate::bounded_read::{self, Limit};
use crate::error::CheckpointError;
use crate::train::{EpochMetrics, TrainConfig};
use crate::zoo::{Arch, Model, ModelSpec};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;
use burn::tensor::TensorData;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Version of the card format; bumped when a field changes meaning.
pub const CARD_FORMAT: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointCard {
    pub format: u32,
    pub spec: ModelSpec,
    pub parameters: usize,
    /// File name of the weights, relative to the card.
    pub weights: String,
    pub weights_sha256: String,
    pub dataset: String,
    pub training: Option<TrainConfig>,
    pub metrics: Vec<EpochMetrics>,
    pub seed: u64,
    pub backend: String,
    pub created_by: String,
}

impl CheckpointCard {
    /// The dataset's name (`mnist`), without the provenance `import` and `recalibrate` append
    /// to it (`mnist (imported from ...)`, `mnist; batch-norm statistics ...`).
    pub fn dataset_name(&self) -> &str {
        let end = self
            .dataset
            .find([' ', ';', '('])
            .unwrap_or(self.dataset.len());
        &self.dataset[..end]
    }

    /// What was done to the batch-norm statistics after training (`recalibrate`'s note after
    /// the dataset's name and "; "), if anything.
    pub fn statistics_note(&self) -> Option<&str> {
        self.dataset.split_once("; ").map(|(_, note)| note)
    }

    /// Where the statistics of a recalibrated checkpoint came from, read from
    /// [`Self::statistics_note`]: "adversarial" or "natural" (both writers of the note say
    /// "… adversarial training images" or "… natural training images"; of several
    /// recalibrations the last counts). None if the student trained after it (the note then
    /// ends with [`retrained_note`]'s words): training gathered the statistics again.
    pub fn recalibrated_from(&self) -> Option<&'static str> {
        recalibrated_source(self.statistics_note()?)
    }
}

/// [`CheckpointCard::recalibrated_from`] for a statistics note on its own (the workbench keeps
/// the note of its student before any card is written).
pub fn recalibrated_source(note: &str) -> Option<&'static str> {
    let (at, source) = ["adversarial", "natural"]
        .into_iter()
        .filter_map(|source| {
            let at = note.rfind(&format!(" {source} training images"))?;
            Some((at, source))
        })
        .max_by_key(|&(at, _)| at)?;
    (!note[at..].contains(TRAINED_SINCE)).then_some(source)
}

/// What [`retrained_note`] appends: the statistics of the recalibration are gone.
const TRAINED_SINCE: &str = "trained since, which gathered the statistics again";

/// A statistics note once the student has trained after the recalibration it records.
pub fn retrained_note(note: &str) -> String {
    format!("{note}; {TRAINED_SINCE}")
}

/// Whether either file of the checkpoint at `path` exists (a half-written one counts).
pub fn exists(path: &Path) -> bool {
    let (weights, card) = paths(path);
    weights.exists() || card.exists()
}

/// What a save at the checkpoint path `path` would replace.
#[derive(Debug, PartialEq, Eq)]
pub enum Occupant {
    /// Neither of its two files is there.
    Nothing,
    /// A checkpoint: its card reads as one (its weights may be missing or stale).
    Checkpoint,
    /// Something else under one of its two names: a session or a lesson is a `.ron` file
    /// too, and an exported PyTorch file a `.safetensors` one. A save never replaces it.
    Other(PathBuf),
    /// The path names a folder (it is one, or it ends with `/`): a checkpoint needs a name in it.
    Folder,
}

/// What is at the checkpoint path `path` (a symlink counts as there, even a dangling one).
pub fn occupant(path: &Path) -> Occupant {
    let text = path.as_os_str().to_string_lossy();
    if path.is_dir() || text.ends_with(std::path::MAIN_SEPARATOR) || text.ends_with('/') {
        return Occupant::Folder;
    }
    let (weights, card) = paths(path);
    let there = |p: &Path| std::fs::symlink_metadata(p).is_ok();
    match (there(&weights), there(&card)) {
        (false, false) => Occupant::Nothing,
        (_, true) if read_card(path).is_ok() => Occupant::Checkpoint,
        (_, true) => Occupant::Other(card),
        (true, false) => Occupant::Other(weights),
    }
}

/// Refuses a save at `path` over anything but a checkpoint, and over a checkpoint unless
/// `replace`; `how` says how the user asks to replace one (e.g. "pass --overwrite").
pub fn check_destination(path: &Path, replace: bool, how: &str) -> Result<Occupant, String> {
    match occupant(path) {
        Occupant::Folder => Err(folder_message(path)),
        Occupant::Other(file) => Err(format!(
            "{} already exists and is not a checkpoint this program can read; choose another name",
            file.display()
        )),
        Occupant::Checkpoint if !replace => Err(format!(
            "{} already holds a checkpoint: choose another name, or {how} to replace it",
            path.display()
        )),
        occupant => Ok(occupant),
    }
}

/// Why a checkpoint may not be saved at the folder `path`.
pub fn folder_message(path: &Path) -> String {
    let folder = path.to_string_lossy();
    format!(
        "{folder} is a folder: name the checkpoint inside it (e.g. {}/model)",
        folder.trim_end_matches(['/', std::path::MAIN_SEPARATOR])
    )
}

/// The two files of a checkpoint, from either of their paths or their common stem.
pub fn paths(path: &Path) -> (PathBuf, PathBuf) {
    let stem = match path.extension().and_then(|e| e.to_str()) {
        Some("safetensors") | Some("ron") => path.with_extension(""),
        _ => path.to_path_buf(),
    };
    (
        stem.with_extension("safetensors"),
        stem.with_extension("ron"),
    )
}

/// Hex digits of the weights' SHA-256 in the name of staged weights.
const STAGED_HASH_DIGITS: usize = 16;

/// Where a save puts weights of SHA-256 `sha256` before its card names them:
/// `x.<first 16 hex digits>.safetensors` beside `x.safetensors`. `None` for a hash that is
/// not 64 hex digits (a card from someone else may hold anything).
pub fn staged_weights_path(weights_path: &Path, sha256: &str) -> Option<PathBuf> {
    let is_hash = sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit());
    is_hash.then(|| {
        weights_path.with_extension(format!(
            "{}.safetensors",
            &sha256[..STAGED_HASH_DIGITS].to_ascii_lowercase()
        ))
    })
}

/// What a caller knows about the model when saving it.
pub struct SaveInfo<'a> {
    pub dataset: &'a str,
    pub training: Option<&'a TrainConfig>,
    pub metrics: &'a [EpochMetrics],
    pub seed: u64,
}

/// The steps of a [`save`] that change what is on disk, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaveStep {
    /// The new weights are written and flushed to a temporary file of their staging name.
    WeightsWritten,
    /// ... and renamed to the staging name `x.<hash>.safetensors`.
    WeightsStaged,
    /// The new card is written and flushed to a temporary file.
    CardWritten,
    /// The new card replaced the old one: the commit point. From here on a load gets the new
    /// checkpoint.
    CardCommitted,
    /// The staged weights were renamed to `x.safetensors`.
    WeightsPublished,
    /// Weights staged by earlier saves that were stopped were removed.
    Cleaned,
}

impl SaveStep {
    pub const ALL: [SaveStep; 6] = [
        SaveStep::WeightsWritten,
        SaveStep::WeightsStaged,
        SaveStep::CardWritten,
        SaveStep::CardCommitted,
        SaveStep::WeightsPublished,
        SaveStep::Cleaned,
    ];

    /// Whether a save that got this far has committed the new checkpoint.
    pub fn is_committed(self) -> bool {
        matches!(
            self,
            SaveStep::CardCommitted | SaveStep::WeightsPublished | SaveStep::Cleaned
        )
    }
}

/// Writes the checkpoint `<stem>.safetensors` + `<stem>.ron` with one commit point:
///
/// 1. the weights go to `<stem>.<hash>.safetensors` (a temporary file, flushed, renamed);
/// 2. the card, which records the weights' SHA-256, replaces `<stem>.ron` (a temporary file,
///    flushed, renamed): **the commit**;
/// 3. the staged weights are renamed to `<stem>.safetensors`, and weights staged by earlier
///    saves that were stopped are removed.
///
/// A load reads the card and takes `<stem>.safetensors` if its hash is the card's, else the
/// staged file of that hash, so a save stopped before step 2 leaves the previous checkpoint,
/// and one stopped after it the new one. A failure before the commit (a full disk) removes
/// what it staged and returns the error; after the commit the save has succeeded, and a
/// failure to rename the staged weights only leaves them where loads find them. Returns the
/// path of the committed weights (`<stem>.safetensors`, unless that rename failed).
pub fn save(model: &Model, path: &Path, info: &SaveInfo) -> Result<PathBuf, CheckpointError> {
    save_with_hook(model, path, info, &mut |_| Ok(()))
}

/// [`save`], calling `after` after each [`SaveStep`]: an error from it stops the save there as
/// a failure of the next step would. For fault-injection tests (a panic in `after` leaves the
/// files as a killed process would).
pub fn save_with_hook(
    model: &Model,
    path: &Path,
    info: &SaveInfo,
    after: &mut dyn FnMut(SaveStep) -> std::io::Result<()>,
) -> Result<PathBuf, CheckpointError> {
    let (weights_path, card_path) = paths(path);
    if let Some(parent) = weights_path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|error| CheckpointError::Io {
            path: parent.to_path_buf(),
            error,
        })?;
    }
    let bytes = weights_to_safetensors(model).map_err(|reason| CheckpointError::Corrupt {
        path: weights_path.clone(),
        reason,
    })?;
    let weights_sha256 = sha256_hex(&bytes);
    let staged =
        staged_weights_path(&weights_path, &weights_sha256).expect("a SHA-256 is 64 hex digits");
    let card = CheckpointCard {
        format: CARD_FORMAT,
        spec: model.spec(),
        parameters: model.parameter_count(),
        weights: file_name(&weights_path),
        weights_sha256,
        dataset: info.dataset.to_string(),
        training: info.training.cloned(),
        metrics: info.metrics.to_vec(),
        seed: info.seed,
        backend: crate::device::backend_name(),
        created_by: format!("rslad-tui {}", env!("CARGO_PKG_VERSION")),
    };
    let card_text =
        ron::ser::to_string_pretty(&card, ron::ser::PrettyConfig::default()).map_err(|e| {
            CheckpointError::Corrupt {
                path: card_path.clone(),
                reason: e.to_string(),
            }
        })?;

    // Until the commit, a failure removes what this save staged; the old pair is untouched.
    let io_error = |path: &Path| {
        let path = path.to_path_buf();
        move |error| CheckpointError::Io { path, error }
    };
    // (Weights already staged under this hash may be what the current card names, left by a
    // save stopped between its commit and its rename: those stay.)
    let staged_before = staged.exists();
    let uncommitted = |error: CheckpointError| {
        if !staged_before {
            let _ = std::fs::remove_file(&staged);
        }
        let _ = std::fs::remove_file(crate::atomic::temporary_path(&staged));
        let _ = std::fs::remove_file(crate::atomic::temporary_path(&card_path));
        error
    };
    (|| {
        let temporary = crate::atomic::write_temporary(&staged, |w| w.write_all(&bytes))
            .map_err(io_error(&staged))?;
        after(SaveStep::WeightsWritten).map_err(io_error(&staged))?;
        crate::atomic::replace(&temporary, &staged).map_err(io_error(&staged))?;
        after(SaveStep::WeightsStaged).map_err(io_error(&staged))?;
        let temporary =
            crate::atomic::write_temporary(&card_path, |w| w.write_all(card_text.as_bytes()))
                .map_err(io_error(&card_path))?;
        after(SaveStep::CardWritten).map_err(io_error(&card_path))?;
        crate::atomic::replace(&temporary, &card_path).map_err(io_error(&card_path))
    })()
    .map_err(uncommitted)?;

    // Committed: what follows only tidies up, and loads find the weights either way.
    if after(SaveStep::CardCommitted).is_err() {
        return Ok(staged);
    }
    if crate::atomic::replace(&staged, &weights_path).is_err()
        || after(SaveStep::WeightsPublished).is_err()
    {
        return Ok(staged);
    }
    remove_stale_staged_weights(&weights_path);
    let _ = after(SaveStep::Cleaned);
    Ok(weights_path)
}

/// Removes `x.<16 hex digits>.safetensors` (and their temporary files) beside `x.safetensors`:
/// weights staged by saves that were stopped, which no card names any more once a later save
/// has published its own weights. One with a card of its own beside it
/// (`x.<16 hex digits>.ron`) is another checkpoint, and stays.
fn remove_stale_staged_weights(weights_path: &Path) {
    let (Some(stem), Some(folder)) = (
        weights_path.file_stem().and_then(|s| s.to_str()),
        weights_path.parent(),
    ) else {
        return;
    };
    let folder = if folder.as_os_str().is_empty() {
        Path::new(".")
    } else {
        folder
    };
    let Ok(entries) = std::fs::read_dir(folder) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        let hash = name
            .strip_suffix(".partial")
            .unwrap_or(name)
            .strip_prefix(stem)
            .and_then(|rest| rest.strip_prefix('.'))
            .and_then(|rest| rest.strip_suffix(".safetensors"))
            .filter(|hash| {
                hash.len() == STAGED_HASH_DIGITS
                    && hash
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            });
        let Some(hash) = hash else {
            continue;
        };
        if !folder.join(format!("{stem}.{hash}.ron")).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Loads a checkpoint onto `device`. With `expected`, the card must describe that architecture.
///
/// The card is read first; the weights are `<stem>.safetensors` if their SHA-256 is the one
/// the card records, else the weights a save staged under that hash before it was stopped
/// (see [`save`]); anything else is refused. Both files are read as
/// [`bounded_read`] allows: regular files of at most [`bounded_read::CARD`] and
/// [`bounded_read::WEIGHTS`] bytes.
pub fn load(
    path: &Path,
    expected: Option<Arch>,
    device: &Device,
) -> Result<(Model, CheckpointCard), CheckpointError> {
    let (weights_path, card_path) = paths(path);
    let card_bytes = read(&card_path, bounded_read::CARD)?;
    let card = parse_card(card_bytes, &card_path, expected)?;
    let (weights_path, weights_bytes) = committed_weights(&weights_path, &card)?;
    let model = build_model(&card, &card_path, &weights_bytes, &weights_path, device)?;
    Ok((model, card))
}

/// The card of the checkpoint at `path`, without its weights.
pub fn read_card(path: &Path) -> Result<CheckpointCard, CheckpointError> {
    let (_, card_path) = paths(path);
    parse_card(read(&card_path, bounded_read::CARD)?, &card_path, None)
}

/// The weights file the card names by its hash, and its bytes.
fn committed_weights(
    weights_path: &Path,
    card: &CheckpointCard,
) -> Result<(PathBuf, Vec<u8>), CheckpointError> {
    let published = read(weights_path, bounded_read::WEIGHTS);
    if let Ok(bytes) = &published
        && sha256_hex(bytes) == card.weights_sha256
    {
        return Ok((weights_path.to_path_buf(), published.expect("checked")));
    }
    // A save stopped between its commit and the rename leaves the weights staged.
    if let Some(staged) = staged_weights_path(weights_path, &card.weights_sha256)
        && staged.is_file()
        && let Ok(bytes) = read(&staged, bounded_read::WEIGHTS)
        && sha256_hex(&bytes) == card.weights_sha256
    {
        return Ok((staged, bytes));
    }
    // The published file it is, with the hash check's message if it was read.
    Ok((weights_path.to_path_buf(), published?))
}

/// Loads a checkpoint held in memory (the shipped teacher, compiled into the program);
/// `name` stands for its path in error messages.
pub fn load_bytes(
    card: &[u8],
    weights: &[u8],
    name: &str,
    expected: Option<Arch>,
    device: &Device,
) -> Result<(Model, CheckpointCard), CheckpointError> {
    let (weights_path, card_path) = paths(Path::new(name));
    let card = parse_card(card.to_vec(), &card_path, expected)?;
    let model = build_model(&card, &card_path, weights, &weights_path, device)?;
    Ok((model, card))
}

/// The card, checked for its format and, with `expected`, its architecture.
fn parse_card(
    card_text: Vec<u8>,
    card_path: &Path,
    expected: Option<Arch>,
) -> Result<CheckpointCard, CheckpointError> {
    let card_text = String::from_utf8(card_text).map_err(|_| CheckpointError::Corrupt {
        path: card_path.to_path_buf(),
        reason: "the card is not UTF-8 text".into(),
    })?;
    let card: CheckpointCard = ron::from_str(&card_text).map_err(|e| CheckpointError::Corrupt {
        path: card_path.to_path_buf(),
        reason: format!("the card is not a valid RON checkpoint card: {e}"),
    })?;
    let mismatch = |differences: String| CheckpointError::Mismatch {
        path: card_path.to_path_buf(),
        differences,
    };
    if card.format != CARD_FORMAT {
        return Err(mismatch(format!(
            "card format {} (this program reads format {CARD_FORMAT})",
            card.format
        )));
    }
    if let Some(arch) = expected.filter(|&arch| arch != card.spec.arch) {
        return Err(mismatch(format!(
            "the card describes a {} but a {} was requested",
            card.spec.arch, arch
        )));
    }
    Ok(card)
}

/// The card's model with the weights `bytes`, which must be the ones the card records.
fn build_model(
    card: &CheckpointCard,
    card_path: &Path,
    bytes: &[u8],
    weights_path: &Path,
    device: &Device,
) -> Result<Model, CheckpointError> {
    let mismatch = |differences: String| CheckpointError::Mismatch {
        path: card_path.to_path_buf(),
        differences,
    };
    let digest = sha256_hex(bytes);
    if digest != card.weights_sha256 {
        return Err(mismatch(format!(
            "the weights file {} has SHA-256 {digest}, the card records {}: \
             the weights were changed or belong to another card",
            weights_path.display(),
            card.weights_sha256
        )));
    }
    let tensors = read_safetensors(bytes).map_err(|reason| CheckpointError::Corrupt {
        path: weights_path.to_path_buf(),
        reason,
    })?;
    let model = Model::build_uninitialized(card.spec, device)
        .map_err(|e| mismatch(format!("the card's model cannot be built: {e}")))?;
    let model = apply_tensors(model, tensors).map_err(mismatch)?;
    if model.parameter_count() != card.parameters {
        return Err(mismatch(format!(
            "the card records {} parameters, the model has {}",
            card.parameters,
            model.parameter_count()
        )));
    }
    Ok(model)
}

/// Tensors by name: shape and values.
type NamedTensors = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

/// Every float tensor of the model (parameters and running statistics) by module path.
pub fn named_tensors(model: &Model) -> NamedTensors {
    let mut collector = Collector {
        path: Vec::new(),
        tensors: BTreeMap::new(),
    };
    model.valid().visit(&mut collector);
    collector.tensors
}

fn weights_to_safetensors(model: &Model) -> Result<Vec<u8>, String> {
    let tensors = named_tensors(model);
    let raw: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .into_iter()
        .map(|(name, (shape, values))| {
            let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            (name, shape, bytes)
        })
        .collect();
    let views: Vec<(String, TensorView)> = raw
        .iter()
        .map(|(name, shape, bytes)| {
            TensorView::new(Dtype::F32, shape.clone(), bytes)
                .map(|view| (name.clone(), view))
                .map_err(|e| e.to_string())
        })
        .collect::<Result<_, _>>()?;
    safetensors::serialize(views, &None).map_err(|e| e.to_string())
}

fn read_safetensors(bytes: &[u8]) -> Result<NamedTensors, String> {
    let file =
        SafeTensors::deserialize(bytes).map_err(|e| format!("not a safetensors file: {e}"))?;
    let mut tensors = BTreeMap::new();
    for (name, view) in file.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(format!("tensor {name} is {:?}, expected F32", view.dtype()));
        }
        let values: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        if values.iter().any(|v| !v.is_finite()) {
            return Err(format!("tensor {name} contains NaN or infinite values"));
        }
        tensors.insert(name, (view.shape().to_vec(), values));
    }
    Ok(tensors)
}

/// Replaces every tensor of `model` by the one of the same name, or lists what does not fit.
pub(crate) fn apply_tensors(model: Model, tensors: NamedTensors) -> Result<Model, String> {
    let mut loader = Loader {
        path: Vec::new(),
        tensors,
        used: Vec::new(),
        problems: Vec::new(),
    };
    let model = model.map(&mut loader);
    for name in loader.tensors.keys() {
        if !loader.used.contains(name) {
            loader.problems.push(format!("unexpected tensor {name}"));
        }
    }
    if loader.problems.is_empty() {
        Ok(model)
    } else {
        Err(loader.problems.join("; "))
    }
}

pub(crate) fn path_name(path: &[String]) -> String {
    path.join(".")
}

/// Module paths skip enum variant names: `conv1.weight`, not `SmallCnn.conv1.weight`.
pub(crate) fn enter(path: &mut Vec<String>, name: &str, container_type: &str) {
    if !container_type.starts_with("Enum:") {
        path.push(name.to_string());
    }
}

pub(crate) fn exit(path: &mut Vec<String>, container_type: &str) {
    if !container_type.starts_with("Enum:") {
        path.pop();
    }
}

struct Collector {
    path: Vec<String>,
    tensors: NamedTensors,
}

impl ModuleVisitor for Collector {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        enter(&mut self.path, name, container_type);
    }

    fn exit_module(&mut self, _name: &str, container_type: &str) {
        exit(&mut self.path, container_type);
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let tensor = param.val();
        let shape = tensor.dims().to_vec();
        self.tensors.insert(
            path_name(&self.path),
            (shape, crate::tensor_util::to_vec(tensor)),
        );
    }
}

struct Loader {
    path: Vec<String>,
    tensors: NamedTensors,
    used: Vec<String>,
    problems: Vec<String>,
}

impl ModuleMapper for Loader {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        enter(&mut self.path, name, container_type);
    }

    fn exit_module(&mut self, _name: &str, container_type: &str) {
        exit(&mut self.path, container_type);
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let name = path_name(&self.path);
        let expected = param.lazy_shape().dims::<D>().to_vec();
        let Some((shape, values)) = self.tensors.get(&name) else {
            self.problems.push(format!("missing tensor {name}"));
            return param;
        };
        if *shape != expected {
            self.problems.push(format!(
                "tensor {name} has shape {shape:?}, the model needs {expected:?}"
            ));
            return param;
        }
        // A variance below 0 makes batch norm take the square root of a negative number: every
        // output would be NaN. (Non-finite values are refused by the readers.)
        let negative_variance = name.ends_with("running_var") && values.iter().any(|&v| v < 0.0);
        self.used.push(name.clone());
        if negative_variance {
            self.problems.push(format!(
                "tensor {name} has negative values; a variance is never below 0"
            ));
            return param;
        }
        let device = param.lazy_device();
        let tensor =
            Tensor::<D>::from_data(TensorData::new(values.clone(), shape.clone()), &device);
        Param::initialized(param.id, tensor).set_require_grad(true)
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The bytes of `path`, a regular file of at most `limit` bytes ([`bounded_read`]).
pub(crate) fn read(path: &Path, limit: Limit) -> Result<Vec<u8>, CheckpointError> {
    bounded_read::read(path, limit).map_err(|error| CheckpointError::Io {
        path: path.to_path_buf(),
        error: error.into(),
    })
}

pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    crate::atomic::write(path, bytes).map_err(|error| CheckpointError::Io {
        path: path.to_path_buf(),
        error,
    })
}
