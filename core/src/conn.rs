//! One connection: a view of the database as of `at`, its watch link, its
//! open files and their mappings. Every protocol decision of the client is
//! taken here, once.
//!
//! # Driving a `Conn`
//!
//! * Mutators (`open`, `mmap`, `mmap_at`, `unmap`, `mark_dirty`,
//!   `remap_blk`, `resync`, `close_file`, `close`, `fork_child`) and handlers
//!   (`handle_bytes`, `handle_eof`, `handle_link_error`, `complete`) change
//!   the state and queue [`Action`]s.
//! * After every mutator or handler, drain: `poll_action` until `None`,
//!   performing each action and handing its outcome to `complete`. A
//!   non-blocking action must be completed before the next is polled
//!   (`poll_action` yields nothing until it is); a blocking one may be
//!   completed later, by the thread that drained it, without the lock.
//!   A step queues at most one blocking action, and it is always polled
//!   last (the queue, `action::Actions`, polls quick actions first); a
//!   step that queues a blocking action while the previous step's still
//!   waits to be polled broke this contract, and the connection goes down
//!   with [`Error::NotDrained`].
//! * Long operations return an [`OpId`]; `poll_op` starts them when their
//!   turn comes and yields their result once. When `poll_op` is `None` and
//!   there is nothing to drain, the op waits for the server: wait until the
//!   link's reader has handled more input, then poll again.
//! * Statistics ([`Conn::stats`], [`Conn::stats_handle`]) are counted by
//!   the core as it decides; a driver with a clock adds each pin's handling
//!   time with [`Conn::record_pin_time`].
//!
//! ```
//! use wcfs_core::{perform, wire::Tid, Backend, Config, Conn, Error, OpId, OpOk};
//!
//! /// Runs `op` to completion on a single thread, feeding the link from `rx`.
//! fn run<B: Backend>(
//!     conn: &mut Conn,
//!     b: &mut B,
//!     op: OpId,
//!     mut rx: impl FnMut() -> Option<Vec<u8>>,
//! ) -> Result<OpOk, Error> {
//!     loop {
//!         while let Some(a) = conn.poll_action() {
//!             let outcome = perform(b, &a);
//!             conn.complete(&a, outcome);
//!         }
//!         if let Some(r) = conn.poll_op(op) {
//!             return r;
//!         }
//!         if !conn.has_actions() {
//!             match rx() {
//!                 Some(bytes) => {
//!                     let mut rest = &bytes[..];
//!                     while !rest.is_empty() {
//!                         let n = conn.handle_bytes(rest);
//!                         rest = &rest[n..];
//!                         while let Some(a) = conn.poll_action() {
//!                             let outcome = perform(b, &a);
//!                             conn.complete(&a, outcome);
//!                         }
//!                     }
//!                 }
//!                 None => conn.handle_eof(),
//!             }
//!         }
//!     }
//! }
//!
//! // With a backend that refuses every call, opening a file fails cleanly.
//! let mut conn = Conn::new(Tid(1), Config::default());
//! let op = conn.open(wcfs_core::wire::Oid(1)).unwrap();
//! let r = run(&mut conn, &mut wcfs_core::NullBackend, op, || None);
//! assert!(matches!(r, Err(Error::Os { .. })));
//! ```

use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::action::{Action, Actions, Errno, Fd, Outcome, Src};
use crate::bugs::{self, Bug};
use crate::file::{File, FileState};
pub use crate::ids::{FileId, OpId};
use crate::ids::{MapId, Tok, VmId};
use crate::link::{Link, LinkError};
use crate::mapping::Mapping;
use crate::stats::{ConnStats, Event, Stats};
use crate::wire::{Framer, Oid, Rev, StreamId, Tid};

mod down;
mod error;
mod files;
mod invariants;
mod maps;
mod ops;
mod optable;
mod pin;
mod revs;
mod vm;

pub use error::Error;
use files::Files;
use maps::Maps;
use optable::{OpKind, Ops};
use revs::RevCache;
pub use revs::MAX_REV_CACHE;
pub use vm::MAX_VMS_PER_BLOCK;

