//! What the core asks of the OS, and what the OS answers.
//!
//! The core never performs I/O: it queues [`Action`]s, a driver performs
//! each one through a [`Backend`] and hands the [`Outcome`] back with
//! [`Conn::complete`](crate::Conn::complete). [`perform`] is that dispatch,
//! written once and free of decisions.

use crate::ids::MapId;
pub use crate::ids::{Tok, VmId};
use crate::wire::{Oid, OutLine, Tid};

/// A file descriptor (or whatever the backend uses to name an open file).
///
/// The core never interprets the number: it only hands back what the
/// backend gave it, and asks for it to be closed (`Action::Close`) once it
/// is done with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fd(pub i32);

/// An OS error number, as the backend reports it (`errno` on Linux).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i32);

/// What a block of memory shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Src {
    /// Bytes of an open file (head or `@rev`) from `offset`.
    File {
        /// The open file (head or `@rev`).
        fd: Fd,
        /// Byte offset in that file of the first byte shown.
        offset: u64,
    },
    /// Zeros (read-only, no memory reserved).
    Zeros,
    /// Memory that faults on any access.
    Fault,
}

/// Size and block size of an opened file, as `fstat` tells them.
///
/// Unchecked as the OS reports it: the core refuses a `blksize` of 0 or off
/// the page size, and a `size` that is not a multiple of `blksize`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    /// File size in bytes (`st_size`).
    pub size: u64,
    /// Block size in bytes (`st_blksize`): one ZODB bigfile block.
    pub blksize: u64,
}

/// One thing for the OS to do.
///
/// Blocking actions ([`Action::is_blocking`]) call into the mount, which may
/// wait for pins to be acked: perform them without holding whatever lock
/// guards the [`Conn`](crate::Conn), and only on the thread that drained
/// them. All other actions are quick and must be performed in order, each
/// completed before the next is polled.
// `Send` holds its line inline so that queuing a reply never allocates.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Blocking. Wait until `head/at` >= `at`; answer `HeadAt`.
    WaitHeadAt {
        /// The resync this wait belongs to.
        tok: Tok,
        /// The revision to wait for.
        at: Tid,
    },
    /// Blocking. Open `head/bigfile/<oid>` and fstat it; answer `Opened`.
    OpenHead {
        /// The open this belongs to.
        tok: Tok,
        /// The bigfile to open.
        oid: Oid,
    },
    /// Blocking. Fstat an open head file; answer `Stat`.
    StatHead {
        /// The resync this belongs to.
        tok: Tok,
        /// The head file to stat.
        fd: Fd,
    },
    /// Blocking. Open `@<rev>/bigfile/<oid>` and fstat it; answer `Opened`.
    OpenRev {
        /// The op (or the stalled pin) waiting for the file.
        tok: Tok,
        /// The bigfile.
        oid: Oid,
        /// The revision whose data the file shows.
        rev: Tid,
    },
    /// Map `len` bytes of `fd` from `offset`, read-only and shared, wherever
    /// the OS likes; answer `Mapped(addr)`.
    MapNew {
        /// The `mmap` op this belongs to.
        tok: Tok,
        /// The head file to map.
        fd: Fd,
        /// Byte offset in the file (a multiple of its block size).
        offset: u64,
        /// Bytes to map (whole blocks).
        len: usize,
    },
    /// Replace `[addr, addr+len)` in place (`MAP_FIXED`) by `src`.
    MapFixed {
        /// Start of the range (page aligned).
        addr: usize,
        /// Bytes to replace.
        len: usize,
        /// What the range shows from now on.
        src: Src,
    },
    /// Make `[addr, addr+len)` fault on any access, in place
    /// (`mprotect(PROT_NONE)`): the fallback when the OS refuses a
    /// `Map { src: Fault }`, which it may do when a new mapping would pass a
    /// limit that changing the protection of existing ones does not.
    Protect {
        /// Start of the range (page aligned).
        addr: usize,
        /// Bytes to protect.
        len: usize,
    },
    /// Release `[addr, addr+len)`.
    Unmap {
        /// Start of the range.
        addr: usize,
        /// Bytes to release.
        len: usize,
    },
    /// Take the lock of VM `vm` (blocking: performed without the
    /// connection's lock, it may wait for the VM). Outcome `Done` once held.
    VmLock {
        /// The pin (`Tok(0)`) or the op that needs the lock.
        tok: Tok,
        /// The VM.
        vm: VmId,
    },
    /// Ask VM `vm` (whose lock the asker holds) whether it laid a dirty
    /// page over block `blk`, at `addr` in mapping `map`. Outcome
    /// [`Outcome::Dirty`].
    VmDirty {
        /// The pin (`Tok(0)`) or the op that asks.
        tok: Tok,
        /// The VM.
        vm: VmId,
        /// The mapping the VM's area lies on.
        map: MapId,
        /// Address of the block's page(s) in that area.
        addr: usize,
        /// The block.
        blk: u64,
    },
    /// Release the lock of VM `vm`, taken by a `VmLock` of the same thread.
    VmUnlock {
        /// The VM.
        vm: VmId,
    },
    /// Write this line on the watch link.
    Send(OutLine),
    /// Close a file.
    Close(Fd),
    /// Close the watch link without writing to it.
    CloseLink,
}

