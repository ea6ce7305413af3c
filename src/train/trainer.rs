//! The epoch loop: seeded shuffling, one optimiser step per batch, metrics per epoch.

use super::method::Batch;
use super::teacher_logits::TeacherLogits;
use super::{Method, OptimizerConfig};
use crate::data::{Dataset, ImageSet, augment, batch};
use crate::eval::{self, EvalAttack};
use crate::progress::{BatchReport, Progress};
use crate::rng::{seeded, stream};
use crate::tensor_util::{all_finite, batch_tensors, images, labels, predictions, to_vec};
use crate::zoo::Model;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub method: Method,
    pub optimizer: OptimizerConfig,
    pub epochs: usize,
    pub batch_size: usize,
    pub seed: u64,
    /// Train on the first `train_n` training images only (None: all).
    pub train_n: Option<usize>,
    /// Evaluate on the first `eval_n` test images after each epoch.
    pub eval_n: usize,
    /// The attack for the robust accuracy reported after each epoch (None: clean only).
    pub eval_attack: Option<EvalAttack>,
    /// Epochs over which the training attack's ε grows linearly from 0 to its full value,
    /// batch by batch (0: full ε from the start). Helps SAT at ε = 0.3 on MNIST leave the
    /// chance-level plateau where it otherwise stays.
    #[serde(default)]
    pub epsilon_warmup_epochs: usize,
}

impl TrainConfig {
    /// The fraction of the full ε used at `batch` of `batches` in `epoch` (0-based).
    pub fn epsilon_scale(&self, epoch: usize, batch: usize, batches: usize) -> f32 {
        if self.epsilon_warmup_epochs == 0 {
            return 1.0;
        }
        let progress = epoch as f64 + (batch + 1) as f64 / batches.max(1) as f64;
        (progress / self.epsilon_warmup_epochs as f64).min(1.0) as f32
    }
}

/// Metrics of one finished epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch number.
    pub epoch: usize,
    pub learning_rate: f64,
    /// Mean training loss over the epoch's batches.
    pub loss: f64,
    /// Accuracy on the points the loss was computed on (adversarial ones for SAT).
    pub train_accuracy: f64,
    /// On the first `eval_n` test images; NaN when `eval_n` is 0 (nothing was measured).
    pub test_clean_accuracy: f64,
    pub test_robust_accuracy: Option<f64>,
    pub seconds: f64,
}

pub struct Trainer {
    pub model: Model,
    /// The teacher of a distillation method, in eval mode.
    teacher: Option<Model>,
    pub config: TrainConfig,
    pub history: Vec<EpochMetrics>,
    optimizer: ModuleOptimizer,
    /// The epoch under way, when it was stopped part-way or is stepped batch by batch.
    cursor: Option<EpochCursor>,
    /// The teacher's logits on the training images seen so far (data without augmentation,
    /// on the CPU); checked against the training set at each epoch's start.
    teacher_logits: Option<TeacherLogits>,
}

/// What one optimiser step trains on: a batch's images and labels, and the teacher's logits on
/// those images where the trainer has them (`None`: the method asks the teacher).
pub struct StepBatch<'a> {
    pub x: &'a Tensor<4>,
    pub y: &'a Tensor<1, burn::tensor::Int>,
    pub teacher_natural: Option<Tensor<2>>,
}

impl<'a> StepBatch<'a> {
    /// A batch whose teacher logits the method computes.
    pub fn new(x: &'a Tensor<4>, y: &'a Tensor<1, burn::tensor::Int>) -> StepBatch<'a> {
        StepBatch {
            x,
            y,
            teacher_natural: None,
        }
    }
}

/// Where an unfinished epoch stands: its batch order, the random streams and the running sums,
/// so that stepping batch by batch gives exactly the same model as a whole epoch.
struct EpochCursor {
    epoch: usize,
    batches: Vec<Vec<usize>>,
    next: usize,
    learning_rate: f64,
    rng: StdRng,
    augment_rng: Option<StdRng>,
    loss_sum: f64,
    correct: usize,
    seen: usize,
    seconds: f64,
    /// How to take back the epoch's last batch, kept from that batch until the epoch's
    /// evaluation: outputs that are not finite there mean its update diverged.
    undo_last: Option<BatchUndo>,
}

