//! Seeded randomness owned by the project, so results never depend on a backend's global RNG
//! or on which test happened to run first.

use rand::SeedableRng;
use rand::rngs::StdRng;

/// A deterministic generator for one purpose (`stream`) of one run (`seed`).
/// Different streams give independent sequences from the same user seed.
pub fn seeded(seed: u64, stream: u64) -> StdRng {
    StdRng::seed_from_u64(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Named streams, so that adding randomness in one place never shifts it in another.
pub mod stream {
    pub const INIT: u64 = 1;
    pub const SHUFFLE: u64 = 2;
    pub const AUGMENT: u64 = 3;
    pub const ATTACK: u64 = 4;
    pub const EVAL_ATTACK: u64 = 5;
}
