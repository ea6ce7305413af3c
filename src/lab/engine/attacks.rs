//! `attack` and `eval`: robust accuracy of the student on the first test images, as the
//! attack table, which also goes onto the results board with what it measured (the student,
//! its method and training, ε, the number of images).

use super::Engine;
use crate::attack::autoattack::{AutoAttackConfig, Version};
use crate::data::ImageSet;
use crate::eval::{self, EvalAttack};
use crate::lab::command::AttackRequest;
use crate::lab::snapshot::{AttackRow, AttackTable, FlagBasis, LogLevel, TableContext, results};
use crate::settings::{AttackName, Epsilon, attack_defaults};
use anyhow::Result;

/// Test images attacked by `attack` unless `n=` says otherwise (AutoAttack: fewer, it is slow).
const ATTACK_N: usize = 500;
const AUTOATTACK_N: usize = 100;
/// Test images of `eval` unless `n=` says otherwise.
const EVAL_N: usize = 1000;

impl Engine {
    pub(super) fn attack(&mut self, request: AttackRequest) -> Result<()> {
        let defaults = attack_defaults(self.data.kind);
        let epsilon = request.eps.map_or(self.epsilon(), Epsilon::get);
        let steps = request.steps.unwrap_or(defaults.eval_steps);
        let default_n = if request.kind == AttackName::Autoattack {
            AUTOATTACK_N
        } else {
            ATTACK_N
        };
        let n = request.n.unwrap_or(default_n).min(self.data.test.len());
        let test = self.data.test.take(n);
        let eval_attack = match request.kind {
            AttackName::Fgsm => EvalAttack::fgsm(epsilon),
            AttackName::Pgd => EvalAttack::pgd(epsilon, steps, defaults.step_size),
            AttackName::Cw => EvalAttack::cw(epsilon, steps, defaults.step_size),
            AttackName::Autoattack => return self.autoattack(&test, epsilon),
        };
        self.run_attacks(&test, &[eval_attack], epsilon)
    }

    pub(super) fn eval(&mut self, n: Option<usize>) -> Result<()> {
        let defaults = attack_defaults(self.data.kind);
        let epsilon = self.epsilon();
        let n = n.unwrap_or(EVAL_N).min(self.data.test.len());
        let test = self.data.test.take(n);
        let attacks = [
            EvalAttack::fgsm(epsilon),
            EvalAttack::pgd(epsilon, defaults.eval_steps, defaults.step_size),
            EvalAttack::cw(epsilon, defaults.eval_steps, defaults.step_size),
        ];
        self.run_attacks(&test, &attacks, epsilon)
    }

    fn table_title(&self, n: usize, epsilon: f32) -> String {
        format!(
            "{}, {n} test images, ε = {epsilon}",
            self.trainer.model.spec().arch
        )
    }

    /// What a table of `n` images at `epsilon` measures; its number is given when it goes
    /// onto the board.
    fn table_context(&self, n: usize, epsilon: f32) -> TableContext {
        TableContext {
            number: 0,
            dataset: self.data.kind.name().to_string(),
            model: self.trainer.model.spec().arch.to_string(),
            method: self.trainer.config.method.short_label(),
            epochs: self.trainer.epochs_done(),
            batches: self.trainer.epoch_position().0,
            epsilon,
            images: n,
            recalibrated: self.recalibrated().unwrap_or_default().to_string(),
        }
    }

    fn run_attacks(&mut self, test: &ImageSet, attacks: &[EvalAttack], epsilon: f32) -> Result<()> {
        let title = self.table_title(test.len(), epsilon);
        let context = self.table_context(test.len(), epsilon);
        let progress = self.progress();
        let report = eval::evaluate_cancellable(
            &self.trainer.model,
            test,
            attacks,
            self.settings.seed,
            &progress,
            &self.shared.cancel,
        )?;
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
            context: Some(context),
            flag_bases: Vec::new(),
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
        self.shared.update(|s| results::record(s, table));
        Ok(())
    }

    fn autoattack(&mut self, test: &ImageSet, epsilon: f32) -> Result<()> {
        let title = self.table_title(test.len(), epsilon);
        let context = self.table_context(test.len(), epsilon);
        let config = AutoAttackConfig {
            epsilon,
            version: Version::Standard,
            seed: self.settings.seed,
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
        let flag_bases = report
            .flags
            .iter()
            .map(|f| FlagBasis {
                check: f.check(),
                percent: f
                    .points_in_rows()
                    .map(|p| 100.0 * p as f64 / report.images.max(1) as f64),
            })
            .collect();
        for flag in &flags {
            self.shared.log(LogLevel::Warning, flag.clone());
        }
        self.info(format!(
            "{title}: clean {:.2}%, AutoAttack {:.2}%",
            100.0 * report.clean_accuracy,
            100.0 * report.robust_accuracy
        ));
        let table = AttackTable {
            title,
            clean: 100.0 * report.clean_accuracy,
            rows,
            flags,
            context: Some(context),
            flag_bases,
        };
        self.shared.update(|s| results::record(s, table));
        Ok(())
    }
}
