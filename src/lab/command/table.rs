//! The command table: one row per command, each with its parser. Adding a command is a row
//! here, its parser below, and (for an engine command) a variant and its handler.

use super::words::{
    count, epoch_list, index, key_count, key_text, key_value, none, one, session_name, words,
};
use super::{
    AttackRequest, Command, EngineCommand, MethodChange, OptimizerChange, SessionCommand, UiCommand,
};
use crate::settings::values::{number, whole};
use crate::settings::{
    AttackName, AttackStart, Epsilon, Gamma, LearningRate, MethodName, MethodOption,
    MethodSettings, Milestones, Momentum, OptimizerName, StepSize, WeightDecay,
};
use crate::train::{BnStats, StatsSource};
use crate::zoo::Arch;
use clap::ValueEnum;

/// What a command's argument completes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg {
    /// One of these words.
    Words(&'static [&'static str]),
    /// `key=` for one of these keys (repeatable, so it is the last argument).
    Keys(&'static [&'static str]),
    Model,
    Method,
    Attack,
    Command,
    /// A dataset name or a folder.
    Data,
    /// "embedded", "none" or a checkpoint path.
    Teacher,
    /// "session" or a checkpoint path.
    SaveTarget,
    Path,
    /// A number: nothing to complete.
    Number,
}

/// One row of the command table.
#[derive(Clone, Copy, Debug)]
pub struct CommandSpec {
    pub name: &'static str,
    pub usage: &'static str,
    pub summary: &'static str,
    /// The arguments in order; the last one repeats.
    pub args: &'static [Arg],
    /// Parses the text after the name (trimmed); the error is one line, without the usage.
    pub parse: fn(&str) -> Result<Command, String>,
}

/// The keys `method` accepts: the method's own options and the training attack's numbers.
const METHOD_KEYS: [&str; 10] = [
    "alpha",
    "beta",
    "temperature",
    "iad-warmup",
    "rslad-scale",
    "steps",
    "step-size",
    "eps-warmup",
    "start",
    "bn-stats",
];

/// The keys `optimizer` accepts (the `train` options of the same names).
const OPTIMIZER_KEYS: [&str; 4] = ["momentum", "weight-decay", "gamma", "milestones"];

const ATTACK_KEYS: [&str; 3] = ["eps", "steps", "n"];

/// Longest title and note a marker may have.
pub const MARK_TITLE_LIMIT: usize = 200;
pub const MARK_NOTE_LIMIT: usize = 10_000;

