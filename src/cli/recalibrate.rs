//! `rslad-tui recalibrate`: a checkpoint's batch-norm running statistics gathered again from
//! adversarial (or natural) training images, weights unchanged, saved as a new checkpoint
//! ([`crate::train::recalibrate`] does the work).

use super::args::{DataArgs, epsilon_or, load_checkpoint, step_size_or};
use super::interop::same_file;
use crate::checkpoint::{self, SaveInfo};
use crate::device::compute_device;
use crate::settings::{DataChoice, attack_defaults, check_fit, check_trained_on};
use crate::text::scrub;
use crate::train::{Method, RecalibrateConfig, StatsSource, Stopped, attack_words, recalibrate};
use anyhow::{Context, Result, bail};
use clap::Args;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct RecalibrateArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// The checkpoint (its .safetensors or .ron file, or their common stem). It must have batch
    /// norm (micro-cnn, resnet18, mobilenet-v2, wrn-34-10).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Which training images the statistics come from: adversarial (PGD with cross-entropy from
    /// a uniform start, as SAT's training attack) or natural.
    #[arg(long = "from", value_enum, default_value = "adversarial")]
    pub source: StatsSource,
    /// Training batches to run (the statistics the checkpoint came with weigh 0.9^batches).
    #[arg(long, default_value_t = 100)]
    pub batches: usize,
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// The attack's ε (default: the checkpoint's training attack's, else the dataset's).
    #[arg(long)]
    pub eps: Option<f32>,
    /// The attack's steps (default: the checkpoint's training attack's, else the dataset's).
    #[arg(long)]
    pub steps: Option<usize>,
    /// The attack's step size (default: the checkpoint's training attack's, else the dataset's).
    #[arg(long)]
    pub step_size: Option<f32>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The new checkpoint (without extension).
    #[arg(long)]
    pub out: PathBuf,
    /// Replace a checkpoint already at --out.
    #[arg(long)]
    pub overwrite: bool,
    /// Print how far each layer's statistics moved as JSON instead of lines.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &RecalibrateArgs) -> Result<()> {
    if args.batches == 0 || args.batch_size == 0 {
        bail!("--batches and --batch-size must be at least 1");
    }
    if args.steps == Some(0) {
        bail!("--steps must be at least 1");
    }
    let attack_given = args.eps.is_some() || args.steps.is_some() || args.step_size.is_some();
    if args.source == StatsSource::Natural && attack_given {
        bail!(
            "--eps, --steps and --step-size set the attack of --from adversarial; natural statistics take none"
        );
    }
    let (source_weights, _) = checkpoint::paths(&args.checkpoint);
    let (out_weights, _) = checkpoint::paths(&args.out);
    if same_file(&source_weights, &out_weights) {
        bail!("--out is the checkpoint itself; choose another name (the original is kept)");
    }
    checkpoint::check_destination(&args.out, args.overwrite, "pass --overwrite")
        .map_err(anyhow::Error::msg)?;
    let (model, card) = load_checkpoint(&args.checkpoint, None)?;
    if !card.spec.arch.has_batch_norm() {
        bail!(
            "{} has no batch norm: there are no running statistics to gather again",
            card.spec.arch
        );
    }
    let data = DataChoice::try_from(&args.data)?.load()?;
    check_fit(&card.spec, &data)?;
    check_trained_on(&card, data.kind, "the checkpoint")?;
    let method = card.training.as_ref().map(|t| &t.method);
    let config = RecalibrateConfig {
        source: args.source,
        attack: attack_settings(args, method, data.kind)?,
        batches: args.batches,
        batch_size: args.batch_size,
        augment: data.kind.augments(),
        seed: args.seed,
    };
    let started = Instant::now();
    let shifts = recalibrate(
        &model,
        &data.train,
        &config,
        &compute_device(),
        &mut |done| {
            if done % 10 == 0 || done == args.batches {
                eprintln!(
                    "batch {done}/{} ({:.0} s)",
                    args.batches,
                    started.elapsed().as_secs_f64()
                );
            }
        },
        crate::interrupt::flag(),
    );
    let shifts = match shifts {
        Ok(shifts) => shifts,
        Err(Stopped::Cancelled) => bail!("interrupted: nothing saved"),
        Err(Stopped::NoImages) => bail!("the dataset has no training images"),
    };
    let provenance = provenance(&config, &card, method);
    if let Some(folder) = args.out.parent().filter(|f| !f.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder)
            .with_context(|| format!("cannot create {}", folder.display()))?;
    }
    // The weights' training record and per-epoch metrics describe the checkpoint as it was
    // trained; they are not carried over (its metrics were measured on other statistics).
    let path = checkpoint::save(
        &model,
        &args.out,
        &SaveInfo {
            dataset: &provenance,
            training: None,
            metrics: &[],
            seed: args.seed,
        },
    )?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&shifts)?);
    } else {
        let attack = match args.source {
            StatsSource::Adversarial => {
                format!(", each attacked by {}", attack_words(&config.attack))
            }
            StatsSource::Natural => String::new(),
        };
        println!(
            "{} statistics of {} from {} batches of {}{attack} ({:.0} s)",
            args.source.name(),
            card.spec.arch,
            args.batches,
            args.batch_size,
            started.elapsed().as_secs_f64()
        );
        println!("layer          channels  mean shift (new σ)  variance old/new");
        for shift in &shifts {
            println!(
                "{:<14} {:>8}  {:>18.3}  {:>16.3}",
                shift.layer, shift.channels, shift.mean_shift, shift.variance_ratio
            );
        }
        println!(
            "saved to {}; compare the two with `rslad-tui diagnose --checkpoint ...`",
            scrub(&path.display().to_string())
        );
    }
    Ok(())
}

/// The adversarial statistics' attack: cross-entropy from a uniform start, with the ε, steps
/// and step size given, else the checkpoint's training attack's, else the dataset's.
fn attack_settings(
    args: &RecalibrateArgs,
    method: Option<&Method>,
    kind: crate::data::DatasetKind,
) -> Result<crate::attack::PgdConfig> {
    let defaults = attack_defaults(kind);
    let trained = method.and_then(Method::training_attack);
    let epsilon = epsilon_or(args.eps, trained.map_or(defaults.epsilon, |a| a.epsilon))?;
    let step_size = step_size_or(
        args.step_size,
        trained.map_or(defaults.step_size, |a| a.step_size),
    )?;
    let steps = args
        .steps
        .unwrap_or_else(|| trained.map_or(defaults.train_steps, |a| a.steps));
    Ok(Method::ce_attack(epsilon, step_size, steps))
}

/// The new card's dataset line: the data, and where the statistics and weights came from (the
/// weights by their file's SHA-256, not by a path on this machine).
fn provenance(
    config: &RecalibrateConfig,
    card: &crate::checkpoint::CheckpointCard,
    method: Option<&Method>,
) -> String {
    let inputs = match config.source {
        StatsSource::Natural => "natural training images".to_string(),
        StatsSource::Adversarial => format!(
            "adversarial training images ({})",
            attack_words(&config.attack)
        ),
    };
    let trained = method.map_or(String::new(), |m| format!(", trained by {}", m.label()));
    format!(
        "{}; batch-norm statistics re-estimated by `rslad-tui recalibrate` from {} batches of \
         {} {inputs}, seed {}; weights of {} (sha256 {}){trained}",
        card.dataset,
        config.batches,
        config.batch_size,
        config.seed,
        card.weights,
        card.weights_sha256
    )
}
