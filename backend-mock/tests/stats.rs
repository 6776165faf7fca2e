//! Per-connection statistics: what the core counts, exactly.
mod common;
use common::*;
use wcfs_core::wire::Tid;
use wcfs_core::{ConnStats, OpOk};

const AT1: Tid = Tid(0x10);
const AT2: Tid = Tid(0x20);
const AT3: Tid = Tid(0x30);

fn db() -> Db {
    let mut db = Db::default();
    db.commit(AT1, &[(F, 0, "a1"), (F, 1, "b1"), (F, 2, "c1")]);
    db.commit(AT2, &[(F, 0, "a2"), (F, 1, "b2")]);
    db.commit(AT3, &[(F, 2, "c3")]);
    db
}

/// The counters only (the histogram is the driver's).
fn counts(s: &ConnStats) -> [u64; 8] {
    [
        s.pins,
        s.unpins,
        s.acks,
        s.naks,
        s.rev_opens,
        s.rev_hits,
        s.remaps,
        s.resyncs,
    ]
}

#[test]
fn counts_pins_acks_rev_files_remaps_resyncs() {
    let mut h = harness(AT1, db());
    let f = open(&mut h, F, "ok").unwrap();
    let m1 = mmap(&mut h, f, 0, 3);
    let _m2 = mmap(&mut h, f, 0, 1);
    assert_eq!(counts(&h.conn.stats()), [0; 8]);

    // A pin opening its @rev file, remapping block 0 in both mappings.
    h.recv(&format!("2 pin {F} #0 @{AT1}"));
    // A pin to the same revision: cache hit, one mapping shows block 1.
    h.recv(&format!("4 pin {F} #1 @{AT1}"));
    assert_eq!(h.sent(), ["2 ack", "4 ack"]);
    //                     pins unpins acks naks opens hits remaps resyncs
    assert_eq!(counts(&h.conn.stats()), [2, 0, 2, 0, 1, 1, 3, 0]);

    // remap_blk of a pinned block: one block remapped, from the cache.
    let op = h.conn.remap_blk(m1, 1).unwrap();
    assert_eq!(h.poll(op), Some(Ok(OpOk::Done)));
    assert_eq!(counts(&h.conn.stats()), [2, 0, 2, 0, 1, 1, 4, 0]);

    // Resync to AT3: the server unpins #0 and #1 before its `ok`.
    let op = h.conn.resync(AT3).unwrap();
    assert_eq!(h.poll(op), None);
    let watch = h.sent();
    assert_eq!(watch.len(), 1, "{watch:?}");
    h.recv(&format!("6 pin {F} #0 @head"));
    h.recv(&format!("8 pin {F} #1 @head"));
    assert_eq!(h.sent(), ["6 ack", "8 ack"]);
    let stream = watch[0].split(' ').next().unwrap().to_string();
    h.recv(&format!("{stream} ok"));
    assert_eq!(h.poll(op), Some(Ok(OpOk::Done)));
    assert_eq!(counts(&h.conn.stats()), [2, 2, 4, 0, 1, 1, 7, 1]);
    assert_eq!(read(&h, m1, 2), ok("c3"));

    // A bad pin: nak, connection down.
    h.recv(&format!("10 pin {F} #0 @{}", Tid(0x99)));
    assert!(h.sent().iter().any(|l| l.starts_with("10 nak")));
    let s = h.conn.stats();
    assert_eq!(counts(&s), [2, 2, 4, 1, 1, 1, 7, 1]);
    assert_eq!(s.pin_times(), 0, "the core has no clock");
}

#[test]
fn pin_times_go_through_the_conn_and_counting_can_be_switched_off() {
    let mut h = harness(AT1, db());
    let f = open(&mut h, F, "ok").unwrap();
    mmap(&mut h, f, 0, 1);
    let reader = h.conn.stats_handle();
    h.conn.record_pin_time(1000); // [992, 1024)
    h.conn.record_pin_time(3000); // [2944, 3072)
    let s = reader.snapshot();
    let b = wcfs_core::pin_time_bucket;
    assert_eq!((b(1000), b(3000)), (16 * 6 + 15, 16 * 8 + 7));
    assert_eq!(
        (
            s.pin_time_ns[b(1000)],
            s.pin_time_ns[b(3000)],
            s.pin_times()
        ),
        (1, 1, 2)
    );

    h.conn.set_counting(false);
    h.recv(&format!("2 pin {F} #0 @{AT1}"));
    assert_eq!(h.sent(), ["2 ack"]);
    h.conn.record_pin_time(1000);
    assert_eq!(reader.snapshot(), s, "nothing counted while off");

    h.conn.set_counting(true);
    h.recv(&format!("4 pin {F} #0 @head"));
    let d = reader.snapshot().since(&s);
    assert_eq!(counts(&d), [0, 1, 1, 0, 0, 0, 1, 0]);
}
