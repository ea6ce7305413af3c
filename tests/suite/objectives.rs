//! The distillation and TRADES objectives: each loss against values computed by hand (in
//! float64, outside this code), RSLAD's independence from the labels, the batch-norm mode of
//! each method's attack, and a short RSLAD run that makes a student more robust.

use crate::common::{embedded_mnist, micro_cnn};
use burn::prelude::*;
use burn::tensor::{Int, TensorData};
use rand::{SeedableRng, rngs::StdRng};
use rslad_tui::attack::{self, BnMode, Target};
use rslad_tui::checkpoint::named_tensors;
use rslad_tui::data::Dataset;
use rslad_tui::device::compute_device;
use rslad_tui::eval::{self, EvalAttack};
use rslad_tui::progress::Silent;
use rslad_tui::tensor_util::{labels, to_vec};
use rslad_tui::train::{
    Batch, BnStats, Method, OptimizerConfig, OptimizerKind, TrainConfig, Trainer, objectives,
};
use rslad_tui::zoo::{Arch, Model, ModelSpec};
use std::sync::atomic::AtomicBool;

fn logits(rows: [[f32; 3]; 2]) -> Tensor<2> {
    let flat: Vec<f32> = rows.iter().flatten().copied().collect();
    Tensor::from_data(TensorData::new(flat, [2, 3]), &compute_device())
}

fn ints(values: &[i64]) -> Tensor<1, Int> {
    labels(values, &compute_device())
}

// Logits shared by the hand computations (see the Python-style formulas in each test).
fn natural() -> Tensor<2> {
    logits([[2.0, 0.5, -1.0], [0.0, 1.0, 0.3]])
}
fn adversarial() -> Tensor<2> {
    logits([[0.5, 1.5, -0.5], [0.2, 0.1, 0.9]])
}
fn teacher() -> Tensor<2> {
    logits([[3.0, 0.0, -2.0], [-1.0, 2.0, 1.0]])
}
fn teacher_adversarial() -> Tensor<2> {
    logits([[1.0, 0.5, 0.0], [0.0, 0.5, 2.5]])
}

fn assert_close(actual: Tensor<1>, expected: [f32; 2]) {
    let actual = to_vec(actual);
    for (a, e) in actual.iter().zip(expected) {
        assert!((a - e).abs() < 1e-5, "{actual:?} vs {expected:?}");
    }
}

#[test]
fn trades_matches_hand_computation() {
    // CE(nat, y) + 6 · KL(p(nat) ‖ p(adv)).
    let loss = objectives::trades(natural(), adversarial(), ints(&[0, 1]), 6.0);
    assert_close(loss, [4.140_372_5, 1.980_190_6]);
}

#[test]
fn kd_matches_hand_computation() {
    // 0.1 · CE(nat, y) + 0.9 · 4² · KL(p(T/4) ‖ p(nat/4)).
    let loss = objectives::kd(natural(), teacher(), ints(&[0, 1]), 0.9, 4.0);
    assert_close(loss, [0.357_059_8, 0.353_145_2]);
}

#[test]
fn ard_matches_hand_computation() {
    // 0.7 · 3² · KL(p(T/3) ‖ p(adv/3)) + 0.3 · CE(nat, y).
    let ard = |scale| {
        objectives::ard(
            natural(),
            adversarial(),
            teacher(),
            ints(&[0, 1]),
            0.7,
            3.0,
            scale,
        )
    };
    assert_close(ard(1.0), [1.432_294_6, 0.707_944_7]);
    // ARD's code averages the KL over batch × classes: the KL term divided by 3 here.
    assert_close(ard(1.0 / 3.0), [0.525_693_8, 0.360_576_4]);
}

#[test]
fn iad_matches_hand_computation_and_is_ard_during_the_warm_up() {
    // ARD + 0.7 · (1 − p(T(x′))_y^0.1) · KL(p(nat) ‖ p(adv)).
    let iad = |introspection| {
        objectives::iad(
            natural(),
            adversarial(),
            teacher(),
            teacher_adversarial(),
            ints(&[0, 1]),
            0.7,
            3.0,
            0.1,
            introspection,
        )
    };
    assert_close(iad(true), [1.462_210_3, 0.739_172_7]);
    assert_close(iad(false), [1.432_294_6, 0.707_944_7]);
}

