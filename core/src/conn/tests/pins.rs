//! Going back in time, pins the connection refuses, and head files it refuses.

use alloc::format;
use alloc::string::String;

use super::*;

#[test]
fn resync_to_the_past_goes_down() {
    let mut t = T::new();
    let f = t.open(F1, 1);
    t.mmap(f, 0, 1);
    let why = Error::GoingBack {
        at: AT,
        to: Tid(0xf),
    };
    assert_eq!(t.c.resync(Tid(0xf)), Err(why.clone()));
    let acts = t.drain();
    assert_down(&t, &acts, &why);
    assert_eq!(sent(&acts), ["3 bye\n"]);
    assert_eq!(t.c.at(), AT);
}

#[test]
fn head_behind_the_resync_fails_the_op_only() {
    let mut t = T::new();
    t.open(F1, 1);
    let op = t.c.resync(Tid(0x20)).unwrap();
    assert_eq!(t.c.poll_op(op), None);
    let wait = only(t.drain());
    assert_eq!(t.answer(&wait, Outcome::HeadAt(Tid(0x1f))), NONE);
    assert_eq!(
        t.c.poll_op(op),
        Some(Err(Error::HeadBehind {
            head: Tid(0x1f),
            at: Tid(0x20)
        }))
    );
    assert_eq!(t.c.state(), ConnState::Up);
    assert_eq!(t.c.at(), AT);
}

// ---- pins the connection refuses, and pins past head's end ----

#[test]
fn refused_pins_take_the_connection_down_with_a_nak() {
    let after = Tid(AT.0 + 1);
    for (line, why) in [
        (
            pin(2, F1, 0, &format!("{after}")),
            Error::PinAfterAt {
                oid: F1,
                blk: 0,
                rev: after,
            },
        ),
        (pin(2, F2, 0, "head"), Error::UnexpectedPin(F2)),
        (
            pin(2, F1, crate::wire::MAX_BLK, "head"),
            Error::PinOutOfRange {
                oid: F1,
                blk: crate::wire::MAX_BLK,
            },
        ),
        (
            pin(2, F1, (i64::MAX as u64) / BS, "head"),
            Error::PinOutOfRange {
                oid: F1,
                blk: (i64::MAX as u64) / BS,
            },
        ),
    ] {
        let mut t = T::new();
        let f = t.open(F1, 1);
        t.mmap(f, 0, 1);
        let acts = t.feed(&line);
        assert_down(&t, &acts, &why);
        assert_eq!(sent(&acts), [format!("2 nak: {why}\n"), "3 bye\n".into()]);
    }
    // The last block whose end is still a file offset is accepted.
    let mut t = T::new();
    t.open(F1, 1);
    let acts = t.feed(&pin(2, F1, (i64::MAX as u64) / BS - 1, "head"));
    assert_eq!(acts, [Action::Send(OutLine::ack(2))]);
    assert_eq!(t.c.state(), ConnState::Up);
}

#[test]
fn pin_while_unwatching_is_acked_and_after_it_refused() {
    let mut t = T::new();
    let f = t.open(F1, 1);
    t.mmap(f, 0, 1);
    let op = t.c.close_file(f).unwrap();
    assert_eq!(t.c.poll_op(op), None);
    t.drain();
    // Until `watch -` is answered the server may still pin: ack, remap nothing
    // (the file's mappings already fault).
    let acts = t.feed(&pin(2, F1, 0, "head"));
    assert_eq!(acts, [Action::Send(OutLine::ack(2))]);
    t.feed("3 ok\n");
    assert_eq!(t.c.poll_op(op), Some(Ok(OpOk::Done)));
    let acts = t.feed(&pin(2, F1, 0, "head"));
    // Its mapping faulted at the close already; going down faults nothing more.
    let why = Error::UnexpectedPin(F1);
    assert_eq!(t.c.down_reason(), Some(&why));
    assert_eq!(sent(&acts), [format!("2 nak: {why}\n"), "5 bye\n".into()]);
    assert_eq!(acts.len(), 3);
    assert_eq!(acts.last(), Some(&Action::CloseLink));
    assert!(t.c.mappings().all(|(_, m)| m.faulting));
}

