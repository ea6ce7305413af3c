//! The command language every front end speaks (the workbench's prompt, the REPL, session
//! files), in one place. Each row of the [`COMMANDS`] table carries the command's name, usage,
//! summary, what its arguments complete to, and its own parser, so help, completion and
//! parsing cannot disagree, and a new command is one row and one function here.
//!
//! A parsed [`Command`] says who handles it: the engine ([`EngineCommand`]), the session
//! runner ([`SessionCommand`]) or the front end itself ([`UiCommand`]), so each layer's `match`
//! is exhaustive and none has to refuse another's commands at run time. Values arrive typed
//! and checked (ε, learning rate, method options), in the workbench's own words when refused.

mod complete;
mod table;
mod words;

pub use complete::{common_prefix, complete, finish_word, help, help_for, hint, word_start};
pub use table::{Arg, COMMANDS, CommandSpec, MARK_NOTE_LIMIT, MARK_TITLE_LIMIT, spec};
pub use words::session_name;

use crate::settings::values::number as parse_number;
use crate::settings::{
    AttackName, AttackStart, Epsilon, Gamma, LearningRate, MethodSettings, Milestones, Momentum,
    OptimizerName, StepSize, WeightDecay,
};
use crate::zoo::Arch;
use std::fmt;

/// A parsed line, by who handles it.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Work for the session runner: recorded in the session, run on the engine's thread.
    Run(Work),
    /// Handled by the front end at once (help, quit, stop).
    Ui(UiCommand),
}

/// What the session runner runs.
#[derive(Clone, Debug, PartialEq)]
pub enum Work {
    Engine(EngineCommand),
    Session(SessionCommand),
}

/// What the engine does: training, settings, samples, attacks, files.
#[derive(Clone, Debug, PartialEq)]
pub enum EngineCommand {
    /// Train this many whole epochs.
    Step {
        epochs: usize,
    },
    /// Train this many batches of the epoch under way.
    StepBatches {
        batches: usize,
    },
    Method(MethodChange),
    Student(Arch),
    /// A checkpoint path, "embedded" or "none".
    Teacher(String),
    /// A dataset name (mnist, fashion, cifar10, cifar100) or a data folder.
    Data(String),
    Eps(Epsilon),
    Lr(LearningRate),
    Optimizer(OptimizerChange),
    Seed(u64),
    ShowSample(usize),
    Next,
    Prev,
    ShowMisclassified,
    Attack(AttackRequest),
    Eval {
        n: Option<usize>,
    },
    Diagnose {
        n: Option<usize>,
        /// The test image to draw the loss profile around (`None`: the correctly classified
        /// one with the highest loss).
        image: Option<usize>,
    },
    /// Gather the student's batch-norm running statistics again (`None`: the default batches).
    Recalibrate {
        source: crate::train::StatsSource,
        batches: Option<usize>,
    },
    /// Save the student (`None`: a fresh name); `overwrite` replaces a checkpoint already there.
    Save {
        path: Option<String>,
        overwrite: bool,
    },
    Load(String),
    Reset,
}

/// `method NAME key=value ...`: the method with its own options (the rest at their
/// defaults), and the training attack's numbers that were given (the others kept).
#[derive(Clone, Debug, PartialEq)]
pub struct MethodChange {
    pub method: MethodSettings,
    pub steps: Option<usize>,
    pub step_size: Option<StepSize>,
    pub eps_warmup: Option<usize>,
    /// Where the training attack starts (`None`: unchanged).
    pub start: Option<AttackStart>,
}

/// `optimizer sgd|adam key=value ...`; keys left out keep their value.
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizerChange {
    pub kind: OptimizerName,
    pub momentum: Option<Momentum>,
    pub weight_decay: Option<WeightDecay>,
    pub gamma: Option<Gamma>,
    pub milestones: Option<Milestones>,
}

/// `attack NAME [eps=E] [steps=S] [n=N]`.
#[derive(Clone, Debug, PartialEq)]
pub struct AttackRequest {
    pub kind: AttackName,
    pub eps: Option<Epsilon>,
    pub steps: Option<usize>,
    pub n: Option<usize>,
}

/// What the session runner does itself: sessions and markers.
#[derive(Clone, Debug, PartialEq)]
pub enum SessionCommand {
    /// Write the session so far to `sessions/NAME.ron`; `overwrite` replaces a session
    /// already saved under that name.
    SaveSession { name: String, overwrite: bool },
    /// Re-run a recorded session's commands here, checking each result against it.
    LoadSession(String),
    /// A marker in the session: a lesson's section title and its note.
    Mark { title: String, note: String },
    /// The session's title and introduction (playback's title screen).
    Title { title: String, intro: String },
    /// Re-run the unfinished session found at start (after a crash or a killed terminal).
    Recover,
}

/// What a front end does itself.
#[derive(Clone, Debug, PartialEq)]
pub enum UiCommand {
    Help(Option<String>),
    /// Every attack table of the session side by side; as a Markdown table with `markdown`.
    Results {
        markdown: bool,
    },
    Quit,
    /// Cancel the running work at the next batch boundary, and the commands queued behind it.
    Stop,
}

impl From<EngineCommand> for Command {
    fn from(command: EngineCommand) -> Command {
        Command::Run(Work::Engine(command))
    }
}

impl From<SessionCommand> for Command {
    fn from(command: SessionCommand) -> Command {
        Command::Run(Work::Session(command))
    }
}

impl From<UiCommand> for Command {
    fn from(command: UiCommand) -> Command {
        Command::Ui(command)
    }
}

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

/// Parses one line. Empty lines are errors too (the caller usually skips them).
pub fn parse(line: &str) -> Result<Command, ParseError> {
    let trimmed = line.trim_start();
    let name = trimmed.split_whitespace().next().unwrap_or("");
    if name.is_empty() {
        return Err(ParseError {
            message: "empty command".into(),
            usage: None,
        });
    }
    let Some(spec) = spec(name) else {
        let names: Vec<&str> = COMMANDS.iter().map(|c| c.name).collect();
        return Err(ParseError {
            message: format!("unknown command `{name}`; commands: {}", names.join(" ")),
            usage: None,
        });
    };
    let rest = trimmed[name.len()..].trim();
    (spec.parse)(rest).map_err(|message| ParseError {
        message,
        usage: Some(spec.usage),
    })
}

/// Parses a line that must be an engine command (scripts, benches and tests that drive an
/// [`Engine`](crate::lab::engine::Engine) directly).
pub fn parse_engine(line: &str) -> Result<EngineCommand, ParseError> {
    match parse(line)? {
        Command::Run(Work::Engine(command)) => Ok(command),
        _ => Err(ParseError {
            message: format!("`{line}` is not an engine command"),
            usage: None,
        }),
    }
}

/// A finite number, written as a decimal or a fraction such as `5/6` or `8/255`.
pub fn number(text: &str) -> Result<f64, String> {
    parse_number(text)
}