#[test]
fn rslad_matches_hand_computation() {
    // 0.1 · [5/6 · KL(p(T) ‖ p(adv)) + 1/6 · KL(p(T) ‖ p(nat))].
    let loss = objectives::rslad(natural(), adversarial(), teacher(), 5.0 / 6.0, 0.1);
    assert_close(loss, [0.096_599_5, 0.047_161_0]);
}

#[test]
fn teacher_logits_get_no_gradient() {
    let teacher = teacher().autodiff().require_grad();
    let student = natural().autodiff().require_grad();
    let loss = objectives::rslad(
        student.clone(),
        adversarial().autodiff(),
        teacher.clone(),
        0.8,
        1.0,
    );
    let grads = loss.sum().backward();
    assert!(
        teacher.grad(&grads).is_none(),
        "the teacher must not be trained"
    );
    assert!(student.grad(&grads).is_some());
}

fn first_images(data: &Dataset, n: usize) -> (Tensor<4>, Vec<i64>) {
    let indices: Vec<usize> = (0..n).collect();
    let (x, _) = rslad_tui::tensor_util::batch_tensors(&data.train, &indices, &compute_device());
    let y = indices
        .iter()
        .map(|&i| i64::from(data.train.labels[i]))
        .collect();
    (x, y)
}

fn rslad(steps: usize) -> Method {
    Method::Rslad {
        attack: Method::kl_attack(0.3, 0.1, steps),
        alpha: 5.0 / 6.0,
        scale: 0.1,
        bn_stats: BnStats::Both,
    }
}

fn ard(steps: usize) -> Method {
    Method::Ard {
        attack: Method::ce_attack(0.3, 0.1, steps),
        alpha: 0.9,
        temperature: 30.0,
        kl_scale: 0.1,
    }
}

#[test]
fn rslad_never_reads_the_labels() {
    let data = embedded_mnist();
    let (x, y) = first_images(&data, 16);
    let mut permuted = y.clone();
    permuted.rotate_left(5);
    assert_ne!(y, permuted);
    let teacher = attack::eval_view(&micro_cnn(1));
    let run = |labels_: &[i64]| {
        let student = micro_cnn(2);
        let batch = Batch {
            model: &student,
            teacher: Some(&teacher),
            images: &x,
            labels: &labels(labels_, &compute_device()),
            teacher_natural: None,
            epoch: 0,
            epsilon_scale: 1.0,
        };
        let mut rng = StdRng::seed_from_u64(3);
        let (loss, adversarial_logits) = rslad(3).loss(&batch, &mut rng);
        (to_vec(loss.detach()), to_vec(adversarial_logits.detach()))
    };
    assert_eq!(run(&y), run(&permuted));
    // ARD, which does use them, changes.
    let ard_run = |labels_: &[i64]| {
        let student = micro_cnn(2);
        let batch = Batch {
            model: &student,
            teacher: Some(&teacher),
            images: &x,
            labels: &labels(labels_, &compute_device()),
            teacher_natural: None,
            epoch: 0,
            epsilon_scale: 1.0,
        };
        to_vec(
            ard(3)
                .loss(&batch, &mut StdRng::seed_from_u64(3))
                .0
                .detach(),
        )
    };
    assert_ne!(ard_run(&y), ard_run(&permuted));
}

/// The model's batch-norm running statistics, in a fixed order.
fn running_stats(model: &Model) -> Vec<f32> {
    named_tensors(model)
        .into_iter()
        .filter(|(name, _)| name.contains("running"))
        .flat_map(|(_, (_, values))| values)
        .collect()
}

