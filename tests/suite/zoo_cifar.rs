//! The CIFAR-scale architectures of the zoo: exact parameter counts against the reference
//! PyTorch models, a forward and backward pass on a small batch, and rejection of bad specs.

use burn::prelude::*;
use burn::tensor::{Gradients, TensorData};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rslad_tui::device::{autodiff_device, compute_device};
use rslad_tui::error::ZooError;
use rslad_tui::zoo::{Arch, MobileNetV2, Model, ModelSpec, ResNet18, WideResNet, count_parameters};

const BATCH: usize = 2;
const CLASSES: usize = 10;

#[test]
fn resnet18_has_the_reference_parameter_count() {
    let model = ResNet18::new(ModelSpec::native(Arch::ResNet18, 10), &compute_device()).unwrap();
    assert_eq!(count_parameters(&model), 11_173_962);
}

#[test]
fn mobilenet_v2_has_the_reference_parameter_count() {
    let spec = ModelSpec::native(Arch::MobileNetV2, 10);
    let model = MobileNetV2::new(spec, &compute_device()).unwrap();
    assert_eq!(count_parameters(&model), 2_296_922);
}

#[test]
fn wrn_34_10_has_the_reference_parameter_count() {
    let spec = ModelSpec::native(Arch::Wrn34_10, 10);
    let model = WideResNet::new(spec, &compute_device()).unwrap();
    assert_eq!(count_parameters(&model), 46_160_474);
}

#[test]
fn registry_counts_match_and_follow_the_number_of_classes() {
    let device = compute_device();
    // Only the final linear layer depends on the classes: 100 classes add 90 × (inputs + 1).
    for (arch, count10, features) in [
        (Arch::ResNet18, 11_173_962, 512),
        (Arch::MobileNetV2, 2_296_922, 1280),
        (Arch::Wrn34_10, 46_160_474, 640),
    ] {
        let entry = rslad_tui::zoo::list(100, &device)
            .into_iter()
            .find(|e| e.arch == arch)
            .expect("architecture listed");
        assert_eq!(entry.parameters, count10 + 90 * (features + 1), "{arch}");
        assert_eq!(entry.input, "3x32x32");
    }
}

#[test]
fn resnet18_forward_backward() {
    let device = autodiff_device();
    let model = Model::build(ModelSpec::native(Arch::ResNet18, CLASSES), 0, &device).unwrap();
    let grads = check_forward_backward(&model, &device);
    let Model::ResNet18(m) = &model else {
        panic!("expected ResNet18")
    };
    assert_nonzero_grad("linear.weight", m.linear.weight.grad(&grads));
    assert_nonzero_grad("conv1.weight", m.conv1.weight.grad(&grads));
}

#[test]
fn mobilenet_v2_forward_backward() {
    let device = autodiff_device();
    let spec = ModelSpec::native(Arch::MobileNetV2, CLASSES);
    let model = Model::build(spec, 0, &device).unwrap();
    let grads = check_forward_backward(&model, &device);
    let Model::MobileNetV2(m) = &model else {
        panic!("expected MobileNetV2")
    };
    assert_nonzero_grad("linear.weight", m.linear.weight.grad(&grads));
    assert_nonzero_grad("conv1.weight", m.conv1.weight.grad(&grads));
    // A depthwise convolution: its gradient must flow through the grouped backward.
    assert_nonzero_grad(
        "layers.1.conv2.weight",
        m.layers[1].conv2.weight.grad(&grads),
    );
}

#[test]
fn wrn_34_10_forward_backward() {
    let device = autodiff_device();
    let model = Model::build(ModelSpec::native(Arch::Wrn34_10, CLASSES), 0, &device).unwrap();
    let grads = check_forward_backward(&model, &device);
    let Model::WideResNet(m) = &model else {
        panic!("expected WideResNet")
    };
    assert_nonzero_grad("fc.weight", m.fc.weight.grad(&grads));
    assert_nonzero_grad("conv1.weight", m.conv1.weight.grad(&grads));
}