/// Everything a batch changes, as it was before the batch: restoring it makes the batch not
/// have happened (model, optimiser, random streams and running sums).
struct BatchUndo {
    model: Model,
    optimizer: ModuleOptimizer,
    rng: StdRng,
    augment_rng: Option<StdRng>,
    loss_sum: f64,
    correct: usize,
    seen: usize,
}

impl BatchUndo {
    fn capture(trainer: &Trainer, cursor: &EpochCursor) -> BatchUndo {
        BatchUndo {
            model: trainer.model.clone(),
            optimizer: trainer.optimizer.clone(),
            rng: cursor.rng.clone(),
            augment_rng: cursor.augment_rng.clone(),
            loss_sum: cursor.loss_sum,
            correct: cursor.correct,
            seen: cursor.seen,
        }
    }

    fn restore(self, trainer: &mut Trainer, cursor: &mut EpochCursor) {
        trainer.model = self.model;
        trainer.optimizer = self.optimizer;
        cursor.rng = self.rng;
        cursor.augment_rng = self.augment_rng;
        cursor.loss_sum = self.loss_sum;
        cursor.correct = self.correct;
        cursor.seen = self.seen;
    }
}

/// What a call to [`Trainer::step_batches`] did.
#[derive(Clone, Debug, PartialEq)]
pub enum StepOutcome {
    /// This many batches ran and the epoch is not over.
    Batches(usize),
    /// The epoch's last batch ran and it was evaluated.
    EpochDone(EpochMetrics),
    /// `cancel` was raised before all the batches ran; the model is as it was after the last
    /// completed batch and the epoch resumes from there on the next call.
    Cancelled,
    /// Batch `batch` (1-based) of the epoch gave a loss that is not finite (a learning rate
    /// too high, say), or an update after which the weights, the batch-norm statistics or the
    /// epoch's evaluation outputs are not finite (`loss` is then NaN). The batch was taken
    /// back: the model (running statistics included), the optimiser and the random streams
    /// are as they were after the batch before, the last good state, and the epoch is paused
    /// there.
    Diverged { batch: usize, loss: f64 },
}

impl Trainer {
    /// `model` must live on the autodiff device.
    ///
    /// Panics if the method distils from a teacher: use [`Trainer::with_teacher`].
    pub fn new(model: Model, config: TrainConfig) -> Trainer {
        assert!(
            !config.method.needs_teacher(),
            "{} needs a teacher: use Trainer::with_teacher",
            config.method.name()
        );
        Trainer::build(model, None, config)
    }

    /// A trainer for a distillation method; the teacher is used in eval mode only and never
    /// trained. Its input shape and classes must match the student's (the caller checks).
    pub fn with_teacher(model: Model, teacher: Model, config: TrainConfig) -> Trainer {
        Trainer::build(model, Some(crate::attack::eval_view(&teacher)), config)
    }

    fn build(model: Model, teacher: Option<Model>, config: TrainConfig) -> Trainer {
        let optimizer = config.optimizer.build();
        Trainer {
            model,
            teacher,
            config,
            history: Vec::new(),
            optimizer,
            cursor: None,
            teacher_logits: None,
        }
    }

    /// The optimiser's state (Adam's moments and step count, SGD's momentum) as burn
    /// serialises it, for [`crate::resume`]. Only between epochs: the epoch under way is not
    /// part of it.
    pub fn optimizer_state(&self) -> Result<Vec<u8>, String> {
        self.optimizer
            .into_bytes()
            .map(|bytes| bytes.to_vec())
            .map_err(|e| format!("cannot serialise the optimiser's state: {e:?}"))
    }

    /// Goes on with a run whose epochs in `history` are done: the model must be the one saved
    /// after them with its parameters' ids of then ([`crate::resume::ResumeState::apply`]),
    /// `optimizer` the state [`Trainer::optimizer_state`] gave then.
    pub fn resume(&mut self, history: Vec<EpochMetrics>, optimizer: &[u8]) -> Result<(), String> {
        assert!(
            self.cursor.is_none() && self.history.is_empty(),
            "resume a fresh trainer only"
        );
        let bytes = burn::tensor::Bytes::from_bytes_vec(optimizer.to_vec());
        self.optimizer = self
            .config
            .optimizer
            .build()
            .from_bytes(bytes)
            .map_err(|e| format!("cannot read the optimiser's state: {e:?}"))?;
        self.history = history;
        Ok(())
    }