impl Action {
    /// The OS operation this action asks for.
    pub fn op(&self) -> OsOp {
        match self {
            Action::WaitHeadAt { .. } => OsOp::WaitHeadAt,
            Action::OpenHead { .. } => OsOp::OpenHead,
            Action::StatHead { .. } => OsOp::StatHead,
            Action::OpenRev { .. } => OsOp::OpenRev,
            Action::MapNew { .. } => OsOp::MapNew,
            Action::MapFixed { .. } => OsOp::MapFixed,
            Action::Protect { .. } => OsOp::Protect,
            Action::Unmap { .. } => OsOp::Unmap,
            Action::Send(_) => OsOp::Send,
            Action::Close(_) => OsOp::Close,
            Action::CloseLink => OsOp::CloseLink,
            Action::VmLock { .. } => OsOp::VmLock,
            Action::VmDirty { .. } => OsOp::VmDirty,
            Action::VmUnlock { .. } => OsOp::VmUnlock,
        }
    }

    /// Whether performing this action may wait inside the mount.
    pub fn is_blocking(&self) -> bool {
        self.op().is_blocking()
    }
}

/// The OS operations, named once: what an [`Action`] asks for
/// ([`Action::op`]), what a failure names
/// ([`Error::Os`](crate::Error::Os)), what a mock records and a fault
/// injector picks from. One variant per method of [`QuickOs`] and
/// [`BlockingOs`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OsOp {
    /// Blocking: wait until `head/at` reaches a revision.
    WaitHeadAt,
    /// Blocking: open and fstat `head/bigfile/<oid>`.
    OpenHead,
    /// Blocking: open and fstat `@<rev>/bigfile/<oid>`.
    OpenRev,
    /// Blocking: fstat an open head file.
    StatHead,
    /// Map a file where the OS likes.
    MapNew,
    /// Map over a range in place (`MAP_FIXED`).
    MapFixed,
    /// Make a range fault in place (`mprotect`).
    Protect,
    /// Release a range.
    Unmap,
    /// Write a line on the watch link.
    Send,
    /// Close a file.
    Close,
    /// Close the watch link.
    CloseLink,
    /// Take a VM's lock (blocking: it may wait for the VM).
    VmLock,
    /// Ask a VM whether a block's page is dirty.
    VmDirty,
    /// Release a VM's lock.
    VmUnlock,
}

impl OsOp {
    /// Every operation, in declaration order.
    pub const ALL: [OsOp; 14] = [
        OsOp::WaitHeadAt,
        OsOp::OpenHead,
        OsOp::OpenRev,
        OsOp::StatHead,
        OsOp::MapNew,
        OsOp::MapFixed,
        OsOp::Protect,
        OsOp::Unmap,
        OsOp::Send,
        OsOp::Close,
        OsOp::CloseLink,
        OsOp::VmLock,
        OsOp::VmDirty,
        OsOp::VmUnlock,
    ];

