//! The Linux backend on real memory: a tmpfs directory laid out like WCFS,
//! and a scripted server on the other end of a socketpair.
mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{bs, close_watched, connect, in_fork_child, open, wait_for, Tree, AT, F, REV};
use wcfs_linux::sys;

/// Reads the tag at the start of block `i` of a mapping ("" for zeros).
fn tag(m: &wcfs_linux::Mapping, i: u64) -> String {
    let mut buf = [0u8; 2];
    m.read((i - m.blk_start()) as usize * bs(), &mut buf)
        .unwrap();
    String::from_utf8_lossy(&buf)
        .trim_end_matches('\0')
        .to_string()
}

#[test]
fn pins_remap_real_memory() {
    let tree = Tree::new("pins");
    let (conn, mut srv) = connect(&tree);
    let server = std::thread::spawn(move || {
        // Watch setup with a pin before `ok`.
        srv.expect(&format!("1 watch {F} @{AT}"));
        srv.send(&format!("2 pin {F} #1 @{REV}"));
        srv.expect("2 ack");
        srv.send("1 ok");
        srv
    });
    let fh = conn.open(F).unwrap();
    let mut srv = server.join().unwrap();
    assert_eq!(fh.pinned(), [(1, REV)]);
    assert_eq!(fh.blksize(), bs() as u64);

    let m = fh.mmap(0, 6).unwrap();
    let tags: Vec<String> = (0..6).map(|i| tag(&m, i)).collect();
    assert_eq!(
        tags,
        ["h0", "r1", "h2", "h3", "", ""],
        "pin applied, zeros past the end"
    );

    // A lazy pin arrives on the pin thread; a block past @REV's end maps zeros.
    srv.send(&format!("4 pin {F} #3 @{REV}"));
    srv.expect("4 ack");
    assert_eq!(tag(&m, 3), "", "@rev file too short: zeros");
    srv.send(&format!("6 pin {F} #2 @{REV}"));
    srv.expect("6 ack");
    assert_eq!(tag(&m, 2), "r2");
    // Unpin.
    srv.send(&format!("8 pin {F} #1 @head"));
    srv.expect("8 ack");
    assert_eq!(tag(&m, 1), "h1");
    assert_eq!(fh.pinned(), [(2, REV), (3, REV)]);

    // A second mapping applies the pins in force.
    let m2 = fh.mmap(1, 3).unwrap();
    assert_eq!(
        (1..4).map(|i| tag(&m2, i)).collect::<Vec<_>>(),
        ["h1", "r2", ""]
    );

    // Dirty block: the pin leaves it; remap_blk applies it.
    m2.mark_dirty(1).unwrap();
    srv.send(&format!("10 pin {F} #1 @{REV}"));
    srv.expect("10 ack");
    assert_eq!(tag(&m, 1), "r1");
    assert_eq!(tag(&m2, 1), "h1", "dirty block untouched");
    m2.remap_blk(1).unwrap();
    assert_eq!(tag(&m2, 1), "r1");

    // Closing the file faults its mappings.
    let mut srv = close_watched(&fh, srv, 3);
    assert!(m.is_faulting() && m2.is_faulting());
    assert!(m.read(0, &mut [0u8; 1]).is_err());
    assert!(
        sys::probe_read(m.addr() as usize).is_err(),
        "the page faults"
    );
    assert!(fh
        .mmap(0, 1)
        .unwrap_err()
        .to_string()
        .ends_with("file already closed"));
    m.unmap().unwrap();

    // Closing the connection: bye, then the server ends the link.
    let closer = std::thread::spawn(move || {
        srv.expect("5 bye");
        drop(srv);
    });
    conn.close().unwrap();
    closer.join().unwrap();
    let e = conn.open(F).unwrap_err();
    assert!(e.to_string().ends_with("connection closed"), "{e}");
    assert!(
        e.to_string()
            .starts_with(&format!("wcfs {}: conn", tree.0.display())),
        "{e}"
    );
}

#[test]
fn bad_server_input_faults_every_mapping() {
    let tree = Tree::new("bad");
    let (conn, fh, mut srv) = open(&tree);
    let m = fh.mmap(0, 2).unwrap();
    assert_eq!(tag(&m, 0), "h0");
    srv.send(&format!("2 pin {F} #-1 @head"));
    wait_for("down", || conn.down_reason().is_some());
    assert!(m.is_faulting());
    assert!(sys::probe_read(m.addr() as usize).is_err());
    let e = conn.open(F).unwrap_err();
    assert!(e.to_string().ends_with("connection closed"), "{e}");
}

