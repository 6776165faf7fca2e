//! Unit tests of the rules that live only in `conn` (conn.rs and its
//! modules): going down, op ordering, one blocking action at a time,
//! stalled pins, going back in time and pins the connection must refuse.
//! The behaviour tests in `wcfs-mock` cover the same code from outside,
//! through a mock OS; these drive `poll_action`/`complete` by hand and look
//! at the actions queued.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::*;

const BS: u64 = 4096;
const AT: Tid = Tid(0x10);
const F1: Oid = Oid(1);
const F2: Oid = Oid(2);
const NONE: [Action; 0] = [];

/// A connection at `AT` and a scripted OS: quick actions succeed at once
/// (`MapNew` places mappings one after another from `0x1000_0000`),
/// blocking ones are handed to the test to complete.
struct T {
    c: Conn,
    next_addr: usize,
}

impl T {
    fn new() -> T {
        T {
            c: Conn::new(AT, Config::default()),
            next_addr: 0x1000_0000,
        }
    }

    /// Polls until nothing is left, completing quick actions with success;
    /// returns every action polled. A blocking action ends the batch and
    /// must be the last one queued.
    fn drain(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        while let Some(a) = self.c.poll_action() {
            if a.is_blocking() {
                assert!(!self.c.has_actions(), "blocking action not last: {a:?}");
                out.push(a);
                break;
            }
            let o = match a {
                Action::MapNew { len, .. } => {
                    let addr = self.next_addr;
                    self.next_addr += len + 0x10_0000;
                    Outcome::Mapped(addr)
                }
                _ => Outcome::Done,
            };
            self.c.complete(&a, o);
            out.push(a);
        }
        out
    }

    /// Completes a blocking action, then drains.
    fn answer(&mut self, a: &Action, o: Outcome) -> Vec<Action> {
        assert!(a.is_blocking());
        self.c.complete(a, o);
        self.drain()
    }

    /// Feeds server lines (all of them must be consumed), then drains.
    fn feed(&mut self, lines: &str) -> Vec<Action> {
        assert_eq!(self.c.handle_bytes(lines.as_bytes()), lines.len());
        self.drain()
    }

    /// Opens `oid` with a head of `nblk` blocks (fd `100 + oid`); the file.
    fn open(&mut self, oid: Oid, nblk: u64) -> FileId {
        let op = self.c.open(oid).unwrap();
        assert_eq!(self.c.poll_op(op), None);
        let a = only(self.drain());
        assert!(matches!(a, Action::OpenHead { oid: o, .. } if o == oid));
        let watch = sent(&self.answer(&a, opened(100 + oid.0 as i32, nblk)));
        assert_eq!(watch.len(), 1);
        assert!(watch[0].ends_with(&format!(" watch {oid} @{AT}\n")));
        assert_eq!(self.feed(&format!("{} ok\n", stream(&watch[0]))), NONE);
        match self.c.poll_op(op) {
            Some(Ok(OpOk::Opened(f))) => f,
            r => panic!("open: {r:?}"),
        }
    }

    /// Maps `len` blocks of `f` from `start`; the mapping and its address.
    fn mmap(&mut self, f: FileId, start: u64, len: u64) -> (MapId, usize) {
        let op = self.c.mmap(f, start, len).unwrap();
        let addr = self.next_addr;
        self.drain();
        match self.c.poll_op(op) {
            Some(Ok(OpOk::Mapped(m))) => (m, addr),
            r => panic!("mmap: {r:?}"),
        }
    }
}

fn opened(fd: i32, nblk: u64) -> Outcome {
    Outcome::Opened(
        Fd(fd),
        Stat {
            size: nblk * BS,
            blksize: BS,
        },
    )
}

fn only(mut v: Vec<Action>) -> Action {
    assert_eq!(v.len(), 1, "{v:?}");
    v.pop().unwrap()
}

/// The lines sent, in order.
fn sent(acts: &[Action]) -> Vec<String> {
    acts.iter()
        .filter_map(|a| match a {
            Action::Send(l) => Some(String::from(core::str::from_utf8(l.as_bytes()).unwrap())),
            _ => None,
        })
        .collect()
}

/// The stream a line is on.
fn stream(line: &str) -> u64 {
    line.split(' ').next().unwrap().parse().unwrap()
}

fn pin(stream: u64, oid: Oid, blk: u64, rev: &str) -> String {
    format!("{stream} pin {oid} #{blk} @{rev}\n")
}

/// Every mapping placed so far faults, and the actions faulted each one.
fn assert_all_fault(t: &T, acts: &[Action]) {
    for (_, m) in t.c.mappings() {
        assert!(m.faulting);
        let fault = Action::Map {
            addr: m.addr,
            len: m.len_bytes(),
            src: Src::Fault,
        };
        assert!(acts.contains(&fault), "{fault:?} not in {acts:?}");
    }
}

