//! Where a convolution's time goes in burn-flex: forward, input gradient and weight gradient
//! of each of small-cnn's four 3×3 convolutions at batch 128, timed separately (median of
//! repeated runs). `bench/conv_ops_torch.py` times the same in PyTorch. Run with
//! `cargo bench --bench conv_ops`; numbers in docs/performance.md.

use burn::nn::conv::Conv2dConfig;
use burn::prelude::*;
use burn::tensor::Distribution;
use rslad_tui::bench::workload::timed;
use rslad_tui::device::autodiff_device;

fn main() {
    let device = autodiff_device();
    let batch = 128;
    // (input channels, output channels, input side) of small-cnn's conv1..conv4 on MNIST.
    let layers = [(1, 32, 28), (32, 32, 26), (32, 64, 12), (64, 64, 10)];
    println!(
        "| layer | forward ms | input-gradient ms | weight-gradient ms | im2col+matmul: forward ms | weight-gradient ms |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for (i, (cin, cout, side)) in layers.into_iter().enumerate() {
        let conv = Conv2dConfig::new([cin, cout], [3, 3]).init(&device);
        let plain = conv.valid();
        let x = Tensor::<4>::random([batch, cin, side, side], Distribution::Default, &device)
            .without_autodiff();
        let forward = timed(2.0, 5, &mut || {
            let _ = plain
                .forward(x.clone())
                .slice([0..1, 0..1, 0..1, 0..1])
                .into_data();
        });
        // The attack's case: gradient for the input only, the weights held fixed.
        let input_only = timed(2.0, 5, &mut || {
            let leaf = x.clone().autodiff().require_grad();
            let grads = plain.forward(leaf.clone()).sum().backward();
            let _ = leaf
                .grad(&grads)
                .map(|g| g.slice([0..1, 0..1, 0..1, 0..1]).into_data());
        });
        // The training update's case for a first layer: weight gradient, no input gradient.
        let weight_only = timed(2.0, 5, &mut || {
            let out = conv.forward(x.clone().autodiff());
            let grads = out.sum().backward();
            let _ = conv.weight.grad(&grads).map(|g| g.into_data());
        });
        // The same convolution as 9 shifted slices stacked into columns and one matmul: its
        // weight gradient is then a matmul too.
        let weight = conv.weight.val();
        let bias = conv.bias.as_ref().map(|b| b.val());
        let check = im2col_conv(x.clone().autodiff(), weight.clone(), bias.clone());
        let reference = conv.forward(x.clone().autodiff());
        let error = (check - reference).abs().max().into_scalar::<f32>();
        assert!(error < 1e-4, "im2col conv differs from conv2d by {error}");
        let im2col_forward = timed(2.0, 5, &mut || {
            let out = im2col_conv(x.clone(), weight.clone().without_autodiff(), None);
            let _ = out.slice([0..1, 0..1, 0..1, 0..1]).into_data();
        });
        let im2col_weight = timed(2.0, 5, &mut || {
            let w = weight.clone().detach().require_grad();
            let out = im2col_conv(x.clone().autodiff(), w.clone(), bias.clone());
            let grads = out.sum().backward();
            let _ = w.grad(&grads).map(|g| g.into_data());
        });
        let ms = |m: rslad_tui::bench::workload::Measurement| m.seconds * 1e3;
        // Input- and weight-gradient runs include their forward pass; subtract it.
        println!(
            "| conv{} {cin}→{cout} on {side}² | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            i + 1,
            ms(forward),
            ms(input_only) - ms(forward),
            ms(weight_only) - ms(forward),
            ms(im2col_forward),
            ms(im2col_weight) - ms(im2col_forward),
        );
    }
    attack_views(&device, batch);
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

/// A valid 3×3 convolution written as im2col (nine shifted views stacked) and a matmul.
fn im2col_conv(x: Tensor<4>, weight: Tensor<4>, bias: Option<Tensor<1>>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    let [out, _, k, _] = weight.dims();
    let (oh, ow) = (h - k + 1, w - k + 1);
    let mut shifted = Vec::with_capacity(k * k);
    for i in 0..k {
        for j in 0..k {
            shifted.push(x.clone().slice([0..b, 0..c, i..i + oh, j..j + ow]));
        }
    }
    // [b, c, k², oh, ow] → [b, c·k², oh·ow], matching weight [out, c, k, k] → [out, c·k²].
    let columns = Tensor::stack::<5>(shifted, 2).reshape([b, c * k * k, oh * ow]);
    let y = weight
        .reshape([1, out, c * k * k])
        .matmul(columns)
        .reshape([b, out, oh, ow]);
    match bias {
        Some(bias) => y + bias.reshape([1, out, 1, 1]),
        None => y,
    }
}
