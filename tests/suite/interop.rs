//! PyTorch interoperability: every zoo architecture survives export → import bit for bit, the
//! exported file has exactly the reference PyTorch `state_dict` keys and layouts, and the
//! import refuses, naming the tensor, anything that does not fit.

use crate::common;

use burn::prelude::*;
use rslad_tui::checkpoint;
use rslad_tui::cli::interop::{self as interop_cli, ExportArgs, ImportArgs};
use rslad_tui::device::{autodiff_device, compute_device};
use rslad_tui::error::CheckpointError;
use rslad_tui::interop::{LayerKind, export_pytorch, import_pytorch, pytorch_layout, pytorch_name};
use rslad_tui::tensor_util::{images, to_vec};
use rslad_tui::zoo::{Arch, Model, ModelSpec};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const CLASSES: usize = 10;

fn perturbed_model(spec: ModelSpec, device: &Device) -> Model {
    let model = Model::build(spec, 3, device).expect("the zoo builds its own spec");
    common::perturbed(model, 11)
}

/// Two fixed images of the spec's shape.
fn probe(spec: ModelSpec) -> Tensor<4> {
    let (c, s) = (spec.in_channels, spec.image_size);
    let values: Vec<f32> = (0..2 * c * s * s).map(|i| (i % 89) as f32 / 89.0).collect();
    images(values, 2, c, s, s, &compute_device())
}

/// The file's tensors by name: dtype, shape, raw bytes.
fn read_file(path: &Path) -> BTreeMap<String, (Dtype, Vec<usize>, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    file.tensors()
        .into_iter()
        .map(|(name, view)| {
            (
                name,
                (view.dtype(), view.shape().to_vec(), view.data().to_vec()),
            )
        })
        .collect()
}

fn write_file(path: &Path, tensors: &BTreeMap<String, (Dtype, Vec<usize>, Vec<u8>)>) {
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(name, (dtype, shape, bytes))| {
            (
                name.clone(),
                TensorView::new(*dtype, shape.clone(), bytes).unwrap(),
            )
        })
        .collect();
    std::fs::write(path, safetensors::serialize(views, &None).unwrap()).unwrap();
}

fn f32_values(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// Export, import, and compare: logits bit for bit, every tensor, and the file's keys and
/// shapes against `reference_keys` (the PyTorch `state_dict` keys, built independently of the
/// mapping code).
/// Returns the exported file (in a folder that lives as long as the returned guard).
fn round_trip(
    spec: ModelSpec,
    device: &Device,
    reference_keys: Option<BTreeSet<String>>,
) -> (tempfile::TempDir, std::path::PathBuf) {
    let arch = spec.arch;
    let model = perturbed_model(spec, device);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weights.safetensors");
    export_pytorch(&model, &path).expect("export works");

    let imported = import_pytorch(&path, spec, &compute_device()).expect("import works");
    let before = to_vec(model.valid().forward(probe(spec)));
    let after = to_vec(imported.forward(probe(spec)));
    assert!(before.iter().all(|v| v.is_finite()), "{arch}: logits");
    assert_eq!(before, after, "{arch}: logits changed in the round trip");
    let original = checkpoint::named_tensors(&model);
    assert_eq!(
        original,
        checkpoint::named_tensors(&imported),
        "{arch}: a tensor changed in the round trip"
    );

    // The file holds each tensor under its PyTorch name in PyTorch's layout.
    let file = read_file(&path);
    for mapping in pytorch_layout(&model).unwrap() {
        let (dtype, shape, bytes) = &file[&mapping.pytorch_name];
        assert_eq!(*dtype, Dtype::F32, "{}", mapping.pytorch_name);
        assert_eq!(*shape, mapping.pytorch_shape, "{}", mapping.pytorch_name);
        let (burn_shape, burn_values) = &original[&mapping.burn_name];
        let values = f32_values(bytes);
        if mapping.layer == LayerKind::Linear && shape.len() == 2 {
            let [out, inp] = [shape[0], shape[1]];
            assert_eq!(*burn_shape, vec![inp, out], "{}", mapping.burn_name);
            for o in 0..out {
                for i in 0..inp {
                    assert_eq!(values[o * inp + i], burn_values[i * out + o]);
                }
            }
        } else {
            assert_eq!(shape, burn_shape, "{}", mapping.pytorch_name);
            assert_eq!(values, *burn_values, "{}", mapping.pytorch_name);
        }
    }
    for (name, (dtype, shape, bytes)) in &file {
        if name.ends_with(".num_batches_tracked") {
            assert_eq!(
                (*dtype, shape.len(), bytes.as_slice()),
                (Dtype::I64, 0, &[0u8; 8][..])
            );
        }
    }
    if let Some(reference) = reference_keys {
        let keys: BTreeSet<String> = file.keys().cloned().collect();
        let missing: Vec<_> = reference.difference(&keys).collect();
        let extra: Vec<_> = keys.difference(&reference).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{arch}: keys missing from the export {missing:?}, not in the reference {extra:?}"
        );
    }
    (dir, path)
}

