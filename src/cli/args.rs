//! The training options as clap reads them, and their conversion into typed
//! [`TrainSettings`] (the only place they are checked); the data and checkpoint options the
//! commands share. The defaults are those of [`crate::settings::defaults`].

use crate::attack::BnMode;
use crate::checkpoint::CheckpointCard;
use crate::data::{DataSource, DatasetKind};
use crate::device::compute_device;
use crate::settings::{
    AttackSettings, AttackStart, Count, DataChoice, Epsilon, EvalSettings, Gamma, LearningRate,
    MethodName, MethodOption, MethodSettings, Milestones, Momentum, OptimizerName,
    OptimizerSettings, StepSize, TrainSettings, ValueError, WeightDecay, defaults,
};
use crate::train::BnStats;
use crate::zoo::{Arch, Model};
use anyhow::{Context, Result, bail};
use clap::Args;
use std::path::{Path, PathBuf};

#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// Dataset: mnist, fashion, cifar10 or cifar100.
    #[arg(long, default_value = defaults::DATASET)]
    pub dataset: String,
    /// Where the data comes from: "embedded" (the MNIST subset inside the program) or a folder
    /// laid out as scripts/fetch-data.sh writes it.
    #[arg(long, default_value = defaults::DATA)]
    pub data: String,
}

// The checkpoint a command reads (`eval`, `diagnose`). A plain comment: clap would show a doc
// comment here as the description of a command that flattens it and has none of its own.
#[derive(Args, Debug, Clone)]
pub struct CheckpointArgs {
    /// The checkpoint (its .safetensors or .ron file, or their common stem), or a shipped
    /// teacher: "embedded" (TRADES SmallCNN) or "embedded-sat".
    #[arg(long = "checkpoint", value_name = "CHECKPOINT")]
    pub path: PathBuf,
    /// Require the checkpoint to be this architecture.
    #[arg(long)]
    pub model: Option<String>,
}

impl CheckpointArgs {
    /// The checkpoint's model, on the compute device, and its card.
    pub fn load(&self) -> Result<(Model, CheckpointCard)> {
        let expected = self.model.as_deref().map(Arch::from_name).transpose()?;
        let (model, card) = load_checkpoint(&self.path, expected)?;
        // A shipped teacher is loaded by name, without the file check: check it here.
        if let Some(arch) = expected.filter(|&arch| arch != card.spec.arch) {
            bail!(
                "--checkpoint {} is a {}, not the --model {arch} asked for",
                self.path.display(),
                card.spec.arch
            );
        }
        Ok((model, card))
    }
}

/// A checkpoint file, or a shipped teacher by name, on the compute device.
pub(super) fn load_checkpoint(
    path: &Path,
    expected: Option<Arch>,
) -> Result<(Model, CheckpointCard)> {
    crate::teacher::shipped_or_checkpoint(path, expected, &compute_device())
        .context("cannot load the checkpoint")
}

impl TryFrom<&DataArgs> for DataChoice {
    type Error = anyhow::Error;

    fn try_from(args: &DataArgs) -> Result<DataChoice> {
        Ok(DataChoice {
            kind: DatasetKind::from_name(&args.dataset)?,
            source: DataSource::parse(&args.data),
        })
    }
}

/// `--eps` as given (checked), else `default`.
pub fn epsilon_or(given: Option<f32>, default: f32) -> Result<f32> {
    given.map_or(Ok(default), |eps| {
        Epsilon::new(eps)
            .map(Epsilon::get)
            .map_err(|e| anyhow::anyhow!(e.named("--eps")))
    })
}

/// The most steps `--steps` takes for an evaluation attack: 250 times PGD-40, hours per image
/// batch already; more is a typo, and would run with no sign of progress.
pub const MAX_ATTACK_STEPS: usize = 10_000;

/// `--steps` for an evaluation attack (checked: 1 to [`MAX_ATTACK_STEPS`]).
pub fn attack_steps(steps: usize) -> Result<usize> {
    if steps == 0 || steps > MAX_ATTACK_STEPS {
        anyhow::bail!("--steps must be between 1 and {MAX_ATTACK_STEPS}; got {steps}");
    }
    Ok(steps)
}

/// `--step-size` as given (checked), else `default`.
pub fn step_size_or(given: Option<f32>, default: f32) -> Result<f32> {
    given.map_or(Ok(default), |step| {
        StepSize::new(step)
            .map(StepSize::get)
            .map_err(|e| anyhow::anyhow!(e.named("--step-size")))
    })
}

#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Architecture from the zoo (see `rslad-tui zoo`).
    #[arg(long, default_value = defaults::MODEL)]
    pub model: String,
    /// Training method.
    #[arg(long, value_enum, default_value = "natural")]
    pub method: MethodName,
    #[command(flatten)]
    pub options: TrainingOptions,
    /// Checkpoint path (without extension); default runs/<model>-<method>.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace a checkpoint already at --out (without it, such a run is refused before it
    /// starts). A run that is stopped or diverges never replaces one.
    #[arg(long)]
    pub overwrite: bool,
    /// Go on with the run whose checkpoint is at --out (stopped, killed, or finished with
    /// fewer than --epochs epochs) from its last finished epoch, with the same settings and
    /// teacher: the result is the model one uninterrupted run would give. Every finished epoch
    /// is saved with the optimiser's state (`--out` + `.resume`) for this.
    #[arg(long, conflicts_with = "overwrite")]
    pub resume: bool,
}

