//! Checkpoints round-trip exactly and refuse, with a precise message, anything that does not
//! match.

use crate::common::micro_cnn;
use burn::module::Module;
use rslad_tui::checkpoint::{self, SaveInfo, SaveStep};
use rslad_tui::device::{autodiff_device, compute_device};
use rslad_tui::error::CheckpointError;
use rslad_tui::tensor_util::{images, to_vec};
use rslad_tui::zoo::{Arch, Model, ModelSpec};
use sha2::Digest;
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

/// The names of the files in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Issue 21, item 9: a save stopped after any of its steps, by a kill (the hook panics, so
/// nothing of the save's own clean-up runs, as with SIGKILL) or by a failure (the hook
/// returns an error, as a full disk would), leaves a checkpoint that loads: the previous one
/// if the card was not yet replaced, the new one from then on. Before, the weights and the
/// card were renamed one after the other, and a kill between them left new weights beside the
/// old card, which `eval` refused: the good checkpoint was gone.
#[test]
fn a_save_stopped_after_any_step_leaves_the_previous_or_the_new_checkpoint() {
    let (old, new, next) = (micro_cnn(1), micro_cnn(2), micro_cnn(3));
    let tensors = |model: &Model| checkpoint::named_tensors(model);
    for step in SaveStep::ALL {
        for kill in [true, false] {
            let what = format!("{} after {step:?}", if kill { "killed" } else { "failed" });
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("run");
            save(&old, &path);
            let info = SaveInfo {
                dataset: "mnist",
                training: None,
                metrics: &[],
                seed: 2,
            };
            let mut hook = |reached: SaveStep| {
                if reached != step {
                    Ok(())
                } else if kill {
                    panic!("killed");
                } else {
                    Err(std::io::Error::new(
                        std::io::ErrorKind::StorageFull,
                        "no space left on device",
                    ))
                }
            };
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                checkpoint::save_with_hook(&new, &path, &info, &mut hook)
            }));
            match (kill, outcome) {
                (true, Err(_)) => {}
                (false, Ok(result)) => assert_eq!(
                    result.is_ok(),
                    step.is_committed(),
                    "{what}: {result:?} (a save fails only before its commit)"
                ),
                (_, outcome) => panic!("{what}: {:?}", outcome.map(|r| r.is_ok())),
            }
            let (loaded, card) = checkpoint::load(&path, Some(Arch::MicroCnn), &compute_device())
                .unwrap_or_else(|e| panic!("{what}: no checkpoint loads: {e}"));
            let expected = if step.is_committed() { &new } else { &old };
            assert_eq!(tensors(&loaded), tensors(expected), "{what}");
            assert_eq!(card.seed, if step.is_committed() { 2 } else { 1 }, "{what}");
            if !kill && !step.is_committed() {
                assert_eq!(
                    listing(dir.path()),
                    ["run.ron", "run.safetensors"],
                    "{what}"
                );
            }
            // The next save goes through and tidies up what the stopped one left.
            save(&next, &path);
            let (loaded, _) = checkpoint::load(&path, None, &compute_device()).unwrap();
            assert_eq!(tensors(&loaded), tensors(&next), "{what}, then saved again");
            assert_eq!(
                listing(dir.path()),
                ["run.ron", "run.safetensors"],
                "{what}, then saved again"
            );
        }
    }
}

/// Weights a stopped save staged are found only by the hash its card records: a stale staged
/// file of another hash, or a card whose hash is not a hash, changes nothing.
#[test]
fn staged_weights_are_found_only_by_the_hash_of_the_card() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run");
    save(&micro_cnn(1), &path);
    let weights = path.with_extension("safetensors");
    let card = std::fs::read_to_string(path.with_extension("ron")).unwrap();
    let start = card.find("weights_sha256: \"").unwrap() + 17;
    let hash = &card[start..start + 64];
    let staged = checkpoint::staged_weights_path(&weights, hash).unwrap();
    assert_eq!(
        staged.file_name().unwrap().to_str().unwrap(),
        format!("run.{}.safetensors", &hash[..16])
    );
    // The published weights damaged, the same bytes staged: the staged ones load.
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::rename(&weights, &staged).unwrap();
    std::fs::write(&weights, b"damaged").unwrap();
    checkpoint::load(&path, None, &compute_device()).expect("the staged weights load");
    // Staged bytes that are not the card's are refused like any other.
    std::fs::write(&staged, &bytes[..bytes.len() - 1]).unwrap();
    let message = expect_error(checkpoint::load(&path, None, &compute_device()));
    assert!(message.contains("SHA-256"), "{message}");
    for not_a_hash in ["../../etc/passwd", "", &"g".repeat(64)] {
        assert_eq!(checkpoint::staged_weights_path(&weights, not_a_hash), None);
    }
}

