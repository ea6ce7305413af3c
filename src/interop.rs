//! Interoperability with PyTorch: a model's weights as a safetensors file in PyTorch's layout
//! and naming, so that a trained student loads into the reference PyTorch model with
//! `safetensors.torch.load_file` + `load_state_dict`, and so that such a file (exported here
//! or by PyTorch) reads back into a checkpoint.
//!
//! Three things differ between burn's module tree and a PyTorch `state_dict`:
//!
//! * **Layout.** burn stores a linear weight as `[in, out]`, PyTorch as `[out, in]`; the export
//!   transposes it and the import transposes it back. Convolution weights are
//!   `[out, in/groups, kh, kw]` in both, biases and batch-norm vectors are `[channels]` in both.
//! * **Batch-norm names.** burn's `gamma`/`beta` are PyTorch's `weight`/`bias`;
//!   `running_mean`/`running_var` are the same. PyTorch's `BatchNorm2d` also has a
//!   `num_batches_tracked` buffer (int64, 0-d) that burn does not keep: the export writes it as
//!   0 so that `load_state_dict(strict=True)` accepts the file, and the import ignores it (it
//!   only matters for `momentum=None` in PyTorch, which none of the reference models use).
//! * **Module paths**, per architecture ([`pytorch_name`]): kuangliu's ResNet-18 and
//!   MobileNetV2 declare the projection shortcut as `nn.Sequential(conv, bn)`, so burn's
//!   `shortcut.conv`/`shortcut.bn` are `shortcut.0`/`shortcut.1`; TRADES' WideResNet calls
//!   the projection `convShortcut`; TRADES' SmallCNN nests its layers in two `nn.Sequential`s
//!   (`feature_extractor.conv1`, ..., `classifier.fc3`). The other zoo models (mlp, micro-cnn,
//!   madry-cnn) have no reference PyTorch code; their PyTorch names are the burn field names,
//!   and docs/pytorch-layout.md gives the equivalent PyTorch classes.
//!
//! Values are copied bit for bit (f32 both ways), so an export followed by an import gives
//! identical logits.

use crate::checkpoint;
use crate::error::CheckpointError;
use crate::zoo::{Arch, Model, ModelSpec};
use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

/// Metadata key with the architecture that wrote the file (`__metadata__` of safetensors).
pub const METADATA_ARCH: &str = "rslad_tui.arch";
/// The batch-norm buffer that PyTorch keeps and burn does not.
pub const NUM_BATCHES_TRACKED: &str = "num_batches_tracked";
/// At most this many problems are listed one by one when a file does not fit the model.
const MAX_LISTED_PROBLEMS: usize = 30;

/// The kind of layer a tensor belongs to; it decides the tensor's layout change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerKind {
    Conv2d,
    Linear,
    BatchNorm,
}

/// One tensor of a model under both names, with its shape in both layouts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorMapping {
    pub burn_name: String,
    pub pytorch_name: String,
    pub layer: LayerKind,
    pub burn_shape: Vec<usize>,
    pub pytorch_shape: Vec<usize>,
}

impl TensorMapping {
    /// A linear weight: `[in, out]` in burn, `[out, in]` in PyTorch.
    pub fn is_transposed(&self) -> bool {
        self.layer == LayerKind::Linear && self.burn_shape.len() == 2
    }
}