/// Every command, in the order `help` lists them.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "step",
        usage: "step [N] | step batch [N]",
        summary: "train N epochs (default 1), or N batches of the epoch under way",
        args: &[Arg::Words(&["batch"]), Arg::Number],
        parse: parse_step,
    },
    CommandSpec {
        name: "pause",
        usage: "pause",
        summary: "stop the running work at the next batch and skip the commands queued \
                  behind it; `step` resumes the epoch",
        args: &[],
        parse: |rest| none("pause", rest).map(|()| UiCommand::Stop.into()),
    },
    CommandSpec {
        name: "stop",
        usage: "stop",
        summary: "the same as pause (Ctrl-C too)",
        args: &[],
        parse: |rest| none("stop", rest).map(|()| UiCommand::Stop.into()),
    },
    CommandSpec {
        name: "method",
        usage: "method NAME [key=value ...]",
        summary: "training method: natural sat trades kd ard iad rslad; keys alpha beta \
                  temperature iad-warmup rslad-scale steps step-size eps-warmup (fractions \
                  such as alpha=5/6 allowed); start=reference, uniform, gaussian or none (where \
                  the training attack starts); bn-stats=both, adversarial, natural or strong \
                  (trades and rslad: which training forwards update the batch-norm statistics; \
                  strong: a third forward on a SAT-attacked copy of the batch)",
        args: &[Arg::Method, Arg::Keys(&METHOD_KEYS)],
        parse: parse_method,
    },
    CommandSpec {
        name: "student",
        usage: "student MODEL",
        summary: "a fresh student of this architecture (see the zoo)",
        args: &[Arg::Model],
        parse: |rest| match words(rest).as_slice() {
            [model] => Ok(EngineCommand::Student(
                Arch::from_name(model).map_err(|e| e.to_string())?,
            )
            .into()),
            _ => Err("give one model name".into()),
        },
    },
    CommandSpec {
        name: "teacher",
        usage: "teacher PATH | embedded | embedded-sat | none",
        summary: "the teacher for kd, ard, iad and rslad: a checkpoint, a shipped one (the \
                  TRADES authors' SmallCNN, or this project's SAT small-cnn), or none",
        args: &[Arg::Teacher],
        parse: |rest| {
            one(
                rest,
                "give a checkpoint path, `embedded`, `embedded-sat` or `none`",
            )
            .map(|t| EngineCommand::Teacher(t).into())
        },
    },
    CommandSpec {
        name: "data",
        usage: "data mnist|fashion|cifar10|cifar100|FOLDER",
        summary: "switch dataset (from the data folder, `data` by default) or data folder; \
                  the student starts fresh",
        args: &[Arg::Data],
        parse: |rest| {
            one(rest, "give a dataset name or a data folder").map(|d| EngineCommand::Data(d).into())
        },
    },
    CommandSpec {
        name: "eps",
        usage: "eps VALUE",
        summary: "attack radius ε in L∞ for training and attacks (e.g. 0.3, 8/255)",
        args: &[Arg::Number],
        parse: |rest| {
            let value = number(&one(rest, "give ε")?)?;
            let eps = Epsilon::new(value).map_err(|e| e.named("ε"))?;
            Ok(EngineCommand::Eps(eps).into())
        },
    },
    CommandSpec {
        name: "lr",
        usage: "lr VALUE",
        summary: "learning rate from the next batch on",
        args: &[Arg::Number],
        parse: |rest| {
            let value = number(&one(rest, "give the learning rate")?)?;
            let lr = LearningRate::new(value).map_err(|e| e.named("the learning rate"))?;
            Ok(EngineCommand::Lr(lr).into())
        },
    },
    CommandSpec {
        name: "optimizer",
        usage: "optimizer sgd|adam [momentum=M] [weight-decay=W] [gamma=G] [milestones=E1,E2,...]",
        summary: "optimizer and learning-rate schedule (lr × gamma at each milestone epoch), e.g. \
                  the paper's CIFAR one: optimizer sgd momentum=0.9 weight-decay=2e-4 \
                  milestones=215,260,285; keys left out keep their value",
        args: &[Arg::Words(&["sgd", "adam"]), Arg::Keys(&OPTIMIZER_KEYS)],
        parse: parse_optimizer,
    },
    CommandSpec {
        name: "seed",
        usage: "seed N",
        summary: "random seed of shuffling and attacks; `reset` also draws new weights from it",
        args: &[Arg::Number],
        parse: |rest| {
            let text = one(rest, "give a seed")?;
            text.parse::<u64>()
                .map(|seed| EngineCommand::Seed(seed).into())
                .map_err(|_| format!("the seed must be a whole number ≥ 0; got `{text}`"))
        },
    },
    CommandSpec {
        name: "show",
        usage: "show sample N | show misclassified",
        summary: "select test image N, or the next one the student gets wrong under PGD",
        args: &[Arg::Words(&["sample", "misclassified"]), Arg::Number],
        parse: |rest| match words(rest).as_slice() {
            ["sample", n] => Ok(EngineCommand::ShowSample(index(n)?).into()),
            ["misclassified"] => Ok(EngineCommand::ShowMisclassified.into()),
            ["sample"] => Err("which sample? give its index in the test set".into()),
            _ => Err("show what? `sample N` or `misclassified`".into()),
        },
    },
    CommandSpec {
        name: "next",
        usage: "next",
        summary: "select the next test image (→ in the soft-label and perturbation panels)",
        args: &[],
        parse: |rest| none("next", rest).map(|()| EngineCommand::Next.into()),
    },
    CommandSpec {
        name: "prev",
        usage: "prev",
        summary: "select the previous test image (←)",
        args: &[],
        parse: |rest| none("prev", rest).map(|()| EngineCommand::Prev.into()),
    },
    CommandSpec {
        name: "attack",
        usage: "attack fgsm|pgd|cw|autoattack [eps=E] [steps=S] [n=N]",
        summary: "attack the student on the first N test images (default 500; AutoAttack 100)",
        args: &[Arg::Attack, Arg::Keys(&ATTACK_KEYS)],
        parse: parse_attack,
    },
    CommandSpec {
        name: "eval",
        usage: "eval [n=N]",
        summary: "clean, FGSM, PGD and CW∞ accuracy of the student on N test images (default 1000)",
        args: &[Arg::Keys(&["n"])],
        parse: |rest| {
            Ok(EngineCommand::Eval {
                n: image_count(rest)?,
            }
            .into())
        },
    },
    CommandSpec {
        name: "diagnose",
        usage: "diagnose [n=N] [image=I]",
        summary: "check the student for gradient masking on N test images (default 200): FGSM \
                  against PGD, the start, more steps, ε = 1, Square after APGD-CE, zero \
                  gradients, the loss around test image I (default: the correctly classified \
                  one with the highest loss)",
        args: &[Arg::Keys(&["n", "image"])],
        parse: parse_diagnose,
    },
    CommandSpec {
        name: "recalibrate",
        usage: "recalibrate [adversarial|natural] [batches=N]",
        summary: "gather the student's batch-norm running statistics again from N training \
                  batches (default 100), adversarial (PGD, cross-entropy, uniform start, the \
                  training attack's ε, step size and steps) or natural, weights unchanged: is a masked \
                  student's weakness in its weights or in its statistics? `diagnose` after",
        args: &[
            Arg::Words(&["adversarial", "natural"]),
            Arg::Keys(&["batches"]),
        ],
        parse: parse_recalibrate,
    },
    CommandSpec {
        name: "results",
        usage: "results [--markdown]",
        summary: "every attack table of the session side by side (model, method, training \
                  done, attack, ε, images, clean and robust accuracy), or as a Markdown table",
        args: &[Arg::Words(&["--markdown"])],
        parse: |rest| match words(rest).as_slice() {
            [] => Ok(UiCommand::Results { markdown: false }.into()),
            ["--markdown"] => Ok(UiCommand::Results { markdown: true }.into()),
            _ => Err("`results` takes only `--markdown`".into()),
        },
    },
    CommandSpec {
        name: "save",
        usage: "save [PATH] [--overwrite] | save session NAME [--overwrite]",
        summary: "save the student as a checkpoint (default runs/workbench-MODEL-METHOD, or \
                  -2, -3, … if that one exists; its card counts finished epochs, and a save \
                  mid-epoch says so), or the session so far as sessions/NAME.ron; an existing \
                  checkpoint or session is replaced only with --overwrite, any other file never",
        args: &[Arg::SaveTarget],
        parse: |rest| {
            let mut words = words(rest);
            let overwrite = words.contains(&"--overwrite");
            words.retain(|w| *w != "--overwrite");
            match words.as_slice() {
                [] if overwrite => Err("--overwrite needs a path: `save PATH --overwrite`".into()),
                [] => Ok(EngineCommand::Save {
                    path: None,
                    overwrite,
                }
                .into()),
                ["session", name] => session_name(name)
                    .map(|name| SessionCommand::SaveSession { name, overwrite }.into()),
                ["session"] => Err("give the session a name".into()),
                [path] if path.starts_with("--") => Err(format!("unknown option {path}")),
                [path] => Ok(EngineCommand::Save {
                    path: Some(path.to_string()),
                    overwrite,
                }
                .into()),
                _ => Err("give at most one path (no spaces)".into()),
            }
        },
    },
    CommandSpec {
        name: "load",
        usage: "load PATH | load session NAME",
        summary: "load a checkpoint as the student, or re-run a recorded session here, \
                  checking every result against its recording",
        args: &[Arg::SaveTarget],
        parse: |rest| match words(rest).as_slice() {
            ["session", name] => session_name(name).map(|n| SessionCommand::LoadSession(n).into()),
            ["session"] => Err("which session? give its name".into()),
            _ => one(rest, "give the checkpoint's path").map(|p| EngineCommand::Load(p).into()),
        },
    },
    CommandSpec {
        name: "mark",
        usage: "mark \"TITLE\" [NOTE]",
        summary: "put a marker in the session (a lesson's section title and note; playback \
                  jumps between markers)",
        args: &[Arg::Number],
        parse: parse_mark,
    },
    CommandSpec {
        name: "title",
        usage: "title \"TITLE\" [INTRO]",
        summary: "the session's title and introduction, shown on the title screen when it is \
                  played back",
        args: &[Arg::Number],
        parse: |rest| {
            let (title, intro) = quoted_title(rest, "give the session a title")?;
            Ok(SessionCommand::Title { title, intro }.into())
        },
    },
    CommandSpec {
        name: "recover",
        usage: "recover",
        summary: "re-run the session a crash or a killed terminal left unfinished (offered at \
                  start)",
        args: &[],
        parse: |rest| none("recover", rest).map(|()| SessionCommand::Recover.into()),
    },
    CommandSpec {
        name: "reset",
        usage: "reset",
        summary: "a fresh student from the seed; curves cleared",
        args: &[],
        parse: |rest| none("reset", rest).map(|()| EngineCommand::Reset.into()),
    },
    CommandSpec {
        name: "help",
        usage: "help [COMMAND]",
        summary: "this list, or one command's usage",
        args: &[Arg::Command],
        parse: |rest| match words(rest).as_slice() {
            [] => Ok(UiCommand::Help(None).into()),
            [topic] if spec(topic).is_some() => Ok(UiCommand::Help(Some(topic.to_string())).into()),
            [topic] => Err(format!("no command `{topic}`")),
            _ => Err("give at most one command".into()),
        },
    },
    CommandSpec {
        name: "quit",
        usage: "quit",
        summary: "leave (asks first if the student is unsaved)",
        args: &[],
        parse: |rest| none("quit", rest).map(|()| UiCommand::Quit.into()),
    },
];

