//! Does a re-executed command reproduce its recording? Every number a view shows is compared
//! (status, curves, batch losses, soft labels, the adversarial image, the attack table, the
//! diagnosis's loss profile); times
//! and log wording are not, since they differ from run to run.
//!
//! Machines round differently (gemm picks AVX2 or AVX-512 kernels at run time), and one flipped
//! sign in a PGD step moves a pixel by a whole step, so each kind of quantity has its own
//! tolerance ([`Tolerances`]), and an adversarial image is compared by what it does (the size
//! of its perturbation, the share of pixels that differ, the prediction it causes) rather than
//! pixel by pixel. Counts, names and classes must match exactly. Every comparison is tallied
//! per field, so a report can say how many values of each field differed, not only the first.
//!
//! The structs are destructured exhaustively: a new field in a snapshot does not compile until
//! this file says how it is compared (or why it is not).

use super::{
    AttackRow, AttackTable, Curves, DiagnosisView, EpochPoint, FlagBasis, ImageLoss, SampleView,
    Snapshot, Status, TableContext,
};
use crate::lab::session::Outcome;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// The kinds of quantity a session records, each compared with its own tolerance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Counts, names, classes, flags: equal or not.
    Exact,
    /// Accuracies, in percentage points.
    Accuracy,
    /// Losses: the difference relative to max(1, |recorded|).
    Loss,
    /// The loss of one image (the diagnosis's loss profile and ranking), relative as
    /// [`Kind::Loss`]: one image's loss drifts further between kernel families than a batch's
    /// mean.
    ImageLoss,
    /// Class probabilities, absolute.
    Probability,
    /// Pixel values, ε and the size of a perturbation (its largest and mean |δ|), absolute.
    Pixel,
    /// The share of an adversarial image's pixels whose perturbation points the other way than
    /// recorded (both beyond the pixel tolerance): where the heatmap's red and blue swap.
    PixelsReversed,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Exact => "exact",
            Kind::Accuracy => "accuracy",
            Kind::Loss => "loss",
            Kind::ImageLoss => "image-loss",
            Kind::Probability => "probability",
            Kind::Pixel => "pixel",
            Kind::PixelsReversed => "pixels-reversed",
        }
    }
}

/// How far re-executed results may differ from their recording, per kind of quantity.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerances {
    /// Percentage points.
    pub accuracy: f64,
    /// Relative to max(1, |recorded loss|).
    pub loss: f64,
    /// One image's loss, relative to max(1, |recorded loss|).
    pub image_loss: f64,
    pub probability: f64,
    pub pixel: f64,
    /// A fraction in [0, 1].
    pub pixels_reversed: f64,
}

impl Default for Tolerances {
    /// Chosen from the shipped lessons re-executed on both of gemm's kernel families (AVX-512
    /// and AVX2, the latter also on an emulated AVX2-only CPU): about twice the largest
    /// difference measured there (3 points, 0.024, 0.043, 0.019, 8.2e-3, 1.2% after lesson 4's
    /// three epochs), and far below what another seed or another method changes
    /// (docs/replay.md has the measurements).
    fn default() -> Self {
        Tolerances {
            accuracy: 5.0,
            loss: 0.05,
            image_loss: 0.1,
            probability: 0.05,
            pixel: 0.02,
            pixels_reversed: 0.03,
        }
    }
}

impl Tolerances {
    /// Bit-identical results only.
    pub fn exact() -> Self {
        Tolerances {
            accuracy: 0.0,
            loss: 0.0,
            image_loss: 0.0,
            probability: 0.0,
            pixel: 0.0,
            pixels_reversed: 0.0,
        }
    }

    pub fn of(&self, kind: Kind) -> f64 {
        match kind {
            Kind::Exact => 0.0,
            Kind::Accuracy => self.accuracy,
            Kind::Loss => self.loss,
            Kind::ImageLoss => self.image_loss,
            Kind::Probability => self.probability,
            Kind::Pixel => self.pixel,
            Kind::PixelsReversed => self.pixels_reversed,
        }
    }