/// The PyTorch `state_dict` key of the tensor burn names `burn_name` in an `arch` model.
///
/// The rules, per architecture (references: kuangliu/pytorch-cifar `models/resnet.py` and
/// `models/mobilenetv2.py`, TRADES `models/wideresnet.py` and `models/small_cnn.py`):
/// * every architecture: batch-norm `gamma` → `weight`, `beta` → `bias`;
/// * resnet18, mobilenet-v2: `shortcut.conv` → `shortcut.0`, `shortcut.bn` → `shortcut.1`;
/// * wrn-34-10: `conv_shortcut` → `convShortcut`;
/// * small-cnn: `conv1`–`conv4` → `feature_extractor.convN`, `fc1`–`fc3` → `classifier.fcN`;
/// * mlp, micro-cnn, madry-cnn: unchanged.
pub fn pytorch_name(arch: Arch, burn_name: &str) -> String {
    let mut segments: Vec<String> = burn_name.split('.').map(str::to_string).collect();
    if let Some(leaf) = segments.last_mut() {
        match leaf.as_str() {
            "gamma" => *leaf = "weight".into(),
            "beta" => *leaf = "bias".into(),
            _ => {}
        }
    }
    match arch {
        Arch::ResNet18 | Arch::MobileNetV2 => {
            for i in 1..segments.len() {
                if segments[i - 1] == "shortcut" {
                    match segments[i].as_str() {
                        "conv" => segments[i] = "0".into(),
                        "bn" => segments[i] = "1".into(),
                        _ => {}
                    }
                }
            }
        }
        Arch::Wrn34_10 => {
            for segment in &mut segments {
                if segment == "conv_shortcut" {
                    *segment = "convShortcut".into();
                }
            }
        }
        Arch::SmallCnn => {
            let container = match segments.first().map(String::as_str) {
                Some("conv1" | "conv2" | "conv3" | "conv4") => Some("feature_extractor"),
                Some("fc1" | "fc2" | "fc3") => Some("classifier"),
                _ => None,
            };
            if let Some(container) = container {
                segments.insert(0, container.into());
            }
        }
        Arch::Mlp | Arch::MicroCnn | Arch::MadryCnn => {}
    }
    segments.join(".")
}

/// Every tensor of `model` under its burn and PyTorch names, in burn's traversal order.
/// Works on a model built with [`Model::build_uninitialized`] without drawing its weights.
pub fn pytorch_layout(model: &Model) -> Result<Vec<TensorMapping>, String> {
    let mut visitor = LayoutVisitor {
        path: Vec::new(),
        containers: Vec::new(),
        found: Vec::new(),
    };
    model.visit(&mut visitor);
    let arch = model.spec().arch;
    visitor
        .found
        .into_iter()
        .map(|(burn_name, container, burn_shape)| {
            let layer = match container.as_str() {
                "Struct:Conv2d" => LayerKind::Conv2d,
                "Struct:Linear" => LayerKind::Linear,
                "Struct:BatchNorm" => LayerKind::BatchNorm,
                other => {
                    return Err(format!(
                        "no PyTorch layout is defined for tensor {burn_name} of a {other}"
                    ));
                }
            };
            let mut pytorch_shape = burn_shape.clone();
            if layer == LayerKind::Linear && burn_shape.len() == 2 {
                pytorch_shape.reverse();
            }
            Ok(TensorMapping {
                pytorch_name: pytorch_name(arch, &burn_name),
                burn_name,
                layer,
                burn_shape,
                pytorch_shape,
            })
        })
        .collect()
}

/// The batch-norm layers of a layout, by PyTorch module path (`bn1`, `layer1.0.shortcut.1`).
pub fn batch_norm_modules(layout: &[TensorMapping]) -> BTreeSet<String> {
    layout
        .iter()
        .filter(|m| m.layer == LayerKind::BatchNorm)
        .filter_map(|m| {
            m.pytorch_name
                .rsplit_once('.')
                .map(|(module, _)| module.into())
        })
        .collect()
}

/// Collects tensor names, the type of the module that owns each, and lazy shapes.
struct LayoutVisitor {
    path: Vec<String>,
    containers: Vec<String>,
    found: Vec<(String, String, Vec<usize>)>,
}

impl ModuleVisitor for LayoutVisitor {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        checkpoint::enter(&mut self.path, name, container_type);
        self.containers.push(container_type.to_string());
    }

    fn exit_module(&mut self, _name: &str, container_type: &str) {
        checkpoint::exit(&mut self.path, container_type);
        self.containers.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        // The container of the innermost `enter_module` is the struct that declares the field.
        let owner = self.containers.last().cloned().unwrap_or_default();
        let shape = param.lazy_shape().dims::<D>().to_vec();
        self.found
            .push((checkpoint::path_name(&self.path), owner, shape));
    }
}