    /// Epochs finished so far.
    pub fn epochs_done(&self) -> usize {
        self.history.len()
    }

    /// Batches done in the epoch under way and its number of batches; (0, 0) between epochs.
    pub fn epoch_position(&self) -> (usize, usize) {
        self.cursor
            .as_ref()
            .map_or((0, 0), |c| (c.next, c.batches.len()))
    }

    /// The number of batches one epoch has on `data` with this configuration.
    pub fn batches_per_epoch(&self, data: &Dataset) -> usize {
        self.training_len(data)
            .div_ceil(self.config.batch_size.max(1))
    }

    /// Trains the rest of the current epoch, then evaluates. Returns `None` if `cancel` was
    /// raised or the loss diverged: the model is then as it was after the last completed
    /// batch, the epoch is not counted, and the next call resumes it where it stopped. (Use
    /// [`Trainer::step_batches`] to tell the two apart.)
    pub fn run_epoch(
        &mut self,
        data: &Dataset,
        progress: &dyn Progress,
        cancel: &AtomicBool,
    ) -> Option<EpochMetrics> {
        match self.step_batches(data, usize::MAX, progress, cancel) {
            StepOutcome::EpochDone(metrics) => Some(metrics),
            StepOutcome::Cancelled | StepOutcome::Diverged { .. } => None,
            StepOutcome::Batches(_) => unreachable!("an unbounded step ends its epoch"),
        }
    }

    /// Trains at most `max_batches` batches of the current epoch (starting a new one if none
    /// is under way); when the epoch's last batch runs, evaluates and records the epoch.
    pub fn step_batches(
        &mut self,
        data: &Dataset,
        max_batches: usize,
        progress: &dyn Progress,
        cancel: &AtomicBool,
    ) -> StepOutcome {
        let started = Instant::now();
        let mut cursor = match self.cursor.take() {
            Some(cursor) => cursor,
            None => {
                self.check_teacher_logits(&data.train);
                self.start_epoch(data, self.training_len(data))
            }
        };
        let device = crate::device::compute_device();
        progress.start(
            &format!("epoch {}", cursor.epoch + 1),
            cursor.batches.len() as u64,
        );
        let mut ran = 0;
        while cursor.next < cursor.batches.len() && ran < max_batches {
            if cancel.load(Ordering::Relaxed) {
                progress.finish();
                cursor.seconds += started.elapsed().as_secs_f64();
                self.cursor = Some(cursor);
                return StepOutcome::Cancelled;
            }
            let batch_loss = match self.train_batch(&data.train, &mut cursor, &device) {
                Ok(loss) => loss,
                Err(loss) => {
                    progress.finish();
                    cursor.seconds += started.elapsed().as_secs_f64();
                    let batch = cursor.next + 1;
                    self.cursor = Some(cursor);
                    return StepOutcome::Diverged { batch, loss };
                }
            };
            ran += 1;
            progress.batch(&BatchReport {
                batch: cursor.next,
                batches: cursor.batches.len(),
                loss: batch_loss,
            });
        }
        progress.finish();
        cursor.seconds += started.elapsed().as_secs_f64();
        if cursor.next < cursor.batches.len() {
            self.cursor = Some(cursor);
            return StepOutcome::Batches(ran);
        }
        self.finish_epoch(data, cursor, progress)
    }

    /// How many of the training images an epoch uses: the first `train_n`, or all. Batch
    /// indices are drawn below this, so batches index `data.train` directly without a copy.
    fn training_len(&self, data: &Dataset) -> usize {
        let all = data.train.len();
        self.config.train_n.map_or(all, |n| n.min(all))
    }

