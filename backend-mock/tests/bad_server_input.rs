//! Bad input from the server: a clear error, the connection down, every
//! mapping faulting, and what the server waits for answered with a nak.
mod common;
use common::*;
use wcfs_core::link::LinkError;
use wcfs_core::wire::{Tid, WireError};
use wcfs_core::{ConnState, Error, OpOk, OsOp};
use wcfs_mock::{Call, Mem, ENOMEM};

const AT: Tid = Tid(0x100);

fn setup() -> (H, wcfs_core::MapId) {
    let mut db = Db::default();
    db.commit(Tid(0x50), &[(F, 0, "old")]);
    db.commit(AT, &[(F, 0, "a"), (F, 1, "b")]);
    let mut h = harness(AT, db);
    let f = open(&mut h, F, "ok").unwrap();
    let m = mmap(&mut h, f, 0, 2);
    (h, m)
}

fn assert_down(h: &H, m: wcfs_core::MapId, why: Error) {
    assert_eq!(h.conn.state(), ConnState::Down);
    assert_eq!(h.conn.down_reason(), Some(&why));
    assert!(read(h, m, 0).is_err() && read(h, m, 1).is_err());
    assert!(h.be.open_fds().is_empty(), "no descriptor leaked");
    assert!(!h.be.link_open());
}

/// Each server input takes the connection down with the given reason.
macro_rules! bad_input {
    ($($name:ident: $input:expr => $why:expr;)*) => {$(
        #[test]
        fn $name() {
            let (mut h, m) = setup();
            h.recv_bytes($input.as_bytes());
            assert_down(&h, m, $why);
            assert_eq!(h.conn.open(F).unwrap_err(), Error::ConnClosed);
        }
    )*};
}

bad_input! {
    malformed_line: "2 pin xyz\n" => Error::Link(LinkError::Wire(WireError::NotHex16));
    unknown_message: "1 hello\n" => Error::Link(LinkError::Wire(WireError::UnknownMessage));
    reply_on_wrong_stream: "5 ok\n" => Error::Link(LinkError::UnexpectedReply(5));
    pin_on_odd_stream: "3 pin 0000000000000001 #0 @head\n" => Error::Link(LinkError::BadRequestStream(3));
    negative_block: "2 pin 0000000000000001 #-1 @head\n" => Error::Link(LinkError::Wire(WireError::NegativeBlk));
    garbage_oid: "2 pin \u{FFFD}\n" => Error::Link(LinkError::Wire(WireError::NotHex16));
    fatal: "0 error: invalid frame: \"x\"\n" => Error::Link(LinkError::Fatal(wcfs_core::link::text("invalid frame: \"x\"")));
    over_long_line: &"2 ".repeat(600) => Error::Link(LinkError::Wire(WireError::TooLong));
}

#[test]
fn raw_invalid_utf8_is_refused() {
    let (mut h, m) = setup();
    h.recv_bytes(b"1 error \xff\n");
    assert_down(&h, m, Error::Link(LinkError::Wire(WireError::InvalidUtf8)));
}

#[test]
fn pin_for_unwatched_file_is_nakked() {
    let (mut h, m) = setup();
    h.recv(&format!("2 pin {G} #0 @head"));
    assert_eq!(
        h.sent(),
        [
            format!("2 nak: unexpected pin: f<{G}> not watched"),
            "3 bye".into()
        ],
        "nak, then bye so that the server ends the link"
    );
    assert_down(&h, m, Error::UnexpectedPin(G));
}

#[test]
fn huge_block_is_nakked() {
    let (mut h, m) = setup();
    h.recv(&format!("2 pin {F} #9223372036854775807 @{AT}"));
    let sent = h.sent();
    assert!(
        sent[0].starts_with("2 nak: pin f<0000000000000001> #9223372036854775807"),
        "{sent:?}"
    );
    assert_eq!(sent[1], "3 bye");
    assert_down(
        &h,
        m,
        Error::PinOutOfRange {
            oid: F,
            blk: i64::MAX as u64,
        },
    );
}

#[test]
fn pin_after_at_is_nakked() {
    let (mut h, m) = setup();
    h.recv(&format!("2 pin {F} #0 @0000000000000200"));
    assert!(h.sent()[0].starts_with("2 nak: "));
    assert_down(
        &h,
        m,
        Error::PinAfterAt {
            oid: F,
            blk: 0,
            rev: Tid(0x200),
        },
    );
}

#[test]
fn pin_to_unknown_revision_is_nakked() {
    let (mut h, m) = setup();
    h.recv(&format!("2 pin {F} #0 @0000000000000001"));
    assert!(h.sent()[0].starts_with("2 nak: OpenRev"));
    assert!(matches!(h.conn.down_reason(), Some(Error::Os { .. })));
    assert_down(&h, m, h.conn.down_reason().unwrap().clone());
}