/// Tunables. The defaults suit a real WCFS on Linux.
///
/// [`Conn::new`] keeps them in range: `rev_cache` is clamped to
/// `1..=MAX_REV_CACHE` and `page_size` to at least 1.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Block sizes must be multiples of it.
    pub page_size: usize,
    /// `@rev` files kept open (1..=MAX_REV_CACHE).
    pub rev_cache: usize,
    /// Most pins in force per file: bounds what a server can make us store.
    pub max_pins_per_file: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            page_size: 4096,
            rev_cache: 8,
            max_pins_per_file: 1 << 22,
        }
    }
}

/// What a finished operation yields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpOk {
    /// `open`: the file, watched at the connection's `at`.
    Opened(FileId),
    /// `mmap`/`mmap_at`: the mapping, placed and showing the data as of `at`.
    Mapped(MapId),
    /// Every other op.
    Done,
}

/// Where a connection is in its life. `Up` -> `Closing` -> `Closed`, or
/// `Up`/`Closing` -> `Down` (-> `Closed` by `close`); any -> `Forked`.
/// Only `Up` starts ops; only `Up` and `Closing` read the link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnState {
    /// Working: ops run, pins are applied and acked.
    Up,
    /// `bye` sent; waiting for the server's EOF.
    Closing,
    /// Ended cleanly (or closed after going down); nothing more happens.
    Closed,
    /// Broken: see [`Conn::down_reason`]. Every mapping faults.
    Down,
    /// This is the child of a fork: every mapping faults, nothing is sent.
    Forked,
}

/// A pin received and not applied yet.
#[derive(Clone, Copy, Debug)]
struct PinReq {
    stream: StreamId,
    oid: Oid,
    blk: u64,
    rev: Rev,
}

/// The client state of one connection. See the module doc for the driving contract.
///
/// Invariants (checked by [`Conn::check_invariants`]): placed mappings never
/// overlap; every mapping of a file that is not `Open` faults; pins are kept
/// only for watched files; in any state but `Up`/`Closing` every mapping
/// faults and no file is open; replies are awaited only for unfinished ops.
pub struct Conn {
    cfg: Config,
    at: Tid,
    state: ConnState,
    down: Option<Error>,
    link: Link,
    /// `None` only while `handle_bytes` runs.
    rx: Option<alloc::boxed::Box<Framer>>,
    files: Files,
    maps: Maps,
    revs: RevCache,
    ops: Ops,
    stalled: Option<PinReq>,
    actions: Actions,
    /// A non-blocking action was polled and not completed yet.
    in_flight: bool,
    next_id: u64,
    /// What happened so far; read by anyone through [`Conn::stats_handle`].
    stats: Arc<Stats>,
    /// Whether to count (off only to measure what counting costs).
    counting: bool,
    /// Opened by `unmap` on a connection not down, filled by `complete`
    /// with the first refused range action (that unmap's own: the queue
    /// was drained when it started), taken by [`Conn::take_unmap_refusal`].
    unmap_refusal: Option<Option<Error>>,
    /// VM locks of the pin being applied (`vm.rs`).
    vm_pin: vm::VmJob,
    /// VM locks of the resync re-mapping a changed tail (`vm.rs`).
    vm_op: vm::VmJob,
}

impl Conn {
    /// A connection as of `at` over a link that is already open. (Waiting
    /// for `head/at >= at` and opening the link is the backend's connect.)
    pub fn new(at: Tid, cfg: Config) -> Conn {
        let mut cfg = cfg;
        cfg.rev_cache = cfg.rev_cache.clamp(1, MAX_REV_CACHE);
        cfg.page_size = cfg.page_size.max(1);
        Conn {
            cfg,
            at,
            state: ConnState::Up,
            down: None,
            link: Link::new(),
            rx: Some(alloc::boxed::Box::new(Framer::new())),
            files: Files::default(),
            maps: Maps::default(),
            revs: RevCache::new(cfg.rev_cache),
            ops: Ops::default(),
            stalled: None,
            actions: Actions::with_capacity(64),
            in_flight: false,
            next_id: 1,
            stats: Arc::new(Stats::default()),
            counting: true,
            unmap_refusal: None,
            vm_pin: Default::default(),
            vm_op: Default::default(),
        }
    }

    // ---- getters ----

    /// The revision the connection's view is at.
    pub fn at(&self) -> Tid {
        self.at
    }

    /// Where the connection is in its life.
    pub fn state(&self) -> ConnState {
        self.state
    }