/// `values` of a row-major `[rows, cols]` matrix, transposed to `[cols, rows]`.
fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    out
}

/// The file's bytes: every tensor of `model` in PyTorch's names and layout, plus
/// `num_batches_tracked` = 0 for each batch norm.
pub fn pytorch_safetensors(model: &Model) -> Result<Vec<u8>, String> {
    let layout = pytorch_layout(model)?;
    let mut values = checkpoint::named_tensors(model);
    let mut raw: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for mapping in &layout {
        let (_, burn_values) = values
            .remove(&mapping.burn_name)
            .ok_or_else(|| format!("tensor {} has no values", mapping.burn_name))?;
        let pytorch_values = if mapping.is_transposed() {
            transpose(&burn_values, mapping.burn_shape[0], mapping.burn_shape[1])
        } else {
            burn_values
        };
        let bytes = pytorch_values
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        raw.push((
            mapping.pytorch_name.clone(),
            Dtype::F32,
            mapping.pytorch_shape.clone(),
            bytes,
        ));
    }
    for module in batch_norm_modules(&layout) {
        raw.push((
            format!("{module}.{NUM_BATCHES_TRACKED}"),
            Dtype::I64,
            Vec::new(),
            0i64.to_le_bytes().to_vec(),
        ));
    }
    let views: Vec<(String, TensorView)> = raw
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            TensorView::new(*dtype, shape.clone(), bytes)
                .map(|view| (name.clone(), view))
                .map_err(|e| e.to_string())
        })
        .collect::<Result<_, _>>()?;
    let spec = model.spec();
    let metadata: HashMap<String, String> = [
        // What `safetensors.torch.save_file` writes; some loaders check it.
        ("format", "pt".to_string()),
        (METADATA_ARCH, spec.arch.name().to_string()),
        ("rslad_tui.in_channels", spec.in_channels.to_string()),
        ("rslad_tui.image_size", spec.image_size.to_string()),
        ("rslad_tui.num_classes", spec.num_classes.to_string()),
        (
            "rslad_tui.producer",
            format!("rslad-tui {}", env!("CARGO_PKG_VERSION")),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    safetensors::serialize(views, &Some(metadata)).map_err(|e| e.to_string())
}

/// Writes `model`'s weights to `path` as safetensors in PyTorch's names and layout. The file
/// is written under a temporary name and renamed, so a failed export leaves no partial file.
pub fn export_pytorch(model: &Model, path: &Path) -> Result<(), CheckpointError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|error| CheckpointError::Io {
            path: parent.to_path_buf(),
            error,
        })?;
    }
    let bytes = pytorch_safetensors(model).map_err(|reason| CheckpointError::Corrupt {
        path: path.to_path_buf(),
        reason,
    })?;
    checkpoint::write_atomically(path, &bytes)
}

/// Reads a PyTorch-layout safetensors file (written by [`export_pytorch`] or by
/// `safetensors.torch.save_file(model.state_dict(), ...)`) into a `spec` model on `device`.
///
/// Every tensor of the model must be present as F32 in PyTorch's shape; anything else is
/// refused with a list of the missing, unexpected, mis-shaped and mis-typed tensors by their
/// PyTorch names. Ignored: each batch norm's `num_batches_tracked`, and for wrn-34-10 the
/// `sub_block1.*` tensors of TRADES' unused `sub_block1`. A `module.` prefix on every key (a
/// model saved from `nn.DataParallel`) is removed.
pub fn import_pytorch(
    path: &Path,
    spec: ModelSpec,
    device: &Device,
) -> Result<Model, CheckpointError> {
    let bytes = checkpoint::read(path, crate::bounded_read::WEIGHTS)?;
    import_pytorch_bytes(&bytes, path, spec, device)
}

