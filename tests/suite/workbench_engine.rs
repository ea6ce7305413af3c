//! The workbench engine on the embedded subset with tiny budgets: every command changes the
//! snapshot as the user would expect, errors change nothing, and a stop keeps the student.

use burn::prelude::*;
use rslad_tui::device::compute_device;
use rslad_tui::lab::command::parse_engine;
use rslad_tui::lab::engine::{Engine, default_settings};
use rslad_tui::lab::live::Shared;
use rslad_tui::lab::snapshot::{LogLevel, Snapshot};
use rslad_tui::tensor_util::to_vec;
use rslad_tui::train::{Method, OptimizerKind};
use rslad_tui::zoo::Model;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// The default session with budgets small enough for a debug build: 256 training images,
/// 40 test images evaluated after an epoch with PGD-2.
fn engine() -> (Engine, Arc<Shared>) {
    let shared = Arc::new(Shared::default());
    let mut settings = default_settings();
    settings.train_n = Some(256);
    settings.eval.n = 40;
    settings.eval.steps = 2;
    settings.attack.steps = Some(2);
    let engine = Engine::new(Arc::clone(&shared), settings, Some("embedded")).unwrap();
    (engine, shared)
}

fn run(engine: &mut Engine, line: &str) -> anyhow::Result<()> {
    engine.execute(parse_engine(line)?)
}

/// The student's logits on a fixed input: equal outputs mean equal weights here.
fn fingerprint(model: &Model) -> Vec<f32> {
    let device = compute_device();
    let x = Tensor::<4>::ones([2, 1, 28, 28], &device) * 0.5;
    to_vec(model.valid_forward(x))
}

fn last_log(s: &Snapshot) -> String {
    s.log.last().map(|l| l.text.clone()).unwrap_or_default()
}

#[test]
fn the_default_session_shows_teacher_student_and_a_sample() {
    let (_engine, shared) = engine();
    let s = shared.snapshot();
    assert_eq!(s.status.dataset, "mnist (embedded)");
    assert!(
        s.status.teacher.starts_with("small-cnn TRADES (shipped)"),
        "{}",
        s.status.teacher
    );
    assert_eq!(s.status.student, "micro-cnn");
    assert!(
        s.status.method.starts_with("rslad α=0.833"),
        "{}",
        s.status.method
    );
    assert_eq!(
        (s.status.epoch, s.status.batch, s.status.batches),
        (0, 0, 2)
    );
    assert!((s.status.epsilon - 0.3).abs() < 1e-6);
    let sample = s.sample.expect("a sample is selected");
    assert_eq!((sample.index, sample.of), (0, 10_000));
    for probs in [
        sample.teacher_natural.as_ref().unwrap(),
        sample.teacher_adversarial.as_ref().unwrap(),
        &sample.student_natural,
        &sample.student_adversarial,
    ] {
        assert_eq!(probs.len(), 10);
        assert!((probs.iter().sum::<f32>() - 1.0).abs() < 1e-4);
    }
    for (a, n) in sample.adversarial.iter().zip(&sample.natural) {
        assert!((a - n).abs() <= sample.epsilon + 1e-6 && (0.0..=1.0).contains(a));
    }
    // The shipped teacher gets test image 0 (a 7) right.
    let t = sample.teacher_natural.unwrap();
    let best = (0..10).max_by(|&a, &b| t[a].total_cmp(&t[b])).unwrap();
    assert_eq!(best, sample.true_class);
}

#[test]
fn stepping_batches_moves_the_counter_and_the_loss_trace() {
    let (mut engine, shared) = engine();
    let before = fingerprint(engine.student());
    run(&mut engine, "step batch 1").unwrap();
    let s = shared.snapshot();
    assert_eq!(
        (s.status.epoch, s.status.batch, s.status.batches),
        (0, 1, 2)
    );
    assert_eq!(s.curves.batch_losses.len(), 1);
    assert!(s.curves.batch_losses[0].is_finite());
    assert!(s.status.unsaved);
    assert_ne!(
        fingerprint(engine.student()),
        before,
        "a batch changes the student"
    );
    // The second batch ends the epoch: a curve point, the teacher's reference, a log line.
    run(&mut engine, "step batch 1").unwrap();
    let s = shared.snapshot();
    assert_eq!((s.status.epoch, s.status.batch), (1, 0));
    assert_eq!(s.curves.epochs.len(), 1);
    assert_eq!(s.curves.robust_label, "PGD-2");
    assert!(s.curves.teacher_clean.unwrap() > 80.0);
    // The epoch's line, then the announcement of the teacher's reference measurement.
    let lines: Vec<&str> = s
        .log
        .iter()
        .rev()
        .take(2)
        .map(|l| l.text.as_str())
        .collect();
    assert!(lines[1].starts_with("epoch 1 done"), "{lines:?}");
    assert!(lines[0].starts_with("measuring the teacher"), "{lines:?}");
}

