//! How the thread that issues the CPU work shares it with rayon's global pool (which burn-flex
//! and our kernels both run on): it joins the pool, and while it computes the pool's other
//! threads wait for work awake instead of asleep.
//!
//! A parallel operation called from outside the pool hands its work over and sleeps until a
//! worker wakes it: about 13 µs on average for an operation of almost no work here, against 3 µs
//! from a pool thread (`cargo run --release --example handoff` in kernels/), and a `micro-cnn`
//! PGD step is about ten such operations (docs/performance.md, "The first layers against the
//! memory system and the pool"). Between two operations the issuing thread does serial work
//! (burn's autodiff bookkeeping, small tensors); a rayon worker that finds nothing to do for
//! 32 rounds goes to sleep on a futex, and the next operation pays for waking it (a system call
//! on each side, and the worker's start latency, while the issuing thread waits for its share).
//! OpenMP runtimes, PyTorch's among them, keep their workers spinning for a while for the same
//! reason; [`AwakeWorkers`] does that for rayon (docs/performance.md, "Workers kept awake").

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long a worker keeps looking for work, yielding its core between looks, after the last
/// job it ran; then it naps, the naps doubling up to [`LONGEST_NAP`]. Longer than the serial
/// gaps between the operations of a training or attack step, short enough that an idle
/// program (the workbench, the REPL waiting for input) costs almost nothing.
const AWAKE_FOR: Duration = Duration::from_millis(20);
/// The longest a napping worker takes to join an operation again (the issuing thread computes
/// alone meanwhile, so no work waits for it).
const LONGEST_NAP: Duration = Duration::from_millis(64);

/// What `RSLAD_TUI_POOL` asks for: unset, both steps; `asleep`, the pool's workers sleep as
/// rayon's do; `outside`, the thread also stays outside the pool (the way before either step),
/// for measurements.
fn mode() -> Option<String> {
    std::env::var("RSLAD_TUI_POOL").ok()
}

/// Makes the calling thread one of the threads of rayon's global pool, for a thread that issues
/// all the CPU work (the main thread of every command but the interactive workbench, and that
/// workbench's engine thread), and keeps the pool's other threads awake while the returned
/// guard lives. From a pool thread the caller does a share of each operation itself, as
/// PyTorch's calling thread does in its own pool. The pool keeps its size (RAYON_NUM_THREADS,
/// else one per core), this thread included.
///
/// Only for the thread that issues the work: a pool thread waiting inside a parallel operation
/// may run another thread's jobs, and when one thread issues all the work every such job is
/// part of its own operation. With `RAYON_NUM_THREADS=1` this thread is the whole pool:
/// parallel work that another thread sent would wait until this one next enters a parallel
/// operation, so no other thread may compute. Joins nothing if the pool was already built
/// (something ran in parallel first: only speed is lost). `None`: no workers are kept awake
/// (not a pool thread, a pool of one, or `RSLAD_TUI_POOL` set).
pub fn compute_on_this_thread() -> Option<AwakeWorkers> {
    let mode = mode();
    if mode.as_deref() == Some("outside") {
        return None;
    }
    let _ = rayon::ThreadPoolBuilder::new()
        .use_current_thread()
        .build_global();
    if mode.is_some() {
        return None;
    }
    AwakeWorkers::start()
}

/// While it lives, every other thread of the calling thread's pool runs a job that keeps
/// taking the pool's work ([`rayon::yield_now`]) instead of going to sleep between
/// operations; dropping it ends those jobs and the threads sleep as rayon's do. Which thread
/// runs a piece of work changes, not how work is split or summed: results keep their bits.
pub struct AwakeWorkers {
    stop: Arc<AtomicBool>,
}

impl AwakeWorkers {
    /// `None` unless the calling thread is in a pool of two or more threads.
    pub fn start() -> Option<AwakeWorkers> {
        let issuer = rayon::current_thread_index()?;
        if rayon::current_num_threads() < 2 {
            return None;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        // One copy per thread, the caller's included: it returns at once there, where it
        // runs whenever the caller next looks for work.
        rayon::spawn_broadcast(move |context| {
            if context.index() != issuer {
                look_for_work_until(&stopped);
            }
        });
        Some(AwakeWorkers { stop })
    }

    /// Whether the workers' jobs have all ended (after the guard was dropped).
    #[cfg(test)]
    fn ended(stop: &Arc<AtomicBool>) -> bool {
        Arc::strong_count(stop) == 1
    }
}

impl Drop for AwakeWorkers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Runs the pool's jobs as they come until `stop` is set: between them yields the core (other
/// programs' threads may run) for [`AWAKE_FOR`], then naps.
fn look_for_work_until(stop: &AtomicBool) {
    let mut last_job = Instant::now();
    let mut nap = Duration::from_millis(1);
    while !stop.load(Ordering::Relaxed) {
        match rayon::yield_now() {
            Some(rayon::Yield::Executed) => {
                last_job = Instant::now();
                nap = Duration::from_millis(1);
            }
            Some(rayon::Yield::Idle) if last_job.elapsed() < AWAKE_FOR => std::thread::yield_now(),
            Some(rayon::Yield::Idle) => {
                std::thread::sleep(nap);
                nap = (nap * 2).min(LONGEST_NAP);
            }
            None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::prelude::*;

    fn pool(threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a thread pool")
    }

    #[test]
    fn no_workers_are_kept_awake_outside_a_pool_or_in_a_pool_of_one() {
        assert!(AwakeWorkers::start().is_none());
        assert!(pool(1).install(AwakeWorkers::start).is_none());
    }

    /// The issuing thread's operations complete, with their values, while the other thread
    /// runs them from its job, and that job ends once the guard is dropped (else a command's
    /// threads would spin after it).
    #[test]
    fn awake_workers_take_work_and_stop_with_their_guard() {
        let pool = pool(2);
        let stop = pool.install(|| {
            let awake = AwakeWorkers::start().expect("a pool of two");
            let stop = Arc::clone(&awake.stop);
            assert!(!AwakeWorkers::ended(&stop));
            for n in 0..200u32 {
                let sum: u32 = (0..n).into_par_iter().with_max_len(8).sum();
                assert_eq!(sum, n * n.saturating_sub(1) / 2);
            }
            stop
        });
        // The guard was dropped as `install` returned.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !AwakeWorkers::ended(&stop) {
            assert!(Instant::now() < deadline, "the workers' jobs did not end");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