    /// Whether the operation calls into the mount, which may wait for pins
    /// to be acked (a method of [`BlockingOs`], not [`QuickOs`]).
    pub fn is_blocking(self) -> bool {
        matches!(
            self,
            OsOp::WaitHeadAt | OsOp::OpenHead | OsOp::OpenRev | OsOp::StatHead | OsOp::VmLock
        )
    }

    /// Whether the operation can fail (closes cannot).
    pub fn can_fail(self) -> bool {
        !matches!(self, OsOp::Close | OsOp::CloseLink | OsOp::VmUnlock)
    }

    /// Whether the operation is a call into a user's virtual-memory
    /// manager (`Conn::mmap_vm`), not into the OS.
    pub fn is_vm(self) -> bool {
        matches!(self, OsOp::VmLock | OsOp::VmDirty | OsOp::VmUnlock)
    }

    /// The operation's name, as its variant is spelled: in errors, naks and
    /// the mock's log.
    pub fn name(self) -> &'static str {
        match self {
            OsOp::WaitHeadAt => "WaitHeadAt",
            OsOp::OpenHead => "OpenHead",
            OsOp::OpenRev => "OpenRev",
            OsOp::StatHead => "StatHead",
            OsOp::MapNew => "MapNew",
            OsOp::MapFixed => "MapFixed",
            OsOp::Protect => "Protect",
            OsOp::Unmap => "Unmap",
            OsOp::Send => "Send",
            OsOp::Close => "Close",
            OsOp::CloseLink => "CloseLink",
            OsOp::VmLock => "VmLock",
            OsOp::VmDirty => "VmDirty",
            OsOp::VmUnlock => "VmUnlock",
        }
    }
}

/// How an action went. Each action has one success variant (named in its
/// doc) and `Failed`; any other answer is ignored by the core.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Success of an action that yields nothing (`Map`, `Protect`, `Unmap`,
    /// `Send`, closes).
    Done,
    /// `WaitHeadAt`: `head/at` now (at least the revision waited for).
    HeadAt(Tid),
    /// `OpenHead`/`OpenRev`: the new descriptor and its `fstat`.
    Opened(Fd, Stat),
    /// `StatHead`: the head file's `fstat`.
    Stat(Stat),
    /// `MapNew`: where the OS placed the mapping.
    Mapped(usize),
    /// `VmDirty`: whether the VM has a dirty page over the block.
    Dirty(bool),
    /// The OS refused with this errno.
    Failed(Errno),
}

/// The quick OS operations: memory mappings, writes of lines, closes. A
/// threaded driver performs them holding whatever lock guards the
/// [`Conn`](crate::Conn), in the order the core asks. Each method is one
/// operation; none takes a decision.
pub trait QuickOs {
    /// Maps `len` bytes of `fd` from `offset`, shared read-only, wherever
    /// the OS likes; returns the address ([`Action::MapNew`]).
    fn map_new(&mut self, fd: Fd, offset: u64, len: usize) -> Result<usize, Errno>;
    /// Replaces `[addr, addr+len)` in place by `src` ([`Action::MapFixed`]).
    fn map_fixed(&mut self, addr: usize, len: usize, src: Src) -> Result<(), Errno>;
    /// Makes `[addr, addr+len)` fault on any access, in place ([`Action::Protect`]).
    fn protect(&mut self, addr: usize, len: usize) -> Result<(), Errno>;
    /// Releases `[addr, addr+len)` ([`Action::Unmap`]).
    fn unmap(&mut self, addr: usize, len: usize) -> Result<(), Errno>;
    /// Writes one whole line (`\n` included) on the watch link ([`Action::Send`]).
    fn send(&mut self, line: &OutLine) -> Result<(), Errno>;
    /// Closes a file; cannot fail as far as the core cares ([`Action::Close`]).
    fn close(&mut self, fd: Fd);
    /// Closes the watch link without writing to it ([`Action::CloseLink`]).
    fn close_link(&mut self);
    /// Asks VM `vm`, whose lock this thread holds, whether it laid a dirty
    /// page over block `blk` at `addr` ([`Action::VmDirty`]). Only
    /// mappings made by `Conn::mmap_vm` cause it: a backend that makes
    /// none keeps this default (`ENOSYS`).
    fn vm_is_dirty(&mut self, vm: VmId, addr: usize, blk: u64) -> Result<bool, Errno> {
        let _ = (vm, addr, blk);
        Err(Errno(38))
    }
    /// Releases the lock of VM `vm` that this thread took
    /// ([`Action::VmUnlock`]).
    fn vm_unlock(&mut self, vm: VmId) {
        let _ = vm;
    }
}

