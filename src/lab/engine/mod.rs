//! The engine: it owns the data, the teacher and the student's trainer, runs one
//! [`EngineCommand`] at a time, and reports everything through the shared
//! [`Snapshot`](crate::lab::snapshot::Snapshot). Its settings are typed
//! ([`TrainSettings`]), checked and filled in exactly as `train` does.
//!
//! One file per kind of work: [`training`] (steps), [`change`] (settings, student, data),
//! [`sample`] (the selected test image), [`attacks`], [`files`] (checkpoints, the teacher),
//! [`publish`] (the status line and curves).

mod attacks;
mod change;
mod diagnose;
mod files;
mod publish;
mod recalibrate;
mod sample;
mod training;

pub use diagnose::DIAGNOSE_N;

use super::command::EngineCommand;
use super::live::{LiveProgress, Shared};
use super::scope::FileScope;
use super::snapshot::LogLevel;
use crate::data::Dataset;
use crate::settings::{
    AttackSettings, AttackStart, Count, DataChoice, EvalSettings, LearningRate, MethodName,
    MethodSettings, Milestones, OptimizerName, OptimizerSettings, StepSize, TrainSettings,
};
use crate::train::Trainer;
use crate::zoo::{Arch, Model};
use anyhow::Result;
use change::Changed;
use files::Teacher;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// The settings the workbench opens with: the shipped teacher, a fresh micro-cnn student,
/// RSLAD with a PGD-10 training attack of step 0.05 and ε grown over the first epoch, Adam at
/// 0.002, and a PGD-10 evaluation of 500 test images after each epoch.
pub fn default_settings() -> TrainSettings {
    let valid = "the workbench's defaults are valid";
    let train = TrainSettings::default();
    TrainSettings {
        data: DataChoice::embedded_mnist(),
        student: Arch::MicroCnn,
        method: MethodSettings::new(MethodName::Rslad),
        attack: AttackSettings {
            epsilon: None,
            step_size: Some(StepSize::new(0.05).expect(valid)),
            steps: Some(10),
            eps_warmup: 1,
            start: AttackStart::Reference,
        },
        optimizer: OptimizerSettings {
            kind: OptimizerName::Adam,
            lr: LearningRate::new(0.002).expect(valid),
            milestones: Milestones::default(),
            ..train.optimizer
        },
        // The nominal length of a run: it sets IAD's default warm-up and nothing else here.
        epochs: Count::new(10).expect(valid),
        eval: EvalSettings { n: 500, steps: 10 },
        ..train
    }
}

pub struct Engine {
    shared: Arc<Shared>,
    settings: TrainSettings,
    data: Dataset,
    teacher: Option<Teacher>,
    trainer: Trainer,
    /// The selected test image.
    sample: usize,
    /// Compute time of this session before the command under way, in seconds.
    elapsed: f64,
    /// When the command under way began.
    command_started: Instant,
    /// Where file paths in commands resolve, and whether they are confined there.
    scope: FileScope,
    /// The path the last `save` wrote to, as typed or chosen.
    last_saved: Option<String>,
    /// Every checkpoint this engine saved: `save --overwrite` in a confined scope (a replayed
    /// session) may replace those, never one that was there before the replay.
    saved_here: HashSet<PathBuf>,
    /// Checkpoints that hold, bit for bit, what the session being replayed saved there when it
    /// was recorded: its replay may write them again (see [`Engine::accept_recorded_output`]).
    recorded_outputs: HashSet<PathBuf>,
    /// What `recalibrate` did to the student's batch-norm statistics, for the card of a `save`
    /// (`None` for a student as trained; a fresh or loaded student clears it, a loaded card
    /// sets it, training after a recalibration says so in it).
    statistics_note: Option<String>,
}

impl Engine {
    /// Loads the data and the teacher and builds a fresh student; `teacher` is a checkpoint
    /// path or "embedded".
    pub fn new(
        shared: Arc<Shared>,
        settings: TrainSettings,
        teacher: Option<&str>,
    ) -> Result<Engine> {
        let data = settings.data.load()?;
        let teacher = teacher.map(files::load_teacher).transpose()?;
        let trainer = change::build_trainer(&settings, &data, teacher.as_ref(), None)?;
        let mut engine = Engine {
            shared,
            settings,
            data,
            teacher,
            trainer,
            sample: 0,
            elapsed: 0.0,
            command_started: Instant::now(),
            scope: FileScope::default(),
            last_saved: None,
            saved_here: HashSet::new(),
            recorded_outputs: HashSet::new(),
            statistics_note: None,
        };
        if let Some(message) = crate::device::selection().fallback_message() {
            engine.shared.log(LogLevel::Warning, message);
        }
        engine.publish_all();
        engine.refresh_sample();
        Ok(engine)
    }

    /// Where file paths resolve from now on.
    pub fn set_scope(&mut self, scope: FileScope) {
        self.scope = scope;
    }

    pub fn scope(&self) -> &FileScope {
        &self.scope
    }

