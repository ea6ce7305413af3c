//! Training objectives. Each method says what its inner attack maximises and what the outer
//! loss is (methods spec §1); the attack is part of the method (its loss, start and batch-norm
//! mode), so a method cannot be paired with the wrong attack.

use super::bn_stats::BnStats;
use super::objectives;
use crate::attack::{self, AttackLoss, BnMode, PgdConfig, Selection, Start, Target};
use crate::loss::{self, soft_label};
use crate::zoo::Model;
use burn::prelude::*;
use burn::tensor::Int;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Method {
    /// CE(S(x), y).
    Natural,
    /// Madry PGD adversarial training: x′ maximises CE(S(x′), y); loss CE(S(x′), y).
    Sat { attack: PgdConfig, bn_mode: BnMode },
    /// TRADES: x′ maximises KL(p(S(x)) ‖ p(S(x′))) from x + 0.001·N(0, 1), student in eval
    /// mode; loss CE(S(x), y) + β · KL(p(S(x)) ‖ p(S(x′))).
    Trades {
        attack: PgdConfig,
        beta: f32,
        /// Which of the two training-mode forwards update the batch-norm running statistics
        /// (both in the reference; cards from before the option read as both).
        #[serde(default)]
        bn_stats: BnStats,
    },
    /// Hinton's knowledge distillation on natural images only.
    Kd { alpha: f32, temperature: f32 },
    /// ARD: x′ maximises CE(S(x′), y) from a uniform start with the student's batch norm in
    /// train mode; loss α·τ²·KL(p(T(x)/τ) ‖ p(S(x′)/τ)) + (1 − α)·CE(S(x), y).
    Ard {
        attack: PgdConfig,
        alpha: f32,
        temperature: f32,
        /// The KL term's factor: 1/classes reproduces ARD's code (`nn.KLDivLoss()` averages
        /// over batch × classes). Checkpoints from before it existed trained with 1.
        #[serde(default = "unit_scale")]
        kl_scale: f32,
    },
    /// IAD: ARD's attack and loss, plus α·(1 − w)·KL(p(S(x)) ‖ p(S(x′))) with
    /// w = p(T(x′))_y^β from epoch `warmup_epochs` on (0-based).
    Iad {
        attack: PgdConfig,
        alpha: f32,
        temperature: f32,
        beta: f32,
        warmup_epochs: usize,
    },
    /// RSLAD: x′ maximises KL(p(T(x)) ‖ p(S(x′))) from x + 0.001·N(0, 1), student in eval
    /// mode; loss scale·[α·KL(p(T(x)) ‖ p(S(x′))) + (1 − α)·KL(p(T(x)) ‖ p(S(x)))].
    Rslad {
        attack: PgdConfig,
        alpha: f32,
        scale: f32,
        /// As TRADES' `bn_stats`.
        #[serde(default)]
        bn_stats: BnStats,
    },
}

/// One training batch as a method sees it.
pub struct Batch<'a> {
    /// The student, on the autodiff device, in train mode.
    pub model: &'a Model,
    /// The teacher in eval mode ([`attack::eval_view`]), for the distillation methods.
    pub teacher: Option<&'a Model>,
    pub images: &'a Tensor<4>,
    pub labels: &'a Tensor<1, Int>,
    /// The teacher's logits on `images` where the trainer already has them (kept from an
    /// earlier epoch, or just computed for keeping: the same bits); `None`: the method asks
    /// the teacher.
    pub teacher_natural: Option<Tensor<2>>,
    /// 0-based epoch (IAD switches its introspection term on after a warm-up).
    pub epoch: usize,
    /// In [0, 1]: shrinks the training attack's ε and step size together (ε warm-up).
    pub epsilon_scale: f32,
}