#[test]
fn each_bn_stats_mode_remembers_only_the_forwards_it_names() {
    let (x, _) = first_images(&embedded_mnist(), 32);
    // A second batch with other statistics, standing for the adversarial one.
    let shifted = x.clone().mul_scalar(0.5).add_scalar(0.3);
    // A third, for the strong attack's points of `BnStats::Strong`.
    let strong = x.clone().mul_scalar(0.8).add_scalar(0.1);
    let run = |mode: BnStats| {
        let student = micro_cnn(4);
        let asked = std::cell::Cell::new(false);
        let (adversarial, natural) = mode.two_forwards(
            &student,
            shifted.clone().autodiff(),
            x.clone().autodiff(),
            || {
                asked.set(true);
                strong.clone()
            },
        );
        assert_eq!(asked.get(), mode == BnStats::Strong, "{mode:?}");
        let logits = [adversarial, natural].map(|l| to_vec(l.detach()));
        (running_stats(&student), logits)
    };
    // The same student running only the named forwards, in the reference's order.
    let only = |inputs: &[&Tensor<4>]| {
        let student = micro_cnn(4);
        for input in inputs {
            let _ = student.forward((*input).clone().autodiff());
        }
        running_stats(&student)
    };
    let (both, both_logits) = run(BnStats::Both);
    let (adversarial, adversarial_logits) = run(BnStats::Adversarial);
    let (natural, natural_logits) = run(BnStats::Natural);
    let (strong_stats, strong_logits) = run(BnStats::Strong);
    assert_eq!(both, only(&[&shifted, &x]));
    assert_eq!(adversarial, only(&[&shifted]));
    assert_eq!(natural, only(&[&x]));
    assert_eq!(strong_stats, only(&[&strong]));
    assert_ne!(strong_stats, adversarial);
    assert_ne!(
        adversarial, natural,
        "the two batches must differ for this test"
    );
    assert_ne!(both, adversarial);
    // Each forward normalises with its own batch whatever is remembered: same logits.
    assert_eq!(adversarial_logits, both_logits);
    assert_eq!(natural_logits, both_logits);
    assert_eq!(strong_logits, both_logits);
}

#[test]
fn rslad_and_trades_pass_their_bn_stats_mode_to_the_training_step() {
    let data = embedded_mnist();
    let (x, _) = first_images(&data, 32);
    // With ε scaled to 0 the adversarial points are the natural ones, so a mode that keeps one
    // forward leaves the statistics of one train-mode forward on x, and `both` those of two.
    let once = {
        let student = micro_cnn(4);
        let _ = student.forward(x.clone().autodiff());
        running_stats(&student)
    };
    // Strong's own attack has ε scaled to 0 as well: its one forward is on x too.
    for mode in [BnStats::Adversarial, BnStats::Natural, BnStats::Strong] {
        let with_mode = |method: Method| running_stats_after(&method, &data);
        let rslad = Method::Rslad {
            attack: Method::kl_attack(0.3, 0.1, 2),
            alpha: 5.0 / 6.0,
            scale: 0.1,
            bn_stats: mode,
        };
        let trades = Method::Trades {
            attack: Method::kl_attack(0.3, 0.1, 2),
            beta: 1.0,
            bn_stats: mode,
        };
        assert_eq!(with_mode(rslad), once, "rslad, {mode:?}");
        assert_eq!(with_mode(trades), once, "trades, {mode:?}");
    }
    assert_ne!(running_stats_after(&rslad(2), &data), once);
}

/// With `bn-stats strong` the statistics after an RSLAD step at full ε are those of one
/// training-mode forward on SAT's attack of the batch (cross-entropy, uniform start, the
/// training attack's ε, step size and steps, the student in eval mode), made after RSLAD's own
/// attack from the same random stream, and they differ from those of x and of RSLAD's x′.
#[test]
fn bn_stats_strong_keeps_the_statistics_of_a_sat_attack_of_the_batch() {
    // At full ε and during the warm-up (half of it): the statistics' attack is scaled as the
    // training attack is.
    for epsilon_scale in [1.0, 0.5] {
        strong_statistics_at(epsilon_scale);
    }
}

fn strong_statistics_at(epsilon_scale: f32) {
    let data = embedded_mnist();
    let (x, y) = first_images(&data, 32);
    let y = labels(&y, &compute_device());
    let teacher = attack::eval_view(&micro_cnn(5));
    let training = Method::kl_attack(0.3, 0.1, 3);
    let student = micro_cnn(4);
    let method = Method::Rslad {
        attack: training,
        alpha: 5.0 / 6.0,
        scale: 0.1,
        bn_stats: BnStats::Strong,
    };
    let batch = Batch {
        model: &student,
        teacher: Some(&teacher),
        images: &x,
        labels: &y,
        teacher_natural: None,
        epoch: 0,
        epsilon_scale,
    };
    let _ = method.loss(&batch, &mut StdRng::seed_from_u64(6));

    // The same two attacks by hand, on a fresh copy of the student.
    let (epsilon, step) = (0.3 * epsilon_scale, 0.1 * epsilon_scale);
    let fresh = micro_cnn(4);
    let view = attack::eval_view(&fresh);
    let mut rng = StdRng::seed_from_u64(6);
    let soft = rslad_tui::loss::soft_label(teacher.forward(x.clone()), 1.0);
    let own = Method::kl_attack(epsilon, step, 3);
    let x_adv = attack::pgd(&view, &x, &Target::soft(soft), &own, &mut rng).adversarial;
    let sat = Method::ce_attack(epsilon, step, 3);
    let strong = attack::pgd(&view, &x, &Target::labels(y.clone()), &sat, &mut rng).adversarial;
    let max_offset = to_vec((strong.clone() - x.clone()).abs().max());
    assert!(
        max_offset[0] <= epsilon + 1e-6 && max_offset[0] > epsilon / 3.0,
        "{epsilon_scale}: {max_offset:?}"
    );
    let stats_of = |input: &Tensor<4>| {
        let copy = micro_cnn(4);
        let _ = copy.forward(input.clone().autodiff());
        running_stats(&copy)
    };
    let kept = running_stats(&student);
    assert_eq!(kept, stats_of(&strong), "{epsilon_scale}");
    assert_ne!(kept, stats_of(&x));
    assert_ne!(kept, stats_of(&x_adv));
}

