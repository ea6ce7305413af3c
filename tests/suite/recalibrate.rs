//! `recalibrate`: batch-norm running statistics gathered again with the weights fixed. The
//! shift it reports against a hand computation, the momentum it claims (the old statistics
//! weigh 0.9^batches), weights left alone, cancellation, and the command's refusals.

use crate::cli::{assert_clean_failure, run};
use crate::common::{embedded_mnist, micro_cnn, statistics_and_weights};
use rslad_tui::device::{autodiff_device, compute_device};
use rslad_tui::train::{Method, RecalibrateConfig, StatsSource, Stopped, recalibrate, shifts};
use rslad_tui::zoo::Model;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;

fn config(source: StatsSource, batches: usize) -> RecalibrateConfig {
    RecalibrateConfig {
        source,
        attack: Method::ce_attack(0.3, 0.1, 3),
        batches,
        batch_size: 32,
        augment: false,
        seed: 7,
    }
}

fn never() -> AtomicBool {
    AtomicBool::new(false)
}

#[test]
fn the_shift_is_the_mean_distance_in_new_standard_deviations_and_the_variance_ratio() {
    let stats = |mean: [f32; 2], var: [f32; 2]| {
        BTreeMap::from([
            ("bn.running_mean".to_string(), mean.to_vec()),
            ("bn.running_var".to_string(), var.to_vec()),
        ])
    };
    let before = stats([0.0, 1.0], [1.0, 4.0]);
    let after = stats([0.5, 1.0], [1.0, 1.0]);
    let layers = shifts(&before, &after);
    assert_eq!(layers.len(), 1);
    assert_eq!(layers[0].layer, "bn");
    assert_eq!(layers[0].channels, 2);
    // By hand: (|0 − 0.5| / √(1 + 1e-5) + 0) / 2, and √((1 + 1e-5)/(1 + 1e-5) · (4 + 1e-5)/(1 + 1e-5)).
    let mean_shift = 0.5 / (1.0f64 + 1e-5).sqrt() / 2.0;
    let ratio = ((4.0f64 + 1e-5) / (1.0 + 1e-5)).sqrt();
    assert!(
        (layers[0].mean_shift - mean_shift).abs() < 1e-9,
        "{layers:?}"
    );
    assert!(
        (layers[0].variance_ratio - ratio).abs() < 1e-9,
        "{layers:?}"
    );
    assert_eq!(shifts(&before, &before)[0].mean_shift, 0.0);
    assert_eq!(shifts(&before, &before)[0].variance_ratio, 1.0);
}

/// Two copies of a student that differ only in their running statistics, recalibrated from the
/// same natural batches: what is left of their difference is 0.9^batches of it (momentum 0.1,
/// as training), and no weight moved.
#[test]
fn natural_statistics_forget_the_old_ones_at_the_training_momentum_and_keep_the_weights() {
    let data = embedded_mnist();
    let plain = micro_cnn(4);
    let shifted = micro_cnn(4);
    // Other statistics for the second copy: training-mode forwards on brighter, flatter images.
    let indices: Vec<usize> = (0..64).collect();
    let (x, _) = rslad_tui::tensor_util::batch_tensors(&data.train, &indices, &compute_device());
    for _ in 0..3 {
        let _ = shifted.forward(x.clone().mul_scalar(0.5).add_scalar(0.3).autodiff());
    }
    let (plain_stats, weights) = statistics_and_weights(&plain);
    let (shifted_stats, shifted_weights) = statistics_and_weights(&shifted);
    assert_eq!(weights, shifted_weights);
    assert_ne!(plain_stats, shifted_stats);

    let batches = 5;
    for model in [&plain, &shifted] {
        recalibrate(
            model,
            &data.train,
            &config(StatsSource::Natural, batches),
            &compute_device(),
            &mut |_| {},
            &never(),
        )
        .unwrap();
    }
    let (plain_after, weights_after) = statistics_and_weights(&plain);
    let (shifted_after, _) = statistics_and_weights(&shifted);
    assert_eq!(weights_after, weights, "a weight moved");
    let kept = 0.9f64.powi(batches as i32);
    for (name, before) in &plain_stats {
        for c in 0..before.len() {
            let gap_before = f64::from(shifted_stats[name][c] - before[c]);
            let gap_after = f64::from(shifted_after[name][c] - plain_after[name][c]);
            assert!(
                (gap_after - kept * gap_before).abs() <= 1e-4 * (1.0 + gap_before.abs()),
                "{name}[{c}]: {gap_before} became {gap_after}, not {kept}× it"
            );
        }
    }
}

