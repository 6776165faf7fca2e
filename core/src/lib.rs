//! Sans-IO protocol core of a WCFS client.
//!
//! A WCFS server shows each ZODB bigfile as `head/bigfile/<oid>` (latest
//! data) and `@<rev>/bigfile/<oid>` (data as of a revision). A client gives
//! each connection memory mappings whose bytes are the data as of the
//! connection's `at`: head almost everywhere, single blocks re-mapped to
//! `@<rev>` files when the server sends `pin` over `head/watch`.
//!
//! This crate decides everything and performs nothing:
//! * [`wire`]: the line format of the watch link (parse, encode, framing).
//! * [`link`]: stream bookkeeping of one link.
//! * [`rawlink`]: a raw watch link whose caller speaks the protocol line by line.
//! * [`conn`]: the state machine of one connection, its files
//!   ([`file`](mod@file)) and mappings ([`mapping`]).
//! * [`action`]: what the core asks of the OS, and the [`Backend`] trait.
//! * [`kind`]: what kind of failure an error is, one set for every face.
//! * [`stats`]: per-connection counters and the pin time histogram.
//! * [`zurl`]: database URLs normalized, as they name a WCFS mountpoint.
//!
//! See [`conn`] for the contract a driver follows.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod action;
pub mod conn;
pub mod file;
pub mod ids;
pub mod kind;
pub mod link;
pub mod mapping;
pub mod rawlink;
pub mod stats;
pub mod wire;
pub mod zurl;

/// Deliberate bugs for the simulation to catch: switched on only with the
/// feature `sim-bugs` (without it [`bugs::Bug`] names them and nothing
/// turns one on).
pub mod bugs {
    #[cfg(feature = "sim-bugs")]
    use core::sync::atomic::{AtomicU8, Ordering};

    /// One deliberate bug; at most one is on at a time, process-wide.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    #[repr(u8)]
    pub enum Bug {
        /// No bug: the real behaviour.
        None = 0,
        /// A pin to a revision does not remap the first mapping covering the block.
        SkipRemapOnPin = 1,
        /// Pins remap blocks the user marked dirty.
        IgnoreDirty = 2,
        /// A new mapping shows head, not zeros, past the head file's end.
        NoZerosPastEnd = 3,
        /// Unmapping a caller's range (`mmap_at`) releases it to the OS.
        ReleaseCallerRange = 4,
        /// A refused fault map is not followed by `mprotect`: the view
        /// keeps showing what it showed.
        NoProtectFallback = 5,
        /// Pins replace a block the VM reports dirty (`Conn::mmap_vm`).
        IgnoreVmDirty = 6,
        /// Several VMs are locked in descending order (`Conn::mmap_vm`).
        LockVmsDescending = 7,
    }

    #[cfg(feature = "sim-bugs")]
    static BUG: AtomicU8 = AtomicU8::new(0);

    /// Switches a bug on (process-wide).
    #[cfg(feature = "sim-bugs")]
    pub fn set(b: Bug) {
        BUG.store(b as u8, Ordering::SeqCst);
    }

    /// Whether bug `b` is switched on (always false without `sim-bugs`).
    #[allow(unused_variables)]
    #[inline(always)]
    pub(crate) fn on(b: Bug) -> bool {
        #[cfg(feature = "sim-bugs")]
        return BUG.load(Ordering::Relaxed) == b as u8;
        #[cfg(not(feature = "sim-bugs"))]
        false
    }
}

pub use action::{
    perform, perform_blocking, perform_quick, Action, Backend, BlockingOs, Errno, Fd, OsOp,
    Outcome, QuickOs, Src, Stat, Tok, VmId,
};
pub use conn::{Config, Conn, ConnState, Error, FileId, OpId, OpOk};
pub use kind::{Domain, Kind};
pub use mapping::MapId;
pub use stats::{
    pin_time_bucket, pin_time_bucket_end, pin_time_bucket_start, ConnStats, Stats,
    PIN_TIME_BUCKETS, PIN_TIME_SUB_BITS,
};

/// A backend that refuses everything (for doc examples and compile checks).
pub struct NullBackend;

impl QuickOs for NullBackend {
    fn map_new(&mut self, _: Fd, _: u64, _: usize) -> Result<usize, Errno> {
        Err(Errno(38))
    }
    fn map_fixed(&mut self, _: usize, _: usize, _: Src) -> Result<(), Errno> {
        Err(Errno(38))
    }
    fn protect(&mut self, _: usize, _: usize) -> Result<(), Errno> {
        Err(Errno(38))
    }
    fn unmap(&mut self, _: usize, _: usize) -> Result<(), Errno> {
        Err(Errno(38))
    }
    fn send(&mut self, _: &wire::OutLine) -> Result<(), Errno> {
        Err(Errno(38))
    }
    fn close(&mut self, _: Fd) {}
    fn close_link(&mut self) {}
}

impl BlockingOs for NullBackend {
    fn wait_head_at(&mut self, _: wire::Tid) -> Result<wire::Tid, Errno> {
        Err(Errno(38))
    }
    fn open_head(&mut self, _: wire::Oid) -> Result<(Fd, Stat), Errno> {
        Err(Errno(38))
    }
    fn open_rev(&mut self, _: wire::Oid, _: wire::Tid) -> Result<(Fd, Stat), Errno> {
        Err(Errno(38))
    }
    fn stat(&mut self, _: Fd) -> Result<Stat, Errno> {
        Err(Errno(38))
    }
}

/// The README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
