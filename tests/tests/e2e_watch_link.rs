//! The raw watch link (`Wcfs::open_watch`) against the FUSE test server:
//! a watch set up with its pins answered, the server's error reply to a
//! malformed request, a fatal message and the EOF after it, bye and EOF.
mod e2e_common;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use e2e_common::*;
use wcfs_core::wire::Rev;
use wcfs_linux::Wcfs;
use wcfs_testkit::require_fuse;

fn soon() -> Option<Instant> {
    Some(Instant::now() + Duration::from_secs(10))
}

#[test]
fn watch_setup_pins_errors_fatal_and_eof() {
    require_fuse!();
    let srv = server();
    let at1 = srv.commit(&[change(F, 0, "a0"), change(F, 1, "a1")]);
    let at2 = srv.commit(&[change(F, 1, "b1")]);
    // A file the server knows (someone opened its head file), whose block
    // 1 was read: the server pins only blocks it served.
    let head = std::fs::File::open(srv.mountpoint().join(format!("head/bigfile/{F}"))).unwrap();
    let mut buf = [0u8; 2];
    head.read_exact_at(&mut buf, bs()).unwrap();
    assert_eq!(&buf, b"b1");
    let w = Wcfs::open(srv.mountpoint()).unwrap();
    let l = w.open_watch().unwrap();

    let reply = std::thread::scope(|s| {
        let req = s.spawn(|| l.send_req(&format!("watch {F} @{at1}"), soon()));
        let pin = l
            .recv_req(soon())
            .unwrap()
            .expect("a pin of the watch setup");
        assert_eq!((pin.oid, pin.blk, pin.rev), (F, 1, Rev::At(at1)));
        assert_eq!(pin.msg, format!("pin {F} #1 @{at1}"));
        assert_eq!(pin.stream % 2, 0);
        l.reply_req(pin.stream, "ack").unwrap();
        assert!(l.reply_req(pin.stream, "ack").is_err(), "answered once");
        req.join().unwrap()
    });
    assert_eq!(reply.unwrap(), "ok");
    // Moving the watch to head unpins the block.
    let reply = std::thread::scope(|s| {
        let req = s.spawn(|| l.send_req(&format!("watch {F} @{at2}"), soon()));
        let pin = l.recv_req(soon()).unwrap().expect("the unpin");
        assert_eq!((pin.blk, pin.rev), (1, Rev::Head));
        l.reply_req(pin.stream, "ack").unwrap();
        req.join().unwrap()
    });
    assert_eq!(reply.unwrap(), "ok");

    assert_eq!(
        l.send_req(&format!("watch 01 @{at1}"), soon()).unwrap(),
        "error bad watch: invalid oid"
    );
    assert_eq!(
        l.send_req("hello", soon()).unwrap(),
        "error bad watch: not a watch request: \"hello\""
    );
    assert!(l.fatals().is_empty());
    // A frame without a stream: fatal, and the server ends the link.
    l.write_raw(b"hello\n").unwrap();
    assert_eq!(
        l.recv_req(soon()).unwrap(),
        None,
        "EOF after the fatal message"
    );
    assert_eq!(l.fatals(), ["invalid frame: \"hello\\n\""]);
    assert!(l.is_ended());
    assert!(l.send_req("watch 0000000000000001 -", soon()).is_err());
    l.close().unwrap();
    drop(head);
    assert!(
        srv.failures()
            .iter()
            .all(|(_, f)| f.contains("invalid frame")),
        "{:?}",
        srv.failures()
    );
}

#[test]
fn bye_ends_the_link() {
    require_fuse!();
    let srv = server();
    srv.commit(&[change(F, 0, "a0")]);
    let w = Wcfs::open(srv.mountpoint()).unwrap();
    let l = w.open_watch().unwrap();
    assert_eq!(l.send_req(&format!("watch {F} -"), soon()).unwrap(), "ok");
    l.close_write().unwrap();
    assert!(l.wait_ended(soon()));
    assert_eq!(l.recv_req(soon()).unwrap(), None);
    assert!(l.fatals().is_empty());
    let t = Instant::now();
    let e = l
        .recv_req(Some(Instant::now() + Duration::from_millis(10)))
        .unwrap();
    assert_eq!(e, None, "ended: no wait");
    assert!(t.elapsed() < Duration::from_secs(1));
    l.close().unwrap();
    assert!(srv.failures().is_empty(), "{:?}", srv.failures());
}
