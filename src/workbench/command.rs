//! The workbench's command language, in one place: the [`COMMANDS`] table gives each
//! command's name, usage, summary and what its arguments complete to; [`parse`], [`help`] and
//! [`complete`] all read it, so they cannot disagree.

use crate::cli::{MethodName, OptimizerName};
use crate::zoo::Arch;
use clap::ValueEnum;
use std::fmt;

/// A parsed command, ready for the engine (or, for the UI-only ones, for the UI).
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Train this many whole epochs.
    Step {
        epochs: usize,
    },
    /// Train this many batches of the epoch under way.
    StepBatches {
        batches: usize,
    },
    /// Cancel the running work at the next batch boundary, and the commands queued behind it.
    Stop,
    /// Switch the training method; `options` are `key=value` pairs, values already numbers.
    Method {
        name: MethodName,
        options: Vec<(String, f64)>,
    },
    Student(Arch),
    /// A checkpoint path, "embedded" or "none".
    Teacher(String),
    /// A dataset name (mnist, fashion, cifar10, cifar100) or a data folder.
    Data(String),
    Eps(f32),
    Lr(f64),
    /// The optimizer and its schedule; unset keys keep their value.
    Optimizer {
        kind: OptimizerName,
        momentum: Option<f64>,
        weight_decay: Option<f64>,
        gamma: Option<f64>,
        milestones: Option<Vec<usize>>,
    },
    Seed(u64),
    ShowSample(usize),
    Next,
    Prev,
    ShowMisclassified,
    Attack {
        kind: AttackKind,
        eps: Option<f32>,
        steps: Option<usize>,
        n: Option<usize>,
    },
    Eval {
        n: Option<usize>,
    },
    Save(Option<String>),
    Load(String),
    /// Write the session so far to `sessions/NAME.ron`.
    SaveSession(String),
    /// Re-run a recorded session's commands here, checking each result against it.
    LoadSession(String),
    /// A marker in the session: a lesson's section title and its note.
    Mark {
        title: String,
        note: String,
    },
    /// Re-run the unfinished session found at start (after a crash or a killed terminal).
    Recover,
    Reset,
    Help(Option<String>),
    Quit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttackKind {
    Fgsm,
    Pgd,
    Cw,
    AutoAttack,
}

impl AttackKind {
    pub const ALL: [AttackKind; 4] = [
        AttackKind::Fgsm,
        AttackKind::Pgd,
        AttackKind::Cw,
        AttackKind::AutoAttack,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AttackKind::Fgsm => "fgsm",
            AttackKind::Pgd => "pgd",
            AttackKind::Cw => "cw",
            AttackKind::AutoAttack => "autoattack",
        }
    }
}

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
}

/// The keys `method` accepts (the `train` options of the same names).
pub const METHOD_KEYS: [&str; 8] = [
    "alpha",
    "beta",
    "temperature",
    "iad-warmup",
    "rslad-scale",
    "steps",
    "step-size",
    "eps-warmup",
];

/// The keys `optimizer` accepts (the `train` options of the same names).
pub const OPTIMIZER_KEYS: [&str; 4] = ["momentum", "weight-decay", "gamma", "milestones"];

const ATTACK_KEYS: [&str; 3] = ["eps", "steps", "n"];

