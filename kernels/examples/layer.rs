//! One convolution layer's forward pass, input gradient or weight gradient on the kernels alone,
//! timed (docs/performance.md, "conv1 on Zen 3"): the median and fastest of N calls at batch 128
//! (or BATCH: a small one keeps the output in cache).
//!
//! ```text
//! cargo run --release --example layer -- PASS CALLS IN_CHANNELS OUT_CHANNELS SIZE [BATCH [KERNEL PAD [STRIDE [GROUPS]]]]
//! cargo run --release --example layer -- wgrad 100 1 32 28    # small-cnn's conv1
//! cargo run --release --example layer -- igrad 100 1 32 28 128 5 2    # madry-cnn's conv1
//! ```
//!
//! PASS is `fwd`, `igrad` or `wgrad` (`igrad-relu`: the input gradient through a fused ReLU;
//! `fwd-grid`, `igrad-rows`: on the older engines even where the first-layer engines or F(2, 3)
//! would run; `fwd-channels`: on the channel engine wherever it applies; `igrad-direct`: on the
//! engines F(2, 3) replaces; `wgrad-tiles`: on the general weight-gradient engine even where
//! the depthwise one would run); the kernel is KERNEL × KERNEL (3 by default), padded by PAD
//! (0) on every side, of stride STRIDE (1), in GROUPS groups (1; IN = OUT = GROUPS:
//! depthwise). rslad-tui also raises glibc's mmap and trim thresholds
//! (src/allocator.rs); this program does not, so each call's output may be page-faulted in, as
//! the first call in rslad-tui is. To time it as rslad-tui runs, set both:
//! `MALLOC_MMAP_THRESHOLD_=1000000000 MALLOC_TRIM_THRESHOLD_=1000000000` (the first alone still
//! lets glibc trim the heap).

use rslad_kernels::{ConvGeometry, Isa};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let pass = args.get(1).map_or("fwd", String::as_str);
    let number =
        |i: usize, default: usize| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default);
    let (calls, c_in, c_out, size, batch, kernel, pad, stride, groups) = (
        number(2, 50).max(1),
        number(3, 1),
        number(4, 32),
        number(5, 28),
        number(6, 128).max(1),
        number(7, 3).max(1),
        number(8, 0),
        number(9, 1).max(1),
        number(10, 1).max(1),
    );
    let g = ConvGeometry::new(
        [batch, c_in, size, size],
        [c_out, c_in / groups, kernel, kernel],
        [stride, stride],
        [(pad, pad), (pad, pad)],
        [1, 1],
        groups,
    )
    .expect("a convolution the kernels handle (SIZE + 2 · PAD ≥ KERNEL, GROUPS dividing both)");
    let isa = Isa::detected();
    let values = |len: usize, a: usize, m: usize| -> Vec<f32> {
        (0..len)
            .map(|i| ((i * a) % m) as f32 / m as f32 - 0.5)
            .collect()
    };
    let x = values(g.batch * g.in_image(), 7919, 1000);
    let weight = values(g.weight_len(), 31, 17);
    let output_grad = values(g.batch * g.out_image(), 13, 101);
    // A ReLU's output for `igrad-relu` (the gradient masked where it is not positive): about
    // half the values positive.
    let relu_output = values(g.batch * g.out_image(), 7, 11);
    let mut times = Vec::with_capacity(calls);
    let mut checksum = 0.0f64;
    for _ in 0..calls {
        let start = Instant::now();
        let result = match pass {
            "fwd" => rslad_kernels::forward(isa, &g, &x, &weight, None, true),
            "fwd-grid" => rslad_kernels::forward_on_grid(isa, &g, &x, &weight, None, true),
            "fwd-channels" => rslad_kernels::forward_on_channels(isa, &g, &x, &weight, None, true),
            "igrad" => rslad_kernels::input_grad(isa, &g, &weight, &output_grad, None),
            "igrad-relu" => {
                rslad_kernels::input_grad(isa, &g, &weight, &output_grad, Some(&relu_output))
            }
            "igrad-direct" => {
                rslad_kernels::input_grad_direct(isa, &g, &weight, &output_grad, None)
            }
            "igrad-rows" => {
                rslad_kernels::input_grad_on_positions(isa, &g, &weight, &output_grad, None)
            }
            "wgrad" => rslad_kernels::weight_grad(isa, &g, &x, &output_grad, None),
            "wgrad-tiles" => rslad_kernels::weight_grad_on_tiles(isa, &g, &x, &output_grad, None),
            other => panic!(
                "PASS is fwd, fwd-grid, fwd-channels, igrad, igrad-relu, igrad-direct, \
                 igrad-rows, wgrad or wgrad-tiles, not {other}"
            ),
        };
        times.push(start.elapsed().as_secs_f64() * 1e3);
        // A few values only: summing the whole output between calls left rayon's workers
        // asleep by the next call, so each call timed their wake-up too (medians 2–3× bench's).
        checksum += result
            .iter()
            .step_by(997)
            .map(|&v| f64::from(v))
            .sum::<f64>();
    }
    times.sort_by(f64::total_cmp);
    let flop = 2.0 * g.macs() as f64;
    let median = times[calls / 2];
    println!(
        "{pass} {}: median {median:.2} ms, fastest {:.2} ms, {:.1} GFLOP/s at the median (checksum {checksum:.6e})",
        isa.name(),
        times[0],
        flop / median / 1e6
    );
}
