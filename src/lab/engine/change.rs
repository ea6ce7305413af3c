//! Settings that change what is trained: the method, ε, the optimizer, the seed, the student,
//! the data. A change is applied whole or not at all.

use super::Engine;
use super::files::Teacher;
use crate::data::{DataSource, Dataset, DatasetKind};
use crate::device::autodiff_device;
use crate::lab::command::MethodChange;
use crate::lab::snapshot::LogLevel;
use crate::settings::{
    AttackSettings, MethodName, MethodSettings, OptimizerName, TrainSettings, attack_defaults,
    check_fit, check_teacher_fits,
};
use crate::train::Trainer;
use crate::zoo::{Arch, Model, ModelSpec};
use anyhow::{Context, Result, bail};

/// Which setting a [`Engine::change`] changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Changed {
    Epsilon,
    LearningRate,
    Optimizer,
    Seed,
}

impl Engine {
    pub(super) fn set_method(&mut self, change: MethodChange) -> Result<()> {
        let mut settings = self.settings.clone();
        settings.method = change.method;
        let attack = &mut settings.attack;
        attack.steps = change.steps.or(attack.steps);
        attack.step_size = change.step_size.or(attack.step_size);
        attack.eps_warmup = change.eps_warmup.unwrap_or(attack.eps_warmup);
        attack.start = change.start.unwrap_or(attack.start);
        self.apply(settings, false)?;
        self.info(format!("method {}", self.trainer.config.method.label()));
        Ok(())
    }

    /// Changes one setting, keeping the student, and says its new value (a command typed
    /// while work runs is answered later, so the answer must say which change it was).
    pub(super) fn change(
        &mut self,
        edit: impl FnOnce(&mut TrainSettings),
        what: Changed,
    ) -> Result<()> {
        let mut settings = self.settings.clone();
        edit(&mut settings);
        self.apply(settings, false)?;
        let s = &self.settings;
        let o = &s.optimizer;
        let now = match what {
            Changed::Epsilon => format!("ε = {}", self.epsilon()),
            Changed::LearningRate => format!("learning rate = {}", o.lr),
            Changed::Seed => format!("seed = {}", s.seed),
            Changed::Optimizer => {
                let momentum = match o.kind {
                    OptimizerName::Sgd => format!(" momentum {}", o.momentum),
                    OptimizerName::Adam => String::new(),
                };
                let milestones = match o.milestones.get() {
                    [] => String::new(),
                    epochs => format!(
                        ", × {} at epochs {}",
                        o.gamma,
                        epochs
                            .iter()
                            .map(|e| e.to_string())
                            .collect::<Vec<_>>()
                            .join(",")
                    ),
                };
                format!(
                    "optimizer {}{momentum} weight-decay {} lr {}{milestones}",
                    o.kind.name(),
                    o.weight_decay,
                    o.lr
                )
            }
        };
        self.info(format!("{now}; it applies from the next batch"));
        if what == Changed::Epsilon {
            self.refresh_sample();
        }
        Ok(())
    }

    /// Rebuilds the trainer with new settings; on error nothing changes. The student's
    /// weights and history are kept unless `fresh`.
    fn apply(&mut self, settings: TrainSettings, fresh: bool) -> Result<()> {
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
            self.student_replaced();
        }
        Ok(())
    }

    /// Keeps the settings, with the teacher just replaced (or put down): the trainer is
    /// rebuilt around the same student.
    pub(super) fn rebuild(&mut self) -> Result<()> {
        self.apply(self.settings.clone(), false)
    }

    pub(super) fn set_student(&mut self, arch: Arch) -> Result<()> {
        let mut settings = self.settings.clone();
        settings.student = arch;
        self.apply(settings, true)?;
        self.info(format!(
            "a fresh {} student ({} parameters)",
            arch,
            self.trainer.model.parameter_count()
        ));
        self.refresh_sample();
        Ok(())
    }

    pub(super) fn reset(&mut self) -> Result<()> {
        self.apply(self.settings.clone(), true)?;
        self.info(format!(
            "a fresh {} student from seed {}",
            self.settings.student, self.settings.seed
        ));
        self.refresh_sample();
        Ok(())
    }

    /// `data NAME` keeps the folder (or uses `data` when the data was embedded); `data
    /// FOLDER` keeps the dataset. The folder is kept as typed and resolved against the file
    /// scope when loading, so a session replayed from another folder shows the same status.
    /// Nothing changes, and nothing is logged, unless the whole switch succeeds.
    pub(super) fn set_data(&mut self, target: &str) -> Result<()> {
        let mut settings = self.settings.clone();
        match DatasetKind::from_name(target) {
            Ok(kind) => {
                settings.data.kind = kind;
                if settings.data.source == DataSource::Embedded && kind != DatasetKind::Mnist {
                    settings.data.source = DataSource::parse("data");
                }
            }
            // "embedded" or a folder, kept as typed.
            Err(_) => settings.data.source = DataSource::parse(target),
        }
        let mut source = settings.data.clone();
        if let DataSource::Folder(folder) = &source.source {
            let resolved = self.scope.resolve(&folder.to_string_lossy())?;
            source.source = DataSource::Folder(resolved);
        }
        let data = source.load()?;
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
        self.student_replaced();
        self.info(format!(
            "data: {}; {} training and {} test images; a fresh student",
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
        settings: &mut TrainSettings,
        data: &Dataset,
        changes: &mut Vec<(LogLevel, String)>,
    ) -> bool {
        // The student is rebuilt for the data's classes, so only its input shape must fit.
        let student_fits = check_fit(
            &ModelSpec::native(settings.student, data.train.num_classes),
            data,
        )
        .is_ok();
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
                    settings.student,
                    data.kind.name()
                ),
            ));
            settings.student = student;
        }
        settings.attack = AttackSettings {
            eps_warmup: settings.attack.eps_warmup,
            ..AttackSettings::default()
        };
        let defaults = attack_defaults(data.kind);
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
        if check_fit(&teacher.model.spec(), data).is_ok() {
            return true;
        }
        let distils = settings.method.name().distils();
        if distils {
            settings.method = MethodSettings::new(MethodName::Natural);
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
pub(super) fn build_trainer(
    settings: &TrainSettings,
    data: &Dataset,
    teacher: Option<&Teacher>,
    model: Option<Model>,
) -> Result<Trainer> {
    let (spec, config) = settings.resolve(data)?;
    let model = match model {
        Some(model) => model,
        None => Model::build(spec, settings.seed, &autodiff_device())?,
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
    check_teacher_fits(&teacher.model.spec(), &spec)?;
    Ok(Trainer::with_teacher(model, teacher.model.clone(), config))
}
