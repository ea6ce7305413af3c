//! `rslad-tui compare`: the RSLAD paper's table. Trains the same student with each method
//! under the same budget, then evaluates every one with the same attacks (methods spec §4):
//! Clean, FGSM, PGD-SAT, PGD-TRADES, CW∞ and AutoAttack, written as Markdown and JSON.

use super::args::{DataArgs, Foreign, TrainingOptions};
use super::compare_rows::{self, TableKey};
use super::train::{Start, Stopped, train};
use crate::attack::autoattack::AutoAttackConfig;
use crate::data::{DatasetKind, ImageSet};
use crate::eval::journal::JournalKey;
use crate::eval::{self, EVAL_BATCH, EvalAttack};
use crate::progress::Bars;
use crate::settings::{AttackStart, DataChoice, MethodName, MethodSettings};
use crate::train::BnStats;
use anyhow::{Context, Result, bail};
use clap::Args;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Args, Debug)]
pub struct CompareArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// The student architecture, the same for every method.
    #[arg(long, default_value = "micro-cnn")]
    pub model: String,
    /// Methods to compare, in table order.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "natural,sat,trades,kd,ard,iad,rslad"
    )]
    pub methods: Vec<MethodName>,
    /// Training options, the same for every method; options that do not apply to a method
    /// (a teacher for natural, β for RSLAD, …) are left out for that method.
    #[command(flatten)]
    pub options: TrainingOptions,
    /// Evaluate on the first N test images (default: all).
    #[arg(long)]
    pub test_n: Option<usize>,
    /// Run AutoAttack on the first N test images (0: leave the AA column out).
    #[arg(long, default_value_t = 1000)]
    pub autoattack_n: usize,
    /// Run each method's AutoAttack in blocks of this many images, every finished block kept
    /// in OUT/METHOD.autoattack-journal.ron, so that `--resume` goes on from the last finished
    /// block. Each block has its own seed, as with `eval --resume --block`, whose numbers it
    /// gives; without it AutoAttack runs as one block that a stop loses.
    #[arg(long)]
    pub autoattack_block: Option<usize>,
    /// Folder for the checkpoints (one per method) and table.md / table.json.
    #[arg(long, default_value = "runs/compare")]
    pub out: PathBuf,
    /// Replace the methods' checkpoints already in --out (without it, a method whose
    /// checkpoint exists is refused before it trains).
    #[arg(long)]
    pub overwrite: bool,
    /// Go on with a comparison that was stopped or killed part-way, given the same options:
    /// a method whose row is in OUT/rows is kept as it is; a method whose checkpoint is in
    /// --out goes on from its last finished epoch, as `train --resume` does (a finished one is
    /// only evaluated); the others train from the start. A method stopped during its
    /// evaluation is evaluated again from the beginning.
    #[arg(long, conflicts_with_all = ["overwrite", "assemble"])]
    pub resume: bool,
    /// Train and evaluate this one method only, writing its row to OUT/rows/METHOD.json and
    /// no table: one job of a comparison spread over a cluster (docs/scale.md).
    #[arg(long, value_enum, conflicts_with_all = ["methods", "assemble"])]
    pub only: Option<MethodName>,
    /// Train nothing: build table.md and table.json from the rows of --methods in
    /// OUT/rows (written by --only jobs or an earlier run), naming the missing ones. The
    /// other options must be those the jobs were given.
    #[arg(long)]
    pub assemble: bool,
}

/// One row of the table.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Row {
    pub method: String,
    /// What this row changed from the method's reference recipe, e.g. "bn-stats adversarial"
    /// (empty for the reference; rows written before it existed read as empty).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
    pub clean: f64,
    /// Robust accuracy per attack column, in [`Table::columns`] order.
    pub robust: Vec<f64>,
    /// AutoAttack robust accuracy on the first `autoattack_images` test images.
    pub autoattack: Option<f64>,
    pub training_seconds: f64,
    pub evaluation_seconds: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Table {
    pub dataset: String,
    pub student: String,
    pub epsilon: f32,
    pub test_images: usize,
    pub autoattack_images: usize,
    /// AutoAttack in blocks of this many images, each with its own seed (`--autoattack-block`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub autoattack_block: Option<usize>,
    pub columns: Vec<String>,
    pub rows: Vec<Row>,
    /// Methods asked for whose rows do not exist yet (`--assemble`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
}

impl Table {
    /// A table of `key`'s dataset, student and columns, with no rows yet.
    pub fn empty(key: &TableKey) -> Table {
        Table {
            dataset: key.dataset.clone(),
            student: key.student.clone(),
            epsilon: key.epsilon,
            test_images: key.test_images,
            autoattack_images: key.autoattack_images,
            autoattack_block: key.autoattack_block,
            columns: key.columns.clone(),
            rows: Vec::new(),
            missing: Vec::new(),
        }
    }

