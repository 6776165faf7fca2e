//! After fork, the child's mappings fault and it says nothing to the server.
mod common;
use common::*;
use wcfs_core::wire::Tid;
use wcfs_core::{ConnState, OpOk};
use wcfs_mock::Call;

#[test]
fn fork_child_faults_everything_and_sends_nothing() {
    let mut db = Db::default();
    db.commit(Tid(1), &[(F, 0, "a"), (G, 0, "b")]);
    let mut h = harness(Tid(1), db);
    let f = open(&mut h, F, "ok").unwrap();
    let g = open(&mut h, G, "ok").unwrap();
    let m1 = mmap(&mut h, f, 0, 1);
    let m2 = mmap(&mut h, g, 0, 1);
    h.be.clear_trace();
    h.conn.fork_child();
    h.drain();
    assert_eq!(h.conn.state(), ConnState::Forked);
    assert!(read(&h, m1, 0).is_err() && read(&h, m2, 0).is_err());
    assert!(h.sent().is_empty());
    assert!(h.be.trace().contains(&Call::CloseLink));
    assert!(!h.be.trace().iter().any(|c| matches!(c, Call::Send(_))));

    // Later closes are no-ops: nothing is sent.
    let op = h.conn.close_file(f).unwrap();
    assert_eq!(h.poll(op), Some(Ok(OpOk::Done)));
    let op = h.conn.close().unwrap();
    assert_eq!(h.poll(op), Some(Ok(OpOk::Done)));
    assert!(!h.be.trace().iter().any(|c| matches!(c, Call::Send(_))));
    assert!(h.conn.open(F).is_err());
    h.conn.unmap(m1).unwrap();
    h.drain();
}