#[test]
fn a_raised_stop_keeps_the_student_and_the_epoch_resumes() {
    let (mut engine, shared) = engine();
    run(&mut engine, "step batch 1").unwrap();
    let after_one = fingerprint(engine.student());
    shared.cancel.store(true, Ordering::Relaxed);
    run(&mut engine, "step").unwrap();
    assert_eq!(fingerprint(engine.student()), after_one);
    let s = shared.snapshot();
    assert_eq!((s.status.epoch, s.status.batch), (0, 1));
    let warning = s
        .log
        .iter()
        .rev()
        .find(|l| l.level == LogLevel::Warning)
        .unwrap();
    assert!(
        warning.text.contains("stopped after batch 1/2"),
        "{}",
        warning.text
    );
    shared.cancel.store(false, Ordering::Relaxed);
    run(&mut engine, "step").unwrap();
    assert_eq!(shared.snapshot().status.epoch, 1);
}

#[test]
fn method_options_reach_the_trainer_and_bad_ones_change_nothing() {
    let (mut engine, shared) = engine();
    run(&mut engine, "method rslad alpha=1/2 steps=3").unwrap();
    let Method::Rslad { alpha, attack, .. } = &engine.trainer().config.method else {
        panic!("not rslad");
    };
    assert!((alpha - 0.5).abs() < 1e-6);
    assert_eq!(attack.steps, 3);
    assert!(run(&mut engine, "method ard alpha=2").is_err());
    assert_eq!(engine.trainer().config.method.name(), "rslad");
    assert_eq!(shared.snapshot().status.method, "rslad α=0.500");
    run(&mut engine, "method trades beta=6").unwrap();
    assert!(matches!(engine.trainer().config.method, Method::Trades { beta, .. } if beta == 6.0));
    // Issue 20's switches reach the training step too, and the method's label names them.
    run(
        &mut engine,
        "method rslad start=uniform steps=40 step-size=0.01 bn-stats=adversarial",
    )
    .unwrap();
    let method = &engine.trainer().config.method;
    let attack = method.training_attack().unwrap();
    assert_eq!(attack.start, rslad_tui::attack::Start::Uniform);
    assert_eq!(attack.steps, 40);
    assert!((attack.step_size - 0.01).abs() < 1e-7);
    assert_eq!(
        method.bn_stats(),
        Some(rslad_tui::train::BnStats::Adversarial)
    );
    assert!(
        method
            .label()
            .ends_with(", start uniform, bn-stats adversarial"),
        "{}",
        method.label()
    );
}

#[test]
fn the_teacher_cannot_go_while_a_method_needs_it() {
    let (mut engine, shared) = engine();
    let error = run(&mut engine, "teacher none").unwrap_err().to_string();
    assert!(error.contains("distils from a teacher"), "{error}");
    run(&mut engine, "method sat").unwrap();
    run(&mut engine, "teacher none").unwrap();
    let s = shared.snapshot();
    assert_eq!(s.status.teacher, "none");
    assert!(s.sample.unwrap().teacher_natural.is_none());
    let error = run(&mut engine, "method kd").unwrap_err().to_string();
    assert!(error.contains("teacher embedded"), "{error}");
    assert!(run(&mut engine, "teacher /no/such/checkpoint").is_err());
    assert_eq!(shared.snapshot().status.teacher, "none");
}

#[test]
fn an_attack_fills_the_table_and_stays_in_the_ball() {
    let (mut engine, shared) = engine();
    run(&mut engine, "attack pgd n=20 steps=3 eps=0.1").unwrap();
    let table = shared.snapshot().attack.expect("a table");
    assert!(table.title.contains("20 test images") && table.title.contains("ε = 0.1"));
    assert_eq!(table.rows.len(), 1);
    assert_eq!(table.rows[0].name, "PGD-3");
    assert!(table.rows[0].robust <= table.clean);
    let max_delta: f32 = table.rows[0].detail["max |δ| ".len()..][..5]
        .parse()
        .unwrap();
    assert!(max_delta <= 0.1 + 1e-3, "{}", table.rows[0].detail);
}

