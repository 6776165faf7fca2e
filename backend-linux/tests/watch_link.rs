//! The raw watch link over a socketpair, the server scripted: requests and
//! their replies, pins answered once, fatal messages, bye, deadlines, and
//! bad input from the server (a clean failure, never a panic).
mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use common::{wait_for, Tree};
use wcfs_core::link::LinkError;
use wcfs_core::rawlink::RawError;
use wcfs_core::wire::{Oid, Rev, Tid, WireError};
use wcfs_linux::{ErrorKind, WatchError, WatchLink, Wcfs};

struct Server {
    rx: BufReader<UnixStream>,
    tx: UnixStream,
}

impl Server {
    fn line(&mut self) -> Option<String> {
        let mut l = String::new();
        match self.rx.read_line(&mut l).unwrap() {
            0 => None,
            _ => Some(l.trim_end_matches('\n').to_string()),
        }
    }
    fn send(&mut self, line: &str) {
        self.tx.write_all(format!("{line}\n").as_bytes()).unwrap();
    }
}

fn link(tree: &Tree) -> (WatchLink, Server) {
    let (a, b) = UnixStream::pair().unwrap();
    let w = Wcfs::open(&tree.0).unwrap();
    let l = w.open_watch_over(a.into()).unwrap();
    let srv = Server {
        rx: BufReader::new(b.try_clone().unwrap()),
        tx: b,
    };
    (l, srv)
}

fn watch_error(e: &wcfs_linux::Error) -> &WatchError {
    match &e.kind {
        ErrorKind::Watch(w) => w,
        k => panic!("not a watch link error: {k:?}"),
    }
}

fn soon() -> Option<Instant> {
    Some(Instant::now() + Duration::from_secs(10))
}

#[test]
fn requests_replies_pins_fatals_and_bye() {
    let tree = Tree::new("wlink-exchange");
    let (l, mut srv) = link(&tree);
    let server = std::thread::spawn(move || {
        assert_eq!(
            srv.line().unwrap(),
            "1 watch 0000000000000001 @0000000000000400"
        );
        srv.send("2 pin 0000000000000001 #2 @0000000000000300");
        assert_eq!(srv.line().unwrap(), "2 ack");
        srv.send("1 ok");
        assert_eq!(srv.line().unwrap(), "3 hello");
        srv.send("3 error bad watch: not a watch request: \"hello\"");
        srv.send("0 error: invalid frame: \"hello\\n\"");
        assert_eq!(srv.line().unwrap(), "5 bye");
        srv.send("4 pin 0000000000000001 #1 @head"); // crossed the bye
        assert_eq!(srv.line().unwrap(), "4 nak: gone");
        drop(srv); // EOF
    });
    let client = std::thread::scope(|s| {
        let req = s.spawn(|| l.send_req("watch 0000000000000001 @0000000000000400", soon()));
        let pin = l.recv_req(soon()).unwrap().expect("a pin");
        assert_eq!(
            (pin.stream, pin.oid, pin.blk, pin.rev),
            (2, Oid(1), 2, Rev::At(Tid(0x300)))
        );
        assert_eq!(pin.msg, "pin 0000000000000001 #2 @0000000000000300");
        l.reply_req(pin.stream, "ack").unwrap();
        req.join().unwrap()
    });
    assert_eq!(client.unwrap(), "ok");
    // Twice, or where nothing asked: the caller's error, the link stays up.
    let e = l.reply_req(2, "ack").unwrap_err();
    assert_eq!(watch_error(&e), &WatchError::Link(RawError::NotPending(2)));
    assert!(e.to_string().contains("wlink"), "{e}");
    let e = l.reply_req(8, "ack").unwrap_err();
    assert_eq!(watch_error(&e), &WatchError::Link(RawError::NotPending(8)));
    assert_eq!(
        l.send_req("hello", soon()).unwrap(),
        "error bad watch: not a watch request: \"hello\""
    );
    wait_for("the fatal message", || !l.fatals().is_empty());
    assert_eq!(l.fatals(), ["invalid frame: \"hello\\n\""]);
    l.close_write().unwrap();
    let e = l.send_req("watch 0000000000000001 -", soon()).unwrap_err();
    assert_eq!(
        watch_error(&e),
        &WatchError::Link(RawError::Down(LinkError::Closed))
    );
    let pin = l
        .recv_req(soon())
        .unwrap()
        .expect("the pin that crossed bye");
    l.reply_req(pin.stream, "nak: gone").unwrap();
    assert_eq!(l.recv_req(soon()).unwrap(), None, "EOF");
    assert!(l.wait_ended(soon()) && l.is_ended());
    l.close().unwrap();
    l.close().unwrap();
    server.join().unwrap();
}

