//! What a training run needs beyond its checkpoint to go on exactly where it stopped: the
//! optimiser's state (Adam's moments and step count, SGD's momentum). `train` writes it beside
//! each checkpoint it saves (`runs/x.resume` beside `runs/x.ron`) and `train --resume` reads
//! it back. Everything else is already in the checkpoint (weights and batch-norm statistics)
//! or follows from the card (the finished epochs; each epoch's batch order and attack noise
//! are seeded by the run's seed and the epoch's number).
//!
//! burn keys the optimiser's state by parameter id, and a model loaded from a checkpoint gets
//! fresh ids, so the file also records each parameter's id by its name, and [`ResumeState::apply`]
//! gives the loaded model those ids back.
//!
//! Layout: the magic line, a little-endian u32 length, that many bytes of RON header
//! ([`Header`]), then the optimiser's state as burn serialises it (burnpack).

use crate::bounded_read::{self, Limit};
use crate::checkpoint::sha256_hex;
use crate::zoo::{Model, for_each_trainable};
use burn::module::{Module, ModuleMapper, Param, ParamId};
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const MAGIC: &[u8] = b"rslad-tui resume state 1\n";

/// The largest resume file read: twice the largest weights file (Adam keeps two moments per
/// weight) and a margin for the header.
pub const RESUME: Limit = Limit {
    bytes: 2 * bounded_read::WEIGHTS.bytes + (16 << 20),
    what: "resume state",
};

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    /// The SHA-256 of the weights this state goes with (the card's `weights_sha256`), so a
    /// state from another save of the same path is refused.
    weights_sha256: String,
    /// Each trainable parameter's id at save time, by module path.
    param_ids: BTreeMap<String, u64>,
    /// SHA-256 of the optimiser bytes that follow.
    optimizer_sha256: String,
}

/// A checkpoint's resume state, read back.
#[derive(Debug)]
pub struct ResumeState {
    header: Header,
    optimizer: Vec<u8>,
}

/// The resume file beside the checkpoint `path` (`runs/x` → `runs/x.resume`).
pub fn path(checkpoint: &Path) -> PathBuf {
    let (_, card) = crate::checkpoint::paths(checkpoint);
    card.with_extension("resume")
}

/// Writes the resume state of `model` (saved with weights `weights_sha256`) and its optimiser
/// state `optimizer`, atomically.
pub fn save(
    checkpoint: &Path,
    model: &Model,
    weights_sha256: &str,
    optimizer: &[u8],
) -> std::io::Result<PathBuf> {
    let header = Header {
        weights_sha256: weights_sha256.to_string(),
        param_ids: param_ids(model),
        optimizer_sha256: sha256_hex(optimizer),
    };
    let header = ron::to_string(&header).map_err(std::io::Error::other)?;
    let length = u32::try_from(header.len()).map_err(std::io::Error::other)?;
    let path = path(checkpoint);
    crate::atomic::write_with(&path, |w| {
        w.write_all(MAGIC)?;
        w.write_all(&length.to_le_bytes())?;
        w.write_all(header.as_bytes())?;
        w.write_all(optimizer)
    })?;
    Ok(path)
}

/// Reads the resume state beside `checkpoint`, which must belong to the weights
/// `weights_sha256`. The error says what is wrong in a sentence.
pub fn load(checkpoint: &Path, weights_sha256: &str) -> Result<ResumeState, String> {
    let path = path(checkpoint);
    let shown = path.display();
    if !path.exists() {
        return Err(format!(
            "{shown} is missing: the optimiser's state was not saved with this checkpoint (a \
             run from before `train --resume` existed, or one saved by another command), so \
             the run cannot go on exactly; train it again"
        ));
    }
    let bytes = bounded_read::read(&path, RESUME).map_err(|e| e.to_string())?;
    let corrupt = |why: &str| format!("{shown} is not a valid resume state: {why}");
    let rest = bytes
        .strip_prefix(MAGIC)
        .ok_or_else(|| corrupt("wrong magic line"))?;
    let (length, rest) = rest
        .split_first_chunk::<4>()
        .ok_or_else(|| corrupt("truncated"))?;
    let length = u32::from_le_bytes(*length) as usize;
    if rest.len() < length {
        return Err(corrupt("truncated header"));
    }
    let (header, optimizer) = rest.split_at(length);
    let header: Header = std::str::from_utf8(header)
        .ok()
        .and_then(|text| ron::from_str(text).ok())
        .ok_or_else(|| corrupt("unreadable header"))?;
    if sha256_hex(optimizer) != header.optimizer_sha256 {
        return Err(corrupt("the optimiser's state does not match its checksum"));
    }
    if header.weights_sha256 != weights_sha256 {
        return Err(format!(
            "{shown} belongs to another save of {} (the run was probably stopped while \
             saving): the optimiser's state and the weights disagree, so the run cannot go on \
             exactly from here",
            checkpoint.display()
        ));
    }
    Ok(ResumeState {
        header,
        optimizer: optimizer.to_vec(),
    })
}

impl ResumeState {
    /// The optimiser's state, as burn serialised it.
    pub fn optimizer(&self) -> &[u8] {
        &self.optimizer
    }

    /// `model` (loaded from the checkpoint) with the parameter ids it had when the state was
    /// saved, so the optimiser's state finds its parameters; an error if the names differ.
    pub fn apply(&self, model: Model) -> Result<Model, String> {
        let now = param_ids(&model);
        if now.keys().ne(self.header.param_ids.keys()) {
            return Err(
                "the resume state names other parameters than the checkpoint's model".into(),
            );
        }
        let mut mapper = IdSetter {
            path: Vec::new(),
            ids: &self.header.param_ids,
        };
        Ok(model.map(&mut mapper))
    }
}

/// Each trainable parameter's id by module path (batch-norm running statistics are not
/// optimised, so they are left out).
fn param_ids(model: &Model) -> BTreeMap<String, u64> {
    let mut ids = BTreeMap::new();
    for_each_trainable(model, |path, id, _| {
        ids.insert(path.to_string(), id.val());
    });
    ids
}

/// Gives each trainable parameter its recorded id; its paths are built as
/// [`for_each_trainable`] builds them (module names joined with dots), which `param_ids` keyed
/// the ids by.
struct IdSetter<'a> {
    path: Vec<String>,
    ids: &'a BTreeMap<String, u64>,
}

impl ModuleMapper for IdSetter<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(&id) = self.ids.get(&self.path.join(".")) else {
            return param;
        };
        let require_grad = param.is_require_grad();
        Param::initialized(ParamId::from(id), param.val()).set_require_grad(require_grad)
    }
}
