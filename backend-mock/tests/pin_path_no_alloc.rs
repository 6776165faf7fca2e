//! The pin path allocates nothing in steady state: a counting global
//! allocator watches `handle_bytes` + draining for thousands of pins.

use wcfs_core::wire::{Oid, Tid};
use wcfs_core::{Config, Conn, OpOk};
use wcfs_mock::QuietBackend;

#[path = "common/tracking_alloc.rs"]
mod tracking;

#[global_allocator]
static A: tracking::Tracking = tracking::Tracking;

#[test]
fn pins_do_not_allocate() {
    tracking::count_this_thread();
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
    c.drain_with(&mut b);
    c.handle_bytes(b"1 ok\n");
    c.drain_with(&mut b);
    let Some(Ok(OpOk::Opened(fh))) = c.poll_op(op) else {
        panic!()
    };
    // 100 mappings of 40 blocks over the file's 4096 blocks.
    for i in 0..100 {
        let op = c.mmap(fh, i * 40, 40).unwrap();
        c.drain_with(&mut b);
        assert!(matches!(c.poll_op(op), Some(Ok(OpOk::Mapped(_)))));
    }
    // Warm up: the @rev file gets opened and cached.
    c.handle_bytes(format!("2 pin {f} #0 @{at}\n").as_bytes());
    c.drain_with(&mut b);

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
    let before = tracking::calls();
    for l in &lines {
        let n = c.handle_bytes(l.as_bytes());
        debug_assert_eq!(n, l.len());
        c.drain_with(&mut b);
    }
    let allocs = tracking::calls() - before;
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
