//! Files: saving and loading the student, and the teacher (a checkpoint, the shipped one, or
//! none). Every path goes through the engine's [`FileScope`](crate::lab::scope::FileScope).

use super::Engine;
use crate::checkpoint::{self, Occupant, SaveInfo};
use crate::device::autodiff_device;
use crate::settings::{check_fit, check_teacher_fits};
use crate::text::count;
use crate::zoo::Model;
use anyhow::{Context, Result, bail};

/// A loaded teacher and how to name it.
pub(super) struct Teacher {
    pub model: Model,
    pub label: String,
    /// The name of the dataset its card says it was trained on.
    pub dataset: String,
}

/// The teacher at `source`: a checkpoint path or a shipped teacher's name.
pub(super) fn load_teacher(source: &str) -> Result<Teacher> {
    let (model, card) = crate::teacher::load(source.as_ref())?;
    let method = match (&card.training, crate::teacher::shipped_method(source)) {
        (_, Some(shipped)) => format!(" {shipped}"),
        (Some(t), None) => format!(" {}", t.method.name().to_uppercase()),
        (None, None) => String::new(),
    };
    let label = if crate::teacher::is_shipped(source) {
        format!("{}{method} (shipped)", card.spec.arch)
    } else {
        format!("{}{method} ({source})", card.spec.arch)
    };
    Ok(Teacher {
        model,
        dataset: card.dataset_name().to_string(),
        label,
    })
}

impl Engine {
    pub(super) fn set_teacher(&mut self, source: &str) -> Result<()> {
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
            let teacher = if crate::teacher::is_shipped(source) {
                load_teacher(source)?
            } else {
                let path = self.scope.resolve_checkpoint(source)?;
                load_teacher(&path.to_string_lossy())?
            };
            check_teacher_fits(&teacher.model.spec(), &self.trainer.model.spec())?;
            let old = self.teacher.replace(teacher);
            if let Err(e) = self.rebuild() {
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

    /// Saves the student at `path` (`None`: a fresh name). Nothing but a checkpoint is ever
    /// replaced, and a checkpoint only with `overwrite`; in a replayed session, only one that
    /// this replay saved itself, or one holding what the recording saved there.
    pub(super) fn save(&mut self, path: Option<String>, overwrite: bool) -> Result<()> {
        let typed = match path {
            Some(path) => path,
            None => self.fresh_save_path()?,
        };
        let path = self.scope.resolve_checkpoint(&typed)?;
        // Accepted by the runner for this one replayed save only.
        let recorded_output = std::mem::take(&mut self.recorded_outputs).contains(&path);
        let replacing = match checkpoint::occupant(&path) {
            Occupant::Nothing => false,
            Occupant::Folder => bail!(checkpoint::folder_message(&path)),
            Occupant::Other(file) => bail!(
                "{} already exists and is not a checkpoint this program can read; choose another name",
                file.display()
            ),
            Occupant::Checkpoint if recorded_output => true,
            Occupant::Checkpoint if self.scope.confined && !self.saved_here.contains(&path) => {
                bail!(
                    "{typed} already holds a checkpoint that was there before this session \
                     ran: a replayed session never replaces one (move it away, or replay in \
                     another folder)"
                )
            }
            Occupant::Checkpoint if !overwrite => bail!(
                "{typed} already holds a checkpoint: choose another name, or `save {typed} \
                 --overwrite` to replace it"
            ),
            Occupant::Checkpoint => true,
        };
        // A recalibrated student's card says so after the dataset's name, as `recalibrate`'s.
        let dataset = match &self.statistics_note {
            Some(note) => format!("{}; {note}", self.data.kind.name()),
            None => self.data.kind.name().to_string(),
        };
        let saved = checkpoint::save(
            &self.trainer.model,
            &path,
            &SaveInfo {
                dataset: &dataset,
                training: Some(&self.trainer.config),
                metrics: &self.trainer.history,
                seed: self.settings.seed,
            },
        )
        .with_context(|| format!("cannot save to {}", path.display()))?;
        if replacing {
            // The replaced run's resume state (`train`'s) names weights that are gone.
            let _ = std::fs::remove_file(crate::resume::path(&path));
        }
        self.shared.update(|s| s.status.unsaved = false);
        self.saved_here.insert(path);
        self.info(format!("saved {}", saved.display()));
        let (batches, _) = self.trainer.epoch_position();
        if batches > 0 {
            // A card records finished epochs only: say so rather than let a load miscount.
            self.info(format!(
                "  its card counts finished epochs only ({}); the weights also hold {} of epoch {}",
                count(self.trainer.epochs_done(), "epoch", "epochs"),
                count(batches, "batch", "batches"),
                self.trainer.epochs_done() + 1
            ));
        }
        self.last_saved = Some(typed);
        Ok(())
    }

    /// Where `save` without a path writes: runs/workbench-MODEL-METHOD, or the first of
    /// `…-2`, `…-3`, … that holds no checkpoint yet, so an earlier save is never overwritten.
    pub fn fresh_save_path(&self) -> Result<String> {
        let base = format!(
            "runs/workbench-{}-{}",
            self.settings.student,
            self.trainer.config.method.name()
        );
        for n in 1..10_000 {
            let candidate = if n == 1 {
                base.clone()
            } else {
                format!("{base}-{n}")
            };
            if !checkpoint::exists(&self.scope.resolve_checkpoint(&candidate)?) {
                return Ok(candidate);
            }
        }
        bail!("{base}-2 … {base}-9999 all exist; give `save` a path")
    }

    /// The path (as typed, or chosen by [`Engine::fresh_save_path`]) of the last `save`.
    pub fn last_saved(&self) -> Option<&str> {
        self.last_saved.as_deref()
    }

    pub(super) fn load(&mut self, path: &str) -> Result<()> {
        let resolved = self.scope.resolve_checkpoint(path)?;
        let (model, card) = checkpoint::load(&resolved, None, &autodiff_device())
            .with_context(|| format!("cannot load {path}"))?;
        check_fit(&card.spec, &self.data)?;
        let mut settings = self.settings.clone();
        settings.student = card.spec.arch;
        let mut trainer = super::change::build_trainer(
            &settings,
            &self.data,
            self.teacher.as_ref(),
            Some(model),
        )?;
        trainer.history = card.metrics.clone();
        self.trainer = trainer;
        self.settings = settings;
        self.shared.update(|s| {
            s.curves.batch_losses.clear();
            s.status.unsaved = false;
        });
        self.student_replaced();
        self.statistics_note = card.statistics_note().map(str::to_string);
        self.info(format!(
            "loaded {} ({}, {} recorded)",
            path,
            card.spec.arch,
            crate::text::count(card.metrics.len(), "epoch", "epochs")
        ));
        self.refresh_sample();
        Ok(())
    }
}
