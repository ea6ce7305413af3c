//! Typed settings: what to train, on what, and how, as every front end and the engine share
//! them. The command line converts its clap arguments into [`TrainSettings`] once
//! (`TryFrom`), the workbench edits them command by command, and both hand them to
//! [`TrainSettings::resolve`] for the core's [`TrainConfig`]. Values are checked where they
//! enter ([`values`]), defaults live in [`defaults`], and nothing here knows a front end.

pub mod method;
pub mod values;

pub use method::{MethodName, MethodOption, MethodSettings, OptionError};
pub use values::{
    Count, Epsilon, Fraction, Gamma, LearningRate, Milestones, Momentum, NonNegative, Positive,
    StepSize, ValueError, WeightDecay,
};

use crate::attack::Start;
use crate::data::{self, DataSource, Dataset, DatasetKind};
use crate::eval::EvalAttack;
use crate::train::{Method, OptimizerConfig, OptimizerKind, TrainConfig};
use crate::zoo::{Arch, ModelSpec};
use anyhow::{Result, bail};

/// The one source of defaults: the command line's clap attributes name these, and
/// [`TrainSettings::default`] is built from them.
pub mod defaults {
    pub const DATASET: &str = "mnist";
    pub const DATA: &str = "embedded";
    pub const MODEL: &str = "small-cnn";
    pub const EPOCHS: usize = 10;
    pub const BATCH_SIZE: usize = 128;
    pub const LR: f64 = 0.01;
    pub const MOMENTUM: f64 = 0.9;
    pub const WEIGHT_DECAY: f32 = 0.0;
    pub const GAMMA: f64 = 0.1;
    pub const EPS_WARMUP: usize = 0;
    pub const SEED: u64 = 0;
    pub const EVAL_N: usize = 1000;
    pub const EVAL_STEPS: usize = 20;
}

/// Which optimizer, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OptimizerName {
    Sgd,
    Adam,
}

impl OptimizerName {
    pub fn name(self) -> &'static str {
        match self {
            OptimizerName::Sgd => "sgd",
            OptimizerName::Adam => "adam",
        }
    }
}

/// The attacks a user can name: `--attacks` of `eval`, `attack NAME` at the prompt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AttackName {
    Fgsm,
    Pgd,
    Cw,
    /// AutoAttack (standard version unless --version says otherwise).
    Autoattack,
}

impl AttackName {
    pub const ALL: [AttackName; 4] = [
        AttackName::Fgsm,
        AttackName::Pgd,
        AttackName::Cw,
        AttackName::Autoattack,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AttackName::Fgsm => "fgsm",
            AttackName::Pgd => "pgd",
            AttackName::Cw => "cw",
            AttackName::Autoattack => "autoattack",
        }
    }
}

/// Where the images come from.
#[derive(Clone, Debug, PartialEq)]
pub struct DataChoice {
    pub kind: DatasetKind,
    /// "embedded" or a folder, kept as typed (a session replayed elsewhere shows the same).
    pub source: DataSource,
}

impl DataChoice {
    pub fn embedded_mnist() -> DataChoice {
        DataChoice {
            kind: DatasetKind::Mnist,
            source: DataSource::Embedded,
        }
    }

    pub fn load(&self) -> Result<Dataset> {
        Ok(data::load(self.kind, &self.source)?)
    }
}

/// The training attack's numbers; `None` takes the data's default ([`attack_defaults`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AttackSettings {
    pub epsilon: Option<Epsilon>,
    pub step_size: Option<StepSize>,
    pub steps: Option<usize>,
    /// Grow ε linearly from 0 over this many epochs (0: off).
    pub eps_warmup: usize,
    /// Where the training attack starts.
    pub start: AttackStart,
}

/// Where the training attack's first iterate lies: the method's own choice (the reference
/// code's) or one forced for every method, to test what the start does (issue 20: a KL attack
/// started at x climbs towards over-confident points rather than the decision boundary).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum AttackStart {
    /// The method's reference start: x + 0.001·N(0, 1) for TRADES and RSLAD, uniform in the
    /// ε-ball for SAT, ARD and IAD.
    #[default]
    Reference,
    /// Uniform in the ε-ball.
    Uniform,
    /// x + 0.001·N(0, 1).
    Gaussian,
    /// The natural image itself.
    None,
}

