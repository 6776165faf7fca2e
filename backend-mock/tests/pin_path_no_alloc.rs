//! The pin path allocates nothing in steady state: a counting global
//! allocator watches `handle_bytes` + draining for thousands of pins.
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use wcfs_core::wire::{Oid, Tid};
use wcfs_core::{perform, Config, Conn, OpOk};
use wcfs_mock::QuietBackend;

struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Only this test's thread is counted (libtest's threads allocate too).
    static COUNTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn count() {
    if COUNTED.try_with(|c| c.get()).unwrap_or(false) {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: forwards to the system allocator, only counting calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as ours.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as ours.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn drain(c: &mut Conn, b: &mut QuietBackend) {
    while let Some(a) = c.poll_action() {
        let o = perform(b, &a);
        c.complete(&a, o);
    }
}

#[test]
fn pins_do_not_allocate() {
    COUNTED.with(|c| c.set(true));
    let f = Oid(1);
    let at = Tid(0x50);
    let mut c = Conn::new(
        at,
        Config {
            page_size: 1,
            ..Config::default()
        },
    );
    let mut b = QuietBackend::new(4096 * 16, 16);
    let op = c.open(f).unwrap();
    assert!(c.poll_op(op).is_none());
    drain(&mut c, &mut b);
    c.handle_bytes(b"1 ok\n");
    drain(&mut c, &mut b);
    let Some(Ok(OpOk::Opened(fh))) = c.poll_op(op) else {
        panic!()
    };
    // 100 mappings of 40 blocks over the file's 4096 blocks.
    for i in 0..100 {
        let op = c.mmap(fh, i * 40, 40).unwrap();
        drain(&mut c, &mut b);
        assert!(matches!(c.poll_op(op), Some(Ok(OpOk::Mapped(_)))));
    }
    // Warm up: the @rev file gets opened and cached.
    c.handle_bytes(format!("2 pin {f} #0 @{at}\n").as_bytes());
    drain(&mut c, &mut b);

    let lines: Vec<String> = (1..4000u64)
        .map(|i| {
            let rev = if i % 3 == 0 {
                "head".to_string()
            } else {
                at.to_string()
            };
            format!("{} pin {f} #{} @{rev}\n", 2 * (i + 1), i)
        })
        .collect();
    let (maps0, sent0) = (b.maps, b.sent);
    let before = ALLOCS.load(Ordering::Relaxed);
    for l in &lines {
        let n = c.handle_bytes(l.as_bytes());
        debug_assert_eq!(n, l.len());
        drain(&mut c, &mut b);
    }
    let allocs = ALLOCS.load(Ordering::Relaxed) - before;
    println!(
        "{} pins: {} remaps, {} acks, {allocs} allocations",
        lines.len(),
        b.maps - maps0,
        b.sent - sent0
    );
    assert_eq!(b.sent - sent0, lines.len());
    assert_eq!(allocs, 0, "the pin path allocated");
    assert!(c.pinned(fh).len() > 2000);
}