    fn start_epoch(&self, data: &Dataset, train_len: usize) -> EpochCursor {
        let epoch = self.epochs_done();
        let order = batch::epoch_order(train_len, self.config.seed, epoch);
        let batches = batch::batches(&order, self.config.batch_size)
            .map(<[usize]>::to_vec)
            .collect();
        let epoch_seed = self.config.seed.wrapping_add(epoch as u64);
        EpochCursor {
            epoch,
            batches,
            next: 0,
            learning_rate: self.config.optimizer.learning_rate_at(epoch),
            rng: seeded(epoch_seed, stream::ATTACK),
            // Random crop (4-pixel padding) and flip for CIFAR, as in the RSLAD training scripts.
            augment_rng: data
                .kind
                .augments()
                .then(|| seeded(epoch_seed, stream::AUGMENT)),
            loss_sum: 0.0,
            correct: 0,
            seen: 0,
            seconds: 0.0,
            undo_last: None,
        }
    }

    /// One optimiser step on the cursor's next batch; returns the batch's loss, or, when the
    /// loss is not finite, that loss with nothing updated (the cursor stays on this batch).
    fn train_batch(
        &mut self,
        train: &ImageSet,
        cursor: &mut EpochCursor,
        device: &Device,
    ) -> Result<f64, f64> {
        let undo = BatchUndo::capture(self, cursor);
        let index = cursor.next;
        let indices = cursor.batches[index].clone();
        let (x, y) = match cursor.augment_rng.as_mut() {
            Some(augment_rng) => augmented_batch(train, &indices, augment_rng, device),
            None => batch_tensors(train, &indices, device),
        };
        let scale = self
            .config
            .epsilon_scale(cursor.epoch, index, cursor.batches.len());
        let teacher_natural = self.kept_teacher_logits(train, cursor, &indices, &x);
        let step = StepBatch {
            x: &x,
            y: &y,
            teacher_natural,
        };
        let updated = self.update(
            step,
            cursor.epoch,
            scale,
            cursor.learning_rate,
            &mut cursor.rng,
        );
        let (batch_loss, logits) = match updated {
            Ok(updated) => updated,
            Err(loss) => {
                undo.restore(self, cursor);
                return Err(loss);
            }
        };
        let preds = predictions(logits);
        cursor.correct += preds
            .iter()
            .zip(indices.iter())
            .filter(|(p, i)| **p == i64::from(train.labels[**i]))
            .count();
        cursor.seen += indices.len();
        cursor.loss_sum += batch_loss * indices.len() as f64;
        cursor.next += 1;
        // Only the epoch's last batch is kept to be taken back (a model's worth of memory).
        cursor.undo_last = (cursor.next == cursor.batches.len()).then_some(undo);
        Ok(batch_loss)
    }

    /// The teacher's logits on the batch `x` of the training images `indices`, kept or
    /// computed and kept ([`TeacherLogits`]); `None` without a teacher, on augmented images
    /// (they differ every epoch) and off the CPU.
    fn kept_teacher_logits(
        &mut self,
        train: &ImageSet,
        cursor: &EpochCursor,
        indices: &[usize],
        x: &Tensor<4>,
    ) -> Option<Tensor<2>> {
        let teacher = self.teacher.as_ref()?;
        if cursor.augment_rng.is_some() || !crate::device::is_flex() {
            return None;
        }
        let size = self.config.batch_size;
        let kept = self
            .teacher_logits
            .get_or_insert_with(|| TeacherLogits::new(train, size));
        Some(kept.logits(teacher, indices, x))
    }

    /// Drops the kept teacher logits unless they were made for `train` in batches of this
    /// size: a trainer sees one training set, but nothing outside it guarantees that.
    fn check_teacher_logits(&mut self, train: &ImageSet) {
        let size = self.config.batch_size;
        if !self
            .teacher_logits
            .as_ref()
            .is_some_and(|kept| kept.is_for(train, size))
        {
            self.teacher_logits = None;
        }
    }