/// Every command, in the order `help` lists them.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "step",
        usage: "step [N] | step batch [N]",
        summary: "train N epochs (default 1), or N batches of the epoch under way",
        args: &[Arg::Words(&["batch"]), Arg::Number],
    },
    CommandSpec {
        name: "pause",
        usage: "pause",
        summary: "stop the running work at the next batch and skip the commands queued \
                  behind it; `step` resumes the epoch",
        args: &[],
    },
    CommandSpec {
        name: "stop",
        usage: "stop",
        summary: "the same as pause (Ctrl-C too)",
        args: &[],
    },
    CommandSpec {
        name: "method",
        usage: "method NAME [key=value ...]",
        summary: "training method: natural sat trades kd ard iad rslad; keys alpha beta \
                  temperature iad-warmup rslad-scale steps step-size eps-warmup (fractions \
                  such as alpha=5/6 allowed)",
        args: &[Arg::Method, Arg::Keys(&METHOD_KEYS)],
    },
    CommandSpec {
        name: "student",
        usage: "student MODEL",
        summary: "a fresh student of this architecture (see the zoo)",
        args: &[Arg::Model],
    },
    CommandSpec {
        name: "teacher",
        usage: "teacher PATH | embedded | none",
        summary: "the teacher for kd, ard, iad and rslad: a checkpoint, the shipped one, or none",
        args: &[Arg::Teacher],
    },
    CommandSpec {
        name: "data",
        usage: "data mnist|fashion|cifar10|cifar100|FOLDER",
        summary: "switch dataset (from the data folder, `data` by default) or data folder; \
                  the student starts fresh",
        args: &[Arg::Data],
    },
    CommandSpec {
        name: "eps",
        usage: "eps VALUE",
        summary: "attack radius ε in L∞ for training and attacks (e.g. 0.3, 8/255)",
        args: &[Arg::Number],
    },
    CommandSpec {
        name: "lr",
        usage: "lr VALUE",
        summary: "learning rate from the next batch on",
        args: &[Arg::Number],
    },
    CommandSpec {
        name: "optimizer",
        usage: "optimizer sgd|adam [momentum=M] [weight-decay=W] [gamma=G] [milestones=E1,E2,...]",
        summary: "optimizer and learning-rate schedule (lr × gamma at each milestone epoch), e.g. \
                  the paper's CIFAR one: optimizer sgd momentum=0.9 weight-decay=2e-4 \
                  milestones=215,260,285; keys left out keep their value",
        args: &[Arg::Words(&["sgd", "adam"]), Arg::Keys(&OPTIMIZER_KEYS)],
    },
    CommandSpec {
        name: "seed",
        usage: "seed N",
        summary: "random seed of shuffling and attacks; `reset` also draws new weights from it",
        args: &[Arg::Number],
    },
    CommandSpec {
        name: "show",
        usage: "show sample N | show misclassified",
        summary: "select test image N, or the next one the student gets wrong under PGD",
        args: &[Arg::Words(&["sample", "misclassified"]), Arg::Number],
    },
    CommandSpec {
        name: "next",
        usage: "next",
        summary: "select the next test image (→ in the soft-label and perturbation panels)",
        args: &[],
    },
    CommandSpec {
        name: "prev",
        usage: "prev",
        summary: "select the previous test image (←)",
        args: &[],
    },
    CommandSpec {
        name: "attack",
        usage: "attack fgsm|pgd|cw|autoattack [eps=E] [steps=S] [n=N]",
        summary: "attack the student on the first N test images (default 500; AutoAttack 100)",
        args: &[Arg::Attack, Arg::Keys(&ATTACK_KEYS)],
    },
    CommandSpec {
        name: "eval",
        usage: "eval [n=N]",
        summary: "clean, FGSM, PGD and CW∞ accuracy of the student on N test images (default 1000)",
        args: &[Arg::Keys(&["n"])],
    },
    CommandSpec {
        name: "save",
        usage: "save [PATH] | save session NAME",
        summary: "save the student as a checkpoint (default runs/workbench-MODEL-METHOD), or \
                  the session so far as sessions/NAME.ron",
        args: &[Arg::SaveTarget],
    },
    CommandSpec {
        name: "load",
        usage: "load PATH | load session NAME",
        summary: "load a checkpoint as the student, or re-run a recorded session here, \
                  checking every result against its recording",
        args: &[Arg::SaveTarget],
    },
    CommandSpec {
        name: "mark",
        usage: "mark \"TITLE\" [NOTE]",
        summary: "put a marker in the session (a lesson's section title and note; playback \
                  jumps between markers)",
        args: &[Arg::Number],
    },
    CommandSpec {
        name: "recover",
        usage: "recover",
        summary: "re-run the session a crash or a killed terminal left unfinished (offered at \
                  start)",
        args: &[],
    },
    CommandSpec {
        name: "reset",
        usage: "reset",
        summary: "a fresh student from the seed; curves cleared",
        args: &[],
    },
    CommandSpec {
        name: "help",
        usage: "help [COMMAND]",
        summary: "this list, or one command's usage",
        args: &[Arg::Command],
    },
    CommandSpec {
        name: "quit",
        usage: "quit",
        summary: "leave (asks first if the student is unsaved)",
        args: &[],
    },
];

/// Why a line is not a command: one line of explanation and the usage to follow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub message: String,
    pub usage: Option<&'static str>,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.usage {
            Some(usage) => write!(f, "{} (usage: {usage})", self.message),
            None => write!(f, "{}", self.message),
        }
    }
}

