//! Timing a workload on any device: its first call on its own (a GPU compiles kernels and
//! autotunes each new shape then), warm-up calls until the time per call settles, then the
//! median of the timed calls.

use super::workload::Measurement;
use crate::device::compute_device;
use std::time::Instant;

/// How many untimed calls come before the timed ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Warmup {
    /// The first call only: on the CPU nothing is compiled or tuned, so the second call is
    /// already in the steady state.
    Once,
    /// Until the time per call has settled ([`settle`]): a GPU backend compiles each kernel
    /// and autotunes each new shape on first use, and fusion settles its plans over the first
    /// few calls.
    UntilSteady,
}

impl Warmup {
    /// [`Warmup::UntilSteady`] on a GPU, [`Warmup::Once`] on the CPU.
    pub fn for_device() -> Warmup {
        if crate::device::selection().open.choice == crate::device::DeviceChoice::Cpu {
            Warmup::Once
        } else {
            Warmup::UntilSteady
        }
    }
}

/// The first call, the warm-up, and the steady state of a workload.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Timing {
    /// Seconds of the first call, with whatever compiling and tuning it triggered.
    pub first_call: f64,
    /// Untimed calls after the first, before the timed ones.
    pub warmup_calls: usize,
    /// The median of the timed calls.
    pub steady: Measurement,
}

/// [`super::workload::timed`] with the first call reported on its own and the warm-up chosen by `warmup`.
/// Each call ends with a device sync, so work a GPU queued is counted in the call that
/// queued it.
pub fn timed_with(seconds: f64, min_reps: usize, warmup: Warmup, work: &mut dyn FnMut()) -> Timing {
    let mut call = || {
        let t = Instant::now();
        work();
        sync();
        t.elapsed().as_secs_f64()
    };
    let first_call = call();
    let warmup_calls = match warmup {
        Warmup::Once => 0,
        Warmup::UntilSteady => settle(seconds, &mut call),
    };
    let mut samples = Vec::new();
    let started = Instant::now();
    while samples.len() < min_reps || started.elapsed().as_secs_f64() < seconds {
        samples.push(call());
    }
    samples.sort_by(f64::total_cmp);
    Timing {
        first_call,
        warmup_calls,
        steady: Measurement {
            seconds: samples[samples.len() / 2],
            reps: samples.len(),
        },
    }
}

/// Calls `call` (which returns its own duration) until the last [`SETTLED_CALLS`] agree
/// within [`SETTLED_SPREAD`], but at least that many times and at most [`MAX_WARMUP_CALLS`]
/// times or for about `seconds` (whichever ends first, once the minimum is done). Returns how
/// many calls it made.
pub fn settle(seconds: f64, call: &mut dyn FnMut() -> f64) -> usize {
    let started = Instant::now();
    let mut times: Vec<f64> = Vec::new();
    while times.len() < MAX_WARMUP_CALLS {
        times.push(call());
        if times.len() >= SETTLED_CALLS {
            let last = &times[times.len() - SETTLED_CALLS..];
            let fastest = last.iter().copied().fold(f64::INFINITY, f64::min);
            let slowest = last.iter().copied().fold(0.0, f64::max);
            if slowest <= fastest * SETTLED_SPREAD || started.elapsed().as_secs_f64() >= seconds {
                break;
            }
        }
    }
    times.len()
}

/// Warm-up calls that must agree before timing starts on a GPU.
pub const SETTLED_CALLS: usize = 3;
/// How far apart (slowest over fastest) those calls may be.
pub const SETTLED_SPREAD: f64 = 1.2;
/// The most warm-up calls on a GPU.
pub const MAX_WARMUP_CALLS: usize = 20;

/// Waits for the work queued on the device in use (a no-op on the CPU, which computes eagerly).
pub(super) fn sync() {
    // A failed sync surfaces again, with its cause, at the next read of a result.
    let _ = compute_device().sync();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A call that "takes" the scripted durations in turn, then the last one forever.
    fn scripted(durations: &[f64]) -> impl FnMut() -> f64 + '_ {
        let mut next = 0;
        move || {
            let d = durations[next.min(durations.len() - 1)];
            next += 1;
            d
        }
    }

    #[test]
    fn settling_stops_once_three_calls_agree() {
        // Tuning makes the first calls slow; then 1.0, 1.1, 1.05 agree within 20%.
        let mut call = scripted(&[9.0, 4.0, 1.0, 1.1, 1.05, 1.0]);
        assert_eq!(settle(1e9, &mut call), 5);
    }

    #[test]
    fn settling_makes_at_least_three_calls_even_when_already_steady() {
        let mut call = scripted(&[1.0]);
        assert_eq!(settle(1e9, &mut call), SETTLED_CALLS);
    }

    #[test]
    fn settling_gives_up_after_the_cap_or_the_time_budget() {
        // Alternating times never agree: the call cap ends it...
        let times: Vec<f64> = (0..100)
            .map(|i| if i % 2 == 0 { 1.0 } else { 2.0 })
            .collect();
        let mut call = scripted(&times);
        assert_eq!(settle(1e9, &mut call), MAX_WARMUP_CALLS);
        // ...or, with no time budget, the minimum number of calls.
        let mut call = scripted(&times);
        assert_eq!(settle(0.0, &mut call), SETTLED_CALLS);
    }

    #[test]
    fn the_first_call_is_reported_apart_from_the_steady_state() {
        let mut calls = 0;
        let timing = timed_with(0.0, 3, Warmup::Once, &mut || {
            calls += 1;
            if calls == 1 {
                std::thread::sleep(std::time::Duration::from_millis(30));
            }
        });
        assert_eq!(calls, 4, "the first call and three timed ones");
        assert_eq!(timing.warmup_calls, 0);
        assert_eq!(timing.steady.reps, 3);
        assert!(timing.first_call >= 0.03, "{timing:?}");
        assert!(timing.steady.seconds < 0.03, "{timing:?}");
    }
}
