//! A resync to a revision where head is shorter (its last blocks were
//! deleted) keeps the connection up: blocks past the new end show zeros,
//! pinned blocks past it keep their pins.
mod common;
use common::*;
use wcfs_core::{ConnState, OpOk, Src};

#[test]
fn shrink_at_resync_shows_zeros_past_the_new_end() {
    let mut h = harness(AT1, abcd(AT1));
    let f = open(&mut h, F, "ok").unwrap();
    let m = mmap(&mut h, f, 0, 5);
    assert_eq!(
        reads(&h, m, 0..5),
        [ok("a"), ok("b"), ok("c"), ok("d"), ok("")]
    );

    h.be.store.delete_from(AT2, F, 3);
    let addr3 = h.conn.mapping(m).unwrap().blk_addr(3);
    assert_eq!(
        read(&h, m, 3),
        Err(addr3),
        "before the resync the view still maps head over #3: the server's limit"
    );
    h.be.clear_trace();
    let (r, acks) = resync_one(&mut h, AT2, &[]);
    assert_eq!(r, Ok(OpOk::Done));
    assert!(acks.is_empty());
    assert_eq!(h.conn.state(), ConnState::Up);
    assert_eq!(h.conn.at(), AT2);
    assert_eq!(h.conn.file_size(f), Some(3 * BS));
    assert_eq!(
        reads(&h, m, 0..5),
        [ok("a"), ok("b"), ok("c"), ok(""), ok("")]
    );
    assert_eq!(
        fixed_maps(&h),
        [(addr3, BS as usize, Src::Zeros)],
        "one map: zeros over the newly missing tail, nothing else moves"
    );
}

#[test]
fn shrink_to_nothing_keeps_the_connection_up() {
    let mut h = harness(AT1, abcd(AT1));
    let f = open(&mut h, F, "ok").unwrap();
    let m = mmap(&mut h, f, 0, 4);
    h.be.store.delete_from(AT2, F, 0);
    let (r, _) = resync_one(&mut h, AT2, &[]);
    assert_eq!(r, Ok(OpOk::Done));
    assert_eq!(h.conn.file_size(f), Some(0));
    assert_eq!(reads(&h, m, 0..4), [ok(""), ok(""), ok(""), ok("")]);
}

#[test]
fn pins_past_the_new_end_are_kept() {
    let mut d = abcd(AT1);
    d.commit(AT2, &[(F, 3, "d2")]);
    let mut h = harness(AT1, d);
    let f = open(&mut h, F, "ok").unwrap();
    let m = mmap(&mut h, f, 2, 2);
    // A head read of #3 (d2 now) pins it for this view first.
    h.recv(&format!("2 pin {F} #3 @{AT1}"));
    assert_eq!(h.sent(), ["2 ack"]);
    assert_eq!(reads(&h, m, 2..4), [ok("c"), ok("d")]);

    // at3 deletes #3; at2 still had d2, so moving to at2 pins #3 @at2.
    h.be.store.delete_from(AT3, F, 3);
    let (r, acks) = resync_one(&mut h, AT2, &[format!("4 pin {F} #3 @{AT2}")]);
    assert_eq!(r, Ok(OpOk::Done));
    assert_eq!(acks, ["4 ack"]);
    assert_eq!(h.conn.file_size(f), Some(3 * BS), "head's size, not at2's");
    assert_eq!(pinned(&h, f), [(3, AT2)]);
    assert_eq!(reads(&h, m, 2..4), [ok("c"), ok("d2")]);
}