    /// The checkpoint at `path` holds exactly what the session being replayed saved there when
    /// it was recorded (the runner compared the hashes): the replayed `save` that comes next
    /// may write it again, without `--overwrite` (the recording did not need one). The next
    /// `save`, whatever its path, forgets it.
    pub fn accept_recorded_output(&mut self, path: PathBuf) {
        self.recorded_outputs.insert(path);
    }

    /// The student as it is now (for tests and saving).
    pub fn student(&self) -> &Model {
        &self.trainer.model
    }

    pub fn trainer(&self) -> &Trainer {
        &self.trainer
    }

    /// Runs one command; the snapshot shows its results.
    pub fn execute(&mut self, command: EngineCommand) -> Result<()> {
        self.command_started = Instant::now();
        let result = self.dispatch(command);
        self.elapsed += self.command_started.elapsed().as_secs_f64();
        self.command_started = Instant::now();
        self.publish_all();
        result
    }

    fn dispatch(&mut self, command: EngineCommand) -> Result<()> {
        match command {
            EngineCommand::Step { epochs } => self.step_epochs(epochs),
            EngineCommand::StepBatches { batches } => self.step_batches(batches),
            EngineCommand::Method(change) => self.set_method(change),
            EngineCommand::Student(arch) => self.set_student(arch),
            EngineCommand::Teacher(source) => self.set_teacher(&source),
            EngineCommand::Data(target) => self.set_data(&target),
            EngineCommand::Eps(eps) => {
                self.change(|s| s.attack.epsilon = Some(eps), Changed::Epsilon)
            }
            EngineCommand::Lr(lr) => self.change(|s| s.optimizer.lr = lr, Changed::LearningRate),
            EngineCommand::Optimizer(change) => self.change(
                |s| {
                    let o = &mut s.optimizer;
                    o.kind = change.kind;
                    o.momentum = change.momentum.unwrap_or(o.momentum);
                    o.weight_decay = change.weight_decay.unwrap_or(o.weight_decay);
                    o.gamma = change.gamma.unwrap_or(o.gamma);
                    o.milestones = change.milestones.unwrap_or_else(|| o.milestones.clone());
                },
                Changed::Optimizer,
            ),
            EngineCommand::Seed(seed) => self.change(|s| s.seed = seed, Changed::Seed),
            EngineCommand::ShowSample(index) => self.select(index),
            EngineCommand::Next => self.select(self.sample + 1),
            EngineCommand::Prev => self.select(self.sample.saturating_sub(1)),
            EngineCommand::ShowMisclassified => self.find_misclassified(),
            EngineCommand::Attack(request) => self.attack(request),
            EngineCommand::Eval { n } => self.eval(n),
            EngineCommand::Diagnose { n, image } => self.diagnose(n, image),
            EngineCommand::Recalibrate { source, batches } => self.recalibrate(source, batches),
            EngineCommand::Save { path, overwrite } => self.save(path, overwrite),
            EngineCommand::Load(path) => self.load(&path),
            EngineCommand::Reset => self.reset(),
        }
    }

    fn info(&self, text: impl Into<String>) {
        self.shared.log(LogLevel::Info, text);
    }

    fn progress(&self) -> LiveProgress<'_> {
        LiveProgress::new(&self.shared, self.elapsed_now())
    }

    /// Compute time including the command under way.
    fn elapsed_now(&self) -> f64 {
        self.elapsed + self.command_started.elapsed().as_secs_f64()
    }

    fn epsilon(&self) -> f32 {
        self.settings.epsilon()
    }

    /// A teacher trained on other data than the session's still runs (the shapes fit), but
    /// its soft labels mean little: say so.
    fn warn_if_teacher_mismatch(&self) {
        if let Some(t) = &self.teacher
            && t.dataset != self.data.kind.name()
        {
            self.shared.log(
                LogLevel::Warning,
                format!(
                    "the teacher was trained on {}, the data is {}: load a {} teacher with \
                     `teacher PATH`",
                    t.dataset,
                    self.data.kind.name(),
                    self.data.kind.name()
                ),
            );
        }
    }

    /// Every setting in one line: what a session records as its starting point.
    pub fn settings_summary(&self) -> String {
        let c = &self.trainer.config;
        let optimizer = match c.optimizer.kind {
            crate::train::OptimizerKind::Adam => "adam".to_string(),
            crate::train::OptimizerKind::Sgd { momentum } => format!("sgd momentum {momentum}"),
        };
        format!(
            "{} ({}) · teacher {} · student {} · {} · {optimizer} lr {} · batch {} · ε {} \
             warm-up {} · eval {} images {} · seed {}",
            self.data.kind.name(),
            self.settings.data.source,
            self.teacher.as_ref().map_or("none", |t| t.label.as_str()),
            self.settings.student,
            c.method.label(),
            self.settings.optimizer.lr,
            c.batch_size,
            self.epsilon(),
            c.epsilon_warmup_epochs,
            c.eval_n,
            self.robust_label(),
            self.settings.seed
        )
    }

    /// The attack of the per-epoch evaluation, e.g. "PGD-10".
    fn robust_label(&self) -> String {
        self.trainer
            .config
            .eval_attack
            .as_ref()
            .map_or("robust".to_string(), |a| a.name.clone())
    }
}
