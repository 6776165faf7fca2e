//! Closing a file faults its mappings (only its); closing the connection faults all.
mod common;
use common::*;
use wcfs_core::wire::Tid;
use wcfs_core::{perform, Action, ConnState, Errno, Error, OpOk, Outcome};

const AT: Tid = Tid(0x10);

fn db() -> Db {
    let mut db = Db::default();
    db.commit(AT, &[(F, 0, "f0"), (F, 1, "f1"), (G, 0, "g0")]);
    db
}

#[test]
fn close_file_faults_only_its_mappings() {
    let mut h = harness(AT, db());
    let f = open(&mut h, F, "ok").unwrap();
    let g = open(&mut h, G, "ok").unwrap();
    let mf = mmap(&mut h, f, 0, 2);
    let mg = mmap(&mut h, g, 0, 1);
    assert_eq!(read(&h, mf, 1), ok("f1"));

    let op = h.conn.close_file(f).unwrap();
    assert_eq!(h.poll(op), None, "waits for the unwatch reply");
    assert_eq!(h.sent(), [format!("5 watch {F} -")]);
    assert!(read(&h, mf, 0).is_err(), "faults at once");
    h.recv("5 ok");
    assert_eq!(h.poll(op), Some(Ok(OpOk::Done)));
    assert!(read(&h, mf, 0).is_err() && read(&h, mf, 1).is_err());
    assert_eq!(read(&h, mg, 0), ok("g0"), "other files keep working");
    assert_eq!(
        h.conn.mmap(f, 0, 1).unwrap_err().to_string(),
        "file already closed"
    );

    // Re-open: a fresh handle with working mappings; the old ones keep faulting.
    let f2 = open(&mut h, F, "ok").unwrap();
    assert_ne!(f2, f);
    let mf2 = mmap(&mut h, f2, 0, 2);
    assert_eq!(reads(&h, mf2, 0..2), [ok("f0"), ok("f1")]);
    assert!(read(&h, mf, 0).is_err());
    // Unmapping a faulting mapping still works.
    h.conn.unmap(mf).unwrap();
    h.drain();
    assert_eq!(h.conn.unmap(mf), Err(Error::NoSuchMapping));
}

#[test]
fn close_conn_faults_everything_and_ends_with_eof() {
    let mut h = harness(AT, db());
    let f = open(&mut h, F, "ok").unwrap();
    let g = open(&mut h, G, "ok").unwrap();
    let mf = mmap(&mut h, f, 0, 2);
    let mg = mmap(&mut h, g, 0, 1);
    let op = h.conn.close().unwrap();
    assert_eq!(h.poll(op), None, "waits for EOF");
    assert_eq!(h.sent(), ["5 bye"]);
    assert!(read(&h, mf, 0).is_err() && read(&h, mg, 0).is_err());
    assert!(h.be.open_fds().is_empty(), "head files closed");
    // A pin the server sent before it saw `bye` is still acked.
    h.recv(&format!("2 pin {F} #0 @{AT}"));
    assert_eq!(h.sent(), ["2 ack"]);
    h.eof();
    assert_eq!(h.poll(op), Some(Ok(OpOk::Done)));
    assert_eq!(h.conn.state(), ConnState::Closed);
    assert!(!h.be.link_open());
    assert_eq!(h.conn.open(F).unwrap_err().to_string(), "connection closed");
    assert_eq!(h.conn.resync(Tid(0x20)).unwrap_err(), Error::ConnClosed);
    assert_eq!(h.conn.mmap(f, 0, 1).unwrap_err(), Error::FileClosed);
    assert_eq!(h.conn.close().unwrap_err(), Error::ConnClosed);
}

#[test]
fn unwatch_error_still_closes_the_file() {
    let mut h = harness(AT, db());
    let f = open(&mut h, F, "ok").unwrap();
    let m = mmap(&mut h, f, 0, 1);
    let op = h.conn.close_file(f).unwrap();
    assert_eq!(h.poll(op), None);
    h.sent();
    h.recv("3 error bad watch: invalid oid");
    assert!(matches!(h.poll(op), Some(Err(Error::Server(_)))));
    assert!(read(&h, m, 0).is_err());
    assert_eq!(
        h.conn.state(),
        ConnState::Up,
        "an error reply leaves the link up"
    );
}