impl std::error::Error for ParseError {}

/// The table row of a command name.
pub fn spec(name: &str) -> Option<&'static CommandSpec> {
    COMMANDS.iter().find(|c| c.name == name)
}

/// Parses one line. Empty lines are errors too (the caller usually skips them).
pub fn parse(line: &str) -> Result<Command, ParseError> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let Some((&name, args)) = words.split_first() else {
        return Err(ParseError {
            message: "empty command".into(),
            usage: None,
        });
    };
    let Some(spec) = spec(name) else {
        let names: Vec<&str> = COMMANDS.iter().map(|c| c.name).collect();
        return Err(ParseError {
            message: format!("unknown command `{name}`; commands: {}", names.join(" ")),
            usage: None,
        });
    };
    let bad = |message: String| ParseError {
        message,
        usage: Some(spec.usage),
    };
    if name == "mark" {
        let rest = line.trim_start()["mark".len()..].trim();
        return parse_mark(rest).map_err(bad);
    }
    parse_args(name, args).map_err(bad)
}

/// Longest title and note a marker may have.
pub const MARK_TITLE_LIMIT: usize = 200;
pub const MARK_NOTE_LIMIT: usize = 10_000;

/// `"TITLE" NOTE` (or a one-word title without quotes).
fn parse_mark(rest: &str) -> Result<Command, String> {
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
        return Err("give the marker a title".into());
    }
    if title.chars().count() > MARK_TITLE_LIMIT || note.chars().count() > MARK_NOTE_LIMIT {
        return Err(format!(
            "titles are at most {MARK_TITLE_LIMIT} characters and notes {MARK_NOTE_LIMIT}"
        ));
    }
    Ok(Command::Mark {
        title: title.trim().to_string(),
        note: note.to_string(),
    })
}

/// A session name: letters, digits, `-`, `_` and `.`, not starting with `.`, so it can only
/// name a file inside the sessions folder.
pub fn session_name(name: &str) -> Result<String, String> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(name.trim_end_matches(".ron").to_string())
    } else {
        Err(format!(
            "`{name}` is not a session name: use letters, digits, - _ and . (no folders)"
        ))
    }
}

