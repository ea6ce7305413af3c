//! What the workbench shows, as plain data: the engine fills a [`Snapshot`], the view draws
//! it. Nothing here refers to tensors or terminals, so snapshots can be recorded in sessions
//! and drawn again without computing anything.

pub mod compare;
pub mod limits;
pub mod results;

use serde::{Deserialize, Serialize};

/// Everything the panels draw at one moment.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub status: Status,
    pub curves: Curves,
    /// The selected test sample (None until data is loaded).
    pub sample: Option<SampleView>,
    /// The last attack's results (None before the first attack or eval).
    pub attack: Option<AttackTable>,
    /// Every attack table of this session, oldest first: the results board (at most
    /// [`results::BOARD_LIMIT`]). Kept in memory only: a session file holds each command's
    /// newest table (`attack`), from which playback builds the board again, so the board is
    /// never written into every recorded snapshot.
    #[serde(skip)]
    pub results: Vec<AttackTable>,
    /// The last `diagnose` of the student (None before one, and after the student is
    /// replaced). Sessions recorded before it existed load without it.
    #[serde(default)]
    pub diagnosis: Option<DiagnosisView>,
    /// Oldest first; the view shows the newest lines that fit.
    pub log: Vec<LogLine>,
}

/// The status line.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// e.g. "mnist (embedded, 10000 train)".
    pub dataset: String,
    /// e.g. "small-cnn (embedded SAT)" or "none".
    pub teacher: String,
    /// e.g. "micro-cnn".
    pub student: String,
    /// e.g. "rslad α=0.833".
    pub method: String,
    /// Epochs finished.
    pub epoch: usize,
    /// Batches done in the epoch under way (0 between epochs) and batches per epoch.
    pub batch: usize,
    pub batches: usize,
    pub epsilon: f32,
    pub seed: u64,
    /// Time spent computing in this session.
    pub elapsed_seconds: f64,
    /// What the engine is doing now ("training epoch 3", "PGD-20 on 500 images"), None when idle.
    pub busy: Option<String>,
    /// The student changed since it was last saved.
    pub unsaved: bool,
    /// Where the work runs: "cpu", or the GPU backend and its name ("wgpu GPU: llvmpipe …").
    #[serde(default)]
    pub device: String,
}

/// Training curves: one point per finished epoch, plus the loss of each batch of the epoch
/// under way.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Curves {
    pub epochs: Vec<EpochPoint>,
    /// Loss per batch of the current (or last) epoch, in order.
    pub batch_losses: Vec<f64>,
    /// The name of the robust-accuracy attack, e.g. "PGD-20".
    pub robust_label: String,
    /// The teacher's accuracies in percent on the same evaluation, drawn as reference lines.
    pub teacher_clean: Option<f64>,
    pub teacher_robust: Option<f64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochPoint {
    /// 1-based.
    pub epoch: usize,
    pub loss: f64,
    /// Percent.
    pub clean: f64,
    /// Percent.
    pub robust: Option<f64>,
}

/// One test image, its adversarial version and the class probabilities of both models on
/// both.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SampleView {
    /// Index in the test set, and the test set's size.
    pub index: usize,
    pub of: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// CHW pixel values in [0, 1].
    pub natural: Vec<f32>,
    pub adversarial: Vec<f32>,
    /// The attack radius: the heatmap shows δ/ε.
    pub epsilon: f32,
    /// The attack that made `adversarial` (against the student), e.g. "PGD-20".
    pub attack: String,
    pub true_class: usize,
    pub class_names: Vec<String>,
    /// Class probabilities (each sums to 1); the teacher's are None without a teacher.
    pub teacher_natural: Option<Vec<f32>>,
    pub teacher_adversarial: Option<Vec<f32>>,
    pub student_natural: Vec<f32>,
    pub student_adversarial: Vec<f32>,
}

impl SampleView {
    /// The perturbation divided by ε, per pixel averaged over channels, in [-1, 1].
    pub fn scaled_delta(&self) -> Vec<f32> {
        let plane = self.height * self.width;
        let mut delta = vec![0.0f32; plane];
        if self.epsilon <= 0.0 || self.channels == 0 {
            return delta;
        }
        for c in 0..self.channels {
            for (i, d) in delta.iter_mut().enumerate() {
                let k = c * plane + i;
                *d += (self.adversarial[k] - self.natural[k]) / self.epsilon;
            }
        }
        delta
            .into_iter()
            .map(|d| (d / self.channels as f32).clamp(-1.0, 1.0))
            .collect()
    }
}

