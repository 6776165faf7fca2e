//! After fork the child's mappings fault and it says nothing to the server;
//! the parent keeps working: it gets a pin after a later commit, and resyncs.
mod e2e_common;
use e2e_common::*;
use wcfs_linux::{sys, Wcfs};
use wcfs_testkit::require_fuse;

#[test]
fn fork_child_detaches() {
    require_fuse!();
    let srv = server();
    let at1 = srv.commit(&[change(F, 0, "a1"), change(F, 1, "b1")]);
    let w = Wcfs::open(srv.mountpoint()).unwrap();
    let conn = w.connect(at1).unwrap();
    let fh = conn.open(F).unwrap();
    let m = fh.mmap(0, 2).unwrap();
    assert_eq!(tags(&m, 0..2), ["a1", "b1"]);

    // The child only probes memory and closes (which says nothing there).
    in_child(|| {
        let ok = m.is_faulting()
            && sys::probe_read(m.addr() as usize).is_err()
            && fh.close().is_ok()
            && conn.close().is_ok();
        ok.then_some(())
            .ok_or_else(|| "the child's view is live".into())
    });

    // The parent: a later commit pins its view, then it resyncs.
    let at2 = srv.commit(&[change(F, 0, "a2")]);
    assert_eq!(tag(&m, 0), "a1", "the head read pins the parent first");
    assert_eq!(fh.pinned(), [(0, at1)]);
    conn.resync(at2).unwrap();
    assert_eq!(tags(&m, 0..2), ["a2", "b1"]);
    assert!(
        srv.failures().is_empty(),
        "the child disturbed nobody: {:?}",
        srv.failures()
    );
}
