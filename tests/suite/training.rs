//! Training is deterministic from its seed, actually learns, and uses batch norm the way each
//! attack mode promises.

use crate::common::embedded_mnist;
use rand::{SeedableRng, rngs::StdRng};
use rslad_tui::attack::{self, AttackLoss, BnMode, PgdConfig, Selection, Start, Target};
use rslad_tui::checkpoint::named_tensors;
use rslad_tui::data::Dataset;
use rslad_tui::device::{autodiff_device, compute_device};
use rslad_tui::eval::EvalAttack;
use rslad_tui::progress::Silent;
use rslad_tui::tensor_util::{images, labels};
use rslad_tui::train::{Method, OptimizerConfig, OptimizerKind, StepOutcome, TrainConfig, Trainer};
use rslad_tui::zoo::{Arch, Model, ModelSpec};
use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;

fn config(method: Method, seed: u64) -> TrainConfig {
    TrainConfig {
        method,
        optimizer: OptimizerConfig {
            kind: OptimizerKind::Sgd { momentum: 0.9 },
            learning_rate: 0.05,
            weight_decay: 5e-4,
            milestones: vec![1],
            gamma: 0.1,
        },
        epochs: 1,
        batch_size: 50,
        seed,
        train_n: Some(2000),
        eval_n: 300,
        eval_attack: Some(EvalAttack::fgsm(0.1)),
        epsilon_warmup_epochs: 0,
    }
}

fn sat(steps: usize) -> Method {
    Method::Sat {
        attack: PgdConfig {
            epsilon: 0.3,
            step_size: 0.1,
            steps,
            loss: AttackLoss::CrossEntropy,
            start: Start::Uniform,
            selection: Selection::Last,
        },
        bn_mode: BnMode::Eval,
    }
}

fn train_once(
    method: Method,
    seed: u64,
    data: &Dataset,
) -> (Model, rslad_tui::train::EpochMetrics) {
    let model = Model::build(
        ModelSpec::native(Arch::MicroCnn, 10),
        seed,
        &autodiff_device(),
    )
    .unwrap();
    let mut trainer = Trainer::new(model, config(method, seed));
    let metrics = trainer
        .run_epoch(data, &Silent, &AtomicBool::new(false))
        .expect("not cancelled");
    (trainer.model, metrics)
}

#[test]
fn natural_training_learns_and_is_deterministic() {
    let data = embedded_mnist();
    let (model_a, a) = train_once(Method::Natural, 1, &data);
    let (model_b, b) = train_once(Method::Natural, 1, &data);
    // One epoch on 2,000 images already beats chance (10%) by far.
    assert!(
        a.test_clean_accuracy > 0.6,
        "clean accuracy {}",
        a.test_clean_accuracy
    );
    assert_eq!(a.loss, b.loss);
    assert_eq!(a.test_clean_accuracy, b.test_clean_accuracy);
    assert_eq!(a.test_robust_accuracy, b.test_robust_accuracy);
    assert_eq!(named_tensors(&model_a), named_tensors(&model_b));
    let (_, other_seed) = train_once(Method::Natural, 2, &data);
    assert_ne!(a.loss, other_seed.loss);
}

#[test]
fn sat_training_is_deterministic_and_differs_from_natural() {
    let data = embedded_mnist();
    let (_, a) = train_once(sat(2), 3, &data);
    let (_, b) = train_once(sat(2), 3, &data);
    assert_eq!(a.loss, b.loss);
    assert_eq!(a.test_robust_accuracy, b.test_robust_accuracy);
    let (_, natural) = train_once(Method::Natural, 3, &data);
    // The adversarial loss of SAT is higher than the natural loss on the same budget.
    assert!(
        a.loss > natural.loss,
        "SAT loss {} vs natural {}",
        a.loss,
        natural.loss
    );
}

