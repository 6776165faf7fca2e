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
use core::fmt::{self, Write as _};

use hashbrown::HashMap;

use crate::action::{Action, Actions, Errno, Fd, OsOp, Outcome, Src, Stat, Tok};
use crate::file::{File, FileState};
use crate::link::{text, Incoming, Link, LinkError, Text};
use crate::mapping::{MapId, Mapping};
use crate::stats::{ConnStats, Event, Stats};
use crate::wire::{Frame, Framer, Msg, Oid, OutLine, Rev, StreamId, Tid, WireError};

/// Names an open file within its connection (never reused: a file opened
/// again after its last close gets a new id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub u64);

/// Names a long operation within its connection; valid until
/// [`Conn::poll_op`] yielded its result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpId(pub u64);

/// Most `@rev` files a connection keeps open.
pub const MAX_REV_CACHE: usize = 16;

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

/// What went wrong, in the protocol's words.
///
/// An error of one op leaves the connection up; one that the connection
/// went down for is also kept as [`Conn::down_reason`] and fails every op.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The connection is closed or down (see [`Conn::down_reason`]).
    ConnClosed,
    /// The file was closed.
    FileClosed,
    /// No such mapping (already unmapped).
    NoSuchMapping,
    /// No such operation (never started, or its result was taken).
    NoSuchOp,
    /// A block range outside the file's addressable range or the mapping.
    BadRange,
    /// A caller's range for `mmap_at` starts at 0 or off a page boundary,
    /// or wraps around the address space.
    BadAddress(usize),
    /// A caller's range for `mmap_at` is `len` bytes, not `blk_len * blksize`.
    BadLength {
        /// The caller's length.
        len: usize,
        /// `blk_len * blksize`.
        want: u64,
    },
    /// A caller's range for `mmap_at` overlaps a mapping of this connection.
    AddressInUse {
        /// The caller's range start.
        addr: usize,
        /// The caller's range length.
        len: usize,
    },
    /// The server answered `error <text>`.
    Server(Text),
    /// `resync` to an older revision.
    GoingBack {
        /// The connection's `at`.
        at: Tid,
        /// The older revision asked for.
        to: Tid,
    },
    /// `head/at` is before the revision we waited for.
    HeadBehind {
        /// `head/at` as the wait returned it.
        head: Tid,
        /// The revision waited for.
        at: Tid,
    },
    /// The head file's block size is 0 or not a multiple of the page size.
    BadBlksize(u64),
    /// The head file's size is not a multiple of its block size.
    BadSize {
        /// The head file's size.
        size: u64,
        /// Its block size.
        blksize: u64,
    },
    /// At resync the head file's block size changed.
    HeadChanged {
        /// The head file's size now.
        size: u64,
        /// Its block size now.
        blksize: u64,
    },
    /// A pin for a file we do not watch.
    UnexpectedPin(Oid),
    /// A pin whose block lies beyond any addressable offset.
    PinOutOfRange {
        /// The bigfile.
        oid: Oid,
        /// The block.
        blk: u64,
    },
    /// A pin naming a revision after our `at`.
    PinAfterAt {
        /// The bigfile.
        oid: Oid,
        /// The block.
        blk: u64,
        /// The revision, after the connection's `at`.
        rev: Tid,
    },
    /// More pins in force than `max_pins_per_file`.
    TooManyPins(Oid),
    /// The driver broke the drain contract: a step queued a blocking action
    /// while the previous step's was still waiting to be polled (see
    /// [`Conn`]'s module doc: drain after every mutator and handler).
    NotDrained,
    /// The watch link broke.
    Link(LinkError),
    /// The OS refused.
    Os {
        /// The operation.
        call: OsOp,
        /// What the OS said.
        errno: Errno,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ConnClosed => f.write_str("connection closed"),
            Error::FileClosed => f.write_str("file already closed"),
            Error::NoSuchMapping => f.write_str("no such mapping"),
            Error::NoSuchOp => f.write_str("no such operation"),
            Error::BadRange => f.write_str("block range out of bounds"),
            Error::BadAddress(a) => write!(
                f,
                "bad address {a:#x}: null, not page-aligned, or the range wraps"
            ),
            Error::BadLength { len, want } => {
                write!(f, "range of {len} bytes for a mapping of {want} bytes")
            }
            Error::AddressInUse { addr, len } => write!(
                f,
                "range {addr:#x}+{len:#x} overlaps a mapping of this connection"
            ),
            Error::Server(t) => f.write_str(t),
            Error::GoingBack { at, to } => {
                write!(
                    f,
                    "@{to} is before @{at}: going back in history is forbidden"
                )
            }
            Error::HeadBehind { head, at } => write!(f, "head/at (@{head}) < @{at}"),
            Error::BadBlksize(b) => write!(f, "invalid blksize {b}"),
            Error::BadSize { size, blksize } => {
                write!(f, "size {size} is not a multiple of blksize {blksize}")
            }
            Error::HeadChanged { size, blksize } => write!(
                f,
                "head file changed unexpectedly: blksize is now {blksize} (size {size})"
            ),
            Error::UnexpectedPin(oid) => write!(f, "unexpected pin: f<{oid}> not watched"),
            Error::PinOutOfRange { oid, blk } => {
                write!(f, "pin f<{oid}> #{blk}: block out of range")
            }
            Error::PinAfterAt { oid, blk, rev } => {
                write!(
                    f,
                    "pin f<{oid}> #{blk} @{rev}: revision after the connection's at"
                )
            }
            Error::TooManyPins(oid) => write!(f, "f<{oid}>: too many pins"),
            Error::NotDrained => {
                f.write_str("actions not drained before the next step (driver bug)")
            }
            Error::Link(e) => write!(f, "watch link: {e}"),
            Error::Os { call, errno } => write!(f, "{}: errno {}", call.name(), errno.0),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}

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

