//! Files that shrink (PROTOCOL section 5): a commit deletes a file's last
//! block and head shrinks. A resync across the shrink keeps the connection
//! up with byte-exact views. (The known limit, SIGBUS on the deleted tail of
//! a view from before the shrink: `e2e_shrink_sigbus.rs`.)
mod e2e_common;
use e2e_common::*;
use wcfs_linux::Wcfs;
use wcfs_testkit::require_fuse;

#[test]
fn resync_across_a_shrink_keeps_the_connection_up() {
    require_fuse!();
    let srv = server();
    let at0 = four_blocks(&srv);
    let w = Wcfs::open(srv.mountpoint()).unwrap();
    let conn = w.connect(at0).unwrap();
    let fh = conn.open(F).unwrap();
    let m = fh.mmap(0, 5).unwrap();
    assert_eq!(tags(&m, 0..5), ["a0", "a1", "a2", "a3", ""]);

    let at1 = srv.delete_from(F, 3);
    let head = srv.mountpoint().join(format!("head/bigfile/{F}"));
    assert_eq!(std::fs::metadata(&head).unwrap().len(), 3 * bs());
    conn.resync(at1).unwrap();
    assert_eq!(conn.down_reason(), None);
    assert_eq!(
        tags(&m, 0..5),
        ["a0", "a1", "a2", "", ""],
        "zeros past the new end"
    );
    assert!(!faults(&m, 3) && !faults(&m, 4));
    assert_eq!(fh.pinned(), []);
    let past = fh.mmap(2, 3).unwrap();
    assert_eq!(
        tags(&past, 2..5),
        ["a2", "", ""],
        "a new mapping past the new end"
    );

    // A connection at the old at, set up after the deletion: the setup
    // pins the deleted block, so the view shows it.
    let old = w.connect(at0).unwrap();
    let fh0 = old.open(F).unwrap();
    let m0 = fh0.mmap(0, 5).unwrap();
    assert_eq!(fh0.pinned(), [(3, at0)]);
    assert_eq!(tags(&m0, 0..5), ["a0", "a1", "a2", "a3", ""]);

    // #3 comes back: no pin to anyone; each view moves on at its resync.
    let at2 = srv.commit(&[change(F, 3, "b3")]);
    assert_eq!(std::fs::metadata(&head).unwrap().len(), 4 * bs());
    assert_eq!(
        tags(&m, 0..5),
        ["a0", "a1", "a2", "", ""],
        "still as of at1"
    );
    assert_eq!(
        tags(&m0, 0..5),
        ["a0", "a1", "a2", "a3", ""],
        "still as of at0"
    );
    conn.resync(at2).unwrap();
    assert_eq!(tags(&m, 0..5), ["a0", "a1", "a2", "b3", ""]);
    assert_eq!(tags(&past, 2..5), ["a2", "b3", ""]);
    old.resync(at2).unwrap();
    assert_eq!(fh0.pinned(), []);
    assert_eq!(tags(&m0, 0..5), ["a0", "a1", "a2", "b3", ""]);
    assert!(srv.failures().is_empty(), "{:?}", srv.failures());
}