#[test]
fn deadlines_pass_and_a_late_reply_is_dropped() {
    let tree = Tree::new("wlink-deadline");
    let (l, mut srv) = link(&tree);
    let t = Instant::now();
    let e = l
        .send_req(
            "watch 0000000000000001 -",
            Some(t + Duration::from_millis(50)),
        )
        .unwrap_err();
    assert_eq!(watch_error(&e), &WatchError::DeadlinePassed);
    assert!(t.elapsed() >= Duration::from_millis(50));
    let e = l
        .recv_req(Some(Instant::now() + Duration::from_millis(20)))
        .unwrap_err();
    assert_eq!(watch_error(&e), &WatchError::DeadlinePassed);
    assert_eq!(srv.line().unwrap(), "1 watch 0000000000000001 -");
    // The late reply is no violation, and goes to nobody.
    srv.send("1 ok");
    let server = std::thread::spawn(move || {
        assert_eq!(srv.line().unwrap(), "3 watch 0000000000000001 -");
        srv.send("3 ok");
        assert_eq!(srv.line().unwrap(), "5 bye");
        drop(srv);
    });
    assert_eq!(
        l.send_req("watch 0000000000000001 -", soon()).unwrap(),
        "ok"
    );
    l.close().unwrap();
    server.join().unwrap();
}

/// Each server line takes the link down: waiting calls fail with the
/// reason, `recv_req` gives it, nothing more goes out.
#[test]
fn bad_input_from_the_server_brings_the_link_down_cleanly() {
    let cases: &[(&str, LinkError)] = &[
        ("7 ok", LinkError::UnexpectedReply(7)),
        (
            "2 pin 0000000000000001 #-1 @head",
            LinkError::Wire(WireError::NegativeBlk),
        ),
        ("2 ack", LinkError::UnexpectedMessage(2)),
        ("garbage", LinkError::Wire(WireError::BadStream)),
        ("1 \u{1}", LinkError::Wire(WireError::ControlChar)),
    ];
    for (i, (line, why)) in cases.iter().enumerate() {
        let tree = Tree::new(&format!("wlink-bad{i}"));
        let (l, mut srv) = link(&tree);
        let server = std::thread::spawn({
            let line = line.to_string();
            move || {
                assert_eq!(srv.line().unwrap(), "1 watch 0000000000000001 -");
                srv.send(&line);
                // The client closes its end: no bye after a violation.
                assert_eq!(srv.line(), None);
            }
        });
        let e = l.send_req("watch 0000000000000001 -", soon()).unwrap_err();
        let down = WatchError::Link(RawError::Down(why.clone()));
        assert_eq!(watch_error(&e), &down, "{line}");
        let e = l.recv_req(soon()).unwrap_err();
        assert_eq!(watch_error(&e), &down, "{line}");
        assert!(l.is_ended());
        let e = l.send_req("x", soon()).unwrap_err();
        assert_eq!(watch_error(&e), &down, "{line}");
        l.close().unwrap();
        server.join().unwrap();
    }
}

#[test]
fn eof_in_a_line_and_too_long_lines_are_link_errors() {
    for (i, bytes) in [b"2 pin 00".to_vec(), vec![b'1'; 2000]].iter().enumerate() {
        let tree = Tree::new(&format!("wlink-eof{i}"));
        let (l, mut srv) = link(&tree);
        srv.tx.write_all(bytes).unwrap();
        if i == 0 {
            drop(srv);
        }
        let e = l.recv_req(soon()).unwrap_err();
        let want = if i == 0 {
            WireError::EofInLine
        } else {
            WireError::TooLong
        };
        assert_eq!(
            watch_error(&e),
            &WatchError::Link(RawError::Down(LinkError::Wire(want)))
        );
        l.close().unwrap();
    }
}

#[test]
fn text_that_is_no_line_is_refused_and_the_link_stays_up() {
    let tree = Tree::new("wlink-text");
    let (l, mut srv) = link(&tree);
    let e = l.send_req("watch\n1 bye", soon()).unwrap_err();
    assert_eq!(
        watch_error(&e),
        &WatchError::Link(RawError::BadText(WireError::ControlChar))
    );
    let server = std::thread::spawn(move || {
        assert_eq!(srv.line().unwrap(), "1 ok?");
        srv.send("1 ok");
        assert_eq!(srv.line().unwrap(), "3 bye");
        drop(srv);
    });
    assert_eq!(l.send_req("ok?", soon()).unwrap(), "ok");
    drop(l); // closes: bye, then the server's EOF
    server.join().unwrap();
}

#[test]
fn close_gives_up_on_a_server_that_never_ends_the_link_and_lets_go() {
    let tree = Tree::new("wlink-noend");
    let (l, mut srv) = link(&tree);
    // A socket's reader is woken by a shutdown once the wait is over.
    let t = Instant::now();
    l.close().unwrap();
    assert!(t.elapsed() < Duration::from_secs(12));
    assert_eq!(srv.line().unwrap(), "1 bye");
    assert_eq!(srv.line(), None, "the client let go of its end");
}
