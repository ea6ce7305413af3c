//! `rslad-tui train`: train a student and save its checkpoint.

use super::args::TrainArgs;
use crate::checkpoint::{self, SaveInfo};
use crate::data::DatasetKind;
use crate::device::autodiff_device;
use crate::eval::EvalAttack;
use crate::progress::Bars;
use crate::resume;
use crate::settings::{TrainSettings, check_teacher_fits, check_trained_on};
use crate::text::count;
use crate::train::{EpochMetrics, Method, OptimizerKind, StepOutcome, TrainConfig, Trainer};
use crate::zoo::{Model, ModelSpec};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::time::Instant;

pub fn run(args: &TrainArgs) -> Result<()> {
    let settings = TrainSettings::try_from(args)?;
    let teacher = args
        .options
        .teacher_for(args.method, super::args::Foreign::Refuse)?;
    let start = if args.resume {
        Start::Resume
    } else if args.overwrite {
        Start::Overwrite
    } else {
        Start::Fresh
    };
    train(&settings, teacher.as_deref(), args.out.clone(), start).map(|_| ())
}

/// How a run begins with respect to what is already at its destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// A new run; a checkpoint already there is an error.
    Fresh,
    /// A new run that replaces a checkpoint already there once it finishes.
    Overwrite,
    /// Go on with the run saved there, from its last finished epoch.
    Resume,
}

/// Where a run's checkpoint goes, checked before any training: writable, and not an existing
/// checkpoint unless replacing it was asked for.
struct Destination {
    path: PathBuf,
    /// A checkpoint was there before the run (and is not this run's own).
    existed: bool,
    /// Where each finished epoch is saved as it ends (with the optimiser's state, so a
    /// stopped or killed run can go on): `path` itself unless that would replace a checkpoint
    /// before the run has finished.
    progress: PathBuf,
}

impl Destination {
    fn prepare(path: PathBuf, start: Start) -> Result<Destination> {
        // Only a checkpoint is ever replaced or resumed, never a session or another file
        // under one of its two names.
        match checkpoint::occupant(&path) {
            checkpoint::Occupant::Other(file) => bail!(
                "{} already exists and is not a checkpoint this program can read; choose another \
                 --out",
                file.display()
            ),
            checkpoint::Occupant::Folder => bail!(checkpoint::folder_message(&path)),
            _ => {}
        }
        let existed = checkpoint::exists(&path);
        match start {
            Start::Fresh if existed => bail!(
                "{} already holds a checkpoint: choose another --out, pass --resume to go on \
                 with its run, or --overwrite to replace it",
                path.display()
            ),
            Start::Resume if !existed => bail!(
                "--resume: there is no checkpoint at {} to go on from",
                path.display()
            ),
            _ => {}
        }
        let folder = match path.parent() {
            Some(folder) if !folder.as_os_str().is_empty() => folder.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&folder)
            .with_context(|| format!("cannot create the folder {}", folder.display()))?;
        // A file written and removed now, so a read-only or full folder fails before the
        // training, not after it.
        let probe = folder.join(format!(".rslad-tui-write-test-{}", std::process::id()));
        crate::atomic::create_fresh(&probe)
            .and_then(|mut file| std::io::Write::write_all(&mut file, b"test"))
            .and_then(|()| std::fs::remove_file(&probe))
            .with_context(|| format!("cannot write checkpoints into {}", folder.display()))?;
        let existed = existed && start != Start::Resume;
        let progress = if existed {
            free_name_beside(&path)
        } else {
            path.clone()
        };
        Ok(Destination {
            path,
            existed,
            progress,
        })
    }
}

/// A fresh name beside `path` for an incomplete run (`x-stopped`, `x-stopped-2`, ...), so a
/// finished checkpoint is never replaced by a worse one.
fn free_name_beside(path: &Path) -> PathBuf {
    let stem = path.with_extension("");
    (1..)
        .map(|n| {
            let suffix = if n == 1 {
                String::new()
            } else {
                format!("-{n}")
            };
            PathBuf::from(format!("{}-stopped{suffix}", stem.display()))
        })
        .find(|candidate| !checkpoint::exists(candidate) && !resume::path(candidate).exists())
        .expect("some name is free")
}

