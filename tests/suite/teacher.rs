//! The shipped teacher loads, is what its card says, and is robust.

use rslad_tui::data::{self, DataSource, DatasetKind};
use rslad_tui::device::compute_device;
use rslad_tui::eval::{self, EvalAttack};
use rslad_tui::progress::Silent;
use rslad_tui::train::Method;
use rslad_tui::zoo::Arch;

/// The default teacher is the TRADES authors' SmallCNN: 99.48% clean on all 10,000 test
/// images in their paper and here; PGD-40 96.59% (its card).
#[test]
fn the_default_shipped_teacher_is_the_trades_small_cnn() {
    let (model, card) = rslad_tui::teacher::embedded(&compute_device()).expect("it loads");
    assert_eq!(card.spec.arch, Arch::SmallCnn);
    assert_eq!(card.dataset, "mnist");
    assert!(card.created_by.contains("TRADES"), "{}", card.created_by);
    assert_eq!(model.parameter_count(), 312_202);

    let data = data::load(DatasetKind::Mnist, &DataSource::Embedded).unwrap();
    let test = data.test.take(200);
    let report =
        eval::evaluate(&model, &test, &[EvalAttack::pgd(0.3, 10, 0.05)], 0, &Silent).unwrap();
    assert!(report.clean_accuracy >= 0.98, "{report:?}");
    assert!(report.attacks[0].robust_accuracy >= 0.9, "{report:?}");
}

#[test]
fn the_shipped_sat_teacher_is_a_robust_sat_small_cnn() {
    let (model, card) =
        rslad_tui::teacher::shipped(rslad_tui::teacher::EMBEDDED_SAT, &compute_device())
            .expect("it is shipped")
            .expect("it loads");
    assert_eq!(card.spec.arch, Arch::SmallCnn);
    assert_eq!(card.dataset, "mnist");
    let training = card.training.expect("the card records its training");
    assert!(matches!(training.method, Method::Sat { .. }));

    let data = data::load(DatasetKind::Mnist, &DataSource::Embedded).unwrap();
    let test = data.test.take(200);
    let report =
        eval::evaluate(&model, &test, &[EvalAttack::pgd(0.3, 10, 0.05)], 0, &Silent).unwrap();
    // Measured on all 10,000 test images: 98.74% clean, 90.16% under PGD-40.
    assert!(report.clean_accuracy >= 0.95, "{report:?}");
    assert!(report.attacks[0].robust_accuracy >= 0.8, "{report:?}");
}

/// The Fashion-MNIST teachers ship as plain checkpoints (not compiled in); the embedded data
/// has no Fashion-MNIST, so this checks the files and the cards, not the accuracy: the
/// 3-epoch teacher of the first tables and the 15-epoch one (lr ×0.1 at epochs 10 and 13).
#[test]
fn the_shipped_fashion_teachers_load_and_match_their_cards() {
    for (name, epochs, milestones) in [
        ("small-cnn-fashion-sat", 3, vec![]),
        ("small-cnn-fashion-sat-15ep", 15, vec![10, 13]),
    ] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("assets/teachers")
            .join(name);
        let (model, card) =
            rslad_tui::checkpoint::load(&path, Some(Arch::SmallCnn), &compute_device())
                .unwrap_or_else(|e| panic!("{name} loads and its hash matches: {e}"));
        assert_eq!(card.dataset, "fashion", "{name}");
        assert_eq!(model.parameter_count(), card.parameters, "{name}");
        let training = card.training.expect("the card records its training");
        let Method::Sat { attack, .. } = training.method else {
            panic!("{name}: not SAT");
        };
        assert!((attack.epsilon - 0.1).abs() < 1e-6, "{name}");
        assert_eq!(card.metrics.len(), epochs, "{name}");
        assert_eq!(training.optimizer.milestones, milestones, "{name}");
    }
}

/// The trainer keeps the teacher's logits of each training image once computed
/// (src/train/teacher_logits.rs) and serves them to later batches of the same size: the
/// same bits as asking the teacher only if, at a given batch size, an image's logits depend
/// on neither the other images of its batch nor its place among them. Batches of every size
/// from 2 to 128 and 256 and 512 for the shipped teacher, a spread of sizes for the other MNIST
/// architectures;
/// each against the same images in reverse order and against a batch that shares half of them
/// at other places. (The size itself can matter: `micro-cnn`'s last product rounds differently
/// for 64 images than for 65, so the cache serves one size only.)
#[test]
fn an_images_teacher_logits_depend_on_the_batch_size_only() {
    use rslad_tui::tensor_util::{batch_tensors, to_vec};
    use rslad_tui::zoo::{Model, build_by_name};
    let device = compute_device();
    let data = data::load(DatasetKind::Mnist, &DataSource::Embedded).unwrap();
    let check = |name: &str, model: &Model, sizes: &[usize]| {
        let logits = |indices: &[usize]| -> Vec<(usize, Vec<u32>)> {
            let (x, _) = batch_tensors(&data.train, indices, &device);
            let values = to_vec(model.forward(x));
            let rows = values
                .chunks(10)
                .map(|row| row.iter().map(|v| v.to_bits()).collect());
            indices.iter().copied().zip(rows).collect()
        };
        for &size in sizes {
            let mut first = logits(&(0..size).collect::<Vec<_>>());
            let mut reversed = logits(&(0..size).rev().collect::<Vec<_>>());
            reversed.sort();
            assert_eq!(reversed, first, "{name}: {size} images in reverse order");
            // Images size/2.. again, now at the batch's start, and others after them.
            let shifted = logits(&(size / 2..size / 2 + size).collect::<Vec<_>>());
            first.retain(|(i, _)| *i >= size / 2);
            assert_eq!(
                shifted[..first.len()],
                first[..],
                "{name}: {size} images, half of them shared at other places"
            );
        }
    };
    let (teacher, _) = rslad_tui::teacher::embedded(&device).expect("it loads");
    let sizes: Vec<usize> = (2..=128).chain([256, 512]).collect();
    check("teacher", &teacher, &sizes);
    for arch in ["micro-cnn", "madry-cnn", "mlp"] {
        let model = rslad_tui::attack::eval_view(&build_by_name(arch, 10, 5, &device).unwrap());
        let sizes = [
            2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 96, 127, 128,
        ];
        check(arch, &model, &sizes);
    }
}
