//! Checks and fixtures shared by the test crates.
// Each test crate uses its own subset of these.
#![allow(dead_code)]

use burn::module::{Module, ModuleMapper, Param};
use burn::prelude::*;
use burn::tensor::TensorData;
use rand::{Rng, SeedableRng, rngs::StdRng};
use rslad_tui::attack::{Classifier, max_linf_distance};
use rslad_tui::checkpoint::named_tensors;
use rslad_tui::data::{self, DataSource, Dataset, DatasetKind};
use rslad_tui::device::autodiff_device;
use rslad_tui::tensor_util::{predictions, to_vec};
use rslad_tui::zoo::{Arch, Model, ModelSpec};
use std::collections::BTreeMap;

/// A 10-class micro-cnn on the autodiff device, its weights drawn from `seed`.
pub fn micro_cnn(seed: u64) -> Model {
    Model::build(
        ModelSpec::native(Arch::MicroCnn, 10),
        seed,
        &autodiff_device(),
    )
    .unwrap()
}

/// The MNIST subset inside the program.
pub fn embedded_mnist() -> Dataset {
    data::load(DatasetKind::Mnist, &DataSource::Embedded).expect("the embedded subset loads")
}

/// The model's predicted class for each image.
pub fn clean_predictions(model: &impl Classifier, x: &Tensor<4>) -> Vec<i64> {
    predictions(model.logits(x.clone()))
}

/// Which images the model gets wrong.
pub fn misclassified(model: &impl Classifier, x: &Tensor<4>, labels: &[i64]) -> Vec<bool> {
    clean_predictions(model, x)
        .iter()
        .zip(labels)
        .map(|(p, y)| p != y)
        .collect()
}

/// Every adversarial point is inside the ε-ball around its natural image and inside [0, 1].
pub fn assert_in_threat_model(adversarial: &Tensor<4>, natural: &Tensor<4>, epsilon: f32) {
    assert_eq!(adversarial.dims(), natural.dims());
    let distance = max_linf_distance(adversarial, natural);
    assert!(
        distance <= epsilon + 1e-6,
        "left the ε-ball: {distance} > {epsilon}"
    );
    assert!(
        to_vec(adversarial.clone())
            .iter()
            .all(|v| (0.0..=1.0).contains(v)),
        "left [0, 1]"
    );
}

/// The model with every parameter moved away from its initial value: weights scaled by
/// U(0.5, 1.5) and shifted by U(-0.02, 0.02), running variances drawn from U(0.5, 1.5). A
/// fresh model has gamma = 1, beta = 0, unit running statistics and, in some architectures,
/// zero biases or a zero last layer; after this every tensor shapes the logits, so a swapped,
/// misnamed or mis-computed tensor shows.
pub fn perturbed(model: Model, seed: u64) -> Model {
    model.map(&mut Perturb {
        rng: StdRng::seed_from_u64(seed),
        path: Vec::new(),
    })
}

struct Perturb {
    rng: StdRng,
    path: Vec<String>,
}

impl ModuleMapper for Perturb {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let variance = self.path.last().is_some_and(|n| n == "running_var");
        let rng = &mut self.rng;
        param.map(|tensor| {
            let dims = tensor.dims();
            let values: Vec<f32> = to_vec(tensor.clone())
                .iter()
                .map(|w| match variance {
                    true => rng.gen_range(0.5..1.5),
                    false => w * rng.gen_range(0.5..1.5) + rng.gen_range(-0.02..0.02),
                })
                .collect();
            Tensor::from_data(TensorData::new(values, dims), &tensor.device())
        })
    }
}

/// Tensors' values by name.
pub type Tensors = BTreeMap<String, Vec<f32>>;

/// A model's batch-norm running statistics (`.running_mean`, `.running_var`) and its other
/// tensors, apart, by name.
pub fn statistics_and_weights(model: &Model) -> (Tensors, Tensors) {
    named_tensors(model)
        .into_iter()
        .map(|(name, (_, values))| (name, values))
        .partition(|(name, _)| name.contains(".running_"))
}
