//! `Wcfs::join` finds the server of a database where wendelin.core mounts
//! it (`<base>/<sha1 hex of zurl>`), checks `.wcfs/zurl`, and gives the
//! same `Wcfs` for the same URL.
use std::path::PathBuf;

use wcfs_linux::{ErrorKind, Wcfs};

fn base(name: &str) -> PathBuf {
    let b = PathBuf::from(format!("/dev/shm/wcfs-join-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&b);
    b
}

fn fake_mount(base: &std::path::Path, zurl: &str, says: &str) -> PathBuf {
    let mnt = base.join(sha1_hex(zurl));
    std::fs::create_dir_all(mnt.join(".wcfs")).unwrap();
    std::fs::write(mnt.join(".wcfs/zurl"), says).unwrap();
    mnt
}

fn sha1_hex(s: &str) -> String {
    // Known answer for the test URL, computed independently (sha1sum).
    match s {
        "zeo://db.example:8100" => "4747f6779bae6326101515625ae3c6f6d517dddd".into(),
        _ => panic!("add the sha1 of {s}"),
    }
}

#[test]
fn join_finds_checks_and_shares() {
    let zurl = "zeo://db.example:8100";
    let b = base("ok");
    let mnt = fake_mount(&b, zurl, zurl);
    let w1 = Wcfs::join_under(&b, zurl).unwrap();
    let w2 = Wcfs::join_under(&b, zurl).unwrap();
    assert_eq!(w1.mountpoint(), mnt);
    assert_eq!(format!("{w1:?}"), format!("{w2:?}"));
    let _ = std::fs::remove_dir_all(&b);
}

#[test]
fn join_refuses_another_database_and_missing_servers() {
    let zurl = "zeo://db.example:8100";
    let b = base("bad");
    match Wcfs::join_under(&b, zurl) {
        Err(e) => assert!(matches!(e.kind, ErrorKind::NotMounted { .. }), "{e}"),
        Ok(w) => panic!("joined {w:?}"),
    }
    fake_mount(&b, zurl, "zeo://other:1");
    match Wcfs::join_under(&b, zurl) {
        Err(e) => {
            assert!(matches!(e.kind, ErrorKind::ZurlMismatch { .. }), "{e}");
            assert!(e.to_string().contains("zeo://other:1"), "{e}");
        }
        Ok(w) => panic!("joined {w:?}"),
    }
    let _ = std::fs::remove_dir_all(&b);
}
