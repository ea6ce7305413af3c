//! PyTorch pickle checkpoints (`torch.save`) read straight into zoo models. The fixtures in
//! tests/fixtures were written by PyTorch itself (tests/fixtures/make_pytorch_checkpoints.py):
//! a micro-cnn with seeded weights and batch-norm statistics, saved as a plain state dict, as a
//! nested `{"state_dict": {"module....": ...}}` checkpoint and as safetensors, with PyTorch's
//! own logits on a fixed input.

use burn::prelude::*;
use rslad_tui::device::compute_device;
use rslad_tui::error::CheckpointError;
use rslad_tui::interop::{import_pytorch, import_pytorch_pickle, is_pickle_checkpoint};
use rslad_tui::tensor_util::{images, to_vec};
use rslad_tui::zoo::{Arch, Model, ModelSpec};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn spec(arch: Arch) -> ModelSpec {
    ModelSpec::native(arch, 10)
}

/// The fixed input of the fixture script: pixel (n, i, j) = ((7n + 3i + 5j) mod 11) / 10.
fn probe(device: &Device) -> Tensor<4> {
    let mut values = Vec::new();
    for n in 0..4 {
        for i in 0..28 {
            for j in 0..28 {
                values.push(((n * 7 + i * 3 + j * 5) % 11) as f32 / 10.0);
            }
        }
    }
    images(values, 4, 1, 28, 28, device)
}

fn logits(model: &Model) -> Vec<f32> {
    to_vec(model.forward(probe(&compute_device())))
}

fn pytorch_logits() -> Vec<f32> {
    let text = std::fs::read_to_string(fixture("micro-cnn-logits.json")).unwrap();
    let rows: Vec<Vec<f32>> = serde_json::from_str(&text).unwrap();
    rows.concat()
}

fn assert_close(ours: &[f32], theirs: &[f32]) {
    assert_eq!(ours.len(), theirs.len());
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        assert!((a - b).abs() < 1e-4, "logit {i}: ours {a}, PyTorch {b}");
    }
}

#[test]
fn a_torch_save_state_dict_gives_pytorchs_own_logits() {
    let device = compute_device();
    let model = import_pytorch_pickle(&fixture("micro-cnn.pt"), spec(Arch::MicroCnn), &device)
        .expect("the .pt fixture imports");
    assert_close(&logits(&model), &pytorch_logits());
}

#[test]
fn a_nested_data_parallel_checkpoint_imports_the_same_weights() {
    let device = compute_device();
    let path = fixture("micro-cnn-nested.pth");
    assert!(is_pickle_checkpoint(&path));
    let model = import_pytorch_pickle(&path, spec(Arch::MicroCnn), &device)
        .expect("state_dict.module.* names are found");
    assert_close(&logits(&model), &pytorch_logits());
}

#[test]
fn pickle_and_safetensors_of_one_state_dict_give_identical_models() {
    let device = compute_device();
    let from_pickle =
        import_pytorch_pickle(&fixture("micro-cnn.pt"), spec(Arch::MicroCnn), &device).unwrap();
    let from_safetensors = import_pytorch(
        &fixture("micro-cnn.safetensors"),
        spec(Arch::MicroCnn),
        &device,
    )
    .unwrap();
    assert_eq!(logits(&from_pickle), logits(&from_safetensors));
}

#[test]
fn a_state_dict_of_another_architecture_is_refused_with_each_difference_named() {
    let error = import_pytorch_pickle(
        &fixture("micro-cnn.pt"),
        spec(Arch::SmallCnn),
        &compute_device(),
    )
    .expect_err("micro-cnn weights cannot fill a small-cnn");
    let message = error.to_string();
    assert!(
        matches!(error, CheckpointError::Mismatch { .. }),
        "{message}"
    );
    // TRADES' SmallCNN names its layers feature_extractor.* and classifier.*.
    assert!(
        message.contains("missing tensor feature_extractor.conv1.weight"),
        "{message}"
    );
    assert!(
        message.contains("unexpected tensor conv1.weight"),
        "{message}"
    );
    assert!(
        message.contains("unexpected tensor bn1.running_mean"),
        "{message}"
    );
}

#[test]
fn weights_for_another_input_shape_are_refused_with_both_shapes() {
    // The same architecture built for CIFAR-size inputs (3×32×32) needs other shapes.
    let cifar = ModelSpec {
        arch: Arch::MicroCnn,
        in_channels: 3,
        image_size: 32,
        num_classes: 10,
    };
    let message = import_pytorch_pickle(&fixture("micro-cnn.pt"), cifar, &compute_device())
        .expect_err("MNIST weights do not fit a CIFAR-shaped model")
        .to_string();
    assert!(
        message
            .contains("tensor conv1.weight has shape [8, 1, 3, 3], the model needs [8, 3, 3, 3]"),
        "{message}"
    );
    assert!(
        message.contains("tensor fc.weight has shape [10, 784], the model needs [10, 1024]"),
        "{message}"
    );
}

#[test]
fn a_truncated_or_foreign_file_is_refused_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fixture("micro-cnn.pt")).unwrap();
    let truncated = dir.path().join("truncated.pt");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let text = dir.path().join("notes.pt");
    std::fs::write(&text, "not a checkpoint").unwrap();
    for path in [truncated, text] {
        let error = import_pytorch_pickle(&path, spec(Arch::MicroCnn), &compute_device())
            .expect_err("a broken file is refused");
        assert!(
            matches!(error, CheckpointError::Corrupt { .. }),
            "{}: {error}",
            path.display()
        );
    }
}