fn parse_args(name: &str, args: &[&str]) -> Result<Command, String> {
    let no_args = |command: Command| {
        if args.is_empty() {
            Ok(command)
        } else {
            Err(format!("`{name}` takes no arguments"))
        }
    };
    match name {
        "step" => match args {
            [] => Ok(Command::Step { epochs: 1 }),
            ["batch"] => Ok(Command::StepBatches { batches: 1 }),
            ["batch", n] => Ok(Command::StepBatches { batches: count(n)? }),
            [n] => Ok(Command::Step { epochs: count(n)? }),
            _ => Err("too many arguments".into()),
        },
        "pause" | "stop" => no_args(Command::Stop),
        "method" => {
            let [method, options @ ..] = args else {
                return Err(format!("which method? {}", method_names().join(" ")));
            };
            let name = MethodName::from_str(method, true).map_err(|_| {
                format!(
                    "unknown method `{method}`; methods: {}",
                    method_names().join(" ")
                )
            })?;
            let options = options
                .iter()
                .map(|pair| key_value(pair, &METHOD_KEYS))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Command::Method { name, options })
        }
        "student" => match args {
            [model] => Ok(Command::Student(
                Arch::from_name(model).map_err(|e| e.to_string())?,
            )),
            _ => Err("give one model name".into()),
        },
        "teacher" => {
            one(args, "give a checkpoint path, `embedded` or `none`").map(Command::Teacher)
        }
        "data" => one(args, "give a dataset name or a data folder").map(Command::Data),
        "eps" => {
            let value = number(&one(args, "give ε")?)?;
            if !(0.0..=1.0).contains(&value) {
                return Err(format!("ε must be in [0, 1]; got {value}"));
            }
            Ok(Command::Eps(value as f32))
        }
        "lr" => {
            let value = number(&one(args, "give the learning rate")?)?;
            if value <= 0.0 {
                return Err(format!("the learning rate must be positive; got {value}"));
            }
            Ok(Command::Lr(value))
        }
        "optimizer" => parse_optimizer(args),
        "seed" => {
            let text = one(args, "give a seed")?;
            text.parse::<u64>()
                .map(Command::Seed)
                .map_err(|_| format!("the seed must be a whole number ≥ 0; got `{text}`"))
        }
        "show" => match args {
            ["sample", n] => Ok(Command::ShowSample(index(n)?)),
            ["misclassified"] => Ok(Command::ShowMisclassified),
            ["sample"] => Err("which sample? give its index in the test set".into()),
            _ => Err("show what? `sample N` or `misclassified`".into()),
        },
        "next" => no_args(Command::Next),
        "prev" => no_args(Command::Prev),
        "attack" => {
            let [kind, options @ ..] = args else {
                return Err("which attack? fgsm pgd cw autoattack".into());
            };
            let kind = AttackKind::ALL
                .into_iter()
                .find(|k| k.name() == *kind)
                .ok_or_else(|| {
                    format!("unknown attack `{kind}`; attacks: fgsm pgd cw autoattack")
                })?;
            let (mut eps, mut steps, mut n) = (None, None, None);
            for pair in options {
                let (key, value) = key_value(pair, &ATTACK_KEYS)?;
                match key.as_str() {
                    "eps" if (0.0..=1.0).contains(&value) => eps = Some(value as f32),
                    "eps" => return Err(format!("eps must be in [0, 1]; got {value}")),
                    "steps" => steps = Some(whole(&key, value)?),
                    _ => n = Some(whole(&key, value)?),
                }
            }
            if kind == AttackKind::Fgsm && steps.is_some() {
                return Err("FGSM is one step: steps= does not apply".into());
            }
            Ok(Command::Attack {
                kind,
                eps,
                steps,
                n,
            })
        }
        "eval" => {
            let mut n = None;
            for pair in args {
                let (key, value) = key_value(pair, &["n"])?;
                n = Some(whole(&key, value)?);
            }
            Ok(Command::Eval { n })
        }
        "save" => match args {
            [] => Ok(Command::Save(None)),
            ["session", name] => session_name(name).map(Command::SaveSession),
            ["session"] => Err("give the session a name".into()),
            [path] => Ok(Command::Save(Some(path.to_string()))),
            _ => Err("give at most one path (no spaces)".into()),
        },
        "load" => match args {
            ["session", name] => session_name(name).map(Command::LoadSession),
            ["session"] => Err("which session? give its name".into()),
            _ => one(args, "give the checkpoint's path").map(Command::Load),
        },
        "reset" => no_args(Command::Reset),
        "recover" => no_args(Command::Recover),
        "help" => match args {
            [] => Ok(Command::Help(None)),
            [topic] if spec(topic).is_some() => Ok(Command::Help(Some(topic.to_string()))),
            [topic] => Err(format!("no command `{topic}`")),
            _ => Err("give at most one command".into()),
        },
        "quit" => no_args(Command::Quit),
        "mark" => unreachable!("`mark` keeps its quotes: parsed from the raw line"),
        _ => unreachable!("every table entry is parsed: {name}"),
    }
}

fn method_names() -> Vec<String> {
    MethodName::value_variants()
        .iter()
        .map(|m| m.name())
        .collect()
}

fn one(args: &[&str], missing: &str) -> Result<String, String> {
    match args {
        [value] => Ok(value.to_string()),
        [] => Err(missing.to_string()),
        _ => Err("too many arguments (paths cannot contain spaces here)".into()),
    }
}

/// A positive whole number of epochs, batches or images.
fn count(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("expected a whole number ≥ 1, got `{text}`")),
    }
}

fn index(text: &str) -> Result<usize, String> {
    text.parse::<usize>()
        .map_err(|_| format!("expected a sample index ≥ 0, got `{text}`"))
}

fn whole(key: &str, value: f64) -> Result<usize, String> {
    if value >= 1.0 && value.fract() == 0.0 && value <= usize::MAX as f64 {
        Ok(value as usize)
    } else {
        Err(format!("{key} must be a whole number ≥ 1; got {value}"))
    }
}