/// The blocking OS operations: calls into the mount, which may wait for
/// pins to be acked. A threaded driver performs them without the lock that
/// guards the [`Conn`](crate::Conn), on the thread that drained them.
pub trait BlockingOs {
    /// Waits until `head/at` >= `at` and returns `head/at` ([`Action::WaitHeadAt`]).
    fn wait_head_at(&mut self, at: Tid) -> Result<Tid, Errno>;
    /// Opens `head/bigfile/<oid>` read-only and fstats it ([`Action::OpenHead`]).
    fn open_head(&mut self, oid: Oid) -> Result<(Fd, Stat), Errno>;
    /// Opens `@<rev>/bigfile/<oid>` read-only and fstats it ([`Action::OpenRev`]).
    fn open_rev(&mut self, oid: Oid, rev: Tid) -> Result<(Fd, Stat), Errno>;
    /// Fstats an open file ([`Action::StatHead`]).
    fn stat(&mut self, fd: Fd) -> Result<Stat, Errno>;
    /// Takes the lock of VM `vm`, waiting for it ([`Action::VmLock`]); the
    /// same thread releases it with [`QuickOs::vm_unlock`]. Default: `ENOSYS`
    /// (see [`QuickOs::vm_is_dirty`]).
    fn vm_lock(&mut self, vm: VmId) -> Result<(), Errno> {
        let _ = vm;
        Err(Errno(38))
    }
}

/// A backend that performs every operation on one thread (mock OS,
/// simulation, benchmarks): both halves.
pub trait Backend: QuickOs + BlockingOs {}

impl<T: QuickOs + BlockingOs + ?Sized> Backend for T {}

/// Performs one quick action; `None` (nothing done) for a blocking one.
/// With [`perform_blocking`], the only place where an action becomes a
/// backend call.
pub fn perform_quick<Q: QuickOs + ?Sized>(q: &mut Q, action: &Action) -> Option<Outcome> {
    fn done(r: Result<(), Errno>) -> Outcome {
        r.map_or_else(Outcome::Failed, |()| Outcome::Done)
    }
    Some(match *action {
        Action::MapNew {
            fd, offset, len, ..
        } => q
            .map_new(fd, offset, len)
            .map_or_else(Outcome::Failed, Outcome::Mapped),
        Action::MapFixed { addr, len, src } => done(q.map_fixed(addr, len, src)),
        Action::Protect { addr, len } => done(q.protect(addr, len)),
        Action::Unmap { addr, len } => done(q.unmap(addr, len)),
        Action::Send(ref line) => done(q.send(line)),
        Action::Close(fd) => {
            q.close(fd);
            Outcome::Done
        }
        Action::CloseLink => {
            q.close_link();
            Outcome::Done
        }
        Action::VmDirty { vm, addr, blk, .. } => q
            .vm_is_dirty(vm, addr, blk)
            .map_or_else(Outcome::Failed, Outcome::Dirty),
        Action::VmUnlock { vm } => {
            q.vm_unlock(vm);
            Outcome::Done
        }
        Action::VmLock { .. }
        | Action::WaitHeadAt { .. }
        | Action::OpenHead { .. }
        | Action::OpenRev { .. }
        | Action::StatHead { .. } => return None,
    })
}

