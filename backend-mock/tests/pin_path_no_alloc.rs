//! The pin path allocates nothing in steady state: a counting global
//! allocator watches `handle_bytes` + draining for thousands of pins.
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use wcfs_core::wire::{Oid, Tid};
use wcfs_core::{perform, Backend, Config, Conn, Errno, Fd, OpOk, Src, Stat};

struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator, only counting calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// A backend that does nothing and allocates nothing.
struct Quiet {
    next_addr: usize,
    maps: usize,
    sent: usize,
}

impl Backend for Quiet {
    fn wait_head_at(&mut self, at: Tid) -> Result<Tid, Errno> {
        Ok(at)
    }
    fn open_head(&mut self, _: Oid) -> Result<(Fd, Stat), Errno> {
        Ok((
            Fd(3),
            Stat {
                size: 4096 * 16,
                blksize: 16,
            },
        ))
    }
    fn open_rev(&mut self, _: Oid, rev: Tid) -> Result<(Fd, Stat), Errno> {
        Ok((
            Fd(100 + rev.0 as i32),
            Stat {
                size: 4096 * 16,
                blksize: 16,
            },
        ))
    }
    fn stat(&mut self, _: Fd) -> Result<Stat, Errno> {
        Ok(Stat {
            size: 4096 * 16,
            blksize: 16,
        })
    }
    fn map_new(&mut self, _: Fd, _: u64, len: usize) -> Result<usize, Errno> {
        let a = self.next_addr;
        self.next_addr += len + 4096;
        Ok(a)
    }
    fn map_fixed(&mut self, _: usize, _: usize, _: Src) -> Result<(), Errno> {
        self.maps += 1;
        Ok(())
    }
    fn unmap(&mut self, _: usize, _: usize) -> Result<(), Errno> {
        Ok(())
    }
    fn send(&mut self, _: &[u8]) -> Result<(), Errno> {
        self.sent += 1;
        Ok(())
    }
    fn close(&mut self, _: Fd) {}
    fn close_link(&mut self) {}
}

fn drain(c: &mut Conn, b: &mut Quiet) {
    while let Some(a) = c.poll_action() {
        let o = perform(b, &a);
        c.complete(&a, o);
    }
}

#[test]
fn pins_do_not_allocate() {
    let f = Oid(1);
    let at = Tid(0x50);
    let mut c = Conn::new(
        at,
        Config {
            page_size: 1,
            ..Config::default()
        },
    );
    let mut b = Quiet {
        next_addr: 0x10000,
        maps: 0,
        sent: 0,
    };
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