#[test]
fn samples_are_selected_and_bounded() {
    let (mut engine, shared) = engine();
    run(&mut engine, "show sample 5").unwrap();
    run(&mut engine, "next").unwrap();
    assert_eq!(shared.snapshot().sample.unwrap().index, 6);
    run(&mut engine, "prev").unwrap();
    run(&mut engine, "prev").unwrap();
    assert_eq!(shared.snapshot().sample.unwrap().index, 4);
    let error = run(&mut engine, "show sample 10000")
        .unwrap_err()
        .to_string();
    assert!(error.contains("0 to 9999"), "{error}");
    assert_eq!(shared.snapshot().sample.unwrap().index, 4);
    // An untrained student misclassifies some image under attack; the search finds one.
    run(&mut engine, "show misclassified").unwrap();
    let sample = shared.snapshot().sample.unwrap();
    assert!(sample.index > 4);
    let adv = &sample.student_adversarial;
    let predicted = (0..10).max_by(|&a, &b| adv[a].total_cmp(&adv[b])).unwrap();
    assert_ne!(predicted, sample.true_class);
}

#[test]
fn save_and_load_round_trip_the_student() {
    let (mut engine, shared) = engine();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("student");
    run(&mut engine, "step batch 1").unwrap();
    let trained = fingerprint(engine.student());
    run(&mut engine, &format!("save {}", path.display())).unwrap();
    assert!(!shared.snapshot().status.unsaved);
    run(&mut engine, "reset").unwrap();
    assert_ne!(fingerprint(engine.student()), trained);
    run(&mut engine, &format!("load {}", path.display())).unwrap();
    assert_eq!(fingerprint(engine.student()), trained);
    let error = run(&mut engine, "load /no/such/file").unwrap_err();
    assert!(format!("{error:#}").contains("/no/such/file"));
    assert_eq!(fingerprint(engine.student()), trained);
}

#[test]
fn settings_and_bad_data_keep_the_session() {
    let (mut engine, shared) = engine();
    run(&mut engine, "eps 0.2").unwrap();
    run(&mut engine, "lr 0.01").unwrap();
    run(&mut engine, "seed 7").unwrap();
    let s = shared.snapshot();
    assert!((s.status.epsilon - 0.2).abs() < 1e-6);
    assert_eq!(s.status.seed, 7);
    assert!((s.sample.unwrap().epsilon - 0.2).abs() < 1e-6);
    assert_eq!(engine.trainer().config.optimizer.learning_rate, 0.01);
    run(
        &mut engine,
        "optimizer sgd momentum=0.5 weight-decay=2e-4 milestones=2,4",
    )
    .unwrap();
    let optimizer = &engine.trainer().config.optimizer;
    assert_eq!(optimizer.kind, OptimizerKind::Sgd { momentum: 0.5 });
    assert_eq!(
        (optimizer.weight_decay, optimizer.learning_rate),
        (2e-4, 0.01)
    );
    assert_eq!(optimizer.milestones, vec![2, 4]);
    run(&mut engine, "optimizer adam").unwrap();
    let optimizer = &engine.trainer().config.optimizer;
    assert_eq!(optimizer.kind, OptimizerKind::Adam);
    assert_eq!(
        optimizer.milestones,
        vec![2, 4],
        "keys left out keep their value"
    );
    assert!(run(&mut engine, "data /no/such/folder").is_err());
    assert!(run(&mut engine, "data cifar10").is_err());
    assert_eq!(shared.snapshot().status.dataset, "mnist (embedded)");
    run(&mut engine, "student mlp").unwrap();
    assert_eq!(shared.snapshot().status.student, "mlp");
    let error = run(&mut engine, "student resnet18")
        .unwrap_err()
        .to_string();
    assert!(error.contains("resnet18"), "{error}");
    assert_eq!(shared.snapshot().status.student, "mlp");
}

#[test]
fn a_teacher_from_other_data_loads_with_a_warning() {
    let (mut engine, shared) = engine();
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets/teachers/small-cnn-fashion-sat"
    );
    run(&mut engine, &format!("teacher {path}")).unwrap();
    let s = shared.snapshot();
    assert!(
        s.status.teacher.starts_with("small-cnn SAT"),
        "{}",
        s.status.teacher
    );
    let warning = s
        .log
        .iter()
        .rev()
        .find(|l| l.level == LogLevel::Warning)
        .unwrap();
    assert!(
        warning
            .text
            .contains("trained on fashion, the data is mnist"),
        "{}",
        warning.text
    );
}