/// Issue 21, item 9, with a real kill: `rslad-tui import` (which saves a checkpoint) is killed
/// by strace with SIGKILL at the entry of its first, second, ... `rename`, and after each the
/// checkpoint it was replacing still loads (or the new one, once the card's rename happened).
/// Needs strace; where it is missing the hook test above covers the same states.
#[cfg(target_os = "linux")]
#[test]
fn a_save_killed_at_each_rename_leaves_a_loadable_checkpoint() {
    if std::process::Command::new("strace")
        .arg("-V")
        .output()
        .is_err()
    {
        eprintln!("strace is not installed: skipped");
        return;
    }
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/micro-cnn.safetensors");
    let good = micro_cnn(1);
    for rename in 1..=4 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("imported");
        save(&good, &path);
        let status = std::process::Command::new("strace")
            .args(["-f", "-o", "/dev/null", "-e"])
            .arg(format!(
                "inject=rename,renameat,renameat2:signal=SIGKILL:when={rename}"
            ))
            .arg(env!("CARGO_BIN_EXE_rslad-tui"))
            .args(["import", "--model", "micro-cnn", "--weights"])
            .arg(&fixture)
            .arg("--out")
            .arg(&path)
            .arg("--overwrite")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        let (loaded, card) = checkpoint::load(&path, Some(Arch::MicroCnn), &compute_device())
            .unwrap_or_else(|e| panic!("killed at rename {rename}: no checkpoint loads: {e}"));
        let imported = card.dataset.contains("imported from");
        if imported {
            assert_ne!(
                checkpoint::named_tensors(&loaded),
                checkpoint::named_tensors(&good)
            );
        } else {
            assert_eq!(
                checkpoint::named_tensors(&loaded),
                checkpoint::named_tensors(&good),
                "killed at rename {rename}"
            );
        }
        // Renames 1 (staged weights) and 2 (the card) happen before the commit is complete;
        // from 3 on the import has committed. With 4 there is no fourth rename: it finishes.
        assert_eq!(imported, rename >= 3, "killed at rename {rename}");
        assert_eq!(
            status.success(),
            rename == 4,
            "killed at rename {rename}: {status}"
        );
    }
}

/// Rewrites the tensor `name` of the checkpoint at `path` with `change`, and the card's hash
/// with it, as someone editing a checkpoint by hand would.
fn edit_tensor(path: &Path, name: &str, change: impl Fn(&mut [f32])) {
    use safetensors::tensor::{Dtype, SafeTensors, TensorView};
    let weights = path.with_extension("safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let mut raw: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (tensor, view) in file.tensors() {
        let mut values: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        if tensor == name {
            change(&mut values);
        }
        let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        raw.push((tensor, view.shape().to_vec(), data));
    }
    let views: Vec<(String, TensorView)> = raw
        .iter()
        .map(|(n, shape, data)| {
            (
                n.clone(),
                TensorView::new(Dtype::F32, shape.clone(), data).unwrap(),
            )
        })
        .collect();
    let edited = safetensors::serialize(views, &None).unwrap();
    let card_path = path.with_extension("ron");
    let card = std::fs::read_to_string(&card_path).unwrap();
    let start = card.find("weights_sha256: \"").unwrap() + 17;
    let old_hash = card[start..start + 64].to_string();
    let new_hash: String = sha2::Sha256::digest(&edited)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    std::fs::write(&weights, edited).unwrap();
    std::fs::write(&card_path, card.replace(&old_hash, &new_hash)).unwrap();
}