    fn set(&mut self, kind: Kind, value: f64) {
        match kind {
            Kind::Exact => {}
            Kind::Accuracy => self.accuracy = value,
            Kind::Loss => self.loss = value,
            Kind::ImageLoss => self.image_loss = value,
            Kind::Probability => self.probability = value,
            Kind::Pixel => self.pixel = value,
            Kind::PixelsReversed => self.pixels_reversed = value,
        }
    }

    /// Parses `exact`, `default`, or `KIND=VALUE[,KIND=VALUE...]` (the kinds not named keep
    /// their default), as `replay --tolerance` takes it.
    pub fn parse(text: &str) -> Result<Tolerances, String> {
        match text.trim() {
            "exact" => return Ok(Tolerances::exact()),
            "default" => return Ok(Tolerances::default()),
            _ => {}
        }
        let kinds = [
            Kind::Accuracy,
            Kind::Loss,
            Kind::ImageLoss,
            Kind::Probability,
            Kind::Pixel,
            Kind::PixelsReversed,
        ];
        let names = kinds.map(Kind::name).join(", ");
        let mut tolerances = Tolerances::default();
        for part in text.split(',') {
            let Some((key, value)) = part.split_once('=') else {
                return Err(format!(
                    "`{part}` is not KIND=VALUE; expected `exact`, `default` or e.g. \
                     accuracy=0.5,probability=0.05 (kinds: {names})"
                ));
            };
            let kind = kinds
                .into_iter()
                .find(|k| k.name() == key.trim())
                .ok_or_else(|| {
                    format!("unknown tolerance `{}`; the kinds are {names}", key.trim())
                })?;
            let value: f64 = value
                .trim()
                .parse()
                .map_err(|_| format!("{key}={value}: not a number"))?;
            if !(value.is_finite() && value >= 0.0) {
                return Err(format!("{key}={value}: a tolerance must be a number ≥ 0"));
            }
            if kind == Kind::PixelsReversed && value > 1.0 {
                return Err(format!("{key}={value}: a share of pixels is at most 1"));
            }
            tolerances.set(kind, value);
        }
        Ok(tolerances)
    }
}

impl fmt::Display for Tolerances {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "accuracy {} points, loss {}, image loss {}, probability {}, pixel {}, pixels reversed \
             {}%",
            self.accuracy,
            self.loss,
            self.image_loss,
            self.probability,
            self.pixel,
            self.pixels_reversed * 100.0
        )
    }
}

/// How one field compared over every value and command it was checked in.
#[derive(Clone, Debug, PartialEq)]
pub struct Tally {
    pub kind: Kind,
    /// Values compared.
    pub compared: usize,
    /// Values beyond the tolerance (or not equal, for [`Kind::Exact`]).
    pub mismatched: usize,
    /// The largest difference seen, in the kind's units (0 for exact fields).
    pub max_difference: f64,
}

/// The result of comparing one outcome (or, merged, a whole replay) with its recording.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Comparison {
    /// The largest raw difference over every compared number and pixel (0: bit-identical).
    pub max_difference: f64,
    /// The first difference beyond its tolerance (or in a word, a count or a length).
    pub divergence: Option<String>,
    /// Per field, in the order of their names.
    pub fields: BTreeMap<&'static str, Tally>,
    /// What a reader should know though it is within the tolerances (e.g. that this run's
    /// student ranks another image highest in a diagnosis than the recording's did).
    pub notes: Vec<String>,
}

impl Comparison {
    /// Whether every value matched within its tolerance.
    pub fn matches(&self) -> bool {
        self.divergence.is_none()
    }

    /// Adds another command's comparison (its first divergence is kept only if none came before).
    pub fn merge(&mut self, other: Comparison) {
        self.max_difference = self.max_difference.max(other.max_difference);
        if self.divergence.is_none() {
            self.divergence = other.divergence;
        }
        for (field, tally) in other.fields {
            let entry = self.fields.entry(field).or_insert(Tally {
                kind: tally.kind,
                compared: 0,
                mismatched: 0,
                max_difference: 0.0,
            });
            entry.compared += tally.compared;
            entry.mismatched += tally.mismatched;
            entry.max_difference = entry.max_difference.max(tally.max_difference);
        }
        self.notes.extend(other.notes);
    }

