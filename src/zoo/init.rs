//! Weight initialisation from the project's own seeded generator, and parameter counting.
//!
//! burn draws initial weights from a global generator shared by every thread, so two models
//! built at the same time in different threads would not be reproducible. Here each model's
//! weights come from `rng::seeded(seed, INIT)` in a fixed traversal order instead.

use crate::rng::{seeded, stream};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;
use burn::tensor::TensorData;
use rand::Rng;
use rand::rngs::StdRng;

/// Names of buffers that are state, not trainable parameters.
pub(crate) fn is_running_stat(name: &str) -> bool {
    name == "running_mean" || name == "running_var"
}

/// Re-draws every weight and bias with PyTorch's default rule for convolutions and linear
/// layers: U(−1/√fan_in, 1/√fan_in). Batch-norm scales stay at 1, shifts and running
/// statistics at their initial values.
pub fn seeded_init<M: Module>(model: M, seed: u64) -> M {
    let mut mapper = SeededInit {
        rng: seeded(seed, stream::INIT),
        path: Vec::new(),
        last_fan_in: 1,
    };
    model.map(&mut mapper)
}

struct SeededInit {
    rng: StdRng,
    path: Vec<String>,
    /// Fan-in of the last weight seen, used for the bias that follows it.
    last_fan_in: usize,
}

impl ModuleMapper for SeededInit {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        if !container_type.starts_with("Enum:") {
            self.path.push(name.to_string());
        }
    }

    fn exit_module(&mut self, _name: &str, container_type: &str) {
        if !container_type.starts_with("Enum:") {
            self.path.pop();
        }
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let name = self.path.last().map(String::as_str).unwrap_or("");
        let dims = param.lazy_shape().dims::<D>();
        let fan_in = match (name, D) {
            ("weight", 2) => dims[0], // burn's Linear stores [d_input, d_output]
            ("weight", 4) => dims[1] * dims[2] * dims[3], // conv [out, in/groups, kh, kw]
            ("bias", 1) => self.last_fan_in,
            _ => return param, // batch-norm gamma/beta and running statistics keep their init
        };
        if name == "weight" {
            self.last_fan_in = fan_in;
        }
        let bound = 1.0 / (fan_in as f32).sqrt();
        let count: usize = dims.iter().product();
        let values: Vec<f32> = (0..count)
            .map(|_| self.rng.gen_range(-bound..bound))
            .collect();
        let device = param.lazy_device();
        let tensor = Tensor::<D>::from_data(TensorData::new(values, dims), &device);
        // Models are only initialised fresh from the zoo, so every weight is trainable.
        Param::initialized(param.id, tensor).set_require_grad(true)
    }
}

/// Counts trainable parameters the way PyTorch's `parameters()` does: batch-norm running
/// statistics are buffers, not parameters. Lazy parameters are not initialised by counting.
pub fn count_parameters<M: Module>(model: &M) -> usize {
    let mut counter = ParamCounter {
        path: Vec::new(),
        total: 0,
    };
    model.visit(&mut counter);
    counter.total
}

struct ParamCounter {
    path: Vec<String>,
    total: usize,
}

impl ModuleVisitor for ParamCounter {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if !self.path.last().is_some_and(|name| is_running_stat(name)) {
            self.total += param.lazy_shape().num_elements();
        }
    }
}