#[test]
fn pins_past_heads_end_map_zeros_never_head() {
    // Head has 2 blocks, the mapping 4; the `@rev` file has 3.
    let mut t = T::new();
    let f = t.open(F1, 2);
    let (_, addr) = t.mmap(f, 0, 4);
    let blk = |b: u64| addr + (b * BS) as usize;
    let map = |b: u64, src| Action::MapFixed {
        addr: blk(b),
        len: BS as usize,
        src,
    };
    let rev = format!("{}", Tid(5));
    let open_rev = only(t.feed(&pin(2, F1, 2, &rev)));
    let acts = t.answer(&open_rev, opened(9, 3));
    let in_rev = Src::File {
        fd: Fd(9),
        offset: 2 * BS,
    };
    assert_eq!(acts, [map(2, in_rev), Action::Send(OutLine::ack(2))]);
    // Past the `@rev` file's end too: zeros.
    let acts = t.feed(&pin(4, F1, 3, &rev));
    assert_eq!(acts, [map(3, Src::Zeros), Action::Send(OutLine::ack(4))]);
    // Unpinned past head's end: zeros, not head (which would fault there).
    let acts = t.feed(&pin(6, F1, 2, "head"));
    assert_eq!(acts, [map(2, Src::Zeros), Action::Send(OutLine::ack(6))]);
    assert_eq!(t.c.pinned(f), [(3, Tid(5))]);
}

#[test]
fn pin_after_bye_is_acked_without_remapping() {
    let mut t = T::new();
    let f = t.open(F1, 1);
    t.mmap(f, 0, 1);
    let close = t.c.close().unwrap();
    assert_eq!(sent(&t.drain()), ["3 bye\n"]);
    let acts = t.feed(&pin(2, F1, 0, &format!("{}", Tid(5))));
    assert_eq!(acts, [Action::Send(OutLine::ack(2))]);
    t.c.handle_eof();
    assert_eq!(t.drain(), [Action::CloseLink]);
    assert_eq!(t.c.poll_op(close), Some(Ok(OpOk::Done)));
    assert_eq!(t.c.state(), ConnState::Closed);
}

// ---- head files the connection refuses ----

#[test]
fn resync_refuses_a_head_whose_blksize_changed_or_size_is_off() {
    let bad = |size, blksize| Outcome::Stat(Stat { size, blksize });
    for (st, why) in [
        (
            bad(2 * BS, 2 * BS),
            Error::HeadChanged {
                size: 2 * BS,
                blksize: 2 * BS,
            },
        ),
        (
            bad(BS + 1, BS),
            Error::BadSize {
                size: BS + 1,
                blksize: BS,
            },
        ),
        (
            Outcome::Failed(Errno(5)),
            Error::Os {
                call: OsOp::StatHead,
                errno: Errno(5),
            },
        ),
    ] {
        let mut t = T::new();
        let f = t.open(F1, 1);
        t.mmap(f, 0, 1);
        let op = t.c.resync(Tid(0x20)).unwrap();
        assert_eq!(t.c.poll_op(op), None);
        let wait = only(t.drain());
        let stat = only(t.answer(&wait, Outcome::HeadAt(Tid(0x20))));
        let acts = t.answer(&stat, st);
        assert_down(&t, &acts, &why);
        assert_eq!(t.c.poll_op(op), Some(Err(why)));
        assert_eq!(t.c.at(), AT);
    }
}

#[test]
fn open_refuses_a_bad_head_file_and_stays_up() {
    let st = |size, blksize| Stat { size, blksize };
    for (st, why) in [
        (st(0, 0), Error::BadBlksize(0)),
        (st(0, 1000), Error::BadBlksize(1000)),
        (
            st(BS + 1, BS),
            Error::BadSize {
                size: BS + 1,
                blksize: BS,
            },
        ),
    ] {
        let mut t = T::new();
        let op = t.c.open(F1).unwrap();
        assert_eq!(t.c.poll_op(op), None);
        let a = only(t.drain());
        let acts = t.answer(&a, Outcome::Opened(Fd(7), st));
        assert_eq!(acts, [Action::Close(Fd(7))]);
        assert_eq!(t.c.poll_op(op), Some(Err(why)));
        assert_eq!(t.c.state(), ConnState::Up);
        assert_eq!(t.c.files().count(), 0);
        t.open(F1, 1); // and it can be opened again
    }
}

#[test]
fn watch_refused_by_the_server_fails_the_open_only() {
    let mut t = T::new();
    let op = t.c.open(F1).unwrap();
    assert_eq!(t.c.poll_op(op), None);
    let a = only(t.drain());
    assert_eq!(sent(&t.answer(&a, opened(101, 1))).len(), 1);
    assert_eq!(t.feed("1 error no such file\n"), [Action::Close(Fd(101))]);
    let why = Error::Server(String::from("no such file"));
    assert_eq!(t.c.poll_op(op), Some(Err(why)));
    assert_eq!(t.c.state(), ConnState::Up);
    t.c.check_invariants().unwrap();
}