/// [`import_pytorch`] on bytes already read; `path` is only used in messages.
pub fn import_pytorch_bytes(
    bytes: &[u8],
    path: &Path,
    spec: ModelSpec,
    device: &Device,
) -> Result<Model, CheckpointError> {
    let file = SafeTensors::deserialize(bytes)
        .map_err(|e| corrupt(path, format!("not a safetensors file: {e}")))?;
    if let Ok((_, header)) = SafeTensors::read_metadata(bytes)
        && let Some(arch) = header
            .metadata()
            .as_ref()
            .and_then(|m| m.get(METADATA_ARCH))
        && arch != spec.arch.name()
    {
        return Err(CheckpointError::Mismatch {
            path: path.to_path_buf(),
            differences: format!(
                "the file was exported from a {arch} but a {} was requested",
                spec.arch
            ),
        });
    }
    let tensors = file
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            let dtype = match view.dtype() {
                Dtype::F32 => None,
                other => Some(format!("{other:?}")),
            };
            let tensor = StateTensor {
                non_f32: dtype,
                shape: view.shape().to_vec(),
                data: Cow::Borrowed(view.data()),
            };
            (name, tensor)
        })
        .collect();
    apply_state_dict(tensors, path, spec, device)
}

/// Reads a PyTorch pickle checkpoint (`torch.save(model.state_dict(), "x.pt")`, the zip format
/// of PyTorch ≥ 1.6 or the legacy one) and maps it onto the zoo model as
/// [`import_pytorch_bytes`] does a safetensors file. A state dict nested under `state_dict` or
/// `model` (as training scripts often save it) is found too.
pub fn import_pytorch_pickle(
    path: &Path,
    spec: ModelSpec,
    device: &Device,
) -> Result<Model, CheckpointError> {
    // The reader opens the file itself: check first that it is a regular file of sane size,
    // not a FIFO it would wait on or a device it would read forever.
    crate::bounded_read::check(path, crate::bounded_read::WEIGHTS).map_err(|error| {
        CheckpointError::Io {
            path: path.to_path_buf(),
            error: error.into(),
        }
    })?;
    let reader = pytorch_reader::PytorchReader::new(path)
        .map_err(|e| corrupt(path, format!("not a readable PyTorch checkpoint: {e}")))?;
    let mut tensors = BTreeMap::new();
    for (name, tensor) in reader.into_tensors() {
        let non_f32 = match tensor.dtype() {
            pytorch_reader::DType::F32 => None,
            other => Some(format!("{other:?}")),
        };
        let shape = tensor.shape().to_vec();
        let data = tensor
            .read()
            .map_err(|e| corrupt(path, format!("cannot read tensor {name}: {e}")))?;
        tensors.insert(
            name,
            StateTensor {
                non_f32,
                shape,
                data: Cow::Owned(data),
            },
        );
    }
    apply_state_dict(tensors, path, spec, device)
}

/// The error for a weights file that cannot be read as what it claims to be.
fn corrupt(path: &Path, reason: String) -> CheckpointError {
    CheckpointError::Corrupt {
        path: path.to_path_buf(),
        reason,
    }
}

/// One tensor of a PyTorch state dict, whatever file it came from.
struct StateTensor<'a> {
    /// The element type when it is not f32 (refused), for the message.
    non_f32: Option<String>,
    shape: Vec<usize>,
    /// Little-endian f32 values when `non_f32` is None: borrowed from a safetensors buffer
    /// (no copy of a large teacher), owned when read from a pickle.
    data: Cow<'a, [u8]>,
}

/// The prefix that every name of a state dict shares and the model's names lack: `module.`
/// (DataParallel), or the `state_dict.` / `model.` key a checkpoint nests the weights under.
fn common_prefix(names: &[&String]) -> &'static str {
    [
        "state_dict.module.",
        "model.module.",
        "module.",
        "state_dict.",
        "model.",
    ]
    .into_iter()
    .find(|prefix| !names.is_empty() && names.iter().all(|n| n.starts_with(prefix)))
    .unwrap_or("")
}

