//! Op ordering, one blocking action at a time, and stalled pins.

use alloc::format;

use super::*;

#[test]
fn resync_waits_for_running_opens_and_runs_alone() {
    let mut t = T::new();
    t.open(F1, 1);
    let open2 = t.c.open(F2).unwrap();
    assert_eq!(t.c.poll_op(open2), None);
    let open_head = only(t.drain());
    let resync = t.c.resync(Tid(0x20)).unwrap();
    assert_eq!(t.c.poll_op(resync), None);
    assert_eq!(t.drain(), NONE, "resync started beside an open");
    let watch = sent(&t.answer(&open_head, opened(102, 1)));
    assert_eq!(t.c.poll_op(resync), None);
    assert_eq!(t.drain(), NONE, "resync started before the open's reply");
    t.feed(&format!("{} ok\n", stream(&watch[0])));
    assert!(matches!(t.c.poll_op(open2), Some(Ok(OpOk::Opened(_)))));
    assert_eq!(t.c.poll_op(resync), None);
    let wait = only(t.drain());
    assert_eq!(
        wait,
        Action::WaitHeadAt {
            tok: Tok::Op(resync),
            at: Tid(0x20)
        }
    );
    // While it runs, neither an open (of any file) nor a close starts.
    let open3 = t.c.open(Oid(3)).unwrap();
    assert_eq!(t.c.poll_op(open3), None);
    assert_eq!(t.drain(), NONE);
    // ... but a mapping does.
    let f1 = t.c.files().find(|&(_, o)| o == F1).unwrap().0;
    let mmap = t.c.mmap(f1, 0, 1).unwrap();
    assert!(matches!(only(t.drain()), Action::MapNew { .. }));
    assert!(matches!(t.c.poll_op(mmap), Some(Ok(OpOk::Mapped(_)))));
}

#[test]
fn opens_and_closes_of_one_file_run_one_at_a_time() {
    let mut t = T::new();
    let f = t.open(F1, 1);
    let close = t.c.close_file(f).unwrap();
    assert_eq!(t.c.poll_op(close), None);
    let unwatch = sent(&t.drain());
    assert_eq!(unwatch, [format!("3 watch {F1} -\n")]);
    // Reopening waits for the close; another file does not.
    let reopen = t.c.open(F1).unwrap();
    let other = t.c.open(F2).unwrap();
    assert_eq!(t.c.poll_op(reopen), None);
    assert_eq!(t.drain(), NONE);
    assert_eq!(t.c.poll_op(other), None);
    assert!(matches!(only(t.drain()), Action::OpenHead { oid: F2, .. }));
    t.feed("3 ok\n");
    assert_eq!(t.c.poll_op(close), Some(Ok(OpOk::Done)));
    assert_eq!(t.c.poll_op(reopen), None);
    assert!(matches!(only(t.drain()), Action::OpenHead { oid: F1, .. }));
}

#[test]
fn second_open_of_a_file_waits_then_takes_a_handle() {
    let mut t = T::new();
    let a = t.c.open(F1).unwrap();
    let b = t.c.open(F1).unwrap();
    assert_eq!(t.c.poll_op(b), None);
    assert_eq!(t.drain(), NONE, "second open ran before the first");
    assert_eq!(t.c.poll_op(a), None);
    let open_head = only(t.drain());
    let watch = sent(&t.answer(&open_head, opened(101, 1)));
    t.feed(&format!("{} ok\n", stream(&watch[0])));
    let Some(Ok(OpOk::Opened(fa))) = t.c.poll_op(a) else {
        panic!()
    };
    assert_eq!(t.c.poll_op(b), Some(Ok(OpOk::Opened(fa))));
    assert_eq!(t.drain(), NONE, "a second handle costs no OS call");
    // Two handles: the first close only drops one.
    let c1 = t.c.close_file(fa).unwrap();
    assert_eq!(t.c.poll_op(c1), Some(Ok(OpOk::Done)));
    assert_eq!(t.drain(), NONE);
    assert_eq!(t.c.file_oid(fa), Some(F1));
}

#[test]
fn a_result_is_yielded_once() {
    let mut t = T::new();
    let f = t.open(F1, 1);
    let op = t.c.close_file(f).unwrap();
    assert_eq!(t.c.poll_op(op), None);
    t.drain();
    t.feed("3 ok\n");
    assert_eq!(t.c.poll_op(op), Some(Ok(OpOk::Done)));
    assert_eq!(t.c.poll_op(op), Some(Err(Error::NoSuchOp)));
}

// ---- one blocking action at a time, queued last ----

