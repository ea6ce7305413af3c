//! Seeded shuffling and batching.
//!
//! Each epoch's order comes from its own random stream derived from (seed, epoch), not from
//! one generator advanced epoch after epoch: so epoch 7 of a resumed run sees the same order
//! as epoch 7 of an uninterrupted one.

use rand::seq::SliceRandom;

use crate::rng;

/// A random permutation of `0..n`, the same for the same `(seed, epoch)` and different
/// (with overwhelming probability, for `n` beyond a handful) for different epochs.
pub fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rng::seeded(seed, epoch_stream(epoch)));
    order
}

/// The shuffle stream for one epoch. Epochs are placed in the upper 32 bits so they can never
/// coincide with the small named streams of [`rng::stream`].
fn epoch_stream(epoch: usize) -> u64 {
    rng::stream::SHUFFLE.wrapping_add((epoch as u64) << 32)
}

/// Splits `order` into consecutive batches of `batch_size` indices; the last batch holds the
/// remainder and may be smaller, so every index is used exactly once per epoch.
///
/// # Panics
/// If `batch_size` is 0 (configurations are validated before training starts).
pub fn batches(order: &[usize], batch_size: usize) -> std::slice::Chunks<'_, usize> {
    assert!(batch_size > 0, "batch size must be at least 1");
    order.chunks(batch_size)
}

/// The number of batches [`batches`] yields for `n` indices, for progress bars.
///
/// # Panics
/// If `batch_size` is 0.
pub fn num_batches(n: usize, batch_size: usize) -> usize {
    assert!(batch_size > 0, "batch size must be at least 1");
    n.div_ceil(batch_size)
}
