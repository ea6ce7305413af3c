//! Where a convolution's time goes: forward pass, input gradient and weight gradient of each
//! MNIST-scale zoo convolution at batch 128, for our kernels (src/conv/) and burn-flex's own
//! convolution, as a fraction of the matrix-multiply rate measured in the same run, and for
//! PyTorch too when `RSLAD_TORCH_PYTHON` names a Python with torch. The same table as
//! `rslad-tui bench --layers [--compare]`. Run with `cargo bench --bench conv_ops`; numbers in
//! docs/performance.md.

use burn::prelude::*;
use burn::tensor::Distribution;
use rslad_tui::bench::layers;
use rslad_tui::bench::workload::{Workload, timed};
use rslad_tui::device::autodiff_device;

fn main() {
    let batch = 128;
    let seconds = 2.0;
    let matmul = Workload::MatMul { size: 1024 };
    let matmul_gflops =
        matmul.flops(batch).unwrap() / matmul.measure(batch, seconds).unwrap().steady.seconds / 1e9;
    println!(
        "{} on {}; matmul 1024²: {matmul_gflops:.1} GFLOP/s\n",
        rslad_tui::conv::Isa::detected().name(),
        rslad_tui::device::backend_id(),
    );
    let torch = std::env::var("RSLAD_TORCH_PYTHON").ok().map(|python| {
        rslad_tui::bench::torch::TorchReference::start(&python, rslad_tui::device::cpu_threads())
            .expect("a Python with torch")
    });
    let rows = layers::measure(&layers::LAYERS, batch, seconds, torch.as_ref()).unwrap();
    print!("{}", layers::table(&rows, batch, matmul_gflops));
    attack_views(&autodiff_device(), batch);
}

/// What the attacks save by holding the weights fixed: one attack step's input gradient on
/// small-cnn through the eval view (no parameter gradients, as every attack here runs) and
/// through the training model (parameters tracked, as a naive attack would).
fn attack_views(device: &Device, batch: usize) {
    use rslad_tui::attack::{AttackLoss, Target, eval_view, input_gradient};
    use rslad_tui::zoo::{Arch, Model, ModelSpec};
    let model = Model::build(ModelSpec::native(Arch::SmallCnn, 10), 0, device).unwrap();
    let x =
        Tensor::<4>::random([batch, 1, 28, 28], Distribution::Default, device).without_autodiff();
    let labels = Tensor::<1, burn::tensor::Int>::zeros([batch], &x.device());
    let target = Target::labels(labels);
    let view = eval_view(&model);
    let fixed = timed(2.0, 5, &mut || {
        input_gradient(&view, &x, &target, AttackLoss::CrossEntropy);
    });
    let tracked = timed(2.0, 5, &mut || {
        input_gradient(&model, &x, &target, AttackLoss::CrossEntropy);
    });
    println!(
        "\nsmall-cnn attack step, batch {batch}: weights fixed {:.2} ms, weights tracked {:.2} ms",
        fixed.seconds * 1e3,
        tracked.seconds * 1e3
    );
}