/// Performs one blocking action; `None` (nothing done) for a quick one.
pub fn perform_blocking<B: BlockingOs + ?Sized>(b: &mut B, action: &Action) -> Option<Outcome> {
    fn opened(r: Result<(Fd, Stat), Errno>) -> Outcome {
        r.map_or_else(Outcome::Failed, |(fd, st)| Outcome::Opened(fd, st))
    }
    fn done(r: Result<(), Errno>) -> Outcome {
        r.map_or_else(Outcome::Failed, |()| Outcome::Done)
    }
    Some(match *action {
        Action::WaitHeadAt { at, .. } => b
            .wait_head_at(at)
            .map_or_else(Outcome::Failed, Outcome::HeadAt),
        Action::OpenHead { oid, .. } => opened(b.open_head(oid)),
        Action::OpenRev { oid, rev, .. } => opened(b.open_rev(oid, rev)),
        Action::StatHead { fd, .. } => b.stat(fd).map_or_else(Outcome::Failed, Outcome::Stat),
        Action::VmLock { vm, .. } => done(b.vm_lock(vm)),
        Action::MapNew { .. }
        | Action::MapFixed { .. }
        | Action::Protect { .. }
        | Action::Unmap { .. }
        | Action::Send(_)
        | Action::Close(_)
        | Action::CloseLink
        | Action::VmDirty { .. }
        | Action::VmUnlock { .. } => return None,
    })
}

/// Performs one action, quick or blocking, on this thread.
pub fn perform<B: Backend + ?Sized>(b: &mut B, action: &Action) -> Outcome {
    match perform_quick(b, action) {
        Some(o) => o,
        // Every action is quick or blocking (`OsOp::is_blocking`).
        None => perform_blocking(b, action).unwrap_or(Outcome::Failed(Errno(22))),
    }
}

/// The actions a [`Conn`](crate::Conn) has queued, in the order a driver
/// performs them: every quick action first, in the order queued, then the
/// one blocking action, if any.
///
/// Invariant, by construction: a blocking action is always the last one
/// polled, so the thread that drains a step performs the quick actions of
/// that step under its lock and the blocking one without it. At most one
/// blocking action waits at a time: each step queues at most one, and a
/// driver drains after every step. A second one queued before the first
/// was polled means the drain contract was broken; it is kept out and
/// reported by [`Actions::overrun`] (the connection goes down with
/// [`Error::NotDrained`](crate::Error::NotDrained)).
#[derive(Debug, Default)]
pub(crate) struct Actions {
    quick: alloc::collections::VecDeque<Action>,
    blocking: Option<Action>,
    overrun: bool,
}

impl Actions {
    pub(crate) fn with_capacity(n: usize) -> Actions {
        Actions {
            quick: alloc::collections::VecDeque::with_capacity(n),
            blocking: None,
            overrun: false,
        }
    }

    /// Queues `a`: a quick action after the other quick ones, a blocking
    /// one into the single slot behind them.
    pub(crate) fn push_back(&mut self, a: Action) {
        if !a.is_blocking() {
            self.quick.push_back(a);
        } else if self.blocking.is_none() {
            self.blocking = Some(a);
        } else {
            self.overrun = true;
        }
    }

    /// Queues `a` first: a fallback that takes the place of the quick
    /// action that just failed. (A blocking one still goes last.)
    pub(crate) fn push_front(&mut self, a: Action) {
        if a.is_blocking() {
            self.push_back(a);
        } else {
            self.quick.push_front(a);
        }
    }

    /// The next action: quick ones first, then the blocking one.
    pub(crate) fn pop_front(&mut self) -> Option<Action> {
        self.quick.pop_front().or_else(|| self.blocking.take())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.quick.is_empty() && self.blocking.is_none()
    }

    /// Keeps only the actions `keep` says yes to.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&Action) -> bool) {
        self.quick.retain(&mut keep);
        if self.blocking.as_ref().is_some_and(|a| !keep(a)) {
            self.blocking = None;
        }
    }

    /// Whether a blocking action was queued while another waited (and was
    /// dropped); reading it clears it.
    pub(crate) fn overrun(&mut self) -> bool {
        core::mem::take(&mut self.overrun)
    }
}
