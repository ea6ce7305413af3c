//! The front ends: the clap command line (`train`, `eval`, `compare`, `zoo`, `export`,
//! `import`, `bench`, the default demo), the plain REPL, and `replay`. Each converts what the
//! user typed into typed settings or commands once, and leaves the work to the floors below.

pub mod args;
pub mod compare;
pub mod compare_rows;
pub mod diagnose;
pub mod eval;
pub mod interop;
pub mod plain;
pub mod recalibrate;
pub mod repl;
pub mod replay;
pub mod shard;
pub mod train;

use crate::checkpoint;
use crate::device::compute_device;
use crate::settings::{Count, DataChoice, LearningRate, MethodName, MethodSettings, TrainSettings};
use crate::text::scrub;
use crate::zoo;
use anyhow::{Result, bail};
use args::DataArgs;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

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
    ///
    /// It prints the settings it uses (every default filled in), then a line per epoch: the
    /// learning rate; loss, the mean training loss; train, the accuracy on the points the loss
    /// was computed on (the adversarial ones for sat, trades, ard, iad and rslad, so it starts
    /// low); clean and PGD-N, the accuracy on the first --eval-n test images, natural and
    /// under the per-epoch PGD attack (--eval-steps). These defaults follow the papers
    /// (SGD, PGD-40 on MNIST); the workbench's are quicker (Adam, PGD-10), and it prints them
    /// when it opens.
    #[command(allow_negative_numbers = true)]
    Train(args::TrainArgs),
    /// Train the same student with several methods and tabulate their robustness (the
    /// RSLAD paper's table): Clean, FGSM, PGD-SAT, PGD-TRADES, CW∞ and AutoAttack.
    #[command(allow_negative_numbers = true)]
    Compare(compare::CompareArgs),
    /// Evaluate a checkpoint: clean, FGSM, PGD, CW∞ and AutoAttack accuracy.
    #[command(allow_negative_numbers = true)]
    Eval(eval::EvalArgs),
    /// Check a checkpoint for gradient masking in under a minute: FGSM against PGD, PGD from x
    /// against a random start, more steps, an unbounded attack, Square after APGD-CE, zero
    /// gradients and the loss around a sample; each check says what it suggests.
    #[command(allow_negative_numbers = true)]
    Diagnose(diagnose::DiagnoseArgs),
    /// Gather a batch-norm checkpoint's running statistics again from adversarial (or natural)
    /// training images, weights unchanged, into a new checkpoint: whether a student's weakness
    /// under strong attacks lies in its weights or in the statistics eval mode normalises with.
    #[command(allow_negative_numbers = true)]
    Recalibrate(recalibrate::RecalibrateArgs),
    /// List the model zoo with parameter counts.
    Zoo(ZooArgs),
    /// Open the workbench (the same as no command): a terminal UI with a command prompt.
    Workbench,
    /// The workbench's commands as a plain REPL (or a script piped into it).
    Repl(repl::ReplArgs),
    /// Play a recorded session back in the workbench, or re-run it with --execute.
    Replay(replay::ReplayArgs),
    /// A headless demo: one epoch of micro-cnn on the embedded subset, then its robustness.
    Demo(DataArgs),
    /// Write a checkpoint's weights as safetensors in PyTorch's names and layout.
    Export(interop::ExportArgs),
    /// Read safetensors weights in PyTorch's names and layout into a checkpoint.
    Import(interop::ImportArgs),
    /// Time the training and attack workloads (images/s, GFLOP/s), optionally against PyTorch.
    Bench(crate::bench::BenchArgs),
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
    // Every command but the interactive workbench computes on this thread alone, which then
    // joins rayon's pool, the other workers kept awake while the command runs
    // (`pool::compute_on_this_thread`). The workbench computes on an engine thread beside this
    // interface thread: that thread joins it (workbench::app::run).
    let interactive_workbench =
        matches!(cli.command, None | Some(Command::Workbench)) && has_terminal();
    let _awake_workers = if interactive_workbench {
        None
    } else {
        crate::pool::compute_on_this_thread()
    };
    if let Some(choice) = cli.device {
        announce_device(crate::device::select(choice));
    }
    match cli.command {
        None | Some(Command::Workbench) => workbench(),
        Some(Command::Repl(args)) => repl::run(&args),
        Some(Command::Replay(args)) => replay::run(&args),
        Some(Command::Demo(args)) => demo(&args),
        Some(Command::Train(args)) => train::run(&args),
        Some(Command::Eval(args)) => eval::evaluate(&args),
        Some(Command::Diagnose(args)) => diagnose::run(&args),
        Some(Command::Recalibrate(args)) => recalibrate::run(&args),
        Some(Command::Compare(args)) => compare::run(&args),
        Some(Command::Zoo(args)) => list_zoo(&args),
        Some(Command::Export(args)) => interop::run_export(&args),
        Some(Command::Import(args)) => interop::run_import(&args),
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

/// Whether standard input and output are a terminal (the workbench needs both).
fn has_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal() && std::io::stdout().is_terminal()
}

/// The workbench needs a terminal on both ends; piped, it says so and runs the headless demo.
fn workbench() -> Result<()> {
    if has_terminal() {
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
    let valid = "the demo's settings are valid";
    let defaults = TrainSettings::default();
    let settings = TrainSettings {
        data: DataChoice::try_from(args)?,
        student: zoo::Arch::MicroCnn,
        method: MethodSettings::new(MethodName::Natural),
        epochs: Count::new(1).expect(valid),
        batch_size: Count::new(64).expect(valid),
        optimizer: crate::settings::OptimizerSettings {
            lr: LearningRate::new(0.05).expect(valid),
            ..defaults.optimizer.clone()
        },
        eval: crate::settings::EvalSettings {
            steps: 10,
            ..defaults.eval.clone()
        },
        ..defaults
    };
    let (out, start) = demo_destination(&settings);
    train::train(&settings, None, Some(out.clone()), start)?;
    println!(
        "\nnext: `rslad-tui train --help`, `rslad-tui eval --checkpoint {}`",
        scrub(&out.display().to_string())
    );
    Ok(())
}

/// Where the demo saves: runs/demo-micro-cnn, replacing only an earlier demo's checkpoint
/// there (its student, method, epochs and batch size); anything else there is kept, and the
/// demo takes the first free runs/demo-micro-cnn-N instead.
fn demo_destination(settings: &TrainSettings) -> (PathBuf, train::Start) {
    let is_demo = |path: &PathBuf| {
        checkpoint::read_card(path).is_ok_and(|card| {
            card.spec.arch == settings.student
                && card.training.is_some_and(|t| {
                    t.method.name() == settings.method.name().name()
                        && t.epochs == settings.epochs.get()
                        && t.batch_size == settings.batch_size.get()
                })
        })
    };
    (1..)
        .map(|n| match n {
            1 => PathBuf::from("runs/demo-micro-cnn"),
            n => PathBuf::from(format!("runs/demo-micro-cnn-{n}")),
        })
        .find_map(|path| match checkpoint::occupant(&path) {
            checkpoint::Occupant::Nothing if !crate::resume::path(&path).exists() => {
                Some((path, train::Start::Fresh))
            }
            checkpoint::Occupant::Checkpoint if is_demo(&path) => {
                Some((path, train::Start::Overwrite))
            }
            _ => None,
        })
        .expect("a free name among runs/demo-micro-cnn-N")
}
