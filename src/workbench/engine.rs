//! The workbench's engine: it owns the data, the teacher and the student's trainer, runs one
//! [`Command`] at a time on its own thread, and reports everything through the shared
//! [`Snapshot`](super::snapshot::Snapshot). Settings are a `train` command line
//! ([`TrainArgs`]), so the workbench checks them and fills defaults exactly as `train` does.

use super::command::{AttackKind, Command};
use super::live::{LiveProgress, Shared};
use super::snapshot::{AttackRow, AttackTable, EpochPoint, LogLevel, SampleView};
use crate::attack::autoattack::{AutoAttackConfig, Version};
use crate::attack::{self, Target};
use crate::checkpoint::{self, SaveInfo};
use crate::cli::{self, DataArgs, MethodName, OptimizerName, TrainArgs};
use crate::data::{Dataset, DatasetKind};
use crate::device::{autodiff_device, compute_device};
use crate::eval::{self, EvalAttack};
use crate::rng::seeded;
use crate::tensor_util::{predictions, to_vec};
use crate::train::{Method, StepOutcome, Trainer};
use crate::zoo::{Arch, Model, ModelSpec};
use anyhow::{Context, Result, anyhow, bail};
use burn::prelude::*;
use burn::tensor::activation::softmax;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// Test images attacked by `attack` unless `n=` says otherwise (AutoAttack: fewer, it is slow).
const ATTACK_N: usize = 500;
const AUTOATTACK_N: usize = 100;
/// Test images of `eval` unless `n=` says otherwise.
const EVAL_N: usize = 1000;
/// Images attacked at a time while looking for a misclassified sample.
const SEARCH_CHUNK: usize = 100;

/// The settings the workbench opens with: the shipped teacher, a fresh micro-cnn student,
/// RSLAD with a PGD-10 training attack, the embedded MNIST subset.
pub fn default_settings() -> TrainArgs {
    TrainArgs {
        data: DataArgs {
            dataset: "mnist".into(),
            data: "embedded".into(),
        },
        model: "micro-cnn".into(),
        method: MethodName::Rslad,
        options: cli::TrainingOptions {
            // The nominal length of a run: it sets IAD's default warm-up and nothing else here.
            epochs: 10,
            optimizer: OptimizerName::Adam,
            lr: 0.002,
            step_size: Some(0.05),
            steps: Some(10),
            eps_warmup: 1,
            eval_n: 500,
            eval_steps: 10,
            ..cli::TrainingOptions::default()
        },
        out: None,
    }
}

/// A loaded teacher and how to name it.
struct Teacher {
    model: Model,
    label: String,
    /// The dataset its card says it was trained on.
    dataset: String,
}

pub struct Engine {
    shared: Arc<Shared>,
    /// The `train` options in force; `options.teacher` stays None (the engine holds the
    /// teacher itself, so non-distilling methods are not refused for having one).
    settings: TrainArgs,
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
}

/// Where the file paths of `save`, `load`, `teacher` and `data` may point.
#[derive(Clone, Debug, Default)]
pub struct FileScope {
    /// Relative paths resolve against this folder (None: the working directory).
    pub base: Option<PathBuf>,
    /// Only relative paths without `..` are allowed: a session from someone else may not
    /// reach outside its own folder.
    pub confined: bool,
}

impl FileScope {
    /// The path a command's argument names, or why it may not be used.
    pub fn resolve(&self, text: &str) -> Result<PathBuf> {
        use std::path::Component;
        let path = PathBuf::from(text);
        if self.confined {
            if path.is_absolute() || text.starts_with('~') {
                bail!("`{text}` is refused: a session may only use paths relative to its folder");
            }
            if path
                .components()
                .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
            {
                bail!("`{text}` is refused: a session may not leave its folder (no `..`)");
            }
        }
        Ok(match &self.base {
            Some(base) => base.join(path),
            None => path,
        })
    }
}