/// Maps a state dict onto a fresh model of `spec`: every tensor the model needs must be
/// present, f32, finite and of its PyTorch shape, and nothing unexpected may be left over; all
/// problems are reported together.
fn apply_state_dict(
    tensors: BTreeMap<String, StateTensor<'_>>,
    path: &Path,
    spec: ModelSpec,
    device: &Device,
) -> Result<Model, CheckpointError> {
    let mismatch = |differences: String| CheckpointError::Mismatch {
        path: path.to_path_buf(),
        differences,
    };
    let model = Model::build_uninitialized(spec, device)
        .map_err(|e| mismatch(format!("the requested model cannot be built: {e}")))?;
    let layout = pytorch_layout(&model).map_err(mismatch)?;
    let names: Vec<&String> = tensors.keys().collect();
    let prefix = common_prefix(&names);
    let by_name: BTreeMap<String, StateTensor<'_>> = tensors
        .into_iter()
        .map(|(name, tensor)| (name[prefix.len()..].to_string(), tensor))
        .collect();

    let mut problems = Vec::new();
    let mut burn_tensors = BTreeMap::new();
    for mapping in &layout {
        let name = &mapping.pytorch_name;
        let Some(tensor) = by_name.get(name) else {
            problems.push(format!("missing tensor {name}"));
            continue;
        };
        if let Some(dtype) = &tensor.non_f32 {
            problems.push(format!(
                "tensor {name} is {dtype}, expected F32 (convert with .float() before saving)"
            ));
            continue;
        }
        if tensor.shape != mapping.pytorch_shape {
            problems.push(format!(
                "tensor {name} has shape {:?}, the model needs {:?}",
                tensor.shape, mapping.pytorch_shape
            ));
            continue;
        }
        let values: Vec<f32> = tensor
            .data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        if values.iter().any(|v| !v.is_finite()) {
            problems.push(format!("tensor {name} contains NaN or infinite values"));
            continue;
        }
        let values = match mapping.is_transposed() {
            true => transpose(&values, mapping.pytorch_shape[0], mapping.pytorch_shape[1]),
            false => values,
        };
        burn_tensors.insert(
            mapping.burn_name.clone(),
            (mapping.burn_shape.clone(), values),
        );
    }
    let known: BTreeSet<&str> = layout.iter().map(|m| m.pytorch_name.as_str()).collect();
    let batch_norms = batch_norm_modules(&layout);
    for name in by_name.keys() {
        if !known.contains(name.as_str()) && !is_ignored(spec.arch, name, &batch_norms) {
            problems.push(format!("unexpected tensor {name}"));
        }
    }
    if !problems.is_empty() {
        return Err(mismatch(summarize(problems)));
    }
    checkpoint::apply_tensors(model, burn_tensors).map_err(mismatch)
}

/// Tensors of a PyTorch state dict that have no counterpart here and carry nothing the model
/// uses.
fn is_ignored(arch: Arch, name: &str, batch_norms: &BTreeSet<String>) -> bool {
    if let Some(module) = name.strip_suffix(&format!(".{NUM_BATCHES_TRACKED}"))
        && batch_norms.contains(module)
    {
        return true;
    }
    // TRADES' WideResNet builds a `sub_block1` that its forward never calls.
    arch == Arch::Wrn34_10 && name.starts_with("sub_block1.")
}

fn summarize(problems: Vec<String>) -> String {
    let total = problems.len();
    let mut listed: Vec<String> = problems.into_iter().take(MAX_LISTED_PROBLEMS).collect();
    if total > MAX_LISTED_PROBLEMS {
        listed.push(format!("and {} more problems", total - MAX_LISTED_PROBLEMS));
    }
    listed.join("; ")
}

/// Whether a weights file is a PyTorch pickle checkpoint (`.pt`, `.pth`, `.bin`) rather than
/// safetensors.
pub fn is_pickle_checkpoint(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("pt" | "pth" | "bin")
    )
}
