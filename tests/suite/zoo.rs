//! The MNIST-scale zoo: shapes checked at construction, the published sizes, the reference
//! initialisations, and the registry by name.

use rslad_tui::checkpoint::named_tensors;
use rslad_tui::device::{autodiff_device, compute_device};
use rslad_tui::error::ZooError;
use rslad_tui::tensor_util::{images, to_vec};
use rslad_tui::zoo::{self, Arch, Model, ModelSpec};

#[test]
fn every_mnist_scale_model_maps_a_batch_to_finite_logits() {
    for arch in [Arch::Mlp, Arch::SmallCnn, Arch::MadryCnn, Arch::MicroCnn] {
        let model = Model::build(ModelSpec::native(arch, 10), 0, &autodiff_device()).unwrap();
        let x = images(vec![0.5; 3 * 784], 3, 1, 28, 28, &compute_device());
        let logits = model.valid_forward(x);
        assert_eq!(logits.dims(), [3, 10], "{arch}");
        assert!(to_vec(logits).iter().all(|v| v.is_finite()), "{arch}");
    }
}

#[test]
fn published_and_known_parameter_counts() {
    let count = |arch| {
        Model::build(ModelSpec::native(arch, 10), 0, &autodiff_device())
            .unwrap()
            .parameter_count()
    };
    // Madry et al.: 5·5·32+32 + 5·5·32·64+64 + 3136·1024+1024 + 1024·10+10.
    assert_eq!(count(Arch::MadryCnn), 3_274_634);
    // TRADES SmallCNN: 320 + 9248 + 18496 + 36928 + 1024·200+200 + 200·200+200 + 200·10+10.
    assert_eq!(count(Arch::SmallCnn), 312_202);
    // micro-cnn: 72 + 16 (bn) + 1152 + 32 (bn) + 784·10+10.
    assert_eq!(count(Arch::MicroCnn), 9_122);
}

#[test]
fn wrong_configurations_are_errors_not_panics() {
    let bad = [
        ModelSpec {
            image_size: 20,
            ..ModelSpec::native(Arch::SmallCnn, 10)
        },
        ModelSpec {
            num_classes: 1,
            ..ModelSpec::native(Arch::MadryCnn, 10)
        },
        ModelSpec {
            in_channels: 0,
            ..ModelSpec::native(Arch::Mlp, 10)
        },
    ];
    for spec in bad {
        match Model::build(spec, 0, &autodiff_device()) {
            Err(ZooError::BadConfig {
                arch,
                expected,
                got,
            }) => {
                assert_eq!(arch, spec.arch.name());
                assert!(!expected.is_empty() && !got.is_empty());
            }
            other => panic!("{spec:?} was not refused: {:?}", other.map(|_| ())),
        }
    }
    assert!(matches!(
        zoo::build_by_name("lenet", 10, 0, &autodiff_device()),
        Err(ZooError::UnknownModel { .. })
    ));
}

#[test]
fn the_registry_builds_every_name_it_lists() {
    for arch in Arch::ALL {
        assert_eq!(Arch::from_name(arch.name()).unwrap(), arch);
    }
    let listed: Vec<Arch> = zoo::list(10, &compute_device())
        .iter()
        .map(|e| e.arch)
        .collect();
    assert_eq!(listed, Arch::ALL.to_vec());
}

fn std_dev(values: &[f32]) -> f32 {
    let mean = values.iter().sum::<f32>() / values.len() as f32;
    (values.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / values.len() as f32).sqrt()
}

#[test]
fn initialisation_follows_each_reference() {
    let tensors = |arch| {
        named_tensors(&Model::build(ModelSpec::native(arch, 10), 3, &autodiff_device()).unwrap())
    };

    // TRADES SmallCNN: conv N(0, 2/fan_in), zero conv bias, zero last layer.
    let small = tensors(Arch::SmallCnn);
    let conv3 = &small["conv3.weight"].1;
    let expected = (2.0f32 / (32.0 * 9.0)).sqrt();
    assert!(
        (std_dev(conv3) / expected - 1.0).abs() < 0.05,
        "conv3 std {}",
        std_dev(conv3)
    );
    assert!(small["conv3.bias"].1.iter().all(|&b| b == 0.0));
    assert!(small["fc3.weight"].1.iter().all(|&w| w == 0.0));
    assert!(small["fc3.bias"].1.iter().all(|&b| b == 0.0));
    assert!(small["fc1.weight"].1.iter().any(|&w| w != 0.0));

    // Madry (TensorFlow): truncated normal σ 0.1 within 2σ, biases 0.1.
    let madry = tensors(Arch::MadryCnn);
    assert!(madry["fc1.weight"].1.iter().all(|w| w.abs() <= 0.2));
    assert!(madry["conv2.bias"].1.iter().all(|&b| b == 0.1));

    // PyTorch default: U(±1/√fan_in); batch norm starts at γ = 1, β = 0.
    let micro = tensors(Arch::MicroCnn);
    let bound = 1.0 / 9.0f32.sqrt();
    assert!(micro["conv1.weight"].1.iter().all(|w| w.abs() <= bound));
    assert!(micro["bn1.gamma"].1.iter().all(|&g| g == 1.0));

    // The same seed gives the same weights; another seed, others.
    assert_eq!(tensors(Arch::SmallCnn), small);
    let other = named_tensors(
        &Model::build(ModelSpec::native(Arch::SmallCnn, 10), 4, &autodiff_device()).unwrap(),
    );
    assert_ne!(other, small);
}