#[test]
fn a_diverging_loss_stops_and_keeps_the_last_good_student() {
    let (mut engine, shared) = engine();
    run(&mut engine, "lr 1e30").unwrap();
    run(&mut engine, "step batch 1").unwrap();
    let good = fingerprint(engine.student());
    let error = run(&mut engine, "step batch 1").unwrap_err().to_string();
    assert!(error.contains("the loss became"), "{error}");
    assert!(error.contains("as it was after batch 1"), "{error}");
    let after = fingerprint(engine.student());
    assert_eq!(
        after.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        good.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        "the diverged batch was not applied"
    );
    assert_eq!(shared.snapshot().status.batch, 1);
    // A sane learning rate resumes the epoch from there.
    run(&mut engine, "reset").unwrap();
    run(&mut engine, "lr 0.002").unwrap();
    run(&mut engine, "step batch 1").unwrap();
    assert_eq!(shared.snapshot().status.batch, 1);
}

#[test]
fn huge_attacks_are_accepted_and_stop_when_asked() {
    for line in [
        "attack pgd n=10 steps=100000000",
        "attack cw n=99999999 steps=40",
    ] {
        let (mut engine, shared) = engine();
        let stopper = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(300));
                shared.cancel.store(true, Ordering::Relaxed);
            })
        };
        let started = std::time::Instant::now();
        run(&mut engine, line).unwrap();
        stopper.join().unwrap();
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "{line} took {:?} to stop",
            started.elapsed()
        );
        let s = shared.snapshot();
        assert!(
            s.attack.is_none(),
            "{line}: a stopped attack leaves no table"
        );
        assert!(last_log(&s).contains("ttack stopped"), "{}", last_log(&s));
    }
}

/// `diagnose` puts the loss around one test image into the snapshot for the Curves panel's
/// plot, with the student it measured; the loss at offset 0 is the student's cross-entropy on
/// that image, whatever the direction. Training marks it stale; a fresh student clears it.
#[test]
fn diagnose_publishes_the_loss_profile_until_the_student_is_replaced() {
    let (mut engine, shared) = engine();
    assert!(shared.snapshot().diagnosis.is_none());
    // The fresh student gets none of the first 8 images right: no image to take the loss
    // around, and the plot's data says so.
    run(&mut engine, "diagnose n=8").unwrap();
    let fresh = shared
        .snapshot()
        .diagnosis
        .expect("diagnose fills the plot's data");
    assert_eq!(fresh.image, None);
    assert!(fresh.offsets.is_empty() && fresh.along_gradient.is_empty());
    assert!(fresh.checks > 0);

    run(&mut engine, "step").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("student");
    run(&mut engine, &format!("save {}", saved.display())).unwrap();
    run(&mut engine, "diagnose n=16").unwrap();
    let s = shared.snapshot();
    let d = s.diagnosis.clone().expect("diagnose fills the plot's data");
    assert_eq!(d.images, 16);
    assert!((d.epsilon - 0.3).abs() < 1e-6);
    assert_eq!(
        (d.model.as_str(), d.method.as_str()),
        (s.status.student.as_str(), s.status.method.as_str())
    );
    assert_eq!((d.epochs, d.batches), (1, 0));
    assert!(!d.is_stale(&s.status));
    let image = d
        .image
        .expect("after an epoch the student gets some images right");
    assert!(image < 16);
    // The lines of this diagnosis: from its heading on.
    let log: Vec<&str> = s.log.iter().map(|l| l.text.as_str()).collect();
    let heading = log
        .iter()
        .rposition(|l| l.starts_with("diagnose "))
        .unwrap();
    let log = &log[heading..];
    assert!(
        log.iter()
            .any(|l| l.contains(&format!("around test image {image} at"))),
        "the plot and the log name the same image: {log:?}"
    );
    // Each check's line in the log, one of them per finding, and the verdict's count.
    let checks = log
        .iter()
        .filter(|l| l.starts_with("✓ ") || l.starts_with("⚠ "))
        .count();
    assert_eq!(d.checks, checks, "{log:?}");
    assert_eq!(
        d.flagged,
        log.iter().filter(|l| l.starts_with("⚠ ")).count(),
        "{log:?}"
    );

    let expected_offsets: Vec<f32> = (0..=10).map(|k| k as f32 / 10.0).collect();
    assert_eq!(d.offsets, expected_offsets);
    for curve in [&d.along_gradient, &d.random_max, &d.random_mean] {
        assert_eq!(curve.len(), d.offsets.len());
        assert!(
            curve.iter().all(|l| l.is_finite() && *l >= 0.0),
            "{curve:?}"
        );
    }
    for (max, mean) in d.random_max.iter().zip(&d.random_mean) {
        // (At offset 0 all directions give the same loss; their mean may round above it.)
        assert!(
            max + 1e-5 >= *mean,
            "{:?} {:?}",
            d.random_max,
            d.random_mean
        );
    }
    // At offset 0 every direction stands on the image itself: the cross-entropy of the
    // student's logits there, computed here by hand.
    let data = rslad_tui::data::load(
        rslad_tui::data::DatasetKind::Mnist,
        &rslad_tui::data::DataSource::Embedded,
    )
    .unwrap();
    let (x, labels) = rslad_tui::diagnose::first_images(&data.test, image + 1, &compute_device());
    let logits = to_vec(engine.student().valid_forward(x));
    let row = &logits[image * 10..(image + 1) * 10];
    let top = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let log_sum = top + row.iter().map(|l| (l - top).exp()).sum::<f32>().ln();
    let cross_entropy = log_sum - row[labels[image] as usize];
    for curve in [&d.along_gradient, &d.random_max, &d.random_mean] {
        assert!(
            (curve[0] - cross_entropy).abs() < 1e-4,
            "{} vs {cross_entropy}",
            curve[0]
        );
    }

    run(&mut engine, "step batch 1").unwrap();
    let s = shared.snapshot();
    let kept = s
        .diagnosis
        .clone()
        .expect("training keeps the last diagnosis");
    assert_eq!(kept, d);
    assert!(kept.is_stale(&s.status), "trained since: the plot is stale");
    run(&mut engine, "method sat").unwrap();
    assert!(shared.snapshot().diagnosis.is_some(), "same weights");

    run(&mut engine, "student micro-cnn").unwrap();
    assert!(shared.snapshot().diagnosis.is_none(), "a fresh student");
    shared.update(|s| s.diagnosis = Some(d.clone()));
    run(&mut engine, "reset").unwrap();
    assert!(shared.snapshot().diagnosis.is_none(), "reset");
    shared.update(|s| s.diagnosis = Some(d.clone()));
    run(&mut engine, "data mnist").unwrap();
    assert!(
        shared.snapshot().diagnosis.is_none(),
        "new data, fresh student"
    );
    shared.update(|s| s.diagnosis = Some(d.clone()));
    run(&mut engine, &format!("load {}", saved.display())).unwrap();
    assert!(shared.snapshot().diagnosis.is_none(), "a loaded student");
}

