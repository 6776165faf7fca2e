//! Memory the core holds per open file, per pinned block and per mapping,
//! measured with an allocator that tracks live heap bytes.
//! `cargo test --release -p wcfs-mock --test memory_per_pin -- --nocapture`

use wcfs_core::wire::{Oid, Tid};
use wcfs_core::{Config, Conn, FileId, OpOk};
use wcfs_mock::QuietBackend;

#[path = "common/tracking_alloc.rs"]
mod tracking;

#[global_allocator]
static A: tracking::Tracking = tracking::Tracking;

/// The counters are process-wide: one measuring test at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn open(c: &mut Conn, b: &mut QuietBackend, f: Oid, stream: u64) -> FileId {
    let op = c.open(f).unwrap();
    let _ = c.poll_op(op);
    c.drain_with(b);
    c.handle_bytes(format!("{stream} ok\n").as_bytes());
    c.drain_with(b);
    let Some(Ok(OpOk::Opened(fh))) = c.poll_op(op) else {
        panic!()
    };
    fh
}

fn conn() -> Conn {
    Conn::new(
        Tid(0x50),
        Config {
            page_size: 1,
            ..Config::default()
        },
    )
}

/// Live bytes an open file holds (its pin table included), with no pins.
fn bytes_per_open_file(size: u64, blksize: u64) -> isize {
    let mut c = conn();
    let mut b = QuietBackend::new(size, blksize);
    let before = tracking::live_bytes();
    let _fh = open(&mut c, &mut b, Oid(1), 1);
    let after = tracking::live_bytes();
    // What the connection's own tables took at their first use.
    let _fh2 = open(&mut c, &mut b, Oid(2), 3);
    let second = tracking::live_bytes() - after;
    println!(
        "open file of {size} bytes ({} blocks of {blksize}): {second} bytes \
         (the first file of the connection: {} bytes)",
        size / blksize,
        after - before
    );
    second
}

#[test]
fn open_file_memory_does_not_depend_on_file_size() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    tracking::count_this_thread();
    const MIB2: u64 = 2 << 20;
    let gib = bytes_per_open_file(1 << 30, MIB2);
    let tib = bytes_per_open_file(1 << 40, MIB2);
    assert_eq!(gib, tib, "a bigger file costs more memory when opened");
    assert!(tib < 4096, "an open file costs {tib} bytes");
}

#[test]
fn memory_per_pinned_block_and_per_mapping() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    tracking::count_this_thread();
    const NBLK: u64 = 100_000;
    let f = Oid(1);
    let at = Tid(0x50);
    let mut c = conn();
    let mut b = QuietBackend::new(NBLK * 16, 16);
    let before_open = tracking::live_bytes();
    let fh = open(&mut c, &mut b, f, 1);
    let opened = tracking::live_bytes() - before_open;

    let lines: Vec<String> = (0..NBLK)
        .map(|blk| format!("{} pin {f} #{blk} @{at}\n", 2 * (blk + 2)))
        .collect();
    let before_pins = tracking::live_bytes();
    let calls = tracking::calls();
    for l in &lines {
        c.handle_bytes(l.as_bytes());
        c.drain_with(&mut b);
    }
    let core_calls = tracking::calls() - calls;
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
    let per_pin = pins as f64 / NBLK as f64;
    println!(
        "open of a {NBLK}-block file: {opened} bytes; {NBLK} pins then add {pins} bytes \
         ({per_pin:.1} bytes per pinned block) in {core_calls} allocations; \
         per mapping: {per_map:.0} bytes"
    );
    // hashbrown: 16 + 1 bytes a bucket, buckets a power of two, at most 7/8 full.
    assert!(
        (17.0..=40.0).contains(&per_pin),
        "{per_pin} bytes per pinned block"
    );
    // The table doubles from PIN_HEADROOM free slots: log2(100,000 / 64) ~ 11 growths.
    assert!(core_calls <= 12, "{core_calls} allocations for {NBLK} pins");
    assert!(per_map < 1024.0);
}
