//! Memory the core holds per pinned block and per mapping, measured with an
//! allocator that tracks live heap bytes.
//! `cargo test --release -p wcfs-mock --test memory_per_pin -- --nocapture`
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use wcfs_core::wire::{Oid, Tid};
use wcfs_core::{perform, Config, Conn, OpOk};
use wcfs_mock::QuietBackend;

struct Live;
static LIVE: AtomicIsize = AtomicIsize::new(0);

thread_local! {
    /// Only this test's thread is counted (libtest's threads allocate too).
    static COUNTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn count(delta: isize) {
    if COUNTED.try_with(|c| c.get()).unwrap_or(false) {
        LIVE.fetch_add(delta, Ordering::Relaxed);
    }
}

// SAFETY: forwards to the system allocator, only counting bytes.
unsafe impl GlobalAlloc for Live {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count(l.size() as isize);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        count(-(l.size() as isize));
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        count(n as isize - l.size() as isize);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Live = Live;

fn drain(c: &mut Conn, b: &mut QuietBackend) {
    while let Some(a) = c.poll_action() {
        let o = perform(b, &a);
        c.complete(&a, o);
    }
}

#[test]
fn memory_per_pinned_block_and_per_mapping() {
    COUNTED.with(|c| c.set(true));
    const NBLK: u64 = 100_000;
    let f = Oid(1);
    let at = Tid(0x50);
    let mut c = Conn::new(
        at,
        Config {
            page_size: 1,
            ..Config::default()
        },
    );
    let mut b = QuietBackend::new(NBLK * 16, 16);
    let before_open = LIVE.load(Ordering::Relaxed);
    let op = c.open(f).unwrap();
    let _ = c.poll_op(op);
    drain(&mut c, &mut b);
    c.handle_bytes(b"1 ok\n");
    drain(&mut c, &mut b);
    let Some(Ok(OpOk::Opened(fh))) = c.poll_op(op) else {
        panic!()
    };
    let reserved = LIVE.load(Ordering::Relaxed) - before_open;

    let before_pins = LIVE.load(Ordering::Relaxed);
    for blk in 0..NBLK {
        c.handle_bytes(format!("{} pin {f} #{blk} @{at}\n", 2 * (blk + 1)).as_bytes());
        drain(&mut c, &mut b);
    }
    let pins = LIVE.load(Ordering::Relaxed) - before_pins;
    assert_eq!(c.pinned(fh).len() as u64, NBLK);

    let before_maps = LIVE.load(Ordering::Relaxed);
    let mut maps = Vec::with_capacity(1000);
    let vec_bytes = LIVE.load(Ordering::Relaxed) - before_maps;
    for i in 0..1000 {
        let op = c.mmap(fh, i * 100, 100).unwrap();
        drain(&mut c, &mut b);
        let Some(Ok(OpOk::Mapped(m))) = c.poll_op(op) else {
            panic!()
        };
        maps.push(m);
    }
    let per_map = (LIVE.load(Ordering::Relaxed) - before_maps - vec_bytes) as f64 / 1000.0;
    println!(
        "open of a {NBLK}-block file reserves {reserved} bytes for pins ({:.1} bytes per block); \
         {NBLK} pins then add {pins} bytes; per mapping: {per_map:.0} bytes",
        reserved as f64 / NBLK as f64
    );
    assert_eq!(
        pins, 0,
        "pins within the reserved capacity allocate nothing more"
    );
    assert!(per_map < 1024.0);
}