#[test]
fn wrong_image_size_is_an_error_not_a_panic() {
    let device = compute_device();
    for arch in [Arch::ResNet18, Arch::MobileNetV2, Arch::Wrn34_10] {
        let spec = ModelSpec {
            image_size: 28,
            ..ModelSpec::native(arch, CLASSES)
        };
        let result = Model::build(spec, 0, &device);
        assert!(
            matches!(result, Err(ZooError::BadConfig { .. })),
            "{arch} accepted 28x28 inputs"
        );
    }
    let one_class = ModelSpec::native(Arch::ResNet18, 1);
    assert!(matches!(
        ResNet18::new(one_class, &device),
        Err(ZooError::BadConfig { .. })
    ));
    let five_channels = ModelSpec {
        in_channels: 5,
        ..ModelSpec::native(Arch::Wrn34_10, CLASSES)
    };
    assert!(matches!(
        WideResNet::new(five_channels, &device),
        Err(ZooError::BadConfig { .. })
    ));
}

#[test]
fn one_channel_input_is_accepted() {
    // Channels come from the spec: a grayscale 32×32 variant builds and runs.
    let device = compute_device();
    let spec = ModelSpec {
        in_channels: 1,
        ..ModelSpec::native(Arch::MobileNetV2, CLASSES)
    };
    let model = Model::build(spec, 0, &device).unwrap();
    let images = Tensor::<4>::zeros([1, 1, 32, 32], &device);
    assert_eq!(model.forward(images).dims(), [1, CLASSES]);
}

/// Forwards two random images, checks the logits, backwards a randomly weighted sum of them
/// and checks the input gradient. (A plain sum can have a zero gradient through a training-mode
/// batch norm, whose output is invariant to a per-channel shift.) Returns the gradients for the caller's parameter checks.
fn check_forward_backward(model: &Model, device: &Device) -> Gradients {
    let mut rng = StdRng::seed_from_u64(7);
    let values: Vec<f32> = (0..BATCH * 3 * 32 * 32).map(|_| rng.r#gen()).collect();
    let images =
        Tensor::<4>::from_data(TensorData::new(values, [BATCH, 3, 32, 32]), device).require_grad();

    let logits = model.forward(images.clone());
    assert_eq!(logits.dims(), [BATCH, CLASSES]);
    assert_all_finite("logits", &logits.to_data().try_to_vec::<f32>().unwrap());

    let weights: Vec<f32> = (0..BATCH * CLASSES).map(|_| rng.r#gen()).collect();
    let weights = Tensor::<2>::from_data(TensorData::new(weights, [BATCH, CLASSES]), device);
    let grads = (logits * weights).sum().backward();
    let input_grad = images.grad(&grads).expect("input gradient");
    assert_eq!(input_grad.dims(), [BATCH, 3, 32, 32]);
    let values = input_grad.to_data().try_to_vec::<f32>().unwrap();
    assert_all_finite("input gradient", &values);
    assert!(
        values.iter().any(|v| *v != 0.0),
        "input gradient is all zero"
    );
    grads
}

fn assert_nonzero_grad<const D: usize>(name: &str, grad: Option<Tensor<D>>) {
    let grad = grad.unwrap_or_else(|| panic!("no gradient for {name}"));
    let values = grad.to_data().try_to_vec::<f32>().unwrap();
    assert_all_finite(name, &values);
    assert!(
        values.iter().any(|v| *v != 0.0),
        "gradient of {name} is all zero"
    );
}

fn assert_all_finite(what: &str, values: &[f32]) {
    assert!(
        values.iter().all(|v| v.is_finite()),
        "{what} has non-finite values"
    );
}

#[test]
fn seeded_build_reaches_weights_inside_block_lists() {
    // Blocks live in `Vec`s and `Option`s; the seeded initialiser must draw their weights too,
    // or two builds from one seed would differ (burn's own init uses a global generator).
    let device = compute_device();
    let spec = ModelSpec::native(Arch::MobileNetV2, CLASSES);
    let weights = |seed| {
        let Model::MobileNetV2(m) = Model::build(spec, seed, &device).unwrap() else {
            panic!("expected MobileNetV2")
        };
        let block = &m.layers[1];
        let shortcut = block.shortcut.as_ref().expect("16 → 24 projection");
        [block.conv2.weight.val(), shortcut.conv.weight.val()]
            .map(|w| w.into_data().try_to_vec::<f32>().unwrap())
    };
    assert_eq!(weights(3), weights(3));
    assert_ne!(weights(3), weights(4));
}
