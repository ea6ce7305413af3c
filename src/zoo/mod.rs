//! The model zoo: one Rust type per architecture, a registry that builds them by name.
//!
//! Every architecture is built from a [`ModelSpec`] (input channels, image size, classes) that
//! its constructor checks, so a shape mistake is a clear error at construction instead of a
//! panic deep inside a convolution.

mod cifar_blocks;
mod init;
mod madry_cnn;
mod micro_cnn;
mod mlp;
mod mobilenet_v2;
mod resnet18;
mod small_cnn;
mod wrn;

pub use init::{InitRule, count_parameters, seeded_init};
pub(crate) use init::{for_each_trainable, is_running_stat};
pub use madry_cnn::MadryCnn;
pub use micro_cnn::MicroCnn;
pub use mlp::Mlp;
pub use mobilenet_v2::MobileNetV2;
pub use resnet18::ResNet18;
pub use small_cnn::SmallCnn;
pub use wrn::WideResNet;

use crate::error::ZooError;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// The architectures of the zoo.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Arch {
    Mlp,
    SmallCnn,
    MadryCnn,
    MicroCnn,
    ResNet18,
    MobileNetV2,
    Wrn34_10,
}

impl Arch {
    pub const ALL: [Arch; 7] = [
        Arch::MicroCnn,
        Arch::Mlp,
        Arch::SmallCnn,
        Arch::MadryCnn,
        Arch::ResNet18,
        Arch::MobileNetV2,
        Arch::Wrn34_10,
    ];

    /// The name used on the command line and in files.
    pub fn name(self) -> &'static str {
        match self {
            Arch::Mlp => "mlp",
            Arch::SmallCnn => "small-cnn",
            Arch::MadryCnn => "madry-cnn",
            Arch::MicroCnn => "micro-cnn",
            Arch::ResNet18 => "resnet18",
            Arch::MobileNetV2 => "mobilenet-v2",
            Arch::Wrn34_10 => "wrn-34-10",
        }
    }

    pub fn from_name(name: &str) -> Result<Arch, ZooError> {
        Arch::ALL
            .into_iter()
            .find(|arch| arch.name() == name)
            .ok_or_else(|| ZooError::UnknownModel {
                name: name.to_string(),
                available: Arch::ALL.map(Arch::name).join(", "),
            })
    }

    /// One line for `zoo` listings.
    pub fn description(self) -> &'static str {
        match self {
            Arch::Mlp => "two hidden layers of 256, a baseline (MNIST scale)",
            Arch::SmallCnn => "TRADES SmallCNN: 4 conv, 3 fc (MNIST scale)",
            Arch::MadryCnn => "Madry et al. MNIST CNN: 2 conv 5x5, fc1024; a teacher",
            Arch::MicroCnn => "tiny conv+BN student for quick demos (MNIST scale)",
            Arch::ResNet18 => "ResNet-18, CIFAR variant (3x3 stem, stride 1)",
            Arch::MobileNetV2 => "MobileNetV2, CIFAR variant",
            Arch::Wrn34_10 => "WideResNet-34-10, the TRADES/RSLAD teacher",
        }
    }

    /// How the architecture's reference code initialises its weights.
    /// Whether the architecture has batch norm (whose running statistics eval mode uses).
    pub fn has_batch_norm(self) -> bool {
        match self {
            Arch::MicroCnn | Arch::ResNet18 | Arch::MobileNetV2 | Arch::Wrn34_10 => true,
            Arch::Mlp | Arch::SmallCnn | Arch::MadryCnn => false,
        }
    }

    pub fn init_rule(self) -> InitRule {
        match self {
            Arch::SmallCnn => InitRule::TradesSmallCnn,
            Arch::Wrn34_10 => InitRule::TradesWideResNet,
            Arch::MadryCnn => InitRule::MadryTensorFlow,
            Arch::Mlp | Arch::MicroCnn | Arch::ResNet18 | Arch::MobileNetV2 => {
                InitRule::PyTorchDefault
            }
        }
    }

    /// The data scale the architecture was designed for: (channels, image size).
    pub fn native_input(self) -> (usize, usize) {
        match self {
            Arch::Mlp | Arch::SmallCnn | Arch::MadryCnn | Arch::MicroCnn => (1, 28),
            Arch::ResNet18 | Arch::MobileNetV2 | Arch::Wrn34_10 => (3, 32),
        }
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What fixes a model's shapes: its architecture, its input and its number of classes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelSpec {
    pub arch: Arch,
    pub in_channels: usize,
    pub image_size: usize,
    pub num_classes: usize,
}

impl ModelSpec {
    /// The architecture at its native input size.
    pub fn native(arch: Arch, num_classes: usize) -> ModelSpec {
        let (in_channels, image_size) = arch.native_input();
        ModelSpec {
            arch,
            in_channels,
            image_size,
            num_classes,
        }
    }

