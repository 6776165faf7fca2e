//! A mapping at a range the test reserved itself, on the FUSE test server:
//! pins land in the caller's range, the statistics count them, and
//! unmapping leaves the range reserved.
mod e2e_common;
use e2e_common::*;
use wcfs_linux::{sys, Wcfs};
use wcfs_testkit::require_fuse;

#[test]
fn mmap_at_on_fuse_with_statistics() {
    require_fuse!();
    let srv = server();
    let at1 = srv.commit(&[change(F, 0, "a1"), change(F, 1, "b1"), change(F, 2, "c1")]);
    let at2 = srv.commit(&[change(F, 0, "a2"), change(F, 1, "b2")]);
    let w = Wcfs::open(srv.mountpoint()).unwrap();
    let conn = w.connect(at1).unwrap();
    let fh = conn.open(F).unwrap();
    let bs = bs() as usize;

    let len = 4 * bs;
    let arena = sys::reserve(len).unwrap();
    // SAFETY: our reservation; nothing in Rust points into it.
    let m = unsafe { fh.mmap_at(0, 4, arena, len) }.unwrap();
    assert_eq!(m.addr(), arena as *const u8);
    let s0 = conn.stats();
    // Reading #0 and #1 through head makes the server pin them to @at1.
    assert_eq!(tags(&m, 0..4), ["a1", "b1", "c1", ""]);
    assert_eq!(fh.pinned(), [(0, at1), (1, at1)]);
    let d = conn.stats().since(&s0);
    assert_eq!((d.pins, d.acks, d.naks), (2, 2, 0), "{d:?}");
    assert_eq!(d.rev_opens, 1, "one @rev file for both pins: {d:?}");
    assert_eq!(d.rev_hits, 1, "{d:?}");
    assert_eq!(d.remaps, 2, "{d:?}");
    assert_eq!(d.pin_times(), 2, "each ack's handling time: {d:?}");
    assert!(d.pin_time_quantile(1.0).unwrap() < 10_000_000_000);

    conn.resync(at2).unwrap();
    assert_eq!(tags(&m, 0..4), ["a2", "b2", "c1", ""]);
    let d = conn.stats().since(&s0);
    assert_eq!((d.unpins, d.resyncs, d.acks), (2, 1, 4), "{d:?}");

    m.unmap().unwrap();
    for b in 0..4 {
        let a = arena as usize + b * bs;
        assert_eq!(
            sys::map_perms(a).as_deref(),
            Some("---p"),
            "block {b}: reserved"
        );
        assert_eq!(sys::probe_read(a), Err(libc::EFAULT));
    }
    // And mapped again, at a new view.
    // SAFETY: as above.
    let m = unsafe { fh.mmap_at(1, 2, arena, 2 * bs) }.unwrap();
    assert_eq!(tags(&m, 1..3), ["b2", "c1"]);
    drop((m, fh));
    drop(conn);
    // SAFETY: our reservation, nothing mapped into it any more.
    unsafe { libc::munmap(arena.cast(), len) };
    assert!(srv.failures().is_empty(), "{:?}", srv.failures());
}