/// A connection @AT with `F` open and mapped, closing: `bye` sent.
fn closing() -> (
    wcfs_mock::Harness<common::Db>,
    wcfs_core::OpId,
    wcfs_core::MapId,
) {
    let mut h = harness(AT, db());
    let f = open(&mut h, F, "ok").unwrap();
    let m = mmap(&mut h, f, 0, 2);
    let op = h.conn.close().unwrap();
    assert_eq!(h.poll(op), None);
    assert_eq!(h.sent(), ["3 bye"]);
    (h, op, m)
}

#[test]
fn an_ack_failing_after_bye_is_no_error() {
    let (mut h, op, m) = closing();
    // A pin that crossed our `bye`; the server has ended the link already,
    // so the write of its ack fails.
    h.conn
        .handle_bytes(format!("2 pin {F} #0 @{AT}\n").as_bytes());
    let mut acks = 0;
    while let Some(a) = h.conn.poll_action() {
        if let Action::Send(line) = &a {
            assert_eq!(line.as_bytes(), b"2 ack\n");
            acks += 1;
            h.conn.complete(&a, Outcome::Failed(Errno(32)));
        } else {
            let outcome = perform(&mut h.be, &a);
            h.conn.complete(&a, outcome);
        }
    }
    assert_eq!(acks, 1);
    assert_eq!(
        h.conn.state(),
        ConnState::Closing,
        "still waiting for the end"
    );
    assert_eq!(h.conn.down_reason(), None);
    // The same when a driver reports the failed write of a batch.
    h.conn.handle_send_error(Errno(32));
    assert_eq!(h.conn.state(), ConnState::Closing);
    h.eof();
    assert_eq!(h.poll(op), Some(Ok(OpOk::Done)));
    assert_eq!(h.conn.state(), ConnState::Closed);
    assert!(read(&h, m, 0).is_err());
}

#[test]
fn a_read_error_after_bye_ends_the_close() {
    let (mut h, op, m) = closing();
    // A socket shows the server's end as a reset when our acks crossed it.
    h.conn.handle_link_error(Errno(104));
    h.drain();
    assert_eq!(h.poll(op), Some(Ok(OpOk::Done)));
    assert_eq!(h.conn.state(), ConnState::Closed);
    assert_eq!(h.conn.down_reason(), None);
    assert!(!h.be.link_open(), "the link is closed");
    assert!(h.be.open_fds().is_empty());
    assert!(read(&h, m, 0).is_err());
    assert!(h.sent().is_empty(), "nothing more is said");
}

#[test]
fn giving_up_on_the_link_fails_the_close() {
    let (mut h, op, m) = closing();
    // The driver's bound on waiting for the server's end passed.
    h.conn.abandon_link(Errno(110));
    h.drain();
    assert_eq!(
        h.poll(op),
        Some(Err(Error::Link(wcfs_core::link::LinkError::Io(110))))
    );
    assert_eq!(h.conn.state(), ConnState::Down);
    assert!(!h.be.link_open(), "the link is closed");
    assert!(read(&h, m, 0).is_err());
    assert!(h.sent().is_empty(), "no second bye");
}

#[test]
fn a_failed_write_or_read_while_up_brings_the_connection_down() {
    for read_side in [false, true] {
        let mut h = harness(AT, db());
        let f = open(&mut h, F, "ok").unwrap();
        let m = mmap(&mut h, f, 0, 1);
        if read_side {
            h.conn.handle_link_error(Errno(104));
        } else {
            h.conn.handle_send_error(Errno(32));
        }
        h.drain();
        assert_eq!(h.conn.state(), ConnState::Down);
        let want = if read_side { 104 } else { 32 };
        assert_eq!(
            h.conn.down_reason(),
            Some(&Error::Link(wcfs_core::link::LinkError::Io(want)))
        );
        assert!(read(&h, m, 0).is_err());
    }
}
