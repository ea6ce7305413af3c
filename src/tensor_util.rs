//! Small conversions between tensors and plain vectors, in one place.

use burn::prelude::*;
use burn::tensor::{Int, TensorData};

/// A float tensor's values, in row-major order.
pub fn to_vec<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("a float tensor converts to f32 values")
}

/// Images `[n, c, h, w]` from NCHW values in [0, 1].
pub fn images(
    values: Vec<f32>,
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    device: &Device,
) -> Tensor<4> {
    Tensor::from_data(TensorData::new(values, [n, c, h, w]), device)
}

/// Class labels as an integer tensor `[n]`.
pub fn labels(values: &[i64], device: &Device) -> Tensor<1, Int> {
    Tensor::from_data(TensorData::new(values.to_vec(), [values.len()]), device)
}

/// Row indices as an integer tensor `[n]`, for `select`.
pub fn row_indices(rows: &[usize], device: &Device) -> Tensor<1, Int> {
    let values: Vec<i64> = rows.iter().map(|&i| i as i64).collect();
    labels(&values, device)
}

/// The arg-max class of each row of `[n, classes]` logits.
pub fn predictions(logits: Tensor<2>) -> Vec<i64> {
    int_to_vec(logits.argmax(1))
}

/// An integer tensor's values.
pub fn int_to_vec<const D: usize>(tensor: Tensor<D, Int>) -> Vec<i64> {
    tensor
        .into_data()
        .convert::<i64>()
        .try_into_vec::<i64>()
        .expect("an int tensor converts to i64 values")
}

/// A per-sample boolean mask `[n]` broadcast to the shape of an image batch `[n, c, h, w]`.
pub fn sample_mask(mask: &[bool], dims: [usize; 4], device: &Device) -> Tensor<4, Bool> {
    let n = mask.len();
    let per_sample: Tensor<1, Bool> =
        Tensor::from_data(TensorData::new(mask.to_vec(), [n]), device);
    per_sample.reshape([n, 1, 1, 1]).expand(dims)
}

/// The images and labels of a batch as plain tensors.
pub fn batch_tensors(
    set: &crate::data::ImageSet,
    indices: &[usize],
    device: &Device,
) -> (Tensor<4>, Tensor<1, burn::tensor::Int>) {
    let (pixels, targets) = set.batch(indices);
    let x = images(
        pixels,
        indices.len(),
        set.channels,
        set.height,
        set.width,
        device,
    );
    (x, labels(&targets, device))
}

/// Whether every float tensor of `module` (parameters and batch-norm running statistics) is
/// finite, with one read-back for the whole module: `x − x` is 0 for every finite `x` and NaN
/// for NaN and ±∞, so the sum of all those differences is 0 exactly when every value is finite.
pub fn all_finite<M: burn::module::Module>(module: &M) -> bool {
    struct Check {
        sum: Option<Tensor<1>>,
    }
    impl burn::module::ModuleVisitor for Check {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            let values = param.val();
            let zero_or_nan = (values.clone() - values).sum();
            self.sum = Some(match self.sum.take() {
                Some(sum) => sum + zero_or_nan,
                None => zero_or_nan,
            });
        }
    }
    let mut check = Check { sum: None };
    module.valid().visit(&mut check);
    check.sum.is_none_or(|sum| to_vec(sum)[0] == 0.0)
}