/// `optimizer NAME [key=value ...]`; keys left out stay None (unchanged).
fn parse_optimizer(args: &[&str]) -> Result<Command, String> {
    let [kind, options @ ..] = args else {
        return Err("which optimizer? sgd or adam".into());
    };
    let kind = OptimizerName::from_str(kind, true)
        .map_err(|_| format!("unknown optimizer `{kind}`; optimizers: sgd adam"))?;
    let (mut momentum, mut weight_decay, mut gamma, mut milestones) = (None, None, None, None);
    for pair in options {
        if let Some(list) = pair.strip_prefix("milestones=") {
            milestones = Some(epoch_list(list)?);
            continue;
        }
        let (key, value) = key_value(pair, &OPTIMIZER_KEYS)?;
        match key.as_str() {
            "momentum" if (0.0..1.0).contains(&value) => momentum = Some(value),
            "momentum" => return Err(format!("momentum must be in [0, 1); got {value}")),
            "weight-decay" if (0.0..1.0).contains(&value) => weight_decay = Some(value),
            "weight-decay" => return Err(format!("weight-decay must be in [0, 1); got {value}")),
            "gamma" if value > 0.0 && value <= 1.0 => gamma = Some(value),
            "gamma" => return Err(format!("gamma must be in (0, 1]; got {value}")),
            _ => {
                return Err("milestones take a list of epochs, e.g. milestones=215,260,285".into());
            }
        }
    }
    Ok(Command::Optimizer {
        kind,
        momentum,
        weight_decay,
        gamma,
        milestones,
    })
}

/// "215,260,285" as increasing epoch numbers; "" or "none" for no milestones.
fn epoch_list(text: &str) -> Result<Vec<usize>, String> {
    if text.is_empty() || text == "none" {
        return Ok(Vec::new());
    }
    let epochs = text
        .split(',')
        .map(|e| match e {
            "" => Err(
                "milestones: write the epochs with commas and no spaces, e.g. \
                       milestones=215,260,285"
                    .to_string(),
            ),
            _ => e
                .parse::<usize>()
                .map_err(|_| format!("milestones: `{e}` is not an epoch number")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    if epochs.windows(2).any(|w| w[0] >= w[1]) {
        return Err(format!("milestones must increase; got {text}"));
    }
    Ok(epochs)
}

/// A finite number, written as a decimal or a fraction such as `5/6` or `8/255`.
pub fn number(text: &str) -> Result<f64, String> {
    let value = match text.split_once('/') {
        Some((top, bottom)) => {
            let top: f64 = top.parse().map_err(|_| not_a_number(text))?;
            let bottom: f64 = bottom.parse().map_err(|_| not_a_number(text))?;
            if bottom == 0.0 {
                return Err(format!("`{text}` divides by zero"));
            }
            top / bottom
        }
        None => text.parse().map_err(|_| not_a_number(text))?,
    };
    if value.is_finite() {
        Ok(value)
    } else {
        Err(not_a_number(text))
    }
}

fn not_a_number(text: &str) -> String {
    format!("`{text}` is not a number")
}

fn key_value(pair: &str, keys: &[&str]) -> Result<(String, f64), String> {
    let Some((key, value)) = pair.split_once('=') else {
        return Err(format!("expected key=value, got `{pair}`"));
    };
    if !keys.contains(&key) {
        return Err(format!("unknown key `{key}`; keys: {}", keys.join(" ")));
    }
    Ok((key.to_string(), number(value)?))
}

/// The full help text: every command's usage and summary.
pub fn help() -> String {
    let width = COMMANDS
        .iter()
        .map(|c| c.usage.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::from("Commands (Tab completes, ↑↓ recall history):\n\n");
    for c in COMMANDS {
        out += &format!("  {:<width$}  {}\n", c.usage, c.summary);
    }
    out += "\nKeys: Tab moves between panels when the prompt is empty; ← → select samples in the \
            soft-label and perturbation panels; ↑ ↓ scroll the log; ? help; q quits from a panel; \
            Ctrl-C stops the running work at the next batch.\n";
    out
}

/// One command's help.
pub fn help_for(name: &str) -> Option<String> {
    spec(name).map(|c| format!("{}: {}", c.usage, c.summary))
}

/// Completion of the last word of `line`: the candidates (whole words), sorted.
pub fn complete(line: &str) -> Vec<String> {
    let ends_in_space = line.is_empty() || line.ends_with(char::is_whitespace);
    let words: Vec<&str> = line.split_whitespace().collect();
    let (done, partial) = if ends_in_space {
        (&words[..], "")
    } else {
        (&words[..words.len() - 1], words[words.len() - 1])
    };
    let Some((command, args)) = done.split_first() else {
        return matching(COMMANDS.iter().map(|c| c.name.to_string()), partial);
    };
    let Some(spec) = spec(command) else {
        return Vec::new();
    };
    let Some(arg) = spec.args.get(args.len()).or(spec.args.last()) else {
        return Vec::new();
    };
    // `step batch N` and `show sample N`: only the first word completes.
    if matches!(arg, Arg::Number) {
        return Vec::new();
    }
    if matches!(arg, Arg::Words(_)) && !args.is_empty() {
        return Vec::new();
    }
    let candidates: Vec<String> = match arg {
        Arg::Words(words) => words.iter().map(|w| w.to_string()).collect(),
        Arg::Keys(keys) => keys
            .iter()
            .filter(|k| !args.iter().any(|a| a.starts_with(&format!("{k}="))))
            .map(|k| format!("{k}="))
            .collect(),
        Arg::Model => Arch::ALL.iter().map(|a| a.name().to_string()).collect(),
        Arg::Method => method_names(),
        Arg::Attack => AttackKind::ALL
            .iter()
            .map(|a| a.name().to_string())
            .collect(),
        Arg::Command => COMMANDS.iter().map(|c| c.name.to_string()).collect(),
        Arg::Data => ["mnist", "fashion", "cifar10", "cifar100"]
            .iter()
            .map(|s| s.to_string())
            .chain(paths(partial))
            .collect(),
        Arg::Teacher => ["embedded", "none"]
            .iter()
            .map(|s| s.to_string())
            .chain(paths(partial))
            .collect(),
        Arg::Path => paths(partial),
        Arg::SaveTarget if args.is_empty() => ["session"]
            .iter()
            .map(|s| s.to_string())
            .chain(paths(partial))
            .collect(),
        Arg::SaveTarget if args == ["session"] => session_names(partial),
        Arg::SaveTarget | Arg::Number => Vec::new(),
    };
    matching(candidates.into_iter(), partial)
}

fn matching(candidates: impl Iterator<Item = String>, partial: &str) -> Vec<String> {
    let mut out: Vec<String> = candidates.filter(|c| c.starts_with(partial)).collect();
    out.sort();
    out.dedup();
    out
}

/// The names of the sessions in `sessions/` that start with `partial`.
fn session_names(partial: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("sessions") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let stem = name.strip_suffix(".ron")?;
            stem.starts_with(partial).then(|| stem.to_string())
        })
        .take(200)
        .collect()
}

/// Files and folders whose path starts with `partial` (folders end in `/`).
fn paths(partial: &str) -> Vec<String> {
    let (dir, prefix) = match partial.rfind('/') {
        Some(i) => (&partial[..=i], &partial[i + 1..]),
        None => ("", partial),
    };
    let Ok(entries) = std::fs::read_dir(if dir.is_empty() { "." } else { dir }) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            if !name.starts_with(prefix) || (name.starts_with('.') && !prefix.starts_with('.')) {
                return None;
            }
            let slash = if entry.path().is_dir() { "/" } else { "" };
            Some(format!("{dir}{name}{slash}"))
        })
        .take(200)
        .collect()
}

