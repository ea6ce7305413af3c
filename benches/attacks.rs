//! Attack throughput on the embedded MNIST test images, for tracking speed over time (never
//! asserted in a test). Run with `cargo bench --bench attacks` (release profile).
//!
//! Uses the shipped robust teacher (SAT small-cnn), so the attacks do the work they do in a
//! real evaluation: most points survive and every component runs on them. (An untrained
//! small-cnn would not do: its zero-initialised last layer gives constant logits.)
//! `RSLAD_BENCH_N` sets the number of images for PGD-40 and APGD-CE (default 200); the
//! targeted attacks, Square and the whole AutoAttack run on the first 20.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rslad_tui::attack::autoattack::{self, AutoAttackConfig, Version};
use rslad_tui::attack::{self, ApgdConfig, ApgdLoss, FabConfig, SquareConfig, Target};
use rslad_tui::data::{DataSource, DatasetKind, load};
use rslad_tui::device::autodiff_device;
use rslad_tui::eval::EvalAttack;
use rslad_tui::progress::Silent;
use rslad_tui::tensor_util::batch_tensors;
use std::time::Instant;

fn main() {
    let n: usize = std::env::var("RSLAD_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let device = autodiff_device();
    let data = load(DatasetKind::Mnist, &DataSource::Embedded).expect("the embedded subset loads");
    let indices: Vec<usize> = (0..n.min(data.test.len())).collect();
    let (x, y) = batch_tensors(&data.test, &indices, &device);
    let labels: Vec<i64> = indices
        .iter()
        .map(|&i| i64::from(data.test.labels[i]))
        .collect();
    let (model, _) = rslad_tui::teacher::embedded(&device).expect("the shipped teacher loads");
    let view = attack::eval_view(&model);
    let epsilon = 0.3;
    println!(
        "shipped teacher (SAT small-cnn), {} images, ε = {epsilon}",
        indices.len()
    );

    let time = |name: &str, work: &mut dyn FnMut()| {
        let started = Instant::now();
        work();
        let seconds = started.elapsed().as_secs_f64();
        println!("{name:<28} {seconds:>8.2} s");
    };
    let mut rng = StdRng::seed_from_u64(0);
    let pgd = EvalAttack::pgd(epsilon, 40, 0.01).config;
    time("PGD-40", &mut || {
        attack::pgd(&view, &x, &Target::labels(y.clone()), &pgd, &mut rng);
    });
    time("APGD-CE (100 it)", &mut || {
        let config = ApgdConfig::standard(epsilon, ApgdLoss::CrossEntropy);
        attack::apgd(&view, &x, &labels, &config, &mut rng).unwrap();
    });
    // Targeted attacks and Square, on the first 20 images: their cost per point is large.
    let few = 20.min(indices.len());
    let x_few = x.clone().narrow(0, 0, few);
    let y_few = &labels[..few];
    time("APGD-T (9×100 it), 20 img", &mut || {
        let config = ApgdConfig::standard(epsilon, ApgdLoss::TargetedDlr);
        attack::apgd_targeted(&view, &x_few, y_few, &config, &mut rng).unwrap();
    });
    time("FAB-T (9×100 it), 20 img", &mut || {
        attack::fab_targeted(
            &view,
            &x_few,
            y_few,
            &FabConfig::standard(epsilon),
            &mut rng,
        )
        .unwrap();
    });
    time("Square (5000 q), 20 img", &mut || {
        attack::square(
            &view,
            &x_few,
            y_few,
            &SquareConfig::standard(epsilon),
            &mut rng,
        )
        .unwrap();
    });
    time("AutoAttack standard, 20 img", &mut || {
        let config = AutoAttackConfig {
            version: Version::Standard,
            ..AutoAttackConfig::standard(epsilon)
        };
        let report = autoattack::run(&view, &x_few, y_few, &config, &Silent).unwrap();
        let broken: Vec<String> = report
            .components
            .iter()
            .map(|c| format!("{} {}", c.component, c.broken))
            .collect();
        println!("  broken per component: {}", broken.join(", "));
    });
}
