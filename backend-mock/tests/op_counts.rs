//! The OS operations each client operation costs (the syscall budget).
mod common;
use common::*;
use wcfs_core::wire::{Oid, Tid};
use wcfs_core::OpOk;
use wcfs_mock::Counts;

const AT1: Tid = Tid(0x10);
const AT2: Tid = Tid(0x20);

#[test]
fn one_pin_on_a_file_with_one_mapping() {
    let mut db = Db::default();
    db.commit(AT1, &[(F, 0, "a"), (F, 1, "b")]);
    db.commit(AT2, &[(F, 0, "A"), (F, 1, "B")]);
    let mut h = harness(AT1, db);
    let f = open(&mut h, F, "ok").unwrap();
    let _m = mmap(&mut h, f, 0, 2);

    h.be.clear_trace();
    h.recv(&format!("2 pin {F} #0 @{AT1}"));
    let first = h.be.counts();
    println!("first pin of a revision: {first:?}");
    assert_eq!(
        first,
        Counts {
            open: 1,
            fstat: 1,
            mmap: 1,
            write: 1,
            ..Default::default()
        }
    );

    h.be.clear_trace();
    h.recv(&format!("4 pin {F} #1 @{AT1}"));
    let steady = h.be.counts();
    println!("steady-state pin: {steady:?} = {} syscalls", steady.total());
    assert_eq!(
        steady,
        Counts {
            mmap: 1,
            write: 1,
            ..Default::default()
        }
    );
}

#[test]
fn mmap_of_16_blocks_with_10000_pins_elsewhere() {
    let mut db = Db::default();
    db.commit(AT1, &[(F, 20_015, "x")]);
    db.commit(AT2, &[(F, 20_015, "y")]);
    let mut h = harness(AT1, db);
    let f = open(&mut h, F, "ok").unwrap();
    for i in 0..10_000u64 {
        h.recv(&format!("{} pin {F} #{} @{AT1}", 2 * (i + 1), 10_000 + i));
    }
    assert_eq!(h.conn.pinned(f).len(), 10_000);
    h.sent();
    h.be.clear_trace();
    let _m = mmap(&mut h, f, 0, 16);
    let c = h.be.counts();
    println!("mmap(16 blocks), 10000 pins elsewhere: {c:?}");
    assert_eq!(
        c,
        Counts {
            mmap: 1,
            ..Default::default()
        }
    );
}

#[test]
fn resync_of_64_open_files() {
    let mut db = Db::default();
    let oids: Vec<Oid> = (1..=64).map(Oid).collect();
    let changes: Vec<(Oid, u64, &str)> = oids.iter().map(|&o| (o, 0, "a")).collect();
    db.commit(AT1, &changes);
    db.commit(AT2, &[(Oid(1), 0, "b")]);
    let mut h = harness(AT1, db);
    for &o in &oids {
        open(&mut h, o, "ok").unwrap();
    }
    h.be.clear_trace();
    let rs = h.conn.resync(AT2).unwrap();
    assert_eq!(h.poll(rs), None);
    let sent = h.sent();
    assert_eq!(sent.len(), 64, "all 64 watch requests in flight together");
    for line in &sent {
        let s = line.split(' ').next().unwrap();
        h.recv(&format!("{s} ok"));
    }
    assert_eq!(h.poll(rs), Some(Ok(OpOk::Done)));
    let c = h.be.counts();
    println!("resync of 64 files: {c:?} = {} syscalls", c.total());
    assert_eq!(
        c,
        Counts {
            open: 1,
            fstat: 64,
            write: 64,
            close: 1,
            ..Default::default()
        }
    );
}
