//! After a file or connection close, every page of its mappings faults;
//! other files' mappings keep working.
mod e2e_common;
use e2e_common::*;
use wcfs_linux::Wcfs;
use wcfs_testkit::require_fuse;

#[test]
fn close_faults() {
    require_fuse!();
    let srv = server();
    let at = srv.commit(&[change(F, 0, "f0"), change(F, 1, "f1"), change(G, 0, "g0")]);
    let w = Wcfs::open(srv.mountpoint()).unwrap();
    let conn = w.connect(at).unwrap();
    let f = conn.open(F).unwrap();
    let g = conn.open(G).unwrap();
    let mf = f.mmap(0, 2).unwrap();
    let mg = g.mmap(0, 1).unwrap();
    assert_eq!(tags(&mf, 0..2), ["f0", "f1"]);

    f.close().unwrap();
    assert!(
        faults(&mf, 0) && faults(&mf, 1),
        "every page of the closed file faults"
    );
    assert!(mf.is_faulting());
    assert_eq!(tag(&mg, 0), "g0", "other files keep working");
    assert!(!faults(&mg, 0));
    // A fresh open gives working mappings again.
    let f2 = conn.open(F).unwrap();
    let mf2 = f2.mmap(0, 2).unwrap();
    assert_eq!(tags(&mf2, 0..2), ["f0", "f1"]);
    assert!(faults(&mf, 0));

    conn.close().unwrap();
    assert!(
        faults(&mg, 0) && faults(&mf2, 1),
        "closing the connection faults everything"
    );
    let e = conn.open(G).unwrap_err();
    assert!(e.to_string().ends_with("connection closed"), "{e}");
    let e = g.mmap(0, 1).unwrap_err();
    assert!(e.to_string().ends_with("file already closed"), "{e}");
    drop((mf, mg, mf2));
    assert!(srv.failures().is_empty(), "{:?}", srv.failures());
}