/// After going down: nothing but faults, closes, unmaps and lines (naks
/// and `bye`), the link closed last, no file left and `Down` with `why`.
fn assert_down(t: &T, acts: &[Action], why: &Error) {
    assert_eq!(t.c.state(), ConnState::Down);
    assert_eq!(t.c.down_reason(), Some(why));
    assert_eq!(acts.last(), Some(&Action::CloseLink));
    for a in acts {
        match a {
            Action::Map {
                src: Src::Fault, ..
            }
            | Action::Close(_)
            | Action::Unmap { .. }
            | Action::Send(_)
            | Action::CloseLink => {}
            a => panic!("{a:?} after going down"),
        }
    }
    assert_eq!(t.c.files().count(), 0);
    assert_all_fault(t, acts);
    t.c.check_invariants().unwrap();
}

// ---- going down ----

#[test]
fn down_naks_queued_acks_and_unanswered_pins_and_says_bye() {
    let mut t = T::new();
    let f = t.open(F1, 4);
    let (m, addr) = t.mmap(f, 0, 4);
    // One read: an unpin (applied, its remap and ack queued), then a pin for
    // a file we do not watch. Nothing was drained in between.
    let input = [pin(2, F1, 1, "head"), pin(4, F2, 0, "head")].concat();
    assert_eq!(t.c.handle_bytes(input.as_bytes()), input.len());
    let acts = t.drain();
    let why = Error::UnexpectedPin(F2);
    assert_down(&t, &acts, &why);
    let lines = sent(&acts);
    let nak = format!("nak: {why}\n");
    assert_eq!(
        lines,
        [
            format!("2 {nak}"),
            format!("4 {nak}"),
            String::from("3 bye\n")
        ]
    );
    // The unpin's remap was dropped; the mapping faults instead.
    assert!(!acts.contains(&Action::Map {
        addr: addr + BS as usize,
        len: BS as usize,
        src: Src::File {
            fd: Fd(101),
            offset: BS
        }
    }));
    assert!(t.c.mapping(m).unwrap().faulting);
    assert!(acts.contains(&Action::Close(Fd(101))));
}

#[test]
fn down_fails_every_op_and_closes_what_opens_late() {
    let mut t = T::new();
    let f = t.open(F1, 2);
    t.mmap(f, 0, 2);
    t.mmap(f, 1, 1);
    let open2 = t.c.open(F2).unwrap();
    assert_eq!(t.c.poll_op(open2), None);
    let open_head = only(t.drain());
    let resync = t.c.resync(Tid(0x20)).unwrap();
    let acts = t.feed("0 error: gone\n");
    let why = Error::Link(LinkError::Fatal(String::from("gone")));
    assert_down(&t, &acts, &why);
    assert_eq!(t.c.mappings().count(), 2);
    assert_eq!(t.c.poll_op(open2), Some(Err(why.clone())));
    assert_eq!(t.c.poll_op(resync), Some(Err(why.clone())));
    // The open that was under way returns its fd: closed at once.
    assert_eq!(t.answer(&open_head, opened(7, 1)), [Action::Close(Fd(7))]);
    // Nothing new starts; faulting mappings can still be released.
    assert_eq!(t.c.open(F1), Err(Error::ConnClosed));
    assert_eq!(t.c.mmap(f, 0, 1), Err(Error::FileClosed));
    let (m, mapping) = t.c.mappings().next().map(|(id, m)| (id, m.addr)).unwrap();
    t.c.unmap(m).unwrap();
    assert!(matches!(only(t.drain()), Action::Unmap { addr, .. } if addr == mapping));
}

#[test]
fn broken_link_goes_down_without_bye() {
    for (name, brk) in [
        ("eof", (|c: &mut Conn| c.handle_eof()) as fn(&mut Conn)),
        ("read error", |c| c.handle_link_error(Errno(104))),
        ("abandoned", |c| c.abandon_link(Errno(110))),
        ("eof in a line", |c| {
            assert_eq!(c.handle_bytes(b"2 pin"), 5);
            c.handle_eof()
        }),
    ] {
        let mut t = T::new();
        let f = t.open(F1, 1);
        t.mmap(f, 0, 1);
        brk(&mut t.c);
        let acts = t.drain();
        assert_eq!(sent(&acts), Vec::<String>::new(), "{name}");
        assert_eq!(t.c.state(), ConnState::Down, "{name}");
        assert_all_fault(&t, &acts);
    }
}