    /// Why the connection went down, if it did.
    pub fn down_reason(&self) -> Option<&Error> {
        self.down.as_ref()
    }

    /// The bigfile of `f`, while the connection knows the file.
    pub fn file_oid(&self, f: FileId) -> Option<Oid> {
        self.files.get(&f).map(|f| f.oid)
    }

    /// The block size of `f` (0 while it is being opened).
    pub fn file_blksize(&self, f: FileId) -> Option<u64> {
        self.files.get(&f).map(|f| f.blksize)
    }

    /// Head's size of `f` as of the last open or resync.
    pub fn file_size(&self, f: FileId) -> Option<u64> {
        self.files.get(&f).map(|f| f.size)
    }

    /// Open files (with their oids), in no particular order.
    pub fn files(&self) -> impl Iterator<Item = (FileId, Oid)> + '_ {
        self.files
            .iter()
            .filter(|(_, f)| f.state == FileState::Open)
            .map(|(id, f)| (id, f.oid))
    }

    /// The pins in force for a file, sorted by block.
    pub fn pinned(&self, f: FileId) -> Vec<(u64, Tid)> {
        let mut v: Vec<_> = self
            .files
            .get(&f)
            .map(|f| f.pinned.iter().map(|(&b, &t)| (b, t)).collect())
            .unwrap_or_default();
        v.sort_unstable();
        v
    }

    /// The mapping `m`, until it is unmapped (faulting ones included).
    pub fn mapping(&self, m: MapId) -> Option<&Mapping> {
        self.maps.get(m)
    }

    /// Why mapping `m` shows no data, if it shows none: it was unmapped
    /// ([`Error::NoSuchMapping`]), its connection is closed or down
    /// ([`Error::ConnClosed`]), or its file was closed
    /// ([`Error::FileClosed`]). `Ok` while it shows the data as of `at`.
    pub fn check_mapped(&self, m: MapId) -> Result<(), Error> {
        let map = self.maps.get(m).ok_or(Error::NoSuchMapping)?;
        if !map.faulting {
            Ok(())
        } else if self.state != ConnState::Up {
            Err(Error::ConnClosed)
        } else {
            Err(Error::FileClosed)
        }
    }

    /// Every mapping not unmapped yet, in no particular order.
    pub fn mappings(&self) -> impl Iterator<Item = (MapId, &Mapping)> + '_ {
        self.maps.iter()
    }

    /// The statistics now.
    pub fn stats(&self) -> ConnStats {
        self.stats.snapshot()
    }

    /// The live statistics, to read from any thread at any time without
    /// going through this `Conn` (and its lock).
    pub fn stats_handle(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// Switches counting on (the default) or off; off, no counter is
    /// touched (only to measure what counting costs).
    pub fn set_counting(&mut self, on: bool) {
        self.counting = on;
    }

    /// The driver handled a pin in `ns` nanoseconds, from reading its line
    /// to writing its ack (the core has no clock).
    pub fn record_pin_time(&mut self, ns: u64) {
        if self.counting {
            self.stats.record_pin_time(ns);
        }
    }

    #[inline(always)]
    fn count(&self, e: Event, n: u64) {
        if self.counting {
            self.stats.add(e, n);
        }
    }

    /// Whether actions wait to be polled.
    pub fn has_actions(&self) -> bool {
        !self.actions.is_empty()
    }

    /// Whether a pin waits for its `@rev` file: `handle_bytes` takes no more input until it is opened.
    pub fn is_stalled(&self) -> bool {
        self.stalled.is_some()
    }

    // ---- polls ----

    /// The next action to perform. Yields nothing while a non-blocking
    /// action awaits `complete`.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        if self.in_flight {
            debug_assert!(false, "poll_action before completing the previous action");
            return None;
        }
        if self.actions.overrun() {
            self.go_down(Error::NotDrained);
        }
        let a = self.actions.pop_front()?;
        self.in_flight = !a.is_blocking();
        if a.is_blocking() {
            self.vm_polled(&a);
        }
        Some(a)
    }

    /// Performs every queued action through `b`, blocking ones included,
    /// on this thread: the whole drain contract for a single-threaded
    /// driver (mock OS, simulation, benchmarks). A threaded driver performs
    /// blocking actions without its lock instead (see `wcfs-linux`).
    pub fn drain_with<B: crate::Backend + ?Sized>(&mut self, b: &mut B) {
        while let Some(a) = self.poll_action() {
            let outcome = crate::perform(b, &a);
            self.complete(&a, outcome);
        }
    }

    /// Starts `op` when its turn comes; yields its result once.
    #[must_use]
    pub fn poll_op(&mut self, op: OpId) -> Option<Result<OpOk, Error>> {
        let Some(o) = self.ops.get(op) else {
            return Some(Err(Error::NoSuchOp));
        };
        if !o.started && self.ops.is_live(op) && self.can_start(op) {
            self.start(op);
        }
        self.ops.take_result(op)
    }

    // ---- mutators ----

    /// Opens bigfile `oid` (or takes one more handle on it).
    pub fn open(&mut self, oid: Oid) -> Result<OpId, Error> {
        self.check_up()?;
        Ok(self.new_op(OpKind::Open { oid, file: None }))
    }

    /// Maps blocks `[blk_start, blk_start + blk_len)` of an open file
    /// wherever the OS likes (`Action::MapNew`).
    pub fn mmap(&mut self, file: FileId, blk_start: u64, blk_len: u64) -> Result<OpId, Error> {
        let (fd, bs) = self.check_map(file, blk_start, blk_len)?;
        let map = self.new_mapping(file, blk_start, blk_len, bs, 0);
        let op = self.new_op(OpKind::Mmap { map });
        self.started(op);
        self.actions.push_back(Action::MapNew {
            tok: Tok::Op(op),
            fd,
            offset: blk_start * bs,
            len: (blk_len * bs) as usize,
        });
        Ok(op)
    }

    /// Maps blocks `[blk_start, blk_start + blk_len)` of an open file over
    /// the caller's range `[addr, addr + len)`: the backend replaces it in
    /// place (`Action::MapFixed`, no `MapNew`), and from then on the mapping is
    /// managed like any other (pins, zeros past the end, faulting after
    /// close). The range stays the caller's: [`Conn::unmap`] leaves it
    /// reserved and inaccessible (`Src::Fault`) instead of releasing it, and
    /// so does a failed `mmap_at` once the range was touched.
    ///
    /// Refused before anything is touched: `addr` 0 or off a page boundary
    /// ([`Error::BadAddress`]), `len` other than `blk_len * blksize`
    /// ([`Error::BadLength`]), a range overlapping a mapping of this
    /// connection ([`Error::AddressInUse`]).
    pub fn mmap_at(
        &mut self,
        file: FileId,
        blk_start: u64,
        blk_len: u64,
        addr: usize,
        len: usize,
    ) -> Result<OpId, Error> {
        self.place_at(file, blk_start, blk_len, addr, len, None)
    }

    /// `mmap_at`, for VM `vm` when given (`mmap_vm`).
    fn place_at(
        &mut self,
        file: FileId,
        blk_start: u64,
        blk_len: u64,
        addr: usize,
        len: usize,
        vm: Option<VmId>,
    ) -> Result<OpId, Error> {
        let (fd, bs) = self.check_map(file, blk_start, blk_len)?;
        if addr == 0 || !addr.is_multiple_of(self.cfg.page_size) || addr.checked_add(len).is_none()
        {
            return Err(Error::BadAddress(addr));
        }
        let want = blk_len * bs; // fits in usize: checked by check_map
        if len as u64 != want {
            return Err(Error::BadLength { len, want });
        }
        let end = addr + len;
        if self
            .maps
            .values()
            .any(|m| m.addr != 0 && m.addr < end && addr < m.addr + m.len_bytes())
        {
            return Err(Error::AddressInUse { addr, len });
        }
        let map = self.new_mapping(file, blk_start, blk_len, bs, addr);
        self.maps.get_mut(map).expect("new mapping").vm = vm;
        let op = self.new_op(OpKind::Mmap { map });
        self.started(op);
        self.actions.push_back(Action::MapFixed {
            addr,
            len,
            src: Src::File {
                fd,
                offset: blk_start * bs,
            },
        });
        self.placed(op, map);
        Ok(op)
    }

    /// Checks a block range of a file to map; its head fd and block size.
    fn check_map(&self, file: FileId, blk_start: u64, blk_len: u64) -> Result<(Fd, u64), Error> {
        self.check_up().map_err(|_| Error::FileClosed)?;
        let f = self.files.get(&file).ok_or(Error::FileClosed)?;
        if f.state != FileState::Open {
            return Err(Error::FileClosed);
        }
        let bs = f.blksize;
        let end = blk_start.checked_add(blk_len).ok_or(Error::BadRange)?;
        let fits = |b: u64| {
            b.checked_mul(bs)
                .is_some_and(|o| o <= i64::MAX as u64 && o <= usize::MAX as u64)
        };
        if blk_len == 0 || !fits(end) {
            return Err(Error::BadRange);
        }
        Ok((f.fd.expect("open file has fd"), bs))
    }

    /// A new mapping record; `addr` 0 while the OS has not placed it.
    fn new_mapping(
        &mut self,
        file: FileId,
        blk_start: u64,
        blk_len: u64,
        blksize: u64,
        addr: usize,
    ) -> MapId {
        let map = MapId(self.fresh());
        self.maps.insert(
            map,
            Mapping {
                file,
                blk_start,
                blk_len,
                blksize,
                addr,
                caller_owned: addr != 0,
                faulting: false,
                exposed: false,
                dirty: Default::default(),
                vm: None,
            },
        );
        map
    }

    /// Releases a mapping (also a faulting one, and after the connection
    /// ended). A range the caller owns (`mmap_at`) is not released but left
    /// reserved for its owner: it faults on any access from then on.
    ///
    /// What the OS refused of this unmap's own calls is told by
    /// [`Conn::take_unmap_refusal`] after the drain.
    pub fn unmap(&mut self, map: MapId) -> Result<(), Error> {
        let m = self.maps.remove(map).ok_or(Error::NoSuchMapping)?;
        self.unmap_refusal = self.down.is_none().then_some(None);
        if m.addr != 0 && m.caller_owned && !bugs::on(Bug::ReleaseCallerRange) {
            self.actions.push_back(Action::MapFixed {
                addr: m.addr,
                len: m.len_bytes(),
                src: Src::Fault,
            });
        } else if m.addr != 0 {
            self.actions.push_back(Action::Unmap {
                addr: m.addr,
                len: m.len_bytes(),
            });
        }
        if let Some(f) = self.files.get_mut(&m.file) {
            f.remove_map(m.blk_start, map);
        }
        Ok(())
    }

    /// After the drain of an [`Conn::unmap`]: the OS's refusal of one of
    /// that unmap's own calls (the range's fault map, its `mprotect`, its
    /// `munmap`), which took the connection down; `None` when none was
    /// refused, or when the connection was down already when it started.
    pub fn take_unmap_refusal(&mut self) -> Option<Error> {
        self.unmap_refusal.take().flatten()
    }

    /// The user's VM layer laid a private page over block `blk`: pins leave it alone.
    pub fn mark_dirty(&mut self, map: MapId, blk: u64) -> Result<(), Error> {
        let m = self.maps.get_mut(map).ok_or(Error::NoSuchMapping)?;
        if !m.contains(blk) {
            return Err(Error::BadRange);
        }
        m.dirty.insert(blk);
        Ok(())
    }

    /// The dirty page over `blk` is gone: map the block per the pins in force.
    pub fn remap_blk(&mut self, map: MapId, blk: u64) -> Result<OpId, Error> {
        let m = self.maps.get_mut(map).ok_or(Error::NoSuchMapping)?;
        if !m.contains(blk) {
            return Err(Error::BadRange);
        }
        m.dirty.remove(&blk);
        let op = self.new_op(OpKind::Remap);
        self.started(op);
        self.op_mut(op).todo.push((map, blk));
        self.run_todo(op);
        Ok(op)
    }

    /// Moves the view forward to `at`. Each open file's head is re-stat'ed:
    /// where it grew, head replaces the zeros of the tail; where it shrank
    /// (its last blocks were deleted), zeros replace head past the new end
    /// (pinned and dirty blocks keep theirs). A changed block size, or a
    /// size that is no multiple of it, brings the connection down.
    pub fn resync(&mut self, at: Tid) -> Result<OpId, Error> {
        self.check_up()?;
        if at < self.at {
            let e = Error::GoingBack {
                at: self.at,
                to: at,
            };
            self.go_down(e.clone());
            return Err(e);
        }
        Ok(self.new_op(OpKind::Resync {
            at,
            stats: 0,
            replies: 0,
        }))
    }

    /// Drops one handle of a file; the last one unwatches and closes it, and
    /// its mappings fault from then on.
    pub fn close_file(&mut self, file: FileId) -> Result<OpId, Error> {
        match self.state {
            ConnState::Up => {}
            _ => return Ok(self.done_op(Ok(OpOk::Done))),
        }
        let f = self.files.get_mut(&file).ok_or(Error::FileClosed)?;
        if f.state != FileState::Open {
            return Err(Error::FileClosed);
        }
        if f.count > 1 {
            f.count -= 1;
            return Ok(self.done_op(Ok(OpOk::Done)));
        }
        Ok(self.new_op(OpKind::CloseFile { file }))
    }

    /// Closes the connection: every mapping faults, `bye` is sent, and the
    /// op completes at the server's EOF.
    pub fn close(&mut self) -> Result<OpId, Error> {
        match self.state {
            ConnState::Up => {}
            ConnState::Down => {
                self.state = ConnState::Closed;
                return Ok(self.done_op(Ok(OpOk::Done)));
            }
            ConnState::Forked => return Ok(self.done_op(Ok(OpOk::Done))),
            ConnState::Closing | ConnState::Closed => return Err(Error::ConnClosed),
        }
        self.fail_ops(&Error::ConnClosed);
        self.drop_views();
        self.state = ConnState::Closing;
        let op = self.new_op(OpKind::CloseConn);
        self.started(op);
        match self.link.bye() {
            Ok(line) => self.actions.push_back(Action::Send(line)),
            Err(e) => self.go_down(Error::Link(e)),
        }
        Ok(op)
    }

    /// This process is the child of a fork: fault every mapping and let go
    /// of every descriptor without a word to the server.
    pub fn fork_child(&mut self) {
        if self.state == ConnState::Forked {
            return;
        }
        self.fail_ops(&Error::ConnClosed);
        self.drop_views();
        self.stalled = None;
        self.vm_forget();
        if !matches!(self.state, ConnState::Down | ConnState::Closed) {
            self.actions.push_back(Action::CloseLink);
        }
        self.state = ConnState::Forked;
    }

    // ---- handlers ----

    /// Feeds bytes read from the link; returns how many were consumed. Less
    /// than all while a pin waits for its `@rev` file: feed the rest after
    /// completing the `OpenRev`.
    pub fn handle_bytes(&mut self, data: &[u8]) -> usize {
        let Some(mut rx) = self.rx.take() else {
            return 0;
        };
        let mut input = data;
        while self.stalled.is_none() && self.reading() {
            match rx.next_line(&mut input) {
                None => break,
                Some(Ok(line)) => self.handle_line(line),
                Some(Err(e)) => self.go_down(Error::Link(LinkError::Wire(e))),
            }
        }
        self.rx = Some(rx);
        if self.reading() {
            data.len() - input.len()
        } else {
            data.len()
        }
    }

    /// The link reached EOF.
    pub fn handle_eof(&mut self) {
        if !self.reading() {
            return;
        }
        if let Some(Err(e)) = self.rx.as_ref().map(|rx| rx.finish()) {
            return self.go_down(Error::Link(LinkError::Wire(e)));
        }
        match self.link.eof() {
            Ok(()) => self.link_ended(),
            Err(e) => self.go_down(Error::Link(e)),
        }
    }

    /// The server ended the link after our `bye`: the close completes.
    fn link_ended(&mut self) {
        self.state = ConnState::Closed;
        self.actions.push_back(Action::CloseLink);
        let closing: Vec<OpId> = self.ops.unfinished().collect();
        for op in closing {
            self.finish(op, Ok(OpOk::Done));
        }
    }

    /// Reading the link failed. After our `bye` that is the link's end
    /// (a socket shows the server's end as a reset when our last acks
    /// crossed it): the close completes as at EOF.
    pub fn handle_link_error(&mut self, errno: Errno) {
        if self.state == ConnState::Closing {
            self.link.fail(LinkError::Closed);
            return self.link_ended();
        }
        self.abandon_link(errno);
    }

    /// The driver gives up on the link (say, the server does not end it in
    /// time after `bye`): the connection goes down with `errno`.
    pub fn abandon_link(&mut self, errno: Errno) {
        if self.reading() {
            self.go_down(Error::Link(LinkError::Io(errno.0)));
        }
    }

    /// Writing to the link failed (for drivers that batch lines into one
    /// write: the same as completing a `Send` with `Failed`). After our
    /// `bye` the server ends the link at will, so what we still write then
    /// (acks of pins that crossed the `bye`) may find it gone: no error,
    /// the end shows as EOF.
    pub fn handle_send_error(&mut self, errno: Errno) {
        if self.state == ConnState::Up {
            self.go_down(Error::Link(LinkError::Io(errno.0)));
        }
    }

    /// Hands back the outcome of an action from `poll_action`.
    pub fn complete(&mut self, action: &Action, outcome: Outcome) {
        if !action.is_blocking() {
            self.in_flight = false;
        } else {
            self.vm_returned(action, outcome);
        }
        let failed = |call| match outcome {
            Outcome::Failed(errno) => Some(Error::Os { call, errno }),
            _ => None,
        };
        // Only the stalled pin opens a file of its own: an op's action
        // handed back as the pin's is the driver's bug.
        let op = |tok| match tok {
            Tok::Op(op) => Ok(op),
            Tok::Pin => Err(Error::BadCompletion(action.op())),
        };
        match *action {
            Action::WaitHeadAt { tok, .. } => match op(tok) {
                Ok(op) => self.on_head_at(op, outcome),
                Err(e) => self.go_down(e),
            },
            Action::OpenHead { tok, .. } => match op(tok) {
                Ok(op) => self.on_head_opened(op, outcome),
                Err(e) => self.go_down(e),
            },
            Action::StatHead { tok, fd } => match op(tok) {
                Ok(op) => self.on_stat(op, fd, outcome),
                Err(e) => self.go_down(e),
            },
            Action::OpenRev { tok, oid, rev } => self.on_rev_opened(tok, oid, rev, outcome),
            Action::MapNew { tok, .. } => match op(tok) {
                Ok(op) => self.on_mapped(op, action, outcome),
                Err(e) => self.go_down(e),
            },
            Action::MapFixed { addr, len, src } => {
                if let Some(e) = failed(action.op()) {
                    if src == Src::Fault && !bugs::on(Bug::NoProtectFallback) {
                        // The range must not go on showing what it showed:
                        // protect it in place before anything else runs.
                        self.actions.push_front(Action::Protect { addr, len });
                    }
                    self.refused(e);
                }
            }
            Action::Protect { addr, .. } => {
                if let Some(e) = failed(action.op()) {
                    // Both ways to make the range fault were refused.
                    if let Some(m) = self.maps.at_addr_mut(addr) {
                        m.exposed = true;
                    }
                    self.refused(e);
                }
            }
            Action::Unmap { .. } => {
                if let Some(e) = failed(action.op()) {
                    self.refused(e);
                }
            }
            Action::Send(ref line) => {
                if let Outcome::Failed(e) = outcome {
                    self.handle_send_error(e);
                } else if line.is_ack() {
                    self.count(Event::acks, 1);
                } else if line.is_nak() {
                    self.count(Event::naks, 1);
                }
            }
            Action::VmLock { tok, .. } => self.on_vm_locked(tok, outcome),
            Action::VmDirty { tok, map, blk, .. } => self.on_vm_dirty(tok, map, blk, outcome),
            Action::Close(_) | Action::CloseLink | Action::VmUnlock { .. } => {}
        }
    }

    /// The OS refused a range action: the connection goes down, and an
    /// unmap that waits to learn of its own refusal learns of this one.
    fn refused(&mut self, e: Error) {
        if let Some(slot @ None) = &mut self.unmap_refusal {
            *slot = Some(e.clone());
        }
        self.go_down(e);
    }
}

/// Pins a file's table has room for beyond those in force, topped up at
/// open, mmap and resync (see [`File::pinned`]).
pub const PIN_HEADROOM: usize = 64;

/// Tops the pin table up to the pins in force plus [`PIN_HEADROOM`] (never
/// more than head's blocks, a little slack, and `max`), outside the pin path.
fn reserve_pins(f: &mut File, max: usize) {
    let want = f
        .pinned
        .len()
        .saturating_add(PIN_HEADROOM)
        .min((f.nblk() as usize).saturating_add(16))
        .min(max);
    if want > f.pinned.capacity() {
        f.pinned.reserve(want - f.pinned.len());
    }
}

#[cfg(test)]
mod tests;
