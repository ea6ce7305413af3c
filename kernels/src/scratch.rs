//! Per-thread scratch memory for the kernels: each rayon worker keeps one buffer and grows
//! it as needed, so an image's source planes and grid stay in that core's cache and nothing
//! is allocated per image.

use std::cell::RefCell;

thread_local! {
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    static GRADIENT: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `work` on at least `len` floats of this thread's scratch. The contents are whatever
/// an earlier call left (finite or not): callers write before they read.
pub fn with_scratch<T>(len: usize, work: impl FnOnce(&mut [f32]) -> T) -> T {
    with_buffer(&SCRATCH, len, work)
}

/// [`with_scratch`] on a second buffer, for what an engine that takes the first reads: an
/// image's output gradient prepared for it, or images copied with a border of zeros.
pub fn with_gradient_scratch<T>(len: usize, work: impl FnOnce(&mut [f32]) -> T) -> T {
    with_buffer(&GRADIENT, len, work)
}

fn with_buffer<T>(
    key: &'static std::thread::LocalKey<RefCell<Vec<f32>>>,
    len: usize,
    work: impl FnOnce(&mut [f32]) -> T,
) -> T {
    key.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buffer) => {
            if buffer.len() < len {
                buffer.resize(len, 0.0);
            }
            work(&mut buffer[..len])
        }
        // Only if a kernel were re-entered on this thread; never the case today.
        Err(_) => work(&mut vec![0.0; len]),
    })
}