#[test]
fn eof_during_pending_request() {
    let (mut h, m) = setup();
    let op = h.conn.resync(Tid(0x100)).unwrap();
    assert_eq!(h.poll(op), None);
    h.eof();
    assert_eq!(h.poll(op), Some(Err(Error::Link(LinkError::UnexpectedEof))));
    assert_down(&h, m, Error::Link(LinkError::UnexpectedEof));
}

#[test]
fn eof_in_the_middle_of_a_line() {
    let (mut h, m) = setup();
    h.recv_bytes(b"2 pin 00000");
    h.eof();
    assert_down(&h, m, Error::Link(LinkError::Wire(WireError::EofInLine)));
}

#[test]
fn error_reply_to_open_leaves_the_link_up() {
    let mut db = Db::default();
    db.commit(AT, &[(F, 0, "a")]);
    let mut h = harness(AT, db);
    let e = open(&mut h, F, "error setup watch f<0000000000000001> @0000000000000100: file not yet known to wcfs or is not a ZBigFile").unwrap_err();
    assert!(e
        .to_string()
        .ends_with("file not yet known to wcfs or is not a ZBigFile"));
    assert_eq!(h.conn.state(), ConnState::Up);
    assert!(h.be.open_fds().is_empty(), "head file closed again");
    assert_eq!(
        open(&mut h, G, "ok").unwrap_err(),
        Error::Os {
            call: OsOp::OpenHead,
            errno: wcfs_mock::ENOENT
        }
    );
}

#[test]
fn failed_remap_naks_and_goes_down() {
    // Every MAP_FIXED fails: the pin's remap, then the fault maps of going
    // down, which fall back to mprotect: the mapping faults all the same.
    let (mut h, m) = setup();
    h.be.set_fail_chance(OsOp::MapFixed, 100, ENOMEM);
    h.recv(&format!("2 pin {F} #0 @0000000000000050"));
    let sent = h.sent();
    assert_eq!(sent.len(), 2);
    assert!(sent[0].starts_with("2 nak: MapFixed"), "{sent:?}");
    assert_eq!(sent[1], "3 bye");
    let why = Error::Os {
        call: OsOp::MapFixed,
        errno: ENOMEM,
    };
    assert_down(&h, m, why);
    assert!(h.be.trace().contains(&Call::Protect {
        addr: h.conn.mapping(m).unwrap().addr,
        len: 2 * BS as usize
    }));
    assert!(!h.conn.mapping(m).unwrap().exposed);
    h.conn.check_invariants().unwrap();
}

#[test]
fn refused_fault_map_and_protect_leave_the_mapping_marked_exposed() {
    let (mut h, m) = setup();
    h.be.set_fail_chance(OsOp::MapFixed, 100, ENOMEM);
    h.be.set_fail_chance(OsOp::Protect, 100, ENOMEM);
    h.recv("7 ok");
    let map = h.conn.mapping(m).unwrap();
    assert!(map.faulting && map.exposed);
    let addr = map.addr;
    // What the OS would not take away is still there, and the core says so.
    assert!(matches!(h.be.at(addr), Some(Mem::File { .. })));
    assert_eq!(
        h.conn.down_reason(),
        Some(&Error::Link(LinkError::UnexpectedReply(7)))
    );
    assert_eq!(h.be.injected_ops(), [OsOp::MapFixed, OsOp::Protect]);
    // Released like any other.
    h.conn.unmap(m).unwrap();
    h.drain();
    assert_eq!(h.be.at(addr), None);
}

#[test]
fn bad_head_file_sizes_are_refused() {
    use wcfs_mock::{Path, StatTable};
    let mut st = StatTable {
        head: AT,
        ..Default::default()
    };
    st.files.insert(
        Path::Head(F),
        wcfs_core::Stat {
            size: 20,
            blksize: 16,
        },
    );
    st.files.insert(
        Path::Head(G),
        wcfs_core::Stat {
            size: 0,
            blksize: 0,
        },
    );
    let mut h = wcfs_mock::Harness::new(AT, cfg(), st);
    let op = h.conn.open(F).unwrap();
    assert_eq!(
        h.poll(op),
        Some(Err(Error::BadSize {
            size: 20,
            blksize: 16
        }))
    );
    let op = h.conn.open(G).unwrap();
    assert_eq!(h.poll(op), Some(Err(Error::BadBlksize(0))));
    assert!(h.be.open_fds().is_empty());
    assert!(h.sent().is_empty(), "no watch for a bad file");
    assert_eq!(h.conn.state(), ConnState::Up);
    let _ = OpOk::Done;
}

#[test]
fn going_down_says_bye_unless_the_link_is_gone() {
    // A protocol violation: the link still carries bytes, so say bye.
    let (mut h, _) = setup();
    h.recv("9 ok");
    assert_eq!(h.sent(), ["3 bye"]);
    // EOF: nothing can be said any more.
    let (mut h, _) = setup();
    h.eof();
    assert!(h.sent().is_empty());
    // A local decision (going back in time).
    let (mut h, _) = setup();
    assert!(h.conn.resync(Tid(0x10)).is_err());
    h.drain();
    assert_eq!(h.sent(), ["3 bye"]);
}