/// `recalibrate` gathers the student's batch-norm statistics again and keeps its weights; the
/// diagnosis of the student before goes, and the student is unsaved. Stopped (here before its
/// first batch; part-way, the engine restores the statistics it copied first), the student keeps
/// its statistics; a student without batch norm is refused.
#[test]
fn recalibrate_changes_only_the_statistics_and_a_stop_keeps_the_old_ones() {
    let (mut engine, shared) = engine();
    run(&mut engine, "step").unwrap();
    let dir = tempfile::tempdir().unwrap();
    run(
        &mut engine,
        &format!("save {}", dir.path().join("s").display()),
    )
    .unwrap();
    run(&mut engine, "diagnose n=8").unwrap();
    let before = crate::common::statistics_and_weights(engine.student());

    shared.cancel.store(true, Ordering::Relaxed);
    run(&mut engine, "recalibrate batches=3").unwrap();
    assert_eq!(
        crate::common::statistics_and_weights(engine.student()),
        before
    );
    let s = shared.snapshot();
    assert!(
        last_log(&s).contains("keeps the statistics it had"),
        "{}",
        last_log(&s)
    );
    assert!(s.diagnosis.is_some() && !s.status.unsaved);
    shared.cancel.store(false, Ordering::Relaxed);

    run(&mut engine, "recalibrate batches=3").unwrap();
    let (statistics, weights) = crate::common::statistics_and_weights(engine.student());
    assert_eq!(weights, before.1, "a weight moved");
    assert_ne!(statistics, before.0);
    let s = shared.snapshot();
    let log: Vec<&str> = s.log.iter().map(|l| l.text.as_str()).collect();
    assert!(
        log.iter().any(|l| l.starts_with(
            "recalibrate micro-cnn: adversarial statistics from 3 training batches (PGD-2"
        )),
        "{log:?}"
    );
    assert!(log.iter().any(|l| l.starts_with("  bn1: ")), "{log:?}");
    assert!(s.diagnosis.is_none() && s.status.unsaved);
    // A save says on the card what was done, and a load and save keep saying it.
    let saved = dir.path().join("recalibrated");
    run(&mut engine, &format!("save {}", saved.display())).unwrap();
    let card = rslad_tui::checkpoint::read_card(&saved).unwrap();
    assert_eq!(card.dataset_name(), "mnist");
    let note = card
        .statistics_note()
        .expect("the card names the recalibration");
    assert!(note.contains("`recalibrate` after epoch 1"), "{note}");
    run(&mut engine, "reset").unwrap();
    run(&mut engine, &format!("load {}", saved.display())).unwrap();
    let again = dir.path().join("again");
    run(&mut engine, &format!("save {}", again.display())).unwrap();
    let card = rslad_tui::checkpoint::read_card(&again).unwrap();
    assert_eq!(card.statistics_note(), Some(note));
    run(&mut engine, "student micro-cnn").unwrap();
    let fresh = dir.path().join("fresh");
    run(&mut engine, &format!("save {}", fresh.display())).unwrap();
    assert_eq!(
        rslad_tui::checkpoint::read_card(&fresh)
            .unwrap()
            .statistics_note(),
        None
    );

    run(&mut engine, "student mlp").unwrap();
    let error = run(&mut engine, "recalibrate").unwrap_err();
    assert!(error.to_string().contains("has no batch norm"), "{error}");
}