    /// The largest difference per kind of quantity, over every field of that kind.
    pub fn max_by_kind(&self) -> BTreeMap<Kind, f64> {
        let mut kinds = BTreeMap::new();
        for tally in self.fields.values() {
            let max = kinds.entry(tally.kind).or_insert(0.0f64);
            *max = max.max(tally.max_difference);
        }
        kinds
    }

    /// One line per field that had a mismatch: "FIELD: M of N values differ (largest D)".
    pub fn mismatch_lines(&self) -> Vec<String> {
        self.fields
            .iter()
            .filter(|(_, t)| t.mismatched > 0)
            .map(|(field, t)| {
                let largest = if t.kind == Kind::Exact {
                    String::new()
                } else {
                    format!(" (largest difference {})", short(t.max_difference))
                };
                let verb = if t.mismatched == 1 {
                    "differs"
                } else {
                    "differ"
                };
                format!(
                    "{field}: {} of {} {verb}{largest}",
                    t.mismatched,
                    crate::text::count(t.compared, "value", "values")
                )
            })
            .collect()
    }
}

/// A number in few characters, for reports.
pub fn short(value: f64) -> String {
    if value == 0.0 {
        "0".into()
    } else if value.abs() >= 0.01 && value.abs() < 1e4 {
        format!("{:.4}", value)
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    } else {
        format!("{value:.2e}")
    }
}

struct Checker {
    tolerances: Tolerances,
    result: Comparison,
}

impl Checker {
    /// Records one compared value of `field`; `difference` is in the kind's units.
    fn tally(&mut self, field: &'static str, kind: Kind, difference: f64, mismatch: bool) {
        let tally = self.result.fields.entry(field).or_insert(Tally {
            kind,
            compared: 0,
            mismatched: 0,
            max_difference: 0.0,
        });
        tally.compared += 1;
        if mismatch {
            tally.mismatched += 1;
        }
        if difference.is_nan() {
            tally.max_difference = f64::INFINITY;
        } else {
            tally.max_difference = tally.max_difference.max(difference);
        }
    }

    fn note(&mut self, text: String) {
        self.result.notes.push(text);
    }

    fn fail(&mut self, message: String) {
        if self.result.divergence.is_none() {
            self.result.divergence = Some(message);
        }
    }

    /// Counts, names, classes: equal or a mismatch.
    fn same<T: PartialEq + fmt::Debug>(&mut self, field: &'static str, recorded: &T, got: &T) {
        let mismatch = recorded != got;
        self.tally(field, Kind::Exact, 0.0, mismatch);
        if mismatch {
            self.fail(format!("{field}: recorded {recorded:?}, got {got:?}"));
        }
    }

    /// One number of `kind`; `label` names it in a divergence message.
    fn number(&mut self, field: &'static str, label: &str, kind: Kind, recorded: f64, got: f64) {
        if recorded.is_nan() && got.is_nan() {
            self.tally(field, kind, 0.0, false);
            return;
        }
        let raw = (recorded - got).abs();
        let difference = match kind {
            Kind::Loss | Kind::ImageLoss => raw / recorded.abs().max(1.0),
            _ => raw,
        };
        let mismatch = !self.agrees(kind, difference);
        self.tally(field, kind, difference, mismatch);
        self.note_raw(raw, recorded != got);
        if mismatch {
            self.fail(format!("{label}: recorded {recorded}, got {got}"));
        }
    }

    /// Whether a difference between two numbers of `kind` is within its tolerance.
    fn agrees(&self, kind: Kind, difference: f64) -> bool {
        !difference.is_nan() && difference <= self.tolerances.of(kind)
    }

    /// Keeps the largest raw difference, which decides "bit-identical".
    fn note_raw(&mut self, raw: f64, differ: bool) {
        if raw.is_finite() {
            self.result.max_difference = self.result.max_difference.max(raw);
        } else if differ {
            self.result.max_difference = f64::INFINITY;
        }
    }

    fn numbers<T: Copy + Into<f64>>(
        &mut self,
        field: &'static str,
        kind: Kind,
        recorded: &[T],
        got: &[T],
    ) {
        if recorded.len() != got.len() {
            self.tally(field, kind, 0.0, true);
            self.fail(format!(
                "{field}: recorded {} values, got {}",
                recorded.len(),
                got.len()
            ));
            return;
        }
        for (i, (r, g)) in recorded.iter().zip(got).enumerate() {
            self.number(
                field,
                &format!("{field}[{i}]"),
                kind,
                (*r).into(),
                (*g).into(),
            );
        }
    }

