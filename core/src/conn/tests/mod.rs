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
use crate::action::{OsOp, Stat};
use crate::wire::OutLine;

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
        let fault = Action::MapFixed {
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
            Action::MapFixed {
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

mod down;
mod ends;
mod ops;
mod pins;
mod vm;