/// The keys of a PyTorch `BatchNorm2d` at `module`.
fn bn_keys(module: &str) -> Vec<String> {
    [
        "weight",
        "bias",
        "running_mean",
        "running_var",
        "num_batches_tracked",
    ]
    .iter()
    .map(|leaf| format!("{module}.{leaf}"))
    .collect()
}

fn keys(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// kuangliu/pytorch-cifar `ResNet18().state_dict().keys()`.
fn kuangliu_resnet18_keys() -> BTreeSet<String> {
    let mut k = keys(&["conv1.weight", "linear.weight", "linear.bias"]);
    k.extend(bn_keys("bn1"));
    for layer in 1..=4 {
        for block in 0..2 {
            let p = format!("layer{layer}.{block}");
            k.push(format!("{p}.conv1.weight"));
            k.push(format!("{p}.conv2.weight"));
            k.extend(bn_keys(&format!("{p}.bn1")));
            k.extend(bn_keys(&format!("{p}.bn2")));
            // `if stride != 1 or in_planes != planes`: the first block of layers 2–4.
            if layer > 1 && block == 0 {
                k.push(format!("{p}.shortcut.0.weight"));
                k.extend(bn_keys(&format!("{p}.shortcut.1")));
            }
        }
    }
    k.into_iter().collect()
}

/// kuangliu/pytorch-cifar `MobileNetV2().state_dict().keys()`.
fn kuangliu_mobilenet_v2_keys() -> BTreeSet<String> {
    let cfg = [
        (1, 16, 1, 1),
        (6, 24, 2, 1),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ];
    let mut k = keys(&[
        "conv1.weight",
        "conv2.weight",
        "linear.weight",
        "linear.bias",
    ]);
    k.extend(bn_keys("bn1"));
    k.extend(bn_keys("bn2"));
    let (mut index, mut in_planes) = (0, 32);
    for (_, out_planes, blocks, stride) in cfg {
        for b in 0..blocks {
            let stride = if b == 0 { stride } else { 1 };
            let p = format!("layers.{index}");
            for i in 1..=3 {
                k.push(format!("{p}.conv{i}.weight"));
                k.extend(bn_keys(&format!("{p}.bn{i}")));
            }
            if stride == 1 && in_planes != out_planes {
                k.push(format!("{p}.shortcut.0.weight"));
                k.extend(bn_keys(&format!("{p}.shortcut.1")));
            }
            index += 1;
            in_planes = out_planes;
        }
    }
    k.into_iter().collect()
}

/// TRADES `WideResNet(depth=34, widen_factor=10).state_dict().keys()` without the unused
/// `sub_block1`.
fn trades_wrn_keys() -> BTreeSet<String> {
    let mut k = keys(&["conv1.weight", "fc.weight", "fc.bias"]);
    k.extend(bn_keys("bn1"));
    for group in 1..=3 {
        for block in 0..5 {
            let p = format!("block{group}.layer.{block}");
            k.push(format!("{p}.conv1.weight"));
            k.push(format!("{p}.conv2.weight"));
            k.extend(bn_keys(&format!("{p}.bn1")));
            k.extend(bn_keys(&format!("{p}.bn2")));
            // `equalInOut` is false for the first block of each group (16→160, 160→320, ...).
            if block == 0 {
                k.push(format!("{p}.convShortcut.weight"));
            }
        }
    }
    k.into_iter().collect()
}

/// TRADES `SmallCNN().state_dict().keys()`.
fn trades_small_cnn_keys() -> BTreeSet<String> {
    let mut k = Vec::new();
    for i in 1..=4 {
        k.push(format!("feature_extractor.conv{i}.weight"));
        k.push(format!("feature_extractor.conv{i}.bias"));
    }
    for i in 1..=3 {
        k.push(format!("classifier.fc{i}.weight"));
        k.push(format!("classifier.fc{i}.bias"));
    }
    k.into_iter().collect()
}

#[test]
fn micro_cnn_round_trips_bit_identically() {
    let mut expected = keys(&["conv1.weight", "conv2.weight", "fc.weight", "fc.bias"]);
    expected.extend(bn_keys("bn1"));
    expected.extend(bn_keys("bn2"));
    round_trip(
        ModelSpec::native(Arch::MicroCnn, CLASSES),
        &autodiff_device(),
        Some(expected.into_iter().collect()),
    );
}

#[test]
fn mlp_round_trips_bit_identically() {
    let expected = ["fc1", "fc2", "fc3"]
        .iter()
        .flat_map(|l| [format!("{l}.weight"), format!("{l}.bias")])
        .collect();
    round_trip(
        ModelSpec::native(Arch::Mlp, CLASSES),
        &autodiff_device(),
        Some(expected),
    );
}

#[test]
fn madry_cnn_round_trips_bit_identically() {
    let expected = ["conv1", "conv2", "fc1", "fc2"]
        .iter()
        .flat_map(|l| [format!("{l}.weight"), format!("{l}.bias")])
        .collect();
    round_trip(
        ModelSpec::native(Arch::MadryCnn, CLASSES),
        &autodiff_device(),
        Some(expected),
    );
}

#[test]
fn small_cnn_round_trips_with_the_trades_state_dict_keys() {
    round_trip(
        ModelSpec::native(Arch::SmallCnn, CLASSES),
        &autodiff_device(),
        Some(trades_small_cnn_keys()),
    );
}

#[test]
fn small_cnn_linear_weights_are_written_out_by_in() {
    let spec = ModelSpec::native(Arch::SmallCnn, CLASSES);
    let model = perturbed_model(spec, &compute_device());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("small.safetensors");
    export_pytorch(&model, &path).unwrap();
    let file = read_file(&path);
    let shape = |name: &str| file[name].1.clone();
    // 28 → conv 26 → conv 24 → pool 12 → conv 10 → conv 8 → pool 4: fc1 sees 64·4·4 = 1024.
    assert_eq!(shape("classifier.fc1.weight"), [200, 1024]);
    assert_eq!(shape("classifier.fc2.weight"), [200, 200]);
    assert_eq!(shape("classifier.fc3.weight"), [10, 200]);
    assert_eq!(shape("classifier.fc3.bias"), [10]);
    assert_eq!(shape("feature_extractor.conv1.weight"), [32, 1, 3, 3]);
    assert_eq!(shape("feature_extractor.conv4.weight"), [64, 64, 3, 3]);
    // Row o of the PyTorch weight is the weight vector of output o: the logit of class o on
    // the fc3 input h is bias[o] + Σ_i W[o, i] h[i]. Check this against burn's [in, out]
    // tensor for one entry picked by hand.
    let burn = checkpoint::named_tensors(&model);
    let (burn_shape, burn_values) = &burn["fc3.weight"];
    assert_eq!(*burn_shape, vec![200, 10]);
    let pytorch = f32_values(&file["classifier.fc3.weight"].2);
    assert_eq!(pytorch[3 * 200 + 17], burn_values[17 * 10 + 3]);
}

#[test]
fn resnet18_round_trips_with_the_kuangliu_state_dict_keys() {
    let reference = kuangliu_resnet18_keys();
    // 1 + 5 stem, 8 blocks × 12, 3 projection shortcuts × 6, linear 2.
    assert_eq!(reference.len(), 122);
    assert!(reference.contains("layer2.0.shortcut.0.weight"));
    assert!(reference.contains("layer2.0.shortcut.1.running_var"));
    round_trip(
        ModelSpec::native(Arch::ResNet18, CLASSES),
        &compute_device(),
        Some(reference),
    );
}

#[test]
fn mobilenet_v2_round_trips_with_the_kuangliu_state_dict_keys() {
    round_trip(
        ModelSpec::native(Arch::MobileNetV2, CLASSES),
        &compute_device(),
        Some(kuangliu_mobilenet_v2_keys()),
    );
}

#[test]
fn wrn_34_10_round_trips_with_the_trades_state_dict_keys() {
    let spec = ModelSpec::native(Arch::Wrn34_10, CLASSES);
    let (_dir, path) = round_trip(spec, &compute_device(), Some(trades_wrn_keys()));
    // A TRADES checkpoint also holds the unused `sub_block1`: imported without it; any other
    // extra tensor is still refused.
    let mut tensors = read_file(&path);
    let conv = tensors["block1.layer.0.conv1.weight"].clone();
    tensors.insert("sub_block1.layer.0.conv1.weight".into(), conv);
    tensors.insert(
        "sub_block1.layer.0.bn1.num_batches_tracked".into(),
        (Dtype::I64, vec![], vec![0; 8]),
    );
    write_file(&path, &tensors);
    import_pytorch(&path, spec, &compute_device()).expect("sub_block1 is ignored");
    tensors.insert(
        "sub_block2.layer.0.conv1.weight".into(),
        (Dtype::F32, vec![1], vec![0; 4]),
    );
    write_file(&path, &tensors);
    let message = refused(import_pytorch(&path, spec, &compute_device()));
    assert_eq!(message.matches("unexpected tensor").count(), 1, "{message}");
    assert!(
        message.contains("unexpected tensor sub_block2.layer.0.conv1.weight"),
        "{message}"
    );
}

#[test]
fn the_layout_of_every_architecture_is_a_bijection_with_pytorch_shapes() {
    for arch in Arch::ALL {
        let model = Model::build_uninitialized(ModelSpec::native(arch, CLASSES), &compute_device())
            .unwrap();
        let layout = pytorch_layout(&model).unwrap();
        let burn: BTreeSet<_> = layout.iter().map(|m| &m.burn_name).collect();
        let pytorch: BTreeSet<_> = layout.iter().map(|m| &m.pytorch_name).collect();
        assert_eq!(burn.len(), layout.len(), "{arch}: duplicate burn names");
        assert_eq!(
            pytorch.len(),
            layout.len(),
            "{arch}: two tensors share a name"
        );
        for m in &layout {
            assert!(
                !m.pytorch_name.contains("gamma") && !m.pytorch_name.contains("beta"),
                "{arch}: {} keeps a burn batch-norm name",
                m.pytorch_name
            );
            match (m.layer, m.burn_shape.len()) {
                (LayerKind::Linear, 2) => {
                    assert_eq!(m.pytorch_shape, [m.burn_shape[1], m.burn_shape[0]]);
                }
                _ => assert_eq!(m.pytorch_shape, m.burn_shape, "{}", m.burn_name),
            }
        }
        let parameters: usize = layout
            .iter()
            .filter(|m| !m.burn_name.ends_with("running_mean"))
            .filter(|m| !m.burn_name.ends_with("running_var"))
            .map(|m| m.burn_shape.iter().product::<usize>())
            .sum();
        assert_eq!(parameters, model.parameter_count(), "{arch}");
    }
}

#[test]
fn name_rules_by_architecture() {
    let cases = [
        (
            Arch::ResNet18,
            "layer2.0.shortcut.conv.weight",
            "layer2.0.shortcut.0.weight",
        ),
        (
            Arch::ResNet18,
            "layer2.0.shortcut.bn.gamma",
            "layer2.0.shortcut.1.weight",
        ),
        (
            Arch::ResNet18,
            "layer2.0.shortcut.bn.beta",
            "layer2.0.shortcut.1.bias",
        ),
        (
            Arch::ResNet18,
            "layer1.1.bn2.running_var",
            "layer1.1.bn2.running_var",
        ),
        (Arch::ResNet18, "linear.weight", "linear.weight"),
        (
            Arch::MobileNetV2,
            "layers.1.shortcut.bn.running_mean",
            "layers.1.shortcut.1.running_mean",
        ),
        (
            Arch::Wrn34_10,
            "block2.layer.0.conv_shortcut.weight",
            "block2.layer.0.convShortcut.weight",
        ),
        (
            Arch::Wrn34_10,
            "block3.layer.4.bn1.gamma",
            "block3.layer.4.bn1.weight",
        ),
        (Arch::SmallCnn, "conv3.bias", "feature_extractor.conv3.bias"),
        (Arch::SmallCnn, "fc3.weight", "classifier.fc3.weight"),
        (Arch::MicroCnn, "bn1.beta", "bn1.bias"),
        (Arch::Mlp, "fc2.weight", "fc2.weight"),
        (Arch::MadryCnn, "fc1.bias", "fc1.bias"),
    ];
    for (arch, burn, pytorch) in cases {
        assert_eq!(pytorch_name(arch, burn), pytorch, "{arch}");
    }
}

/// A micro-cnn exported to `dir`, then edited by `edit` and imported.
fn import_edited(
    edit: impl FnOnce(&mut BTreeMap<String, (Dtype, Vec<usize>, Vec<u8>)>),
) -> Result<Model, CheckpointError> {
    let spec = ModelSpec::native(Arch::MicroCnn, CLASSES);
    let model = perturbed_model(spec, &compute_device());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("micro.safetensors");
    export_pytorch(&model, &path).unwrap();
    let mut tensors = read_file(&path);
    edit(&mut tensors);
    write_file(&path, &tensors);
    import_pytorch(&path, spec, &compute_device())
}

fn refused(result: Result<Model, CheckpointError>) -> String {
    match result {
        Ok(_) => panic!("a file that does not fit was imported"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn a_missing_tensor_is_refused_by_name() {
    let message = refused(import_edited(|t| {
        t.remove("bn2.running_mean");
    }));
    assert!(
        message.contains("missing tensor bn2.running_mean"),
        "{message}"
    );
}

#[test]
fn an_extra_tensor_is_refused_by_name() {
    let message = refused(import_edited(|t| {
        t.insert(
            "fc2.weight".into(),
            (Dtype::F32, vec![2], [0u8; 8].to_vec()),
        );
    }));
    assert!(
        message.contains("unexpected tensor fc2.weight"),
        "{message}"
    );
    // num_batches_tracked is ignored only where the model has that batch norm.
    let message = refused(import_edited(|t| {
        t.insert(
            "bn3.num_batches_tracked".into(),
            (Dtype::I64, vec![], [0u8; 8].to_vec()),
        );
    }));
    assert!(
        message.contains("unexpected tensor bn3.num_batches_tracked"),
        "{message}"
    );
}

#[test]
fn a_linear_weight_in_burn_layout_is_refused_with_both_shapes() {
    // The most likely mistake: a [in, out] matrix where PyTorch has [out, in].
    let message = refused(import_edited(|t| {
        let entry = t.get_mut("fc.weight").unwrap();
        entry.1.reverse();
    }));
    assert!(
        message.contains("tensor fc.weight has shape [784, 10], the model needs [10, 784]"),
        "{message}"
    );
}

#[test]
fn an_f64_tensor_is_refused_by_name_and_dtype() {
    let message = refused(import_edited(|t| {
        let entry = t.get_mut("bn1.running_var").unwrap();
        let doubles: Vec<u8> = f32_values(&entry.2)
            .iter()
            .flat_map(|v| f64::from(*v).to_le_bytes())
            .collect();
        *entry = (Dtype::F64, entry.1.clone(), doubles);
    }));
    assert!(
        message.contains("tensor bn1.running_var is F64, expected F32"),
        "{message}"
    );
}

#[test]
fn a_nan_is_refused_by_name() {
    let message = refused(import_edited(|t| {
        let entry = t.get_mut("conv1.weight").unwrap();
        entry.2[0..4].copy_from_slice(&f32::NAN.to_le_bytes());
    }));
    assert!(
        message.contains("tensor conv1.weight contains NaN"),
        "{message}"
    );
}

#[test]
fn every_problem_is_listed_at_once() {
    let message = refused(import_edited(|t| {
        t.remove("conv2.weight");
        t.insert("head.bias".into(), (Dtype::F32, vec![1], vec![0; 4]));
    }));
    assert!(
        message.contains("missing tensor conv2.weight")
            && message.contains("unexpected tensor head.bias"),
        "{message}"
    );
}

#[test]
fn garbage_bytes_are_refused_as_not_safetensors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbage.safetensors");
    std::fs::write(
        &path,
        b"\x89PNG\r\n\x1a\n this is not a weights file at all",
    )
    .unwrap();
    let spec = ModelSpec::native(Arch::MicroCnn, CLASSES);
    let message = refused(import_pytorch(&path, spec, &compute_device()));
    assert!(message.contains("not a safetensors file"), "{message}");
    assert!(message.contains("garbage.safetensors"), "{message}");
}

#[test]
fn a_file_of_another_architecture_is_refused_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mlp.safetensors");
    let mlp = Model::build(ModelSpec::native(Arch::Mlp, CLASSES), 0, &compute_device()).unwrap();
    export_pytorch(&mlp, &path).unwrap();
    let spec = ModelSpec::native(Arch::MicroCnn, CLASSES);
    let message = refused(import_pytorch(&path, spec, &compute_device()));
    assert!(
        message.contains("mlp") && message.contains("micro-cnn"),
        "{message}"
    );
}

#[test]
fn a_plain_pytorch_state_dict_imports() {
    // What `safetensors.torch.save_file(model.state_dict(), f)` writes for a model wrapped in
    // nn.DataParallel: no metadata, `module.` prefixes; and an older PyTorch without
    // num_batches_tracked.
    let spec = ModelSpec::native(Arch::MicroCnn, CLASSES);
    let model = perturbed_model(spec, &compute_device());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("torch.safetensors");
    export_pytorch(&model, &path).unwrap();
    let tensors: BTreeMap<_, _> = read_file(&path)
        .into_iter()
        .filter(|(name, _)| !name.ends_with("num_batches_tracked"))
        .map(|(name, value)| (format!("module.{name}"), value))
        .collect();
    write_file(&path, &tensors);
    let imported = import_pytorch(&path, spec, &compute_device()).expect("import works");
    assert_eq!(
        checkpoint::named_tensors(&model),
        checkpoint::named_tensors(&imported)
    );
}

#[test]
fn export_and_import_commands_write_a_checkpoint_with_provenance() {
    let dir = tempfile::tempdir().unwrap();
    let spec = ModelSpec::native(Arch::MicroCnn, CLASSES);
    let model = perturbed_model(spec, &autodiff_device());
    let trained = dir.path().join("student");
    checkpoint::save(
        &model,
        &trained,
        &checkpoint::SaveInfo {
            dataset: "mnist",
            training: None,
            metrics: &[],
            seed: 5,
        },
    )
    .unwrap();
    let exported = dir.path().join("student-pt.safetensors");
    interop_cli::run_export(&ExportArgs {
        checkpoint: trained.with_extension("ron"),
        out: exported.clone(),
        overwrite: false,
    })
    .expect("export command works");
    let back = dir.path().join("back/student");
    interop_cli::run_import(&ImportArgs {
        weights: exported.clone(),
        model: "micro-cnn".into(),
        dataset: "mnist".into(),
        out: Some(back.clone()),
        overwrite: false,
    })
    .expect("import command works");

    let (loaded, card) =
        checkpoint::load(&back, Some(Arch::MicroCnn), &compute_device()).expect("a checkpoint");
    assert_eq!(
        to_vec(model.valid().forward(probe(spec))),
        to_vec(loaded.forward(probe(spec)))
    );
    let digest: String = {
        use sha2::Digest;
        sha2::Sha256::digest(std::fs::read(&exported).unwrap())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    assert!(card.dataset.starts_with("mnist"), "{}", card.dataset);
    assert!(card.dataset.contains("imported from"), "{}", card.dataset);
    assert!(card.dataset.contains(&digest), "{}", card.dataset);
    assert!(card.training.is_none());
}

#[test]
fn export_refuses_to_overwrite_the_checkpoint_or_write_another_format() {
    let dir = tempfile::tempdir().unwrap();
    let model = Model::build(
        ModelSpec::native(Arch::MicroCnn, CLASSES),
        0,
        &compute_device(),
    )
    .unwrap();
    let stem = dir.path().join("m");
    checkpoint::save(
        &model,
        &stem,
        &checkpoint::SaveInfo {
            dataset: "mnist",
            training: None,
            metrics: &[],
            seed: 0,
        },
    )
    .unwrap();
    let own = interop_cli::run_export(&ExportArgs {
        checkpoint: stem.clone(),
        out: stem.with_extension("safetensors"),
        overwrite: false,
    })
    .unwrap_err()
    .to_string();
    assert!(own.contains("own weights file"), "{own}");
    let format = interop_cli::run_export(&ExportArgs {
        checkpoint: stem.clone(),
        out: dir.path().join("m.pt"),
        overwrite: false,
    })
    .unwrap_err()
    .to_string();
    assert!(format.contains(".safetensors"), "{format}");
    // The checkpoint is untouched.
    checkpoint::load(&stem, None, &compute_device()).expect("still loads");
}

#[test]
fn import_for_a_dataset_the_model_cannot_take_says_which() {
    let dir = tempfile::tempdir().unwrap();
    let error = interop_cli::run_import(&ImportArgs {
        weights: dir.path().join("none.safetensors"),
        model: "resnet18".into(),
        dataset: "mnist".into(),
        out: Some(dir.path().join("x")),
        overwrite: false,
    })
    .unwrap_err();
    let message = format!("{error:#}");
    assert!(
        message.contains("resnet18") && message.contains("--dataset mnist"),
        "{message}"
    );
}