    fn option(&mut self, field: &'static str, kind: Kind, recorded: Option<f64>, got: Option<f64>) {
        match (recorded, got) {
            (Some(r), Some(g)) => self.number(field, field, kind, r, g),
            (None, None) => {}
            _ => {
                self.tally(field, kind, 0.0, true);
                self.fail(format!("{field}: recorded {recorded:?}, got {got:?}"));
            }
        }
    }
}

/// Compares `got` with `recorded` within `tolerances`.
pub fn compare(recorded: &Outcome, got: &Outcome, tolerances: &Tolerances) -> Comparison {
    let mut c = Checker {
        tolerances: *tolerances,
        result: Comparison::default(),
    };
    // The error text may name paths and numbers of this run: whether it failed is what counts.
    c.same("failed", &recorded.error.is_some(), &got.error.is_some());
    snapshot(&mut c, &recorded.snapshot, &got.snapshot);
    c.result
}

fn snapshot(c: &mut Checker, r: &Snapshot, g: &Snapshot) {
    let Snapshot {
        status,
        curves,
        sample,
        attack,
        // Every table on the board was compared as `attack` when it was made; the board is
        // not recorded (and may hold tables from before a `load session`).
        results: _,
        diagnosis,
        log: _, // wording and times; the log lines are kept beside the outcome, not compared
    } = r;
    self::status(c, status, &g.status);
    self::curves(c, curves, &g.curves);
    match (sample, &g.sample) {
        (Some(r), Some(g)) => self::sample(c, r, g),
        (None, None) => {}
        _ => {
            c.tally("sample", Kind::Exact, 0.0, true);
            c.fail("sample: present in one run only".into());
        }
    }
    match (attack, &g.attack) {
        (Some(r), Some(g)) => self::attack(c, r, g),
        (None, None) => {}
        _ => {
            c.tally("attack table", Kind::Exact, 0.0, true);
            c.fail("attack table: present in one run only".into());
        }
    }
    match (diagnosis, &g.diagnosis) {
        (Some(r), Some(g)) => self::diagnosis(c, r, g),
        // Recorded before snapshots carried the diagnosis (its lines are in the log, which
        // is not compared): nothing to compare it with.
        (None, _) => {}
        (Some(_), None) => {
            c.tally("diagnosis", Kind::Exact, 0.0, true);
            c.fail("diagnosis: present in the recording only".into());
        }
    }
}

/// The loss profile as losses; which image, how many checks fired and on which student,
/// exactly. The image is the same when a replay re-executes the command (it draws the profile
/// around the recorded image); which image each run's student ranks highest may differ where
/// kernels round otherwise, and a note says so.
fn diagnosis(c: &mut Checker, r: &DiagnosisView, g: &DiagnosisView) {
    let DiagnosisView {
        image,
        highest_losses,
        images,
        epsilon,
        offsets,
        along_gradient,
        random_max,
        random_mean,
        checks,
        flagged,
        model,
        method,
        epochs,
        batches,
    } = r;
    c.same("diagnosis.image", image, &g.image);
    c.same("diagnosis.images", images, &g.images);
    c.number(
        "diagnosis.epsilon",
        "diagnosis ε",
        Kind::Pixel,
        (*epsilon).into(),
        g.epsilon.into(),
    );
    // Curves around another image would differ for that reason alone.
    if image == &g.image {
        c.same("diagnosis.offsets", offsets, &g.offsets);
        c.numbers(
            "diagnosis.loss along the gradient",
            Kind::ImageLoss,
            along_gradient,
            &g.along_gradient,
        );
        c.numbers(
            "diagnosis.loss along random directions (highest)",
            Kind::ImageLoss,
            random_max,
            &g.random_max,
        );
        c.numbers(
            "diagnosis.loss along random directions (mean)",
            Kind::ImageLoss,
            random_mean,
            &g.random_mean,
        );
    }
    highest_losses_compared(c, highest_losses, &g.highest_losses);
    c.same("diagnosis.checks", checks, &g.checks);
    c.same("diagnosis.flagged", flagged, &g.flagged);
    c.same("diagnosis.model", model, &g.model);
    c.same("diagnosis.method", method, &g.method);
    c.same("diagnosis.epochs", epochs, &g.epochs);
    c.same("diagnosis.batches", batches, &g.batches);
}

