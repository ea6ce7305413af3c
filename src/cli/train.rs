//! `rslad-tui train`: train a student and save its checkpoint.

use super::args::TrainArgs;
use crate::checkpoint::{self, SaveInfo};
use crate::device::autodiff_device;
use crate::eval::EvalAttack;
use crate::progress::Bars;
use crate::settings::{TrainSettings, check_teacher_fits};
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
    train(
        &settings,
        teacher.as_deref(),
        args.out.clone(),
        args.overwrite,
    )
    .map(|_| ())
}

/// Where a run's checkpoint goes, checked before any training: writable, and not an existing
/// checkpoint unless replacing it was asked for.
struct Destination {
    path: PathBuf,
    /// A checkpoint was there before the run.
    existed: bool,
}

impl Destination {
    fn prepare(path: PathBuf, overwrite: bool) -> Result<Destination> {
        let (weights, card) = checkpoint::paths(&path);
        let existed = weights.exists() || card.exists();
        if existed && !overwrite {
            bail!(
                "{} already holds a checkpoint: choose another --out, or pass --overwrite to \
                 replace it",
                path.display()
            );
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
        Ok(Destination { path, existed })
    }

    /// Where an incomplete run (stopped or diverged) saves: the destination if nothing was
    /// there, else a fresh name beside it, so a finished checkpoint is never replaced by a
    /// worse one.
    fn for_incomplete_run(&self) -> PathBuf {
        if !self.existed {
            return self.path.clone();
        }
        let stem = self.path.with_extension("");
        (1..)
            .map(|n| {
                let suffix = if n == 1 {
                    String::new()
                } else {
                    format!("-{n}")
                };
                PathBuf::from(format!("{}-stopped{suffix}", stem.display()))
            })
            .find(|candidate| {
                let (weights, card) = checkpoint::paths(candidate);
                !weights.exists() && !card.exists()
            })
            .expect("some name is free")
    }
}

/// The teacher checkpoint of a distillation method, checked against the student's data shape.
fn load_teacher(
    path: Option<&Path>,
    method: &Method,
    student: &ModelSpec,
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
    println!("teacher: {} from {}", card.spec.arch, path.display());
    Ok(Some(teacher))
}

/// Trains `settings` (from `teacher` for a distillation method) and saves the checkpoint at
/// `out` (default runs/MODEL-METHOD), replacing one already there only if `overwrite`. A run
/// stopped by Ctrl-C or by a diverging loss saves its finished epochs (never over an existing
/// checkpoint) and fails, saying what it kept.
pub fn train(
    settings: &TrainSettings,
    teacher: Option<&Path>,
    out: Option<PathBuf>,
    overwrite: bool,
) -> Result<(Model, Vec<EpochMetrics>)> {
    let data = settings.data.load()?;
    let (spec, config) = settings.resolve(&data)?;
    let arch = spec.arch;
    let epsilon = settings.epsilon();
    let teacher = load_teacher(teacher, &config.method, &spec)?;
    let out =
        out.unwrap_or_else(|| PathBuf::from(format!("runs/{}-{}", arch, config.method.name())));
    let destination = Destination::prepare(out, overwrite)?;

    let model = Model::build(spec, settings.seed, &autodiff_device())?;
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
    let cancel = crate::interrupt::flag();
    let bars = Bars::default();
    // The model as of the last finished epoch: what is saved if Ctrl-C stops an epoch midway,
    // so the checkpoint and its card (which counts finished epochs) agree.
    let mut finished = trainer.model.clone();
    let mut stopped = None;
    for _ in 0..epochs {
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
    }
    let info = SaveInfo {
        dataset: data.kind.name(),
        training: Some(&trainer.config),
        metrics: &trainer.history,
        seed: settings.seed,
    };
    let seconds = started.elapsed().as_secs_f64();
    let Some(why) = stopped else {
        let path = checkpoint::save(&trainer.model, &destination.path, &info)?;
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
    let path = checkpoint::save(&trainer.model, &destination.for_incomplete_run(), &info)?;
    let kept = if destination.existed {
        format!("; {} is unchanged", destination.path.display())
    } else {
        String::new()
    };
    bail!(
        "{why} after {seconds:.1} s: saved the model after {} to {}{kept}",
        crate::text::count(done, "finished epoch", "finished epochs"),
        path.display()
    )
}

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
