//! PROTOCOL section 7, every step, on real memory: the Linux client against
//! the FUSE test server. Every read is a real page fault; the pins it
//! triggers are for the reading thread's own connection (self-pin).
mod e2e_common;
use e2e_common::*;
use wcfs_linux::Wcfs;
use wcfs_testkit::require_fuse;

#[test]
fn reference_scenario() {
    require_fuse!();
    let srv = server();
    srv.commit(&[change(F, 0, ""), change(F, 1, "")]);
    let at1 = srv.commit(&[change(F, 2, "c1"), change(F, 3, "d1")]);
    let at2 = srv.commit(&[change(F, 2, "c2")]);
    let w = Wcfs::open(srv.mountpoint()).unwrap();

    // 1.
    let conn = w.connect(at1).unwrap();
    let fh = conn.open(F).unwrap();
    let m = fh.mmap(2, 3).unwrap();
    assert_eq!(fh.pinned(), []);
    // 2. reading #2 faults into head, which has c2: our own connection is pinned first.
    assert_eq!(tag(&m, 2), "c1");
    assert_eq!(fh.pinned(), [(2, at1)]);
    assert_eq!(tags(&m, 2..5), ["c1", "d1", ""]);
    // 3.
    let at3 = srv.commit(&[change(F, 3, "d3"), change(F, 4, "e3")]);
    assert_eq!(tags(&m, 2..5), ["c1", "d1", ""]);
    assert_eq!(fh.pinned(), [(2, at1), (3, at1)]);
    // 4.
    conn.resync(at2).unwrap();
    assert_eq!(tags(&m, 2..5), ["c2", "d1", ""]);
    // 5.
    conn.resync(at3).unwrap();
    assert_eq!(tags(&m, 2..5), ["c2", "d3", "e3"]);
    assert_eq!(fh.pinned(), []);
    // 6.
    let past = fh.mmap(10, 2).unwrap();
    assert_eq!(tags(&past, 10..12), ["", ""]);
    let fh2 = conn.open(F).unwrap();
    fh2.close().unwrap();
    assert_eq!(tags(&m, 2..5), ["c2", "d3", "e3"]);
    // 7.
    let e = conn.resync(at2).unwrap_err();
    assert!(
        e.to_string().contains("going back in history is forbidden"),
        "{e}"
    );
    let e = conn.open(F).unwrap_err();
    assert!(e.to_string().ends_with("connection closed"), "{e}");
    assert!(faults(&m, 2) && faults(&past, 10));
    drop((m, past, fh, fh2));
    drop(conn);
    assert!(srv.failures().is_empty(), "{:?}", srv.failures());
}