#[test]
fn adversarial_statistics_differ_from_natural_ones_and_keep_the_weights() {
    let data = embedded_mnist();
    let natural = micro_cnn(5);
    let adversarial = micro_cnn(5);
    let (_, weights) = statistics_and_weights(&natural);
    let run = |model: &Model, source| {
        recalibrate(
            model,
            &data.train,
            &config(source, 4),
            &compute_device(),
            &mut |_| {},
            &never(),
        )
        .unwrap()
    };
    let natural_shift = run(&natural, StatsSource::Natural);
    let adversarial_shift = run(&adversarial, StatsSource::Adversarial);
    let (natural_stats, _) = statistics_and_weights(&natural);
    let (adversarial_stats, adversarial_weights) = statistics_and_weights(&adversarial);
    assert_eq!(adversarial_weights, weights, "a weight moved");
    assert_ne!(natural_stats, adversarial_stats);
    assert!(adversarial_stats.values().flatten().all(|v| v.is_finite()));
    assert_eq!(
        adversarial_shift.len(),
        2,
        "micro-cnn has two batch-norm layers"
    );
    assert!(adversarial_shift.iter().all(|s| s.mean_shift > 0.0));
    assert_ne!(natural_shift, adversarial_shift);
}

#[test]
fn a_cancelled_recalibration_stops_before_its_first_batch() {
    let data = embedded_mnist();
    let model = micro_cnn(6);
    let (before, _) = statistics_and_weights(&model);
    let mut seen = 0;
    let result = recalibrate(
        &model,
        &data.train,
        &config(StatsSource::Adversarial, 10),
        &compute_device(),
        &mut |_| seen += 1,
        &AtomicBool::new(true),
    );
    assert_eq!(result, Err(Stopped::Cancelled));
    assert_eq!(seen, 0);
    assert_eq!(statistics_and_weights(&model).0, before);
}