#[test]
fn cancelling_keeps_the_model_of_the_last_completed_batch() {
    let data = embedded_mnist();
    let model = Model::build(ModelSpec::native(Arch::MicroCnn, 10), 5, &autodiff_device()).unwrap();
    let before = named_tensors(&model);
    let mut trainer = Trainer::new(model, config(Method::Natural, 5));
    let cancelled = trainer.run_epoch(&data, &Silent, &AtomicBool::new(true));
    assert!(cancelled.is_none());
    assert_eq!(trainer.epochs_done(), 0);
    assert_eq!(named_tensors(&trainer.model), before);
}

#[test]
fn stepping_batch_by_batch_gives_the_same_model_as_a_whole_epoch() {
    let data = embedded_mnist();
    let (whole, whole_metrics) = train_once(sat(2), 7, &data);

    let model = Model::build(ModelSpec::native(Arch::MicroCnn, 10), 7, &autodiff_device()).unwrap();
    let mut trainer = Trainer::new(model, config(sat(2), 7));
    let never = AtomicBool::new(false);
    let batches = trainer.batches_per_epoch(&data);
    assert_eq!(batches, 40, "2000 images in batches of 50");
    assert_eq!(
        trainer.step_batches(&data, 3, &Silent, &never),
        StepOutcome::Batches(3)
    );
    assert_eq!(trainer.epoch_position(), (3, 40));
    // A cancelled call runs nothing and keeps the position.
    assert_eq!(
        trainer.step_batches(&data, 5, &Silent, &AtomicBool::new(true)),
        StepOutcome::Cancelled
    );
    assert_eq!(trainer.epoch_position(), (3, 40));
    assert_eq!(
        trainer.step_batches(&data, 10, &Silent, &never),
        StepOutcome::Batches(10)
    );
    let StepOutcome::EpochDone(metrics) = trainer.step_batches(&data, 100, &Silent, &never) else {
        panic!("the remaining 27 batches end the epoch");
    };
    assert_eq!(trainer.epoch_position(), (0, 0));
    assert_eq!(trainer.epochs_done(), 1);
    assert_eq!(named_tensors(&trainer.model), named_tensors(&whole));
    assert_eq!(metrics.loss, whole_metrics.loss);
    assert_eq!(metrics.train_accuracy, whole_metrics.train_accuracy);
}

fn running_mean(model: &Model) -> Vec<f32> {
    named_tensors(model)["bn1.running_mean"].1.clone()
}

#[test]
fn eval_mode_attacks_leave_running_statistics_alone_and_train_mode_attacks_update_them() {
    let model = Model::build(ModelSpec::native(Arch::MicroCnn, 10), 6, &autodiff_device()).unwrap();
    let data = embedded_mnist();
    let indices: Vec<usize> = (0..32).collect();
    let (pixels, targets) = data.train.batch(&indices);
    let device = compute_device();
    let x = images(pixels, 32, 1, 28, 28, &device);
    let target = Target::labels(labels(&targets, &device));
    let config = PgdConfig {
        epsilon: 0.3,
        step_size: 0.1,
        steps: 2,
        loss: AttackLoss::CrossEntropy,
        start: Start::Uniform,
        selection: Selection::Last,
    };
    let initial = running_mean(&model);
    let mut rng = StdRng::seed_from_u64(0);

    let eval = attack::view(&model, BnMode::Eval);
    attack::pgd(&eval, &x, &target, &config, &mut rng);
    assert_eq!(
        running_mean(&model),
        initial,
        "an eval-mode attack changed the statistics"
    );

    let train = attack::view(&model, BnMode::Train);
    attack::pgd(&train, &x, &target, &config, &mut rng);
    assert_ne!(
        running_mean(&model),
        initial,
        "a train-mode attack left the statistics"
    );
}

