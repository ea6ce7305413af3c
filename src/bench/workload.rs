//! The benchmark workloads, each run through the same code the program trains and attacks with.

use super::flops;
use crate::attack::autoattack::{self, AutoAttackConfig};
use crate::attack::{self, PgdConfig, Selection, Start, Target};
use crate::data::{DataSource, Dataset, DatasetKind, load};
use crate::device::{autodiff_device, compute_device};
use crate::progress::Silent;
use crate::rng::seeded;
use crate::tensor_util::batch_tensors;
use crate::train::{
    BnStats, Method, OptimizerConfig, OptimizerKind, StepBatch, TrainConfig, Trainer,
};
use crate::zoo::{Arch, MicroCnn, Model, ModelSpec};
use anyhow::{Result, bail};
use burn::prelude::*;
use burn::tensor::{Distribution, Int};
use std::time::Instant;

pub use super::timing::{Timing, Warmup, timed_with};

/// ε and step size of the attack workloads (MNIST's standard threat model).
pub const EPSILON: f32 = 0.3;
pub const STEP_SIZE: f32 = 0.01;

/// One thing to time.
#[derive(Clone, Debug, PartialEq)]
pub enum Workload {
    /// f32 matrix product of two `size`×`size` matrices: the machine's attainable rate.
    MatMul { size: usize },
    /// A forward pass in eval mode, no graph.
    Forward { model: ModelChoice },
    /// One PGD step: forward, cross-entropy, input gradient, sign, projection.
    PgdStep { model: ModelChoice },
    /// One RSLAD optimiser step of `student` distilled from the shipped teacher, with a
    /// `steps`-step training attack.
    RsladStep { model: ModelChoice, steps: usize },
    /// The standard AutoAttack on the first `images` embedded MNIST test images, against the
    /// shipped teacher.
    AutoAttack { images: usize },
}

/// A model of the benchmarks: a zoo architecture (micro-cnn at a channel multiplier), or the
/// shipped robust teacher.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ModelChoice {
    Zoo { arch: Arch, width: usize },
    Teacher,
}

impl ModelChoice {
    pub fn name(&self) -> String {
        match self {
            ModelChoice::Zoo { arch, width: 1 } => arch.name().to_string(),
            ModelChoice::Zoo { arch, width } => format!("{}×{width}", arch.name()),
            ModelChoice::Teacher => "teacher".to_string(),
        }
    }

    /// The architecture and channel multiplier (the shipped teacher is a small-cnn).
    fn shape(&self) -> (Arch, usize) {
        match *self {
            ModelChoice::Zoo { arch, width } => (arch, width),
            ModelChoice::Teacher => (Arch::SmallCnn, 1),
        }
    }

    /// The architecture's name as `bench/reference_torch.py` knows it, and its width.
    pub fn torch_shape(&self) -> (&'static str, usize) {
        let (arch, width) = self.shape();
        (arch.name(), width)
    }

    /// Whether the model takes CIFAR-shaped images (3×32×32) rather than MNIST's.
    pub fn is_cifar_scale(&self) -> bool {
        self.shape().0.native_input() == (3, 32)
    }

    /// ε and step size of the attacks timed on this model: MNIST's or CIFAR's defaults
    /// (they do not change the cost).
    fn attack_radius(&self) -> (f32, f32) {
        if self.is_cifar_scale() {
            (8.0 / 255.0, 2.0 / 255.0)
        } else {
            (EPSILON, STEP_SIZE)
        }
    }

    /// The teacher an RSLAD step distils from: the shipped one for MNIST-scale students, a
    /// WideResNet-34-10 (the paper's teacher, initial weights) for CIFAR-scale ones.
    fn teacher(&self, device: &Device) -> Result<Model> {
        if self.is_cifar_scale() {
            Ok(Model::build(
                ModelSpec::native(Arch::Wrn34_10, 10),
                0,
                device,
            )?)
        } else {
            ModelChoice::Teacher.build(device)
        }
    }

    fn forward_flops(&self) -> Option<f64> {
        let (arch, width) = self.shape();
        flops::forward_per_image(&ModelSpec::native(arch, 10), width)
    }

    /// The model on `device` (weights do not change the cost of these dense models, so zoo
    /// models keep their initial ones).
    fn build(&self, device: &Device) -> Result<Model> {
        Ok(match *self {
            ModelChoice::Teacher => crate::teacher::embedded(device)?.0,
            ModelChoice::Zoo {
                arch: Arch::MicroCnn,
                width,
            } => Model::MicroCnn(MicroCnn::with_width(
                ModelSpec::native(Arch::MicroCnn, 10),
                width,
                device,
            )?),
            ModelChoice::Zoo { arch, width: 1 } => {
                Model::build(ModelSpec::native(arch, 10), 0, device)?
            }
            ModelChoice::Zoo { arch, .. } => bail!("only micro-cnn takes a width, not {arch}"),
        })
    }
}