/// The table row of a command name.
pub fn spec(name: &str) -> Option<&'static CommandSpec> {
    COMMANDS.iter().find(|c| c.name == name)
}

fn parse_step(rest: &str) -> Result<Command, String> {
    let command = match words(rest).as_slice() {
        [] => EngineCommand::Step { epochs: 1 },
        ["batch"] => EngineCommand::StepBatches { batches: 1 },
        ["batch", n] => EngineCommand::StepBatches { batches: count(n)? },
        [n] => EngineCommand::Step { epochs: count(n)? },
        _ => return Err("too many arguments".into()),
    };
    Ok(command.into())
}

/// `[n=N]`: how many test images a command takes, `None` for its default.
fn image_count(rest: &str) -> Result<Option<usize>, String> {
    let mut n = None;
    for pair in words(rest) {
        let (key, value) = key_value(pair, &["n"])?;
        n = Some(key_count(key, value)?);
    }
    Ok(n)
}

/// `diagnose [n=N] [image=I]`.
fn parse_diagnose(rest: &str) -> Result<Command, String> {
    let (mut n, mut image) = (None, None);
    for pair in words(rest) {
        match key_text(pair, &["n", "image"])? {
            ("n", value) => n = Some(key_count("n", number(value)?)?),
            (_, value) => image = Some(index(value)?),
        }
    }
    Ok(EngineCommand::Diagnose { n, image }.into())
}