#[test]
fn the_eval_view_uses_the_statistics_of_the_last_training_batch() {
    let data = embedded_mnist();
    let (model, _) = train_once(Method::Natural, 7, &data);
    let device = compute_device();
    let indices: Vec<usize> = (0..16).collect();
    let (pixels, _) = data.test.batch(&indices);
    let x = images(pixels, 16, 1, 28, 28, &device);
    // Two views taken one after the other agree: the view does not lag an update behind.
    let a = rslad_tui::tensor_util::to_vec(attack::eval_view(&model).forward(x.clone()));
    let b = rslad_tui::tensor_util::to_vec(attack::eval_view(&model).forward(x));
    assert_eq!(a, b);
    let stats = running_mean(&model);
    assert!(
        stats.iter().any(|&m| m != 0.0),
        "training never updated the running mean"
    );
}

#[test]
fn epsilon_warmup_grows_linearly_to_the_full_budget() {
    let mut config = config(Method::Natural, 0);
    assert_eq!(config.epsilon_scale(0, 0, 10), 1.0);
    config.epsilon_warmup_epochs = 2;
    assert_eq!(config.epsilon_scale(0, 4, 10), 0.25);
    assert_eq!(config.epsilon_scale(1, 9, 10), 1.0);
    assert_eq!(config.epsilon_scale(5, 0, 10), 1.0);
}

/// Every float tensor of the model, parameters and running statistics, by name, as bits (so
/// that NaN compares equal to itself).
fn tensor_bits(model: &Model) -> BTreeMap<String, Vec<u32>> {
    named_tensors(model)
        .into_iter()
        .map(|(name, (_, values))| (name, values.iter().map(|v| v.to_bits()).collect()))
        .collect()
}

/// The names whose values differ, for a short message.
fn differing(a: &BTreeMap<String, Vec<u32>>, b: &BTreeMap<String, Vec<u32>>) -> Vec<String> {
    a.iter()
        .filter(|(name, values)| b.get(*name) != Some(values))
        .map(|(name, _)| name.clone())
        .collect()
}

fn not_finite(model: &Model) -> Vec<String> {
    named_tensors(model)
        .into_iter()
        .filter(|(_, (_, values))| values.iter().any(|v| !v.is_finite()))
        .map(|(name, _)| name)
        .collect()
}

