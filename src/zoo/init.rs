//! Weight initialisation from the project's own seeded generator, parameter counting, and the
//! visit of every trainable parameter by its module path ([`for_each_trainable`]).
//!
//! burn draws initial weights from a global generator shared by every thread, so two models
//! built at the same time in different threads would not be reproducible. Here each model's
//! weights come from `rng::seeded(seed, INIT)` in a fixed traversal order instead, following
//! the initialisation of each architecture's reference code ([`InitRule`]).

use crate::rng::{seeded, stream};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::prelude::*;
use burn::tensor::TensorData;
use rand::Rng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};

/// Names of buffers that are state, not trainable parameters.
pub(crate) fn is_running_stat(name: &str) -> bool {
    name == "running_mean" || name == "running_var"
}

/// How an architecture's reference code initialises its weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitRule {
    /// PyTorch's defaults: weights and biases U(−1/√fan_in, 1/√fan_in) (kuangliu's ResNet-18
    /// and MobileNetV2, and our own MLP and micro-cnn).
    PyTorchDefault,
    /// TRADES `small_cnn.py`: convolutions N(0, 2/fan_in) with zero bias, linear layers
    /// PyTorch's default except the last (`fc3`), which starts at zero.
    TradesSmallCnn,
    /// TRADES `wideresnet.py`: convolutions N(0, 2/(k²·out_channels)), linear bias zero.
    TradesWideResNet,
    /// Madry et al.'s TensorFlow MNIST model: weights from a normal with σ = 0.1 truncated at
    /// 2σ, biases 0.1.
    MadryTensorFlow,
}

/// Re-draws every weight and bias following `rule`. Batch-norm scales stay at 1, shifts and
/// running statistics at their initial values.
pub fn seeded_init<M: Module>(model: M, seed: u64, rule: InitRule) -> M {
    let mut mapper = SeededInit {
        rng: seeded(seed, stream::INIT),
        rule,
        path: Vec::new(),
        last_fan_in: 1,
    };
    model.map(&mut mapper)
}

struct SeededInit {
    rng: StdRng,
    rule: InitRule,
    path: Vec<String>,
    /// Fan-in of the last weight seen, used for the bias that follows it.
    last_fan_in: usize,
}

/// What to draw one tensor from.
enum Draw {
    Uniform(f32),
    Normal(f32),
    TruncatedNormal(f32),
    Constant(f32),
}

impl SeededInit {
    fn layer_name(&self) -> &str {
        let len = self.path.len();
        if len >= 2 { &self.path[len - 2] } else { "" }
    }

    /// The distribution of a weight (rank 2 or 4) or bias, or `None` to keep burn's value.
    fn draw_for(&mut self, name: &str, dims: &[usize]) -> Option<Draw> {
        let default_bound = |fan_in: usize| 1.0 / (fan_in as f32).sqrt();
        match (name, dims.len()) {
            ("weight", 4) => {
                // conv [out, in/groups, kh, kw]
                let fan_in = dims[1] * dims[2] * dims[3];
                self.last_fan_in = fan_in;
                Some(match self.rule {
                    InitRule::PyTorchDefault => Draw::Uniform(default_bound(fan_in)),
                    InitRule::TradesSmallCnn => Draw::Normal((2.0 / fan_in as f32).sqrt()),
                    InitRule::TradesWideResNet => {
                        let fan_out = dims[0] * dims[2] * dims[3];
                        Draw::Normal((2.0 / fan_out as f32).sqrt())
                    }
                    InitRule::MadryTensorFlow => Draw::TruncatedNormal(0.1),
                })
            }
            ("weight", 2) => {
                // burn's Linear stores [d_input, d_output]
                let fan_in = dims[0];
                self.last_fan_in = fan_in;
                Some(match self.rule {
                    InitRule::TradesSmallCnn if self.layer_name() == "fc3" => Draw::Constant(0.0),
                    InitRule::MadryTensorFlow => Draw::TruncatedNormal(0.1),
                    _ => Draw::Uniform(default_bound(fan_in)),
                })
            }
            ("bias", 1) => {
                let is_conv = self.layer_name().starts_with("conv");
                Some(match self.rule {
                    InitRule::PyTorchDefault => Draw::Uniform(default_bound(self.last_fan_in)),
                    InitRule::TradesSmallCnn if is_conv || self.layer_name() == "fc3" => {
                        Draw::Constant(0.0)
                    }
                    InitRule::TradesSmallCnn => Draw::Uniform(default_bound(self.last_fan_in)),
                    InitRule::TradesWideResNet => Draw::Constant(0.0),
                    InitRule::MadryTensorFlow => Draw::Constant(0.1),
                })
            }
            // batch-norm gamma/beta and running statistics keep their init
            _ => None,
        }
    }

    fn sample(&mut self, draw: &Draw) -> f32 {
        match *draw {
            Draw::Uniform(bound) => self.rng.gen_range(-bound..bound),
            Draw::Normal(std) => std * normal(&mut self.rng),
            Draw::TruncatedNormal(std) => loop {
                let z = normal(&mut self.rng);
                if z.abs() <= 2.0 {
                    break std * z;
                }
            },
            Draw::Constant(value) => value,
        }
    }
}

fn normal(rng: &mut StdRng) -> f32 {
    let z: f64 = StandardNormal.sample(rng);
    z as f32
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
        let name = self.path.last().cloned().unwrap_or_default();
        let dims = param.lazy_shape().dims::<D>();
        let Some(draw) = self.draw_for(&name, &dims) else {
            return param;
        };
        let count: usize = dims.iter().product();
        let values: Vec<f32> = (0..count).map(|_| self.sample(&draw)).collect();
        let device = param.lazy_device();
        let tensor = Tensor::<D>::from_data(TensorData::new(values, dims), &device);
        // Models are only initialised fresh from the zoo, so every weight is trainable.
        Param::initialized(param.id, tensor).set_require_grad(true)
    }
}

/// Counts trainable parameters the way PyTorch's `parameters()` does: batch-norm running
/// statistics are buffers, not parameters. Lazy parameters are not initialised by counting.
pub fn count_parameters<M: Module>(model: &M) -> usize {
    let mut total = 0;
    for_each_trainable(model, |_, _, elements| total += elements);
    total
}

/// Calls `visit(path, id, elements)` for each trainable parameter of `module` in module order,
/// `path` its dotted module path (`conv1.weight`); batch-norm running statistics are buffers,
/// not parameters, and are left out. Lazy parameters are not initialised by visiting.
pub(crate) fn for_each_trainable<M: Module>(module: &M, visit: impl FnMut(&str, ParamId, usize)) {
    struct Trainable<F> {
        path: Vec<String>,
        visit: F,
    }

    impl<F: FnMut(&str, ParamId, usize)> ModuleVisitor for Trainable<F> {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }

        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }

        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if !self.path.last().is_some_and(|name| is_running_stat(name)) {
                let elements = param.lazy_shape().num_elements();
                (self.visit)(&self.path.join("."), param.id, elements);
            }
        }
    }

    module.visit(&mut Trainable {
        path: Vec::new(),
        visit,
    });
}