    /// One optimiser step of the method on the batch `(x, y)`: the method's loss (its training
    /// attack included), the backward pass and the update. Returns the batch's loss and the
    /// logits the trainer's accuracy counts, or, when the loss is not finite, that loss, and
    /// when the update leaves a weight or a running statistic that is not finite, NaN: either
    /// way with the model (running statistics included) and the optimiser as they were before.
    /// The epoch loop and the benchmarks both run training through here.
    pub fn update(
        &mut self,
        step: StepBatch,
        epoch: usize,
        epsilon_scale: f32,
        learning_rate: f64,
        rng: &mut StdRng,
    ) -> Result<(f64, Tensor<2>), f64> {
        // What to go back to if this batch diverges (tensors are shared immutable handles, so
        // this copies no values).
        let before = (self.model.clone(), self.optimizer.clone());
        // burn's `Clone` of a batch norm shares its running statistics (one `Arc` for every
        // copy), and a forward pass in training mode updates them in place. The model gets
        // statistics of its own before this batch's forward passes, so that `before`, and any
        // copy a caller took (the model of the last finished epoch, kept to be saved), keeps
        // the statistics it had. (`valid().train()` rebuilds every running state from its
        // current value and keeps every parameter, its id and its gradient setting.)
        self.model = self.model.valid().train();
        let batch = Batch {
            model: &self.model,
            teacher: self.teacher.as_ref(),
            images: step.x,
            labels: step.y,
            teacher_natural: step.teacher_natural,
            epoch,
            epsilon_scale,
        };
        let (loss, logits) = self.config.method.loss(&batch, rng);
        let batch_loss = f64::from(to_vec(loss.clone().detach().without_autodiff())[0]);
        if !batch_loss.is_finite() {
            (self.model, self.optimizer) = before;
            return Err(batch_loss);
        }
        let grads = GradientsParams::from_grads(loss.backward(), &self.model);
        self.model = self
            .optimizer
            .step(learning_rate, self.model.clone(), grads);
        // A finite loss can still give an update that overflows (a huge learning rate or
        // momentum, a NaN in the schedule), or statistics that did (activations too large for
        // their variance).
        if !all_finite(&self.model) {
            (self.model, self.optimizer) = before;
            return Err(f64::NAN);
        }
        Ok((batch_loss, logits.detach().without_autodiff()))
    }

    fn finish_epoch(
        &mut self,
        data: &Dataset,
        mut cursor: EpochCursor,
        progress: &dyn Progress,
    ) -> StepOutcome {
        let started = Instant::now();
        let test = data.test.take(self.config.eval_n.min(data.test.len()));
        let report = if test.is_empty() {
            Ok(None)
        } else {
            eval::evaluate(
                &self.model,
                &test,
                self.config.eval_attack.as_slice(),
                self.config.seed,
                progress,
            )
            .map(Some)
        };
        let report = match report {
            Ok(report) => report,
            // Outputs that are not finite (the only error on a non-empty test set): the last
            // update is the one to take back, as every earlier one gave a finite loss on the
            // batch after it. The epoch pauses before that batch. (Without a batch this
            // epoch, the model was like that before it; the epoch stays paused at its end.)
            Err(_) => {
                if let Some(undo) = cursor.undo_last.take() {
                    undo.restore(self, &mut cursor);
                    cursor.next -= 1;
                }
                cursor.seconds += started.elapsed().as_secs_f64();
                let batch = cursor.next + 1;
                self.cursor = Some(cursor);
                return StepOutcome::Diverged {
                    batch,
                    loss: f64::NAN,
                };
            }
        };
        let (clean, robust) = match &report {
            Some(report) => (
                report.clean_accuracy,
                report.attacks.first().map(|a| a.robust_accuracy),
            ),
            None => (f64::NAN, None),
        };
        let metrics = EpochMetrics {
            epoch: cursor.epoch + 1,
            learning_rate: cursor.learning_rate,
            loss: cursor.loss_sum / cursor.seen.max(1) as f64,
            train_accuracy: cursor.correct as f64 / cursor.seen.max(1) as f64,
            test_clean_accuracy: clean,
            test_robust_accuracy: robust,
            seconds: cursor.seconds + started.elapsed().as_secs_f64(),
        };
        self.history.push(metrics.clone());
        StepOutcome::EpochDone(metrics)
    }
}

/// A batch with random crop (padding 4) and horizontal flip applied to its images.
pub(super) fn augmented_batch(
    set: &ImageSet,
    indices: &[usize],
    rng: &mut StdRng,
    device: &Device,
) -> (Tensor<4>, Tensor<1, burn::tensor::Int>) {
    let (mut pixels, targets) = set.batch(indices);
    let (n, c, h, w) = (indices.len(), set.channels, set.height, set.width);
    augment::crop_and_flip(&mut pixels, n, c, h, w, 4, rng);
    (images(pixels, n, c, h, w, device), labels(&targets, device))
}
