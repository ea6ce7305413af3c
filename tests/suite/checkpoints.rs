//! Checkpoints round-trip exactly and refuse, with a precise message, anything that does not
//! match.

use burn::module::Module;
use rslad_tui::checkpoint::{self, SaveInfo};
use rslad_tui::device::{autodiff_device, compute_device};
use rslad_tui::error::CheckpointError;
use rslad_tui::tensor_util::{images, to_vec};
use rslad_tui::zoo::{Arch, Model, ModelSpec};
use std::path::Path;

fn save(model: &Model, path: &Path) {
    checkpoint::save(
        model,
        path,
        &SaveInfo {
            dataset: "mnist",
            training: None,
            metrics: &[],
            seed: 1,
        },
    )
    .expect("saving works");
}

fn probe() -> burn::tensor::Tensor<4> {
    let values: Vec<f32> = (0..2 * 784).map(|i| (i % 97) as f32 / 97.0).collect();
    images(values, 2, 1, 28, 28, &compute_device())
}

#[test]
fn save_then_load_gives_identical_logits_and_card() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/run");
    for arch in [Arch::MicroCnn, Arch::SmallCnn, Arch::Mlp] {
        let model = Model::build(ModelSpec::native(arch, 10), 4, &autodiff_device()).unwrap();
        save(&model, &path);
        let (loaded, card) =
            checkpoint::load(&path.with_extension("ron"), Some(arch), &compute_device())
                .expect("loading works");
        assert_eq!(card.spec.arch, arch);
        assert_eq!(card.parameters, model.parameter_count());
        let before = to_vec(model.valid().forward(probe()));
        let after = to_vec(loaded.forward(probe()));
        assert_eq!(before, after, "{arch}: logits changed in the round trip");
        assert_eq!(
            checkpoint::named_tensors(&model),
            checkpoint::named_tensors(&loaded)
        );
    }
}

fn expect_error(result: Result<(Model, checkpoint::CheckpointCard), CheckpointError>) -> String {
    match result {
        Ok(_) => panic!("a bad checkpoint was accepted"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn a_different_architecture_than_requested_is_refused_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m");
    save(
        &Model::build(ModelSpec::native(Arch::MicroCnn, 10), 0, &autodiff_device()).unwrap(),
        &path,
    );
    let message = expect_error(checkpoint::load(
        &path,
        Some(Arch::SmallCnn),
        &compute_device(),
    ));
    assert!(
        message.contains("micro-cnn") && message.contains("small-cnn"),
        "{message}"
    );
}

#[test]
fn changed_weights_are_refused_by_their_hash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m");
    save(
        &Model::build(ModelSpec::native(Arch::MicroCnn, 10), 0, &autodiff_device()).unwrap(),
        &path,
    );
    let weights = path.with_extension("safetensors");
    let mut bytes = std::fs::read(&weights).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    std::fs::write(&weights, bytes).unwrap();
    let message = expect_error(checkpoint::load(&path, None, &compute_device()));
    assert!(message.contains("SHA-256"), "{message}");
}

#[test]
fn weights_of_another_model_are_refused_listing_the_tensors() {
    let dir = tempfile::tempdir().unwrap();
    let micro = dir.path().join("micro");
    let mlp = dir.path().join("mlp");
    save(
        &Model::build(ModelSpec::native(Arch::MicroCnn, 10), 0, &autodiff_device()).unwrap(),
        &micro,
    );
    save(
        &Model::build(ModelSpec::native(Arch::Mlp, 10), 0, &autodiff_device()).unwrap(),
        &mlp,
    );
    // Put the MLP's weights under the micro-cnn card, with a matching hash: the tensor check
    // must still catch it.
    let mlp_bytes = std::fs::read(mlp.with_extension("safetensors")).unwrap();
    std::fs::write(micro.with_extension("safetensors"), &mlp_bytes).unwrap();
    let card = std::fs::read_to_string(micro.with_extension("ron")).unwrap();
    let mlp_card = std::fs::read_to_string(mlp.with_extension("ron")).unwrap();
    let hash = |text: &str| {
        let start = text.find("weights_sha256: \"").unwrap() + 17;
        text[start..start + 64].to_string()
    };
    std::fs::write(
        micro.with_extension("ron"),
        card.replace(&hash(&card), &hash(&mlp_card)),
    )
    .unwrap();
    let message = expect_error(checkpoint::load(&micro, None, &compute_device()));
    assert!(message.contains("missing tensor conv1.weight"), "{message}");
    assert!(
        message.contains("unexpected tensor fc1.weight"),
        "{message}"
    );
}

#[test]
fn corrupt_and_missing_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m");
    let message = expect_error(checkpoint::load(&path, None, &compute_device()));
    assert!(message.contains("m.ron"), "{message}");

    save(
        &Model::build(ModelSpec::native(Arch::MicroCnn, 10), 0, &autodiff_device()).unwrap(),
        &path,
    );
    std::fs::write(path.with_extension("ron"), "(format: 1, spec: oops").unwrap();
    let message = expect_error(checkpoint::load(&path, None, &compute_device()));
    assert!(
        message.contains("not a valid RON checkpoint card"),
        "{message}"
    );

    save(
        &Model::build(ModelSpec::native(Arch::MicroCnn, 10), 0, &autodiff_device()).unwrap(),
        &path,
    );
    std::fs::write(path.with_extension("safetensors"), b"not safetensors").unwrap();
    let message = expect_error(checkpoint::load(&path, None, &compute_device()));
    // The hash check fires first: the card no longer describes these bytes.
    assert!(message.contains("SHA-256"), "{message}");
}

#[test]
fn a_card_naming_a_model_that_does_not_exist_is_refused_with_the_list() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run");
    let model = Model::build(ModelSpec::native(Arch::MicroCnn, 10), 4, &autodiff_device()).unwrap();
    save(&model, &path);
    let card_path = path.with_extension("ron");
    let card = std::fs::read_to_string(&card_path).unwrap();
    std::fs::write(&card_path, card.replace("arch: MicroCnn", "arch: HugeNet")).unwrap();
    let error = expect_error(checkpoint::load(&path, None, &compute_device()));
    assert!(error.contains("HugeNet"), "{error}");
    assert!(
        error.contains("MicroCnn") && error.contains("SmallCnn"),
        "{error}"
    );
}