/// Saves the trainer's model with its card and, between epochs, the optimiser's state beside
/// it (what `--resume` needs).
fn save_run(trainer: &Trainer, path: &Path, dataset: &str, seed: u64) -> Result<PathBuf> {
    let info = SaveInfo {
        dataset,
        training: Some(&trainer.config),
        metrics: &trainer.history,
        seed,
    };
    let saved = checkpoint::save(&trainer.model, path, &info)?;
    let card = checkpoint::read_card(path)?;
    let optimizer = trainer.optimizer_state().map_err(anyhow::Error::msg)?;
    resume::save(path, &trainer.model, &card.weights_sha256, &optimizer).with_context(|| {
        format!(
            "cannot write {} (the optimiser's state for --resume)",
            resume::path(path).display()
        )
    })?;
    Ok(saved)
}

/// Removes a checkpoint and its resume state (an incomplete run's progress, once the run has
/// finished and saved its result elsewhere).
fn remove_run(path: &Path) {
    let (weights, card) = checkpoint::paths(path);
    for file in [card, weights, resume::path(path)] {
        let _ = std::fs::remove_file(file);
    }
}

/// The run saved at `path`, to go on with under `config`: its model with the parameter ids
/// its optimiser state knows, its finished epochs, and that state. The settings must be the
/// run's own, apart from the number of epochs.
fn saved_run(
    path: &Path,
    config: &TrainConfig,
    spec: &ModelSpec,
    dataset: &str,
) -> Result<(Model, Vec<EpochMetrics>, Vec<u8>)> {
    let (model, card) = checkpoint::load(path, Some(spec.arch), &autodiff_device())
        .with_context(|| format!("--resume: cannot load {}", path.display()))?;
    let shown = path.display();
    let Some(saved) = &card.training else {
        bail!(
            "--resume: {shown} records no training settings (it was imported, or its \
             statistics were recalibrated: its card says which)"
        );
    };
    let mut differences = config_differences(saved, config);
    if card.spec != *spec {
        differences.push("the model".into());
    }
    if card.dataset != dataset {
        differences.push(format!("the dataset ({} there)", card.dataset));
    }
    if !differences.is_empty() {
        bail!(
            "--resume: {shown} was trained with other settings ({}); give the run's own \
             (its card, {}, lists them)",
            differences.join(", "),
            checkpoint::paths(path).1.display()
        );
    }
    let state =
        resume::load(path, &card.weights_sha256).map_err(|e| anyhow::anyhow!("--resume: {e}"))?;
    let model = state
        .apply(model)
        .map_err(|e| anyhow::anyhow!("--resume: {e}"))?;
    Ok((model, card.metrics, state.optimizer().to_vec()))
}

/// The settings in which `saved` and `now` differ, by their option names (the number of
/// epochs is not one: a run may go on for more).
fn config_differences(saved: &TrainConfig, now: &TrainConfig) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |same: bool, name: &str| {
        if !same {
            out.push(name.to_string());
        }
    };
    check(saved.method == now.method, "the method or its options");
    check(
        saved.optimizer == now.optimizer,
        "the optimiser or its options",
    );
    check(saved.batch_size == now.batch_size, "--batch-size");
    check(saved.seed == now.seed, "--seed");
    check(saved.train_n == now.train_n, "--train-n");
    check(saved.eval_n == now.eval_n, "--eval-n");
    check(saved.eval_attack == now.eval_attack, "--eval-steps");
    check(
        saved.epsilon_warmup_epochs == now.epsilon_warmup_epochs,
        "--eps-warmup",
    );
    out
}

/// The teacher checkpoint of a distillation method, checked against the student's data shape.
fn load_teacher(
    path: Option<&Path>,
    method: &Method,
    student: &ModelSpec,
    data: DatasetKind,
) -> Result<Option<Model>> {
    if !method.needs_teacher() {
        return Ok(None);
    }
    let Some(path) = path else {
        bail!(
            "--method {} distils from a teacher: give its checkpoint with --teacher \
             (train one with --method sat or trades, or convert a PyTorch file with `rslad-tui import`)",
            method.name()
        );
    };
    let (teacher, card) = crate::teacher::load(path)?;
    check_teacher_fits(&card.spec, student)?;
    check_trained_on(&card, data, "the teacher")?;
    println!("teacher: {} from {}", card.spec.arch, path.display());
    Ok(Some(teacher))
}