/// Stopped after its first batch (whose forward moved the statistics), a recalibration puts
/// them back as they were.
#[test]
fn a_recalibration_stopped_part_way_puts_the_statistics_back() {
    let data = embedded_mnist();
    let model = micro_cnn(6);
    let (before, _) = statistics_and_weights(&model);
    let cancel = AtomicBool::new(false);
    let mut moved = false;
    let result = recalibrate(
        &model,
        &data.train,
        &config(StatsSource::Natural, 10),
        &compute_device(),
        &mut |done| {
            if done == 1 {
                moved = statistics_and_weights(&model).0 != before;
                cancel.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        },
        &cancel,
    );
    assert_eq!(result, Err(Stopped::Cancelled));
    assert!(moved, "the first batch should have moved the statistics");
    assert_eq!(statistics_and_weights(&model).0, before);
}

/// The command end to end on a quickly trained micro-cnn: a new checkpoint with the same
/// weights, other statistics and a card that says where they came from; nothing overwritten
/// unasked; a model without batch norm refused.
#[test]
fn the_command_writes_a_new_checkpoint_and_overwrites_nothing_unasked() {
    let dir = tempfile::tempdir().unwrap();
    let trained = dir.path().join("student");
    let trained = trained.to_str().unwrap();
    let (code, _, stderr) = run(&[
        "train",
        "--model",
        "micro-cnn",
        "--method",
        "sat",
        "--epochs",
        "1",
        "--train-n",
        "128",
        "--steps",
        "2",
        "--eval-n",
        "10",
        "--eval-steps",
        "0",
        "--out",
        trained,
    ]);
    assert_eq!(code, 0, "{stderr}");
    let out = dir.path().join("student-adv");
    let out = out.to_str().unwrap();
    let recal = [
        "recalibrate",
        "--checkpoint",
        trained,
        "--batches",
        "3",
        "--batch-size",
        "16",
        "--steps",
        "2",
        "--out",
        out,
        "--json",
    ];
    let (code, stdout, stderr) = run(&recal);
    assert_eq!(code, 0, "{stderr}");
    let reported: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(reported.as_array().map(Vec::len), Some(2), "{stdout}");

    let load = |stem: &str| {
        rslad_tui::checkpoint::load(std::path::Path::new(stem), None, &autodiff_device()).unwrap()
    };
    let (original, _) = load(trained);
    let (recalibrated, card) = load(out);
    let (original_stats, original_weights) = statistics_and_weights(&original);
    let (new_stats, new_weights) = statistics_and_weights(&recalibrated);
    assert_eq!(original_weights, new_weights);
    assert_ne!(original_stats, new_stats);
    assert!(
        card.training.is_none() && card.metrics.is_empty(),
        "{card:?}"
    );
    assert!(card.dataset.contains("re-estimated"), "{}", card.dataset);
    // What a teacher's data is checked against: the name, without the provenance.
    assert_eq!(card.dataset_name(), "mnist");
    assert!(card.dataset.contains("PGD-2"), "{}", card.dataset);
    assert!(card.dataset.contains("sha256"), "{}", card.dataset);
    assert!(
        card.statistics_note()
            .is_some_and(|n| n.starts_with("batch-norm statistics"))
    );

    let card_bytes = std::fs::read(dir.path().join("student-adv.ron")).unwrap();
    assert_clean_failure(&recal, "already holds a checkpoint");
    assert_eq!(
        std::fs::read(dir.path().join("student-adv.ron")).unwrap(),
        card_bytes
    );
    let natural = [
        "recalibrate",
        "--checkpoint",
        trained,
        "--batches",
        "3",
        "--batch-size",
        "16",
        "--out",
        out,
        "--overwrite",
        "--from",
        "natural",
    ];
    let (code, _, stderr) = run(&natural);
    assert_eq!(code, 0, "{stderr}");
    let (_, natural_card) = load(out);
    assert!(
        natural_card.dataset.contains("natural training images"),
        "{}",
        natural_card.dataset
    );

    assert_clean_failure(
        &[&natural[..], &["--eps", "0.1"]].concat(),
        "natural statistics take none",
    );
    // A checkpoint of other data than --dataset's is refused, not recalibrated on the wrong
    // images (the shapes of MNIST and Fashion-MNIST agree, so only the card can tell).
    let fashion = dir.path().join("fashion");
    let card_text = std::fs::read_to_string(dir.path().join("student.ron")).unwrap();
    assert!(card_text.contains("dataset: \"mnist\""), "{card_text}");
    std::fs::write(
        fashion.with_extension("ron"),
        card_text
            .replace("dataset: \"mnist\"", "dataset: \"fashion\"")
            .replace("\"student.safetensors\"", "\"fashion.safetensors\""),
    )
    .unwrap();
    std::fs::copy(
        dir.path().join("student.safetensors"),
        fashion.with_extension("safetensors"),
    )
    .unwrap();
    assert_clean_failure(
        &[
            "recalibrate",
            "--checkpoint",
            fashion.to_str().unwrap(),
            "--out",
            out,
            "--overwrite",
        ],
        "trained on fashion, not mnist",
    );
    assert_clean_failure(
        &["recalibrate", "--checkpoint", trained, "--out", trained],
        "is the checkpoint itself",
    );
    assert_clean_failure(
        &[
            "recalibrate",
            "--checkpoint",
            "embedded-sat",
            "--out",
            out,
            "--overwrite",
        ],
        "has no batch norm",
    );
    assert_clean_failure(
        &[
            "recalibrate",
            "--checkpoint",
            trained,
            "--out",
            out,
            "--batches",
            "0",
        ],
        "at least 1",
    );
}
