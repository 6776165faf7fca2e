//! PROTOCOL section 7, step by step, on the mock OS with a scripted server.
mod common;
use common::*;
use wcfs_core::wire::Tid;
use wcfs_core::{ConnState, Error, OpOk};

const AT1: Tid = Tid(0x0100);
const AT2: Tid = Tid(0x0200);
const AT3: Tid = Tid(0x0300);

#[test]
fn reference_scenario() {
    let mut db = Db::default();
    db.commit(AT1, &[(F, 2, "c1"), (F, 3, "d1")]);
    db.commit(AT2, &[(F, 2, "c2")]);
    let mut h = harness(AT1, db);

    // 1. connect(at1), open, mmap(2, 3): one block past the file's end.
    let fh = open(&mut h, F, "ok").unwrap();
    let m = mmap(&mut h, fh, 2, 3);
    assert_eq!(pinned(&h, fh), []);

    // 2. reading #2 goes to head, which has c2: the server pins #2 first.
    h.recv(&format!("2 pin {F} #2 @{AT1}"));
    assert_eq!(h.sent(), ["2 ack"]);
    assert_eq!(reads(&h, m, 2..5), [ok("c1"), ok("d1"), ok("")]);
    assert_eq!(pinned(&h, fh), [(2, AT1)]);

    // 3. at3 changes #3 and grows the file; reading #3 pins it.
    h.be.store.commit(AT3, &[(F, 3, "d3"), (F, 4, "e3")]);
    h.recv(&format!("4 pin {F} #3 @{AT1}"));
    assert_eq!(h.sent(), ["4 ack"]);
    assert_eq!(reads(&h, m, 2..5), [ok("c1"), ok("d1"), ok("")]);
    assert_eq!(pinned(&h, fh), [(2, AT1), (3, AT1)]);

    // 4. resync(at2): #2 unpinned, #3 stays d1, #4 stays zeros (it did not exist at at2).
    let op = h.conn.resync(AT2).unwrap();
    assert_eq!(h.poll(op), None);
    assert_eq!(h.sent(), [format!("3 watch {F} @{AT2}")]);
    h.recv(&format!("6 pin {F} #2 @head"));
    h.recv(&format!("8 pin {F} #4 @{AT2}")); // head #4 = e3 now differs from at2
    h.recv("3 ok");
    assert_eq!(h.sent(), ["6 ack", "8 ack"]);
    assert_eq!(h.poll(op), Some(Ok(OpOk::Done)));
    assert_eq!(h.conn.at(), AT2);
    assert_eq!(reads(&h, m, 2..5), [ok("c2"), ok("d1"), ok("")]);
    assert_eq!(pinned(&h, fh), [(3, AT1), (4, AT2)]);

    // 5. resync(at3): everything unpinned.
    let op = h.conn.resync(AT3).unwrap();
    assert_eq!(h.poll(op), None);
    assert_eq!(h.sent(), [format!("5 watch {F} @{AT3}")]);
    h.recv(&format!("10 pin {F} #3 @head"));
    h.recv(&format!("12 pin {F} #4 @head"));
    h.recv("5 ok");
    assert_eq!(h.sent(), ["10 ack", "12 ack"]);
    assert_eq!(h.poll(op), Some(Ok(OpOk::Done)));
    assert_eq!(pinned(&h, fh), []);
    assert_eq!(reads(&h, m, 2..5), [ok("c2"), ok("d3"), ok("e3")]);

    // 6. a mapping wholly past the end reads zeros; a second open and one
    // close keep every mapping working.
    let past = mmap(&mut h, fh, 10, 2);
    assert_eq!(reads(&h, past, 10..12), [ok(""), ok("")]);
    let fh2 = open(&mut h, F, "unused").unwrap();
    assert_eq!(fh2, fh, "the same file handle");
    assert_eq!(close_file(&mut h, fh2), Ok(OpOk::Done));
    assert!(h.sent().is_empty(), "no unwatch while a handle remains");
    assert_eq!(reads(&h, m, 2..5), [ok("c2"), ok("d3"), ok("e3")]);

    // 7. going back fails and takes the connection down.
    let e = h.conn.resync(AT2).unwrap_err();
    assert!(
        e.to_string().contains("going back in history is forbidden"),
        "{e}"
    );
    h.drain();
    assert_eq!(h.conn.state(), ConnState::Down);
    assert_eq!(h.conn.open(F).unwrap_err(), Error::ConnClosed);
    assert_eq!(h.conn.open(F).unwrap_err().to_string(), "connection closed");
    assert!(read(&h, m, 2).is_err() && read(&h, past, 10).is_err());
}

#[test]
fn server_refusing_going_back_takes_the_connection_down() {
    let mut db = Db::default();
    db.commit(AT1, &[(F, 0, "a")]);
    db.commit(AT2, &[(F, 0, "b")]);
    let mut h = harness(AT1, db);
    let fh = open(&mut h, F, "ok").unwrap();
    let m = mmap(&mut h, fh, 0, 1);
    let op = h.conn.resync(AT2).unwrap();
    assert_eq!(h.poll(op), None);
    h.sent();
    h.recv(&format!(
        "3 error setup watch f<{F}> @{AT2}: going back in history is forbidden"
    ));
    let e = h.poll(op).unwrap().unwrap_err();
    assert!(e
        .to_string()
        .ends_with("going back in history is forbidden"));
    assert_eq!(h.conn.state(), ConnState::Down);
    assert!(read(&h, m, 0).is_err());
    assert_eq!(h.conn.resync(AT2).unwrap_err(), Error::ConnClosed);
}