/// Issue 21, item 10: `train --model micro-cnn --method natural --train-n 512 --epochs 3
/// --lr 1e30 --out X` saved a checkpoint whose `bn2.running_var` was NaN (also with
/// `--momentum 1e30` and `--gamma NaN --milestones 1`), because the copy of the model `train`
/// keeps from the last finished epoch shared its batch-norm statistics with the model still
/// training (burn's `Clone` of a batch norm shares them), and because a diverged batch had
/// already updated them. Here, through the library as `train` uses it, batch by batch: the
/// copy never changes, and a diverged batch leaves the model exactly as before it.
#[test]
fn a_diverging_run_keeps_the_last_good_model_and_the_copy_taken_before_it() {
    let data = embedded_mnist();
    let sgd = |learning_rate, momentum, gamma| OptimizerConfig {
        kind: OptimizerKind::Sgd { momentum },
        learning_rate,
        weight_decay: 0.0,
        milestones: vec![1],
        gamma,
    };
    // With one batch per epoch, `--lr 1e30` gives finite weights whose outputs overflow:
    // caught by the epoch's evaluation, which takes the batch back.
    let runs = [
        ("--lr 1e30", sgd(1e30, 0.9, 0.1), 512, true),
        ("--lr 1e30 --train-n 128", sgd(1e30, 0.9, 0.1), 128, true),
        ("--momentum 1e30", sgd(0.01, 1e30, 0.1), 512, true),
        (
            "--gamma NaN --milestones 1",
            sgd(0.01, 0.9, f64::NAN),
            512,
            true,
        ),
        ("--lr 0.05", sgd(0.05, 0.9, 0.1), 512, false),
    ];
    for (run, optimizer, train_n, diverges) in runs {
        let config = TrainConfig {
            optimizer,
            epochs: 3,
            batch_size: 128,
            train_n: Some(train_n),
            eval_n: 20,
            eval_attack: None,
            ..config(Method::Natural, 0)
        };
        let model =
            Model::build(ModelSpec::native(Arch::MicroCnn, 10), 0, &autodiff_device()).unwrap();
        let mut trainer = Trainer::new(model, config);
        let never = AtomicBool::new(false);
        // What `train` keeps to save: the model after the last finished epoch.
        let mut finished = trainer.model.clone();
        let mut finished_bits = tensor_bits(&finished);
        let mut diverged = false;
        while trainer.epochs_done() < 3 && !diverged {
            let before = tensor_bits(&trainer.model);
            match trainer.step_batches(&data, 1, &Silent, &never) {
                StepOutcome::Batches(_) => {}
                StepOutcome::EpochDone(_) => {
                    finished = trainer.model.clone();
                    finished_bits = tensor_bits(&finished);
                }
                StepOutcome::Diverged { batch, .. } => {
                    let after = tensor_bits(&trainer.model);
                    assert!(
                        before == after,
                        "{run}: batch {batch} diverged and changed {:?}",
                        differing(&before, &after)
                    );
                    diverged = true;
                }
                StepOutcome::Cancelled => unreachable!("nobody cancels"),
            }
            let now = tensor_bits(&finished);
            assert!(
                now == finished_bits,
                "{run}: training changed the copy of epoch {}: {:?}",
                trainer.epochs_done(),
                differing(&finished_bits, &now)
            );
        }
        assert_eq!(diverged, diverges, "{run}");
        assert!(
            not_finite(&finished).is_empty(),
            "{run}: {:?}",
            not_finite(&finished)
        );
        assert!(not_finite(&trainer.model).is_empty(), "{run}");
        // Saved, the copy loads again.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("last-good");
        let info = rslad_tui::checkpoint::SaveInfo {
            dataset: "mnist",
            training: None,
            metrics: &[],
            seed: 0,
        };
        rslad_tui::checkpoint::save(&finished, &path, &info).unwrap();
        let (loaded, _) =
            rslad_tui::checkpoint::load(&path, Some(Arch::MicroCnn), &compute_device())
                .unwrap_or_else(|e| panic!("{run}: {e}"));
        assert!(tensor_bits(&loaded) == finished_bits, "{run}");
    }
}

/// Issue 20, item 7: ARD as its reference resolves it by default. Its `nn.KLDivLoss()` averages
/// over batch × classes, so the distillation term carries 1/classes (0.1 on MNIST), beside
/// α = 1 and τ = 30 (ARD `main.py`); the hand-computed loss is in tests/suite/objectives.rs.
#[test]
fn ard_resolves_to_the_references_defaults() {
    use rslad_tui::settings::{MethodName, MethodSettings, TrainSettings};
    let data = embedded_mnist();
    let mut settings = TrainSettings {
        student: Arch::MicroCnn,
        ..TrainSettings::default()
    };
    settings.method = MethodSettings::new(MethodName::Ard);
    match settings.resolve(&data).unwrap().1.method {
        rslad_tui::train::Method::Ard {
            alpha,
            temperature,
            kl_scale,
            ..
        } => {
            assert_eq!((alpha, temperature), (1.0, 30.0));
            assert_eq!(kl_scale, 0.1);
        }
        other => panic!("not ARD: {}", other.label()),
    }
}

