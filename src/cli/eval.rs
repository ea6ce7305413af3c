//! `rslad-tui eval`: a checkpoint's clean and robust accuracy under FGSM, PGD, CW∞ and
//! AutoAttack, as a table or JSON; `--resume` runs AutoAttack in blocks kept in a journal.

use super::args::{CheckpointArgs, DataArgs, attack_steps, epsilon_or, step_size_or};
use crate::attack::autoattack::{AutoAttackConfig, AutoAttackReport, Component, Version};
use crate::eval::journal::{Journal, JournalKey};
use crate::eval::shard::Shard;
use crate::eval::{self, EvalAttack, RobustnessReport};
use crate::progress::{Bars, Progress, Silent};
use crate::settings::{AttackName, DataChoice, attack_defaults, check_fit, check_trained_on};
use crate::zoo::Model;
use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use std::path::{Path, PathBuf};
use std::time::Instant;

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
    #[command(flatten)]
    pub checkpoint: CheckpointArgs,
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
    /// Run only shard I of N (I from 0) of the --resume evaluation: the blocks b with
    /// b % N == I, journaled in FILE.part-I-of-N, so N processes (a cluster's job array) share
    /// nothing but a folder. Only AutoAttack runs; --merge then reports the whole evaluation.
    #[arg(
        long,
        value_name = "I/N",
        requires = "resume",
        conflicts_with = "merge"
    )]
    pub shard: Option<Shard>,
    /// Merge the finished parts FILE.part-I-of-N of every shard into the --resume journal
    /// (the same command otherwise) and report the whole evaluation, as one run would.
    #[arg(long, requires = "resume")]
    pub merge: bool,
    /// Continue the --resume journal of an evaluation of fewer images (the first ones of this
    /// one, in whole blocks) on all --n images: its finished blocks are this evaluation's
    /// first blocks, the same images with the same seeds, so they count as they are.
    #[arg(long, requires = "resume", conflicts_with_all = ["shard", "merge"])]
    pub extend: bool,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn evaluate(args: &EvalArgs) -> Result<()> {
    if let Some(steps) = args.steps {
        attack_steps(steps)?;
    }
    let (model, card) = args.checkpoint.load()?;
    let data = DataChoice::try_from(&args.data)?.load()?;
    check_fit(&card.spec, &data)?;
    check_trained_on(&card, data.kind, "the checkpoint")?;
    let defaults = attack_defaults(data.kind);
    let epsilon = epsilon_or(args.eps, defaults.epsilon)?;
    let step_size = step_size_or(args.step_size, defaults.step_size)?;
    let steps = attack_steps(args.steps.unwrap_or(defaults.eval_steps))?;
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
    let progress: Box<dyn Progress> = if args.json {
        Box::new(Silent)
    } else {
        Box::new(Bars::default())
    };
    // Opened before any work, so a journal of another evaluation does not cost a PGD run.
    let mut journal = match (&autoattack_config, &args.resume) {
        (Some(config), Some(path)) => {
            let key = JournalKey::new(&card.weights_sha256, &test, config, args.block)?;
            if let Some(shard) = args.shard {
                if !attacks.is_empty() {
                    eprintln!(
                        "note: a shard runs only AutoAttack; the other attacks run at --merge"
                    );
                }
                return super::shard::run_shard(
                    &model,
                    &test,
                    key,
                    path,
                    shard,
                    args.json,
                    progress.as_ref(),
                );
            }
            if args.extend {
                extend_journal(&key, path, &test)?;
            }
            Some(open_journal(key, path, args.merge)?)
        }
        _ => None,
    };
    let Some(report) = attacks_until_interrupted(&model, &test, &attacks, args.seed, &*progress)?
    else {
        bail!("interrupted before the first attack finished: nothing to report");
    };
    // Ctrl-C: the attacks that finished (as a table; not into JSON a script reads), then a
    // failure a script can tell apart.
    let print_finished = |report: &RobustnessReport| {
        if !args.json && !report.attacks.is_empty() {
            print!("{}", report_table(report));
        }
    };
    if report.attacks.len() < attacks.len() {
        print_finished(&report);
        let skipped = if autoattack_config.is_some() {
            "; AutoAttack did not run"
        } else {
            ""
        };
        bail!(
            "interrupted: {} of {} attacks finished (above){skipped}",
            report.attacks.len(),
            attacks.len()
        );
    }
    let autoattack = match (autoattack_config, &args.resume, &mut journal) {
        (Some(_), Some(path), Some(journal)) => {
            let how = "run the same command to continue";
            let done = resume_autoattack(&model, &test, journal, path, &*progress, how);
            Some(done.inspect_err(|_| print_finished(&report))?)
        }
        (Some(config), _, _) => {
            let cancel = crate::interrupt::flag();
            match eval::autoattack_cancellable(&model, &test, &config, &*progress, cancel)? {
                Some(report) => Some(report),
                None => {
                    print_finished(&report);
                    bail!(
                        "interrupted: AutoAttack stopped unfinished (with --resume FILE it \
                         keeps every finished block and continues where it stopped)"
                    )
                }
            }
        }
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
            card.spec.arch,
            crate::text::scrub(&data.origin.to_string()),
            report.images
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

/// The attacks one after another, each stoppable by Ctrl-C at its next batch: the report of
/// those that finished (`None` if the clean pass itself was stopped).
fn attacks_until_interrupted(
    model: &Model,
    test: &crate::data::ImageSet,
    attacks: &[EvalAttack],
    seed: u64,
    progress: &dyn Progress,
) -> Result<Option<eval::RobustnessReport>> {
    let cancel = crate::interrupt::flag();
    let Some(mut report) = eval::evaluate_cancellable(model, test, &[], seed, progress, cancel)?
    else {
        return Ok(None);
    };
    for attack in attacks {
        let one = std::slice::from_ref(attack);
        match eval::evaluate_cancellable(model, test, one, seed, progress, cancel)? {
            Some(done) => report.attacks.extend(done.attacks),
            None => break,
        }
    }
    Ok(Some(report))
}

/// `eval --resume --extend`: the journal at `path` grown to the evaluation `key` of `test`,
/// saying so (nothing to do where there is no journal yet or it already has all the images).
fn extend_journal(key: &JournalKey, path: &Path, test: &crate::data::ImageSet) -> Result<()> {
    if let Some(before) = eval::journal::extend(path, key, test)? {
        eprintln!(
            "{}: extended from {before} to {} images; its blocks count as the first of this evaluation",
            path.display(),
            key.images
        );
    }
    Ok(())
}

/// `eval --resume`: the journal at `path`, continued (saying how far it got) or new; with
/// `merge`, assembled from the shards' parts first.
pub(super) fn open_journal(key: JournalKey, path: &Path, merge: bool) -> Result<Journal> {
    let blocks = key.blocks();
    super::shard::merge_or_refuse_parts(&key, path, merge)?;
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
pub(super) fn resume_autoattack(
    model: &Model,
    test: &crate::data::ImageSet,
    journal: &mut Journal,
    path: &Path,
    progress: &dyn Progress,
    how_to_continue: &str,
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
                done.first_image + done.report.images,
                100.0 * done.report.robust_accuracy,
                100.0 * done.robust_done as f64 / done.images_done as f64,
                done.images_done,
                started.elapsed().as_secs_f64()
            );
        },
    )?;
    let Some(report) = report else {
        bail!(
            "stopped by Ctrl-C: {} of {} blocks are in {}, the block in progress is lost; \
             {how_to_continue}",
            journal.blocks.len(),
            journal.block_indices().len(),
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