impl Method {
    pub fn name(&self) -> &'static str {
        match self {
            Method::Natural => "natural",
            Method::Sat { .. } => "sat",
            Method::Trades { .. } => "trades",
            Method::Kd { .. } => "kd",
            Method::Ard { .. } => "ard",
            Method::Iad { .. } => "iad",
            Method::Rslad { .. } => "rslad",
        }
    }

    /// The method and its main hyper-parameters, for the status line.
    pub fn short_label(&self) -> String {
        match self {
            Method::Natural | Method::Sat { .. } => self.name().to_string(),
            Method::Trades { beta, .. } => format!("trades β={beta}"),
            Method::Kd { alpha, .. } | Method::Ard { alpha, .. } | Method::Iad { alpha, .. } => {
                format!("{} α={alpha:.2}", self.name())
            }
            Method::Rslad { alpha, .. } => format!("rslad α={alpha:.3}"),
        }
    }

    /// The method and all its hyper-parameters, for logs and session settings; a training
    /// attack started elsewhere than the reference code starts it is named.
    pub fn label(&self) -> String {
        let start = match (self.training_attack(), self.reference_start()) {
            (Some(attack), Some(reference)) if attack.start != reference => {
                format!(", start {}", start_name(attack.start))
            }
            _ => String::new(),
        };
        let bn_stats = match self.bn_stats() {
            Some(mode) if mode != BnStats::Both => format!(", bn-stats {}", mode.name()),
            _ => String::new(),
        };
        self.base_label() + &start + &bn_stats
    }

    /// Which forwards update the batch-norm running statistics, for the two-forward methods
    /// whose attack runs in eval mode (TRADES and RSLAD).
    pub fn bn_stats(&self) -> Option<BnStats> {
        match self {
            Method::Trades { bn_stats, .. } | Method::Rslad { bn_stats, .. } => Some(*bn_stats),
            _ => None,
        }
    }

    /// The training attack, for the adversarial methods.
    pub fn training_attack(&self) -> Option<&PgdConfig> {
        match self {
            Method::Natural | Method::Kd { .. } => None,
            Method::Sat { attack, .. }
            | Method::Trades { attack, .. }
            | Method::Ard { attack, .. }
            | Method::Iad { attack, .. }
            | Method::Rslad { attack, .. } => Some(attack),
        }
    }

    /// Where the reference code starts the method's training attack.
    pub fn reference_start(&self) -> Option<Start> {
        match self {
            Method::Natural | Method::Kd { .. } => None,
            Method::Sat { .. } | Method::Ard { .. } | Method::Iad { .. } => Some(Start::Uniform),
            Method::Trades { .. } | Method::Rslad { .. } => Some(Start::SmallGaussian),
        }
    }

    /// Starts the training attack at `start` instead (no effect on methods without one).
    pub fn set_training_start(&mut self, start: Start) {
        match self {
            Method::Natural | Method::Kd { .. } => {}
            Method::Sat { attack, .. }
            | Method::Trades { attack, .. }
            | Method::Ard { attack, .. }
            | Method::Iad { attack, .. }
            | Method::Rslad { attack, .. } => attack.start = start,
        }
    }

    fn base_label(&self) -> String {
        match self {
            Method::Natural => "natural".into(),
            Method::Sat { attack, .. } => format!("sat PGD-{}", attack.steps),
            Method::Trades { attack, beta, .. } => {
                format!("trades β={beta} PGD-{}", attack.steps)
            }
            Method::Kd { alpha, temperature } => format!("kd α={alpha:.3} τ={temperature}"),
            Method::Ard {
                attack,
                alpha,
                temperature,
                kl_scale,
            } => format!(
                "ard α={alpha:.3} τ={temperature} KL ×{kl_scale} PGD-{}",
                attack.steps
            ),
            Method::Iad {
                attack,
                alpha,
                temperature,
                beta,
                warmup_epochs,
            } => format!(
                "iad α={alpha:.3} τ={temperature} β={beta} warm-up {warmup_epochs} PGD-{}",
                attack.steps
            ),
            Method::Rslad {
                attack,
                alpha,
                scale,
                ..
            } => format!("rslad α={alpha:.3} scale {scale} PGD-{}", attack.steps),
        }
    }

    /// Whether the method distils from a teacher.
    pub fn needs_teacher(&self) -> bool {
        matches!(
            self,
            Method::Kd { .. } | Method::Ard { .. } | Method::Iad { .. } | Method::Rslad { .. }
        )
    }

    /// The attack of TRADES and RSLAD: start x + 0.001·N(0, 1), KL to a soft label.
    pub fn kl_attack(epsilon: f32, step_size: f32, steps: usize) -> PgdConfig {
        PgdConfig {
            epsilon,
            step_size,
            steps,
            loss: AttackLoss::KlToTarget,
            start: Start::SmallGaussian,
            selection: Selection::Last,
        }
    }

    /// The attack of SAT, ARD and IAD: cross-entropy from a uniform start.
    pub fn ce_attack(epsilon: f32, step_size: f32, steps: usize) -> PgdConfig {
        PgdConfig {
            epsilon,
            step_size,
            steps,
            loss: AttackLoss::CrossEntropy,
            start: Start::Uniform,
            selection: Selection::Last,
        }
    }

    /// The batch's mean loss on the autodiff graph of the student, and the logits whose
    /// accuracy the trainer reports (adversarial ones for the adversarial methods).
    ///
    /// Panics if a distillation method gets no teacher; [`super::Trainer::new`] refuses that
    /// combination up front.
    pub fn loss(&self, batch: &Batch, rng: &mut StdRng) -> (Tensor<1>, Tensor<2>) {
        let model = batch.model;
        let natural = || model.forward(batch.images.clone().autodiff());
        let labels = batch.labels.clone();
        match self {
            Method::Natural => {
                let logits = natural();
                (loss::cross_entropy(logits.clone(), labels).mean(), logits)
            }
            Method::Sat { attack, bn_mode } => {
                let view = attack::view(model, *bn_mode);
                let x_adv = self.attack(&view, batch, attack, Target::labels(labels.clone()), rng);
                let logits = model.forward(x_adv);
                (loss::cross_entropy(logits.clone(), labels).mean(), logits)
            }
            Method::Trades {
                attack,
                beta,
                bn_stats,
            } => {
                let view = attack::eval_view(model);
                let own = soft_label(view.forward(batch.images.clone()), 1.0);
                let x_adv = self.attack(&view, batch, attack, Target::soft(own), rng);
                let (adversarial, natural) =
                    bn_stats.two_forwards(model, x_adv, batch.images.clone().autodiff(), || {
                        strong_attack(batch, attack, rng)
                    });
                let loss = objectives::trades(natural, adversarial.clone(), labels, *beta);
                (loss.mean(), adversarial)
            }
            Method::Kd { alpha, temperature } => {
                let teacher = natural_teacher_logits(batch);
                let student = natural();
                let loss = objectives::kd(student.clone(), teacher, labels, *alpha, *temperature);
                (loss.mean(), student)
            }
            Method::Ard {
                attack,
                alpha,
                temperature,
                kl_scale,
            } => {
                let view = attack::train_view(model);
                let x_adv = self.attack(&view, batch, attack, Target::labels(labels.clone()), rng);
                let teacher = natural_teacher_logits(batch);
                let adversarial = model.forward(x_adv);
                let loss = objectives::ard(
                    natural(),
                    adversarial.clone(),
                    teacher,
                    labels,
                    *alpha,
                    *temperature,
                    *kl_scale,
                );
                (loss.mean(), adversarial)
            }
            Method::Iad {
                attack,
                alpha,
                temperature,
                beta,
                warmup_epochs,
            } => {
                let view = attack::train_view(model);
                let x_adv = self.attack(&view, batch, attack, Target::labels(labels.clone()), rng);
                let teacher_natural = natural_teacher_logits(batch);
                let teacher_adversarial = teacher_logits(batch, &x_adv.clone().without_autodiff());
                let adversarial = model.forward(x_adv);
                let loss = objectives::iad(
                    natural(),
                    adversarial.clone(),
                    teacher_natural,
                    teacher_adversarial,
                    labels,
                    *alpha,
                    *temperature,
                    *beta,
                    batch.epoch >= *warmup_epochs,
                );
                (loss.mean(), adversarial)
            }
            Method::Rslad {
                attack,
                alpha,
                scale,
                bn_stats,
            } => {
                // The teacher's soft label on the natural image: the attack's target and both
                // terms' target.
                let teacher = natural_teacher_logits(batch);
                let soft = soft_label(teacher.clone(), 1.0);
                let view = attack::eval_view(model);
                let x_adv = self.attack(&view, batch, attack, Target::soft(soft), rng);
                // Only `bn-stats strong` reads the true labels, for the statistics' attack.
                let (adversarial, natural) =
                    bn_stats.two_forwards(model, x_adv, batch.images.clone().autodiff(), || {
                        strong_attack(batch, attack, rng)
                    });
                let loss = objectives::rslad(natural, adversarial.clone(), teacher, *alpha, *scale);
                (loss.mean(), adversarial)
            }
        }
    }

    /// The training attack at the batch's ε scale, as an autodiff input for the outer loss.
    fn attack(
        &self,
        view: &Model,
        batch: &Batch,
        config: &PgdConfig,
        target: Target,
        rng: &mut StdRng,
    ) -> Tensor<4> {
        let scaled = PgdConfig {
            epsilon: config.epsilon * batch.epsilon_scale,
            step_size: config.step_size * batch.epsilon_scale,
            ..*config
        };
        attack::pgd(view, batch.images, &target, &scaled, rng)
            .adversarial
            .autodiff()
    }
}