/// Issue 21, item 14: a batch norm whose running variance is negative makes every output NaN;
/// such a checkpoint (or one with NaN or infinite values) is refused when it is loaded.
#[test]
fn a_negative_or_non_finite_running_variance_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run");
    save(&micro_cnn(1), &path);
    edit_tensor(&path, "bn2.running_var", |v| v[3] = -0.5);
    let message = expect_error(checkpoint::load(&path, None, &compute_device()));
    assert!(
        message.contains("tensor bn2.running_var has negative values"),
        "{message}"
    );
    save(&micro_cnn(1), &path);
    edit_tensor(&path, "bn1.running_var", |v| v[0] = f32::NAN);
    let message = expect_error(checkpoint::load(&path, None, &compute_device()));
    assert!(
        message.contains("bn1.running_var contains NaN or infinite values"),
        "{message}"
    );
    // A variance of 0 is a variance (batch norm adds its ε).
    save(&micro_cnn(1), &path);
    edit_tensor(&path, "bn1.running_var", |v| v[0] = 0.0);
    checkpoint::load(&path, None, &compute_device()).expect("a zero variance loads");
}

/// What a stopped save leaves is removed only when nothing names it: weights a committed card
/// names stay through a later save that fails, and a checkpoint whose own name looks like
/// staged weights stays through a save beside it.
#[test]
fn tidying_up_never_removes_weights_a_card_names() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run");
    let info = SaveInfo {
        dataset: "mnist",
        training: None,
        metrics: &[],
        seed: 2,
    };
    save(&micro_cnn(1), &path);
    let new = micro_cnn(2);
    // Killed between the commit and the rename: the card names the staged weights.
    let killed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        checkpoint::save_with_hook(&new, &path, &info, &mut |step| {
            assert!(step != SaveStep::CardCommitted, "killed");
            Ok(())
        })
    }));
    assert!(killed.is_err());
    // The same weights saved again, failing before the commit (a full disk at the card).
    let failed = checkpoint::save_with_hook(&new, &path, &info, &mut |step| match step {
        SaveStep::CardWritten => Err(std::io::Error::new(
            std::io::ErrorKind::StorageFull,
            "no space left on device",
        )),
        _ => Ok(()),
    });
    assert!(failed.is_err());
    let (loaded, _) = checkpoint::load(&path, None, &compute_device())
        .expect("the weights the card names are still there");
    assert_eq!(
        checkpoint::named_tensors(&loaded),
        checkpoint::named_tensors(&new)
    );

    // Files named like staged weights of `run`, with a card of their own (copied in by hand:
    // `save` itself takes `run.0123456789abcdef` as `run`).
    for extension in ["ron", "safetensors"] {
        std::fs::copy(
            path.with_extension(extension),
            dir.path().join(format!("run.0123456789abcdef.{extension}")),
        )
        .unwrap();
    }
    save(&micro_cnn(4), &path);
    assert_eq!(
        listing(dir.path()),
        [
            "run.0123456789abcdef.ron",
            "run.0123456789abcdef.safetensors",
            "run.ron",
            "run.safetensors"
        ]
    );
}

/// A card's dataset line says where recalibrated statistics came from: the last
/// recalibration counts, and none does once the student trained after it.
#[test]
fn the_recalibration_a_card_names_is_its_last_one_unless_trained_since() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run");
    save(&micro_cnn(1), &path);
    let mut card = checkpoint::read_card(&path).unwrap();
    assert_eq!(card.recalibrated_from(), None, "a trained card");
    // As `rslad-tui recalibrate` writes it, twice: natural statistics, then adversarial ones.
    let natural = "batch-norm statistics re-estimated by `rslad-tui recalibrate` from 4 batches \
                   of 128 natural training images, seed 0; weights of run.safetensors (sha256 ab)";
    let adversarial = "batch-norm statistics re-estimated by `rslad-tui recalibrate` from 4 \
                       batches of 128 adversarial training images (PGD-10, ε 0.3, step 0.05, \
                       uniform start), seed 0; weights of run.safetensors (sha256 cd), trained by RSLAD";
    card.dataset = format!("mnist; {natural}");
    assert_eq!(card.recalibrated_from(), Some("natural"));
    card.dataset = format!("mnist; {natural}; {adversarial}");
    assert_eq!(card.recalibrated_from(), Some("adversarial"));
    assert_eq!(card.dataset_name(), "mnist");
    card.dataset = format!("mnist; {adversarial}; {natural}");
    assert_eq!(card.recalibrated_from(), Some("natural"));
    card.dataset = format!("mnist; {}", checkpoint::retrained_note(adversarial));
    assert_eq!(card.recalibrated_from(), None);
    assert!(card.statistics_note().unwrap().starts_with(adversarial));
}
