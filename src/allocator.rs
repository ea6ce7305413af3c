//! The system allocator, tuned for tensors: every layer of a batch allocates and frees buffers
//! of megabytes, and with glibc's defaults those go back to the kernel (an `munmap`, or a heap
//! trimmed by `brk`) and come back as fresh zeroed pages, a page fault per 4 KiB. Measured on
//! a small-cnn PGD step at batch 128 (docs/performance.md): the faults cost about a fifth of
//! it, and keeping freed memory for reuse took the step from 42 ms to 33–36 ms.
//!
//! What it costs: the process keeps its peak heap resident after a burst instead of handing
//! it back (the peak itself does not change). Setting `MALLOC_MMAP_THRESHOLD_` or
//! `MALLOC_TRIM_THRESHOLD_` in the environment keeps glibc's own handling.

/// Buffers up to glibc's largest mmap threshold (32 MiB) come from the heap, and freed heap
/// memory is returned to the kernel only beyond 1 GiB. Called once at start-up; does nothing
/// on other C libraries.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let user_set = ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"]
            .iter()
            .any(|name| std::env::var_os(name).is_some());
        if !user_set {
            // SAFETY: mallopt only changes the allocator's parameters; both values are in
            // the ranges glibc documents (it ignores one it rejects and returns 0).
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
                libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
            }
        }
    }
}
