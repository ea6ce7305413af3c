//! The register tile shared by the first-layer engines ([`super::first_layer`] and
//! [`super::first_layer_grad`]): `M` image rows × `N` vectors along them, `K` × `K` kernels
//! (3 × 3 for the forward pass; 3 × 3 and 5 × 5 for the input gradient).
//!
//! A row of `w` values takes ⌈w / lanes⌉ vectors, the last one moved back to end at the row's
//! end (it covers a few values of the vector before once more). Each source row of a tile is
//! loaded once and applied to every output row it feeds: output row m takes source row r through
//! kernel row r − m, so each sum still takes a kernel column's terms in kernel-row order.

use super::simd::Simd;

/// Vectors a row may take (accumulators held at once).
pub const MAX_VECTORS: usize = 4;

/// The first column of each vector of a row of `width` values (`width ≥ lanes`).
pub fn vector_starts(width: usize, lanes: usize) -> Vec<usize> {
    (0..width.div_ceil(lanes))
        .map(|n| (n * lanes).min(width - lanes))
        .collect()
}

/// Rows per tile for rows of `vectors` vectors: 8 or 9 independent sums, enough to hide the
/// multiply-add's latency (4 cycles, 2 a cycle), and with the loaded vector and the weights of
/// the rows it feeds (at most min(M, K): up to 5) within AVX2's 16 registers.
pub fn tile_rows(vectors: usize) -> usize {
    match vectors {
        1 => 8,
        2 => 4,
        3 => 3,
        _ => 2,
    }
}

/// Adds source row `r` of a tile (its vectors at `row + starts[n]`) into the `M` output rows it
/// feeds; `weight(kh)` is the weight of kernel row `kh` for this kernel column.
///
/// # Safety
/// `row + starts[n]` must be readable for a whole vector, for every n.
#[inline(always)]
pub unsafe fn add_source_row<S: Simd, const K: usize, const N: usize, const M: usize>(
    acc: &mut [[S::V; N]; M],
    r: usize,
    row: *const f32,
    starts: &[usize; N],
    weight: impl Fn(usize) -> f32,
) {
    // SAFETY: the caller's.
    unsafe {
        let w: [S::V; M] = std::array::from_fn(|m| match r.checked_sub(m) {
            Some(kh) if kh < K => S::splat(weight(kh)),
            _ => S::splat(0.0),
        });
        for (n, &start) in starts.iter().enumerate() {
            let x = S::load(row.add(start));
            for (m, acc) in acc.iter_mut().enumerate() {
                if r >= m && r - m < K {
                    acc[n] = S::fma(w[m], x, acc[n]);
                }
            }
        }
    }
}
