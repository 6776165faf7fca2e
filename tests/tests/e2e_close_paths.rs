//! The close paths on the FUSE test server: a connection closed while the
//! server has pins in flight, a file and a connection closed right after a
//! burst of pins, and fork children after those closes. Each checks that
//! the close waited for what it must (after a connection close no
//! descriptor into the mount is left: the pin thread closes the link and
//! the deferred files before it ends), that a fork child closes what it
//! inherited without a word, and that the server saw no client fail.
mod e2e_common;
use std::path::{Path, PathBuf};

use e2e_common::*;
use wcfs_linux::{Conn, Wcfs};
use wcfs_testkit::require_fuse;

const N: u64 = 256;

/// Descriptors of this process open on files inside `mnt`.
fn fds_into(mnt: &Path) -> Vec<PathBuf> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter(|p| p.starts_with(mnt) && p != mnt)
        .collect()
}

/// Reads every block of `f` through head: the server pins every watcher
/// whose view differs and waits for the acks before it answers.
fn read_head(mnt: &Path) -> Vec<u8> {
    std::fs::read(mnt.join(format!("head/bigfile/{F}"))).unwrap()
}

/// A connection @at1 with `F` (N blocks) open and mapped whole, and a
/// commit after at1 changing every block: reading head pins all N.
fn setup(srv: &impl WcfsServer) -> (Conn, wcfs_linux::FileH, wcfs_linux::Mapping) {
    let at1 = srv.commit(&(0..N).map(|b| change(F, b, "v1")).collect::<Vec<_>>());
    let w = Wcfs::open(srv.mountpoint()).unwrap();
    let conn = w.connect(at1).unwrap();
    let fh = conn.open(F).unwrap();
    let m = fh.mmap(0, N).unwrap();
    srv.commit(&(0..N).map(|b| change(F, b, "v2")).collect::<Vec<_>>());
    (conn, fh, m)
}

fn mount(srv: &impl WcfsServer) -> PathBuf {
    srv.mountpoint().canonicalize().unwrap()
}

#[test]
fn close_right_after_a_burst_of_pins() {
    require_fuse!();
    let srv = server();
    let mnt = mount(&srv);
    let (conn, fh, m) = setup(&srv);
    let data = read_head(&mnt);
    assert_eq!(&data[..2], b"v2");
    assert_eq!(fh.pinned().len() as u64, N, "every block pinned");
    assert_eq!(tags(&m, 0..2), ["v1", "v1"]);

    // The file's close: its head file and the pins' @rev files are let go.
    fh.close().unwrap();
    assert!(faults(&m, 0) && faults(&m, N - 1));
    assert!(fh.pinned().is_empty());
    // The connection still works: open, pin again, read.
    let fh2 = conn.open(F).unwrap();
    assert_eq!(fh2.pinned().len() as u64, N, "pinned again at watch setup");
    let m2 = fh2.mmap(0, 2).unwrap();
    assert_eq!(tags(&m2, 0..2), ["v1", "v1"]);

    conn.close().unwrap();
    assert!(faults(&m2, 0));
    // The pin thread closes the link and the files let go of, then ends:
    // none open means close waited for it.
    assert_eq!(
        fds_into(&mnt),
        Vec::<PathBuf>::new(),
        "descriptors left open"
    );
    drop((m, m2, fh2));
    assert!(srv.failures().is_empty(), "{:?}", srv.failures());
}

#[test]
fn close_while_pins_are_in_flight() {
    require_fuse!();
    let srv = server();
    let mnt = mount(&srv);
    for round in 0..5 {
        let (conn, fh, m) = setup(&srv);
        let reader = {
            let mnt = mnt.clone();
            std::thread::spawn(move || read_head(&mnt))
        };
        // Close once pins started coming (more are in flight), or at once
        // every other round.
        if round % 2 == 0 {
            while fh.pinned().is_empty() {
                std::thread::yield_now();
            }
        }
        conn.close().unwrap();
        assert!(faults(&m, 0) && faults(&m, N - 1));
        // The server was answered (acks, or the link's end) for every pin:
        // the head read completes.
        let data = reader.join().unwrap();
        assert_eq!(data.len() as u64, N * bs());
        assert_eq!(&data[..2], b"v2");
        assert_eq!(fds_into(&mnt), Vec::<PathBuf>::new(), "round {round}");
        assert!(
            srv.failures().is_empty(),
            "round {round}: {:?}",
            srv.failures()
        );
    }
}

#[test]
fn fork_child_after_close() {
    require_fuse!();
    let srv = server();
    let mnt = mount(&srv);
    let (conn, fh, m) = setup(&srv);
    read_head(&mnt);
    assert_eq!(fh.pinned().len() as u64, N);

    // Fork right after a file close: the closes of its files may still be
    // under way on the pin thread; the child closes what it inherited.
    fh.close().unwrap();
    let fh2 = conn.open(F).unwrap();
    let m2 = fh2.mmap(0, N).unwrap();
    in_child(|| {
        let left = fds_into(&mnt);
        if !left.is_empty() {
            return Err(format!("descriptors inherited and left open: {left:?}"));
        }
        if !m2.is_faulting() || !faults(&m2, 0) {
            return Err("the child's mapping does not fault".into());
        }
        fh2.close().map_err(|e| e.to_string())?;
        conn.close().map_err(|e| e.to_string())
    });
    // The parent's connection goes on: its view is still as of at1.
    assert_eq!(tags(&m2, 0..2), ["v1", "v1"]);

    // Fork after the connection's close.
    conn.close().unwrap();
    in_child(|| {
        let left = fds_into(&mnt);
        if !left.is_empty() {
            return Err(format!("descriptors left open: {left:?}"));
        }
        conn.close().map_err(|e| e.to_string())
    });
    assert_eq!(fds_into(&mnt), Vec::<PathBuf>::new());
    drop((m, m2, fh2));
    assert!(srv.failures().is_empty(), "{:?}", srv.failures());
}
