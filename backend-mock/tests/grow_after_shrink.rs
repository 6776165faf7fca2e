//! Head shrinks, then grows back: each resync maps the tail from its
//! source at the new revision (zeros, then head), with no pins involved.
mod common;
use common::*;
use wcfs_core::{OpOk, Src};

#[test]
fn grow_after_shrink_maps_head_again() {
    let mut h = harness(AT1, abcd(AT1));
    let f = open(&mut h, F, "ok").unwrap();
    let m = mmap(&mut h, f, 0, 5);
    h.be.store.delete_from(AT2, F, 3);
    let (r, _) = resync_one(&mut h, AT2, &[]);
    assert_eq!(r, Ok(OpOk::Done));
    assert_eq!(
        reads(&h, m, 0..5),
        [ok("a"), ok("b"), ok("c"), ok(""), ok("")]
    );

    // #3 comes back: no pin (at2 shows zeros there, mapped as zeros).
    h.be.store.commit(AT3, &[(F, 3, "d3")]);
    assert_eq!(
        reads(&h, m, 0..5),
        [ok("a"), ok("b"), ok("c"), ok(""), ok("")]
    );
    h.be.clear_trace();
    let (r, acks) = resync_one(&mut h, AT3, &[]);
    assert_eq!(r, Ok(OpOk::Done));
    assert!(acks.is_empty());
    assert_eq!(h.conn.file_size(f), Some(4 * BS));
    let addr3 = h.conn.mapping(m).unwrap().blk_addr(3);
    let Some((a, len, Src::File { offset, .. })) = fixed_maps(&h).first().copied() else {
        panic!("head over #3: {:?}", fixed_maps(&h))
    };
    assert_eq!((a, len, offset), (addr3, BS as usize, 3 * BS));
    assert_eq!(fixed_maps(&h).len(), 1);
    assert_eq!(
        reads(&h, m, 0..5),
        [ok("a"), ok("b"), ok("c"), ok("d3"), ok("")]
    );
}
