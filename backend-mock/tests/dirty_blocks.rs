//! Blocks the user's VM layer made dirty are left alone by pins until remap_blk.
mod common;
use common::*;
use wcfs_core::wire::Tid;
use wcfs_core::OpOk;
use wcfs_mock::Mem;

const AT1: Tid = Tid(0x10);
const AT2: Tid = Tid(0x20);

#[test]
fn pin_skips_dirty_block_and_remap_blk_applies_it() {
    let mut db = Db::default();
    db.commit(AT1, &[(F, 0, "a1"), (F, 1, "b1")]);
    db.commit(AT2, &[(F, 0, "a2"), (F, 1, "b2")]);
    let mut h = harness(AT1, db);
    let f = open(&mut h, F, "ok").unwrap();
    let m = mmap(&mut h, f, 0, 2);
    h.conn.mark_dirty(m, 0).unwrap();
    let before = h.be.at(h.conn.mapping(m).unwrap().blk_addr(0));

    h.recv(&format!("2 pin {F} #0 @{AT1}"));
    h.recv(&format!("4 pin {F} #1 @{AT1}"));
    assert_eq!(h.sent(), ["2 ack", "4 ack"], "still acked");
    assert_eq!(pinned(&h, f), [(0, AT1), (1, AT1)], "still recorded");
    assert_eq!(
        h.be.at(h.conn.mapping(m).unwrap().blk_addr(0)),
        before,
        "dirty block untouched"
    );
    assert_eq!(read(&h, m, 1), ok("b1"));

    let op = h.conn.remap_blk(m, 0).unwrap();
    assert_eq!(h.poll(op), Some(Ok(OpOk::Done)));
    assert_eq!(read(&h, m, 0), ok("a1"));
}

#[test]
fn unpin_of_dirty_block_waits_for_remap_blk() {
    let mut db = Db::default();
    db.commit(AT1, &[(F, 0, "a1")]);
    db.commit(AT2, &[(F, 0, "a2")]);
    let mut h = harness(AT1, db);
    let f = open(&mut h, F, "ok").unwrap();
    let m = mmap(&mut h, f, 0, 1);
    h.recv(&format!("2 pin {F} #0 @{AT1}"));
    assert_eq!(read(&h, m, 0), ok("a1"));
    h.conn.mark_dirty(m, 0).unwrap();
    let addr = h.conn.mapping(m).unwrap().blk_addr(0);
    let op = h.conn.resync(AT2).unwrap();
    assert_eq!(h.poll(op), None);
    h.recv(&format!("4 pin {F} #0 @head"));
    h.recv("3 ok");
    assert_eq!(h.poll(op), Some(Ok(OpOk::Done)));
    assert_eq!(pinned(&h, f), []);
    assert!(
        matches!(
            h.be.at(addr),
            Some(Mem::File {
                path: wcfs_mock::Path::Rev(..),
                ..
            })
        ),
        "still the old page"
    );
    let op = h.conn.remap_blk(m, 0).unwrap();
    assert_eq!(h.poll(op), Some(Ok(OpOk::Done)));
    assert_eq!(read(&h, m, 0), ok("a2"));
}

#[test]
fn dirty_marking_is_range_checked() {
    let mut db = Db::default();
    db.commit(AT1, &[(F, 0, "a1")]);
    let mut h = harness(AT1, db);
    let f = open(&mut h, F, "ok").unwrap();
    let m = mmap(&mut h, f, 0, 1);
    assert!(h.conn.mark_dirty(m, 1).is_err());
    assert!(h.conn.remap_blk(m, 5).is_err());
}