/// Attack tables made after a `recalibrate` say so on the results board, and so do those of
/// a loaded recalibrated checkpoint, until training gathers statistics again.
#[test]
fn the_board_marks_tables_of_a_recalibrated_student_until_it_trains() {
    let (mut engine, shared) = engine();
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("recalibrated");
    run(&mut engine, "step batch 2").unwrap(); // the whole epoch of 256 images
    run(&mut engine, "attack fgsm n=8").unwrap();
    run(&mut engine, "recalibrate batches=2").unwrap();
    run(&mut engine, "attack fgsm n=8").unwrap();
    run(&mut engine, &format!("save {}", saved.display())).unwrap();
    run(&mut engine, "step batch 1").unwrap();
    run(&mut engine, "attack fgsm n=8").unwrap();
    // Its card keeps the recalibration's note, and says the student trained since.
    let retrained = dir.path().join("retrained");
    run(&mut engine, &format!("save {}", retrained.display())).unwrap();
    let log = shared.snapshot().log;
    assert_eq!(
        log.last().unwrap().text,
        "  its card counts finished epochs only (1 epoch); the weights also hold 1 batch of epoch 2"
    );
    run(&mut engine, &format!("load {}", saved.display())).unwrap();
    run(&mut engine, "attack fgsm n=8").unwrap();
    run(&mut engine, "recalibrate natural batches=1").unwrap();
    run(&mut engine, "attack fgsm n=8").unwrap();
    run(&mut engine, &format!("load {}", retrained.display())).unwrap();
    run(&mut engine, "attack fgsm n=8").unwrap();
    let card = rslad_tui::checkpoint::read_card(&retrained).unwrap();
    let note = card.statistics_note().unwrap();
    assert!(
        note.contains("adversarial training images")
            && note.ends_with("gathered the statistics again"),
        "{note}"
    );
    assert_eq!(card.recalibrated_from(), None);

    let board = shared.snapshot().results;
    let marks: Vec<&str> = board
        .iter()
        .map(|t| t.context.as_ref().unwrap().recalibrated.as_str())
        .collect();
    assert_eq!(
        marks,
        ["", "adversarial", "", "adversarial", "natural", ""],
        "before, after, trained since, loaded, natural, loaded after training since"
    );
    let lines = rslad_tui::lab::snapshot::results::lines(&board);
    let trained: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| (l.training.as_str(), l.training_short.as_str()))
        .collect();
    assert_eq!(
        trained,
        [
            ("1 epoch", "1 ep"),
            (
                "1 epoch, statistics recalibrated (adversarial)",
                "1 ep · recal adv"
            ),
            ("1 epoch + 1 batch", "1 ep + 1 b"),
            (
                "1 epoch, statistics recalibrated (adversarial)",
                "1 ep · recal adv"
            ),
            (
                "1 epoch, statistics recalibrated (natural)",
                "1 ep · recal nat"
            ),
            // A card records finished epochs only: the batch after the last one is in the
            // weights, not in the count.
            ("1 epoch", "1 ep"),
        ]
    );
}