/// Issue 20: `--attack-start` changes where each method's training attack starts, and only
/// that; the reference start is each method's own. With no step taken, the uniform start
/// lies well outside the 0.001·N(0, 1) neighbourhood of x, the Gaussian one inside it.
#[test]
fn the_training_attack_start_option_moves_the_first_iterate() {
    use rslad_tui::settings::{AttackStart, MethodName, MethodSettings, TrainSettings};
    let data = embedded_mnist();
    let resolved = |name: MethodName, start: AttackStart| {
        let mut settings = TrainSettings {
            student: Arch::MicroCnn,
            ..TrainSettings::default()
        };
        settings.method = MethodSettings::new(name);
        settings.attack.start = start;
        settings.resolve(&data).unwrap().1.method
    };
    let reference = resolved(MethodName::Rslad, AttackStart::Reference);
    assert_eq!(
        reference.training_attack().unwrap().start,
        Start::SmallGaussian
    );
    assert!(
        !reference.label().contains("start"),
        "{}",
        reference.label()
    );
    assert_eq!(
        resolved(MethodName::Sat, AttackStart::Reference)
            .training_attack()
            .unwrap()
            .start,
        Start::Uniform
    );
    let uniform = resolved(MethodName::Rslad, AttackStart::Uniform);
    assert!(
        uniform.label().ends_with(", start uniform"),
        "{}",
        uniform.label()
    );
    assert_eq!(
        resolved(MethodName::Trades, AttackStart::None)
            .training_attack()
            .unwrap()
            .start,
        Start::None
    );
    assert_eq!(
        resolved(MethodName::Kd, AttackStart::Uniform).training_attack(),
        None
    );

    // The first iterate of each start, on real images and a fresh student.
    let device = compute_device();
    let model = Model::build(ModelSpec::native(Arch::MicroCnn, 10), 1, &device).unwrap();
    let (x, y) =
        rslad_tui::tensor_util::batch_tensors(&data.test, &(0..32).collect::<Vec<_>>(), &device);
    let first_iterate = |method: &Method| {
        let config = PgdConfig {
            steps: 0,
            ..*method.training_attack().unwrap()
        };
        let adversarial = attack::pgd(
            &model,
            &x,
            &Target::labels(y.clone()),
            &config,
            &mut StdRng::seed_from_u64(7),
        )
        .adversarial;
        (adversarial - x.clone()).abs().max().into_scalar::<f32>()
    };
    let gaussian = first_iterate(&reference);
    let spread = first_iterate(&uniform);
    assert!(
        gaussian > 0.0 && gaussian < 0.01,
        "gaussian start: max |δ| {gaussian}"
    );
    assert!(
        spread > 0.25 && spread <= 0.3 + 1e-6,
        "uniform start: max |δ| {spread}"
    );
}

/// Adam uses PyTorch's ε = 1e-8 (burn's default is 1e-5): with gradients of about 1e-6 the
/// first step moves each weight by almost the learning rate, as `torch.optim.Adam` does,
/// where ε = 1e-5 would move it by under a tenth of it.
#[test]
fn adam_uses_pytorchs_epsilon() {
    use burn::optim::GradientsParams;
    let device = autodiff_device();
    let model = Model::build(ModelSpec::native(Arch::MicroCnn, 10), 3, &device).unwrap();
    let before = named_tensors(&model);
    let data = embedded_mnist();
    let (x, _) =
        rslad_tui::tensor_util::batch_tensors(&data.test, &(0..8).collect::<Vec<_>>(), &device);
    let loss = model.forward(x).sum().mul_scalar(1e-6);
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let config = OptimizerConfig {
        kind: OptimizerKind::Adam,
        learning_rate: 1e-3,
        weight_decay: 0.0,
        milestones: Vec::new(),
        gamma: 1.0,
    };
    let after = named_tensors(&config.build().step(1e-3, model, grads));
    let (name, (_, weights)) = before
        .iter()
        .find(|(name, _)| name.ends_with("weight") && !name.contains("bn"))
        .unwrap();
    let mut moved: Vec<f32> = weights
        .iter()
        .zip(&after[name].1)
        .map(|(a, b)| (a - b).abs() / 1e-3)
        .collect();
    moved.sort_by(f32::total_cmp);
    let median = moved[moved.len() / 2];
    assert!(
        median > 0.8 && median <= 1.0 + 1e-3,
        "{name}: median step {median} of lr"
    );
}
