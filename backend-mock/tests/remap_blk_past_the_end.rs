//! A dirty block past the new end is the user's until `remap_blk`, which
//! then maps zeros (head would fault there).
mod common;
use common::*;
use wcfs_core::wire::Tid;
use wcfs_core::{OpOk, Src};

const AT1: Tid = Tid(0x10);
const AT2: Tid = Tid(0x20);

#[test]
fn remap_blk_past_the_new_end_maps_zeros() {
    let mut d = Db::default();
    d.commit(AT1, &[(F, 0, "a"), (F, 1, "b"), (F, 2, "c")]);
    let mut h = harness(AT1, d);
    let f = open(&mut h, F, "ok").unwrap();
    let m = mmap(&mut h, f, 0, 3);
    h.conn.mark_dirty(m, 2).unwrap();
    let addr2 = h.conn.mapping(m).unwrap().blk_addr(2);
    let before = h.be.at(addr2);

    h.be.store.delete_from(AT2, F, 1);
    let (r, _) = resync_one(&mut h, AT2, &[]);
    assert_eq!(r, Ok(OpOk::Done));
    assert_eq!(reads(&h, m, 0..2), [ok("a"), ok("")]);
    assert_eq!(h.be.at(addr2), before, "the dirty block is left alone");

    h.be.clear_trace();
    let op = h.conn.remap_blk(m, 2).unwrap();
    assert_eq!(h.poll(op), Some(Ok(OpOk::Done)));
    assert_eq!(fixed_maps(&h), [(addr2, BS as usize, Src::Zeros)]);
    assert_eq!(read(&h, m, 2), ok(""));
}
