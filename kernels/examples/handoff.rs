//! What one parallel operation costs beyond its work: an almost empty `par_chunks_mut` over
//! 128 chunks (a batch's images), called back to back from the main thread, as rslad-tui's ops
//! are, and from a worker of the pool (docs/performance.md, "The first layers against the
//! memory system and the pool").
//!
//! ```text
//! cargo run --release --example handoff
//! ```

use rayon::prelude::*;
use std::time::Instant;

const CALLS: usize = 20_000;

fn report(place: &str, mut micros: Vec<f64>) {
    let mean = micros.iter().sum::<f64>() / micros.len() as f64;
    micros.sort_by(f64::total_cmp);
    let at = |q: f64| micros[((micros.len() - 1) as f64 * q) as usize];
    println!(
        "{place}: mean {mean:.1} µs, median {:.1}, 10% {:.1}, 90% {:.1}",
        at(0.5),
        at(0.1),
        at(0.9)
    );
}

fn calls(buf: &mut [f32]) -> Vec<f64> {
    (0..CALLS)
        .map(|_| {
            let start = Instant::now();
            buf.par_chunks_mut(16)
                .enumerate()
                .for_each(|(i, chunk)| chunk[0] += i as f32);
            start.elapsed().as_secs_f64() * 1e6
        })
        .collect()
}

fn main() {
    let mut buf = vec![0f32; 128 * 16];
    for _ in 0..2 {
        report("from the main thread", calls(&mut buf));
        let mut inside = Vec::new();
        rayon::join(|| inside = calls(&mut buf), || ());
        report("from a pool worker", inside);
    }
}