/// The losses at x of the images both runs ranked among their highest, within the image-loss
/// tolerance (an image in one list only may have fallen just below the other's tenth, or be
/// misclassified by the other run's student: not compared); a note where the runs' highest
/// differ, which a run on other kernels may see. Exactly, the same images in the same order.
fn highest_losses_compared(c: &mut Checker, recorded: &[ImageLoss], got: &[ImageLoss]) {
    if c.tolerances.image_loss == 0.0 {
        let images = |ranking: &[ImageLoss]| ranking.iter().map(|l| l.image).collect::<Vec<_>>();
        c.same(
            "diagnosis.highest-loss images",
            &images(recorded),
            &images(got),
        );
    }
    for r in recorded {
        if let Some(g) = got.iter().find(|g| g.image == r.image) {
            c.number(
                "diagnosis.loss at x (highest-loss images)",
                &format!("diagnosis: loss at x of test image {}", r.image),
                Kind::ImageLoss,
                r.loss.into(),
                g.loss.into(),
            );
        }
    }
    if let (Some(r), Some(g)) = (recorded.first(), got.first())
        && r.image != g.image
    {
        c.note(format!(
            "among the correctly classified images this run's student has its highest loss at \
             test image {} ({}), the recording's at {} ({}); the loss profiles were compared \
             around the same image",
            g.image,
            short(g.loss.into()),
            r.image,
            short(r.loss.into())
        ));
    }
}

fn status(c: &mut Checker, r: &Status, g: &Status) {
    let Status {
        dataset,
        teacher,
        student,
        method,
        epoch,
        batch,
        batches,
        epsilon,
        seed,
        elapsed_seconds: _, // a time
        busy: _,            // what runs at this instant
        unsaved,
        device: _, // the replay may run elsewhere on purpose (`--device`)
    } = r;
    c.same("status.dataset", dataset, &g.dataset);
    c.same("status.teacher", teacher, &g.teacher);
    c.same("status.student", student, &g.student);
    c.same("status.method", method, &g.method);
    c.same("status.epoch", epoch, &g.epoch);
    c.same("status.batch", batch, &g.batch);
    c.same("status.batches", batches, &g.batches);
    c.same("status.seed", seed, &g.seed);
    c.number(
        "status.epsilon",
        "status.epsilon",
        Kind::Pixel,
        (*epsilon).into(),
        g.epsilon.into(),
    );
    c.same("status.unsaved", unsaved, &g.unsaved);
}

fn curves(c: &mut Checker, r: &Curves, g: &Curves) {
    let Curves {
        epochs,
        batch_losses,
        robust_label,
        teacher_clean,
        teacher_robust,
    } = r;
    c.same("curves.epochs (count)", &epochs.len(), &g.epochs.len());
    for (r, g) in epochs.iter().zip(&g.epochs) {
        let EpochPoint {
            epoch,
            loss,
            clean,
            robust,
        } = r;
        c.same("curves.epoch number", epoch, &g.epoch);
        let loss_label = format!("epoch {epoch} loss");
        c.number("curves.epoch loss", &loss_label, Kind::Loss, *loss, g.loss);
        let clean_label = format!("epoch {epoch} clean accuracy");
        c.number(
            "curves.clean accuracy",
            &clean_label,
            Kind::Accuracy,
            *clean,
            g.clean,
        );
        match (robust, g.robust) {
            (Some(r), Some(g)) => c.number(
                "curves.robust accuracy",
                &format!("epoch {epoch} robust accuracy"),
                Kind::Accuracy,
                *r,
                g,
            ),
            (None, None) => {}
            _ => c.option("curves.robust accuracy", Kind::Accuracy, *robust, g.robust),
        }
    }
    c.numbers(
        "curves.batch loss",
        Kind::Loss,
        batch_losses,
        &g.batch_losses,
    );
    c.same("curves.robust label", robust_label, &g.robust_label);
    c.option(
        "curves.teacher clean accuracy",
        Kind::Accuracy,
        *teacher_clean,
        g.teacher_clean,
    );
    c.option(
        "curves.teacher robust accuracy",
        Kind::Accuracy,
        *teacher_robust,
        g.teacher_robust,
    );
}

