//! The system allocator, tuned for tensors: every layer of a batch allocates and frees buffers
//! of megabytes, and with glibc's defaults those go back to the kernel (an `munmap`, or a heap
//! trimmed by `brk`) and come back as fresh zeroed pages, a page fault per 4 KiB. Measured on
//! a small-cnn PGD step at batch 128 (docs/performance.md): the faults cost about a fifth of
//! it, and keeping freed memory for reuse took the step from 42 ms to 33–36 ms.
//!
//! What it costs: the process keeps its peak heap resident after a burst instead of handing
//! it back (the peak itself does not change), buffers over 32 MiB included (a decoded
//! dataset, checkpoint bytes), up to the 1 GiB trim threshold. Setting `MALLOC_MMAP_THRESHOLD_`,
//! `MALLOC_MMAP_MAX_` or `MALLOC_TRIM_THRESHOLD_` in the environment keeps glibc's own
//! handling.

/// Buffers come from the heap, and freed heap memory is returned to the kernel only beyond
/// 1 GiB. Called once at start-up; does nothing on other C libraries.
///
/// Turning mmap off (`M_MMAP_MAX` 0) rather than raising its threshold: `mallopt` takes a
/// threshold of at most 32 MiB, and the CIFAR-scale models' tensors at batch 128 are larger
/// (`mobilenet-v2`'s 144 × 32 × 32 activations: 75 MB). Those went to `mmap` at every
/// allocation and faulted in fresh pages: a 1 × 1 convolution's forward pass of that size took
/// 27.6 ms against 7.8 ms from the heap, `mobilenet-v2`'s forward pass 323 and 332 ms against
/// 239 and 221 (docs/performance.md, "The CIFAR-scale students per layer").
///
/// This holds for the main thread's arena, where the commands compute. A thread with an arena
/// of its own (the workbench's engine thread) still maps a buffer larger than its arena's
/// 64 MiB heaps: glibc serves those with `mmap` whatever `M_MMAP_MAX` says.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let user_set = [
            "MALLOC_MMAP_THRESHOLD_",
            "MALLOC_MMAP_MAX_",
            "MALLOC_TRIM_THRESHOLD_",
        ]
        .iter()
        .any(|name| std::env::var_os(name).is_some());
        if !user_set {
            // SAFETY: mallopt only changes the allocator's parameters; both values are in
            // the ranges glibc documents (it ignores one it rejects and returns 0).
            unsafe {
                libc::mallopt(libc::M_MMAP_MAX, 0);
                libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
            }
        }
    }
}
