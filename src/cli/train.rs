//! `rslad-tui train`: train a student and save its checkpoint.

use super::args::TrainArgs;
use crate::checkpoint::{self, SaveInfo};
use crate::device::autodiff_device;
use crate::eval::EvalAttack;
use crate::progress::Bars;
use crate::settings::{TrainSettings, check_teacher_fits};
use crate::train::{EpochMetrics, Method, StepOutcome, Trainer};
use crate::zoo::{Model, ModelSpec};
use anyhow::{Result, bail};
use std::path::{Path, PathBuf};
use std::time::Instant;

pub fn run(args: &TrainArgs) -> Result<()> {
    let settings = TrainSettings::try_from(args)?;
    let teacher = args
        .options
        .teacher_for(args.method, super::args::Foreign::Refuse)?;
    train(&settings, teacher.as_deref(), args.out.clone()).map(|_| ())
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
/// `out` (default runs/MODEL-METHOD).
pub fn train(
    settings: &TrainSettings,
    teacher: Option<&Path>,
    out: Option<PathBuf>,
) -> Result<(Model, Vec<EpochMetrics>)> {
    let data = settings.data.load()?;
    let (spec, config) = settings.resolve(&data)?;
    let arch = spec.arch;
    let epsilon = settings.epsilon();
    let teacher = load_teacher(teacher, &config.method, &spec)?;
    let out =
        out.unwrap_or_else(|| PathBuf::from(format!("runs/{}-{}", arch, config.method.name())));

    let model = Model::build(spec, settings.seed, &autodiff_device())?;
    println!(
        "training {} ({} parameters) with {} on {} ({} training images), ε = {epsilon}, seed {}",
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
    let mut diverged = None;
    for _ in 0..epochs {
        let metrics = match trainer.step_batches(&data, usize::MAX, &bars, cancel) {
            StepOutcome::EpochDone(metrics) => metrics,
            StepOutcome::Diverged { batch, loss } => {
                eprintln!(
                    "the loss became {loss} at batch {batch} of epoch {}: training stopped \
                     (is --lr {} too high?); saving the model after epoch {}",
                    trainer.epochs_done() + 1,
                    settings.optimizer.lr,
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
            epoch_line(&metrics, epochs, trainer.config.eval_attack.as_ref())
        );
    }
    let path = checkpoint::save(
        &trainer.model,
        &out,
        &SaveInfo {
            dataset: data.kind.name(),
            training: Some(&trainer.config),
            metrics: &trainer.history,
            seed: settings.seed,
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