    /// The table as Markdown, accuracies in percent.
    pub fn markdown(&self) -> String {
        let mut head = format!("| method | clean | {} |", self.columns.join(" | "));
        let mut rule = "|---|---:|".to_string() + &"---:|".repeat(self.columns.len());
        if self.autoattack_images > 0 {
            head += " AA |";
            rule += "---:|";
        }
        head += " train time | eval time |";
        rule += "---:|---:|";
        let blocks = self
            .autoattack_block
            .map_or(String::new(), |b| format!(", in blocks of {b}"));
        let mut out = format!(
            "{} student on {}, ε = {}, {} test images (AutoAttack: first {}{blocks})\n\n{head}\n{rule}\n",
            self.student, self.dataset, self.epsilon, self.test_images, self.autoattack_images
        );
        for row in &self.rows {
            let method = if row.variant.is_empty() {
                row.method.clone()
            } else {
                format!("{} ({})", row.method, row.variant)
            };
            out += &format!("| {method} | {:.2} |", 100.0 * row.clean);
            for r in &row.robust {
                out += &format!(" {:.2} |", 100.0 * r);
            }
            if let Some(aa) = row.autoattack {
                out += &format!(" {:.2} |", 100.0 * aa);
            }
            out += &format!(
                " {:.0} s | {:.0} s |\n",
                row.training_seconds, row.evaluation_seconds
            );
        }
        if !self.missing.is_empty() {
            out += &format!("\nMissing rows: {}\n", self.missing.join(", "));
        }
        out
    }
}

/// What `options` change from `method`'s reference recipe, for its row: a forced start of the
/// training attack, batch-norm statistics other than both forwards'.
fn variant(options: &TrainingOptions, method: MethodName) -> String {
    let mut parts = Vec::new();
    if options.attack_start != AttackStart::Reference && method.trains_adversarially() {
        parts.push(format!("start {}", options.attack_start.name()));
    }
    if options.bn_stats != BnStats::Both
        && MethodSettings::new(method).set_bn_stats(options.bn_stats)
    {
        parts.push(format!("bn-stats {}", options.bn_stats.name()));
    }
    parts.join(", ")
}

/// The evaluation columns of the paper's tables, with each attack's reference settings.
fn columns(kind: DatasetKind, epsilon: f32) -> Vec<EvalAttack> {
    let named = |name: &str, attack: EvalAttack| EvalAttack {
        name: name.to_string(),
        ..attack
    };
    let (pgd_sat, pgd_trades, cw) = match kind {
        // Madry's and TRADES's MNIST evaluations are both 40 steps of 0.01 from a random start.
        DatasetKind::Mnist | DatasetKind::FashionMnist => (
            EvalAttack::pgd(epsilon, 40, 0.01),
            EvalAttack::pgd(epsilon, 40, 0.01),
            EvalAttack::cw(epsilon, 40, 0.01),
        ),
        DatasetKind::Cifar10 | DatasetKind::Cifar100 => (
            EvalAttack::pgd(epsilon, 20, 2.0 / 255.0),
            EvalAttack::pgd(epsilon, 20, 0.003),
            EvalAttack::cw(epsilon, 30, 2.0 / 255.0),
        ),
    };
    vec![
        named("FGSM", EvalAttack::fgsm(epsilon)),
        named("PGD-SAT", pgd_sat),
        named("PGD-TRADES", pgd_trades),
        named("CW∞", cw),
    ]
}

