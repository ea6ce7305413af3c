//! Floating-point operations of the benchmark workloads, counted from the layer shapes.
//!
//! Only convolutions and fully connected layers are counted (2 FLOPs per multiply-add):
//! activations, pooling, batch norm and the loss would add about 0.3% on small-cnn and about 6%
//! on the thin micro-cnn. A backward
//! pass costs one forward's worth for the input gradient and another for the weight gradient.

use crate::zoo::{Arch, ModelSpec};

/// Multiply-adds of a 3×3 convolution producing `out`×`side`×`side` from `inputs` channels.
fn conv3x3(inputs: usize, out: usize, side: usize) -> f64 {
    (out * inputs * 9 * side * side) as f64
}

/// Forward FLOPs per image, for the architectures the CPU benchmarks use (None for the rest).
/// `width` multiplies micro-cnn's channels, as [`crate::zoo::MicroCnn::with_width`] does.
pub fn forward_per_image(spec: &ModelSpec, width: usize) -> Option<f64> {
    let s = spec.image_size;
    let c = spec.in_channels;
    let k = spec.num_classes;
    let macs = match spec.arch {
        Arch::MicroCnn => {
            let (a, b) = (8 * width, 16 * width);
            conv3x3(c, a, s) + conv3x3(a, b, s / 2) + (b * (s / 4) * (s / 4) * k) as f64
        }
        Arch::SmallCnn => {
            let pooled = (s - 4) / 2;
            let side = (pooled - 4) / 2;
            conv3x3(c, 32, s - 2)
                + conv3x3(32, 32, s - 4)
                + conv3x3(32, 64, pooled - 2)
                + conv3x3(64, 64, pooled - 4)
                + (64 * side * side * 200 + 200 * 200 + 200 * k) as f64
        }
        _ => return None,
    };
    Some(2.0 * macs)
}

/// FLOPs per image of one PGD step: a forward pass and the input gradient.
pub fn pgd_step(forward: f64) -> f64 {
    2.0 * forward
}

/// FLOPs per image of one RSLAD training step: the teacher's forward pass, `steps` attack
/// steps on the student, then the student's forward and full backward pass (input and weight
/// gradients) on the natural and on the adversarial images.
pub fn rslad_step(teacher_forward: f64, student_forward: f64, steps: usize) -> f64 {
    teacher_forward + steps as f64 * pgd_step(student_forward) + 2.0 * 3.0 * student_forward
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mnist(arch: Arch) -> ModelSpec {
        ModelSpec::native(arch, 10)
    }

    #[test]
    fn small_cnn_counts_by_hand() {
        // conv1 32·1·9·26², conv2 32·32·9·24², conv3 64·32·9·10², conv4 64·64·9·8²,
        // fc 1024·200 + 200·200 + 200·10 multiply-adds.
        let macs =
            194_688.0 + 5_308_416.0 + 1_843_200.0 + 2_359_296.0 + 204_800.0 + 40_000.0 + 2_000.0;
        assert_eq!(
            forward_per_image(&mnist(Arch::SmallCnn), 1),
            Some(2.0 * macs)
        );
    }

    #[test]
    fn micro_cnn_grows_with_the_square_of_its_width() {
        let spec = mnist(Arch::MicroCnn);
        let one = forward_per_image(&spec, 1).unwrap();
        // conv1 8·9·28², conv2 16·8·9·14², fc 16·7²·10.
        assert_eq!(one, 2.0 * (56_448.0 + 225_792.0 + 7_840.0));
        let two = forward_per_image(&spec, 2).unwrap();
        // The first conv and the fc grow linearly, the second conv quadratically.
        assert_eq!(
            two,
            2.0 * (2.0 * 56_448.0 + 4.0 * 225_792.0 + 2.0 * 7_840.0)
        );
    }

    #[test]
    fn training_step_counts_the_attack_and_both_passes() {
        assert_eq!(rslad_step(10.0, 1.0, 10), 10.0 + 20.0 + 6.0);
        assert_eq!(forward_per_image(&mnist(Arch::ResNet18), 1), None);
    }
}
