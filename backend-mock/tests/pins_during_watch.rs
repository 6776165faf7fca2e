//! Pins and unpins arrive while a watch request is in flight (open and resync).
mod common;
use common::*;
use wcfs_core::wire::Tid;
use wcfs_core::OpOk;

const A: Tid = Tid(0x040d3dfb078a3c22);
const B: Tid = Tid(0x040d3dfb08ebeb99);
const C: Tid = Tid(0x040d3dfb0a880eee);

fn db() -> Db {
    let mut db = Db::default();
    db.commit(A, &[(F, 0, "a0"), (F, 1, "a1"), (F, 2, "a2")]);
    db.commit(Tid(0x040d3dfb08000000), &[(F, 0, "x0"), (F, 2, "x2")]);
    db.commit(C, &[(F, 1, "c1"), (F, 0, "c0"), (F, 2, "c2")]);
    db
}

/// The recorded exchange of PROTOCOL section 4, from the client's side.
#[test]
fn recorded_setup_lazy_pin_and_move_forward() {
    let mut h = harness(B, db());
    let op = h.conn.open(F).unwrap();
    assert_eq!(h.poll(op), None);
    assert_eq!(h.sent(), [format!("1 watch {F} @{B}")]);
    h.recv(&format!("2 pin {F} #2 @{A}"));
    assert_eq!(h.sent(), ["2 ack"]);
    h.recv(&format!("4 pin {F} #0 @{A}"));
    assert_eq!(h.sent(), ["4 ack"]);
    assert_eq!(h.poll(op), None, "no ok yet");
    h.recv("1 ok");
    let Some(Ok(OpOk::Opened(f))) = h.poll(op) else {
        panic!()
    };
    assert_eq!(pinned(&h, f), [(0, A), (2, A)]);

    // A mapping made after the pins applies them.
    let m = mmap(&mut h, f, 0, 3);
    assert_eq!(reads(&h, m, 0..3), [ok("a0"), ok("c1"), ok("a2")]);
    // The lazy pin of #1 on a head read.
    h.recv(&format!("6 pin {F} #1 @{A}"));
    assert_eq!(h.sent(), ["6 ack"]);
    assert_eq!(reads(&h, m, 0..3), [ok("a0"), ok("a1"), ok("a2")]);

    // Move forward: everything is unpinned while the watch is in flight.
    let op = h.conn.resync(C).unwrap();
    assert_eq!(h.poll(op), None);
    assert_eq!(h.sent(), [format!("3 watch {F} @{C}")]);
    for (s, b) in [(8, 1), (10, 2), (12, 0)] {
        h.recv(&format!("{s} pin {F} #{b} @head"));
        assert_eq!(h.sent(), [format!("{s} ack")]);
        assert_eq!(h.poll(op), None);
    }
    h.recv("3 ok");
    assert_eq!(h.poll(op), Some(Ok(OpOk::Done)));
    assert_eq!(pinned(&h, f), []);
    assert_eq!(reads(&h, m, 0..3), [ok("c0"), ok("c1"), ok("c2")]);
}

#[test]
fn pins_for_two_files_during_concurrent_opens() {
    let mut d = Db::default();
    d.commit(A, &[(F, 1, "a1"), (G, 0, "g0")]);
    d.commit(C, &[(F, 1, "c1")]);
    d.commit(Tid(0x040d3dfb0b000000), &[(G, 0, "g1")]);
    let mut h = harness(C, d);
    let o1 = h.conn.open(F).unwrap();
    let o2 = h.conn.open(G).unwrap();
    assert_eq!(h.poll(o1), None);
    assert_eq!(h.poll(o2), None);
    assert_eq!(
        h.sent(),
        [format!("1 watch {F} @{C}"), format!("3 watch {G} @{C}")]
    );
    h.recv(&format!("2 pin {G} #0 @{C}"));
    h.recv("3 ok");
    h.recv(&format!("4 pin {F} #1 @{A}"));
    h.recv("1 ok");
    assert_eq!(h.sent(), ["2 ack", "4 ack"]);
    let Some(Ok(OpOk::Opened(f))) = h.poll(o1) else {
        panic!()
    };
    let Some(Ok(OpOk::Opened(g))) = h.poll(o2) else {
        panic!()
    };
    assert_eq!(pinned(&h, f), [(1, A)]);
    assert_eq!(pinned(&h, g), [(0, C)]);
}

#[test]
fn pin_past_every_mapping_is_recorded_and_acked() {
    let mut h = harness(C, db());
    let f = open(&mut h, F, "ok").unwrap();
    let m = mmap(&mut h, f, 0, 1);
    h.be.clear_trace();
    h.recv(&format!("2 pin {F} #2 @{A}"));
    assert_eq!(h.sent(), ["2 ack"]);
    assert_eq!(pinned(&h, f), [(2, A)]);
    assert!(
        !h.be
            .trace()
            .iter()
            .any(|c| matches!(c, wcfs_mock::Call::MapFixed { .. })),
        "nothing to remap"
    );
    assert_eq!(read(&h, m, 0), ok("c0"));
    // A later mapping over #2 applies it.
    let m2 = mmap(&mut h, f, 1, 2);
    assert_eq!(reads(&h, m2, 1..3), [ok("c1"), ok("a2")]);
}

#[test]
fn pin_to_rev_where_block_is_past_the_end_maps_zeros() {
    let mut d = Db::default();
    d.commit(A, &[(F, 0, "a0")]);
    d.commit(C, &[(F, 3, "c3")]);
    let mut h = harness(A, d);
    let f = open(&mut h, F, "ok").unwrap();
    let m = mmap(&mut h, f, 0, 4);
    assert_eq!(read(&h, m, 3), ok("c3"), "head, before the pin");
    h.recv(&format!("2 pin {F} #3 @{A}"));
    assert_eq!(h.sent(), ["2 ack"]);
    assert_eq!(read(&h, m, 3), ok(""), "@rev file too short: zeros");
}