pub fn run(args: &CompareArgs) -> Result<()> {
    let repeated = |(i, m): (usize, &MethodName)| args.methods[..i].contains(m).then_some(*m);
    if let Some(twice) = args.methods.iter().enumerate().find_map(repeated) {
        bail!("--methods names {twice} twice: each method is one row of the table");
    }
    if args.methods.is_empty() {
        bail!("--methods needs at least one method");
    }
    if args.autoattack_block == Some(0) {
        bail!("--autoattack-block must be at least 1 image");
    }
    if args.assemble {
        return assemble(args);
    }
    // One job of a spread-out comparison trains its method alone.
    let methods = match args.only {
        Some(method) => vec![method],
        None => args.methods.clone(),
    };
    let distils = methods.iter().any(|m| m.distils());
    if distils && args.options.teacher.is_none() {
        bail!("kd, ard, iad and rslad distil from a teacher: give its checkpoint with --teacher");
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    // Every method's settings checked before the first one trains.
    let settings = methods
        .iter()
        .map(|&method| {
            let settings =
                args.options
                    .settings(&args.data, &args.model, method, Foreign::LeaveOut)?;
            let teacher = args.options.teacher_for(method, Foreign::LeaveOut)?;
            Ok((method, settings, teacher))
        })
        .collect::<Result<Vec<_>>>()?;
    let Evaluation {
        key,
        test,
        aa_test,
        attacks,
    } = evaluation(args)?;
    let epsilon = key.epsilon;
    let mut table = Table::empty(&key);
    for (method, settings, teacher) in &settings {
        let name = method.name().to_string();
        println!("\n== {name} ==");
        if args.resume
            && let Some(row) = compare_rows::read_row(&args.out, &key, &name)?
        {
            println!(
                "kept its row from {} (--resume)",
                compare_rows::row_path(&args.out, &name).display()
            );
            table.rows.push(row);
            if args.only.is_some() {
                println!("\n{}", table.markdown());
                return Ok(());
            }
            write_table(&table, &args.out)?;
            continue;
        }
        let checkpoint = args.out.join(&name);
        let (start, seconds_before) = start_of(args, &checkpoint, &name, settings.epochs.get())?;
        let started = Instant::now();
        let trained = train(
            settings,
            teacher.as_deref(),
            Some(checkpoint.clone()),
            start,
        );
        let (model, _) = trained.map_err(|e| {
            let kept = if table.rows.is_empty() {
                "no method finished".to_string()
            } else {
                format!(
                    "{} keeps the finished methods",
                    args.out.join("table.md").display()
                )
            };
            // Epochs saved where --resume looks for them: say how to go on with the comparison.
            match e.downcast_ref::<Stopped>() {
                Some(stopped) if stopped.saved.with_extension("") == checkpoint => {
                    anyhow::anyhow!(
                        "{name}: {}; {name} is not evaluated, {kept}; go on with the same \
                         command and --resume",
                        stopped.what()
                    )
                }
                // Beside a checkpoint --overwrite was to replace: compare resumes only from
                // its own name.
                Some(stopped) => anyhow::anyhow!(
                    "{name}: {}; {name} is not evaluated, {kept}; to go on from it, put it in \
                     place of {} and run the same command with --resume instead of --overwrite",
                    stopped.what(),
                    checkpoint.display()
                ),
                None => anyhow::anyhow!("{name}: {e:#}; {name} is not evaluated, {kept}"),
            }
        })?;
        let training_seconds = seconds_before + started.elapsed().as_secs_f64();

        let started = Instant::now();
        let bars = Bars::default();
        let report = eval::evaluate(&model, &test, &attacks, args.options.seed, &bars)?;
        let autoattack = if aa_test.is_empty() {
            None
        } else {
            let config = AutoAttackConfig {
                seed: args.options.seed,
                batch_size: EVAL_BATCH,
                ..AutoAttackConfig::standard(epsilon)
            };
            let report = match args.autoattack_block {
                None => eval::autoattack(&model, &aa_test, &config, &bars)?,
                Some(block) => {
                    let card = crate::checkpoint::read_card(&checkpoint)?;
                    let key = JournalKey::new(&card.weights_sha256, &aa_test, &config, block)?;
                    let path = journal_path(&args.out, &name);
                    let mut journal = super::eval::open_journal(key, &path, false)?;
                    super::eval::resume_autoattack(
                        &model,
                        &aa_test,
                        &mut journal,
                        &path,
                        &bars,
                        "run the same command with --resume (not --overwrite) to continue",
                    )
                    .with_context(|| format!("{name}: AutoAttack"))?
                }
            };
            for flag in &report.flags {
                eprintln!("WARNING (AutoAttack, {name}): {}", flag.message());
            }
            Some(report.robust_accuracy)
        };
        table.rows.push(Row {
            variant: variant(&args.options, *method),
            method: name,
            clean: report.clean_accuracy,
            robust: report.attacks.iter().map(|a| a.robust_accuracy).collect(),
            autoattack,
            training_seconds,
            evaluation_seconds: started.elapsed().as_secs_f64(),
        });
        // Written after every method, so a long comparison stopped half-way keeps its rows.
        let row = table.rows.last().expect("just pushed");
        compare_rows::write_row(&args.out, &key, row)?;
        if args.only.is_some() {
            println!("\n{}", table.markdown());
            println!(
                "row written to {}; build the table with the same command, --assemble instead \
                 of --only",
                compare_rows::row_path(&args.out, &row.method).display()
            );
            return Ok(());
        }
        write_table(&table, &args.out)?;
    }
    println!("\n{}", table.markdown());
    println!(
        "written to {} and {}",
        args.out.join("table.md").display(),
        args.out.join("table.json").display()
    );
    Ok(())
}

/// Where a method's AutoAttack blocks are kept (`--autoattack-block`).
pub fn journal_path(out: &Path, method: &str) -> PathBuf {
    out.join(format!("{method}.autoattack-journal.ron"))
}

/// How the training of a method whose checkpoint goes to `checkpoint` starts, and the seconds
/// its finished epochs took before (a resumed run's row counts its whole training).
/// With --overwrite, an AutoAttack journal of the checkpoint being replaced is removed; a
/// fresh start refuses one left from an earlier run before it trains. A checkpoint to resume
/// may not have finished more epochs than the comparison's (it would be evaluated as a row of
/// a shorter run); fewer go on to them, as `train --resume` does. Its teacher is not recorded
/// in a checkpoint, so it is not checked.
fn start_of(
    args: &CompareArgs,
    checkpoint: &Path,
    method: &str,
    epochs: usize,
) -> Result<(Start, f64)> {
    let journal = journal_path(&args.out, method);
    if args.overwrite {
        if journal.exists() {
            std::fs::remove_file(&journal)
                .with_context(|| format!("cannot remove {}", journal.display()))?;
        }
        return Ok((Start::Overwrite, 0.0));
    }
    if !args.resume || !crate::checkpoint::exists(checkpoint) {
        if journal.exists() {
            // With --resume the run's checkpoint is gone: its blocks cannot be continued.
            let way = if args.resume {
                format!(
                    "but not its checkpoint {}: move the file away",
                    checkpoint.display()
                )
            } else {
                "go on with that run with --resume, or move the file away".to_string()
            };
            bail!(
                "{}: the AutoAttack blocks of an earlier run of {method} are there, {way}",
                journal.display()
            );
        }
        return Ok((Start::Fresh, 0.0));
    }
    let card = crate::checkpoint::read_card(checkpoint).with_context(|| {
        format!(
            "--resume: cannot read {}",
            crate::checkpoint::paths(checkpoint).1.display()
        )
    })?;
    let finished = card.metrics.len();
    if finished > epochs {
        bail!(
            "--resume: {} has {finished} finished epochs, more than this comparison's \
             --epochs {epochs}; give the run's own --epochs or move it away",
            checkpoint.display()
        );
    }
    Ok((Start::Resume, card.metrics.iter().map(|m| m.seconds).sum()))
}

/// What every row of one table is evaluated on, from the command line.
struct Evaluation {
    key: TableKey,
    test: ImageSet,
    aa_test: ImageSet,
    attacks: Vec<EvalAttack>,
}

fn evaluation(args: &CompareArgs) -> Result<Evaluation> {
    let choice = DataChoice::try_from(&args.data)?;
    let kind = choice.kind;
    let dataset = choice.load()?;
    let epsilon = args.options.eps.unwrap_or(kind.default_epsilon());
    let test_n = args
        .test_n
        .unwrap_or(dataset.test.len())
        .min(dataset.test.len());
    let test = dataset.test.take(test_n);
    let aa_test = dataset.test.take(args.autoattack_n.min(test_n));
    let attacks = columns(kind, epsilon);
    let identity = compare_rows::options_identity(&args.options)?;
    let key = TableKey {
        dataset: dataset.origin.clone(),
        student: args.model.clone(),
        epsilon,
        test_images: test.len(),
        autoattack_images: aa_test.len(),
        autoattack_block: args.autoattack_block.filter(|_| !aa_test.is_empty()),
        columns: attacks.iter().map(|a| a.name.clone()).collect(),
        training_options: compare_rows::options_fingerprint(&identity),
        training_options_text: Some(format!("{identity:?}")),
        path_spelled_training_options: Some(compare_rows::options_fingerprint(&args.options)),
    };
    Ok(Evaluation {
        key,
        test,
        aa_test,
        attacks,
    })
}

/// `compare --assemble`: the table from the rows in --out, the missing ones named.
fn assemble(args: &CompareArgs) -> Result<()> {
    let key = evaluation(args)?.key;
    let methods: Vec<&str> = args.methods.iter().map(|m| m.name()).collect();
    let table = compare_rows::assemble(&args.out, &key, &methods)?;
    write_table(&table, &args.out)?;
    println!("{}", table.markdown());
    println!(
        "written to {} and {}",
        args.out.join("table.md").display(),
        args.out.join("table.json").display()
    );
    if !table.missing.is_empty() {
        eprintln!(
            "warning: no rows yet for {}: run the same command with --only METHOD for each",
            table.missing.join(", ")
        );
    }
    Ok(())
}

fn write_table(table: &Table, folder: &Path) -> Result<()> {
    let write = |name: &str, contents: String| -> Result<()> {
        let path = folder.join(name);
        crate::atomic::write(&path, contents.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))
    };
    write("table.md", table.markdown())?;
    write("table.json", serde_json::to_string_pretty(table)?)
}
