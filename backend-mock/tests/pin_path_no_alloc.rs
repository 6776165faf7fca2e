//! The pin path allocates nothing in steady state, and rarely while the
//! pins in force grow. A counting global allocator watches `handle_bytes`
//! and draining for 10,000 pins of new blocks, then for 10,000 more pins
//! (re-pins and unpins) over the same blocks.
//!
//! `cargo test --release -p wcfs-mock --test pin_path_no_alloc -- --nocapture`

use wcfs_core::conn::PIN_HEADROOM;
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
    const NBLK: u64 = 16_384;
    const N: u64 = 10_000;
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
    let op = c.open(f).unwrap();
    assert!(c.poll_op(op).is_none());
    c.drain_with(&mut b);
    c.handle_bytes(b"1 ok\n");
    c.drain_with(&mut b);
    let Some(Ok(OpOk::Opened(fh))) = c.poll_op(op) else {
        panic!()
    };
    // 100 mappings of 100 blocks over the first 10,000 blocks.
    for i in 0..100 {
        let op = c.mmap(fh, i * 100, 100).unwrap();
        c.drain_with(&mut b);
        assert!(matches!(c.poll_op(op), Some(Ok(OpOk::Mapped(_)))));
    }
    // Warm up: the @rev file gets opened and cached.
    c.handle_bytes(format!("2 pin {f} #{} @{at}\n", NBLK - 1).as_bytes());
    c.drain_with(&mut b);
    let mut stream = 2;
    let mut pins = |c: &mut Conn, b: &mut QuietBackend, head: &dyn Fn(u64) -> bool| {
        let lines: Vec<String> = (0..N)
            .map(|blk| {
                stream += 2;
                let rev = if head(blk) {
                    "head".to_string()
                } else {
                    at.to_string()
                };
                format!("{stream} pin {f} #{blk} @{rev}\n")
            })
            .collect();
        let (maps0, sent0) = (b.maps, b.sent);
        let before = tracking::calls();
        for l in &lines {
            let n = c.handle_bytes(l.as_bytes());
            debug_assert_eq!(n, l.len());
            c.drain_with(b);
        }
        assert_eq!(b.sent - sent0, lines.len());
        (tracking::calls() - before, b.maps - maps0)
    };

    // Growth: 10,000 new pins from a table sized for PIN_HEADROOM.
    let (grow, maps) = pins(&mut c, &mut b, &|_| false);
    let in_force = c.pinned(fh).len();
    println!(
        "{N} pins of new blocks ({in_force} in force): {maps} remaps, {grow} allocations \
         (the pin table doubling from {PIN_HEADROOM} free slots)"
    );
    assert_eq!(in_force as u64, N + 1);
    // Doubling from >= PIN_HEADROOM: at most log2(N / PIN_HEADROOM) + 1 growths.
    let bound = (N as f64 / PIN_HEADROOM as f64).log2().ceil() as usize + 1;
    assert!(
        grow <= bound,
        "{grow} allocations for {N} pins: the table does not grow by doubling"
    );
    assert!(grow > 0, "the table was sized by the file, not by the pins");

    // Steady state: re-pins and unpins of the same blocks.
    let (steady, maps) = pins(&mut c, &mut b, &|blk| blk % 3 == 0);
    println!("{N} re-pins and unpins: {maps} remaps, {steady} allocations");
    assert_eq!(steady, 0, "the pin path allocated in steady state");
    let (again, _) = pins(&mut c, &mut b, &|_| false);
    assert_eq!(again, 0, "re-pinning within the reached capacity allocated");
    assert_eq!(c.pinned(fh).len() as u64, N + 1);
}
