//! How the FUSE test server answers reads of `head/watch` that have to
//! wait: parked with their reply, answered by whatever produces their bytes
//! (all the lines one write produced at once), EOF at the server's stop,
//! and never by another link's bytes. The server runs in a process of its
//! own: should it leave a read unanswered, its exit still ends the read
//! (the kernel aborts the connection) and the test fails instead of hanging.
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::sync::mpsc;
use std::time::Duration;

use wcfs_testkit::model::ModelConfig;
use wcfs_testkit::require_fuse;
use wcfs_testkit::server::{ServerProcess, WcfsServer};

fn cfg() -> ModelConfig {
    ModelConfig::new("test://reads", 4096)
}

fn open_watch(srv: &ServerProcess) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(srv.mountpoint().join("head/watch"))
        .unwrap()
}

/// A thread blocked in one read of `f` (up to 4 KiB); sends what it got.
fn read_once(f: &File) -> mpsc::Receiver<std::io::Result<Vec<u8>>> {
    let mut f = f.try_clone().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut b = vec![0u8; 4096];
        let r = f.read(&mut b).map(|n| b[..n].to_vec());
        let _ = tx.send(r);
    });
    rx
}

/// Long enough for a read to reach the server and wait there.
const SETTLE: Duration = Duration::from_millis(100);

#[test]
fn a_waiting_read_gets_all_the_lines_of_one_write() {
    require_fuse!();
    let srv = ServerProcess::start_temp(cfg()).unwrap();
    let mut w = open_watch(&srv);
    let got = read_once(&w);
    std::thread::sleep(SETTLE);
    assert!(
        got.try_recv().is_err(),
        "nothing to read yet: the read waits"
    );
    w.write_all(b"1 watch 0000000000000001 -\n3 watch 0000000000000001 -\n5 bye\n")
        .unwrap();
    let data = got.recv_timeout(Duration::from_secs(10)).unwrap().unwrap();
    assert_eq!(
        String::from_utf8(data).unwrap(),
        "1 ok\n3 ok\n",
        "both replies of the one write in the one read"
    );
    let mut rest = Vec::new();
    w.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "EOF after bye");
}

#[test]
fn another_links_lines_leave_a_waiting_read_waiting() {
    require_fuse!();
    let srv = ServerProcess::start_temp(cfg()).unwrap();
    let mut a = open_watch(&srv);
    let mut b = open_watch(&srv);
    let got_a = read_once(&a);
    std::thread::sleep(SETTLE);
    b.write_all(b"1 watch 0000000000000001 -\n").unwrap();
    let mut buf = [0u8; 64];
    let n = b.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"1 ok\n");
    assert!(
        got_a.recv_timeout(SETTLE).is_err(),
        "a's read is not answered by b's line"
    );
    a.write_all(b"7 watch 0000000000000001 -\n").unwrap();
    let data = got_a
        .recv_timeout(Duration::from_secs(10))
        .unwrap()
        .unwrap();
    assert_eq!(data, b"7 ok\n");
}

#[test]
fn a_waiting_read_gets_eof_when_the_server_stops() {
    require_fuse!();
    let srv = ServerProcess::start_temp(cfg()).unwrap();
    let mnt = srv.mountpoint().to_path_buf();
    let w = open_watch(&srv);
    let got = read_once(&w);
    std::thread::sleep(SETTLE);
    assert!(got.try_recv().is_err(), "the read waits");
    // `quit`: the server stops, detaches the mount the read holds, exits.
    drop(srv);
    let data = got
        .recv_timeout(Duration::from_secs(10))
        .unwrap()
        .expect("EOF, not an error");
    assert!(data.is_empty(), "EOF at the stop, got {data:?}");
    drop(w);
    assert!(
        !wcfs_testkit::server::is_mountpoint(&mnt),
        "nothing left mounted"
    );
}
