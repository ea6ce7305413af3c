//! Does a re-executed command reproduce its recording? Every number a view shows is compared
//! (status, curves, batch losses, soft labels, the adversarial image, the attack table); times
//! and log wording are not, since they differ from run to run.

use super::Outcome;
use crate::workbench::snapshot::{AttackTable, Curves, SampleView, Snapshot, Status};

/// The tolerance `replay --execute` uses unless told otherwise: small enough that any real
/// change shows, large enough for summation-order differences between machines.
pub const DEFAULT_TOLERANCE: f64 = 1e-3;

/// The result of comparing one outcome with its recording.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Comparison {
    /// The largest absolute difference over every compared number (0: bit-identical).
    pub max_difference: f64,
    /// The first difference beyond the tolerance (or in a word, a count or a length).
    pub divergence: Option<String>,
}

struct Checker {
    tolerance: f64,
    result: Comparison,
}

impl Checker {
    fn fail(&mut self, message: String) {
        if self.result.divergence.is_none() {
            self.result.divergence = Some(message);
        }
    }

    fn same<T: PartialEq + std::fmt::Debug>(&mut self, field: &str, recorded: &T, got: &T) {
        if recorded != got {
            self.fail(format!("{field}: recorded {recorded:?}, got {got:?}"));
        }
    }

    fn number(&mut self, field: &str, recorded: f64, got: f64) {
        if recorded.is_nan() && got.is_nan() {
            return;
        }
        let difference = (recorded - got).abs();
        if difference.is_nan() || difference > self.tolerance {
            self.fail(format!("{field}: recorded {recorded}, got {got}"));
        }
        if difference.is_finite() {
            self.result.max_difference = self.result.max_difference.max(difference);
        } else if recorded != got {
            self.result.max_difference = f64::INFINITY;
        }
    }

    fn numbers<T: Copy + Into<f64>>(&mut self, field: &str, recorded: &[T], got: &[T]) {
        if recorded.len() != got.len() {
            self.fail(format!(
                "{field}: recorded {} values, got {}",
                recorded.len(),
                got.len()
            ));
            return;
        }
        for (i, (r, g)) in recorded.iter().zip(got).enumerate() {
            self.number(&format!("{field}[{i}]"), (*r).into(), (*g).into());
        }
    }

    fn option(&mut self, field: &str, recorded: Option<f64>, got: Option<f64>) {
        match (recorded, got) {
            (Some(r), Some(g)) => self.number(field, r, g),
            (None, None) => {}
            _ => self.fail(format!("{field}: recorded {recorded:?}, got {got:?}")),
        }
    }
}

/// Compares `got` with `recorded`; numbers may differ by `tolerance`.
pub fn compare(recorded: &Outcome, got: &Outcome, tolerance: f64) -> Comparison {
    let mut c = Checker {
        tolerance,
        result: Comparison::default(),
    };
    c.same("failed", &recorded.error.is_some(), &got.error.is_some());
    snapshot(&mut c, &recorded.snapshot, &got.snapshot);
    c.result
}

fn snapshot(c: &mut Checker, r: &Snapshot, g: &Snapshot) {
    status(c, &r.status, &g.status);
    curves(c, &r.curves, &g.curves);
    match (&r.sample, &g.sample) {
        (Some(r), Some(g)) => sample(c, r, g),
        (None, None) => {}
        _ => c.fail("sample: present in one run only".into()),
    }
    match (&r.attack, &g.attack) {
        (Some(r), Some(g)) => attack(c, r, g),
        (None, None) => {}
        _ => c.fail("attack table: present in one run only".into()),
    }
}

fn status(c: &mut Checker, r: &Status, g: &Status) {
    c.same("status.dataset", &r.dataset, &g.dataset);
    c.same("status.teacher", &r.teacher, &g.teacher);
    c.same("status.student", &r.student, &g.student);
    c.same("status.method", &r.method, &g.method);
    c.same("status.epoch", &r.epoch, &g.epoch);
    c.same("status.batch", &r.batch, &g.batch);
    c.same("status.batches", &r.batches, &g.batches);
    c.same("status.seed", &r.seed, &g.seed);
    c.number("status.epsilon", r.epsilon.into(), g.epsilon.into());
    c.same("status.unsaved", &r.unsaved, &g.unsaved);
}

fn curves(c: &mut Checker, r: &Curves, g: &Curves) {
    c.same("curves.epochs (count)", &r.epochs.len(), &g.epochs.len());
    for (r, g) in r.epochs.iter().zip(&g.epochs) {
        let e = r.epoch;
        c.same(&format!("epoch {e} number"), &r.epoch, &g.epoch);
        c.number(&format!("epoch {e} loss"), r.loss, g.loss);
        c.number(&format!("epoch {e} clean accuracy"), r.clean, g.clean);
        c.option(&format!("epoch {e} robust accuracy"), r.robust, g.robust);
    }
    c.numbers("batch loss", &r.batch_losses, &g.batch_losses);
    c.same("curves.robust_label", &r.robust_label, &g.robust_label);
    c.option("teacher clean accuracy", r.teacher_clean, g.teacher_clean);
    c.option(
        "teacher robust accuracy",
        r.teacher_robust,
        g.teacher_robust,
    );
}

fn sample(c: &mut Checker, r: &SampleView, g: &SampleView) {
    c.same("sample index", &r.index, &g.index);
    c.same("sample class", &r.true_class, &g.true_class);
    c.same("sample attack", &r.attack, &g.attack);
    c.numbers("sample natural image", &r.natural, &g.natural);
    c.numbers("sample adversarial image", &r.adversarial, &g.adversarial);
    c.numbers(
        "student probabilities (natural)",
        &r.student_natural,
        &g.student_natural,
    );
    c.numbers(
        "student probabilities (adversarial)",
        &r.student_adversarial,
        &g.student_adversarial,
    );
    let empty = Vec::new();
    c.numbers(
        "teacher probabilities (natural)",
        r.teacher_natural.as_ref().unwrap_or(&empty),
        g.teacher_natural.as_ref().unwrap_or(&empty),
    );
    c.numbers(
        "teacher probabilities (adversarial)",
        r.teacher_adversarial.as_ref().unwrap_or(&empty),
        g.teacher_adversarial.as_ref().unwrap_or(&empty),
    );
}

fn attack(c: &mut Checker, r: &AttackTable, g: &AttackTable) {
    c.same("attack title", &r.title, &g.title);
    c.number("attack clean accuracy", r.clean, g.clean);
    c.same("attack rows (count)", &r.rows.len(), &g.rows.len());
    for (r, g) in r.rows.iter().zip(&g.rows) {
        c.same("attack name", &r.name, &g.name);
        c.number(&format!("{} robust accuracy", r.name), r.robust, g.robust);
    }
    c.same("attack flags (count)", &r.flags.len(), &g.flags.len());
}
