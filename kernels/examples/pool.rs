//! Max pooling's forward pass (with the argmax) and backward step on the kernels alone, timed:
//! the median and fastest of N calls.
//!
//! ```text
//! cargo run --release --example pool -- CALLS CHANNELS SIZE [BATCH]
//! cargo run --release --example pool -- 200 8 28     # micro-cnn's first pooling
//! ```

use rslad_kernels::{PoolGeometry, max_pool_backward, max_pool_forward};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let number =
        |i: usize, default: usize| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default);
    let (calls, channels, size, batch) = (
        number(1, 200).max(1),
        number(2, 8),
        number(3, 28),
        number(4, 128).max(1),
    );
    let g = PoolGeometry {
        batch,
        channels,
        in_h: size,
        in_w: size,
        window: 2,
    };
    let x: Vec<f32> = (0..g.planes() * size * size)
        .map(|i| ((i * 7919) % 1009) as f32 / 1009.0 - 0.5)
        .collect();
    let dy: Vec<f32> = (0..g.planes() * g.out_h() * g.out_w())
        .map(|i| ((i * 104729) % 997) as f32 / 997.0 - 0.5)
        .collect();
    let time = |f: &mut dyn FnMut()| {
        let mut ms: Vec<f64> = (0..calls)
            .map(|_| {
                let start = Instant::now();
                f();
                start.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        ms.sort_by(f64::total_cmp);
        (ms[ms.len() / 2], ms[0])
    };
    let (_, argmax) = max_pool_forward(&g, &x, true);
    let (fwd_median, fwd_best) = time(&mut || {
        std::hint::black_box(max_pool_forward(&g, &x, true));
    });
    let (bwd_median, bwd_best) = time(&mut || {
        std::hint::black_box(max_pool_backward(&g, &argmax, &dy));
    });
    println!(
        "max pool 2x2 [{batch}, {channels}, {size}, {size}]: forward median {fwd_median:.4} ms \
         (best {fwd_best:.4}), backward median {bwd_median:.4} ms (best {bwd_best:.4})"
    );
}