/// The token of the (single) pin stalled on opening its `@rev` file.
const PIN_TOK: Tok = Tok(0);

/// An `@rev` file kept open.
#[derive(Clone, Copy, Debug)]
struct RevFile {
    oid: Oid,
    rev: Tid,
    fd: Fd,
    size: u64,
    used: u64,
}

#[derive(Debug)]
enum OpKind {
    Open {
        oid: Oid,
        file: Option<FileId>,
    },
    CloseFile {
        file: FileId,
    },
    Resync {
        at: Tid,
        stats: usize,
        replies: usize,
    },
    Mmap {
        map: MapId,
    },
    Remap,
    CloseConn,
}

#[derive(Debug)]
struct Op {
    kind: OpKind,
    started: bool,
    /// Head files a resync has still to stat, one at a time.
    stat_fds: Vec<Fd>,
    /// Blocks still to remap, last first; may wait for an `@rev` open.
    todo: Vec<(MapId, u64)>,
    result: Option<Result<OpOk, Error>>,
}

/// The client state of one connection. See the module doc for the driving contract.
///
/// Invariants (checked by [`Conn::check_invariants`]): placed mappings never
/// overlap; every mapping of a file that is not `Open` faults; pins are kept
/// only for watched files; in any state but `Up`/`Closing` every mapping
/// faults and no file is open; `waiting_reply` names only unfinished ops.
pub struct Conn {
    cfg: Config,
    at: Tid,
    state: ConnState,
    down: Option<Error>,
    link: Link,
    /// `None` only while `handle_bytes` runs.
    rx: Option<alloc::boxed::Box<Framer>>,
    files: HashMap<FileId, File>,
    by_oid: HashMap<Oid, FileId>,
    maps: HashMap<MapId, Mapping>,
    revs: heapless::Vec<RevFile, MAX_REV_CACHE>,
    rev_clock: u64,
    ops: HashMap<OpId, Op>,
    waiting_reply: HashMap<StreamId, OpId>,
    stalled: Option<PinReq>,
    actions: Actions,
    /// A non-blocking action was polled and not completed yet.
    in_flight: bool,
    next_id: u64,
    /// What happened so far; read by anyone through [`Conn::stats_handle`].
    stats: Arc<Stats>,
    /// Whether to count (off only to measure what counting costs).
    counting: bool,
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
            files: HashMap::new(),
            by_oid: HashMap::new(),
            maps: HashMap::new(),
            revs: heapless::Vec::new(),
            rev_clock: 0,
            ops: HashMap::new(),
            waiting_reply: HashMap::new(),
            stalled: None,
            actions: Actions::with_capacity(64),
            in_flight: false,
            next_id: 1,
            stats: Arc::new(Stats::default()),
            counting: true,
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
            .map(|(&id, f)| (id, f.oid))
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
        self.maps.get(&m)
    }

    /// Every mapping not unmapped yet, in no particular order.
    pub fn mappings(&self) -> impl Iterator<Item = (MapId, &Mapping)> + '_ {
        self.maps.iter().map(|(&id, m)| (id, m))
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
        let o = match self.ops.get(&op) {
            None => return Some(Err(Error::NoSuchOp)),
            Some(o) => o,
        };
        if o.result.is_none() && !o.started && self.can_start(op) {
            self.start(op);
        }
        if self.ops.get(&op).is_some_and(|o| o.result.is_some()) {
            return self.ops.remove(&op).and_then(|o| o.result);
        }
        None
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
            tok: Tok(op.0),
            fd,
            offset: blk_start * bs,
            len: (blk_len * bs) as usize,
        });
        Ok(op)
    }

    /// Maps blocks `[blk_start, blk_start + blk_len)` of an open file over
    /// the caller's range `[addr, addr + len)`: the backend replaces it in
    /// place (`Action::Map`, no `MapNew`), and from then on the mapping is
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
        let op = self.new_op(OpKind::Mmap { map });
        self.started(op);
        self.actions.push_back(Action::Map {
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
            },
        );
        map
    }

    /// Releases a mapping (also a faulting one, and after the connection
    /// ended). A range the caller owns (`mmap_at`) is not released but left
    /// reserved for its owner: it faults on any access from then on.
    pub fn unmap(&mut self, map: MapId) -> Result<(), Error> {
        let m = self.maps.remove(&map).ok_or(Error::NoSuchMapping)?;
        if m.addr != 0 && m.caller_owned && !crate::bug(4) {
            self.actions.push_back(Action::Map {
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

    /// The user's VM layer laid a private page over block `blk`: pins leave it alone.
    pub fn mark_dirty(&mut self, map: MapId, blk: u64) -> Result<(), Error> {
        let m = self.maps.get_mut(&map).ok_or(Error::NoSuchMapping)?;
        if !m.contains(blk) {
            return Err(Error::BadRange);
        }
        m.dirty.insert(blk);
        Ok(())
    }

    /// The dirty page over `blk` is gone: map the block per the pins in force.
    pub fn remap_blk(&mut self, map: MapId, blk: u64) -> Result<OpId, Error> {
        let m = self.maps.get_mut(&map).ok_or(Error::NoSuchMapping)?;
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
        let closing: Vec<OpId> = self.unfinished().collect();
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
        }
        let failed = |call| match outcome {
            Outcome::Failed(errno) => Some(Error::Os { call, errno }),
            _ => None,
        };
        match *action {
            Action::WaitHeadAt { tok, .. } => self.on_head_at(OpId(tok.0), outcome),
            Action::OpenHead { tok, .. } => self.on_head_opened(OpId(tok.0), outcome),
            Action::StatHead { tok, fd } => self.on_stat(OpId(tok.0), fd, outcome),
            Action::OpenRev { tok, oid, rev } => self.on_rev_opened(tok, oid, rev, outcome),
            Action::MapNew { tok, .. } => self.on_mapped(OpId(tok.0), action, outcome),
            Action::Map { addr, len, src } => {
                if let Some(e) = failed(action.op()) {
                    if src == Src::Fault && !crate::bug(5) {
                        // The range must not go on showing what it showed:
                        // protect it in place before anything else runs.
                        self.actions.push_front(Action::Protect { addr, len });
                    }
                    self.go_down(e);
                }
            }
            Action::Protect { addr, .. } => {
                if let Some(e) = failed(action.op()) {
                    // Both ways to make the range fault were refused.
                    if let Some(m) = self.maps.values_mut().find(|m| m.addr == addr) {
                        m.exposed = true;
                    }
                    self.go_down(e);
                }
            }
            Action::Unmap { .. } => {
                if let Some(e) = failed(action.op()) {
                    self.go_down(e);
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
            Action::Close(_) | Action::CloseLink => {}
        }
    }

    // ---- internals: ops ----

    fn fresh(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn new_op(&mut self, kind: OpKind) -> OpId {
        let op = OpId(self.fresh());
        self.ops.insert(
            op,
            Op {
                kind,
                started: false,
                stat_fds: Vec::new(),
                todo: Vec::new(),
                result: None,
            },
        );
        op
    }

    fn done_op(&mut self, r: Result<OpOk, Error>) -> OpId {
        let op = self.new_op(OpKind::Remap);
        self.started(op);
        self.finish(op, r);
        op
    }

    fn op_mut(&mut self, op: OpId) -> &mut Op {
        self.ops.get_mut(&op).expect("live op")
    }

    fn started(&mut self, op: OpId) {
        self.op_mut(op).started = true;
    }

    fn finish(&mut self, op: OpId, r: Result<OpOk, Error>) {
        let Some(o) = self.ops.get_mut(&op) else {
            return;
        };
        if o.result.is_some() {
            return;
        }
        let kind = match o.kind {
            OpKind::Mmap { map } => Some(Ok(map)),
            OpKind::Resync { .. } => Some(Err(())),
            _ => None,
        };
        let ok = r.is_ok();
        o.result = Some(r);
        o.todo = Vec::new();
        match kind {
            // A mapping nobody will get a handle on: release it (or give a
            // caller's range back reserved). One not placed yet is released
            // when the OS answers (`on_mapped`).
            Some(Ok(map)) if !ok => {
                let _ = self.unmap(map);
            }
            Some(Err(())) if ok => self.count(Event::resyncs, 1),
            _ => {}
        }
    }

    fn is_live(&self, op: OpId) -> bool {
        self.ops.get(&op).is_some_and(|o| o.result.is_none())
    }

    fn unfinished(&self) -> impl Iterator<Item = OpId> + '_ {
        self.ops
            .iter()
            .filter(|(_, o)| o.result.is_none())
            .map(|(&id, _)| id)
    }

    fn fail_ops(&mut self, e: &Error) {
        let live: Vec<OpId> = self.unfinished().collect();
        for op in live {
            self.finish(op, Err(e.clone()));
        }
        self.waiting_reply.clear();
    }

    /// Ops start in order of creation, each once it conflicts with no older
    /// or running op: a resync runs alone among opens, closes and resyncs;
    /// opens and closes of one file run one at a time.
    fn can_start(&self, op: OpId) -> bool {
        let oid_of = |k: &OpKind| match *k {
            OpKind::Open { oid, .. } => Some(oid),
            OpKind::CloseFile { file } => self.files.get(&file).map(|f| f.oid),
            _ => None,
        };
        let is_resync = |k: &OpKind| matches!(k, OpKind::Resync { .. });
        let me = &self.ops[&op].kind;
        let conflicts = |k: &OpKind| {
            let gated = |k: &OpKind| is_resync(k) || oid_of(k).is_some();
            if is_resync(k) || is_resync(me) {
                gated(k) && gated(me)
            } else {
                oid_of(k).is_some() && oid_of(k) == oid_of(me)
            }
        };
        self.ops.iter().all(|(&id, o)| {
            let ahead = id < op || o.started;
            id == op || o.result.is_some() || !ahead || !conflicts(&o.kind)
        })
    }

    fn check_up(&self) -> Result<(), Error> {
        match self.state {
            ConnState::Up => Ok(()),
            _ => Err(Error::ConnClosed),
        }
    }

    fn reading(&self) -> bool {
        matches!(self.state, ConnState::Up | ConnState::Closing)
    }

    fn start(&mut self, op: OpId) {
        self.started(op);
        if self.state != ConnState::Up {
            return self.finish(op, Err(Error::ConnClosed));
        }
        match self.ops[&op].kind {
            OpKind::Open { oid, .. } => {
                if let Some(&fid) = self.by_oid.get(&oid) {
                    let f = self.files.get_mut(&fid).expect("indexed file");
                    debug_assert_eq!(f.state, FileState::Open);
                    f.count += 1;
                    return self.finish(op, Ok(OpOk::Opened(fid)));
                }
                let fid = FileId(self.fresh());
                self.files.insert(fid, File::new(oid));
                self.by_oid.insert(oid, fid);
                self.op_mut(op).kind = OpKind::Open {
                    oid,
                    file: Some(fid),
                };
                self.actions.push_back(Action::OpenHead {
                    tok: Tok(op.0),
                    oid,
                });
            }
            OpKind::CloseFile { file } => {
                let Some(f) = self.files.get_mut(&file) else {
                    return self.finish(op, Err(Error::FileClosed));
                };
                if f.count > 1 {
                    f.count -= 1;
                    return self.finish(op, Ok(OpOk::Done));
                }
                f.state = FileState::Closing;
                let oid = f.oid;
                self.fault_file_maps(file);
                match self.link.unwatch(oid) {
                    Ok((stream, line)) => {
                        self.actions.push_back(Action::Send(line));
                        self.waiting_reply.insert(stream, op);
                    }
                    Err(e) => self.go_down(Error::Link(e)),
                }
            }
            OpKind::Resync { at, .. } => {
                self.actions
                    .push_back(Action::WaitHeadAt { tok: Tok(op.0), at });
            }
            OpKind::Mmap { .. } | OpKind::Remap | OpKind::CloseConn => {}
        }
    }

    fn on_head_opened(&mut self, op: OpId, outcome: Outcome) {
        let file = match self.ops.get(&op) {
            Some(Op {
                kind: OpKind::Open { file: Some(f), .. },
                result: None,
                ..
            }) => *f,
            _ => return self.close_unused(outcome),
        };
        let (fd, st) = match outcome {
            Outcome::Opened(fd, st) => (fd, st),
            Outcome::Failed(errno) => {
                self.forget_file(file);
                return self.finish(
                    op,
                    Err(Error::Os {
                        call: OsOp::OpenHead,
                        errno,
                    }),
                );
            }
            _ => return,
        };
        let bad = if st.blksize == 0 || st.blksize % self.cfg.page_size as u64 != 0 {
            Some(Error::BadBlksize(st.blksize))
        } else if st.size % st.blksize != 0 {
            Some(Error::BadSize {
                size: st.size,
                blksize: st.blksize,
            })
        } else {
            None
        };
        if let Some(e) = bad {
            self.actions.push_back(Action::Close(fd));
            self.forget_file(file);
            return self.finish(op, Err(e));
        }
        let at = self.at;
        let max_pins = self.cfg.max_pins_per_file;
        let f = self.files.get_mut(&file).expect("opening file");
        f.fd = Some(fd);
        f.blksize = st.blksize;
        f.size = st.size;
        reserve_pins(f, max_pins);
        let oid = f.oid;
        match self.link.watch(oid, at) {
            Ok((stream, line)) => {
                self.files.get_mut(&file).expect("opening file").watched = true;
                self.actions.push_back(Action::Send(line));
                self.waiting_reply.insert(stream, op);
            }
            Err(e) => self.go_down(Error::Link(e)),
        }
    }

    fn on_head_at(&mut self, op: OpId, outcome: Outcome) {
        let OpKind::Resync { at, .. } = self.ops.get(&op).map_or(&OpKind::CloseConn, |o| &o.kind)
        else {
            return;
        };
        let at = *at;
        if !self.is_live(op) {
            return;
        }
        let head = match outcome {
            Outcome::HeadAt(h) => h,
            Outcome::Failed(errno) => {
                return self.finish(
                    op,
                    Err(Error::Os {
                        call: OsOp::WaitHeadAt,
                        errno,
                    }),
                )
            }
            _ => return,
        };
        if head < at {
            return self.finish(op, Err(Error::HeadBehind { head, at }));
        }
        // One stat at a time: a step queues at most one blocking action.
        let mut fds: Vec<Fd> = self.files.values().filter_map(|f| f.fd).collect();
        fds.sort_unstable_by(|a, b| b.cmp(a)); // popped last first: in fd order
        if let OpKind::Resync { stats, .. } = &mut self.op_mut(op).kind {
            *stats = fds.len();
        }
        self.op_mut(op).stat_fds = fds;
        self.next_stat(op);
    }

    fn next_stat(&mut self, op: OpId) {
        match self.op_mut(op).stat_fds.pop() {
            Some(fd) => self
                .actions
                .push_back(Action::StatHead { tok: Tok(op.0), fd }),
            None => self.resync_step(op),
        }
    }

    fn on_stat(&mut self, op: OpId, fd: Fd, outcome: Outcome) {
        if !self.is_live(op) {
            return;
        }
        let st = match outcome {
            Outcome::Stat(st) => st,
            Outcome::Failed(errno) => {
                return self.go_down(Error::Os {
                    call: OsOp::Stat,
                    errno,
                })
            }
            _ => return,
        };
        if let OpKind::Resync { stats, .. } = &mut self.op_mut(op).kind {
            *stats -= 1;
        }
        let Some((&fid, f)) = self.files.iter_mut().find(|(_, f)| f.fd == Some(fd)) else {
            return self.next_stat(op);
        };
        if st.blksize != f.blksize {
            return self.go_down(Error::HeadChanged {
                size: st.size,
                blksize: st.blksize,
            });
        }
        if st.size % st.blksize != 0 {
            return self.go_down(Error::BadSize {
                size: st.size,
                blksize: st.blksize,
            });
        }
        let (old, new) = (f.nblk(), st.size / st.blksize);
        f.size = st.size;
        reserve_pins(f, self.cfg.max_pins_per_file);
        if new != old {
            // Head grew: blocks [old, new) showed zeros, head covers them
            // now. Head shrank (its last blocks were deleted): blocks
            // [new, old) showed head, which faults there now; they show
            // zeros. Pinned and dirty blocks keep their own source.
            let maps: Vec<(u64, MapId)> = f.maps.iter().copied().collect();
            let mut todo = Vec::new();
            for (_, mid) in maps {
                self.map_range(fid, mid, old.min(new), old.max(new), &mut todo);
            }
            self.op_mut(op).todo.extend(todo);
        }
        self.run_todo(op);
    }

    /// Makes blocks `[lo, hi)` (clipped to the mapping) show their sources:
    /// head in one stretch between dirty blocks, pinned blocks queued to `todo`.
    fn map_range(
        &mut self,
        fid: FileId,
        mid: MapId,
        lo: u64,
        hi: u64,
        todo: &mut Vec<(MapId, u64)>,
    ) {
        let (Some(f), Some(m)) = (self.files.get(&fid), self.maps.get(&mid)) else {
            return;
        };
        if m.faulting || m.addr == 0 {
            return;
        }
        let (lo, hi) = (lo.max(m.blk_start), hi.min(m.blk_stop()));
        let mut b = lo;
        while b < hi {
            if !m.remappable(b) || f.pinned.contains_key(&b) {
                if m.remappable(b) {
                    todo.push((mid, b));
                }
                b += 1;
                continue;
            }
            let mut e = b + 1;
            while e < hi && m.remappable(e) && !f.pinned.contains_key(&e) {
                e += 1;
            }
            let src = f.unpinned_src(b);
            let e = f.head_stop(b, e);
            self.actions.push_back(Action::Map {
                addr: m.blk_addr(b),
                len: ((e - b) * m.blksize) as usize,
                src,
            });
            b = e;
        }
    }

    /// Resync after its stats and remaps: watch every file at the new `at`.
    fn resync_step(&mut self, op: OpId) {
        let Some(Op {
            kind: OpKind::Resync { at, stats, replies },
            todo,
            result: None,
            ..
        }) = self.ops.get(&op)
        else {
            return;
        };
        if *stats > 0 || !todo.is_empty() || *replies > 0 {
            return;
        }
        debug_assert!(self.ops[&op].stat_fds.is_empty());
        let at = *at;
        self.at = at;
        self.close_revs();
        // In oid order: the same requests in the same order for the same
        // files (the map's order changes from one instance to the next).
        let mut oids: Vec<Oid> = self.files.values().map(|f| f.oid).collect();
        oids.sort_unstable();
        let mut n = 0;
        for oid in oids {
            match self.link.watch(oid, at) {
                Ok((stream, line)) => {
                    self.actions.push_back(Action::Send(line));
                    self.waiting_reply.insert(stream, op);
                    n += 1;
                }
                Err(e) => return self.go_down(Error::Link(e)),
            }
        }
        if n == 0 {
            return self.finish(op, Ok(OpOk::Done));
        }
        if let OpKind::Resync { replies, .. } = &mut self.op_mut(op).kind {
            *replies = n;
        }
    }

    fn on_mapped(&mut self, op: OpId, action: &Action, outcome: Outcome) {
        let map = match self.ops.get(&op) {
            Some(Op {
                kind: OpKind::Mmap { map },
                result: None,
                ..
            }) => *map,
            _ => {
                if let (Outcome::Mapped(addr), Action::MapNew { len, .. }) = (outcome, action) {
                    self.actions.push_back(Action::Unmap { addr, len: *len });
                }
                return;
            }
        };
        let addr = match outcome {
            Outcome::Mapped(a) => a,
            Outcome::Failed(errno) => {
                self.maps.remove(&map);
                return self.finish(
                    op,
                    Err(Error::Os {
                        call: OsOp::MapNew,
                        errno,
                    }),
                );
            }
            _ => return,
        };
        self.maps.get_mut(&map).expect("new mapping").addr = addr;
        self.placed(op, map);
    }

    /// The mapping `op` makes is in place, showing head: index it, show
    /// zeros past head's end, remap its pinned blocks.
    fn placed(&mut self, op: OpId, map: MapId) {
        let m = &self.maps[&map];
        let (fid, start, stop) = (m.file, m.blk_start, m.blk_stop());
        let f = self.files.get_mut(&fid).expect("mapped file");
        f.add_map(start, stop - start, map);
        reserve_pins(f, self.cfg.max_pins_per_file);
        // The new mapping shows head throughout; past head's end it shows zeros.
        let a = match f.unpinned_src(start) {
            Src::Zeros => start,
            Src::File { .. } | Src::Fault => f.head_stop(start, stop),
        };
        if a < stop && !crate::bug(3) {
            let m = &self.maps[&map];
            self.actions.push_back(Action::Map {
                addr: m.blk_addr(a),
                len: ((stop - a) * m.blksize) as usize,
                src: Src::Zeros,
            });
        }
        let mut todo: Vec<(MapId, u64)> = self.files[&fid]
            .pinned_in(start, stop)
            .into_iter()
            .rev()
            .map(|b| (map, b))
            .collect();
        self.op_mut(op).todo.append(&mut todo);
        self.run_todo(op);
    }

    /// Remaps the op's queued blocks; stops at the first `@rev` file to open.
    fn run_todo(&mut self, op: OpId) {
        let Some(o) = self.ops.get_mut(&op) else {
            return;
        };
        let mut todo = core::mem::take(&mut o.todo);
        while let Some(&(mid, blk)) = todo.last() {
            let Some(m) = self.maps.get(&mid) else {
                todo.pop();
                continue;
            };
            if !m.remappable(blk) {
                todo.pop();
                continue;
            }
            let (addr, len) = (m.blk_addr(blk), m.blksize as usize);
            let Some(f) = self.files.get(&m.file) else {
                todo.pop();
                continue;
            };
            match block_src(f, blk, &mut self.revs, &mut self.rev_clock) {
                Ok(src) => {
                    self.actions.push_back(Action::Map { addr, len, src });
                    self.count(Event::remaps, 1);
                    todo.pop();
                }
                Err(rev) => {
                    let oid = f.oid;
                    self.actions.push_back(Action::OpenRev {
                        tok: Tok(op.0),
                        oid,
                        rev,
                    });
                    self.op_mut(op).todo = todo;
                    return;
                }
            }
        }
        match self.ops[&op].kind {
            OpKind::Mmap { map } => self.finish(op, Ok(OpOk::Mapped(map))),
            OpKind::Remap => self.finish(op, Ok(OpOk::Done)),
            OpKind::Resync { .. } => self.next_stat(op),
            _ => {}
        }
    }

    fn on_rev_opened(&mut self, tok: Tok, oid: Oid, rev: Tid, outcome: Outcome) {
        let failed = match outcome {
            Outcome::Opened(fd, st) => {
                self.count(Event::rev_opens, 1);
                self.cache_rev(oid, rev, fd, st);
                None
            }
            Outcome::Failed(errno) => Some(Error::Os {
                call: OsOp::OpenRev,
                errno,
            }),
            _ => return,
        };
        if tok == PIN_TOK {
            let Some(req) = self.stalled.take() else {
                return;
            };
            return match failed {
                Some(e) => {
                    // Put it back so that go_down naks it.
                    self.stalled = Some(req);
                    self.go_down(e)
                }
                None => self.apply_pin(req),
            };
        }
        let op = OpId(tok.0);
        if !self.is_live(op) {
            return;
        }
        match failed {
            None => self.run_todo(op),
            Some(e) => match self.ops[&op].kind {
                OpKind::Mmap { map } => {
                    let _ = self.unmap(map);
                    self.finish(op, Err(e));
                }
                _ => self.go_down(e),
            },
        }
    }

    fn cache_rev(&mut self, oid: Oid, rev: Tid, fd: Fd, st: Stat) {
        if self.state != ConnState::Up && self.state != ConnState::Closing
            || self.revs.iter().any(|r| r.oid == oid && r.rev == rev)
        {
            return self.actions.push_back(Action::Close(fd));
        }
        if self.revs.len() >= self.cfg.rev_cache {
            let lru = (0..self.revs.len())
                .min_by_key(|&i| self.revs[i].used)
                .expect("non-empty");
            let old = self.revs.swap_remove(lru);
            self.actions.push_back(Action::Close(old.fd));
        }
        self.rev_clock += 1;
        let _ = self.revs.push(RevFile {
            oid,
            rev,
            fd,
            size: st.size,
            used: self.rev_clock,
        });
    }

    fn close_revs(&mut self) {
        for r in core::mem::take(&mut self.revs) {
            self.actions.push_back(Action::Close(r.fd));
        }
    }

    fn close_unused(&mut self, outcome: Outcome) {
        if let Outcome::Opened(fd, _) = outcome {
            self.actions.push_back(Action::Close(fd));
        }
    }

    fn forget_file(&mut self, fid: FileId) {
        if let Some(f) = self.files.remove(&fid) {
            if self.by_oid.get(&f.oid) == Some(&fid) {
                self.by_oid.remove(&f.oid);
            }
        }
    }

    // ---- internals: the link ----

    fn handle_line(&mut self, line: &[u8]) {
        match self.link.recv(line) {
            Err(e) => self.go_down(Error::Link(e)),
            Ok(Incoming::Reply { stream, result }) => self.on_reply(stream, result),
            Ok(Incoming::Pin {
                stream,
                oid,
                blk,
                rev,
            }) => self.on_pin(PinReq {
                stream,
                oid,
                blk,
                rev,
            }),
        }
    }

    fn on_reply(&mut self, stream: StreamId, result: Result<(), &str>) {
        let Some(op) = self.waiting_reply.remove(&stream) else {
            return; // its op already failed
        };
        let result = result.map_err(|t| Error::Server(text(t)));
        match self.ops[&op].kind {
            OpKind::Open {
                file: Some(fid), ..
            } => match result {
                Ok(()) => {
                    let f = self.files.get_mut(&fid).expect("opening file");
                    f.state = FileState::Open;
                    f.count = 1;
                    self.finish(op, Ok(OpOk::Opened(fid)));
                }
                Err(e) => {
                    self.close_file_now(fid);
                    self.finish(op, Err(e));
                }
            },
            OpKind::CloseFile { file } => {
                self.close_file_now(file);
                self.finish(op, result.map(|()| OpOk::Done));
            }
            OpKind::Resync { .. } => match result {
                Ok(()) => {
                    let OpKind::Resync { replies, .. } = &mut self.op_mut(op).kind else {
                        unreachable!()
                    };
                    *replies -= 1;
                    if *replies == 0 {
                        self.finish(op, Ok(OpOk::Done));
                    }
                }
                Err(e) => self.go_down(e),
            },
            _ => {}
        }
    }

    fn on_pin(&mut self, req: PinReq) {
        if self.state == ConnState::Closing {
            // After `bye` every view is gone: nothing to remap.
            return self.answer(req.stream);
        }
        let Some(f) = self.by_oid.get(&req.oid).and_then(|id| self.files.get(id)) else {
            return self.go_down(Error::UnexpectedPin(req.oid));
        };
        if !f.watched {
            return self.go_down(Error::UnexpectedPin(req.oid));
        }
        let end = req
            .blk
            .checked_add(1)
            .and_then(|b| b.checked_mul(f.blksize))
            .filter(|&e| e <= i64::MAX as u64 && e <= usize::MAX as u64);
        if end.is_none() {
            return self.go_down(Error::PinOutOfRange {
                oid: req.oid,
                blk: req.blk,
            });
        }
        if let Rev::At(rev) = req.rev {
            if rev > self.at {
                return self.go_down(Error::PinAfterAt {
                    oid: req.oid,
                    blk: req.blk,
                    rev,
                });
            }
            if !self.revs.iter().any(|r| r.oid == req.oid && r.rev == rev) {
                self.stalled = Some(req);
                self.actions.push_back(Action::OpenRev {
                    tok: PIN_TOK,
                    oid: req.oid,
                    rev,
                });
                return;
            }
            self.count(Event::rev_hits, 1);
        }
        self.apply_pin(req);
    }

    /// Remaps the block in every mapping that shows it, records the pin, acks.
    fn apply_pin(&mut self, req: PinReq) {
        if self.state != ConnState::Up {
            return self.answer(req.stream);
        }
        let Some(&fid) = self.by_oid.get(&req.oid) else {
            return self.go_down(Error::UnexpectedPin(req.oid));
        };
        let f = self.files.get_mut(&fid).expect("indexed file");
        match req.rev {
            Rev::Head => {
                f.pinned.remove(&req.blk);
            }
            Rev::At(rev) => {
                if f.pinned.len() >= self.cfg.max_pins_per_file && !f.pinned.contains_key(&req.blk)
                {
                    return self.go_down(Error::TooManyPins(req.oid));
                }
                f.pinned.insert(req.blk, rev);
            }
        }
        let f = &self.files[&fid];
        let src = match block_src(f, req.blk, &mut self.revs, &mut self.rev_clock) {
            Ok(src) => src,
            Err(_) => unreachable!("the pin's @rev file was just made present"),
        };
        let mut skip = crate::bug(1) && matches!(req.rev, Rev::At(_));
        let mut remapped = 0;
        for (_, mid) in f.maps_covering(req.blk) {
            let m = &self.maps[&mid];
            if m.contains(req.blk) && m.remappable(req.blk) {
                if core::mem::take(&mut skip) {
                    continue;
                }
                self.actions.push_back(Action::Map {
                    addr: m.blk_addr(req.blk),
                    len: m.blksize as usize,
                    src,
                });
                remapped += 1;
            }
        }
        match req.rev {
            Rev::Head => self.count(Event::unpins, 1),
            Rev::At(_) => self.count(Event::pins, 1),
        }
        self.count(Event::remaps, remapped);
        self.answer(req.stream);
    }

    fn answer(&mut self, stream: StreamId) {
        match self.link.answer(stream, None) {
            Ok(line) => self.actions.push_back(Action::Send(line)),
            Err(e) => self.go_down(Error::Link(e)),
        }
    }

    // ---- internals: ending ----

    /// Takes the connection down: nak what the server waits for, fault
    /// every mapping, let go of every descriptor, fail every op.
    fn go_down(&mut self, err: Error) {
        if !self.reading() {
            return;
        }
        let mut why = Text::new();
        let _ = write!(why, "{err}");
        // Queued acks are not true any more: they become naks. Queued maps
        // and blocking calls are dropped (their ops fail below).
        let mut naks: heapless::Vec<StreamId, { crate::link::MAX_SERVER_REQUESTS }> =
            heapless::Vec::new();
        self.actions.retain(|a| match a {
            Action::Send(line) => {
                let bytes = line.as_bytes();
                if let Ok(f) = Frame::parse(&bytes[..bytes.len() - 1]) {
                    if f.msg == Msg::Ack {
                        let _ = naks.push(f.stream);
                    }
                }
                false
            }
            Action::Close(_)
            | Action::CloseLink
            | Action::Unmap { .. }
            | Action::Protect { .. }
            | Action::Map {
                src: Src::Fault, ..
            } => true,
            _ => false,
        });
        for s in naks {
            self.actions.push_back(Action::Send(OutLine::new(&Frame {
                stream: s,
                msg: Msg::Nak(&why),
            })));
        }
        let waiting: heapless::Vec<StreamId, { crate::link::MAX_SERVER_REQUESTS }> =
            self.link.unanswered().iter().copied().collect();
        for s in waiting {
            if let Ok(line) = self.link.answer(s, Some(&why)) {
                self.actions.push_back(Action::Send(line));
            }
        }
        // Unless the link itself broke, say `bye`: the server then ends the
        // link, and whoever reads it sees EOF instead of waiting for ever.
        let link_broken = matches!(
            err,
            Error::Link(
                LinkError::UnexpectedEof | LinkError::Io(_) | LinkError::Wire(WireError::EofInLine)
            )
        );
        if !link_broken {
            if let Ok(line) = self.link.bye() {
                self.actions.push_back(Action::Send(line));
            }
        }
        self.link.fail(match &err {
            Error::Link(e) => e.clone(),
            _ => LinkError::Closed,
        });
        self.stalled = None;
        self.fail_ops(&err);
        self.drop_views();
        self.actions.push_back(Action::CloseLink);
        self.state = ConnState::Down;
        self.down = Some(err);
    }

    /// Faults every mapping and closes every file and `@rev` file.
    fn drop_views(&mut self) {
        let ids: Vec<FileId> = self.files.keys().copied().collect();
        for fid in ids {
            self.close_file_now(fid);
        }
        self.close_revs();
        for m in self.maps.values_mut() {
            fault(m, &mut self.actions);
        }
    }

    fn fault_file_maps(&mut self, fid: FileId) {
        let Some(f) = self.files.get_mut(&fid) else {
            return;
        };
        for (_, mid) in core::mem::take(&mut f.maps) {
            if let Some(m) = self.maps.get_mut(&mid) {
                fault(m, &mut self.actions);
            }
        }
        f.max_map_len = 0;
    }

    fn close_file_now(&mut self, fid: FileId) {
        self.fault_file_maps(fid);
        if let Some(f) = self.files.get(&fid) {
            if let Some(fd) = f.fd {
                self.actions.push_back(Action::Close(fd));
            }
        }
        self.forget_file(fid);
    }

    // ---- checks ----

    /// Checks the invariants written on [`Conn`]; `Err` names the first broken one.
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        let mut placed: Vec<(usize, usize)> = self
            .maps
            .values()
            .filter(|m| m.addr != 0)
            .map(|m| (m.addr, m.addr + m.len_bytes()))
            .collect();
        placed.sort_unstable();
        if placed.windows(2).any(|w| w[0].1 > w[1].0) {
            return Err("mappings overlap");
        }
        for (&mid, m) in &self.maps {
            let open = self
                .files
                .get(&m.file)
                .is_some_and(|f| f.state == FileState::Open);
            if !open && !m.faulting && m.addr != 0 {
                return Err("a mapping of a file that is not open does not fault");
            }
            if m.addr != 0 && !m.faulting {
                let f = &self.files[&m.file];
                if !f.maps.contains(&(m.blk_start, mid)) || m.blk_len > f.max_map_len {
                    return Err("a live mapping is missing from its file's index");
                }
            }
            if m.dirty.iter().any(|&b| !m.contains(b)) {
                return Err("a dirty block lies outside its mapping");
            }
        }
        for f in self.files.values() {
            if !f.pinned.is_empty() && !f.watched {
                return Err("pins kept for a file that is not watched");
            }
            if f.maps.iter().any(|(_, mid)| !self.maps.contains_key(mid)) {
                return Err("a file indexes a mapping that is gone");
            }
            if f.blksize != 0 && f.size % f.blksize != 0 {
                return Err("head size not a multiple of blksize");
            }
        }
        if !self.reading() {
            if self.maps.values().any(|m| !m.faulting && m.addr != 0) {
                return Err("a connection that is not up has a live mapping");
            }
            if !self.files.is_empty() || !self.revs.is_empty() {
                return Err("a connection that is not up holds files");
            }
        }
        if self.waiting_reply.values().any(|op| !self.is_live(*op)) {
            return Err("a reply is awaited for a finished op");
        }
        Ok(())
    }
}

fn fault(m: &mut Mapping, actions: &mut Actions) {
    if !m.faulting && m.addr != 0 {
        actions.push_back(Action::Map {
            addr: m.addr,
            len: m.len_bytes(),
            src: Src::Fault,
        });
    }
    m.faulting = true;
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

/// What block `blk` of file `f` shows: its pin's `@rev` file (zeros past
/// that file's end), else [`File::unpinned_src`]: head, or zeros past head's
/// known size (also where head shrank: a pin or unpin there maps zeros, never
/// head that would fault). `Err(rev)`
/// when the `@rev` file must be opened first.
fn block_src(
    f: &File,
    blk: u64,
    revs: &mut heapless::Vec<RevFile, MAX_REV_CACHE>,
    clock: &mut u64,
) -> Result<Src, Tid> {
    let offset = blk * f.blksize;
    match f.pinned.get(&blk) {
        Some(&rev) => {
            let r = revs
                .iter_mut()
                .find(|r| r.oid == f.oid && r.rev == rev)
                .ok_or(rev)?;
            *clock += 1;
            r.used = *clock;
            Ok(if offset < r.size {
                Src::File { fd: r.fd, offset }
            } else {
                Src::Zeros
            })
        }
        None => Ok(f.unpinned_src(blk)),
    }
}

#[cfg(test)]
#[path = "conn_tests.rs"]
mod tests;
