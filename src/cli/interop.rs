//! `rslad-tui export` and `import`: checkpoints to and from PyTorch's names and layout (the
//! conversions are in [`crate::interop`]).

use crate::checkpoint::{self, SaveInfo};
use crate::data::DatasetKind;
use crate::device::compute_device;
use crate::interop::{
    batch_norm_modules, export_pytorch, import_pytorch_bytes, import_pytorch_pickle,
    is_pickle_checkpoint, pytorch_layout,
};
use crate::text::scrub;
use crate::zoo::{Arch, Model, ModelSpec};
use anyhow::{Context, Result, bail};
use clap::Args;
use std::path::{Path, PathBuf};

/// `rslad-tui export`: a checkpoint's weights as PyTorch safetensors.
#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    /// The checkpoint (its .safetensors or .ron file, or their common stem).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// The PyTorch-layout file to write (.safetensors).
    #[arg(long)]
    pub out: PathBuf,
    /// Replace a file already at --out (never a checkpoint's own weights).
    #[arg(long)]
    pub overwrite: bool,
}

/// `rslad-tui import`: a PyTorch-layout safetensors file into a checkpoint.
#[derive(Args, Debug, Clone)]
pub struct ImportArgs {
    /// The weights in PyTorch's names and layout (see docs/pytorch-layout.md): a safetensors
    /// file, or a PyTorch state dict saved with torch.save (.pt, .pth or .bin).
    #[arg(long)]
    pub weights: PathBuf,
    /// Architecture from the zoo (see `rslad-tui zoo`).
    #[arg(long)]
    pub model: String,
    /// Dataset the model is for (mnist, fashion, cifar10 or cifar100): it fixes the input
    /// shape and the number of classes.
    #[arg(long, default_value = "mnist")]
    pub dataset: String,
    /// Checkpoint path (without extension); default runs/<model>-imported.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace a checkpoint already at --out.
    #[arg(long)]
    pub overwrite: bool,
}

pub fn run_export(args: &ExportArgs) -> Result<()> {
    let out = &args.out;
    if out.extension().and_then(|e| e.to_str()) != Some("safetensors") {
        bail!("--out must name a .safetensors file; got {}", out.display());
    }
    let (weights, _) = checkpoint::paths(&args.checkpoint);
    if same_file(out, &weights) {
        bail!(
            "--out {} is the checkpoint's own weights file; choose another name",
            out.display()
        );
    }
    if std::fs::symlink_metadata(out).is_ok() {
        if checkpoint::occupant(out) == checkpoint::Occupant::Checkpoint {
            bail!(
                "--out {} is the weights file of a checkpoint (its card is beside it); choose \
                 another name",
                out.display()
            );
        }
        if !args.overwrite {
            bail!(
                "--out {} already exists: choose another name, or pass --overwrite to replace it",
                out.display()
            );
        }
    }
    let (model, card) = checkpoint::load(&args.checkpoint, None, &compute_device())
        .context("cannot load the checkpoint")?;
    export_pytorch(&model, out).context("cannot write the PyTorch file")?;
    let layout = pytorch_layout(&model).map_err(anyhow::Error::msg)?;
    println!(
        "wrote {} tensors of {} ({} parameters, {} classes) in PyTorch layout to {}",
        layout.len() + batch_norm_modules(&layout).len(),
        card.spec.arch,
        model.parameter_count(),
        card.spec.num_classes,
        scrub(&out.display().to_string())
    );
    println!("load it in PyTorch as docs/pytorch-layout.md shows");
    Ok(())
}

pub fn run_import(args: &ImportArgs) -> Result<()> {
    let arch = Arch::from_name(&args.model)?;
    let kind = DatasetKind::from_name(&args.dataset)?;
    let spec = ModelSpec {
        arch,
        in_channels: kind.channels(),
        image_size: kind.image_size(),
        num_classes: kind.num_classes(),
    };
    Model::build_uninitialized(spec, &compute_device()).with_context(|| {
        format!(
            "--dataset {} has {}x{}x{} images and {} classes",
            kind.name(),
            spec.in_channels,
            spec.image_size,
            spec.image_size,
            spec.num_classes
        )
    })?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("runs/{arch}-imported")));
    let (out_weights, _) = checkpoint::paths(&out);
    if same_file(&out_weights, &args.weights) {
        bail!(
            "--out {} would overwrite --weights {}; choose another name",
            out.display(),
            args.weights.display()
        );
    }
    let replacing = checkpoint::check_destination(&out, args.overwrite, "pass --overwrite")
        .map_err(anyhow::Error::msg)?
        == checkpoint::Occupant::Checkpoint;
    let bytes = checkpoint::read(&args.weights, crate::bounded_read::WEIGHTS)?;
    let digest = checkpoint::sha256_hex(&bytes);
    let model = if is_pickle_checkpoint(&args.weights) {
        import_pytorch_pickle(&args.weights, spec, &compute_device())
    } else {
        import_pytorch_bytes(&bytes, &args.weights, spec, &compute_device())
    }
    .context("cannot import the PyTorch weights")?;
    // The card has no provenance field; the dataset line carries it.
    let dataset = format!(
        "{} (imported from {}, sha256 {digest})",
        kind.name(),
        args.weights.display()
    );
    let path = checkpoint::save(
        &model,
        &out,
        &SaveInfo {
            dataset: &dataset,
            training: None,
            metrics: &[],
            seed: 0,
        },
    )?;
    if replacing {
        // The replaced run's resume state (`train`'s) names weights that are gone.
        let _ = std::fs::remove_file(crate::resume::path(&out));
    }
    println!(
        "imported {} ({} parameters, {} classes) from {}; checkpoint {}",
        arch,
        model.parameter_count(),
        spec.num_classes,
        scrub(&args.weights.display().to_string()),
        scrub(&path.display().to_string())
    );
    Ok(())
}

/// Whether two paths name the same file (by canonical path when both exist).
pub(super) fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}