fn sample(c: &mut Checker, r: &SampleView, g: &SampleView) {
    let SampleView {
        index,
        of,
        channels,
        height,
        width,
        natural,
        adversarial,
        epsilon,
        attack,
        true_class,
        class_names,
        teacher_natural,
        teacher_adversarial,
        student_natural,
        student_adversarial,
    } = r;
    c.same("sample.index", index, &g.index);
    c.same("sample.test set size", of, &g.of);
    c.same(
        "sample.shape",
        &(channels, height, width),
        &(&g.channels, &g.height, &g.width),
    );
    c.same("sample.class", true_class, &g.true_class);
    c.same("sample.class names", class_names, &g.class_names);
    c.same("sample.attack", attack, &g.attack);
    c.number(
        "sample.epsilon",
        "sample.epsilon",
        Kind::Pixel,
        (*epsilon).into(),
        g.epsilon.into(),
    );
    c.numbers("sample.natural image", Kind::Pixel, natural, &g.natural);
    perturbation(c, r, g);
    c.numbers(
        "sample.student probabilities (natural)",
        Kind::Probability,
        student_natural,
        &g.student_natural,
    );
    c.numbers(
        "sample.student probabilities (adversarial)",
        Kind::Probability,
        student_adversarial,
        &g.student_adversarial,
    );
    prediction(c, student_adversarial, &g.student_adversarial);
    let empty = Vec::new();
    c.numbers(
        "sample.teacher probabilities (natural)",
        Kind::Probability,
        teacher_natural.as_ref().unwrap_or(&empty),
        g.teacher_natural.as_ref().unwrap_or(&empty),
    );
    c.numbers(
        "sample.teacher probabilities (adversarial)",
        Kind::Probability,
        teacher_adversarial.as_ref().unwrap_or(&empty),
        g.teacher_adversarial.as_ref().unwrap_or(&empty),
    );
    let _ = adversarial; // compared through its perturbation, below
}

/// The adversarial image by what it does: the size of its perturbation (largest and mean
/// |δ|) and the share of pixels it pushes the other way (where the heatmap's red and blue
/// swap). A PGD step whose gradient sign flips on another machine moves one pixel by a whole
/// step, which a pixel-by-pixel comparison would call a divergence. With a zero pixel
/// tolerance (`exact`) every pixel must also be equal.
fn perturbation(c: &mut Checker, r: &SampleView, g: &SampleView) {
    let (r_adv, g_adv) = (&r.adversarial, &g.adversarial);
    if r_adv.len() != g_adv.len()
        || r_adv.len() != r.natural.len()
        || g_adv.len() != g.natural.len()
    {
        c.tally("sample.adversarial image", Kind::Exact, 0.0, true);
        c.fail(format!(
            "sample.adversarial image: recorded {} values, got {}",
            r_adv.len(),
            g_adv.len()
        ));
        return;
    }
    let size = |adv: &[f32], natural: &[f32]| {
        let (mut largest, mut sum) = (0.0f64, 0.0f64);
        for (a, n) in adv.iter().zip(natural) {
            let d = f64::from((a - n).abs());
            largest = largest.max(d);
            sum += d;
        }
        (largest, sum / adv.len().max(1) as f64)
    };
    let (r_max, r_mean) = size(r_adv, &r.natural);
    let (g_max, g_mean) = size(g_adv, &g.natural);
    let (largest, mean) = (
        "sample.perturbation max |δ|",
        "sample.perturbation mean |δ|",
    );
    c.number(largest, largest, Kind::Pixel, r_max, g_max);
    c.number(mean, mean, Kind::Pixel, r_mean, g_mean);

    let pixel = c.tolerances.pixel;
    let (mut reversed, mut unequal) = (0usize, 0usize);
    for k in 0..r_adv.len() {
        let raw = f64::from((r_adv[k] - g_adv[k]).abs());
        c.note_raw(raw, r_adv[k] != g_adv[k]);
        unequal += usize::from(r_adv[k] != g_adv[k]);
        let (dr, dg) = (
            f64::from(r_adv[k] - r.natural[k]),
            f64::from(g_adv[k] - g.natural[k]),
        );
        if dr * dg < 0.0 && dr.abs() > pixel && dg.abs() > pixel {
            reversed += 1;
        }
    }
    let share = reversed as f64 / r_adv.len().max(1) as f64;
    let mismatch = share > c.tolerances.pixels_reversed;
    c.tally(
        "sample.adversarial pixels reversed",
        Kind::PixelsReversed,
        share,
        mismatch,
    );
    if mismatch {
        c.fail(format!(
            "sample.adversarial image: {reversed} of {} pixels are pushed the other way",
            r_adv.len()
        ));
    }
    if pixel == 0.0 {
        c.tally("sample.adversarial image", Kind::Exact, 0.0, unequal > 0);
        if unequal > 0 {
            c.fail(format!(
                "sample.adversarial image: {unequal} of {} pixels differ",
                r_adv.len()
            ));
        }
    }
}