/// A student without batch norm has no statistics to keep: `strong` is then the reference's
/// two forwards, with no third attack drawing from the random stream.
#[test]
fn bn_stats_strong_on_a_student_without_batch_norm_is_the_reference() {
    let data = embedded_mnist();
    let (x, y) = first_images(&data, 32);
    let y = labels(&y, &compute_device());
    let student = Model::build(
        ModelSpec::native(Arch::Mlp, 10),
        4,
        &rslad_tui::device::autodiff_device(),
    )
    .unwrap();
    let trades = |bn_stats| Method::Trades {
        attack: Method::kl_attack(0.3, 0.1, 3),
        beta: 6.0,
        bn_stats,
    };
    let batch = Batch {
        model: &student,
        teacher: None,
        images: &x,
        labels: &y,
        teacher_natural: None,
        epoch: 0,
        epsilon_scale: 1.0,
    };
    let run = |bn_stats| {
        let mut rng = StdRng::seed_from_u64(6);
        let (loss, _) = trades(bn_stats).loss(&batch, &mut rng);
        (to_vec(loss), rand::RngCore::next_u64(&mut rng))
    };
    assert_eq!(run(BnStats::Strong), run(BnStats::Both));
}

/// The student's running batch-norm statistics after one loss evaluation with the attack's
/// ε scaled to 0: the adversarial points are then the natural ones whatever the number of
/// attack steps, so any difference in the running statistics comes from the attack's own
/// forward passes.
fn running_stats_after(method: &Method, data: &Dataset) -> Vec<f32> {
    let (x, y) = first_images(data, 32);
    let student = micro_cnn(4);
    let teacher = attack::eval_view(&micro_cnn(5));
    let batch = Batch {
        model: &student,
        teacher: Some(&teacher),
        images: &x,
        labels: &labels(&y, &compute_device()),
        teacher_natural: None,
        epoch: 0,
        epsilon_scale: 0.0,
    };
    let _ = method.loss(&batch, &mut StdRng::seed_from_u64(6));
    running_stats(&student)
}

#[test]
fn ard_attacks_in_train_mode_and_rslad_in_eval_mode() {
    let data = embedded_mnist();
    let rslad_without = running_stats_after(&rslad(0), &data);
    let rslad_with = running_stats_after(&rslad(4), &data);
    assert!(!rslad_without.is_empty());
    assert_eq!(
        rslad_without, rslad_with,
        "RSLAD's attack must leave the running statistics alone (eval mode)"
    );
    let ard_without = running_stats_after(&ard(0), &data);
    let ard_with = running_stats_after(&ard(4), &data);
    assert_ne!(
        ard_without, ard_with,
        "ARD's attack must update the running statistics (train mode)"
    );
    // TRADES attacks in eval mode too.
    let trades = |steps| Method::Trades {
        attack: Method::kl_attack(0.3, 0.1, steps),
        beta: 1.0,
        bn_stats: BnStats::Both,
    };
    assert_eq!(
        running_stats_after(&trades(0), &data),
        running_stats_after(&trades(4), &data)
    );
}

