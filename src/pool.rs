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

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a worker keeps looking for work, yielding its core between looks, after the last
/// job it ran; then its job ends and it sleeps as rayon's workers do, to be woken by the next
/// operation, which wakes it again ([`rearm`]). Longer than the serial gaps between the
/// operations of a training or attack step, short enough that an idle program (the
/// workbench, the REPL waiting for input) costs almost nothing.
const AWAKE_FOR: Duration = Duration::from_millis(20);

/// Whether an [`AwakeWorkers`] guard lives, the pool index of the thread that holds it, and
/// how many workers' jobs are running.
static KEEP_AWAKE: AtomicBool = AtomicBool::new(false);
static ISSUER: AtomicUsize = AtomicUsize::new(usize::MAX);
static AWAKE: AtomicUsize = AtomicUsize::new(0);
/// Workers' jobs started (for the tests).
static STARTED: AtomicUsize = AtomicUsize::new(0);

/// What `RSLAD_TUI_POOL` asks for, for measurements: unset, both steps (`Awake`); `asleep`,
/// the pool's workers sleep as rayon's do; `outside`, the thread also stays outside the pool
/// (the way before either step). Another value is refused with a warning (the default runs).
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Awake,
    Asleep,
    Outside,
}

fn mode() -> Mode {
    match std::env::var("RSLAD_TUI_POOL").as_deref() {
        Ok("asleep") => Mode::Asleep,
        Ok("outside") => Mode::Outside,
        Ok(other) => {
            eprintln!(
                "warning: RSLAD_TUI_POOL={other:?} is neither `asleep` nor `outside`; ignored"
            );
            Mode::Awake
        }
        Err(_) => Mode::Awake,
    }
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
/// (not a pool thread, a pool of one, or `RSLAD_TUI_POOL` set to `asleep` or `outside`).
pub fn compute_on_this_thread() -> Option<AwakeWorkers> {
    let mode = mode();
    if mode == Mode::Outside {
        return None;
    }
    let _ = rayon::ThreadPoolBuilder::new()
        .use_current_thread()
        .build_global();
    if mode == Mode::Asleep {
        return None;
    }
    AwakeWorkers::start()
}

/// While it lives, every other thread of the calling thread's pool runs a job that keeps
/// taking the pool's work ([`rayon::yield_now`]) instead of going to sleep between
/// operations, until it has found none for [`AWAKE_FOR`]; [`rearm`] starts them again. Dropping
/// it ends those jobs and the threads sleep as rayon's do. Which thread runs a piece of work
/// changes, not how work is split or summed: results keep their bits. One at a time.
pub struct AwakeWorkers(());

impl AwakeWorkers {
    /// `None` unless the calling thread is in a pool of two or more threads.
    fn start() -> Option<AwakeWorkers> {
        let issuer = rayon::current_thread_index()?;
        if rayon::current_num_threads() < 2 {
            return None;
        }
        ISSUER.store(issuer, Ordering::Relaxed);
        KEEP_AWAKE.store(true, Ordering::Relaxed);
        wake_workers(issuer);
        Some(AwakeWorkers(()))
    }
}

impl Drop for AwakeWorkers {
    fn drop(&mut self) {
        KEEP_AWAKE.store(false, Ordering::Relaxed);
    }
}

/// Wakes the workers again if they went to sleep after a pause: for the issuing thread before
/// its next operations (`zoo::Model::forward` calls it, as every training and attack step
/// starts with a forward pass); elsewhere, or with the workers awake, two atomic loads.
pub fn rearm() {
    if !KEEP_AWAKE.load(Ordering::Relaxed) || AWAKE.load(Ordering::Acquire) > 0 {
        return;
    }
    let issuer = ISSUER.load(Ordering::Relaxed);
    if rayon::current_thread_index() == Some(issuer) {
        wake_workers(issuer);
    }
}

/// One job on every thread of the pool; the issuer's own copy returns at once, where it runs
/// whenever the issuer next looks for work.
fn wake_workers(issuer: usize) {
    AWAKE.fetch_add(rayon::current_num_threads() - 1, Ordering::AcqRel);
    rayon::spawn_broadcast(move |context| {
        if context.index() != issuer {
            look_for_work();
            AWAKE.fetch_sub(1, Ordering::AcqRel);
        }
    });
}

/// Runs the pool's jobs as they come while the guard lives, yielding the core between them
/// (other programs' threads may run), until none came for [`AWAKE_FOR`].
fn look_for_work() {
    STARTED.fetch_add(1, Ordering::Relaxed);
    let mut last_job = Instant::now();
    while KEEP_AWAKE.load(Ordering::Relaxed) && last_job.elapsed() < AWAKE_FOR {
        match rayon::yield_now() {
            Some(rayon::Yield::Executed) => last_job = Instant::now(),
            Some(rayon::Yield::Idle) => std::thread::yield_now(),
            None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::prelude::*;

    fn wait_until(what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(Instant::now() < deadline, "{what}");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Parallel operations of pieces of a few µs each.
    fn operations() {
        let piece = |i: u32| (0..2_000u32).fold(i, |a, k| std::hint::black_box(a ^ k)) & 1;
        for n in 0..50u32 {
            let ones: u32 = (0..n).into_par_iter().with_max_len(1).map(piece).sum();
            assert_eq!(ones, (0..n).map(piece).sum::<u32>());
        }
    }

    /// The whole life of the guard, in one test as its state is the process's: none outside a
    /// pool or in a pool of one; in a pool of two joined by this thread, the other thread's job
    /// starts, this thread's operations complete with their values while it runs, it ends
    /// after a pause and `rearm` starts it again (else the worker would spin forever, or stay
    /// out of the next operations), and it ends when the guard drops. That the job takes the
    /// pool's work is measured, not tested here (docs/performance.md, "Workers kept awake":
    /// in a one-second `bench --only pgd-step` it ran 6,753 of them).
    #[test]
    fn awake_workers_take_work_sleep_after_a_pause_and_stop_with_their_guard() {
        assert!(AwakeWorkers::start().is_none());
        assert!(
            rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .expect("a pool")
                .install(AwakeWorkers::start)
                .is_none()
        );
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .use_current_thread()
            .build()
            .expect("a pool joined by this thread");
        let started = STARTED.load(Ordering::Relaxed);
        let awake = AwakeWorkers::start().expect("a pool of two");
        assert_eq!(AWAKE.load(Ordering::Acquire), 1);
        wait_until("the worker's job did not start", || {
            STARTED.load(Ordering::Relaxed) > started
        });
        operations();
        wait_until("the job did not end after a pause", || {
            AWAKE.load(Ordering::Acquire) == 0
        });
        rearm();
        assert_eq!(AWAKE.load(Ordering::Acquire), 1);
        operations();
        drop(awake);
        wait_until("the job did not end with its guard", || {
            AWAKE.load(Ordering::Acquire) == 0
        });
        rearm();
        assert_eq!(AWAKE.load(Ordering::Acquire), 0, "rearmed without a guard");
        drop(pool);
    }
}