/// The class the adversarial image makes the student predict must be the same, unless the
/// recorded top two were within the probability tolerance of each other (a near tie).
fn prediction(c: &mut Checker, recorded: &[f32], got: &[f32]) {
    let (Some(r), Some(g)) = (argmax(recorded), argmax(got)) else {
        return;
    };
    let mut sorted: Vec<f32> = recorded.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let margin = f64::from(sorted[0] - sorted.get(1).copied().unwrap_or(0.0));
    let tie = margin <= c.tolerances.probability;
    let mismatch = r != g && !tie;
    c.tally("sample.adversarial prediction", Kind::Exact, 0.0, mismatch);
    if mismatch {
        c.fail(format!(
            "sample.adversarial prediction: recorded class {r}, got class {g}"
        ));
    }
}

fn argmax(values: &[f32]) -> Option<usize> {
    values
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i)
}

fn attack(c: &mut Checker, r: &AttackTable, g: &AttackTable) {
    let AttackTable {
        title,
        clean,
        rows,
        flags,
        context,
        flag_bases,
    } = r;
    c.same("attack.title", title, &g.title);
    match (context, &g.context) {
        (Some(r), Some(g)) => table_context(c, r, g),
        // Recorded before tables carried their context: nothing to compare it with.
        (None, _) => {}
        (Some(_), None) => {
            c.tally("attack.context", Kind::Exact, 0.0, true);
            c.fail("attack.context: present in the recording only".into());
        }
    }
    c.number(
        "attack.clean accuracy",
        "attack clean accuracy",
        Kind::Accuracy,
        *clean,
        g.clean,
    );
    c.same("attack.rows (count)", &rows.len(), &g.rows.len());
    for (r, g) in rows.iter().zip(&g.rows) {
        let AttackRow {
            name,
            robust,
            detail: _, // holds the time taken
        } = r;
        c.same("attack.name", name, &g.name);
        c.number(
            "attack.robust accuracy",
            &format!("{name} robust accuracy"),
            Kind::Accuracy,
            *robust,
            g.robust,
        );
    }
    self::flags(
        c,
        &which_table(r),
        (flags, flag_bases),
        (&g.flags, &g.flag_bases),
    );
}

/// A table as a note names it: its title and, where recorded, what the student had been
/// trained with and for how long (two tables may share a title, as lesson 4's two students'
/// do).
fn which_table(table: &AttackTable) -> String {
    match &table.context {
        Some(context) => format!(
            "the table \"{}\" ({}, {} and {})",
            table.title,
            context.method,
            crate::text::count(context.epochs, "epoch", "epochs"),
            crate::text::count(context.batches, "batch", "batches")
        ),
        None => format!("the table \"{}\"", table.title),
    }
}

/// A table's warnings with what each rests on, as recorded.
type Flags<'a> = (&'a [String], &'a [FlagBasis]);

