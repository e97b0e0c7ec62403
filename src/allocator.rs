//! The memory allocator: how the binary's allocator is tuned, and how the memory budget
//! gives freed memory back to the system.
//!
//! The `resetscope` binary allocates with mimalloc (the `mimalloc` crate, vendored C built
//! with the crate: no system library). With glibc's allocator, most of the cost of two
//! threads was the allocator itself: the shards allocate each connection's verdict and the
//! reading thread frees it, which glibc does under the lock of the arena that made it
//! (`docs/benchmark.md` has the figures). mimalloc frees a block of another thread onto
//! that thread's own list, without a lock.
//!
//! mimalloc keeps freed pages resident for a while (a second by default) and backs large
//! regions with transparent huge pages, both of which make the resident memory run ahead
//! of what the budget counts. mimalloc is built without its huge-page advice (feature
//! `no_thp`), [`tune`] purges at once and turns huge pages off for the process, and
//! [`release_free_memory`], called after each shedding, collects the thread's free pages.
//! The library itself does not choose the allocator: its tests and fuzz targets run on the
//! system's, and both functions are harmless there.

use std::ffi::{c_int, c_long};

/// mimalloc v3's options, as numbered by `mi_option_t` in its `mimalloc.h` (the Rust
/// bindings name only v2's). A test checks them, and some of their neighbours, against the
/// defaults of v3's `src/options.c`.
mod option {
    use std::ffi::c_int;
    /// Milliseconds before freed memory is given back (default 1000; 0: at once).
    pub const PURGE_DELAY: c_int = 15;
}

/// Tunes the allocator for a bounded resident memory: freed memory is given back at once,
/// and no transparent huge pages (a 2 MiB page is resident as soon as one byte of it is
/// touched). Call first thing in `main`. Measured on 20,000 connections with 4 KiB
/// half-heads under `--memory 64M` (tests/hostile.rs): peak RSS 78 to 125 MiB with
/// mimalloc's defaults, 67 to 74 with these.
pub fn tune() {
    set(option::PURGE_DELAY, 0);
    #[cfg(target_os = "linux")]
    {
        extern "C" {
            fn prctl(option: c_int, ...) -> c_int;
        }
        /// `PR_SET_THP_DISABLE` (linux/prctl.h): no transparent huge page for this process,
        /// even where the system gives them without being asked (`enabled` = `always`).
        const PR_SET_THP_DISABLE: c_int = 41;
        // SAFETY: prctl with PR_SET_THP_DISABLE takes integers only and changes a flag of
        // this process; a kernel without it returns EINVAL, which changes nothing.
        unsafe {
            prctl(
                PR_SET_THP_DISABLE,
                1 as std::ffi::c_ulong,
                0 as std::ffi::c_ulong,
                0 as std::ffi::c_ulong,
                0 as std::ffi::c_ulong,
            );
        }
    }
}

fn set(option: c_int, value: c_long) {
    // SAFETY: mi_option_set takes two integers and only stores the value in mimalloc's
    // option table; an option number it does not know is ignored.
    unsafe { libmimalloc_sys::mi_option_set(option, value) }
}

/// Gives the allocator's free memory back to the system, after the memory budget made the
/// analysis give up state. Shedding frees many blocks scattered through the heap (heads,
/// out-of-order buffers), which allocators keep for reuse: without this, the resident
/// memory of a run that shed was three times what it held under glibc (3,000 connections
/// with 64 KiB half-heads under `--memory 64M`: 80 MiB resident for 22 MB allocated; 33
/// MiB with it).
pub fn release_free_memory() {
    // SAFETY: mi_collect takes no pointer; it walks the calling thread's own heap.
    unsafe { libmimalloc_sys::mi_collect(true) };
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            /// glibc: releases free memory at the top of the heap and, since glibc 2.8,
            /// every free page inside it (`madvise(MADV_DONTNEED)`); returns whether any was.
            fn malloc_trim(pad: usize) -> c_int;
        }
        // SAFETY: malloc_trim takes no pointer and may be called at any time; it only
        // walks the allocator's own free lists under its lock.
        unsafe {
            malloc_trim(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::option;
    use std::ffi::c_int;

    fn get(option: c_int) -> std::ffi::c_long {
        // SAFETY: reads one entry of mimalloc's option table.
        unsafe { libmimalloc_sys::mi_option_get(option) }
    }

    /// The option numbers are v3's: ours and options around them have v3's defaults
    /// until they are set (the test process does not call `tune`, and no
    /// `MIMALLOC_*` variable is set by the test command).
    #[test]
    fn option_numbers_are_mimalloc_v3s() {
        if std::env::vars().any(|(k, _)| k.starts_with("MIMALLOC_")) {
            eprintln!("skipped: MIMALLOC_* variables are set");
            return;
        }
        assert_eq!(get(option::PURGE_DELAY), 1000, "purge_delay");
        assert_eq!(get(19), 32, "max_errors");
        assert_eq!(get(27), 400, "retry_on_oom");
        assert_eq!(get(34), 10_000, "generic_collect");
        assert_eq!(get(37), 4, "page_max_candidates");
        assert_eq!(get(43), 1, "allow_thp");
    }
}