impl AttackStart {
    pub const ALL: [AttackStart; 4] = [
        AttackStart::Reference,
        AttackStart::Uniform,
        AttackStart::Gaussian,
        AttackStart::None,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AttackStart::Reference => "reference",
            AttackStart::Uniform => "uniform",
            AttackStart::Gaussian => "gaussian",
            AttackStart::None => "none",
        }
    }

    pub fn from_name(name: &str) -> Option<AttackStart> {
        AttackStart::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The start forced on every method, or `None` for each method's own.
    pub fn forced(self) -> Option<Start> {
        match self {
            AttackStart::Reference => None,
            AttackStart::Uniform => Some(Start::Uniform),
            AttackStart::Gaussian => Some(Start::SmallGaussian),
            AttackStart::None => Some(Start::None),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct OptimizerSettings {
    pub kind: OptimizerName,
    pub lr: LearningRate,
    /// SGD only.
    pub momentum: Momentum,
    pub weight_decay: WeightDecay,
    pub milestones: Milestones,
    pub gamma: Gamma,
}

/// The per-epoch evaluation: PGD with `steps` steps on the first `n` test images.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalSettings {
    pub n: usize,
    /// 0: clean accuracy only.
    pub steps: usize,
}

/// Everything a training run is, before the data fills in the defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainSettings {
    pub data: DataChoice,
    pub student: Arch,
    pub method: MethodSettings,
    pub attack: AttackSettings,
    pub optimizer: OptimizerSettings,
    pub epochs: Count,
    pub batch_size: Count,
    pub seed: u64,
    /// Train on the first N training images only.
    pub train_n: Option<usize>,
    pub eval: EvalSettings,
}

impl Default for TrainSettings {
    /// `rslad-tui train`'s defaults.
    fn default() -> Self {
        let valid = "the defaults are valid";
        TrainSettings {
            data: DataChoice::embedded_mnist(),
            student: Arch::from_name(defaults::MODEL).expect(valid),
            method: MethodSettings::Natural,
            attack: AttackSettings {
                eps_warmup: defaults::EPS_WARMUP,
                ..AttackSettings::default()
            },
            optimizer: OptimizerSettings {
                kind: OptimizerName::Sgd,
                lr: LearningRate::new(defaults::LR).expect(valid),
                momentum: Momentum::new(defaults::MOMENTUM).expect(valid),
                weight_decay: WeightDecay::new(defaults::WEIGHT_DECAY).expect(valid),
                milestones: Milestones::default(),
                gamma: Gamma::new(defaults::GAMMA).expect(valid),
            },
            epochs: Count::new(defaults::EPOCHS).expect(valid),
            batch_size: Count::new(defaults::BATCH_SIZE).expect(valid),
            seed: defaults::SEED,
            train_n: None,
            eval: EvalSettings {
                n: defaults::EVAL_N,
                steps: defaults::EVAL_STEPS,
            },
        }
    }
}

/// Attack defaults that depend on the data scale (methods spec §1–2).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttackDefaults {
    pub epsilon: f32,
    pub step_size: f32,
    pub train_steps: usize,
    pub eval_steps: usize,
}

pub fn attack_defaults(kind: DatasetKind) -> AttackDefaults {
    match kind {
        DatasetKind::Mnist | DatasetKind::FashionMnist => AttackDefaults {
            epsilon: kind.default_epsilon(),
            step_size: 0.01,
            train_steps: 40,
            eval_steps: 40,
        },
        DatasetKind::Cifar10 | DatasetKind::Cifar100 => AttackDefaults {
            epsilon: kind.default_epsilon(),
            step_size: 2.0 / 255.0,
            train_steps: 10,
            eval_steps: 20,
        },
    }
}

impl TrainSettings {
    /// The attack radius in use: the setting, else the data's default.
    pub fn epsilon(&self) -> f32 {
        self.attack
            .epsilon
            .map_or(attack_defaults(self.data.kind).epsilon, Epsilon::get)
    }