/// Training options shared by `train` and `compare`.
#[derive(Args, Debug, Clone)]
pub struct TrainingOptions {
    #[arg(long, default_value_t = defaults::EPOCHS)]
    pub epochs: usize,
    #[arg(long, default_value_t = defaults::BATCH_SIZE)]
    pub batch_size: usize,
    #[arg(long, value_enum, default_value = "sgd")]
    pub optimizer: OptimizerName,
    /// Initial learning rate.
    #[arg(long, default_value_t = defaults::LR)]
    pub lr: f64,
    /// SGD momentum (0 for plain SGD).
    #[arg(long, default_value_t = defaults::MOMENTUM)]
    pub momentum: f64,
    /// L2 weight decay.
    #[arg(long, default_value_t = defaults::WEIGHT_DECAY)]
    pub weight_decay: f32,
    /// Comma-separated epochs at which the learning rate is multiplied by --gamma, e.g. 5,8.
    #[arg(long, value_delimiter = ',')]
    pub milestones: Vec<usize>,
    #[arg(long, default_value_t = defaults::GAMMA)]
    pub gamma: f64,
    /// Attack radius ε in L∞ (default: 0.3 MNIST, 0.1 Fashion-MNIST, 8/255 CIFAR).
    #[arg(long)]
    pub eps: Option<f32>,
    /// Step size of the training attack (default: 0.01 for MNIST-scale data, 2/255 for CIFAR).
    #[arg(long)]
    pub step_size: Option<f32>,
    /// Steps of the training attack (default: 40 for MNIST-scale data, 10 for CIFAR).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Grow the training attack's ε linearly from 0 over this many epochs (0: off).
    #[arg(long, default_value_t = defaults::EPS_WARMUP)]
    pub eps_warmup: usize,
    /// Where the training attack starts: reference (each method's own: x + 0.001·N(0, 1) for
    /// TRADES and RSLAD, uniform for SAT, ARD and IAD), or uniform, gaussian or none for every
    /// method.
    #[arg(long, value_enum, default_value = "reference")]
    pub attack_start: AttackStart,
    /// Batch-norm mode of the model during SAT's training attack (the other methods fix it:
    /// eval for TRADES and RSLAD, train for ARD and IAD).
    #[arg(long, value_enum, default_value = "eval")]
    pub attack_bn: BnMode,
    /// Which of TRADES' and RSLAD's two training-mode forwards (on x′, then on x) update the
    /// batch-norm running statistics: both (the reference code), adversarial (as SAT) or
    /// natural; or strong: neither, a third forward on the batch attacked as SAT attacks it
    /// (cross-entropy, uniform start) does, one more attack per batch. The loss and its
    /// gradient are the same in every mode; the training attack, run in eval mode, is not.
    #[arg(long, value_enum, default_value = "both")]
    pub bn_stats: BnStats,
    /// Teacher checkpoint for kd, ard, iad and rslad, or a shipped robust MNIST teacher:
    /// "embedded" (the TRADES authors' SmallCNN, ε 0.3) or "embedded-sat" (this project's SAT
    /// small-cnn). A PyTorch-layout file: convert it with `rslad-tui import` first.
    #[arg(long)]
    pub teacher: Option<PathBuf>,
    /// Weight α of the distillation term (default: kd 0.9, ard and iad 1.0, rslad 5/6).
    #[arg(long)]
    pub alpha: Option<f32>,
    /// TRADES β (default 1 on MNIST-scale data, 6 on CIFAR) or IAD's β (default 0.1).
    #[arg(long)]
    pub beta: Option<f32>,
    /// Distillation temperature τ (default: kd 4, ard 30, iad 1 as in the authors' scripts).
    #[arg(long)]
    pub temperature: Option<f32>,
    /// Epochs before IAD's introspection term switches on (default 30% of --epochs, as
    /// 60 of 200 in the authors' runs).
    #[arg(long)]
    pub iad_warmup: Option<usize>,
    /// RSLAD's loss scale (default 0.1: the authors' mean over batch × classes on 10 classes,
    /// and their ×10 on CIFAR-100's 100 classes).
    #[arg(long)]
    pub rslad_scale: Option<f32>,
    #[arg(long, default_value_t = defaults::SEED)]
    pub seed: u64,
    /// Train on the first N training images only.
    #[arg(long)]
    pub train_n: Option<usize>,
    /// Test images evaluated after each epoch.
    #[arg(long, default_value_t = defaults::EVAL_N)]
    pub eval_n: usize,
    /// Steps of the PGD attack evaluated after each epoch (0: clean accuracy only).
    #[arg(long, default_value_t = defaults::EVAL_STEPS)]
    pub eval_steps: usize,
}

/// Whether options a method does not take are an error (`train`) or are left out for that
/// method (`compare`, whose one command line serves every method).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Foreign {
    Refuse,
    LeaveOut,
}