impl Workload {
    pub fn name(&self) -> String {
        match self {
            Workload::MatMul { size } => format!("matmul {size}²"),
            Workload::Forward { .. } => "forward".into(),
            Workload::PgdStep { .. } => "PGD step".into(),
            Workload::RsladStep { steps: 10, .. } => "RSLAD step".into(),
            Workload::RsladStep { steps, .. } => format!("RSLAD step ({steps} att.)"),
            Workload::AutoAttack { images } => format!("AutoAttack {images} img"),
        }
    }

    /// The workload's name on the command line (`bench --only`).
    pub fn slug(&self) -> &'static str {
        match self {
            Workload::MatMul { .. } => "matmul",
            Workload::Forward { .. } => "forward",
            Workload::PgdStep { .. } => "pgd-step",
            Workload::RsladStep { .. } => "rslad-step",
            Workload::AutoAttack { .. } => "autoattack",
        }
    }

    pub fn model(&self) -> Option<ModelChoice> {
        match self {
            Workload::Forward { model }
            | Workload::PgdStep { model }
            | Workload::RsladStep { model, .. } => Some(*model),
            Workload::AutoAttack { .. } => Some(ModelChoice::Teacher),
            Workload::MatMul { .. } => None,
        }
    }

    /// FLOPs of one iteration at `batch` images (None where they are not counted).
    pub fn flops(&self, batch: usize) -> Option<f64> {
        let per_image = match self {
            Workload::MatMul { size } => return Some(2.0 * (*size as f64).powi(3)),
            Workload::Forward { model } => model.forward_flops()?,
            Workload::PgdStep { model } => flops::pgd_step(model.forward_flops()?),
            Workload::RsladStep { model, steps } => flops::rslad_step(
                ModelChoice::Teacher.forward_flops()?,
                model.forward_flops()?,
                *steps,
            ),
            Workload::AutoAttack { .. } => return None,
        };
        Some(per_image * batch as f64)
    }

    /// Images one iteration processes (None for the matrix product).
    pub fn images(&self, batch: usize) -> Option<usize> {
        match self {
            Workload::MatMul { .. } => None,
            Workload::AutoAttack { images } => Some(*images),
            _ => Some(batch),
        }
    }

    /// Sets the workload up and times it: the first call on its own (on a GPU it compiles the
    /// kernels and autotunes every new shape), then warm-up calls (one on the CPU; on a GPU
    /// until the time per call has settled), then repeated for at least `seconds` and three
    /// iterations (AutoAttack: once, reported as both the first call and the steady state).
    pub fn measure(&self, batch: usize, seconds: f64) -> Result<Timing> {
        let mut work = self.prepare(batch)?;
        if matches!(self, Workload::AutoAttack { .. }) {
            let started = Instant::now();
            work();
            super::timing::sync();
            let elapsed = started.elapsed().as_secs_f64();
            return Ok(Timing {
                first_call: elapsed,
                warmup_calls: 0,
                steady: Measurement::single(elapsed),
            });
        }
        Ok(timed_with(seconds, 3, Warmup::for_device(), &mut work))
    }

    fn prepare(&self, batch: usize) -> Result<Box<dyn FnMut()>> {
        let device = compute_device();
        Ok(match self {
            Workload::MatMul { size } => {
                let a = Tensor::<2>::random([*size, *size], Distribution::Default, &device);
                let b = Tensor::<2>::random([*size, *size], Distribution::Default, &device);
                Box::new(move || {
                    let product = a.clone().matmul(b.clone());
                    // Read one value back so the product is really computed.
                    let _ = product.slice([0..1, 0..1]).into_data();
                })
            }
            Workload::Forward { model } => {
                let view = attack::eval_view(&model.build(&autodiff_device())?);
                let (x, _) = inputs(model, batch)?;
                Box::new(move || {
                    let logits = view.forward(x.clone());
                    let _ = logits.slice([0..1, 0..1]).into_data();
                })
            }
            Workload::PgdStep { model } => {
                let view = attack::eval_view(&model.build(&autodiff_device())?);
                let (x, y) = inputs(model, batch)?;
                let target = Target::labels(y);
                let (epsilon, step_size) = model.attack_radius();
                let config = PgdConfig {
                    epsilon,
                    step_size,
                    steps: 1,
                    loss: attack::AttackLoss::CrossEntropy,
                    start: Start::None,
                    selection: Selection::Last,
                };
                let mut rng = seeded(0, 0);
                Box::new(move || {
                    let out = attack::pgd(&view, &x, &target, &config, &mut rng);
                    let _ = out.adversarial.slice([0..1, 0..1, 0..1, 0..1]).into_data();
                })
            }
            Workload::RsladStep { model, steps } => {
                let mut trainer = rslad_trainer(model, *steps, batch)?;
                let (x, y) = inputs(model, batch)?;
                let mut rng = seeded(0, 0);
                Box::new(move || {
                    trainer
                        .update(StepBatch::new(&x, &y), 0, 1.0, 0.002, &mut rng)
                        .expect("the loss of a benchmark step is finite");
                })
            }
            Workload::AutoAttack { images } => {
                let view = attack::eval_view(&ModelChoice::Teacher.build(&autodiff_device())?);
                let data = embedded()?;
                let n = (*images).min(data.test.len());
                let indices: Vec<usize> = (0..n).collect();
                let (x, _) = batch_tensors(&data.test, &indices, &device);
                let labels: Vec<i64> = indices
                    .iter()
                    .map(|&i| i64::from(data.test.labels[i]))
                    .collect();
                let config = AutoAttackConfig::standard(EPSILON);
                Box::new(move || {
                    autoattack::run(&view, &x, &labels, &config, &Silent)
                        .expect("AutoAttack runs on the embedded images");
                })
            }
        })
    }
}

