//! A pin or unpin of a block past head's end maps zeros where head would
//! fault, or the `@rev` file's data when the block existed then.
mod common;
use common::*;
use wcfs_core::{OpOk, Src};

fn db() -> Db {
    let mut db = abcd(AT1);
    db.commit(AT2, &[(F, 3, "d2")]);
    db
}

#[test]
fn unpin_past_the_new_end_maps_zeros() {
    let mut h = harness(AT1, db());
    let f = open(&mut h, F, "ok").unwrap();
    let m = mmap(&mut h, f, 0, 4);
    h.recv(&format!("2 pin {F} #3 @{AT1}"));
    assert_eq!(h.sent(), ["2 ack"]);
    assert_eq!(read(&h, m, 3), ok("d"));

    // at3 deletes #3: at3 shows zeros there, as head does: the move unpins #3.
    h.be.store.delete_from(AT3, F, 3);
    h.be.clear_trace();
    let (r, acks) = resync_one(&mut h, AT3, &[format!("4 pin {F} #3 @head")]);
    assert_eq!(r, Ok(OpOk::Done));
    assert_eq!(acks, ["4 ack"]);
    assert_eq!(pinned(&h, f), []);
    assert_eq!(reads(&h, m, 0..4), [ok("a"), ok("b"), ok("c"), ok("")]);
    let addr3 = h.conn.mapping(m).unwrap().blk_addr(3);
    let last3 = fixed_maps(&h).into_iter().rfind(|&(a, _, _)| a == addr3);
    assert_eq!(
        last3,
        Some((addr3, BS as usize, Src::Zeros)),
        "the unpin maps zeros, never head past its end"
    );
}

#[test]
fn unpin_past_the_end_outside_a_resync_maps_zeros() {
    let mut d = db();
    d.delete_from(AT3, F, 3);
    let mut h = harness(AT3, d);
    let f = open(&mut h, F, "ok").unwrap();
    let m = mmap(&mut h, f, 2, 4);
    h.recv(&format!("2 pin {F} #4 @head"));
    assert_eq!(h.sent(), ["2 ack"]);
    assert_eq!(reads(&h, m, 2..6), [ok("c"), ok(""), ok(""), ok("")]);
    assert_eq!(pinned(&h, f), []);
}

#[test]
fn setup_pin_past_the_end_of_a_new_watch_at_an_older_at_shows_its_data() {
    // Opened after the delete at an older at: the setup pins the deleted block.
    let mut d = db();
    d.delete_from(AT3, F, 3);
    let mut h = harness(AT2, d);
    let op = h.conn.open(F).unwrap();
    assert_eq!(h.poll(op), None);
    assert_eq!(h.sent(), [format!("1 watch {F} @{AT2}")]);
    h.recv(&format!("2 pin {F} #3 @{AT2}"));
    h.recv("1 ok");
    assert_eq!(h.sent(), ["2 ack"]);
    let Some(Ok(OpOk::Opened(f))) = h.poll(op) else {
        panic!("open")
    };
    assert_eq!(h.conn.file_size(f), Some(3 * BS));
    let m = mmap(&mut h, f, 0, 5);
    assert_eq!(
        reads(&h, m, 0..5),
        [ok("a"), ok("b"), ok("c"), ok("d2"), ok("")]
    );
}