#[test]
fn resync_stats_files_one_at_a_time() {
    let mut t = T::new();
    t.open(F1, 1);
    t.open(F2, 1);
    let op = t.c.resync(Tid(0x20)).unwrap();
    assert_eq!(t.c.poll_op(op), None);
    let wait = only(t.drain());
    let mut stat = only(t.answer(&wait, Outcome::HeadAt(Tid(0x21))));
    for fd in [101, 102] {
        assert_eq!(
            stat,
            Action::StatHead {
                tok: Tok::Op(op),
                fd: Fd(fd)
            }
        );
        let st = Outcome::Stat(Stat {
            size: BS,
            blksize: BS,
        });
        let next = t.answer(&stat, st);
        if fd == 102 {
            assert_eq!(
                sent(&next),
                [
                    format!("5 watch {F1} @{}\n", Tid(0x20)),
                    format!("7 watch {F2} @{}\n", Tid(0x20))
                ]
            );
            break;
        }
        stat = only(next);
    }
    assert_eq!(t.c.poll_op(op), None);
    t.feed("5 ok\n7 ok\n");
    assert_eq!(t.c.poll_op(op), Some(Ok(OpOk::Done)));
    assert_eq!(t.c.at(), Tid(0x20));
}

#[test]
fn remaps_stop_at_the_first_rev_file_to_open() {
    // Two pinned blocks of two revisions: mmap opens one `@rev` file, maps
    // with it, then opens the other; each OpenRev is the last action queued.
    let mut t = T::new();
    let f = t.open(F1, 4);
    for (s, blk, rev) in [(2, 1, Tid(3)), (4, 2, Tid(4))] {
        let rev = format!("{rev}");
        let open_rev = only(t.feed(&pin(s, F1, blk, &rev)));
        assert!(matches!(open_rev, Action::OpenRev { tok: Tok::Pin, .. }));
        assert_eq!(
            sent(&t.answer(&open_rev, opened(200 + s as i32, 4))),
            [format!("{s} ack\n")]
        );
    }
    // A connection caches rev files: drop them by resyncing in place.
    let op = t.c.resync(AT).unwrap();
    assert_eq!(t.c.poll_op(op), None);
    let wait = only(t.drain());
    let stat = only(t.answer(&wait, Outcome::HeadAt(AT)));
    let st = Outcome::Stat(Stat {
        size: 4 * BS,
        blksize: BS,
    });
    let watch = sent(&t.answer(&stat, st));
    assert_eq!(watch, [format!("3 watch {F1} @{AT}\n")]);
    t.feed("3 ok\n");
    assert_eq!(t.c.poll_op(op), Some(Ok(OpOk::Done)));
    let mm = t.c.mmap(f, 0, 4).unwrap();
    let acts = t.drain();
    assert!(matches!(
        acts.last(),
        Some(Action::OpenRev { rev: Tid(3), .. })
    ));
    let acts = t.answer(acts.last().unwrap(), opened(301, 4));
    assert!(matches!(
        acts.last(),
        Some(Action::OpenRev { rev: Tid(4), .. })
    ));
    assert_eq!(t.c.poll_op(mm), None);
    t.answer(acts.last().unwrap(), opened(302, 4));
    assert!(matches!(t.c.poll_op(mm), Some(Ok(OpOk::Mapped(_)))));
}

// ---- stalled pins ----

#[test]
fn stalled_pin_holds_back_the_rest_of_the_input() {
    let mut t = T::new();
    let f = t.open(F1, 2);
    let (_, addr) = t.mmap(f, 0, 2);
    let first = pin(2, F1, 1, &format!("{}", Tid(5)));
    let input = [first.clone(), pin(4, F1, 0, "head")].concat();
    assert_eq!(t.c.handle_bytes(input.as_bytes()), first.len());
    assert!(t.c.is_stalled());
    let open_rev = only(t.drain());
    assert_eq!(
        open_rev,
        Action::OpenRev {
            tok: Tok::Pin,
            oid: F1,
            rev: Tid(5)
        }
    );
    let rest = &input.as_bytes()[first.len()..];
    assert_eq!(t.c.handle_bytes(rest), 0, "input taken while stalled");
    let acts = t.answer(&open_rev, opened(9, 2));
    assert!(!t.c.is_stalled());
    assert_eq!(
        acts,
        [
            Action::MapFixed {
                addr: addr + BS as usize,
                len: BS as usize,
                src: Src::File {
                    fd: Fd(9),
                    offset: BS
                }
            },
            Action::Send(OutLine::ack(2))
        ]
    );
    assert_eq!(t.c.handle_bytes(rest), rest.len());
    assert_eq!(sent(&t.drain()), ["4 ack\n"]);
    // The `@rev` file is cached: a second pin to it needs no open.
    let acts = t.feed(&pin(6, F1, 0, &format!("{}", Tid(5))));
    assert_eq!(sent(&acts), ["6 ack\n"]);
    assert!(!acts.iter().any(Action::is_blocking));
}

#[test]
fn failed_open_of_a_stalled_pins_rev_naks_it() {
    let mut t = T::new();
    let f = t.open(F1, 1);
    t.mmap(f, 0, 1);
    let open_rev = only(t.feed(&pin(2, F1, 0, &format!("{}", Tid(5)))));
    let acts = t.answer(&open_rev, Outcome::Failed(Errno(2)));
    let why = Error::Os {
        call: OsOp::OpenRev,
        errno: Errno(2),
    };
    assert_down(&t, &acts, &why);
    assert_eq!(sent(&acts), [format!("2 nak: {why}\n"), "3 bye\n".into()]);
    assert!(!t.c.is_stalled());
}
