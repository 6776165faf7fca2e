#![allow(dead_code)] // each test uses part of it
//! A global allocator that counts, for the threads that ask (libtest's own
//! threads allocate too), allocation calls and live heap bytes.
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};

pub struct Tracking;

static CALLS: AtomicUsize = AtomicUsize::new(0);
static LIVE: AtomicIsize = AtomicIsize::new(0);

thread_local! {
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

/// Counts this thread's allocations from now on.
pub fn count_this_thread() {
    COUNTED.with(|c| c.set(true));
}

/// Allocation calls (alloc and realloc) counted so far.
pub fn calls() -> usize {
    CALLS.load(Ordering::Relaxed)
}

/// Live bytes allocated by counted threads.
pub fn live_bytes() -> isize {
    LIVE.load(Ordering::Relaxed)
}

fn count(call: bool, delta: isize) {
    if COUNTED.try_with(|c| c.get()).unwrap_or(false) {
        if call {
            CALLS.fetch_add(1, Ordering::Relaxed);
        }
        LIVE.fetch_add(delta, Ordering::Relaxed);
    }
}

// SAFETY: forwards every call to the system allocator, only counting.
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count(true, l.size() as isize);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        count(false, -(l.size() as isize));
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        count(true, n as isize - l.size() as isize);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(p, l, n) }
    }
}
