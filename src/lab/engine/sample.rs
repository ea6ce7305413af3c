//! The selected test image: its adversarial version (PGD against the student) and both
//! models' class probabilities on both, for the soft-label and perturbation panels.

use super::Engine;
use crate::attack::{self, Target};
use crate::device::compute_device;
use crate::eval::EvalAttack;
use crate::lab::snapshot::SampleView;
use crate::progress::Progress;
use crate::rng::{seeded, stream};
use crate::tensor_util::{batch_tensors, int_to_vec, predictions, to_vec};
use crate::zoo::Model;
use anyhow::{Result, bail};
use burn::prelude::*;
use burn::tensor::activation::softmax;

/// Images attacked at a time while looking for a misclassified sample.
const SEARCH_CHUNK: usize = 100;

impl Engine {
    pub(super) fn select(&mut self, index: usize) -> Result<()> {
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
    pub(super) fn find_misclassified(&mut self) -> Result<()> {
        let len = self.data.test.len();
        let view = attack::eval_view(&self.trainer.model);
        let config = self.sample_attack().config;
        let device = compute_device();
        let mut rng = seeded(self.settings.seed, stream::EVAL_ATTACK);
        let progress = self.progress();
        progress.start("searching", (len - 1) as u64);
        let order: Vec<usize> = (1..len).map(|k| (self.sample + k) % len).collect();
        for chunk in order.chunks(SEARCH_CHUNK) {
            if self.shared.cancelled() {
                return Ok(());
            }
            let (x, y) = batch_tensors(&self.data.test, chunk, &device);
            let labels = int_to_vec(y.clone());
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
        let steps = self.settings.eval.steps.max(10);
        EvalAttack::pgd(self.epsilon(), steps, self.settings.step_size())
    }

    /// Recomputes the sample view: the image, its PGD version against the student, and both
    /// models' class probabilities on both.
    pub(super) fn refresh_sample(&mut self) {
        let test = &self.data.test;
        if test.is_empty() {
            return;
        }
        let index = self.sample.min(test.len() - 1);
        let device = compute_device();
        let (x, y) = batch_tensors(test, &[index], &device);
        let attack = self.sample_attack();
        let student = attack::eval_view(&self.trainer.model);
        // Seeded by the index, so the same image always gets the same start.
        let mut rng = seeded(
            self.settings.seed.wrapping_add(index as u64),
            stream::EVAL_ATTACK,
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
}
