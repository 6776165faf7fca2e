//! Unit tests of mappings that serve a VM (`vm.rs`): pins ask the VM under
//! its lock, leave its dirty pages, lock several VMs in ascending order,
//! let go of every lock however the pin ends; resync's tail remaps ask
//! too; a refused lock or query naks the pin and takes the connection down.

use alloc::format;
use alloc::vec::Vec;

use hashbrown::HashSet;

use crate::action::{Action, Errno, Fd, OsOp, Outcome, Src, Stat};
use crate::conn::{Config, Conn, ConnState, Error, OpOk};
use crate::ids::{FileId, MapId, VmId};
use crate::wire::{Oid, Tid};

const BS: u64 = 4096;
const AT: Tid = Tid(0x10);
const F1: Oid = Oid(1);
const BASE: usize = 0x4000_0000;

/// A connection and a scripted OS with VMs: quick actions succeed,
/// `VmDirty` answers from `dirty` (addresses), a `VmLock` is handed back to
/// the test (it is blocking). Every lock and unlock is checked against
/// `held`, in ascending order.
struct T {
    c: Conn,
    dirty: HashSet<usize>,
    fail_query: bool,
    held: Vec<VmId>,
    log: Vec<Action>,
}

impl T {
    fn new() -> T {
        T {
            c: Conn::new(AT, Config::default()),
            dirty: HashSet::new(),
            fail_query: false,
            held: Vec::new(),
            log: Vec::new(),
        }
    }

    /// Drains; returns the blocking action that ended the batch, if any.
    fn drain(&mut self) -> Option<Action> {
        while let Some(a) = self.c.poll_action() {
            self.log.push(a.clone());
            if a.is_blocking() {
                return Some(a);
            }
            let o = match a {
                Action::VmDirty { vm, addr, .. } => {
                    assert!(self.held.contains(&vm), "query of {vm:?} not locked");
                    if self.fail_query {
                        Outcome::Failed(Errno(5))
                    } else {
                        Outcome::Dirty(self.dirty.contains(&addr))
                    }
                }
                Action::VmUnlock { vm } => {
                    let i = self.held.iter().position(|&v| v == vm);
                    self.held.remove(i.expect("unlock of a lock not held"));
                    Outcome::Done
                }
                _ => Outcome::Done,
            };
            self.c.complete(&a, o);
        }
        None
    }

    /// Takes the lock `a` asks for (checking the order), completes, drains.
    fn lock(&mut self, a: Action) -> Option<Action> {
        let Action::VmLock { vm, .. } = a else {
            panic!("not a VmLock: {a:?}")
        };
        assert!(
            self.held.iter().all(|&h| h < vm),
            "{vm:?} after {:?}",
            self.held
        );
        self.held.push(vm);
        self.c.complete(&a, Outcome::Done);
        self.drain()
    }

    /// Feeds lines and drains, taking every lock asked for.
    fn feed(&mut self, lines: &str) {
        let mut rest = lines.as_bytes();
        while !rest.is_empty() {
            let n = self.c.handle_bytes(rest);
            rest = &rest[n..];
            let mut b = self.drain();
            while let Some(a) = b {
                b = match a {
                    Action::VmLock { .. } => self.lock(a),
                    Action::OpenRev { .. } => {
                        assert!(self.held.is_empty(), "@rev opened holding a VM lock");
                        let st = Stat {
                            size: 8 * BS,
                            blksize: BS,
                        };
                        self.c.complete(&a, Outcome::Opened(Fd(200), st));
                        self.drain()
                    }
                    _ => panic!("unexpected blocking {a:?}"),
                };
            }
        }
    }

    fn open(&mut self, nblk: u64) -> FileId {
        let op = self.c.open(F1).unwrap();
        assert_eq!(self.c.poll_op(op), None);
        let a = self.drain().unwrap();
        let st = Stat {
            size: nblk * BS,
            blksize: BS,
        };
        self.c.complete(&a, Outcome::Opened(Fd(100), st));
        assert!(self.drain().is_none());
        self.feed("1 ok\n");
        match self.c.poll_op(op) {
            Some(Ok(OpOk::Opened(f))) => f,
            r => panic!("open: {r:?}"),
        }
    }

    fn mmap_vm(&mut self, f: FileId, start: u64, len: u64, addr: usize, vm: u64) -> MapId {
        let op = self
            .c
            .mmap_vm(f, start, len, addr, (len * BS) as usize, VmId(vm))
            .unwrap();
        assert!(self.drain().is_none());
        match self.c.poll_op(op) {
            Some(Ok(OpOk::Mapped(m))) => m,
            r => panic!("mmap_vm: {r:?}"),
        }
    }

