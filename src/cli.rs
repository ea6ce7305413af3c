//! The headless command line: `train`, `eval`, `zoo`, and the default demo.

use crate::attack::BnMode;
use crate::attack::autoattack::{AutoAttackConfig, AutoAttackReport, Component, Version};
use crate::checkpoint::{self, CheckpointCard, SaveInfo};
use crate::data::{self, DataSource, Dataset, DatasetKind};
use crate::device::{autodiff_device, compute_device};
use crate::eval::{self, EvalAttack, RobustnessReport};
use crate::progress::{Bars, Progress, Silent};
use crate::train::{EpochMetrics, Method, OptimizerConfig, OptimizerKind, TrainConfig, Trainer};
use crate::zoo::{self, Arch, Model, ModelSpec};
use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Parser, Debug)]
#[command(
    name = "rslad-tui",
    version,
    about = "A workbench for adversarial robustness distillation (RSLAD and its baselines).",
    long_about = "A workbench for adversarial robustness distillation (RSLAD and its baselines).\n\n\
        With no command, opens the workbench (a terminal UI) on the embedded MNIST subset: \
        the shipped robust teacher, a fresh micro-cnn student, RSLAD. Type `help` or ? there."
)]
pub struct Cli {
    /// Where to compute: cpu (burn-flex, always built), wgpu, vulkan or cuda (GPU builds only,
    /// see docs/gpu.md). A GPU that cannot be opened falls back to the CPU with a message.
    /// `replay --execute` defaults to the device the session was recorded on.
    #[arg(long, global = true, value_enum, ignore_case = true)]
    pub device: Option<crate::device::DeviceChoice>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train a model from the zoo (natural, sat, trades, kd, ard, iad, rslad) and save a
    /// checkpoint.
    #[command(allow_negative_numbers = true)]
    Train(TrainArgs),
    /// Train the same student with several methods and tabulate their robustness (the
    /// RSLAD paper's table): Clean, FGSM, PGD-SAT, PGD-TRADES, CW∞ and AutoAttack.
    #[command(allow_negative_numbers = true)]
    Compare(crate::compare::CompareArgs),
    /// Evaluate a checkpoint: clean, FGSM, PGD, CW∞ and AutoAttack accuracy.
    #[command(allow_negative_numbers = true)]
    Eval(EvalArgs),
    /// List the model zoo with parameter counts.
    Zoo(ZooArgs),
    /// Open the workbench (the same as no command): a terminal UI with a command prompt.
    Workbench,
    /// The workbench's commands as a plain REPL (or a script piped into it).
    Repl(crate::repl::ReplArgs),
    /// Play a recorded session back in the workbench, or re-run it with --execute.
    Replay(crate::session::replay::ReplayArgs),
    /// A headless demo: one epoch of micro-cnn on the embedded subset, then its robustness.
    Demo(DataArgs),
    /// Write a checkpoint's weights as safetensors in PyTorch's names and layout.
    Export(crate::interop::ExportArgs),
    /// Read safetensors weights in PyTorch's names and layout into a checkpoint.
    Import(crate::interop::ImportArgs),
    /// Time the training and attack workloads (images/s, GFLOP/s), optionally against PyTorch.
    Bench(crate::bench::BenchArgs),
}

#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// Dataset: mnist, fashion, cifar10 or cifar100.
    #[arg(long, default_value = "mnist")]
    pub dataset: String,
    /// Where the data comes from: "embedded" (the MNIST subset inside the program) or a folder
    /// laid out as scripts/fetch-data.sh writes it.
    #[arg(long, default_value = "embedded")]
    pub data: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MethodName {
    /// CE on natural images.
    Natural,
    /// Madry PGD adversarial training.
    Sat,
    /// TRADES (--beta).
    Trades,
    /// Hinton knowledge distillation on natural images (--teacher, --alpha, --temperature).
    Kd,
    /// Adversarially Robust Distillation (--teacher, --alpha, --temperature).
    Ard,
    /// Introspective Adversarial Distillation (--teacher, --alpha, --temperature, --beta,
    /// --iad-warmup).
    Iad,
    /// Robust Soft Label Adversarial Distillation (--teacher, --alpha, --rslad-scale).
    Rslad,
}