    /// The common checks of every architecture; each constructor adds its own.
    pub(crate) fn check(&self, allowed_sizes: &[usize]) -> Result<(), ZooError> {
        let bad = |expected: String, got: String| ZooError::BadConfig {
            arch: self.arch.name(),
            expected,
            got,
        };
        if self.num_classes < 2 {
            return Err(bad(
                "at least 2 classes".into(),
                format!("{} classes", self.num_classes),
            ));
        }
        if !(1..=4).contains(&self.in_channels) {
            return Err(bad(
                "1 to 4 input channels".into(),
                format!("{} channels", self.in_channels),
            ));
        }
        if !allowed_sizes.contains(&self.image_size) {
            let sizes: Vec<String> = allowed_sizes.iter().map(|s| format!("{s}x{s}")).collect();
            return Err(bad(
                format!("input images of {}", sizes.join(" or ")),
                format!("{0}x{0}", self.image_size),
            ));
        }
        Ok(())
    }
}

/// Any model of the zoo. Training, attacks and checkpoints work on this one type.
// Variants hold only handles to tensors; their size difference costs nothing that matters.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Model {
    Mlp(Mlp),
    SmallCnn(SmallCnn),
    MadryCnn(MadryCnn),
    MicroCnn(MicroCnn),
    ResNet18(ResNet18),
    MobileNetV2(MobileNetV2),
    WideResNet(WideResNet),
}

impl Model {
    /// Builds the architecture of `spec` with weights drawn from the project's seeded generator.
    pub fn build(spec: ModelSpec, seed: u64, device: &Device) -> Result<Model, ZooError> {
        let model = Model::build_uninitialized(spec, device)?;
        Ok(seeded_init(model, seed, spec.arch.init_rule()))
    }

    /// Logits `[batch, classes]` for images `[batch, channels, size, size]` in [0, 1].
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        // Every training and attack step starts with a forward pass: the pool's workers, asleep
        // after a pause, wake for it and stay awake through the step.
        crate::pool::rearm();
        match self {
            Model::Mlp(m) => m.forward(images),
            Model::SmallCnn(m) => m.forward(images),
            Model::MadryCnn(m) => m.forward(images),
            Model::MicroCnn(m) => m.forward(images),
            Model::ResNet18(m) => m.forward(images),
            Model::MobileNetV2(m) => m.forward(images),
            Model::WideResNet(m) => m.forward(images),
        }
    }

    /// Logits in evaluation mode (batch norm on running statistics, no autodiff graph).
    pub fn valid_forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.valid().forward(images)
    }

    pub fn spec(&self) -> ModelSpec {
        match self {
            Model::Mlp(m) => m.spec,
            Model::SmallCnn(m) => m.spec,
            Model::MadryCnn(m) => m.spec,
            Model::MicroCnn(m) => m.spec,
            Model::ResNet18(m) => m.spec,
            Model::MobileNetV2(m) => m.spec,
            Model::WideResNet(m) => m.spec,
        }
    }

    /// Trainable parameters (batch-norm running statistics excluded, as PyTorch counts them).
    pub fn parameter_count(&self) -> usize {
        count_parameters(self)
    }
}

/// Builds a model by its command-line name at the architecture's native input size.
pub fn build_by_name(
    name: &str,
    num_classes: usize,
    seed: u64,
    device: &Device,
) -> Result<Model, ZooError> {
    let arch = Arch::from_name(name)?;
    Model::build(ModelSpec::native(arch, num_classes), seed, device)
}

/// One row of the `zoo` listing.
pub struct ZooEntry {
    pub arch: Arch,
    pub input: String,
    pub parameters: usize,
}

/// The zoo with parameter counts for `num_classes` classes, built lazily (no weights drawn).
pub fn list(num_classes: usize, device: &Device) -> Vec<ZooEntry> {
    Arch::ALL
        .into_iter()
        .filter_map(|arch| {
            let spec = ModelSpec::native(arch, num_classes);
            let model = Model::build_uninitialized(spec, device).ok()?;
            Some(ZooEntry {
                arch,
                input: format!(
                    "{}x{}x{}",
                    spec.in_channels, spec.image_size, spec.image_size
                ),
                parameters: model.parameter_count(),
            })
        })
        .collect()
}

impl Model {
    /// The architecture with burn's lazy parameters, for counting or loading without drawing
    /// random weights.
    pub fn build_uninitialized(spec: ModelSpec, device: &Device) -> Result<Model, ZooError> {
        Ok(match spec.arch {
            Arch::Mlp => Model::Mlp(Mlp::new(spec, device)?),
            Arch::SmallCnn => Model::SmallCnn(SmallCnn::new(spec, device)?),
            Arch::MadryCnn => Model::MadryCnn(MadryCnn::new(spec, device)?),
            Arch::MicroCnn => Model::MicroCnn(MicroCnn::new(spec, device)?),
            Arch::ResNet18 => Model::ResNet18(ResNet18::new(spec, device)?),
            Arch::MobileNetV2 => Model::MobileNetV2(MobileNetV2::new(spec, device)?),
            Arch::Wrn34_10 => Model::WideResNet(WideResNet::new(spec, device)?),
        })
    }
}