    /// The training attack's step size in use.
    pub fn step_size(&self) -> f32 {
        self.attack
            .step_size
            .map_or(attack_defaults(self.data.kind).step_size, StepSize::get)
    }

    /// The student's architecture and the training configuration on `data`, every default
    /// filled in; refuses a student that does not take the data's images.
    pub fn resolve(&self, data: &Dataset) -> Result<(ModelSpec, TrainConfig)> {
        let spec = ModelSpec::native(self.student, data.kind.num_classes());
        check_fit(&spec, data)?;
        let epsilon = self.epsilon();
        let step_size = self.step_size();
        let steps = self
            .attack
            .steps
            .unwrap_or(attack_defaults(data.kind).train_steps);
        let mut method = self.method.resolve(
            data.kind,
            self.epochs.get(),
            Method::ce_attack(epsilon, step_size, steps),
            Method::kl_attack(epsilon, step_size, steps),
        );
        if let Some(start) = self.attack.start.forced() {
            method.set_training_start(start);
        }
        let o = &self.optimizer;
        let config = TrainConfig {
            method,
            optimizer: OptimizerConfig {
                kind: match o.kind {
                    OptimizerName::Sgd => OptimizerKind::Sgd {
                        momentum: o.momentum.get(),
                    },
                    OptimizerName::Adam => OptimizerKind::Adam,
                },
                learning_rate: o.lr.get(),
                weight_decay: o.weight_decay.get(),
                milestones: o.milestones.get().to_vec(),
                gamma: o.gamma.get(),
            },
            epochs: self.epochs.get(),
            batch_size: self.batch_size.get(),
            seed: self.seed,
            train_n: self.train_n,
            eval_n: self.eval.n,
            eval_attack: (self.eval.steps > 0)
                .then(|| EvalAttack::pgd(epsilon, self.eval.steps, step_size)),
            epsilon_warmup_epochs: self.attack.eps_warmup,
        };
        Ok((spec, config))
    }
}

/// Checks that the data fits the model, with a message that says how to fix it.
/// Refuses a checkpoint (`what`: "the checkpoint", "the teacher") whose card says it was
/// trained on other data than `kind`: MNIST and Fashion-MNIST images have the same shape, so
/// nothing else would stop it, and every number it gave would be meaningless.
pub fn check_trained_on(
    card: &crate::checkpoint::CheckpointCard,
    kind: DatasetKind,
    what: &str,
) -> Result<()> {
    let trained_on = card.dataset_name();
    if trained_on != kind.name() {
        bail!(
            "{what} was trained on {trained_on}, not {}: give --dataset {trained_on} (and --data \
             for its folder), or a {} {what_noun}",
            kind.name(),
            kind.name(),
            what_noun = what.trim_start_matches("the ")
        );
    }
    Ok(())
}

pub fn check_fit(spec: &ModelSpec, data: &Dataset) -> Result<()> {
    let set = &data.train;
    if set.channels != spec.in_channels || set.height != spec.image_size {
        bail!(
            "{} takes {}x{}x{} images but {} has {}x{}x{}; pick a model made for this data \
             (see `rslad-tui zoo`)",
            spec.arch,
            spec.in_channels,
            spec.image_size,
            spec.image_size,
            data.kind.name(),
            set.channels,
            set.height,
            set.width
        );
    }
    if set.num_classes != spec.num_classes {
        bail!(
            "{} was built for {} classes but {} has {}",
            spec.arch,
            spec.num_classes,
            data.kind.name(),
            set.num_classes
        );
    }
    Ok(())
}

/// Checks that a teacher takes the student's images and predicts the same classes.
pub fn check_teacher_fits(teacher: &ModelSpec, student: &ModelSpec) -> Result<()> {
    let t = teacher;
    if (t.in_channels, t.image_size, t.num_classes)
        != (student.in_channels, student.image_size, student.num_classes)
    {
        bail!(
            "the teacher ({}) takes {}×{}×{} images with {} classes, the student {}×{}×{} with {}",
            t.arch,
            t.in_channels,
            t.image_size,
            t.image_size,
            t.num_classes,
            student.in_channels,
            student.image_size,
            student.image_size,
            student.num_classes
        );
    }
    Ok(())
}
