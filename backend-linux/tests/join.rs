//! `Wcfs::join` without a server: where it looks, what it refuses, and how
//! autostart fails. (Joining real servers, autostart and the trust check
//! end to end: `tests/tests/e2e_join.rs`.)
use std::path::{Path, PathBuf};
use std::time::Duration;

use wcfs_linux::{mountpoint_under, Autostart, ErrorKind, JoinOptions, Wcfs};

const ZURL: &str = "zeo://db.example:8100";

fn base(name: &str) -> PathBuf {
    let b = PathBuf::from(format!("/dev/shm/wcfs-join-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&b);
    b
}

fn opts(base: &Path, autostart: Autostart, server: Option<&str>) -> JoinOptions {
    JoinOptions {
        autostart,
        server: server.map(PathBuf::from),
        options: Vec::new(),
        base: base.to_path_buf(),
        start_timeout: Duration::from_secs(10),
    }
}

/// The error names the zurl and the mountpoint.
fn names_both(e: &wcfs_linux::Error, mnt: &Path) {
    let s = e.to_string();
    assert!(s.contains(ZURL), "{s}");
    assert!(s.contains(&*mnt.to_string_lossy()), "{s}");
}

#[test]
fn nothing_mounted_and_no_autostart() {
    let b = base("none");
    let mnt = mountpoint_under(&b, ZURL).unwrap();
    let e = Wcfs::join_under(&b, ZURL).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::NotMounted { .. }), "{e}");
    names_both(&e, &mnt);
    // The directory of mountpoints is made sticky and world-writable.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&b).unwrap().permissions().mode();
    assert_eq!(mode & 0o7777, 0o1777);
    // A directory that looks like a server but is not mounted is not one.
    std::fs::create_dir_all(mnt.join(".wcfs")).unwrap();
    std::fs::write(mnt.join(".wcfs/zurl"), ZURL).unwrap();
    let e = Wcfs::join_under(&b, ZURL).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::NotMounted { .. }), "{e}");
    let _ = std::fs::remove_dir_all(&b);
}

#[test]
fn zurls_without_a_normal_form_are_refused() {
    let b = base("badzurl");
    let e = Wcfs::join_under(&b, "http://db").unwrap_err();
    assert!(matches!(e.kind, ErrorKind::BadZurl(_)), "{e}");
    assert!(
        e.to_string()
            .contains("can't normalize zurl with scheme \"http\""),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&b);
}

#[test]
fn autostart_without_an_executable_says_so() {
    if std::env::var_os(wcfs_linux::ENV_SERVER).is_some() {
        eprintln!("SKIPPED: $WCFS_SERVER is set");
        return;
    }
    let b = base("noexe");
    let mnt = mountpoint_under(&b, ZURL).unwrap();
    let e = Wcfs::join_with(ZURL, &opts(&b, Autostart::Yes, None)).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::NoServerExecutable), "{e}");
    assert!(e.to_string().contains("$WCFS_SERVER"), "{e}");
    names_both(&e, &mnt);
    let _ = std::fs::remove_dir_all(&b);
}

#[test]
fn autostart_reports_the_server_exit_status() {
    let b = base("exits");
    let mnt = mountpoint_under(&b, ZURL).unwrap();
    let e = Wcfs::join_with(ZURL, &opts(&b, Autostart::Yes, Some("/bin/false"))).unwrap_err();
    match &e.kind {
        ErrorKind::ServerExited { status, .. } => assert_eq!(status.code(), Some(1), "{e}"),
        _ => panic!("{e}"),
    }
    assert!(
        e.to_string()
            .contains("/bin/false exited with exit status: 1"),
        "{e}"
    );
    names_both(&e, &mnt);
    let e =
        Wcfs::join_with(ZURL, &opts(&b, Autostart::Yes, Some("/nonexistent/wcfs"))).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::Start { .. }), "{e}");
    assert_eq!(e.kind(), wcfs_linux::Kind::ServerStart);
    names_both(&e, &mnt);
    let _ = std::fs::remove_dir_all(&b);
}

#[test]
fn autostart_refuses_a_symlinked_mountpoint() {
    let b = base("symlink");
    Wcfs::join_under(&b, ZURL).unwrap_err(); // makes the base directory
    let mnt = mountpoint_under(&b, ZURL).unwrap();
    let elsewhere = b.join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &mnt).unwrap();
    let e = Wcfs::join_with(ZURL, &opts(&b, Autostart::Yes, Some("/bin/true"))).unwrap_err();
    assert!(
        e.to_string().contains("the mountpoint is not a directory"),
        "{e}"
    );
    names_both(&e, &mnt);
    let _ = std::fs::remove_dir_all(&b);
}