#[test]
fn a_short_rslad_run_makes_the_student_more_robust() {
    let data = embedded_mnist();
    let small = |train_n, epochs| TrainConfig {
        method: Method::Natural,
        optimizer: OptimizerConfig {
            kind: OptimizerKind::Sgd { momentum: 0.9 },
            learning_rate: 0.05,
            weight_decay: 0.0,
            milestones: Vec::new(),
            gamma: 0.1,
        },
        epochs,
        batch_size: 50,
        seed: 0,
        train_n: Some(train_n),
        eval_n: 0,
        eval_attack: None,
        epsilon_warmup_epochs: 0,
    };
    // A teacher: micro-cnn, natural training on 2,000 images.
    let mut teacher = Trainer::new(micro_cnn(10), small(2000, 1));
    teacher
        .run_epoch(&data, &Silent, &AtomicBool::new(false))
        .unwrap();

    let epsilon = 0.1;
    let student = micro_cnn(11);
    let test = data.test.take(200);
    let pgd = [EvalAttack::pgd(epsilon, 10, 0.025)];
    let before = eval::evaluate(&student, &test, &pgd, 0, &Silent).unwrap();

    let config = TrainConfig {
        method: Method::Rslad {
            attack: Method::kl_attack(epsilon, 0.025, 5),
            alpha: 5.0 / 6.0,
            scale: 1.0,
            bn_stats: BnStats::Both,
        },
        ..small(2000, 1)
    };
    let mut trainer = Trainer::with_teacher(student, teacher.model, config);
    trainer
        .run_epoch(&data, &Silent, &AtomicBool::new(false))
        .unwrap();
    let after = eval::evaluate(&trainer.model, &test, &pgd, 0, &Silent).unwrap();
    let robust = |r: &eval::RobustnessReport| r.attacks[0].robust_accuracy;
    assert!(
        robust(&after) > robust(&before) + 0.15,
        "PGD-10 accuracy at ε {epsilon}: {:.3} before, {:.3} after",
        robust(&before),
        robust(&after)
    );
}

#[test]
#[should_panic(expected = "needs a teacher")]
fn a_distillation_method_without_a_teacher_is_refused() {
    let config = TrainConfig {
        method: rslad(1),
        optimizer: OptimizerConfig {
            kind: OptimizerKind::Adam,
            learning_rate: 0.001,
            weight_decay: 0.0,
            milestones: Vec::new(),
            gamma: 0.1,
        },
        epochs: 1,
        batch_size: 8,
        seed: 0,
        train_n: None,
        eval_n: 0,
        eval_attack: None,
        epsilon_warmup_epochs: 0,
    };
    let _ = Trainer::new(micro_cnn(0), config);
}

/// Every trainable tensor of a fresh student moves in one step of each adversarial method,
/// batch-norm γ and β included (a train-mode attack view must not freeze parameters the
/// student has not materialised yet).
#[test]
fn one_step_of_each_method_trains_every_parameter() {
    let data = embedded_mnist();
    let teacher = micro_cnn(21);
    let methods = [
        Method::Sat {
            attack: Method::ce_attack(0.3, 0.1, 2),
            bn_mode: BnMode::Train,
        },
        Method::Sat {
            attack: Method::ce_attack(0.3, 0.1, 2),
            bn_mode: BnMode::Eval,
        },
        Method::Trades {
            attack: Method::kl_attack(0.3, 0.1, 2),
            beta: 1.0,
            bn_stats: BnStats::Natural,
        },
        ard(2),
        Method::Iad {
            attack: Method::ce_attack(0.3, 0.1, 2),
            alpha: 0.9,
            temperature: 30.0,
            beta: 0.1,
            warmup_epochs: 0,
        },
        rslad(2),
    ];
    for method in methods {
        let config = TrainConfig {
            method: method.clone(),
            optimizer: OptimizerConfig {
                kind: OptimizerKind::Sgd { momentum: 0.0 },
                learning_rate: 0.1,
                weight_decay: 0.0,
                milestones: Vec::new(),
                gamma: 0.1,
            },
            epochs: 1,
            batch_size: 32,
            seed: 0,
            train_n: Some(32),
            eval_n: 0,
            eval_attack: None,
            epsilon_warmup_epochs: 0,
        };
        let student = micro_cnn(22);
        let before = named_tensors(&student);
        let mut trainer = if method.needs_teacher() {
            Trainer::with_teacher(student, teacher.clone(), config)
        } else {
            Trainer::new(student, config)
        };
        trainer
            .run_epoch(&data, &Silent, &AtomicBool::new(false))
            .unwrap();
        let after = named_tensors(&trainer.model);
        for (name, (_, values)) in &before {
            if name.contains("running") {
                continue;
            }
            assert_ne!(
                values,
                &after[name].1,
                "{}: {name} did not change after a training step",
                method.name()
            );
        }
    }
}