/// The last attack's results.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AttackTable {
    /// e.g. "micro-cnn, 500 test images, ε = 0.3".
    pub title: String,
    /// Percent.
    pub clean: f64,
    pub rows: Vec<AttackRow>,
    /// Warnings such as AutoAttack's sanity flags.
    pub flags: Vec<String>,
    /// What was attacked, for the results board. None in tables recorded before the board
    /// existed (playback then takes it from the status line of the same snapshot).
    #[serde(default)]
    pub context: Option<TableContext>,
    /// What each of `flags` rests on, in the same order, for a replay to compare them by;
    /// empty in tables recorded before it existed (their flags are compared by count).
    #[serde(default)]
    pub flag_bases: Vec<FlagBasis>,
}

/// What one warning of an attack table rests on.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FlagBasis {
    /// Which check raised it, e.g. "square-after-white-box".
    pub check: String,
    /// Where the check counts points that the table's rows show too (Square's: its row's
    /// drop), that count as a share of the images AutoAttack ran on, in percentage points, as
    /// the rows' accuracies are (3 points of 200 images: 1.5). None for the other checks.
    pub percent: Option<f64>,
}

/// What an attack table measured: which student, trained how far with which method, under
/// which ε on how many test images.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TableContext {
    /// The table's number in the session (1 for the first).
    pub number: usize,
    /// e.g. "mnist".
    pub dataset: String,
    /// The student's architecture, e.g. "micro-cnn".
    pub model: String,
    /// The training method set when the table was made, e.g. "rslad α=0.833".
    pub method: String,
    /// Training done: whole epochs, and batches of the epoch under way.
    pub epochs: usize,
    pub batches: usize,
    /// The attack radius.
    pub epsilon: f32,
    /// Test images attacked (0: unknown).
    pub images: usize,
    /// Where the student's batch-norm statistics came from when they differ from training's:
    /// "adversarial" or "natural" after a `recalibrate` with no training since; empty for a
    /// student as trained.
    #[serde(default)]
    pub recalibrated: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AttackRow {
    /// e.g. "PGD-20", "APGD-CE", "AutoAttack".
    pub name: String,
    /// Robust accuracy in percent after this row.
    pub robust: f64,
    /// e.g. "max |δ| 0.300 · 4.1 s" or "broke 12".
    pub detail: String,
}

/// The last `diagnose`: the loss around one test image (the Curves panel's small plot), the
/// verdict in numbers, and which student it was computed on, trained how far, so the plot
/// is never read as the current student's.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DiagnosisView {
    /// The test image the loss was taken around (None when no diagnosed image was classified
    /// correctly, so there is no profile and the curves below are empty).
    pub image: Option<usize>,
    /// The correctly classified images with the highest loss at x, highest first (at most
    /// `diagnose::PROFILE_CANDIDATES`); `image` is the first unless `image=` named it (as a
    /// replay does, with the recorded image, since kernels that round otherwise may rank a
    /// near tie the other way). Empty in sessions recorded before it was kept.
    #[serde(default)]
    pub highest_losses: Vec<ImageLoss>,
    /// Test images diagnosed.
    pub images: usize,
    /// The attack radius of the diagnosis: the offsets are multiples of it.
    pub epsilon: f32,
    /// Multiples of ε (0 … 1) at which the loss was taken.
    pub offsets: Vec<f32>,
    /// Cross-entropy along the sign of the input gradient, at each offset.
    pub along_gradient: Vec<f32>,
    /// Cross-entropy along random sign directions: the highest and the mean at each offset.
    pub random_max: Vec<f32>,
    pub random_mean: Vec<f32>,
    /// Checks run, and those that suggest gradient masking.
    pub checks: usize,
    pub flagged: usize,
    /// The student's architecture, e.g. "micro-cnn".
    pub model: String,
    /// The training method set when it was diagnosed, e.g. "rslad α=0.833".
    pub method: String,
    /// Training done when it was diagnosed: whole epochs, and batches of the epoch under way.
    pub epochs: usize,
    pub batches: usize,
}

/// A test image and its loss (cross-entropy) at the natural image.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageLoss {
    pub image: usize,
    pub loss: f32,
}

impl DiagnosisView {
    /// Whether the student shown in `status` has trained since (or is another one): the
    /// plot is then about an earlier student.
    pub fn is_stale(&self, status: &Status) -> bool {
        self.model != status.student || self.epochs != status.epoch || self.batches != status.batch
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogLevel {
    #[default]
    Info,
    /// A command the user typed, echoed.
    Command,
    Warning,
    Error,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    pub level: LogLevel,
    pub text: String,
}
