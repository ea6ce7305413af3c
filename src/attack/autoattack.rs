//! AutoAttack (Croce & Hein 2020): the field's reference robustness evaluation, as an ensemble
//! of parameter-free attacks run one after the other, each on the points every earlier attack
//! failed on. A point is robust when the model classifies it correctly and no component finds
//! an adversarial point for it (the worst case per point).
//!
//! Mirrors `AutoAttack.run_standard_evaluation` of fra31/auto-attack: the `standard` version
//! runs APGD-CE → APGD-T → FAB-T → Square; the `rand` version, for models with randomness,
//! runs APGD-CE and APGD-DLR with 20 gradient samples per step; `custom` runs a chosen list.
//! The report keeps what the reference prints: robust accuracy after each component, the
//! largest perturbation used, and its sanity checks (a randomised forward pass, zero gradients
//! at the start, Square succeeding where the white-box attacks failed, probabilities instead
//! of logits).

use super::fab::{FabConfig, fab_targeted};
use super::inputs::check_label_count;
use super::square::{SquareConfig, square};
use super::{ApgdConfig, ApgdLoss, AttackOutcome, Classifier, apgd, apgd_targeted};
use crate::error::AttackError;
use crate::progress::Progress;
use crate::rng::seeded;
use crate::tensor_util::{predictions, row_indices, to_vec};
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Instant;

/// Gradient samples per APGD step in the `rand` version (the reference's `eot_iter = 20`).
pub const RAND_EOT_ITERATIONS: usize = 20;

/// Forward passes compared by the randomness check (the reference's `check_randomized`).
const DETERMINISM_PASSES: usize = 10;

/// Robust-accuracy drop by Square, after the white-box attacks, above which the evaluation is
/// flagged (the reference's `check_square_sr`, alpha = 0.002).
const SQUARE_FLAG_DROP: f64 = 0.002;

/// First rng stream of the components (one stream each, by position in the list).
const COMPONENT_STREAM: u64 = 100;

/// Largest difference between L2-normalised outputs of two passes still counted as equal:
/// far above float rounding, far below what dropout or input noise produce.
const DETERMINISM_TOLERANCE: f32 = 1e-6;

/// One attack of the ensemble.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Component {
    /// APGD with cross-entropy, 100 iterations.
    ApgdCe,
    /// APGD with the DLR loss (the `rand` version's second attack).
    ApgdDlr,
    /// APGD with the targeted DLR loss, 9 target classes.
    ApgdT,
    /// Targeted FAB, 9 target classes, 100 iterations.
    FabT,
    /// Square Attack, 5000 queries.
    Square,
}

impl Component {
    pub const ALL: [Component; 5] = [
        Component::ApgdCe,
        Component::ApgdDlr,
        Component::ApgdT,
        Component::FabT,
        Component::Square,
    ];