#[test]
fn pin_for_unwatched_file_is_nakked() {
    let tree = Tree::new("nak");
    let (conn, mut srv) = connect(&tree);
    srv.send("2 pin 0000000000000009 #0 @head");
    srv.expect("2 nak: unexpected pin: f<0000000000000009> not watched");
    wait_for("down", || conn.down_reason().is_some());
}

#[test]
fn fork_child_faults_and_sends_nothing() {
    let tree = Tree::new("fork");
    let (conn, fh, mut srv) = open(&tree);
    let m = fh.mmap(0, 2).unwrap();
    assert_eq!(tag(&m, 0), "h0");

    // SAFETY: the child only reads our state and closes (which must be a
    // no-op).
    unsafe {
        in_fork_child(|| {
            let faulting = m.is_faulting();
            let probe = sys::probe_read(m.addr() as usize).is_err();
            let closed = fh.close().is_ok() && conn.close().is_ok();
            faulting && probe && closed
        })
    };

    // The parent keeps working: a pin, then its ack, and nothing from the child first.
    srv.send(&format!("2 pin {F} #0 @{REV}"));
    srv.expect("2 ack");
    assert_eq!(tag(&m, 0), "r0");
    assert!(!m.is_faulting());
}

#[test]
fn pins_crossing_the_bye_then_the_link_ends() {
    let tree = Tree::new("crossing");
    let (conn, fh, mut srv) = open(&tree);
    let m = fh.mmap(0, 2).unwrap();
    assert_eq!(tag(&m, 0), "h0");
    // The server sends pins that cross our `bye`, then ends the link at
    // once: the acks for them find it gone (EPIPE), which is no error.
    let server = std::thread::spawn(move || {
        srv.expect("3 bye");
        srv.send(&format!("2 pin {F} #0 @{REV}"));
        srv.send(&format!("4 pin {F} #1 @{REV}"));
        drop(srv);
    });
    conn.close().unwrap();
    server.join().unwrap();
    assert!(m.is_faulting());
    assert!(conn.down_reason().is_none(), "{:?}", conn.down_reason());
}

#[test]
fn close_is_bounded_when_the_server_never_ends_the_link() {
    let tree = Tree::new("never");
    let (conn, fh, mut srv) = open(&tree);
    let m = fh.mmap(0, 1).unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let server = std::thread::spawn(move || {
        srv.expect("3 bye");
        // Keep the link open until the test is done.
        let _ = rx.recv();
        drop(srv);
    });
    let t = Instant::now();
    let e = conn.close().unwrap_err();
    let took = t.elapsed();
    assert!(took >= wcfs_linux::LINK_END_WAIT, "gave up after {took:?}");
    assert!(
        took < wcfs_linux::LINK_END_WAIT + Duration::from_secs(5),
        "took {took:?}"
    );
    assert!(e.to_string().contains("watch link"), "{e}");
    assert!(m.is_faulting());
    tx.send(()).unwrap();
    server.join().unwrap();
}

/// Descriptors of this process open on files inside `dir`.
fn fds_into(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter(|p| p.starts_with(dir) && p != dir)
        .collect()
}

#[test]
fn files_let_go_of_are_closed_later_and_in_a_fork_child() {
    let tree = Tree::new("deferred");
    let dir = tree.0.canonicalize().unwrap();
    let (conn, fh, mut srv) = open(&tree);
    srv.send(&format!("2 pin {F} #1 @{REV}"));
    srv.expect("2 ack");
    let mut srv = close_watched(&fh, srv, 3);
    // With no file open, a resync says nothing to the server: the files it
    // lets go of (head/at read, the cached @REV file) wait for the pin
    // thread, which reads the quiet link.
    conn.resync(AT).unwrap();
    let rev_file = dir.join(format!("@{REV}/bigfile/{F}"));
    wait_for("the head file's deferred close", || {
        !fds_into(&dir).contains(&dir.join(format!("head/bigfile/{F}")))
    });
    assert!(
        fds_into(&dir).contains(&rev_file),
        "set-up: the @rev file waits to be closed"
    );

    // SAFETY: the child reads /proc and prints.
    unsafe {
        in_fork_child(|| {
            let left = fds_into(&dir);
            if !left.is_empty() {
                eprintln!("child: inherited and left open: {left:?}");
            }
            left.is_empty()
        })
    };

    // The parent's pin thread closes them at its next wake-up, at the latest
    // at the connection's end.
    let server = std::thread::spawn(move || {
        srv.expect("5 bye");
        drop(srv);
    });
    conn.close().unwrap();
    server.join().unwrap();
    assert_eq!(fds_into(&dir), Vec::<PathBuf>::new());
}