#[test]
fn protocol_error_goes_down_with_bye() {
    // The link itself still works: `bye` tells the server to end it.
    let mut t = T::new();
    t.open(F1, 1);
    let acts = t.feed("7 ok\n");
    assert_down(&t, &acts, &Error::Link(LinkError::UnexpectedReply(7)));
    assert_eq!(sent(&acts), ["3 bye\n"]);
    // The server's EOF after that changes nothing.
    t.c.handle_eof();
    assert_eq!(t.drain(), NONE);
    assert_eq!(t.c.state(), ConnState::Down);
}

#[test]
fn os_error_of_a_quick_action_takes_the_connection_down() {
    let mut t = T::new();
    let f = t.open(F1, 2);
    t.mmap(f, 0, 2);
    let unpin = pin(2, F1, 0, "head");
    assert_eq!(t.c.handle_bytes(unpin.as_bytes()), unpin.len());
    let remap = t.c.poll_action().unwrap();
    assert!(matches!(remap, Action::Map { .. }));
    t.c.complete(&remap, Outcome::Failed(Errno(12)));
    let acts = t.drain();
    let why = Error::Os {
        call: OsOp::MapFixed,
        errno: Errno(12),
    };
    assert_down(&t, &acts, &why);
    // The ack queued after the failed remap became a nak.
    assert_eq!(sent(&acts), [format!("2 nak: {why}\n"), "3 bye\n".into()]);
}

#[test]
fn refused_fault_map_is_protected_in_place_first() {
    // Going down, the OS refuses to lay inaccessible memory over a
    // mapping: the range is protected in place before anything else runs.
    let mut t = T::new();
    let f = t.open(F1, 2);
    let (m, addr) = t.mmap(f, 0, 2);
    let (_, addr2) = t.mmap(f, 0, 1);
    assert_eq!(t.c.handle_bytes(b"7 ok\n"), 5);
    let fault = |addr, len| Action::Map {
        addr,
        len,
        src: Src::Fault,
    };
    let mut first = None;
    while let Some(a) = t.c.poll_action() {
        if a == fault(addr, 2 * BS as usize) {
            first = Some(a);
            break;
        }
        t.c.complete(&a, Outcome::Done);
    }
    t.c.complete(&first.unwrap(), Outcome::Failed(Errno(12)));
    let acts = t.drain();
    assert_eq!(
        acts[0],
        Action::Protect {
            addr,
            len: 2 * BS as usize
        }
    );
    assert!(acts.contains(&fault(addr2, BS as usize)));
    let mapping = t.c.mapping(m).unwrap();
    assert!(mapping.faulting && !mapping.exposed);
    // The first error stands: the protocol one that took the link down.
    assert_eq!(
        t.c.down_reason(),
        Some(&Error::Link(LinkError::UnexpectedReply(7)))
    );
}

#[test]
fn refused_protect_marks_the_mapping_exposed() {
    let mut t = T::new();
    let f = t.open(F1, 1);
    let (m, addr) = t.mmap(f, 0, 1);
    let (m2, _) = t.mmap(f, 0, 1);
    // Going down faults every mapping; the OS refuses both ways for the
    // first one.
    assert_eq!(t.c.handle_bytes(b"7 ok\n"), 5);
    let mut refused = Vec::new();
    while let Some(a) = t.c.poll_action() {
        let o = match a {
            Action::Map {
                addr: at,
                src: Src::Fault,
                ..
            }
            | Action::Protect { addr: at, .. }
                if at == addr =>
            {
                refused.push(a.op());
                Outcome::Failed(Errno(12))
            }
            _ => Outcome::Done,
        };
        t.c.complete(&a, o);
    }
    assert_eq!(refused, [OsOp::MapFixed, OsOp::Protect]);
    assert!(t.c.mapping(m).unwrap().exposed);
    assert!(!t.c.mapping(m2).unwrap().exposed);
    assert!(t.c.mappings().all(|(_, m)| m.faulting));
    assert_eq!(t.c.state(), ConnState::Down);
    t.c.check_invariants().unwrap();
    // Released like any other mapping.
    t.c.unmap(m).unwrap();
    assert!(matches!(only(t.drain()), Action::Unmap { addr: at, .. } if at == addr));
}

#[test]
fn refused_fault_map_of_a_released_caller_range_is_protected() {
    // After `unmap` of a caller's range the core keeps no record; the
    // fallback still protects the range (and the down connection stays so).
    let mut t = T::new();
    let f = t.open(F1, 1);
    let op = t.c.mmap_at(f, 0, 1, 0x7000_0000, BS as usize).unwrap();
    t.drain();
    let Some(Ok(OpOk::Mapped(m))) = t.c.poll_op(op) else {
        panic!("mmap_at")
    };
    t.c.unmap(m).unwrap();
    let a = t.c.poll_action().unwrap();
    t.c.complete(&a, Outcome::Failed(Errno(12)));
    assert_eq!(
        t.c.poll_action(),
        Some(Action::Protect {
            addr: 0x7000_0000,
            len: BS as usize
        })
    );
}

