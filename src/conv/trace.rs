//! Which convolutions a computation runs, as the kernels see them. `bench --layers --model M`
//! lists a model's layers by running it once under [`record`], so the list cannot drift from
//! the architecture.

use rslad_kernels::ConvGeometry;
use std::cell::RefCell;

/// One convolution as it ran on the kernels: its geometry (batch included) and whether it had
/// a bias.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TracedConv {
    pub geometry: ConvGeometry,
    pub bias: bool,
}

thread_local! {
    /// The list being recorded on this thread, if any.
    static TRACE: RefCell<Option<Vec<TracedConv>>> = const { RefCell::new(None) };
}

/// Runs `work` and returns what it returned with every convolution it ran on the kernels, on
/// this thread, in order (burn's own op, where the kernels do not apply, is not listed). A
/// recording inside `work` takes its convolutions from this one.
pub fn record<T>(work: impl FnOnce() -> T) -> (T, Vec<TracedConv>) {
    /// Restores the enclosing recording (usually none) even if `work` panics.
    struct Restore(Option<Option<Vec<TracedConv>>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            if let Some(outer) = self.0.take() {
                TRACE.set(outer);
            }
        }
    }
    let mut restore = Restore(Some(TRACE.replace(Some(Vec::new()))));
    let result = work();
    let outer = restore.0.take().expect("set above");
    let traced = TRACE.replace(outer).unwrap_or_default();
    (result, traced)
}

/// Notes a convolution that ran on the kernels (a no-op unless [`record`] is running).
pub(super) fn note(geometry: &ConvGeometry, bias: bool) {
    TRACE.with_borrow_mut(|trace| {
        if let Some(trace) = trace {
            trace.push(TracedConv {
                geometry: *geometry,
                bias,
            });
        }
    });
}
