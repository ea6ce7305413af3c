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
use crate::tensor_util::to_vec;
use crate::zoo::Model;
use burn::prelude::*;
use burn::tensor::TensorData;

/// The logits of the images of one training set, as far as batches have computed them.
pub(super) struct TeacherLogits {
    /// Which training set the rows belong to ([`fingerprint`]).
    fingerprint: u64,
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
            fingerprint: fingerprint(set),
            batch_size,
            classes: set.num_classes,
            logits: vec![0.0; set.len() * set.num_classes],
            known: vec![false; set.len()],
        }
    }

    /// Whether the cache was made for `set` in batches of `batch_size` (a trainer sees one
    /// training set, but nothing outside it guarantees that).
    pub(super) fn is_for(&self, set: &ImageSet, batch_size: usize) -> bool {
        self.batch_size == batch_size
            && self.known.len() == set.len()
            && self.fingerprint == fingerprint(set)
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

/// A cheap identity of a training set: its shape, every label and every 61st pixel byte (about
/// 0.8 MB of MNIST's 47 MB; about 2 ms, so the trainer checks it once an epoch). Two different
/// sets that agree on all of it are not a case a trainer meets.
fn fingerprint(set: &ImageSet) -> u64 {
    // FNV-1a, 64-bit.
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    let mut add = |byte: u8| {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    };
    for dimension in [
        set.len(),
        set.channels,
        set.height,
        set.width,
        set.num_classes,
    ] {
        (dimension as u64)
            .to_le_bytes()
            .into_iter()
            .for_each(&mut add);
    }
    set.labels.iter().copied().for_each(&mut add);
    set.pixels.iter().step_by(61).copied().for_each(&mut add);
    hash
}

#[cfg(test)]
mod tests {
    use super::{TeacherLogits, fingerprint};
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

    #[test]
    fn a_changed_label_or_sampled_pixel_changes_the_fingerprint() {
        let base = set(vec![7; 8], vec![1, 2]);
        assert_eq!(
            fingerprint(&base),
            fingerprint(&set(vec![7; 8], vec![1, 2]))
        );
        assert_ne!(
            fingerprint(&base),
            fingerprint(&set(vec![7; 8], vec![1, 3]))
        );
        let mut pixels = vec![7; 8];
        pixels[0] = 8;
        assert_ne!(fingerprint(&base), fingerprint(&set(pixels, vec![1, 2])));
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