// ---- op ordering ----

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
            tok: Tok(resync.0),
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
                tok: Tok(op.0),
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
        assert!(matches!(open_rev, Action::OpenRev { tok: Tok(0), .. }));
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
            tok: Tok(0),
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
            Action::Map {
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

// ---- going back in time ----

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
    let map = |b: u64, src| Action::Map {
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
                call: OsOp::Stat,
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

// ---- the ends: close after going down, fork, send errors ----

#[test]
fn close_after_going_down_completes_at_once() {
    let mut t = T::new();
    t.open(F1, 1);
    t.c.abandon_link(Errno(110));
    t.drain();
    let op = t.c.close().unwrap();
    assert_eq!(t.c.poll_op(op), Some(Ok(OpOk::Done)));
    assert_eq!(t.drain(), NONE);
    assert_eq!(t.c.state(), ConnState::Closed);
    assert_eq!(t.c.close(), Err(Error::ConnClosed));
}

#[test]
fn fork_child_faults_everything_and_says_nothing() {
    let mut t = T::new();
    let f = t.open(F1, 1);
    t.mmap(f, 0, 1);
    let open2 = t.c.open(F2).unwrap();
    t.c.fork_child();
    let acts = t.drain();
    assert_eq!(sent(&acts), Vec::<String>::new());
    assert_eq!(acts.last(), Some(&Action::CloseLink));
    assert_all_fault(&t, &acts);
    assert_eq!(t.c.state(), ConnState::Forked);
    assert_eq!(t.c.poll_op(open2), Some(Err(Error::ConnClosed)));
    // Input after the fork belongs to the parent: nothing happens.
    t.c.handle_bytes(pin(2, F1, 0, "head").as_bytes());
    t.c.handle_eof();
    assert_eq!(t.drain(), NONE);
    t.c.check_invariants().unwrap();
}

#[test]
fn send_error_takes_the_connection_down_only_before_bye() {
    let mut t = T::new();
    t.open(F1, 1);
    t.c.handle_send_error(Errno(32));
    let acts = t.drain();
    assert_down(&t, &acts, &Error::Link(LinkError::Io(32)));
    assert_eq!(sent(&acts), Vec::<String>::new(), "no bye on a broken link");

    let mut t = T::new();
    t.open(F1, 1);
    let close = t.c.close().unwrap();
    t.drain();
    t.c.handle_send_error(Errno(32));
    assert_eq!(t.c.state(), ConnState::Closing);
    t.c.handle_link_error(Errno(104)); // the server's end, seen as a reset
    assert_eq!(t.drain(), [Action::CloseLink]);
    assert_eq!(t.c.poll_op(close), Some(Ok(OpOk::Done)));
    assert_eq!(t.c.state(), ConnState::Closed);
}

#[test]
fn a_blocking_action_is_polled_after_every_quick_one() {
    let mut q = Actions::with_capacity(4);
    q.push_back(Action::OpenHead {
        tok: Tok(1),
        oid: F1,
    });
    q.push_back(Action::Close(Fd(3)));
    q.push_back(Action::CloseLink);
    assert_eq!(q.pop_front(), Some(Action::Close(Fd(3))));
    assert_eq!(q.pop_front(), Some(Action::CloseLink));
    assert_eq!(
        q.pop_front(),
        Some(Action::OpenHead {
            tok: Tok(1),
            oid: F1
        })
    );
    assert_eq!(q.pop_front(), None);
    assert!(!q.overrun());
}

#[test]
fn a_second_blocking_action_before_a_drain_takes_the_connection_down() {
    let mut t = T::new();
    // Two opens started without draining in between: the driver broke the
    // drain contract, and the second `OpenHead` finds the slot taken.
    let op1 = t.c.open(F1).unwrap();
    assert_eq!(t.c.poll_op(op1), None);
    let op2 = t.c.open(F2).unwrap();
    assert_eq!(t.c.poll_op(op2), None);
    let acts = t.drain();
    assert!(
        acts.iter().all(|a| !a.is_blocking()),
        "no call into the mount once down: {acts:?}"
    );
    assert_eq!(t.c.state(), ConnState::Down);
    assert_eq!(t.c.down_reason(), Some(&Error::NotDrained));
    assert_eq!(t.c.poll_op(op1), Some(Err(Error::NotDrained)));
    assert_eq!(t.c.poll_op(op2), Some(Err(Error::NotDrained)));
}