impl Engine {
    /// Loads the data and the teacher and builds a fresh student; `teacher` is a checkpoint
    /// path or "embedded".
    pub fn new(shared: Arc<Shared>, settings: TrainArgs, teacher: Option<&str>) -> Result<Engine> {
        let data = cli::load_data(&settings.data)?;
        let teacher = teacher.map(load_teacher).transpose()?;
        let trainer = build_trainer(&settings, &data, teacher.as_ref(), None)?;
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

    /// The student as it is now (for tests and saving).
    pub fn student(&self) -> &Model {
        &self.trainer.model
    }

    pub fn trainer(&self) -> &Trainer {
        &self.trainer
    }

    /// Runs one command; the snapshot shows its results. UI-only commands (help, quit) are
    /// refused here.
    pub fn execute(&mut self, command: Command) -> Result<()> {
        self.command_started = Instant::now();
        let result = self.dispatch(command);
        self.elapsed += self.command_started.elapsed().as_secs_f64();
        self.command_started = Instant::now();
        self.publish_all();
        result
    }

    fn dispatch(&mut self, command: Command) -> Result<()> {
        match command {
            Command::Step { epochs } => self.step_epochs(epochs),
            Command::StepBatches { batches } => self.step_batches(batches),
            Command::Stop => Ok(()),
            Command::Method { name, options } => self.set_method(name, &options),
            Command::Student(arch) => self.set_student(arch),
            Command::Teacher(source) => self.set_teacher(&source),
            Command::Data(target) => self.set_data(&target),
            Command::Eps(eps) => self.change(|s| s.options.eps = Some(eps), "ε"),
            Command::Lr(lr) => self.change(|s| s.options.lr = lr, "learning rate"),
            Command::Optimizer {
                kind,
                momentum,
                weight_decay,
                gamma,
                milestones,
            } => self.change(
                |s| {
                    let o = &mut s.options;
                    o.optimizer = kind;
                    o.momentum = momentum.unwrap_or(o.momentum);
                    o.weight_decay = weight_decay.map_or(o.weight_decay, |w| w as f32);
                    o.gamma = gamma.unwrap_or(o.gamma);
                    o.milestones = milestones.unwrap_or_else(|| o.milestones.clone());
                },
                "optimizer",
            ),
            Command::Seed(seed) => self.change(|s| s.options.seed = seed, "seed"),
            Command::ShowSample(index) => self.select(index),
            Command::Next => self.select(self.sample + 1),
            Command::Prev => self.select(self.sample.saturating_sub(1)),
            Command::ShowMisclassified => self.find_misclassified(),
            Command::Attack {
                kind,
                eps,
                steps,
                n,
            } => self.attack(kind, eps, steps, n),
            Command::Eval { n } => self.eval(n),
            Command::Save(path) => self.save(path),
            Command::Load(path) => self.load(&path),
            Command::Reset => self.reset(),
            Command::Help(_) | Command::Quit => {
                bail!("`help` and `quit` are handled by the front end")
            }
            Command::SaveSession(_)
            | Command::LoadSession(_)
            | Command::Mark { .. }
            | Command::Recover => {
                bail!("session commands are handled by the session runner")
            }
        }
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
        self.settings
            .options
            .eps
            .unwrap_or(cli::attack_defaults(self.data.kind).epsilon)
    }

    fn step_epochs(&mut self, epochs: usize) -> Result<()> {
        for _ in 0..epochs {
            if !self.run_batches(usize::MAX)? {
                break;
            }
        }
        Ok(())
    }

    fn step_batches(&mut self, batches: usize) -> Result<()> {
        self.run_batches(batches).map(|_| ())
    }

    /// Trains up to `max` batches; false if stopped.
    fn run_batches(&mut self, max: usize) -> Result<bool> {
        if self.trainer.epoch_position() == (0, 0) {
            self.shared.update(|s| s.curves.batch_losses.clear());
        }
        let shared = Arc::clone(&self.shared);
        let progress = LiveProgress::new(&shared, self.elapsed_now());
        let outcome = self
            .trainer
            .step_batches(&self.data, max, &progress, &self.shared.cancel);
        drop(progress);
        match outcome {
            StepOutcome::Batches(n) => {
                let (done, total) = self.trainer.epoch_position();
                self.info(format!(
                    "{n} batch(es) of epoch {}: {done}/{total} done",
                    self.trainer.epochs_done() + 1
                ));
                Ok(true)
            }
            StepOutcome::EpochDone(m) => {
                let robust = m.test_robust_accuracy.map_or(String::new(), |r| {
                    format!(", {} {:.2}%", self.robust_label(), 100.0 * r)
                });
                self.info(format!(
                    "epoch {} done in {:.1} s: loss {:.4}, clean {:.2}%{robust}",
                    m.epoch,
                    m.seconds,
                    m.loss,
                    100.0 * m.test_clean_accuracy
                ));
                if self.trainer.epochs_done() == 1 {
                    self.measure_teacher();
                }
                self.refresh_sample();
                Ok(true)
            }
            StepOutcome::Diverged { batch, loss } => {
                self.refresh_sample();
                bail!(
                    "the loss became {loss} at batch {batch} of epoch {}: that batch was not \
                     applied, so the student is as it was after batch {} (its last good state). \
                     Lower the learning rate (now {}), e.g. `lr {}`, then `step` resumes",
                    self.trainer.epochs_done() + 1,
                    batch - 1,
                    self.settings.options.lr,
                    self.settings.options.lr / 10.0
                )
            }
            StepOutcome::Cancelled => {
                let (done, total) = self.trainer.epoch_position();
                self.shared.log(
                    LogLevel::Warning,
                    format!(
                        "stopped after batch {done}/{total} of epoch {}; the student is as it was \
                         after that batch; `step` resumes the epoch",
                        self.trainer.epochs_done() + 1
                    ),
                );
                self.refresh_sample();
                Ok(false)
            }
        }
    }

    fn robust_label(&self) -> String {
        self.trainer
            .config
            .eval_attack
            .as_ref()
            .map_or("robust".to_string(), |a| a.name.clone())
    }

    /// The teacher's accuracy on the per-epoch evaluation, drawn as reference lines.
    fn measure_teacher(&mut self) {
        let Some(teacher) = &self.teacher else {
            return;
        };
        let test = self
            .data
            .test
            .take(self.trainer.config.eval_n.min(self.data.test.len()));
        let progress = self.progress();
        let Some(report) = eval::evaluate_cancellable(
            &teacher.model,
            &test,
            self.trainer.config.eval_attack.as_slice(),
            self.settings.options.seed,
            &progress,
            &self.shared.cancel,
        ) else {
            return;
        };
        self.shared.update(|s| {
            s.curves.teacher_clean = Some(100.0 * report.clean_accuracy);
            s.curves.teacher_robust = report.attacks.first().map(|a| 100.0 * a.robust_accuracy);
        });
    }

    fn set_method(&mut self, name: MethodName, options: &[(String, f64)]) -> Result<()> {
        let mut settings = self.settings.clone();
        settings.method = name;
        let o = &mut settings.options;
        (o.alpha, o.beta, o.temperature, o.iad_warmup, o.rslad_scale) =
            (None, None, None, None, None);
        for (key, value) in options {
            let v = *value;
            match key.as_str() {
                "alpha" => o.alpha = Some(v as f32),
                "beta" => o.beta = Some(v as f32),
                "temperature" => o.temperature = Some(v as f32),
                "iad-warmup" => o.iad_warmup = Some(whole(key, v)?),
                "rslad-scale" => o.rslad_scale = Some(v as f32),
                "steps" => o.steps = Some(whole(key, v)?),
                "step-size" => o.step_size = Some(v as f32),
                "eps-warmup" => o.eps_warmup = whole(key, v)?,
                _ => bail!("unknown key {key}"),
            }
        }
        self.apply(settings, false)?;
        self.info(format!(
            "method {}",
            method_label(&self.trainer.config.method)
        ));
        Ok(())
    }

    /// Changes one setting, keeping the student.
    fn change(&mut self, edit: impl FnOnce(&mut TrainArgs), what: &str) -> Result<()> {
        let mut settings = self.settings.clone();
        edit(&mut settings);
        self.apply(settings, false)?;
        self.info(format!("{what} set; it applies from the next batch"));
        if what == "ε" {
            self.refresh_sample();
        }
        Ok(())
    }

    /// Rebuilds the trainer with new settings; on error nothing changes. The student's
    /// weights and history are kept unless `fresh`.
    fn apply(&mut self, settings: TrainArgs, fresh: bool) -> Result<()> {
        let model = (!fresh).then(|| self.trainer.model.clone());
        let mut trainer = build_trainer(&settings, &self.data, self.teacher.as_ref(), model)?;
        let (done, total) = self.trainer.epoch_position();
        if !fresh {
            trainer.history = self.trainer.history.clone();
            if done > 0 {
                self.shared.log(
                    LogLevel::Warning,
                    format!(
                        "the epoch under way ({done}/{total} batches) starts over with the new \
                         settings; the student keeps what it learnt"
                    ),
                );
            }
        }
        self.trainer = trainer;
        self.settings = settings;
        if fresh {
            self.shared.update(|s| {
                s.curves.batch_losses.clear();
                s.status.unsaved = false;
            });
        }
        Ok(())
    }

    fn set_student(&mut self, arch: Arch) -> Result<()> {
        let mut settings = self.settings.clone();
        settings.model = arch.name().to_string();
        self.apply(settings, true)?;
        self.info(format!(
            "a fresh {} student ({} parameters)",
            arch,
            self.trainer.model.parameter_count()
        ));
        self.refresh_sample();
        Ok(())
    }

    fn set_teacher(&mut self, source: &str) -> Result<()> {
        if source == "none" {
            if self.trainer.config.method.needs_teacher() {
                bail!(
                    "{} distils from a teacher; switch method first (e.g. `method sat`)",
                    self.trainer.config.method.name()
                );
            }
            self.teacher = None;
            self.shared.update(|s| {
                s.curves.teacher_clean = None;
                s.curves.teacher_robust = None;
            });
            self.info("no teacher");
        } else {
            let teacher = if source == crate::teacher::EMBEDDED {
                load_teacher(source)?
            } else {
                let path = self.scope.resolve(source)?;
                load_teacher(&path.to_string_lossy())?
            };
            cli::check_teacher_fits(&teacher.model.spec(), &self.trainer.model.spec())?;
            let old = self.teacher.replace(teacher);
            if let Err(e) = self.apply(self.settings.clone(), false) {
                self.teacher = old;
                return Err(e);
            }
            self.info(format!(
                "teacher {}",
                self.teacher.as_ref().map_or("", |t| &t.label)
            ));
            self.warn_if_teacher_mismatch();
            if self.trainer.epochs_done() > 0 {
                self.measure_teacher();
            } else {
                self.shared.update(|s| {
                    s.curves.teacher_clean = None;
                    s.curves.teacher_robust = None;
                });
            }
        }
        self.refresh_sample();
        Ok(())
    }

    /// `data NAME` keeps the folder (or uses `data` when the data was embedded); `data
    /// FOLDER` keeps the dataset. The folder is kept as typed and resolved against the file
    /// scope when loading, so a session replayed from another folder shows the same status.
    /// Nothing changes, and nothing is logged, unless the whole switch succeeds.
    fn set_data(&mut self, target: &str) -> Result<()> {
        let mut settings = self.settings.clone();
        match DatasetKind::from_name(target) {
            Ok(kind) => {
                settings.data.dataset = kind.name().to_string();
                if settings.data.data == "embedded" && kind != DatasetKind::Mnist {
                    settings.data.data = "data".into();
                }
            }
            // "embedded" or a folder, kept as typed.
            Err(_) => settings.data.data = target.to_string(),
        }
        let mut source = settings.data.clone();
        if source.data != "embedded" {
            source.data = self
                .scope
                .resolve(&source.data)?
                .to_string_lossy()
                .into_owned();
        }
        let data = cli::load_data(&source)?;
        let mut changes = Vec::new();
        let keep_teacher = image_shape(&data) == image_shape(&self.data)
            || self.adapt_to_new_shape(&mut settings, &data, &mut changes);
        let teacher = self.teacher.as_ref().filter(|_| keep_teacher);
        let trainer = build_trainer(&settings, &data, teacher, None)
            .context("the data does not suit the current student or teacher")?;
        if !keep_teacher {
            self.teacher = None;
        }
        self.data = data;
        self.trainer = trainer;
        self.settings = settings;
        self.sample = 0;
        self.shared.update(|s| {
            s.curves.batch_losses.clear();
            s.curves.teacher_clean = None;
            s.curves.teacher_robust = None;
            s.status.unsaved = false;
        });
        self.info(format!(
            "data: {} ({} training, {} test images); a fresh student",
            self.data.origin,
            self.data.train.len(),
            self.data.test.len()
        ));
        for (level, text) in changes {
            self.shared.log(level, text);
        }
        self.warn_if_teacher_mismatch();
        self.refresh_sample();
        Ok(())
    }

    /// Data of another image shape or class count: a student, attack settings and teacher
    /// that suit it. The student becomes the data's default (micro-cnn, or the paper's
    /// ResNet-18 on CIFAR) unless its architecture takes the new images; the training attack
    /// goes back to the data's defaults (ε, step size, steps, as `train` uses); a teacher that
    /// cannot read the images is to be put down, and a distilling method with it (natural
    /// until `teacher PATH` and `method` again). Edits `settings`, says each change in
    /// `changes` (logged once the switch succeeds), and returns whether the teacher stays.
    fn adapt_to_new_shape(
        &self,
        settings: &mut TrainArgs,
        data: &Dataset,
        changes: &mut Vec<(LogLevel, String)>,
    ) -> bool {
        // The student is rebuilt for the data's classes, so only its input shape must fit.
        let student_fits = Arch::from_name(&settings.model).is_ok_and(|arch| {
            cli::check_fit(&ModelSpec::native(arch, data.train.num_classes), data).is_ok()
        });
        if !student_fits {
            let student = if data.kind.augments() {
                Arch::ResNet18
            } else {
                Arch::MicroCnn
            };
            changes.push((
                LogLevel::Info,
                format!(
                    "{} does not take {} images: the student is a fresh {student}",
                    settings.model,
                    data.kind.name()
                ),
            ));
            settings.model = student.name().to_string();
        }
        let o = &mut settings.options;
        (o.eps, o.step_size, o.steps) = (None, None, None);
        let defaults = cli::attack_defaults(data.kind);
        changes.push((
            LogLevel::Info,
            format!(
                "attack settings for {}: ε {:.4}, step size {:.4}, {} steps",
                data.kind.name(),
                defaults.epsilon,
                defaults.step_size,
                defaults.train_steps
            ),
        ));
        let Some(teacher) = &self.teacher else {
            return true;
        };
        if cli::check_fit(&teacher.model.spec(), data).is_ok() {
            return true;
        }
        let distils = !matches!(
            settings.method,
            MethodName::Natural | MethodName::Sat | MethodName::Trades
        );
        if distils {
            settings.method = MethodName::Natural;
        }
        changes.push((
            LogLevel::Warning,
            format!(
                "the teacher ({}) does not take {} images: no teacher now{}; load one with \
                 `teacher PATH`",
                teacher.label,
                data.kind.name(),
                if distils {
                    ", method natural until then"
                } else {
                    ""
                }
            ),
        ));
        false
    }

    fn reset(&mut self) -> Result<()> {
        self.apply(self.settings.clone(), true)?;
        self.info(format!(
            "a fresh {} student from seed {}",
            self.settings.model, self.settings.options.seed
        ));
        self.refresh_sample();
        Ok(())
    }

    fn select(&mut self, index: usize) -> Result<()> {
        let len = self.data.test.len();
        if index >= len {
            bail!("the test set has {len} images: give 0 to {}", len - 1);
        }
        self.sample = index;
        self.refresh_sample();
        Ok(())
    }

    /// The next test image (after the selected one) that the student misclassifies under
    /// the sample view's PGD attack.
    fn find_misclassified(&mut self) -> Result<()> {
        let len = self.data.test.len();
        let view = attack::eval_view(&self.trainer.model);
        let config = self.sample_attack().config;
        let device = compute_device();
        let mut rng = seeded(self.settings.options.seed, crate::rng::stream::EVAL_ATTACK);
        let progress = self.progress();
        use crate::progress::Progress;
        progress.start("searching", (len - 1) as u64);
        let order: Vec<usize> = (1..len).map(|k| (self.sample + k) % len).collect();
        for chunk in order.chunks(SEARCH_CHUNK) {
            if self.shared.cancelled() {
                return Ok(());
            }
            let (x, y) = crate::train::batch_tensors(&self.data.test, chunk, &device);
            let labels = crate::tensor_util::int_to_vec(y.clone());
            let adversarial = attack::pgd(&view, &x, &Target::labels(y), &config, &mut rng);
            let preds = predictions(view.forward(adversarial.adversarial));
            if let Some(k) = preds.iter().zip(&labels).position(|(p, l)| p != l) {
                drop(progress);
                self.sample = chunk[k];
                self.refresh_sample();
                self.info(format!(
                    "test image {} is misclassified under attack",
                    chunk[k]
                ));
                return Ok(());
            }
            progress.advance(chunk.len() as u64);
        }
        bail!("the student classifies every test image correctly under this attack")
    }

    /// The attack of the sample view: the per-epoch PGD (at least 10 steps).
    fn sample_attack(&self) -> EvalAttack {
        let defaults = cli::attack_defaults(self.data.kind);
        let step = self
            .settings
            .options
            .step_size
            .unwrap_or(defaults.step_size);
        let steps = self.settings.options.eval_steps.max(10);
        EvalAttack::pgd(self.epsilon(), steps, step)
    }

    /// Recomputes the sample view: the image, its PGD version against the student, and both
    /// models' class probabilities on both.
    fn refresh_sample(&mut self) {
        let test = &self.data.test;
        if test.is_empty() {
            return;
        }
        let index = self.sample.min(test.len() - 1);
        let device = compute_device();
        let (x, y) = crate::train::batch_tensors(test, &[index], &device);
        let attack = self.sample_attack();
        let student = attack::eval_view(&self.trainer.model);
        // Seeded by the index, so the same image always gets the same start.
        let mut rng = seeded(
            self.settings.options.seed.wrapping_add(index as u64),
            crate::rng::stream::EVAL_ATTACK,
        );
        let adversarial =
            attack::pgd(&student, &x, &Target::labels(y), &attack.config, &mut rng).adversarial;
        let probabilities = |model: &Model, input: &Tensor<4>| -> Vec<f32> {
            to_vec(softmax(model.forward(input.clone()), 1))
        };
        let teacher = self.teacher.as_ref().map(|t| attack::eval_view(&t.model));
        let view = SampleView {
            index,
            of: test.len(),
            channels: test.channels,
            height: test.height,
            width: test.width,
            natural: to_vec(x.clone()),
            adversarial: to_vec(adversarial.clone()),
            epsilon: attack.config.epsilon,
            attack: attack.name.clone(),
            true_class: usize::from(test.labels[index]),
            class_names: self
                .data
                .kind
                .class_names()
                .iter()
                .map(|s| s.to_string())
                .collect(),
            teacher_natural: teacher.as_ref().map(|t| probabilities(t, &x)),
            teacher_adversarial: teacher.as_ref().map(|t| probabilities(t, &adversarial)),
            student_natural: probabilities(&student, &x),
            student_adversarial: probabilities(&student, &adversarial),
        };
        self.shared.update(|s| s.sample = Some(view));
    }

    fn attack(
        &mut self,
        kind: AttackKind,
        eps: Option<f32>,
        steps: Option<usize>,
        n: Option<usize>,
    ) -> Result<()> {
        let defaults = cli::attack_defaults(self.data.kind);
        let epsilon = eps.unwrap_or(self.epsilon());
        let steps = steps.unwrap_or(defaults.eval_steps);
        let default_n = if kind == AttackKind::AutoAttack {
            AUTOATTACK_N
        } else {
            ATTACK_N
        };
        let n = n.unwrap_or(default_n).min(self.data.test.len());
        let test = self.data.test.take(n);
        let title = format!(
            "{}, {n} test images, ε = {epsilon}",
            self.trainer.model.spec().arch
        );
        let eval_attack = match kind {
            AttackKind::Fgsm => EvalAttack::fgsm(epsilon),
            AttackKind::Pgd => EvalAttack::pgd(epsilon, steps, defaults.step_size),
            AttackKind::Cw => EvalAttack::cw(epsilon, steps, defaults.step_size),
            AttackKind::AutoAttack => return self.autoattack(&test, epsilon, title),
        };
        self.run_attacks(&test, &[eval_attack], title)
    }

    fn eval(&mut self, n: Option<usize>) -> Result<()> {
        let defaults = cli::attack_defaults(self.data.kind);
        let epsilon = self.epsilon();
        let n = n.unwrap_or(EVAL_N).min(self.data.test.len());
        let test = self.data.test.take(n);
        let attacks = [
            EvalAttack::fgsm(epsilon),
            EvalAttack::pgd(epsilon, defaults.eval_steps, defaults.step_size),
            EvalAttack::cw(epsilon, defaults.eval_steps, defaults.step_size),
        ];
        let title = format!(
            "{}, {n} test images, ε = {epsilon}",
            self.trainer.model.spec().arch
        );
        self.run_attacks(&test, &attacks, title)
    }

    fn run_attacks(
        &mut self,
        test: &crate::data::ImageSet,
        attacks: &[EvalAttack],
        title: String,
    ) -> Result<()> {
        let progress = self.progress();
        let report = eval::evaluate_cancellable(
            &self.trainer.model,
            test,
            attacks,
            self.settings.options.seed,
            &progress,
            &self.shared.cancel,
        );
        drop(progress);
        let Some(report) = report else {
            self.shared
                .log(LogLevel::Warning, "attack stopped; the table is unchanged");
            return Ok(());
        };
        let table = AttackTable {
            title,
            clean: 100.0 * report.clean_accuracy,
            rows: report
                .attacks
                .iter()
                .map(|a| AttackRow {
                    name: a.name.clone(),
                    robust: 100.0 * a.robust_accuracy,
                    detail: format!("max |δ| {:.3} · {:.1} s", a.max_perturbation, a.seconds),
                })
                .collect(),
            flags: Vec::new(),
        };
        let summary: Vec<String> = table
            .rows
            .iter()
            .map(|r| format!("{} {:.2}%", r.name, r.robust))
            .collect();
        self.info(format!(
            "{}: clean {:.2}%, {}",
            table.title,
            table.clean,
            summary.join(", ")
        ));
        self.shared.update(|s| s.attack = Some(table));
        Ok(())
    }

    fn autoattack(
        &mut self,
        test: &crate::data::ImageSet,
        epsilon: f32,
        title: String,
    ) -> Result<()> {
        let config = AutoAttackConfig {
            epsilon,
            version: Version::Standard,
            seed: self.settings.options.seed,
            batch_size: eval::EVAL_BATCH,
        };
        let progress = self.progress();
        let report = eval::autoattack_cancellable(
            &self.trainer.model,
            test,
            &config,
            &progress,
            &self.shared.cancel,
        )?;
        drop(progress);
        let Some(report) = report else {
            self.shared.log(
                LogLevel::Warning,
                "AutoAttack stopped; the table is unchanged",
            );
            return Ok(());
        };
        let mut rows: Vec<AttackRow> = report
            .components
            .iter()
            .map(|c| AttackRow {
                name: c.component.name().to_string(),
                robust: 100.0 * c.robust_accuracy,
                detail: format!("broke {} of {} · {:.1} s", c.broken, c.attacked, c.seconds),
            })
            .collect();
        rows.push(AttackRow {
            name: "AutoAttack".into(),
            robust: 100.0 * report.robust_accuracy,
            detail: format!("max |δ| {:.3}", report.max_perturbation),
        });
        let flags: Vec<String> = report.flags.iter().map(|f| f.message()).collect();
        for flag in &flags {
            self.shared.log(LogLevel::Warning, flag.clone());
        }
        self.info(format!(
            "{title}: clean {:.2}%, AutoAttack {:.2}%",
            100.0 * report.clean_accuracy,
            100.0 * report.robust_accuracy
        ));
        self.shared.update(|s| {
            s.attack = Some(AttackTable {
                title,
                clean: 100.0 * report.clean_accuracy,
                rows,
                flags,
            })
        });
        Ok(())
    }

    fn save(&mut self, path: Option<String>) -> Result<()> {
        let path = path.unwrap_or_else(|| self.default_save_path());
        let path = self.scope.resolve(&path)?;
        let saved = checkpoint::save(
            &self.trainer.model,
            &path,
            &SaveInfo {
                dataset: self.data.kind.name(),
                training: Some(&self.trainer.config),
                metrics: &self.trainer.history,
                seed: self.settings.options.seed,
            },
        )
        .with_context(|| format!("cannot save to {}", path.display()))?;
        self.shared.update(|s| s.status.unsaved = false);
        self.info(format!("saved {}", saved.display()));
        Ok(())
    }

    /// Every setting in one line: what a session records as its starting point.
    pub fn settings_summary(&self) -> String {
        let o = &self.settings.options;
        let c = &self.trainer.config;
        let optimizer = match c.optimizer.kind {
            crate::train::OptimizerKind::Adam => "adam".to_string(),
            crate::train::OptimizerKind::Sgd { momentum } => format!("sgd momentum {momentum}"),
        };
        format!(
            "{} ({}) · teacher {} · student {} · {} · {optimizer} lr {} · batch {} · ε {} \
             warm-up {} · eval {} images {} · seed {}",
            self.data.kind.name(),
            self.settings.data.data,
            self.teacher.as_ref().map_or("none", |t| t.label.as_str()),
            self.settings.model,
            method_label(&c.method),
            o.lr,
            c.batch_size,
            self.epsilon(),
            c.epsilon_warmup_epochs,
            c.eval_n,
            self.robust_label(),
            o.seed
        )
    }

    /// Where `save` without a path writes.
    pub fn default_save_path(&self) -> String {
        format!(
            "runs/workbench-{}-{}",
            self.settings.model,
            self.trainer.config.method.name()
        )
    }

    fn load(&mut self, path: &str) -> Result<()> {
        let resolved = self.scope.resolve(path)?;
        let (model, card) = checkpoint::load(&resolved, None, &autodiff_device())
            .with_context(|| format!("cannot load {path}"))?;
        cli::check_fit(&card.spec, &self.data)?;
        let mut settings = self.settings.clone();
        settings.model = card.spec.arch.name().to_string();
        let mut trainer = build_trainer(&settings, &self.data, self.teacher.as_ref(), Some(model))?;
        trainer.history = card.metrics.clone();
        self.trainer = trainer;
        self.settings = settings;
        self.shared.update(|s| {
            s.curves.batch_losses.clear();
            s.status.unsaved = false;
        });
        self.info(format!(
            "loaded {} ({}, {} epochs recorded)",
            path,
            card.spec.arch,
            card.metrics.len()
        ));
        self.refresh_sample();
        Ok(())
    }

    /// Writes the status line and the curves from the engine's state.
    fn publish_all(&self) {
        let (done, total) = self.trainer.epoch_position();
        let batches = if total == 0 {
            self.trainer.batches_per_epoch(&self.data)
        } else {
            total
        };
        let status_dataset = if self.settings.data.data == "embedded" {
            format!("{} (embedded)", self.data.kind.name())
        } else {
            format!("{} ({})", self.data.kind.name(), self.settings.data.data)
        };
        let teacher = self
            .teacher
            .as_ref()
            .map_or("none".to_string(), |t| t.label.clone());
        let student = self.settings.model.clone();
        let method = short_method_label(&self.trainer.config.method);
        let epsilon = self.epsilon();
        let points: Vec<EpochPoint> = self
            .trainer
            .history
            .iter()
            .map(|m| EpochPoint {
                epoch: m.epoch,
                loss: m.loss,
                clean: 100.0 * m.test_clean_accuracy,
                robust: m.test_robust_accuracy.map(|r| 100.0 * r),
            })
            .collect();
        let robust_label = self.robust_label();
        let (epoch, seed, elapsed) = (
            self.trainer.epochs_done(),
            self.settings.options.seed,
            self.elapsed,
        );
        self.shared.update(|s| {
            s.status.dataset = status_dataset;
            s.status.teacher = teacher;
            s.status.student = student;
            s.status.method = method;
            s.status.epoch = epoch;
            s.status.batch = done;
            s.status.batches = batches;
            s.status.epsilon = epsilon;
            s.status.seed = seed;
            s.status.elapsed_seconds = elapsed;
            s.status.busy = None;
            s.status.device = crate::device::short_label();
            s.curves.epochs = points;
            s.curves.robust_label = robust_label;
        });
    }
}

fn whole(key: &str, value: f64) -> Result<usize> {
    if value >= 0.0 && value.fract() == 0.0 && value < 1e9 {
        Ok(value as usize)
    } else {
        Err(anyhow!("{key} must be a whole number ≥ 0; got {value}"))
    }
}

fn load_teacher(source: &str) -> Result<Teacher> {
    let (model, card) = cli::load_teacher_checkpoint(source.as_ref())?;
    let origin = if source == crate::teacher::EMBEDDED {
        "embedded".to_string()
    } else {
        source.to_string()
    };
    let method = card.training.as_ref().map_or(String::new(), |t| {
        format!(" {}", t.method.name().to_uppercase())
    });
    Ok(Teacher {
        model,
        dataset: card.dataset.clone(),
        label: if origin == "embedded" {
            format!("{}{method} (shipped)", card.spec.arch)
        } else {
            format!("{}{method} ({origin})", card.spec.arch)
        },
    })
}

/// Channels, size and classes of the data's images.
fn image_shape(data: &Dataset) -> (usize, usize, usize) {
    (
        data.train.channels,
        data.train.height,
        data.train.num_classes,
    )
}

/// A trainer for `settings` on `data`: the given student, or a fresh one from the seed.
fn build_trainer(
    settings: &TrainArgs,
    data: &Dataset,
    teacher: Option<&Teacher>,
    model: Option<Model>,
) -> Result<Trainer> {
    let (spec, config) = cli::training_setup(settings, data)?;
    let model = match model {
        Some(model) => model,
        None => Model::build(spec, settings.options.seed, &autodiff_device())?,
    };
    if !config.method.needs_teacher() {
        return Ok(Trainer::new(model, config));
    }
    let Some(teacher) = teacher else {
        bail!(
            "{} distils from a teacher: `teacher embedded` (the shipped MNIST teacher) or \
             `teacher PATH` first",
            config.method.name()
        );
    };
    cli::check_teacher_fits(&teacher.model.spec(), &spec)?;
    Ok(Trainer::with_teacher(model, teacher.model.clone(), config))
}

/// The method and its main hyper-parameters, for the status line.
pub fn short_method_label(method: &Method) -> String {
    match method {
        Method::Natural | Method::Sat { .. } => method.name().to_string(),
        Method::Trades { beta, .. } => format!("trades β={beta}"),
        Method::Kd { alpha, .. } | Method::Ard { alpha, .. } | Method::Iad { alpha, .. } => {
            format!("{} α={alpha:.2}", method.name())
        }
        Method::Rslad { alpha, .. } => format!("rslad α={alpha:.3}"),
    }
}

/// The method and all its hyper-parameters, for the log.
pub fn method_label(method: &Method) -> String {
    match method {
        Method::Natural => "natural".into(),
        Method::Sat { attack, .. } => format!("sat PGD-{}", attack.steps),
        Method::Trades { attack, beta } => format!("trades β={beta} PGD-{}", attack.steps),
        Method::Kd { alpha, temperature } => format!("kd α={alpha:.3} τ={temperature}"),
        Method::Ard {
            attack,
            alpha,
            temperature,
        } => format!("ard α={alpha:.3} τ={temperature} PGD-{}", attack.steps),
        Method::Iad {
            attack,
            alpha,
            temperature,
            beta,
            warmup_epochs,
        } => format!(
            "iad α={alpha:.3} τ={temperature} β={beta} warm-up {warmup_epochs} PGD-{}",
            attack.steps
        ),
        Method::Rslad {
            attack,
            alpha,
            scale,
        } => format!("rslad α={alpha:.3} scale {scale} PGD-{}", attack.steps),
    }
}