    /// The reference's name for the attack (`apgd-ce`, `apgd-dlr`, `apgd-t`, `fab-t`, `square`).
    pub fn name(self) -> &'static str {
        match self {
            Component::ApgdCe => "apgd-ce",
            Component::ApgdDlr => "apgd-dlr",
            Component::ApgdT => "apgd-t",
            Component::FabT => "fab-t",
            Component::Square => "square",
        }
    }

    /// Parses a name as [`Component::name`] writes it.
    pub fn parse(name: &str) -> Result<Component, AttackError> {
        let wanted = name.trim().to_ascii_lowercase();
        Component::ALL
            .into_iter()
            .find(|c| c.name() == wanted)
            .ok_or_else(|| {
                let known: Vec<&str> = Component::ALL.iter().map(|c| c.name()).collect();
                AttackError::Invalid(format!(
                    "unknown AutoAttack component '{name}'; known: {}",
                    known.join(", ")
                ))
            })
    }

    /// The fewest classes the component's loss is defined for.
    fn classes_needed(self) -> usize {
        match self {
            Component::ApgdCe | Component::FabT | Component::Square => 2,
            Component::ApgdDlr => 3,
            Component::ApgdT => 4,
        }
    }

    fn is_white_box(self) -> bool {
        self != Component::Square
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which ensemble to run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Version {
    /// APGD-CE, APGD-T, FAB-T, Square: for deterministic models.
    Standard,
    /// APGD-CE and APGD-DLR, each averaging 20 gradient samples per step: for models whose
    /// forward pass is random.
    Rand,
    /// The listed components in the given order, each with its standard settings.
    Custom(Vec<Component>),
}

impl Version {
    pub fn components(&self) -> Vec<Component> {
        match self {
            Version::Standard => vec![
                Component::ApgdCe,
                Component::ApgdT,
                Component::FabT,
                Component::Square,
            ],
            Version::Rand => vec![Component::ApgdCe, Component::ApgdDlr],
            Version::Custom(list) => list.clone(),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Version::Standard => "standard",
            Version::Rand => "rand",
            Version::Custom(_) => "custom",
        }
    }

    fn eot_iterations(&self) -> usize {
        match self {
            Version::Rand => RAND_EOT_ITERATIONS,
            _ => 1,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AutoAttackConfig {
    /// L∞ radius of the threat model.
    pub epsilon: f32,
    pub version: Version,
    /// Seeds every component (each from its own stream), so a run is reproducible.
    pub seed: u64,
    /// Images per attack batch.
    pub batch_size: usize,
}

impl AutoAttackConfig {
    pub fn standard(epsilon: f32) -> Self {
        AutoAttackConfig {
            epsilon,
            version: Version::Standard,
            seed: 0,
            batch_size: 200,
        }
    }

    fn validate(&self) -> Result<(), AttackError> {
        if !self.epsilon.is_finite() || self.epsilon < 0.0 {
            return Err(AttackError::Invalid(format!(
                "AutoAttack needs a finite ε ≥ 0, got {}",
                self.epsilon
            )));
        }
        if self.batch_size == 0 {
            return Err(AttackError::Invalid(
                "AutoAttack's batch size must be at least 1".to_string(),
            ));
        }
        let components = self.version.components();
        if components.is_empty() {
            return Err(AttackError::Invalid(
                "a custom AutoAttack needs at least one component".to_string(),
            ));
        }
        for (i, c) in components.iter().enumerate() {
            if components[..i].contains(c) {
                return Err(AttackError::Invalid(format!(
                    "component {c} is listed twice"
                )));
            }
        }
        Ok(())
    }
}

/// What one component did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ComponentResult {
    pub component: Component,
    /// Points it ran on: those still robust when its turn came.
    pub attacked: usize,
    /// Points it broke (found a misclassified point inside the ε-ball for).
    pub broken: usize,
    /// Robust accuracy after it ran.
    pub robust_accuracy: f64,
    pub seconds: f64,
}

/// A warning the reference prints when an evaluation may be unreliable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SanityFlag {
    /// Two forward passes on the same input gave different outputs.
    NonDeterministic { max_difference: f32 },
    /// The input gradient was exactly zero at the start of an APGD run for some points.
    ZeroGradient { component: Component, points: usize },
    /// Square, which uses no gradients, broke points that every white-box attack failed on.
    SquareAfterWhiteBox { points: usize },
    /// The model's outputs look like probabilities (rows in [0, 1] summing to 1), not logits.
    ProbabilityOutputs,
}

impl SanityFlag {
    /// Which check raised it, the same for every run of that check (a zero gradient per
    /// component): what a replay matches a recorded warning by.
    pub fn check(&self) -> String {
        match self {
            SanityFlag::NonDeterministic { .. } => "non-deterministic".into(),
            SanityFlag::ZeroGradient { component, .. } => {
                format!("zero-gradient {}", component.name())
            }
            SanityFlag::SquareAfterWhiteBox { .. } => "square-after-white-box".into(),
            SanityFlag::ProbabilityOutputs => "probability-outputs".into(),
        }
    }

    /// The points the warning counts where the evaluation's rows show them too (Square's
    /// points are its row's drop in robust accuracy): such a warning comes and goes with a
    /// point on its threshold, as the rows move within their tolerance. None for the others,
    /// whose counts no row shows (a zero gradient's) or which count nothing.
    pub fn points_in_rows(&self) -> Option<usize> {
        match self {
            SanityFlag::SquareAfterWhiteBox { points } => Some(*points),
            SanityFlag::ZeroGradient { .. }
            | SanityFlag::NonDeterministic { .. }
            | SanityFlag::ProbabilityOutputs => None,
        }
    }

    /// The warning for a person, saying what it means and what to do.
    pub fn message(&self) -> String {
        match self {
            SanityFlag::NonDeterministic { max_difference } => format!(
                "the model's forward pass is random (outputs of two passes on the same input \
                 differ by up to {max_difference:.2e}); the standard version assumes a \
                 deterministic model: use --version rand"
            ),
            SanityFlag::ZeroGradient { component, points } => format!(
                "{component}: {} had an exactly zero input gradient at the start; \
                 gradient-based attacks may be unreliable on this model (gradient masking)",
                crate::text::count(*points, "point", "points")
            ),
            SanityFlag::SquareAfterWhiteBox { points } => format!(
                "Square, a gradient-free attack, broke {} that every white-box attack failed \
                 on: the gradients are probably masked and the white-box numbers overestimate \
                 robustness",
                crate::text::count(*points, "point", "points")
            ),
            SanityFlag::ProbabilityOutputs => "the model's outputs look like probabilities \
                 (each row in [0, 1], summing to 1); AutoAttack expects logits, and its losses \
                 lose strength on probabilities"
                .to_string(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AutoAttackReport {
    pub version: String,
    pub epsilon: f32,
    pub images: usize,
    pub clean_accuracy: f64,
    pub robust_accuracy: f64,
    pub components: Vec<ComponentResult>,
    /// The largest |x′ − x| over every returned adversarial point (≤ ε + 1e−6).
    pub max_perturbation: f32,
    pub flags: Vec<SanityFlag>,
    /// Per image: correct on the clean input and not broken by any component.
    pub robust: Vec<bool>,
    /// The adversarial point found for each broken image (the clean image for the others),
    /// NCHW values in the order of the input; not written to JSON.
    #[serde(skip)]
    pub adversarial: Vec<f32>,
}

/// Runs AutoAttack on `natural` (`[n, c, h, w]` in [0, 1]) with `labels`.
///
/// Every component runs on the points still robust, in batches of `config.batch_size`; a
/// point a component breaks is re-checked with a fresh forward pass before it counts (as the
/// reference does). Refuses up front, before any work, when a component needs more classes than
/// the model has.
pub fn run(
    classifier: &impl Classifier,
    natural: &Tensor<4>,
    labels: &[i64],
    config: &AutoAttackConfig,
    progress: &dyn Progress,
) -> Result<AutoAttackReport, AttackError> {
    let never = std::sync::atomic::AtomicBool::new(false);
    run_cancellable(classifier, natural, labels, config, progress, &never)
        .map(|report| report.expect("an evaluation nobody cancels finishes"))
}

/// [`run`], checking `cancel` before each batch of each component: `Ok(None)` if it was
/// raised.
pub fn run_cancellable(
    classifier: &impl Classifier,
    natural: &Tensor<4>,
    labels: &[i64],
    config: &AutoAttackConfig,
    progress: &dyn Progress,
    cancel: &std::sync::atomic::AtomicBool,
) -> Result<Option<AutoAttackReport>, AttackError> {
    config.validate()?;
    let n = natural.dims()[0];
    check_label_count(labels, n)?;
    let components = config.version.components();
    let device = natural.device();

    let mut flags = Vec::new();
    let (mut robust, classes) = clean_pass(classifier, natural, labels, config, &mut flags)?;
    if n > 0 {
        for &c in &components {
            if classes < c.classes_needed() {
                return Err(AttackError::TooFewClasses {
                    attack: c.name(),
                    needed: c.classes_needed(),
                    classes,
                });
            }
        }
        // The rand version exists for random models: the reference skips the check there.
        let check = config.version != Version::Rand;
        if let Some(flag) = check
            .then(|| randomness_check(classifier, natural, config.batch_size))
            .flatten()
        {
            flags.push(flag);
        }
    }
    let clean_accuracy = fraction(&robust);

    let pixels: usize = natural.dims()[1..].iter().product();
    let natural_host = to_vec(natural.clone());
    let mut adversarial = natural_host.clone();
    let mut results = Vec::new();
    for (index, &component) in components.iter().enumerate() {
        let started = Instant::now();
        let attacked: Vec<usize> = (0..n).filter(|&i| robust[i]).collect();
        let mut rng = seeded(config.seed, COMPONENT_STREAM + index as u64);
        let mut zero_gradient = 0usize;
        let mut broken = 0usize;
        progress.start(component.name(), attacked.len() as u64);
        for chunk in attacked.chunks(config.batch_size) {
            if cancel.load(std::sync::atomic::Ordering::Relaxed) {
                progress.finish();
                return Ok(None);
            }
            let x = natural.clone().select(0, row_indices(chunk, &device));
            let y: Vec<i64> = chunk.iter().map(|&i| labels[i]).collect();
            let run = run_component(component, classifier, &x, &y, config, &mut rng)?;
            zero_gradient += run.zero_gradient;
            // A fresh forward pass decides, not the attack's own bookkeeping.
            let predicted = predictions(classifier.logits(run.outcome.adversarial.clone()));
            let points = to_vec(run.outcome.adversarial);
            for (j, (&i, (&p, &t))) in chunk.iter().zip(predicted.iter().zip(&y)).enumerate() {
                if p != t {
                    let point = &points[j * pixels..(j + 1) * pixels];
                    let clean = &natural_host[i * pixels..(i + 1) * pixels];
                    check_threat_model(component, point, clean, config.epsilon)?;
                    robust[i] = false;
                    broken += 1;
                    adversarial[i * pixels..(i + 1) * pixels]
                        .copy_from_slice(&points[j * pixels..(j + 1) * pixels]);
                }
            }
            progress.advance(chunk.len() as u64);
        }
        progress.finish();
        if zero_gradient > 0 {
            flags.push(SanityFlag::ZeroGradient {
                component,
                points: zero_gradient,
            });
        }
        flags.extend(square_flag(&components, index, broken, n));
        results.push(ComponentResult {
            component,
            attacked: attacked.len(),
            broken,
            robust_accuracy: fraction(&robust),
            seconds: started.elapsed().as_secs_f64(),
        });
    }

    let max_perturbation = adversarial
        .iter()
        .zip(&natural_host)
        .fold(0.0f32, |m, (a, x)| m.max((a - x).abs()));
    Ok(Some(AutoAttackReport {
        version: config.version.name().to_string(),
        epsilon: config.epsilon,
        images: n,
        clean_accuracy,
        robust_accuracy: fraction(&robust),
        components: results,
        max_perturbation,
        flags,
        robust,
        adversarial,
    }))
}

/// As the reference's check_square_sr: Square (at `index` of `components`) breaking more than
/// 0.2% of the `images` after a white-box attack ran is a warning sign.
fn square_flag(
    components: &[Component],
    index: usize,
    broken: usize,
    images: usize,
) -> Option<SanityFlag> {
    let white_box_ran_before = components[..index].iter().any(|c| c.is_white_box());
    let drop = broken as f64 / images.max(1) as f64;
    (components[index] == Component::Square && drop > SQUARE_FLAG_DROP && white_box_ran_before)
        .then_some(SanityFlag::SquareAfterWhiteBox { points: broken })
}

impl AutoAttackReport {
    /// One report for the concatenation of the images of `blocks`, each an evaluation of
    /// consecutive images with the same configuration: counts add up, accuracies are over
    /// all images, and the sanity flags are decided again on the whole (Square's drop is a
    /// fraction of all images, as if it had been one run). The adversarial points are kept
    /// only if every block still has its own (a block read back from a journal has none).
    pub fn merge(blocks: &[AutoAttackReport]) -> Result<AutoAttackReport, AttackError> {
        let Some(first) = blocks.first() else {
            return Err(AttackError::Invalid(
                "no AutoAttack blocks to merge".to_string(),
            ));
        };
        let components: Vec<Component> = first.components.iter().map(|c| c.component).collect();
        let same_evaluation = |block: &AutoAttackReport| {
            block.version == first.version
                && block.epsilon == first.epsilon
                && block
                    .components
                    .iter()
                    .map(|c| c.component)
                    .eq(components.iter().copied())
        };
        if components.is_empty() || !blocks.iter().all(same_evaluation) {
            return Err(AttackError::Invalid(
                "only AutoAttack blocks of the same evaluation can be merged".to_string(),
            ));
        }
        let images: usize = blocks.iter().map(|b| b.images).sum();
        let of_all = |count: usize| count as f64 / images.max(1) as f64;
        // The first component attacks exactly the clean-correct points; each one after it,
        // what the earlier ones left. Integer counts, not accuracies times sizes.
        let clean: usize = blocks.iter().map(|b| b.components[0].attacked).sum();
        let mut robust_count = clean;
        let mut merged_components = Vec::new();
        for (index, &component) in components.iter().enumerate() {
            let (mut attacked, mut broken, mut seconds) = (0, 0, 0.0);
            for block in blocks {
                attacked += block.components[index].attacked;
                broken += block.components[index].broken;
                seconds += block.components[index].seconds;
            }
            robust_count -= broken;
            merged_components.push(ComponentResult {
                component,
                attacked,
                broken,
                robust_accuracy: of_all(robust_count),
                seconds,
            });
        }
        let robust: Vec<bool> = blocks
            .iter()
            .flat_map(|b| b.robust.iter().copied())
            .collect();
        debug_assert_eq!(robust.iter().filter(|&&r| r).count(), robust_count);
        let every_block_kept_its_points = blocks
            .iter()
            .all(|b| b.images == 0 || !b.adversarial.is_empty());
        let adversarial = if every_block_kept_its_points {
            blocks
                .iter()
                .flat_map(|b| b.adversarial.iter().copied())
                .collect()
        } else {
            Vec::new()
        };
        Ok(AutoAttackReport {
            version: first.version.clone(),
            epsilon: first.epsilon,
            images,
            clean_accuracy: of_all(clean),
            robust_accuracy: fraction(&robust),
            flags: merge_flags(blocks, &merged_components),
            components: merged_components,
            max_perturbation: blocks
                .iter()
                .map(|b| b.max_perturbation)
                .fold(0.0, f32::max),
            robust,
            adversarial,
        })
    }
}

/// The sanity flags of merged blocks, in the order [`run`] raises them: probability outputs
/// (when every non-empty block showed them), the largest non-determinism, then per component
/// its zero-gradient points summed and Square's drop over all images.
fn merge_flags(blocks: &[AutoAttackReport], merged: &[ComponentResult]) -> Vec<SanityFlag> {
    let all_flags = || blocks.iter().flat_map(|b| &b.flags);
    let mut flags = Vec::new();
    let non_empty = blocks.iter().filter(|b| b.images > 0);
    if blocks.iter().any(|b| b.images > 0)
        && non_empty
            .clone()
            .all(|b| b.flags.contains(&SanityFlag::ProbabilityOutputs))
    {
        flags.push(SanityFlag::ProbabilityOutputs);
    }
    let differences = all_flags().filter_map(|f| match f {
        SanityFlag::NonDeterministic { max_difference } => Some(*max_difference),
        _ => None,
    });
    if let Some(max_difference) = differences.reduce(f32::max) {
        flags.push(SanityFlag::NonDeterministic { max_difference });
    }
    let components: Vec<Component> = merged.iter().map(|c| c.component).collect();
    let images: usize = blocks.iter().map(|b| b.images).sum();
    for (index, result) in merged.iter().enumerate() {
        let points: usize = all_flags()
            .map(|f| match f {
                SanityFlag::ZeroGradient { component, points }
                    if *component == result.component =>
                {
                    *points
                }
                _ => 0,
            })
            .sum();
        if points > 0 {
            flags.push(SanityFlag::ZeroGradient {
                component: result.component,
                points,
            });
        }
        flags.extend(square_flag(&components, index, result.broken, images));
    }
    flags
}

/// What one component returned for a batch.
struct ComponentRun {
    outcome: AttackOutcome,
    /// Points with an exactly zero input gradient at the start (APGD only).
    zero_gradient: usize,
}

/// One component with its standard settings (the reference's `run_standard_evaluation` with
/// `version='standard'` or `'rand'`).
fn run_component(
    component: Component,
    classifier: &impl Classifier,
    x: &Tensor<4>,
    y: &[i64],
    config: &AutoAttackConfig,
    rng: &mut rand::rngs::StdRng,
) -> Result<ComponentRun, AttackError> {
    let apgd_config = |loss| ApgdConfig {
        eot_iterations: config.version.eot_iterations(),
        ..ApgdConfig::standard(config.epsilon, loss)
    };
    let from_apgd = |report: super::ApgdReport| ComponentRun {
        zero_gradient: report.zero_gradient_at_start.iter().filter(|&&z| z).count(),
        outcome: report.outcome,
    };
    Ok(match component {
        Component::ApgdCe => from_apgd(apgd(
            classifier,
            x,
            y,
            &apgd_config(ApgdLoss::CrossEntropy),
            rng,
        )?),
        Component::ApgdDlr => from_apgd(apgd(classifier, x, y, &apgd_config(ApgdLoss::Dlr), rng)?),
        Component::ApgdT => from_apgd(apgd_targeted(
            classifier,
            x,
            y,
            &apgd_config(ApgdLoss::TargetedDlr),
            rng,
        )?),
        Component::FabT => ComponentRun {
            outcome: fab_targeted(classifier, x, y, &FabConfig::standard(config.epsilon), rng)?,
            zero_gradient: 0,
        },
        Component::Square => ComponentRun {
            outcome: square(
                classifier,
                x,
                y,
                &SquareConfig::standard(config.epsilon),
                rng,
            )?,
            zero_gradient: 0,
        },
    })
}

/// Which images the model classifies correctly, and the number of classes; adds the
/// probability-outputs flag when every output row looks like a distribution.
fn clean_pass(
    classifier: &impl Classifier,
    natural: &Tensor<4>,
    labels: &[i64],
    config: &AutoAttackConfig,
    flags: &mut Vec<SanityFlag>,
) -> Result<(Vec<bool>, usize), AttackError> {
    let n = natural.dims()[0];
    let device = natural.device();
    let all: Vec<usize> = (0..n).collect();
    let mut correct = Vec::with_capacity(n);
    let mut classes = 0;
    let mut looks_like_probabilities = n > 0;
    for chunk in all.chunks(config.batch_size) {
        let logits = classifier.logits(natural.clone().select(0, row_indices(chunk, &device)));
        classes = logits.dims()[1];
        let values = to_vec(logits.clone());
        looks_like_probabilities &= values.chunks(classes.max(1)).all(|row| {
            row.iter().all(|v| (0.0..=1.0).contains(v))
                && (row.iter().sum::<f32>() - 1.0).abs() < 1e-4
        });
        // Attacks on NaN logits "fail" without moving: the report would be clean accuracy.
        let predicted = super::checked_predictions(logits, chunk, "test images")?;
        for (p, &i) in predicted.into_iter().zip(chunk) {
            correct.push(p == labels[i]);
        }
    }
    if looks_like_probabilities {
        flags.push(SanityFlag::ProbabilityOutputs);
    }
    Ok((correct, classes))
}

/// The reference's `check_randomized`: the first batch through the model several times; any
/// difference between the (L2-normalised) outputs means the forward pass is random.
fn randomness_check(
    classifier: &impl Classifier,
    natural: &Tensor<4>,
    batch_size: usize,
) -> Option<SanityFlag> {
    let n = natural.dims()[0].min(batch_size);
    let x = natural.clone().narrow(0, 0, n);
    let normalised = |logits: Tensor<2>| {
        let norm = logits
            .clone()
            .powf_scalar(2.0)
            .sum_dim(1)
            .sqrt()
            .add_scalar(1e-10);
        to_vec(logits / norm)
    };
    let first = normalised(classifier.logits(x.clone()));
    let mut max_difference = 0.0f32;
    for _ in 1..DETERMINISM_PASSES {
        let again = normalised(classifier.logits(x.clone()));
        for (a, b) in first.iter().zip(&again) {
            max_difference = max_difference.max((a - b).abs());
        }
    }
    (max_difference > DETERMINISM_TOLERANCE)
        .then_some(SanityFlag::NonDeterministic { max_difference })
}

/// A point that counts as broken must be a real point of the threat model: finite, in [0, 1]
/// and within ε (+1e−6 for rounding) of the clean image. Anything else is a bug in a component,
/// reported rather than counted.
fn check_threat_model(
    component: Component,
    point: &[f32],
    clean: &[f32],
    epsilon: f32,
) -> Result<(), AttackError> {
    for (&a, &x) in point.iter().zip(clean) {
        if !a.is_finite() || !(0.0..=1.0).contains(&a) || (a - x).abs() > epsilon + 1e-6 {
            return Err(AttackError::Invalid(format!(
                "{component} returned a point outside the threat model (value {a}, clean {x}, \
                 ε {epsilon}); this is a bug, please report it"
            )));
        }
    }
    Ok(())
}

fn fraction(flags: &[bool]) -> f64 {
    flags.iter().filter(|&&f| f).count() as f64 / flags.len().max(1) as f64
}
