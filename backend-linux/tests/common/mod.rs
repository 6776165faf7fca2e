//! Shared scaffolding of the socketpair tests: a tmpfs directory laid out
//! like WCFS, and a scripted server on the other end of a socketpair.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use wcfs_core::wire::{Oid, Tid};
use wcfs_linux::{sys, Conn, FileH, Wcfs};

pub const F: Oid = Oid(1);
pub const AT: Tid = Tid(0x0400);
pub const REV: Tid = Tid(0x0300);

pub fn bs() -> usize {
    sys::page_size()
}

/// A directory laid out like WCFS: head has blocks "h0".."h3", @REV has
/// "r0".."r2" (one block shorter).
pub struct Tree(pub PathBuf);

impl Tree {
    pub fn new(name: &str) -> Tree {
        let dir = PathBuf::from(format!(
            "/dev/shm/wcfs-linux-test-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("head/bigfile")).unwrap();
        std::fs::create_dir_all(dir.join(format!("@{REV}/bigfile"))).unwrap();
        std::fs::write(dir.join("head/at"), AT.to_string()).unwrap();
        write_blocks(&dir.join(format!("head/bigfile/{F}")), "h", 4);
        write_blocks(&dir.join(format!("@{REV}/bigfile/{F}")), "r", 3);
        Tree(dir)
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn write_blocks(p: &Path, tag: &str, n: usize) {
    let mut data = vec![0u8; n * bs()];
    for i in 0..n {
        let t = format!("{tag}{i}");
        data[i * bs()..i * bs() + t.len()].copy_from_slice(t.as_bytes());
    }
    std::fs::write(p, data).unwrap();
}

/// The scripted server end of the link.
pub struct Server {
    rx: BufReader<UnixStream>,
    tx: UnixStream,
}

impl Server {
    pub fn expect(&mut self, want: &str) {
        let mut l = String::new();
        self.rx.read_line(&mut l).unwrap();
        assert_eq!(l.trim_end(), want);
    }
    /// The next line (without its newline); `None` at the end of the link.
    pub fn read_line(&mut self) -> Option<String> {
        let mut l = String::new();
        match self.rx.read_line(&mut l).unwrap() {
            0 => None,
            _ => Some(l.trim_end().to_string()),
        }
    }
    pub fn send(&mut self, line: &str) {
        self.tx.write_all(format!("{line}\n").as_bytes()).unwrap();
    }
}

/// A connection at `AT` over a socketpair, and the server end of it.
pub fn connect(tree: &Tree) -> (Conn, Server) {
    let (a, b) = UnixStream::pair().unwrap();
    let w = Wcfs::open(&tree.0).unwrap();
    let conn = w.connect_over(AT, a.into()).unwrap();
    let srv = Server {
        rx: BufReader::new(b.try_clone().unwrap()),
        tx: b,
    };
    (conn, srv)
}

/// Opens `F`, the scripted server answering its watch with `ok`.
pub fn open_watched(conn: &Conn, mut srv: Server) -> (FileH, Server) {
    let server = std::thread::spawn(move || {
        srv.expect(&format!("1 watch {F} @{AT}"));
        srv.send("1 ok");
        srv
    });
    let fh = conn.open(F).unwrap();
    (fh, server.join().unwrap())
}

/// A connection with `F` open and watched (the server says `ok`).
pub fn open(tree: &Tree) -> (Conn, FileH, Server) {
    let (conn, srv) = connect(tree);
    let (fh, srv) = open_watched(&conn, srv);
    (conn, fh, srv)
}

/// Closes `fh` (of `F`), the scripted server answering its unwatch, request
/// `id`, with `ok`.
pub fn close_watched(fh: &FileH, mut srv: Server, id: u32) -> Server {
    let closer = std::thread::spawn(move || {
        srv.expect(&format!("{id} watch {F} -"));
        srv.send(&format!("{id} ok"));
        srv
    });
    fh.close().unwrap();
    closer.join().unwrap()
}

pub fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Forks, runs `child` in the child and ends it with `_exit` (0 when `child`
/// returns true, without running the parent's destructors); the parent waits
/// for it and asserts it exited 0.
///
/// # Safety
///
/// `child` runs in the fork child of a multi-threaded process: it must only
/// do what is sound there (read state, close, print), as the caller checks.
pub unsafe fn in_fork_child(child: impl FnOnce() -> bool) {
    // SAFETY: the child runs only `child`, which the caller vouches for, and
    // ends with `_exit`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // A panic must not unwind into the test harness's copy in the
        // child (whose thread would end, and the process with status 0).
        let code = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)) {
            Ok(true) => 0,
            Ok(false) => 1,
            Err(_) => 2,
        };
        // SAFETY: end the child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child: {status:#x}"
    );
}