impl MethodName {
    /// The name as typed on the command line.
    pub fn name(self) -> String {
        format!("{self:?}").to_lowercase()
    }

    /// Whether the method distils from a teacher.
    pub fn distils(self) -> bool {
        matches!(
            self,
            MethodName::Kd | MethodName::Ard | MethodName::Iad | MethodName::Rslad
        )
    }
}

/// The method-specific training options, and which methods each applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MethodOption {
    Teacher,
    Alpha,
    Beta,
    Temperature,
    IadWarmup,
    RsladScale,
}

impl MethodOption {
    pub fn flag(self) -> &'static str {
        match self {
            MethodOption::Teacher => "teacher",
            MethodOption::Alpha => "alpha",
            MethodOption::Beta => "beta",
            MethodOption::Temperature => "temperature",
            MethodOption::IadWarmup => "iad-warmup",
            MethodOption::RsladScale => "rslad-scale",
        }
    }

    pub fn applies_to(self, method: MethodName) -> bool {
        use MethodName::*;
        match self {
            MethodOption::Teacher | MethodOption::Alpha => method.distils(),
            MethodOption::Beta => matches!(method, Trades | Iad),
            MethodOption::Temperature => matches!(method, Kd | Ard | Iad),
            MethodOption::IadWarmup => method == Iad,
            MethodOption::RsladScale => method == Rslad,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OptimizerName {
    Sgd,
    Adam,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum BnModeName {
    Eval,
    Train,
}

#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Architecture from the zoo (see `rslad-tui zoo`).
    #[arg(long, default_value = "small-cnn")]
    pub model: String,
    /// Training method.
    #[arg(long, value_enum, default_value = "natural")]
    pub method: MethodName,
    #[command(flatten)]
    pub options: TrainingOptions,
    /// Checkpoint path (without extension); default runs/<model>-<method>.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Training options shared by `train` and `compare`.
#[derive(Args, Debug, Clone)]
pub struct TrainingOptions {
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    #[arg(long, value_enum, default_value = "sgd")]
    pub optimizer: OptimizerName,
    /// Initial learning rate.
    #[arg(long, default_value_t = 0.01)]
    pub lr: f64,
    /// SGD momentum (0 for plain SGD).
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f64,
    /// L2 weight decay.
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f32,
    /// Comma-separated epochs at which the learning rate is multiplied by --gamma, e.g. 5,8.
    #[arg(long, value_delimiter = ',')]
    pub milestones: Vec<usize>,
    #[arg(long, default_value_t = 0.1)]
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
    #[arg(long, default_value_t = 0)]
    pub eps_warmup: usize,
    /// Batch-norm mode of the model during SAT's training attack (the other methods fix it:
    /// eval for TRADES and RSLAD, train for ARD and IAD).
    #[arg(long, value_enum, default_value = "eval")]
    pub attack_bn: BnModeName,
    /// Teacher checkpoint for kd, ard, iad and rslad, or "embedded" for the shipped robust
    /// MNIST teacher (small-cnn, SAT ε 0.3). A PyTorch-layout file: convert it with
    /// `rslad-tui import` first.
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
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Train on the first N training images only.
    #[arg(long)]
    pub train_n: Option<usize>,
    /// Test images evaluated after each epoch.
    #[arg(long, default_value_t = 1000)]
    pub eval_n: usize,
    /// Steps of the PGD attack evaluated after each epoch (0: clean accuracy only).
    #[arg(long, default_value_t = 20)]
    pub eval_steps: usize,
}

impl Default for TrainingOptions {
    /// The command line's defaults (read from the clap attributes above, so they cannot
    /// drift apart).
    fn default() -> Self {
        #[derive(Parser)]
        struct Defaults {
            #[command(flatten)]
            options: TrainingOptions,
        }
        Defaults::parse_from(["defaults"]).options
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AttackName {
    Fgsm,
    Pgd,
    Cw,
    /// AutoAttack (standard version unless --version says otherwise).
    Autoattack,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AutoAttackVersion {
    /// APGD-CE, APGD-T, FAB-T, Square: deterministic models.
    Standard,
    /// APGD-CE and APGD-DLR with 20 gradient samples per step: models with randomness.
    Rand,
    /// The components listed with --components, in that order.
    Custom,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// The checkpoint (its .safetensors or .ron file, or their common stem), or "embedded"
    /// for the shipped teacher.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Require the checkpoint to be this architecture.
    #[arg(long)]
    pub model: Option<String>,
    /// Attacks to run, comma separated (autoattack: the full standard AutoAttack).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "fgsm,pgd,cw")]
    pub attacks: Vec<AttackName>,
    /// AutoAttack version.
    #[arg(long, value_enum, default_value = "standard")]
    pub version: AutoAttackVersion,
    /// AutoAttack components for --version custom, comma separated, run in this order:
    /// apgd-ce, apgd-dlr, apgd-t, fab-t, square.
    #[arg(long, value_delimiter = ',')]
    pub components: Vec<String>,
    /// Attack radius ε in L∞ (default: the dataset's conventional ε).
    #[arg(long)]
    pub eps: Option<f32>,
    /// PGD and CW∞ steps (default 40 for MNIST-scale data, 20 for CIFAR).
    #[arg(long)]
    pub steps: Option<usize>,
    /// PGD and CW∞ step size (default 0.01 for MNIST-scale data, 2/255 for CIFAR).
    #[arg(long)]
    pub step_size: Option<f32>,
    /// Evaluate the first N test images (default: all).
    #[arg(long)]
    pub n: Option<usize>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Run AutoAttack in blocks of --block images, writing each finished block to this journal
    /// (RON); the same command run again continues where it stopped (Ctrl-C, a time limit).
    #[arg(long, value_name = "FILE")]
    pub resume: Option<PathBuf>,
    /// Images per AutoAttack block with --resume; each block has its own seed.
    #[arg(long, default_value_t = 500, requires = "resume")]
    pub block: usize,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ZooArgs {
    /// Number of classes the parameter counts are given for.
    #[arg(long, default_value_t = 10)]
    pub classes: usize,
}

/// Parses the command line and runs it.
pub fn run() -> Result<()> {
    let cli = Cli::parse();
    if let Some(choice) = cli.device {
        announce_device(crate::device::select(choice));
    }
    match cli.command {
        None | Some(Command::Workbench) => workbench(),
        Some(Command::Repl(args)) => crate::repl::run(&args),
        Some(Command::Replay(args)) => crate::session::replay::run(&args),
        Some(Command::Demo(args)) => demo(&args),
        Some(Command::Train(args)) => train(&args).map(|_| ()),
        Some(Command::Eval(args)) => evaluate(&args),
        Some(Command::Compare(args)) => crate::compare::run(&args),
        Some(Command::Zoo(args)) => list_zoo(&args),
        Some(Command::Export(args)) => crate::interop::run_export(&args),
        Some(Command::Import(args)) => crate::interop::run_import(&args),
        Some(Command::Bench(args)) => crate::bench::run(&args),
    }
}

/// Says on standard error which device runs the work when it is not the default CPU, and why
/// when a GPU asked for could not be used.
pub fn announce_device(selection: &crate::device::Selection) {
    if let Some(message) = selection.fallback_message() {
        eprintln!("warning: {message}");
    } else if selection.open.choice != crate::device::DeviceChoice::Cpu {
        eprintln!("running on {}", crate::device::backend_name());
    }
}

pub fn load_data(args: &DataArgs) -> Result<Dataset> {
    let kind = DatasetKind::from_name(&args.dataset)?;
    let source = DataSource::parse(&args.data);
    Ok(data::load(kind, &source)?)
}

/// Attack defaults that depend on the data scale (methods spec §1–2).
pub(crate) struct AttackDefaults {
    pub epsilon: f32,
    pub step_size: f32,
    pub train_steps: usize,
    pub eval_steps: usize,
}

pub(crate) fn attack_defaults(kind: DatasetKind) -> AttackDefaults {
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

fn check_epsilon(eps: f32) -> Result<f32> {
    if !(0.0..=1.0).contains(&eps) || !eps.is_finite() {
        bail!("--eps must be in [0, 1] (images are in [0, 1]); got {eps}");
    }
    Ok(eps)
}

fn check_step_size(step: f32) -> Result<f32> {
    if !(step > 0.0 && step.is_finite()) {
        bail!("--step-size must be positive; got {step}");
    }
    Ok(step)
}

/// Checks that the data fits the model, with a message that says how to fix it.
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

/// RSLAD's loss scale: the authors average the KL over batch × classes (÷10 on CIFAR-10 and
/// MNIST) and multiply by 10 on CIFAR-100 (10/100), so their effective scale is 0.1 on all.
const RSLAD_DEFAULT_SCALE: f32 = 0.1;

/// The training method with its hyper-parameters: the user's, else the authors' defaults.
fn method_from_args(
    args: &TrainArgs,
    kind: DatasetKind,
    epsilon: f32,
    step_size: f32,
    steps: usize,
) -> Result<Method> {
    let fraction = |name: &str, value: f32| -> Result<f32> {
        if !(0.0..=1.0).contains(&value) {
            bail!("--{name} must be in [0, 1]; got {value}");
        }
        Ok(value)
    };
    let positive = |name: &str, value: f32| -> Result<f32> {
        if !(value > 0.0 && value.is_finite()) {
            bail!("--{name} must be positive; got {value}");
        }
        Ok(value)
    };
    let non_negative = |name: &str, value: f32| -> Result<f32> {
        if !(value >= 0.0 && value.is_finite()) {
            bail!("--{name} must be finite and at least 0; got {value}");
        }
        Ok(value)
    };
    let uses = |given: bool, option: MethodOption| -> Result<()> {
        if given && !option.applies_to(args.method) {
            bail!(
                "--{} does not apply to --method {}",
                option.flag(),
                args.method.name()
            );
        }
        Ok(())
    };
    let o = &args.options;
    uses(o.teacher.is_some(), MethodOption::Teacher)?;
    uses(o.alpha.is_some(), MethodOption::Alpha)?;
    uses(o.beta.is_some(), MethodOption::Beta)?;
    uses(o.temperature.is_some(), MethodOption::Temperature)?;
    uses(o.iad_warmup.is_some(), MethodOption::IadWarmup)?;
    uses(o.rslad_scale.is_some(), MethodOption::RsladScale)?;
    use MethodName::*;

    let ce_attack = Method::ce_attack(epsilon, step_size, steps);
    let kl_attack = Method::kl_attack(epsilon, step_size, steps);
    let alpha = |default: f32| fraction("alpha", args.options.alpha.unwrap_or(default));
    let temperature =
        |default: f32| positive("temperature", args.options.temperature.unwrap_or(default));
    Ok(match args.method {
        Natural => Method::Natural,
        Sat => Method::Sat {
            attack: ce_attack,
            bn_mode: match args.options.attack_bn {
                BnModeName::Eval => BnMode::Eval,
                BnModeName::Train => BnMode::Train,
            },
        },
        Trades => {
            let default = if kind.augments() { 6.0 } else { 1.0 };
            Method::Trades {
                attack: kl_attack,
                beta: non_negative("beta", args.options.beta.unwrap_or(default))?,
            }
        }
        Kd => Method::Kd {
            alpha: alpha(0.9)?,
            temperature: temperature(4.0)?,
        },
        Ard => Method::Ard {
            attack: ce_attack,
            alpha: alpha(1.0)?,
            temperature: temperature(30.0)?,
        },
        Iad => Method::Iad {
            attack: ce_attack,
            alpha: alpha(1.0)?,
            temperature: temperature(1.0)?,
            beta: non_negative("beta", args.options.beta.unwrap_or(0.1))?,
            warmup_epochs: args
                .options
                .iad_warmup
                .unwrap_or((args.options.epochs as f64 * 0.3).round() as usize),
        },
        Rslad => Method::Rslad {
            attack: kl_attack,
            alpha: alpha(5.0 / 6.0)?,
            scale: positive(
                "rslad-scale",
                args.options.rslad_scale.unwrap_or(RSLAD_DEFAULT_SCALE),
            )?,
        },
    })
}

/// The teacher checkpoint of a distillation method, checked against the student's data shape.
fn load_teacher(args: &TrainArgs, method: &Method, student: &ModelSpec) -> Result<Option<Model>> {
    if !method.needs_teacher() {
        return Ok(None);
    }
    let Some(path) = &args.options.teacher else {
        bail!(
            "--method {} distils from a teacher: give its checkpoint with --teacher \
             (train one with --method sat or trades, or convert a PyTorch file with `rslad-tui import`)",
            method.name()
        );
    };
    let (teacher, card) = load_teacher_checkpoint(path)?;
    check_teacher_fits(&card.spec, student)?;
    println!("teacher: {} from {}", card.spec.arch, path.display());
    Ok(Some(teacher))
}

/// A teacher checkpoint on the autodiff device: a path, or "embedded" for the shipped one.
pub fn load_teacher_checkpoint(path: &std::path::Path) -> Result<(Model, CheckpointCard)> {
    if path.as_os_str() == crate::teacher::EMBEDDED {
        Ok(crate::teacher::embedded(&autodiff_device())?)
    } else {
        checkpoint::load(path, None, &autodiff_device())
            .with_context(|| format!("cannot load the teacher {}", path.display()))
    }
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

/// The student's architecture and the training configuration that `args` describe on
/// `data`, every option checked and every default filled in.
pub fn training_setup(args: &TrainArgs, data: &Dataset) -> Result<(ModelSpec, TrainConfig)> {
    let arch = Arch::from_name(&args.model)?;
    if args.options.epochs == 0 {
        bail!("--epochs must be at least 1");
    }
    if args.options.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    if !(args.options.lr > 0.0 && args.options.lr.is_finite()) {
        bail!("--lr must be positive; got {}", args.options.lr);
    }
    let defaults = attack_defaults(data.kind);
    let epsilon = check_epsilon(args.options.eps.unwrap_or(defaults.epsilon))?;
    let step_size = check_step_size(args.options.step_size.unwrap_or(defaults.step_size))?;
    let steps = args.options.steps.unwrap_or(defaults.train_steps);
    let spec = ModelSpec::native(arch, data.kind.num_classes());
    check_fit(&spec, data)?;

    let method = method_from_args(args, data.kind, epsilon, step_size, steps)?;
    let config = TrainConfig {
        method,
        optimizer: OptimizerConfig {
            kind: match args.options.optimizer {
                OptimizerName::Sgd => OptimizerKind::Sgd {
                    momentum: args.options.momentum,
                },
                OptimizerName::Adam => OptimizerKind::Adam,
            },
            learning_rate: args.options.lr,
            weight_decay: args.options.weight_decay,
            milestones: args.options.milestones.clone(),
            gamma: args.options.gamma,
        },
        epochs: args.options.epochs,
        batch_size: args.options.batch_size,
        seed: args.options.seed,
        train_n: args.options.train_n,
        eval_n: args.options.eval_n,
        eval_attack: (args.options.eval_steps > 0)
            .then(|| EvalAttack::pgd(epsilon, args.options.eval_steps, step_size)),
        epsilon_warmup_epochs: args.options.eps_warmup,
    };
    Ok((spec, config))
}

pub fn train(args: &TrainArgs) -> Result<(Model, Vec<EpochMetrics>)> {
    Arch::from_name(&args.model)?;
    let data = load_data(&args.data)?;
    let (spec, config) = training_setup(args, &data)?;
    let arch = spec.arch;
    let epsilon = args
        .options
        .eps
        .unwrap_or(attack_defaults(data.kind).epsilon);
    let teacher = load_teacher(args, &config.method, &spec)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("runs/{}-{}", arch, config.method.name())));

    let model = Model::build(spec, args.options.seed, &autodiff_device())?;
    println!(
        "training {} ({} parameters) with {} on {} ({} training images), ε = {epsilon}, seed {}",
        arch,
        model.parameter_count(),
        config.method.name(),
        data.origin,
        args.options
            .train_n
            .unwrap_or(data.train.len())
            .min(data.train.len()),
        args.options.seed
    );
    let started = Instant::now();
    let mut trainer = match teacher {
        Some(teacher) => Trainer::with_teacher(model, teacher, config),
        None => Trainer::new(model, config),
    };
    let cancel = crate::interrupt::flag();
    let bars = Bars::default();
    // The model as of the last finished epoch: what is saved if Ctrl-C stops an epoch midway,
    // so the checkpoint and its card (which counts finished epochs) agree.
    let mut finished = trainer.model.clone();
    let mut diverged = None;
    for _ in 0..args.options.epochs {
        let metrics = match trainer.step_batches(&data, usize::MAX, &bars, cancel) {
            crate::train::StepOutcome::EpochDone(metrics) => metrics,
            crate::train::StepOutcome::Diverged { batch, loss } => {
                eprintln!(
                    "the loss became {loss} at batch {batch} of epoch {}: training stopped \
                     (is --lr {} too high?); saving the model after epoch {}",
                    trainer.epochs_done() + 1,
                    args.options.lr,
                    trainer.epochs_done()
                );
                diverged = Some(batch);
                trainer.model = finished;
                break;
            }
            _ => {
                println!(
                    "stopped by Ctrl-C during epoch {}; saving the model after epoch {}",
                    trainer.epochs_done() + 1,
                    trainer.epochs_done()
                );
                trainer.model = finished;
                break;
            }
        };
        finished = trainer.model.clone();
        println!(
            "{}",
            epoch_line(
                &metrics,
                args.options.epochs,
                trainer.config.eval_attack.as_ref()
            )
        );
    }
    let path = checkpoint::save(
        &trainer.model,
        &out,
        &SaveInfo {
            dataset: data.kind.name(),
            training: Some(&trainer.config),
            metrics: &trainer.history,
            seed: args.options.seed,
        },
    )?;
    println!(
        "done in {:.1} s; checkpoint {}",
        started.elapsed().as_secs_f64(),
        path.display()
    );
    if let Some(batch) = diverged {
        bail!(
            "training diverged at batch {batch} of epoch {}; the checkpoint holds the last \
             finished epoch",
            trainer.epochs_done() + 1
        );
    }
    Ok((trainer.model, trainer.history))
}

fn epoch_line(m: &EpochMetrics, epochs: usize, attack: Option<&EvalAttack>) -> String {
    let robust = match (m.test_robust_accuracy, attack) {
        (Some(acc), Some(attack)) => format!("  {} {:6.2}%", attack.name, 100.0 * acc),
        _ => String::new(),
    };
    format!(
        "epoch {:>3}/{epochs}  lr {:<8.4}  loss {:.4}  train {:6.2}%  clean {:6.2}%{robust}  ({:.1} s)",
        m.epoch,
        m.learning_rate,
        m.loss,
        100.0 * m.train_accuracy,
        100.0 * m.test_clean_accuracy,
        m.seconds
    )
}

fn evaluate(args: &EvalArgs) -> Result<()> {
    let expected = args.model.as_deref().map(Arch::from_name).transpose()?;
    let (model, card) = if args.checkpoint.as_os_str() == crate::teacher::EMBEDDED {
        crate::teacher::embedded(&compute_device())?
    } else {
        checkpoint::load(&args.checkpoint, expected, &compute_device())
            .with_context(|| "cannot load the checkpoint".to_string())?
    };
    let data = load_data(&args.data)?;
    check_fit(&card.spec, &data)?;
    let defaults = attack_defaults(data.kind);
    let epsilon = check_epsilon(args.eps.unwrap_or(defaults.epsilon))?;
    let step_size = check_step_size(args.step_size.unwrap_or(defaults.step_size))?;
    let steps = args.steps.unwrap_or(defaults.eval_steps);
    let attacks: Vec<EvalAttack> = args
        .attacks
        .iter()
        .filter_map(|attack| match attack {
            AttackName::Fgsm => Some(EvalAttack::fgsm(epsilon)),
            AttackName::Pgd => Some(EvalAttack::pgd(epsilon, steps, step_size)),
            AttackName::Cw => Some(EvalAttack::cw(epsilon, steps, step_size)),
            AttackName::Autoattack => None,
        })
        .collect();
    // Checked before any work, so a typo does not cost a PGD run.
    let autoattack_config = args
        .attacks
        .contains(&AttackName::Autoattack)
        .then(|| autoattack_config(args, epsilon))
        .transpose()?;
    if autoattack_config.is_none()
        && (!args.components.is_empty()
            || args.version != AutoAttackVersion::Standard
            || args.resume.is_some())
    {
        bail!(
            "--version, --components and --resume apply to AutoAttack: add autoattack to --attacks"
        );
    }
    if args.block == 0 {
        bail!("--block must be at least 1 image");
    }
    let n = args.n.unwrap_or(data.test.len()).min(data.test.len());
    let test = data.test.take(n);
    // Opened before any work, so a journal of another evaluation does not cost a PGD run.
    let mut journal = match (&autoattack_config, &args.resume) {
        (Some(config), Some(path)) => Some(open_journal(&card, &test, config, args.block, path)?),
        _ => None,
    };
    let progress: Box<dyn Progress> = if args.json {
        Box::new(Silent)
    } else {
        Box::new(Bars::default())
    };
    let report = eval::evaluate(&model, &test, &attacks, args.seed, progress.as_ref());
    let autoattack = match (autoattack_config, &args.resume, &mut journal) {
        (Some(_), Some(path), Some(journal)) => Some(resume_autoattack(
            &model,
            &test,
            journal,
            path,
            progress.as_ref(),
        )?),
        (Some(config), _, _) => Some(eval::autoattack(&model, &test, &config, progress.as_ref())?),
        _ => None,
    };
    // Warnings go to standard error, so they show even when the JSON is piped elsewhere.
    for flag in autoattack.iter().flat_map(|r| &r.flags) {
        eprintln!("WARNING (AutoAttack): {}", flag.message());
    }
    if args.json {
        let output = EvalOutput { report, autoattack };
        println!("{}", serde_json::to_string_pretty(&output)?);
    } else {
        println!(
            "{} on {} ({} test images), ε = {epsilon}",
            card.spec.arch, data.origin, report.images
        );
        if !report.attacks.is_empty() || autoattack.is_none() {
            print!("{}", report_table(&report));
        }
        if let Some(autoattack) = &autoattack {
            print!("{}", autoattack_table(autoattack));
        }
    }
    Ok(())
}

/// `eval --resume`: the journal at `path`, continued (saying how far it got) or new.
fn open_journal(
    card: &CheckpointCard,
    test: &crate::data::ImageSet,
    config: &AutoAttackConfig,
    block: usize,
    path: &Path,
) -> Result<eval::journal::Journal> {
    let key = eval::journal::JournalKey::new(&card.weights_sha256, test, config, block)?;
    let blocks = key.blocks();
    let journal = eval::journal::open(path, key)?;
    let done = journal.blocks.len();
    if done == blocks && blocks > 0 {
        eprintln!("{}: all {blocks} AutoAttack blocks done", path.display());
    } else if done > 0 {
        eprintln!(
            "{}: {done} of {blocks} AutoAttack blocks done; continuing",
            path.display()
        );
    }
    Ok(journal)
}

/// `eval --resume`: AutoAttack on the blocks the journal lacks, a line per block on standard
/// error. Ctrl-C stops it with an error (the finished blocks stay in the journal), so a
/// script can tell a cut-short run from a finished one.
fn resume_autoattack(
    model: &Model,
    test: &crate::data::ImageSet,
    journal: &mut eval::journal::Journal,
    path: &Path,
    progress: &dyn Progress,
) -> Result<AutoAttackReport> {
    let started = Instant::now();
    let report = eval::journal::autoattack_in_blocks(
        model,
        test,
        journal,
        path,
        progress,
        crate::interrupt::flag(),
        &mut |done| {
            eprintln!(
                "block {}/{} (images {}..{}): robust {:.2}%; so far {:.2}% of {} images ({:.0} s)",
                done.index + 1,
                done.blocks,
                done.first_image,
                done.images_done,
                100.0 * done.report.robust_accuracy,
                100.0 * done.robust_done as f64 / done.images_done as f64,
                done.images_done,
                started.elapsed().as_secs_f64()
            );
        },
    )?;
    let Some(report) = report else {
        bail!(
            "stopped by Ctrl-C: {} of {} blocks are in {}, the block in progress is lost; run \
             the same command to continue",
            journal.blocks.len(),
            journal.key.blocks(),
            path.display()
        );
    };
    Ok(report)
}

/// What `eval --json` prints: the PGD-family report, and AutoAttack's when it ran.
#[derive(serde::Serialize)]
struct EvalOutput {
    #[serde(flatten)]
    report: RobustnessReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    autoattack: Option<AutoAttackReport>,
}

fn autoattack_config(args: &EvalArgs, epsilon: f32) -> Result<AutoAttackConfig> {
    let version = match args.version {
        AutoAttackVersion::Standard | AutoAttackVersion::Rand if !args.components.is_empty() => {
            bail!("--components needs --version custom")
        }
        AutoAttackVersion::Standard => Version::Standard,
        AutoAttackVersion::Rand => Version::Rand,
        AutoAttackVersion::Custom => {
            if args.components.is_empty() {
                bail!("--version custom needs --components, e.g. --components apgd-ce,square");
            }
            let components = args
                .components
                .iter()
                .map(|name| Component::parse(name))
                .collect::<Result<Vec<_>, _>>()?;
            Version::Custom(components)
        }
    };
    Ok(AutoAttackConfig {
        epsilon,
        version,
        seed: args.seed,
        batch_size: eval::EVAL_BATCH,
    })
}

/// AutoAttack's report as a plain-text table: robust accuracy after each component.
pub fn autoattack_table(report: &AutoAttackReport) -> String {
    let mut out = format!(
        "AutoAttack ({} version), ε = {}\n{:<12} {:>9} {:>9} {:>7} {:>9}\n",
        report.version, report.epsilon, "attack", "attacked", "broken", "robust", "time"
    );
    out += &format!(
        "{:<12} {:>9} {:>9} {:>6.2}% {:>9}\n",
        "clean",
        report.images,
        "-",
        100.0 * report.clean_accuracy,
        "-"
    );
    for c in &report.components {
        out += &format!(
            "{:<12} {:>9} {:>9} {:>6.2}% {:>8.1}s\n",
            c.component.name(),
            c.attacked,
            c.broken,
            100.0 * c.robust_accuracy,
            c.seconds
        );
    }
    out += &format!(
        "robust accuracy {:.2}%, max |δ| {:.4}\n",
        100.0 * report.robust_accuracy,
        report.max_perturbation
    );
    out
}

/// The report as a plain-text table.
pub fn report_table(report: &RobustnessReport) -> String {
    let mut out = format!(
        "{:<12} {:>9} {:>10} {:>9}\n",
        "attack", "accuracy", "max |δ|", "time"
    );
    out += &format!(
        "{:<12} {:>8.2}% {:>10} {:>9}\n",
        "clean",
        100.0 * report.clean_accuracy,
        "-",
        "-"
    );
    for attack in &report.attacks {
        out += &format!(
            "{:<12} {:>8.2}% {:>10.4} {:>8.1}s\n",
            attack.name,
            100.0 * attack.robust_accuracy,
            attack.max_perturbation,
            attack.seconds
        );
    }
    out
}

fn list_zoo(args: &ZooArgs) -> Result<()> {
    if args.classes < 2 {
        bail!("--classes must be at least 2");
    }
    println!(
        "{:<14} {:<9} {:>12}  description",
        "model", "input", "parameters"
    );
    for entry in zoo::list(args.classes, &compute_device()) {
        println!(
            "{:<14} {:<9} {:>12}  {}",
            entry.arch.name(),
            entry.input,
            group_thousands(entry.parameters),
            entry.arch.description()
        );
    }
    Ok(())
}

fn group_thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The workbench needs a terminal on both ends; piped, it says so and runs the headless demo.
fn workbench() -> Result<()> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
        return crate::workbench::app::run();
    }
    eprintln!(
        "rslad-tui: the workbench needs a terminal (standard input and output are not one); \
         running the headless demo instead. See `rslad-tui --help` for the commands."
    );
    demo(&DataArgs {
        dataset: "mnist".into(),
        data: "embedded".into(),
    })
}

/// One epoch of natural training of micro-cnn on the embedded subset, then its robustness.
fn demo(args: &DataArgs) -> Result<()> {
    let train_args = TrainArgs {
        data: args.clone(),
        model: "micro-cnn".into(),
        method: MethodName::Natural,
        options: TrainingOptions {
            epochs: 1,
            batch_size: 64,
            lr: 0.05,
            eval_steps: 10,
            ..TrainingOptions::default()
        },
        out: Some(PathBuf::from("runs/demo-micro-cnn")),
    };
    train(&train_args)?;
    println!("\nnext: `rslad-tui train --help`, `rslad-tui eval --checkpoint runs/demo-micro-cnn`");
    Ok(())
}