/// Trains `settings` (from `teacher` for a distillation method) and saves the checkpoint at
/// `out` (default runs/MODEL-METHOD), as `start` says: a new run, one replacing a checkpoint
/// there, or the run saved there going on. Each finished epoch is saved as it ends (with the
/// optimiser's state, for `--resume`), never over another run's checkpoint. A run stopped by
/// Ctrl-C or by a diverging loss keeps its finished epochs and fails, saying where.
pub fn train(
    settings: &TrainSettings,
    teacher: Option<&Path>,
    out: Option<PathBuf>,
    start: Start,
) -> Result<(Model, Vec<EpochMetrics>)> {
    let data = settings.data.load()?;
    let (spec, config) = settings.resolve(&data)?;
    let arch = spec.arch;
    let epsilon = settings.epsilon();
    let teacher = load_teacher(teacher, &config.method, &spec, data.kind)?;
    let out =
        out.unwrap_or_else(|| PathBuf::from(format!("runs/{}-{}", arch, config.method.name())));
    let destination = Destination::prepare(out, start)?;
    let dataset = data.kind.name();

    let (model, resumed) = if start == Start::Resume {
        let (model, history, optimizer) = saved_run(&destination.path, &config, &spec, dataset)?;
        (model, Some((history, optimizer)))
    } else {
        (Model::build(spec, settings.seed, &autodiff_device())?, None)
    };
    println!(
        "training {} ({} parameters) with {} on {}: {} training images, ε = {epsilon}, seed {}",
        arch,
        model.parameter_count(),
        config.method.name(),
        data.origin,
        settings
            .train_n
            .unwrap_or(data.train.len())
            .min(data.train.len()),
        settings.seed
    );
    println!("{}", settings_line(settings, &config));
    println!(
        "columns: loss = mean training loss of the epoch; train = accuracy on the points the loss \
         was computed on (the adversarial ones for sat, trades, ard, iad and rslad); clean{} = \
         accuracy on the first {} test images",
        config
            .eval_attack
            .as_ref()
            .map_or(String::new(), |a| format!(" and {}", a.name)),
        config.eval_n.min(data.test.len())
    );
    let started = Instant::now();
    let epochs = config.epochs;
    let mut trainer = match teacher {
        Some(teacher) => Trainer::with_teacher(model, teacher, config),
        None => Trainer::new(model, config),
    };
    if let Some((history, optimizer)) = resumed {
        trainer
            .resume(history, &optimizer)
            .map_err(|e| anyhow::anyhow!("--resume: {e}"))?;
        for metrics in &trainer.history {
            println!(
                "{}  (before)",
                epoch_line(metrics, epochs, trainer.config.eval_attack.as_ref())
            );
        }
        let done = trainer.epochs_done();
        if done >= epochs {
            println!(
                "{} already has {} of --epochs {epochs}: nothing to train (give a larger \
                 --epochs to go on)",
                destination.path.display(),
                count(done, "epoch", "epochs")
            );
            return Ok((trainer.model, trainer.history));
        }
        println!(
            "going on from {} after {}",
            destination.path.display(),
            count(done, "finished epoch", "finished epochs")
        );
    }
    let cancel = crate::interrupt::flag();
    let bars = Bars::default();
    // The model as of the last finished epoch: what is saved if Ctrl-C stops an epoch midway,
    // so the checkpoint and its card (which counts finished epochs) agree.
    let mut finished = trainer.model.clone();
    let mut stopped = None;
    while trainer.epochs_done() < epochs {
        let metrics = match trainer.step_batches(&data, usize::MAX, &bars, cancel) {
            StepOutcome::EpochDone(metrics) => metrics,
            StepOutcome::Diverged { batch, loss } => {
                eprintln!(
                    "the loss became {loss} at batch {batch} of epoch {}: training stopped \
                     (is --lr {} too high?)",
                    trainer.epochs_done() + 1,
                    settings.optimizer.lr,
                );
                stopped = Some(format!(
                    "training diverged at batch {batch} of epoch {}",
                    trainer.epochs_done() + 1
                ));
                trainer.model = finished;
                break;
            }
            StepOutcome::Cancelled | StepOutcome::Batches(_) => {
                stopped = Some(format!(
                    "stopped by Ctrl-C during epoch {}",
                    trainer.epochs_done() + 1
                ));
                trainer.model = finished;
                break;
            }
        };
        finished = trainer.model.clone();
        println!(
            "{}",
            epoch_line(&metrics, epochs, trainer.config.eval_attack.as_ref())
        );
        if trainer.epochs_done() < epochs {
            save_run(&trainer, &destination.progress, dataset, settings.seed)?;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let Some(why) = stopped else {
        let path = save_run(&trainer, &destination.path, dataset, settings.seed)?;
        if destination.progress != destination.path {
            remove_run(&destination.progress);
        }
        println!("done in {seconds:.1} s; checkpoint {}", path.display());
        return Ok((trainer.model, trainer.history));
    };
    let done = trainer.epochs_done();
    if done == 0 && destination.existed {
        bail!(
            "{why}, before any epoch finished: nothing saved; {} is unchanged",
            destination.path.display()
        );
    }
    let saved = save_run(&trainer, &destination.progress, dataset, settings.seed)?;
    Err(Stopped {
        why,
        seconds,
        epochs: done,
        saved,
        unchanged: destination.existed.then_some(destination.path),
    }
    .into())
}

/// A run stopped before its last epoch (Ctrl-C, a diverging loss) after saving what it had.
#[derive(Debug)]
pub struct Stopped {
    pub why: String,
    pub seconds: f64,
    /// Finished epochs, saved.
    pub epochs: usize,
    /// The checkpoint file they were saved to.
    pub saved: PathBuf,
    /// The checkpoint the run was to replace, left as it was.
    pub unchanged: Option<PathBuf>,
}

impl Stopped {
    /// What happened and where the epochs are, without how to go on.
    pub fn what(&self) -> String {
        let kept = self
            .unchanged
            .as_ref()
            .map_or(String::new(), |p| format!("; {} is unchanged", p.display()));
        format!(
            "{} after {:.1} s: saved the model after {} to {}{kept}",
            self.why,
            self.seconds,
            count(self.epochs, "finished epoch", "finished epochs"),
            self.saved.display()
        )
    }
}

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}; go on with the same command and --resume --out {}",
            self.what(),
            self.saved.with_extension("").display()
        )
    }
}

