//! Memory the core holds per pinned block and per mapping, measured with an
//! allocator that tracks live heap bytes.
//! `cargo test --release -p wcfs-mock --test memory_per_pin -- --nocapture`

use wcfs_core::wire::{Oid, Tid};
use wcfs_core::{Config, Conn, OpOk};
use wcfs_mock::QuietBackend;

#[path = "common/tracking_alloc.rs"]
mod tracking;

#[global_allocator]
static A: tracking::Tracking = tracking::Tracking;

#[test]
fn memory_per_pinned_block_and_per_mapping() {
    tracking::count_this_thread();
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
    let before_open = tracking::live_bytes();
    let op = c.open(f).unwrap();
    let _ = c.poll_op(op);
    c.drain_with(&mut b);
    c.handle_bytes(b"1 ok\n");
    c.drain_with(&mut b);
    let Some(Ok(OpOk::Opened(fh))) = c.poll_op(op) else {
        panic!()
    };
    let reserved = tracking::live_bytes() - before_open;

    let before_pins = tracking::live_bytes();
    for blk in 0..NBLK {
        c.handle_bytes(format!("{} pin {f} #{blk} @{at}\n", 2 * (blk + 1)).as_bytes());
        c.drain_with(&mut b);
    }
    let pins = tracking::live_bytes() - before_pins;
    assert_eq!(c.pinned(fh).len() as u64, NBLK);

    let before_maps = tracking::live_bytes();
    let mut maps = Vec::with_capacity(1000);
    let vec_bytes = tracking::live_bytes() - before_maps;
    for i in 0..1000 {
        let op = c.mmap(fh, i * 100, 100).unwrap();
        c.drain_with(&mut b);
        let Some(Ok(OpOk::Mapped(m))) = c.poll_op(op) else {
            panic!()
        };
        maps.push(m);
    }
    let per_map = (tracking::live_bytes() - before_maps - vec_bytes) as f64 / 1000.0;
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