/// Where the word being completed starts in `line` (a byte index).
pub fn word_start(line: &str) -> usize {
    line.rfind(char::is_whitespace).map_or(0, |i| {
        i + line[i..].chars().next().map_or(1, char::len_utf8)
    })
}

/// The text that replaces the word when `candidate` is the only completion: a finished word
/// gets a space, a folder (`…/`) or a key (`…=`) does not, so typing goes on inside it.
pub fn finish_word(candidate: &str) -> String {
    if candidate.ends_with('/') || candidate.ends_with('=') {
        candidate.to_string()
    } else {
        format!("{candidate} ")
    }
}

/// The longest common prefix of the candidates.
pub fn common_prefix(candidates: &[String]) -> String {
    let Some(first) = candidates.first() else {
        return String::new();
    };
    let mut end = first.len();
    for c in &candidates[1..] {
        end = end.min(
            first
                .char_indices()
                .zip(c.chars())
                .take_while(|((_, a), b)| a == b)
                .last()
                .map_or(0, |((i, a), _)| i + a.len_utf8()),
        );
    }
    first[..end].to_string()
}

/// The inline hint for a partly typed line: the usage of its command once the name is typed.
pub fn hint(line: &str) -> Option<String> {
    let name = line.split_whitespace().next()?;
    let spec = spec(name)?;
    if line.trim_end() == name && !line.ends_with(' ') {
        return None;
    }
    Some(format!("   {}", spec.usage))
}