impl std::error::Error for Stopped {}

/// Every setting the run uses, resolved (the method's defaults filled in), in one line.
fn settings_line(settings: &TrainSettings, config: &TrainConfig) -> String {
    let o = &config.optimizer;
    let optimizer = match o.kind {
        OptimizerKind::Sgd { momentum } => format!("sgd momentum {momentum}"),
        OptimizerKind::Adam => "adam".to_string(),
    };
    let schedule = if o.milestones.is_empty() {
        String::new()
    } else {
        let epochs: Vec<String> = o.milestones.iter().map(|m| m.to_string()).collect();
        format!(" × {} from epochs {}", o.gamma, epochs.join(","))
    };
    let warmup = match config.epsilon_warmup_epochs {
        0 => String::new(),
        e => format!(" (grown over the first {})", count(e, "epoch", "epochs")),
    };
    let evaluation = config
        .eval_attack
        .as_ref()
        .map_or(String::new(), |a| format!(" and {}", a.name));
    format!(
        "settings: {} · {optimizer} lr {}{schedule} weight-decay {} · batch {} · {} · ε {}{warmup} \
         · evaluation after each epoch: clean{evaluation} on {} test images",
        config.method.label(),
        o.learning_rate,
        o.weight_decay,
        config.batch_size,
        count(config.epochs, "epoch", "epochs"),
        settings.epsilon(),
        config.eval_n
    )
}

fn epoch_line(m: &EpochMetrics, epochs: usize, attack: Option<&EvalAttack>) -> String {
    // No test images evaluated (--eval-n 0): say so rather than print NaN.
    let percent = |x: f64| {
        if x.is_nan() {
            "     –".to_string()
        } else {
            format!("{:6.2}%", 100.0 * x)
        }
    };
    let robust = match (m.test_robust_accuracy, attack) {
        (Some(acc), Some(attack)) => format!("  {} {}", attack.name, percent(acc)),
        _ => String::new(),
    };
    format!(
        "epoch {:>3}/{epochs}  lr {:<8.4}  loss {:.4}  train {}  clean {}{robust}  ({:.1} s)",
        m.epoch,
        m.learning_rate,
        m.loss,
        percent(m.train_accuracy),
        percent(m.test_clean_accuracy),
        m.seconds
    )
}