/// The points whose statistics [`BnStats::Strong`] keeps: the batch attacked as SAT attacks
/// it (cross-entropy, uniform start) with the training attack's ε, step size and steps at the
/// batch's ε scale, against the student in eval mode.
fn strong_attack(batch: &Batch, training: &PgdConfig, rng: &mut StdRng) -> Tensor<4> {
    let config = Method::ce_attack(
        training.epsilon * batch.epsilon_scale,
        training.step_size * batch.epsilon_scale,
        training.steps,
    );
    let view = attack::eval_view(batch.model);
    let target = Target::labels(batch.labels.clone());
    attack::pgd(&view, batch.images, &target, &config, rng).adversarial
}

fn unit_scale() -> f32 {
    1.0
}

/// A start as the `start=` option names it.
fn start_name(start: Start) -> &'static str {
    match start {
        Start::None => "none",
        Start::Uniform => "uniform",
        Start::SmallGaussian => "gaussian",
    }
}

/// The teacher's logits on the batch's natural images: the trainer's, or the teacher's.
fn natural_teacher_logits(batch: &Batch) -> Tensor<2> {
    match &batch.teacher_natural {
        Some(logits) => logits.clone(),
        None => teacher_logits(batch, batch.images),
    }
}

/// The teacher's logits, detached (the teacher is held in eval mode).
fn teacher_logits(batch: &Batch, images: &Tensor<4>) -> Tensor<2> {
    let teacher = batch
        .teacher
        .expect("a distillation method needs a teacher (checked by Trainer::new)");
    teacher_forward(teacher, images)
}

/// The one way the teacher's logits are computed, here and for the trainer's kept ones
/// ([`super::teacher_logits`]), which must have the same bits.
pub(super) fn teacher_forward(teacher: &Model, images: &Tensor<4>) -> Tensor<2> {
    teacher.forward(images.clone()).detach()
}
