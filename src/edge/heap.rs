//! Heap accounting for the `diagnostics` build: a global allocator that
//! counts the bytes the worker's Rust code holds, so a benchmark can read
//! how much one queue consumer invocation needed at its peak.
//!
//! Only in a wasm32 build with the `diagnostics` feature: release builds
//! keep the plain allocator, and native tests never see this one. It adds a
//! counter update to every allocation. What it counts is the Rust heap in
//! the wasm linear memory: bytes the JavaScript side holds (request and
//! response bodies in flight, socket buffers) are not in it, and the linear
//! memory itself, which never shrinks, is reported beside it.
//! Must not: change how memory is allocated, or decide anything.

use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicUsize, Ordering};
use std::alloc::System;

/// Bytes held now.
static CURRENT: AtomicUsize = AtomicUsize::new(0);
/// The most bytes held at once since the last [`start`].
static PEAK: AtomicUsize = AtomicUsize::new(0);

struct Counting;

fn grew(bytes: usize) {
    let now = CURRENT.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

fn shrank(bytes: usize) {
    CURRENT.fetch_sub(bytes, Ordering::Relaxed);
}

// SAFETY: every call goes to the system allocator with the caller's own
// arguments; the counters only observe sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            grew(layout.size());
        }
        pointer
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let pointer = unsafe { System.alloc_zeroed(layout) };
        if !pointer.is_null() {
            grew(layout.size());
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds `GlobalAlloc::dealloc`'s contract.
        unsafe { System.dealloc(pointer, layout) };
        shrank(layout.size());
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract.
        let moved = unsafe { System.realloc(pointer, layout, new_size) };
        if !moved.is_null() {
            shrank(layout.size());
            grew(new_size);
        }
        moved
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The heap when a measured stretch began.
#[derive(Clone, Copy, Debug)]
pub struct Mark {
    held: usize,
}

/// Starts a measured stretch: the peak starts again from what is held now.
pub fn start() -> Mark {
    let held = CURRENT.load(Ordering::Relaxed);
    PEAK.store(held, Ordering::Relaxed);
    Mark { held }
}

/// What a stretch used: the heap held when it began, its peak, and the
/// linear memory's size now (all in bytes).
#[derive(Clone, Copy, Debug)]
pub struct Usage {
    pub held_at_start: usize,
    pub peak: usize,
    pub linear_memory: usize,
}

/// The stretch begun at `mark`, so far.
pub fn usage(mark: Mark) -> Usage {
    Usage {
        held_at_start: mark.held,
        peak: PEAK.load(Ordering::Relaxed),
        linear_memory: core::arch::wasm32::memory_size(0) * 65_536,
    }
}
