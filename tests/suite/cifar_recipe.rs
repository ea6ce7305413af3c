//! The CIFAR-10 recipe (sessions/cifar10-rslad.txt, docs/gpu.md) runs end to end: every line
//! parses, and the whole script runs in the workbench engine on a generated CIFAR-10 folder of
//! a few images, with only its budgets cut (epochs, test images) and a small ResNet-18
//! teacher standing in for the WideResNet-34-10 (whose 46M parameters a debug test cannot
//! afford). The switch from MNIST to CIFAR in the middle of a session is checked on the way.

use rslad_tui::checkpoint::{self, SaveInfo};
use rslad_tui::data::cifar::{IMAGE_BYTES, encode_cifar10};
use rslad_tui::device::autodiff_device;
use rslad_tui::lab::command::{parse, parse_engine};
use rslad_tui::lab::engine::{Engine, default_settings};
use rslad_tui::lab::live::Shared;
use rslad_tui::lab::scope::FileScope;
use rslad_tui::train::OptimizerKind;
use rslad_tui::zoo::{Arch, Model, ModelSpec};
use std::path::Path;
use std::sync::Arc;

const RECIPE: &str = include_str!("../../sessions/cifar10-rslad.txt");

fn commands() -> Vec<&'static str> {
    RECIPE
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// `data/cifar-10-batches-bin/` under `root`: five training batches of 4 images and a test
/// batch of 4, with varied labels and pixels.
fn write_tiny_cifar10(root: &Path) {
    let dir = root.join("data/cifar-10-batches-bin");
    std::fs::create_dir_all(&dir).unwrap();
    let batch = |seed: usize| {
        let labels: Vec<u8> = (0..4).map(|i| ((seed * 3 + i * 7) % 10) as u8).collect();
        let pixels: Vec<u8> = (0..4 * IMAGE_BYTES)
            .map(|i| ((i * 31 + seed * 17) % 251) as u8)
            .collect();
        encode_cifar10(&labels, &pixels)
    };
    for b in 1..=5 {
        std::fs::write(dir.join(format!("data_batch_{b}.bin")), batch(b)).unwrap();
    }
    std::fs::write(dir.join("test_batch.bin"), batch(9)).unwrap();
}

#[test]
fn every_line_of_the_recipe_parses() {
    let lines = commands();
    assert!(lines.len() >= 8, "{lines:?}");
    for line in lines {
        assert!(parse(line).is_ok(), "{line}: {:?}", parse(line));
    }
}

#[test]
fn the_recipe_runs_end_to_end_on_a_tiny_cifar10() {
    let root = tempfile::tempdir().unwrap();
    write_tiny_cifar10(root.path());
    let teacher = Model::build(ModelSpec::native(Arch::ResNet18, 10), 1, &autodiff_device())
        .expect("resnet18 builds");
    let info = SaveInfo {
        dataset: "cifar10",
        training: None,
        metrics: &[],
        seed: 1,
    };
    checkpoint::save(&teacher, &root.path().join("runs/small-teacher"), &info).unwrap();

    let shared = Arc::new(Shared::default());
    let mut engine =
        Engine::new(Arc::clone(&shared), default_settings(), Some("embedded")).unwrap();
    engine.set_scope(FileScope {
        base: Some(root.path().to_path_buf()),
        confined: true,
    });
    for line in commands() {
        let line = line
            .replace("step 300", "step 1")
            .replace("n=10000", "n=2")
            .replace("runs/trades-wrn-34-10", "runs/small-teacher");
        engine
            .execute(parse_engine(&line).unwrap())
            .unwrap_or_else(|e| panic!("{line}: {e:#}"));
        if line == "data cifar10" {
            // The MNIST student and teacher cannot read CIFAR images: both are replaced or
            // put down, with the reasons in the log.
            let s = shared.snapshot();
            assert!(
                s.status.dataset.starts_with("cifar10"),
                "{}",
                s.status.dataset
            );
            assert_eq!(s.status.student, "resnet18");
            assert_eq!(s.status.teacher, "none");
            assert!((s.status.epsilon - 8.0 / 255.0).abs() < 1e-6);
            let log: Vec<String> = s.log.iter().map(|l| l.text.clone()).collect();
            assert!(
                log.iter()
                    .any(|l| l.contains("micro-cnn does not take cifar10")),
                "{log:?}"
            );
            assert!(log.iter().any(|l| l.contains("no teacher now")), "{log:?}");
        }
    }
    let config = &engine.trainer().config;
    assert_eq!(config.method.name(), "rslad");
    assert_eq!(config.optimizer.kind, OptimizerKind::Sgd { momentum: 0.9 });
    assert_eq!(config.optimizer.learning_rate, 0.1);
    assert_eq!(config.optimizer.weight_decay, 2e-4);
    assert_eq!(config.optimizer.milestones, vec![215, 260, 285]);
    assert_eq!(engine.trainer().epochs_done(), 1);
    let saved = root.path().join("runs/cifar10-rslad-resnet18.safetensors");
    assert!(saved.exists(), "the recipe saves the student");
    let s = shared.snapshot();
    let attack = s.attack.expect("the recipe ends with AutoAttack");
    assert!(
        attack.rows.iter().any(|r| r.name.contains("AutoAttack")),
        "{:?}",
        attack.rows
    );
}