    /// Actions logged since `from` that map `addr`.
    fn maps_at(&self, from: usize, addr: usize) -> usize {
        self.log[from..]
            .iter()
            .filter(|a| matches!(a, Action::MapFixed { addr: x, .. } if *x == addr))
            .count()
    }

    fn acks(&self, from: usize) -> usize {
        self.log[from..]
            .iter()
            .filter(|a| matches!(a, Action::Send(l) if l.is_ack()))
            .count()
    }
}

#[test]
fn a_pin_asks_the_vm_under_its_lock_and_leaves_dirty_pages() {
    let mut t = T::new();
    let f = t.open(8);
    t.mmap_vm(f, 0, 8, BASE, 1);
    t.dirty.insert(BASE + 3 * BS as usize);
    let from = t.log.len();
    t.feed("2 pin 0000000000000001 #3 @head\n4 pin 0000000000000001 #4 @head\n");
    assert_eq!(
        t.maps_at(from, BASE + 3 * BS as usize),
        0,
        "dirty page replaced"
    );
    assert_eq!(
        t.maps_at(from, BASE + 4 * BS as usize),
        1,
        "clean page kept"
    );
    assert_eq!(t.acks(from), 2);
    assert!(t.held.is_empty(), "locks left: {:?}", t.held);
    // The lock was taken before the query and let go after the ack.
    let seq: Vec<OsOp> = t.log[from..].iter().map(|a| a.op()).collect();
    let lock = seq.iter().position(|o| *o == OsOp::VmLock).unwrap();
    let ask = seq.iter().position(|o| *o == OsOp::VmDirty).unwrap();
    let ack = seq.iter().position(|o| *o == OsOp::Send).unwrap();
    let unlock = seq.iter().position(|o| *o == OsOp::VmUnlock).unwrap();
    assert!(lock < ask && ask < ack && ack < unlock, "{seq:?}");
    assert_eq!(t.c.stats().dirty_kept, 1);
    assert_eq!(t.c.stats().pins + t.c.stats().unpins, 2);
}

#[test]
fn a_dirty_block_keeps_its_pin_for_remap_blk() {
    let mut t = T::new();
    let f = t.open(8);
    let m = t.mmap_vm(f, 0, 8, BASE, 1);
    let a3 = BASE + 3 * BS as usize;
    t.dirty.insert(a3);
    let from = t.log.len();
    t.feed("2 pin 0000000000000001 #3 @0000000000000005\n");
    assert_eq!(t.maps_at(from, a3), 0);
    assert_eq!(t.acks(from), 1);
    assert_eq!(t.c.pinned(f), [(3, Tid(5))]);
    let st = t.c.stats();
    assert_eq!(
        (st.rev_opens, st.rev_hits, st.dirty_kept),
        (1, 0, 1),
        "{st:?}"
    );
    // The VM drops its page: the block shows the pin's revision.
    t.dirty.clear();
    let from = t.log.len();
    let op = t.c.remap_blk(m, 3).unwrap();
    assert!(t.drain().is_none());
    assert_eq!(t.c.poll_op(op), Some(Ok(OpOk::Done)));
    let want = Action::MapFixed {
        addr: a3,
        len: BS as usize,
        src: Src::File {
            fd: Fd(200),
            offset: 3 * BS,
        },
    };
    assert!(t.log[from..].contains(&want), "{:?}", &t.log[from..]);
}

#[test]
fn several_vms_are_locked_in_ascending_order() {
    let mut t = T::new();
    let f = t.open(8);
    t.mmap_vm(f, 0, 4, BASE, 9);
    t.mmap_vm(f, 2, 4, BASE + 0x100_0000, 3);
    t.mmap_vm(f, 0, 8, BASE + 0x200_0000, 5);
    let from = t.log.len();
    t.feed("2 pin 0000000000000001 #2 @head\n");
    let locks: Vec<u64> = t.log[from..]
        .iter()
        .filter_map(|a| match a {
            Action::VmLock { vm, .. } => Some(vm.0),
            _ => None,
        })
        .collect();
    assert_eq!(locks, [3, 5, 9]);
    assert_eq!(t.acks(from), 1);
    assert!(t.held.is_empty());
}

#[test]
fn a_mapping_gone_while_the_pin_waits_for_the_lock_is_left_out() {
    let mut t = T::new();
    let f = t.open(8);
    let m = t.mmap_vm(f, 0, 8, BASE, 1);
    assert_eq!(t.c.handle_bytes(b"2 pin 0000000000000001 #1 @head\n"), 32);
    let lock = t.drain().expect("waits for the VM lock");
    // Meanwhile the VM drops its area (under its lock, on its thread).
    t.c.unmap(m).unwrap();
    assert!(t.drain().is_none());
    let from = t.log.len();
    assert!(t.lock(lock).is_none());
    assert_eq!(t.acks(from), 1);
    assert!(!t.log[from..].iter().any(|a| a.op() == OsOp::VmDirty));
    assert!(t.held.is_empty(), "the lock taken is let go");
}