/// `recalibrate [adversarial|natural] [batches=N]`.
fn parse_recalibrate(rest: &str) -> Result<Command, String> {
    let mut source = StatsSource::Adversarial;
    let mut batches = None;
    for (i, word) in words(rest).into_iter().enumerate() {
        match StatsSource::from_str(word, false) {
            Ok(named) if i == 0 => source = named,
            _ => {
                let (key, value) = key_value(word, &["batches"])?;
                batches = Some(key_count(key, value)?);
            }
        }
    }
    Ok(EngineCommand::Recalibrate { source, batches }.into())
}

fn method_names() -> String {
    MethodName::ALL.map(MethodName::name).join(" ")
}

/// `method NAME key=value ...`: the method's own options go into its settings (refused in the
/// workbench's words if the method has no such option), the attack's numbers beside them.
fn parse_method(rest: &str) -> Result<Command, String> {
    let args = words(rest);
    let [method, options @ ..] = args.as_slice() else {
        return Err(format!("which method? {}", method_names()));
    };
    let name = MethodName::from_str(method, true)
        .map_err(|_| format!("unknown method `{method}`; methods: {}", method_names()))?;
    let mut change = MethodChange {
        method: MethodSettings::new(name),
        steps: None,
        step_size: None,
        eps_warmup: None,
        start: None,
    };
    for pair in options {
        if let Some(name) = pair.strip_prefix("start=") {
            let start = AttackStart::from_name(name).ok_or_else(|| {
                format!("start={name}: the training attack starts at reference, uniform, gaussian or none")
            })?;
            change.start = Some(start);
            continue;
        }
        if let Some(mode) = pair.strip_prefix("bn-stats=") {
            let mode = BnStats::from_name(mode).ok_or_else(|| {
                format!(
                    "bn-stats={mode}: the statistics come from both, adversarial, natural or strong"
                )
            })?;
            if !change.method.set_bn_stats(mode) {
                return Err(format!(
                    "bn-stats= applies to trades and rslad, not to {}",
                    change.method.name()
                ));
            }
            continue;
        }
        let (key, value) = key_value(pair, &METHOD_KEYS)?;
        match key {
            "steps" => change.steps = Some(whole(value).map_err(|e| e.named(key))?),
            "step-size" => change.step_size = Some(StepSize::new(value).map_err(|e| e.named(key))?),
            "eps-warmup" => change.eps_warmup = Some(whole(value).map_err(|e| e.named(key))?),
            _ => {
                let option = MethodOption::from_key(key).expect("METHOD_KEYS holds the options");
                change
                    .method
                    .set(option, value)
                    .map_err(|e| e.message(""))?;
            }
        }
    }
    Ok(EngineCommand::Method(change).into())
}