/// The warnings under a table, matched by the check that raised them. A warning that counts
/// points the table's rows show too (Square's after the white-box attacks) fires when that
/// count crosses a threshold, which kernels that round otherwise can move by a point while
/// every row stays within its tolerance; so such a warning is compared by the share of images
/// it counts (0 where it is missing), in percentage points under the accuracy tolerance, and
/// one in a single run within it is a note. Any other warning (a zero gradient's, whose count
/// no row shows) must be in both runs. Tables recorded with warnings before they carried what
/// they rest on are compared by the number of warnings, exactly.
fn flags(c: &mut Checker, table: &str, recorded: Flags, got: Flags) {
    let based = |(texts, bases): Flags| texts.len() == bases.len();
    if !(based(recorded) && based(got)) {
        c.same("attack.flags (count)", &recorded.0.len(), &got.0.len());
        return;
    }
    let checks: BTreeSet<&str> = recorded
        .1
        .iter()
        .chain(got.1)
        .map(|b| b.check.as_str())
        .collect();
    for check in checks {
        let (r, g) = (raised(recorded, check), raised(got, check));
        for k in 0..r.len().max(g.len()) {
            match (r.get(k), g.get(k)) {
                (Some(&(_, r_share)), Some(&(_, g_share))) => {
                    flag_shares(c, check, r_share, g_share)
                }
                (Some(&(text, share)), None) => one_run_only(c, table, check, (text, share), true),
                (None, Some(&(text, share))) => one_run_only(c, table, check, (text, share), false),
                (None, None) => unreachable!("k is below one of the lengths"),
            }
        }
    }
}

/// The warnings `check` raised: each one's text and share of images.
fn raised<'a>((texts, bases): Flags<'a>, check: &str) -> Vec<(&'a str, Option<f64>)> {
    texts
        .iter()
        .zip(bases)
        .filter(|(_, b)| b.check == check)
        .map(|(text, b)| (text.as_str(), b.percent))
        .collect()
}

/// The same warning in both runs: the shares of images they count, if they count any.
fn flag_shares(c: &mut Checker, check: &str, recorded: Option<f64>, got: Option<f64>) {
    match (recorded, got) {
        (Some(r), Some(g)) => c.number(
            "attack.flags (share of images)",
            &format!("warning `{check}`: share of images"),
            Kind::Accuracy,
            r,
            g,
        ),
        (None, None) => c.tally("attack.flags", Kind::Exact, 0.0, false),
        _ => {
            c.tally("attack.flags", Kind::Exact, 0.0, true);
            c.fail(format!(
                "attack.flags: warning `{check}` counts points in one run only"
            ));
        }
    }
}

/// A warning of `table` raised in one run only (the recording, or this run): within the
/// accuracy tolerance if it counts points and their share is, a mismatch otherwise.
fn one_run_only(
    c: &mut Checker,
    table: &str,
    check: &str,
    (text, share): (&str, Option<f64>),
    recorded: bool,
) {
    let in_run = if recorded {
        "the recording"
    } else {
        "this run"
    };
    let Some(share) = share else {
        c.tally("attack.flags", Kind::Exact, 0.0, true);
        c.fail(format!("attack.flags: in {in_run} only: {text}"));
        return;
    };
    let (r, g) = if recorded { (share, 0.0) } else { (0.0, share) };
    // Compared with 0 (below), so the difference is the share itself.
    let within = c.agrees(Kind::Accuracy, share.abs());
    c.number(
        "attack.flags (share of images)",
        &format!("warning `{check}` in {in_run} only, share of images"),
        Kind::Accuracy,
        r,
        g,
    );
    if within {
        c.note(format!(
            "under {table}, a warning in {in_run} only, resting on {}% of the images (within \
             the accuracy tolerance): {text}",
            short(share)
        ));
    }
}

fn table_context(c: &mut Checker, r: &TableContext, g: &TableContext) {
    let TableContext {
        number: _, // counts the tables of a workbench, which may have held some before
        dataset,
        model,
        method,
        epochs,
        batches,
        epsilon,
        images,
        recalibrated,
    } = r;
    c.same("attack.context.dataset", dataset, &g.dataset);
    c.same("attack.context.model", model, &g.model);
    c.same("attack.context.method", method, &g.method);
    c.same("attack.context.epochs", epochs, &g.epochs);
    c.same("attack.context.batches", batches, &g.batches);
    c.number(
        "attack.context.epsilon",
        "attack ε",
        Kind::Pixel,
        (*epsilon).into(),
        g.epsilon.into(),
    );
    c.same("attack.context.images", images, &g.images);
    c.same("attack.context.recalibrated", recalibrated, &g.recalibrated);
}