#[test]
fn going_down_while_the_pin_waits_for_the_lock_lets_it_go_at_return() {
    let mut t = T::new();
    let f = t.open(8);
    t.mmap_vm(f, 0, 8, BASE, 1);
    assert_eq!(t.c.handle_bytes(b"2 pin 0000000000000001 #1 @head\n"), 32);
    let lock = t.drain().expect("waits for the VM lock");
    t.c.abandon_link(Errno(110));
    t.drain();
    assert!(sent_nak(&t.log, 2), "{:?}", t.log);
    assert!(t.lock(lock).is_none());
    assert!(
        t.held.is_empty(),
        "the lock taken after going down is let go"
    );
}

#[test]
fn a_refused_query_naks_the_pin_and_lets_the_lock_go() {
    let mut t = T::new();
    let f = t.open(8);
    t.mmap_vm(f, 0, 8, BASE, 1);
    t.fail_query = true;
    t.feed("2 pin 0000000000000001 #1 @head\n");
    assert_eq!(t.c.state(), ConnState::Down);
    assert!(sent_nak(&t.log, 2), "{:?}", t.log);
    assert!(t.held.is_empty());
    assert!(matches!(
        t.c.down_reason(),
        Some(Error::Os {
            call: OsOp::VmDirty,
            ..
        })
    ));
}

#[test]
fn a_refused_lock_naks_the_pin() {
    let mut t = T::new();
    let f = t.open(8);
    t.mmap_vm(f, 0, 8, BASE, 1);
    assert_eq!(t.c.handle_bytes(b"2 pin 0000000000000001 #1 @head\n"), 32);
    let lock = t.drain().unwrap();
    t.c.complete(&lock, Outcome::Failed(Errno(5)));
    t.drain();
    assert_eq!(t.c.state(), ConnState::Down);
    assert!(sent_nak(&t.log, 2), "{:?}", t.log);
    assert!(t.held.is_empty());
}

#[test]
fn resync_asks_the_vm_before_remapping_a_changed_tail() {
    let mut t = T::new();
    let f = t.open(4);
    t.mmap_vm(f, 0, 8, BASE, 1);
    let a5 = BASE + 5 * BS as usize;
    t.dirty.insert(a5);
    let op = t.c.resync(Tid(0x20)).unwrap();
    assert_eq!(t.c.poll_op(op), None);
    let wait = t.drain().expect("wait for head/at");
    assert!(matches!(wait, Action::WaitHeadAt { .. }));
    t.c.complete(&wait, Outcome::HeadAt(Tid(0x20)));
    let stat = t.drain().expect("stat of head");
    assert!(matches!(stat, Action::StatHead { .. }));
    t.c.complete(
        &stat,
        Outcome::Stat(Stat {
            size: 8 * BS,
            blksize: BS,
        }),
    );
    let from = t.log.len();
    let mut b = t.drain();
    while let Some(a) = b {
        b = t.lock(a);
    }
    // Blocks 4, 6, 7 show head now; 5 keeps the VM's page.
    assert_eq!(t.maps_at(from, a5), 0);
    for blk in [4, 6, 7] {
        assert_eq!(t.maps_at(from, BASE + blk * BS as usize), 1, "blk {blk}");
    }
    assert!(t.held.is_empty());
    t.feed(&format!("{} ok\n", 3));
    assert_eq!(t.c.poll_op(op), Some(Ok(OpOk::Done)));
}

#[test]
fn remap_blk_of_a_vm_mapping_asks_nothing() {
    let mut t = T::new();
    let f = t.open(8);
    let m = t.mmap_vm(f, 0, 8, BASE, 1);
    t.dirty.insert(BASE + BS as usize);
    t.feed("2 pin 0000000000000001 #1 @head\n");
    let from = t.log.len();
    let op = t.c.remap_blk(m, 1).unwrap();
    assert!(t.drain().is_none());
    assert_eq!(t.c.poll_op(op), Some(Ok(OpOk::Done)));
    assert_eq!(t.maps_at(from, BASE + BS as usize), 1);
    assert!(!t.log[from..].iter().any(|a| a.op().is_vm()));
}

fn sent_nak(log: &[Action], stream: u64) -> bool {
    let want = format!("{stream} nak");
    log.iter().any(|a| match a {
        Action::Send(l) => core::str::from_utf8(l.as_bytes()).is_ok_and(|s| s.starts_with(&want)),
        _ => false,
    })
}