/// `optimizer NAME [key=value ...]`; keys left out stay None (unchanged).
fn parse_optimizer(rest: &str) -> Result<Command, String> {
    let args = words(rest);
    let [kind, options @ ..] = args.as_slice() else {
        return Err("which optimizer? sgd or adam".into());
    };
    let kind = OptimizerName::from_str(kind, true)
        .map_err(|_| format!("unknown optimizer `{kind}`; optimizers: sgd adam"))?;
    let mut change = OptimizerChange {
        kind,
        momentum: None,
        weight_decay: None,
        gamma: None,
        milestones: None,
    };
    for pair in options {
        let (key, text) = key_text(pair, &OPTIMIZER_KEYS)?;
        if key == "milestones" {
            let epochs = epoch_list(text)?;
            change.milestones = Some(Milestones::new(epochs).map_err(|e| e.named(key))?);
            continue;
        }
        let value = number(text)?;
        let named = |e: crate::settings::ValueError| e.named(key);
        match key {
            "momentum" => change.momentum = Some(Momentum::new(value).map_err(named)?),
            "weight-decay" => change.weight_decay = Some(WeightDecay::new(value).map_err(named)?),
            _ => change.gamma = Some(Gamma::new(value).map_err(named)?),
        }
    }
    Ok(EngineCommand::Optimizer(change).into())
}

fn parse_attack(rest: &str) -> Result<Command, String> {
    let args = words(rest);
    let [kind, options @ ..] = args.as_slice() else {
        return Err("which attack? fgsm pgd cw autoattack".into());
    };
    let kind = AttackName::ALL
        .into_iter()
        .find(|k| k.name() == *kind)
        .ok_or_else(|| format!("unknown attack `{kind}`; attacks: fgsm pgd cw autoattack"))?;
    let mut request = AttackRequest {
        kind,
        eps: None,
        steps: None,
        n: None,
    };
    for pair in options {
        let (key, value) = key_value(pair, &ATTACK_KEYS)?;
        match key {
            "eps" => request.eps = Some(Epsilon::new(value).map_err(|e| e.named(key))?),
            "steps" => request.steps = Some(key_count(key, value)?),
            _ => request.n = Some(key_count(key, value)?),
        }
    }
    if kind == AttackName::Fgsm && request.steps.is_some() {
        return Err("FGSM is one step: steps= does not apply".into());
    }
    Ok(EngineCommand::Attack(request).into())
}

/// `"TITLE" NOTE` (or a one-word title without quotes).
fn parse_mark(rest: &str) -> Result<Command, String> {
    let (title, note) = quoted_title(rest, "give the marker a title")?;
    Ok(SessionCommand::Mark { title, note }.into())
}

/// `"TITLE" TEXT` (or a one-word title without quotes), each within its limit.
fn quoted_title(rest: &str, missing: &str) -> Result<(String, String), String> {
    let (title, note) = if let Some(quoted) = rest.strip_prefix('"') {
        let end = quoted
            .find('"')
            .ok_or("the title's closing quote is missing")?;
        (&quoted[..end], quoted[end + 1..].trim())
    } else {
        match rest.split_once(char::is_whitespace) {
            Some((title, note)) => (title, note.trim()),
            None => (rest, ""),
        }
    };
    if title.trim().is_empty() {
        return Err(missing.into());
    }
    if title.chars().count() > MARK_TITLE_LIMIT || note.chars().count() > MARK_NOTE_LIMIT {
        return Err(format!(
            "titles are at most {MARK_TITLE_LIMIT} characters and notes {MARK_NOTE_LIMIT}"
        ));
    }
    Ok((title.trim().to_string(), note.to_string()))
}
