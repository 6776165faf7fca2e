//! After a resync across a shrink, a new mapping shows zeros past the new end.
mod common;
use common::*;
use wcfs_core::{OpOk, Src};

#[test]
fn mmap_after_a_shrink_maps_zeros_past_the_new_end() {
    let mut h = harness(AT1, abcd(AT1));
    let f = open(&mut h, F, "ok").unwrap();
    h.be.store.delete_from(AT2, F, 2);
    let (r, _) = resync_one(&mut h, AT2, &[]);
    assert_eq!(r, Ok(OpOk::Done));

    h.be.clear_trace();
    let m = mmap(&mut h, f, 1, 4);
    assert_eq!(reads(&h, m, 1..5), [ok("b"), ok(""), ok(""), ok("")]);
    let addr2 = h.conn.mapping(m).unwrap().blk_addr(2);
    assert_eq!(
        fixed_maps(&h),
        [(addr2, 3 * BS as usize, Src::Zeros)],
        "head over #1, zeros over #2..#5 in one map"
    );

    let past = mmap(&mut h, f, 2, 2);
    assert_eq!(reads(&h, past, 2..4), [ok(""), ok("")]);
}