/// A value checked by its newtype, the error naming the flag.
fn flag<T>(name: &str, checked: Result<T, ValueError>) -> Result<T> {
    checked.map_err(|e| anyhow::anyhow!(e.named(&format!("--{name}"))))
}

impl TrainingOptions {
    /// The typed settings these options give for `method` on `data` with student `model`.
    pub fn settings(
        &self,
        data: &DataArgs,
        model: &str,
        method: MethodName,
        foreign: Foreign,
    ) -> Result<TrainSettings> {
        let student = Arch::from_name(model)?;
        let data = DataChoice::try_from(data)?;
        if foreign == Foreign::Refuse {
            self.refuse_attack_options_for(method)?;
        }
        if self.train_n == Some(0) {
            bail!("--train-n must be at least 1 (leave it out to train on every image)");
        }
        let milestones = flag("milestones", Milestones::new(self.milestones.clone()))?;
        Ok(TrainSettings {
            data,
            student,
            method: self.method_settings(method, foreign)?,
            attack: AttackSettings {
                epsilon: self.eps.map(|e| flag("eps", Epsilon::new(e))).transpose()?,
                step_size: self
                    .step_size
                    .map(|s| flag("step-size", StepSize::new(s)))
                    .transpose()?,
                steps: self.steps,
                eps_warmup: self.eps_warmup,
                start: self.attack_start,
            },
            optimizer: OptimizerSettings {
                kind: self.optimizer,
                lr: flag("lr", LearningRate::new(self.lr))?,
                momentum: flag("momentum", Momentum::new(self.momentum))?,
                weight_decay: flag("weight-decay", WeightDecay::new(self.weight_decay))?,
                milestones,
                gamma: flag("gamma", Gamma::new(self.gamma))?,
            },
            epochs: flag("epochs", Count::new(self.epochs))?,
            batch_size: flag("batch-size", Count::new(self.batch_size))?,
            seed: self.seed,
            train_n: self.train_n,
            eval: EvalSettings {
                n: self.eval_n,
                steps: self.eval_steps,
            },
        })
    }

    /// Refuses the training attack's options for a method they do not apply to (`--eps` and
    /// `--step-size` also set the evaluation's PGD, so every method takes them).
    fn refuse_attack_options_for(&self, method: MethodName) -> Result<()> {
        if !method.trains_adversarially() {
            let given = [
                ("--steps", self.steps.is_some()),
                ("--eps-warmup", self.eps_warmup != defaults::EPS_WARMUP),
                (
                    "--attack-start",
                    self.attack_start != AttackStart::Reference,
                ),
                ("--attack-bn", self.attack_bn != BnMode::Eval),
            ];
            if let Some((flag, _)) = given.iter().find(|(_, given)| *given) {
                bail!("{flag} sets the training attack, and --method {method} has none");
            }
        }
        if method != MethodName::Sat && self.attack_bn != BnMode::Eval {
            bail!(
                "--attack-bn applies to --method sat; the other methods fix it (eval for TRADES \
                 and RSLAD, train for ARD and IAD)"
            );
        }
        Ok(())
    }

    /// The teacher given with `--teacher`, if `method` takes one.
    pub fn teacher_for(&self, method: MethodName, foreign: Foreign) -> Result<Option<PathBuf>> {
        match &self.teacher {
            Some(_) if !method.distils() && foreign == Foreign::Refuse => {
                bail!("--teacher does not apply to --method {method}")
            }
            Some(path) if method.distils() => Ok(Some(path.clone())),
            _ => Ok(None),
        }
    }

    fn method_settings(&self, name: MethodName, foreign: Foreign) -> Result<MethodSettings> {
        let mut method = MethodSettings::new(name);
        if let MethodSettings::Sat { attack_bn } = &mut method {
            *attack_bn = self.attack_bn;
        }
        if self.bn_stats != BnStats::Both
            && !method.set_bn_stats(self.bn_stats)
            && foreign == Foreign::Refuse
        {
            bail!(
                "--bn-stats applies to --method trades and rslad (the methods whose attack runs in \
                 eval mode, so only their training-mode forwards update batch norm), not to {name}"
            );
        }
        let given = [
            (MethodOption::Alpha, self.alpha.map(f64::from)),
            (MethodOption::Beta, self.beta.map(f64::from)),
            (MethodOption::Temperature, self.temperature.map(f64::from)),
            (MethodOption::IadWarmup, self.iad_warmup.map(|e| e as f64)),
            (MethodOption::RsladScale, self.rslad_scale.map(f64::from)),
        ];
        for (option, value) in given {
            let Some(value) = value else { continue };
            if foreign == Foreign::LeaveOut && !method.accepts(option) {
                continue;
            }
            method
                .set(option, value)
                .map_err(|e| anyhow::anyhow!(e.message("--")))?;
        }
        Ok(method)
    }
}

impl TryFrom<&TrainArgs> for TrainSettings {
    type Error = anyhow::Error;

    fn try_from(args: &TrainArgs) -> Result<TrainSettings> {
        args.options
            .settings(&args.data, &args.model, args.method, Foreign::Refuse)
    }
}
