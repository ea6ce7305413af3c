//! The teacher's logits on each training image, kept once computed.
//!
//! Every distillation method (KD, ARD, IAD, RSLAD) asks the teacher for its logits on the
//! batch's natural images. On a dataset without augmentation those are the same images every
//! epoch and the teacher never changes, so from the second epoch on the teacher's forward pass
//! gives nothing new; with the TRADES teacher at batch 128 it is about a fifth of an RSLAD step
//! on `micro-cnn` with a 10-step attack (docs/performance.md, "The teacher's logits, kept").
//! The trainer keeps each image's logits the first time a batch computes them and builds later
//! batches' from them.
//!
//! Same bits as asking the teacher again: at a given batch size an image's logits depend on
//! neither the batch's other images nor its place among them
//! (`an_images_teacher_logits_depend_on_the_batch_size_only` in tests/suite/teacher.rs). They
//! can depend on the batch size itself: gemm blocks a product by its size, so `micro-cnn`'s
//! last layer (784 → 10) rounds differently for 64 images than for 65, and gemm's AVX-512
//! kernels take another path for one image. So only batches of the trainer's batch size are
//! kept and served: every batch of an epoch but a shorter last one, which asks the teacher.
//! All of this is measured on the CPU (burn-flex) only; on a GPU the trainer asks the teacher
//! every time.

use super::method::teacher_forward;
use crate::data::ImageSet;
use crate::eval::journal::image_set_digest;
use crate::tensor_util::to_vec;
use crate::zoo::Model;
use burn::prelude::*;
use burn::tensor::TensorData;

/// The logits of the images of one training set, as far as batches have computed them.
pub(super) struct TeacherLogits {
    /// Which training set the rows belong to (its [`image_set_digest`]).
    digest: String,
    /// The only batch size whose logits are kept and served.
    batch_size: usize,
    classes: usize,
    /// `[image][class]`, valid where `known`.
    logits: Vec<f32>,
    known: Vec<bool>,
}

impl TeacherLogits {
    /// An empty cache for `set` in batches of `batch_size`.
    pub(super) fn new(set: &ImageSet, batch_size: usize) -> TeacherLogits {
        TeacherLogits {
            digest: image_set_digest(set),
            batch_size,
            classes: set.num_classes,
            logits: vec![0.0; set.len() * set.num_classes],
            known: vec![false; set.len()],
        }
    }

    /// Whether the cache was made for `set` in batches of `batch_size` (a trainer sees one
    /// training set, but nothing outside it guarantees that). Hashes the whole set: 43 ms for
    /// all of MNIST, so the trainer asks once an epoch.
    pub(super) fn is_for(&self, set: &ImageSet, batch_size: usize) -> bool {
        self.batch_size == batch_size
            && self.known.len() == set.len()
            && self.digest == image_set_digest(set)
    }

    /// The teacher's logits on the set's images `indices`, whose batch is `x`: from the cache
    /// when the batch has the cache's size and every image's are kept, else from the teacher
    /// (and then kept, if the batch has the cache's size).
    pub(super) fn logits(
        &mut self,
        teacher: &Model,
        indices: &[usize],
        x: &Tensor<4>,
    ) -> Tensor<2> {
        let classes = self.classes;
        let kept_size = indices.len() == self.batch_size;
        if kept_size && indices.iter().all(|&i| self.known[i]) {
            let rows: Vec<f32> = indices
                .iter()
                .flat_map(|&i| &self.logits[i * classes..(i + 1) * classes])
                .copied()
                .collect();
            return Tensor::from_data(TensorData::new(rows, [indices.len(), classes]), &x.device());
        }
        let logits = teacher_forward(teacher, x);
        if kept_size {
            let values = to_vec(logits.clone());
            for (&i, row) in indices.iter().zip(values.chunks_exact(classes)) {
                self.logits[i * classes..(i + 1) * classes].copy_from_slice(row);
                self.known[i] = true;
            }
        }
        logits
    }
}

#[cfg(test)]
mod tests {
    use super::TeacherLogits;
    use crate::data::ImageSet;
    use crate::device::compute_device;
    use crate::tensor_util::{batch_tensors, to_vec};
    use crate::zoo::{Model, build_by_name};

    fn set(pixels: Vec<u8>, labels: Vec<u8>) -> ImageSet {
        ImageSet {
            pixels,
            labels,
            channels: 1,
            height: 2,
            width: 2,
            num_classes: 10,
        }
    }

    /// Kept logits are dropped for another set (a changed label or pixel) or batch size.
    #[test]
    fn kept_logits_are_for_their_set_and_batch_size_only() {
        let kept = TeacherLogits::new(&set(vec![7; 8], vec![1, 2]), 2);
        assert!(kept.is_for(&set(vec![7; 8], vec![1, 2]), 2));
        assert!(!kept.is_for(&set(vec![7; 8], vec![1, 2]), 1));
        assert!(!kept.is_for(&set(vec![7; 8], vec![1, 3]), 2));
        let mut pixels = vec![7; 8];
        pixels[5] = 8;
        assert!(!kept.is_for(&set(pixels, vec![1, 2]), 2));
        assert!(!kept.is_for(&set(vec![7; 12], vec![1, 2, 3]), 2));
    }

    /// Kept rows come back whatever teacher is passed later: two differently seeded teachers
    /// tell the cache's rows from fresh ones.
    #[test]
    fn kept_logits_serve_batches_of_the_kept_size_only() {
        let device = compute_device();
        let pixels = (0..6 * 28 * 28).map(|i| (i * 37 % 251) as u8).collect();
        let images = ImageSet {
            pixels,
            labels: vec![0, 1, 2, 3, 4, 5],
            channels: 1,
            height: 28,
            width: 28,
            num_classes: 10,
        };
        let teacher = |seed| {
            crate::attack::eval_view(&build_by_name("micro-cnn", 10, seed, &device).unwrap())
        };
        let (first, second) = (teacher(1), teacher(2));
        let fresh = |model: &Model, indices: &[usize]| {
            to_vec(model.forward(batch_tensors(&images, indices, &device).0))
        };
        let mut cache = TeacherLogits::new(&images, 2);
        let mut logits = |model: &Model, indices: &[usize]| {
            let x = batch_tensors(&images, indices, &device).0;
            to_vec(cache.logits(model, indices, &x))
        };
        assert_ne!(fresh(&first, &[0, 1]), fresh(&second, &[0, 1]));
        assert_eq!(logits(&first, &[0, 1]), fresh(&first, &[0, 1]));
        assert_eq!(logits(&first, &[2, 3]), fresh(&first, &[2, 3]));
        // Kept: the first teacher's rows, in the new order.
        assert_eq!(logits(&second, &[3, 0]), fresh(&first, &[3, 0]));
        // Another size is computed, even where every image is kept, and not kept.
        assert_eq!(logits(&second, &[1]), fresh(&second, &[1]));
        assert_eq!(logits(&second, &[0, 1, 2]), fresh(&second, &[0, 1, 2]));
        assert_eq!(logits(&second, &[4, 5, 0]), fresh(&second, &[4, 5, 0]));
        // One image not kept: the whole batch from the teacher, and then kept.
        assert_eq!(logits(&second, &[0, 4]), fresh(&second, &[0, 4]));
        assert_eq!(logits(&first, &[4, 0]), fresh(&second, &[4, 0]));
        assert_eq!(logits(&first, &[5, 4]), fresh(&first, &[5, 4]));
    }
}