fn embedded() -> Result<Dataset> {
    Ok(load(DatasetKind::Mnist, &DataSource::Embedded)?)
}

/// `batch` embedded MNIST test images (repeated if the subset is smaller) and their labels;
/// for a CIFAR-scale model, seeded random 3×32×32 images (no CIFAR data ships with the
/// program; the cost is the same).
fn inputs(model: &ModelChoice, batch: usize) -> Result<(Tensor<4>, Tensor<1, Int>)> {
    if model.is_cifar_scale() {
        use rand::Rng;
        let mut rng = seeded(0, 1);
        let values: Vec<f32> = (0..batch * 3 * 32 * 32).map(|_| rng.r#gen()).collect();
        let device = compute_device();
        let labels: Vec<i64> = (0..batch as i64).map(|i| i % 10).collect();
        return Ok((
            crate::tensor_util::images(values, batch, 3, 32, 32, &device),
            crate::tensor_util::labels(&labels, &device),
        ));
    }
    let data = embedded()?;
    let indices: Vec<usize> = (0..batch).map(|i| i % data.test.len()).collect();
    Ok(batch_tensors(&data.test, &indices, &compute_device()))
}

/// A trainer for RSLAD (Adam; MNIST's ε and step, or CIFAR's), the student on the autodiff
/// device, and its teacher (the shipped one, or a WideResNet-34-10 for CIFAR-scale students).
pub fn rslad_trainer(model: &ModelChoice, steps: usize, batch: usize) -> Result<Trainer> {
    let device = autodiff_device();
    let student = model.build(&device)?;
    let teacher = model.teacher(&device)?;
    let (epsilon, step_size) = model.attack_radius();
    let config = TrainConfig {
        method: Method::Rslad {
            attack: Method::kl_attack(epsilon, step_size, steps),
            alpha: 5.0 / 6.0,
            scale: 1.0,
            bn_stats: BnStats::Both,
        },
        optimizer: OptimizerConfig {
            kind: OptimizerKind::Adam,
            learning_rate: 0.002,
            weight_decay: 0.0,
            milestones: Vec::new(),
            gamma: 0.1,
        },
        epochs: 1,
        batch_size: batch,
        seed: 0,
        train_n: None,
        eval_n: 0,
        eval_attack: None,
        epsilon_warmup_epochs: 0,
    };
    Ok(Trainer::with_teacher(student, teacher, config))
}

/// The time of one iteration: the median of the timed repetitions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Measurement {
    pub seconds: f64,
    pub reps: usize,
}

impl Measurement {
    fn single(seconds: f64) -> Measurement {
        Measurement { seconds, reps: 1 }
    }
}

/// Runs `work` once to warm up, then until both `seconds` have passed and `min_reps` runs were
/// timed; the median resists the odd slow run on a shared machine.
pub fn timed(seconds: f64, min_reps: usize, work: &mut dyn FnMut()) -> Measurement {
    timed_with(seconds, min_reps, Warmup::Once, work).steady
}
